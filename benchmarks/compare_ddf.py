"""Satterthwaite df from the engine's exact gradient vs from differences of evaluations.

:func:`alliancestats._mixed._ddf.satterthwaite` takes the ``θ`` Hessian of the deviance
from central differences of the engine's exact reverse-mode gradient; the evaluations-only
path (``_satterthwaite_evaluations``, ``1 + 2 n_θ (n_θ + 1)`` evaluations, the earlier
default) is kept as the fallback. For seeded simulated PRN data sets (``simulate_prn``)
and several models (truth and bias: random intercepts, ``"auto"``, ``"slopes"``; growth:
``"rater_slopes"`` with ``residual="rater"``, and ``"slopes"`` with AR(1) residuals) this
fits each model, computes the df of every fixed effect both ways at the estimate, and
prints the largest absolute and relative difference per model, and how much each path's
df move when its step is ten times larger (its numerical error: the evaluations-only
path differentiates the deviance twice, so its rounding error grows as ``1/h²`` and is
large where the deviance Hessian is ill-conditioned). Plain script:

    python benchmarks/compare_ddf.py                 # seeds 0..9
    python benchmarks/compare_ddf.py --seeds 20 --therapists 20
"""

# ruff: noqa: SLF001  (the benchmark compares the library's internal df paths)

from __future__ import annotations

import argparse
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from alliancestats import fit_growth, fit_truth_bias, simulate_prn, stack_raters
from alliancestats._mixed import _ddf

ROLES = {"judgment": "alliance_therapist", "truth": "alliance_patient",
         "groups": ["therapist", "patient"]}


def models() -> dict[str, Callable[[pd.DataFrame], Any]]:
    """The compared models, each a function of a simulated PRN data set."""
    def growth(data: pd.DataFrame, random: str, residual: str) -> Any:
        long = stack_raters(data, ratings={"therapist": "alliance_therapist",
                                           "patient": "alliance_patient"})
        return fit_growth(long, outcome="alliance", time="session", rater="rater",
                          groups=ROLES["groups"], moderators="condition", random=random,
                          residual=residual)

    return {
        "tb intercept": lambda d: fit_truth_bias(d, **ROLES,
                                                 moderators=["condition", "session"],
                                                 random="intercept"),
        "tb auto": lambda d: fit_truth_bias(d, **ROLES, moderators=["condition", "session"]),
        "tb slopes": lambda d: fit_truth_bias(d, **ROLES,
                                              moderators=["condition", "session"],
                                              random="slopes"),
        "growth rater_slopes+rater": lambda d: growth(d, "rater_slopes", "rater"),
        "growth slopes+ar1": lambda d: growth(d, "slopes", "ar1"),
    }


def _df(src: Any, path: str, scale: float = 1.0) -> np.ndarray:
    """df of every fixed effect by one path, its step multiplied by ``scale``."""
    p = src.X.shape[1]
    steps = _ddf._GRAD_STEP, _ddf._REL_STEP
    try:
        _ddf._GRAD_STEP, _ddf._REL_STEP = steps[0] * scale, steps[1] * scale
        if path == "gradient":
            sat = _ddf.satterthwaite(src.model, src.y, src.theta, reml=src.reml)
        else:
            sat = _ddf._satterthwaite_evaluations(src.model, src.y, src.theta, src.reml)
    finally:
        _ddf._GRAD_STEP, _ddf._REL_STEP = steps
    return sat.df(np.eye(p))


def _rel(a: np.ndarray, b: np.ndarray) -> tuple[float, float]:
    ok = np.isfinite(a) & np.isfinite(b)
    diff = np.abs(a[ok] - b[ok])
    return float(diff.max(initial=0.0)), float((diff / np.abs(b[ok])).max(initial=0.0))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=10)
    parser.add_argument("--therapists", type=int, default=12)
    parser.add_argument("--patients", type=int, default=36)
    args = parser.parse_args()
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fit in models().items():
            worst = np.zeros(4)
            n_t = count = 0
            for seed in range(args.seeds):
                data = simulate_prn(args.therapists, args.patients, rng=seed)
                src = fit(data)._fit.mixed.ddf_source
                n_t = src.theta.size
                new, old = _df(src, "gradient"), _df(src, "evaluations")
                worst = np.maximum(worst, [
                    *_rel(new, old),
                    _rel(new, _df(src, "gradient", 10.0))[1],
                    _rel(old, _df(src, "evaluations", 10.0))[1]])
                count += int(np.isfinite(new).sum())
            rows.append({"model": name, "n_params": n_t, "df": count,
                         "max |new - old|": worst[0], "max rel. new vs old": worst[1],
                         "new: rel. change, step x10": worst[2],
                         "old: rel. change, step x10": worst[3]})
    print(f"# simulate_prn({args.therapists}, {args.patients}, rng=seed), seeds "
          f"0..{args.seeds - 1}; df of every fixed effect at the REML estimate")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.2e}"))


if __name__ == "__main__":
    main()
