# Analytic power of powerlmm (Magnusson) for the designs of tests/test_power_powerlmm.py.
#
# powerlmm 0.4.0 is installed from its source (github.com/rpsychologist/powerlmm, commit
# a36ba76235f8cfafcb12e4fb0173e64ef0e13b60; imports lme4, Matrix, MASS, scales):
#   R CMD INSTALL -l /tmp/Rlib powerlmm
#   R_LIBS=/tmp/Rlib Rscript tests/reference/powerlmm/powerlmm_reference.R
# writes tests/reference/powerlmm/powerlmm_reference.json.
#
# Model (powerlmm's three-level growth model; the "growth_single" power design):
#   y ~ time * treatment + (1 + time | therapist) + (1 + time | therapist:patient),
#   time = 0..5 (six sessions), independent random intercepts and slopes
#   (cor_cluster = cor_subject = 0), effect_size = slope difference x T_end.
# The SDs are those of alliancestats' therapist-rated alliance under the simulator
# parameters recorded in "params" (see growth_single_components in
# alliancestats/power/_designs.py; the test checks they agree).
#
# Caseloads: powerlmm's unequal_clusters() gives each arm the same cluster sizes
# ("balanced"). alliancestats randomises arms over the listed caseloads, so the split of
# caseloads between arms varies between simulated trials; the power it estimates is the
# average over random splits. Both are stored: "balanced" and "splits" (the mean of
# powerlmm's power over n_splits random splits drawn as alliancestats allocates arms:
# n %/% 2 therapists trained, chosen at random).
suppressPackageStartupMessages({library(powerlmm); library(jsonlite)})

out_file <- file.path("tests", "reference", "powerlmm", "powerlmm_reference.json")
n_sessions <- 6
T_end <- n_sessions - 1
caseloads_arm <- c(1, 1, 2, 2, 3, 3, 4, 5, 6, 8)  # 35 patients in 10 therapists per arm
params <- list(gamma10 = 1.0, gamma13 = 0.0, gamma03 = 0.1, sd_truth_growth = 0.1,
               sd_truth_growth_therapist = 0.05)
sd <- list(sigma_cluster_intercept = sqrt(0.3^2 + 0.3^2),   # sd_judgment_therapist, sd_truth_therapist
           sigma_cluster_slope = 0.05,                      # gamma10 * sd_truth_growth_therapist
           sigma_subject_intercept = sqrt(0.5^2 + 0.6^2),   # sd_judgment_patient, sd_truth_patient
           sigma_subject_slope = 0.1,                       # gamma10 * sd_truth_growth
           sigma_error = sqrt(0.4^2 + 0.4^2))               # sd_judgment_residual, sd_truth_residual
fixed <- list(fixed_intercept = 5.2 - 0.4, fixed_slope = 0.03 + 1.0 * 0.05)
slope_difference <- params$gamma03
settings <- list(
  list(name = "T20", copies = 2, dropout = 0.0),
  list(name = "T40", copies = 4, dropout = 0.0),
  list(name = "T20_dropout", copies = 2, dropout = 0.1)
)
n_splits <- 100
alpha <- 0.05

design <- function(control, treatment, effect_size, hazard) {
  dropout <- if (hazard > 0) dropout_manual(1 - (1 - hazard)^(0:T_end)) else 0
  n2 <- if (identical(control, treatment)) unequal_clusters(control) else
    per_treatment(control = unequal_clusters(control), treatment = unequal_clusters(treatment))
  do.call(study_parameters, c(list(n1 = n_sessions, n2 = n2, T_end = T_end,
                                   cor_subject = 0, cor_cluster = 0,
                                   effect_size = effect_size, dropout = dropout),
                              fixed, sd))
}
both_df <- function(p) {
  b <- get_power(p, df = "between", alpha = alpha)
  s <- get_power(p, df = "satterth", alpha = alpha)
  c(between = b$power, between_df = b$df, satterth = s$power, satterth_df = s$df,
    se = b$se)
}

set.seed(20261202)
results <- list()
for (st in settings) {
  arm <- rep(caseloads_arm, st$copies / 2)
  caseloads <- rep(caseloads_arm, st$copies)           # the list given to alliancestats
  res <- list(name = st$name, caseloads = caseloads, dropout_hazard = st$dropout,
              n_therapists = length(caseloads), n_patients = sum(caseloads))
  for (eff in c(effect = slope_difference * T_end, null = 0)) {
    bal <- both_df(design(arm, arm, eff, st$dropout))
    n <- length(caseloads); n_trained <- n %/% 2
    sp <- replicate(n_splits, {
      trained <- sample(n, n_trained)
      both_df(design(caseloads[-trained], caseloads[trained], eff, st$dropout))
    })
    key <- if (eff == 0) "null" else "effect"
    res[[key]] <- list(effect_size = unname(eff), balanced = as.list(bal),
                       splits_mean = as.list(rowMeans(sp)),
                       splits_sd = as.list(apply(sp, 1, sd)), n_splits = n_splits)
  }
  results[[st$name]] <- res
}

meta <- list(R = R.version.string,
             powerlmm = as.character(packageVersion("powerlmm")),
             powerlmm_commit = "a36ba76235f8cfafcb12e4fb0173e64ef0e13b60",
             lme4 = as.character(packageVersion("lme4")),
             Matrix = as.character(packageVersion("Matrix")),
             seed = 20261202, alpha = alpha, n_sessions = n_sessions, T_end = T_end,
             params = params, sd = sd, fixed = fixed, slope_difference = slope_difference)
write_json(list(meta = meta, settings = results), out_file, auto_unbox = TRUE,
           digits = NA, pretty = TRUE)
cat("wrote", out_file, "\n")
