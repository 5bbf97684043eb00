"""Time the public response-surface calls against lme4 in the same run.

Run from the repository root::

    PYTHONPATH=src python benchmarks/bench_rsa_call.py [--cpu] [--repeat 15] [--scales 1 10 100]

What is timed is the call a user makes, on a data frame: ``fit_lagged_rsa`` as the report
makes it (surfaces by condition, session as a control, the lagged outcome as a centred
covariate, random intercepts of therapists and patients; validation, lags, design, fit,
results) and ``fit_rsa`` with the same structure on the current session. lme4's ``lmer``
is timed on the same rows by ``benchmarks/bench_rsa_lme4.R`` (the whole call, model
frame included; the lagged, centred columns are prepared here, as a user of lme4 would
prepare them; needs Rscript with lme4, skipped otherwise). The REML log-likelihoods of
both sides are printed as a check that the models agree. Sizes: the bundled PRN data
set (``datasets.load("prn")``) and simulated trials with 1x / 10x / 100x its therapists
and patients. Prints medians in milliseconds and the ratio to lme4; ``--cpu`` times
processor time (``time.process_time`` here, user + system time of ``system.time`` in R;
both sides compute on one thread during a fit), which moves much less than wall time on
a shared machine.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import tempfile
import time
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from alliancestats import add_lags, datasets, fit_lagged_rsa, fit_rsa, simulate_prn

GROUPS = ["therapist", "patient"]
ROLES = {"outcome": "wellbeing", "x": "alliance_therapist", "y": "alliance_patient",
         "groups": GROUPS, "by": "condition", "controls": ["session"]}


def lagged_call(df: pd.DataFrame) -> Callable[[], Any]:
    """The report's call (``report.py``, lagged RSA section)."""
    return lambda: fit_lagged_rsa(df, **ROLES, time="session", unit=GROUPS)


def current_call(df: pd.DataFrame) -> Callable[[], Any]:
    return lambda: fit_rsa(df, **ROLES)


def lme4_frame(df: pd.DataFrame, lagged: bool) -> pd.DataFrame:
    """The analysed rows with the columns lmer needs, centred as fit_rsa centres them."""
    if lagged:
        df = add_lags(df, ["alliance_therapist", "alliance_patient", "wellbeing"],
                      by=GROUPS, time="session")
        x, y = df["alliance_therapist_lag1"], df["alliance_patient_lag1"]
        df = df.assign(x=x, y=y, prior=df["wellbeing_lag1"])
        df = df.dropna(subset=["x", "y", "prior", "wellbeing"])
        df = df.assign(prior=df["prior"] - df["prior"].mean())
    else:
        df = df.assign(x=df["alliance_therapist"], y=df["alliance_patient"])
        df = df.dropna(subset=["x", "y", "wellbeing"])
    centre = np.column_stack([df["x"], df["y"]]).mean()  # pooled centring
    df = df.assign(x=df["x"] - centre, y=df["y"] - centre)
    df = df.assign(x2=df["x"] ** 2, xy=df["x"] * df["y"], y2=df["y"] ** 2)
    keep = ["wellbeing", "x", "y", "x2", "xy", "y2", "condition", "session", "therapist",
            "patient", *(["prior"] if lagged else [])]
    return df[keep]


def median_ms(fit: Callable[[], Any], repeat: int, cpu: bool) -> float:
    clock = time.process_time if cpu else time.perf_counter
    fit()  # warm-up (imports, caches)
    times = []
    for _ in range(repeat):
        start = clock()
        fit()
        times.append(clock() - start)
    return 1000 * statistics.median(times)


def lme4_results(frames: dict[str, pd.DataFrame], repeat: int, cpu: bool
                 ) -> dict[str, dict[str, float]]:
    if shutil.which("Rscript") is None:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        for tag, frame in frames.items():
            frame.to_csv(Path(tmp) / f"{tag}.csv", index=False)
        script = Path(__file__).with_name("bench_rsa_lme4.R")
        out = subprocess.run(["Rscript", str(script), tmp, str(repeat),
                              "cpu" if cpu else "elapsed"], check=True,
                             capture_output=True, text=True).stdout
    return json.loads(out)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=15)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--cpu", action="store_true",
                        help="time processor time instead of wall time (both sides)")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}, {'cpu' if args.cpu else 'wall'} time")
    data = {"prn": datasets.load("prn")}
    for scale in args.scales:
        data[f"{scale}x"] = simulate_prn(40 * scale, 117 * scale, 6, p_missing=0.05,
                                         rng=2024)
    calls, frames, repeats = {}, {}, {}
    for tag, df in data.items():
        n = int(tag.rstrip("x")) if tag != "prn" else 1
        for case, make, lagged in (("lagged RSA (report call)", lagged_call, True),
                                   ("RSA by condition", current_call, False)):
            key = f"{tag}_{'lagged' if lagged else 'current'}"
            calls[key] = (f"{tag} {case}", make(df))
            frames[key] = lme4_frame(df, lagged)
            repeats[key] = max(3, args.repeat // n)
    lme4 = lme4_results(frames, max(3, args.repeat // 3), args.cpu)
    print(f"{'case':<34}{'rows':>8}{'ours ms':>10}{'lme4 ms':>10}{'ratio':>8}"
          f"{'logLik diff':>13}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for key, (label, call) in calls.items():
            ms = median_ms(call, repeats[key], args.cpu)
            res = call()
            ref = lme4.get(key, {})
            ref_ms = 1000 * ref.get("seconds", float("nan"))
            diff = res.llf - ref.get("logLik", float("nan"))
            print(f"{label:<34}{res.nobs:>8}{ms:>10.1f}{ref_ms:>10.1f}{ms / ref_ms:>8.2f}"
                  f"{diff:>13.2e}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
