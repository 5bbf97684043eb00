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
vcov(β)) are computed once per fit on first use and cached.

A second table times one Satterthwaite call (``_ddf.satterthwaite`` at the estimate) by
the default path (central differences of the engine's exact gradient) and by the
evaluations-only path it replaced (``_satterthwaite_evaluations``, kept as the fallback),
with the number of factorisations (deviance evaluations) and reverse gradient passes per
call, for ``tb``, ``tb_auto`` (``random="auto"``), ``tb_slopes`` and ``growth_rater``
(``random="rater_slopes"``, ``residual="rater"``); and the CPU seconds per replicate of
``power("truth_bias", ddf="satterthwaite")`` at PRN size with either path. Plain script:

    python benchmarks/bench_ddf.py
    python benchmarks/bench_ddf.py --reps 10 --sims 40
    python benchmarks/bench_ddf.py --only-calls
"""

# ruff: noqa: SLF001  (the benchmark compares the library's internal df paths)

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

from alliancestats import datasets, fit_growth, fit_truth_bias, power, stack_raters
from alliancestats._mixed import _ddf
from alliancestats._mixed._engine import _core

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


def _call_models(data: pd.DataFrame) -> dict[str, Callable[[], Any]]:
    long = stack_raters(data, ratings={"therapist": "alliance_therapist",
                                       "patient": "alliance_patient"})
    tb = {**ROLES, "moderators": ["condition", "session"]}
    return {
        "tb": lambda: fit_truth_bias(data, **tb, random="intercept"),
        "tb_auto": lambda: fit_truth_bias(data, **tb),
        "tb_slopes": lambda: fit_truth_bias(data, **tb, random="slopes"),
        "growth_rater": lambda: fit_growth(long, outcome="alliance", time="session",
                                           rater="rater", groups=ROLES["groups"],
                                           moderators="condition", random="rater_slopes",
                                           residual="rater"),
    }


class _Counts:
    """Counts factorisations and reverse passes of the engine while active."""

    def __init__(self) -> None:
        self.factorize, self.passes = 0, 0
        self._saved: dict[str, Any] = {}

    def __enter__(self) -> _Counts:
        for name in ("factorize", "gradient", "inner_adjoint"):
            original = self._saved[name] = getattr(_core, name)
            setattr(_core, name, self._wrap(name, original))
        return self

    def _wrap(self, name: str, original: Any) -> Any:
        def counted(*args: Any, **kwargs: Any) -> Any:
            if name == "factorize":
                self.factorize += 1
            else:
                self.passes += 1
            return original(*args, **kwargs)
        return counted

    def __exit__(self, *exc: object) -> None:
        for name, original in self._saved.items():
            setattr(_core, name, original)


def _time(fun: Callable[[], Any], reps: int) -> float:
    fun()
    samples = []
    for _ in range(reps):
        t0 = time.process_time()
        fun()
        samples.append(time.process_time() - t0)
    return float(np.median(samples))


def satterthwaite_calls(data: pd.DataFrame, reps: int) -> pd.DataFrame:
    """CPU time and engine work of one Satterthwaite call, both paths."""
    rows = []
    for name, fit in _call_models(data).items():
        src = fit()._fit.mixed.ddf_source
        paths = {
            "gradient": lambda s=src: _ddf.satterthwaite(s.model, s.y, s.theta,
                                                         reml=s.reml),
            "evaluations": lambda s=src: _ddf._satterthwaite_evaluations(
                s.model, s.y, s.theta, s.reml),
        }
        row: dict[str, Any] = {"model": name, "n_params": src.theta.size}
        for label, call in paths.items():
            call()  # the response's prepared cross products are cached by the model
            with _Counts() as counts:
                call()
            row[f"{label} factorisations"] = counts.factorize
            row[f"{label} passes"] = counts.passes
            row[f"{label} (ms)"] = 1e3 * _time(call, reps)
        row["speed-up"] = row["evaluations (ms)"] / row["gradient (ms)"]
        rows.append(row)
    return pd.DataFrame(rows)


def power_replicates(sims: int) -> pd.DataFrame:
    """CPU seconds per replicate of ``power("truth_bias", ddf="satterthwaite")`` with
    either path (same seed: the same replicates)."""
    sizes = {"n_therapists": 40, "n_patients": 117, "n_sessions": 6}
    rows = []
    original = _ddf.satterthwaite
    spent = [0.0]

    def evaluations(model: Any, y: Any, theta: Any, *, reml: bool | None = None) -> Any:
        use = model.reml if reml is None else reml
        return _ddf._satterthwaite_evaluations(
            model, np.asarray(y, float).ravel(), np.asarray(theta, float).ravel(), use)

    def timed(path: Any) -> Any:
        def call(*args: Any, **kwargs: Any) -> Any:
            t0 = time.process_time()
            out = path(*args, **kwargs)
            spent[0] += time.process_time() - t0
            return out
        return call

    try:
        power("truth_bias", n_sims=4, rng=0, progress=False, ddf="satterthwaite", **sizes)
        for label, path in (("gradient", original), ("evaluations", evaluations)):
            _ddf.satterthwaite = timed(path)  # type: ignore[assignment]
            spent[0] = 0.0
            t0 = time.process_time()
            power("truth_bias", n_sims=sims, rng=1, progress=False, ddf="satterthwaite",
                  **sizes)
            cpu = time.process_time() - t0
            rows.append({"path": label, "ms per replicate": 1e3 * cpu / sims,
                         "of which Satterthwaite (ms)": 1e3 * spent[0] / sims})
    finally:
        _ddf.satterthwaite = original  # type: ignore[assignment]
    return pd.DataFrame(rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=7)
    parser.add_argument("--sims", type=int, default=20,
                        help="power replicates per path")
    parser.add_argument("--only-calls", action="store_true",
                        help="only the Satterthwaite-call and power tables")
    args = parser.parse_args()
    data = datasets.load("prn")
    print(f"# {platform.processor() or platform.machine()}, {os.cpu_count()} CPUs, "
          f"Python {platform.python_version()}, numpy {np.__version__}; CPU seconds")
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        print("\n## one Satterthwaite call (CPU ms, median of --reps)")
        print(satterthwaite_calls(data, args.reps).round(2).to_string(index=False))
        print(f"\n## power('truth_bias', ddf='satterthwaite'), PRN size, {args.sims} "
              "replicates per path (CPU ms)")
        print(power_replicates(args.sims).round(2).to_string(index=False))
        if args.only_calls:
            return
        print("\n## fit and use, by ddf (CPU ms)")
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
