"""The congruence verdict: equivalence (TOST) and model-comparison routes, the ridge case,
on simulated surfaces that satisfy or violate each condition.

Unless a test is about the bootstrap, intervals of the principal axis use the delta method
(``interval="delta"``) to keep the suite fast; n = 400 and small noise put every decision
below far from its threshold.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from alliancestats import compare_rsa, fit_rsa
from alliancestats.exceptions import AllianceStatsWarning
from alliancestats.rsa.congruence import (
    axis_lines,
    equivalence_bounds,
    model_weights,
    tost_linear,
)
from alliancestats.rsa.family import axes_and_point


def _data(surface, n: int = 400, noise: float = 0.5, seed: int = 1) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    x, y = rng.normal(size=n), rng.normal(size=n)
    return pd.DataFrame({"x": x, "y": y, "z": surface(x, y) + rng.normal(0, noise, n)})


def _test(surface, n: int = 400, noise: float = 0.5, seed: int = 1, **kwargs):
    res = fit_rsa(_data(surface, n, noise, seed), outcome="z", x="x", y="y", center=None)
    kwargs.setdefault("interval", "delta")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllianceStatsWarning)
        return res, res.congruence_test(**kwargs)


def test_a_ridge_on_the_line_of_congruence_is_consistent_with_congruence() -> None:
    _, test = _test(lambda x, y: -(x - y) ** 2)
    assert test.verdict
    assert test.conclusion == "conditions consistent with congruence"
    assert test.routes == {"equivalence": True, "model comparison": True}
    assert list(test.table.index) == ["p10", "p11", "a3", "a4"]
    assert list(test.criteria.index) == ["p10", "p11", "a3", "a4", "AICc weight"]
    assert test.table["met"].all()
    assert (test.table.loc[["p10", "p11", "a3"], "outcome"] == "equivalent").all()
    for column in ("test", "requirement", "outcome", "can_show", "cannot_show"):
        assert test.criteria[column].map(len).gt(0).all()
    assert not any("supported" in r for r in test.reasons)
    assert any("not evidence against congruence" in r for r in test.reasons)


@pytest.mark.parametrize(("surface", "failing"), [
    (lambda x, y: -(x - y + 1.0) ** 2, "p10"),  # ridge shifted off the LOC
    (lambda x, y: -(x - 0.5 * y) ** 2, "p11"),  # ridge rotated away from slope 1
    (lambda x, y: -(x - y) ** 2 + 0.8 * (x - y), "a3"),  # slope along the LOIC
    (lambda x, y: x + y, "a4"),  # no curvature along the LOIC
    (lambda x, y: (x - y) ** 2, "a4"),  # a valley: curvature of the wrong sign
])
def test_each_violated_condition_is_not_established(surface, failing: str) -> None:
    _, test = _test(surface)
    assert not test.verdict
    assert test.conclusion == "congruence not established"
    assert not test.table.loc[failing, "met"]
    assert any(r.startswith(failing) and "NOT met" in r for r in test.reasons)


def test_non_significance_is_not_counted_as_evidence() -> None:
    # A shifted ridge (a3 = -0.8) in a small noisy sample: a3 is not significant (the
    # old checklist counted that as met), but equivalence is not shown.
    surface = lambda x, y: -0.5 * (x - y + 0.4) ** 2  # noqa: E731
    for seed in range(50):
        res, test = _test(surface, n=40, noise=1.5, seed=seed)
        if res.surface.loc["a3", "p_value"] > 0.2:
            break
    else:
        pytest.fail("no sample with a non-significant a3 found")
    assert not test.table.loc["a3", "met"]
    assert test.table.loc["a3", "outcome"] == "not established"
    assert not test.verdict


def test_tost_interval_and_p_value_of_a3() -> None:
    res, test = _test(lambda x, y: -(x - y) ** 2 + 0.05 * (x - y), noise=1.0,
                      equivalence={"a3": 0.2})
    row = test.table.loc["a3"]
    a3 = res.surface.loc["a3"]
    # the (1 - 2 alpha) interval is the two-sided 90% CI of the linear contrast
    narrow = res.surface_at(alpha=0.10).loc["a3"]
    assert row["tost_low"] == pytest.approx(narrow["conf_low"], rel=1e-10)
    assert row["tost_high"] == pytest.approx(narrow["conf_high"], rel=1e-10)
    # TOST p: the larger of P(T > (a3 + d)/se) and P(T < (a3 - d)/se), t with the fit's df
    t_low = (a3.estimate + 0.2) / a3.std_error
    t_high = (a3.estimate - 0.2) / a3.std_error
    expected = max(stats.t.sf(t_low, a3.df), stats.t.cdf(t_high, a3.df))
    assert row["p_value"] == pytest.approx(expected, rel=1e-10)
    assert row["met"] == (expected < 0.05)
    assert (row["bound_low"], row["bound_high"]) == (-0.2, 0.2)


def test_tost_linear_decides_as_the_interval_does() -> None:
    for est in np.linspace(-0.5, 0.5, 21):
        low, high, p = tost_linear(est, 0.1, 30.0, 0.3, 0.05)
        assert (p < 0.05) == (low > -0.3 and high < 0.3)


def test_default_bounds_follow_the_analysed_scales() -> None:
    df = _data(lambda x, y: -(x - y) ** 2)
    df["x"] *= 2.0  # a different scale for x changes the pooled SD
    res = fit_rsa(df, outcome="z", x="x", y="y")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllianceStatsWarning)
        test = res.congruence_test(interval="delta")
    pooled = np.concatenate([df.x - res.centering["x_shift"], df.y - res.centering["y_shift"]])
    sd_xy, sd_z = np.std(pooled, ddof=1), np.std(df.z, ddof=1)
    assert test.bounds["a3"] == pytest.approx(0.1 * sd_z / sd_xy)
    assert test.bounds["a5"] == pytest.approx(0.1 * sd_z / sd_xy**2)
    assert test.bounds["p10"] == pytest.approx(0.25 * sd_xy)
    assert test.bounds["p11"] == 0.2
    assert test.table.loc["p10", "bound_high"] == pytest.approx(0.25 * sd_xy)


def test_user_bounds_and_their_validation() -> None:
    assert equivalence_bounds({"a3": 0.5}, sd_xy=1.0, sd_outcome=1.0)["a3"] == 0.5
    with pytest.raises(ValueError, match="`equivalence` keys must be among"):
        equivalence_bounds({"a4": 0.5}, sd_xy=1.0, sd_outcome=1.0)
    with pytest.raises(ValueError, match=r"`equivalence\['a3'\]` must be a positive"):
        equivalence_bounds({"a3": -1}, sd_xy=1.0, sd_outcome=1.0)
    with pytest.raises(TypeError, match=r"`equivalence\['p10'\]` must be a positive"):
        equivalence_bounds({"p10": "0.2"}, sd_xy=1.0, sd_outcome=1.0)
    with pytest.raises(TypeError, match="`equivalence` must be a dict"):
        equivalence_bounds([0.1], sd_xy=1.0, sd_outcome=1.0)  # type: ignore[arg-type]


def test_wider_bounds_can_only_help() -> None:
    surface = lambda x, y: -(x - y) ** 2 + 0.1 * (x - y)  # noqa: E731
    _, narrow = _test(surface, equivalence={"a3": 0.05})
    _, wide = _test(surface, equivalence={"a3": 1.0})
    assert not narrow.table.loc["a3", "met"]
    assert wide.table.loc["a3", "met"]


def test_model_comparison_reuses_compare_rsa_likelihoods() -> None:
    df = _data(lambda x, y: -(x - y) ** 2, n=120, noise=1.0, seed=3)
    res = fit_rsa(df, outcome="z", x="x", y="y")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllianceStatsWarning)
        test = res.congruence_test(interval="delta")
        table = compare_rsa(df, outcome="z", x="x", y="y",
                            models=("SQD", "RR", "SSQD", "SRR", "SRRR", "full"))
    ours = test.model_comparison.set_index("model")
    theirs = table.set_index("model")
    np.testing.assert_allclose(ours.loc[theirs.index, "AICc"], theirs["AICc"], rtol=1e-10)
    # the six-model weights are compare_rsa's AICc weights (same candidate set)
    np.testing.assert_allclose(ours.loc[theirs.index, "weight"], theirs["aicc_weight"],
                               rtol=1e-8)
    weight = theirs.loc[["SQD", "RR"], "aicc_weight"].sum()
    assert test.criteria.loc["AICc weight", "estimate"] == pytest.approx(weight)
    assert test.routes["model comparison"] == bool(weight >= 0.5
                                                   and test.table.loc["a4", "met"])


def test_model_weights_match_burnham_and_anderson() -> None:
    table = model_weights({"SQD": (-100.0, 3, 60), "full": (-97.0, 7, 60)})
    aicc = {"SQD": 200 + 6 + 24 / 56, "full": 194 + 14 + 112 / 52}
    w = np.exp(-0.5 * (np.array(list(aicc.values())) - min(aicc.values())))
    np.testing.assert_allclose(table.set_index("model").loc[list(aicc), "weight"],
                               w / w.sum())


def test_route_model_comparison_decides_when_asked() -> None:
    _, test = _test(lambda x, y: -(x - y) ** 2, route="model comparison")
    assert test.route == "model comparison"
    assert test.verdict == test.routes["model comparison"]


def test_rising_ridge_is_detected_and_located_without_a_stationary_point() -> None:
    # RR: a rising ridge along the line of congruence (4 b3 b5 - b4^2 = 0, a1 != 0)
    surface = lambda x, y: 0.8 * (x + y) - (x - y) ** 2  # noqa: E731
    res, test = _test(surface)
    assert test.ridge
    assert not test.details.loc["D", "met"]
    assert any(r.startswith("Ridge / no stationary point") for r in test.reasons)
    assert test.verdict  # the ridge line is the line of congruence
    assert test.table.loc["p10", "estimate"] == pytest.approx(0.0, abs=0.05)
    # the stationary point itself is far away and its p10 unstable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllianceStatsWarning)
        axes = res.principal_axes
    ridge_half_width = test.table.loc["p10", "conf_high"] - test.table.loc["p10", "estimate"]
    assert ridge_half_width < 0.1
    assert abs(res.stationary_point.loc["X0", "estimate"]) > 5 or not np.isfinite(
        axes.loc["p10", "std_error"]) or axes.loc["p10", "std_error"] > 10 * ridge_half_width


def test_a_peak_has_an_established_stationary_point() -> None:
    surface = lambda x, y: -(x - y) ** 2 - 0.3 * (x + y - 1.0) ** 2  # noqa: E731
    _, test = _test(surface)
    assert not test.ridge
    assert test.details.loc["D", "met"]
    assert test.verdict
    assert any("Stationary point (X0, Y0)" in r for r in test.reasons)


def test_axis_line_intercept_is_the_stationary_point_intercept() -> None:
    rng = np.random.default_rng(8)
    for _ in range(200):
        b = np.concatenate([[0.0], rng.normal(size=5)])
        geo, _ = axes_and_point(b)
        lines = axis_lines(b)
        # Y0 - p11 X0 (R RSA's p10) is the line of extrema across the other axis
        assert lines["p10_line"] == pytest.approx(geo["p10"], rel=1e-7, abs=1e-9)
        assert lines["p20_line"] == pytest.approx(geo["p20"], rel=1e-7, abs=1e-9)
    # a shifted ridge -a (X - Y + s)^2 lies on Y = X + s, for either sign of a
    for a, s in ((0.5, 0.4), (-2.0, -1.3)):
        b = np.array([0, -2 * a * s, 2 * a * s, -a, 2 * a, -a])
        key = "p10_line" if a > 0 else "p20_line"
        assert axis_lines(b)[key] == pytest.approx(s)


def test_valley_is_a_congruence_minimum() -> None:
    _, test = _test(lambda x, y: (x - y) ** 2, direction="minimum")
    assert test.verdict
    assert list(test.table.index) == ["p20", "p21", "a3", "a4"]


def test_a5_variant_needs_symmetric_curvature() -> None:
    _, good = _test(lambda x, y: -(x - y) ** 2, variant="a5")
    assert good.verdict
    assert list(good.table.index) == ["a5", "a3", "a4"]
    assert good.interval == "none"
    _, bad = _test(lambda x, y: -(x - y) ** 2 - 0.6 * x**2, variant="a5")
    assert not bad.table.loc["a5", "met"]
    assert not bad.verdict


def test_a4_is_tested_one_sided_in_the_predicted_direction() -> None:
    res, test = _test(lambda x, y: -0.05 * (x - y) ** 2, direction="maximum")
    a4 = res.surface.loc["a4"]
    t = a4.estimate / a4.std_error
    assert test.table.loc["a4", "p_value"] == pytest.approx(stats.t.cdf(t, a4.df))
    _, up = _test(lambda x, y: -0.05 * (x - y) ** 2, direction="minimum")
    assert up.table.loc["a4", "p_value"] == pytest.approx(1 - a4.p_value / 2)


def test_bootstrap_is_the_default_and_reproducible() -> None:
    df = _data(lambda x, y: -(x - y) ** 2, n=150, noise=1.0, seed=5)
    res = fit_rsa(df, outcome="z", x="x", y="y")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", AllianceStatsWarning)
        one = res.congruence_test(n_boot=60, rng=11)
        two = res.congruence_test(n_boot=60, rng=11)
        boot = res.bootstrap(60, rng=11)
    assert one.interval == "percentile bootstrap"
    pd.testing.assert_frame_equal(one.table, two.table)
    # the (1 - 2 alpha) interval of p10 is the 5% / 95% percentile of the ridge line's
    # intercept over the replicates
    draws = boot.draws["p10_line"]
    assert one.table.loc["p10", "tost_low"] == pytest.approx(np.quantile(draws, 0.05))
    assert one.table.loc["p10", "tost_high"] == pytest.approx(np.quantile(draws, 0.95))
    assert "60 replicates resampling rows" in one.table.loc["p10", "test"]


def test_checklist_on_a_mixed_fit_uses_df_and_a_cluster_bootstrap() -> None:
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
        test = res.congruence_test(n_boot=20, rng=2)
    assert test.verdict
    np.testing.assert_allclose(test.table.loc["a3", "df"], res.surface.loc["a3", "df"])
    assert np.isfinite(test.table.loc["a3", "df"])
    assert test.table.loc["a3", "test"] == "TOST (t), 90% CI"
    assert "resampling therapist" in test.table.loc["p10", "test"]
    assert test.model_comparison["model"].tolist()  # refitted by ML
    assert set(test.model_comparison["model"]) <= {"SQD", "RR", "SSQD", "SRR", "SRRR",
                                                    "full"}


def test_by_fits_have_one_verdict_per_surface() -> None:
    df = _data(lambda x, y: -(x - y) ** 2, n=300)
    df["g"] = np.repeat(["a", "b"], 150)
    res = fit_rsa(df, outcome="z", x="x", y="y", by="g")
    table = res.congruence_table(variant="a5")
    assert table.groupby("surface")["conclusion"].first().tolist() == [
        "conditions consistent with congruence"] * 2
    assert "AICc weight" not in set(table["quantity"])  # one model for both surfaces
    with pytest.raises(ValueError, match="needs a fit with one surface"):
        res.congruence_test(level="a", route="model comparison")


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"alpha": 0.6}, "`alpha` must be between 0 and 0.5"),
    ({"min_weight": 1.0}, "`min_weight` must be between 0 and 1"),
    ({"interval": "wald"}, "interval"),
    ({"route": "vote"}, "route"),
    ({"route": "model comparison", "compare_models": False}, "needs compare_models=True"),
])
def test_bad_options_are_refused(kwargs, match: str) -> None:
    res = fit_rsa(_data(lambda x, y: -(x - y) ** 2, n=60), outcome="z", x="x", y="y")
    with pytest.raises(ValueError, match=match):
        res.congruence_test(**kwargs)


def test_least_squares_bootstrap_equals_refitting(monkeypatch) -> None:
    from alliancestats.rsa import bootstrap as rsa_bootstrap

    df = _data(lambda x, y: 0.3 * x - 0.5 * x**2 + 0.4 * x * y - 0.3 * y**2, n=120, seed=6)
    df["c"] = np.random.default_rng(2).normal(size=len(df))
    res = fit_rsa(df, outcome="z", x="x", y="y", controls=["c"])
    fast = res.bootstrap(40, rng=9)
    monkeypatch.setattr(rsa_bootstrap, "_linear_ols", lambda design, spec: False)
    refit = res.bootstrap(40, rng=9)  # every replicate through the model's estimator
    np.testing.assert_allclose(fast.draws.to_numpy(), refit.draws.to_numpy(), rtol=1e-7,
                               atol=1e-9)


def test_least_squares_bootstrap_fails_where_refitting_fails(monkeypatch) -> None:
    from alliancestats.rsa import bootstrap as rsa_bootstrap

    df = _data(lambda x, y: 0.3 * x - 0.5 * x**2 + 0.4 * x * y, n=9, seed=10)
    res = fit_rsa(df, outcome="z", x="x", y="y")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fast = res.bootstrap(60, rng=3)
        monkeypatch.setattr(rsa_bootstrap, "_linear_ols", lambda design, spec: False)
        refit = res.bootstrap(60, rng=3)
    assert fast.n_failed > 0
    assert fast.failures == refit.failures
    np.testing.assert_allclose(fast.draws.to_numpy(), refit.draws.to_numpy(), rtol=1e-6,
                               atol=1e-8)
