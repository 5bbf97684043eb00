"""Plots (Agg backend, set in conftest): returned objects, drawn data, labels, bad input.

Drawn values are checked against independent computations: the congruence lines against
their definitions, prediction intervals against statsmodels' ``get_prediction`` for an OLS
fit, observed-mean intervals against ``scipy.stats.t.interval`` on the raw ratings.
"""

from __future__ import annotations

import warnings
from pathlib import Path as FilePath

import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import pytest
from matplotlib.axes import Axes
from matplotlib.container import ErrorbarContainer
from matplotlib.contour import ContourSet
from matplotlib.figure import Figure
from matplotlib.path import Path
from scipy import stats
from scipy.spatial import ConvexHull

from alliancestats import (
    datasets,
    fit_growth,
    fit_lagged_rsa,
    fit_rsa,
    fit_truth_bias,
    power,
    stack_raters,
    synthesis,
)
from alliancestats.exceptions import BoundaryFitWarning, DataWarning
from alliancestats.plotting import (
    agreement_predictions,
    observed_means,
    plot_box_score,
    plot_lagged_agreement,
    plot_power,
    plot_surface,
    plot_trajectories,
    plot_truth_bias,
)


@pytest.fixture(autouse=True)
def _close_figures() -> None:
    yield
    plt.close("all")


@pytest.fixture(scope="module")
def prn() -> pd.DataFrame:
    return datasets.load("prn")


@pytest.fixture(scope="module")
def single() -> object:
    rng = np.random.default_rng(3)
    df = pd.DataFrame({"x": rng.normal(5, 1, 120), "y": rng.normal(5, 1, 120)})
    df["z"] = 2 - (df.x - df.y) ** 2 + 0.3 * df.x + rng.normal(0, 0.5, 120)
    return fit_rsa(df, outcome="z", x="x", y="y")


@pytest.fixture(scope="module")
def lagged(prn: pd.DataFrame) -> object:
    # single-level (groups=None) keeps the fixture fast; the plots only need b and cov(b)
    with warnings.catch_warnings():  # the single-level fit of repeated units is deliberate
        warnings.filterwarnings("ignore", "Single-level fit", DataWarning)
        return fit_lagged_rsa(prn, outcome="wellbeing", x="alliance_therapist",
                              y="alliance_patient", time="session",
                              unit=["therapist", "patient"], groups=None, by="condition")


def _inside_hull_values(result: object, level: object, n_grid: int = 40) -> np.ndarray:
    """Fitted values at the plot grid's points inside the convex hull of the level's data."""
    obs = result.observations[result.level_mask(level)]
    pts = obs[["x", "y"]].to_numpy(float)
    hull = ConvexHull(pts)
    grid = np.linspace(pts.min(), pts.max(), n_grid)
    xx, yy = np.meshgrid(grid, grid)
    inside = Path(pts[hull.vertices]).contains_points(np.column_stack([xx.ravel(),
                                                                       yy.ravel()]))
    return result.predict(grid, grid, level=level, grid=True).ravel()[inside]


def _line(ax: Axes, label: str) -> np.ndarray:
    (line,) = [ln for ln in ax.get_lines() if ln.get_label() == label]
    return np.asarray(line.get_xydata())


class TestPlotSurface:
    def test_contour_lines_of_congruence(self, single: object) -> None:
        ax = plot_surface(single, kind="contour")
        assert isinstance(ax, Axes)
        assert (ax.get_xlabel(), ax.get_ylabel()) == ("x", "y")
        loc = _line(ax, "line of congruence (X = Y)")
        np.testing.assert_allclose(loc[:, 0], loc[:, 1])
        loic = _line(ax, "line of incongruence (X = −Y)")
        c = single.centering["x_shift"]
        # X = -Y on the pooled-centred scale
        np.testing.assert_allclose(loic[:, 0] - c, -(loic[:, 1] - c))
        assert len(loic) > 2
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert "line of congruence (X = Y)" in legend
        assert plot_surface(single, kind="contour", legend=False).get_legend() is None

    def test_range_is_observed_range(self, single: object) -> None:
        ax = plot_surface(single, kind="contour")
        obs = single.observations
        lo = min(obs.x.min(), obs.y.min())
        hi = max(obs.x.max(), obs.y.max())
        np.testing.assert_allclose(ax.get_xlim(), (lo, hi))
        np.testing.assert_allclose(ax.get_ylim(), (lo, hi))

    def test_principal_axis_matches_table(self, single: object) -> None:
        ax = plot_surface(single, kind="contour")
        pa1 = _line(ax, "first principal axis")
        p10, p11 = single.principal_axes.loc[["p10", "p11"], "estimate"]
        c = single.centering["x_shift"]
        np.testing.assert_allclose(pa1[:, 1] - c, p10 + p11 * (pa1[:, 0] - c), atol=1e-9)

    def test_3d_axes_and_overlays(self, single: object) -> None:
        ax = plot_surface(single, points=True, hull=True)
        assert ax.name == "3d"
        assert ax.get_zlabel() == "z"
        labels = {ln.get_label() for ln in ax.get_lines()}
        assert {"line of congruence (X = Y)", "convex hull of data"} <= labels

    def test_panels_per_level(self, lagged: object) -> None:
        fig = plot_surface(lagged, kind="contour")
        assert isinstance(fig, Figure)
        titles = [a.get_title() for a in fig.axes if a.get_title()]
        assert titles == ["condition = 0", "condition = 1"]

    def test_panels_share_one_colour_scale(self, lagged: object) -> None:
        fig = plot_surface(lagged, kind="contour")
        sets = [c for a in fig.axes for c in a.collections if isinstance(c, ContourSet)]
        assert len(sets) == 2
        np.testing.assert_array_equal(sets[0].levels, sets[1].levels)
        assert sets[0].extend == "both"
        # the levels cover the surface over the grid points inside each level's data hull
        # (hull by matplotlib's Path, independently of the plotting code's Delaunay test)
        for lev, cs in zip(lagged.levels, sets, strict=True):
            inner = _inside_hull_values(lagged, lev)
            assert cs.levels[0] <= inner.min()
            assert cs.levels[-1] >= inner.max()
        inner = np.concatenate([_inside_hull_values(lagged, lev) for lev in lagged.levels])
        step = np.diff(sets[0].levels)[0]
        assert sets[0].levels[0] > inner.min() - step
        assert sets[0].levels[-1] < inner.max() + step

    def test_3d_panels_share_the_z_axis(self, lagged: object) -> None:
        fig = plot_surface(lagged, kind="3d")
        zlims = [a.get_zlim() for a in fig.axes if a.name == "3d"]
        assert len(zlims) == 2
        np.testing.assert_allclose(zlims[0], zlims[1])

    def test_one_level_on_given_axes(self, lagged: object) -> None:
        fig = plt.figure()
        ax = fig.add_subplot(projection="3d")
        assert plot_surface(lagged, level=1, ax=ax) is ax

    def test_2d_axes_for_3d_is_an_error(self, single: object) -> None:
        _, ax = plt.subplots()
        with pytest.raises(ValueError, match=r"projection='3d'"):
            plot_surface(single, kind="3d", ax=ax)

    def test_3d_axes_for_contour_is_an_error(self, single: object) -> None:
        ax = plt.figure().add_subplot(projection="3d")
        with pytest.raises(ValueError, match="2-D Axes"):
            plot_surface(single, kind="contour", ax=ax)

    def test_bad_inputs(self, single: object, lagged: object) -> None:
        with pytest.raises(ValueError, match="`kind`"):
            plot_surface(single, kind="wireframe")
        with pytest.raises(TypeError, match="fit_rsa"):
            plot_surface(pd.DataFrame())
        with pytest.raises(ValueError, match="`level`"):
            plot_surface(lagged, level=7)
        with pytest.raises(ValueError, match="pass `level`"):
            plot_surface(lagged, kind="contour", ax=plt.gca())
        with pytest.raises(ValueError, match="`n_grid`"):
            plot_surface(single, n_grid=1)


class TestLaggedAgreement:
    def test_axes_and_patterns(self, lagged: object) -> None:
        ax = plot_lagged_agreement(lagged)
        assert [t.get_text() for t in ax.get_xticklabels()] == [
            "both high", "both low", "therapist higher", "patient higher"]
        bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(bars) == 2  # one per condition
        assert ax.get_ylabel() == "predicted wellbeing"

    def test_predictions_and_intervals_match_ols(self, single: object) -> None:
        table = agreement_predictions(single, low=4.0, high=6.0)
        xs, ys = table["x"].to_numpy(), table["y"].to_numpy()
        np.testing.assert_allclose(table["estimate"], single.predict(xs, ys))
        c = single.centering["x_shift"]
        xc, yc = xs - c, ys - c
        exog = np.column_stack([np.ones(4), xc, yc, xc**2, xc * yc, yc**2])
        ref = single.ols.get_prediction(exog).summary_frame(alpha=0.05)
        np.testing.assert_allclose(table["estimate"], ref["mean"], rtol=1e-10)
        np.testing.assert_allclose(table["std_error"], ref["mean_se"], rtol=1e-8)
        np.testing.assert_allclose(table["conf_low"], ref["mean_ci_lower"], rtol=1e-8)

    def test_default_low_high_are_mean_pm_sd(self, single: object) -> None:
        obs = single.observations
        both = np.concatenate([obs.x, obs.y])
        table = agreement_predictions(single)
        assert table.attrs["low"] == pytest.approx(both.mean() - both.std(ddof=1))
        assert table.attrs["high"] == pytest.approx(both.mean() + both.std(ddof=1))

    def test_bad_inputs(self, single: object) -> None:
        with pytest.raises(ValueError, match="`high`"):
            agreement_predictions(single, low=5, high=4)
        with pytest.raises(ValueError, match="`alpha`"):
            plot_lagged_agreement(single, alpha=2)
        with pytest.raises(TypeError, match="fit_rsa"):
            plot_lagged_agreement("result")


@pytest.fixture(scope="module")
def long_rsa() -> pd.DataFrame:
    """Repeated sessions of 30 patients of 10 therapists, a curved surface."""
    rng = np.random.default_rng(11)
    ther = np.repeat(np.arange(10), 18)
    pat = np.repeat(np.arange(30), 6)
    x = rng.normal(5, 1, 180) + rng.normal(0, 0.7, 30)[pat]
    y = rng.normal(5, 1, 180) + rng.normal(0, 0.7, 30)[pat]
    z = (2 - (x - y) ** 2 + 0.2 * (x - 5) ** 3 + rng.normal(0, 1.5, 10)[ther]
         + rng.normal(0, 0.7, 30)[pat]
         + rng.normal(0, 0.5, 180))
    return pd.DataFrame({"therapist": ther, "patient": pat, "x": x, "y": y, "z": z})


class TestOtherSurfaces:
    """Cubic, piecewise and within/between surfaces."""

    @pytest.mark.parametrize("model", ["cubic", "absunc", "CA"])
    def test_agreement_predictions_follow_predict_interval(
            self, long_rsa: pd.DataFrame, model: str) -> None:
        res = fit_rsa(long_rsa[["x", "y", "z"]], outcome="z", x="x", y="y", model=model)
        table = agreement_predictions(res, low=4.0, high=6.0)
        ref = res.predict_interval(table["x"], table["y"])
        np.testing.assert_allclose(table["estimate"], res.predict(table["x"], table["y"]))
        np.testing.assert_allclose(table["std_error"], ref["std_error"])
        # an independent check of the SE: the prediction's gradient over b and cov(b)
        if model == "cubic":
            xc = table["x"].to_numpy() - res.centering["x_shift"]
            yc = table["y"].to_numpy() - res.centering["y_shift"]
            g = np.column_stack([np.ones(4), xc, yc, xc**2, xc * yc, yc**2, xc**3,
                                 xc**2 * yc, xc * yc**2, yc**3])
            V = res.cov_coefs().to_numpy()
            np.testing.assert_allclose(table["std_error"],
                                       np.sqrt(np.einsum("ij,jk,ik->i", g, V, g)))
        assert plot_lagged_agreement(res).get_ylabel() == "predicted z"

    def test_cubic_surface_draws(self, long_rsa: pd.DataFrame) -> None:
        res = fit_rsa(long_rsa[["x", "y", "z"]], outcome="z", x="x", y="y", model="cubic")
        ax = plot_surface(res, kind="contour")
        labels = {ln.get_label() for ln in ax.get_lines()}
        assert "first principal axis" not in labels  # undefined for a cubic surface
        assert "line of congruence (X = Y)" in labels

    def test_mixed_intervals_use_the_fits_df(self, long_rsa: pd.DataFrame) -> None:
        res = fit_rsa(long_rsa, outcome="z", x="x", y="y", groups=["therapist", "patient"])
        table = agreement_predictions(res)
        ref = res.predict_interval(table["x"], table["y"])
        np.testing.assert_allclose(table["conf_low"], ref["conf_low"])
        z = stats.norm.ppf(0.975)
        assert (table["estimate"] - table["conf_low"] > z * table["std_error"]).all()

    def test_decomposed_fit_draws_within_and_between_panels(
            self, long_rsa: pd.DataFrame) -> None:
        with warnings.catch_warnings():  # the patient variance is 0 here: not the point
            warnings.simplefilter("ignore", BoundaryFitWarning)
            res = fit_rsa(long_rsa, outcome="z", x="x", y="y",
                          groups=["therapist", "patient"], decompose="unit")
        fig = plot_surface(res, kind="contour", points=True)
        titles = [a.get_title() for a in fig.axes if a.get_title()]
        assert titles == ["within-unit surface", "between-unit surface"]
        obs = res.observations
        # within panel: deviations from the patient means; between panel: the means
        means = long_rsa.groupby("patient")["x"].transform("mean").to_numpy()
        np.testing.assert_allclose(obs["x_within"], long_rsa["x"] - means, atol=1e-10)
        np.testing.assert_allclose(obs["x_between"], means, atol=1e-10)
        within_ax = fig.axes[0]
        lo, hi = within_ax.get_xlim()
        assert lo == pytest.approx(min(obs.x_within.min(), obs.y_within.min()))
        assert hi == pytest.approx(max(obs.x_within.max(), obs.y_within.max()))
        loic = _line(within_ax, "line of incongruence (X = −Y)")  # through (0, 0)
        np.testing.assert_allclose(loic[:, 0], -loic[:, 1], atol=1e-12)
        ax = plot_surface(res, kind="contour", level="between")
        assert ax.get_title() == "between-unit surface"
        with pytest.raises(ValueError, match="within- and between-unit surfaces"):
            plot_surface(res, kind="contour", ax=plt.gca())
        with pytest.raises(ValueError, match="decompose='unit'"):
            agreement_predictions(res)


class TestTruthBias:
    @pytest.fixture(scope="class")
    @classmethod
    def tb(cls, prn: pd.DataFrame) -> object:
        return fit_truth_bias(
            prn, judgment="alliance_therapist", truth="alliance_patient",
            groups=["therapist", "patient"], moderators=["condition", "session"])

    def test_panels_lines_and_values(self, tb: object) -> None:
        fig = plot_truth_bias(tb, x_values=range(1, 7), hue_values=[0, 1])
        assert isinstance(fig, Figure)
        truth_ax = fig.axes[0]
        assert truth_ax.get_ylabel() == "truth force"
        ref = tb.effects_at(condition=1, session=list(range(1, 7)))
        ref = ref[ref["effect"] == "truth_force"]
        np.testing.assert_allclose(_line(truth_ax, "condition = 1")[:, 1], ref["estimate"])

    def test_reference_line_at_one_is_not_perfect_tracking(self, tb: object) -> None:
        # issue 20.6: measurement error in the truth attenuates the truth force, so the
        # line at 1 is a one-for-one change, not "perfect tracking"
        fig = plot_truth_bias(tb, x_values=[1, 6], hue_values=[0, 1])
        truth_ax, bias_ax = fig.axes[:2]
        ones = [ln for ln in truth_ax.get_lines() if np.allclose(ln.get_ydata(), 1.0)]
        assert len(ones) == 1
        texts = [t.get_text() for ax in fig.axes for t in ax.texts]
        texts += [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        assert any("one-for-one" in t and "error in the truth" in t for t in texts)
        assert not any("perfect" in t.lower() for t in texts)
        # the label is on the truth-force panel only and stays out of the legend
        assert not any("one-for-one" in t.get_text() for t in bias_ax.texts)
        assert not any("one-for-one" in t.get_text() for legend in fig.legends
                       for t in legend.get_texts())

    def test_single_effect_on_axes(self, tb: object) -> None:
        _, ax = plt.subplots()
        out = plot_truth_bias(tb, effects="directional_bias", x_values=[1, 6], hue=None,
                              ax=ax, alpha=0.1)
        assert out is ax
        assert "90% CI" in ax.get_title()

    def test_bad_inputs(self, tb: object) -> None:
        # plot_truth_bias(tb) works with its defaults (the fit records its moderators)
        with pytest.raises(ValueError, match="`x` 'visit' is not a moderator"):
            plot_truth_bias(tb, x="visit")
        with pytest.raises(ValueError, match="`effects`"):
            plot_truth_bias(tb, effects="accuracy", x_values=[1])
        with pytest.raises(ValueError, match="`ax` draws one effect"):
            plot_truth_bias(tb, x_values=[1], hue_values=[0], ax=plt.gca())
        with pytest.raises(ValueError, match="bias_force"):
            plot_truth_bias(tb, effects="bias_force", x_values=[1], hue_values=[0])
        with pytest.raises(TypeError, match="fit_truth_bias"):
            plot_truth_bias(object())


class TestTrajectories:
    def test_axes_and_series(self, prn: pd.DataFrame) -> None:
        ax = plot_trajectories(prn)
        bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(bars) == 4  # 2 raters x 2 conditions
        assert ax.get_xlabel() == "session"
        labels = ax.get_legend_handles_labels()[1]
        assert "patient, condition = 1" in labels

    def test_means_and_t_intervals(self, prn: pd.DataFrame) -> None:
        means = observed_means(prn)
        row = means[(means.rater == "patient") & (means.condition == 1)
                    & (means.session == 3)].iloc[0]
        raw = prn.loc[(prn.condition == 1) & (prn.session == 3), "alliance_patient"]
        low, high = stats.t.interval(0.95, len(raw) - 1, raw.mean(), stats.sem(raw))
        assert (row["mean"], row["n"]) == (pytest.approx(raw.mean()), len(raw))
        assert (row["conf_low"], row["conf_high"]) == (pytest.approx(low), pytest.approx(high))

    def test_other_artists_on_the_axes_keep_their_legend_entries(
            self, prn: pd.DataFrame) -> None:
        _, ax = plt.subplots()
        ax.scatter([1, 2], [5, 5], label="benchmark")
        plot_trajectories(prn, ax=ax)
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert labels[0] == "benchmark"
        assert len(labels) == 5
        handles = ax.get_legend().legend_handles
        assert handles[labels.index("patient, condition = 0")].get_linestyle() == "--"

    def test_without_condition(self, prn: pd.DataFrame) -> None:
        ax = plot_trajectories(prn, condition=None, ratings={"t": "alliance_therapist",
                                                             "p": "alliance_patient"})
        assert ax.get_legend_handles_labels()[1] == ["t", "p"]

    def test_bad_inputs(self, prn: pd.DataFrame) -> None:
        with pytest.raises(ValueError, match="sesion"):
            plot_trajectories(prn, time="sesion")
        with pytest.raises(TypeError, match="fit_growth"):
            plot_trajectories([1, 2, 3])
        with pytest.raises(ValueError, match="`alpha`"):
            plot_trajectories(prn, alpha=0)
        bad = prn.assign(alliance_patient="n/a")
        with pytest.raises(ValueError, match=r"alliance_patient.*numeric"):
            plot_trajectories(bad)


class TestPower:
    @pytest.fixture(scope="class")
    @classmethod
    def res(cls) -> object:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # singular fits in tiny designs are expected
            return power("truth_bias", n_therapists=[6, 10], n_patients=[18], n_sims=4,
                         rng=1, progress=False)

    def test_curve_target_and_intervals(self, res: object) -> None:
        ax = plot_power(res)
        assert ax.get_xlabel() == "n therapists"
        (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        table = res.power
        np.testing.assert_allclose(np.asarray(bars.lines[0].get_ydata(), float), table["power"])
        target = _line(ax, "target 0.8")
        np.testing.assert_allclose(target[:, 1], 0.8)

    def test_method_on_result(self, res: object) -> None:
        assert isinstance(res.plot(target=None), Axes)

    def test_bad_inputs(self, res: object) -> None:
        with pytest.raises(ValueError, match="`x`"):
            plot_power(res, x="n_groups")
        with pytest.raises(ValueError, match="`terms`"):
            plot_power(res, terms="a4")
        with pytest.raises(TypeError, match="power"):
            plot_power(pd.DataFrame())


def test_box_score_is_reexported() -> None:
    assert plot_box_score is synthesis.plot_box_score


class TestGrowthTrajectories:
    @pytest.fixture(scope="class")
    @classmethod
    def growth(cls, prn: pd.DataFrame) -> object:
        long = stack_raters(prn, ratings={"therapist": "alliance_therapist",
                                          "patient": "alliance_patient"})
        return fit_growth(long, outcome="alliance", time="session",
                                 groups=["therapist", "patient"], rater="rater",
                                 moderators="condition", random="intercept")

    def test_fitted_lines_from_the_fixed_effects(self, growth: object,
                                                 prn: pd.DataFrame) -> None:
        from alliancestats.plotting import growth_trajectories

        table = growth_trajectories(growth, times=[1, 6], conditions=[0, 1])
        p = growth.params
        row = table[(table.rater == "patient") & (table.condition == 1) & (table.time == 6)]
        shift = growth.centering["time_center"]
        # intercept + condition + (6 - t0) * (slope + slope:condition), from the coefficients
        expected = (p["rater[patient]"] + p["rater[patient]:condition"]
                    + (6 - shift) * (p["rater[patient]:session"]
                                     + p["rater[patient]:session:condition"]))
        assert row["estimate"].item() == pytest.approx(expected)
        # the slope of each line is the reported growth rate
        rates = growth.growth_rates.set_index(["rater", "condition"])["estimate"]
        for (rater, cond), part in table.groupby(["rater", "condition"]):
            slope = np.diff(part["estimate"])[0] / 5
            assert slope == pytest.approx(rates[(rater, cond)])

    def test_plot_with_growth_result(self, growth: object, prn: pd.DataFrame) -> None:
        ax = plot_trajectories(growth, growth_data=prn)
        assert len(ax.get_lines()) >= 4
        bars = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
        assert len(bars) == 4
        # each legend entry shows the rater's line style of the fitted growth
        legend = ax.get_legend()
        styles = {t.get_text(): h.get_linestyle()
                  for t, h in zip(legend.get_texts(), legend.legend_handles, strict=True)}
        assert styles["therapist, condition = 1"] == "-"
        assert styles["patient, condition = 1"] == "--"
        with pytest.raises(ValueError, match="growth_data"):
            plot_trajectories(growth)


LAB = FilePath(__file__).parent / "data" / "lab_long.csv"


class TestTextConditionLabels:
    """A lab export codes the arm as text ("training"/"control")."""

    @pytest.fixture(scope="class")
    def lab(self) -> pd.DataFrame:
        return pd.read_csv(LAB)

    @pytest.fixture(scope="class")
    def growth(self, lab: pd.DataFrame) -> object:
        long = stack_raters(lab, ratings={"therapist": "WAI_T", "patient": "WAI_C"},
                            rater="rater", value="alliance")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fit_growth(long, outcome="alliance", time="Sess",
                              groups=["Therapist_ID", "ClientID"], rater="rater",
                              moderators=["Group"], random="slopes_uncorrelated")

    def test_growth_trajectories_with_text_labels(self, lab: pd.DataFrame,
                                                  growth: object) -> None:
        ax = plot_trajectories(growth, growth_data=lab, time="Sess", condition="Group",
                               ratings={"therapist": "WAI_T", "patient": "WAI_C"})
        labels = [t.get_text() for t in ax.get_legend().get_texts()]
        assert sorted(labels) == ["patient, control", "patient, training",
                                  "therapist, control", "therapist, training"]
        assert not any("Group =" in label for label in labels)

    def test_fitted_means_use_the_dummy_of_the_level(self, growth: object) -> None:
        from alliancestats.plotting import growth_trajectories

        fitted = growth_trajectories(growth, times=[1, 6], conditions=["control", "training"])
        params = growth.params
        row = fitted[(fitted.rater == "patient") & (fitted.condition == "training")
                     & (fitted.time == 6)]
        expected = (params["rater[patient]"] + params["rater[patient]:Group[training]"]
                    + 5 * (params["rater[patient]:Sess"]
                           + params["rater[patient]:Sess:Group[training]"]))
        assert row["estimate"].item() == pytest.approx(expected)
        base = fitted[(fitted.rater == "patient") & (fitted.condition == "control")
                      & (fitted.time == 1)]
        assert base["estimate"].item() == pytest.approx(params["rater[patient]"])

    def test_observed_means_legend_shows_text_labels(self, lab: pd.DataFrame) -> None:
        ax = plot_trajectories(lab, time="Sess", condition="Group",
                               ratings={"therapist": "WAI_T", "patient": "WAI_C"})
        labels = {t.get_text() for t in ax.get_legend().get_texts()}
        assert "therapist, training" in labels


class TestTruthBiasDefaults:
    """plot_truth_bias(result) works with its defaults: the fit records its moderators."""

    @pytest.fixture(scope="class")
    def lab_fit(self) -> object:
        lab = pd.read_csv(LAB)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return fit_truth_bias(lab, judgment="WAI_T", truth="WAI_C",
                                  groups=["Therapist_ID", "ClientID"],
                                  moderators=["Group", "Sess"])

    def test_result_records_values_and_levels(self, lab_fit: object) -> None:
        assert lab_fit.moderator_values == {"Group": ["control", "training"],
                                            "Sess": [1, 2, 3, 4, 5, 6]}

    def test_defaults_draw_every_session_and_arm(self, lab_fit: object) -> None:
        fig = plot_truth_bias(lab_fit, x="Sess", hue="Group")
        ax = fig.axes[0]
        assert [line.get_label() for line in ax.get_lines() if not line.get_label()
                .startswith("_")] == ["control", "training"]
        xs = ax.get_lines()[0].get_xdata()
        assert list(xs) == [1, 2, 3, 4, 5, 6]

    def test_unknown_moderator_lists_the_fits_moderators(self, lab_fit: object) -> None:
        with pytest.raises(ValueError, match=r"`hue` 'condition' is not a moderator of the "
                                             r"fit; its moderators are \['Group', 'Sess'\]"):
            plot_truth_bias(lab_fit, x="Sess")


def test_observed_range_uses_the_hull_of_all_observations() -> None:
    # the colour range is the surface over grid points inside the data's convex hull:
    # triangulating the hull's corners must give the same points as all observations
    from scipy.spatial import Delaunay

    from alliancestats.plotting import _observed_z_range

    rng = np.random.default_rng(3)
    xr, yr = np.round(rng.normal(size=(2, 4000)), 1)  # many tied, rounded ratings
    grid = np.linspace(-4, 4, 50)
    xx, yy = np.meshgrid(grid, grid)
    zz = xx ** 2 - yy
    inside = Delaunay(np.column_stack([xr, yr])).find_simplex(
        np.column_stack([xx.ravel(), yy.ravel()])) >= 0
    expected = (zz.ravel()[inside].min(), zz.ravel()[inside].max())
    panel = {"grid": grid, "zz": zz, "xr": xr, "yr": yr}
    assert _observed_z_range(panel) == pytest.approx(expected)
