"""Cluster bootstrap and congruence-test records for response surface analysis."""

from __future__ import annotations

import itertools
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ..exceptions import ConvergenceWarning
from .congruence import axis_lines, curvatures, determinant
from .family import SURFACE_WEIGHTS, axes_and_point

if TYPE_CHECKING:
    from .fit import Design, Estimate, Spec

__all__ = ["BOOT_QUANTITIES", "CongruenceTest", "RSABootstrap", "boot_labels", "chunked",
           "collect", "replicate_chunk", "surface_quantities", "warn_failures"]

#: Quantities recomputed in every bootstrap replicate, per level: a1..a5, the stationary
#: point, the principal axes, the axes' intercepts as lines of extrema (defined on a
#: rising ridge too; see :func:`~alliancestats.rsa.congruence.axis_lines`), the
#: principal-axis curvatures and eigenvalues (R RSA's PA1.curv, PA2.curv, l1, l2) and
#: D = 4 b3 b5 - b4^2.
BOOT_QUANTITIES = ("a1", "a2", "a3", "a4", "a5", "X0", "Y0", "p10", "p11", "p20", "p21",
                   "p10_line", "p20_line", "PA1.curv", "PA2.curv", "l1", "l2", "D")
# Null values of the bootstrap p-values (R RSA's confint: 1 for slopes of axes).
_NULL = {"p11": 1.0, "p21": -1.0}


def surface_quantities(B: np.ndarray) -> np.ndarray:
    """a1..a5, X0, Y0, p10, p11, p20, p21 for each level of ``B`` (L x 6), flattened."""
    rows = []
    for b in B:
        geo, _ = axes_and_point(b)
        geo.update(axis_lines(b))
        geo.update(curvatures(b))
        geo["D"] = determinant(b)
        rows.append([*(SURFACE_WEIGHTS @ b), *(geo[k] for k in BOOT_QUANTITIES[5:])])
    return np.asarray(rows, dtype=float).ravel()


def _resample(design: Design, gen: np.random.Generator) -> Design:
    """Rows drawn with replacement: whole top-level clusters, or cases when single-level.

    A cluster drawn twice becomes two clusters (new top-level labels), as the units are
    independent draws from the population of therapists.
    """
    if design.groups is None:
        rows = gen.integers(0, design.nobs, design.nobs)
        return design.take(rows, None)
    top = design.groups.columns[0]
    codes, uniques = pd.factorize(design.groups[top])
    members = [np.flatnonzero(codes == c) for c in range(len(uniques))]
    draw = gen.integers(0, len(uniques), len(uniques))
    rows = np.concatenate([members[c] for c in draw])
    labels = np.concatenate([np.full(len(members[c]), i) for i, c in enumerate(draw)])
    groups = design.groups.iloc[rows].reset_index(drop=True)
    groups[top] = labels
    return design.take(rows, groups)


def _linear_ols(design: Design, spec: Spec) -> bool:
    """Whether a refit is ordinary least squares on a fixed design (single level, a
    model without an angle or pieces), so that resampling rows resamples its rows."""
    family = spec.family
    return (design.groups is None and not family.nonlinear
            and [p.name for p in family.pieces] == [family.name])


def _ols_chunk(design: Design, spec: Spec, gens: list[np.random.Generator],
               refit: Callable[[Design, Spec], Estimate]) -> list[np.ndarray | str]:
    """Case-resampling replicates of a linear single-level model by least squares on the
    resampled rows of the original design matrix (what a refit computes, without
    rebuilding the design and the statsmodels results each time). A resample that the
    estimator would refuse (rank-deficient, or a ``by`` level with too few rows) goes
    through ``refit`` itself, so that failures and their messages are the same."""
    from .fit import exog_matrix  # fit imports this module

    X, _, M, _ = exog_matrix(design, spec.family)
    y = np.asarray(design.endog, dtype=float)
    n_levels, p = len(design.levels), X.shape[1]
    out: list[np.ndarray | str] = []
    for gen in gens:
        rows = gen.integers(0, design.nobs, design.nobs)
        counts = np.bincount(design.codes[rows], minlength=n_levels)
        thin = design.has_by and bool(np.any(counts <= spec.family.k + 1))
        if thin or np.linalg.matrix_rank(X[rows]) < p:
            out.append(_refit_one(design.take(rows, None), spec, refit))
            continue
        coef = np.linalg.lstsq(X[rows], y[rows], rcond=None)[0]
        out.append(surface_quantities((M @ coef).reshape(n_levels, -1)))
    return out


def _refit_one(design: Design, spec: Spec, refit: Callable[[Design, Spec], Estimate]
               ) -> np.ndarray | str:
    """One refit's quantities, or its failure message."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            est = refit(design, spec)
        return surface_quantities(est.B)
    except (ValueError, np.linalg.LinAlgError, ArithmeticError) as err:
        return f"{type(err).__name__}: {str(err).splitlines()[0][:120]}"


def replicate_chunk(
    design: Design, spec: Spec, gens: list[np.random.Generator],
    refit: Callable[[Design, Spec], Estimate],
) -> list[np.ndarray | str]:
    """Refit the model (``refit``, the estimator of the original fit) on one resample per
    generator; a failure yields its message. Linear single-level models take the
    least-squares fast path (:func:`_ols_chunk`, the same numbers)."""
    if _linear_ols(design, spec):
        return _ols_chunk(design, spec, gens, refit)
    return [_refit_one(_resample(design, gen), spec, refit) for gen in gens]


@dataclass(frozen=True)
class RSABootstrap:
    """Percentile bootstrap of the surface parameters, stationary point and axes.

    Attributes
    ----------
    draws : DataFrame
        One row per successful replicate, one column per quantity (level-prefixed with
        ``by``).
    estimates : Series
        The quantities on the original data.
    n_requested, n_failed : int
        Replicates asked for and those whose refit failed (excluded from ``draws``).
    failures : dict
        Failure message -> count.
    cluster : str
        What was resampled (the outermost grouping column, or "rows").
    alpha : float
    """

    draws: pd.DataFrame
    estimates: pd.Series
    n_requested: int
    n_failed: int
    failures: dict[str, int]
    cluster: str
    alpha: float = 0.05

    @property
    def unit(self) -> str:
        """Deprecated name of :attr:`cluster` (``unit`` means the repeated-measures unit
        everywhere else); removed in the next release."""
        warnings.warn("RSABootstrap.unit is deprecated; use RSABootstrap.cluster.",
                      FutureWarning, stacklevel=2)
        return self.cluster

    def conf_int(self, alpha: float | None = None) -> pd.DataFrame:
        """Estimate, bootstrap SE, percentile CI and two-sided bootstrap p-value.

        The p-value is ``2 min(P(theta* < null), 1 - P(theta* < null))`` (R RSA's
        ``confint``), with null 0, except 1 for p11 and -1 for p21.
        """
        a = self.alpha if alpha is None else alpha
        if not 0 < a < 1:
            raise ValueError(f"`alpha` must be between 0 and 1; got {a!r}.")
        draws = self.draws
        rows = {}
        for col in draws.columns:
            values = draws[col].to_numpy(float)
            values = values[np.isfinite(values)]
            null = _NULL.get(str(col).split(":")[-1], 0.0)
            share = float(np.mean(values < null)) if len(values) else np.nan
            rows[col] = {
                "estimate": self.estimates[col],
                "std_error": float(np.std(values, ddof=1)) if len(values) > 1 else np.nan,
                "conf_low": float(np.quantile(values, a / 2)) if len(values) else np.nan,
                "conf_high": float(np.quantile(values, 1 - a / 2)) if len(values) else np.nan,
                "p_value": 2 * min(share, 1 - share),
                "n_valid": len(values),
            }
        return pd.DataFrame.from_dict(rows, orient="index")

    def __repr__(self) -> str:
        return (f"<RSABootstrap: {self.n_requested} replicates resampling {self.cluster}, "
                f"{self.n_failed} failed>\n{self.conf_int().round(4).to_string()}")


def collect(
    results: list[np.ndarray | str], labels: list[str], estimates: np.ndarray
) -> tuple[pd.DataFrame, pd.Series, int, dict[str, int]]:
    """Split replicate outcomes into the draws table and a failure tally."""
    ok = [r for r in results if not isinstance(r, str)]
    fails = Counter(r for r in results if isinstance(r, str))
    draws = pd.DataFrame(np.vstack(ok) if ok else np.empty((0, len(labels))), columns=labels)
    return draws, pd.Series(estimates, index=labels), sum(fails.values()), dict(fails)


@dataclass(frozen=True)
class CongruenceTest:
    """The conditions of a congruence hypothesis, how each was tested, and the verdict.

    Attributes
    ----------
    table : DataFrame
        The checklist, one row per condition (index ``quantity``): ``route``
        ("equivalence", "significance"), estimate, conf_low, conf_high (the
        (1 - alpha) interval), ``tost_low``/``tost_high`` (the (1 - 2 alpha) interval an
        equivalence test compares with its bounds), ``bound_low``/``bound_high``, df,
        p_value (TOST p-value for equivalence rows), test, requirement, met, outcome
        (in words), ``can_show`` and ``cannot_show``.
    verdict : bool
        True when the conditions are *consistent with congruence* on the chosen
        ``route``: every equivalence criterion shown and a4 significant with the
        predicted sign ("equivalence"), or the congruence models carrying at least
        ``min_weight`` of the AICc weight and a4 significant ("model comparison").
        False means "not established", not "refuted".
    variant : str
        "strict" (p10, p11, a3, a4; Humberg, Nestler & Back 2019) or "a5" (a5, a3, a4;
        Nestler, Humberg & Schönbrodt 2019).
    direction : str
        "maximum" (a ridge: the outcome is highest at congruence, a4 < 0) or "minimum".
    level : Any
        The surface tested (a ``by`` level, "within"/"between"), or None.
    interval : str
        How the intervals of the principal axis were made: "percentile bootstrap" or
        "delta" (or "none" with ``variant="a5"``).
    reasons : tuple of str
        One sentence per criterion, the verdict, the ridge message if any, and the
        descriptions of ``details``.
    details : DataFrame
        Not part of the verdict: a1, a2 (``met`` = significant, a level effect along the
        line of congruence), the stationary point X0, Y0 (``met`` = inside the observed
        data), Y0 - X0 and D = 4 b3 b5 - b4^2 (``met`` = its interval excludes 0, i.e. a
        stationary point is established).
    route : str
        The route that decides ``verdict``: "equivalence" or "model comparison".
    routes : dict
        Outcome of every route that was evaluated (route -> bool, or None when not
        available, e.g. model comparison for fits with several surfaces).
    bounds : dict
        Smallest effects of interest used (a3, a5, p10, p11; units of the fitted surface).
    ridge : bool
        Whether 4 b3 b5 - b4^2 is indistinguishable from 0 (a ridge or valley line: the
        stationary point is not established and not used).
    model_comparison : DataFrame
        AICc table of SQD, RR (congruent) against SSQD, SRR, SRRR, full (empty when not
        evaluated).
    model_criterion : DataFrame
        The model-comparison criterion as a row like those of ``table`` (see
        :attr:`criteria`).
    """

    table: pd.DataFrame
    verdict: bool
    variant: str
    direction: str
    level: Any = None
    interval: str = "delta"
    reasons: tuple[str, ...] = ()
    details: pd.DataFrame = field(default_factory=pd.DataFrame)
    route: str = "equivalence"
    routes: dict[str, bool | None] = field(default_factory=dict)
    bounds: dict[str, float] = field(default_factory=dict)
    ridge: bool = False
    model_comparison: pd.DataFrame = field(default_factory=pd.DataFrame)
    model_criterion: pd.DataFrame = field(default_factory=pd.DataFrame)

    @property
    def criteria(self) -> pd.DataFrame:
        """The verdict table: :attr:`table` (the checklist) plus the model-comparison
        criterion (the summed AICc weight of SQD and RR), when it was evaluated."""
        if self.model_criterion.empty:
            return self.table.copy()
        return pd.concat([self.table, self.model_criterion])

    @property
    def conclusion(self) -> str:
        """The verdict in words: "conditions consistent with congruence" or
        "congruence not established"."""
        return ("conditions consistent with congruence" if self.verdict
                else "congruence not established")

    def __repr__(self) -> str:
        where = "" if self.level is None else f" (level {self.level})"
        cols = ["route", "estimate", "tost_low", "tost_high", "bound_low", "bound_high",
                "p_value", "met", "outcome"]
        table = self.criteria
        shown = table[[c for c in cols if c in table.columns]]
        return (f"Congruence test{where}, variant {self.variant!r}, outcome "
                f"{self.direction} on the line of congruence, {self.interval} intervals\n"
                f"{shown.round(4).to_string()}\nVerdict ({self.route} route): "
                f"{self.conclusion}" + "".join(f"\n  - {r}" for r in self.reasons))

    def _repr_html_(self) -> str:
        items = "".join(f"<li>{r}</li>" for r in self.reasons)
        return (f"<p>Congruence test ({self.variant}, {self.route} route): "
                f"<b>{self.conclusion}</b></p>" + self.criteria.to_html()
                + (f"<ul>{items}</ul>" if items else ""))


def chunked(items: list[Any], n_chunks: int) -> list[list[Any]]:
    """Split ``items`` into at most ``n_chunks`` contiguous chunks (order kept)."""
    n_chunks = max(1, min(n_chunks, len(items)))
    bounds = np.linspace(0, len(items), n_chunks + 1).astype(int)
    return [items[a:b] for a, b in itertools.pairwise(bounds) if b > a]


def boot_labels(levels: tuple[Any, ...]) -> list[str]:
    """Column names of the bootstrap draws."""
    if levels == (None,):
        return list(BOOT_QUANTITIES)
    return [f"{lev}:{q}" for lev in levels for q in BOOT_QUANTITIES]


def warn_failures(n_failed: int, n: int) -> None:
    """Warn when many refits failed (their share biases the percentile intervals)."""
    if n_failed > 0.1 * n:
        warnings.warn(f"{n_failed} of {n} bootstrap refits failed; see `.failures`.",
                      ConvergenceWarning, stacklevel=3)
