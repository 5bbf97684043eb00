"""The mixed-model adapter: criterion, vcov, structures, warnings (independent checks)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from statsmodels.regression.mixed_linear_model import MixedLM

from alliancestats._mixed import fit_mixed
from alliancestats._mixed._spec import levels_from_groups
from alliancestats._mixed._statsmodels import build_mixedlm
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


def test_engine_criterion_equals_statsmodels_loglike_in_the_interior() -> None:
    # Two implementations of the profiled likelihood: statsmodels' MixedLM.loglike and the
    # engine's blocked criterion (evaluated at the same relative covariance factors).
    from alliancestats._mixed import _engine_model

    df = _nested()
    X = pd.DataFrame({"Intercept": 1.0, "x": df["x"]})
    levels = levels_from_groups(df[["t", "p"]], {"t": ["Intercept", "x"], "p": ["Intercept"]},
                                ())
    model = build_mixedlm(df["y"], X, levels, None)
    sm_theta = np.array([0.6, 0.1, 0.3, 0.8])  # statsmodels: row-wise tril, then sqrt(vc)
    engine_theta = np.array([0.6, 0.1, 0.3, 0.8])  # lme4: column-wise (same for 2x2)
    for reml in (True, False):
        model.reml, model.cov_pen = reml, None
        engine = _engine_model(df["y"], X, levels, reml, None)
        llf = engine.evaluate(df["y"].to_numpy(), engine_theta).llf
        assert llf == pytest.approx(model.loglike(sm_theta), abs=1e-8)


def test_vcov_is_gls_covariance_from_explicit_v() -> None:
    df = _nested(2, sd_ther=1.0)
    X = pd.DataFrame({"Intercept": 1.0, "x": df["x"]})
    for engine in ("fast", "statsmodels"):
        fit = fit_mixed(df["y"], X, df[["t", "p"]], {"t": ["Intercept"], "p": ["Intercept"]},
                        engine=engine)
        vc = fit.variance_components.set_index("level")["variance"]
        same_t = (df["t"].to_numpy()[:, None] == df["t"].to_numpy()[None, :])
        same_p = (df["p"].to_numpy()[:, None] == df["p"].to_numpy()[None, :])
        V = vc["t"] * same_t + vc["p"] * same_p + vc["Residual"] * np.eye(len(df))
        Xa = X.to_numpy()
        cov = np.linalg.inv(Xa.T @ np.linalg.solve(V, Xa))
        beta = cov @ Xa.T @ np.linalg.solve(V, df["y"].to_numpy())
        np.testing.assert_allclose(fit.cov_fe.to_numpy(), cov, rtol=1e-10)
        np.testing.assert_allclose(fit.fe_params.to_numpy(), beta, rtol=1e-10)


def test_statsmodels_engine_is_a_genuine_mixedlm_fit_agreeing_with_the_engine() -> None:
    df = _nested(3, sd_slope=0.4)
    X = pd.DataFrame({"Intercept": 1.0, "x": df["x"]})
    spec = {"t": ["Intercept", "x"], "p": ["Intercept"]}
    for reml in (True, False):
        sm = fit_mixed(df["y"], X, df[["t", "p"]], spec, engine="statsmodels", reml=reml)
        fast = fit_mixed(df["y"], X, df[["t", "p"]], spec, engine="fast", reml=reml)
        assert sm.engine == "statsmodels"
        assert fast.engine == "fast"
        assert isinstance(sm.raw.model, MixedLM)
        assert fast.raw is None
        # statsmodels' own estimates, not the engine's: its fixed effects are its GLS ones
        np.testing.assert_allclose(sm.fe_params, sm.raw.fe_params, rtol=1e-6)
        # two optimisers of the same criterion reach the same optimum
        assert sm.llf == pytest.approx(fast.llf, abs=1e-6)
        np.testing.assert_allclose(sm.fe_params, fast.fe_params, rtol=1e-4)
        np.testing.assert_allclose(sm.cov_fe, fast.cov_fe, rtol=1e-3)
        np.testing.assert_allclose(sm.variance_components["variance"],
                                   fast.variance_components["variance"], rtol=1e-3)


def test_uncorrelated_terms_fit_by_both_engines() -> None:
    df = _nested(6, sd_slope=0.3)
    X = pd.DataFrame({"Intercept": 1.0, "x": df["x"]})
    spec = {"t": ["Intercept"], "p": ["Intercept", "x"]}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        fits = [fit_mixed(df["y"], X, df[["t", "p"]], spec, independent=["p"], engine=e)
                for e in ("fast", "statsmodels")]
    assert fits[0].n_cov_params == 1 + 2 + 1
    assert fits[0].llf == pytest.approx(fits[1].llf, abs=1e-5)
    assert np.isnan(fits[0].variance_components["corr"]).all()


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


@pytest.mark.parametrize("engine", ["fast", "statsmodels"])
def test_singular_fit_is_flagged_and_recorded(engine: str) -> None:
    df = _nested(4, sd_ther=0.0)
    X = pd.DataFrame({"Intercept": 1.0, "x": df["x"]})
    with pytest.warns(BoundaryFitWarning):
        fit = fit_mixed(df["y"], X, df[["t", "p"]], {"t": ["Intercept", "x"],
                                                      "p": ["Intercept"]}, engine=engine)
    assert fit.is_singular
    assert any("singular" in w for w in fit.warnings)


def test_statsmodels_refuses_correlated_inner_terms() -> None:
    df = _nested(5, sd_slope=0.3)
    X = pd.DataFrame({"Intercept": 1.0, "x": df["x"]})
    spec = {"t": ["Intercept"], "p": ["Intercept", "x"]}
    with pytest.raises(ValueError, match="statsmodels MixedLM cannot fit correlated"):
        fit_mixed(df["y"], X, df[["t", "p"]], spec, engine="statsmodels")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)  # singularity is not the point
        fit = fit_mixed(df["y"], X, df[["t", "p"]], spec)
    assert fit.engine == "fast"


def test_unknown_levels_and_terms_raise() -> None:
    df = _nested()
    X = pd.DataFrame({"Intercept": 1.0, "x": df["x"]})
    with pytest.raises(ValueError, match="not columns of `groups`"):
        fit_mixed(df["y"], X, df[["t", "p"]], {"therapist": ["Intercept"]})
    with pytest.raises(ValueError, match="neither a column"):
        fit_mixed(df["y"], X, df[["t", "p"]], {"t": ["z"]})
    with pytest.raises(ValueError, match="engine"):
        fit_mixed(df["y"], X, df[["t", "p"]], {"t": ["Intercept"]}, engine="lme4")


def test_as_many_random_effects_as_observations_is_refused() -> None:
    # lme4 (checkZdims): "number of observations (=144) <= number of random effects
    # (=144) for term (1 + x | p)"; every model that fits through fit_mixed refuses it
    df = _nested()
    X = pd.DataFrame({"Intercept": 1.0, "x": df["x"]})
    groups = df[["t", "p"]].assign(p=np.arange(72).repeat(2))  # 72 patients x 2 terms
    with pytest.raises(ValueError, match=r"`random`: level 'p' has 144 random effects"):
        fit_mixed(df["y"], X, groups, {"t": ["Intercept"], "p": ["Intercept", "x"]})
    # one term fewer at that level: 72 < 144 random effects, fitted as lme4 fits it
    fit = fit_mixed(df["y"], X, groups, {"t": ["Intercept"], "p": ["Intercept"]})
    assert fit.nobs == 144


def test_random_effects_on_first_use_equal_the_engine_modes() -> None:
    import copy
    import pickle

    from alliancestats._mixed._engine import NestedLMM

    df = _nested(5, sd_slope=0.3)
    X = pd.DataFrame({"Intercept": 1.0, "x": df["x"]})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        fit = fit_mixed(df["y"], X, df[["t", "p"]],
                        {"t": ["Intercept", "x"], "p": ["Intercept"]})
    # the engine's own conditional modes at its own fit (computed eagerly there)
    codes = np.column_stack([pd.factorize(df["t"], sort=True)[0],
                             pd.factorize(df["p"], sort=True)[0]])
    ref = NestedLMM.from_codes(X.to_numpy(), codes, [X.to_numpy(), X.to_numpy()[:, :1]]
                               ).fit(df["y"].to_numpy())
    assert list(fit.random_effects) == ["t", "p"]
    for level, modes in zip(["t", "p"], ref.random_effects, strict=True):
        np.testing.assert_allclose(fit.random_effects[level].to_numpy(), modes.to_numpy(),
                                   rtol=1e-6, atol=1e-10)
    assert fit.random_effects["t"].index.tolist() == list(range(12))
    assert list(fit.random_effects["t"].columns) == ["Intercept", "x"]
    # pickled and copied as a plain dict of the same frames
    for clone in (pickle.loads(pickle.dumps(fit.random_effects)),
                  copy.deepcopy(fit.random_effects)):
        assert isinstance(clone, dict)
        pd.testing.assert_frame_equal(clone["p"], fit.random_effects["p"])
