"""compare_residuals: likelihood-ratio tests of residual structures against nlme anova()."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from alliancestats import (
    ResidualComparison,
    compare_residuals,
    fit_growth,
    fit_truth_bias,
    simulate_prn,
    stack_raters,
)
from alliancestats.exceptions import BoundaryFitWarning, DataWarning

REF = Path(__file__).parent / "reference"
R = json.loads((REF / "results" / "residual_lrt_reference.json").read_text())
TB = {"judgment": "alliance_therapist", "truth": "alliance_patient",
      "groups": ["therapist", "patient"], "moderators": ["condition", "session"],
      "time": "session", "random": "intercept"}
GROWTH = {"outcome": "alliance", "time": "session", "rater": "rater",
          "groups": ["therapist", "patient"], "moderators": "condition",
          "random": "intercept"}
RATINGS = {"therapist": "alliance_therapist", "patient": "alliance_patient"}


def quietly(func: Any, *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        warnings.simplefilter("ignore", DataWarning)
        return func(*args, **kwargs)


def data(name: str) -> pd.DataFrame:
    return pd.read_csv(REF / "data" / f"tb_{name}.csv")


def check_anova(res: ResidualComparison, ref: dict[str, Any], second: str,
                nobs: int) -> None:
    """One anova(m0, m1) of nlme against the first and the ``second`` row."""
    table = res.table.loc[[res.table.index[0], second]]
    # anova(m0, m1)$df: every parameter, fixed effects included
    assert list(table["npar"]) == ref["df"]
    # anova(m0, m1)$logLik (REML)
    np.testing.assert_allclose(table["llf"], ref["logLik"], rtol=1e-6)
    # anova(m0, m1)$AIC
    np.testing.assert_allclose(table["aic"], ref["AIC"], rtol=1e-6)
    # anova(m0, m1)$BIC: nlme uses log(N - p) for REML fits, the library log(N) (lme4)
    p = len(res.fits[second].params)
    bic_nlme = table["aic"] + (np.log(nobs - p) - 2.0) * table["npar"]
    np.testing.assert_allclose(bic_nlme, ref["BIC"], rtol=1e-6)
    np.testing.assert_allclose(table["bic"], table["aic"] + (np.log(nobs) - 2.0)
                               * table["npar"], rtol=1e-12)
    # anova(m0, m1)$L.Ratio[2] and its p-value
    assert table.loc[second, "statistic"] == pytest.approx(ref["L_ratio"], rel=1e-4,
                                                             abs=1e-5)
    assert table.loc[second, "p_value"] == pytest.approx(ref["p_value"], rel=1e-3)


@pytest.mark.reference
@pytest.mark.parametrize("dataset", ["small", "medium"])
def test_truth_bias_iid_against_ar1_matches_nlme_anova(dataset: str) -> None:
    # R: anova(lme(..., method = "REML"), update(m0, correlation = corAR1(...)))
    res = quietly(compare_residuals, fit_truth_bias, data(dataset),
                  residuals=["iid", "ar1"], **TB)
    ref = R["datasets"][dataset]
    check_anova(res, ref["tb_iid_ar1"], "ar1", ref["tb_nobs"])
    assert res.criterion == "REML"
    assert res.table.loc["ar1", "df"] == 1


@pytest.mark.reference
@pytest.mark.parametrize("dataset", ["small", "medium"])
def test_growth_iid_against_rater_and_ar1_matches_nlme_anova(dataset: str) -> None:
    # R: anova(g0, update(g0, weights = varIdent(~ 1 | rater),
    #                     correlation = corCompSymm(~ 1 | therapist/patient/session)))
    # and anova(g0, update(g0, correlation = corAR1(~ session | therapist/patient/rater)))
    long = stack_raters(data(dataset), ratings=RATINGS)
    res = quietly(compare_residuals, fit_growth, long, residuals=["iid", "rater", "ar1"],
                  **GROWTH)
    ref = R["datasets"][dataset]
    check_anova(res, ref["growth_iid_rater"], "rater", ref["growth_nobs"])
    check_anova(res, ref["growth_iid_ar1"], "ar1", ref["growth_nobs"])
    assert res.table.loc["rater", "df"] == 2


def test_reference_file_records_versions() -> None:
    assert R["r_version"].startswith("R version 4.2.2")
    assert R["nlme_version"] == "3.1.162"


def test_fits_and_statistic_agree() -> None:
    df = simulate_prn(15, 45, rng=11)
    res = quietly(compare_residuals, fit_truth_bias, df, residuals=("iid", "ar1"), **TB)
    iid, ar1 = res.fits["iid"], res.fits["ar1"]
    assert iid.residual_params.empty
    assert list(ar1.residual_params.index) == ["phi"]
    # the same fixed effects; the statistic is twice the REML log-likelihood difference
    assert list(iid.params.index) == list(ar1.params.index)
    assert res.table.loc["ar1", "statistic"] == pytest.approx(
        max(2 * (ar1.llf - iid.llf), 0.0), rel=1e-12)
    assert np.isnan(res.table.loc["iid", "statistic"])
    assert "Likelihood-ratio tests of residual structures" in str(res.summary())


def test_ml_fits_compare_ml_likelihoods() -> None:
    df = simulate_prn(15, 45, rng=12)
    res = quietly(compare_residuals, fit_truth_bias, df, residuals=["iid", "ar1"],
                  reml=False, **TB)
    assert res.criterion == "ML"
    assert res.fits["ar1"].method == "ML"


def test_fractional_time_says_the_null_is_on_the_boundary() -> None:
    df = simulate_prn(15, 45, rng=13)
    df = df.assign(week=df["session"] * 0.5)
    res = quietly(compare_residuals, fit_truth_bias, df, residuals=["iid", "ar1"],
                  **{**TB, "time": "week", "moderators": ["condition", "week"]})
    assert any("boundary" in note for note in res.notes)
    assert res.fits["ar1"].residual_params.loc["phi", "estimate"] >= 0.0


def test_bad_input_is_named() -> None:
    df = simulate_prn(6, 12, rng=1)
    with pytest.raises(TypeError, match="`fit`"):
        compare_residuals("fit_truth_bias", df, **TB)
    with pytest.raises(TypeError, match="`residuals`"):
        compare_residuals(fit_truth_bias, df, residuals="ar1", **TB)
    with pytest.raises(ValueError, match="unknown"):
        compare_residuals(fit_truth_bias, df, residuals=["iid", "ar2"], **TB)
    with pytest.raises(ValueError, match="at least two"):
        compare_residuals(fit_truth_bias, df, residuals=["iid", "iid"], **TB)
    with pytest.raises(ValueError, match="nested"):
        compare_residuals(fit_growth, df, residuals=["ar1", "rater"], **GROWTH)
    with pytest.raises(ValueError, match="residuals="):
        compare_residuals(fit_truth_bias, df, residual="ar1", **TB)


def test_input_is_not_mutated() -> None:
    df = simulate_prn(8, 20, rng=2)
    before = df.copy()
    quietly(compare_residuals, fit_truth_bias, df, **TB)
    pd.testing.assert_frame_equal(df, before)
