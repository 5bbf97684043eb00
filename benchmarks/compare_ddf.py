"""Satterthwaite df from the engine's exact gradient vs from differences of evaluations.

:func:`alliancestats._mixed._ddf.satterthwaite` takes the ``θ`` Hessian of the deviance
from central differences of the engine's exact reverse-mode gradient; the evaluations-only
path (``_satterthwaite_evaluations``, ``1 + 2 n_θ (n_θ + 1)`` evaluations, the earlier
default) is kept as the fallback. For seeded simulated PRN data sets (``simulate_prn``)
and several models (truth and bias: random intercepts, ``"auto"``, ``"slopes"``; growth:
``"rater_slopes"`` with ``residual="rater"``, and ``"slopes"`` with AR(1) residuals) this
fits each model, computes the df of every fixed effect both ways at the estimate, and
prints the largest absolute and relative difference per model. Plain script:

    python benchmarks/compare_ddf.py                 # seeds 0..9
    python benchmarks/compare_ddf.py --seeds 20 --therapists 20
"""

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


def df_both(res: Any) -> tuple[np.ndarray, np.ndarray, int]:
    """df of every fixed effect: the gradient path and the evaluations-only path."""
    src = res._fit.mixed.ddf_source
    p = src.X.shape[1]
    new = _ddf.satterthwaite(src.model, src.y, src.theta, reml=src.reml).df(np.eye(p))
    old = _ddf._satterthwaite_evaluations(src.model, src.y, src.theta,
                                          src.reml).df(np.eye(p))
    return new, old, src.theta.size


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
            worst_abs, worst_rel, n_t, count = 0.0, 0.0, 0, 0
            for seed in range(args.seeds):
                data = simulate_prn(args.therapists, args.patients, rng=seed)
                new, old, n_t = df_both(fit(data))
                ok = np.isfinite(old) & np.isfinite(new)
                diff = np.abs(new[ok] - old[ok])
                worst_abs = max(worst_abs, float(diff.max(initial=0.0)))
                worst_rel = max(worst_rel, float((diff / np.abs(old[ok])).max(initial=0.0)))
                count += int(ok.sum())
            rows.append({"model": name, "n_params": n_t, "df compared": count,
                         "max |new - old|": worst_abs, "max relative": worst_rel})
    print(f"# simulate_prn({args.therapists}, {args.patients}, rng=seed), seeds "
          f"0..{args.seeds - 1}; df of every fixed effect at the REML estimate")
    print(pd.DataFrame(rows).to_string(index=False, float_format=lambda v: f"{v:.2e}"))


if __name__ == "__main__":
    main()
