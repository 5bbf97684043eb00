"""Write the bundled simulated PRN data set: ``src/alliancestats/datasets/prn.{csv,json}``.

The data are drawn from :func:`alliancestats.simulate_prn` with the default parameters,
40 therapists, 117 patients, 6 sessions, 5 % of sessions missed completely at random and
the fixed seed below; the three ratings are rounded to 2 decimals. The JSON file records
the description, the generating parameters, the seed, the rounding and the library
version. Re-run after any change to the generating model::

    PYTHONPATH=src python tools/make_prn_dataset.py
"""

from __future__ import annotations

import json
from pathlib import Path

import alliancestats
from alliancestats import simulate_prn

SEED = 20230101
DECIMALS = 2
SIZES = {"n_therapists": 40, "n_patients": 117, "n_sessions": 6}
P_MISSING = 0.05
OUT = Path(__file__).resolve().parents[1] / "src" / "alliancestats" / "datasets"

DESCRIPTION = (
    "Simulated PRN alliance-training trial (40 therapists randomised 20/20, 117 patients, "
    "6 sessions, about 5% of sessions missed at random). The data are SIMULATED: the "
    "original trial's data (Tasca et al., 2023, Psychotherapy 60(1)) are not public. "
    "Drawn from alliancestats.simulate_prn (patient-rated alliance growth model, "
    "therapist-rated alliance from a truth-and-bias model with condition x session "
    "moderated bias and truth force, well-being from a lagged response surface that "
    "rewards agreement on a positive alliance in the trained arm) with the parameters "
    "recorded here; values rounded to 2 decimals."
)


def main() -> None:
    frame = simulate_prn(**SIZES, p_missing=P_MISSING, rng=SEED)
    rated = ["alliance_therapist", "alliance_patient", "wellbeing"]
    frame[rated] = frame[rated].round(DECIMALS)
    meta = {
        "name": "prn",
        "file": "prn.csv",
        "description": DESCRIPTION,
        "simulated": True,
        "generator": "alliancestats.simulate_prn",
        "seed": SEED,
        "rounding_decimals": DECIMALS,
        "version": alliancestats.__version__,
        "params": frame.attrs["params"],
    }
    OUT.mkdir(parents=True, exist_ok=True)
    frame.to_csv(OUT / "prn.csv", index=False, float_format=f"%.{DECIMALS}f", lineterminator="\n")
    (OUT / "prn.json").write_text(json.dumps(meta, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {OUT / 'prn.csv'} ({len(frame)} rows) and prn.json")


if __name__ == "__main__":
    main()
