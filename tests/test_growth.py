"""Growth model: lme4 reference values, recovery of growth contrasts, bad input."""

from __future__ import annotations

import json
import re
import warnings
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from alliancestats import GrowthResults, fit_growth, simulate_prn, stack_raters
from alliancestats.exceptions import BoundaryFitWarning, DataWarning
from lme4_checks import assert_fit_statistics, assert_fixed_effects, assert_random_effects

REF = Path(__file__).parent / "reference"
R = json.loads((REF / "results" / "tb_reference.json").read_text())
RATINGS = {"therapist": "alliance_therapist", "patient": "alliance_patient"}
GROUPS = ["therapist", "patient"]


def fit_quietly(data: pd.DataFrame, **kwargs: Any) -> GrowthResults:
    """Fit, ignoring the boundary and dropped-rows warnings some data sets give."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        warnings.simplefilter("ignore", DataWarning)
        return fit_growth(data, **kwargs)


def to_python(name: str | None) -> str | None:
    """lme4 coefficient / term name -> ours (``ratertherapist:time`` ->
    ``rater[therapist]:session``)."""
    if name is None:
        return None
    name = "Intercept" if name == "(Intercept)" else name
    name = re.sub(r"rater(therapist|patient)", r"rater[\1]", name)
    return ":".join("session" if part == "time" else part for part in name.split(":"))


def check_against_lme4(res: GrowthResults, ref: dict[str, Any]) -> None:
    assert_fixed_effects(res, ref, to_python)
    assert_random_effects(res, ref, to_python)
    assert_fit_statistics(res, ref)


MODELS = {
    "growth_intercept": ("long", "intercept"),
    "growth_slopes_uncorrelated": ("long", "slopes_uncorrelated"),
    "growth_slopes": ("long", "slopes"),
    "growth_single": ("wide", "slopes_uncorrelated"),
}


@pytest.mark.reference
@pytest.mark.slow  # boundary restarts on the singular fits take a few seconds each
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("model", list(MODELS))
@pytest.mark.parametrize("dataset", ["small", "medium", "nearsingular"])
def test_growth_matches_lme4(dataset: str, model: str, method: str) -> None:
    # R: lmer(alliance ~ 0 + rater + rater:time + rater:condition + rater:time:condition +
    #         <random part>, REML = ...), time = session - 1; see tb_growth_reference.R
    data = pd.read_csv(REF / "data" / f"tb_{dataset}.csv")
    shape, random = MODELS[model]
    if shape == "long":
        kwargs: dict[str, Any] = {"data": stack_raters(data, ratings=RATINGS),
                                  "outcome": "alliance", "rater": "rater"}
    else:
        kwargs = {"data": data, "outcome": "alliance_patient"}
    res = fit_quietly(**kwargs, time="session", groups=GROUPS, moderators="condition",
                      random=random, reml=method == "REML")
    assert res.centering["time_center"] == 1.0
    check_against_lme4(res, R["datasets"][dataset][model][method])


def test_rates_and_contrasts_are_linear_combinations() -> None:
    long = stack_raters(simulate_prn(20, 60, 5, rng=4), ratings=RATINGS)
    res = fit_quietly(long, outcome="alliance", time="session", groups=GROUPS,
                      rater="rater", moderators="condition", random="intercept")
    rates = res.growth_rates
    assert rates[["rater", "condition"]].values.tolist() == [
        ["therapist", 0], ["therapist", 1], ["patient", 0], ["patient", 1]]
    b = res.params
    t1 = rates.query("rater == 'therapist' and condition == 1")["estimate"].iloc[0]
    assert t1 == pytest.approx(b["rater[therapist]:session"]
                               + b["rater[therapist]:session:condition"])
    con = res.contrasts
    did = con.loc["condition effect on growth: rater patient - therapist"]
    w = pd.Series({"rater[patient]:session:condition": 1.0,
                   "rater[therapist]:session:condition": -1.0})
    V = res.cov_params().loc[w.index, w.index]
    assert did["estimate"] == pytest.approx(float(w @ b[w.index]))
    assert did["std_error"] == pytest.approx(float(np.sqrt(w @ V @ w)))
    text = str(res.summary())
    assert "Growth rates" in text
    assert "Growth contrasts" in text
    assert set(res.to_frame()["component"]) == {"fixed", "growth_rate", "growth_contrast",
                                                "variance"}
    assert "<table" in res._repr_html_()


def test_recovers_growth_rates_and_training_contrasts() -> None:
    # Linear expected trajectories: truth force constant over sessions (gamma12 = gamma13 =
    # 0), so E[therapist-rated] grows by g02 + g03 c + (g10 + g11 c) g_P per session.
    params = {"gamma12": 0.0, "gamma13": 0.0, "gamma03": 0.05, "gamma11": 0.1}
    df = simulate_prn(160, 480, 6, params=params, rng=77)
    p = df.attrs["params"]
    long = stack_raters(df, ratings=RATINGS)
    res = fit_quietly(long, outcome="alliance", time="session", groups=GROUPS,
                      rater="rater", moderators="condition", random="slopes")
    g_p = p["truth_growth"]
    expected = {("therapist", c): p["gamma02"] + p["gamma03"] * c
                + (p["gamma10"] + p["gamma11"] * c) * g_p for c in (0, 1)}
    expected |= {("patient", c): g_p for c in (0, 1)}
    for _, row in res.growth_rates.iterrows():
        truth = expected[(row["rater"], row["condition"])]
        assert abs(row["estimate"] - truth) < 3 * row["std_error"]
    con = res.contrasts
    train_t = p["gamma03"] + p["gamma11"] * g_p
    for label, truth in {"condition effect on growth (rater=therapist)": train_t,
                         "condition effect on growth (rater=patient)": 0.0,
                         "condition effect on growth: rater patient - therapist": -train_t
                         }.items():
        assert abs(con.loc[label, "estimate"] - truth) < 3 * con.loc[label, "std_error"]


def test_bad_input() -> None:
    df = simulate_prn(10, 30, 4, rng=3)
    long = stack_raters(df, ratings=RATINGS)
    with pytest.raises(ValueError, match="Close matches: 'session'"):
        fit_growth(long, outcome="alliance", time="sesion", groups=GROUPS)
    with pytest.raises(ValueError, match="must be numeric"):
        fit_growth(long.assign(alliance="high"), outcome="alliance", time="session",
                   groups=GROUPS)
    with pytest.raises(ValueError, match="rows share the same"):
        fit_growth(long, outcome="alliance", time="session", groups=GROUPS)  # no rater
    with pytest.raises(ValueError, match="at least two"):
        fit_growth(long[long["rater"] == "patient"], outcome="alliance", time="session",
                   groups=GROUPS, rater="rater")
    with pytest.raises(ValueError, match="zero variance"):
        fit_growth(df.assign(session=1), outcome="alliance_patient", time="session",
                   groups=GROUPS)
    with pytest.raises(TypeError, match="time_center"):
        fit_growth(df, outcome="alliance_patient", time="session", groups=GROUPS,
                   time_center=[1])


def test_missing_sessions_dropped_recorded_and_input_untouched() -> None:
    df = simulate_prn(12, 36, 4, rng=9)
    holes = df.assign(alliance_patient=df["alliance_patient"].where(df["session"] != 3))
    before = holes.copy()
    with pytest.warns(DataWarning, match="Dropped"):
        res = fit_growth(holes, outcome="alliance_patient", time="session", groups=GROUPS,
                         random="intercept", time_center="mean")
    pd.testing.assert_frame_equal(holes, before)
    assert res.dropped_rows == {"alliance_patient": int((df["session"] == 3).sum())}
    assert res.centering["time_center"] == pytest.approx(holes.dropna()["session"].mean())


R_RATER = json.loads((REF / "results" / "growth_rater.json").read_text())


def level_covariances(res: GrowthResults) -> dict[str, np.ndarray]:
    """Level -> covariance of its random terms, sigma^2 Lambda Lambda' from the engine's
    theta (lme4 layout: lower triangle column by column; levels outer to inner)."""
    vc = res.variance_components
    scale = float(vc.loc[vc["level"] == "Residual", "variance"].iloc[0])
    theta = iter(res.optimizer_info["theta"])
    out = {}
    for level in dict.fromkeys(vc.loc[vc["level"] != "Residual", "level"]):
        q = int((vc["level"] == level).sum())
        lam = np.zeros((q, q))
        for j in range(q):
            for i in range(j, q):
                lam[i, j] = next(theta)
        out[level] = scale * lam @ lam.T
    return out


def assert_rater_covariances(res: GrowthResults, ref: dict[str, Any]) -> None:
    """Every random-effect variance and covariance against ``as.data.frame(VarCorr(fit))``:
    ``vcov`` of every pair (and the ``variance`` column), ``sdcor`` of the correlations
    with a level's first term where both variances are away from zero."""
    covs = level_covariances(res)
    vc = res.variance_components.set_index(["level", "term"])
    for row in ref["varcorr"].values():
        if row["grp"] == "Residual":
            continue  # checked by assert_fit_statistics
        level = row["grp"].split(":")[-1]
        terms = list(vc.loc[level].index)
        i = terms.index(to_python(row["var1"]))
        j = i if row["var2"] is None else terms.index(to_python(row["var2"]))
        np.testing.assert_allclose(covs[level][i, j], row["vcov"], rtol=1e-3, atol=1e-6)
        if row["var2"] is None:
            np.testing.assert_allclose(vc.loc[(level, terms[i]), "variance"], row["vcov"],
                                       rtol=1e-3, atol=1e-6)
        elif i == 0 and min(covs[level][i, i], covs[level][j, j]) > 1e-6:
            np.testing.assert_allclose(vc.loc[(level, terms[j]), "corr"], row["sdcor"],
                                       atol=2e-3)


@pytest.mark.reference
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("dataset", ["small", "medium", "nearsingular"])
def test_rater_slopes_matches_lme4(
    dataset: str, method: str, stacked_reference_data: Callable[[str], pd.DataFrame]
) -> None:
    # R: lmer(alliance ~ 0 + rater + rater:time + rater:condition + rater:time:condition +
    #         (1 | therapist) + (0 + rater + rater:time | therapist:patient), REML = ...),
    #    time = session - 1; see growth_rater_reference.R. All six fits are singular in lme4
    #    (the two raters' slopes correlate ~ +/-1), which the engine must reproduce.
    ref = R_RATER["datasets"][dataset][method]
    data = stacked_reference_data(dataset)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DataWarning)  # medium: rows with a missing rating
        with pytest.warns(BoundaryFitWarning):
            res = fit_growth(data, outcome="alliance", time="session", groups=GROUPS,
                             rater="rater", moderators="condition", random="rater_slopes",
                             reml=method == "REML")
    assert res.engine == "fast"
    assert "Engine" in str(res.summary())
    # the formula runs as printed: time enters as session - 1
    assert "(0 + rater + rater:I(session - 1) | therapist:patient)" in res.formula
    assert_fixed_effects(res, ref, to_python)
    assert_rater_covariances(res, ref)
    assert_fit_statistics(res, ref)


R_RATER_INTERCEPTS = json.loads(
    (REF / "results" / "growth_rater_intercepts.json").read_text())


@pytest.mark.reference
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("dataset", ["small", "medium", "nearsingular"])
def test_rater_intercepts_matches_lme4(
    dataset: str, method: str, stacked_reference_data: Callable[[str], pd.DataFrame]
) -> None:
    # R: lmer(alliance ~ 0 + rater + rater:time + rater:condition + rater:time:condition +
    #         (1 | therapist) + (0 + rater | therapist:patient), REML = ...),
    #    time = session - 1; see growth_rater_intercepts_reference.R. lme4 finds the
    #    nearsingular fits singular and the others not; the engine must agree.
    ref = R_RATER_INTERCEPTS["datasets"][dataset][method]
    data = stacked_reference_data(dataset)
    res = fit_quietly(data, outcome="alliance", time="session", groups=GROUPS,
                      rater="rater", moderators="condition", random="rater_intercepts",
                      reml=method == "REML")
    assert res.engine == "fast"
    # the formula runs as printed
    assert res.formula.endswith("(1 | therapist) + (0 + rater | therapist:patient)")
    # fixef(fit) to 1e-4, sqrt(diag(vcov(fit))) to 1e-3 (relative)
    assert_fixed_effects(res, ref, to_python)
    # logLik(fit) to 1e-6 (relative)
    assert res.llf == pytest.approx(ref["logLik"], rel=1e-6)
    vc = res.variance_components.set_index(["level", "term"])
    assert list(vc.loc["patient"].index) == ["rater[therapist]", "rater[patient]"]
    assert_rater_covariances(res, ref)
    assert_fit_statistics(res, ref)


def test_rater_intercepts_needs_rater_and_the_fast_engine() -> None:
    df = simulate_prn(10, 30, 4, rng=3)
    with pytest.raises(ValueError, match=r"rater_intercepts.*needs stacked ratings"):
        fit_growth(df, outcome="alliance_patient", time="session", groups=GROUPS,
                   random="rater_intercepts")
    long = stack_raters(df, ratings=RATINGS)
    with pytest.raises(ValueError, match="cannot fit correlated random terms"):
        fit_growth(long, outcome="alliance", time="session", groups=GROUPS, rater="rater",
                   random="rater_intercepts", engine="statsmodels")


def test_rater_slopes_needs_rater() -> None:
    df = simulate_prn(10, 30, 4, rng=3)
    with pytest.raises(ValueError, match="needs stacked ratings"):
        fit_growth(df, outcome="alliance_patient", time="session", groups=GROUPS,
                   random="rater_slopes")
    with pytest.raises(ValueError, match="random"):
        fit_growth(df, outcome="alliance_patient", time="session", groups=GROUPS,
                   random="rater")


R_RATER_THERAPIST = json.loads(
    (REF / "results" / "growth_rater_therapist.json").read_text())


@pytest.mark.reference
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("dataset", ["small", "medium", "nearsingular"])
def test_rater_slopes_therapist_matches_lme4(
    dataset: str, method: str, stacked_reference_data: Callable[[str], pd.DataFrame]
) -> None:
    # R: lmer(alliance ~ 0 + rater + rater:time + rater:condition + rater:time:condition +
    #         (1 + rater:time | therapist) + (0 + rater + rater:time | therapist:patient),
    #         REML = ...), time = session - 1; see growth_rater_therapist_reference.R.
    #    All six fits are singular in lme4; the engine must reproduce them.
    ref = R_RATER_THERAPIST["datasets"][dataset][method]
    data = stacked_reference_data(dataset)
    res = fit_quietly(data, outcome="alliance", time="session", groups=GROUPS,
                      rater="rater", moderators="condition",
                      random="rater_slopes_therapist", reml=method == "REML")
    assert res.engine == "fast"
    assert res.is_singular == ref["isSingular"]
    # the formula runs as printed: time enters as session - 1
    assert res.formula.endswith("(1 + rater:I(session - 1) | therapist) + "
                                "(0 + rater + rater:I(session - 1) | therapist:patient)")
    vc = res.variance_components.set_index(["level", "term"])
    assert list(vc.loc["therapist"].index) == [
        "Intercept", "rater[therapist]:session", "rater[patient]:session"]
    # logLik(fit), fixef(fit), vcov(fit) to about 1e-6 (the engine reaches lme4's optimum)
    assert res.llf == pytest.approx(ref["logLik"], abs=1e-6)
    names = [to_python(k) for k in ref["fixef"]]
    np.testing.assert_allclose(res.params[names], list(ref["fixef"].values()), atol=1e-6)
    np.testing.assert_allclose(res.cov_params().loc[names, names], ref["vcov"], atol=1e-6)
    np.testing.assert_allclose(res.bse[names], list(ref["se"].values()), rtol=1e-5)
    assert_rater_covariances(res, ref)
    assert_fit_statistics(res, ref)


def test_rater_slopes_therapist_needs_rater() -> None:
    df = simulate_prn(10, 30, 4, rng=3)
    with pytest.raises(ValueError, match=r"rater_slopes_therapist.*intercept and slope"):
        fit_growth(df, outcome="alliance_patient", time="session", groups=GROUPS,
                   random="rater_slopes_therapist")
    long = stack_raters(df, ratings=RATINGS)
    with pytest.raises(ValueError, match="cannot fit correlated random terms"):
        fit_growth(long, outcome="alliance", time="session", groups=GROUPS, rater="rater",
                   random="rater_slopes_therapist", engine="statsmodels")
