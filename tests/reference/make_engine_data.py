"""Write the data sets used to check the nested mixed-model engine against lme4.

Run from the repository root, then ``Rscript tests/reference/r/engine_reference.R``.
Each file holds a two-level nested design (``g1`` = therapist, ``g2`` = patient numbered
*within* therapist, so the patient unit is ``g1:g2``), a within-patient covariate ``x1``
(truth-like, varying by session), a therapist-level binary ``x2`` (condition-like) and

    y = 1 + 0.5 x1 - 0.3 x2 + (a_k + c_k x1) + (a_kj + c_kj x1) + e,

with correlated (intercept, slope) pairs at both levels. Fixed seeds; self-contained.

- ``engine_prn.csv``: 40 therapists, 117 patients, 6 sessions, ~8 % sessions missing,
  moderate variances at both levels;
- ``engine_singular.csv``: as PRN-sized but with no therapist-level variation at all, so
  lme4's fits with therapist terms are singular;
- ``engine_large.csv``: 150 therapists, 600 patients, 2-10 sessions each (unbalanced).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).parent / "data"

DESIGNS = {
    "prn": {"seed": 11, "n_ther": 40, "n_pat": 117, "ses": (6, 6), "p_missing": 0.08,
            "sd_t": (0.5, 0.15), "r_t": 0.3, "sd_p": (0.6, 0.25), "r_p": -0.4, "sd_e": 0.7},
    "singular": {"seed": 22, "n_ther": 40, "n_pat": 117, "ses": (6, 6), "p_missing": 0.0,
                 "sd_t": (0.0, 0.0), "r_t": 0.0, "sd_p": (0.6, 0.25), "r_p": 0.2,
                 "sd_e": 0.7},
    "large": {"seed": 33, "n_ther": 150, "n_pat": 600, "ses": (2, 10), "p_missing": 0.0,
              "sd_t": (0.4, 0.2), "r_t": -0.2, "sd_p": (0.5, 0.3), "r_p": 0.3, "sd_e": 0.8},
}


def _pairs(rng: np.random.Generator, n: int, sd: tuple[float, float], r: float) -> np.ndarray:
    cov = np.array([[sd[0] ** 2, r * sd[0] * sd[1]], [r * sd[0] * sd[1], sd[1] ** 2]])
    return rng.multivariate_normal(np.zeros(2), cov, size=n)


def make(seed: int, n_ther: int, n_pat: int, ses: tuple[int, int], p_missing: float,
         sd_t: tuple[float, float], r_t: float, sd_p: tuple[float, float], r_p: float,
         sd_e: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    # every therapist gets at least one patient; the rest are spread at random
    ther_of = np.concatenate([np.arange(n_ther), rng.integers(0, n_ther, n_pat - n_ther)])
    ther_of.sort()
    within = np.concatenate([np.arange(np.sum(ther_of == k)) + 1 for k in range(n_ther)])
    cond = rng.integers(0, 2, n_ther)
    re_t = _pairs(rng, n_ther, sd_t, r_t)
    re_p = _pairs(rng, n_pat, sd_p, r_p)
    rows = []
    for j in range(n_pat):
        k = ther_of[j]
        n_ses = int(rng.integers(ses[0], ses[1] + 1))
        x1 = rng.normal(0.0, 1.0) + rng.normal(0.0, 0.8, n_ses)
        keep = rng.random(n_ses) >= p_missing
        keep[0] = True
        e = rng.normal(0.0, sd_e, n_ses)
        y = (1.0 + 0.5 * x1 - 0.3 * cond[k] + re_t[k, 0] + re_t[k, 1] * x1
             + re_p[j, 0] + re_p[j, 1] * x1 + e)
        for s in np.flatnonzero(keep):
            rows.append((f"T{k + 1:03d}", int(within[j]), s + 1, x1[s], float(cond[k]), y[s]))
    frame = pd.DataFrame(rows, columns=["g1", "g2", "session", "x1", "x2", "y"])
    return frame.round({"x1": 6, "y": 6})


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for name, kw in DESIGNS.items():
        make(**kw).to_csv(OUT / f"engine_{name}.csv", index=False)  # type: ignore[arg-type]


if __name__ == "__main__":
    main()
