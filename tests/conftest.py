"""Shared pytest configuration: non-interactive matplotlib, hypothesis profiles."""

from __future__ import annotations

import os

os.environ.setdefault("MPLBACKEND", "Agg")

import matplotlib

matplotlib.use("Agg")

from hypothesis import settings

# CI runs on 2 cores: keep property tests small, free of wall-clock deadlines, and
# derandomized so that every run checks the same examples (reproducible CI). Use
# HYPOTHESIS_PROFILE=dev for a randomized, larger search.
settings.register_profile("ci", max_examples=30, deadline=None, derandomize=True)
settings.register_profile("dev", max_examples=100, deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))
