"""Benchmark of the nested mixed-model engine against statsmodels MixedLM: seconds per fit.

Simulated PRN-style data (therapists, patients within therapists, 6 sessions, p = 3 fixed
effects) at the PRN size (40 therapists, 117 patients) and at 10x and 100x that many
therapists and patients. Two models, REML:

- ``ri``: random intercepts for therapist and patient-in-therapist;
  statsmodels: ``groups=therapist, vc_formula={"patient": "0 + C(patient)"}``;
- ``slopes``: therapist intercept + correlated patient intercept and slope on ``x1``
  (lme4 ``(1 | g1) + (1 + x1 | g1:g2)``). statsmodels cannot express a correlated
  within-therapist pair, so it fits the closest model it can (independent patient
  intercept and slope variance components); its time is a lower bound for the task.

Each cell reports the median wall time of ``--reps`` fits of fresh responses (engine: the
model's structure built once, as in a power simulation, plus the build time separately).
statsmodels is skipped where one fit would take minutes (``--sm-max`` patients). Plain
script:

    python benchmarks/bench_engine.py
    python benchmarks/bench_engine.py --reps 20 --scales 1 10
"""

from __future__ import annotations

import argparse
import os
import platform
import time
import warnings
from collections.abc import Callable

import numpy as np
import pandas as pd

from alliancestats._mixed._engine import NestedLMM


def simulate(scale: int, rng: np.random.Generator) -> pd.DataFrame:
    n_ther, n_pat = 40 * scale, 117 * scale
    ther = np.sort(np.concatenate([np.arange(n_ther), rng.integers(0, n_ther, n_pat - n_ther)]))
    pat = np.repeat(np.arange(n_pat), 6)
    t = ther[pat]
    x1 = rng.normal(size=n_pat)[pat] + rng.normal(0, 0.8, pat.size)
    x2 = rng.integers(0, 2, n_ther)[t].astype(float)
    frame = pd.DataFrame({"g1": t, "g2": pat, "x1": x1, "x2": x2})
    frame["y"] = response(frame, rng)
    return frame


def response(d: pd.DataFrame, rng: np.random.Generator) -> np.ndarray:
    n_ther, n_pat = int(d["g1"].max()) + 1, int(d["g2"].max()) + 1
    t, p = d["g1"].to_numpy(), d["g2"].to_numpy()
    return np.asarray(1 + 0.5 * d["x1"] - 0.3 * d["x2"] + rng.normal(0, 0.5, n_ther)[t]
                      + rng.normal(0, 0.6, n_pat)[p] + rng.normal(0, 0.25, n_pat)[p] * d["x1"]
                      + rng.normal(0, 0.7, len(d)))


def median_time(func: Callable[[int], object], reps: int) -> float:
    times = []
    for r in range(reps):
        start = time.perf_counter()
        func(r)
        times.append(time.perf_counter() - start)
    return float(np.median(times))


def bench(scale: int, model: str, reps: int, sm_max: int, rng: np.random.Generator) -> dict:
    d = simulate(scale, rng)
    ys = [response(d, rng) for _ in range(reps)]
    X = np.column_stack([np.ones(len(d)), d["x1"], d["x2"]])
    Z = [X[:, :1], X[:, :1] if model == "ri" else X[:, :2]]
    start = time.perf_counter()
    engine = NestedLMM(X, d[["g1", "g2"]], Z)
    build = time.perf_counter() - start
    engine.fit(ys[0])  # warm-up
    t_engine = median_time(lambda r: engine.fit(ys[r]), reps)
    t_sm = float("nan")
    if 117 * scale <= sm_max:
        import statsmodels.formula.api as smf

        vc = {"patient": "0 + C(g2)"}
        if model == "slopes":
            vc["pslope"] = "0 + C(g2):x1"

        def sm_fit(r: int) -> object:
            data = d.assign(y=ys[r])
            mod = smf.mixedlm("y ~ x1 + x2", data, groups="g1", re_formula="1", vc_formula=vc)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                return mod.fit(reml=True)

        t_sm = median_time(sm_fit, max(2, min(reps, 5 if scale > 1 else reps)))
    return {"model": model, "scale": scale, "therapists": 40 * scale,
            "patients": 117 * scale, "rows": len(d), "build_s": build, "engine_s": t_engine,
            "statsmodels_s": t_sm, "speedup": t_sm / t_engine}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=15)
    parser.add_argument("--scales", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--sm-max", type=int, default=1170,
                        help="largest number of patients fitted with statsmodels")
    args = parser.parse_args()
    rng = np.random.default_rng(2024)
    print(f"python {platform.python_version()}, numpy {np.__version__}, "
          f"{os.cpu_count()} cores, {args.reps} fits per cell (median), load average "
          + ", ".join(f"{v:.2f}" for v in os.getloadavg()))
    rows = [bench(s, m, args.reps, args.sm_max, rng)
            for m in ("ri", "slopes") for s in args.scales]
    table = pd.DataFrame(rows)
    with pd.option_context("display.width", 120, "display.float_format", "{:.4g}".format):
        print(table.to_string(index=False))


if __name__ == "__main__":
    main()
