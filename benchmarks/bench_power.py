"""Benchmark of :func:`alliancestats.power`: seconds per replicate at PRN size.

For each design (truth_bias, growth, lagged_rsa) at the PRN trial's size (40 therapists,
117 patients, 6 sessions) it runs ``--sims`` replicates serially and with ``--jobs``
workers, and reports wall seconds per replicate, replicates per second, and the share of
worker time spent simulating vs fitting (from ``PowerResult.timings``). Plain script:

    python benchmarks/bench_power.py                      # fast engine, 200 replicates
    python benchmarks/bench_power.py --sims 1000 --designs truth_bias
    python benchmarks/bench_power.py --engine statsmodels --sims 50
    python benchmarks/bench_power.py --structures default,legacy --jobs 1

``--structures`` times the analysis' default random structures (truth and bias:
``random="auto"``, growth: ``"rater_slopes"``) and/or the ones fitted before they became
the default (``"intercept"``, rater-general ``"slopes"``). CPU seconds (process time of
this process) are reported beside wall time for serial runs: the machine may be shared.

The anchor: ``--lmertest N`` (default 20) simulated data sets fitted by lme4 with
lmerTest's Satterthwaite tests (``bench_power_lmertest.R``; skipped without Rscript), CPU
milliseconds per replicate, printed at the end of the same run.

The first parallel run of a process pays for starting the worker processes; a warm-up
run of a few replicates is done before timing so that one-off costs (imports, process
start-up) are reported separately.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import subprocess
import tempfile
import time
from pathlib import Path

import numpy as np

from alliancestats import power, simulate_prn, stack_raters
from alliancestats.power._designs import DESIGNS, LEGACY_RANDOM, Sizes, simulate_panel
from alliancestats.simulate import PRNParams

PRN = {"n_therapists": 40, "n_patients": 117, "n_sessions": 6}
RATINGS = {"therapist": "alliance_therapist", "patient": "alliance_patient"}


REALISM = {"dropout_trained": 0.1, "dropout_untrained": 0.1, "dropout_wellbeing": -0.05,
           "sd_truth_growth_therapist": 0.05, "sd_truth_force_therapist": 0.1}


def simulate_only(n: int, **overrides: float) -> float:
    """Seconds per replicate for drawing one PRN trial as arrays (no fit)."""
    params, sizes = PRNParams(**overrides), Sizes(**PRN)
    t0 = time.perf_counter()
    for i in range(n):
        rng = np.random.default_rng(np.random.SeedSequence(1, spawn_key=(i,)))
        simulate_panel(rng, sizes, params, 0.0)
    return (time.perf_counter() - t0) / n


def checkpoint_overhead(sims: int) -> float:
    """Milliseconds to re-open a complete checkpoint (lock, validate every chunk, load)."""
    import tempfile

    from alliancestats.power._designs import Design, FitOutcome

    def ols(panel: object, start: object) -> FitOutcome:  # no model fit: pure overhead
        return FitOutcome(np.zeros(1), np.ones(1), "ok")

    standin = Design("bench", "none", ("t",), ("t",), {}, ols, ols,  # type: ignore[arg-type]
                     lambda p, s: np.zeros(1))
    with tempfile.TemporaryDirectory() as tmp:
        kwargs = {"n_sims": sims, "rng": 1, "progress": False, "checkpoint": tmp,
                  "chunk_size": 10, **PRN}
        power(standin, **kwargs)  # type: ignore[arg-type]
        t0 = time.perf_counter()
        power(standin, **kwargs)  # type: ignore[arg-type]
        return (time.perf_counter() - t0) * 1e3


def one_run(design: str, sims: int, jobs: int, engine: str, seed: int,
            random: str | None = None) -> dict[str, float]:
    t0, c0 = time.perf_counter(), time.process_time()
    res = power(design, n_sims=sims, n_jobs=jobs, rng=seed, progress=False, engine=engine,
                random=random, **PRN)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - c0
    timing = res.timings[["seconds_simulating", "seconds_fitting"]].sum()
    busy = float(timing.sum())
    return {
        "wall": wall,
        "per_rep": wall / sims,
        "fit_share": float(timing["seconds_fitting"]) / busy,
        "sim_share": float(timing["seconds_simulating"]) / busy,
        "fit_per_rep": float(timing["seconds_fitting"]) / sims,
        "failed": float(res.power["n_failed"].max()),
        "engine": res.settings["engine"],
        "cpu_per_rep": cpu / sims,
    }


def lmertest_per_replicate(n: int) -> dict[str, float]:
    """CPU seconds per replicate of lme4/lmerTest fits of ``n`` simulated PRN data sets
    (``bench_power_lmertest.R``; empty without Rscript or with ``n = 0``)."""
    if n <= 0 or shutil.which("Rscript") is None:
        return {}
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(n):
            d = simulate_prn(**PRN, rng=i)
            d.to_csv(Path(tmp) / f"tb_{i}.csv", index=False)
            stack_raters(d, ratings=RATINGS, rater="rater", value="alliance").to_csv(
                Path(tmp) / f"growth_{i}.csv", index=False)
        script = Path(__file__).with_name("bench_power_lmertest.R")
        out = subprocess.run(["Rscript", str(script), tmp], check=True,
                             capture_output=True, text=True).stdout
    return {k: float(v) for k, v in json.loads(out).items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=200)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--engine", default="fast", choices=["fast", "statsmodels"])
    parser.add_argument("--designs", default=",".join(DESIGNS))
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--structures", default="default",
                        help="comma-separated: default and/or legacy random structures")
    parser.add_argument("--lmertest", type=int, default=20,
                        help="data sets timed with lme4/lmerTest (0: skip)")
    args = parser.parse_args()

    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}")
    print(f"size: {PRN}; replicates per run: {args.sims}; requested engine: {args.engine}")
    print("load average (1, 5, 15 min) at start: "
          + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    print(f"simulation alone: {simulate_only(200) * 1e3:.2f} ms per replicate; with "
          f"dropout and therapist slopes: {simulate_only(200, **REALISM) * 1e3:.2f} ms")
    print(f"checkpoint: {checkpoint_overhead(args.sims):.1f} ms to lock, validate and load "
          f"a {args.sims}-replicate run in chunks of 10\n")
    header = (f"{'design':<11} {'random':>12} {'jobs':>4} {'engine':>11} {'wall s':>8} "
              f"{'ms/rep':>8} {'cpu ms/rep':>10} {'fit ms/rep':>10} {'fit %':>6} "
              f"{'sim %':>6} {'failed':>6}")
    print(header)
    print("-" * len(header))
    for design in args.designs.split(","):
        try:
            # warm-up: imports and start-up of every worker (each must get a chunk: a
            # worker imports the library only when its first task arrives)
            power(design, n_sims=10 * args.jobs, rng=0, progress=False, engine=args.engine,
                  n_jobs=args.jobs, **PRN)
        except (ImportError, NotImplementedError) as exc:
            print(f"{design:<11} skipped: {type(exc).__name__}: {exc}")
            continue
        structures = []
        for which in args.structures.split(","):
            if which == "default":
                structures.append(None)
            elif design in LEGACY_RANDOM:
                structures.append(LEGACY_RANDOM[design])
        for random in structures:
            for jobs in sorted({1, args.jobs}):
                r = one_run(design, args.sims, jobs, args.engine, args.seed, random)
                cpu = f"{r['cpu_per_rep'] * 1e3:>10.2f}" if jobs == 1 else f"{'-':>10}"
                shown = random or DESIGNS[design].random or "intercept"
                print(f"{design:<11} {shown:>12} {jobs:>4} {r['engine']:>11} "
                      f"{r['wall']:>8.2f} {r['per_rep'] * 1e3:>8.2f} {cpu} "
                      f"{r['fit_per_rep'] * 1e3:>10.2f} {r['fit_share'] * 100:>6.1f} "
                      f"{r['sim_share'] * 100:>6.1f} {r['failed']:>6.0f}", flush=True)
    anchor = lmertest_per_replicate(args.lmertest)
    if anchor:
        print(f"\nlme4 {_r_version('lme4')} / lmerTest {_r_version('lmerTest')}, fit + "
              f"Satterthwaite tests (summary), CPU ms per replicate, {args.lmertest} data "
              f"sets (no simulation):")
        for model, seconds in anchor.items():
            print(f"  {model:<22} {seconds * 1e3:8.2f}")
    print("\nload average at end: " + ", ".join(f"{v:.2f}" for v in os.getloadavg())
          + "  (other processes on the machine inflate wall times)")


def _r_version(package: str) -> str:
    return subprocess.run(["Rscript", "-e", f"cat(format(packageVersion('{package}')))"],
                          capture_output=True, text=True).stdout.strip()


if __name__ == "__main__":
    main()
