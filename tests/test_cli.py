"""The ``alliancestats`` command: report and power subcommands, error handling."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

import alliancestats
from alliancestats import cli, datasets


def _run(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    src = Path(alliancestats.__file__).parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    return subprocess.run([sys.executable, "-m", "alliancestats.cli", *args], cwd=cwd,
                          env=env, capture_output=True, text=True, timeout=300, check=False)


@pytest.mark.slow
def test_report_end_to_end_with_column_options(tmp_path: Path) -> None:
    prn = datasets.load("prn")
    # 8 therapists per arm keep the run short; the full data set is in test_report.py
    keep = prn.drop_duplicates("therapist").groupby("condition")["therapist"].head(8)
    data = prn[prn["therapist"].isin(keep)].rename(
        columns={"alliance_patient": "WAI patient", "session": "visit"})
    data.to_csv(tmp_path / "trial.csv", index=False)
    proc = _run("report", "trial.csv", "--out", "out", "--session", "visit",
                "--alliance-patient", "WAI patient", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == ""
    assert "alliancestats report: wrote" in proc.stderr
    page = (tmp_path / "out" / "report.html").read_text(encoding="utf-8")
    assert "alliancestats report trial.csv --out out --session visit" in page
    assert "&#x27;WAI patient&#x27;" in page or "'WAI patient'" in page
    est = pd.read_csv(tmp_path / "out" / "estimates.csv")
    assert "lagged_rsa" in set(est["model"])
    assert (tmp_path / "out" / "figures" / "rsa_contour.svg").exists()


def test_missing_file_is_one_line(tmp_path: Path) -> None:
    proc = _run("report", "nope.csv", "--out", "out", cwd=tmp_path)
    assert proc.returncode == 2
    assert "Traceback" not in proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1
    assert "no such file" in lines[0]
    assert "nope.csv" in lines[0]
    assert not (tmp_path / "out").exists()


def test_bad_column_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["report", "--out", str(tmp_path / "o"), "--wellbeing", "well_being"])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1
    assert err.startswith("alliancestats report: error: `wellbeing` refers to column "
                          "'well_being'")
    assert "Close matches: 'wellbeing'" in err


def test_unreadable_file_is_one_line(tmp_path: Path,
                                     capsys: pytest.CaptureFixture[str]) -> None:
    (tmp_path / "x.parquet").write_text("not parquet")
    status = cli.main(["report", str(tmp_path / "x.parquet"), "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1
    assert "Could not read" in err


def test_unwritable_output_is_one_line(tmp_path: Path,
                                       capsys: pytest.CaptureFixture[str]) -> None:
    blocker = tmp_path / "taken"
    blocker.write_text("a file where the output directory should go")
    status = cli.main(["report", "--out", str(blocker / "out")])
    err = capsys.readouterr().err
    assert status == 2
    assert err.count("\n") == 1
    assert err.startswith("alliancestats report: error:")
    assert "taken" in err


def test_usage_errors_exit_2(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["report"])  # --out is required
    assert exc.value.code == 2
    assert "--out" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        cli.main([])


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exc:
        cli.main(["--version"])
    assert exc.value.code == 0
    assert alliancestats.__version__ in capsys.readouterr().out


def test_power_subcommand(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "pw"
    status = cli.main(["power", "--design", "truth_bias", "--therapists", "6,10",
                       "--patients", "18", "--sims", "3", "--seed", "1", "--out", str(out),
                       "--no-progress"])
    assert status == 0
    table = pd.read_csv(out / "power.csv")
    assert sorted(table["n_therapists"]) == [6, 10]
    assert (out / "power.png").stat().st_size > 1000


def test_power_bad_option_is_one_line(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["power", "--therapists", "ten", "--out", str(tmp_path)])
    err = capsys.readouterr().err
    assert status == 2
    assert err.strip() == ("alliancestats power: error: `--therapists` must be "
                           "comma-separated integers; got 'ten'.")


def test_console_script_is_declared() -> None:
    text = (Path(__file__).parents[1] / "pyproject.toml").read_text()
    assert 'alliancestats = "alliancestats.cli:main"' in text
