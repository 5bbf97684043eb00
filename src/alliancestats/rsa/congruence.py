"""The congruence verdict: equivalence tests, model comparison, ridges and curvatures.

A congruence hypothesis ("the outcome is highest where x and y agree") needs the first
principal axis of the surface to be the line of congruence (intercept p10 = 0, slope
p11 = 1), no slope along the line of incongruence (a3 = 0) and a downward curvature
across it (a4 < 0; Humberg, Nestler & Back 2019). The first three are *null* conditions:
a non-significant a3, or a confidence interval of p10 that covers 0, is no evidence that
they hold (the less informative the data, the easier such checks pass). Evidence for
them comes from

* **equivalence** (TOST; Schuirmann 1987, Lakens 2017): the (1 - 2 alpha) interval of the
  quantity lies inside a band of smallest effects of interest around its null value;
* **model comparison** (Schönbrodt, Humberg & Nestler 2018; Humberg et al. 2019): the
  AICc weight of the models that encode congruence (SQD, RR: their ridge is the line of
  congruence) against those that do not (SSQD, SRR: shifted; SRRR: rotated; full).

This module holds the pure functions (arrays in, numbers out); the orchestration lives
in :meth:`alliancestats.RSAResults.congruence_test`.

Notes
-----
The principal-axis curvatures are those of R's RSA package (``PA1.curv``, ``PA2.curv``,
the `:=` definitions of model "full" in ``nicebread/RSA:R/RSA.R``): the second-order
coefficient of the surface along the axis Y = p10 + p11 X *per unit of X*,
``b3 + b4 p11 + b5 p11^2``, which equals ``l1 (1 + p11^2)`` with ``l1 >= l2`` the
eigenvalues of the quadratic form ``[[b3, b4/2], [b4/2, b5]]`` (the curvature per unit
of distance along the axis).

The intercept of the axis along which the surface is extreme is computed as the line of
extrema across the other axis, ``p10 = -(b2 - p11 b1) / (2 l2)`` (and
``p20 = -(b2 - p21 b1) / (2 l1)``). Where a stationary point exists this is
``Y0 - p11 X0``, but it stays defined and smooth on a rising ridge
(``4 b3 b5 - b4^2 = 0``), where the stationary point does not exist and ``Y0 - p11 X0``
is 0/0.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .family import _axis_slopes

__all__ = [
    "ALTERNATIVE_MODELS",
    "CONGRUENCE_MODELS",
    "DEFAULT_SESOI",
    "axis_lines",
    "curvatures",
    "determinant",
    "equivalence_bounds",
    "model_weights",
    "tost_interval",
    "tost_linear",
]

#: Models whose ridge (or valley) is the line of congruence (Schönbrodt et al. 2018).
CONGRUENCE_MODELS = ("SQD", "RR")
#: Models that allow the ridge to be shifted (SSQD, SRR), rotated (SRRR) or anything.
ALTERNATIVE_MODELS = ("SSQD", "SRR", "SRRR", "full")

#: Default smallest effects of interest, in standardised units: a3 and a5 as a slope
#: (curvature) of 0.1 outcome SD per predictor SD (SD squared); p10 as a quarter of the
#: predictors' pooled SD (half the +-0.5 SD band the discrepancy table calls agreement);
#: p11 as a slope within 1 +- 0.2 (about +-6 degrees).
DEFAULT_SESOI = {"a3": 0.1, "a5": 0.1, "p10": 0.25, "p11": 0.2}


def determinant(b: np.ndarray) -> float:
    """``D = 4 b3 b5 - b4^2``: zero when the quadratic part has rank one (a ridge or
    valley line; no unique stationary point)."""
    return float(4 * b[3] * b[5] - b[4] ** 2)


def _eigenvalues(b3: float, b4: float, b5: float) -> tuple[float, float]:
    """l1 >= l2 of ``[[b3, b4/2], [b4/2, b5]]``, the smaller-magnitude one from the
    product ``l1 l2 = D / 4`` (no cancellation)."""
    s, r = b3 + b5, float(np.hypot(b3 - b5, b4))
    prod = b3 * b5 - b4**2 / 4
    if s >= 0:
        l1 = (s + r) / 2
        l2 = prod / l1 if l1 != 0 else (s - r) / 2
    else:
        l2 = (s - r) / 2
        l1 = prod / l2 if l2 != 0 else (s + r) / 2
    return l1, l2


def curvatures(b: np.ndarray) -> dict[str, float]:
    """Eigenvalues ``l1 >= l2`` and R RSA's principal-axis curvatures.

    ``PA1.curv = b3 + b4 p11 + b5 p11^2 = l1 (1 + p11^2)`` and likewise PA2 with p21
    and l2 (the curvature along the axis per unit of X; R's RSA package).

    Examples
    --------
    >>> out = curvatures(np.array([0, 0, 0, -1.0, 2.0, -1.0]))  # -(X - Y)^2
    >>> {k: round(v, 6) + 0.0 for k, v in out.items()}
    {'PA1.curv': 0.0, 'PA2.curv': -4.0, 'l1': 0.0, 'l2': -2.0}
    """
    b3, b4, b5 = (float(v) for v in np.asarray(b)[3:6])
    l1, l2 = _eigenvalues(b3, b4, b5)
    p11, p21 = _axis_slopes(b3, b4, b5)
    with np.errstate(invalid="ignore", over="ignore"):
        c1 = l1 * (1 + np.float64(p11) ** 2)
        c2 = l2 * (1 + np.float64(p21) ** 2)
    return {"PA1.curv": float(c1), "PA2.curv": float(c2), "l1": l1, "l2": l2}


def axis_lines(b: np.ndarray) -> dict[str, float]:
    """Intercepts of the principal axes as lines of extrema: ``p10_line`` (PA1, the
    line of maxima of a concave-across surface, i.e. its ridge) and ``p20_line`` (PA2,
    a valley), NaN where the other axis has no curvature or the axis is vertical.

    Equal to p10 = Y0 - p11 X0 (p20) when the stationary point exists, and defined on a
    rising ridge, where it does not.

    Examples
    --------
    >>> b = np.array([0, -0.4, 0.4, -0.5, 1.0, -0.5])  # -0.5 (X - Y + 0.4)^2 + const
    >>> round(axis_lines(b)["p10_line"], 6)
    0.4
    """
    b1, b2, b3, b4, b5 = (float(v) for v in np.asarray(b)[1:6])
    l1, l2 = _eigenvalues(b3, b4, b5)
    p11, p21 = _axis_slopes(b3, b4, b5)
    out = {}
    for name, slope, lam in (("p10_line", p11, l2), ("p20_line", p21, l1)):
        ok = np.isfinite(slope) and lam != 0
        out[name] = -(b2 - slope * b1) / (2 * lam) if ok else np.nan
    return out


def equivalence_bounds(user: Mapping[str, Any] | None, *, sd_xy: float,
                       sd_outcome: float) -> dict[str, float]:
    """Smallest effects of interest for a3, a5, p10 (also p20) and p11 (also p21), in
    the units of the fitted surface.

    ``user`` overrides any of them (keys "a3", "a5", "p10", "p11"; positive numbers, on
    the scale of the fit: x and y as analysed after ``center``/``scale``). The defaults
    are :data:`DEFAULT_SESOI` times the analysed data's scales: a3 = 0.1 SD(outcome) /
    SD(x, y), a5 = 0.1 SD(outcome) / SD(x, y)^2, p10 = 0.25 SD(x, y), p11 = 0.2 (with
    SD(x, y) the pooled SD of the stacked x and y).

    Raises
    ------
    TypeError, ValueError
        For keys other than a3, a5, p10, p11 or bounds that are not positive numbers.

    Examples
    --------
    >>> equivalence_bounds({"p10": 0.3}, sd_xy=1.0, sd_outcome=2.0)
    {'a3': 0.2, 'a5': 0.2, 'p10': 0.3, 'p11': 0.2}
    """
    out = {"a3": DEFAULT_SESOI["a3"] * sd_outcome / sd_xy,
           "a5": DEFAULT_SESOI["a5"] * sd_outcome / sd_xy**2,
           "p10": DEFAULT_SESOI["p10"] * sd_xy, "p11": DEFAULT_SESOI["p11"]}
    if user is None:
        return out
    if not isinstance(user, Mapping):
        raise TypeError(f"`equivalence` must be a dict such as {{'a3': 0.2, 'p10': 0.25}} "
                        f"or None (defaults); got {type(user).__name__}.")
    for key, value in user.items():
        if key not in out:
            raise ValueError(f"`equivalence` keys must be among {sorted(out)}; got {key!r} "
                             f"(p10/p11 also bound p20/p21 when direction='minimum').")
        if isinstance(value, bool) or not isinstance(value, int | float | np.number):
            raise TypeError(f"`equivalence[{key!r}]` must be a positive number; "
                            f"got {value!r}.")
        if not (np.isfinite(value) and value > 0):
            raise ValueError(f"`equivalence[{key!r}]` must be a positive number; "
                             f"got {value!r}.")
        out[key] = float(value)
    return out


def tost_linear(estimate: float, se: float, df: float, bound: float, alpha: float
                ) -> tuple[float, float, float]:
    """Two one-sided tests of ``|theta| >= bound`` for a t (or z, ``df = inf``) statistic.

    Returns the (1 - 2 alpha) interval and the TOST p-value, ``max`` of the two one-sided
    p-values; equivalence is shown (at ``alpha``) when p < alpha, i.e. when the interval
    lies inside (-bound, bound).

    Examples
    --------
    >>> low, high, p = tost_linear(0.0, 0.1, np.inf, 0.3, 0.05)
    >>> round(low, 4), round(high, 4), round(p, 5)
    (-0.1645, 0.1645, 0.00135)
    """
    if not (np.isfinite(estimate) and np.isfinite(se) and se > 0):
        return np.nan, np.nan, np.nan
    dist = stats.t(df) if np.isfinite(df) else stats.norm
    crit = float(dist.ppf(1 - alpha))
    p_low = float(dist.sf((estimate + bound) / se))   # H0: theta <= -bound
    p_high = float(dist.cdf((estimate - bound) / se))  # H0: theta >= +bound
    return estimate - crit * se, estimate + crit * se, max(p_low, p_high)


def tost_interval(low: float, high: float, null: float, bound: float) -> bool:
    """Whether the interval [low, high] lies strictly inside (null - bound, null + bound)."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return False
    return bool(null - bound < low and high < null + bound)


def model_weights(fits: Mapping[str, tuple[float, int, int]]) -> pd.DataFrame:
    """AICc and Akaike weights of candidate models (R RSA ``aictab``).

    ``fits`` maps model name -> (log-likelihood, K = number of estimated parameters incl.
    intercept, controls and variances, n). AICc = -2 logL + 2K + 2K(K + 1)/(n - K - 1);
    weight = exp(-delta/2) / sum. ``congruent`` marks :data:`CONGRUENCE_MODELS`.

    Examples
    --------
    >>> table = model_weights({"SQD": (-10.0, 3, 50), "full": (-9.0, 7, 50)})
    >>> table["weight"].round(3).tolist()
    [0.983, 0.017]
    """
    rows = []
    for name, (llf, k, n) in fits.items():
        aicc = -2 * llf + 2 * k + (2 * k * (k + 1) / (n - k - 1) if n > k + 1 else np.inf)
        rows.append({"model": name, "K": k, "logLik": llf, "AICc": aicc})
    table = pd.DataFrame(rows)
    delta = table["AICc"] - table["AICc"].min()
    w = np.exp(-delta / 2)
    table["delta_AICc"] = delta
    table["weight"] = w / w.sum()
    table["congruent"] = table["model"].isin(CONGRUENCE_MODELS)
    return table.sort_values("AICc", kind="stable").reset_index(drop=True)
