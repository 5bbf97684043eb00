"""random="auto" of fit_truth_bias: each simplification step against a cold refit.

For every step of the fallback (a correlation removed, or a term whose variance is 0
dropped), the simpler structure is also refitted from the engine's own start, and the
step's fit is compared with that refit: REML log-likelihood, θ, fixed effects and their
standard errors. A term dropped at variance 0 is evaluated at the singular fit's other
parameters instead of being refitted (its optimum is the same); this prints how far that
is from a refit. Run from the repository root::

    PYTHONPATH=src python benchmarks/compare_auto_steps.py [--n 600] [--residual ar1]

Data sets: ``simulate_prn`` with seeds ``--seed0`` + i (default 10000), six kinds in turn
(PRN size and half of it; no truth-force variance, a therapist-level or a patient-level
one, or both),
moderators condition x session for even i, condition for odd i.
"""

from __future__ import annotations

import argparse
import collections
import time
import warnings
from typing import Any

import numpy as np

from alliancestats import design, fit_truth_bias, simulate_prn

ROLES = {"judgment": "alliance_therapist", "truth": "alliance_patient",
         "groups": ["therapist", "patient"]}


def data_set(i: int, seed0: int = 10_000) -> Any:
    kind = i % 6
    params: dict[str, float] = {}
    if kind in (1, 4):
        params["sd_truth_force_therapist"] = 0.1
    if kind in (2, 5):
        params["sd_truth_force"] = 0.15
    if kind == 3:
        params.update(sd_truth_force_therapist=0.2, sd_truth_force=0.1)
    size = (40, 117) if kind < 3 else (20, 60)
    return simulate_prn(*size, 6, p_missing=0.05, rng=seed0 + i, params=params)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--n", type=int, default=600)
    parser.add_argument("--residual", choices=["iid", "ar1"], default="iid")
    parser.add_argument("--seed0", type=int, default=10_000, help="seed of data set 0")
    args = parser.parse_args()
    records: list[dict[str, Any]] = []
    real = design._simpler_fit  # noqa: SLF001

    def compare(old: Any, new: Any, action: str, singular: Any, fit: Any,
                evaluate: bool) -> Any:
        start = time.process_time()
        got = real(old, new, action, singular, fit, evaluate)
        t_new = time.process_time() - start
        start = time.process_time()
        cold = fit(new, None, None)
        t_cold = time.process_time() - start
        got_fit, cold_fit = got.record[0], cold.record[0]
        evaluated = "dropped term at variance 0" in str(got_fit.optimizer_info.get("message"))
        records.append({
            "key": (action, "evaluated" if evaluated else "refitted"),
            "dllf": float(got.llf - cold.llf),
            "dtheta": float(np.max(np.abs(got.theta - cold.theta))),
            "dbeta": float(np.max(np.abs(got_fit.fe_params - cold_fit.fe_params))),
            "dse": float(np.max(np.abs(np.sqrt(np.diag(got_fit.cov_fe))
                                       - np.sqrt(np.diag(cold_fit.cov_fe))))),
            "singular_differs": got.singular != cold.singular,
            "t_new": t_new, "t_cold": t_cold, "seed": args.seed0 + current[0]})
        return got

    design._simpler_fit = compare  # noqa: SLF001
    current = [0]
    extra = {"time": "session", "residual": "ar1"} if args.residual == "ar1" else {}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for i in range(args.n):
            current[0] = i
            mods = ["condition", "session"] if i % 2 == 0 else ["condition"]
            fit_truth_bias(data_set(i, args.seed0), **ROLES, moderators=mods, **extra)
    design._simpler_fit = real  # noqa: SLF001
    groups = collections.defaultdict(list)
    for r in records:
        groups[r["key"]].append(r)
    print(f"{args.n} data sets (seeds {args.seed0}..{args.seed0 + args.n - 1}), "
          f"residual={args.residual}, {len(records)} steps")
    for (action, how), rs in sorted(groups.items()):
        off = [r for r in rs if abs(r["dllf"]) > 1e-8 or r["dtheta"] > 1e-5]
        print(f"{action} ({how}): {len(rs)} steps; max |dlogLik| "
              f"{max(abs(r['dllf']) for r in rs):.2e}, max |dtheta| "
              f"{max(r['dtheta'] for r in rs):.2e}, max |dbeta| "
              f"{max(r['dbeta'] for r in rs):.2e}, max |dSE| {max(r['dse'] for r in rs):.2e}; "
              f"singular status differs {sum(r['singular_differs'] for r in rs)}; beyond "
              f"1e-8 / 1e-5: {len(off)}; CPU ms this step / cold refit "
              f"{1000 * np.mean([r['t_new'] for r in rs]):.2f} / "
              f"{1000 * np.mean([r['t_cold'] for r in rs]):.2f}")
        for r in off[:10]:
            print("   ", r)


if __name__ == "__main__":
    main()
