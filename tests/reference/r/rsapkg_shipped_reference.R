# Reference values from R's RSA package on the data sets it ships (motcon, motcon2,
# selfother), for the whole model family.
#
# Run from the repository root: Rscript tests/reference/r/rsapkg_shipped_reference.R
# Needs what rsapkg_reference.R needs. Writes
# tests/reference/results/rsapkg_shipped_reference.json (estimates, SEs and fit measures
# only: the data sets belong to the RSA package and are not copied into this project; the
# tests that use these values read them from an installed copy of the package, see
# tests/reference/README.md).
#
# RSA() is run with estimator = "ML", se = "standard", out.rm = FALSE (point estimates
# equal least squares). Second-order and third-order models are fitted in separate calls
# (with a third-order model among `models`, RSA fits every model within the cubic
# polynomial; the estimates are the same).
suppressPackageStartupMessages({library(RSA); library(jsonlite)})

second <- c("full", "IA", "additive", "diff", "mean", "onlyx", "onlyy", "onlyx2", "onlyy2",
            "SQD", "SSQD", "RR", "SRR", "SRRR", "SRSQD", "null", "weak", "strong",
            "absdiff", "absunc")
third <- c("cubic", "CA", "CL", "RRCA", "RRCL", "full", "SQD", "null")

par_table <- function(fit, model) {
  p <- lavaan::parameterEstimates(fit$models[[model]])
  p$label[p$lhs == fit$DV & p$op == "~1"] <- "b0"
  keep <- p$label %in% c(paste0("b", 0:9), paste0("w", 1:3), "u1", "u2", "u3", "v1",
                         "v2", "v3")
  p <- p[keep & !duplicated(p$label), ]
  setNames(lapply(seq_len(nrow(p)), function(i)
    list(est = p$est[i], se = p$se[i])), p$label)
}
run <- function(formula, data, models, ...) {
  fit <- suppressWarnings(RSA(formula, data = data, center = "pooled", out.rm = FALSE,
                              estimator = "ML", se = "standard", models = models,
                              verbose = FALSE, ...))
  out <- list()
  for (m in models) {
    if (is.null(fit$models[[m]])) next
    fm <- lavaan::fitMeasures(fit$models[[m]], c("chisq", "df", "logl"))
    out[[m]] <- list(params = par_table(fit, m), fit = as.list(fm),
                     converged = lavaan::inspect(fit$models[[m]], "converged"))
  }
  # compare() fails when the absolute-difference models are among the fits (rbind of
  # tables with different columns in RSA 0.10.8): no comparison table then.
  cmp <- tryCatch(compare(fit, verbose = FALSE), error = function(e) NULL)
  list(models = out,
       compare = if (is.null(cmp)) NULL else lapply(split(cmp, seq_len(nrow(cmp))), as.list))
}
sets <- list(
  motcon = list(formula = postVA ~ ePow * iPow, data = "motcon", controls = c()),
  motcon2 = list(formula = VA ~ IM * EM, data = "motcon2", controls = c()),
  selfother = list(formula = liking ~ IQ_self * IQ_friend, data = "selfother",
                   controls = c("age", "int"))
)
out <- list(
  generated_by = "tests/reference/r/rsapkg_shipped_reference.R (do not edit by hand)",
  r_version = R.version.string,
  rsa_version = as.character(packageVersion("RSA")),
  lavaan_version = as.character(packageVersion("lavaan"))
)
for (name in names(sets)) {
  s <- sets[[name]]
  data(list = s$data, package = "RSA")
  d <- get(s$data)
  out[[name]] <- list(
    n = nrow(d), formula = deparse(s$formula), controls = s$controls,
    second = run(s$formula, d, second, control.variables = s$controls),
    third = run(s$formula, d, third, control.variables = s$controls))
}
write_json(out, "tests/reference/results/rsapkg_shipped_reference.json", digits = NA,
           auto_unbox = TRUE, pretty = TRUE)
cat("wrote tests/reference/results/rsapkg_shipped_reference.json\n")
