"""Time the truth-and-bias and growth fits on PRN-size data and a 10x larger design.

Run from the repository root::

    PYTHONPATH=src python benchmarks/bench_models.py [--repeat 3]

Prints the median wall time of each fit (seconds) per engine and design. Sizes: the PRN
trial (40 therapists, 117 patients, 6 sessions; 702 sessions, 1404 stacked ratings) and a
10x larger design (400 therapists, 1170 patients, 6 sessions).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import time
import warnings
from collections.abc import Callable
from typing import Any

from alliancestats import fit_growth, fit_truth_bias, simulate_prn, stack_raters
from alliancestats._mixed import fast_engine_available

RATINGS = {"therapist": "alliance_therapist", "patient": "alliance_patient"}
GROUPS = ["therapist", "patient"]


def _cases(df: Any) -> dict[str, Callable[[], Any]]:
    long = stack_raters(df, ratings=RATINGS)
    tb = {"judgment": "alliance_therapist", "truth": "alliance_patient", "groups": GROUPS,
          "moderators": ["condition", "session"]}
    gr = {"outcome": "alliance", "time": "session", "groups": GROUPS, "rater": "rater",
          "moderators": "condition"}
    cases: dict[str, Callable[[], Any]] = {
        "T&B intercept (statsmodels)": lambda: fit_truth_bias(df, **tb),
        "T&B slopes_uncorrelated (statsmodels)": lambda: fit_truth_bias(
            df, **tb, random="slopes_uncorrelated"),
        "growth intercept (statsmodels)": lambda: fit_growth(long, **gr, random="intercept"),
        "growth slopes_uncorrelated (statsmodels)": lambda: fit_growth(
            long, **gr, random="slopes_uncorrelated"),
    }
    if fast_engine_available():
        cases |= {
            "T&B intercept (fast)": lambda: fit_truth_bias(df, **tb, engine="fast"),
            "T&B slopes (fast)": lambda: fit_truth_bias(df, **tb, random="slopes",
                                                        engine="fast"),
            "growth slopes (fast)": lambda: fit_growth(long, **gr, random="slopes",
                                                       engine="fast"),
        }
    return cases


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} cores")
    for label, sizes in {"PRN (40/117/6)": (40, 117, 6),
                         "10x (400/1170/6)": (400, 1170, 6)}.items():
        df = simulate_prn(*sizes, rng=2024)
        print(f"\n{label}: {len(df)} sessions")
        for name, fit in _cases(df).items():
            times = []
            for _ in range(args.repeat):
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    start = time.perf_counter()
                    res = fit()
                    times.append(time.perf_counter() - start)
            print(f"  {name:<42} {statistics.median(times):8.3f} s   "
                  f"(singular: {res.is_singular})")


if __name__ == "__main__":
    main()
