"""Time the public model calls against lme4 (and statsmodels) in the same run.

Run from the repository root::

    PYTHONPATH=src python benchmarks/bench_models.py [--repeat 7] [--scales 1 10 100]

What is timed is the call a user makes: ``fit_truth_bias``/``fit_growth``/
``fit_lagged_rsa`` on a data frame (validation, design, fit, results), with the default
engine and with ``engine="statsmodels"`` where MixedLM can fit the model; lme4's ``lmer``
is timed on the same data by ``benchmarks/bench_lme4.R`` (the whole call, model frame
included; needs Rscript with lme4; skipped otherwise). Sizes: the PRN trial (40
therapists, 117 patients, 6 sessions) and 10x / 100x as many therapists and patients.
Prints medians in milliseconds and the ratio to lme4. The default structure of
``fit_truth_bias`` (``random="auto"``: correlated slopes, simplified step by step while
singular) has no lme4 twin; its row is compared with lme4's fit of the structure it
starts from (West & Kenny's correlated slopes, the "T&B slopes" row). On a shared
machine wall times move with the load; ``--cpu`` times processor time instead
(``time.process_time`` here, user + system time of ``system.time`` in R; both sides
compute on one thread during a fit), which moves much less. ``--lme4-file`` keeps lme4's
times in a JSON file (read when it exists, else measured and written), so that two
versions of the package timed one after the other are compared with the same lme4
column.
"""

from __future__ import annotations

import argparse
import inspect
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

from alliancestats import (
    add_lags,
    fit_growth,
    fit_lagged_rsa,
    fit_truth_bias,
    simulate_prn,
    stack_raters,
)

AUTO = inspect.signature(fit_truth_bias).parameters["random"].default == "auto"
RATINGS = {"therapist": "alliance_therapist", "patient": "alliance_patient"}
GROUPS = ["therapist", "patient"]
TB = {"judgment": "alliance_therapist", "truth": "alliance_patient", "groups": GROUPS}
GR = {"outcome": "alliance", "time": "session", "groups": GROUPS, "rater": "rater",
      "moderators": "condition", "random": "slopes"}
RSA = {"outcome": "wellbeing", "x": "alliance_therapist", "y": "alliance_patient",
       "time": "session", "unit": GROUPS, "groups": GROUPS, "by": "condition"}


def cases(df: Any, long: Any, engine: str) -> dict[str, Callable[[], Any]]:
    """The timed calls (the statsmodels engine only where MixedLM can fit the model)."""
    mods = {"moderators": ["condition", "session"]}
    ri = {"random": "intercept"}
    out = {
        "T&B intercept": lambda: fit_truth_bias(df, **TB, **ri, engine=engine),
        "T&B condition x session": lambda: fit_truth_bias(df, **TB, **mods, **ri,
                                                          engine=engine),
        "lagged RSA by condition": lambda: fit_lagged_rsa(df, **RSA, engine=engine),
    }
    if engine == "fast":
        out["T&B slopes"] = lambda: fit_truth_bias(df, **TB, **mods, random="slopes")
        out["growth slopes"] = lambda: fit_growth(long, **GR)
        if AUTO:  # the default structure: slopes, simplified while singular (vs lme4 slopes)
            out["T&B default random"] = lambda: fit_truth_bias(df, **TB, **mods)
    return out


def median_ms(fit: Callable[[], Any], repeat: int, cpu: bool = False) -> float:
    clock = time.process_time if cpu else time.perf_counter
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fit()  # warm-up (imports, caches)
        times = []
        for _ in range(repeat):
            start = clock()
            fit()
            times.append(clock() - start)
    return 1000 * statistics.median(times)


def lme4_times(frames: dict[str, Any], repeat: int, cpu: bool = False) -> dict[str, float]:
    """Median lmer seconds per "scale: case" (empty without Rscript)."""
    if shutil.which("Rscript") is None:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        for tag, (df, long) in frames.items():
            df.to_csv(Path(tmp) / f"tb_{tag}.csv", index=False)
            long.to_csv(Path(tmp) / f"growth_{tag}.csv", index=False)
            lagged = add_lags(df, ["alliance_therapist", "alliance_patient"],
                              by=GROUPS, time="session")
            x, y = lagged["alliance_therapist_lag1"], lagged["alliance_patient_lag1"]
            centre = (x.mean() + y.mean()) / 2  # pooled centring, as fit_rsa
            lagged = lagged.assign(x=x - centre, y=y - centre).dropna(
                subset=["x", "y", "wellbeing"])
            lagged = lagged.assign(x2=lagged.x ** 2, xy=lagged.x * lagged.y,
                                   y2=lagged.y ** 2)
            lagged.to_csv(Path(tmp) / f"rsa_{tag}.csv", index=False)
        script = Path(__file__).with_name("bench_lme4.R")
        out = subprocess.run(["Rscript", str(script), tmp, str(repeat),
                              "cpu" if cpu else "elapsed"], check=True,
                             capture_output=True, text=True).stdout
    return {k: 1000 * v for k, v in json.loads(out).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10])
    parser.add_argument("--statsmodels-scales", type=int, nargs="*", default=[1, 10],
                        help="scales at which the statsmodels engine is timed as well")
    parser.add_argument("--cpu", action="store_true",
                        help="time processor time instead of wall time (both sides)")
    parser.add_argument("--lme4-file", type=Path, default=None,
                        help="JSON file of lme4's times: read if it exists, else written")
    args = parser.parse_args()
    print(f"python {platform.python_version()}, {os.cpu_count()} cores, "
          f"load average {os.getloadavg()[0]:.2f}, {'cpu' if args.cpu else 'wall'} time")
    frames = {}
    for scale in args.scales:
        df = simulate_prn(40 * scale, 117 * scale, 6, p_missing=0.05, rng=2024)
        frames[f"{scale}x"] = (df, stack_raters(df, ratings=RATINGS))
    if args.lme4_file is not None and args.lme4_file.exists():
        lme4 = json.loads(args.lme4_file.read_text())
    else:
        lme4 = lme4_times(frames, args.repeat, args.cpu)
        if args.lme4_file is not None:
            args.lme4_file.write_text(json.dumps(lme4))
    print(f"{'case':<34}{'fast ms':>10}{'statsmodels ms':>16}{'lme4 ms':>10}"
          f"{'fast/lme4':>11}{'sm/lme4':>9}")
    for tag, (df, long) in frames.items():
        fast = {k: median_ms(f, args.repeat, args.cpu)
                for k, f in cases(df, long, "fast").items()}
        slow = ({k: median_ms(f, max(1, args.repeat // 3), args.cpu)
                 for k, f in cases(df, long, "statsmodels").items()}
                if int(tag.rstrip("x")) in args.statsmodels_scales else {})
        for case, ms in fast.items():
            # lme4 has no "auto": its twin of the default is the structure it starts from
            # (West & Kenny's correlated slopes), fitted once
            twin = "T&B slopes" if case == "T&B default random" else case
            ref = lme4.get(f"{tag}: {twin}", float("nan"))
            sm = slow.get(case, float("nan"))
            print(f"{tag + ' ' + case:<34}{ms:>10.1f}{sm:>16.1f}{ref:>10.1f}"
                  f"{ms / ref:>11.2f}{sm / ref:>9.2f}")
    print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
