"""Type-I error and coverage of the growth model's training effects by structure (issue 20.2).

The PRN simulator makes the therapist's rating from the patient's (truth force), so the
two ratings of one session have rater-specific random effects and unequal, correlated
residuals. This script simulates PRN trials (40 therapists, 117 patients, 6 sessions) and
fits ``fit_growth`` with several random/residual structures. Two scenarios:

- ``null``: no training effect on growth (``gamma03 = gamma11 = gamma13 = 0``); every
  contrast's true value is 0, so 1 - coverage is the type-I error;
- ``bias_growth``: training changes only the therapist's directional bias over sessions
  (``gamma03 = 0.05``, ``gamma11 = gamma13 = 0``); the therapist's expected rating is then
  linear in session with a training effect on growth of exactly ``gamma03`` (the truth
  force is constant), the patient's is 0.

``--sd-growth-therapist`` adds a therapist random slope of session in patient-rated
alliance (``PRNParams.sd_truth_growth_therapist``; the therapist's rating inherits it
through the truth force): training is assigned to therapists, so a structure without
therapist-level slopes tests its effects on growth liberally then.

Per structure and contrast it records the rejection rate at 5 % of H0: contrast = 0
(Satterthwaite t, the default), the coverage of the 95 % interval of the true value, the
mean model SE and the empirical SD of the estimates, with Monte-Carlo SEs. Plain script,
seeded (replicate ``i`` uses seed ``--seed + i``):

    python benchmarks/sim_growth_report_type1.py --reps 500 --scenario null
    python benchmarks/sim_growth_report_type1.py --reps 300 --scenario null \
        --sd-growth-therapist 0.06 --structures rater_slopes/rater rater_slopes_therapist/rater
"""

from __future__ import annotations

import argparse
import dataclasses
import platform
import time
import warnings

import numpy as np
import pandas as pd

from alliancestats import PRNParams, fit_growth, simulate_prn, stack_raters

SCENARIOS = {
    "null": (PRNParams(gamma03=0.0, gamma11=0.0, gamma13=0.0),
             {"therapist": 0.0, "patient": 0.0, "difference": 0.0}),
    "bias_growth": (PRNParams(gamma03=0.05, gamma11=0.0, gamma13=0.0),
                    {"therapist": 0.05, "patient": 0.0, "difference": -0.05}),
}
ROWS = {"therapist": "condition effect on growth (rater=therapist)",
        "patient": "condition effect on growth (rater=patient)",
        "difference": "condition effect on growth: rater patient - therapist"}
STRUCTURES = ("rater_slopes_therapist/rater", "rater_slopes/iid", "rater_slopes/rater",
              "rater_intercepts/rater", "slopes/iid", "slopes/rater")


def one(seed: int, scenario: str, structures: list[str],
        sd_growth_therapist: float = 0.0) -> list[dict[str, object]]:
    params, truth = SCENARIOS[scenario]
    params = dataclasses.replace(params, sd_truth_growth_therapist=sd_growth_therapist)
    data = simulate_prn(40, 117, 6, params=params, rng=seed)
    long = stack_raters(data, ratings={"therapist": "alliance_therapist",
                                       "patient": "alliance_patient"})
    out = []
    for structure in structures:
        random, residual = structure.split("/")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = fit_growth(long, outcome="alliance", time="session", rater="rater",
                             groups=["therapist", "patient"], moderators="condition",
                             random=random, residual=residual)
            table = res.contrasts
        for name, row in ROWS.items():
            est = table.loc[row]
            out.append({"seed": seed, "structure": structure, "contrast": name,
                        "estimate": float(est["estimate"]),
                        "std_error": float(est["std_error"]),
                        "p_value": float(est["p_value"]),
                        "covers": bool(est["conf_low"] <= truth[name] <= est["conf_high"]),
                        "singular": bool(res.is_singular)})
    return out


def summarise(frame: pd.DataFrame) -> pd.DataFrame:
    """Rejection, coverage (with MC SEs), mean SE / empirical SD per structure x contrast."""
    g = frame.groupby(["structure", "contrast"], sort=False)
    out = g.agg(reps=("seed", "size"),
                rejection=("p_value", lambda p: float(np.mean(p < 0.05))),
                coverage=("covers", "mean"), mean_se=("std_error", "mean"),
                emp_sd=("estimate", "std"), singular=("singular", "mean"))
    out["mcse_rej"] = np.sqrt(out["rejection"] * (1 - out["rejection"]) / out["reps"])
    out["mcse_cov"] = np.sqrt(out["coverage"] * (1 - out["coverage"]) / out["reps"])
    return out[["reps", "rejection", "mcse_rej", "coverage", "mcse_cov", "mean_se",
                "emp_sd", "singular"]]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--reps", type=int, default=200)
    parser.add_argument("--seed", type=int, default=20261202)
    parser.add_argument("--scenario", choices=sorted(SCENARIOS), default="null")
    parser.add_argument("--structures", nargs="+", default=list(STRUCTURES),
                        help="random/residual pairs, e.g. rater_slopes/rater")
    parser.add_argument("--sd-growth-therapist", type=float, default=0.0,
                        help="PRNParams.sd_truth_growth_therapist (therapist random slope "
                             "of session in patient-rated alliance)")
    parser.add_argument("--csv", default=None, help="write the replicates here")
    args = parser.parse_args()
    start = time.process_time()
    rows = [r for i in range(args.reps)
            for r in one(args.seed + i, args.scenario, args.structures,
                         args.sd_growth_therapist)]
    frame = pd.DataFrame(rows)
    if args.csv:
        frame.to_csv(args.csv, index=False)
    print(f"{platform.platform()}; Python {platform.python_version()}; scenario "
          f"{args.scenario}; sd_truth_growth_therapist {args.sd_growth_therapist}; "
          f"seed {args.seed}; {args.reps} replicates; "
          f"{time.process_time() - start:.0f} s CPU")
    with pd.option_context("display.width", 200):
        print(summarise(frame).round(4).to_string())


if __name__ == "__main__":
    main()
