"""Benchmark of residual structures against nlme's ``lme``, measured in the same run.

PRN-size data (40 therapists, 117 patients, 6 sessions, ~8 % of patient ratings missed;
the frozen reference data ``tests/reference/data/tb_medium.csv``, replicated ``--scales``
times with relabelled units for the cost-per-patient check). Models, REML:

- ``tb_ar1``: truth-and-bias ``J ~ truth * condition * session``, random therapist and
  patient intercepts, AR(1) residuals over session (nlme ``corAR1(form = ~ session |
  therapist/patient)``);
- ``growth_rater``: rater-stacked growth ``alliance ~ 0 + rater / (time * condition)``,
  random intercepts, ``varIdent(~ 1 | rater)`` + ``corCompSymm(~ 1 |
  therapist/patient/session)`` (``residual="rater"``);
- ``growth_ar1``: the same growth model with AR(1) within each rater's series (nlme
  ``corAR1(form = ~ session | therapist/patient/rater)``);
- ``growth_rater_ar1``: rater covariance x AR(1) (no nlme twin: engine only).

Each cell: the median CPU time (``time.process_time``; R's user + system time) of
``--reps`` complete fits through the public functions
(``fit_truth_bias`` / ``fit_growth``: validation, design, fit, the residual parameters'
intervals), and nlme's ``lme`` on the same rows (Rscript, timed inside R with the same
number of repetitions), and their ratio. CPU rather than wall time, because the machine
may be shared. Plain script (needs Rscript with nlme)::

    python benchmarks/bench_residual.py
    python benchmarks/bench_residual.py --reps 5 --scales 1 4
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

from alliancestats import fit_growth, fit_truth_bias, stack_raters

DATA = Path(__file__).resolve().parents[1] / "tests" / "reference" / "data" / "tb_medium.csv"

R_SCRIPT = r"""
suppressPackageStartupMessages(library(nlme))
args <- commandArgs(TRUE); dat <- read.csv(args[1]); reps <- as.integer(args[2])
d <- dat[complete.cases(dat), ]
M <- mean(d$alliance_patient); d$J <- d$alliance_therapist - M
d$alliance_patient <- d$alliance_patient - M
long <- rbind(
  data.frame(dat[, c("therapist", "patient", "session", "condition")],
             rater = "therapist", alliance = dat$alliance_therapist),
  data.frame(dat[, c("therapist", "patient", "session", "condition")],
             rater = "patient", alliance = dat$alliance_patient))
long$rater <- factor(long$rater, levels = c("therapist", "patient"))
long <- long[!is.na(long$alliance), ]; long$time <- long$session - 1
gf <- alliance ~ 0 + rater + rater:time + rater:condition + rater:time:condition
fits <- list(
  tb_ar1 = function() lme(J ~ alliance_patient * condition * session,
    random = ~ 1 | therapist/patient, data = d,
    correlation = corAR1(form = ~ session | therapist/patient)),
  growth_rater = function() lme(gf, random = ~ 1 | therapist/patient, data = long,
    weights = varIdent(form = ~ 1 | rater),
    correlation = corCompSymm(form = ~ 1 | therapist/patient/session)),
  growth_ar1 = function() lme(gf, random = ~ 1 | therapist/patient, data = long,
    correlation = corAR1(form = ~ session | therapist/patient/rater)))
out <- lapply(fits, function(f) {
  f()
  median(sapply(seq_len(reps), function(i) {
    st <- system.time(f()); st[["user.self"]] + st[["sys.self"]]
  }))
})
cat(jsonlite::toJSON(out, auto_unbox = TRUE, digits = NA))
"""


def replicate_data(scale: int) -> pd.DataFrame:
    """``scale`` copies of the reference data with relabelled therapists and patients."""
    base = pd.read_csv(DATA)
    parts = [base.assign(therapist=base["therapist"] + f"_{k}",
                         patient=base["patient"] + f"_{k}") for k in range(scale)]
    return pd.concat(parts, ignore_index=True)


def median_time(func: object, reps: int) -> float:
    func()  # type: ignore[operator]
    times = []
    for _ in range(reps):
        t0 = time.process_time()
        func()  # type: ignore[operator]
        times.append(time.process_time() - t0)
    return float(np.median(times))


def engine_times(d: pd.DataFrame, reps: int) -> dict[str, float]:
    long = stack_raters(d, ratings={"therapist": "alliance_therapist",
                                    "patient": "alliance_patient"})
    growth = {"outcome": "alliance", "time": "session", "rater": "rater",
              "groups": ["therapist", "patient"], "moderators": "condition",
              "random": "intercept"}
    calls = {
        "tb_ar1": lambda: fit_truth_bias(
            d, judgment="alliance_therapist", truth="alliance_patient",
            groups=["therapist", "patient"], moderators=["condition", "session"],
            time="session", random="intercept", residual="ar1"),
        "growth_rater": lambda: fit_growth(long, **growth, residual="rater"),
        "growth_ar1": lambda: fit_growth(long, **growth, residual="ar1"),
        "growth_rater_ar1": lambda: fit_growth(long, **growth, residual="rater_ar1"),
    }
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {name: median_time(call, reps) for name, call in calls.items()}


def nlme_times(d: pd.DataFrame, reps: int) -> dict[str, float]:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "data.csv"
        script = Path(tmp) / "bench.R"
        d.to_csv(path, index=False)
        script.write_text(R_SCRIPT)
        res = subprocess.run(["Rscript", str(script), str(path), str(reps)],
                             capture_output=True, text=True, check=True)
    return {k: float(v) for k, v in json.loads(res.stdout).items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--reps", type=int, default=5)
    ap.add_argument("--scales", type=int, nargs="+", default=[1, 4])
    ap.add_argument("--no-r", action="store_true", help="skip nlme")
    args = ap.parse_args()
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, numpy {np.__version__}")
    rows = []
    for scale in args.scales:
        d = replicate_data(scale)
        ours = engine_times(d, args.reps)
        theirs = {} if args.no_r else nlme_times(d, args.reps)
        for model, sec in ours.items():
            r = theirs.get(model, np.nan)
            rows.append({"patients": 117 * scale, "model": model, "alliancestats_s": sec,
                         "nlme_s": r, "ratio": sec / r if np.isfinite(r) else np.nan})
    with pd.option_context("display.width", 120, "display.precision", 4):
        print(pd.DataFrame(rows).to_string(index=False))


if __name__ == "__main__":
    main()
