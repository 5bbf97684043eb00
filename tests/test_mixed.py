"""The mixed-model adapter: criterion, vcov, structures, warnings (independent checks)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.regression.mixed_linear_model import MixedLM

from alliancestats._mixed import (
    _build_statsmodels,
    _Dense,
    _levels,
    fit_mixed,
)
from alliancestats.exceptions import BoundaryFitWarning


def _nested(seed: int = 1, sd_ther: float = 0.5, sd_slope: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ther = np.repeat(np.arange(12), 12)
    pat = np.repeat(np.arange(36), 4)
    x = rng.normal(size=144)
    y = (1.0 + 0.5 * x + sd_ther * rng.normal(size=12)[ther]
         + 0.7 * rng.normal(size=36)[pat] + sd_slope * rng.normal(size=12)[ther] * x
         + rng.normal(size=144))
    return pd.DataFrame({"t": ther, "p": pat, "x": x, "y": y})


def test_criterion_equals_statsmodels_loglike_in_the_interior() -> None:
    df = _nested()
    X = pd.DataFrame({"Intercept": 1.0, "x": df["x"]})
    for reml in (True, False):
        levels = _levels(df[["t", "p"]], {"t": ["Intercept", "x"], "p": ["Intercept"]}, ())
        model, rows = _build_statsmodels(df["y"], X, levels, None)
        model.reml, model.cov_pen = reml, None
        dense = _Dense(df["y"], X, levels, rows, None, reml)
        theta = np.array([0.6, 0.1, 0.3, 0.8])
        # statsmodels' profiled log-likelihood at the same packed (lme4 theta) parameters
        assert dense.llf(theta) == pytest.approx(model.loglike(theta), abs=1e-8)


def test_vcov_is_gls_covariance_from_explicit_v() -> None:
    df = _nested(2, sd_ther=1.0)
    X = pd.DataFrame({"Intercept": 1.0, "x": df["x"]})
    fit = fit_mixed(df["y"], X, df[["t", "p"]], {"t": ["Intercept"], "p": ["Intercept"]})
    vc = fit.variance_components.set_index("level")["variance"]
    same_t = (df["t"].to_numpy()[:, None] == df["t"].to_numpy()[None, :])
    same_p = (df["p"].to_numpy()[:, None] == df["p"].to_numpy()[None, :])
    V = vc["t"] * same_t + vc["p"] * same_p + vc["Residual"] * np.eye(len(df))
    Xa = X.to_numpy()
    cov = np.linalg.inv(Xa.T @ np.linalg.solve(V, Xa))
    beta = cov @ Xa.T @ np.linalg.solve(V, df["y"].to_numpy())
    np.testing.assert_allclose(fit.cov_fe.to_numpy(), cov, rtol=1e-10)
    np.testing.assert_allclose(fit.fe_params.to_numpy(), beta, rtol=1e-10)
    # and not statsmodels' bse_fe (a joint-Hessian SE that differs slightly)
    assert fit.raw is not None
    assert isinstance(fit.raw.model, MixedLM)


def test_variance_table_layout_and_counts() -> None:
    df = _nested(3, sd_slope=0.4)
    X = pd.DataFrame({"Intercept": 1.0, "x": df["x"]})
    fit = fit_mixed(df["y"], X, df[["t", "p"]], {"t": ["Intercept", "x"], "p": ["Intercept"]})
    vc = fit.variance_components
    assert vc[["level", "term"]].values.tolist() == [
        ["t", "Intercept"], ["t", "x"], ["p", "Intercept"], ["Residual", ""]]
    assert np.isnan(vc["corr"].iloc[0])
    assert -1 <= vc["corr"].iloc[1] <= 1
    assert fit.n_groups == {"t": 12, "p": 36}
    assert fit.n_cov_params == 3 + 1 + 1
    assert fit.random_effects["p"].shape == (36, 1)


def test_singular_fit_is_flagged_and_recorded() -> None:
    df = _nested(4, sd_ther=0.0)
    X = pd.DataFrame({"Intercept": 1.0, "x": df["x"]})
    with pytest.warns(BoundaryFitWarning):
        fit = fit_mixed(df["y"], X, df[["t", "p"]], {"t": ["Intercept", "x"],
                                                      "p": ["Intercept"]})
    assert fit.is_singular
    assert any("singular" in w for w in fit.warnings)


def test_correlated_inner_terms_go_to_the_fast_engine_with_a_note() -> None:
    df = _nested(5, sd_slope=0.3)
    X = pd.DataFrame({"Intercept": 1.0, "x": df["x"]})
    spec = {"t": ["Intercept"], "p": ["Intercept", "x"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)  # singularity is not the point
        fit = fit_mixed(df["y"], X, df[["t", "p"]], spec)
        # the same model asked of the fast engine directly gives the same estimates
        direct = fit_mixed(df["y"], X, df[["t", "p"]], spec, engine="fast")
    assert fit.engine == "fast"
    assert any("fast engine" in n for n in fit.notes)
    np.testing.assert_allclose(fit.fe_params, direct.fe_params)


def test_fast_engine_refuses_uncorrelated_terms() -> None:
    df = _nested()
    X = pd.DataFrame({"Intercept": 1.0, "x": df["x"]})
    with pytest.raises(ValueError, match="statsmodels"):
        fit_mixed(df["y"], X, df[["t", "p"]], {"t": ["Intercept"], "p": ["Intercept", "x"]},
                  independent=["p"], engine="fast")


def test_unknown_levels_and_terms_raise() -> None:
    df = _nested()
    X = pd.DataFrame({"Intercept": 1.0, "x": df["x"]})
    with pytest.raises(ValueError, match="not columns of `groups`"):
        fit_mixed(df["y"], X, df[["t", "p"]], {"therapist": ["Intercept"]})
    with pytest.raises(ValueError, match="neither a column"):
        fit_mixed(df["y"], X, df[["t", "p"]], {"t": ["z"]})
