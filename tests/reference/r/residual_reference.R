# Reference values from nlme::lme for residual structures (alliancestats `residual=`):
# AR(1) residuals over sessions within patients, and rater-specific residual variances with
# correlated rater residuals at the same session (rater-stacked growth data).
#
# Run from the repository root:
#   Rscript tests/reference/r/residual_reference.R
# Needs r-base-core, r-cran-nlme, r-cran-jsonlite (Debian). Reads
# tests/reference/data/tb_{small,medium}.csv and writes
# tests/reference/results/residual_reference.json.
#
# Data preparation exactly as tb_growth_reference.R (and alliancestats): truth-and-bias
# centring on the truth mean over the analysed rows; growth ratings stacked by rater
# (therapist, patient; in that order), rows with a missing rating dropped, time =
# session - 1. In tb_medium ~8 % of patient ratings are missing, so the analysed sessions
# of a patient have gaps (a missed session is a lag of 2).
#
# AR(1): nlme corAR1(form = ~ session | therapist/patient). With gaps nlme's corAR1 turns
# itself into corARMA(p = 1, q = 0) on the integer session values, i.e. correlation
# phi^|s_i - s_j| by session value (not by row position); the same fit is also made with
# corCAR1 (continuous time, phi >= 0) as a check of that reading (`*_car1` entries).
suppressPackageStartupMessages({library(nlme); library(jsonlite)})
source("tests/reference/r/lme4_common.R")

ctrl <- lmeControl(maxIter = 500, msMaxIter = 500, niterEM = 100, msMaxEval = 2000,
                   tolerance = 1e-10, msTol = 1e-12, returnObject = TRUE)

residual_params <- function(fit) {
  out <- list()
  cs <- fit$modelStruct$corStruct
  if (!is.null(cs)) {
    out$correlation <- unname(coef(cs, unconstrained = FALSE))  # coef(corStruct)
  }
  vs <- fit$modelStruct$varStruct
  if (!is.null(vs)) {
    w <- coef(vs, unconstrained = FALSE, allCoef = TRUE)       # varIdent SD ratios
    out$sd_ratio <- as.list(w)
  }
  # intervals(fit, which = "var-cov"): 95% Wald intervals on nlme's unconstrained scale
  iv <- tryCatch(intervals(fit, which = "var-cov"), error = function(e) NULL)
  if (!is.null(iv)) {
    if (!is.null(iv$corStruct)) out$correlation_ci <- unname(iv$corStruct[1, c(1, 3)])
    if (!is.null(iv$varStruct)) out$sd_ratio_ci <- unname(iv$varStruct[1, c(1, 3)])
  }
  out
}

extract_lme <- function(fit) {
  list(
    fixef = as.list(fixef(fit)),                          # fixef(fit)
    se = as.list(sqrt(diag(vcov(fit)))),                  # sqrt(diag(vcov(fit)))
    sigma = fit$sigma,                                    # fit$sigma
    logLik = as.numeric(logLik(fit)),                     # logLik(fit)
    df = attr(logLik(fit), "df"),                         # attr(logLik(fit), "df")
    # random-effect covariance per level: as.matrix(reStruct[[level]]) * sigma^2
    random_cov = lapply(as.list(fit$modelStruct$reStruct),
                        function(x) unname(as.matrix(x) * fit$sigma^2)),
    residual = residual_params(fit),
    nobs = nobs(fit)
  )
}

fit_both_lme <- function(fixed, random, data, ...) {
  reml <- lme(fixed, random = random, data = data, method = "REML", control = ctrl, ...)
  ml <- lme(fixed, random = random, data = data, method = "ML", control = ctrl, ...)
  list(REML = extract_lme(reml), ML = extract_lme(ml))
}

tb_data <- function(dat) {
  d <- dat[complete.cases(dat[, c("therapist", "patient", "alliance_therapist",
                                  "alliance_patient", "condition", "session")]), ]
  M <- mean(d$alliance_patient)
  d$J <- d$alliance_therapist - M
  d$alliance_patient <- d$alliance_patient - M
  list(data = d, center = M)
}

header <- reference_header("tests/reference/r/residual_reference.R")
header$nlme_version <- as.character(packageVersion("nlme"))
out <- c(header, list(datasets = list()))

for (name in c("small", "medium")) {
  dat <- read.csv(sprintf("tests/reference/data/tb_%s.csv", name))
  res <- list()
  tb <- tb_data(dat)
  tbf <- J ~ alliance_patient * condition * session
  # fit_truth_bias(..., moderators = ["condition", "session"], time = "session",
  #                residual = "ar1")
  res$tb_ar1 <- c(list(center = tb$center), fit_both_lme(
    tbf, ~ 1 | therapist/patient, tb$data,
    correlation = corAR1(form = ~ session | therapist/patient)))
  res$tb_car1 <- c(list(center = tb$center), fit_both_lme(
    tbf, ~ 1 | therapist/patient, tb$data,
    correlation = corCAR1(form = ~ session | therapist/patient)))

  long <- growth_data(dat)
  gf <- alliance ~ 0 + rater + rater:time + rater:condition + rater:time:condition
  # fit_growth(..., rater = "rater", random = "intercept", residual = "rater")
  res$growth_rater <- fit_both_lme(
    gf, ~ 1 | therapist/patient, long, weights = varIdent(form = ~ 1 | rater),
    correlation = corCompSymm(form = ~ 1 | therapist/patient/session))
  # fit_growth(..., rater = "rater", random = "intercept", residual = "ar1"): AR(1) within
  # each rater's series of a patient
  res$growth_ar1 <- fit_both_lme(
    gf, ~ 1 | therapist/patient, long,
    correlation = corAR1(form = ~ session | therapist/patient/rater))
  # the patient ratings alone, with a random time slope per therapist
  pat <- dat[!is.na(dat$alliance_patient), ]
  pat$time <- pat$session - 1
  # fit_mixed with (1 + time | therapist) + (1 | therapist:patient) and residual = "ar1"
  res$growth_single_ar1 <- fit_both_lme(
    alliance_patient ~ time * condition, list(therapist = ~ 1 + time, patient = ~ 1),
    pat, correlation = corAR1(form = ~ session | therapist/patient))
  out$datasets[[name]] <- res
}

write_json(out, "tests/reference/results/residual_reference.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
cat("wrote tests/reference/results/residual_reference.json\n")
