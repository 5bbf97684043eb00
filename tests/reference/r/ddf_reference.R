# Reference values for small-sample inference: lmerTest (Satterthwaite) and pbkrtest
# (Kenward-Roger) on the frozen truth-and-bias / growth data.
#
# Run from the repository root after `python tests/reference/make_data.py`:
#   Rscript tests/reference/r/ddf_reference.R
# Needs r-cran-lme4, r-cran-lmertest, r-cran-pbkrtest, r-cran-jsonlite (Debian). Writes
# tests/reference/results/ddf_reference.json.
#
# Data preparation (centring, stacking) exactly as tb_growth_reference.R. For every model:
#   coef_satterthwaite: summary(m, ddf = "Satterthwaite")$coefficients
#                       (Estimate, Std. Error, df, t value, Pr(>|t|))
#   coef_kr (REML):     summary(m, ddf = "Kenward-Roger")$coefficients
#                       (SE from pbkrtest::vcovAdj, df from pbkrtest::Lb_ddf)
#   vcov_kr (REML):     as.matrix(pbkrtest::vcovAdj(m))
#   contrasts:          contest1D(m, L, ddf = ...) for each named contrast L
#   ftests:             contestMD(m, L, ddf = ...) for each named multi-row L
#   theta:              getME(m, "theta")
#   satterthwaite_warnings: warnings lmerTest gave while fitting (singular fits)
source("tests/reference/r/lme4_common.R")
suppressPackageStartupMessages({library(lmerTest); library(pbkrtest)})

tb_data <- function(dat, vars) {
  d <- dat[complete.cases(dat[, vars]), ]
  M <- mean(d$alliance_patient)
  d$J <- d$alliance_therapist - M
  d$alliance_patient <- d$alliance_patient - M
  d
}

coef_table <- function(m, ddf) {
  co <- summary(m, ddf = ddf)$coefficients
  lapply(split(as.data.frame(co), rownames(co)), function(r) list(
    estimate = r[[1]], std_error = r[[2]], df = r[[3]], statistic = r[[4]],
    p_value = r[[5]]))
}

weights <- function(m, w) {
  # named weights -> a full-length vector over fixef(m)
  L <- setNames(numeric(length(fixef(m))), names(fixef(m)))
  L[names(w)] <- unlist(w)
  L
}

one_d <- function(m, w, ddf) {
  r <- contest1D(m, weights(m, w), ddf = ddf)
  list(weights = w, estimate = r$Estimate, std_error = r[["Std. Error"]], df = r$df,
       statistic = r[["t value"]], p_value = r[["Pr(>|t|)"]])
}

multi_d <- function(m, rows, ddf) {
  L <- do.call(rbind, lapply(rows, function(w) weights(m, w)))
  r <- contestMD(m, L, ddf = ddf)
  list(rows = rows, statistic = r[["F value"]], df_num = r$NumDF, df_denom = r$DenDF,
       p_value = r[["Pr(>F)"]])
}

fit_ddf <- function(formula, data, reml, contrasts, ftests) {
  warns <- character(0)
  m <- withCallingHandlers(
    lmer(formula, data = data, REML = reml, control = ctrl),
    warning = function(w) {warns <<- c(warns, conditionMessage(w));
                           invokeRestart("muffleWarning")})
  out <- list(theta = unname(getME(m, "theta")), isSingular = isSingular(m),
              satterthwaite_warnings = warns,
              vcov_varpar = unname(m@vcov_varpar),
              coef_satterthwaite = coef_table(m, "Satterthwaite"),
              contrasts_satterthwaite = lapply(contrasts, function(w) one_d(m, w, "Satterthwaite")),
              ftests_satterthwaite = lapply(ftests, function(r) multi_d(m, r, "Satterthwaite")))
  if (reml) {
    out$coef_kr <- coef_table(m, "Kenward-Roger")
    out$vcov_kr <- unname(as.matrix(vcovAdj(m)))
    out$contrasts_kr <- lapply(contrasts, function(w) one_d(m, w, "Kenward-Roger"))
    out$ftests_kr <- lapply(ftests, function(r) multi_d(m, r, "Kenward-Roger"))
  }
  out
}

both <- function(formula, data, contrasts, ftests, ml = TRUE) {
  res <- list(REML = fit_ddf(formula, data, TRUE, contrasts, ftests))
  if (ml) res$ML <- fit_ddf(formula, data, FALSE, contrasts, ftests)
  res
}

# truth force and directional bias at condition = 1, session = 6 (emmeans-style contrasts)
tb_contrasts <- list(
  truth_force_c1_s6 = list(alliance_patient = 1, `alliance_patient:condition` = 1,
                           `alliance_patient:session` = 6,
                           `alliance_patient:condition:session` = 6),
  bias_c1_s6 = list(`(Intercept)` = 1, condition = 1, session = 6, `condition:session` = 6),
  condition_effect_s6 = list(condition = 1, `condition:session` = 6))
tb_ftests <- list(condition_terms = list(
  list(condition = 1), list(`alliance_patient:condition` = 1),
  list(`condition:session` = 1), list(`alliance_patient:condition:session` = 1)))
growth_contrasts <- list(
  training_on_growth_patient = list(`raterpatient:time:condition` = 1),
  growth_difference_c1 = list(`raterpatient:time` = 1, `raterpatient:time:condition` = 1,
                              `ratertherapist:time` = -1,
                              `ratertherapist:time:condition` = -1),
  did = list(`raterpatient:time:condition` = 1, `ratertherapist:time:condition` = -1))
growth_ftests <- list(training = list(list(`ratertherapist:condition` = 1),
                                      list(`raterpatient:condition` = 1),
                                      list(`ratertherapist:time:condition` = 1),
                                      list(`raterpatient:time:condition` = 1)))

out <- c(reference_header("tests/reference/r/ddf_reference.R"),
         list(lmerTest_version = as.character(packageVersion("lmerTest")),
              pbkrtest_version = as.character(packageVersion("pbkrtest")),
              numDeriv_version = as.character(packageVersion("numDeriv")),
              datasets = list()))
tb_fixed <- J ~ alliance_patient * condition * session
for (name in c("small", "medium", "nearsingular")) {
  dat <- read.csv(sprintf("tests/reference/data/tb_%s.csv", name))
  tb <- tb_data(dat, c("therapist", "patient", "alliance_therapist", "alliance_patient",
                       "condition", "session"))
  res <- list()
  res$tb_intercept <- both(update(tb_fixed, . ~ . + (1 | therapist) + (1 | therapist:patient)),
                           tb, tb_contrasts, tb_ftests)
  res$tb_slopes_uncorrelated <- both(update(tb_fixed, . ~ . + (1 + alliance_patient | therapist) +
      (1 | therapist:patient) + (0 + alliance_patient | therapist:patient)),
    tb, tb_contrasts, tb_ftests, ml = FALSE)
  res$tb_slopes <- both(update(tb_fixed, . ~ . + (1 + alliance_patient | therapist) +
      (1 + alliance_patient | therapist:patient)), tb, tb_contrasts, tb_ftests, ml = FALSE)
  long <- growth_data(dat)
  gfixed <- alliance ~ 0 + rater + rater:time + rater:condition + rater:time:condition
  res$growth_slopes <- both(update(gfixed, . ~ . + (1 + time | therapist) +
      (1 + time | therapist:patient)), long, growth_contrasts, growth_ftests, ml = FALSE)
  out$datasets[[name]] <- res
}

write_json(out, "tests/reference/results/ddf_reference.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
cat("wrote tests/reference/results/ddf_reference.json\n")
