"""The end-to-end report: files, content, isolation of failing sections, warnings."""

from __future__ import annotations

import re
import warnings
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
