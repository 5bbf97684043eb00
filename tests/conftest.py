"""Shared pytest configuration: non-interactive matplotlib, hypothesis profiles, and the
rater-stacked growth reference data."""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib

matplotlib.use("Agg")

import pandas as pd
import pytest
from hypothesis import settings

# CI runs on 2 cores: keep property tests small, free of wall-clock deadlines, and
# derandomized so that every run checks the same examples (reproducible CI). Use
# HYPOTHESIS_PROFILE=dev for a randomized, larger search.
settings.register_profile("ci", max_examples=30, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))


@pytest.fixture(scope="session")
def stacked_reference_data() -> Callable[[str], pd.DataFrame]:
    """``load(name)``: ``tests/reference/data/tb_<name>.csv`` stacked by rater (``rater``,
    ``alliance``), the data of the lme4 growth references; each file is read once, and
    each call returns a fresh copy."""
    stacked: dict[str, pd.DataFrame] = {}
    ratings = {"therapist": "alliance_therapist", "patient": "alliance_patient"}

    def load(name: str) -> pd.DataFrame:
        from alliancestats import stack_raters

        if name not in stacked:
            raw = pd.read_csv(Path(__file__).parent / "reference" / "data" / f"tb_{name}.csv")
            stacked[name] = stack_raters(raw, ratings=ratings)
        return stacked[name].copy()

    return load
