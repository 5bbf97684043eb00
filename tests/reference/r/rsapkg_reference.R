# Reference values from R's RSA package (Schönbrodt & Humberg) for single-level RSA.
#
# Run from the repository root after `python tests/reference/make_rsapkg_data.py`:
#   Rscript tests/reference/r/rsapkg_reference.R
# Needs: r-base-core, r-cran-lavaan, r-cran-ggplot2, r-cran-lattice, r-cran-plyr,
# r-cran-rcolorbrewer, r-cran-aplpack, r-cran-jsonlite (Debian) and the RSA package
# source (R CMD INSTALL). Writes tests/reference/results/rsapkg_reference.json.
#
# RSA() is run with estimator = "ML", se = "standard", out.rm = FALSE so that its point
# estimates equal ordinary least squares (its own OLS-equivalence test); its standard
# errors then use the ML residual variance (divisor n), i.e. they are the OLS SEs times
# sqrt((n - k - 1) / n). The `lm` fit is stored alongside for the exact OLS values.
suppressPackageStartupMessages({library(RSA); library(jsonlite)})

dat <- read.csv("tests/reference/data/rsapkg_data.csv")
models <- c("full", "SRRR", "SRR", "RR", "SQD", "SSQD", "IA", "additive", "onlyx", "onlyy",
            "onlyx2", "onlyy2", "null", "diff", "mean", "SRSQD")
fit <- RSA(z ~ x * y, data = dat, center = "pooled", out.rm = FALSE,
           estimator = "ML", se = "standard", models = models, verbose = FALSE)

par_table <- function(model) {
  p <- lavaan::parameterEstimates(fit$models[[model]])
  p$label[p$lhs == fit$DV & p$op == "~1"] <- "b0"
  keep <- p$label %in% c(paste0("b", 0:5), paste0("a", 1:5), "X0", "Y0", "p10", "p11",
                         "p20", "p21", "C", "S", "PA1.curvature", "PA2.curvature")
  p <- p[keep, ]
  setNames(lapply(seq_len(nrow(p)), function(i)
    list(est = p$est[i], se = p$se[i], pvalue = p$pvalue[i])), p$label)
}

fits <- list()
for (m in models) {
  if (is.null(fit$models[[m]])) next
  fm <- lavaan::fitMeasures(fit$models[[m]], c("chisq", "df", "pvalue", "cfi", "aic",
                                                  "bic", "logl"))
  fits[[m]] <- list(params = par_table(m), fit = as.list(fm),
                    r2 = unname(lavaan::inspect(fit$models[[m]], "R2")))
}

# Pooled centring as RSA does it: one grand mean of stacked x and y.
m <- mean(c(dat$x, dat$y))
dat$xc <- dat$x - m; dat$yc <- dat$y - m
ols <- lm(z ~ xc + yc + I(xc^2) + I(xc * yc) + I(yc^2), data = dat)
cmp <- compare(fit, verbose = FALSE)

out <- list(
  generated_by = "tests/reference/r/rsapkg_reference.R (do not edit by hand)",
  r_version = R.version.string,
  rsa_version = as.character(packageVersion("RSA")),
  lavaan_version = as.character(packageVersion("lavaan")),
  n = nrow(dat),
  pooled_center = m,
  models = fits,
  lm = list(coef = unname(coef(ols)), se = unname(sqrt(diag(vcov(ols)))),
            logLik = as.numeric(logLik(ols)), sigma = summary(ols)$sigma),
  compare = lapply(split(cmp, seq_len(nrow(cmp))), as.list)
)
write_json(out, "tests/reference/results/rsapkg_reference.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
cat("wrote tests/reference/results/rsapkg_reference.json\n")
