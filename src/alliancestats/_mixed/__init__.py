"""The one adapter over linear mixed-model estimation.

Model modules build a response vector, a fixed-effect design and a random-effects
specification and call :func:`fit_mixed`; it dispatches to statsmodels ``MixedLM``
(``engine="statsmodels"``) or to the project's nested-design engine (``engine="fast"``)
and returns a :class:`MixedFit`, the engine-neutral record the results classes consume.
No other module talks to statsmodels' mixed models directly.

How a nested design maps onto statsmodels
-----------------------------------------
statsmodels has one grouping factor. The outermost level with random terms becomes
``groups``; its terms go into ``exog_re`` (an unstructured covariance, lme4
``(1 + x | therapist)``). Each term of an inner level becomes one variance component
(``exog_vc``) whose design, within an outer group, has one column per inner unit (lme4
``(1 | therapist:patient)``). Variance components are mutually independent, so an inner
level can carry one term, or several *uncorrelated* terms (lme4 ``(1 + x || ...)``,
requested through ``independent``), but not correlated ones: such a structure goes to the
fast engine when it is installed and raises a ``ValueError`` otherwise.

Optimisation (the documented sequence)
--------------------------------------
The criterion is the profiled (REML or ML) log-likelihood of the statsmodels model as a
function of lme4's ``theta``: the Cholesky factor of each level's covariance and the
standard deviations of the variance components, all relative to the residual SD
(statsmodels' packed ``use_sqrt`` parameters are exactly this). Attempts, best
log-likelihood kept:

1. bounded L-BFGS-B from lme4's default start (``theta`` = identity);
2. if the best point is near the boundary (a relative SD below 0.05) or an attempt failed:
   L-BFGS-B from boundary starts (each diagonal ``theta`` below 0.5 set to 0 in turn), then
   bounded Powell and Nelder-Mead from the best point so far; statsmodels' own gradient
   optimisers can stop several log-likelihood units short of lme4's optimum on such fits;
3. statsmodels' ``MixedLM.fit`` (L-BFGS) started at the best point, which also provides
   the raw results object (``MixedFit.raw``); adopted if it improves the likelihood.

The criterion is evaluated by :class:`_Dense` (outer group by outer group) rather than by
``MixedLM.loglike``: the two agree to rounding error in the interior (tested), but
statsmodels' evaluation inverts the random-effects covariance and fails or switches to a
pseudo-inverse within about 1e-5 of the boundary, exactly where singular fits end up.

Fixed-effect covariance is computed here as ``sigma^2 (X' V^-1 X)^-1`` at the estimated
variance components (lme4's ``vcov``); statsmodels' ``bse_fe`` comes from a joint Hessian
and differs from lme4 by 1-3 %. A fit is singular, as in lme4's ``isSingular``, when a
diagonal element of ``theta`` is below 1e-4.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg, optimize

from ..exceptions import BoundaryFitWarning, ConvergenceWarning
from ._engine import NestedLMM

__all__ = ["ENGINES", "SINGULAR_TOL", "MixedFit", "fit_mixed"]

ENGINES = ("statsmodels", "fast")
#: lme4's ``isSingular`` tolerance on the relative Cholesky factors.
SINGULAR_TOL = 1e-4
_NEAR_BOUNDARY = 0.05

FloatArray = np.ndarray[Any, np.dtype[np.float64]]


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
    notes : tuple of str
        Remarks for the summary (e.g. that the fast engine was chosen automatically).
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
    notes: tuple[str, ...] = ()

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
            "notes": list(self.notes),
        }


# -- the random-effects specification ------------------------------------------------------
@dataclass(frozen=True)
class _Level:
    name: str
    terms: tuple[str, ...]
    correlated: bool
    codes: np.ndarray[Any, np.dtype[np.intp]]  # unit index of each row
    labels: pd.Index  # unit labels (tuples of outer..this level's labels, or scalars)


def _levels(
    groups: pd.DataFrame,
    random: Mapping[str, Sequence[str]],
    independent: Collection[str],
) -> list[_Level]:
    """Levels with random terms, outer -> inner; inner units identified with all outer labels."""
    unknown = [lvl for lvl in random if lvl not in groups.columns]
    if unknown:
        raise ValueError(
            f"`random` names level(s) {unknown} that are not columns of `groups` "
            f"({list(groups.columns)})."
        )
    out = []
    for depth, name in enumerate(groups.columns):
        terms = tuple(random.get(name, ()))
        if not terms:
            continue
        key = groups.iloc[:, : depth + 1]
        if depth == 0:
            codes, labels = pd.factorize(key.iloc[:, 0], sort=True)
            index = pd.Index(labels, name=str(name))
        else:
            codes, uniq = pd.MultiIndex.from_frame(key).factorize(sort=True)
            index = pd.MultiIndex.from_tuples(list(uniq), names=[str(c) for c in key.columns])
        out.append(_Level(str(name), terms, str(name) not in independent or len(terms) == 1,
                          np.asarray(codes, dtype=np.intp), index))
    if not out:
        raise ValueError("`random` gives no random-effect terms; use a single-level model.")
    return out


def _theta_layout(levels: list[_Level]) -> list[tuple[int, int, int]]:
    """(level index, i, j) of each theta element: Cholesky (i, j) of correlated levels,
    (i, i) for each independent term. Order: outer correlated block first (statsmodels'
    exog_re), then variance components in the order they are passed."""
    layout = []
    first = levels[0]
    re_outer = first.correlated
    if re_outer:
        rows, cols = np.tril_indices(len(first.terms))
        layout += [(0, int(i), int(j)) for i, j in zip(rows, cols, strict=True)]
    for li, lvl in enumerate(levels):
        if li == 0 and re_outer:
            continue
        layout += [(li, k, k) for k in range(len(lvl.terms))]
    return layout


def _chol_factors(theta: FloatArray, levels: list[_Level]) -> list[FloatArray]:
    """Per level, the lower-triangular relative Cholesky factor (lme4's Lambda block)."""
    chol = [np.zeros((len(lvl.terms), len(lvl.terms))) for lvl in levels]
    for value, (li, i, j) in zip(theta, _theta_layout(levels), strict=True):
        chol[li][i, j] = value
    return chol


def _relative_covs(theta: FloatArray, levels: list[_Level]) -> list[FloatArray]:
    """Per level, the covariance of its terms relative to the residual variance."""
    return [c @ c.T for c in _chol_factors(theta, levels)]


# -- statsmodels model construction ---------------------------------------------------------
def _term_values(name: str, exog: pd.DataFrame, re_design: pd.DataFrame | None) -> FloatArray:
    if re_design is not None and name in re_design.columns:
        return re_design[name].to_numpy(dtype=float)
    if name in exog.columns:
        return exog[name].to_numpy(dtype=float)
    if name == "Intercept":
        return np.ones(len(exog))
    raise ValueError(
        f"`random` term {name!r} is neither a column of the fixed-effect design nor of "
        f"`re_design` (and is not 'Intercept')."
    )


def _build_statsmodels(
    endog: pd.Series,
    exog: pd.DataFrame,
    levels: list[_Level],
    re_design: pd.DataFrame | None,
) -> Any:
    from statsmodels.regression.mixed_linear_model import MixedLM, VCSpec

    outer = levels[0]
    n_outer = len(outer.labels)
    rows_of = [np.flatnonzero(outer.codes == g) for g in range(n_outer)]
    exog_re = None
    if outer.correlated:
        exog_re = pd.DataFrame(
            {t: _term_values(t, exog, re_design) for t in outer.terms}, index=exog.index
        )
    names, colnames, mats = [], [], []
    for li, lvl in enumerate(levels):
        if li == 0 and outer.correlated:
            continue
        for term in lvl.terms:
            values = _term_values(term, exog, re_design)
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
    model = MixedLM(endog, exog, groups=outer.codes, exog_re=exog_re, exog_vc=vc)
    return model, rows_of


# -- dense per-group algebra: the profiled criterion, vcov, conditional modes ---------------
class _Dense:
    """The model's profiled log-likelihood and GLS quantities, outer group by outer group.

    With Psi = Lambda Lambda' (Lambda built from lme4's theta) and V = I + Z Psi Z'
    (relative to sigma^2, block diagonal over outer groups), in each group
    M = I + Lambda' Z'Z Lambda gives |V| = |M| and
    V^-1 = I - Z Lambda M^-1 Lambda' Z' (lme4's formulation, valid when Psi is singular):

    ML:   -2 llf = log|V| + n (1 + log(2 pi pwrss / n)),
    REML: -2 llf = log|V| + log|X'V^-1 X| + (n - p)(1 + log(2 pi pwrss / (n - p))),

    pwrss = r'V^-1 r at the GLS estimate: lme4's profiled deviance and REML criterion.
    Unlike statsmodels' ``MixedLM.loglike`` (which inverts Psi and so fails or switches to a
    pseudo-inverse within ~1e-5 of the boundary), this is exact on the boundary. Only
    cross-products enter, so each evaluation costs O(q^3) per group, q = random columns.
    """

    def __init__(self, endog: pd.Series, exog: pd.DataFrame, levels: list[_Level],
                 rows_of: list[Any], re_design: pd.DataFrame | None, reml: bool) -> None:
        self.levels, self.rows_of, self.reml = levels, rows_of, reml
        self.y, self.X = endog.to_numpy(dtype=float), exog.to_numpy(dtype=float)
        XY = np.column_stack([self.X, self.y])
        self.cross = XY.T @ XY
        values = {(li, t): _term_values(term, exog, re_design)
                  for li, lvl in enumerate(levels) for t, term in enumerate(lvl.terms)}
        self.groups = []
        for rows in rows_of:
            cols, keys = [], []
            for li, lvl in enumerate(levels):
                for unit in np.unique(lvl.codes[rows]):
                    mask = (lvl.codes[rows] == unit).astype(float)
                    for t in range(len(lvl.terms)):
                        cols.append(mask * values[(li, t)][rows])
                        keys.append((li, t, int(unit)))
            self.groups.append((np.column_stack(cols), np.array(keys, dtype=np.intp)))
        # All groups are padded to q_max random columns and processed as one batch (padding
        # columns are zero, so they add identity blocks to M and nothing else).
        n_g, q_max = len(rows_of), max(len(k) for _, k in self.groups)
        self.ztz = np.zeros((n_g, q_max, q_max))
        self.ztxy = np.zeros((n_g, q_max, XY.shape[1]))
        idx: list[list[tuple[int, int, int, int, int]]] = [[] for _ in levels]
        for g, (rows, (Z, key)) in enumerate(zip(rows_of, self.groups, strict=True)):
            q = len(key)
            self.ztz[g, :q, :q] = Z.T @ Z
            self.ztxy[g, :q] = Z.T @ XY[rows]
            for a in range(q):
                for b in range(q):
                    if key[a, 0] == key[b, 0] and key[a, 2] == key[b, 2]:
                        idx[key[a, 0]].append((g, a, b, key[a, 1], key[b, 1]))
        self.lam_index = [np.array(i, dtype=np.intp).reshape(-1, 5) for i in idx]

    def _lambda(self, chol: list[FloatArray]) -> FloatArray:
        lam = np.zeros(self.ztz.shape)
        for c, ix in zip(chol, self.lam_index, strict=True):
            lam[ix[:, 0], ix[:, 1], ix[:, 2]] = c[ix[:, 3], ix[:, 4]]
        return lam

    def solve(self, theta: FloatArray) -> dict[str, Any]:
        """GLS at the relative covariances implied by ``theta``; llf and what vcov and the
        conditional modes need."""
        chol = _chol_factors(theta, self.levels)
        lam = self._lambda(chol)
        lam_t = np.swapaxes(lam, 1, 2)
        M = lam_t @ self.ztz @ lam
        M += np.eye(M.shape[1])
        lm = np.linalg.cholesky(M)
        logdet = 2.0 * float(np.log(np.diagonal(lm, axis1=1, axis2=2)).sum())
        w = np.linalg.solve(lm, lam_t @ self.ztxy)
        cross = self.cross - np.einsum("gqi,gqj->ij", w, w)
        p = self.X.shape[1]
        xtvx, xtvy, yvy = cross[:p, :p], cross[:p, p], float(cross[p, p])
        beta = np.linalg.solve(xtvx, xtvy)
        pwrss = yvy - float(xtvy @ beta)
        n = self.X.shape[0]
        dof = n - p if self.reml else n
        dev = logdet + dof * (1.0 + np.log(2.0 * np.pi * pwrss / dof))
        if self.reml:
            dev += float(np.linalg.slogdet(xtvx)[1])
        return {"llf": -0.5 * dev, "beta": beta, "xtvx": xtvx, "pwrss": pwrss,
                "scale": pwrss / dof, "factors": (lm, lam),
                "rel": [c @ c.T for c in chol]}

    def llf(self, theta: FloatArray) -> float:
        try:
            value = self.solve(theta)["llf"]
        except (np.linalg.LinAlgError, ValueError):
            return -math.inf
        return value if math.isfinite(value) else -math.inf

    def conditional_modes(self, sol: dict[str, Any]) -> list[dict[int, FloatArray]]:
        """BLUPs b = Psi Z' V^-1 r = Lambda M^-1 Lambda' Z' r per level and unit."""
        resid = self.y - self.X @ sol["beta"]
        lm, lam = sol["factors"]
        out: list[dict[int, FloatArray]] = [{} for _ in self.levels]
        for g, (rows, (Z, key)) in enumerate(zip(self.rows_of, self.groups, strict=True)):
            q = len(key)
            lam_g = lam[g, :q, :q]
            b = lam_g @ linalg.cho_solve((lm[g, :q, :q], True), lam_g.T @ (Z.T @ resid[rows]))
            for value, (li, t, unit) in zip(b, key, strict=True):
                out[li].setdefault(int(unit), np.zeros(len(self.levels[li].terms)))[t] = value
        return out


# -- optimisation ---------------------------------------------------------------------------
def _lower(levels: list[_Level]) -> FloatArray:
    return np.array([0.0 if i == j else -np.inf for _, i, j in _theta_layout(levels)])


def _default_start(levels: list[_Level]) -> FloatArray:
    return np.array([1.0 if i == j else 0.0 for _, i, j in _theta_layout(levels)])


_OPTIONS: dict[str, dict[str, Any]] = {
    "L-BFGS-B": {"ftol": 1e-15, "gtol": 1e-8, "maxiter": 1000},
    "Powell": {"xtol": 1e-7, "ftol": 1e-12, "maxfev": 4000},
    "Nelder-Mead": {"xatol": 1e-7, "fatol": 1e-10, "maxfev": 4000, "adaptive": True},
}


def _run(dense: _Dense, start: FloatArray, method: str, label: str) -> dict[str, Any]:
    lower = _lower(dense.levels)
    bounds = [(0.0, None) if np.isfinite(lo) else (None, None) for lo in lower]

    def objective(theta: FloatArray) -> float:
        value = dense.llf(np.maximum(theta, lower))
        return -value if math.isfinite(value) else 1e300

    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # Central differences: forward ones limit the optimum's accuracy on flat criteria.
        jac = "3-point" if method == "L-BFGS-B" else None
        res = optimize.minimize(objective, np.maximum(start, lower), method=method, jac=jac,
                                bounds=bounds, options=_OPTIONS[method])
    theta = np.maximum(res.x, lower)
    llf = dense.llf(theta)
    return {"attempt": label, "method": method, "theta": theta, "llf": llf,
            "converged": bool(res.success) and math.isfinite(llf),
            "n_iter": int(getattr(res, "nit", 0) or 0), "n_eval": int(res.nfev),
            "message": str(res.message)}


def _optimise(dense: _Dense) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Steps 1 and 2 of the module's optimisation sequence."""
    levels = dense.levels
    layout = _theta_layout(levels)
    attempts = [_run(dense, _default_start(levels), "L-BFGS-B", "default start")]
    best = attempts[0]
    diag = [k for k, (_, i, j) in enumerate(layout) if i == j]
    near = min(abs(best["theta"][k]) for k in diag) < _NEAR_BOUNDARY
    if near or not best["converged"]:
        for k in (k for k in diag if best["theta"][k] < 0.5):
            start = best["theta"].copy()
            li, i, _ = layout[k]
            # A zero diagonal in a Cholesky factor: zero the rest of its row too.
            for m, (lm, r, _c) in enumerate(layout):
                if lm == li and r == i:
                    start[m] = 0.0
            attempts.append(_run(dense, start, "L-BFGS-B", f"boundary start {k}"))
        best = max(attempts, key=lambda a: a["llf"])
        for method in ("Powell", "Nelder-Mead", "L-BFGS-B"):
            attempts.append(_run(dense, best["theta"], method, f"polish ({method})"))
            best = max(attempts, key=lambda a: a["llf"])
    # Prefer a converged attempt whose likelihood is as good as the best one (to 1e-7).
    good = [a for a in attempts if a["converged"] and a["llf"] >= best["llf"] - 1e-7]
    return (good[0] if good else best), attempts


def _statsmodels_native(
    model: Any, theta: FloatArray, reml: bool
) -> tuple[Any, list[tuple[type[Warning], str]]]:
    """statsmodels' own fit from ``theta`` (step 3; gives the raw results object).

    Diagonal elements are moved off zero first: statsmodels' likelihood inverts the
    random-effects covariance.
    """
    start = np.where(theta == 0.0, 1e-3, theta)
    with warnings.catch_warnings(record=True) as caught, np.errstate(all="ignore"):
        warnings.simplefilter("always")
        try:
            raw = model.fit(start_params=start, reml=reml, method=["lbfgs"])
        except (np.linalg.LinAlgError, ValueError) as exc:
            raw = None
            caught.append(warnings.WarningMessage(
                f"statsmodels MixedLM.fit failed from the best start: {exc}",
                RuntimeWarning, __file__, 0))
    return raw, [(w.category, str(w.message)) for w in caught]


def _raw_theta(raw: Any) -> FloatArray:
    packed = raw.params_object.get_packed(use_sqrt=True, has_fe=False)
    return np.asarray(packed, dtype=float)


# -- results assembly -----------------------------------------------------------------------
def _fix_signs(theta: FloatArray, levels: list[_Level]) -> FloatArray:
    """Cholesky factors with a non-negative diagonal (statsmodels leaves the sign free)."""
    rel = _relative_covs(theta, levels)
    out: list[float] = []
    for li, i, j in _theta_layout(levels):
        cov = rel[li]
        if i != j or not levels[li].correlated or len(levels[li].terms) == 1:
            out.append(abs(float(theta[len(out)])) if i == j else float(theta[len(out)]))
            continue
        evals = np.linalg.eigvalsh(cov)
        if evals.min() > 1e-12 * max(evals.max(), 1.0):
            out.append(float(np.linalg.cholesky(cov)[i, j]))
        else:
            out.append(abs(float(theta[len(out)])))
    # Off-diagonal Cholesky entries of a PD block must match the positive-diagonal factor.
    for li, lvl in enumerate(levels):
        if lvl.correlated and len(lvl.terms) > 1:
            cov = rel[li]
            if np.linalg.eigvalsh(cov).min() > 1e-12 * max(np.linalg.eigvalsh(cov).max(), 1.0):
                chol = np.linalg.cholesky(cov)
                for k, (lk, i, j) in enumerate(_theta_layout(levels)):
                    if lk == li:
                        out[k] = float(chol[i, j])
    return np.array(out)


def _variance_table(levels: list[_Level], covs: list[FloatArray],
                    scale: float) -> tuple[pd.DataFrame, dict[str, pd.DataFrame]]:
    rows = []
    random_cov = {}
    for lvl, cov in zip(levels, covs, strict=True):
        sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        random_cov[lvl.name] = pd.DataFrame(cov, index=list(lvl.terms), columns=list(lvl.terms))
        for t, term in enumerate(lvl.terms):
            corr = math.nan
            if t > 0 and lvl.correlated:
                denom = sd[0] * sd[t]
                corr = float(cov[0, t] / denom) if denom > 0 else math.nan
            rows.append((lvl.name, term, float(cov[t, t]), float(sd[t]), corr))
    rows.append(("Residual", "", scale, math.sqrt(scale), math.nan))
    table = pd.DataFrame(rows, columns=["level", "term", "variance", "sd", "corr"])
    return table, random_cov


def _classify(
    messages: list[tuple[type[Warning], str]], converged: bool, singular: bool
) -> tuple[list[tuple[type[Warning], str]], list[str]]:
    """Which captured statsmodels messages still apply to the final fit.

    Retry notices are informational; statsmodels' boundary message uses an absolute
    threshold (variance < 0.01) and is replaced by the relative singularity check;
    Hessian and convergence messages from its own run (step 3) matter only when the final
    fit is not converged. Everything captured is kept in ``optimizer_info``.
    """
    keep: list[tuple[type[Warning], str]] = []
    info: list[str] = []
    for category, text in messages:
        lowered = text.lower()
        if "retrying" in lowered or "boundary" in lowered or category is RuntimeWarning:
            info.append(text)
        elif any(w in lowered for w in ("hessian", "singular", "fail", "converge")):
            if converged:
                info.append(text)
            else:
                keep.append((ConvergenceWarning, f"statsmodels: {text}"))
        else:
            keep.append((ConvergenceWarning, f"statsmodels: {text}"))
    return keep, info


def _fit_statsmodels(
    endog: pd.Series,
    exog: pd.DataFrame,
    levels: list[_Level],
    reml: bool,
    re_design: pd.DataFrame | None,
) -> MixedFit:
    model, rows_of = _build_statsmodels(endog, exog, levels, re_design)
    dense = _Dense(endog, exog, levels, rows_of, re_design, reml)
    best, attempts = _optimise(dense)
    raw, messages = _statsmodels_native(model, best["theta"], reml)
    if raw is not None:
        theta_raw = np.maximum(_fix_signs(_raw_theta(raw), levels), _lower(levels))
        attempts.append({"attempt": "statsmodels MixedLM.fit from best", "method": "lbfgs",
                         "theta": theta_raw, "llf": dense.llf(theta_raw),
                         "converged": bool(raw.converged), "n_iter": 0, "n_eval": 0,
                         "message": ""})
        if raw.converged and attempts[-1]["llf"] > best["llf"] + 1e-7:
            best = attempts[-1]
    theta = _fix_signs(best["theta"], levels)
    sol = dense.solve(theta)
    layout = _theta_layout(levels)
    singular = any(theta[k] < SINGULAR_TOL for k, (_, i, j) in enumerate(layout) if i == j)
    converged = bool(best["converged"])
    keep, info = _classify(messages, converged, singular)
    texts = _emit(keep, converged, singular)
    scale = float(sol["scale"])
    table, random_cov = _variance_table(levels, [scale * r for r in sol["rel"]], scale)
    modes = dense.conditional_modes(sol)
    names = list(exog.columns)
    random_effects = {
        lvl.name: pd.DataFrame(
            [modes[li].get(u, np.zeros(len(lvl.terms))) for u in range(len(lvl.labels))],
            index=lvl.labels, columns=list(lvl.terms))
        for li, lvl in enumerate(levels)
    }
    return MixedFit(
        fe_params=pd.Series(sol["beta"], index=names),
        cov_fe=pd.DataFrame(scale * np.linalg.inv(sol["xtvx"]), index=names, columns=names),
        variance_components=table,
        random_cov=random_cov,
        llf=float(sol["llf"]),
        reml=reml,
        nobs=len(endog),
        n_groups={lvl.name: len(lvl.labels) for lvl in levels},
        n_cov_params=_n_cov(levels),
        converged=converged,
        is_singular=singular,
        warnings=tuple(texts),
        engine="statsmodels",
        raw=raw,
        optimizer_info={
            "criterion": "REML" if reml else "ML",
            "theta": theta.tolist(),
            "best_attempt": best["attempt"],
            "attempts": [{k: (v.tolist() if isinstance(v, np.ndarray) else v)
                          for k, v in a.items()} for a in attempts],
            "statsmodels_messages": info,
        },
        random_effects=random_effects,
    )


def _n_cov(levels: list[_Level]) -> int:
    """Covariance parameters incl. the residual variance."""
    return sum(len(lv.terms) * (len(lv.terms) + 1) // 2 if lv.correlated else len(lv.terms)
               for lv in levels) + 1


def _emit(keep: list[tuple[type[Warning], str]], converged: bool, singular: bool) -> list[str]:
    texts = []
    if singular:
        texts.append("boundary (singular) fit: a random-effect variance is ~0 or a "
                     "correlation is ~ +/-1 (lme4 isSingular); consider a simpler "
                     "random-effects structure.")
        warnings.warn(texts[-1], BoundaryFitWarning, stacklevel=4)
    if not converged and not keep:
        texts.append("The optimiser did not report convergence; estimates may be inexact.")
        warnings.warn(texts[-1], ConvergenceWarning, stacklevel=4)
    for category, text in keep:
        texts.append(text)
        warnings.warn(text, category, stacklevel=4)
    return texts


# -- the fast engine ------------------------------------------------------------------------
def _fit_fast(
    endog: pd.Series,
    exog: pd.DataFrame,
    groups: pd.DataFrame,
    levels: list[_Level],
    reml: bool,
    re_design: pd.DataFrame | None,
) -> MixedFit:
    codes = np.column_stack([lvl.codes for lvl in levels])
    Z = [np.column_stack([_term_values(t, exog, re_design) for t in lvl.terms])
         for lvl in levels]
    engine = NestedLMM(exog.to_numpy(dtype=float), codes, Z, reml=reml,
                       fe_names=list(exog.columns),
                       re_names=[list(lvl.terms) for lvl in levels],
                       level_names=[lvl.name for lvl in levels])
    res = engine.fit(endog.to_numpy(dtype=float))
    covs = [np.asarray(c, dtype=float) for c in res.cov_re]
    table, random_cov = _variance_table(levels, covs, float(res.sigma2))
    names = list(exog.columns)
    texts = []
    if res.is_singular:
        texts.append("boundary (singular) fit: a random-effect variance is ~0 or a "
                     "correlation is ~ +/-1 (lme4 isSingular).")
        warnings.warn(texts[-1], BoundaryFitWarning, stacklevel=4)
    if not res.converged:
        texts.append(f"The fast engine did not converge: {res.message}")
        warnings.warn(texts[-1], ConvergenceWarning, stacklevel=4)
    random_effects: dict[str, pd.DataFrame] = {}
    for lvl, re in zip(levels, getattr(res, "random_effects", None) or [], strict=False):
        arr = np.asarray(re, dtype=float).reshape(len(lvl.labels), -1)
        random_effects[lvl.name] = pd.DataFrame(arr, index=lvl.labels, columns=list(lvl.terms))
    return MixedFit(
        fe_params=pd.Series(np.asarray(res.beta, dtype=float), index=names),
        cov_fe=pd.DataFrame(np.asarray(res.cov_beta, dtype=float), index=names, columns=names),
        variance_components=table,
        random_cov=random_cov,
        llf=float(res.llf),
        reml=reml,
        nobs=len(endog),
        n_groups={lvl.name: len(lvl.labels) for lvl in levels},
        n_cov_params=_n_cov(levels),
        converged=bool(res.converged),
        is_singular=bool(res.is_singular),
        warnings=tuple(texts),
        engine="fast",
        raw=None,
        optimizer_info={"criterion": "REML" if reml else "ML",
                        "theta": np.asarray(res.theta, dtype=float).tolist(),
                        "n_iter": int(res.n_iter), "message": str(res.message)},
        random_effects=random_effects,
    )


def fit_mixed(
    endog: pd.Series,
    exog: pd.DataFrame,
    groups: pd.DataFrame,
    random: Mapping[str, Sequence[str]],
    *,
    reml: bool = True,
    engine: str = "statsmodels",
    independent: Collection[str] = (),
    re_design: pd.DataFrame | None = None,
) -> MixedFit:
    """Fit a nested linear mixed model.

    Parameters
    ----------
    endog : Series
        Response (no missing values; callers drop them first).
    exog : DataFrame
        Fixed-effect design, full column rank (usually with an "Intercept" column).
    groups : DataFrame
        Grouping labels, columns ordered outer -> inner (e.g. therapist, patient). An
        inner unit is identified by its label together with all outer labels (lme4's
        ``therapist:patient``).
    random : mapping
        Level name (a column of ``groups``) -> names of random terms at that level:
        columns of ``exog`` or ``re_design``, or "Intercept" (a random intercept, whether
        or not ``exog`` has that column). Terms within a level are correlated (unstructured
        covariance), as lme4 ``(1 + x | level)``, unless the level is in ``independent``.
        Levels not in ``random`` get no random effects.
    reml : bool
        REML (default) or ML.
    engine : {"statsmodels", "fast"}
        statsmodels ``MixedLM`` or the project's nested-design engine. A structure only
        the fast engine can fit (correlated terms at an inner level) is sent to it
        automatically when it is installed, with a note; otherwise it raises.
    independent : collection of str
        Levels whose terms are mutually independent (lme4 ``(1 + x || level)``).
    re_design : DataFrame, optional
        Extra columns available as random terms (e.g. time when the fixed design is
        parameterised by rater), aligned with ``endog``.

    Returns
    -------
    MixedFit

    Raises
    ------
    ValueError
        If the random-effects structure cannot be fitted by the chosen engine, or names
        unknown levels or terms.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> g = np.repeat(np.arange(10), 5)
    >>> x = rng.normal(size=50)
    >>> y = 1 + 0.5 * x + rng.normal(size=10)[g] + rng.normal(size=50)
    >>> X = pd.DataFrame({"Intercept": 1.0, "x": x})
    >>> fit = fit_mixed(pd.Series(y), X, pd.DataFrame({"g": g}), {"g": ["Intercept"]})
    >>> round(float(fit.fe_params["x"]), 2)
    0.46
    """
    if engine not in ENGINES:
        raise ValueError(f"`engine` must be one of {ENGINES}; got {engine!r}.")
    if not isinstance(groups, pd.DataFrame) or groups.shape[1] == 0:
        raise TypeError("`groups` must be a DataFrame with at least one grouping column.")
    if not (len(endog) == len(exog) == len(groups)):
        raise ValueError("`endog`, `exog` and `groups` must have the same number of rows.")
    levels = _levels(groups, random, independent)
    for lvl in levels:
        for term in lvl.terms:
            _term_values(term, exog, re_design)
    inner_correlated = [lvl.name for lvl in levels[1:] if lvl.correlated and len(lvl.terms) > 1]
    if engine == "fast" and any(not lv.correlated for lv in levels):
        raise ValueError(
            "engine='fast' fits an unstructured (correlated) covariance at every level; "
            "uncorrelated terms (lme4 `||`, random='slopes_uncorrelated') need "
            "engine='statsmodels'."
        )
    if engine == "fast":
        return _fit_fast(endog, exog, groups, levels, reml, re_design)
    if inner_correlated:
        if True:
            fit = _fit_fast(endog, exog, groups, levels, reml, re_design)
            note = (f"Correlated random terms at the inner level(s) {inner_correlated} cannot "
                    f"be expressed in statsmodels MixedLM (its variance components are "
                    f"independent); the model was fitted with the fast engine.")
            return MixedFit(**{**fit.__dict__, "notes": (*fit.notes, note)})
        raise ValueError(
            f"statsmodels MixedLM cannot fit correlated random terms "
            f"{[lv.terms for lv in levels if lv.name in inner_correlated]} at the inner "
            f"level(s) {inner_correlated} (lme4 `(1 + x | outer:inner)`): its variance "
            f"components are independent. Use engine='fast', or make the inner-level "
            f"terms uncorrelated (random='slopes_uncorrelated', lme4 `||`)."
        )
    return _fit_statsmodels(endog, exog, levels, reml, re_design)
