"""Hedges-Olkin vote-counting estimate of a common effect (with Bushman-Wang).

See :mod:`alliancestats.synthesis` for the method and references.
"""

from __future__ import annotations

import math
import types
import warnings
from collections.abc import Callable, Hashable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize, special, stats

from .._validation import check_choice, require_columns, require_frame, require_numeric
from ..exceptions import BoundaryFitWarning, DataWarning
from ..results import Summary
from ._votes import (
    _check_level,
    _check_sig_direction,
    _directions,
    _show,
    _significance,
    _single_column,
)

__all__ = ["VoteCountResult", "vote_count_estimate"]

_LOG_2PI = math.log(2 * math.pi)


# ---------------------------------------------------------------------------------------
# Hedges-Olkin vote-counting likelihood
# ---------------------------------------------------------------------------------------
def _log_phi(x: np.ndarray) -> np.ndarray:
    return -0.5 * x * x - 0.5 * _LOG_2PI


class _VoteLikelihood:
    """Log-likelihood of a common effect theta from votes and effect sizes.

    A vote study with weight w (sqrt(n~) for d, sqrt(n - 3) for Fisher z) has test statistic
    approximately N(theta w, 1); it is significant positive when above c = z_{1-alpha/2},
    significant negative when below -c (c = 0: direction only). An effect-size study
    contributes the normal density of y ~ N(theta, v). All terms are log-concave in theta
    (log Phi is concave; an interval probability of a normal is log-concave), so the
    likelihood has a single maximum, at infinity only when all votes agree (boundary).
    """

    def __init__(self, w: np.ndarray, votes: np.ndarray, crit: float, three: bool,
                 y: np.ndarray, v: np.ndarray) -> None:
        self.w, self.votes, self.c, self.three = w, votes, crit, three
        self.y, self.v = y, v

    def _log_ns(self, a: np.ndarray) -> np.ndarray:
        # log(Phi(c - a) - Phi(-c - a)), written with |a| so both terms are lower tails.
        t = np.abs(a)
        upper = special.log_ndtr(self.c - t)
        lower = special.log_ndtr(-self.c - t)
        return upper + np.log1p(-np.exp(lower - upper))

    def loglik(self, theta: Any) -> np.ndarray:
        """Log-likelihood at each value of ``theta`` (array in, array out)."""
        t = np.atleast_1d(np.asarray(theta, dtype=float))[:, None]
        a = t * self.w
        if self.three:
            terms = np.where(
                self.votes == 1, special.log_ndtr(a - self.c),
                np.where(self.votes == -1, special.log_ndtr(-a - self.c), self._log_ns(a)),
            )
        else:
            terms = np.where(self.votes == 1, special.log_ndtr(a - self.c),
                             special.log_ndtr(self.c - a))
        normal = -0.5 * (_LOG_2PI + np.log(self.v) + (self.y - t) ** 2 / self.v)
        return np.asarray(terms.sum(axis=1) + normal.sum(axis=1))

    def score(self, theta: float) -> float:
        """Derivative of the log-likelihood (decreasing in theta: concavity)."""
        a = theta * self.w
        up = np.exp(_log_phi(a - self.c) - special.log_ndtr(a - self.c))
        if self.three:
            down = np.exp(_log_phi(a + self.c) - special.log_ndtr(-a - self.c))
            lns = self._log_ns(a)
            mid = np.exp(_log_phi(a + self.c) - lns) - np.exp(_log_phi(a - self.c) - lns)
            per = np.where(self.votes == 1, up, np.where(self.votes == -1, -down, mid))
        else:
            down = np.exp(_log_phi(a - self.c) - special.log_ndtr(self.c - a))
            per = np.where(self.votes == 1, up, -down)
        return float((self.w * per).sum() + ((self.y - theta) / self.v).sum())

    def information(self, theta: float) -> float:
        """Expected (Fisher) information, sum over studies of sum_j p_j'^2 / p_j."""
        a = theta * self.w
        w2 = self.w**2
        lpos, lphi_pos = special.log_ndtr(a - self.c), _log_phi(a - self.c)
        if self.three:
            lneg, lphi_neg = special.log_ndtr(-a - self.c), _log_phi(a + self.c)
            diff = np.abs(np.exp(lphi_neg) - np.exp(lphi_pos))
            with np.errstate(divide="ignore"):
                mid = np.exp(2 * np.log(diff) - self._log_ns(a))
            per = np.exp(2 * lphi_pos - lpos) + np.exp(2 * lphi_neg - lneg) + mid
        else:
            per = np.exp(2 * lphi_pos - lpos - special.log_ndtr(self.c - a))
        return float((w2 * per).sum() + (1 / self.v).sum())


def _crossing(f: Callable[[float], float], x0: float, step: float, sign: float) -> float:
    """First x = x0 + sign * s (s > 0) where f changes sign from f(x0); inf if none."""
    f0 = f(x0)
    for _ in range(200):
        x = x0 + sign * step
        if np.sign(f(x)) != np.sign(f0):
            lo, hi = sorted((x0, x))
            return float(optimize.brentq(f, lo, hi, xtol=1e-12, rtol=1e-12))
        x0, step = x, step * 2
    return math.copysign(math.inf, sign)


def _fit_votes(lik: _VoteLikelihood, boundary: str | None, ci: float) -> dict[str, float]:
    """MLE, Wald SE, profile-likelihood CI and LR test of theta = 0 (estimation scale)."""
    scale = 1 / math.sqrt(max(lik.information(0.0), 1e-12))
    ll0 = float(lik.loglik(0.0)[0])
    if boundary is not None:
        # The supremum (log-likelihood 0) is approached at +/-inf; give the one-sided
        # profile-likelihood bound at level ci: 2 (0 - l(theta)) = z_ci^2.
        target = -0.5 * stats.norm.ppf(ci) ** 2
        sign = 1.0 if boundary == "upper" else -1.0

        def f_b(t: float) -> float:
            return float(lik.loglik(t)[0]) - target

        # l is monotone (increasing for "upper"): the crossing lies away from the supremum
        bound = _crossing(f_b, 0.0, scale, -sign if f_b(0.0) > 0 else sign)
        inf = math.copysign(math.inf, sign)
        low, high = (bound, math.inf) if sign > 0 else (-math.inf, bound)
        return {"theta": inf, "se": math.nan, "low": low, "high": high, "llf": 0.0,
                "lr": -2 * ll0, "wald_low": math.nan, "wald_high": math.nan}
    x0, step = 0.0, scale
    s0 = lik.score(x0)
    theta = _crossing(lik.score, x0, step, 1.0 if s0 > 0 else -1.0) if s0 != 0 else 0.0
    llf = float(lik.loglik(theta)[0])
    se = 1 / math.sqrt(lik.information(theta))
    cut = 0.5 * stats.chi2.ppf(ci, 1)

    def f_ci(t: float) -> float:
        return float(lik.loglik(t)[0]) - (llf - cut)

    z = stats.norm.ppf(0.5 + ci / 2)
    return {"theta": theta, "se": se, "low": _crossing(f_ci, theta, se, -1.0),
            "high": _crossing(f_ci, theta, se, 1.0), "llf": llf,
            "lr": max(2 * (llf - ll0), 0.0), "wald_low": theta - z * se,
            "wald_high": theta + z * se}


@dataclass(frozen=True)
class VoteCountResult:
    """Result of :func:`vote_count_estimate` (immutable).

    Like every other result it has ``params``, ``bse``, ``pvalues`` (Series indexed by the
    term, "delta" or "rho") and ``conf_int(alpha)`` (a DataFrame with ``conf_low`` and
    ``conf_high``), plus the scalars below.

    Attributes
    ----------
    estimate, std_error, conf_low, conf_high : float
        Common effect (d, or r back-transformed from Fisher z), Wald standard error
        (expected information; delta method for r) and profile-likelihood CI. At a boundary
        (all votes agree) the estimate is +/-inf (r: +/-1), ``std_error`` is NaN and one CI
        end is the one-sided ``ci`` bound. ``se`` is the old name of ``std_error``
        (deprecated, FutureWarning).
    wald_low, wald_high : float
        Wald interval, estimate +/- z se on the estimation scale (back-transformed for r).
    statistic, p_value : float
        Signed root of the likelihood-ratio statistic for theta = 0 and its p-value.
    theta, theta_se, theta_conf_low, theta_conf_high : float
        The same on the estimation scale (d itself, or Fisher z for r).
    method : str
    metric : {"d", "r"}
    k, k_votes, k_effect_sizes, n_positive : int
        Studies used; of them vote-count and effect-size studies; votes counted as
        positive (significant positive, or positive direction with ``direction_only``).
    alpha, ci : float
    llf : float
        Maximised log-likelihood (0 at a boundary, the supremum).
    boundary : {"upper", "lower"} or None
    warnings : tuple of str
    dropped_rows : mapping
    """

    estimate: float
    std_error: float
    conf_low: float
    conf_high: float
    wald_low: float
    wald_high: float
    statistic: float
    p_value: float
    theta: float
    theta_se: float
    theta_conf_low: float
    theta_conf_high: float
    method: str
    metric: str
    k: int
    k_votes: int
    k_effect_sizes: int
    n_positive: int
    alpha: float
    ci: float
    llf: float
    boundary: str | None
    warnings: tuple[str, ...] = ()
    dropped_rows: Mapping[str, int] = field(default_factory=lambda: types.MappingProxyType({}))
    _lik: _VoteLikelihood | None = field(default=None, repr=False, compare=False)

    def loglik(self, theta: Any) -> np.ndarray:
        """Log-likelihood at ``theta`` on the estimation scale (d, or Fisher z for r)."""
        if self._lik is None:
            raise ValueError("This result has no likelihood attached.")
        return self._lik.loglik(theta)

    def profile(self, grid: Any = None, *, num: int = 201) -> pd.DataFrame:
        """Log-likelihood curve: columns theta, loglik, deviance (and rho for r).

        ``grid`` defaults to ``num`` points spanning the profile CI widened by half its
        width on each side (a finite window at a boundary).
        """
        if grid is None:
            low, high = self.theta_conf_low, self.theta_conf_high
            if not math.isfinite(low):
                low = high - 4.0
            if not math.isfinite(high):
                high = low + 4.0
            pad = 0.5 * (high - low)
            grid = np.linspace(low - pad, high + pad, num)
        theta = np.asarray(grid, dtype=float)
        ll = self.loglik(theta)
        frame = pd.DataFrame({"theta": theta, "loglik": ll, "deviance": 2 * (self.llf - ll)})
        if self.metric == "r":
            frame.insert(1, "rho", np.tanh(theta))
        return frame

    @property
    def term(self) -> str:
        """Name of the estimated parameter: "delta" (metric d) or "rho" (metric r)."""
        return "delta" if self.metric == "d" else "rho"

    @property
    def params(self) -> pd.Series:
        """The common effect as a one-element Series indexed by :attr:`term`."""
        return pd.Series([self.estimate], index=[self.term], dtype=float)

    @property
    def bse(self) -> pd.Series:
        """Its standard error as a one-element Series indexed by :attr:`term`."""
        return pd.Series([self.std_error], index=[self.term], dtype=float)

    @property
    def pvalues(self) -> pd.Series:
        """p-value of the likelihood-ratio test of no effect, indexed by :attr:`term`."""
        return pd.Series([self.p_value], index=[self.term], dtype=float)

    @property
    def se(self) -> float:
        """Deprecated: use ``std_error`` (a float) or ``bse`` (a Series)."""
        warnings.warn("VoteCountResult.se is deprecated and will be removed in the next "
                      "release; use .std_error (a float) or .bse (a Series, as every result "
                      "has).", FutureWarning, stacklevel=2)
        return self.std_error

    def conf_int(self, alpha: float | None = None, *, kind: str = "profile") -> pd.DataFrame:
        """Confidence interval as a one-row DataFrame (``conf_low``, ``conf_high``).

        Parameters
        ----------
        alpha : float, optional
            1 - confidence level; default ``1 - ci`` of the fit (the stored interval).
        kind : {"profile", "wald"}
            Profile likelihood (default; inverts the likelihood-ratio test) or Wald
            (estimate +/- z std_error on the estimation scale, back-transformed for r).

        Returns
        -------
        DataFrame
            Indexed by :attr:`term`, as ``ModelResults.conf_int``.

        Examples
        --------
        >>> import pandas as pd
        >>> studies = pd.DataFrame({"sig": [True, False, True], "n": [40, 60, 80]})
        >>> res = vote_count_estimate(studies, significant="sig", n="n")
        >>> list(res.conf_int(0.1).columns)
        ['conf_low', 'conf_high']
        """
        if isinstance(alpha, str):  # the old signature was conf_int(kind)
            warnings.warn("conf_int(kind) is deprecated; call conf_int(kind=...) (it returns a "
                          "DataFrame, as every result does).", FutureWarning, stacklevel=2)
            alpha, kind = None, alpha
        check_choice(kind, "kind", ("profile", "wald"))
        level = self.ci if alpha is None else 1 - _check_level(alpha, "alpha")
        low, high = self._interval(level, kind)
        return pd.DataFrame({"conf_low": [low], "conf_high": [high]}, index=[self.term])

    def _interval(self, level: float, kind: str) -> tuple[float, float]:
        if math.isclose(level, self.ci, rel_tol=0, abs_tol=1e-12):
            return ((self.conf_low, self.conf_high) if kind == "profile"
                    else (self.wald_low, self.wald_high))
        if kind == "wald":
            z = stats.norm.ppf(0.5 + level / 2)
            low, high = self.theta - z * self.theta_se, self.theta + z * self.theta_se
        elif self._lik is None:
            raise ValueError("This result has no likelihood attached; only its stored "
                             f"{self.ci:.0%} profile interval is available.")
        else:
            fit = _fit_votes(self._lik, self.boundary, level)
            low, high = fit["low"], fit["high"]
        if self.metric == "r":
            return math.tanh(low), math.tanh(high)
        return low, high

    def to_frame(self) -> pd.DataFrame:
        """One-row tidy table: term, estimate, std_error, statistic, p_value, conf_low,
        conf_high, k, method."""
        return pd.DataFrame({
            "term": [self.term],
            "estimate": [self.estimate], "std_error": [self.std_error],
            "statistic": [self.statistic], "p_value": [self.p_value],
            "conf_low": [self.conf_low], "conf_high": [self.conf_high],
            "k": [self.k], "method": [self.method],
        })

    def summary(self) -> Summary:
        """Printable summary."""
        header = [
            ("Method", self.method),
            ("Studies", f"{self.k} ({self.k_votes} vote counts, {self.k_effect_sizes} effect "
                        f"sizes); positive votes: {self.n_positive}"),
            ("Primary level", f"alpha = {self.alpha:g} (two-sided)"),
            ("Log-likelihood", f"{self.llf:.4f}"),
        ]
        table = self.to_frame().set_index("term").drop(columns=["k", "method"])
        table["wald_low"], table["wald_high"] = self.wald_low, self.wald_high
        notes = [
            f"{self.ci:.0%} CI by profile likelihood; std_error from the expected "
            f"information; statistic = signed root of the LR test of no effect.",
            "Assumes one common (fixed) effect; heterogeneity is not modelled.",
        ]
        if self.metric == "r":
            notes.append("Estimated on the Fisher-z scale (weights n - 3), back-transformed.")
        return Summary("Vote-counting estimate of a common effect", header,
                       [("Estimate", table)], list(self.warnings), notes)

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def __str__(self) -> str:
        return self.summary().as_text()


def _size_weights(
    data: pd.DataFrame, roles: Mapping[str, Hashable | None], metric: str
) -> tuple[np.ndarray, np.ndarray]:
    """Per-study weight w (sqrt(n~) or sqrt(n - 3)) and total size; NaN where missing."""
    n, n1, n2 = roles["n"], roles["n1"], roles["n2"]
    if (n1 is None) != (n2 is None):
        raise ValueError("Give both `n1` and `n2` (group sizes), or `n` (total size) alone.")
    if n is not None and n1 is not None:
        raise ValueError("Give either `n` (total size) or `n1` and `n2` (group sizes), not both.")
    if metric == "r" and n1 is not None:
        raise ValueError("metric='r' needs the sample size `n` (Fisher z weight n - 3), "
                         "not group sizes `n1`/`n2`.")
    if n is None and n1 is None:
        return np.full(len(data), np.nan), np.full(len(data), np.nan)
    for role in ("n", "n1", "n2"):
        col = roles[role]
        if col is None:
            continue
        x = data[col].to_numpy(dtype=float, na_value=np.nan)
        floor = 3 if metric == "r" else 0
        bad = x <= floor
        if bad.any():
            need = "larger than 3 (Fisher z variance 1/(n - 3))" if floor else "positive"
            raise ValueError(f"`{role}` column {col!r} must be {need}; got "
                             f"{_show(x[bad])}.")
    if n1 is not None:
        a = data[n1].to_numpy(dtype=float, na_value=np.nan)
        b = data[n2].to_numpy(dtype=float, na_value=np.nan)
        return np.sqrt(a * b / (a + b)), a + b
    total = data[n].to_numpy(dtype=float, na_value=np.nan)
    # d from a total n assumes two equal groups: n~ = (n/2)(n/2)/n = n/4
    return (np.sqrt(total - 3) if metric == "r" else np.sqrt(total / 4)), total


def _effect_sizes(
    data: pd.DataFrame, roles: Mapping[str, Hashable | None], metric: str,
    w: np.ndarray, total: np.ndarray,
) -> tuple[np.ndarray, np.ndarray]:
    """Effect sizes y and variances v on the estimation scale (NaN where not reported)."""
    if roles["effect_size"] is None:
        nan = np.full(len(data), np.nan)
        return nan, nan
    raw = data[roles["effect_size"]].to_numpy(dtype=float, na_value=np.nan)
    if metric == "r":
        if (np.abs(raw) >= 1).any():
            raise ValueError(f"`effect_size` column {roles['effect_size']!r} must hold "
                             f"correlations in (-1, 1) for metric='r'.")
        y = np.arctanh(raw)
        implied = 1 / w**2  # 1 / (n - 3)
    else:
        y = raw
        implied = 1 / w**2 + raw**2 / (2 * total)  # large-sample variance of d
    v = implied
    if roles["variance"] is not None:
        given = data[roles["variance"]].to_numpy(dtype=float, na_value=np.nan)
        if (given <= 0).any():
            raise ValueError(f"`variance` column {roles['variance']!r} must be positive.")
        v = np.where(np.isnan(given), implied, given)
    return y, v


def _vote_codes(
    data: pd.DataFrame, roles: Mapping[str, Hashable | None], mask: np.ndarray,
    direction_only: bool,
) -> np.ndarray:
    """+1 / 0 / -1 per vote row (significant positive / non-sig. / significant negative;
    or observed direction with ``direction_only``). NaN-free rows only."""
    rows = data.loc[mask]
    direction = (
        _directions(rows[roles["effect"]], "effect") if roles["effect"] is not None else None
    )
    if direction_only and direction is not None:  # `effect` is required there
        return direction
    sig = _significance(rows[roles["significant"]], None)
    if direction is None:
        return sig.astype(int)  # significant = significant in the hypothesised direction
    # the row labels name the study in messages (a MultiIndex gives tuples)
    labels = pd.Series(rows.index.to_flat_index().tolist(), dtype=object)
    _check_sig_direction(sig, direction, labels)
    return np.where(sig, direction, 0)


def _usable_rows(
    data: pd.DataFrame, roles: Mapping[str, Hashable | None], w: np.ndarray,
    y: np.ndarray, v: np.ndarray, direction_only: bool, missing: str,
) -> tuple[np.ndarray, np.ndarray, dict[str, int]]:
    """Masks of usable effect-size and vote rows, and missing counts of dropped rows."""
    is_es = ~np.isnan(y)
    vote_cols = [roles["effect"] if direction_only else roles["significant"]]
    if roles["effect"] is not None and not direction_only:
        vote_cols.append(roles["effect"])
    vote_ok = ~is_es & ~np.isnan(w) & data[vote_cols].notna().all(axis=1).to_numpy()
    es_ok = is_es & ~np.isnan(v)
    dropped = ~(vote_ok | es_ok)
    counts: dict[str, int] = {}
    if dropped.any():
        size_cols = [c for c in (roles["n"], roles["n1"], roles["n2"]) if c is not None]
        cols = list(dict.fromkeys([*vote_cols, *size_cols]))
        miss = data.loc[dropped, cols].isna().sum()
        counts = {str(c): int(m) for c, m in miss.items() if m > 0}
        if not counts:
            counts = {"sample size": int(dropped.sum())}
        detail = ", ".join(f"{c!r}: {m}" for c, m in counts.items())
        if missing == "raise" or dropped.all():
            raise ValueError(
                f"{int(dropped.sum())} of {len(data)} studies have neither a usable vote "
                f"(vote and sample size) nor an effect size with a variance (missing: "
                f"{detail})." + (" Use missing='drop' to drop them." if not dropped.all() else "")
            )
        warnings.warn(f"Dropped {int(dropped.sum())} of {len(data)} studies without a usable "
                      f"vote or effect size (missing: {detail}).", DataWarning, stacklevel=3)
    return es_ok, vote_ok, counts


def _method_label(k_votes: int, k_es: int, three: bool, direction_only: bool) -> str:
    if k_votes == 0:
        return "inverse-variance fixed effect (every study reports an effect size)"
    kind = ("direction of effect" if direction_only else
            "three-category (sig+/ns/sig-)" if three else "significant positive vs not")
    label = f"Hedges-Olkin vote counting, {kind}, large-sample normal"
    if k_es:
        label += f"; Bushman-Wang combination with {k_es} effect sizes"
    return label


def vote_count_estimate(
    studies: pd.DataFrame,
    *,
    significant: Hashable | None,
    n: Hashable | None = None,
    n1: Hashable | None = None,
    n2: Hashable | None = None,
    effect: Hashable | None = None,
    effect_size: Hashable | None = None,
    variance: Hashable | None = None,
    metric: str = "d",
    alpha: float = 0.05,
    direction_only: bool = False,
    three_category: bool = False,
    ci: float = 0.95,
    missing: str = "drop",
) -> VoteCountResult:
    r"""Hedges-Olkin vote-counting estimate of a common effect (with Bushman-Wang).

    Parameters
    ----------
    studies : DataFrame
        One row per independent study (aggregate several findings per study first, e.g.
        with :func:`box_score`'s study-level votes).
    significant : column name or None
        Boolean: the study's test was significant (two-sided, level ``alpha``). Without
        ``effect``, True means significant *in the hypothesised (positive) direction*. May
        be None with ``direction_only=True``.
    n : column name, optional
        Total sample size. For ``metric="d"`` two equal groups are assumed (n~ = n/4); for
        ``metric="r"`` the Fisher-z weight is n - 3.
    n1, n2 : column names, optional
        Group sizes for ``metric="d"``: n~ = n1 n2 / (n1 + n2).
    effect : column name, optional
        Observed direction (numeric sign or labels as in :func:`box_score`); needed for
        ``direction_only`` and ``three_category``; otherwise a significant study counts as
        positive only if its direction is positive.
    effect_size : column name, optional
        Reported effect size (d, or r for ``metric="r"``); NaN where a study reports only
        significance. Rows with an effect size enter through its normal likelihood
        (Bushman & Wang) and not as votes.
    variance : column name, optional
        Sampling variance of ``effect_size`` (of Fisher z for ``metric="r"``). Where missing
        it is computed from the sizes: 1/n~ + d^2 / (2 (n1 + n2)) for d, 1/(n - 3) for z.
    metric : {"d", "r"}
        Standardised mean difference or correlation (estimated on the Fisher-z scale).
    alpha : float
        Two-sided significance level of the primary studies.
    direction_only : bool
        Count votes by observed direction only (cut-off 0 instead of z_{1-alpha/2});
        studies with no direction are left out with a warning.
    three_category : bool
        Use significant positive, non-significant and significant negative as three
        outcomes (multinomial) instead of significant positive vs the rest.
    ci : float
        Confidence level of the profile-likelihood interval.
    missing : {"drop", "raise"}
        Studies with neither a usable vote nor an effect size are dropped (DataWarning) or
        raise.

    Returns
    -------
    VoteCountResult

    Warns
    -----
    BoundaryFitWarning
        When every vote agrees (all significant positive, none, ...) and no effect size is
        given: the likelihood is monotone, the MLE is infinite, and a one-sided bound is
        reported instead of an interval.

    Notes
    -----
    With test statistic approximately N(theta w_i, 1), w_i = sqrt(n~_i) for d and
    sqrt(n_i - 3) for Fisher z (Hedges & Olkin, 1985, ch. 4),

    .. math::

        p_i(\theta) = P(\text{sig}+) = 1 - \Phi(z_{1-\alpha/2} - \theta w_i), \qquad
        \ell(\theta) = \sum_i x_i \log p_i + (1 - x_i) \log(1 - p_i)
        - \sum_{j \in ES} \frac{(y_j - \theta)^2}{2 v_j} + \text{const},

    where x_i = 1 for a significant positive vote and the last sum runs over studies that
    report an effect size y_j with variance v_j (Bushman & Wang, 1995, 1996). Every term
    is log-concave, so the maximum is unique; it is found as the root of the score. The
    standard error is 1 / sqrt(I) with the expected information
    I = sum p_i'^2 / (p_i (1 - p_i)) + sum 1 / v_j; the CI inverts the likelihood-ratio
    test. With equal n~ the estimate has the closed form
    (z_{1-alpha/2} + Phi^{-1}(n_+ / k)) / sqrt(n~).

    This is a large-sample normal approximation to the t test (or Fisher z); for very
    small primary studies it slightly overstates their power, so the estimate is slightly
    too small. The model assumes one common effect; with heterogeneous effects it
    estimates a compromise. A raw box score, by contrast, ignores the sizes altogether:
    with power below 1/2 per study, the share of significant studies stays below 1/2 however
    many studies agree on a real effect (Hedges & Olkin, 1980).

    Examples
    --------
    >>> import pandas as pd
    >>> studies = pd.DataFrame({"sig": [True, False, False, True, False, False],
    ...                         "n1": [20, 25, 30, 40, 15, 20],
    ...                         "n2": [20, 25, 30, 40, 15, 20]})
    >>> res = vote_count_estimate(studies, significant="sig", n1="n1", n2="n2")
    >>> round(res.estimate, 3), res.k
    (0.447, 6)
    """
    data = require_frame(studies, "studies")
    check_choice(metric, "metric", ("d", "r"))
    check_choice(missing, "missing", ("drop", "raise"))
    alpha_f, ci_f = _check_level(alpha, "alpha"), _check_level(ci, "ci")
    for name, flag in (("direction_only", direction_only), ("three_category", three_category)):
        if not isinstance(flag, bool | np.bool_):
            raise TypeError(f"`{name}` must be True or False; got {flag!r}.")
    roles = {
        "significant": _single_column(significant, "significant", required=False),
        "effect": _single_column(effect, "effect", required=False),
        "n": _single_column(n, "n", required=False),
        "n1": _single_column(n1, "n1", required=False),
        "n2": _single_column(n2, "n2", required=False),
        "effect_size": _single_column(effect_size, "effect_size", required=False),
        "variance": _single_column(variance, "variance", required=False),
    }
    _check_vote_options(roles, direction_only, three_category)
    require_columns(data, roles, "studies")
    require_numeric(data, {r: roles[r] for r in ("n", "n1", "n2", "effect_size", "variance")})
    w, total = _size_weights(data, roles, metric)
    y, v = _effect_sizes(data, roles, metric, w, total)
    es_ok, vote_ok, dropped = _usable_rows(data, roles, w, y, v, direction_only, missing)
    codes = _vote_codes(data, roles, vote_ok, direction_only) if vote_ok.any() else np.zeros(0)
    w_votes = w[vote_ok]
    notes: list[str] = []
    if direction_only and (codes == 0).any():
        msg = (f"{int((codes == 0).sum())} studies with no observed direction were left out "
               f"of direction-only vote counting.")
        warnings.warn(msg, DataWarning, stacklevel=2)
        notes.append(msg)
        w_votes, codes = w_votes[codes != 0], codes[codes != 0]
    if not three_category:
        codes = (codes == 1).astype(int)
    crit = 0.0 if direction_only else float(stats.norm.ppf(1 - alpha_f / 2))
    lik = _VoteLikelihood(w_votes, codes, crit, three_category, y[es_ok], v[es_ok])
    k_votes, k_es = len(codes), int(es_ok.sum())
    if k_votes + k_es == 0:
        raise ValueError("No usable studies: every row lacks both a vote and an effect size.")
    boundary = _boundary(codes, three_category, k_es)
    fit = _fit_votes(lik, boundary, ci_f)
    if boundary is not None:
        notes.append(_boundary_message(boundary, k_votes, fit, ci_f, three_category))
        warnings.warn(notes[-1], BoundaryFitWarning, stacklevel=2)
    return _vote_result(fit, lik, metric, k_votes, k_es, int((codes == 1).sum()), alpha_f,
                        ci_f, boundary, notes, dropped,
                        _method_label(k_votes, k_es, three_category, direction_only))


def _check_vote_options(roles: Mapping[str, Hashable | None], direction_only: bool,
                        three_category: bool) -> None:
    if direction_only and three_category:
        raise ValueError("Choose one of `direction_only` and `three_category`, not both.")
    if (direction_only or three_category) and roles["effect"] is None:
        which = "direction_only" if direction_only else "three_category"
        raise ValueError(f"`{which}=True` needs `effect`, the column with each study's "
                         f"observed direction.")
    if roles["significant"] is None and not direction_only:
        raise TypeError("`significant` must name the boolean column of significant results "
                        "(it may be None only with direction_only=True).")
    if roles["variance"] is not None and roles["effect_size"] is None:
        raise ValueError("`variance` was given without `effect_size`.")
    if roles["n"] is None and roles["n1"] is None and roles["effect_size"] is None:
        raise ValueError("Vote counting needs study sizes: give `n` (total) or `n1` and `n2` "
                         "(group sizes).")


def _boundary(codes: np.ndarray, three: bool, k_es: int) -> str | None:
    """Direction in which the likelihood is monotone (MLE at +/-inf), if any."""
    if k_es or len(codes) == 0:
        return None
    if three:
        return "upper" if (codes == 1).all() else "lower" if (codes == -1).all() else None
    return "upper" if (codes == 1).all() else "lower" if (codes == 0).all() else None


def _boundary_message(boundary: str, k: int, fit: Mapping[str, float], ci: float,
                      three: bool) -> str:
    if boundary == "upper":
        what, bound = f"All {k} votes are positive", f"lower bound {fit['low']:.4g}"
    else:
        neg = "significant negative" if three else "negative (not significant positive)"
        what, bound = f"All {k} votes are {neg}", f"upper bound {fit['high']:.4g}"
    hint = ("" if three or boundary == "upper" else
            " To tell non-significant from significant negative results, pass `effect` and "
            "three_category=True.")
    return (f"{what}: the likelihood is monotone and the maximum-likelihood estimate is "
            f"infinite. Reported a one-sided {ci:.0%} profile-likelihood {bound} (estimation "
            f"scale) instead of an interval.{hint}")


def _vote_result(fit: Mapping[str, float], lik: _VoteLikelihood, metric: str, k_votes: int,
                 k_es: int, n_positive: int, alpha: float, ci: float, boundary: str | None,
                 notes: list[str], dropped: Mapping[str, int], method: str) -> VoteCountResult:
    theta, se = fit["theta"], fit["se"]
    stat = math.copysign(math.sqrt(fit["lr"]), theta) if fit["lr"] > 0 else 0.0
    if metric == "r":  # back-transform from Fisher z; delta-method SE
        out = {key: math.tanh(fit[key]) for key in ("theta", "low", "high")}
        out["se"] = (1 - out["theta"] ** 2) * se
        wald = (math.tanh(fit["wald_low"]), math.tanh(fit["wald_high"]))
    else:
        out = {"theta": theta, "low": fit["low"], "high": fit["high"], "se": se}
        wald = (fit["wald_low"], fit["wald_high"])
    return VoteCountResult(
        estimate=out["theta"], std_error=out["se"], conf_low=out["low"], conf_high=out["high"],
        wald_low=wald[0], wald_high=wald[1], statistic=stat,
        p_value=float(stats.chi2.sf(fit["lr"], 1)), theta=theta, theta_se=se,
        theta_conf_low=fit["low"], theta_conf_high=fit["high"], method=method, metric=metric,
        k=k_votes + k_es, k_votes=k_votes, k_effect_sizes=k_es, n_positive=n_positive,
        alpha=alpha, ci=ci, llf=fit["llf"], boundary=boundary, warnings=tuple(notes),
        dropped_rows=types.MappingProxyType(dict(dropped)), _lik=lik,
    )
