# Timings of lme4::lmer for the response-surface models of bench_rsa_call.py (the whole
# call: model frame, fit). Called with a folder of CSV files (columns wellbeing, x, y, x2,
# xy, y2, condition, session, [prior], therapist, patient); prints one JSON object:
# file tag -> list(seconds = median seconds per call, logLik = REML logLik, nobs).
#   Rscript benchmarks/bench_rsa_lme4.R DIR REPEAT [elapsed|cpu]
# "cpu" times user + system time instead of elapsed time.
suppressPackageStartupMessages({library(lme4); library(jsonlite)})
args <- commandArgs(trailingOnly = TRUE)
dir <- args[1]; reps <- as.integer(args[2])
clock <- if (length(args) >= 3 && args[3] == "cpu") function(t) t[["user.self"]] +
  t[["sys.self"]] else function(t) t[["elapsed"]]
ctrl <- lmerControl(calc.derivs = FALSE)  # lme4's default optimiser; no post-fit Hessian
median_time <- function(f) {
  # warm-up; then each of `reps` measurements times a batch of calls lasting >= 0.2 s
  # (processor time is counted in clock ticks of 10 ms)
  batch <- max(1L, ceiling(0.2 / max(system.time(f())[["elapsed"]], 1e-3)))
  median(vapply(seq_len(reps), function(i)
    clock(system.time(for (j in seq_len(batch)) f())) / batch, numeric(1)))
}
out <- list()
for (file in list.files(dir, pattern = "\\.csv$")) {
  tag <- sub("\\.csv$", "", file)
  d <- read.csv(file.path(dir, file))
  d$condition <- factor(d$condition)
  rhs <- "(x + y + x2 + xy + y2) * condition + session"
  if ("prior" %in% names(d)) rhs <- paste(rhs, "+ prior")
  form <- as.formula(paste("wellbeing ~", rhs, "+ (1 | therapist) + (1 | therapist:patient)"))
  f <- function() lmer(form, d, control = ctrl)
  fit <- f()
  out[[tag]] <- list(seconds = median_time(f), logLik = as.numeric(logLik(fit)),
                     nobs = nobs(fit))
}
cat(toJSON(out, auto_unbox = TRUE, digits = 12))
