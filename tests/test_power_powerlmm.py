"""The ``growth_single`` power design against powerlmm's analytic power.

powerlmm (Magnusson; R) computes the power of the treatment x time test of a three-level
growth model analytically. ``tests/reference/powerlmm/powerlmm_reference.R`` froze its
numbers for three designs with unequal caseloads (``powerlmm_reference.json``);
``benchmarks/powerlmm_compare.py`` simulated the same designs with :func:`power` (1,000
seeded replicates each, ``powerlmm_simulated.json``). The tests check that the frozen
settings are the simulator's (the mapping of parameters), that the stored simulation
agrees with powerlmm within Monte-Carlo error, and (slow) that re-running part of it
gives exactly the stored replicates and again agrees with powerlmm.
"""

from __future__ import annotations

import importlib.util
import json
import warnings
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import pytest

from alliancestats import PRNParams, fit_growth, simulate_prn
from alliancestats.exceptions import BoundaryFitWarning
from alliancestats.power._designs import (
    Sizes,
    growth_single_components,
    growth_single_fast,
    growth_single_public,
    simulate_panel,
)

HERE = Path(__file__).parent
REFERENCE = HERE / "reference" / "powerlmm"


def _load_benchmark() -> ModuleType:
    """benchmarks/powerlmm_compare.py as a module (it is a script, not in the package)."""
    spec = importlib.util.spec_from_file_location(
        "powerlmm_compare", HERE.parent / "benchmarks" / "powerlmm_compare.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


BENCH = _load_benchmark()
SEED = BENCH.SEED

#: Allowed distance between simulated and analytic power, in Monte-Carlo SEs.
K_MCSE = 3.0


def _load(name: str) -> dict[str, Any]:
    with open(REFERENCE / name, encoding="utf-8") as fh:
        return json.load(fh)


@pytest.fixture(scope="module")
def reference() -> dict[str, Any]:
    return _load("powerlmm_reference.json")


@pytest.fixture(scope="module")
def simulated() -> dict[str, Any]:
    return _load("powerlmm_simulated.json")


def _target(reference: dict[str, Any], setting: str, null: bool) -> float:
    """powerlmm's power, Satterthwaite df, averaged over random splits of the caseloads."""
    key = "null" if null else "effect"
    return float(reference["settings"][setting][key]["splits_mean"]["satterth"])


def _within_mcse(power: float, target: float, n: int) -> tuple[bool, float]:
    mcse = np.sqrt(target * (1 - target) / n)
    return abs(power - target) <= K_MCSE * mcse, (power - target) / mcse


def test_reference_parameters_are_the_simulators(reference: dict[str, Any]) -> None:
    """The SDs given to powerlmm are those of the simulated therapist ratings."""
    meta = reference["meta"]
    comps = growth_single_components(PRNParams(**meta["params"]))
    for name, value in {**meta["sd"], **meta["fixed"]}.items():
        assert comps[name] == pytest.approx(value, rel=1e-12), name
    assert comps["slope_difference"] == pytest.approx(meta["slope_difference"])
    for setting in reference["settings"].values():
        assert setting["effect"]["effect_size"] == pytest.approx(
            meta["slope_difference"] * meta["T_end"])
        assert setting["n_patients"] == sum(setting["caseloads"])
        # Type-I error of powerlmm's own test is alpha by construction.
        assert setting["null"]["splits_mean"]["satterth"] == pytest.approx(meta["alpha"])


def test_growth_single_fast_equals_public_fit() -> None:
    """The power design's array fit is fit_growth on the simulated frame."""
    params = PRNParams(gamma10=1.0, gamma13=0.0, gamma03=0.1, sd_truth_growth=0.1,
                       sd_truth_growth_therapist=0.05, dropout_trained=0.1)
    loads = (1, 2, 3, 5, 8, 1, 2, 3, 5, 8)
    panel = simulate_panel(np.random.default_rng(7), Sizes(10, 38, 6), params, 0.0, loads)
    fast = growth_single_fast(panel, None)
    public = growth_single_public(panel.to_frame())
    np.testing.assert_allclose(fast.estimate, public.estimate, rtol=1e-6)
    np.testing.assert_allclose(fast.std_error, public.std_error, rtol=1e-5)
    assert fast.status == public.status


def test_growth_single_recovers_parameters() -> None:
    """One large simulated trial: fixed effects within 3 SE of the population values."""
    params = PRNParams(gamma10=1.0, gamma13=0.0, gamma03=0.1, sd_truth_growth=0.1,
                       sd_truth_growth_therapist=0.05)
    data = simulate_prn(caseloads=[1, 1, 2, 2, 3, 3, 4, 5, 6, 8] * 12, params=params, rng=11)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        res = fit_growth(data, outcome="alliance_therapist", time="session",
                         groups=["therapist", "patient"], moderators="condition",
                         random="slopes")
    comps = growth_single_components(params)
    truth = {"session": comps["fixed_slope"], "session:condition": comps["slope_difference"],
             "condition": 0.0}
    for name, value in truth.items():
        assert abs(res.params[name] - value) <= 3 * res.bse[name], name


def test_stored_simulation_agrees_with_powerlmm(reference: dict[str, Any],
                                                simulated: dict[str, Any]) -> None:
    """Every stored setting: simulated power and type-I error within K_MCSE Monte-Carlo
    SEs of powerlmm's analytic power (Satterthwaite df, random caseload splits)."""
    meta = reference["meta"]
    rows = [r for r in simulated["results"] if r["ddf"] == "satterthwaite"]
    assert {(r["setting"], r["null"]) for r in rows} == {
        (s, n) for s in reference["settings"] for n in (False, True)}
    for row in rows:
        assert row["seed"] == SEED
        # The simulated population slope difference is the one given to powerlmm.
        expected = 0.0 if row["null"] else meta["slope_difference"]
        assert row["true_value"] == pytest.approx(expected, abs=1e-12)
        p = np.array([np.nan if v is None else v for v in row["pvalues"]])
        valid = np.isfinite(p)
        assert valid.sum() == row["n_valid"] >= 0.99 * row["n_sims"]
        assert np.mean(p[valid] < meta["alpha"]) == pytest.approx(row["power"])
        ok, z = _within_mcse(row["power"], _target(reference, row["setting"], row["null"]),
                             row["n_valid"])
        assert ok, (row["setting"], row["null"], row["power"], z)


@pytest.mark.slow
@pytest.mark.parametrize("null", [False, True], ids=["effect", "null"])
def test_simulation_reproduces_stored_replicates(reference: dict[str, Any],
                                                 simulated: dict[str, Any],
                                                 null: bool) -> None:
    """Re-running the first 100 replicates of the 20-therapist setting gives the stored
    p-values, and its power agrees with powerlmm within Monte-Carlo error."""
    n = 100
    meta, setting = reference["meta"], reference["settings"]["T20"]
    rerun = BENCH.simulate(meta, setting, null, n, "satterthwaite")
    stored = next(r for r in simulated["results"] if r["setting"] == "T20"
                  and r["null"] == null and r["ddf"] == "satterthwaite")
    # the same data sets and models; the optima agree to the optimiser's tolerance, which
    # is all a rerun with another scipy/BLAS build can reproduce (p-values to ~1e-5)
    np.testing.assert_allclose(
        np.array(rerun["pvalues"], dtype=float),
        np.array(stored["pvalues"][:n], dtype=float), rtol=1e-4, atol=1e-9)
    ok, z = _within_mcse(rerun["power"], _target(reference, "T20", null), rerun["n_valid"])
    assert ok, (rerun["power"], z)
