"""The power design's arrays of the growth structures fit the model ``fit_growth`` fits."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

from alliancestats import PRNParams, fit_growth, stack_raters
from alliancestats.exceptions import AllianceStatsWarning
from alliancestats.power import _designs as pdz
from alliancestats.power._designs import Sizes, simulate_panel

NAMES = [f"rater[{r}]:session:condition" for r in ("therapist", "patient")]


@pytest.mark.parametrize("residual", ["iid", "rater"])
def test_power_rater_slopes_therapist_matches_fit_growth(residual: str) -> None:
    params = PRNParams(sd_truth_growth_therapist=0.06, residual_corr_raters=0.3)
    panel = simulate_panel(np.random.default_rng(4), Sizes(16, 48, 5), params, 0.1)
    spec = pdz.with_residual(pdz.with_random(pdz.DESIGNS["growth"],
                                             "rater_slopes_therapist"), residual)
    assert spec.random == "rater_slopes_therapist"
    assert "per therapist a random intercept and a time slope for each rater" in spec.model
    fast = spec.fit_fast(panel, None)
    long = stack_raters(panel.to_frame(), ratings={"therapist": "alliance_therapist",
                                                   "patient": "alliance_patient"})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllianceStatsWarning)
        res = fit_growth(long, outcome="alliance", time="session", rater="rater",
                         groups=["therapist", "patient"], moderators="condition",
                         random="rater_slopes_therapist", residual=residual)
    np.testing.assert_allclose(fast.estimate, res.params[NAMES], rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(fast.std_error, res.bse[NAMES], rtol=2e-3)
    assert (fast.status == "singular") == res.is_singular
