"""Every script in ``examples/`` runs to the end (Agg backend, fresh interpreter)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

import alliancestats

EXAMPLES = sorted((Path(__file__).resolve().parents[1] / "examples").glob("*.py"))
# Scripts that take more than about 5 s on two cores.
SLOW = {"plan_a_trial.py", "prn_trial_analysis.py"}


def test_examples_are_found() -> None:
    names = {p.name for p in EXAMPLES}
    assert {"prn_trial_analysis.py", "single_level_rsa.py", "truth_bias_moderator.py",
            "read_spss_file.py"} <= names


@pytest.mark.parametrize(
    "script",
    [pytest.param(p, id=p.stem, marks=[pytest.mark.slow] if p.name in SLOW else [])
     for p in EXAMPLES],
)
def test_example_runs(script: Path, tmp_path: Path) -> None:
    env = {**os.environ, "MPLBACKEND": "Agg"}
    src = Path(alliancestats.__file__).parents[1]
    env["PYTHONPATH"] = os.pathsep.join([str(src), env.get("PYTHONPATH", "")])
    proc = subprocess.run([sys.executable, str(script)], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, f"{script.name} failed:\n{proc.stderr[-3000:]}"
    assert "Traceback" not in proc.stderr
