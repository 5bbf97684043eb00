"""``power_sensitivity``: power over a grid of uncertain simulator parameters."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from alliancestats import power, power_sensitivity

SMALL = {"n_therapists": 8, "n_patients": 24, "n_sessions": 4, "n_sims": 6,
         "random": "intercept", "ddf": "z", "progress": False}


def test_each_row_is_the_power_run_of_its_combination() -> None:
    vary = {"sd_truth_force_therapist": [0.0, 0.3], "gamma13": [0.0, 0.1]}
    table = power_sensitivity("truth_bias", vary, effects={"sd_truth_force": 0.1}, rng=7,
                              **SMALL)
    assert list(table.columns[:2]) == ["sd_truth_force_therapist", "gamma13"]
    combos = table[["sd_truth_force_therapist", "gamma13"]].drop_duplicates()
    assert combos.to_numpy().tolist() == [[0.0, 0.0], [0.0, 0.1], [0.3, 0.0], [0.3, 0.1]]
    for sd, gamma in combos.to_numpy():
        alone = power("truth_bias", effects={"sd_truth_force": 0.1,
                                             "sd_truth_force_therapist": sd,
                                             "gamma13": gamma}, rng=7, **SMALL).power
        rows = table[(table["sd_truth_force_therapist"] == sd) & (table["gamma13"] == gamma)]
        pd.testing.assert_frame_equal(rows.drop(columns=list(vary)).reset_index(drop=True),
                                      alone, check_exact=True)
    assert table.attrs["seed"].entropy == 7
    assert table.attrs["effects"] == {"sd_truth_force": 0.1}
    # the true value follows the varied effect
    tv = table.set_index("gamma13")["true_value"]
    assert set(tv.loc[0.1]) == {0.1}
    assert set(tv.loc[0.0]) == {0.0}


def test_common_random_numbers_across_combinations() -> None:
    # one seed for every combination: the same trials, with a truth force growing 0.05
    # per session faster in the trained arm. That change lies in the column space of
    # the fixed effects, so every replicate's estimate moves by exactly 0.05 and its
    # spread is unchanged (independent draws differed by 0.027 instead, seeds 3 and 4)
    table = power_sensitivity("truth_bias", {"gamma13": [0.0, 0.05]}, rng=3, **SMALL)
    by = table.set_index("gamma13")
    assert abs((by.loc[0.05, "mean_estimate"] - by.loc[0.0, "mean_estimate"]) - 0.05) < 1e-8
    assert by.loc[0.05, "sd_estimate"] == pytest.approx(by.loc[0.0, "sd_estimate"], rel=1e-8)


def test_null_effects_and_a_grid_over_sizes() -> None:
    kw = {**SMALL, "n_therapists": [6, 8]}
    table = power_sensitivity("truth_bias", {"sd_truth_force_therapist": [0.0, 0.2]},
                              effects="null", rng=1, **kw)
    assert len(table) == 4  # 2 values x 2 sizes x 1 term
    assert (table["true_value"] == 0).all()
    assert table.attrs["effects"] == {"gamma13": 0.0}


def test_checkpoint_resumes_per_combination(tmp_path: object) -> None:
    from pathlib import Path

    where = Path(str(tmp_path)) / "sens"
    first = power_sensitivity("truth_bias", {"sd_truth_force_therapist": [0.0, 0.2]},
                              checkpoint=where, rng=4, **SMALL)
    names = sorted(p.name for p in where.iterdir())
    assert names == ["sd_truth_force_therapist=0.0", "sd_truth_force_therapist=0.2"]
    again = power_sensitivity("truth_bias", {"sd_truth_force_therapist": [0.0, 0.2]},
                              checkpoint=where, **SMALL)  # seed from the checkpoint
    pd.testing.assert_frame_equal(first, again, check_exact=True)


@pytest.mark.parametrize(
    ("vary", "kwargs", "error", "match"),
    [
        ({"sd_truth_force_therapis": [0.1]}, {}, ValueError,
         r"`vary` has unknown key.*sd_truth_force_therapist"),
        ({}, {}, ValueError, r"`vary` is empty"),
        ([0.1], {}, TypeError, r"`vary` must be a dict"),
        ({"gamma13": 0.1}, {}, TypeError, r"vary\['gamma13'\]` must be a list"),
        ({"gamma13": []}, {}, ValueError, r"vary\['gamma13'\]` is empty"),
        ({"gamma13": ["a"]}, {}, TypeError, r"must hold numbers"),
        ({"gamma13": [0.1, 0.1]}, {}, ValueError, r"more than once"),
        ({"sd_truth_force": [0.1, -0.1]}, {}, ValueError, r"standard deviation"),
        ({"gamma13": [0.1]}, {"effects": {"gamma13": 0.2}}, ValueError,
         r"`effects` and `vary` both set \['gamma13'\]"),
        ({"gamma13": [0.1]}, {"n_simz": 3}, TypeError, r"unexpected keyword.*n_simz"),
        ({"gamma13": [0.1]}, {"effects": "nul"}, ValueError, r"effects"),
    ],
)
def test_bad_input_is_refused_before_simulating(vary: object, kwargs: dict[str, object],
                                                error: type[Exception], match: str) -> None:
    args = {**SMALL, "n_sims": 10**9, **kwargs}  # would take forever if it simulated
    with pytest.raises(error, match=match):
        power_sensitivity("truth_bias", vary, rng=1, **args)  # type: ignore[arg-type]


def test_vary_is_not_mutated() -> None:
    values = np.array([0.0, 0.2])
    vary = {"sd_truth_force_therapist": values}
    power_sensitivity("truth_bias", vary, rng=1, **{**SMALL, "n_sims": 2})
    assert vary == {"sd_truth_force_therapist": values}
    assert values.tolist() == [0.0, 0.2]


@pytest.mark.slow
def test_omitted_random_truth_force_shows_in_the_type_one_error() -> None:
    """The sensitivity grid shows what the power guide says: with a therapist random
    truth force and a random-intercept fit, the test of the training effect on the
    truth force rejects a true null too often; without it, it holds alpha."""
    table = power_sensitivity(
        "truth_bias", {"sd_truth_force_therapist": [0.0, 0.25]}, effects="null",
        targets="truth_force_difference_first", random="intercept", n_sims=300, rng=20,
        progress=False)
    rate = table.set_index("sd_truth_force_therapist")
    assert rate.loc[0.0, "ci_low"] <= 0.05 <= rate.loc[0.0, "ci_high"]
    assert rate.loc[0.25, "ci_low"] > 0.05
