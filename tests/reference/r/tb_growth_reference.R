# Reference values from lme4::lmer for the truth-and-bias and growth models.
#
# Run from the repository root after `python tests/reference/make_data.py`:
#   Rscript tests/reference/r/tb_growth_reference.R
# Needs r-base-core, r-cran-lme4, r-cran-jsonlite (Debian). Writes
# tests/reference/results/tb_reference.json.
#
# The centring is done here exactly as alliancestats does it: rows with a missing value in
# any variable of the model are dropped first; then
#   truth_mean: M = mean(alliance_patient) over the analysed rows;
#               J* = alliance_therapist - M, T* = alliance_patient - M,
#               B* = alliance_projection - M (a commensurate bias variable);
#   within_dyad: T_w = alliance_patient - mean of the patient's analysed rows,
#               alliance_patient_between = patient mean - M, J* = alliance_therapist - M.
# Moderators (condition 0/1, session 1..) enter as given. For the growth model the two
# ratings are stacked (rater = therapist, patient; in that factor order), rows with a
# missing rating dropped, time = session - 1 (alliancestats' time_center = "first").
source("tests/reference/r/lme4_common.R")

tb_data <- function(dat, vars, within = FALSE) {
  d <- dat[complete.cases(dat[, vars]), ]
  M <- mean(d$alliance_patient)
  d$J <- d$alliance_therapist - M
  d$alliance_projection <- d$alliance_projection - M
  if (within) {
    pm <- ave(d$alliance_patient, d$therapist, d$patient)
    d$alliance_patient <- d$alliance_patient - pm
    d$alliance_patient_between <- pm - M
  } else {
    d$alliance_patient <- d$alliance_patient - M
  }
  list(data = d, center = M)
}

base <- c("therapist", "patient", "alliance_therapist", "alliance_patient")
out <- c(reference_header("tests/reference/r/tb_growth_reference.R"),
         list(datasets = list()))

for (name in c("small", "medium", "nearsingular")) {
  dat <- read.csv(sprintf("tests/reference/data/tb_%s.csv", name))
  res <- list()

  tb <- tb_data(dat, c(base, "condition", "session"))
  res$tb_intercept <- c(list(center = tb$center), fit_both(
    J ~ alliance_patient * condition * session + (1 | therapist) + (1 | therapist:patient),
    tb$data))
  res$tb_slopes_uncorrelated <- c(list(center = tb$center), fit_both(
    J ~ alliance_patient * condition * session + (1 + alliance_patient | therapist) +
      (1 | therapist:patient) + (0 + alliance_patient | therapist:patient), tb$data))
  res$tb_slopes <- c(list(center = tb$center), fit_both(
    J ~ alliance_patient * condition * session + (1 + alliance_patient | therapist) +
      (1 + alliance_patient | therapist:patient), tb$data))

  tbb <- tb_data(dat, c(base, "alliance_projection", "condition"))
  res$tb_bias <- c(list(center = tbb$center), fit_both(
    J ~ (alliance_patient + alliance_projection) * condition + (1 | therapist) +
      (1 | therapist:patient), tbb$data))

  tbw <- tb_data(dat, c(base, "condition"), within = TRUE)
  res$tb_within <- c(list(center = tbw$center), fit_both(
    J ~ alliance_patient * condition + alliance_patient_between + (1 | therapist) +
      (1 | therapist:patient), tbw$data))

  long <- growth_data(dat)
  fixed <- alliance ~ 0 + rater + rater:time + rater:condition + rater:time:condition
  res$growth_intercept <- fit_both(update(fixed, . ~ . + (1 | therapist) +
                                            (1 | therapist:patient)), long)
  res$growth_slopes_uncorrelated <- fit_both(update(fixed, . ~ . + (1 + time | therapist) +
    (1 | therapist:patient) + (0 + time | therapist:patient)), long)
  res$growth_slopes <- fit_both(update(fixed, . ~ . + (1 + time | therapist) +
    (1 + time | therapist:patient)), long)

  pat <- dat[!is.na(dat$alliance_patient), ]
  pat$time <- pat$session - 1
  res$growth_single <- fit_both(alliance_patient ~ time * condition + (1 + time | therapist) +
    (1 | therapist:patient) + (0 + time | therapist:patient), pat)

  out$datasets[[name]] <- res
}

write_json(out, "tests/reference/results/tb_reference.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
cat("wrote tests/reference/results/tb_reference.json\n")
