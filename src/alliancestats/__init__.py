"""alliancestats: statistics of therapist-patient agreement in psychotherapy research."""

from __future__ import annotations

__version__ = "0.1.0.dev0"

from . import datasets, exceptions
from .data import (
    add_lags,
    center_grand_mean,
    center_pooled,
    center_within,
    read_data,
    sessions_to_long,
    sessions_to_wide,
    stack_raters,
)
from .simulate import PRNParams, simulate_prn

__all__ = [
    "PRNParams",
    "__version__",
    "add_lags",
    "center_grand_mean",
    "center_pooled",
    "center_within",
    "datasets",
    "exceptions",
    "read_data",
    "sessions_to_long",
    "sessions_to_wide",
    "simulate_prn",
    "stack_raters",
]
