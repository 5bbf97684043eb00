"""``PowerResult.required_size`` on constructed power curves, dips included."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alliancestats.exceptions import AllianceStatsWarning
from alliancestats.power import PowerResult

N_VALID = 200


def clopper_pearson(k: int, n: int) -> tuple[float, float]:
    low = 0.0 if k == 0 else float(stats.beta.ppf(0.025, k, n - k + 1))
    high = 1.0 if k == n else float(stats.beta.ppf(0.975, k + 1, n - k))
    return low, high


def result(curves: dict[str, list[float]], sizes: list[int], *,
           sessions: tuple[int, ...] = (6,), caseload: int | None = None) -> PowerResult:
    """A PowerResult whose ``power`` table has the given curves (power over n_therapists,
    ``N_VALID`` valid replicates per cell), the same for every number of sessions; 300
    patients, or ``caseload`` per therapist."""
    rows = []
    for n_sessions in sessions:
        for term, powers in curves.items():
            for size, p in zip(sizes, powers, strict=True):
                k = round(p * N_VALID)
                low, high = clopper_pearson(k, N_VALID)
                patients = 300 if caseload is None else caseload * size
                rows.append({"n_therapists": size, "n_patients": patients,
                             "n_sessions": n_sessions, "term": term, "power": k / N_VALID,
                             "ci_low": low, "ci_high": high, "n_valid": N_VALID})
    empty = pd.DataFrame()
    return PowerResult(pd.DataFrame(rows), empty, empty, empty, empty,
                       {"terms": list(curves), "patients_per_therapist": caseload}, empty)


def test_a_dip_within_monte_carlo_error_moves_the_answer_past_it() -> None:
    sizes = [20, 30, 40, 50]
    res = result({"t": [0.81, 0.78, 0.86, 0.90]}, sizes)
    table = res.power
    row = res.required_size(0.8, along="n_therapists").iloc[0]
    # the first size above the target is 20, but 30 falls below it again
    assert int(table.loc[table["power"] >= 0.8, "n_therapists"].min()) == 20
    assert row["required"] == 40
    assert row["power"] == 0.86
    assert bool(row["monotone"])
    # Monte-Carlo interval: no size is shown too small (every upper bound >= 0.8), the
    # lower bounds reach 0.8 from the first size of the tail where all of them do
    lows = table.set_index("n_therapists")["ci_low"]
    tail = [n for n in sizes if all(lows[m] >= 0.8 for m in sizes if m >= n)]
    assert row["required_low"] == 20
    assert row["required_high"] == (min(tail) if tail else pd.NA)
    assert table.set_index("n_therapists")["ci_high"].min() >= 0.8


def test_fixed_caseload_answers_in_therapists_past_the_dip() -> None:
    res = result({"t": [0.81, 0.78, 0.86, 0.90]}, [20, 30, 40, 50], caseload=3)
    row = res.required_size(0.8).iloc[0]
    assert (row["along"], row["required"], row["n_patients"]) == ("n_therapists", 40, 120)


def test_monte_carlo_interval_brackets_the_answer() -> None:
    sizes = [10, 20, 30, 40, 50]
    row = result({"t": [0.30, 0.62, 0.79, 0.88, 0.97]}, sizes).required_size(0.8).iloc[0]
    high_of = {n: clopper_pearson(round(p * N_VALID), N_VALID)[1]
               for n, p in zip(sizes, [0.30, 0.62, 0.79, 0.88, 0.97], strict=True)}
    too_small = max(n for n in sizes if high_of[n] < 0.8)
    assert too_small == 20  # 0.79 at 30 is not shown too small (upper bound 0.845)
    assert row["required"] == 40
    assert row["required_low"] == too_small + 1
    assert row["required_high"] == 40  # 0.88: lower bound 0.827
    assert row["required_low"] <= row["required"] <= row["required_high"]


def test_a_dip_beyond_monte_carlo_error_warns_and_is_flagged() -> None:
    res = result({"dips": [0.90, 0.50, 0.95], "rises": [0.3, 0.6, 0.9]}, [20, 40, 60],
                 sessions=(4, 6))
    with pytest.warns(AllianceStatsWarning, match=r"'dips' at n_patients=.*20 > 40") as rec:
        out = res.required_size(0.8, along="n_therapists")
    assert len(rec) == 2  # once per curve that dips: one per number of sessions
    dips = out[out["term"] == "dips"]
    assert (~dips["monotone"]).all()
    assert (dips["required"] == 60).all()
    assert out.loc[out["term"] == "rises", "monotone"].all()


def test_unreached_at_the_largest_size_is_missing_even_if_reached_before() -> None:
    with pytest.warns(AllianceStatsWarning):  # 0.90 vs 0.70 at n = 200: beyond MC error
        out = result({"t": [0.85, 0.90, 0.70]}, [20, 30, 40]).required_size(0.8)
    row = out.iloc[0]
    assert pd.isna(row["required"])
    assert np.isnan(row["power"])
    assert pd.isna(row["required_high"])
    assert row["required_low"] == 41  # 40 is shown too small


def test_conservative_uses_the_lower_bound_from_the_tail() -> None:
    sizes = [20, 30, 40, 50]
    res = result({"t": [0.84, 0.82, 0.88, 0.90]}, sizes)
    row = res.required_size(0.8, conservative=True).iloc[0]
    lows = res.power.set_index("n_therapists")["ci_low"]
    expected = min(n for n in sizes if all(lows[m] >= 0.8 for m in sizes if m >= n))
    assert row["required"] == expected == row["required_high"]
    assert row["ci_low"] >= 0.8
    assert res.required_size(0.8).iloc[0]["required"] == 20
