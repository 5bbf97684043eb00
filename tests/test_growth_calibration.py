"""Calibration of the documented growth structure on the project's own simulator.

The PRN simulator generates rater-specific random effects and unequal, correlated
residuals of the two ratings of a session. The structure the growth guide and the report
use for rater-stacked data must cover the training effect on the therapist's growth rate
in 93–97 % of simulated trials (issue: methodologically sound defaults). Full simulation,
also of type-I error and of other structures: benchmarks/sim_growth_report_type1.py.
"""

from __future__ import annotations

import warnings

import pytest

from alliancestats import PRNParams, fit_growth, simulate_prn, stack_raters

#: The documented structure (report and growth guide).
RANDOM, RESIDUAL = "rater_slopes", "rater"
#: Training changes only the therapist's directional bias over sessions, so the
#: therapist's expected rating is linear in session with a training effect on its growth
#: of exactly gamma03 (the truth force is constant); the patient's is 0.
PARAMS = PRNParams(gamma03=0.05, gamma11=0.0, gamma13=0.0)
ROW = "condition effect on growth (rater=therapist)"


@pytest.mark.slow
def test_documented_growth_structure_covers_the_training_effect() -> None:
    n, covered = 400, 0
    for i in range(n):
        data = simulate_prn(40, 117, 6, params=PARAMS, rng=91000 + i)
        long = stack_raters(data, ratings={"therapist": "alliance_therapist",
                                           "patient": "alliance_patient"})
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = fit_growth(long, outcome="alliance", time="session", rater="rater",
                             groups=["therapist", "patient"], moderators="condition",
                             random=RANDOM, residual=RESIDUAL)
        row = res.contrasts.loc[ROW]
        covered += bool(row["conf_low"] <= PARAMS.gamma03 <= row["conf_high"])
    # 400 trials: Monte-Carlo SE of a 95 % coverage is 1.1 percentage points
    assert 0.93 <= covered / n <= 0.97, covered / n


def test_report_fits_the_calibrated_structure() -> None:
    from alliancestats.report import GROWTH_RANDOM, GROWTH_RESIDUAL

    assert (GROWTH_RANDOM, GROWTH_RESIDUAL) == (RANDOM, RESIDUAL)
