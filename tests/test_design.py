"""The design layer through the two multilevel fits: names are labels (never identities),
runnable formulas, reference levels, grouping order, duplicated occasions, any hashable
column name."""

from __future__ import annotations

import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alliancestats import fit_growth, fit_truth_bias, simulate_prn, stack_raters
from alliancestats.design import (
    Moderator,
    RandomStructure,
    check_group_order,
    check_identifiable,
    checked_crossed_columns,
    r_name,
    r_shifted,
    simplify_random,
    structure_formula,
    warn_duplicate_rows,
)
from alliancestats.exceptions import BoundaryFitWarning, DataWarning

REF = Path(__file__).parent / "reference"
TB = {"judgment": "alliance_therapist", "truth": "alliance_patient",
      "groups": ["therapist", "patient"]}
RATINGS = {"therapist": "alliance_therapist", "patient": "alliance_patient"}


def quiet(fn: Any, *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        warnings.simplefilter("ignore", DataWarning)
        return fn(*args, **kwargs)


@pytest.fixture(scope="module")
def prn() -> pd.DataFrame:
    return simulate_prn(16, 48, 5, rng=3)


# -- issue: names that clash with generated terms never change the model --------------------
CLASHES = [
    ("truth named Intercept", {"alliance_patient": "Intercept"},
     {"truth": "Intercept"}),
    ("moderator named Intercept", {"condition": "Intercept"},
     {"moderators": ["Intercept"]}),
    ("moderator named like a product", {"session": "alliance_patient:condition"},
     {"moderators": ["condition", "alliance_patient:condition"]}),
]


@pytest.mark.parametrize(("label", "rename", "roles"), CLASHES, ids=[c[0] for c in CLASHES])
def test_truth_bias_refuses_names_that_clash_with_generated_terms(
        prn: pd.DataFrame, label: str, rename: dict[str, str], roles: dict[str, Any]) -> None:
    kwargs = {**TB, **roles, "random": "intercept"}
    with pytest.raises(ValueError, match="Two terms of the model would both be called"):
        fit_truth_bias(prn.rename(columns=rename), **kwargs)


def test_dummy_name_clash_is_refused(prn: pd.DataFrame) -> None:
    # a numeric column called "arm[trained]" next to a categorical arm
    data = prn.assign(arm=prn["condition"].map({0: "control", 1: "trained"}),
                      **{"arm[trained]": prn["session"] * 1.0})
    with pytest.raises(ValueError, match=r"'arm\[trained\]'.*Rename the column"):
        fit_truth_bias(data, **TB, moderators=["arm", "arm[trained]"], random="intercept")


def test_between_truth_name_clash_is_refused(prn: pd.DataFrame) -> None:
    # within-dyad centring adds alliance_patient_between; a moderator of that name was
    # silently overwritten
    data = prn.assign(alliance_patient_between=prn["session"] * 1.0)
    with pytest.raises(ValueError, match="already the name of a term"):
        fit_truth_bias(data, **TB, moderators="alliance_patient_between",
                       center="within_dyad", random="intercept")


def test_growth_time_named_intercept_is_refused(prn: pd.DataFrame) -> None:
    # with rater-stacked data the fixed design has no intercept column, and a time column
    # called "Intercept" used to replace the random intercept silently
    long = stack_raters(prn, ratings=RATINGS).rename(columns={"session": "Intercept"})
    with pytest.raises(ValueError, match="name of the random intercept"):
        fit_growth(long, outcome="alliance", time="Intercept", rater="rater",
                   groups=["therapist", "patient"], random="slopes")


def test_distinct_columns_that_print_alike_are_refused(prn: pd.DataFrame) -> None:
    # groups 1.5 and "1.5" used to become one level (the therapist level vanished)
    data = prn.rename(columns={"therapist": 1.5, "patient": "1.5"})
    with pytest.raises(ValueError, match=r"same printed name '1\.5'"):
        fit_growth(data, outcome="alliance_patient", time="session", groups=[1.5, "1.5"],
                   random="intercept")


_NAMES = st.one_of(
    st.integers(-3, 3), st.floats(-2, 2, allow_nan=False).map(lambda v: round(v, 1)),
    st.sampled_from(["Intercept", "a:b", "x[1]", "None", "WAI T", "", "truth", "session",
                     "condition[1]", "Intercept:condition"]),
)


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow,
                                                                  HealthCheck.function_scoped_fixture])
@given(st.lists(_NAMES, min_size=5, max_size=5, unique_by=lambda v: (type(v), v)))
def test_any_names_fit_the_same_model_or_are_refused(prn: pd.DataFrame,
                                                     names: list[Any]) -> None:
    # Property: whatever the column names, the fit is the one with plain names
    # (coefficients by position) or a clear ValueError; never another model.
    cols = ["therapist", "patient", "alliance_therapist", "alliance_patient", "condition"]
    data = prn[[*cols, "session"]].rename(columns=dict(zip(cols, names, strict=True)))
    t, p, j, tr, c = names
    base = quiet(fit_truth_bias, prn, **TB, moderators="condition", random="intercept")
    message = ""
    try:
        res = quiet(fit_truth_bias, data, judgment=j, truth=tr, groups=[t, p],
                    moderators=c, random="intercept")
    except ValueError as err:
        message = str(err)
    if message:
        assert "Rename" in message or "same printed name" in message, message
        return
    np.testing.assert_allclose(res.params.to_numpy(), base.params.to_numpy(), rtol=1e-8)
    np.testing.assert_allclose(res.bse.to_numpy(), base.bse.to_numpy(), rtol=1e-8)
    assert res.llf == pytest.approx(base.llf, rel=1e-10)


def test_integer_column_names_from_a_headerless_csv(prn: pd.DataFrame, tmp_path: Path
                                                    ) -> None:
    path = tmp_path / "export.csv"
    prn.to_csv(path, header=False, index=False)
    raw = pd.read_csv(path, header=None)
    col = {name: raw.columns[i] for i, name in enumerate(prn.columns)}
    fits = {}
    for engine in ("fast", "statsmodels"):
        tb = quiet(fit_truth_bias, raw, judgment=col["alliance_therapist"],
                   truth=col["alliance_patient"],
                   groups=[col["therapist"], col["patient"]], moderators=[col["condition"]],
                   random="intercept", engine=engine)
        gr = quiet(fit_growth, raw, outcome=col["alliance_patient"], time=col["session"],
                   groups=[col["therapist"], col["patient"]], moderators=[col["condition"]],
                   random="intercept", engine=engine)
        assert tb.n_groups == {str(col["therapist"]): 16, str(col["patient"]): 48}
        assert gr.nobs == len(raw)
        fits[engine] = tb
    named = quiet(fit_truth_bias, prn, **TB, moderators="condition", random="intercept")
    np.testing.assert_allclose(fits["fast"].params.to_numpy(), named.params.to_numpy(),
                               rtol=1e-8)


# -- issue: duplicated rows --------------------------------------------------------------------
def test_duplicated_rows(prn: pd.DataFrame) -> None:
    doubled = pd.concat([prn, prn])
    with pytest.warns(DataWarning, match="exact copies"):
        quiet_boundary(fit_truth_bias, doubled, **TB, random="intercept")
    with pytest.raises(ValueError, match="rows share the same"):
        fit_truth_bias(doubled, **TB, time="session", random="intercept")
    with pytest.raises(ValueError, match="rows share the same"):
        fit_growth(doubled, outcome="alliance_patient", time="session",
                   groups=["therapist", "patient"])
    with pytest.raises(ValueError, match="rows share the same"):
        fit_growth(stack_raters(doubled, ratings=RATINGS), outcome="alliance",
                   time="session", rater="rater", groups=["therapist", "patient"])


def quiet_boundary(fn: Any, *args: Any, **kwargs: Any) -> Any:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", BoundaryFitWarning)
        return fn(*args, **kwargs)


def lab_export(seed: int = 4) -> pd.DataFrame:
    """A lab-style export: client ids restarting at 1 within each therapist, unequal
    caseloads, text arm labels."""
    df = simulate_prn(20, 50, 5, rng=seed)
    df = df.assign(ClientID=df.groupby("therapist")["patient"].rank(method="dense")
                   .astype(int),
                   Therapist_ID=df["therapist"].astype("category").cat.codes + 101,
                   Group=df["condition"].map({0: "control", 1: "training"}))
    return df


def test_ids_restarting_within_therapists_hint() -> None:
    df = lab_export()
    assert df.groupby("ClientID")["Therapist_ID"].nunique().max() > 1
    with pytest.raises(ValueError, match="restart within an outer unit"):
        fit_growth(df, outcome="alliance_patient", time="session", groups="ClientID")
    with pytest.raises(ValueError, match="restart within an outer unit"):
        fit_truth_bias(df, judgment="alliance_therapist", truth="alliance_patient",
                       groups="ClientID", time="session", random="intercept")


# -- issue: inner-first groups ----------------------------------------------------------------
def test_inner_first_groups_are_refused() -> None:
    df = lab_export()
    with pytest.raises(ValueError, match=r"'Therapist_ID' is not nested in 'ClientID'.*"
                                         r"groups=\['Therapist_ID', 'ClientID'\]"):
        fit_growth(df, outcome="alliance_patient", time="session",
                   groups=["ClientID", "Therapist_ID"])
    # globally unique ids, inner first
    with pytest.raises(ValueError, match="outer first"):
        fit_truth_bias(df, judgment="alliance_therapist", truth="alliance_patient",
                       groups=["patient", "therapist"], random="intercept")
    # the right order fits
    res = quiet(fit_growth, df, outcome="alliance_patient", time="session",
                groups=["Therapist_ID", "ClientID"], random="intercept")
    assert res.n_groups == {"Therapist_ID": 20, "ClientID": 50}


def test_group_order_is_ambiguous_with_equal_caseloads() -> None:
    # every therapist has clients 1..3: the data cannot tell the order, so nothing raises
    frame = pd.DataFrame({"t": np.repeat(np.arange(5), 3), "c": np.tile([1, 2, 3], 5)})
    check_group_order(frame, ["t", "c"])
    check_group_order(frame, ["c", "t"])


# -- issue: runnable formulas (frozen lme4 fits of the printed formulas) --------------------
FORMULA_REF = json.loads((REF / "results" / "formula_reference.json").read_text())
R_NAMES = {
    "(Intercept)": "Intercept",
    "I(alliance_patient - 5.3219025)": "alliance_patient",
    "I(alliance_patient - ave(alliance_patient, therapist, patient))": "alliance_patient",
    "I(ave(alliance_patient, therapist, patient) - 5.3219025)": "alliance_patient_between",
    'relevel(factor(arm), ref = "usual care")trained': "arm[trained]",
    "I(session - 1)": "session",
    "I(`WAI C` - 5.3219025)": "WAI C",
}


def _ours(name: str) -> frozenset[str]:
    for r, ours in R_NAMES.items():
        name = name.replace(r, ours)
    return frozenset(name.split(":"))


def _formula_fits() -> dict[str, Any]:
    d = pd.read_csv(REF / "data" / "tb_small.csv")
    d["arm"] = d["condition"].map({0: "usual care", 1: "trained"})
    named = d.rename(columns={"alliance_therapist": "WAI T", "alliance_patient": "WAI C"})
    return {
        "tb_arm": lambda: fit_truth_bias(d, **TB, moderators=["arm", "session"],
                                         random="slopes_uncorrelated",
                                         reference={"arm": "usual care"}),
        "growth_arm": lambda: fit_growth(d, outcome="alliance_patient", time="session",
                                         groups=TB["groups"], moderators="arm",
                                         random="slopes_uncorrelated",
                                         reference={"arm": "usual care"}),
        "tb_within": lambda: fit_truth_bias(d, **TB, moderators="condition",
                                            center="within_dyad", random="intercept"),
        "tb_names": lambda: fit_truth_bias(named, judgment="WAI T", truth="WAI C",
                                           groups=TB["groups"], moderators="condition",
                                           random="slopes"),
    }


@pytest.mark.reference
@pytest.mark.parametrize("case", list(FORMULA_REF["cases"]))
def test_printed_formula_runs_as_printed_in_lme4(case: str) -> None:
    ref = FORMULA_REF["cases"][case]
    res = quiet(_formula_fits()[case])
    # R ran exactly the text we print: lmer(<res.formula>, REML = TRUE)
    assert res.formula == ref["formula"]
    ours = {frozenset(k.split(":")): v for k, v in res.params.items()}
    for name, value in ref["fixef"].items():  # fixef(fit)
        assert ours[_ours(name)] == pytest.approx(value, rel=1e-4, abs=1e-7), name
    assert res.llf == pytest.approx(ref["logLik"], abs=1e-5)  # logLik(fit)


def test_r_text_helpers() -> None:
    assert r_name("Group") == "Group"
    assert r_name("WAI T") == "`WAI T`"
    assert r_name(0) == "`0`"
    assert r_name("NULL") == "`NULL`"
    assert r_shifted("Sess", 1.0) == "I(Sess - 1)"
    s = RandomStructure.from_choice(2, "x", "slopes_uncorrelated")
    assert structure_formula(["g", "h"], s, {"x": "I(x - 1)"}) == \
        "(1 + I(x - 1) | g) + (1 + I(x - 1) || g:h)"
    assert structure_formula(["g"], RandomStructure(((("x",), True),)), {}) == "(0 + x | g)"


# -- issue: reference levels ------------------------------------------------------------------
def test_reference_level_is_chosen_printed_and_flips_signs() -> None:
    df = lab_export().assign(Group=lambda d: d["condition"].map({0: "usual care",
                                                                 1: "trained"}))
    kw = {"judgment": "alliance_therapist", "truth": "alliance_patient",
          "groups": ["Therapist_ID", "ClientID"], "random": "intercept"}
    alpha = quiet(fit_truth_bias, df, **kw, moderators="Group")
    chosen = quiet(fit_truth_bias, df, **kw, moderators="Group",
                   reference={"Group": "usual care"})
    assert alpha.reference_levels == {"Group": "trained"}  # alphabetical
    assert chosen.reference_levels == {"Group": "usual care"}
    assert "Group[trained]" in chosen.params.index
    assert chosen.params["Group[trained]"] == pytest.approx(
        -alpha.params["Group[usual care]"], rel=1e-6)
    assert "Reference levels : Group = 'usual care'" in str(chosen.summary())
    cat = df.assign(Group=pd.Categorical(df["Group"], ["usual care", "trained"]))
    ordered = quiet(fit_truth_bias, cat, **kw, moderators="Group")
    assert ordered.reference_levels == {"Group": "usual care"}
    growth = quiet(fit_growth, df, outcome="alliance_patient", time="session",
                   groups=["Therapist_ID", "ClientID"], moderators="Group",
                   reference={"Group": "usual care"}, random="intercept")
    assert "session:Group[trained]" in growth.params.index
    assert "Group = 'usual care'" in str(growth.summary())
    with pytest.raises(ValueError, match="Did you mean 'usual care'"):
        fit_truth_bias(df, **kw, moderators="Group", reference={"Group": "usual-care"})
    with pytest.raises(ValueError, match="not a moderator"):
        fit_truth_bias(df, **kw, moderators="Group", reference={"Arm": "x"})
    with pytest.raises(ValueError, match="numeric"):
        fit_truth_bias(df, **kw, moderators="condition", reference={"condition": 0})


def test_moderator_reference_and_observed_values() -> None:
    frame = pd.DataFrame({"g": ["b", "a", "c"], "x": [2.0, 3.0, 5.0], "z": [-1.0, 0.0, 1.0]})
    assert Moderator.from_data(frame, "g", "c").levels == ("c", "a", "b")
    assert Moderator.from_data(frame, "x").reference_value(frame) == 2.0
    assert Moderator.from_data(frame, "z").reference_value(frame) == 0
    many = pd.DataFrame({"x": np.arange(20.0)})
    assert Moderator.from_data(many, "x").observed(many) == [0.0, 4.75, 9.5, 14.25, 19.0]


# -- issue: headline at an observed session; time as moderator; moderator values --------------
def test_headline_is_at_the_first_session_and_says_so(prn: pd.DataFrame) -> None:
    res = quiet(fit_truth_bias, prn, **TB, moderators=["condition", "session"],
                random="intercept")
    assert res.reference_point == {"condition": 0, "session": 1}
    at_first = res.effects_at(condition=0, session=1).set_index("effect")
    assert res.truth_force["estimate"] == pytest.approx(at_first.loc["truth_force",
                                                                      "estimate"])
    text = str(res.summary())
    assert "at condition=0, session=1 (its smallest observed value; 0 is not observed)" \
        in text


def test_time_may_also_be_a_moderator(prn: pd.DataFrame) -> None:
    res = quiet(fit_truth_bias, prn, **TB, moderators=["condition", "session"],
                time="session", random="intercept")
    assert "alliance_patient:condition:session" in res.params.index
    with pytest.raises(ValueError, match="one role"):
        fit_truth_bias(prn, **TB, moderators="therapist")


def test_results_record_moderator_values(prn: pd.DataFrame) -> None:
    df = prn.assign(arm=prn["condition"].map({0: "control", 1: "training"}))
    res = quiet(fit_truth_bias, df, **TB, moderators=["arm", "session"], random="intercept")
    assert res.moderator_values == {"arm": ["control", "training"],
                                    "session": [1, 2, 3, 4, 5]}
    growth = quiet(fit_growth, df, outcome="alliance_patient", time="session",
                   groups=TB["groups"], moderators="arm", random="intercept")
    assert growth.moderator_values == {"arm": ["control", "training"]}


# -- the default random structure and its fallback ----------------------------------------
def test_simplify_random_steps() -> None:
    s = RandomStructure.from_choice(2, "x", "slopes")
    cov = {"g": pd.DataFrame([[1.0, 1.0], [1.0, 1.0]], index=["Intercept", "x"],
                             columns=["Intercept", "x"]),
           "h": pd.DataFrame([[1.0, 0.0], [0.0, 1e-12]], index=["Intercept", "x"],
                             columns=["Intercept", "x"])}
    step = simplify_random(s, ["g", "h"], cov, 1.0, 1e-4)
    assert step is not None
    s2, record = step
    assert record["action"] == "correlation dropped"
    assert record["level"] == "g"
    assert s2.levels[0] == (("Intercept", "x"), False)
    cov["g"] = pd.DataFrame(np.eye(2), index=["Intercept", "x"], columns=["Intercept", "x"])
    s3, record = simplify_random(s2, ["g", "h"], cov, 1.0, 1e-4)  # type: ignore[misc]
    assert record == {"level": "h", "term": "x", "action": "dropped",
                      "reason": "its variance was estimated at 0 (boundary fit)"}
    assert s3.levels[1] == (("Intercept",), True)
    # an intercept with variance 0 is kept (dropping the slope would not cure it)
    cov["h"] = pd.DataFrame([[0.0, 0.0], [0.0, 1.0]], index=["Intercept", "x"],
                            columns=["Intercept", "x"])
    assert simplify_random(s2, ["g", "h"], cov, 1.0, 1e-4) is None


def test_growth_with_odd_names_fits_the_same_model(prn: pd.DataFrame) -> None:
    long = stack_raters(prn, ratings=RATINGS)
    base = quiet(fit_growth, long, outcome="alliance", time="session", rater="rater",
                 groups=["therapist", "patient"], moderators="condition", random="slopes")
    odd = long.rename(columns={"alliance": "Intercept", "session": 0, "rater": "a:b",
                               "therapist": "x[1]", "patient": 2, "condition": "None"})
    res = quiet(fit_growth, odd, outcome="Intercept", time=0, rater="a:b",
                groups=["x[1]", 2], moderators="None", random="slopes")
    np.testing.assert_allclose(res.params.to_numpy(), base.params.to_numpy(), rtol=1e-8)
    assert res.formula.startswith("Intercept ~ 0 + `a:b` / (I(`0` - 1) * None)")
    assert res.n_groups == {"x[1]": 16, "2": 48}


# -- the array-level path of the model calls --------------------------------------------------
def test_duplicate_rows_probe_never_hides_copies() -> None:
    # rows equal in every column, with missing values and signed zeros in the probed
    # ratings: the probe must let the full comparison run (and warn)
    df = pd.DataFrame({"j": [1.0, np.nan, -0.0, 2.0], "t": [3.0, np.nan, 1.0, 4.0],
                       "g": ["a", "b", "c", "d"]})
    copies = pd.concat([df, df.assign(j=df["j"].abs())])
    with pytest.warns(DataWarning, match="4 of 8 rows of `data` are exact copies"):
        warn_duplicate_rows(copies, probe=["j", "t"])
    # rows that agree on the probe but differ elsewhere: no warning
    near = pd.DataFrame({"j": [1.0, 1.0], "t": [2.0, 2.0], "g": ["a", "b"]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        warn_duplicate_rows(near, probe=["j", "t"])
        warn_duplicate_rows(df, probe=["j", "t"])


@given(st.lists(st.tuples(st.sampled_from([0.0, -0.0, 1.5, np.nan]),
                          st.sampled_from(["a", "b"])), min_size=1, max_size=8))
@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
def test_duplicate_rows_probe_agrees_with_full_check(rows: list[tuple[float, str]]) -> None:
    df = pd.DataFrame(rows, columns=["x", "g"])
    with warnings.catch_warnings(record=True) as full:
        warnings.simplefilter("always")
        warn_duplicate_rows(df)
    with warnings.catch_warnings(record=True) as probed:
        warnings.simplefilter("always")
        warn_duplicate_rows(df, probe=["x"])
    assert [str(w.message) for w in probed] == [str(w.message) for w in full]


def test_moderator_arrays_match_columns(prn: pd.DataFrame) -> None:
    frame = prn.assign(arm=prn["condition"].map({0: "usual", 1: "trained"}))
    for col in ("session", "arm"):
        m = Moderator.from_data(frame, col)
        arrays = m.arrays(frame)
        table = m.columns(frame)
        assert list(arrays) == list(table.columns)
        for name, values in arrays.items():
            np.testing.assert_array_equal(values, table[name].to_numpy(dtype=float))


def test_checked_crossed_columns_refuses_clashes() -> None:
    cond = Moderator("condition")
    X, names, _ = checked_crossed_columns({None: None, "t": np.array([1.0, 2.0])},
                                          {"condition": np.array([0.0, 1.0])}, [cond], 2)
    assert X[:, 3].tolist() == [0.0, 2.0]
    assert names == ["Intercept", "condition", "t", "t:condition"]
    with pytest.raises(ValueError, match="would both be called 'Intercept'"):
        checked_crossed_columns({None: None, "Intercept": np.array([1.0, 2.0])}, {}, [], 2)


@pytest.mark.parametrize(("groups", "message"), [
    (["t", "c"], None),
    (["c", "t"], "outer first"),
])
def test_group_checks_from_codes_agree_with_groupby(groups: list[str],
                                                    message: str | None) -> None:
    # patients with globally unique ids, two to three per therapist
    frame = pd.DataFrame({"t": ["x", "x", "y", "y", "y", "z", "z"],
                          "c": ["p1", "p2", "p3", "p4", "p5", "p6", "p7"]})
    if message is None:
        check_group_order(frame, groups)
    else:
        with pytest.raises(ValueError, match=message):
            check_group_order(frame, groups)


def test_identifiability_from_codes() -> None:
    one_each = pd.DataFrame({"t": ["a", "a", "b", "b"], "c": ["1", "1", "2", "2"]})
    with pytest.raises(ValueError, match="exactly one 'c'"):
        check_identifiable(one_each, ["t", "c"])
    single_rows = pd.DataFrame({"t": ["a", "a", "b", "b"], "c": ["1", "2", "3", "4"]})
    with pytest.raises(ValueError, match="single analysed row"):
        check_identifiable(single_rows, ["t", "c"])
    # patient ids restarting within therapists are different patients
    check_identifiable(pd.DataFrame({"t": ["a"] * 4 + ["b"] * 4,
                                     "c": ["1", "1", "2", "2"] * 2}), ["t", "c"])
