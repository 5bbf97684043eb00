"""The cross-check engine: a genuine statsmodels ``MixedLM`` fit of a nested design.

How a nested design maps onto statsmodels
-----------------------------------------
statsmodels has one grouping factor. The outermost level with random terms becomes
``groups``; its terms go into ``exog_re`` (an unstructured covariance, lme4
``(1 + x | therapist)``). Each term of an inner level becomes one variance component
(``exog_vc``) whose design, within an outer group, has one column per inner unit (lme4
``(1 | therapist:patient)``). Variance components are mutually independent, so an inner
level can carry one term, or several *uncorrelated* terms (lme4 ``(1 + x || ...)``), but
not correlated ones: :func:`~alliancestats._mixed.fit_mixed` refuses those under
``engine="statsmodels"``.

Optimisation
------------
statsmodels' own ``MixedLM.fit`` maximises statsmodels' own (REML or ML) likelihood. Its
gradient optimisers can stop short on fits near the boundary of the parameter space, so
the robust fallback is: its default start with L-BFGS (then BFGS) and, when the result did
not converge or a random-effect SD is near zero, restarts with each small SD set near
zero and the derivative-free methods (Powell, Nelder-Mead) from the best point; the
attempt with the highest statsmodels log-likelihood is kept. Only the covariance
parameters are taken from statsmodels; the GLS quantities at them (fixed effects, lme4's
``vcov`` = sigma^2 (X'V^-1X)^-1, the REML/ML log-likelihood on lme4's scale) are
evaluated by the project's one implementation of the profiled criterion (the nested
engine), since statsmodels' ``bse_fe`` comes from a joint Hessian and differs from lme4's
by 1-3 %.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._engine import _core
from ._spec import FloatArray, Level, term_values

__all__ = ["build_mixedlm", "diagonal_positions", "fit_mixedlm"]

_NEAR_BOUNDARY = 0.5  # a relative factor below this may sit on the far side of a boundary optimum
_ROBUST_METHODS = ("powell", "nm")


def build_mixedlm(endog: pd.Series, exog: pd.DataFrame, levels: Sequence[Level],
                  re_design: pd.DataFrame | None) -> Any:
    """The statsmodels ``MixedLM`` of a nested design (see the module notes)."""
    from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec

    outer = levels[0]
    rows_of = [np.flatnonzero(outer.codes == g) for g in range(len(outer.labels))]
    exog_re = None
    if outer.correlated:
        exog_re = pd.DataFrame({t: term_values(t, exog, re_design) for t in outer.terms},
                               index=exog.index)
    names, colnames, mats = [], [], []
    for li, lvl in enumerate(levels):
        if li == 0 and outer.correlated:
            continue
        for term in lvl.terms:
            values = term_values(term, exog, re_design)
            names.append(f"{lvl.name}:{term}")
            cols, blocks = [], []
            for rows in rows_of:
                units, inverse = np.unique(lvl.codes[rows], return_inverse=True)
                block = np.zeros((len(rows), len(units)))
                block[np.arange(len(rows)), inverse] = values[rows]
                blocks.append(block)
                cols.append([str(u) for u in units])
            colnames.append(cols)
            mats.append(blocks)
    vc = VCSpec(names, colnames, mats) if names else None
    return MixedLM(endog, exog, groups=outer.codes, exog_re=exog_re, exog_vc=vc)


def _engine_theta(packed: FloatArray, levels: Sequence[Level]) -> FloatArray:
    """statsmodels' packed square-root parameters -> the engine's θ (lme4 order).

    statsmodels packs the Cholesky factor of ``exog_re``'s relative covariance row-wise
    (``tril_indices``) and then the square roots of the variance components; lme4 packs
    each level's factor column-wise.
    """
    out: list[FloatArray] = []
    pos = 0
    outer = levels[0]
    if outer.correlated:
        k = len(outer.terms)
        chol = np.zeros((k, k))
        chol[np.tril_indices(k)] = packed[: k * (k + 1) // 2]
        pos = k * (k + 1) // 2
        cov = chol @ chol.T
        evals = np.linalg.eigvalsh(cov)
        if evals.min() > 1e-12 * max(evals.max(), 1.0):
            # positive diagonal (statsmodels leaves the sign free)
            chol = np.asarray(np.linalg.cholesky(cov), dtype=float)
        else:
            chol = chol * np.sign(np.where(np.diag(chol) == 0, 1.0, np.diag(chol)))
        cols, rows = np.triu_indices(k)
        out.append(chol[rows, cols])
    for li, lvl in enumerate(levels):
        if li == 0 and outer.correlated:
            continue
        out.append(np.abs(packed[pos:pos + len(lvl.terms)]))
        pos += len(lvl.terms)
    return np.concatenate(out)


def _packed(raw: Any) -> FloatArray:
    return np.asarray(raw.params_object.get_packed(use_sqrt=True, has_fe=False), dtype=float)


def _attempt(model: Any, reml: bool, label: str, start: Any = None,
             methods: Sequence[str] = ("lbfgs", "bfgs")) -> dict[str, Any]:
    """One ``MixedLM.fit``; failures are recorded, never raised."""
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        try:
            raw = model.fit(start_params=start, reml=reml, method=list(methods))
            llf = float(raw.llf)
        except (np.linalg.LinAlgError, ValueError, FloatingPointError) as exc:
            raw, llf = None, -np.inf
            caught.append(warnings.WarningMessage(f"MixedLM.fit ({label}) failed: {exc}",
                                                  RuntimeWarning, __file__, 0))
    if raw is not None and not np.isfinite(llf):
        llf = -np.inf
    return {"attempt": label, "methods": list(methods), "raw": raw, "llf": llf,
            "converged": bool(raw is not None and raw.converged and np.isfinite(llf)),
            "messages": [(w.category, str(w.message)) for w in caught]}


def _boundary_starts(raw: Any) -> list[tuple[str, Any]]:
    """Starts with one small diagonal element of a relative Cholesky factor set near zero
    (statsmodels' likelihood inverts the random-effects covariance, so exactly zero is
    not a valid start)."""
    from statsmodels.regression.mixed_linear_model import MixedLMParams

    po = raw.params_object
    starts = []
    if po.k_re:
        chol = np.linalg.cholesky(po.cov_re + 1e-12 * np.eye(po.k_re))
        for j in range(po.k_re):
            if chol[j, j] < 0.5:
                low = chol.copy()
                low[j, j] = 1e-2
                starts.append((f"boundary start (re {j})", MixedLMParams.from_components(
                    fe_params=po.fe_params, cov_re=low @ low.T, vcomp=po.vcomp)))
    for j, v in enumerate(po.vcomp):
        if np.sqrt(v) < 0.5:
            vc = po.vcomp.copy()
            vc[j] = 1e-4
            starts.append((f"boundary start (vc {j})",
                           MixedLMParams.from_components(fe_params=po.fe_params, cov_re=po.cov_re,
                                                         vcomp=vc)))
    return starts


def fit_mixedlm(endog: pd.Series, exog: pd.DataFrame, levels: Sequence[Level], reml: bool,
                re_design: pd.DataFrame | None) -> dict[str, Any]:
    """Fit with statsmodels (robust fallback as in the module notes).

    Returns a dict: ``theta`` (engine order, or None if every attempt failed), ``raw``
    (the best statsmodels result), ``converged``, ``attempts`` (records without the raw
    objects) and ``messages`` (warnings statsmodels raised in the kept attempt).
    """
    model = build_mixedlm(endog, exog, levels, re_design)
    attempts = [_attempt(model, reml, "default start")]
    best = attempts[0]
    packed = _packed(best["raw"]) if best["raw"] is not None else None
    diag_small = packed is not None and _min_diagonal(packed, levels) < _NEAR_BOUNDARY
    if best["raw"] is not None and (diag_small or not best["converged"]):
        for label, start in _boundary_starts(best["raw"]):
            attempts.append(_attempt(model, reml, label, start))
        best = max(attempts, key=lambda a: a["llf"])
        for method in _ROBUST_METHODS:
            attempts.append(_attempt(model, reml, f"polish ({method})",
                                     best["raw"].params_object, (method,)))
            best = max(attempts, key=lambda a: a["llf"])
    # prefer a converged attempt as good as the best (to rounding)
    good = [a for a in attempts if a["converged"] and a["llf"] >= best["llf"] - 1e-10]
    best = good[0] if good else best
    theta = _engine_theta(_packed(best["raw"]), levels) if best["raw"] is not None else None
    return {
        "theta": theta, "raw": best["raw"], "converged": best["converged"],
        "best_attempt": best["attempt"], "messages": best["messages"],
        "attempts": [{k: v for k, v in a.items() if k not in ("raw", "messages")}
                     for a in attempts],
    }


def _min_diagonal(packed: FloatArray, levels: Sequence[Level]) -> float:
    """Smallest diagonal element of the relative Cholesky factors (lme4's singularity
    criterion looks at these)."""
    theta = _engine_theta(packed, levels)
    return float(min(theta[diagonal_positions(levels)]))


def diagonal_positions(levels: Sequence[Level]) -> list[int]:
    """Positions of the diagonal elements of each level's factor in the engine's θ."""
    return _core.diagonal_positions(tuple(len(lv.terms) for lv in levels),
                                    tuple(not lv.correlated for lv in levels))
