"""Write the data sets used to check the truth-and-bias and growth models against lme4.

Run from the repository root, then ``Rscript tests/reference/r/tb_growth_reference.R``
(see ``tests/reference/README.md``). Each file is one simulated PRN-style trial (therapists
randomised to ``condition`` 1 = trained or 0, patients nested in therapists, sessions
nested in patients) with therapist-rated (``alliance_therapist``), patient-rated
(``alliance_patient``) alliance and a commensurate bias variable (``alliance_projection``,
the therapist's own-perspective rating). The generator is self-contained (fixed seeds, no
dependence on the package's simulator) so the frozen files can always be regenerated:

- ``tb_small.csv``: 12 therapists, 30 patients, 4 sessions, moderate random effects;
- ``tb_medium.csv``: 40 therapists, 117 patients, 6 sessions (the PRN size), about 8 % of
  patient-rated values missing;
- ``tb_nearsingular.csv``: 20 therapists, 50 patients, 5 sessions, with no therapist-level
  variation in the judgment and almost none in the patient-level truth force, so the
  richer random-effects structures sit on or near the boundary.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

OUT = Path(__file__).parent / "data"

DESIGNS = {
    "small": {"seed": 101, "n_ther": 12, "n_pat": 30, "n_ses": 4, "sd_w": 0.35,
              "sd_z": 0.5, "sd_f": 0.15, "p_missing": 0.0},
    "medium": {"seed": 202, "n_ther": 40, "n_pat": 117, "n_ses": 6, "sd_w": 0.3,
               "sd_z": 0.45, "sd_f": 0.1, "p_missing": 0.08},
    "nearsingular": {"seed": 303, "n_ther": 20, "n_pat": 50, "n_ses": 5, "sd_w": 0.0,
                     "sd_z": 0.4, "sd_f": 0.01, "p_missing": 0.0},
}


def make(seed: int, n_ther: int, n_pat: int, n_ses: int, sd_w: float, sd_z: float,
         sd_f: float, p_missing: float) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    condition = rng.permutation(np.repeat([0, 1], [n_ther - n_ther // 2, n_ther // 2]))
    therapist = np.sort(np.concatenate([np.arange(n_ther),
                                        rng.integers(0, n_ther, n_pat - n_ther)]))
    c = condition[therapist][:, None].astype(float)
    s = np.arange(n_ses, dtype=float)[None, :]
    # Truth: patient-rated alliance, growing over sessions.
    v = 0.3 * rng.standard_normal(n_ther)[therapist][:, None]
    u = 0.6 * rng.standard_normal(n_pat)[:, None]
    r = 0.06 * rng.standard_normal(n_pat)[:, None]
    y = 5.2 + 0.05 * s + v + u + r * s + 0.4 * rng.standard_normal((n_pat, n_ses))
    # Bias variable: the therapist's own view, partly shared across their patients.
    b = 5.0 + 0.4 * rng.standard_normal(n_ther)[therapist][:, None] \
        + 0.3 * rng.standard_normal((n_pat, n_ses))
    # Judgment: truth and bias forces moderated by condition and session.
    w = sd_w * rng.standard_normal(n_ther)[therapist][:, None]
    z = sd_z * rng.standard_normal(n_pat)[:, None]
    f = sd_f * rng.standard_normal(n_pat)[:, None]
    force = 0.3 + 0.05 * c + (0.0 + 0.06 * c) * s + f
    x = (5.2 - 0.4 + 0.03 * s + 0.05 * c * s + force * (y - 5.2) + 0.2 * (b - 5.0)
         + w + z + 0.4 * rng.standard_normal((n_pat, n_ses)))
    frame = pd.DataFrame({
        "therapist": np.repeat([f"T{k + 1:02d}" for k in therapist], n_ses),
        "patient": np.repeat([f"P{j + 1:03d}" for j in range(n_pat)], n_ses),
        "session": np.tile(np.arange(1, n_ses + 1), n_pat),
        "condition": np.repeat(condition[therapist], n_ses),
        "alliance_therapist": x.ravel().round(4),
        "alliance_patient": y.ravel().round(4),
        "alliance_projection": b.ravel().round(4),
    })
    missing = rng.random(len(frame)) < p_missing
    frame.loc[missing, "alliance_patient"] = np.nan
    return frame


if __name__ == "__main__":
    OUT.mkdir(parents=True, exist_ok=True)
    for name, design in DESIGNS.items():
        path = OUT / f"tb_{name}.csv"
        make(**design).to_csv(path, index=False)
        print(f"wrote {path}")
