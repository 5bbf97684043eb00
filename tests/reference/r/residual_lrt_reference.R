# Reference values from nlme::anova.lme for likelihood-ratio tests of residual structures
# (alliancestats `compare_residuals`): the same fixed and random effects, REML, with
# independent residuals against AR(1) residuals (truth-and-bias model) and against
# rater-specific, correlated residuals (rater-stacked growth model).
#
# Run from the repository root:
#   Rscript tests/reference/r/residual_lrt_reference.R
# Needs r-base-core, r-cran-nlme, r-cran-jsonlite (Debian). Reads
# tests/reference/data/tb_{small,medium}.csv and writes
# tests/reference/results/residual_lrt_reference.json.
#
# Data preparation as residual_reference.R (truth-and-bias centring on the truth mean over
# the analysed rows; growth ratings stacked by rater, time = session - 1). nlme's anova()
# of REML fits with the same fixed effects compares REML log-likelihoods; its AIC counts
# every parameter (fixed effects too) and its BIC uses log(N - p) for REML fits.
suppressPackageStartupMessages({library(nlme); library(jsonlite)})
source("tests/reference/r/lme4_common.R")

ctrl <- lmeControl(maxIter = 500, msMaxIter = 500, niterEM = 100, msMaxEval = 2000,
                   tolerance = 1e-10, msTol = 1e-12, returnObject = TRUE)

# anova(m0, m1): one entry per model, in the order given
table_of <- function(a) {
  list(df = a$df, AIC = a$AIC, BIC = a$BIC, logLik = a$logLik,
       L_ratio = a$L.Ratio[2], p_value = a$`p-value`[2])
}

tb_data <- function(dat) {
  d <- dat[complete.cases(dat[, c("therapist", "patient", "alliance_therapist",
                                  "alliance_patient", "condition", "session")]), ]
  M <- mean(d$alliance_patient)
  d$J <- d$alliance_therapist - M
  d$alliance_patient <- d$alliance_patient - M
  d
}

header <- reference_header("tests/reference/r/residual_lrt_reference.R")
header$nlme_version <- as.character(packageVersion("nlme"))
out <- c(header, list(datasets = list()))

for (name in c("small", "medium")) {
  dat <- read.csv(sprintf("tests/reference/data/tb_%s.csv", name))
  res <- list()
  tb <- tb_data(dat)
  tbf <- J ~ alliance_patient * condition * session
  # fit_truth_bias(..., moderators = ["condition", "session"], time = "session"),
  # residual "iid" against "ar1"
  m0 <- lme(tbf, random = ~ 1 | therapist/patient, data = tb, method = "REML",
            control = ctrl)
  m1 <- update(m0, correlation = corAR1(form = ~ session | therapist/patient))
  res$tb_iid_ar1 <- table_of(anova(m0, m1))               # anova(m0, m1)

  long <- growth_data(dat)
  gf <- alliance ~ 0 + rater + rater:time + rater:condition + rater:time:condition
  # fit_growth(..., rater = "rater", random = "intercept"), residual "iid" against
  # "rater" and against "ar1" (AR(1) within each rater's series)
  g0 <- lme(gf, random = ~ 1 | therapist/patient, data = long, method = "REML",
            control = ctrl)
  g1 <- update(g0, weights = varIdent(form = ~ 1 | rater),
               correlation = corCompSymm(form = ~ 1 | therapist/patient/session))
  g2 <- update(g0, correlation = corAR1(form = ~ session | therapist/patient/rater))
  res$growth_iid_rater <- table_of(anova(g0, g1))         # anova(g0, g1)
  res$growth_iid_ar1 <- table_of(anova(g0, g2))           # anova(g0, g2)
  res$growth_nobs <- nrow(long)
  res$tb_nobs <- nrow(tb)
  out$datasets[[name]] <- res
}

write_json(out, "tests/reference/results/residual_lrt_reference.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
cat("wrote tests/reference/results/residual_lrt_reference.json\n")
