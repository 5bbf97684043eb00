"""alliancestats: statistics of therapist-patient agreement in psychotherapy research."""

from __future__ import annotations

__version__ = "0.1.0.dev0"

from . import exceptions

__all__ = ["__version__", "exceptions"]
