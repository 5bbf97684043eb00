# Principal-axis curvatures and eigenvalues from R's RSA package (0.10.8).
#
# Run from the repository root:
#   Rscript tests/reference/r/rsa_curvature_reference.R
# Needs the packages listed in tests/reference/README.md (RSA from its source,
# `R CMD INSTALL`). Writes tests/reference/results/rsa_curvature_reference.json.
#
# RSA() defines, in its model "full" (lavaan `:=` parameters, delta-method SEs):
#   PA1.curv := b3 + b4*p11 + b5*p11^2,  PA2.curv := b3 + b4*p21 + b5*p21^2,
#   l1, l2 := (b3 + b5 +- sqrt((b3 + b5)^2 - 4*b3*b5 + b4^2)) / 2.
# estimator = "ML", se = "standard", out.rm = FALSE: point estimates equal OLS, SEs use
# the ML residual variance (divisor n).
suppressPackageStartupMessages({library(RSA); library(jsonlite)})

keep <- c("b1", "b2", "b3", "b4", "b5", "p11", "p21", "PA1.curv", "PA2.curv", "l1", "l2")
one_fit <- function(dat) {
  fit <- RSA(z ~ x * y, data = dat, center = "pooled", out.rm = FALSE,
             estimator = "ML", se = "standard", models = "full", verbose = FALSE)
  p <- lavaan::parameterEstimates(fit$models$full)
  p <- p[p$label %in% keep, ]
  setNames(lapply(seq_len(nrow(p)), function(i) list(est = p$est[i], se = p$se[i])),
           p$label)
}

dat <- read.csv("tests/reference/data/rsapkg_data.csv")
# A second surface with a clearly rotated, asymmetric quadratic part (b3 != b5, b4 != 0),
# made here with a fixed seed so that the reference needs no extra data file.
set.seed(20)
n <- 150
x <- rnorm(n, 0.2, 1); y <- 0.4 * x + rnorm(n, 0, 1)
z <- 1 + 0.3 * x - 0.2 * y - 0.6 * x^2 + 0.5 * x * y - 0.2 * y^2 + rnorm(n, 0, 0.8)
rotated <- data.frame(x = x, y = y, z = z)
write.csv(rotated, "tests/reference/data/rsa_curvature_rotated.csv", row.names = FALSE)

out <- list(
  generated_by = "tests/reference/r/rsa_curvature_reference.R (do not edit by hand)",
  r_version = R.version.string,
  rsa_version = as.character(packageVersion("RSA")),
  lavaan_version = as.character(packageVersion("lavaan")),
  rsapkg_data = c(list(n = nrow(dat)), one_fit(dat)),
  rotated = c(list(n = nrow(rotated)), one_fit(rotated))
)
write_json(out, "tests/reference/results/rsa_curvature_reference.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
cat("wrote tests/reference/results/rsa_curvature_reference.json\n")
