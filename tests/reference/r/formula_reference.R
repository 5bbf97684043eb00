# The lme4 formulas alliancestats prints, run exactly as printed (pasted from
# `result.formula`), on the raw data: the printed model must be the fitted model.
#
# Run from the repository root:
#   Rscript tests/reference/r/formula_reference.R
# Needs r-base-core, r-cran-lme4, r-cran-jsonlite (Debian). Reads
# tests/reference/data/tb_small.csv and writes tests/reference/results/formula_reference.json.
#
# Data: tb_small.csv plus a text arm label (condition 0 -> "usual care", 1 -> "trained",
# so R's alphabetical reference, "trained", is not the one alliancestats was asked for),
# and a copy with non-syntactic rating names ("WAI T", "WAI C").
source("tests/reference/r/lme4_common.R")

dat <- read.csv("tests/reference/data/tb_small.csv")
dat$arm <- ifelse(dat$condition == 1, "trained", "usual care")
named <- dat
names(named)[names(named) == "alliance_therapist"] <- "WAI T"
names(named)[names(named) == "alliance_patient"] <- "WAI C"

cases <- list(
  tb_arm = list(data = dat, formula = "I(alliance_therapist - 5.3219025) ~ I(alliance_patient - 5.3219025) * relevel(factor(arm), ref = 'usual care') * session + (1 + I(alliance_patient - 5.3219025) | therapist) + (1 + I(alliance_patient - 5.3219025) || therapist:patient)"),
  growth_arm = list(data = dat, formula = "alliance_patient ~ I(session - 1) * relevel(factor(arm), ref = 'usual care') + (1 + I(session - 1) | therapist) + (1 + I(session - 1) || therapist:patient)"),
  tb_within = list(data = dat, formula = "I(alliance_therapist - 5.3219025) ~ I(alliance_patient - ave(alliance_patient, therapist, patient)) * condition + I(ave(alliance_patient, therapist, patient) - 5.3219025) + (1 | therapist) + (1 | therapist:patient)"),
  tb_names = list(data = named, formula = "I(`WAI T` - 5.3219025) ~ I(`WAI C` - 5.3219025) * condition + (1 + I(`WAI C` - 5.3219025) | therapist) + (1 + I(`WAI C` - 5.3219025) | therapist:patient)")
)

out <- c(reference_header("tests/reference/r/formula_reference.R"), list(cases = list()))
for (name in names(cases)) {
  case <- cases[[name]]
  fit <- lmer(as.formula(case$formula), data = case$data, REML = TRUE, control = ctrl)
  out$cases[[name]] <- c(list(formula = case$formula), extract(fit))  # lmer(<printed>)
}

write_json(out, "tests/reference/results/formula_reference.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
