"""Write the cross-sectional data set with a true third-order surface, used to check the
cubic and piecewise members of the RSA family against R's RSA package.

Run from the repository root, then run ``Rscript tests/reference/r/rsacubic_reference.R``.
The surface (fixed seed, 1-7 rating scale, centred near the pooled mean) has a
congruence effect whose strength changes with the level (CL-like) and an asymmetric
cubic part (CA-like): z = 20 + 0.8 (X + Y) - 0.7 (X - Y)^2 + 0.25 (X - Y)^3
+ 0.15 (X + Y)(X - Y)^2 + noise.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).parent / "data" / "rsacubic_data.csv"
OUT_SADDLE = Path(__file__).parent / "data" / "rsasaddle_data.csv"


def make(seed: int = 20262) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 300
    common = rng.normal(0.0, 0.9, n)
    x = 4.8 + common + rng.normal(0.0, 0.7, n)
    y = 5.1 + common + rng.normal(0.0, 0.7, n)
    xc, yc = x - 4.95, y - 4.95
    d, s = xc - yc, xc + yc
    z = 20 + 0.8 * s - 0.7 * d**2 + 0.25 * d**3 + 0.15 * s * d**2 + rng.normal(0, 1.0, n)
    return pd.DataFrame({"x": x.round(3), "y": y.round(3), "z": z.round(3)})


def make_saddle(seed: int = 20263) -> pd.DataFrame:
    """A saddle (b3 > 0 > b5), on which the inequality constraints of ``weak``
    (b3 b5 > 0) and ``strong`` (b3 b5 > 1e-6 on the rank-one surface) are active."""
    rng = np.random.default_rng(seed)
    n = 200
    x = 5.0 + rng.normal(0.0, 1.0, n)
    y = 5.0 + rng.normal(0.0, 1.0, n)
    xc, yc = x - 5.0, y - 5.0
    z = 20 + 0.5 * xc + 0.3 * yc + 0.6 * xc**2 - 0.2 * xc * yc - 0.5 * yc**2 \
        + rng.normal(0, 1.0, n)
    return pd.DataFrame({"x": x.round(3), "y": y.round(3), "z": z.round(3)})


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    make().to_csv(OUT, index=False)
    make_saddle().to_csv(OUT_SADDLE, index=False)
    print(f"wrote {OUT} and {OUT_SADDLE}")
