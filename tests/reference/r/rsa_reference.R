# Reference values for alliancestats' response surface analysis: R lm, nls and lme4::lmer.
#
# Run from the repository root after `python tests/reference/make_rsa_data.py`:
#   Rscript tests/reference/r/rsa_reference.R
# Needs r-base-core, r-cran-lme4, r-cran-sandwich, r-cran-jsonlite (Debian). Writes
# tests/reference/results/rsa_single.json and rsa_multilevel.json. Do not edit those files
# by hand.
#
# Everything is computed here independently of alliancestats: pooled centring (one mean
# of the stacked x and y over the analysed rows), the polynomial columns, the lags (by
# merging on session - 1), the constrained designs of the model family, the rank-one
# models by nls, and a1..a5 with SEs as L %*% vcov %*% t(L).
suppressPackageStartupMessages({library(lme4); library(sandwich); library(jsonlite)})

A <- rbind(a1 = c(0, 1, 1, 0, 0, 0), a2 = c(0, 0, 0, 1, 1, 1), a3 = c(0, 1, -1, 0, 0, 0),
           a4 = c(0, 0, 0, 1, -1, 1), a5 = c(0, 0, 0, 1, 0, -1))
contrast <- function(b, V, L) {
  list(est = unname(drop(L %*% b)), se = unname(sqrt(diag(L %*% V %*% t(L)))))
}
poly_cols <- function(d, x, y, m) {
  d$X <- d[[x]] - m; d$Y <- d[[y]] - m
  d$X2 <- d$X^2; d$XY <- d$X * d$Y; d$Y2 <- d$Y^2
  d
}
lm_out <- function(fit) {
  list(coef = unname(coef(fit)), se = unname(sqrt(diag(vcov(fit)))),
       names = names(coef(fit)), logLik = as.numeric(logLik(fit)), AIC = AIC(fit),
       BIC = BIC(fit), sigma = sigma(fit), nobs = nobs(fit),
       r2 = summary(fit)$r.squared)
}
lmer_out <- function(fit, surface_cols = 2:6) {
  b <- fixef(fit); V <- as.matrix(vcov(fit))
  vc <- as.data.frame(VarCorr(fit))
  out <- list(coef = unname(b), se = unname(sqrt(diag(V))), names = names(b),
              logLik = as.numeric(logLik(fit)), AIC = AIC(fit), BIC = BIC(fit),
              nobs = nobs(fit), REML = isREML(fit),
              vc_group = vc$grp, vc_var = vc$vcov)
  if (length(surface_cols))
    out$surface <- contrast(b[c(1, surface_cols)], V[c(1, surface_cols), c(1, surface_cols)], A)
  out
}

# ------------------------------------------------------------------- single level
single <- read.csv("tests/reference/data/rsa_single.csv")
m1 <- mean(c(single$x, single$y))
s <- poly_cols(single, "x", "y", m1)

full_w <- lm(z ~ X + Y + X2 + XY + Y2 + w, data = s)
full <- lm(z ~ X + Y + X2 + XY + Y2, data = s)
res_single <- list(
  center = m1,
  full_control = c(lm_out(full_w), list(surface = contrast(coef(full_w)[1:6],
                                                            vcov(full_w)[1:6, 1:6], A))),
  full_hc3 = list(se = unname(sqrt(diag(vcovHC(full, type = "HC3")))),
                  se_hc0 = unname(sqrt(diag(vcovHC(full, type = "HC0"))))),
  family = list(
    full = lm_out(full),
    IA = lm_out(lm(z ~ X + Y + XY, data = s)),
    additive = lm_out(lm(z ~ X + Y, data = s)),
    diff = lm_out(lm(z ~ I(X - Y), data = s)),
    mean = lm_out(lm(z ~ I(X + Y), data = s)),
    onlyx = lm_out(lm(z ~ X, data = s)),
    onlyy = lm_out(lm(z ~ Y, data = s)),
    onlyx2 = lm_out(lm(z ~ X + X2, data = s)),
    onlyy2 = lm_out(lm(z ~ Y + Y2, data = s)),
    SQD = lm_out(lm(z ~ I((X - Y)^2), data = s)),
    SSQD = lm_out(lm(z ~ I(X - Y) + I((X - Y)^2), data = s)),
    RR = lm_out(lm(z ~ I(X + Y) + I((X - Y)^2), data = s)),
    SRR = lm_out(lm(z ~ X + Y + I((X - Y)^2), data = s)),
    null = lm_out(lm(z ~ 1, data = s))
  )
)
res_single$family$full$surface <- contrast(coef(full), vcov(full), A)

# Rank-one models: nls in the angle parameterisation u = cos(phi) Y - sin(phi) X, started
# at the best angle of a 1-degree grid (profile of lm fits), then optimised jointly.
best_angle <- function(rhs) {
  grid <- seq(0, pi, length.out = 181)[-181]
  rss <- sapply(grid, function(p) {
    s$u <- cos(p) * s$Y - sin(p) * s$X
    deviance(lm(as.formula(paste("z ~", rhs)), data = s))
  })
  grid[which.min(rss)]
}
nls_out <- function(fit) {
  p <- coef(fit)
  list(coef = unname(p), se = unname(sqrt(diag(vcov(fit)))), names = names(p),
       logLik = as.numeric(logLik(fit)), AIC = AIC(fit), BIC = BIC(fit),
       sigma = sigma(fit), df = df.residual(fit))
}
phi0 <- best_angle("X + Y + I(u^2)")
s$u <- cos(phi0) * s$Y - sin(phi0) * s$X
st <- coef(lm(z ~ X + Y + I(u^2), data = s))
srrr <- nls(z ~ b0 + b1 * X + b2 * Y + g * (cos(phi) * Y - sin(phi) * X)^2, data = s,
            start = list(b0 = st[[1]], b1 = st[[2]], b2 = st[[3]], g = st[[4]], phi = phi0),
            control = nls.control(tol = 1e-7, maxiter = 200, minFactor = 1e-10))
phi0 <- best_angle("u + I(u^2)")
s$u <- cos(phi0) * s$Y - sin(phi0) * s$X
st <- coef(lm(z ~ u + I(u^2), data = s))
srsqd <- nls(z ~ b0 + h * (cos(phi) * Y - sin(phi) * X) + g * (cos(phi) * Y - sin(phi) * X)^2,
             data = s, start = list(b0 = st[[1]], h = st[[2]], g = st[[3]], phi = phi0),
             control = nls.control(tol = 1e-7, maxiter = 200, minFactor = 1e-10))
res_single$family$SRRR <- nls_out(srrr)
res_single$family$SRSQD <- nls_out(srsqd)

# One surface per level of cond in one model (intercept per level, pooled residual).
s$d0 <- as.numeric(s$cond == 0); s$d1 <- as.numeric(s$cond == 1)
by_fit <- lm(z ~ d1 + X:d0 + Y:d0 + X2:d0 + XY:d0 + Y2:d0 + X:d1 + Y:d1 + X2:d1 + XY:d1 +
               Y2:d1, data = s)
common <- lm(z ~ d1 + X + Y + X2 + XY + Y2, data = s)
b <- coef(by_fit); V <- vcov(by_fit)
L0 <- cbind(A[, 1], 0, A[, 2:6], matrix(0, 5, 5))       # a's of level 0
L1 <- cbind(A[, 1], A[, 1], matrix(0, 5, 5), A[, 2:6])  # a's of level 1
eq <- anova(common, by_fit)
res_single$by_cond <- c(lm_out(by_fit), list(
  surface0 = contrast(b, V, L0), surface1 = contrast(b, V, L1),
  difference = contrast(b, V, L1 - L0),
  equality_F = eq$F[2], equality_df = eq$Df[2], equality_p = eq$`Pr(>F)`[2]))

# -------------------------------------------------------------------- multilevel
long <- read.csv("tests/reference/data/rsa_longitudinal.csv")
cur <- long[!is.na(long$z), ]
m2 <- mean(c(cur$x, cur$y))
cur <- poly_cols(cur, "x", "y", m2)
f_ml <- z ~ X + Y + X2 + XY + Y2 + (1 | therapist) + (1 | therapist:patient)
# Tight optimiser tolerances: these are reference values, not a quick fit.
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.2, rhoend = 1e-10))
ml_reml <- lmer(f_ml, data = cur, REML = TRUE, control = ctrl)
ml_ml <- lmer(f_ml, data = cur, REML = FALSE, control = ctrl)
sqd_ml <- lmer(z ~ I((X - Y)^2) + (1 | therapist) + (1 | therapist:patient), data = cur,
               REML = FALSE, control = ctrl)

# Lags by merging on session - 1 within therapist:patient (a missed session gives NA).
prev <- long[, c("therapist", "patient", "session", "x", "y", "z")]
names(prev)[4:6] <- c("x_lag1", "y_lag1", "z_lag1")
prev$session <- prev$session + 1
merged <- merge(long, prev, by = c("therapist", "patient", "session"), all.x = TRUE)
lag_rows <- function(cols) {
  d <- merged[complete.cases(merged[, cols]), ]
  d <- poly_cols(d, "x_lag1", "y_lag1", mean(c(d$x_lag1, d$y_lag1)))
  d$d0 <- as.numeric(d$condition == 0); d$d1 <- as.numeric(d$condition == 1)
  d
}
# Without the prior outcome (prior_outcome=False): random intercepts well away from 0.
lag <- lag_rows(c("z", "x_lag1", "y_lag1"))
lagged <- lmer(z ~ X + Y + X2 + XY + Y2 + (1 | therapist) + (1 | therapist:patient),
               data = lag, REML = TRUE, control = ctrl)
lagged_by <- lmer(z ~ d1 + X:d0 + Y:d0 + X2:d0 + XY:d0 + Y2:d0 + X:d1 + Y:d1 + X2:d1 +
                    XY:d1 + Y2:d1 + (1 | therapist) + (1 | therapist:patient),
                  data = lag, REML = TRUE, control = ctrl)
bb <- fixef(lagged_by); VV <- as.matrix(vcov(lagged_by))
# With the prior outcome, centred on its mean over the analysed rows. The patient
# variance is estimated at the boundary (0) here: a singular fit.
lagp <- lag_rows(c("z", "x_lag1", "y_lag1", "z_lag1"))
lagp$zl <- lagp$z_lag1 - mean(lagp$z_lag1)
lagged_prior <- lmer(z ~ X + Y + X2 + XY + Y2 + zl + (1 | therapist) +
                       (1 | therapist:patient), data = lagp, REML = FALSE, control = ctrl)
res_multi <- list(
  center = m2, lag_center = mean(c(lag$x_lag1, lag$y_lag1)), lag_rows = nrow(lag),
  lag_prior_center = mean(c(lagp$x_lag1, lagp$y_lag1)), lag_prior_rows = nrow(lagp),
  lag_z_mean = mean(lagp$z_lag1),
  full_reml = lmer_out(ml_reml), full_ml = lmer_out(ml_ml),
  sqd_ml = lmer_out(sqd_ml, surface_cols = integer(0)),
  lagged_reml = lmer_out(lagged),
  lagged_prior_ml = c(lmer_out(lagged_prior), list(singular = isSingular(lagged_prior))),
  lagged_by_reml = c(lmer_out(lagged_by, surface_cols = integer(0)), list(
    surface0 = contrast(bb, VV, L0), surface1 = contrast(bb, VV, L1),
    difference = contrast(bb, VV, L1 - L0)))
)

meta <- list(generated_by = "tests/reference/r/rsa_reference.R (do not edit by hand)",
             r_version = R.version.string,
             lme4_version = as.character(packageVersion("lme4")),
             sandwich_version = as.character(packageVersion("sandwich")))
write_json(c(meta, res_single), "tests/reference/results/rsa_single.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
write_json(c(meta, res_multi), "tests/reference/results/rsa_multilevel.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
cat("wrote tests/reference/results/rsa_single.json and rsa_multilevel.json\n")
