"""Warning classes of alliancestats.

All warnings the library emits derive from :class:`AllianceStatsWarning`, itself a
``UserWarning``, so one filter silences or escalates them all::

    import warnings
    from alliancestats.exceptions import AllianceStatsWarning
    warnings.simplefilter("error", AllianceStatsWarning)

Warnings raised by statsmodels during a fit are captured, re-emitted as one of these
classes (keeping the original text) and stored on the result's ``warnings`` list.
"""

from __future__ import annotations

__all__ = [
    "AllianceStatsWarning",
    "BoundaryFitWarning",
    "ConvergenceWarning",
    "DataWarning",
]


class AllianceStatsWarning(UserWarning):
    """Base class of every warning emitted by alliancestats."""


class ConvergenceWarning(AllianceStatsWarning):
    """The optimiser did not converge, or stopped short of the best likelihood found."""


class BoundaryFitWarning(AllianceStatsWarning):
    """Singular (boundary) fit: a variance at zero or a correlation at +/-1.

    As in lme4 (``isSingular``), the fit is kept: the fixed effects remain valid, but the
    random-effects structure is richer than the data support.
    """


class DataWarning(AllianceStatsWarning):
    """Something about the data deserves attention (dropped rows, small groups, ...)."""
