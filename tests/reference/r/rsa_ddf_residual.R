# Reference values for small-sample inference and residual structures of alliancestats'
# multilevel response surface analysis: lmerTest / pbkrtest on a1..a5 of the lagged RSA,
# and nlme::lme with AR(1) residuals on the same lagged data.
#
# Run from the repository root (the data come from `python tests/reference/make_rsa_data.py`):
#   Rscript tests/reference/r/rsa_ddf_residual.R
# Needs r-cran-lme4, r-cran-lmertest, r-cran-pbkrtest, r-cran-nlme, r-cran-jsonlite
# (Debian). Writes tests/reference/results/rsa_ddf_residual.json. Do not edit that file
# by hand.
#
# Computed here independently of alliancestats: the lags (merging on session - 1 within
# therapist:patient, so a missed session gives no lagged pair), pooled centring of the
# lagged x and y over the analysed rows, the polynomial columns, and a1..a5 as
# contest1D(m, L) with L over the fixed effects:
#   a1 = b1 + b2, a2 = b3 + b4 + b5, a3 = b1 - b2, a4 = b3 - b4 + b5, a5 = b3 - b5.
# The equality of the surfaces of two conditions is contestMD(m, L) with the five rows
# b_k(condition 1) - b_k(condition 0).
# AR(1): nlme corAR1(form = ~ session | therapist/patient) on the session values of the
# analysed rows (a row dropped for lack of a lagged pair leaves a gap of 2 sessions, which
# nlme turns into corARMA(p = 1) on the integer session values: phi^|s_i - s_j|).
source("tests/reference/r/lme4_common.R")
suppressPackageStartupMessages({library(lmerTest); library(pbkrtest); library(nlme)})

ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.2, rhoend = 1e-10))
A <- rbind(a1 = c(1, 1, 0, 0, 0), a2 = c(0, 0, 1, 1, 1), a3 = c(1, -1, 0, 0, 0),
           a4 = c(0, 0, 1, -1, 1), a5 = c(0, 0, 1, 0, -1))

long <- read.csv("tests/reference/data/rsa_longitudinal.csv")
prev <- long[, c("therapist", "patient", "session", "x", "y", "z")]
names(prev)[4:6] <- c("x_lag1", "y_lag1", "z_lag1")
prev$session <- prev$session + 1
merged <- merge(long, prev, by = c("therapist", "patient", "session"), all.x = TRUE)
lag <- merged[complete.cases(merged[, c("z", "x_lag1", "y_lag1")]), ]
m <- mean(c(lag$x_lag1, lag$y_lag1))
lag$X <- lag$x_lag1 - m; lag$Y <- lag$y_lag1 - m
lag$X2 <- lag$X^2; lag$XY <- lag$X * lag$Y; lag$Y2 <- lag$Y^2
lag$d0 <- as.numeric(lag$condition == 0); lag$d1 <- as.numeric(lag$condition == 1)
lag <- lag[order(lag$therapist, lag$patient, lag$session), ]

one_d <- function(fit, L, ddf) {
  rows <- lapply(seq_len(nrow(L)), function(i) {
    r <- contest1D(fit, L[i, ], ddf = ddf)
    c(estimate = r$Estimate, std_error = r[["Std. Error"]], df = r$df,
      statistic = r[["t value"]], p_value = r[["Pr(>|t|)"]])
  })
  out <- as.data.frame(do.call(rbind, rows))
  as.list(out)
}
multi_d <- function(fit, L, ddf) {
  r <- contestMD(fit, L, ddf = ddf)
  list(statistic = r[["F value"]], df_num = r$NumDF, df_denom = r$DenDF,
       p_value = r[["Pr(>F)"]])
}

# One surface: z ~ X + Y + X2 + XY + Y2 + (1 | therapist) + (1 | therapist:patient)
f1 <- z ~ X + Y + X2 + XY + Y2 + (1 | therapist) + (1 | therapist:patient)
L1 <- cbind(0, A)
one <- function(reml) {
  fit <- lmer(f1, data = lag, REML = reml, control = ctrl)
  out <- list(fixef = unname(fixef(fit)), logLik = as.numeric(logLik(fit)),
              nobs = nobs(fit),
              surface_satterthwaite = one_d(fit, L1, "Satterthwaite"),
              coef_satterthwaite = unname(summary(fit, ddf = "Satterthwaite")$coefficients[, "df"]))
  if (reml) {
    out$surface_kr <- one_d(fit, L1, "Kenward-Roger")
    out$coef_kr_se <- unname(summary(fit, ddf = "Kenward-Roger")$coefficients[, "Std. Error"])
  }
  out
}

# One surface per condition (intercept per level, pooled variance components); fixef order:
# (Intercept), d1, X:d0, Y:d0, X2:d0, XY:d0, Y2:d0, X:d1, Y:d1, X2:d1, XY:d1, Y2:d1
fby <- z ~ d1 + X:d0 + Y:d0 + X2:d0 + XY:d0 + Y2:d0 + X:d1 + Y:d1 + X2:d1 + XY:d1 + Y2:d1 +
  (1 | therapist) + (1 | therapist:patient)
Lc0 <- cbind(0, 0, A, matrix(0, 5, 5)); Lc1 <- cbind(0, 0, matrix(0, 5, 5), A)
E <- cbind(0, 0, -diag(5), diag(5))
by_cond <- function() {
  fit <- lmer(fby, data = lag, REML = TRUE, control = ctrl)
  list(fixef = unname(fixef(fit)), logLik = as.numeric(logLik(fit)),
       surface0_satterthwaite = one_d(fit, Lc0, "Satterthwaite"),
       surface1_satterthwaite = one_d(fit, Lc1, "Satterthwaite"),
       difference_satterthwaite = one_d(fit, Lc1 - Lc0, "Satterthwaite"),
       difference_kr = one_d(fit, Lc1 - Lc0, "Kenward-Roger"),
       equality_satterthwaite = multi_d(fit, E, "Satterthwaite"),
       equality_kr = multi_d(fit, E, "Kenward-Roger"))
}

# AR(1) residuals over sessions within patients (nlme).
nctrl <- lmeControl(maxIter = 500, msMaxIter = 500, niterEM = 100, msMaxEval = 2000,
                    tolerance = 1e-10, msTol = 1e-12, returnObject = TRUE)
ar1 <- function(method) {
  fit <- lme(z ~ X + Y + X2 + XY + Y2, random = ~ 1 | therapist/patient, data = lag,
             correlation = corAR1(form = ~ session | therapist/patient), method = method,
             control = nctrl)
  b <- fixef(fit); V <- as.matrix(vcov(fit))
  list(fixef = unname(b), se = unname(sqrt(diag(V))), logLik = as.numeric(logLik(fit)),
       df = attr(logLik(fit), "df"), sigma = fit$sigma,
       phi = unname(coef(fit$modelStruct$corStruct, unconstrained = FALSE)),
       surface = unname(drop(L1 %*% b)),
       surface_se = unname(sqrt(diag(L1 %*% V %*% t(L1)))), nobs = nobs(fit))
}

out <- c(reference_header("tests/reference/r/rsa_ddf_residual.R"),
         list(lmerTest_version = as.character(packageVersion("lmerTest")),
              pbkrtest_version = as.character(packageVersion("pbkrtest")),
              nlme_version = as.character(packageVersion("nlme")),
              center = m, rows = nrow(lag),
              lagged_reml = one(TRUE), lagged_ml = one(FALSE), lagged_by_reml = by_cond(),
              ar1_reml = ar1("REML"), ar1_ml = ar1("ML")))
write_json(out, "tests/reference/results/rsa_ddf_residual.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
cat("wrote tests/reference/results/rsa_ddf_residual.json\n")
