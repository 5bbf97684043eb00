# powerlmm's analytic power for the design of tests/reference/make_powerlmm_data.py.
# powerlmm 0.4.0 (github rpsychologist/powerlmm, commit a36ba76235f8, installed from
# source with `R CMD INSTALL --no-build-vignettes --library=<lib> powerlmm`; its imports
# lme4, Matrix, MASS and scales are Debian r-cran-* packages). Set POWERLMM_LIB to the
# library it was installed in. Run from the repository root:
#   POWERLMM_LIB=/path/to/lib Rscript tests/reference/r/powerlmm_reference.R
lib <- Sys.getenv("POWERLMM_LIB", unset = NA)
suppressPackageStartupMessages({
  if (is.na(lib)) library(powerlmm) else library(powerlmm, lib.loc = lib)
  library(jsonlite)
})
alloc <- read.csv("tests/reference/data/powerlmm_allocations.csv",
                  colClasses = "character")
sizes <- function(text) as.integer(strsplit(text, " ")[[1]])
# make_powerlmm_data.py: truth force 1, so the therapist-rated rating's components add up
design <- function(n2) study_parameters(
  n1 = 6, n2 = n2, T_end = 5,
  sigma_subject_intercept = sqrt(0.6^2 + 0.5^2), sigma_subject_slope = 0.05,
  sigma_cluster_intercept = sqrt(0.3^2 + 0.3^2), sigma_cluster_slope = 0.04,
  sigma_error = sqrt(0.4^2 + 0.4^2), effect_size = 0.09 * 5)
key <- paste(alloc$control, alloc$treatment, sep = "|")
cache <- list()
for (k in unique(key)) {
  parts <- strsplit(k, "|", fixed = TRUE)[[1]]
  n2 <- per_treatment(control = unequal_clusters(sizes(parts[1])),
                      treatment = unequal_clusters(sizes(parts[2])))
  cache[[k]] <- get_power(design(n2), df = "satterth")$power   # get_power(, df = "satterth")
}
each <- vapply(key, function(k) cache[[k]], numeric(1))
arm <- c(2, 3, 3, 4, 5, 6, 8, 12)
same <- get_power(design(unequal_clusters(arm)), df = "satterth")
out <- list(
  power_per_replicate = unname(each),        # analytic power of each replicate's allocation
  power_mean = mean(each),                   # expected power over the randomisation
  power_equal_arms = same$power,             # both arms unequal_clusters(arm)
  df_equal_arms = same$df,
  versions = list(R = R.version.string, powerlmm = as.character(packageVersion("powerlmm")),
                  powerlmm_commit = "a36ba76235f8cfafcb12e4fb0173e64ef0e13b60",
                  lme4 = as.character(packageVersion("lme4"))))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/results/powerlmm_reference.json")
