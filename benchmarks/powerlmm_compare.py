"""Simulated power of the ``growth_single`` design against powerlmm's analytic power.

powerlmm (Magnusson; R) computes the power of the treatment x time test of a three-level
growth model analytically. ``tests/reference/powerlmm/powerlmm_reference.R`` froze its
numbers for three designs with unequal caseloads (20 and 40 therapists, and 20 with
monotone dropout) in ``powerlmm_reference.json``. This script simulates the same designs
with :func:`alliancestats.power` (Satterthwaite t tests, the default; ``--ddf z`` for
Wald z tests, compared with powerlmm's ``df = "between"`` only for orientation),
under the effect and under the null, and prints both side by side with the Monte-Carlo
SE. ``--out`` stores the simulated numbers (with the seed and per-replicate p-values)
for ``tests/test_power_powerlmm.py``:

    PYTHONPATH=src python benchmarks/powerlmm_compare.py --sims 1000 \
        --out tests/reference/powerlmm/powerlmm_simulated.json

Times are CPU seconds of the process (``time.process_time``; the machine is shared).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Any

import numpy as np

from alliancestats import power

REFERENCE = Path(__file__).resolve().parents[1] / "tests" / "reference" / "powerlmm"
SEED = 20261202


def load_reference(path: Path = REFERENCE / "powerlmm_reference.json") -> dict[str, Any]:
    """The frozen powerlmm numbers and the settings they were computed for."""
    with open(path, encoding="utf-8") as fh:
        return json.load(fh)


def effects_for(meta: dict[str, Any], setting: dict[str, Any], null: bool) -> dict[str, float]:
    """Simulator overrides of one reference setting (``gamma03 = 0`` under the null)."""
    eff = {k: float(v) for k, v in meta["params"].items()}
    hazard = float(setting["dropout_hazard"])
    eff.update(dropout_trained=hazard, dropout_untrained=hazard)
    if null:
        eff["gamma03"] = 0.0
    return eff


def simulate(meta: dict[str, Any], setting: dict[str, Any], null: bool, n_sims: int,
             ddf: str, seed: int = SEED, n_jobs: int = 1) -> dict[str, Any]:
    """Power (or type-I error) of ``time:condition`` in ``n_sims`` seeded replicates."""
    t0 = time.process_time()
    res = power("growth_single", effects=effects_for(meta, setting, null),
                caseloads=[int(c) for c in setting["caseloads"]],
                n_sessions=int(meta["n_sessions"]), n_sims=n_sims, rng=seed, ddf=ddf,
                alpha=float(meta["alpha"]), n_jobs=n_jobs, progress=False)
    row = res.power.iloc[0]
    pvalues = res.pvalues["time:condition"].to_numpy(dtype=float)
    return {
        "ddf": ddf, "null": null, "n_sims": n_sims, "seed": seed,
        "power": float(row["power"]), "mcse": float(row["mcse"]),
        "n_valid": int(row["n_valid"]), "n_singular": int(row["n_singular"]),
        "mean_estimate": float(row["mean_estimate"]), "true_value": float(row["true_value"]),
        "cpu_seconds": time.process_time() - t0,
        "pvalues": [None if not np.isfinite(p) else round(float(p), 10) for p in pvalues],
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sims", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=1)
    parser.add_argument("--ddf", nargs="+", default=["satterthwaite"])
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()

    ref = load_reference()
    meta = ref["meta"]
    print(f"powerlmm {meta['powerlmm']} ({meta['R']}); {args.sims} replicates, seed {SEED}")
    header = (f"{'setting':12} {'test':6} {'ddf':13} {'sim':>6} {'mcse':>6} "
              f"{'pl_satt':>8} {'pl_betw':>8} {'pl_bal':>7} {'diff/mcse':>9} {'cpu_s':>6}")
    print(header)
    out: dict[str, Any] = {"seed": SEED, "n_sims": args.sims, "results": []}
    for name, setting in ref["settings"].items():
        for null in (False, True):
            pl = setting["null" if null else "effect"]
            for ddf in args.ddf:
                sim = simulate(meta, setting, null, args.sims, ddf, n_jobs=args.jobs)
                target = pl["splits_mean"]["satterth" if ddf == "satterthwaite" else "between"]
                diff = (sim["power"] - target) / np.sqrt(target * (1 - target) / sim["n_valid"])
                print(f"{name:12} {'null' if null else 'effect':6} {ddf:13} "
                      f"{sim['power']:6.3f} {sim['mcse']:6.3f} "
                      f"{pl['splits_mean']['satterth']:8.3f} "
                      f"{pl['splits_mean']['between']:8.3f} "
                      f"{pl['balanced']['satterth']:7.3f} {diff:9.2f} "
                      f"{sim['cpu_seconds']:6.1f}", flush=True)
                out["results"].append({"setting": name, **sim})
    if args.out is not None:
        args.out.write_text(json.dumps(out, indent=1) + "\n", encoding="utf-8")
        print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
