"""alliancestats: statistics of therapist-patient agreement in psychotherapy research."""

from __future__ import annotations

__version__ = "0.1.0.dev0"

from . import exceptions
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

__all__ = [
    "__version__",
    "add_lags",
    "center_grand_mean",
    "center_pooled",
    "center_within",
    "exceptions",
    "read_data",
    "sessions_to_long",
    "sessions_to_wide",
    "stack_raters",
]
