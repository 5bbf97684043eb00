# Shared pieces of the lme4 reference scripts (sourced, not run on its own):
# the optimiser settings, what is frozen from each fit, REML + ML fitting, the
# rater-stacked growth data exactly as alliancestats builds it, and the version header.
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

fit_both <- function(formula, data) {
  list(REML = extract(lmer(formula, data = data, REML = TRUE, control = ctrl)),
       ML = extract(lmer(formula, data = data, REML = FALSE, control = ctrl)))
}

# Ratings stacked by rater (therapist, patient; in that factor order), rows with a missing
# rating dropped, time = session - 1 (alliancestats' time_center = "first").
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

reference_header <- function(script) {
  list(
    generated_by = sprintf("%s (do not edit by hand)", script),
    r_version = R.version.string,
    lme4_version = as.character(packageVersion("lme4")),
    matrix_version = as.character(packageVersion("Matrix")),
    jsonlite_version = as.character(packageVersion("jsonlite"))
  )
}
