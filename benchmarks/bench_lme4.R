# Timings of lme4::lmer for the models of bench_models.py (the whole call: model frame,
# fit, as a user makes it). Called by bench_models.py with a folder of CSV files; prints
# one JSON object: case -> median seconds.
#   Rscript benchmarks/bench_lme4.R DIR REPEAT [elapsed|cpu]
# "cpu" times user + system time instead of elapsed time.
here <- dirname(sub("^--file=", "", grep("^--file=", commandArgs(FALSE), value = TRUE)[1]))
source(file.path(here, "bench_timing.R"))  # dir, reps, ctrl, median_time
out <- list()
for (size in list.files(dir, pattern = "^tb_.*\\.csv$")) {
  tag <- sub("^tb_(.*)\\.csv$", "\\1", size)
  tb <- read.csv(file.path(dir, size))
  tb <- tb[complete.cases(tb[, c("alliance_therapist", "alliance_patient")]), ]
  m <- mean(tb$alliance_patient)
  tb$J <- tb$alliance_therapist - m; tb$T <- tb$alliance_patient - m
  out[[paste0(tag, ": T&B intercept")]] <- median_time(function()
    lmer(J ~ T + (1 | therapist) + (1 | therapist:patient), tb, control = ctrl))
  out[[paste0(tag, ": T&B condition x session")]] <- median_time(function()
    lmer(J ~ T * condition * session + (1 | therapist) + (1 | therapist:patient), tb,
         control = ctrl))
  out[[paste0(tag, ": T&B slopes")]] <- median_time(function()
    lmer(J ~ T * condition * session + (1 + T | therapist) + (1 + T | therapist:patient),
         tb, control = ctrl))
  gr <- read.csv(file.path(dir, paste0("growth_", tag, ".csv")))
  gr$rater <- factor(gr$rater, levels = c("therapist", "patient"))
  gr$time <- gr$session - 1
  out[[paste0(tag, ": growth slopes")]] <- median_time(function()
    lmer(alliance ~ 0 + rater + rater:time + rater:condition + rater:time:condition +
           (1 + time | therapist) + (1 + time | therapist:patient), gr, control = ctrl))
  rs <- read.csv(file.path(dir, paste0("rsa_", tag, ".csv")))
  out[[paste0(tag, ": lagged RSA by condition")]] <- median_time(function()
    lmer(wellbeing ~ (x + y + x2 + xy + y2) * condition + (1 | therapist) +
           (1 | therapist:patient), rs, control = ctrl))
}
cat(toJSON(out, auto_unbox = TRUE, digits = 8))
