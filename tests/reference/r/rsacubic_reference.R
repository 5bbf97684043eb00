# Reference values from R's RSA package (Schönbrodt & Humberg) for the third-order and
# piecewise members of the model family and for weak/strong (the latter also on a saddle,
# where their inequality constraints are active).
#
# Run from the repository root after `python tests/reference/make_rsacubic_data.py`:
#   Rscript tests/reference/r/rsacubic_reference.R
# Needs what rsapkg_reference.R needs (r-cran-lavaan, r-cran-ggplot2, r-cran-lattice,
# r-cran-plyr, r-cran-rcolorbrewer, r-cran-aplpack, r-cran-jsonlite and the RSA package
# source, R CMD INSTALL). Writes tests/reference/results/rsacubic_reference.json.
#
# RSA() is run with estimator = "ML", se = "standard", out.rm = FALSE (point estimates
# equal least squares; SEs use the ML residual variance, divisor n). With a third-order
# model among `models`, every model is fitted within the cubic polynomial (b6..b9 = 0 for
# the second-order ones), as RSA does.
suppressPackageStartupMessages({library(RSA); library(jsonlite)})

dat <- read.csv("tests/reference/data/rsacubic_data.csv")
saddle <- read.csv("tests/reference/data/rsasaddle_data.csv")

par_table <- function(fit, model) {
  p <- lavaan::parameterEstimates(fit$models[[model]])
  p$label[p$lhs == fit$DV & p$op == "~1"] <- "b0"
  keep <- p$label %in% c(paste0("b", 0:9), paste0("w", 1:3), paste0("a", 1:5),
                         "u1", "u2", "u3", "v1", "v2", "v3")
  p <- p[keep & !duplicated(p$label), ]
  setNames(lapply(seq_len(nrow(p)), function(i)
    list(est = p$est[i], se = p$se[i], pvalue = p$pvalue[i])), p$label)
}

run <- function(models, data = dat) {
  fit <- RSA(z ~ x * y, data = data, center = "pooled", out.rm = FALSE,
             estimator = "ML", se = "standard", models = models, verbose = FALSE)
  out <- list()
  for (m in models) {
    if (is.null(fit$models[[m]])) next
    fm <- lavaan::fitMeasures(fit$models[[m]], c("chisq", "df", "aic", "bic", "logl"))
    out[[m]] <- list(params = par_table(fit, m), fit = as.list(fm),
                     converged = lavaan::inspect(fit$models[[m]], "converged"),
                     r2 = unname(lavaan::inspect(fit$models[[m]], "R2")))
  }
  list(fit = fit, models = out)
}

third <- run(c("cubic", "CA", "CL", "RRCA", "RRCL", "full", "SQD", "RR", "null"))
other <- run(c("absdiff", "absunc", "weak", "strong", "full", "SRSQD"))
cmp <- compare(third$fit, verbose = FALSE)
# weak (b3 b5 > 0) and strong (b3 b5 > 1e-6) with their bounds active
ineq <- run(c("weak", "strong", "full", "SRSQD", "onlyx2", "onlyy2"), data = saddle)

out <- list(
  generated_by = "tests/reference/r/rsacubic_reference.R (do not edit by hand)",
  r_version = R.version.string,
  rsa_version = as.character(packageVersion("RSA")),
  lavaan_version = as.character(packageVersion("lavaan")),
  n = nrow(dat),
  pooled_center = mean(c(dat$x, dat$y)),
  third_order = third$models,
  second_order = other$models,
  saddle = ineq$models,
  saddle_pooled_center = mean(c(saddle$x, saddle$y)),
  compare = lapply(split(cmp, seq_len(nrow(cmp))), as.list)
)
write_json(out, "tests/reference/results/rsacubic_reference.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
cat("wrote tests/reference/results/rsacubic_reference.json\n")
