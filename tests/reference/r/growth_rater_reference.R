# Reference values from lme4::lmer for the growth model with rater-specific, correlated
# random intercepts and time slopes per patient (alliancestats:
# fit_growth(..., rater = "rater", random = "rater_slopes")).
#
# Run from the repository root:
#   Rscript tests/reference/r/growth_rater_reference.R
# Needs r-base-core, r-cran-lme4, r-cran-jsonlite (Debian). Reads the growth reference
# data tests/reference/data/tb_{small,medium,nearsingular}.csv and writes
# tests/reference/results/growth_rater.json.
#
# Data preparation exactly as alliancestats does it (and as tb_growth_reference.R): the two
# ratings are stacked (rater = therapist, patient; in that factor order), rows with a
# missing rating dropped, time = session - 1 (time_center = "first").
suppressPackageStartupMessages({library(lme4); library(jsonlite)})

ctrl <- lmerControl(optimizer = "bobyqa", check.conv.singular = "ignore",
                    optCtrl = list(maxfun = 1e5))

extract <- function(fit) {
  vc <- as.data.frame(VarCorr(fit))
  list(
    fixef = as.list(fixef(fit)),                          # fixef(fit)
    se = as.list(sqrt(diag(as.matrix(vcov(fit))))),       # sqrt(diag(vcov(fit)))
    vcov = unname(as.matrix(vcov(fit))),                  # vcov(fit)
    varcorr = lapply(split(vc, seq_len(nrow(vc))), as.list),  # as.data.frame(VarCorr(fit))
    sigma = sigma(fit),                                   # sigma(fit)
    logLik = as.numeric(logLik(fit)),                     # logLik(fit)
    isSingular = isSingular(fit),                         # isSingular(fit)
    nobs = nobs(fit),
    theta = unname(getME(fit, "theta"))                   # getME(fit, "theta")
  )
}

growth_data <- function(dat) {
  long <- rbind(
    data.frame(dat[, c("therapist", "patient", "session", "condition")],
               rater = "therapist", alliance = dat$alliance_therapist),
    data.frame(dat[, c("therapist", "patient", "session", "condition")],
               rater = "patient", alliance = dat$alliance_patient))
  long$rater <- factor(long$rater, levels = c("therapist", "patient"))
  long <- long[!is.na(long$alliance), ]
  long$time <- long$session - 1
  long
}

formula <- alliance ~ 0 + rater + rater:time + rater:condition + rater:time:condition +
  (1 | therapist) + (0 + rater + rater:time | therapist:patient)

out <- list(
  generated_by = "tests/reference/r/growth_rater_reference.R (do not edit by hand)",
  formula = paste(deparse(formula, width.cutoff = 500L), collapse = " "),
  r_version = R.version.string,
  lme4_version = as.character(packageVersion("lme4")),
  matrix_version = as.character(packageVersion("Matrix")),
  jsonlite_version = as.character(packageVersion("jsonlite")),
  datasets = list()
)

for (name in c("small", "medium", "nearsingular")) {
  long <- growth_data(read.csv(sprintf("tests/reference/data/tb_%s.csv", name)))
  out$datasets[[name]] <- list(
    REML = extract(lmer(formula, data = long, REML = TRUE, control = ctrl)),
    ML = extract(lmer(formula, data = long, REML = FALSE, control = ctrl)))
}

write_json(out, "tests/reference/results/growth_rater.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
cat("wrote tests/reference/results/growth_rater.json\n")
