"""The end-to-end report: files, content, isolation of failing sections, warnings."""

from __future__ import annotations

import contextlib
import csv
import json
import os
import re
import select
import shutil
import subprocess
import time
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
                                groups=["therapist", "patient"], by="condition",
                                controls=["session"])
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


class _Chromium:
    """Headless Chromium driven over the DevTools protocol on a pipe (no extra package).

    With ``--remote-debugging-pipe`` the browser reads NUL-terminated JSON commands on file
    descriptor 3 and writes replies and events on descriptor 4.
    """

    FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
             "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--disable-extensions", "--remote-debugging-pipe")
    WATCHED = ("Page.javascriptDialogOpening", "Runtime.consoleAPICalled",
               "Runtime.exceptionThrown")

    def __init__(self, executable: str, profile: Path, timeout: float = 60.0) -> None:
        self.timeout = timeout
        child_in, self._to_browser = os.pipe()
        self._from_browser, child_out = os.pipe()

        def as_fds_3_and_4() -> None:  # dup first: either end may already sit on 3 or 4
            read, write = os.dup(child_in), os.dup(child_out)
            os.dup2(read, 3)
            os.dup2(write, 4)

        self.proc = subprocess.Popen(
            [executable, *self.FLAGS, f"--user-data-dir={profile}", "about:blank"],
            stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            preexec_fn=as_fds_3_and_4, pass_fds=(3, 4))
        os.close(child_in)
        os.close(child_out)
        self._buffer = b""
        self._last_id = 0
        self.events: list[dict[str, Any]] = []

    def send(self, method: str, session: str | None = None, **params: Any) -> dict[str, Any]:
        self._last_id += 1
        message: dict[str, Any] = {"id": self._last_id, "method": method, "params": params}
        if session is not None:
            message["sessionId"] = session
        os.write(self._to_browser, json.dumps(message).encode() + b"\0")
        wanted = self._last_id
        reply = self._next(lambda m: m.get("id") == wanted)
        if "error" in reply:
            raise RuntimeError(f"{method}: {reply['error']}")
        return reply.get("result", {})

    def _next(self, match: Any) -> dict[str, Any]:
        """The next message that ``match`` accepts; events on the way are kept."""
        deadline = time.monotonic() + self.timeout
        while True:
            while b"\0" in self._buffer:
                raw, self._buffer = self._buffer.split(b"\0", 1)
                message = json.loads(raw)
                if "method" in message:
                    self.events.append(message)
                if match(message):
                    return message
            left = deadline - time.monotonic()
            ready = select.select([self._from_browser], [], [], max(left, 0))[0]
            if not ready:
                raise TimeoutError(f"Chromium did not answer within {self.timeout} s")
            chunk = os.read(self._from_browser, 1 << 16)
            if not chunk:
                raise RuntimeError("Chromium exited")
            self._buffer += chunk

    def _event(self, session: str, methods: tuple[str, ...], start: int) -> int:
        """Index in ``events`` of the first of ``methods`` in ``session`` from ``start`` on
        (it may have arrived while waiting for a reply), reading on until one comes."""
        while True:
            for index in range(start, len(self.events)):
                event = self.events[index]
                if event.get("sessionId") == session and event["method"] in methods:
                    return index
            start = len(self.events)
            self._next(lambda m: "method" in m)

    def open(self, url: str) -> dict[str, Any]:
        """Load ``url``; return what ran (dialogs, console, errors) and the live DOM."""
        target = self.send("Target.createTarget", url="about:blank")["targetId"]
        session = self.send("Target.attachToTarget", targetId=target, flatten=True)["sessionId"]
        self.send("Page.enable", session)
        self.send("Runtime.enable", session)
        first = len(self.events)
        self.send("Page.navigate", session, url=url)
        at = first
        while True:  # an open alert blocks the page: accept it (it is recorded) and go on
            at = self._event(session, ("Page.loadEventFired", "Page.javascriptDialogOpening"),
                             start=at)
            if self.events[at]["method"] == "Page.loadEventFired":
                break
            self.send("Page.handleJavaScriptDialog", session, accept=True)
            at += 1
        time.sleep(0.5)  # let timers and late image errors fire
        dom = self.send("Runtime.evaluate", session, expression=_DOM_PROBE,
                        returnByValue=True)["result"]["value"]
        self.send("Target.closeTarget", targetId=target)
        ran = [e["method"] for e in self.events[first:]
               if e.get("sessionId") == session and e["method"] in self.WATCHED]
        return {"ran": ran, **json.loads(dom)}

    def close(self) -> None:
        with contextlib.suppress(OSError, RuntimeError, TimeoutError):
            self.send("Browser.close")
        try:
            self.proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        os.close(self._to_browser)
        os.close(self._from_browser)


# Everything in the live DOM that can run script, and the text a reader sees.
_DOM_PROBE = r"""JSON.stringify({
  live: Array.from(document.querySelectorAll('*')).flatMap(el => {
    const found = [];
    if (['SCRIPT', 'IFRAME', 'FRAME', 'OBJECT', 'EMBED'].includes(el.tagName)) {
      found.push(el.tagName);
    }
    for (const a of el.attributes) {
      if (a.name.toLowerCase().startsWith('on')) found.push(`${el.tagName}[${a.name}]`);
      if (/^\s*javascript:/i.test(a.value)) found.push(`${el.tagName}[${a.name}]=${a.value}`);
    }
    return found;
  }),
  text: document.body.innerText,
})"""


def _chromium_executable() -> str | None:
    for name in (os.environ.get("CHROMIUM"), "chromium", "chromium-browser"):
        if name and (found := shutil.which(name)):
            return found
    return None


@pytest.fixture(scope="module")
def chromium(tmp_path_factory: pytest.TempPathFactory) -> Any:
    executable = _chromium_executable()
    if executable is None:
        pytest.skip("headless Chromium not found (Debian: apt-get install chromium; "
                    "or set CHROMIUM to its path)")
    browser = _Chromium(executable, tmp_path_factory.mktemp("chromium-profile"))
    try:
        browser.send("Browser.getVersion")
    except (OSError, RuntimeError, TimeoutError) as exc:
        browser.close()
        pytest.skip(f"{executable} does not start headless: {exc}")
    try:
        yield browser
    finally:
        browser.close()


def test_the_browser_check_sees_live_script(chromium: _Chromium, tmp_path: Path) -> None:
    """The check below would fail on a page whose payloads are live."""
    page = tmp_path / "live.html"
    page.write_text("<p>ok</p><img src=x onerror=alert(1)><script>console.log(2)</script>"
                    "<a href='javascript:alert(3)'>a</a>", encoding="utf-8")
    seen = chromium.open(page.as_uri())
    assert "Page.javascriptDialogOpening" in seen["ran"]
    assert "Runtime.consoleAPICalled" in seen["ran"]
    assert seen["live"] == ["IMG[onerror]", "SCRIPT", "A[href]=javascript:alert(3)"]


def test_no_script_runs_in_the_browser(chromium: _Chromium, hostile_report: Path) -> None:
    seen = chromium.open(hostile_report.as_uri())
    assert seen["ran"] == []
    assert seen["live"] == []
    # the payloads are shown to the reader as text
    for text in (HOSTILE["therapist"], HOSTILE["session"], "<b onmouseover=alert(2)>usual</b>",
                 "<script>alert('file')</script>.csv"):
        assert text in seen["text"]


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


def _text(page: str) -> str:
    """The visible text of a page: tags removed, entities decoded, spaces collapsed."""
    import html as html_lib

    text = " ".join(html_lib.unescape(re.sub(r"<[^>]+>", " ", page)).split())
    return re.sub(r" ([,.;)])", r"\1", text)  # "x , y ." from inline tags -> "x, y."


def _section(page: str, anchor: str) -> str:
    """The visible text of one section of the report."""
    start = page.index(f'<section id="{anchor}">')
    return _text(page[start:page.index("</section>", start)])


@pytest.mark.slow
def test_truth_bias_equation_is_the_model_fitted(report: Path, prn: pd.DataFrame) -> None:
    """Issue 20.1: the equation text describes the random part actually fitted
    (random="auto": random truth force, simplified when singular) with the steps."""
    from alliancestats import fit_truth_bias

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        direct = fit_truth_bias(prn, judgment="alliance_therapist", truth="alliance_patient",
                                groups=["therapist", "patient"],
                                moderators=["condition", "session"])
    section = _section(report.read_text(encoding="utf-8"), "truth_bias")
    vc = direct.variance_components
    kept = {lv: list(vc.loc[vc["level"] == lv, "term"]) for lv in ("therapist", "patient")}
    words = {"Intercept": "intercept", "alliance_patient": "truth force"}
    for level, terms in kept.items():
        level_name = RENAMED[level]
        described = f"{level_name}: random {' and '.join(words[t] for t in terms)}"
        assert described in section, (described, section[:1500])
    assert "random truth force at the therapist and the patient level" in section
    assert direct.random_fallback, "the bundled data need the fallback (test premise)"
    for step in direct.random_fallback:
        assert step["reason"] in section
    # the fitted formula printed is the kept structure, under the renamed columns
    assert "(1 + I(wai_p - " in section
    assert "| ther_id) + (1 | ther_id:pat_id)" in section


@pytest.mark.slow
def test_growth_uses_the_recommended_structure_and_says_it_is_singular(
        report: Path) -> None:
    """Issue 20.2: random="rater_slopes_therapist" (the growth guide's structure for
    rater-stacked data); on the bundled data it is singular, which the report says
    instead of switching to another structure."""
    from alliancestats.report import GROWTH_RANDOM

    assert GROWTH_RANDOM == "rater_slopes_therapist"
    section = _section(report.read_text(encoding="utf-8"), "growth")
    assert "(1 + rater:I(sess - 1) | ther_id)" in section
    assert "(0 + rater + rater:I(sess - 1) | ther_id:pat_id)" in section
    assert "The fit is singular" in section
    assert "pat_id: the covariance matrix of its 4 random terms has rank 3" in section
    assert "keeps this structure rather than switching" in section


@pytest.mark.slow
def test_header_names_the_inference_and_the_rsa_has_the_session_control(
        report: Path) -> None:
    text = _text(report.read_text(encoding="utf-8"))
    assert "t tests with Satterthwaite degrees of freedom" in text
    assert "z-based" not in text
    # issue 20.3 / 14.14: session is a control of the lagged RSA, as in the power design
    assert "+ sess + wb_lag1 +" in text
    assert "Session is a control" in text


@pytest.mark.slow
def test_reference_levels_and_arm_labels_come_from_the_data(tmp_path: Path) -> None:
    """Issue 14.9: with "trained"/"usual care" (where the alphabetical reference would be
    "trained") a Categorical's order sets the reference, and every model section prints
    it; arm labels are the data's."""
    from alliancestats.report import run_report

    lab = pd.read_csv(Path(__file__).parent / "data" / "lab_long.csv")
    lab["Group"] = pd.Categorical(lab["Group"].map({"training": "trained",
                                                    "control": "usual care"}),
                                  categories=["usual care", "trained"])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run = run_report(lab, out=tmp_path, roles=LAB_ROLES, progress=False)
    assert run.ok, run.failures
    page = run.path.read_text(encoding="utf-8")
    text = _text(page)
    for anchor in ("growth", "truth_bias", "lagged_rsa"):
        assert re.search(r"Reference levels: (rater = therapist, )?Group = usual care\.",
                         _section(page, anchor)), anchor
    assert "Reference levels: rater = therapist, Group = usual care" in text
    assert "Differences from the reference condition (usual care)" in text
    assert "the reference level Group = usual care" in text  # growth equation
    assert "trained" in text
    assert "Group = 0" not in text


def test_many_observations_are_not_drawn_on_the_contours(
        tmp_path: Path, prn: pd.DataFrame, monkeypatch: pytest.MonkeyPatch) -> None:
    import alliancestats.report as report_module

    _fast_roles(monkeypatch)
    monkeypatch.setattr(report_module, "MAX_POINTS", 10)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        page = write_report(prn, out=tmp_path, progress=False).read_text(encoding="utf-8")
    assert "observations are not drawn, more than 10" in page
