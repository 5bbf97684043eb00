"""Tests of the data layer: lags, rater stacking, reshaping, centring, file reading."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from alliancestats import (
    add_lags,
    center_grand_mean,
    center_pooled,
    center_within,
    read_data,
    sessions_to_long,
    sessions_to_wide,
    stack_raters,
)
from alliancestats.exceptions import DataWarning


@pytest.fixture
def panel() -> pd.DataFrame:
    # Unsorted rows, two patients sharing label "1" under different therapists, a gap.
    return pd.DataFrame(
        {
            "therapist": ["A", "A", "B", "A", "B", "B", "A"],
            "patient": [1, 1, 1, 1, 1, 1, 2],
            "session": [3, 1, 2, 2, 1, 4, 1],
            "x": [3.0, 1.0, 20.0, 2.0, 10.0, 40.0, 7.0],
        }
    )


class TestAddLags:
    def test_lag_is_value_at_time_minus_lag(self, panel: pd.DataFrame) -> None:
        out = add_lags(panel, "x", by=["therapist", "patient"], time="session")
        expected = [2.0, np.nan, 10.0, 1.0, np.nan, np.nan, np.nan]
        np.testing.assert_array_equal(out["x_lag1"].to_numpy(), expected)

    def test_gap_gives_nan_not_previous_row(self, panel: pd.DataFrame) -> None:
        out = add_lags(panel, "x", by=["therapist", "patient"], time="session")
        # Therapist B patient 1 has sessions 1, 2, 4: session 4 has no session 3.
        row = out[(out.therapist == "B") & (out.session == 4)]
        assert np.isnan(row["x_lag1"].iloc[0])

    def test_lag_two_and_row_order_kept(self, panel: pd.DataFrame) -> None:
        out = add_lags(panel, ["x"], by=["therapist", "patient"], time="session", lag=2)
        assert list(out.index) == list(panel.index)
        row = out[(out.therapist == "A") & (out.patient == 1) & (out.session == 3)]
        assert row["x_lag2"].iloc[0] == 1.0

    def test_input_not_mutated(self, panel: pd.DataFrame) -> None:
        before = panel.copy()
        add_lags(panel, "x", by=["therapist", "patient"], time="session")
        pd.testing.assert_frame_equal(panel, before)

    def test_usable_pairs_count(self, panel: pd.DataFrame) -> None:
        # Oracle: number of non-missing lags = number of consecutive session pairs.
        out = add_lags(panel, "x", by=["therapist", "patient"], time="session")
        pairs = 0
        for _, g in panel.groupby(["therapist", "patient"]):
            s = set(g.session)
            pairs += sum(1 for t in s if t - 1 in s)
        assert out["x_lag1"].notna().sum() == pairs

    def test_errors(self, panel: pd.DataFrame) -> None:
        with pytest.raises(ValueError, match=r"`columns` refers to column 'y'"):
            add_lags(panel, "y", by="patient", time="session")
        with pytest.raises(ValueError, match="Close matches: 'session'"):
            add_lags(panel, "x", by="patient", time="sesion")
        with pytest.raises(ValueError, match="share the same"):
            add_lags(panel, "x", by="patient", time="session")
        with pytest.raises(ValueError, match="`lag` must be a positive integer"):
            add_lags(panel, "x", by=["therapist", "patient"], time="session", lag=0)
        with pytest.raises(TypeError, match="must be a pandas DataFrame"):
            add_lags(panel.to_numpy(), "x", by="patient", time="session")  # type: ignore[arg-type]
        bad = panel.assign(session=panel.session + 0.5)
        with pytest.raises(ValueError, match="whole numbers"):
            add_lags(bad, "x", by=["therapist", "patient"], time="session")
        with pytest.raises(ValueError, match="already exist"):
            add_lags(panel.assign(x_lag1=1.0), "x", by=["therapist", "patient"], time="session")

    @settings(max_examples=40, deadline=None)
    @given(
        sessions=st.lists(st.sets(st.integers(1, 8), min_size=1, max_size=8), min_size=1,
                          max_size=5),
        seed=st.integers(0, 2**16),
    )
    def test_property_matches_dictionary_lookup(self, sessions: list[set[int]],
                                                seed: int) -> None:
        rows = [(u, t, float(100 * u + t)) for u, ts in enumerate(sessions) for t in ts]
        df = pd.DataFrame(rows, columns=["unit", "t", "v"])
        df = df.sample(frac=1.0, random_state=seed).reset_index(drop=True)
        out = add_lags(df, "v", by="unit", time="t")
        lookup = {(u, t): v for u, t, v in rows}
        expected = [lookup.get((u, t - 1), np.nan) for u, t in zip(df.unit, df.t, strict=True)]
        np.testing.assert_array_equal(out["v_lag1"].to_numpy(), np.array(expected))


class TestStackRaters:
    def test_round_trip(self) -> None:
        df = pd.DataFrame(
            {"patient": [1, 1, 2], "session": [1, 2, 1], "t": [4.0, 5.0, 6.0],
             "p": [5.0, 6.0, np.nan]}
        )
        long = stack_raters(df, ratings={"therapist": "t", "patient": "p"})
        assert len(long) == 2 * len(df)
        assert list(long["rater"].cat.categories) == ["therapist", "patient"]
        wide = long.pivot(index=["patient", "session"], columns="rater", values="alliance")
        back = df.set_index(["patient", "session"])
        np.testing.assert_array_equal(wide["therapist"].to_numpy(), back["t"].to_numpy())
        np.testing.assert_array_equal(wide["patient"].to_numpy(), back["p"].to_numpy())

    def test_errors(self) -> None:
        df = pd.DataFrame({"rater": [1], "a": [1.0], "b": [2.0]})
        with pytest.raises(TypeError, match="at least two rater labels"):
            stack_raters(df, ratings={"therapist": "a"})
        with pytest.raises(ValueError, match="`ratings` refers to column 'c'"):
            stack_raters(df, ratings={"therapist": "a", "patient": "c"})
        with pytest.raises(ValueError, match="already exists"):
            stack_raters(df, ratings={"therapist": "a", "patient": "b"})


class TestReshape:
    def test_wide_long_round_trip(self) -> None:
        df = pd.DataFrame(
            {"id": [1, 1, 2, 2, 2], "session": [1, 2, 1, 2, 3],
             "x": [1.0, 2.0, 3.0, 4.0, 5.0], "y": [0.5, 0.1, 0.2, 0.3, 0.4]}
        )
        wide = sessions_to_wide(df, unit="id", time="session", values=["x", "y"])
        assert wide.shape == (2, 7)
        back = sessions_to_long(wide, unit="id", stubs=["x", "y"], time="session")
        pd.testing.assert_frame_equal(back[df.columns].astype(float), df.astype(float))

    def test_errors(self) -> None:
        with pytest.raises(ValueError, match="no column starts with 'z_'"):
            sessions_to_long(pd.DataFrame({"id": [1], "x_1": [1.0]}), unit="id", stubs=["z"])


class TestCentering:
    def test_pooled_uses_one_constant(self) -> None:
        df = pd.DataFrame({"x": [1.0, 2.0, np.nan], "y": [3.0, 6.0, 4.0]})
        out, const = center_pooled(df, ["x", "y"])
        assert const == {"center": 3.2, "scale": 1.0}
        # x == y stays x == y: the difference is unchanged.
        np.testing.assert_allclose((out.y - out.x).dropna(), (df.y - df.x).dropna())
        _, const_s = center_pooled(df, ["x", "y"], scale=True)
        stacked = np.array([1.0, 2.0, 3.0, 6.0, 4.0])
        assert const_s["scale"] == pytest.approx(stacked.std(ddof=1))

    def test_grand_mean_and_within(self) -> None:
        df = pd.DataFrame({"id": [1, 1, 2, 2], "x": [1.0, 3.0, 10.0, 20.0]})
        out, means = center_grand_mean(df, "x")
        assert means == {"x": 8.5}
        assert out["x"].sum() == pytest.approx(0.0)
        within = center_within(df, "x", by="id")
        assert within["x"].tolist() == [-1.0, 1.0, -5.0, 5.0]
        assert within["x_mean"].tolist() == [2.0, 2.0, 15.0, 15.0]
        assert df["x"].tolist() == [1.0, 3.0, 10.0, 20.0]

    def test_numeric_error_names_dtype(self) -> None:
        df = pd.DataFrame({"x": ["4,5", "n/a"], "y": [1.0, 2.0]})
        with pytest.raises(ValueError, match=r"must be numeric; got dtype .*'4,5'"):
            center_pooled(df, ["x", "y"])


class TestReadData:
    @pytest.fixture
    def frame(self) -> pd.DataFrame:
        return pd.DataFrame(
            {"patient": [1, 2, 3], "session": [1, 1, 2], "score": [4.5, 5.0, 6.25]}
        )

    @pytest.mark.parametrize("ext", [".csv", ".tsv", ".xlsx", ".dta", ".parquet"])
    def test_round_trip(self, frame: pd.DataFrame, tmp_path, ext: str) -> None:
        path = tmp_path / f"d{ext}"
        if ext == ".csv":
            frame.to_csv(path, index=False)
        elif ext == ".tsv":
            frame.to_csv(path, index=False, sep="\t")
        elif ext == ".xlsx":
            frame.to_excel(path, index=False)
        elif ext == ".dta":
            frame.to_stata(path, write_index=False)
        else:
            pytest.importorskip("pyarrow")
            frame.to_parquet(path, index=False)
        got = read_data(path)
        pd.testing.assert_frame_equal(got.astype(float), frame.astype(float))

    def test_spss_keeps_labels(self, frame: pd.DataFrame, tmp_path) -> None:
        pyreadstat = pytest.importorskip("pyreadstat")
        path = tmp_path / "d.sav"
        pyreadstat.write_sav(
            frame, str(path), column_labels=["Patient id", "Session", "Alliance"],
            variable_value_labels={"session": {1.0: "first", 2.0: "second"}},
        )
        got = read_data(path)
        np.testing.assert_allclose(got["score"], frame["score"])
        assert got.attrs["column_labels"]["score"] == "Alliance"
        assert got.attrs["value_labels"]["session"] == {1.0: "first", 2.0: "second"}

    def test_errors(self, tmp_path) -> None:
        with pytest.raises(ValueError, match=r"extension '\.foo'"):
            read_data(tmp_path / "d.foo")
        with pytest.raises(FileNotFoundError, match="no such file"):
            read_data(tmp_path / "missing.csv")
        bad = tmp_path / "bad.xlsx"
        bad.write_text("not a spreadsheet")
        with pytest.raises(ValueError, match="Could not read"):
            read_data(bad)
        with pytest.raises(TypeError, match="must be a file path"):
            read_data(3)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- lab exports

LAB_WIDE = Path(__file__).parent / "data" / "lab_wide.csv"
LAB_LONG = Path(__file__).parent / "data" / "lab_long.csv"
STUBS = ["WAI_T", "WAI_C", "ORS"]


class TestWideLabExport:
    """Client ids restart within each therapist: a lab export in wide form."""

    def test_round_trip_matches_the_long_export(self) -> None:
        wide, long = pd.read_csv(LAB_WIDE), pd.read_csv(LAB_LONG)
        back = sessions_to_long(wide, unit=["Therapist_ID", "ClientID"], stubs=STUBS,
                                time="Sess")
        back = back[long.columns].sort_values(["Therapist_ID", "ClientID", "Sess"])
        pd.testing.assert_frame_equal(back.reset_index(drop=True), long.sort_values(
            ["Therapist_ID", "ClientID", "Sess"]).reset_index(drop=True), check_dtype=False)

    def test_unit_not_unique_names_the_column_and_suggests_both(self) -> None:
        wide = pd.read_csv(LAB_WIDE)
        with pytest.raises(ValueError, match=r"`unit` \['ClientID'\] does not identify the "
                                             r"rows.*ClientID=1.*unit=\['Therapist_ID', "
                                             r"'ClientID'\]"):
            sessions_to_long(wide, unit="ClientID", stubs=STUBS)

    def test_time_name_taken(self) -> None:
        with pytest.raises(ValueError, match=r"`time` 'Group' is already a column"):
            sessions_to_long(pd.read_csv(LAB_WIDE), unit=["Therapist_ID", "ClientID"],
                             stubs=STUBS, time="Group")

    def test_unknown_stub_lists_the_numbered_prefixes(self) -> None:
        with pytest.raises(ValueError, match=r"starts with 'WAI_' followed by a session number.*"
                                             r"\['WAI_T', 'WAI_C', 'ORS'\]"):
            sessions_to_long(pd.read_csv(LAB_WIDE), unit=["Therapist_ID", "ClientID"],
                             stubs=["WAI"])

    def test_missing_unit(self) -> None:
        wide = pd.read_csv(LAB_WIDE)
        wide.loc[0, "ClientID"] = np.nan
        with pytest.raises(ValueError, match=r"`unit` column\(s\) \['ClientID'\] have 1 "
                                             r"missing"):
            sessions_to_long(wide, unit=["Therapist_ID", "ClientID"], stubs=STUBS)


def test_sessions_to_wide_refuses_duplicate_names() -> None:
    df = pd.DataFrame({"id": [1, 1], "x_1": [0, 0], "s": [1, 2], "x": [1.0, 2.0]})
    with pytest.raises(ValueError, match=r"duplicate column names \['x_1'\]"):
        sessions_to_wide(df, unit=["id", "x_1"], time="s", values="x")
    mixed = pd.DataFrame({"id": [1, 1], "s": [1, "1"], "x": [1.0, 2.0]}, dtype=object)
    with pytest.raises(ValueError, match=r"duplicate column names \['x_1'\]"):
        sessions_to_wide(mixed, unit="id", time="s", values="x")


def test_center_within_warns_on_missing_units() -> None:
    df = pd.DataFrame({"id": [1.0, np.nan, 1.0], "x": [1.0, 2.0, 3.0]})
    with pytest.warns(DataWarning, match=r"1 of 3 rows have a missing `by` value"):
        out = center_within(df, "x", by="id")
    assert np.isnan(out.loc[1, "x"])
    assert out.loc[[0, 2], "x"].tolist() == [-1.0, 1.0]


class TestEuropeanExports:
    """Spreadsheet exports from European locales: ';' separators, decimal commas, BOM,
    Latin-1."""

    @pytest.fixture
    def lab(self) -> pd.DataFrame:
        return pd.read_csv(LAB_LONG)

    def test_semicolon_and_decimal_comma_are_sniffed(self, lab: pd.DataFrame,
                                                     tmp_path: Path) -> None:
        file = tmp_path / "eu.csv"
        lab.to_csv(file, sep=";", decimal=",", index=False)
        pd.testing.assert_frame_equal(read_data(file), lab)

    def test_byte_order_mark_is_skipped(self, lab: pd.DataFrame, tmp_path: Path) -> None:
        file = tmp_path / "bom.csv"
        lab.to_csv(file, index=False, encoding="utf-8-sig")
        assert read_data(file).columns[0] == "Therapist_ID"
        assert read_data(file, encoding="utf-8").columns[0] == "Therapist_ID"

    def test_latin1_gets_a_clear_message(self, lab: pd.DataFrame, tmp_path: Path) -> None:
        file = tmp_path / "latin.csv"
        lab.assign(Group=lab["Group"].map({"control": "Kontrolle", "training": "Übung"})
                   ).to_csv(file, index=False, encoding="latin-1")
        with pytest.raises(ValueError, match=r"not utf-8-encoded.*encoding='latin-1'"):
            read_data(file)
        assert set(read_data(file, encoding="latin-1")["Group"]) == {"Kontrolle", "Übung"}

    def test_explicit_separator_wins(self, tmp_path: Path) -> None:
        file = tmp_path / "pipe.csv"
        file.write_text("a;b|c\n1;2|3\n", encoding="utf-8")
        assert read_data(file, sep="|").columns.tolist() == ["a;b", "c"]

    def test_directory(self, tmp_path: Path) -> None:
        with pytest.raises(IsADirectoryError, match="is a directory"):
            read_data(tmp_path)


def test_lab_export_reads_alike_in_every_format() -> None:
    csv_ = read_data(LAB_LONG)
    xlsx = read_data(LAB_LONG.with_suffix(".xlsx"))
    sav = read_data(LAB_LONG.with_suffix(".sav"))
    assert sav.attrs["value_labels"] == {"Group": {0.0: "control", 1.0: "training"}}
    labelled = sav.assign(Group=sav["Group"].map(sav.attrs["value_labels"]["Group"]))
    for other in (xlsx, labelled):
        pd.testing.assert_frame_equal(other, csv_, check_dtype=False)
    # client ids restart within each therapist
    assert csv_.groupby("ClientID")["Therapist_ID"].nunique().max() > 1
    assert not csv_.duplicated(["Therapist_ID", "ClientID", "Sess"]).any()
