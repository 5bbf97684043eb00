"""Write the cross-sectional data set used to check single-level RSA against R's RSA package.

Run from the repository root, then run ``Rscript tests/reference/r/rsapkg_reference.R``.
The data are simulated with a fixed seed: a congruence surface with a slight asymmetry
(so that a3 and a5 are not exactly zero), on a 1-7 rating scale.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).parent / "data" / "rsapkg_data.csv"


def make(seed: int = 20231) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    n = 240
    common = rng.normal(0.0, 0.8, n)
    x = 5.0 + common + rng.normal(0.0, 0.6, n)
    y = 5.3 + common + rng.normal(0.0, 0.6, n)
    xc, yc = x - 5.15, y - 5.15
    z = (20 + 1.5 * xc + 1.0 * yc - 0.9 * xc**2 + 1.6 * xc * yc - 0.6 * yc**2
         + 0.3 * rng.normal(size=n) * 4)
    return pd.DataFrame({"x": x.round(3), "y": y.round(3), "z": z.round(3),
                         "w": rng.normal(size=n).round(3)})


if __name__ == "__main__":
    OUT.parent.mkdir(parents=True, exist_ok=True)
    make().to_csv(OUT, index=False)
    print(f"wrote {OUT}")
