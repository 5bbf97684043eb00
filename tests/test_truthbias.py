"""Truth-and-bias model: lme4 reference values, analytic identities, recovery, bad input."""

from __future__ import annotations

import contextlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alliancestats import TruthBiasResults, fit_truth_bias, simulate_prn
from alliancestats.exceptions import BoundaryFitWarning, DataWarning
from lme4_checks import assert_fit_statistics, assert_fixed_effects, assert_random_effects

REF = Path(__file__).parent / "reference"
R = json.loads((REF / "results" / "tb_reference.json").read_text())
ROLES = {"judgment": "alliance_therapist", "truth": "alliance_patient",
         "groups": ["therapist", "patient"]}


def fit_quietly(data: pd.DataFrame, **kwargs: Any) -> TruthBiasResults:
    """Fit, ignoring the boundary and dropped-rows warnings some data sets give."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        warnings.simplefilter("ignore", DataWarning)
        return fit_truth_bias(data, **kwargs)


def lme4_term(name: str | None) -> str | None:
    return None if name is None else ("Intercept" if name == "(Intercept)" else name)


def check_against_lme4(res: Any, ref: dict[str, Any], rename: Any = lambda n: n) -> None:
    """Assert fixed effects, SEs, variance components and logLik match one lmer fit."""
    assert_fixed_effects(res, ref, lambda name: rename(lme4_term(name)))
    assert_random_effects(res, ref, lme4_term)
    assert_fit_statistics(res, ref)


TB_MODELS = {
    "tb_intercept": {"moderators": ["condition", "session"], "random": "intercept"},
    "tb_slopes_uncorrelated": {"moderators": ["condition", "session"],
                               "random": "slopes_uncorrelated"},
    "tb_slopes": {"moderators": ["condition", "session"], "random": "slopes"},
    "tb_bias": {"moderators": ["condition"], "bias": "alliance_projection",
               "random": "intercept"},
    "tb_within": {"moderators": ["condition"], "center": "within_dyad", "random": "intercept"},
}


@pytest.mark.reference
@pytest.mark.parametrize("method", ["REML", "ML"])
@pytest.mark.parametrize("model", list(TB_MODELS))
@pytest.mark.parametrize("dataset", ["small", "medium", "nearsingular"])
def test_truth_bias_matches_lme4(dataset: str, model: str, method: str) -> None:
    # R: lmer(J ~ alliance_patient * condition * session + (1 | therapist) +
    #         (1 | therapist:patient), REML = ...) etc.; see tb_growth_reference.R
    data = pd.read_csv(REF / "data" / f"tb_{dataset}.csv")
    ref = R["datasets"][dataset][model]
    res = fit_quietly(data, **ROLES, reml=method == "REML", **TB_MODELS[model])
    # the centring constant computed in R over the analysed rows
    assert res.centering["truth_mean"] == pytest.approx(ref["center"], rel=1e-12)
    check_against_lme4(res, ref[method])


def test_reference_file_records_versions() -> None:
    assert R["lme4_version"].startswith("1.1")
    assert R["r_version"].startswith("R version")


# -- analytic identities (METHODS 1, test oracles) --------------------------------------------
def _toy(seed: int = 5) -> pd.DataFrame:
    df = simulate_prn(12, 36, 4, rng=seed)
    return df.assign(alliance_therapist=df["alliance_therapist"].round(3))


def test_identity_judgment_equals_truth_plus_constant() -> None:
    df = _toy()
    rng = np.random.default_rng(0)
    df = df.assign(alliance_therapist=df["alliance_patient"] - 0.3
                   + 1e-3 * rng.normal(size=len(df)))
    res = fit_quietly(df, **ROLES, random="intercept")
    # J = T + d: directional bias d, truth force 1
    assert res.directional_bias["estimate"] == pytest.approx(-0.3, abs=1e-3)
    assert res.truth_force["estimate"] == pytest.approx(1.0, abs=1e-3)


def test_shift_and_scale_invariance() -> None:
    df = _toy(6)
    base = fit_truth_bias(df, **ROLES, random="intercept")
    shifted = fit_truth_bias(
        df.assign(alliance_therapist=df["alliance_therapist"] + 2,
                  alliance_patient=df["alliance_patient"] + 2), **ROLES, random="intercept")
    scaled = fit_truth_bias(
        df.assign(alliance_therapist=df["alliance_therapist"] * 3,
                  alliance_patient=df["alliance_patient"] * 3), **ROLES, random="intercept")
    np.testing.assert_allclose(shifted.params, base.params, rtol=1e-5, atol=1e-7)
    assert scaled.directional_bias["estimate"] == pytest.approx(
        3 * base.directional_bias["estimate"], rel=1e-4)
    assert scaled.truth_force["estimate"] == pytest.approx(
        base.truth_force["estimate"], rel=1e-4)


def test_effects_at_is_the_linear_combination() -> None:
    df = _toy(7)
    res = fit_truth_bias(df, **ROLES, moderators=["condition", "session"])
    grid = res.effects_at(condition=[0, 1], session=[1, 4])
    assert list(grid.columns) == ["effect", "condition", "session", "estimate", "std_error",
                                  "df", "statistic", "p_value", "conf_low", "conf_high"]
    assert len(grid) == 2 * 4
    row = grid.query("effect == 'truth_force' and condition == 1 and session == 4").iloc[0]
    t = "alliance_patient"
    w = pd.Series({t: 1.0, f"{t}:condition": 1.0, f"{t}:session": 4.0,
                   f"{t}:condition:session": 4.0})
    b, V = res.params[w.index], res.cov_params().loc[w.index, w.index]
    assert row["estimate"] == pytest.approx(float(w @ b))
    assert row["std_error"] == pytest.approx(float(np.sqrt(w @ V @ w)))
    # the headline is at the first observed session (session 0 does not exist)
    assert res.reference_point == {"condition": 0, "session": 1}
    assert res.truth_force["estimate"] == pytest.approx(res.params[t]
                                                        + res.params[f"{t}:session"])
    assert res.bias_force is None


def test_categorical_moderator_gets_dummies() -> None:
    df = _toy(8)
    arm = df["condition"].map({0: "control", 1: "trained"})
    res = fit_quietly(df.assign(arm=arm), **ROLES, moderators="arm")
    assert "alliance_patient:arm[trained]" in res.params.index
    eff = res.effects_at(arm=["control", "trained"])
    numeric = fit_quietly(df, **ROLES, moderators="condition").effects_at(condition=[0, 1])
    np.testing.assert_allclose(eff["estimate"], numeric["estimate"], rtol=1e-6)
    with pytest.raises(ValueError, match="levels"):
        res.effects_at(arm="Trained")
    with pytest.raises(ValueError, match="Did you mean 'arm'"):
        res.effects_at(ar=1)


@pytest.mark.parametrize("model", ["tb_intercept", "tb_slopes_uncorrelated", "tb_bias"])
def test_statsmodels_engine_agrees_with_the_default_engine(model: str) -> None:
    # engine="statsmodels" is a genuine MixedLM fit: an independent optimiser of the
    # same criterion must reach the same optimum as the default engine (and lme4).
    data = pd.read_csv(REF / "data" / "tb_small.csv")
    fast = fit_quietly(data, **ROLES, **TB_MODELS[model])
    sm = fit_quietly(data, **ROLES, **TB_MODELS[model], engine="statsmodels")
    assert sm.engine == "statsmodels"
    assert sm.mixedlm is not None
    assert sm.llf == pytest.approx(fast.llf, abs=1e-5)
    np.testing.assert_allclose(sm.params, fast.params, rtol=1e-3, atol=1e-6)
    np.testing.assert_allclose(sm.bse, fast.bse, rtol=1e-3)
    # lme4's logLik and isSingular (its estimates are compared with the default engine)
    assert_fit_statistics(sm, R["datasets"]["small"][model]["REML"])


def test_statsmodels_engine_refuses_correlated_patient_slopes() -> None:
    with pytest.raises(ValueError, match="statsmodels MixedLM cannot fit correlated"):
        fit_truth_bias(_toy(9), **ROLES, random="slopes", engine="statsmodels")


def test_result_surface() -> None:
    df = _toy(9)
    res = fit_truth_bias(df, **ROLES, moderators="condition", time="session")
    text = str(res.summary())
    for part in ("Truth-and-bias", "directional_bias", "truth_force", "Random effects",
                 "centred on the truth mean", "(1 | therapist:patient)"):
        assert part in text
    assert "<table" in res._repr_html_()
    tidy = res.to_frame()
    assert set(tidy["component"]) == {"fixed", "truth_bias", "variance"}
    assert res.roles["judgment"] == "alliance_therapist"
    assert res.method == "REML"
    assert res.engine == "fast"  # the default engine
    assert res.mixedlm is None
    with pytest.raises(AttributeError):
        res.foo = 1  # type: ignore[attr-defined]


# -- recovery -------------------------------------------------------------------------------
def test_recovers_truth_force_and_its_moderation() -> None:
    df = simulate_prn(160, 480, 6, rng=2024)
    p = df.attrs["params"]
    res = fit_truth_bias(df, **ROLES, moderators=["condition", "session"])
    t = "alliance_patient"
    # simulator: force(c, s) = g10 + g11 c + (g12 + g13 c)(session - 1)
    for name, truth in {f"{t}:condition:session": p["gamma13"],
                        f"{t}:session": p["gamma12"]}.items():
        assert abs(res.params[name] - truth) < 3 * res.bse[name], name
    eff = res.effects_at(condition=[0, 1], session=[1, 6])
    for _, row in eff[eff["effect"] == "truth_force"].iterrows():
        c, s = row["condition"], row["session"]
        truth = p["gamma10"] + p["gamma11"] * c + (p["gamma12"] + p["gamma13"] * c) * (s - 1)
        assert abs(row["estimate"] - truth) < 3 * row["std_error"]


# -- bad input ------------------------------------------------------------------------------
def test_bad_input_messages() -> None:
    df = _toy(10)
    with pytest.raises(ValueError, match="Close matches: 'alliance_patient'"):
        fit_truth_bias(df, judgment="alliance_therapist", truth="alliance_patent",
                       groups=["therapist", "patient"])
    with pytest.raises(ValueError, match="zero variance"):
        fit_truth_bias(df.assign(alliance_patient=5.0), **ROLES)
    with pytest.raises(ValueError, match="must be numeric"):
        fit_truth_bias(df.assign(alliance_patient=df["alliance_patient"].astype(str) + "x"),
                       **ROLES)
    one = df.drop_duplicates("therapist")[["therapist", "patient"]]
    with pytest.raises(ValueError, match="exactly one 'patient'"):
        fit_truth_bias(df.merge(one), **ROLES)
    with pytest.raises(ValueError, match="rows share the same"):
        fit_truth_bias(pd.concat([df, df.iloc[:1]]), **ROLES, time="session")
    with pytest.raises(ValueError, match="one role"):
        fit_truth_bias(df, **ROLES, moderators="alliance_patient")
    with pytest.raises(ValueError, match="Did you mean 'slopes'"):
        fit_truth_bias(df, **ROLES, random="slope")


def test_missing_sessions_are_dropped_and_recorded() -> None:
    df = _toy(11)
    holes = df.assign(alliance_patient=df["alliance_patient"].where(df["session"] != 2))
    with pytest.warns(DataWarning, match="Dropped"):
        res = fit_truth_bias(holes, **ROLES)
    assert res.dropped_rows == {"alliance_patient": int((df["session"] == 2).sum())}
    assert res.nobs == int((df["session"] != 2).sum())
    with pytest.raises(ValueError, match="missing='raise'"):
        fit_truth_bias(holes, **ROLES, missing="raise")
    with pytest.raises(ValueError, match="Every row"):
        fit_truth_bias(df.assign(alliance_patient=np.nan), **ROLES)


@st.composite
def small_frames(draw: Any) -> pd.DataFrame:
    n_ther = draw(st.integers(1, 4))
    per = draw(st.integers(1, 3))
    n_ses = draw(st.integers(1, 3))
    rows = [(f"T{t}", f"P{t}_{p}", s) for t in range(n_ther) for p in range(per)
            for s in range(1, n_ses + 1)]
    values = st.one_of(st.floats(1, 7), st.just(np.nan), st.just(4.0))
    return pd.DataFrame({
        "therapist": [r[0] for r in rows], "patient": [r[1] for r in rows],
        "session": [r[2] for r in rows],
        "alliance_therapist": draw(st.lists(values, min_size=len(rows), max_size=len(rows))),
        "alliance_patient": draw(st.lists(values, min_size=len(rows), max_size=len(rows))),
    })


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(small_frames())
def test_small_frames_fit_or_fail_cleanly_and_are_not_mutated(df: pd.DataFrame) -> None:
    before = df.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DataWarning / BoundaryFitWarning are fine here
        with contextlib.suppress(TypeError, ValueError):
            fit_truth_bias(df, **ROLES, time="session")
    pd.testing.assert_frame_equal(df, before)


# -- the default random structure (West & Kenny: random truth force) -------------------------
def test_default_simulation_is_unchanged_bit_for_bit() -> None:
    # PRNParams gained the therapist-level truth force (default 0): the data of every
    # earlier seed are unchanged (hash of simulate_prn before the fields existed)
    import hashlib

    df = simulate_prn(40, 117, 6, p_missing=0.1, rng=20240611)
    text = df.to_csv(index=False, float_format="%.17g").encode()
    assert hashlib.sha256(text).hexdigest() == \
        "bb375f7f68d7058452c2807b1ba833f9efec6fb86b87af0363ecbbeae7ee8663"
    zero = simulate_prn(40, 117, 6, p_missing=0.1, rng=20240611,
                        params={"sd_truth_force_therapist": 0.0,
                                "sd_truth_force_growth_therapist": 0.0})
    pd.testing.assert_frame_equal(df, zero, check_like=False)


def test_therapist_truth_force_changes_only_the_judgment() -> None:
    base = simulate_prn(10, 30, 4, rng=8)
    varied = simulate_prn(10, 30, 4, rng=8, params={"sd_truth_force_therapist": 0.5,
                                                     "sd_truth_force_growth_therapist": 0.1})
    pd.testing.assert_frame_equal(base.drop(columns=["alliance_therapist", "wellbeing"]),
                                  varied.drop(columns=["alliance_therapist", "wellbeing"]))
    assert not np.allclose(base["alliance_therapist"], varied["alliance_therapist"])


def test_default_random_keeps_a_therapist_truth_force_that_is_there() -> None:
    df = simulate_prn(40, 117, 6, rng=31, params={"sd_truth_force_therapist": 0.4})
    res = fit_quietly(df, **ROLES, moderators=["condition", "session"])
    vc = res.variance_components.set_index(["level", "term"])
    assert ("therapist", "alliance_patient") in vc.index
    assert vc.loc[("therapist", "alliance_patient"), "sd"] > 0.2
    assert "(1 + I(alliance_patient - " in res.formula.split("| therapist)")[0]
    assert "Random part: the recommended structure" in str(res.summary())


def test_default_random_falls_back_and_says_why() -> None:
    df = simulate_prn(rng=1)  # no therapist-level truth force: its variance is ~0
    res = fit_truth_bias(df, **ROLES, moderators=["condition", "session"])
    assert not res.is_singular
    steps = res.random_fallback
    assert steps
    assert steps[-1]["level"] == "therapist"
    assert steps[-1] == {"level": "therapist", "term": "alliance_patient",
                         "action": "dropped",
                         "reason": "its variance was estimated at 0 (boundary fit)"}
    assert res.formula.endswith(
        "(1 | therapist) + (1 + I(alliance_patient - "
        f"{res.centering['truth_mean']:.10g}) | therapist:patient)")
    text = str(res.summary())
    assert "gave a singular fit and was simplified" in text
    assert "therapist: alliance_patient dropped, as its variance was estimated at 0" in text
    # an explicit structure is kept as asked, singular or not
    with pytest.warns(BoundaryFitWarning):
        explicit = fit_truth_bias(df, **ROLES, moderators=["condition", "session"],
                                  random="slopes")
    assert explicit.is_singular
    assert explicit.random_fallback == []


@pytest.mark.slow
def test_default_random_calibrates_truth_by_condition_when_force_varies() -> None:
    # issue: with a therapist-level truth-force SD of 0.25 and no effect, random intercepts
    # reject truth:condition in ~14%; the default must be within the binomial 99% interval
    # of 0.05 (150 replicates: at most 15 rejections). Full simulation:
    # benchmarks/sim_truth_bias_type1.py
    null = {"gamma01": 0.0, "gamma03": 0.0, "gamma11": 0.0, "gamma13": 0.0,
            "sd_truth_force_therapist": 0.25}
    n, rejections = 150, 0
    for i in range(n):
        df = simulate_prn(40, 117, 6, params=null, rng=7000 + i)
        res = fit_quietly(df, **ROLES, moderators=["condition", "session"])
        rejections += res.pvalues["alliance_patient:condition"] < 0.05
    from scipy import stats

    low, high = stats.binom.ppf([0.005, 0.995], n, 0.05)
    assert low <= rejections <= high, rejections


def test_within_dyad_reports_within_and_between_truth_force() -> None:
    df = _toy(12)
    res = fit_quietly(df, **ROLES, moderators="condition", center="within_dyad",
                      random="intercept")
    between = res.truth_force_between
    assert between is not None
    assert between["estimate"] == pytest.approx(res.params["alliance_patient_between"])
    assert res.truth_force["estimate"] == pytest.approx(res.params["alliance_patient"])
    table = res.effects_at(condition=[0, 1])
    rows = table[table["effect"] == "truth_force_between"]
    assert len(rows) == 2
    np.testing.assert_allclose(rows["estimate"], between["estimate"])
    assert "truth_force_between" in str(res.summary())
    assert fit_quietly(df, **ROLES, random="intercept").truth_force_between is None


def test_center_none_is_the_common_spelling() -> None:
    df = _toy(3)
    plain = fit_truth_bias(df, **ROLES, center=None, random="intercept")
    assert plain.centering == {"method": "none"}
    with pytest.warns(FutureWarning, match="center=None"):
        old = fit_truth_bias(df, **ROLES, center="none", random="intercept")
    np.testing.assert_allclose(old.params, plain.params)


def test_default_random_with_ar1_residuals() -> None:
    # the fallback refits keep the residual structure
    df = simulate_prn(rng=1)
    res = fit_truth_bias(df, **ROLES, moderators=["condition", "session"], time="session",
                         residual="ar1")
    assert res.random_fallback
    assert "phi" in res.residual_params.index
    assert not res.is_singular
