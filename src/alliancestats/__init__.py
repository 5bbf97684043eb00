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
from .growth import GrowthResults, fit_growth
from .plotting import (
    plot_lagged_agreement,
    plot_power,
    plot_surface,
    plot_trajectories,
    plot_truth_bias,
)
from .power import (
    PowerResult,
    SizeSearch,
    find_size,
    null_effects,
    power,
    power_sensitivity,
)
from .results import ModelComparison, ResidualComparison, compare_models, compare_residuals
from .rsa import RSAResults, compare_rsa, fit_lagged_rsa, fit_rsa
from .simulate import PRNParams, simulate_prn
from .synthesis import BoxScoreResult, box_score, plot_box_score, vote_count_estimate
from .truthbias import TruthBiasResults, fit_truth_bias

__all__ = [
    "BoxScoreResult",
    "GrowthResults",
    "ModelComparison",
    "PRNParams",
    "PowerResult",
    "RSAResults",
    "ResidualComparison",
    "SizeSearch",
    "TruthBiasResults",
    "__version__",
    "add_lags",
    "box_score",
    "center_grand_mean",
    "center_pooled",
    "center_within",
    "compare_models",
    "compare_residuals",
    "compare_rsa",
    "datasets",
    "exceptions",
    "find_size",
    "fit_growth",
    "fit_lagged_rsa",
    "fit_rsa",
    "fit_truth_bias",
    "null_effects",
    "plot_box_score",
    "plot_lagged_agreement",
    "plot_power",
    "plot_surface",
    "plot_trajectories",
    "plot_truth_bias",
    "power",
    "power_sensitivity",
    "read_data",
    "sessions_to_long",
    "sessions_to_wide",
    "simulate_prn",
    "stack_raters",
    "vote_count_estimate",
]
