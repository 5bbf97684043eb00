# Reference values from lme4::lmer for the dyadic growth model with rater-specific random
# time slopes at the therapist level too: a therapist random intercept and one time slope
# per rater, all correlated, and per patient rater-specific, correlated random intercepts
# and time slopes (alliancestats:
# fit_growth(..., rater = "rater", random = "rater_slopes_therapist")).
#
# Run from the repository root:
#   Rscript tests/reference/r/growth_rater_therapist_reference.R
# Needs r-base-core, r-cran-lme4, r-cran-jsonlite (Debian). Reads the growth reference
# data tests/reference/data/tb_{small,medium,nearsingular}.csv and writes
# tests/reference/results/growth_rater_therapist.json.
#
# Data preparation exactly as alliancestats does it (and as growth_rater_reference.R): the
# two ratings are stacked (rater = therapist, patient; in that factor order), rows with a
# missing rating dropped, time = session - 1 (time_center = "first"). Without a time main
# effect in the term, rater:time codes one time column per rater.
source("tests/reference/r/lme4_common.R")

formula <- alliance ~ 0 + rater + rater:time + rater:condition + rater:time:condition +
  (1 + rater:time | therapist) + (0 + rater + rater:time | therapist:patient)

write_growth_reference(formula, "tests/reference/r/growth_rater_therapist_reference.R",
                       "tests/reference/results/growth_rater_therapist.json")
