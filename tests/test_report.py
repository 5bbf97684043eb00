"""The end-to-end report: files, content, isolation of failing sections, warnings."""

from __future__ import annotations

import csv
import re
import warnings
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from alliancestats import datasets, fit_lagged_rsa, rsa
from alliancestats.exceptions import BoundaryFitWarning
from alliancestats.report import DEFAULT_ROLES, Section, _run_section, _table, write_report

RENAMED = {"therapist": "ther_id", "patient": "pat_id", "session": "sess",
           "condition": "arm", "alliance_therapist": "wai_t", "alliance_patient": "wai_p",
           "wellbeing": "wb"}


@pytest.fixture(scope="module")
def prn() -> pd.DataFrame:
    return datasets.load("prn")


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory, prn: pd.DataFrame) -> Path:
    """One full run on the PRN data under renamed columns (roles mapped back)."""
    out = tmp_path_factory.mktemp("report")
    data = prn.rename(columns=RENAMED)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # fitting warnings are checked in the HTML
        return write_report(data, out=out, roles=RENAMED, source="renamed.csv",
                            call="test call", progress=False)


@pytest.mark.slow
class TestFullReport:
    def test_files(self, report: Path) -> None:
        out = report.parent
        assert report.name == "report.html"
        for name in ("observed_means", "lagged_agreement", "rsa_contour", "rsa_surface"):
            assert (out / "figures" / f"{name}.png").stat().st_size > 1000
            assert (out / "figures" / f"{name}.svg").read_text().lstrip().startswith("<?xml")

    def test_html_is_self_contained(self, report: Path) -> None:
        page = report.read_text(encoding="utf-8")
        srcs = re.findall(r'src="([^"]*)"', page)
        assert srcs
        assert all(s.startswith("data:image/png;base64,") for s in srcs)
        assert "<link" not in page
        assert "<script" not in page

    def test_html_content(self, report: Path, prn: pd.DataFrame) -> None:
        page = report.read_text(encoding="utf-8")
        for text in ("Data overview", "Lagged response surface", "Truth and bias",
                     "Growth of the alliance", "Reproducibility", "test call",
                     "renamed.csv", "statsmodels", "a4 = b3 − b4 + b5"):
            assert text in page
        # sizes of the data overview
        n_patients = prn[["therapist", "patient"]].drop_duplicates().shape[0]
        missing = n_patients * prn.session.nunique() - len(prn)
        assert re.search(rf"missing patient-sessions</th>\s*<td>{missing}</td>", page)

    def test_estimates_match_a_direct_fit(self, report: Path, prn: pd.DataFrame) -> None:
        est = pd.read_csv(report.parent / "estimates.csv")
        assert list(est.columns[:3]) == ["model", "term", "estimate"]
        assert {"conf_low", "conf_high", "component"} <= set(est.columns)
        direct = fit_lagged_rsa(prn, outcome="wellbeing", x="alliance_therapist",
                                y="alliance_patient", time="session",
                                unit=["therapist", "patient"],
                                groups=["therapist", "patient"], by="condition")
        ours = est[(est.model == "lagged_rsa") & (est.component == "surface")]
        ref = direct.surface
        np.testing.assert_allclose(ours["estimate"], ref["estimate"], rtol=1e-6)
        np.testing.assert_allclose(ours["std_error"], ref["std_error"], rtol=1e-4)

    def test_truth_bias_section(self, report: Path) -> None:
        est = pd.read_csv(report.parent / "estimates.csv")
        assert "truth_bias" in set(est.model)
        assert (report.parent / "figures" / "truth_bias.png").exists()


def _fast_roles(monkeypatch: pytest.MonkeyPatch) -> None:
    """Make the two slower model sections unavailable so a run takes about a second."""
    import sys

    monkeypatch.setitem(sys.modules, "alliancestats.growth", None)
    monkeypatch.setitem(sys.modules, "alliancestats.truthbias", None)


def test_failing_model_is_reported_not_raised(
    tmp_path: Path, prn: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fast_roles(monkeypatch)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("singular design from the test")

    monkeypatch.setattr(rsa, "fit_lagged_rsa", broken)
    path = write_report(prn, out=tmp_path, progress=False)
    page = path.read_text(encoding="utf-8")
    assert "could not be fitted" in page
    assert "singular design from the test" in page
    assert "not available in this version" in page  # growth / truth-and-bias stand-ins
    assert "Means and SDs by condition" in page  # the data overview is still there
    assert (tmp_path / "estimates.csv").exists()


def test_warnings_during_fitting_are_listed(
    tmp_path: Path, prn: pd.DataFrame, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fast_roles(monkeypatch)
    original = rsa.fit_lagged_rsa

    def noisy(*args: Any, **kwargs: Any) -> Any:
        warnings.warn("boundary fit from the test", UserWarning, stacklevel=2)
        return original(*args, **{**kwargs, "groups": None})  # OLS: fast

    monkeypatch.setattr(rsa, "fit_lagged_rsa", noisy)
    page = write_report(prn, out=tmp_path, progress=False).read_text(encoding="utf-8")
    assert "UserWarning: boundary fit from the test" in page


def test_progress_on_stderr(tmp_path: Path, prn: pd.DataFrame,
                            monkeypatch: pytest.MonkeyPatch,
                            capsys: pytest.CaptureFixture[str]) -> None:
    _fast_roles(monkeypatch)
    monkeypatch.setattr(rsa, "fit_lagged_rsa", lambda *a, **k: 1 / 0)
    write_report(prn.head(60), out=tmp_path)
    captured = capsys.readouterr()
    assert captured.out == ""
    assert "alliancestats report: wrote" in captured.err


def test_python_call_is_recorded(tmp_path: Path, prn: pd.DataFrame,
                                 monkeypatch: pytest.MonkeyPatch) -> None:
    _fast_roles(monkeypatch)
    monkeypatch.setattr(rsa, "fit_lagged_rsa", lambda *a, **k: 1 / 0)
    page = write_report(prn, out=tmp_path, roles={"wellbeing": "wellbeing"},
                        progress=False).read_text(encoding="utf-8")
    assert f"write_report(data, out=&#x27;{tmp_path}&#x27;" in page
    assert "{&#x27;wellbeing&#x27;: &#x27;wellbeing&#x27;}" in page


def test_bad_roles_fail_before_writing(tmp_path: Path, prn: pd.DataFrame) -> None:
    with pytest.raises(ValueError, match="'wellbeng'"):
        write_report(prn, out=tmp_path / "x", roles={"wellbeing": "wellbeng"})
    with pytest.raises(ValueError, match="unknown keys"):
        write_report(prn, out=tmp_path / "x", roles={"outcome": "wellbeing"})
    with pytest.raises(ValueError, match="numeric"):
        write_report(prn.assign(wellbeing="high"), out=tmp_path / "x")
    with pytest.raises(TypeError, match="DataFrame"):
        write_report([1, 2], out=tmp_path / "x")
    assert not (tmp_path / "x").exists()


def test_default_roles_are_the_prn_columns(prn: pd.DataFrame) -> None:
    assert set(DEFAULT_ROLES.values()) == set(prn.columns)


@pytest.mark.slow
def test_growth_section(report: Path) -> None:
    est = pd.read_csv(report.parent / "estimates.csv")
    rates = est[(est.model == "growth") & (est.component == "growth_rate")]
    assert len(rates) == 4  # rater x condition
    assert (report.parent / "figures" / "growth_trajectories.png").exists()
    assert "Growth rates" in report.read_text(encoding="utf-8")


def test_a_warning_stored_and_emitted_is_listed_once() -> None:
    def body(sec: Section, caught: list[str]) -> None:
        warnings.warn("boundary (singular) fit", BoundaryFitWarning, stacklevel=1)
        caught += ["boundary (singular) fit", "a note only on the result"]

    sec = _run_section(Section("model", "m"), body, progress=False)
    page = "".join(sec.parts)
    assert page.count("boundary (singular) fit") == 1
    assert "BoundaryFitWarning: boundary (singular) fit" in page
    assert "a note only on the result" in page


def test_tables_print_p_values_and_small_numbers_readably() -> None:
    frame = pd.DataFrame({"term": ["a", "b"], "estimate": [0.00012, 2.5],
                          "p_value": [0.0004, 0.04567]})
    page = _table(frame)
    assert "&lt; 0.001" in page
    assert "0.046" in page
    assert "0.00012" in page
    assert "2.500" in page
    assert "<th>term</th>" in page  # no index column for a RangeIndex


# --------------------------------------------------------------------------- global state


def _fast_rsa(monkeypatch: pytest.MonkeyPatch) -> None:
    """Growth and truth-and-bias unavailable, lagged RSA as OLS: a run takes ~1 s."""
    _fast_roles(monkeypatch)
    original = rsa.fit_lagged_rsa
    monkeypatch.setattr(rsa, "fit_lagged_rsa",
                        lambda *a, **k: original(*a, **{**k, "groups": None}))


def test_write_report_leaves_the_backend_and_pyplot_alone(
        tmp_path: Path, prn: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    import matplotlib
    import matplotlib.pyplot as plt

    _fast_rsa(monkeypatch)
    plt.close("all")
    before = matplotlib.get_backend()
    try:
        matplotlib.use("pdf")  # stands in for a notebook's backend
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            write_report(prn, out=tmp_path, progress=False)
        assert matplotlib.get_backend() == "pdf"
        assert plt.get_fignums() == []  # no figure left open in pyplot
    finally:
        matplotlib.use(before)
    assert (tmp_path / "figures" / "rsa_contour.png").stat().st_size > 1000


# --------------------------------------------------------------------------- failures


def test_a_failing_figure_is_not_a_failed_model(
        tmp_path: Path, prn: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    from alliancestats import plotting
    from alliancestats.report import run_report

    _fast_rsa(monkeypatch)

    def broken(*args: Any, **kwargs: Any) -> None:
        raise ValueError("could not convert string to float: 'control'")

    monkeypatch.setattr(plotting, "plot_lagged_agreement", broken)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = run_report(prn, out=tmp_path, progress=False)
    status = dict(run.sections)
    rsa_title = next(t for t in status if t.startswith("Lagged"))
    assert status[rsa_title] == "done; figure failed: lagged_agreement"
    assert all(title != rsa_title for title, _ in run.failures)
    page = run.path.read_text(encoding="utf-8")
    assert "could not be fitted" not in page
    assert "could not be drawn" in page
    assert "could not convert string to float" in page
    assert "Surface parameters by condition" in page  # the estimates are there
    assert (tmp_path / "figures" / "rsa_contour.png").exists()


def test_run_report_lists_failed_sections(tmp_path: Path, prn: pd.DataFrame,
                                          monkeypatch: pytest.MonkeyPatch) -> None:
    from alliancestats.report import run_report

    _fast_roles(monkeypatch)
    monkeypatch.setattr(rsa, "fit_lagged_rsa", lambda *a, **k: 1 / 0)
    run = run_report(prn, out=tmp_path, progress=False)
    assert not run.ok
    reasons = dict(run.failures)
    assert any("ZeroDivisionError" in r for r in reasons.values())
    assert any(r.startswith("not available") for r in reasons.values())


@pytest.mark.parametrize("rows", ["one row", "all-missing outcome"])
def test_data_overview_survives_tiny_or_empty_columns(
        rows: str, tmp_path: Path, prn: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    from alliancestats.report import run_report

    _fast_roles(monkeypatch)
    monkeypatch.setattr(rsa, "fit_lagged_rsa", lambda *a, **k: 1 / 0)
    data = prn.head(1) if rows == "one row" else prn.head(60).assign(wellbeing=np.nan)
    run = run_report(data, out=tmp_path, progress=False)
    assert dict(run.sections)["Data overview"] == "done"


# --------------------------------------------------------------------------- output directory


def test_output_directory_is_checked_before_fitting(
        tmp_path: Path, prn: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    fitted: list[bool] = []
    monkeypatch.setattr(rsa, "fit_lagged_rsa", lambda *a, **k: fitted.append(True))
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "figures").write_text("a file where figures/ should be")
    with pytest.raises(NotADirectoryError, match=r"figures.*is not a directory"):
        write_report(prn, out=tmp_path / "out", progress=False)
    (tmp_path / "file").write_text("x")
    with pytest.raises(NotADirectoryError, match="is not a directory"):
        write_report(prn, out=tmp_path / "file", progress=False)
    assert not fitted


def test_stale_figures_are_removed_and_nothing_is_left_behind(
        tmp_path: Path, prn: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    _fast_rsa(monkeypatch)
    figures = tmp_path / "figures"
    figures.mkdir()
    (figures / "old_model.png").write_bytes(b"stale")
    (figures / "notes.txt").write_text("not a figure of ours")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        write_report(prn, out=tmp_path, progress=False)
    assert not (figures / "old_model.png").exists()
    assert (figures / "notes.txt").exists()
    assert (figures / "rsa_contour.png").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["estimates.csv", "figures",
                                                          "report.html"]


def test_an_interrupted_run_leaves_the_previous_report(
        tmp_path: Path, prn: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    from alliancestats import report as report_module

    _fast_rsa(monkeypatch)
    (tmp_path / "report.html").write_text("previous report")
    (tmp_path / "estimates.csv").write_text("previous estimates")

    def interrupted(*args: Any, **kwargs: Any) -> str:
        raise KeyboardInterrupt

    monkeypatch.setattr(report_module, "_page", interrupted)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(KeyboardInterrupt):
            write_report(prn, out=tmp_path, progress=False)
    assert (tmp_path / "report.html").read_text() == "previous report"
    assert (tmp_path / "estimates.csv").read_text() == "previous estimates"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["estimates.csv", "report.html"]


# --------------------------------------------------------------------------- hostile labels


class _Live(HTMLParser):
    """Collects what a browser would run: script elements, on* handlers, js: URLs."""

    def __init__(self) -> None:
        super().__init__()
        self.live: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        if tag in {"script", "iframe", "object", "embed"}:
            self.live.append(tag)
        for name, value in attrs:
            if name.lower().startswith("on"):
                self.live.append(f"{tag}[{name}]")
            if value and value.strip().lower().startswith("javascript:"):
                self.live.append(f"{tag}[{name}]={value}")


HOSTILE = {"therapist": "<script>alert('t')</script>", "patient": "pat",
           "session": "sess<img src=x onerror=alert(1)>", "condition": "=HYPERLINK(\"x\")",
           "alliance_therapist": "@SUM(1+1)", "alliance_patient": "+wai",
           "wellbeing": "-" + "w" * 10_000}


@pytest.fixture(scope="module")
def hostile_report(tmp_path_factory: pytest.TempPathFactory, prn: pd.DataFrame) -> Path:
    out = tmp_path_factory.mktemp("hostile")
    data = prn.rename(columns=HOSTILE)
    arm = HOSTILE["condition"]
    data[arm] = data[arm].map({0: "<b onmouseover=alert(2)>usual</b>",
                               1: "=cmd|' /C calc'!A0" + "x" * 10_000})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        import sys

        mp = pytest.MonkeyPatch()
        mp.setitem(sys.modules, "alliancestats.growth", None)  # keep the run short
        mp.setitem(sys.modules, "alliancestats.truthbias", None)
        original = rsa.fit_lagged_rsa
        mp.setattr(rsa, "fit_lagged_rsa", lambda *a, **k: original(*a, **{**k, "groups": None}))
        try:
            return write_report(data, out=out, roles=HOSTILE,
                                source="<script>alert('file')</script>.csv", progress=False)
        finally:
            mp.undo()


def test_no_script_or_handler_is_live(hostile_report: Path) -> None:
    parser = _Live()
    parser.feed(hostile_report.read_text(encoding="utf-8"))
    assert parser.live == []


def test_long_labels_are_shortened_in_html_and_figures(hostile_report: Path) -> None:
    page = hostile_report.read_text(encoding="utf-8")
    assert "w" * 200 not in page
    assert "x" * 200 not in page
    assert len(page) < 5_000_000
    svg = (hostile_report.parent / "figures" / "observed_means.svg").read_text()
    assert "x" * 200 not in svg
    # the estimates keep the full names
    est = (hostile_report.parent / "estimates.csv").read_text(encoding="utf-8")
    assert "w" * 10_000 in est


def test_estimates_csv_cells_cannot_run_as_formulas(hostile_report: Path) -> None:
    with (hostile_report.parent / "estimates.csv").open(newline="", encoding="utf-8") as fh:
        rows = list(csv.reader(fh))
    cells = [c for row in rows for c in row]
    risky = [c for c in cells if c[:1] in {"=", "+", "@"}
             or (c[:1] == "-" and not re.fullmatch(r"-[\d.]+(e-?\d+)?", c))]
    assert risky == []
    assert any(c.startswith("'-www") for c in cells)  # neutralised, not dropped
    est = pd.read_csv(hostile_report.parent / "estimates.csv")
    assert pd.api.types.is_float_dtype(est["estimate"])  # numbers stay numbers


# --------------------------------------------------------------------------- a lab's export

LAB_ROLES = {"therapist": "Therapist_ID", "patient": "ClientID", "session": "Sess",
             "condition": "Group", "alliance_therapist": "WAI_T", "alliance_patient": "WAI_C",
             "wellbeing": "ORS"}


@pytest.mark.slow
def test_lab_export_with_text_arms(tmp_path: Path) -> None:
    """Text arm labels, client ids restarting within therapist, missed sessions."""
    from alliancestats.report import run_report

    lab = pd.read_csv(Path(__file__).parent / "data" / "lab_long.csv")
    copy = lab.copy()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = run_report(lab, out=tmp_path, roles=LAB_ROLES, progress=False)
    assert run.ok, run.failures
    assert all(status == "done" for _, status in run.sections), run.sections
    page = run.path.read_text(encoding="utf-8")
    assert "<td>training</td>" in page
    assert "<td>control</td>" in page
    assert "therapist, training" in (tmp_path / "figures" / "growth_trajectories.svg"
                                     ).read_text()
    pd.testing.assert_frame_equal(lab, copy)  # the caller's frame is untouched
