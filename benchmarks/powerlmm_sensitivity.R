# How sharp the powerlmm check is (docs/user_guide/power_powerlmm.rst): powerlmm's
# analytic power (Satterthwaite df) of the balanced 20-therapist design of
# tests/reference/powerlmm/powerlmm_reference.R for several therapist slope SDs.
#   R_LIBS=/tmp/Rlib Rscript benchmarks/powerlmm_sensitivity.R
# (powerlmm 0.4.0 installed from source; see tests/reference/powerlmm/README.md)
library(powerlmm)
L10 <- c(1,1,2,2,3,3,4,5,6,8)
for (cs in c(0, 0.03, 0.05, 0.07)) { p <- study_parameters(n1 = 6, n2 = unequal_clusters(L10), T_end = 5,
  fixed_intercept = 4.8, fixed_slope = 0.08, sigma_subject_intercept = sqrt(0.61), sigma_subject_slope = 0.1,
  sigma_cluster_intercept = sqrt(0.18), sigma_cluster_slope = cs, sigma_error = sqrt(0.32), cor_subject = 0, cor_cluster = 0,
  effect_size = 0.5)
 cat(cs, get_power(p, df = "satterth")$power, "\n") }
