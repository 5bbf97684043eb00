"""The shared results base: inference against statsmodels OLS, summary, tidy frame."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import statsmodels.api as sm

from alliancestats.results import (
    EFFECT_COLUMNS,
    FitRecord,
    ModelResults,
    Summary,
    linear_combination,
)


@pytest.fixture(scope="module")
def ols_fit() -> tuple[ModelResults, object]:
    rng = np.random.default_rng(11)
    X = pd.DataFrame({"x": rng.normal(size=60), "z": rng.normal(size=60)})
    y = 1 + 0.5 * X.x - 0.25 * X.z + rng.normal(size=60)
    ols = sm.OLS(y, sm.add_constant(X).rename(columns={"const": "Intercept"})).fit()
    record = FitRecord(
        params=ols.params, cov_params=ols.cov_params(), nobs=60, llf=ols.llf,
        method="OLS", n_cov_params=1, df_resid=ols.df_resid, engine="ols",
        variance_components=pd.DataFrame(
            {"level": ["Residual"], "term": [""], "variance": [ols.scale],
             "sd": [np.sqrt(ols.scale)], "corr": [np.nan]}
        ),
        warnings=("demo warning",),
    )
    res = ModelResults(record, formula="y ~ x + z", roles={"outcome": "y"})
    return res, ols


def test_inference_matches_statsmodels(ols_fit) -> None:
    res, ols = ols_fit
    np.testing.assert_allclose(res.bse, ols.bse, rtol=1e-12)
    np.testing.assert_allclose(res.pvalues, ols.pvalues, rtol=1e-10)
    np.testing.assert_allclose(res.conf_int(0.1).to_numpy(), ols.conf_int(0.1).to_numpy(),
                               rtol=1e-12)
    # R's AIC(lm) and BIC(lm) count the residual variance: k = p + 1.
    assert res.aic == pytest.approx(ols.aic + 2)
    assert res.bic == pytest.approx(ols.bic + np.log(60))
    assert res.inference == "t"


def test_contrast_equals_statsmodels_t_test(ols_fit) -> None:
    res, ols = ols_fit
    L = pd.DataFrame({"x": [1.0, 1.0], "z": [1.0, -1.0]}, index=["x+z", "x-z"])
    mine = res.contrast(L)
    ref = ols.t_test(L.reindex(columns=ols.params.index, fill_value=0.0).to_numpy())
    np.testing.assert_allclose(mine["estimate"], np.ravel(ref.effect), rtol=1e-12)
    np.testing.assert_allclose(mine["std_error"], np.ravel(ref.sd), rtol=1e-12)
    np.testing.assert_allclose(mine["p_value"], np.ravel(ref.pvalue), rtol=1e-10)
    joint = res.wald_test(L)
    ref_f = ols.f_test(L.reindex(columns=ols.params.index, fill_value=0.0).to_numpy())
    assert joint["statistic"] == pytest.approx(float(ref_f.fvalue))
    assert joint["p_value"] == pytest.approx(float(ref_f.pvalue))


def test_linear_combination_z_and_errors() -> None:
    b = pd.Series([1.0, 2.0], index=["a", "b"])
    V = pd.DataFrame([[1.0, 0.5], [0.5, 4.0]], index=b.index, columns=b.index)
    out = linear_combination(b, V, pd.DataFrame({"a": [1.0], "b": [-1.0]}))
    assert out["std_error"].iloc[0] == pytest.approx(np.sqrt(1 + 4 - 1))
    assert list(out.columns) == EFFECT_COLUMNS
    with pytest.raises(ValueError, match="unknown coefficients"):
        linear_combination(b, V, pd.DataFrame({"c": [1.0]}))


def test_immutable_and_copies(ols_fit) -> None:
    res, _ = ols_fit
    with pytest.raises(AttributeError, match="immutable"):
        res.foo = 1
    params = res.params
    params.iloc[0] = 99.0
    assert res.params.iloc[0] != 99.0
    with pytest.raises(ValueError, match="`alpha` must be between 0 and 1"):
        res.conf_int(1.5)


def test_summary_order_and_formats(ols_fit) -> None:
    res, _ = ols_fit
    summary = res.summary()
    text = str(summary)
    order = [text.index(s) for s in ("fit by OLS", "Formula", "Fit", "Random effects",
                                     "Fixed effects (t tests)", "Warnings", "demo warning")]
    assert order == sorted(order)
    assert "<table" in summary._repr_html_()
    assert r"\begin{tabular}" in summary.as_latex()
    assert "outcome" in text


def test_to_frame_schema(ols_fit) -> None:
    res, _ = ols_fit
    frame = res.to_frame()
    assert list(frame.columns) == ["term", *EFFECT_COLUMNS, "component"]
    assert set(frame.component) == {"fixed", "variance"}
    assert frame.loc[frame.component == "fixed", "term"].tolist() == ["Intercept", "x", "z"]


def test_summary_standalone() -> None:
    s = Summary("T", [("a", "b")], [("Tab", pd.DataFrame({"p_value": [1e-9]}))],
                warnings=["w"], notes=["n"])
    assert "< 0.001" in s.as_text()  # p-values print as the report prints them
    assert "Note: n" in s.as_text()


def test_derived_values_are_computed_once_and_handed_out_as_copies() -> None:
    from alliancestats import fit_truth_bias, simulate_prn

    res = fit_truth_bias(simulate_prn(12, 36, 4, rng=2), judgment="alliance_therapist",
                         truth="alliance_patient", groups=["therapist", "patient"],
                         moderators="condition", random="intercept")
    first_bse, first_df, first_table = res.bse, res.df, res.effects_at()
    # the computation the cache stands for (Satterthwaite df of each coefficient)
    names = res.params.index
    eye = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
    np.testing.assert_array_equal(first_df.to_numpy(), res.contrast_df(eye))
    np.testing.assert_array_equal(first_bse.to_numpy(),
                                  np.sqrt(np.diag(res.cov_params().to_numpy())))
    # changing what was handed out changes nothing inside
    first_bse.iloc[:] = -1.0
    first_df.iloc[:] = -1.0
    first_table.loc[:, "estimate"] = 99.0
    assert (res.bse > 0).all()
    assert (res.df > 0).all()
    assert not (res.effects_at()["estimate"] == 99.0).any()
    assert res.truth_force["estimate"] != 99.0
    # another alpha is its own table; moderator values are not cached
    wide = res.effects_at(alpha=0.01)
    assert (wide["conf_high"] - wide["conf_low"]
            > res.effects_at()["conf_high"] - res.effects_at()["conf_low"]).all()
    assert len(res.effects_at(condition=[0, 1])) == 4
