"""Data of the partially nested reference (``r/partial_nesting_reference.R``).

One partially nested PRN trial drawn with the project's power simulator (therapists in
the trained arm only; each untrained patient a unit of its own): the same panel the
test rebuilds from the seed. Run from the repository root:

    PYTHONPATH=src python tests/reference/make_partial_data.py
    Rscript tests/reference/r/partial_nesting_reference.R
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from alliancestats.power._designs import Sizes, simulate_panel
from alliancestats.simulate import PRNParams

SEED = 20261202
SIZES = Sizes(40, 117, 6)
P_MISSING = 0.1
#: Sizeable therapist effects, so that the trained arm's therapist variance is estimated
#: away from 0 (intercepts, session slopes and truth force).
PARAMS = {"sd_judgment_therapist": 0.4, "sd_truth_therapist": 0.4,
          "sd_truth_growth_therapist": 0.05, "sd_truth_force_therapist": 0.15,
          "sd_truth_force": 0.1}


def panel():  # type: ignore[no-untyped-def]
    """The reference trial (a power Panel)."""
    return simulate_panel(np.random.default_rng(SEED), SIZES, PRNParams(**PARAMS), P_MISSING,
                          nesting="partial")


if __name__ == "__main__":
    out = Path(__file__).parent / "data" / "partial_nested.csv"
    panel().to_frame().to_csv(out, index=False, float_format="%.17g")
    print(f"wrote {out}")
