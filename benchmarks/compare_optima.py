"""Check that two versions of the engine reach the same optima on many simulated fits.

Fits random-slope models (therapist and patient slopes, patient slopes only, session
slopes) by REML and ML to simulated PRN-like trials of 6-40 therapists and writes the
log-likelihood, iterations and θ of each fit as JSON; ``--compare A B`` lists fits whose
log-likelihood differs by more than 1e-6. Run it once per version of the code::

    PYTHONPATH=/path/to/old/src python benchmarks/compare_optima.py 0 120 > old.json
    PYTHONPATH=src python benchmarks/compare_optima.py 0 120 > new.json
    python benchmarks/compare_optima.py --compare old.json new.json
"""

from __future__ import annotations

import argparse
import json
import warnings

import numpy as np
import pandas as pd


def fits(first: int, last: int) -> dict[str, list[object]]:
    from alliancestats import simulate_prn
    from alliancestats._mixed._engine import fit_nested_lmm

    out: dict[str, list[object]] = {}
    for seed in range(first, last):
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
                f = fit_nested_lmm(J, X, groups, Z, reml=reml)
                out[f"{seed}-{model}-{'REML' if reml else 'ML'}"] = [
                    f.llf, f.n_iter, f.theta.tolist()]
    return out


def compare(a: dict[str, list[float]], b: dict[str, list[float]]) -> None:
    differ = 0
    for key, (llf_a, *_) in a.items():
        llf_b = b[key][0]
        if abs(llf_a - llf_b) > 1e-6:
            differ += 1
            print(f"{key}: logLik {llf_a:.8f} vs {llf_b:.8f}")
    iters = sum(v[1] for v in a.values()), sum(v[1] for v in b.values())
    print(f"{len(a)} fits, {differ} with a different optimum; optimiser iterations "
          f"{iters[0]} vs {iters[1]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("seeds", type=int, nargs="*", default=[0, 60])
    parser.add_argument("--compare", nargs=2, metavar=("A", "B"))
    args = parser.parse_args()
    if args.compare:
        with open(args.compare[0]) as fa, open(args.compare[1]) as fb:
            compare(json.load(fa), json.load(fb))
        return
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        print(json.dumps(fits(*args.seeds)))


if __name__ == "__main__":
    main()
