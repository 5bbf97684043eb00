"""Response surface analysis: closed forms, METHODS §2-3 oracles, properties, bad input.

R reference values are in ``test_rsa_reference.py``; simulation recovery in
``test_rsa_recovery.py``.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliancestats import compare_rsa, fit_lagged_rsa, fit_rsa
from alliancestats.exceptions import AllianceStatsWarning, ConvergenceWarning, DataWarning
from alliancestats.rsa.family import MODELS, axes_and_point

A_WEIGHTS = {  # over b1..b5 (METHODS §2.2)
    "a1": [1, 1, 0, 0, 0], "a2": [0, 0, 1, 1, 1], "a3": [1, -1, 0, 0, 0],
    "a4": [0, 0, 1, -1, 1], "a5": [0, 0, 1, 0, -1],
}


def make_xy(n: int = 120, seed: int = 0, shift: float = 0.0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    common = rng.normal(size=n)
    return pd.DataFrame({"x": common + rng.normal(scale=0.7, size=n) + shift,
                         "y": common + rng.normal(scale=0.7, size=n) + shift + 0.2})


def with_surface(df: pd.DataFrame, b: list[float], noise: float = 0.0,
                 seed: int = 1) -> pd.DataFrame:
    x, y = df["x"], df["y"]
    z = b[0] + b[1] * x + b[2] * y + b[3] * x**2 + b[4] * x * y + b[5] * y**2
    rng = np.random.default_rng(seed)
    return df.assign(z=z + noise * rng.normal(size=len(df)))


# ------------------------------------------------------------------- closed forms
def test_negative_squared_difference_is_a_ridge_on_the_loc() -> None:
    df = make_xy().assign(z=lambda d: -((d.x - d.y) ** 2))
    res = fit_rsa(df, outcome="z", x="x", y="y", center=None)
    b = res.coefs
    np.testing.assert_allclose(b[["b1", "b2", "b3", "b4", "b5"]], [0, 0, -1, 2, -1],
                               atol=1e-9)
    a = res.surface["estimate"]
    np.testing.assert_allclose(a, [0, 0, 0, -4, 0], atol=1e-9)
    with pytest.warns(AllianceStatsWarning, match="stationary points form a line"):
        axes = res.principal_axes
    assert axes.loc["p10", "estimate"] == pytest.approx(0, abs=1e-8)
    assert axes.loc["p11", "estimate"] == pytest.approx(1, abs=1e-8)
    assert axes.loc["p21", "estimate"] == pytest.approx(-1, abs=1e-8)


def test_congruence_verdict_for_a_noisy_ridge_on_the_loc() -> None:
    # -(X - Y)^2 plus small noise: the inference of an exact fit is degenerate (SE ~ 0).
    df = with_surface(make_xy(200), [3, 0, 0, -1, 2, -1], noise=0.3)
    res = fit_rsa(df, outcome="z", x="x", y="y")
    test = res.congruence_test()
    assert test.verdict, test
    assert list(test.table.index) == ["p10", "p11", "a3", "a4"]
    assert test.table["met"].all()
    assert fit_rsa(df, outcome="z", x="x", y="y").congruence_test(variant="a5").verdict
    # The same surface is not a congruence *minimum*, and a shifted ridge fails (i).
    assert not res.congruence_test(direction="minimum").verdict
    shifted = df.assign(z=3 - (df.x - df.y + 1.0) ** 2 + 0.3 * np.random.default_rng(5)
                        .normal(size=len(df)))
    failed = fit_rsa(shifted, outcome="z", x="x", y="y").congruence_test()
    assert not failed.verdict
    assert not failed.table.loc["p10", "met"]


def test_sum_surface_has_only_a1() -> None:
    df = make_xy().assign(z=lambda d: d.x + d.y)
    a = fit_rsa(df, outcome="z", x="x", y="y").surface["estimate"]
    np.testing.assert_allclose(a, [2, 0, 0, 0, 0], atol=1e-9)


def test_oracle_6_sqd_and_ssqd_fit_exactly() -> None:
    df = make_xy().assign(z=lambda d: (d.x - d.y) ** 2)
    sqd = fit_rsa(df, outcome="z", x="x", y="y", model="SQD", center=None)
    assert sqd.rsquared == pytest.approx(1.0)
    np.testing.assert_allclose(sqd.surface["estimate"], [0, 0, 0, 4, 0], atol=1e-9)
    df2 = df.assign(z=lambda d: (d.x - d.y) ** 2 + 0.5 * (d.x - d.y))
    ssqd = fit_rsa(df2, outcome="z", x="x", y="y", model="SSQD", center=None)
    assert ssqd.rsquared == pytest.approx(1.0)
    with pytest.warns(AllianceStatsWarning, match="D = 4 b3 b5"):
        shift = ssqd.lateral_shift
    # C = b1 / (2 b3): the minimum lies on Y = X + 0.25, a valley along the second axis.
    assert shift.loc["shift_intercept", "estimate"] == pytest.approx(0.25)
    with pytest.warns(AllianceStatsWarning, match="a valley, the principal axis 2"):
        axes = ssqd.principal_axes["estimate"]
    assert axes["p20"] == pytest.approx(0.25)
    assert axes["p21"] == pytest.approx(1.0)
    assert np.isnan(axes["p10"])


def test_oracle_2_surface_along_the_lines_of_congruence_and_incongruence() -> None:
    df = with_surface(make_xy(), [1, 0.3, -0.2, -0.5, 0.4, 0.1], noise=0.5)
    res = fit_rsa(df, outcome="z", x="x", y="y", center=None)
    b0 = res.coefs["b0"]
    a = res.surface["estimate"]
    t = np.linspace(-2, 2, 9)
    np.testing.assert_allclose(res.predict(t, t), b0 + a["a1"] * t + a["a2"] * t**2)
    np.testing.assert_allclose(res.predict(t, -t), b0 + a["a3"] * t + a["a4"] * t**2)


def test_oracles_3_and_4_axes_and_stationary_point() -> None:
    df = with_surface(make_xy(), [1, 0.3, -0.2, -0.5, 0.4, -0.3], noise=0.5)
    res = fit_rsa(df, outcome="z", x="x", y="y", center=None)
    _, b1, b2, b3, b4, b5 = res.coefs
    sp = res.stationary_point["estimate"]
    ax = res.principal_axes["estimate"]
    assert ax["p11"] * ax["p21"] == pytest.approx(-1)
    # Gradient zero at (X0, Y0); (X0, Y0) on both axes.
    x0, y0 = sp["X0"], sp["Y0"]
    assert b1 + 2 * b3 * x0 + b4 * y0 == pytest.approx(0, abs=1e-10)
    assert b2 + b4 * x0 + 2 * b5 * y0 == pytest.approx(0, abs=1e-10)
    assert y0 == pytest.approx(ax["p10"] + ax["p11"] * x0)
    assert y0 == pytest.approx(ax["p20"] + ax["p21"] * x0)
    # Axis slopes are the eigenvector directions of B; trace and determinant.
    B = np.array([[b3, b4 / 2], [b4 / 2, b5]])
    evals, evecs = np.linalg.eigh(B)
    slopes = sorted(evecs[1] / evecs[0])
    np.testing.assert_allclose(slopes, sorted([ax["p11"], ax["p21"]]), rtol=1e-10)
    assert evals.sum() == pytest.approx(b3 + b5)
    assert np.prod(evals) == pytest.approx(b3 * b5 - b4**2 / 4)


def test_oracle_5_and_b4_zero_special_cases() -> None:
    geo, msgs = axes_and_point(np.array([0, 0.2, 0.1, -1, 0.6, -1]))
    assert geo["p11"] == pytest.approx(1.0)  # b3 = b5, b4 > 0
    assert not msgs
    a3, a4 = 0.2 - 0.1, -1 - 0.6 - 1
    assert geo["p10"] == pytest.approx(a3 / a4)  # a5 = 0, p11 = 1 => p10 = a3 / a4
    geo, _ = axes_and_point(np.array([0, 0.2, 0.1, -1, -0.6, -1]))
    assert geo["p11"] == pytest.approx(-1.0)
    geo, msgs = axes_and_point(np.array([0, 1.0, 0.5, -2.0, 0.0, -1.0]))  # b4 = 0, b5 > b3
    assert (geo["p11"], geo["p21"]) == (np.inf, 0.0)
    assert np.isnan(geo["p10"])
    assert geo["p20"] == pytest.approx(geo["Y0"])
    assert any("b4 = 0" in m for m in msgs)
    geo, _ = axes_and_point(np.array([0, 1.0, 0.5, -1.0, 0.0, -2.0]))  # b5 < b3
    assert (geo["p11"], geo["p21"]) == (0.0, np.inf)
    geo, msgs = axes_and_point(np.array([0, 1.0, 0.0, -1.0, 2.0, -1.0]))  # rising ridge
    assert np.isnan(geo["X0"])
    assert np.isnan(geo["p10"])
    assert any("no stationary point" in m for m in msgs)


def test_b4_zero_fit_warns_and_does_not_crash() -> None:
    df = with_surface(make_xy(), [0, 1, 1, -1, 0, -2], noise=0.2)
    res = fit_rsa(df, outcome="z", x="x", y="y", model="onlyx2")  # b4 = b5 = 0: D = 0 too
    with pytest.warns(AllianceStatsWarning) as record:
        axes = res.principal_axes
    messages = " ".join(str(w.message) for w in record)
    assert "b4 = 0" in messages
    assert "D = 4 b3 b5" in messages
    # Z = b1 X + b3 X^2, b3 < 0: the ridge (first axis) is vertical, the second horizontal.
    assert np.isinf(axes.loc["p11", "estimate"])
    assert axes.loc["p21", "estimate"] == 0.0
    assert np.isnan(axes.loc["p10", "estimate"])
    assert axes["std_error"].isna().all()
    assert "b4 = 0" in str(res.summary())


def test_oracle_7_common_affine_change() -> None:
    df = with_surface(make_xy(150, seed=3), [1, 0.3, -0.2, -0.5, 0.9, -0.3], noise=0.5)
    m, s = 0.7, 2.0
    raw = fit_rsa(df, outcome="z", x="x", y="y", center=None)
    moved = fit_rsa(df.assign(x=(df.x - m) / s, y=(df.y - m) / s), outcome="z", x="x",
                    y="y", center=None)
    a, a2 = raw.surface["estimate"], moved.surface["estimate"]
    np.testing.assert_allclose(a2[["a2", "a4", "a5"]], s**2 * a[["a2", "a4", "a5"]])
    assert a2["a1"] == pytest.approx(s * (a["a1"] + 2 * m * a["a2"]))
    assert a2["a3"] == pytest.approx(s * (a["a3"] + 2 * m * a["a5"]))
    sp, sp2 = raw.stationary_point["estimate"], moved.stationary_point["estimate"]
    np.testing.assert_allclose(sp2, (sp - m) / s)
    ax, ax2 = raw.principal_axes["estimate"], moved.principal_axes["estimate"]
    np.testing.assert_allclose(ax2[["p11", "p21"]], ax[["p11", "p21"]])
    assert ax2["p10"] == pytest.approx((ax["p10"] + m * (ax["p11"] - 1)) / s)
    pd.testing.assert_frame_equal(raw.discrepancy_table(), moved.discrepancy_table())
    # Pooled centring reproduces the same surface whatever the common affine change.
    c1 = fit_rsa(df, outcome="z", x="x", y="y", scale="pooled").surface
    c2 = fit_rsa(df.assign(x=df.x * 3 + 1, y=df.y * 3 + 1), outcome="z", x="x", y="y",
                 scale="pooled").surface
    pd.testing.assert_frame_equal(c1, c2, rtol=1e-8)


def test_oracle_8_and_compare_table() -> None:
    df = with_surface(make_xy(150, seed=4), [1, 0.3, -0.2, -0.5, 0.9, -0.3], noise=0.8)
    table = compare_rsa(df, outcome="z", x="x", y="y",
                        models=("full", "SRRR", "SRSQD", "SRR", "SSQD", "RR", "SQD", "null"))
    t = table.set_index("model")
    assert np.isnan(t.loc["full", "chi2"])
    assert t.loc["null", "r_squared"] == pytest.approx(0.0, abs=1e-12)
    assert t.loc["SRRR", "df"] == 1
    assert t.loc["SQD", "df"] == 4
    for chain in (["full", "SRRR", "SRR", "RR", "SQD"], ["full", "SRRR", "SRSQD", "SSQD",
                                                         "SQD"]):
        assert (np.diff(t.loc[chain, "logLik"].to_numpy()) <= 1e-8).all(), chain
    assert table["aic_weight"].sum() == pytest.approx(1.0)
    assert table["aicc_weight"].sum() == pytest.approx(1.0)
    assert (table["n_params"].diff().dropna() >= 0).all()
    n, K = 150, t.loc["full", "n_params"]
    assert t.loc["full", "AICc"] == pytest.approx(t.loc["full", "AIC"] + 2 * K * (K + 1)
                                                  / (n - K - 1))
    assert t.loc["SRRR", "k"] == 4
    assert t.loc["full", "k"] == 5
    assert t.loc["null", "k"] == 0


def test_oracle_10_delta_method_of_a_linear_quantity_is_exact() -> None:
    df = with_surface(make_xy(), [1, 0.3, -0.2, -0.5, 0.9, -0.3], noise=0.5)
    res = fit_rsa(df, outcome="z", x="x", y="y")
    delta = res._delta_table(lambda b: {"a4": b[3] - b[4] + b[5], "a1": b[1] + b[2]})
    np.testing.assert_allclose(delta["std_error"], res.surface.loc[["a4", "a1"], "std_error"],
                               rtol=1e-6)


def test_multilevel_oracle_2_by_level_equals_separate_fit() -> None:
    base = make_xy(200, seed=6)
    df = with_surface(base, [1, 0.3, -0.2, -0.5, 0.9, -0.3], noise=0.5)
    df["g"] = np.tile(["a", "b"], 100)
    df.loc[df.g == "b", "z"] += 0.5 * df.x**2
    by = fit_rsa(df, outcome="z", x="x", y="y", by="g", center=1.0)
    for level in ("a", "b"):
        alone = fit_rsa(df[df.g == level], outcome="z", x="x", y="y", center=1.0)
        np.testing.assert_allclose(by.coefs.loc[level], alone.coefs, rtol=1e-9, atol=1e-12)
        np.testing.assert_allclose(by.surface.loc[level, "estimate"],
                                   alone.surface["estimate"], rtol=1e-9, atol=1e-12)
    diff = by.surface_differences
    assert diff.loc[("b", "a2"), "estimate"] == pytest.approx(
        by.surface.loc[("b", "a2"), "estimate"] - by.surface.loc[("a", "a2"), "estimate"])
    assert by.surface_equality["p_value"] < 0.05
    assert by.discrepancy_table().groupby(level="level")["share"].sum().tolist() == [1, 1]
    with pytest.raises(ValueError, match="`level` must be one of"):
        by.predict([0.0], [0.0])
    assert by.predict([1.0], [1.0], level="a") == pytest.approx(
        fit_rsa(df[df.g == "a"], outcome="z", x="x", y="y").predict([1.0], [1.0]))


# ------------------------------------------------------------------- properties
@st.composite
def surfaces(draw: st.DrawFn) -> tuple[pd.DataFrame, np.ndarray]:
    seed = draw(st.integers(0, 2**32 - 1))
    n = draw(st.integers(20, 80))
    b = np.array(draw(st.lists(st.floats(-2, 2), min_size=6, max_size=6)))
    df = with_surface(make_xy(n, seed=seed, shift=draw(st.floats(-3, 3))), list(b),
                      noise=0.5, seed=seed + 1)
    return df, b


@settings(max_examples=15, deadline=None)
@given(surfaces())
def test_surface_parameters_are_their_linear_combinations(data) -> None:
    df, _ = data
    res = fit_rsa(df, outcome="z", x="x", y="y")
    b = res.coefs.to_numpy()[1:]
    for name, w in A_WEIGHTS.items():
        assert res.surface.loc[name, "estimate"] == pytest.approx(np.dot(w, b), abs=1e-9)
        se = np.sqrt(np.array(w) @ res.cov_coefs().to_numpy()[1:, 1:] @ np.array(w))
        assert res.surface.loc[name, "std_error"] == pytest.approx(se, rel=1e-9)
    a = res.surface["estimate"]  # METHODS 2 oracle 1
    assert a["a1"] + a["a3"] == pytest.approx(2 * b[0])
    assert a["a2"] - a["a4"] == pytest.approx(2 * b[3])
    assert b[2] == pytest.approx((a["a2"] + a["a4"]) / 4 + a["a5"] / 2)


@settings(max_examples=15, deadline=None)
@given(surfaces())
def test_swapping_x_and_y_flips_a3_and_a5_only(data) -> None:
    df, _ = data
    s1 = fit_rsa(df, outcome="z", x="x", y="y").surface
    s2 = fit_rsa(df, outcome="z", x="y", y="x").surface
    np.testing.assert_allclose(s2.loc[["a1", "a2", "a4"], "estimate"],
                               s1.loc[["a1", "a2", "a4"], "estimate"], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(s2.loc[["a3", "a5"], "estimate"],
                               -s1.loc[["a3", "a5"], "estimate"], rtol=1e-7, atol=1e-9)
    np.testing.assert_allclose(s2["std_error"], s1["std_error"], rtol=1e-7)


@settings(max_examples=15, deadline=None)
@given(surfaces(), st.floats(-50, 50), st.floats(0.1, 10))
def test_outcome_shift_and_scale(data, shift: float, c: float) -> None:
    df, _ = data
    ref = fit_rsa(df, outcome="z", x="x", y="y").coefs
    moved = fit_rsa(df.assign(z=df.z + shift), outcome="z", x="x", y="y").coefs
    assert moved["b0"] == pytest.approx(ref["b0"] + shift, rel=1e-8, abs=1e-8)
    np.testing.assert_allclose(moved.iloc[1:], ref.iloc[1:], rtol=1e-7, atol=1e-8)
    scaled = fit_rsa(df.assign(z=df.z * c), outcome="z", x="x", y="y").coefs
    np.testing.assert_allclose(scaled, c * ref, rtol=1e-7, atol=1e-8)


@settings(max_examples=10, deadline=None)
@given(surfaces(), st.integers(0, 2**32 - 1))
def test_row_permutation_changes_nothing(data, seed: int) -> None:
    df, _ = data
    perm = df.sample(frac=1.0, random_state=np.random.RandomState(seed % 2**31))
    # OLS is exact up to summation order; SRRR's angle comes from a 1-D optimiser whose
    # tolerance (not row order) limits agreement, which matters when the surface is flat.
    for model, atol in (("full", 1e-8), ("SRRR", 1e-5)):
        a = fit_rsa(df, outcome="z", x="x", y="y", model=model)
        b = fit_rsa(perm, outcome="z", x="x", y="y", model=model)
        pd.testing.assert_frame_equal(a.surface, b.surface, rtol=1e-6, atol=atol)
        assert a.llf == pytest.approx(b.llf, rel=1e-10)


# ------------------------------------------------------------------- descriptives
def test_predict_on_original_scale_and_grid() -> None:
    df = with_surface(make_xy(shift=4.0), [1, 0.3, -0.2, -0.5, 0.9, -0.3])
    res = fit_rsa(df, outcome="z", x="x", y="y")  # centred internally
    x, y = np.array([3.5, 4.0, 5.0]), np.array([4.2, 4.8])
    grid = res.predict(x, y, grid=True)
    assert grid.shape == (2, 3)
    X, Y = np.meshgrid(x, y)
    truth = 1 + 0.3 * X - 0.2 * Y - 0.5 * X**2 + 0.9 * X * Y - 0.3 * Y**2
    np.testing.assert_allclose(grid, truth, rtol=1e-9)


def test_discrepancy_table_categories() -> None:
    x = np.array([1.0, 2, 3, 4, 5, 6, 7, 4, 4, 4])
    y = np.array([1.0, 3, 2, 4, 7, 6, 5, 5, 3, 4.3])
    df = pd.DataFrame({"x": x, "y": y, "z": np.arange(10.0) ** 1.5})
    res = fit_rsa(df, outcome="z", x="x", y="y", model="additive")
    table = res.discrepancy_table()
    S = np.concatenate([x, y]).std(ddof=1)
    delta = (y - x) / S
    expected = [(delta <= -0.5).sum(), ((delta > -0.5) & (delta <= 0.5)).sum(),
                (delta > 0.5).sum()]
    assert table["n"].tolist() == expected
    assert list(table.index) == ["x > y", "x ~ y", "x < y"]
    assert table["share"].sum() == pytest.approx(1.0)
    zx, zy = (x - x.mean()) / x.std(ddof=1), (y - y.mean()) / y.std(ddof=1)
    vw = res.discrepancy_table("variablewise")
    assert vw.loc["x ~ y", "n"] == ((zy - zx > -0.5) & (zy - zx <= 0.5)).sum()


def test_summary_frame_and_results_interface() -> None:
    df = with_surface(make_xy(), [1, 0.3, -0.2, -0.5, 0.9, -0.3], noise=0.5)
    res = fit_rsa(df, outcome="z", x="x", y="y", controls=None)
    text = str(res.summary())
    for part in ("Surface parameters (a1..a5)", "Principal axes", "Stationary point",
                 "model 'full'", "fit by OLS"):
        assert part in text
    frame = res.to_frame()
    assert set(frame["component"]) == {"fixed", "surface", "variance"}
    assert res.ols is not None
    assert res.mixedlm is None
    assert res.engine == "ols"
    assert res.method == "OLS"
    assert res.inference == "t"
    assert "<div" in res._repr_html_()
    assert res.centering["center"] == "pooled"
    with pytest.raises(AttributeError, match="immutable"):
        res.foo = 1


def test_categorical_control_enters_as_dummies() -> None:
    df = with_surface(make_xy(), [1, 0.3, -0.2, -0.5, 0.9, -0.3], noise=0.5)
    df["site"] = np.tile(["A", "B", "C"], 40)
    res = fit_rsa(df, outcome="z", x="x", y="y", controls=["site"])
    assert list(res.params.index[-2:]) == ["site[B]", "site[C]"]


# ------------------------------------------------------------------- bootstrap
def test_bootstrap_reproducible_and_close_to_delta() -> None:
    df = with_surface(make_xy(150, seed=8), [1, 0.3, -0.2, -0.5, 0.9, -0.3], noise=0.5)
    res = fit_rsa(df, outcome="z", x="x", y="y")
    boot = res.bootstrap(300, rng=42)
    again = res.bootstrap(300, rng=42)
    pd.testing.assert_frame_equal(boot.draws, again.draws)
    assert boot.n_failed == 0
    assert boot.cluster == "rows"
    ci = boot.conf_int()
    surf = res.surface
    # Case resampling estimates the sandwich (HC) variance, not the model-based one.
    hc0 = fit_rsa(df, outcome="z", x="x", y="y", cov_type="HC0").surface
    assert ci.loc["a4", "std_error"] == pytest.approx(hc0.loc["a4", "std_error"], rel=0.2)
    assert ci.loc["a4", "conf_low"] < surf.loc["a4", "estimate"] < ci.loc["a4", "conf_high"]
    assert ci.loc["a4", "estimate"] == surf.loc["a4", "estimate"]
    test = res.congruence_test(bootstrap=boot)
    assert test.interval == "percentile bootstrap"
    assert test.table.loc["p11", "conf_low"] == ci.loc["p11", "conf_low"]


@pytest.mark.slow
def test_bootstrap_does_not_depend_on_n_jobs() -> None:
    df = with_surface(make_xy(80, seed=9), [1, 0.3, -0.2, -0.5, 0.9, -0.3], noise=0.5)
    res = fit_rsa(df, outcome="z", x="x", y="y")
    serial = res.bootstrap(20, rng=7, n_jobs=1)
    parallel = res.bootstrap(20, rng=7, n_jobs=2)
    pd.testing.assert_frame_equal(serial.draws, parallel.draws)


def test_bootstrap_counts_failures() -> None:
    df = with_surface(make_xy(9, seed=10), [1, 0.3, -0.2, -0.5, 0.9, -0.3], noise=0.5)
    res = fit_rsa(df, outcome="z", x="x", y="y")
    with pytest.warns(ConvergenceWarning, match="bootstrap refits failed"):
        boot = res.bootstrap(60, rng=3)
    assert boot.n_failed > 0
    assert boot.n_failed + len(boot.draws) == 60
    assert sum(boot.failures.values()) == boot.n_failed
    assert any("rank-deficient" in k or "Too few" in k for k in boot.failures)


# ------------------------------------------------------------------- lagged
def test_lagged_pairs_are_built_by_session_not_by_row() -> None:
    rows = []
    rng = np.random.default_rng(11)
    for p in range(30):
        for t in (1, 2, 3, 5, 6):  # session 4 missed: session 5 has no lagged pair
            rows.append({"patient": p, "session": t, "x": rng.normal(), "y": rng.normal(),
                         "z": rng.normal()})
    df = pd.DataFrame(rows)
    with pytest.warns(DataWarning, match="Single-level fit"):  # repeated units, OLS
        res = fit_lagged_rsa(df, outcome="z", x="x", y="y", time="session", unit="patient",
                             groups=None)
    info = res.lag_info
    assert info["rows_used"] == 30 * 3 == res.nobs  # pairs (1,2), (2,3), (5,6)
    assert info["rows_without_lagged_xy"] == 30 * 2
    assert res.roles["x"] == "x_lag1"
    assert "z_lag1" in res.params.index
    assert res.centering["z_lag1_shift"] == pytest.approx(
        df.sort_values(["patient", "session"]).groupby("patient")["z"]
        .apply(lambda s: s.iloc[[0, 1, 3]].mean()).mean())
    with pytest.raises(TypeError, match="unexpected keyword"):
        fit_lagged_rsa(df, outcome="z", x="x", y="y", time="session", unit="patient",
                       groups=None, colour="red")


# ------------------------------------------------------------------- bad input
@pytest.fixture
def df() -> pd.DataFrame:
    return with_surface(make_xy(40), [1, 0.3, -0.2, -0.5, 0.9, -0.3], noise=0.5)


def test_x_identical_to_y(df) -> None:
    with pytest.raises(ValueError, match="are identical on every analysed row"):
        fit_rsa(df.assign(y=df.x), outcome="z", x="x", y="y")
    with pytest.raises(ValueError, match="both name column 'x'"):
        fit_rsa(df, outcome="z", x="x", y="x")


def test_constant_x(df) -> None:
    with pytest.raises(ValueError, match="`x` column 'x' has zero variance"):
        fit_rsa(df.assign(x=3.0), outcome="z", x="x", y="y")


def test_too_few_observations(df) -> None:
    with pytest.raises(ValueError, match=r"Too few observations for model 'full'.*6 "
                                         r"coefficients but only 5"):
        fit_rsa(df.head(5), outcome="z", x="x", y="y")


def test_rank_deficient_design(df) -> None:
    with pytest.raises(ValueError, match="rank-deficient: term 'y' is a linear combination"):
        fit_rsa(df.assign(y=2 * df.x + 1), outcome="z", x="x", y="y")


def test_missing_rows(df) -> None:
    bad = df.copy()
    bad.loc[[1, 5], "x"] = np.nan
    with pytest.raises(ValueError, match="missing values \\('x': 2\\) and missing='raise'"):
        fit_rsa(bad, outcome="z", x="x", y="y", missing="raise")
    with pytest.warns(DataWarning, match="Dropped 2 of 40 rows"):
        res = fit_rsa(bad, outcome="z", x="x", y="y")
    assert res.nobs == 38
    assert res.dropped_rows == {"x": 2}
    assert bad["x"].isna().sum() == 2  # caller's data untouched


def test_unknown_model_name(df) -> None:
    with pytest.raises(ValueError, match=r"got 'SQDD'\. Did you mean 'SQD'"):
        fit_rsa(df, outcome="z", x="x", y="y", model="SQDD")
    with pytest.raises(ValueError, match="Did you mean 'SRRR'"):
        compare_rsa(df, outcome="z", x="x", y="y", models=("full", "srrr"))
    assert set(MODELS) >= {"full", "SRRR", "SRSQD", "null"}


def test_other_bad_arguments(df) -> None:
    with pytest.raises(ValueError, match=r"`y` refers to column 'yy'.*Close matches: 'y'"):
        fit_rsa(df, outcome="z", x="x", y="yy")
    with pytest.raises(ValueError, match="`center` must be 'pooled'"):
        fit_rsa(df, outcome="z", x="x", y="y", center="grand")
    with pytest.raises(ValueError, match="`cov_type` must be one of"):
        fit_rsa(df, outcome="z", x="x", y="y", cov_type="HC9")
    with pytest.raises(ValueError, match="only available for single-level"):
        fit_rsa(df.assign(g=np.repeat(range(8), 5)), outcome="z", x="x", y="y",
                groups="g", cov_type="HC3")
    with pytest.raises(ValueError, match="`by` column 'g' has a single level"):
        fit_rsa(df.assign(g=1), outcome="z", x="x", y="y", by="g")
    with pytest.raises(ValueError, match="'SRRR' with `by` is not supported"):
        fit_rsa(df.assign(g=np.tile([0, 1], 20)), outcome="z", x="x", y="y", by="g",
                model="SRRR")
    with pytest.raises(TypeError, match="`data` must be a pandas DataFrame"):
        fit_rsa(df.to_numpy(), outcome="z", x="x", y="y")
    with pytest.raises(ValueError, match="`outcome` column 'z' must be numeric"):
        fit_rsa(df.assign(z="a"), outcome="z", x="x", y="y")
    with pytest.warns(DataWarning, match="Variablewise centring"):
        fit_rsa(df, outcome="z", x="x", y="y", center="variablewise")
    res = fit_rsa(df, outcome="z", x="x", y="y")
    with pytest.raises(ValueError, match="need a fit with `by`"):
        res.surface_differences
    with pytest.raises(ValueError, match="`n` must be an integer >= 2"):
        res.bootstrap(1)


def test_summary_says_not_scaled_and_rounds_centring_constants() -> None:
    # a summary never prints "scaled (None)" nor constants at full float precision
    df = pd.DataFrame({"x": np.arange(20.0) % 7, "y": np.arange(20.0) % 5,
                       "z": np.arange(20.0) % 3})
    text = str(fit_rsa(df, outcome="z", x="x", y="y").summary())
    assert "scaled (None)" not in text
    assert "not scaled" in text
    centring = next(line for line in text.splitlines() if line.startswith("Centring"))
    assert all(len(part.split("=")[1].split(".")[-1]) <= 6
               for part in centring.split(":", 1)[1].split(", ") if "." in part)
