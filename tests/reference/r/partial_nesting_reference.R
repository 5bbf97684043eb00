# Partially nested trials (therapists in the trained arm only; Bauer, Sterba & Hallfors
# 2008; powerlmm's partially_nested): the therapist random effects enter through the
# arm indicator, and each untrained patient is a "therapist" unit of its own with a zero
# design row, so the untrained arm has no therapist variance.
# Data: tests/reference/make_partial_data.py -> data/partial_nested.csv
# Run from the repository root: Rscript tests/reference/r/partial_nesting_reference.R
suppressPackageStartupMessages({library(lme4); library(lmerTest); library(jsonlite)})
ctrl <- lmerControl(optimizer = "bobyqa", check.conv.singular = "ignore",
                    optCtrl = list(maxfun = 1e5))
dat <- read.csv("tests/reference/data/partial_nested.csv")
m <- mean(dat$alliance_patient)
dat$J <- dat$alliance_therapist - m
dat$T <- dat$alliance_patient - m

freeze <- function(fit) {
  co <- summary(fit)$coefficients                      # lmerTest: Satterthwaite df
  list(fixef = unname(fixef(fit)), names = names(fixef(fit)),
       se = unname(sqrt(diag(as.matrix(vcov(fit))))),
       df = unname(co[, "df"]), logLik = as.numeric(logLik(fit)),
       theta = unname(getME(fit, "theta")), isSingular = isSingular(fit))
}

out <- list()
# truth and bias, random intercepts: (1 | therapist) in the trained arm only
out$tb_intercept <- freeze(lmer(J ~ T * condition * session + (0 + condition | therapist) +
                                  (1 | therapist:patient), data = dat, REML = TRUE,
                                control = ctrl))
# truth and bias, random truth force (correlated) at both levels
out$tb_slopes <- freeze(lmer(J ~ T * condition * session +
                               (0 + condition + condition:T | therapist) +
                               (1 + T | therapist:patient), data = dat, REML = TRUE,
                             control = ctrl))
# dyadic growth, rater-specific patient effects; therapist intercept in the trained arm
long <- rbind(
  data.frame(dat[, c("therapist", "patient", "session", "condition")],
             rater = "therapist", alliance = dat$alliance_therapist),
  data.frame(dat[, c("therapist", "patient", "session", "condition")],
             rater = "patient", alliance = dat$alliance_patient))
long$rater <- factor(long$rater, levels = c("therapist", "patient"))
long$time <- long$session - min(long$session)
out$growth_rater_slopes <- freeze(lmer(
  alliance ~ 0 + rater + rater:condition + rater:time + rater:time:condition +
    (0 + condition | therapist) + (0 + rater + rater:time | therapist:patient),
  data = long, REML = TRUE, control = ctrl))
out$versions <- list(R = R.version.string, lme4 = as.character(packageVersion("lme4")),
                     lmerTest = as.character(packageVersion("lmerTest")))
writeLines(toJSON(out, digits = NA, auto_unbox = TRUE, pretty = TRUE),
           "tests/reference/results/partial_nesting.json")
