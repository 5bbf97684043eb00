"""Small-sample df and AR(1) residuals of multilevel response surfaces against R.

Values: ``tests/reference/r/rsa_ddf_residual.R`` (lmerTest ``contest1D``/``contestMD``,
pbkrtest via lmerTest's ``ddf = "Kenward-Roger"``, nlme ``lme`` with
``corAR1(form = ~ session | therapist/patient)``) on the lagged RSA of
``tests/reference/data/rsa_longitudinal.csv`` (lags merged on session - 1, so a missed
session leaves no lagged pair and a gap of 2 between the analysed sessions).

Tolerances: df and SEs rtol 1e-4 (issue tolerance for lmerTest/pbkrtest); nlme fixed
effects atol 1e-4, logLik rtol 1e-6.
"""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from alliancestats import compare_rsa, fit_lagged_rsa, fit_rsa
from alliancestats.exceptions import DataWarning

pytestmark = pytest.mark.reference

REF = Path(__file__).parent / "reference"
LONG = pd.read_csv(REF / "data" / "rsa_longitudinal.csv")
R = json.loads((REF / "results" / "rsa_ddf_residual.json").read_text())
KEYS = ["therapist", "patient"]


def _lagged(**kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # rows with a missing outcome
        return fit_lagged_rsa(LONG, outcome="z", x="x", y="y", time="session", unit=KEYS,
                              groups=KEYS, prior_outcome=False, **kwargs)


def _check_contest(table: pd.DataFrame, ref: dict, *, se: bool = True) -> None:
    # contest1D(m, L)$Estimate
    np.testing.assert_allclose(table["estimate"], ref["estimate"], rtol=1e-4, atol=1e-6)
    if se:  # contest1D(m, L)[["Std. Error"]]
        np.testing.assert_allclose(table["std_error"], ref["std_error"], rtol=1e-4)
    # contest1D(m, L)$df
    np.testing.assert_allclose(table["df"], ref["df"], rtol=1e-4)
    # contest1D(m, L)[["Pr(>|t|)"]]
    np.testing.assert_allclose(table["p_value"], ref["p_value"], rtol=2e-3, atol=1e-6)


@pytest.mark.parametrize(("reml", "key"), [(True, "lagged_reml"), (False, "lagged_ml")])
def test_surface_satterthwaite_matches_lmertest(reml: bool, key: str) -> None:
    res = _lagged(reml=reml)
    assert res.nobs == R["rows"]
    assert res.ddf == "satterthwaite"
    _check_contest(res.surface, R[key]["surface_satterthwaite"])
    # summary(m, ddf = "Satterthwaite")$coefficients[, "df"]
    np.testing.assert_allclose(res.df, R[key]["coef_satterthwaite"], rtol=1e-4)


def test_surface_kenward_roger_matches_pbkrtest() -> None:
    res = _lagged(ddf="kenward-roger")
    _check_contest(res.surface, R["lagged_reml"]["surface_kr"])
    # summary(m, ddf = "Kenward-Roger")$coefficients[, "Std. Error"] (vcovAdj)
    np.testing.assert_allclose(res.bse, R["lagged_reml"]["coef_kr_se"], rtol=1e-4)


def test_surface_z_has_infinite_df() -> None:
    res = _lagged(ddf="z")
    assert np.isinf(res.surface["df"]).all()
    ref = R["lagged_reml"]["surface_satterthwaite"]
    np.testing.assert_allclose(res.surface["std_error"], ref["std_error"], rtol=1e-4)


def test_by_condition_surfaces_and_differences_match_lmertest() -> None:
    res = _lagged(by="condition")
    ref = R["lagged_by_reml"]
    _check_contest(res.surface.loc[0], ref["surface0_satterthwaite"])
    _check_contest(res.surface.loc[1], ref["surface1_satterthwaite"])
    _check_contest(res.surface_differences.loc[1], ref["difference_satterthwaite"])
    eq = res.surface_equality
    # contestMD(m, E, ddf = "Satterthwaite"): F value, NumDF, DenDF, Pr(>F)
    want = ref["equality_satterthwaite"]
    assert eq["statistic"] == pytest.approx(want["statistic"], rel=1e-4)
    assert eq["df"] == want["df_num"]
    assert eq["df_denom"] == pytest.approx(want["df_denom"], rel=1e-4)
    assert eq["p_value"] == pytest.approx(want["p_value"], rel=1e-3)


def test_by_condition_kenward_roger_matches_pbkrtest() -> None:
    res = _lagged(by="condition", ddf="kenward-roger")
    ref = R["lagged_by_reml"]
    _check_contest(res.surface_differences.loc[1], ref["difference_kr"])
    eq = res.surface_equality
    want = ref["equality_kr"]  # contestMD(m, E, ddf = "Kenward-Roger")
    assert eq["statistic"] == pytest.approx(want["statistic"], rel=1e-4)
    assert eq["df_denom"] == pytest.approx(want["df_denom"], rel=1e-4)


def test_summary_names_the_df_method_and_delta_method_z() -> None:
    text = str(_lagged().summary())
    assert "Satterthwaite" in text
    assert "delta method, z" in text


def test_ddf_is_validated() -> None:
    with pytest.raises(ValueError, match="ddf"):
        _lagged(ddf="bogus")
    with pytest.raises(ValueError, match="REML"):
        _lagged(ddf="kenward-roger", reml=False)
    with pytest.raises(ValueError, match="mixed fits"):
        fit_rsa(LONG.dropna(), outcome="z", x="x", y="y", ddf="kenward-roger")


def test_compare_rsa_accepts_ddf() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)
        table = compare_rsa(LONG, outcome="z", x="x", y="y", groups=KEYS,
                            models=("full", "SQD"), ddf="kenward-roger")
    assert table["model"].tolist() == ["SQD", "full"]


# ------------------------------------------------------------------------- AR(1)
@pytest.mark.parametrize(("reml", "key"), [(True, "ar1_reml"), (False, "ar1_ml")])
def test_ar1_residuals_match_nlme(reml: bool, key: str) -> None:
    res = _lagged(residual="ar1", reml=reml)
    ref = R[key]
    assert res.nobs == ref["nobs"]
    # fixef(fit)
    np.testing.assert_allclose(res.params, ref["fixef"], atol=1e-4)
    # logLik(fit)
    assert res.llf == pytest.approx(ref["logLik"], rel=1e-6)
    # coef(fit$modelStruct$corStruct, unconstrained = FALSE)
    assert res.residual_params.loc["phi", "estimate"] == pytest.approx(ref["phi"], abs=1e-4)
    # sqrt(diag(vcov(fit))) and L %*% fixef(fit)
    np.testing.assert_allclose(res.bse, ref["se"], rtol=1e-3)
    np.testing.assert_allclose(res.surface["estimate"], ref["surface"], atol=1e-4)
    # attr(logLik(fit), "df")
    assert res.df_model == ref["df"]
    assert any("corAR1(form = ~ session | therapist/patient)" in n
               for n in res.summary().notes)


def test_ar1_needs_groups_and_time() -> None:
    df = LONG.dropna()
    with pytest.raises(ValueError, match="groups"):
        fit_rsa(df, outcome="z", x="x", y="y", residual="ar1", time="session")
    with pytest.raises(ValueError, match="time"):
        fit_rsa(df, outcome="z", x="x", y="y", groups=KEYS, residual="ar1")
    with pytest.raises(ValueError, match="residual"):
        fit_rsa(df, outcome="z", x="x", y="y", groups=KEYS, residual="rater",
                time="session")
    with pytest.raises(ValueError, match="two rows"):  # patients are inside therapists
        fit_rsa(df, outcome="z", x="x", y="y", groups=["therapist"], residual="ar1",
                time="session", unit=KEYS)


def test_ar1_with_profiled_angle_model_runs() -> None:
    res = _lagged(residual="ar1", model="SRRR", reml=False)
    assert res.angle is not None
    assert np.isfinite(res.llf)
