# CPU seconds per replicate of an lme4/lmerTest simulation loop, the anchor of
# bench_power.py: for each simulated PRN data set in DIR (tb_*.csv, growth_*.csv), the fit
# and lmerTest's Satterthwaite tests of every coefficient (summary), as a power loop in R
# would do them (data simulation not included). Prints one JSON object: model -> seconds.
#   Rscript benchmarks/bench_power_lmertest.R DIR
suppressPackageStartupMessages({library(lmerTest); library(jsonlite)})
dir <- commandArgs(trailingOnly = TRUE)[1]
ctrl <- lmerControl(calc.derivs = FALSE)
read_tb <- function(f) {
  d <- read.csv(f)
  d <- d[complete.cases(d[, c("alliance_therapist", "alliance_patient")]), ]
  m <- mean(d$alliance_patient)
  transform(d, J = alliance_therapist - m, T = alliance_patient - m)
}
read_growth <- function(f) {
  d <- read.csv(f)
  d$rater <- factor(d$rater, levels = c("therapist", "patient"))
  transform(d, time = session - 1)
}
tb <- lapply(list.files(dir, "^tb_.*\\.csv$", full.names = TRUE), read_tb)
gr <- lapply(list.files(dir, "^growth_.*\\.csv$", full.names = TRUE), read_growth)
per_replicate <- function(form, data) {
  t <- system.time(for (d in data) coef(summary(lmer(form, d, control = ctrl))))
  (t[["user.self"]] + t[["sys.self"]]) / length(data)
}
out <- list(
  "truth_bias intercept" = per_replicate(
    J ~ T * condition * session + (1 | therapist) + (1 | therapist:patient), tb),
  "truth_bias slopes" = per_replicate(
    J ~ T * condition * session + (1 + T | therapist) + (1 + T | therapist:patient), tb),
  "growth slopes" = per_replicate(
    alliance ~ 0 + rater + rater:time + rater:condition + rater:time:condition +
      (1 + time | therapist) + (1 + time | therapist:patient), gr))
cat(toJSON(out, auto_unbox = TRUE, digits = 8))
