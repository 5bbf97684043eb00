"""Input validation: every message pinned; only TypeError/ValueError ever escape."""

from __future__ import annotations

import contextlib
import warnings

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import pandas as hpd

from alliancestats import add_lags, center_pooled, stack_raters
from alliancestats._validation import (
    as_generator,
    check_choice,
    check_groups,
    check_nested,
    check_unique_rows,
    check_variance,
    handle_missing,
    require_columns,
    require_frame,
    require_numeric,
)
from alliancestats.exceptions import AllianceStatsWarning, DataWarning


def test_require_frame() -> None:
    with pytest.raises(TypeError, match=r"`data` must be a pandas DataFrame; got list"):
        require_frame([1, 2])
    with pytest.raises(ValueError, match="`data` has no rows"):
        require_frame(pd.DataFrame({"a": []}))
    dup = pd.DataFrame([[1, 2]], columns=["a", "a"])
    with pytest.raises(ValueError, match="duplicate column names: 'a'"):
        require_frame(dup)


def test_require_columns_suggests_close_matches() -> None:
    df = pd.DataFrame({"patient_WAI": [1.0], "therapist": ["a"]})
    with pytest.raises(
        ValueError,
        match=r"`truth` refers to column 'patient_wai', which is not in `data`\. "
        r"Close matches: 'patient_WAI'",
    ):
        require_columns(df, {"truth": "patient_wai"})
    require_columns(df, {"truth": "patient_WAI", "bias": None, "groups": ["therapist"]})


def test_require_numeric_reports_dtype_and_examples() -> None:
    df = pd.DataFrame({"ther": ["4,5", "n/a", "5"], "inf": [1.0, np.inf, 2.0]})
    with pytest.raises(ValueError, match=r"`judgment` column 'ther' must be numeric; got "
                       r"dtype .* \(e\.g\. '4,5', 'n/a'\)\. Convert it with pandas\.to_numeric"):
        require_numeric(df, {"judgment": "ther"})
    with pytest.raises(ValueError, match="contains infinite values"):
        require_numeric(df, {"truth": "inf"})
    require_numeric(pd.DataFrame({"b": [True, False]}), {"x": "b"})


def test_check_choice() -> None:
    assert check_choice("full", "model", ["full", "SQD"]) == "full"
    with pytest.raises(ValueError, match=r"`model` must be one of .*got 'fulll'\. "
                       r"Did you mean 'full'\?"):
        check_choice("fulll", "model", ["full", "SQD"])
    with pytest.raises(TypeError, match="`model` must be a string"):
        check_choice(3, "model", ["full"])


def test_handle_missing_counts_and_warns_once() -> None:
    df = pd.DataFrame({"x": [1.0, np.nan, 3.0, np.nan], "y": [1.0, 2.0, np.nan, np.nan]})
    with pytest.warns(DataWarning, match=r"Dropped 3 of 4 rows .*'x': 2, 'y': 2") as rec:
        clean, counts = handle_missing(df, ["x", "y"])
    assert len(rec) == 1
    assert counts == {"x": 2, "y": 2}
    assert len(clean) == 1
    assert df.shape == (4, 2)
    with pytest.raises(ValueError, match="missing='raise'"):
        handle_missing(df, ["x"], "raise")
    with pytest.raises(ValueError, match="Every row of `data` has a missing value"):
        handle_missing(df.iloc[[1, 3]], ["x"])
    with pytest.raises(ValueError, match="`missing` must be one of"):
        handle_missing(df, ["x"], "omit")
    _same, none = handle_missing(df.dropna(), ["x", "y"])
    assert none == {}


def test_structure_checks() -> None:
    df = pd.DataFrame({"g": ["a", "a", "b"], "t": [1, 1, 2], "x": [2.0, 2.0, 2.0]})
    with pytest.raises(ValueError, match="`truth` column 'x' has zero variance"):
        check_variance(df, "x", "truth")
    with pytest.raises(ValueError, match="has no non-missing values"):
        check_variance(df.assign(x=np.nan), "x", "truth")
    with pytest.raises(ValueError, match=r"`groups` column 'g' has 1 distinct value"):
        check_groups(df.iloc[:2], ["g"])
    with pytest.raises(ValueError, match="1 missing labels"):
        check_groups(df.assign(g=["a", None, "b"]), ["g"])
    with pytest.raises(ValueError, match=r"2 rows share the same 'g', 't'"):
        check_unique_rows(df, ["g", "t"], "time")


def test_check_nested_warns_on_suspicious_reuse() -> None:
    df = pd.DataFrame({"ther": ["A", "A", "B", "B", "B"], "pat": ["1", "2", "2", "3", "4"]})
    with pytest.warns(DataWarning, match="occur under more than one `ther`"):
        check_nested(df, "ther", "pat")
    reused = pd.DataFrame({"ther": ["A", "A", "B", "B"], "pat": [1, 2, 1, 2]})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        check_nested(reused, "ther", "pat")  # systematic reuse of labels: no warning


def test_as_generator() -> None:
    gen = np.random.default_rng(5)
    assert as_generator(gen) is gen
    assert as_generator(7).random() == np.random.default_rng(7).random()
    assert isinstance(as_generator(None), np.random.Generator)
    with pytest.raises(TypeError, match="`rng` must be None, an int seed"):
        as_generator("seed")
    with pytest.raises(TypeError, match="`rng` must be None"):
        as_generator(True)
    with pytest.raises(ValueError, match="must be non-negative"):
        as_generator(-1)


_names = st.one_of(st.text(max_size=6), st.integers(-3, 3))
_frames = hpd.data_frames(
    columns=hpd.columns(["a", "b", "c"], elements=st.one_of(
        st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=3), st.none())),
    index=hpd.range_indexes(min_size=0, max_size=6),
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(frame=_frames, col=_names, by=_names, time=_names)
def test_validation_is_total(frame: pd.DataFrame, col: object, by: object, time: object) -> None:
    """For arbitrary frames and column names, only TypeError/ValueError escape."""
    before = frame.copy()
    calls = [
        lambda: add_lags(frame, col, by=by, time=time),
        lambda: center_pooled(frame, [col, by]),
        lambda: stack_raters(frame, ratings={"therapist": col, "patient": by}),
    ]
    for call in calls:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AllianceStatsWarning)
            with contextlib.suppress(TypeError, ValueError):
                call()
    pd.testing.assert_frame_equal(frame, before)


def test_close_matches_ignore_case() -> None:
    # a lab export's 'ORS' asked for as 'ors': exact but for case, so it comes first
    df = pd.DataFrame({"Sess": [1], "ORS": [20.0], "ORS_raw": [20.0]})
    with pytest.raises(ValueError, match=r"column 'ors'.*Close matches: 'ORS'"):
        require_columns(df, {"outcome": "ors"})


def test_close_matches_in_a_model_fit() -> None:
    from alliancestats import fit_rsa

    df = pd.DataFrame({"WAI_T": [1.0, 2, 3, 4, 5, 6], "WAI_C": [2.0, 1, 4, 3, 6, 5],
                       "ORS": [1.0, 3, 2, 5, 4, 6]})
    with pytest.raises(ValueError, match=r"`outcome` refers to column 'ors'.*"
                                         r"Close matches: 'ORS'"):
        fit_rsa(df, outcome="ors", x="WAI_T", y="WAI_C")


def test_wide_data_point_to_sessions_to_long() -> None:
    wide = pd.DataFrame({"Therapist_ID": [1], "ClientID": [1],
                         **{f"WAI_T_{s}": [4.0] for s in range(1, 7)},
                         **{f"WAI_C_{s}": [5.0] for s in range(1, 7)}})
    with pytest.raises(ValueError, match=r"`time` refers to column 'Sess'.*look wide.*"
                                         r"WAI_T_1 \.\.\. WAI_T_6.*sessions_to_long\(.*"
                                         r"stubs=\['WAI_C', 'WAI_T'\]"):
        require_columns(wide, {"time": "Sess"})


def test_long_data_get_no_wide_hint() -> None:
    df = pd.DataFrame({"session": [1], "x_1": [1.0]})
    with pytest.raises(ValueError, match="Sess") as info:
        require_columns(df, {"time": "Sess"})
    assert "wide" not in str(info.value)


@pytest.mark.filterwarnings("ignore:Single-level fit:alliancestats.exceptions.DataWarning")
def test_missing_data_warnings_point_at_the_callers_line() -> None:
    import numpy as np

    from alliancestats import box_score, datasets, fit_lagged_rsa, fit_rsa
    from alliancestats.exceptions import DataWarning

    prn = datasets.load("prn").copy()
    prn.loc[prn.index[::17], "wellbeing"] = np.nan
    calls = [
        lambda: fit_lagged_rsa(prn, outcome="wellbeing", x="alliance_therapist",
                               y="alliance_patient", time="session",
                               unit=["therapist", "patient"], groups=None),
        lambda: fit_rsa(prn, outcome="wellbeing", x="alliance_therapist",
                        y="alliance_patient"),
        lambda: box_score(pd.DataFrame({"study": ["a", "b", "c"], "outcome": "o",
                                        "r": [0.1, np.nan, 0.3], "sig": [True, False, True]}),
                          outcome="outcome", effect="r", significant="sig"),
    ]
    for call in calls:
        with pytest.warns(DataWarning, match="Dropped") as record:
            call()
        dropped = [w for w in record if "Dropped" in str(w.message)]
        assert [w.filename for w in dropped] == [__file__]


def test_a_disabled_progress_bar_never_imports_tqdm_auto(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from alliancestats._validation import progress_bar

    # in a Jupyter kernel without ipywidgets, importing tqdm.auto warns (TqdmWarning)
    monkeypatch.setitem(sys.modules, "tqdm.auto", None)
    with progress_bar(False, total=2) as bar:
        bar.update(2)
    with pytest.raises(ImportError):
        progress_bar(True, total=2)
