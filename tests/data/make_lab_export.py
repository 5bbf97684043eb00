"""Write the lab-export-shaped test data set (run from the repository root).

    python tests/data/make_lab_export.py

A small simulated PRN trial (``alliancestats.simulate_prn``, fixed seed) reshaped the way a
lab's own export looks: column names ``Therapist_ID``, ``ClientID`` (restarting at 1
within each therapist), ``Group`` with text labels "training"/"control", ``Sess``,
``WAI_T``, ``WAI_C``, ``ORS``; about 7% missed sessions and a few single missing ratings.
Written as

* ``lab_long.csv``, ``lab_long.xlsx`` -- one row per client x session, text labels;
* ``lab_long.sav`` -- the same in SPSS form: ``Group`` coded 0/1 with value labels
  0 = "control", 1 = "training" and variable labels, as SPSS users store it;
* ``lab_wide.csv`` -- one row per client, ``WAI_T_1 .. WAI_T_6``, ``WAI_C_*``, ``ORS_*``.

The files are committed; re-running this script reproduces them byte for byte (CSV) or
value for value (xlsx, sav).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from alliancestats import sessions_to_wide, simulate_prn

HERE = Path(__file__).resolve().parent
SEED = 20240614
ARMS = {0: "control", 1: "training"}


def lab_long() -> pd.DataFrame:
    """The long lab export (text arm labels, client ids restarting within therapist)."""
    sim = simulate_prn(14, 42, 6, p_missing=0.07, rng=SEED)
    therapist = sim["therapist"].str.slice(1).astype(int)
    client = sim.groupby("therapist")["patient"].transform(
        lambda p: pd.factorize(p)[0] + 1)
    long = pd.DataFrame({
        "Therapist_ID": therapist, "ClientID": client.astype(int),
        "Group": sim["condition"].map(ARMS), "Sess": sim["session"].astype(int),
        "WAI_T": sim["alliance_therapist"].round(2), "WAI_C": sim["alliance_patient"].round(2),
        "ORS": sim["wellbeing"].round(1),
    })
    rng = np.random.default_rng(SEED + 1)
    for col in ("WAI_T", "WAI_C", "ORS"):  # a few single missing ratings
        long.loc[rng.choice(len(long), size=3, replace=False), col] = np.nan
    return long


def write(long: pd.DataFrame) -> None:
    """Write the long data as CSV, xlsx and sav, and the wide data as CSV."""
    long.to_csv(HERE / "lab_long.csv", index=False)
    long.to_excel(HERE / "lab_long.xlsx", index=False)
    import pyreadstat

    coded = long.assign(Group=long["Group"].map({v: k for k, v in ARMS.items()}))
    pyreadstat.write_sav(
        coded, HERE / "lab_long.sav",
        column_labels={"Therapist_ID": "Therapist", "ClientID": "Client within therapist",
                       "Group": "Randomised arm", "Sess": "Session number",
                       "WAI_T": "Working alliance, therapist-rated",
                       "WAI_C": "Working alliance, client-rated",
                       "ORS": "Outcome Rating Scale"},
        variable_value_labels={"Group": {float(k): v for k, v in ARMS.items()}})
    wide = sessions_to_wide(long, unit=["Therapist_ID", "ClientID", "Group"], time="Sess",
                            values=["WAI_T", "WAI_C", "ORS"])
    wide.to_csv(HERE / "lab_wide.csv", index=False)


if __name__ == "__main__":
    write(lab_long())
