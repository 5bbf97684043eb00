"""Type-I error of the report's growth model: iid vs rater residuals (issue 20.2).

The PRN simulator makes the therapist's rating from the patient's (truth force), so the
two ratings of one session have unequal and correlated residuals. This script simulates
PRN trials without any training effect (``gamma03 = gamma11 = gamma13 = 0``; 40
therapists, 117 patients, 6 sessions) and fits the report's growth model,
``fit_growth(random="rater_slopes")``, with ``residual="iid"`` and ``residual="rater"``.
It records, per structure, the rejection rate at 5 % (Satterthwaite t, the default) of

- the training effect on the therapist's growth rate,
- the training effect on the patient's growth rate,
- their difference (rater x condition x time),

and the coverage of the 95 % intervals (the true value is 0). Plain script, seeded:

    python benchmarks/sim_growth_report_type1.py --reps 200
"""

from __future__ import annotations

import argparse
import platform
import time
import warnings

import numpy as np
import pandas as pd

from alliancestats import PRNParams, fit_growth, simulate_prn, stack_raters

NULL = PRNParams(gamma03=0.0, gamma11=0.0, gamma13=0.0)
ROWS = {"therapist": "condition effect on growth (rater=therapist)",
        "patient": "condition effect on growth (rater=patient)",
        "difference": "condition effect on growth: rater patient - therapist"}


def one(seed: int) -> list[dict[str, object]]:
    data = simulate_prn(40, 117, 6, params=NULL, rng=seed)
    long = stack_raters(data, ratings={"therapist": "alliance_therapist",
                                       "patient": "alliance_patient"})
    out = []
    for residual in ("iid", "rater"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = fit_growth(long, outcome="alliance", time="session", rater="rater",
                             groups=["therapist", "patient"], moderators="condition",
                             random="rater_slopes", residual=residual)
            table = res.contrasts
        for name, row in ROWS.items():
            out.append({"seed": seed, "residual": residual, "contrast": name,
                        "p_value": float(table.loc[row, "p_value"]),
                        "covers": bool(table.loc[row, "conf_low"] <= 0
                                       <= table.loc[row, "conf_high"]),
                        "singular": bool(res.is_singular)})
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261202)
    args = parser.parse_args()
    start = time.perf_counter()
    rows = [r for i in range(args.reps) for r in one(args.seed + i)]
    frame = pd.DataFrame(rows)
    summary = frame.groupby(["residual", "contrast"]).agg(
        rejection=("p_value", lambda p: float(np.mean(p < 0.05))),
        coverage=("covers", "mean"), singular=("singular", "mean"), reps=("seed", "size"))
    summary["mcse"] = np.sqrt(0.05 * 0.95 / summary["reps"])
    print(f"{platform.platform()}; Python {platform.python_version()}; seed {args.seed}; "
          f"{args.reps} replicates; {time.perf_counter() - start:.0f} s")
    print(summary.round(3).to_string())


if __name__ == "__main__":
    main()
