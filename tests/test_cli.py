"""The ``alliancestats`` command: report and power subcommands, error handling."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
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


def test_power_model_options_reach_power(tmp_path: Path) -> None:
    """--random/--residual/--ddf/--test choose the fitted model as power()'s arguments
    do: the same numbers as the call."""
    from alliancestats import power

    out = tmp_path / "pw"
    status = cli.main(["power", "--therapists", "6", "--patients", "18", "--sessions", "3",
                       "--sims", "3", "--seed", "1", "--random", "intercept", "--residual",
                       "ar1", "--ddf", "z", "--test", "truth_force_difference_first",
                       "--out", str(out), "--no-progress"])
    assert status == 0
    direct = power("truth_bias", n_therapists=6, n_patients=18, n_sessions=3, n_sims=3,
                   rng=1, random="intercept", residual="ar1", ddf="z",
                   targets=["truth_force_difference_first"], progress=False)
    table = pd.read_csv(out / "power.csv")
    assert list(table["term"]) == ["truth_force_difference_first"]
    np.testing.assert_allclose(table["power"], direct.power["power"])
    replicates = pd.read_csv(out / "replicates.csv")
    np.testing.assert_allclose(replicates["estimate"], direct.estimates.stack().to_numpy())


def test_power_bad_model_option_is_one_line(tmp_path: Path,
                                            capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["power", "--design", "growth", "--random", "nonsense",
                       "--out", str(tmp_path)])
    err = capsys.readouterr().err.strip()
    assert status == 2
    assert err.count("\n") == 0
    assert "`random` must be one of 'rater_slopes_therapist', 'rater_slopes'" in err


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


# --------------------------------------------------------------------------- a lab's export

DATA = Path(__file__).parent / "data"
LAB_ROLES = ("--therapist", "Therapist_ID", "--patient", "ClientID", "--session", "Sess",
             "--condition", "Group", "--alliance-therapist", "WAI_T",
             "--alliance-patient", "WAI_C", "--wellbeing", "ORS")


@pytest.fixture(scope="module")
def lab_sav_report(tmp_path_factory: pytest.TempPathFactory
                   ) -> tuple[subprocess.CompletedProcess[str], Path]:
    """The SPSS export (Group coded 0/1 with value labels) through the command."""
    cwd = tmp_path_factory.mktemp("lab")
    proc = _run("report", str(DATA / "lab_long.sav"), "--out", "out", *LAB_ROLES, cwd=cwd)
    return proc, cwd / "out"


@pytest.mark.slow
def test_lab_export_report_has_no_failed_section(
        lab_sav_report: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    proc, out = lab_sav_report
    assert proc.returncode == 0, proc.stderr
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "(failed)" not in page
    assert "could not be" not in page
    for name in ("observed_means", "growth_trajectories", "truth_bias", "rsa_contour",
                 "rsa_surface", "lagged_agreement"):
        assert (out / "figures" / f"{name}.png").exists(), name


@pytest.mark.slow
def test_lab_export_report_shows_value_labels_and_integer_sessions(
        lab_sav_report: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    _proc, out = lab_sav_report
    page = (out / "report.html").read_text(encoding="utf-8")
    assert "<td>training</td>" in page
    assert "<td>control</td>" in page
    assert "<td>1–6</td>" in page  # session range, not 1.00–6.00
    assert "1.00" not in re.findall(r"<th>Sess</th>.*?</table>", page, re.S)[0][:400]
    est = pd.read_csv(out / "estimates.csv")
    assert any("training" in str(t) for t in est["term"])


@pytest.mark.slow
def test_lab_export_lagged_row_counts_add_up(
        lab_sav_report: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    page = (lab_sav_report[1] / "report.html").read_text(encoding="utf-8")
    sentence = re.search(r"(\d+) of (\d+) rows were analysed; of the other (\d+), (.*?)\.</p>",
                         page)
    assert sentence is not None
    used, rows_in, other = (int(sentence[i]) for i in (1, 2, 3))
    parts = [int(n) for n in re.findall(r"(\d+) (?:have|no|a missing)", sentence[4])]
    assert used + other == rows_in
    assert sum(parts) == other
    assert rows_in == len(pd.read_csv(DATA / "lab_long.csv"))


# --------------------------------------------------------------------------- exit status


def test_failed_model_section_exits_1_unless_keep_going(tmp_path: Path) -> None:
    # one session only: no growth, no lag; the report is written and says why
    lab = pd.read_csv(DATA / "lab_long.csv")
    lab[lab["Sess"] == 1].to_csv(tmp_path / "first.csv", index=False)
    proc = _run("report", "first.csv", "--out", "out", "--quiet", *LAB_ROLES, cwd=tmp_path)
    assert proc.returncode == 1
    assert "Traceback" not in proc.stderr
    assert "failed: Lagged response surface" in proc.stderr
    assert "--keep-going" in proc.stderr
    assert (tmp_path / "out" / "report.html").exists()
    kept = _run("report", "first.csv", "--out", "out2", "--quiet", "--keep-going",
                *LAB_ROLES, cwd=tmp_path)
    assert kept.returncode == 0, kept.stderr
    assert kept.stderr == ""


def test_figures_path_taken_by_a_file_fails_before_fitting(tmp_path: Path) -> None:
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "figures").write_text("not a directory")
    proc = _run("report", str(DATA / "lab_long.csv"), "--out", "out", *LAB_ROLES,
                cwd=tmp_path)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith("alliancestats report: error: `out`:")
    assert "is not a directory" in lines[-1]
    assert not any("Growth" in line for line in lines)  # nothing was fitted


# --------------------------------------------------------------------------- reading files


def _blocked_out(tmp_path: Path) -> Path:
    """An --out that fails after the data are read and checked, before any fitting."""
    block = tmp_path / "blocked"
    block.write_text("x")
    return block


def test_european_csv_is_sniffed(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    lab = pd.read_csv(DATA / "lab_long.csv")
    lab.to_csv(tmp_path / "eu.csv", sep=";", decimal=",", index=False, encoding="utf-8-sig")
    status = cli.main(["report", str(tmp_path / "eu.csv"), "--out",
                       str(_blocked_out(tmp_path)), *LAB_ROLES])
    err = capsys.readouterr().err
    assert status == 2
    # the columns were found and the ratings are numeric: only the output is refused
    assert "is not a directory" in err


def test_sep_decimal_encoding_options(tmp_path: Path,
                                      capsys: pytest.CaptureFixture[str]) -> None:
    lab = pd.read_csv(DATA / "lab_long.csv")
    lab["Group"] = lab["Group"].map({"control": "Kontrolle", "training": "Übung"})
    lab.to_csv(tmp_path / "latin.txt", sep="|", decimal=",", index=False, encoding="latin-1")
    blocked = str(_blocked_out(tmp_path))
    status = cli.main(["report", str(tmp_path / "latin.txt"), "--out", blocked,
                       "--sep", "|", "--decimal", ",", *LAB_ROLES])
    err = capsys.readouterr().err
    assert status == 2
    assert "--encoding latin-1" in err
    status = cli.main(["report", str(tmp_path / "latin.txt"), "--out", blocked, "--sep", "|",
                       "--decimal", ",", "--encoding", "latin-1", *LAB_ROLES])
    err = capsys.readouterr().err
    assert status == 2
    assert "is not a directory" in err


def test_text_options_on_a_binary_format(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    status = cli.main(["report", str(DATA / "lab_long.sav"), "--out", str(tmp_path / "o"),
                       "--sep", ";"])
    err = capsys.readouterr().err
    assert status == 2
    assert "--sep only apply to text files" in err


def test_directory_as_data(tmp_path: Path) -> None:
    proc = _run("report", str(DATA), "--out", "out", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "is a directory" in proc.stderr


def test_wide_export_points_to_sessions_to_long(tmp_path: Path) -> None:
    proc = _run("report", str(DATA / "lab_wide.csv"), "--out", "out", "--therapist",
                "Therapist_ID", "--patient", "ClientID", "--condition", "Group", cwd=tmp_path)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1
    assert "look wide" in proc.stderr
    assert "sessions_to_long" in proc.stderr
