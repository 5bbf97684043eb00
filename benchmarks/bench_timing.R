# Shared by the lme4 timing scripts (bench_lme4.R, bench_rsa_lme4.R): their command line
# (DIR REPEAT [elapsed|cpu]), lme4's control without the post-fit Hessian, and the median
# time per call. Sourced, not run: it sets `dir`, `reps`, `ctrl` and `median_time`.
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
