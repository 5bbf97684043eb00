"""Write the data sets of the RSA reference tests (fixed seed; committed as CSV).

Run from the repository root, then ``Rscript tests/reference/r/rsa_reference.R``:

- ``rsa_single.csv``: cross-sectional x, y (a 1-7 scale, y a little higher than x),
  outcome z from an asymmetric congruence surface, a control w and a 0/1 group ``cond``
  whose surfaces differ.
- ``rsa_longitudinal.csv``: 24 therapists x 4 patients x 6 sessions with random therapist
  and patient intercepts in x, y and z; z at session t depends on the x, y surface of
  session t - 1 and weakly on z at t - 1. About 8% of sessions are missing (gaps that break the
  lag) and two z values are missing.

The values are rounded to 4 decimals so that the CSV round trip is exact.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).parent / "data"


def make_single(seed: int = 4101, n: int = 180) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    common = rng.normal(0.0, 0.9, n)
    x = 4.6 + common + rng.normal(0.0, 0.6, n)
    y = 5.0 + common + rng.normal(0.0, 0.6, n)
    cond = rng.integers(0, 2, n)
    w = rng.normal(size=n)
    xc, yc = x - 4.8, y - 4.8
    trained = 0.8 * xc + 0.6 * yc - 0.5 * xc**2 + 0.9 * xc * yc - 0.45 * yc**2
    untrained = 0.7 * xc + 0.5 * yc - 0.3 * xc**2 + 0.3 * xc * yc - 0.2 * yc**2
    z = 10 + np.where(cond == 1, trained, untrained) + 0.4 * w + rng.normal(0, 0.8, n)
    return pd.DataFrame({"x": x, "y": y, "z": z, "w": w, "cond": cond}).round(4)


def make_longitudinal(seed: int = 4102) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n_ther, n_pat, n_ses = 24, 4, 6
    rows = []
    for k in range(n_ther):
        cond = k % 2
        vx, vy, vz = rng.normal(0, [0.4, 0.3, 2.0])
        for j in range(n_pat):
            ux, uy, uz = rng.normal(0, [0.5, 0.5, 2.5])
            z_prev = x_prev = y_prev = np.nan
            for t in range(1, n_ses + 1):
                common = rng.normal(0, 0.5)
                x = 4.8 + vx + ux + 0.1 * t + common + rng.normal(0, 0.4)
                y = 5.2 + vy + uy + 0.1 * t + common + rng.normal(0, 0.4)
                if t == 1:
                    z = 20 + vz + uz + rng.normal(0, 3.0)
                else:
                    xc, yc = x_prev - 5.2, y_prev - 5.2
                    surf = (0.5 * xc + 0.5 * yc - (0.6 * cond + 0.1) * (xc - yc) ** 2
                            + 0.1 * xc**2)
                    z = 16 + 0.2 * z_prev + 0.2 * t + surf + vz + uz + rng.normal(0, 3.0)
                rows.append((f"T{k:02d}", f"P{j}", t, cond, x, y, z))
                z_prev, x_prev, y_prev = z, x, y
    data = pd.DataFrame(rows, columns=["therapist", "patient", "session", "condition",
                                       "x", "y", "z"])
    missed = rng.random(len(data)) < 0.08
    data = data.loc[~missed].reset_index(drop=True)
    data.loc[rng.choice(len(data), 2, replace=False), "z"] = np.nan
    return data.round(4)


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    make_single().to_csv(OUT / "rsa_single.csv", index=False)
    make_longitudinal().to_csv(OUT / "rsa_longitudinal.csv", index=False)
    print(f"wrote {OUT / 'rsa_single.csv'} and {OUT / 'rsa_longitudinal.csv'}")
