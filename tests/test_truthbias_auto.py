"""random="auto" of fit_truth_bias: a term dropped at zero variance is not refitted.

The simpler model's optimum is the singular fit's (its deviance is the full one restricted
to the dropped term at 0), so the auto path evaluates it there; these tests compare that
with a refit from the engine's own start, as the path did before, and check the pieces
(θ of the simpler structure, the ``at=`` and ``grouping=`` arguments of ``fit_mixed``).
"""

from __future__ import annotations

import warnings
from typing import Any

import numpy as np
import pandas as pd
import pytest

from alliancestats import design, fit_truth_bias, simulate_prn
from alliancestats._mixed import Grouping, fit_mixed
from alliancestats.design import RandomStructure, level_lambdas, reduced_theta

ROLES = {"judgment": "alliance_therapist", "truth": "alliance_patient",
         "groups": ["therapist", "patient"]}
SLOPES = RandomStructure((((("Intercept", "x"), True)), ((("Intercept", "x"), True))))


def _steps_against_cold(data: pd.DataFrame, **kwargs: Any) -> list[dict[str, Any]]:
    """Fit with random="auto", and for every simplification step also refit the simpler
    structure from the engine's own start; the differences per step."""
    records: list[dict[str, Any]] = []
    real = design._simpler_fit

    def compare(old: Any, new: Any, action: str, singular: Any, fit: Any,
                evaluate: bool) -> Any:
        got = real(old, new, action, singular, fit, evaluate)
        cold = fit(new, None, None)
        message = str(got.record[0].optimizer_info.get("message"))
        records.append({"action": action, "evaluated": "dropped term at variance 0" in message,
                        "dllf": abs(got.llf - cold.llf),
                        "dtheta": float(np.max(np.abs(got.theta - cold.theta))),
                        "singular": (got.singular, cold.singular)})
        return got

    design._simpler_fit = compare
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit_truth_bias(data, **ROLES, **kwargs)
    finally:
        design._simpler_fit = real
    return records


def test_dropped_term_is_evaluated_not_refitted_and_matches_a_refit() -> None:
    df = simulate_prn(40, 117, 6, p_missing=0.05, rng=2024)  # the benchmark's data set
    records = _steps_against_cold(df, moderators=["condition", "session"])
    assert [r["action"] for r in records] == ["correlation dropped", "dropped",
                                              "correlation dropped", "dropped"]
    for r in records:
        assert r["dllf"] < 1e-8, r
        assert r["dtheta"] < 1e-5, r
        assert r["singular"][0] == r["singular"][1]
    assert all(r["evaluated"] for r in records if r["action"] == "dropped")


@pytest.mark.slow
def test_dropped_terms_match_refits_over_simulated_data_sets() -> None:
    # the full comparison (600 + 150 AR(1) data sets): benchmarks/compare_auto_steps.py
    dropped = 0
    for seed in range(24):
        params = {"sd_truth_force_therapist": 0.1} if seed % 3 == 1 else \
            {"sd_truth_force": 0.15} if seed % 3 == 2 else {}
        size = (40, 117) if seed % 2 else (20, 60)
        df = simulate_prn(*size, 6, p_missing=0.05, rng=10_000 + seed, params=params)
        for r in _steps_against_cold(df, moderators=["condition", "session"]):
            assert r["dllf"] < 1e-8, (seed, r)
            assert r["dtheta"] < 1e-5, (seed, r)
            dropped += r["action"] == "dropped"
    assert dropped >= 10


def test_reduced_theta_keeps_the_covariances() -> None:
    rng = np.random.default_rng(3)
    theta = np.abs(rng.normal(size=6)) + 0.1
    full = level_lambdas(SLOPES, theta)
    # a term dropped: the leading block of the Cholesky factor, exactly
    dropped = SLOPES.without(0, "x")
    reduced = reduced_theta(SLOPES, dropped, theta)
    assert reduced.tolist() == [theta[0], *theta[3:]]
    # a correlation removed: the relative SDs of the level's terms
    independent = SLOPES.without(1, None)
    reduced = reduced_theta(SLOPES, independent, theta)
    lam = level_lambdas(independent, reduced)
    np.testing.assert_allclose(np.diag(lam[1] @ lam[1].T), np.diag(full[1] @ full[1].T),
                               rtol=1e-14)
    np.testing.assert_array_equal(lam[0], full[0])


def _toy() -> tuple[pd.Series, pd.DataFrame, pd.DataFrame]:
    df = simulate_prn(12, 36, 4, rng=5)
    X = pd.DataFrame({"Intercept": 1.0, "x": df["alliance_patient"].to_numpy(float)})
    return df["alliance_therapist"].astype(float), X, df[["therapist", "patient"]]


def test_fit_mixed_at_an_optimum_is_that_fit() -> None:
    y, X, g = _toy()
    spec = {"therapist": ["Intercept"], "patient": ["Intercept"]}
    fit = fit_mixed(y, X, g, spec)
    again = fit_mixed(y, X, g, spec, at=fit.theta, grouping=Grouping(g))
    assert again.llf == pytest.approx(fit.llf, abs=1e-12)
    np.testing.assert_allclose(again.fe_params, fit.fe_params, rtol=1e-12)
    np.testing.assert_allclose(again.cov_fe, fit.cov_fe, rtol=1e-10)
    assert again.optimizer_info["n_iter"] == 0
    with pytest.raises(ValueError, match="`at` must hold 2"):
        fit_mixed(y, X, g, spec, at=[1.0])
    with pytest.raises(ValueError, match="`at` is for engine='fast'"):
        fit_mixed(y, X, g, spec, at=fit.theta, engine="statsmodels")
    with pytest.raises(ValueError, match="`grouping` was made from other groups"):
        fit_mixed(y, X, g, spec, grouping=Grouping(g.iloc[:-1]))
    with pytest.raises(TypeError, match="`groups` must be a DataFrame"):
        Grouping(g["therapist"])  # type: ignore[arg-type]


@pytest.mark.reference
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("dataset", ["small", "nearsingular"])
def test_auto_ending_at_random_intercepts_matches_lme4(dataset: str, method: str) -> None:
    # on these reference data sets random="auto" simplifies down to random intercepts
    # with a dropped term as its last step (evaluated, not refitted): lme4's fit of
    # J ~ T * condition * session + (1 | therapist) + (1 | therapist:patient)
    # (tests/reference/r/tb_growth_reference.R, model "tb_intercept")
    import json
    from pathlib import Path

    from lme4_checks import assert_fit_statistics, assert_fixed_effects

    ref_dir = Path(__file__).parent / "reference"
    ref = json.loads((ref_dir / "results" / "tb_reference.json").read_text())
    ref = ref["datasets"][dataset]["tb_intercept"][method]
    data = pd.read_csv(ref_dir / "data" / f"tb_{dataset}.csv")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_truth_bias(data, **ROLES, moderators=["condition", "session"],
                             reml=method == "REML")
    steps = res.random_fallback
    assert steps[-1]["action"] == "dropped"
    assert "dropped term at variance 0" in res.optimizer_info["message"]
    assert_fixed_effects(res, ref, lambda n: "Intercept" if n == "(Intercept)" else n)
    assert_fit_statistics(res, ref)
    assert res.llf == pytest.approx(ref["logLik"], abs=1e-6)
    # getME(fit, "theta"): lme4 orders the terms by their number of units, inner first
    theta = list(ref["theta"].values()) if isinstance(ref["theta"], dict) else ref["theta"]
    np.testing.assert_allclose(res.optimizer_info["theta"], theta[::-1], atol=1e-4)


def test_bounded_positions_are_the_diagonal_of_lambda() -> None:
    assert design._bounded_positions(SLOPES) == [0, 2, 3, 5]
    assert design._bounded_positions(SLOPES.without(0, None).without(1, "x")) == [0, 1, 2]
