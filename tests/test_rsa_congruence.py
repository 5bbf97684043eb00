"""The congruence checklist of Humberg, Nestler & Back (2019) on simulated surfaces that
satisfy or violate each condition (noise small against the effects, n = 400, so that
every decision below is far from its threshold)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alliancestats import fit_rsa
from alliancestats.exceptions import AllianceStatsWarning


def _data(surface, n: int = 400, noise: float = 0.5, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame({"x": x, "y": y, "z": surface(x, y) + rng.normal(0, noise, n)})


def _test(surface, **kwargs):
    res = fit_rsa(_data(surface), outcome="z", x="x", y="y", center=None)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllianceStatsWarning)
        return res, res.congruence_test(**kwargs)


def test_a_ridge_on_the_line_of_congruence_meets_every_condition() -> None:
    _, test = _test(lambda x, y: -(x - y) ** 2)
    assert test.verdict
    assert test.table["met"].all()
    assert list(test.table.index) == ["p10", "p11", "a3", "a4"]
    assert not test.details.loc[["a1", "a2"], "met"].any()  # no level effect
    assert any("No level effect" in r for r in test.reasons)
    assert "supported" in test.reasons[4]


@pytest.mark.parametrize(("surface", "failing"), [
    (lambda x, y: -(x - y + 1.0) ** 2, "p10"),  # ridge shifted off the LOC
    (lambda x, y: -(x - 0.5 * y) ** 2, "p11"),  # ridge rotated away from slope 1
    (lambda x, y: -(x - y) ** 2 + 0.8 * (x - y), "a3"),  # slope along the LOIC
    (lambda x, y: x + y, "a4"),  # no curvature along the LOIC
    (lambda x, y: (x - y) ** 2, "a4"),  # a valley: curvature of the wrong sign
])
def test_each_violated_condition_is_found(surface, failing: str) -> None:
    _, test = _test(surface)
    assert not test.verdict
    assert not test.table.loc[failing, "met"]
    assert any(r.startswith(failing) and "NOT met" in r for r in test.reasons)


def test_a_valley_is_a_congruence_minimum() -> None:
    _, test = _test(lambda x, y: (x - y) ** 2, direction="minimum")
    assert test.verdict
    assert list(test.table.index) == ["p20", "p21", "a3", "a4"]


def test_a5_variant_finds_asymmetric_curvature() -> None:
    surface = lambda x, y: -(x - y) ** 2 - 0.6 * x**2  # noqa: E731
    _, test = _test(surface, variant="a5")
    assert not test.table.loc["a5", "met"]
    assert not test.verdict


def test_a4_is_tested_one_sided_in_the_predicted_direction() -> None:
    res, test = _test(lambda x, y: -0.05 * (x - y) ** 2, direction="maximum")
    a4 = res.surface.loc["a4"]
    t = a4.estimate / a4.std_error
    # one-sided p = P(T <= t) for H1: a4 < 0 (half the two-sided p when a4 < 0)
    assert test.table.loc["a4", "p_value"] == pytest.approx(stats.t.cdf(t, a4.df))
    assert test.table.loc["a4", "p_value"] == pytest.approx(a4.p_value / 2)
    _, up = _test(lambda x, y: -0.05 * (x - y) ** 2, direction="minimum")
    assert up.table.loc["a4", "p_value"] == pytest.approx(1 - a4.p_value / 2)


def test_one_sided_a4_decides_where_two_sided_would_not() -> None:
    # Search seeds for a sample whose two-sided p of a4 lies in (alpha, 2 alpha).
    for seed in range(200):
        df = _data(lambda x, y: -0.04 * (x - y) ** 2, n=150, noise=1.0, seed=seed)
        res = fit_rsa(df, outcome="z", x="x", y="y", center=None)
        p2 = res.surface.loc["a4", "p_value"]
        if 0.05 < p2 < 0.1 and res.surface.loc["a4", "estimate"] < 0:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AllianceStatsWarning)
                assert res.congruence_test().table.loc["a4", "met"]
            return
    pytest.fail("no sample with 0.05 < p < 0.1 found")


def test_stationary_point_on_the_loc_inside_the_data_and_a_level_effect() -> None:
    # peak at (0.5, 0.5): concave along the LOIC (strongly) and the LOC (weakly)
    surface = lambda x, y: -(x - y) ** 2 - 0.3 * (x + y - 1.0) ** 2  # noqa: E731
    _, test = _test(surface)
    assert test.verdict
    d = test.details
    assert d.loc["X0", "estimate"] == pytest.approx(0.5, abs=0.1)
    assert d.loc["Y0", "estimate"] == pytest.approx(0.5, abs=0.1)
    assert d.loc["X0", "met"]
    assert d.loc["Y0 - X0", "met"]
    assert d.loc["a2", "met"]  # curvature along the LOC: a level effect
    assert any("inside the observed data" in r and "on the line" in r for r in test.reasons)
    assert any("Level effect" in r for r in test.reasons)


def test_stationary_point_outside_the_data() -> None:
    surface = lambda x, y: -(x - y) ** 2 - 0.05 * (x + y - 12.0) ** 2  # noqa: E731
    _, test = _test(surface)
    d = test.details
    assert d.loc["X0", "estimate"] == pytest.approx(6.0, rel=0.2)
    assert not d.loc["X0", "met"]
    assert any("outside the observed data" in r for r in test.reasons)


def test_checklist_on_a_mixed_fit_uses_the_small_sample_df() -> None:
    rng = np.random.default_rng(4)
    ther = np.repeat(np.arange(12), 20)
    pat = np.repeat(np.arange(48), 5)
    x, y = rng.normal(size=240), rng.normal(size=240)
    z = (-(x - y) ** 2 + rng.normal(0, 0.5, 12)[ther] + rng.normal(0, 0.5, 48)[pat]
         + rng.normal(0, 0.5, 240))
    df = pd.DataFrame({"therapist": ther, "patient": pat, "x": x, "y": y, "z": z})
    res = fit_rsa(df, outcome="z", x="x", y="y", groups=["therapist", "patient"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllianceStatsWarning)
        test = res.congruence_test()
    assert test.verdict
    np.testing.assert_allclose(test.table.loc["a3", "df"], res.surface.loc["a3", "df"])
    assert np.isfinite(test.table.loc["a3", "df"])
    assert test.table.loc["a3", "test"] == "two-sided t"
