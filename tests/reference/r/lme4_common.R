# Shared pieces of the lme4 reference scripts (sourced, not run on its own):
# the optimiser settings, what is frozen from each fit, REML + ML fitting, the
# rater-stacked growth data exactly as alliancestats builds it, the version header, and the
# whole run of a rater-growth reference (one formula over the three growth data sets).
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

# Fits `formula` (REML and ML) to the rater-stacked growth data of each reference data set
# tests/reference/data/tb_{small,medium,nearsingular}.csv and writes the values, under the
# version header of `script`, to `path`.
write_growth_reference <- function(formula, script, path) {
  header <- reference_header(script)
  out <- c(header[1], list(formula = paste(deparse(formula, width.cutoff = 500L),
                                            collapse = " ")),
           header[-1], list(datasets = list()))
  for (name in c("small", "medium", "nearsingular")) {
    long <- growth_data(read.csv(sprintf("tests/reference/data/tb_%s.csv", name)))
    out$datasets[[name]] <- fit_both(formula, long)
  }
  write_json(out, path, digits = NA, auto_unbox = TRUE, pretty = TRUE)
  cat(sprintf("wrote %s\n", path))
}
