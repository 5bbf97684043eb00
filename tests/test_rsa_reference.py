"""Response surface analysis against frozen R reference values.

Data: ``tests/reference/make_rsa_data.py`` (CSV in ``tests/reference/data``); values:
``tests/reference/r/rsa_reference.R`` (R ``lm``, ``nls``, ``sandwich::vcovHC`` and
``lme4::lmer``; JSON in ``tests/reference/results``, with R and package versions), plus
``rsapkg_reference.json`` from R's RSA package 0.10.8 (``RSA(..., estimator="ML",
se="standard", out.rm=FALSE)``).

What alliancestats reproduces: single-level fits equal ``lm`` (unbiased residual variance,
t tests). The RSA package's ML estimates are identical, its SEs are smaller by exactly
sqrt((n - p)/n), p = number of estimated regression weights incl. the intercept (lavaan
divides the residual sum of squares by n); the comparisons below apply that factor.

Tolerances: OLS coefficients/SEs rtol 1e-6 (closed form; the CSV round trip is exact);
nls (rank-one models) rtol 1e-5 (R stops at a relative offset of 1e-7); RSA package
rtol 1e-4 for estimates and SEs (lavaan stops its iterative ML at about 2e-5 relative);
lmer fixed effects rtol 1e-4, SEs and variance components rtol 1e-3, logLik atol 1e-2
(two different optimisers).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliancestats import compare_rsa, fit_lagged_rsa, fit_rsa
from alliancestats.exceptions import AllianceStatsWarning, BoundaryFitWarning, DataWarning
from alliancestats.rsa import RSAResults
from alliancestats.rsa.family import family_model
from alliancestats.rsa.fit import Spec, estimate, prepare

pytestmark = pytest.mark.reference

REF = Path(__file__).parent / "reference"
SINGLE = pd.read_csv(REF / "data" / "rsa_single.csv")
LONG = pd.read_csv(REF / "data" / "rsa_longitudinal.csv")
R1 = json.loads((REF / "results" / "rsa_single.json").read_text())
RM = json.loads((REF / "results" / "rsa_multilevel.json").read_text())
PKG_DATA = pd.read_csv(REF / "data" / "rsapkg_data.csv")
PKG = json.loads((REF / "results" / "rsapkg_reference.json").read_text())

LINEAR_MODELS = ["full", "IA", "additive", "diff", "mean", "onlyx", "onlyy", "onlyx2",
                 "onlyy2", "SQD", "SSQD", "RR", "SRR", "null"]


def _lm_checks(res, ref, rtol=1e-6) -> None:
    # coef(fit), sqrt(diag(vcov(fit)))
    np.testing.assert_allclose(res.params.to_numpy(), ref["coef"], rtol=rtol, atol=1e-10)
    np.testing.assert_allclose(res.bse.to_numpy(), ref["se"], rtol=rtol)
    # logLik(fit), AIC(fit), BIC(fit)
    assert res.llf == pytest.approx(ref["logLik"], rel=1e-9)
    assert res.aic == pytest.approx(ref["AIC"], rel=1e-9)
    assert res.bic == pytest.approx(ref["BIC"], rel=1e-9)


# ------------------------------------------------------------------------ single level
def test_full_model_with_control_matches_lm() -> None:
    ref = R1["full_control"]
    res = fit_rsa(SINGLE, outcome="z", x="x", y="y", controls="w")
    # mean(c(x, y))
    assert res.centering["x_shift"] == pytest.approx(R1["center"], rel=1e-12)
    _lm_checks(res, ref)
    # summary(fit)$r.squared
    assert res.rsquared == pytest.approx(ref["r2"], rel=1e-9)
    # A %*% coef(fit)[1:6]; sqrt(diag(A %*% vcov(fit)[1:6, 1:6] %*% t(A)))
    np.testing.assert_allclose(res.surface["estimate"], ref["surface"]["est"], rtol=1e-6)
    np.testing.assert_allclose(res.surface["std_error"], ref["surface"]["se"], rtol=1e-6)
    assert res.df_resid == ref["nobs"] - 7


@pytest.mark.parametrize("model", LINEAR_MODELS)
def test_family_matches_lm_with_constraint_substituted(model: str) -> None:
    # e.g. SQD: lm(z ~ I((X - Y)^2)); SSQD: lm(z ~ I(X - Y) + I((X - Y)^2))
    ref = R1["family"][model]
    res = fit_rsa(SINGLE, outcome="z", x="x", y="y", model=model)
    _lm_checks(res, ref)
    assert res.rsquared == pytest.approx(ref["r2"], rel=1e-8, abs=1e-12)


def test_full_surface_parameters_match_vcov_contrasts() -> None:
    ref = R1["family"]["full"]["surface"]
    surf = fit_rsa(SINGLE, outcome="z", x="x", y="y").surface
    # A %*% coef(full); sqrt(diag(A %*% vcov(full) %*% t(A)))
    np.testing.assert_allclose(surf["estimate"], ref["est"], rtol=1e-6)
    np.testing.assert_allclose(surf["std_error"], ref["se"], rtol=1e-6)


@pytest.mark.parametrize(("cov_type", "key"), [("HC3", "se"), ("HC0", "se_hc0")])
def test_heteroscedasticity_consistent_ses_match_sandwich(cov_type: str, key: str) -> None:
    res = fit_rsa(SINGLE, outcome="z", x="x", y="y", cov_type=cov_type)
    # sqrt(diag(sandwich::vcovHC(full, type = cov_type)))
    np.testing.assert_allclose(res.bse.to_numpy(), R1["full_hc3"][key], rtol=1e-6)


def _rank_one_fit(model: str):
    """The rank-one form of ``model`` alone (SRSQD is the better of it and the piece
    b4 = b5 = 0 of its constraints, see the test below)."""
    res = fit_rsa(SINGLE, outcome="z", x="x", y="y", model=model)
    if model == "SRRR":
        return res
    design = prepare(SINGLE, outcome="z", x="x", y="y", groups=None, controls=None,
                     by=None, center="pooled", scale=None, missing="drop")
    piece = family_model(model).pieces[0]
    est = estimate(design, Spec(piece))
    return RSAResults(est=est, design=design, spec=Spec(piece), formula="",
                      refit=estimate)


@pytest.mark.parametrize("model", ["SRRR", "SRSQD"])
def test_rank_one_models_match_nls(model: str) -> None:
    # nls(z ~ b0 + b1 X + b2 Y + g (cos(phi) Y - sin(phi) X)^2) (SRRR) and
    # nls(z ~ b0 + h u + g u^2), u = cos(phi) Y - sin(phi) X (SRSQD)
    ref = R1["family"][model]
    res = _rank_one_fit(model)
    ref_coef = np.array(ref["coef"])
    ref_coef[-1] = ref_coef[-1] % np.pi  # the angle has period pi
    # coef(fit), sqrt(diag(vcov(fit)))
    np.testing.assert_allclose(res.params.to_numpy(), ref_coef, rtol=1e-5)
    np.testing.assert_allclose(res.bse.to_numpy(), ref["se"], rtol=1e-5)
    # logLik(fit), AIC(fit), df.residual(fit)
    assert res.llf == pytest.approx(ref["logLik"], abs=1e-7)
    assert res.aic == pytest.approx(ref["AIC"], abs=1e-6)
    assert res.df_resid == ref["df"]
    b = res.coefs
    assert b["b4"] ** 2 == pytest.approx(4 * b["b3"] * b["b5"], rel=1e-10)  # exact constraint


def test_srsqd_is_the_best_fit_over_the_packages_feasible_set() -> None:
    """R's constraints of SRSQD (b4^2 = 4 b3 b5, 2 b1 b5 = b2 b4) also hold on the plane
    b4 = b5 = 0 with b1, b2, b3 free, which the rank-one form (nls above) cannot reach. On
    this data set that piece fits better than the nls optimum, so SRSQD is
    lm(z ~ X + Y + I(X^2))."""
    res = fit_rsa(SINGLE, outcome="z", x="x", y="y", model="SRSQD")
    assert res.llf > R1["family"]["SRSQD"]["logLik"] + 0.1  # logLik(nls fit)
    b = res.coefs
    assert b["b4"] == 0
    assert b["b5"] == 0
    assert res.llf <= fit_rsa(SINGLE, outcome="z", x="x", y="y").llf  # nested in full
    assert any("b4 = b5 = 0" in note for note in res.summary().notes)
    # b0, b1, b2, b3 and sigma: as many as the rank-one form's b0, h, g, phi and sigma
    assert res.df_model == 5


def test_by_condition_matches_lm_with_level_interactions() -> None:
    ref = R1["by_cond"]
    res = fit_rsa(SINGLE, outcome="z", x="x", y="y", by="cond")
    # lm(z ~ d1 + X:d0 + ... + Y2:d0 + X:d1 + ... + Y2:d1)
    _lm_checks(res, ref)
    surf = res.surface
    for level, key in ((0, "surface0"), (1, "surface1")):
        # L %*% coef(by_fit), L = a's of that level
        np.testing.assert_allclose(surf.loc[level, "estimate"], ref[key]["est"], rtol=1e-6)
        np.testing.assert_allclose(surf.loc[level, "std_error"], ref[key]["se"], rtol=1e-6)
    diff = res.surface_differences.loc[1]
    np.testing.assert_allclose(diff["estimate"], ref["difference"]["est"], rtol=1e-6)
    np.testing.assert_allclose(diff["std_error"], ref["difference"]["se"], rtol=1e-6)
    # anova(common, by_fit): F test that both levels share b1..b5
    eq = res.surface_equality
    assert eq["statistic"] == pytest.approx(ref["equality_F"], rel=1e-6)
    assert eq["df"] == ref["equality_df"]
    assert eq["p_value"] == pytest.approx(ref["equality_p"], rel=1e-5)


# ------------------------------------------------------------------- RSA package 0.10.8
def _pkg(model: str, label: str) -> dict:
    return PKG["models"][model]["params"][label]


@pytest.mark.parametrize("model", ["full", "SRRR", "SRR", "RR", "SQD", "SSQD", "IA",
                                   "additive", "onlyx", "onlyy", "onlyx2", "onlyy2",
                                   "null", "diff", "mean"])
def test_family_matches_rsa_package(model: str) -> None:
    res = fit_rsa(PKG_DATA, outcome="z", x="x", y="y", model=model)
    n, p = PKG["n"], len(res.params)
    ml_factor = np.sqrt((n - p) / n)  # lavaan ML SEs = OLS SEs * sqrt((n - p)/n)
    cov = res.cov_coefs()
    for j, label in enumerate(["b0", "b1", "b2", "b3", "b4", "b5"]):
        if label not in PKG["models"][model]["params"]:
            continue
        ref = _pkg(model, label)
        # parameterEstimates(fit$models[[model]])$est / $se
        assert res.coefs[label] == pytest.approx(ref["est"], rel=1e-4, abs=1e-5)
        if isinstance(ref["se"], float) and ref["se"] > 0:
            se = np.sqrt(cov.iloc[j, j]) * ml_factor
            assert se == pytest.approx(ref["se"], rel=1e-4)
    # fitMeasures(fit$models[[model]], "logl")
    assert res.llf == pytest.approx(PKG["models"][model]["fit"]["logl"], abs=1e-6)


def test_nonlinear_quantities_match_rsa_package_delta_method() -> None:
    res = fit_rsa(PKG_DATA, outcome="z", x="x", y="y")
    factor = np.sqrt((PKG["n"] - 6) / PKG["n"])
    table = pd.concat([res.stationary_point, res.principal_axes])
    for label in ("X0", "Y0", "p10", "p11", "p20", "p21"):
        ref = _pkg("full", label)
        # lavaan := definitions of RSA's full model, delta-method SEs
        assert table.loc[label, "estimate"] == pytest.approx(ref["est"], rel=1e-6)
        assert table.loc[label, "std_error"] * factor == pytest.approx(ref["se"], rel=1e-4)
    for label in ("a1", "a2", "a3", "a4", "a5"):
        ref = _pkg("full", label)
        assert res.surface.loc[label, "estimate"] == pytest.approx(ref["est"], rel=1e-6)
        assert res.surface.loc[label, "std_error"] * factor == pytest.approx(ref["se"],
                                                                            rel=1e-6)


@pytest.mark.parametrize(("model", "ridge"), [("SRRR", "C"), ("SRR", "C"), ("SSQD", "C")])
def test_shift_intercept_matches_rsa_package_c(model: str, ridge: str) -> None:
    res = fit_rsa(PKG_DATA, outcome="z", x="x", y="y", model=model)
    n, p = PKG["n"], len(res.params)
    ref = _pkg(model, ridge)
    with pytest.warns(AllianceStatsWarning, match="D = 4 b3 b5"):  # rank-one surface
        shift = res.lateral_shift.loc["shift_intercept"]
    # RSA's `C := ...` of that model (ridge line Y = S X + C)
    assert shift["estimate"] == pytest.approx(ref["est"], rel=1e-4, abs=1e-5)
    assert shift["std_error"] * np.sqrt((n - p) / n) == pytest.approx(ref["se"], rel=1e-4)
    if model == "SRRR":
        S = _pkg(model, "S")
        assert res.model_parameters.loc["S", "estimate"] == pytest.approx(S["est"], rel=1e-5)


def test_srsqd_matches_rsa_package_on_its_degenerate_optimum() -> None:
    """On this data set RSA's lavaan fit of SRSQD ends at b4 ~ b5 ~ 0 (b4^2 = 5.5e-11,
    4 b3 b5 = 4.1e-7): the plane b4 = b5 = 0 of its constraints, which SRSQD includes."""
    ref = PKG["models"]["SRSQD"]["params"]
    assert ref["b4"]["est"] ** 2 < 1e-3 * 4 * ref["b3"]["est"] * ref["b5"]["est"]
    res = fit_rsa(PKG_DATA, outcome="z", x="x", y="y", model="SRSQD")
    b = res.coefs
    assert b["b4"] == 0
    assert b["b5"] == 0
    for label in ("b0", "b1", "b2", "b3"):
        # parameterEstimates(fit$models$SRSQD)$est
        assert b[label] == pytest.approx(ref[label]["est"], rel=1e-5, abs=2e-5)
    # fitMeasures(fit$models$SRSQD, "logl"): reached (lavaan stops 4e-4 short)
    assert res.llf >= PKG["models"]["SRSQD"]["fit"]["logl"]


def test_compare_matches_rsa_package_likelihoods() -> None:
    table = compare_rsa(PKG_DATA, outcome="z", x="x", y="y",
                        models=("full", "SRRR", "SRR", "RR", "SQD", "null")).set_index("model")
    for model in table.index:
        # fitMeasures(..., c("logl", "aic", "bic")): lavaan counts b0..b5 + residual
        fm = PKG["models"][model]["fit"]
        assert table.loc[model, "logLik"] == pytest.approx(fm["logl"], abs=1e-6)
        assert table.loc[model, "AIC"] == pytest.approx(fm["aic"], abs=1e-5)
        assert table.loc[model, "BIC"] == pytest.approx(fm["bic"], abs=1e-5)
        if model != "full":  # chi-square of the model = LR test against the saturated full
            assert table.loc[model, "chi2"] == pytest.approx(fm["chisq"], abs=1e-5)
            assert table.loc[model, "df"] == fm["df"]


# ----------------------------------------------------------------------- multilevel
def _lmer_checks(res, ref, *, vc: bool = True) -> None:
    # fixef(fit)
    np.testing.assert_allclose(res.params.to_numpy(), ref["coef"], rtol=1e-4, atol=1e-6)
    # sqrt(diag(vcov(fit)))
    np.testing.assert_allclose(res.bse.to_numpy(), ref["se"], rtol=1e-3)
    # logLik(fit) (REML criterion scale for REML fits)
    assert res.llf == pytest.approx(ref["logLik"], abs=1e-2)
    assert res.nobs == ref["nobs"]
    if vc:
        # as.data.frame(VarCorr(fit))$vcov: therapist:patient, therapist, Residual
        got = res.variance_components.set_index("level")["variance"]
        ordered = [got.iloc[1], got.iloc[0], got.loc["Residual"]]
        np.testing.assert_allclose(ordered, ref["vc_var"], rtol=1e-3)


@pytest.mark.parametrize(("reml", "key"), [(True, "full_reml"), (False, "full_ml")])
def test_multilevel_full_matches_lmer(reml: bool, key: str) -> None:
    with pytest.warns(DataWarning, match="missing"):
        res = fit_rsa(LONG, outcome="z", x="x", y="y", groups=["therapist", "patient"],
                      reml=reml)
    ref = RM[key]
    assert res.centering["x_shift"] == pytest.approx(RM["center"], rel=1e-12)
    _lmer_checks(res, ref)
    # A %*% fixef(fit); sqrt(diag(A %*% vcov(fit) %*% t(A)))
    np.testing.assert_allclose(res.surface["estimate"], ref["surface"]["est"], rtol=1e-4)
    np.testing.assert_allclose(res.surface["std_error"], ref["surface"]["se"], rtol=1e-3)
    assert res.aic == pytest.approx(ref["AIC"], abs=2e-2)  # AIC(fit)
    assert res.bic == pytest.approx(ref["BIC"], abs=2e-2)  # BIC(fit)


def test_multilevel_constrained_model_matches_lmer() -> None:
    # lmer(z ~ I((X - Y)^2) + (1 | therapist) + (1 | therapist:patient), REML = FALSE)
    with pytest.warns(DataWarning, match="missing"):
        res = fit_rsa(LONG, outcome="z", x="x", y="y", groups=["therapist", "patient"],
                      model="SQD", reml=False)
    _lmer_checks(res, RM["sqd_ml"])


def test_lagged_rsa_matches_lmer_on_merged_lags() -> None:
    with pytest.warns(DataWarning, match="missing"):
        res = fit_lagged_rsa(LONG, outcome="z", x="x", y="y", time="session",
                             unit=["therapist", "patient"], groups=["therapist", "patient"],
                             prior_outcome=False)
    ref = RM["lagged_reml"]
    assert res.lag_info["rows_used"] == RM["lag_rows"]  # nrow(lag)
    assert res.centering["x_shift"] == pytest.approx(RM["lag_center"], rel=1e-12)
    _lmer_checks(res, ref)
    np.testing.assert_allclose(res.surface["estimate"], ref["surface"]["est"], rtol=1e-4)
    np.testing.assert_allclose(res.surface["std_error"], ref["surface"]["se"], rtol=1e-3)


def test_lagged_rsa_by_condition_matches_lmer() -> None:
    with pytest.warns(DataWarning, match="missing"):
        res = fit_lagged_rsa(LONG, outcome="z", x="x", y="y", time="session",
                             unit=["therapist", "patient"], groups=["therapist", "patient"],
                             prior_outcome=False, by="condition")
    ref = RM["lagged_by_reml"]
    _lmer_checks(res, ref)
    for level, key in ((0, "surface0"), (1, "surface1")):
        np.testing.assert_allclose(res.surface.loc[level, "estimate"], ref[key]["est"],
                                   rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(res.surface.loc[level, "std_error"], ref[key]["se"],
                                   rtol=1e-3)
    diff = res.surface_differences.loc[1]
    np.testing.assert_allclose(diff["estimate"], ref["difference"]["est"], rtol=1e-4,
                               atol=1e-6)
    np.testing.assert_allclose(diff["std_error"], ref["difference"]["se"], rtol=1e-3)


def test_lagged_rsa_with_prior_outcome_matches_lmer_at_the_boundary() -> None:
    """The patient variance is 0 in lme4 (singular fit); fixed effects and logLik must
    still agree. Variance components are compared with an absolute tolerance."""
    with pytest.warns(DataWarning, match="missing"), pytest.warns(BoundaryFitWarning):
        res = fit_lagged_rsa(LONG, outcome="z", x="x", y="y", time="session",
                             unit=["therapist", "patient"], groups=["therapist", "patient"],
                             reml=False)
    ref = RM["lagged_prior_ml"]
    assert res.lag_info["rows_used"] == RM["lag_prior_rows"]
    assert res.centering["z_lag1_shift"] == pytest.approx(RM["lag_z_mean"], rel=1e-12)
    _lmer_checks(res, ref, vc=False)
    got = res.variance_components["variance"].to_numpy()
    np.testing.assert_allclose(sorted(got), sorted(ref["vc_var"]), atol=5e-3)
    assert res.is_singular
