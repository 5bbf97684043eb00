"""Residual structures and partially nested trials in the PRN simulator."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from alliancestats import PRNParams, fit_truth_bias, simulate_prn
from alliancestats.exceptions import AllianceStatsWarning
from alliancestats.simulate import ar1_series, simulate_alliance, ungroup

RESIDUAL_FIELDS = ("residual_ar_truth", "residual_ar_judgment", "residual_ar_wellbeing",
                   "residual_corr_raters")

#: Only the session-level residuals vary: every random effect and the truth force 0.
RESIDUALS_ONLY = {
    "sd_truth_therapist": 0.0, "sd_truth_patient": 0.0, "sd_truth_growth": 0.0,
    "sd_judgment_therapist": 0.0, "sd_judgment_patient": 0.0,
    "gamma10": 0.0, "gamma11": 0.0, "gamma12": 0.0, "gamma13": 0.0,
}


def test_zero_residual_parameters_and_full_nesting_are_the_default() -> None:
    base = simulate_prn(12, 40, 5, p_missing=0.1, rng=4)
    explicit = simulate_prn(12, 40, 5, p_missing=0.1, rng=4, nesting="full",
                            params=dict.fromkeys(RESIDUAL_FIELDS, 0.0))
    pd.testing.assert_frame_equal(base, explicit)
    assert "nesting" not in base.attrs["params"]


def test_ar1_series_is_stationary_with_geometric_correlation() -> None:
    z = np.random.default_rng(0).standard_normal((40000, 4))
    assert ar1_series(z, 0.0) is z
    x = ar1_series(z, 0.6)
    # unit variance at every session; correlation phi ** lag (MC SE ~ 0.005)
    np.testing.assert_allclose(x.var(axis=0), 1.0, atol=0.03)
    corr = np.corrcoef(x.T)
    for lag in (1, 2, 3):
        np.testing.assert_allclose(np.diag(corr, lag), 0.6 ** lag, atol=0.02)


def test_residual_correlations_are_generated_as_documented() -> None:
    params = PRNParams(**RESIDUALS_ONLY, residual_ar_truth=0.5, residual_ar_judgment=0.5,
                       residual_corr_raters=0.4)
    rng = np.random.default_rng(1)
    n = 20000
    therapist = np.repeat(np.arange(100), n // 100)
    condition = np.repeat([0, 1], 50)
    x, y = simulate_alliance(rng, therapist, condition, 4, params,
                             np.random.default_rng(2))
    # residuals about the (fixed) mean trajectory of each arm and session
    c = condition[therapist]
    res_x = x - np.array([x[c == k].mean(axis=0) for k in (0, 1)])[c]
    res_y = y - np.array([y[c == k].mean(axis=0) for k in (0, 1)])[c]
    np.testing.assert_allclose(res_y.std(axis=0), params.sd_truth_residual, rtol=0.03)
    np.testing.assert_allclose(res_x.std(axis=0), params.sd_judgment_residual, rtol=0.03)
    for s in range(4):  # same-session cross-rater correlation rho (equal phi)
        assert abs(np.corrcoef(res_x[:, s], res_y[:, s])[0, 1] - 0.4) < 0.03
    for lag in (1, 2):  # serial correlation phi ** lag within each rater
        for res in (res_x, res_y):
            r = np.mean([np.corrcoef(res[:, s], res[:, s + lag])[0, 1]
                         for s in range(4 - lag)])
            assert abs(r - 0.5 ** lag) < 0.03


def test_wellbeing_residuals_are_ar1() -> None:
    quiet = {"sd_wellbeing_therapist": 0.0, "sd_wellbeing_patient": 0.0,
             "wellbeing_ar": 0.0, **{f"b{i}_trained": 0.0 for i in range(1, 6)}}
    frame = simulate_prn(100, 8000, 5, rng=3,
                         params={**quiet, "residual_ar_wellbeing": 0.7})
    wide = frame.pivot(index="patient", columns="session", values="wellbeing")
    # sessions 2..5: only the AR(1) residual varies around a fixed mean
    corr = np.corrcoef(wide[[2, 3, 4, 5]].to_numpy().T)
    np.testing.assert_allclose(np.diag(corr, 1), 0.7, atol=0.03)
    np.testing.assert_allclose(np.diag(corr, 2), 0.49, atol=0.03)


@pytest.mark.parametrize("field", RESIDUAL_FIELDS)
@pytest.mark.parametrize("value", [1.0, -1.0, 1.5])
def test_residual_correlations_must_lie_inside_minus_one_one(field: str,
                                                               value: float) -> None:
    with pytest.raises(ValueError, match=f"{field}.*correlation"):
        PRNParams(**{field: value})


def test_ar1_judgment_residual_is_recovered_by_the_ar1_model() -> None:
    """Simulate with phi = 0.5 in the therapist-rated residual, fit the truth-and-bias
    model with residual='ar1': phi within 3 standard errors (seeded)."""
    frame = simulate_prn(60, 300, 6, rng=5, params={"residual_ar_judgment": 0.5})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllianceStatsWarning)
        res = fit_truth_bias(frame, judgment="alliance_therapist", truth="alliance_patient",
                             groups=["therapist", "patient"],
                             moderators=["condition", "session"], random="intercept",
                             residual="ar1", time="session")
    phi = res.residual_params.loc["phi"]
    assert abs(phi["estimate"] - 0.5) < 3 * phi["std_error"]
    assert phi["std_error"] < 0.06


class TestPartialNesting:
    def test_trained_arm_is_unchanged_and_control_is_ungrouped(self) -> None:
        full = simulate_prn(10, 40, 4, rng=7)
        part = simulate_prn(10, 40, 4, rng=7, nesting="partial")
        assert part.attrs["params"]["nesting"] == "partial"
        trained = full["condition"] == 1
        # same draws: the trained arm (clustered) is identical
        pd.testing.assert_frame_equal(full[trained], part[trained])
        control = part[~trained]
        # each control patient is a unit of its own, labelled after the patient
        assert (control.groupby("therapist")["patient"].nunique() == 1).all()
        assert control["therapist"].str.startswith("U").all()
        assert not np.allclose(full.loc[~trained, "alliance_patient"],
                               control["alliance_patient"])

    def test_control_patients_carry_no_therapist_effect(self) -> None:
        only_therapist = {**RESIDUALS_ONLY, "sd_truth_residual": 0.0,
                          "sd_judgment_residual": 0.0, "truth_growth": 0.0,
                          "gamma02": 0.0, "gamma03": 0.0, "sd_truth_therapist": 0.5}
        frame = simulate_prn(20, 200, 3, rng=2, params=only_therapist, nesting="partial")
        by_arm = frame.groupby("condition")["alliance_patient"].std()
        assert by_arm[0] == pytest.approx(0.0, abs=1e-12)
        assert by_arm[1] > 0.2

    def test_ungroup_numbers_units_in_patient_order(self) -> None:
        condition = np.array([0, 1, 0])
        therapist = np.array([0, 0, 1, 1, 1, 2, 2])
        clustered = condition[therapist].astype(float)
        arm, unit = ungroup(condition, therapist, clustered)
        assert unit.tolist() == [0, 1, 2, 2, 2, 3, 4]
        assert arm.tolist() == [0, 0, 1, 0, 0]

    def test_bad_nesting(self) -> None:
        with pytest.raises(ValueError, match="`nesting` must be one of"):
            simulate_prn(4, 8, 3, rng=1, nesting="partially")
