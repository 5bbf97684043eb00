"""Cost of small-sample df: a fit with ``ddf="z"`` vs Satterthwaite vs Kenward–Roger.

On the bundled PRN data set (``alliancestats.datasets.load("prn")``: 40 therapists, 117
patients, 6 sessions), for the models of the PRN analysis:

- ``tb``: ``fit_truth_bias(moderators=["condition", "session"])`` (random intercepts,
  2 θ);
- ``tb_slopes``: the same with ``random="slopes"`` (6 θ);
- ``growth``: ``fit_growth`` of both raters' ratings stacked, ``random="slopes"`` (6 θ).

Each cell is the median CPU time (``time.process_time``: less sensitive than wall time to
other load on a shared machine) of ``--reps`` repetitions of "fit, then read the p-values,
intervals and the tidy table" (what a user does), so the df are included; the ratio is to
the ``ddf="z"`` fit. The df pieces (the deviance Hessian in (θ, σ) and the Jacobian of
vcov(β)) are computed once per fit on first use and cached. Plain script:

    python benchmarks/bench_ddf.py
    python benchmarks/bench_ddf.py --reps 10
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

from alliancestats import datasets, fit_growth, fit_truth_bias, stack_raters

ROLES = {"judgment": "alliance_therapist", "truth": "alliance_patient",
         "groups": ["therapist", "patient"]}


def _models(data: pd.DataFrame) -> dict[str, Callable[[str], Any]]:
    long = stack_raters(data, ratings={"therapist": "alliance_therapist",
                                       "patient": "alliance_patient"})
    return {
        "tb": lambda ddf: fit_truth_bias(data, **ROLES, moderators=["condition", "session"],
                                         ddf=ddf),
        "tb_slopes": lambda ddf: fit_truth_bias(data, **ROLES,
                                                moderators=["condition", "session"],
                                                random="slopes", ddf=ddf),
        "growth": lambda ddf: fit_growth(long, outcome="alliance", time="session",
                                         rater="rater", groups=ROLES["groups"],
                                         moderators="condition", random="slopes", ddf=ddf),
    }


def _use(res: Any) -> None:
    _ = res.pvalues
    res.conf_int()
    res.to_frame()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    args = parser.parse_args()
    data = datasets.load("prn")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, numpy {np.__version__}; CPU seconds")
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for name, fit in _models(data).items():
            _use(fit("z"))  # warm-up (imports, caches)
            times = {}
            for ddf in ("z", "satterthwaite", "kenward-roger"):
                samples = []
                for _ in range(args.reps):
                    t0 = time.process_time()
                    _use(fit(ddf))
                    samples.append(time.process_time() - t0)
                times[ddf] = float(np.median(samples))
            rows.append({"model": name, **{f"{k} (ms)": 1e3 * v for k, v in times.items()},
                         "satterthwaite / z": times["satterthwaite"] / times["z"],
                         "kenward-roger / z": times["kenward-roger"] / times["z"]})
    print(pd.DataFrame(rows).round(2).to_string(index=False))


if __name__ == "__main__":
    main()
