"""The one adapter over linear mixed-model estimation.

Model modules build a response vector, a fixed-effect design and a random-effects
specification and call :func:`fit_mixed`; it dispatches to statsmodels ``MixedLM``
(``engine="statsmodels"``) or to the project's nested-design engine (``engine="fast"``)
and returns a :class:`MixedFit`, the engine-neutral record the results classes consume.
No other module talks to statsmodels' mixed models directly.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

__all__ = ["ENGINES", "MixedFit", "fit_mixed"]

ENGINES = ("statsmodels", "fast")


@dataclass(frozen=True)
class MixedFit:
    """Engine-neutral record of a fitted linear mixed model.

    Attributes
    ----------
    fe_params : Series
        Fixed effects, indexed by design column name.
    cov_fe : DataFrame
        Their covariance, lme4's ``vcov()``: sigma^2 (X' V^-1 X)^-1 at the estimate.
    variance_components : DataFrame
        Columns level, term, variance, sd, corr (correlation with the level's first term,
        NaN for the first term), last row level "Residual".
    random_cov : dict
        Level -> covariance matrix (DataFrame) of that level's random terms.
    llf : float
        REML log-likelihood (lme4 scale) when ``reml``, else the ML log-likelihood.
    reml : bool
    nobs : int
    n_groups : dict
        Level -> number of units.
    n_cov_params : int
        Covariance parameters including the residual variance (for AIC/BIC df).
    converged, is_singular : bool
    warnings : tuple of str
        Messages captured during fitting (already re-emitted as alliancestats warnings).
    engine : str
    raw : object
        The statsmodels results object, or None.
    optimizer_info : dict
    random_effects : dict
        Level -> DataFrame of conditional modes (one row per unit).
    """

    fe_params: pd.Series
    cov_fe: pd.DataFrame
    variance_components: pd.DataFrame
    random_cov: dict[str, pd.DataFrame]
    llf: float
    reml: bool
    nobs: int
    n_groups: dict[str, int]
    n_cov_params: int
    converged: bool
    is_singular: bool
    warnings: tuple[str, ...]
    engine: str
    raw: Any = None
    optimizer_info: dict[str, Any] = field(default_factory=dict)
    random_effects: dict[str, pd.DataFrame] = field(default_factory=dict)

    def results_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for :class:`~alliancestats.results.ModelResults`."""
        return {
            "params": self.fe_params,
            "cov_params": self.cov_fe,
            "nobs": self.nobs,
            "llf": self.llf,
            "method": "REML" if self.reml else "ML",
            "n_cov_params": self.n_cov_params,
            "n_groups": self.n_groups,
            "variance_components": self.variance_components,
            "converged": self.converged,
            "is_singular": self.is_singular,
            "warnings": list(self.warnings),
            "engine": self.engine,
            "mixedlm": self.raw,
            "optimizer_info": self.optimizer_info,
            "random_effects": self.random_effects,
        }


def fit_mixed(
    endog: pd.Series,
    exog: pd.DataFrame,
    groups: pd.DataFrame,
    random: Mapping[str, Sequence[str]],
    *,
    reml: bool = True,
    engine: str = "statsmodels",
) -> MixedFit:
    """Fit a nested linear mixed model.

    Parameters
    ----------
    endog : Series
        Response (no missing values; callers drop them first).
    exog : DataFrame
        Fixed-effect design, full column rank, including an "Intercept" column.
    groups : DataFrame
        Grouping labels, columns ordered outer -> inner (e.g. therapist, patient). An
        inner unit is identified by its label together with all outer labels (lme4's
        ``therapist:patient``).
    random : mapping
        Level name (a column of ``groups``) -> names of ``exog`` columns that get random
        effects at that level ("Intercept" for a random intercept). Terms within a level
        are correlated (unstructured covariance), as lme4 ``(1 + x | level)``.
    reml : bool
        REML (default) or ML.
    engine : {"statsmodels", "fast"}

    Returns
    -------
    MixedFit
    """
    raise NotImplementedError("fit_mixed is being implemented")
