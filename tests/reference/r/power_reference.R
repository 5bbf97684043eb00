# lme4/lmerTest refits of the data sets alliancestats.power simulates (the power check).
#
# Run from the repository root:
#   python tests/reference/make_power_data.py /tmp/powerref
#   Rscript tests/reference/r/power_reference.R /tmp/powerref
# Needs r-base-core, r-cran-lme4, r-cran-lmertest, r-cran-jsonlite (Debian). Writes
# tests/reference/results/power_reference.json: per scenario and replicate the tested
# estimate(s), their SE, the Wald z p-value (as alliancestats tests) and lmerTest's
# Satterthwaite df and p-value, and isSingular.
#
# Models as alliancestats.power fits them (REML):
#   truth_bias: J* ~ T* * condition * session + (1 | therapist) + (1 | therapist:patient),
#     J* = alliance_therapist - M, T* = alliance_patient - M, M = mean(alliance_patient)
#     over the replicate's rows; tested: T*:condition:session.
#   growth: ratings stacked by rater, time = session - 1,
#     alliance ~ 0 + rater + rater:condition + rater:time + rater:time:condition
#       + (1 + time | therapist) + (1 + time | therapist:patient);
#     tested: rater:time:condition for each rater.
# Each model is fitted with bobyqa and with Nelder-Mead and the fit with the higher REML
# log-likelihood is kept (lme4's allFit practice): on these mostly singular growth fits
# bobyqa alone stops early (e.g. logLik -515.22 where Nelder-Mead and alliancestats reach
# -500.07), which shifts SEs by up to 19 %.
source("tests/reference/r/lme4_common.R")
suppressPackageStartupMessages(library(lmerTest))

args <- commandArgs(trailingOnly = TRUE)
dir <- if (length(args)) args[[1]] else "/tmp/alliancestats-power-reference"

ctrl_nm <- lmerControl(optimizer = "Nelder_Mead", check.conv.singular = "ignore",
                       optCtrl = list(maxfun = 1e5))

best_fit <- function(formula, data) {
  fits <- list(suppressWarnings(lmerTest::lmer(formula, data = data, REML = TRUE,
                                               control = ctrl)),
               suppressWarnings(lmerTest::lmer(formula, data = data, REML = TRUE,
                                               control = ctrl_nm)))
  fits[[which.max(sapply(fits, function(f) as.numeric(logLik(f))))]]
}

tested <- function(fit, terms) {
  co <- summary(fit)$coefficients                       # lmerTest: Satterthwaite df
  est <- co[terms, "Estimate"]; se <- co[terms, "Std. Error"]
  list(estimate = unname(est), se = unname(se),
       p_wald = unname(2 * pnorm(-abs(est / se))),     # the Wald z test of alliancestats
       df_satterthwaite = unname(co[terms, "df"]),
       p_satterthwaite = unname(co[terms, "Pr(>|t|)"]),
       singular = isSingular(fit),
       logLik = as.numeric(logLik(fit)))                # logLik(fit), REML
}

fit_tb <- function(d) {
  M <- mean(d$alliance_patient)
  d$J <- d$alliance_therapist - M
  d$T <- d$alliance_patient - M
  fit <- best_fit(J ~ T * condition * session + (1 | therapist) + (1 | therapist:patient),
                  d)
  tested(fit, "T:condition:session")
}

fit_growth <- function(d) {
  long <- growth_data(d)
  fit <- best_fit(alliance ~ 0 + rater + rater:condition + rater:time +
                    rater:time:condition + (1 + time | therapist) +
                    (1 + time | therapist:patient), long)
  tested(fit, c("ratertherapist:condition:time", "raterpatient:condition:time"))
}

scenarios <- c(tb_alt = "tb", tb_null = "tb", growth_dropout_alt = "growth",
               growth_dropout_null = "growth")
out <- reference_header("tests/reference/r/power_reference.R")
out$lmertest_version <- as.character(packageVersion("lmerTest"))
for (name in names(scenarios)) {
  dat <- read.csv(file.path(dir, paste0(name, ".csv")))
  fitter <- if (scenarios[[name]] == "tb") fit_tb else fit_growth
  t0 <- proc.time()[["elapsed"]]
  reps <- lapply(split(dat, dat$replicate), fitter)
  elapsed <- proc.time()[["elapsed"]] - t0
  out[[name]] <- list(
    replicate = as.integer(names(reps)),
    estimate = t(sapply(reps, `[[`, "estimate")),
    se = t(sapply(reps, `[[`, "se")),
    p_wald = t(sapply(reps, `[[`, "p_wald")),
    df_satterthwaite = t(sapply(reps, `[[`, "df_satterthwaite")),
    p_satterthwaite = t(sapply(reps, `[[`, "p_satterthwaite")),
    singular = unname(sapply(reps, `[[`, "singular")),
    logLik = unname(sapply(reps, `[[`, "logLik")),
    seconds_per_fit = elapsed / length(reps))
  cat(sprintf("%s: %d fits, %.3f s each\n", name, length(reps), elapsed / length(reps)))
}
write(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = FALSE),
      "tests/reference/results/power_reference.json")
