# lme4 reference values for multilevel third-order surfaces and for the within/between
# decomposition (decompose = "unit") of alliancestats' response surface analysis.
#
# Run from the repository root (the data come from `python tests/reference/make_rsa_data.py`):
#   Rscript tests/reference/r/rsa_multilevel_extra.R
# Needs r-base-core, r-cran-lme4, r-cran-jsonlite (Debian). Writes
# tests/reference/results/rsa_multilevel_extra.json. Do not edit that file by hand.
#
# Computed here independently of alliancestats: pooled centring over the analysed rows,
# the cubic columns, the CA substitution, unit means per therapist:patient and the
# deviations from them, and the surface contrasts as L %*% vcov %*% t(L).
suppressPackageStartupMessages({library(lme4); library(jsonlite)})

contrast <- function(b, V, L) {
  list(est = unname(drop(L %*% b)), se = unname(sqrt(diag(L %*% V %*% t(L)))))
}
lmer_out <- function(fit) {
  b <- fixef(fit); V <- as.matrix(vcov(fit))
  vc <- as.data.frame(VarCorr(fit))
  list(coef = unname(b), se = unname(sqrt(diag(V))), names = names(b),
       logLik = as.numeric(logLik(fit)), nobs = nobs(fit), REML = isREML(fit),
       vc_group = vc$grp, vc_var = vc$vcov)
}
ctrl <- lmerControl(optimizer = "bobyqa", optCtrl = list(rhobeg = 0.2, rhoend = 1e-10))
re <- "+ (1 | therapist) + (1 | therapist:patient)"

long <- read.csv("tests/reference/data/rsa_longitudinal.csv")
cur <- long[complete.cases(long[, c("z", "x", "y")]), ]
m <- mean(c(cur$x, cur$y))
cur$X <- cur$x - m; cur$Y <- cur$y - m

# Third order: b1..b9 in RSA's order X, Y, X^2, XY, Y^2, X^3, X^2 Y, X Y^2, Y^3.
f_cubic <- as.formula(paste("z ~ X + Y + I(X^2) + I(X*Y) + I(Y^2) + I(X^3) + I(X^2*Y) +",
                            "I(X*Y^2) + I(Y^3)", re))
cubic_reml <- lmer(f_cubic, data = cur, REML = TRUE, control = ctrl)
cubic_ml <- lmer(f_cubic, data = cur, REML = FALSE, control = ctrl)
# u1..u3 (line of congruence), v1..v3 (line of incongruence) over (b0, b1..b9)
U <- rbind(u1 = c(0, 1, 1, 0, 0, 0, 0, 0, 0, 0), u2 = c(0, 0, 0, 1, 1, 1, 0, 0, 0, 0),
           u3 = c(0, 0, 0, 0, 0, 0, 1, 1, 1, 1), v1 = c(0, 1, -1, 0, 0, 0, 0, 0, 0, 0),
           v2 = c(0, 0, 0, 1, -1, 1, 0, 0, 0, 0), v3 = c(0, 0, 0, 0, 0, 0, 1, -1, 1, -1))
# CA: b3 (X - Y)^2 + b6 (X - Y)^3
ca_ml <- lmer(as.formula(paste("z ~ I((X - Y)^2) + I((X - Y)^3)", re)), data = cur,
              REML = FALSE, control = ctrl)

# Within/between decomposition: unit means of the pooled-centred X and Y per
# therapist:patient, deviations from them; squares and products within each part.
unit <- interaction(cur$therapist, cur$patient, drop = TRUE)
cur$Xb <- ave(cur$X, unit); cur$Yb <- ave(cur$Y, unit)
cur$Xw <- cur$X - cur$Xb; cur$Yw <- cur$Y - cur$Yb
f_dec <- as.formula(paste("z ~ Xw + Yw + I(Xw^2) + I(Xw*Yw) + I(Yw^2) + Xb + Yb +",
                          "I(Xb^2) + I(Xb*Yb) + I(Yb^2)", re))
dec_reml <- lmer(f_dec, data = cur, REML = TRUE, control = ctrl)
dec_ml <- lmer(f_dec, data = cur, REML = FALSE, control = ctrl)
A <- rbind(a1 = c(1, 1, 0, 0, 0), a2 = c(0, 0, 1, 1, 1), a3 = c(1, -1, 0, 0, 0),
           a4 = c(0, 0, 1, -1, 1), a5 = c(0, 0, 1, 0, -1))
Lw <- cbind(0, A, matrix(0, 5, 5)); Lb <- cbind(0, matrix(0, 5, 5), A)
dec <- function(fit) {
  b <- fixef(fit); V <- as.matrix(vcov(fit))
  c(lmer_out(fit), list(within = contrast(b, V, Lw), between = contrast(b, V, Lb),
                        difference = contrast(b, V, Lb - Lw)))
}

# Random polynomial slopes at the patient level: random = "linear" and "quadratic".
cur$X2 <- cur$X^2; cur$XY <- cur$X * cur$Y; cur$Y2 <- cur$Y^2
# (All five surface terms per patient would be more random effects than observations,
# which lme4 refuses; the quadratic structure is therefore put at the therapist level.)
fixed <- "z ~ X + Y + X2 + XY + Y2"
lin_reml <- lmer(as.formula(paste(fixed, "+ (1 | therapist) + (1 + X + Y | therapist:patient)")),
                 data = cur, REML = TRUE, control = ctrl)
quad_ml <- lmer(as.formula(paste(fixed, "+ (1 + X + Y + X2 + XY + Y2 | therapist) +",
                                 "(1 | therapist:patient)")),
                data = cur, REML = FALSE, control = ctrl)
# A singular fit on a flat likelihood: between runs bobyqa has ended at a rank-3
# covariance (logLik -1451.99923, hitting its evaluation limit) or at a rank-2 one
# (-1452.00620); the test checks that the project's engine reaches the better of them.
slopes_out <- function(fit) {
  vc <- as.data.frame(VarCorr(fit))
  pca <- summary(rePCA(fit))
  c(lmer_out(fit), list(
    var_group = vc$grp[is.na(vc$var2)], var_term = vc$var1[is.na(vc$var2)],
    var = vc$vcov[is.na(vc$var2)],
    cor = vc$sdcor[!is.na(vc$var2) & vc$grp != "Residual"],
    singular = isSingular(fit),
    repca_patient = unname(pca[["therapist:patient"]]$importance["Proportion of Variance", ]),
    repca_therapist = unname(pca[["therapist"]]$importance["Proportion of Variance", ])))
}

out <- list(
  generated_by = "tests/reference/r/rsa_multilevel_extra.R (do not edit by hand)",
  r_version = R.version.string,
  lme4_version = as.character(packageVersion("lme4")),
  center = m, n_units = nlevels(unit),
  cubic_reml = c(lmer_out(cubic_reml),
                 list(uv = contrast(fixef(cubic_reml), as.matrix(vcov(cubic_reml)), U))),
  cubic_ml = lmer_out(cubic_ml),
  ca_ml = lmer_out(ca_ml),
  decompose_reml = dec(dec_reml),
  decompose_ml = dec(dec_ml),
  linear_reml = slopes_out(lin_reml),
  quadratic_ml = slopes_out(quad_ml)
)
write_json(out, "tests/reference/results/rsa_multilevel_extra.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
cat("wrote tests/reference/results/rsa_multilevel_extra.json\n")
