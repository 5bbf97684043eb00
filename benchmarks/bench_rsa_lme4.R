# Timings of lme4::lmer for the response-surface models of bench_rsa_call.py (the whole
# call: model frame, fit). Called with a folder of CSV files (columns wellbeing, x, y, x2,
# xy, y2, condition, session, [prior], therapist, patient); prints one JSON object:
# file tag -> list(seconds = median seconds per call, logLik = REML logLik, nobs).
#   Rscript benchmarks/bench_rsa_lme4.R DIR REPEAT [elapsed|cpu]
# "cpu" times user + system time instead of elapsed time.
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(here, "bench_timing.R"))  # dir, reps, ctrl, median_time
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
