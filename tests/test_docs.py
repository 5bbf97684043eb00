"""The documentation builds without a single warning (``sphinx-build -W``)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[1] / "docs"


@pytest.mark.slow
def test_docs_build_without_warnings(tmp_path: Path) -> None:
    pytest.importorskip("sphinx")
    pytest.importorskip("numpydoc")
    env = {**os.environ, "MPLBACKEND": "Agg"}
    proc = subprocess.run(
        [sys.executable, "-m", "sphinx", "-W", "--keep-going", "-q", "-b", "html",
         "-d", str(tmp_path / "doctrees"), str(DOCS), str(tmp_path / "html")],
        env=env, capture_output=True, text=True, timeout=600, check=False)
    assert proc.returncode == 0, proc.stderr[-5000:]
    html = tmp_path / "html"
    for page in ("index.html", "coming_from_r.html", "user_guide/rsa.html",
                 "generated/alliancestats.plot_surface.html", "changelog.html"):
        assert (html / page).exists(), page
    assert "Edwards" in (html / "user_guide" / "rsa.html").read_text(encoding="utf-8")


def test_every_user_guide_page_is_in_the_toctree() -> None:
    index = (DOCS / "user_guide" / "index.rst").read_text()
    pages = {p.stem for p in (DOCS / "user_guide").glob("*.rst")} - {"index"}
    assert pages
    assert all(f"   {p}\n" in index for p in pages)
