# Reference values for likelihood-ratio tests between nested truth-and-bias fits:
# lme4's anova() (REML fits refitted by ML when the fixed effects differ; refit = FALSE
# compares REML likelihoods of models with the same fixed effects).
#
# Run from the repository root after `python tests/reference/make_data.py`:
#   Rscript tests/reference/r/lrt_reference.R
# Writes tests/reference/results/lrt_reference.json. Data preparation (centring) as
# tb_growth_reference.R.
source("tests/reference/r/lme4_common.R")

tb_data <- function(dat, vars) {
  d <- dat[complete.cases(dat[, vars]), ]
  M <- mean(d$alliance_patient)
  d$J <- d$alliance_therapist - M
  d$alliance_patient <- d$alliance_patient - M
  d
}

row <- function(a) {
  list(npar = a$npar, AIC = a$AIC, BIC = a$BIC, logLik = a$logLik, deviance = a$deviance,
       Chisq = a$Chisq[2], Df = a$Df[2], p_value = a[["Pr(>Chisq)"]][2])
}

out <- c(reference_header("tests/reference/r/lrt_reference.R"), list(datasets = list()))
for (name in c("small", "medium", "nearsingular")) {
  dat <- read.csv(sprintf("tests/reference/data/tb_%s.csv", name))
  d <- tb_data(dat, c("therapist", "patient", "alliance_therapist", "alliance_patient",
                      "condition", "session"))
  m1 <- lmer(J ~ alliance_patient * condition * session + (1 | therapist) +
               (1 | therapist:patient), data = d, REML = TRUE, control = ctrl)
  m0 <- lmer(J ~ alliance_patient * session + (1 | therapist) + (1 | therapist:patient),
             data = d, REML = TRUE, control = ctrl)
  m0r <- lmer(J ~ alliance_patient * condition * session + (1 | therapist:patient),
              data = d, REML = TRUE, control = ctrl)
  out$datasets[[name]] <- list(
    # anova(m0, m1): refits both with ML
    fixed = row(as.data.frame(anova(m0, m1))),
    # anova(m0r, m1, refit = FALSE): REML likelihoods, therapist variance tested
    therapist_variance = row(as.data.frame(anova(m0r, m1, refit = FALSE))))
}
write_json(out, "tests/reference/results/lrt_reference.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
cat("wrote tests/reference/results/lrt_reference.json\n")
