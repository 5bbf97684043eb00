"""Type-I error of the truth-and-bias moderator tests by random structure (simulation).

West & Kenny (2011) let the truth force vary across perceivers (here therapists). When it
does and the model has random intercepts only, the test of a moderator of the truth force
(``truth:condition``: training changes how closely therapists track their patients) is
liberal, because condition is a therapist-level variable and its interaction with truth is
tested against the wrong variance. This script measures that, and checks the default
``random="auto"`` (random truth force at the therapist and patient levels, correlated with
the intercepts, simplified only when singular).

Design: the PRN trial (40 therapists, 117 patients, 6 sessions), every effect of condition
on the judgment null (gamma01 = gamma03 = gamma11 = gamma13 = 0), so ``truth:condition``
and ``truth:condition:session`` are true nulls. Scenarios: therapist-level truth-force SD
0 / 0.25, with and without a therapist-level session slope of the truth force (SD 0.05).
Model: ``judgment ~ truth * condition * session`` with the random structure named; Wald z
tests at alpha = 0.05 (``--ddf z``, the setting of the table in the truth-and-bias guide;
``--ddf satterthwaite`` uses the fits' default small-sample df).

Run from the repository root (about 15 minutes on one idle core)::

    PYTHONPATH=src python benchmarks/sim_truth_bias_type1.py [--sims 300] [--seed 20261202]
        [--ddf z]

Prints the rejection rate with its binomial 99% interval per scenario x structure x term,
and how often ``"auto"`` kept the therapist-level truth slope.
"""

from __future__ import annotations

import argparse
import time
import warnings
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from alliancestats import fit_truth_bias, simulate_prn

NULL = {"gamma01": 0.0, "gamma03": 0.0, "gamma11": 0.0, "gamma13": 0.0}
SCENARIOS = {
    "therapist truth force SD 0.25": {"sd_truth_force_therapist": 0.25},
    "... and its session slope SD 0.05": {"sd_truth_force_therapist": 0.25,
                                          "sd_truth_force_growth_therapist": 0.05},
    "no therapist truth force": {},
}
TERMS = ("alliance_patient:condition", "alliance_patient:condition:session")


def one_replicate(params: dict[str, float], random: str, seed: int,
                  ddf: str = "z") -> dict[str, Any]:
    """p-values of the tested terms, and whether the therapist truth slope was kept."""
    df = simulate_prn(40, 117, 6, params={**NULL, **params}, rng=seed)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        res = fit_truth_bias(df, judgment="alliance_therapist", truth="alliance_patient",
                             groups=["therapist", "patient"],
                             moderators=["condition", "session"], random=random,
                             ddf=ddf)
    kept = not any(step["level"] == "therapist" and step["action"] == "dropped"
                   for step in res.random_fallback)
    return {**{t: float(res.pvalues[t]) for t in TERMS}, "therapist_slope_kept": kept}


def type1(n_sims: int, params: dict[str, float], random: str, seed: int,
          alpha: float = 0.05, ddf: str = "z") -> dict[str, Any]:
    """Rejection rates over ``n_sims`` replicates (seeds ``seed``, ``seed + 1``, ...)."""
    rows = [one_replicate(params, random, seed + i, ddf) for i in range(n_sims)]
    frame = pd.DataFrame(rows)
    out: dict[str, Any] = {}
    for term in TERMS:
        k = int((frame[term] < alpha).sum())
        low, high = stats.binomtest(k, n_sims).proportion_ci(0.99, method="exact")
        out[term] = (k / n_sims, low, high)
    out["therapist_slope_kept"] = float(frame["therapist_slope_kept"].mean())
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sims", type=int, default=300)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--random", nargs="+", default=["intercept", "auto"])
    parser.add_argument("--ddf", default="z", choices=["z", "satterthwaite"])
    args = parser.parse_args()
    lo, hi = stats.binom.ppf([0.005, 0.995], args.sims, 0.05) / args.sims
    print(f"{args.sims} replicates per cell, seed {args.seed}; a calibrated test rejects "
          f"in [{lo:.3f}, {hi:.3f}] of replicates (binomial 99%).")
    for name, params in SCENARIOS.items():
        for random in args.random:
            start = time.perf_counter()
            res = type1(args.sims, params, random, args.seed, ddf=args.ddf)
            took = time.perf_counter() - start
            cells = "  ".join(f"{t.split(':', 1)[1]}: {r:.3f} [{a:.3f}, {b:.3f}]"
                              for t, (r, a, b) in ((t, res[t]) for t in TERMS))
            kept = f"  therapist slope kept {res['therapist_slope_kept']:.2f}" \
                if random == "auto" else ""
            print(f"{name:<36} random={random:<10} {cells}{kept}  ({took:.0f} s)",
                  flush=True)


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
