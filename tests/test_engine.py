"""The nested mixed-model engine against lme4 (frozen values), statsmodels, and bad input.

Reference values: ``tests/reference/results/engine_reference.json``, written by
``tests/reference/r/engine_reference.R`` from the data of ``make_engine_data.py``.
Level 0 of the engine is ``g1`` (therapist), level 1 is ``g1:g2`` (patient in therapist).
"""

from __future__ import annotations

import json
import warnings
from functools import cache
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from alliancestats._mixed._engine import EngineFit, NestedLMM, fit_nested_lmm

REF = Path(__file__).parent / "reference"
DATASETS = ("prn", "singular", "large")
MODELS = ("ri", "pslope", "slopes")
RTOL_FIT = 1e-6  # fixed effects, log-likelihood
RTOL_VC = 1e-4  # standard errors, variance components
ATOL_VC = 1e-4  # boundary components (lme4 reports 0 or ~1e-8)


@cache
def reference() -> dict[str, Any]:
    return json.loads((REF / "results" / "engine_reference.json").read_text())


@cache
def data(name: str) -> pd.DataFrame:
    return pd.read_csv(REF / "data" / f"engine_{name}.csv")


def design(name: str, model: str) -> tuple[np.ndarray, np.ndarray, pd.DataFrame, list]:
    d = data(name)
    X = np.column_stack([np.ones(len(d)), d["x1"], d["x2"]])
    one, slope = X[:, :1], X[:, :2]
    Z = {"ri": [one, one], "pslope": [one, slope], "slopes": [slope, slope]}[model]
    return d["y"].to_numpy(), X, d[["g1", "g2"]], Z


@cache
def fitted(name: str, model: str, crit: str) -> EngineFit:
    y, X, g, Z = design(name, model)
    return fit_nested_lmm(y, X, g, Z, reml=crit == "REML",
                          level_names=["g1", "g1:g2"])


CASES = [(n, m, c) for n in DATASETS for m in MODELS for c in ("REML", "ML")]


def _sd_corr(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    sd = np.sqrt(np.diag(cov))
    with np.errstate(invalid="ignore", divide="ignore"):
        corr = cov / np.outer(sd, sd)
    return sd, corr


@pytest.mark.reference
@pytest.mark.parametrize(("name", "model", "crit"), CASES)
def test_fixed_effects_and_loglik_match_lme4(name: str, model: str, crit: str) -> None:
    r = reference()["data"][name][model][crit]
    fit = fitted(name, model, crit)
    assert fit.converged
    np.testing.assert_allclose(fit.beta, r["fixef"], rtol=RTOL_FIT, atol=1e-9)  # fixef(fit)
    np.testing.assert_allclose(fit.llf, r["logLik"], rtol=RTOL_FIT)  # logLik(fit)
    assert fit.is_singular == r["isSingular"]  # isSingular(fit)
    assert fit.nobs == r["nobs"]  # nobs(fit)
    assert fit.n_groups == (r["ngrps"]["g1"], r["ngrps"]["g1:g2"])  # ngrps(fit)


@pytest.mark.reference
@pytest.mark.parametrize(("name", "model", "crit"), CASES)
def test_vcov_and_variance_components_match_lme4(name: str, model: str, crit: str) -> None:
    r = reference()["data"][name][model][crit]
    fit = fitted(name, model, crit)
    np.testing.assert_allclose(fit.cov_beta, r["vcov"], rtol=RTOL_VC, atol=1e-10)  # vcov(fit)
    np.testing.assert_allclose(np.sqrt(fit.sigma2), r["sigma"], rtol=RTOL_VC)  # sigma(fit)
    for level, key in enumerate(("g1", "g1_g2")):
        sd, corr = _sd_corr(fit.cov_re[level])
        # attr(VarCorr(fit)[[level]], "stddev")
        np.testing.assert_allclose(sd, np.ravel(r[key]["sd"]), rtol=RTOL_VC, atol=ATOL_VC)
        if sd.size > 1 and sd.min() > 1e-3:
            # attr(VarCorr(fit)[[level]], "correlation")
            np.testing.assert_allclose(corr, r[key]["corr"], atol=ATOL_VC * 10)
        # VarCorr(fit)[[level]] (the covariance matrix itself)
        cov = np.reshape(r[key]["cov"], fit.cov_re[level].shape)
        np.testing.assert_allclose(fit.cov_re[level], cov, rtol=RTOL_VC, atol=ATOL_VC)


@pytest.mark.reference
@pytest.mark.parametrize("model", MODELS)
def test_conditional_modes_match_lme4(model: str) -> None:
    r = reference()["data"]["prn"][model]["REML"]
    fit = fitted("prn", model, "REML")
    re = fit.random_effects[0]
    assert list(re.index) == sorted(data("prn")["g1"].unique())
    # ranef(fit)$g1 (rows in sorted factor-level order)
    np.testing.assert_allclose(re.to_numpy(), np.reshape(r["ranef_g1"], re.shape),
                               rtol=1e-4, atol=1e-6)


def test_random_effects_are_indexed_by_nested_unit() -> None:
    fit = fitted("prn", "pslope", "REML")
    inner = fit.random_effects[1]
    d = data("prn")
    assert inner.shape == (d.groupby(["g1", "g2"]).ngroups, 2)
    assert isinstance(inner.index, pd.MultiIndex)
    assert inner.index.is_monotonic_increasing
    # BLUPs of a level average ~0 (the penalty pulls them towards the mean)
    assert abs(inner.iloc[:, 0].mean()) < 0.1 * inner.iloc[:, 0].std()


@pytest.mark.parametrize("reml", [True, False])
def test_random_intercepts_match_statsmodels_llf(reml: bool) -> None:
    smf = pytest.importorskip("statsmodels.formula.api")
    d = data("prn")
    model = smf.mixedlm("y ~ x1 + x2", d, groups="g1", re_formula="1",
                        vc_formula={"patient": "0 + C(g2)"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        sm = model.fit(reml=reml, method=["lbfgs"])
    fit = fitted("prn", "ri", "REML" if reml else "ML")
    np.testing.assert_allclose(fit.llf, sm.llf, rtol=1e-7)
    np.testing.assert_allclose(fit.beta, sm.fe_params.to_numpy(), rtol=1e-4)


def test_fit_many_warm_starts_agree_with_cold_fits() -> None:
    y, X, g, Z = design("prn", "pslope")
    rng = np.random.default_rng(5)
    Y = np.column_stack([y, y + rng.normal(0, 0.3, y.size)])
    model = NestedLMM(X, g, Z)
    many = model.fit_many(Y)
    for col, fit in enumerate(many):
        cold = model.fit(Y[:, col])
        np.testing.assert_allclose(fit.llf, cold.llf, rtol=1e-9)
        np.testing.assert_allclose(fit.beta, cold.beta, rtol=1e-5, atol=1e-8)


@pytest.mark.reference
@pytest.mark.parametrize("model", MODELS)
@pytest.mark.parametrize("shift", [0.2, 5.0])
def test_warm_starts_far_from_the_optimum_reach_lme4(model: str, shift: float) -> None:
    # warm starts optimise over curvature-scaled θ; a start far off (curvature there
    # unlike at the optimum) must still end at lme4's optimum
    r = reference()["data"]["prn"][model]["REML"]
    y, X, g, Z = design("prn", model)
    model_ = NestedLMM(X, g, Z)
    fit = model_.fit(y, start=fitted("prn", model, "REML").theta * shift + 0.01)
    assert fit.converged
    np.testing.assert_allclose(fit.llf, r["logLik"], rtol=RTOL_FIT)
    np.testing.assert_allclose(fit.beta, r["fixef"], rtol=RTOL_FIT, atol=1e-9)
    np.testing.assert_allclose(fit.cov_beta, r["vcov"], rtol=RTOL_VC)


def _statsmodels_llf(d: pd.DataFrame, vc: dict[str, str]) -> float:
    smf = pytest.importorskip("statsmodels.formula.api")
    model = smf.mixedlm("y ~ x1 + x2", d, groups="g1", re_formula="1", vc_formula=vc or None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(model.fit(reml=True).llf)


def test_single_level_matches_statsmodels() -> None:
    y, X, g, _ = design("prn", "ri")
    fit = fit_nested_lmm(y, X, g[["g1"]], [X[:, :1]])
    assert fit.n_groups == (40,)
    assert len(fit.cov_re) == 1
    # statsmodels MixedLM(groups=g1) REML log-likelihood
    np.testing.assert_allclose(fit.llf, _statsmodels_llf(data("prn"), {}), rtol=1e-7)


@pytest.mark.reference
@pytest.mark.parametrize("crit", ["REML", "ML"])
def test_three_levels_match_lme4(crit: str) -> None:
    # a third level: session parity within patient (random intercepts at all levels)
    r = reference()["three_levels"][crit]
    d = data("prn").assign(c=lambda f: f["session"] % 2)
    y, X, _, _ = design("prn", "ri")
    one = X[:, :1]
    fit = fit_nested_lmm(y, X, d[["g1", "g2", "c"]], [one, one, one], reml=crit == "REML")
    assert fit.n_groups[:2] == (40, 117)
    np.testing.assert_allclose(fit.llf, r["logLik"], rtol=RTOL_FIT)  # logLik(fit)
    np.testing.assert_allclose(fit.beta, r["fixef"], rtol=RTOL_FIT)  # fixef(fit)
    np.testing.assert_allclose(fit.cov_beta, r["vcov"], rtol=RTOL_VC)  # vcov(fit)
    sds = [np.sqrt(c[0, 0]) for c in fit.cov_re]
    np.testing.assert_allclose(sds, r["sd"], rtol=RTOL_VC, atol=ATOL_VC)  # VarCorr(fit) SDs
    np.testing.assert_allclose(np.sqrt(fit.sigma2), r["sigma"], rtol=RTOL_VC)  # sigma(fit)
    assert fit.is_singular == r["isSingular"]  # isSingular(fit)


# --------------------------------------------------------------------------- bad input


def _small() -> tuple[np.ndarray, np.ndarray, np.ndarray, list[np.ndarray]]:
    rng = np.random.default_rng(0)
    g = np.column_stack([np.repeat(np.arange(6), 8), np.tile(np.repeat([0, 1], 4), 6)])
    X = np.column_stack([np.ones(48), rng.normal(size=48)])
    return rng.normal(size=48), X, g, [X[:, :1], X[:, :1]]


def test_mismatched_shapes_raise() -> None:
    y, X, g, Z = _small()
    with pytest.raises(ValueError, match="groups"):
        NestedLMM(X, g[:-1], Z)
    with pytest.raises(ValueError, match=r"Z\[1\]"):
        NestedLMM(X, g, [Z[0], Z[1][:-1]])
    with pytest.raises(ValueError, match="list of 2"):
        NestedLMM(X, g, [Z[0]])
    with pytest.raises(ValueError, match="`y`"):
        NestedLMM(X, g, Z).fit(y[:-1])
    with pytest.raises(ValueError, match="start"):
        NestedLMM(X, g, Z).fit(y, start=[1.0])


def test_nan_raises() -> None:
    y, X, g, Z = _small()
    Xn = X.copy()
    Xn[3, 1] = np.nan
    with pytest.raises(ValueError, match=r"`X` has 1 missing.*row 3, column 1"):
        NestedLMM(Xn, g, Z)
    yn = y.copy()
    yn[0] = np.inf
    with pytest.raises(ValueError, match="`y`"):
        NestedLMM(X, g, Z).fit(yn)
    gn = pd.DataFrame(g).astype(float)
    gn.iloc[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"groups.*missing"):
        NestedLMM(X, gn, Z)


def test_rank_deficient_x_raises() -> None:
    _, X, g, Z = _small()
    with pytest.raises(ValueError, match="rank deficient"):
        NestedLMM(np.column_stack([X, 2 * X[:, 1]]), g, Z)


def test_level_with_one_unit_raises() -> None:
    _, X, g, Z = _small()
    g1 = g.copy()
    g1[:, 0] = 7
    with pytest.raises(ValueError, match=r"level 0.*only 1 unit"):
        NestedLMM(X, g1, Z)


def test_level_with_a_unit_per_row_raises() -> None:
    _, X, g, Z = _small()
    g1 = np.column_stack([g[:, 0], np.arange(48)])
    with pytest.raises(ValueError, match="confounded with the residual"):
        NestedLMM(X, g1, Z)


def test_non_numeric_raises_type_error() -> None:
    _, _, g, Z = _small()
    with pytest.raises(TypeError, match="`X` must be numeric"):
        NestedLMM(np.array([["a"] * 2] * 48), g, Z)


# --------------------------------------------------------------------------- fast paths


def _codes_of(groups: pd.DataFrame) -> np.ndarray:
    """Sorted codes of (g1) and (g1, g2): what the constructor derives from labels."""
    return np.column_stack([groups.groupby("g1", sort=True).ngroup(),
                            groups.groupby(["g1", "g2"], sort=True).ngroup()])


@pytest.mark.parametrize("model", MODELS)
def test_from_codes_matches_labelled_constructor(model: str) -> None:
    y, X, g, Z = design("prn", model)
    perm = np.random.default_rng(3).permutation(len(y))  # row order must not matter
    y, X, g, Z = y[perm], X[perm], g.iloc[perm], [z[perm] for z in Z]
    ref = NestedLMM(X, g, Z).fit(y)
    fit = NestedLMM.from_codes(X, _codes_of(g), Z).fit(y)
    assert fit.n_groups == ref.n_groups == (40, 117)
    for name in ("llf", "beta", "cov_beta", "theta", "sigma2"):
        np.testing.assert_allclose(getattr(fit, name), getattr(ref, name), rtol=1e-12)
    np.testing.assert_allclose(fit.random_effects[1].to_numpy(),
                               ref.random_effects[1].to_numpy(), rtol=1e-10)


def test_fit_without_random_effects_changes_nothing_else() -> None:
    y, X, g, Z = design("prn", "pslope")
    model = NestedLMM(X, g, Z)
    full, lean = model.fit(y), model.fit(y, random_effects=False)
    assert lean.random_effects == []
    assert len(full.random_effects) == 2
    for name in ("llf", "beta", "cov_beta", "theta", "sigma2"):
        np.testing.assert_array_equal(getattr(lean, name), getattr(full, name))


def test_from_codes_rejects_codes_it_cannot_use() -> None:
    _, X, g, Z = _small()
    codes = np.column_stack([g[:, 0], g[:, 0] * 2 + g[:, 1]])
    NestedLMM.from_codes(X, codes, Z)  # valid
    with pytest.raises(TypeError, match="`codes` must be integers"):
        NestedLMM.from_codes(X, codes.astype(float), Z)
    with pytest.raises(ValueError, match="every code"):
        NestedLMM.from_codes(X, codes * 2, Z)  # odd codes unused
    with pytest.raises(ValueError, match="not nested"):
        NestedLMM.from_codes(X, np.column_stack([g[:, 0], g[:, 1]]), Z)  # patient 0 in all
    reordered = codes.copy()
    reordered[:, 1] = (11 - codes[:, 1])  # therapist 0's patients get the last codes
    with pytest.raises(ValueError, match="ordered by parent"):
        NestedLMM.from_codes(X, reordered, Z)
    with pytest.raises(ValueError, match="shape"):
        NestedLMM.from_codes(X, codes[:-1], Z)


@pytest.mark.parametrize("start", [[1.0, 0.0, 1.0], [0.2, -0.5, 0.0], [3.0, 2.0, 0.5]])
def test_slsqp_loop_takes_scipys_steps(start: list[float]) -> None:
    # the engine's SLSQP loop against optimize.minimize on a problem with one active
    # bound and one free coordinate: the same iterates to the last bit
    from scipy import optimize

    from alliancestats._mixed._engine._model import _slsqp

    target = np.array([-0.3, 0.7, 1.2])
    weight = np.array([[2.0, 0.3, 0.0], [0.3, 1.0, 0.2], [0.0, 0.2, 0.5]])

    def fun(x: np.ndarray) -> float:
        r = x - target
        return float(r @ weight @ r + 0.1 * np.sum(r ** 4))

    def jac(x: np.ndarray) -> np.ndarray:
        r = x - target
        return 2.0 * weight @ r + 0.4 * r ** 3

    bounds = [(0.0, None), (None, None), (0.0, None)]
    options = {"ftol": 1e-13, "maxiter": 1000}
    ours = _slsqp(fun, jac, np.array(start), bounds, options)
    ref = optimize.minimize(fun, np.array(start), jac=jac, method="SLSQP", bounds=bounds,
                            options=options)
    assert ours.x.tolist() == ref.x.tolist()
    assert ours.fun == ref.fun
    assert ours.nit == ref.nit
    assert (ours.success, ours.message) == (ref.success, ref.message)
    # the bound is active (scipy 1.17 stops 1e-17 inside it)
    assert ours.x[0] == pytest.approx(0.0, abs=1e-12)


def test_ldl_diagonal_reads_slsqps_packed_factors() -> None:
    # SLSQP keeps its quasi-Newton Hessian as L D L', packed column by column with D on
    # L's unit diagonal
    from alliancestats._mixed._engine._model import _ldl_diagonal

    rng = np.random.default_rng(3)
    n = 4
    L = np.tril(rng.normal(size=(n, n)), -1) + np.eye(n)
    d = rng.uniform(0.5, 2.0, size=n)
    packed = np.concatenate([np.r_[d[j], L[j + 1:, j]] for j in range(n)])
    np.testing.assert_allclose(_ldl_diagonal(np.r_[packed, 9.0, 9.0], n),
                               np.diag(L @ np.diag(d) @ L.T), rtol=1e-14)


def _slope_model(slope_sd: float, seed: int = 11) -> tuple[NestedLMM, Any, np.ndarray]:
    """Therapist intercepts and slopes, patient intercepts; the slope SD as given."""
    from alliancestats._mixed._engine._model import _Objective

    rng = np.random.default_rng(seed)
    g = np.column_stack([np.repeat(np.arange(15), 12), np.repeat(np.arange(60), 3)])
    x = rng.normal(size=180)
    X = np.column_stack([np.ones(180), x])
    u = rng.normal(size=(15, 2)) * [1.0, slope_sd]
    y = X @ [1.0, 0.5] + u[g[:, 0], 0] + u[g[:, 0], 1] * x + rng.normal(size=60)[g[:, 1]] \
        + rng.normal(size=180)
    model = NestedLMM(X, g, [X, X[:, :1]])
    obj = _Objective(model._struct, None, None, y, True)
    return model, obj, y


def test_stuck_curvature_of_an_even_element() -> None:
    # Λ = [[a, 0], [b, c]]: c enters only as c², so at c = 0 the curvature is the
    # deviance's second difference, 2 (D(h) − D(0)) / h²
    from alliancestats._mixed._engine._model import _stuck_curvature

    model, obj, y = _slope_model(0.0, seed=0)
    x = model.fit(y).theta
    stuck = np.array([False, False, True, False])
    assert x[2] == 0.0  # a singular fit: no slope variance beyond the intercept's
    h = 1e-3
    expected = 2.0 * (obj(np.where(stuck, h, x)) - obj(x)) / h**2
    curvature = _stuck_curvature(model._struct, obj, x, stuck)
    assert curvature is not None
    np.testing.assert_allclose(curvature, [expected], rtol=1e-3)
    # with a clear slope variance, c = 0 is a saddle: the deviance falls as c leaves it
    model, obj, y = _slope_model(1.0, seed=0)
    x = model.fit(y).theta
    assert _stuck_curvature(model._struct, obj, np.where(stuck, 0.0, x), stuck) is None
    # a stuck a with b ≠ 0 below it: the deviance is not even in a; never judged
    assert _stuck_curvature(model._struct, obj, np.array([0.0, 0.1, 0.3, 0.7]),
                            np.array([True, False, False, False])) is None


def test_restart_scale() -> None:
    # free elements from the quasi-Newton diagonal (over θ / scale), stuck ones from
    # their curvature; without the quasi-Newton Hessian, free elements are measured
    from scipy import optimize

    from alliancestats._mixed._engine._model import _restart_scale

    def fun(x: np.ndarray) -> float:
        return float(2.0 * (x[0] - 1.0) ** 2 + 1.5 * x[1] ** 2)

    x = np.array([1.0, 0.0])
    res = optimize.OptimizeResult(x=x, fun=fun(x), scale=np.array([2.0, 1.0]),
                                  hess_diag=np.array([16.0, 99.0]))
    stuck = np.array([False, True])
    np.testing.assert_allclose(_restart_scale(fun, res, stuck, np.array([3.0])),
                               [0.5, 1.0 / np.sqrt(3.0)], rtol=1e-8)
    del res["hess_diag"]
    np.testing.assert_allclose(_restart_scale(fun, res, stuck, np.array([3.0])),
                               [0.5, 1.0 / np.sqrt(3.0)], rtol=1e-8)


def test_slsqp_falls_back_when_scipys_routine_changed(monkeypatch: pytest.MonkeyPatch) -> None:
    # the loop drives a scipy-internal routine; one that fails or takes other steps is
    # detected once and optimize.minimize is used instead, with the same optimum
    from alliancestats._mixed._engine import _model

    rng = np.random.default_rng(8)
    g = np.column_stack([np.repeat(np.arange(10), 8), np.repeat(np.arange(40), 2)])
    X = np.column_stack([np.ones(80), rng.normal(size=80)])
    y = X @ [1.0, 0.5] + rng.normal(size=10)[g[:, 0]] + rng.normal(size=40)[g[:, 1]] + \
        rng.normal(size=80)
    model = NestedLMM(X, g, [X, X[:, :1]])
    assert _model._slsqp_loop_usable()
    fast = model.fit(y)

    def changed(*args: object) -> None:
        raise TypeError("slsqp() takes 10 positional arguments")

    monkeypatch.setattr(_model, "_slsqp_step", changed)
    _model._slsqp_loop_usable.cache_clear()
    try:
        assert not _model._slsqp_loop_usable()
        fallback = model.fit(y)
    finally:
        _model._slsqp_loop_usable.cache_clear()
    np.testing.assert_array_equal(fallback.theta, fast.theta)
    assert fallback.llf == fast.llf
