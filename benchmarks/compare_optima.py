"""Check that two versions of the engine reach the same optima on many simulated fits.

Every optimisation of the covariance parameters (each call of the engine's
``_optimise``) in these fits is recorded with its final deviance, its ``θ`` (then
``ψ``), the SLSQP iterations and the deviance and gradient evaluations it took:

- ``nested``: random-slope models (therapist and patient slopes, patient slopes only,
  session slopes) fitted by REML and ML directly with the engine to PRN-like trials of
  6-40 therapists;
- ``prn``, ``small``: ``fit_truth_bias`` with ``random="slopes"`` and the default
  structure on ``simulate_prn`` at the PRN size and at 10 therapists / 30 patients
  (singular fits and several local optima are more common there);
- ``growth``: ``fit_growth`` with ``random="slopes"`` and ``"rater_slopes_therapist"``
  on the stacked ratings of a PRN trial (as ``benchmarks/bench_models.py``);
- ``residual``: residual parameters optimised with ``θ``: ``fit_growth`` with
  ``"rater_slopes"`` and ``"rater_slopes_therapist"`` and ``residual="rater"`` (the power
  analysis' growth model), ``fit_truth_bias`` with slopes and AR(1) residuals.

Run it once per version of the code, then compare::

    PYTHONPATH=/path/to/old/src python benchmarks/compare_optima.py 0 120 > old.json
    PYTHONPATH=src python benchmarks/compare_optima.py 0 120 > new.json
    python benchmarks/compare_optima.py --compare old.json new.json

``--compare A B`` counts, per family, the optimisations whose deviance is higher in B
than in A by more than 1e-9 (another optimum: a bug) or lower, the largest ``|Δθ|``, how
many end below their first SLSQP run (``found``: a boundary restart found a lower
optimum), and the total iterations, evaluations and processor time of each version.
"""

from __future__ import annotations

import argparse
import json
import time
import warnings
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pandas as pd

FAMILIES = ("nested", "prn", "small", "growth", "residual")
TB = {"judgment": "alliance_therapist", "truth": "alliance_patient",
      "groups": ["therapist", "patient"]}
GR = {"outcome": "alliance", "time": "session", "groups": ["therapist", "patient"],
      "rater": "rater", "moderators": "condition"}
RATINGS = {"therapist": "alliance_therapist", "patient": "alliance_patient"}


def nested_cases(seed: int) -> Iterator[tuple[str, Callable[[], Any]]]:
    """Slope models fitted with the engine directly (REML and ML)."""
    from alliancestats import simulate_prn
    from alliancestats._mixed._engine import fit_nested_lmm

    rng = np.random.default_rng(seed)
    n_ther = int(rng.choice([6, 10, 20, 40]))
    df = simulate_prn(n_ther, n_ther * int(rng.integers(2, 4)), 6, p_missing=0.1,
                      rng=seed).dropna(subset=["alliance_therapist", "alliance_patient"])
    m = df.alliance_patient.mean()
    J = (df.alliance_therapist - m).to_numpy()
    T = (df.alliance_patient - m).to_numpy()
    sess = df.session.to_numpy(float) - df.session.mean()
    cond = (df.condition == df.condition.iloc[0]).to_numpy(float)
    ther = pd.factorize(df.therapist)[0]
    J = J + rng.normal(scale=rng.choice([0, 0.05, 0.2])) * T * rng.normal(size=n_ther)[ther]
    X = np.column_stack([np.ones(len(J)), T, cond, sess, T * cond, T * sess])
    groups = df[["therapist", "patient"]]
    for model, Z in {"slopes": [X[:, :2], X[:, :2]], "pslope": [X[:, :1], X[:, :2]],
                     "session": [X[:, [0, 3]], X[:, [0, 3]]]}.items():
        for reml in (True, False):
            yield (f"{model}-{'REML' if reml else 'ML'}",
                   lambda Z=Z, reml=reml: fit_nested_lmm(J, X, groups, Z, reml=reml))


def public_cases(family: str, seed: int) -> Iterator[tuple[str, Callable[[], Any]]]:
    """``fit_truth_bias`` / ``fit_growth`` calls on one simulated trial."""
    from alliancestats import fit_growth, fit_truth_bias, simulate_prn, stack_raters

    if family == "growth":
        long = stack_raters(simulate_prn(rng=seed), ratings=RATINGS)
        for random in ("slopes", "rater_slopes_therapist"):
            yield random, lambda random=random: fit_growth(long, **GR, random=random)
        return
    if family == "residual":
        df = simulate_prn(rng=seed)
        long = stack_raters(df, ratings=RATINGS)
        yield "ar1", lambda: fit_truth_bias(df, **TB, random="slopes", residual="ar1",
                                            time="session")
        for random in ("rater_slopes", "rater_slopes_therapist"):
            yield random, lambda random=random: fit_growth(long, **GR, random=random,
                                                           residual="rater")
        return
    df = (simulate_prn(rng=seed) if family == "prn"
          else simulate_prn(n_therapists=10, n_patients=30, rng=seed))
    yield "slopes", lambda: fit_truth_bias(df, **TB, random="slopes")
    yield "auto", lambda: fit_truth_bias(df, **TB)


class Recorder:
    """Records every ``_optimise`` call: deviance, parameters, iterations, evaluations."""

    def __init__(self) -> None:
        from alliancestats._mixed._engine import _core, _model

        self.calls: list[list[Any]] = []
        self.counts = {"nit": 0, "eval": 0, "grad": 0}
        self.active = False
        self.first: float | None = None
        # every deviance is one blocked factorisation; every gradient one reverse pass
        _core.factorize = self._counted(_core.factorize, "eval")
        _model._Objective.gradient = self._counted(_model._Objective.gradient, "grad")
        slsqp, optimise = _model._slsqp, _model._optimise

        def counted_slsqp(*args: Any, **kw: Any) -> Any:
            res = slsqp(*args, **kw)
            self.counts["nit"] += int(res.nit)
            self.first = res.fun if self.first is None else self.first
            return res

        def recorded_optimise(s: Any, deviance: Any, *args: Any) -> Any:
            self.counts = dict.fromkeys(self.counts, 0)
            self.active, self.first = True, None
            cpu = time.process_time()
            out = optimise(s, deviance, *args)
            cpu = time.process_time() - cpu
            self.active = False
            params = np.asarray(out[0], dtype=float)
            # the first SLSQP run's deviance: restarts that end lower found another optimum
            self.calls.append([float(deviance(params)), params.tolist(), *self.counts.values(),
                               cpu, float(self.first) * s.n])
            return out

        _model._slsqp, _model._optimise = counted_slsqp, recorded_optimise

    def _counted(self, method: Any, key: str) -> Any:
        def wrapper(*args: Any, **kw: Any) -> Any:
            if self.active:
                self.counts[key] += 1
            return method(*args, **kw)
        return wrapper


def fits(first: int, last: int, families: list[str]) -> dict[str, list[list[Any]]]:
    rec = Recorder()
    out: dict[str, list[list[Any]]] = {}
    for seed in range(first, last):
        for family in families:
            calls = nested_cases(seed) if family == "nested" else public_cases(family, seed)
            for name, call in calls:
                rec.calls = []
                call()
                out[f"{family}/{seed}/{name}"] = rec.calls
    return out


COLUMNS = ["fits", "optimisations", "misaligned", "higher", "lower", "max_dtheta",
           "found_a", "found_b", "nit_a", "nit_b", "eval_a", "eval_b", "grad_a", "grad_b",
           "cpu_a", "cpu_b"]


def compare(a: dict[str, list[list[Any]]], b: dict[str, list[list[Any]]]) -> None:
    """Per family: optimisations ending higher / lower in B than in A (by more than 1e-9
    in the deviance), the largest ``|Δθ|``, how many ended below their first SLSQP run
    (``found``: a restart found a lower optimum) and the totals of iterations,
    deviances, gradients and processor seconds of A and B."""
    rows: dict[str, dict[str, float]] = {}
    for key, calls_a in a.items():
        calls_b = b[key]
        family, _, name = key.split("/")
        row = rows.setdefault(f"{family}/{name}", dict.fromkeys(COLUMNS, 0.0))
        row["fits"] += 1
        if len(calls_a) != len(calls_b):
            row["misaligned"] += 1
            print(f"{key}: {len(calls_a)} vs {len(calls_b)} optimisations")
        for ca, cb in zip(calls_a, calls_b, strict=False):
            row["optimisations"] += 1
            diff = cb[0] - ca[0]
            if abs(diff) > 1e-9:
                row["higher" if diff > 0 else "lower"] += 1
                print(f"{key}: deviance {ca[0]:.10f} -> {cb[0]:.10f}"
                      f"{' (HIGHER)' if diff > 0 else ''}")
            if len(ca[1]) == len(cb[1]):
                row["max_dtheta"] = max(row["max_dtheta"],
                                        float(np.max(np.abs(np.subtract(ca[1], cb[1])))))
            for i, what in enumerate(("nit", "eval", "grad", "cpu")):
                row[f"{what}_a"] += ca[2 + i]
                row[f"{what}_b"] += cb[2 + i]
            row["found_a"] += ca[0] < ca[6] - 1e-9
            row["found_b"] += cb[0] < cb[6] - 1e-9
    table = pd.DataFrame(rows).T
    table.loc["total"] = table.sum()
    table.loc["total", "max_dtheta"] = table["max_dtheta"].iloc[:-1].max()
    with pd.option_context("display.width", 250, "display.max_columns", 20):
        print(table.round({"max_dtheta": 10, "cpu_a": 2, "cpu_b": 2}).to_string())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("seeds", type=int, nargs="*", default=[0, 60])
    parser.add_argument("--families", nargs="+", choices=FAMILIES, default=list(FAMILIES))
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"))
    args = parser.parse_args()
    if args.compare:
        with open(args.compare[0]) as fa, open(args.compare[1]) as fb:
            compare(json.load(fa), json.load(fb))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        print(json.dumps(fits(*args.seeds, args.families)))


if __name__ == "__main__":
    main()
