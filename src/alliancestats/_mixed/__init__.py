"""The one adapter over linear mixed-model estimation.

Model modules build a response vector, a fixed-effect design and a random-effects
specification and call :func:`fit_mixed`; it fits the model with the project's nested
engine (``engine="fast"``, the default: profiled REML/ML as lme4, see
:mod:`alliancestats._mixed._engine`) or with statsmodels ``MixedLM``
(``engine="statsmodels"``, an independent cross-check, see
:mod:`alliancestats._mixed._statsmodels`), and returns a :class:`MixedFit`, the
engine-neutral record the results classes hold. No other module talks to statsmodels'
mixed models or to the engine directly.

Both paths share one implementation of the marginal covariance and the profiled
criterion (the engine's): statsmodels contributes its own estimate of the covariance
parameters, and the fixed effects, lme4's ``vcov`` = sigma^2 (X'V^-1X)^-1 and the
log-likelihood on lme4's scale are evaluated at them. A fit is singular, as lme4's
``isSingular``, when a diagonal element of the relative Cholesky factor is below
:data:`SINGULAR_TOL`.
"""

from __future__ import annotations

import contextlib
import functools
import math
import threading
import warnings
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd

from ..exceptions import BoundaryFitWarning, ConvergenceWarning
from ._ddf import DDF_CHOICES, DdfSource, satterthwaite_df
from ._engine import EngineFit, NestedLMM, theta_to_lambdas
from ._engine import diagonal_positions as theta_diagonal_positions
from ._engine._model import SINGULAR_TOL
from ._engine._residual import RESIDUAL_KINDS
from ._spec import (
    INTERCEPT,
    Level,
    _nested_codes,
    levels_from_codes,
    n_cov_params,
    term_values,
)
from ._statsmodels import diagonal_positions, fit_mixedlm

__all__ = ["DDF_CHOICES", "ENGINES", "INTERCEPT", "RESIDUALS", "SINGULAR_MESSAGE",
           "SINGULAR_TOL", "DdfSource", "Grouping", "MixedFit", "fit_mixed", "residual_note",
           "satterthwaite_df", "single_threaded_blas", "theta_diagonal_positions",
           "theta_to_lambdas"]

#: ``engine=`` choices; the first is the default.
ENGINES = ("fast", "statsmodels")
#: ``residual=`` choices; the first is the default.
RESIDUALS = RESIDUAL_KINDS
#: Columns of :attr:`MixedFit.residual_params`.
RESIDUAL_COLUMNS = ["estimate", "std_error", "conf_low", "conf_high"]
#: The residual parameters of iid residuals (none), copied for each fit: building an empty
#: frame costs more than copying one.
_NO_RESIDUAL_PARAMS = pd.DataFrame(columns=RESIDUAL_COLUMNS, dtype=float)
#: The one wording of a boundary fit, in warnings and summaries.
SINGULAR_MESSAGE = ("boundary (singular) fit: a random-effect variance is ~0 or a "
                    "correlation is ~ +/-1 (lme4 isSingular); consider a simpler "
                    "random-effects structure.")


@functools.cache
def _thread_controller() -> Any:
    from threadpoolctl import ThreadpoolController

    return ThreadpoolController()  # inspecting the loaded libraries costs ~1 ms: once


def single_threaded_blas() -> contextlib.AbstractContextManager[Any]:
    """A context in which BLAS/LAPACK run on one thread (restored on exit).

    A mixed-model fit works on small matrices (``p × p`` systems, stacks of ``q × q``
    blocks, one rank check of the ``n × p`` design), where a multithreaded BLAS only adds
    the cost of waking its threads, and on a busy machine waiting for them can cost far
    more than the arithmetic (measured: 15 ms instead of 0.1 ms for the rank of a
    1,260 × 8 design on 2 loaded cores). lme4 computes on one thread as well. The limit
    is process-wide while it holds (threadpoolctl), so it is held only around a fit.

    Examples
    --------
    >>> import numpy as np
    >>> with single_threaded_blas():
    ...     rank = int(np.linalg.matrix_rank(np.eye(3)))
    >>> rank
    3
    """
    if threading.current_thread() is not threading.main_thread():
        # a worker thread (e.g. of a threaded dask worker): the controller inspected
        # once in the main thread was seen not to hold the limit there; inspect afresh
        from threadpoolctl import threadpool_limits

        return threadpool_limits(limits=1, user_api="blas")
    limit: contextlib.AbstractContextManager[Any] = _thread_controller().limit(
        limits=1, user_api="blas")
    return limit


class _Lazy:
    """A value computed on first use, e.g. a table that most callers never read
    (pickled and copied as the value)."""

    def __init__(self, compute: Any = None, value: Any = None) -> None:
        self._compute = compute
        self._value = value

    def get(self) -> Any:
        if self._compute is not None:
            self._value = self._compute()
            self._compute = None
        return self._value

    def __reduce__(self) -> tuple[Any, ...]:
        return (_Lazy, (None, self.get()))


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
        NaN for the first term), last row level "Residual" (built on first use).
    random_cov : mapping
        Level -> covariance matrix (DataFrame) of that level's random terms (labelled on
        first use; pickled and copied as a plain dict).
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
        Messages from fitting (already emitted as alliancestats warnings).
    engine : str
        "fast" or "statsmodels".
    raw : object
        The statsmodels results object (``engine="statsmodels"``), or None.
    optimizer_info : dict
    random_effects : mapping
        Level -> DataFrame of conditional modes (one row per unit); with the fast engine
        computed on first use (pickled and copied as a plain dict).
    notes : tuple of str
        Remarks for the summary.
    theta : ndarray
        The relative covariance factors (lme4's ``getME(fit, "theta")``).
    residual : str
        The residual structure: "iid", "ar1", "rater" or "rater_ar1".
    residual_params : DataFrame
        The residual parameters (rows ``phi``, ``sd_ratio[<rater>]``, ``rater_corr``;
        columns estimate, std_error, conf_low, conf_high; empty for "iid"). An SD ratio
        is a rater's residual SD over the first rater's, whose residual variance is the
        "Residual" row of ``variance_components``.
    psi : ndarray
        The residual parameters on the engine's unconstrained scale (empty for "iid"):
        with ``theta`` the covariance parameters of :meth:`NestedLMM.deviance`.
    ddf_source : DdfSource or None
        The model, response and design at the estimate, from which Satterthwaite and
        Kenward–Roger degrees of freedom are computed on first use (see
        :mod:`alliancestats._mixed._ddf`).
    """

    fe_params: pd.Series
    cov_fe: pd.DataFrame
    _variance_components: _Lazy = field(repr=False)
    random_cov: Mapping[str, pd.DataFrame]
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
    random_effects: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    theta: np.ndarray[Any, np.dtype[np.float64]] | None = None
    residual: str = "iid"
    residual_params: pd.DataFrame = field(default_factory=lambda: _NO_RESIDUAL_PARAMS.copy())
    psi: np.ndarray[Any, np.dtype[np.float64]] = field(default_factory=lambda: np.empty(0))
    ddf_source: DdfSource | None = field(default=None, repr=False, compare=False)

    @property
    def variance_components(self) -> pd.DataFrame:
        """The variance components table (see the class notes)."""
        table: pd.DataFrame = self._variance_components.get()
        return table

    @property
    def method(self) -> str:
        """"REML" or "ML"."""
        return "REML" if self.reml else "ML"

    def with_notes(self, *notes: str) -> MixedFit:
        """A copy with further summary notes."""
        return replace(self, notes=(*self.notes, *notes))


@functools.lru_cache(maxsize=64)
def _table_text(structure: tuple[tuple[str, tuple[str, ...]], ...]) -> tuple[Any, Any]:
    """The level and term columns of a variance table for ``structure`` (level -> terms),
    typed once: inferring the dtype of text costs more than the table's numbers. (A
    frame built from them copies them.)"""
    level = [name for name, terms in structure for _ in terms] + ["Residual"]
    term = [t for _, terms in structure for t in terms] + [""]
    return (pd.Series(np.array(level, dtype=object)).array,
            pd.Series(np.array(term, dtype=object)).array)


def _variance_table(levels: Sequence[Level], covs: Sequence[np.ndarray[Any, Any]],
                    scale: float) -> pd.DataFrame:
    variance: list[float] = []
    corr: list[float] = []
    for lvl, cov in zip(levels, covs, strict=True):
        sd = np.sqrt(np.clip(np.diag(cov), 0.0, None))
        for t in range(len(lvl.terms)):
            r = math.nan
            if t > 0 and lvl.correlated:
                denom = sd[0] * sd[t]
                r = float(cov[0, t] / denom) if denom > 0 else math.nan
            variance.append(float(cov[t, t]))
            corr.append(r)
    variance.append(scale)
    corr.append(math.nan)
    var = np.array(variance)
    # sd as before: sqrt of the clipped variance for random terms, of sigma² for the residual
    sds = np.sqrt(np.clip(var, 0.0, None))
    sds[-1] = math.sqrt(scale)
    level_col, term_col = _table_text(tuple((lvl.name, lvl.terms) for lvl in levels))
    return pd.DataFrame({"level": level_col, "term": term_col, "variance": var, "sd": sds,
                         "corr": np.array(corr)})


def _random_cov(levels: Sequence[Level], covs: Sequence[np.ndarray[Any, Any]]
                ) -> Mapping[str, pd.DataFrame]:
    """Level -> covariance matrix of its random terms, labelled on first use."""
    def labelled() -> dict[str, pd.DataFrame]:
        out = {}
        for lvl, cov in zip(levels, covs, strict=True):
            terms = pd.Index(list(lvl.terms))  # one index for both axes
            out[lvl.name] = pd.DataFrame(cov, index=terms, columns=terms)
        return out

    return _LazyEffects(labelled)


class Grouping:
    """The unit codes of a grouping frame, computed once for several fits of it.

    Pass it as ``fit_mixed(..., grouping=Grouping(groups))`` with that same ``groups``
    (e.g. the fits of a random part simplified step by step), or as ``groups`` itself:
    the labels are sorted and coded once instead of at every fit, and the same codes
    serve the checks of the grouping (:attr:`column_codes`).

    Parameters
    ----------
    groups : DataFrame
        The grouping columns, outer -> inner; or, with ``columns``, a frame holding them.
    columns : sequence of column names, optional
        The grouping columns of ``groups``, outer -> inner (default: all of them).

    Examples
    --------
    >>> import pandas as pd
    >>> Grouping(pd.DataFrame({"g": ["b", "a", "b"], "y": [1.0, 2.0, 3.0]}), ["g"]).columns
    ['g']
    """

    def __init__(self, groups: pd.DataFrame, columns: Sequence[Hashable] | None = None
                 ) -> None:
        if not isinstance(groups, pd.DataFrame) or groups.shape[1] == 0 or \
                (columns is not None and not columns):
            raise TypeError("`groups` must be a DataFrame with at least one grouping "
                            "column.")
        self.columns = list(groups.columns) if columns is None else list(columns)
        self.n_rows = len(groups)
        self.nested = _nested_codes(groups, columns)

    @property
    def column_codes(self) -> dict[Hashable, tuple[np.ndarray[Any, Any], Any]]:
        """Per grouping column, the codes of its sorted labels and the labels (what the
        group checks of :func:`~alliancestats.design.prepare_frame` take)."""
        return dict(zip(self.columns, self.nested[2], strict=True))

    def __len__(self) -> int:
        return self.n_rows

    def matches(self, groups: pd.DataFrame) -> bool:
        """Whether this coding can stand for ``groups`` (same columns and rows)."""
        return list(groups.columns) == self.columns and len(groups) == self.n_rows


@dataclass(frozen=True)
class _Residual:
    """The residual structure of a fit: kind, per-row time and rater, residual units."""

    kind: str = "iid"
    time: np.ndarray[Any, Any] | None = None
    rater: pd.Series | None = None
    units: np.ndarray[Any, Any] | None = None


def _residual_spec(residual: str, grouping: Grouping, time: Any, rater: Any,
                   n: int) -> _Residual:
    if not isinstance(residual, str) or residual not in RESIDUALS:
        raise ValueError(f"`residual` must be one of {RESIDUALS}; got {residual!r}.")
    if residual == "iid":
        return _Residual()
    if time is None:
        raise ValueError(f"residual={residual!r} needs `time`: the occasion of each row "
                         "(e.g. the session), one value per row of `endog`.")
    t = np.asarray(time, dtype=float).ravel()
    if t.size != n or not np.all(np.isfinite(t)):
        raise ValueError(f"`time` must hold {n} finite numbers (one per row of `endog`).")
    r = None
    if residual in ("rater", "rater_ar1"):
        if rater is None:
            raise ValueError(f"residual={residual!r} needs `rater`: the rater of each row "
                             "of rater-stacked data.")
        r = pd.Series(rater).reset_index(drop=True)
        if len(r) != n:
            raise ValueError(f"`rater` must hold {n} labels (one per row of `endog`).")
    # the residual unit: the innermost grouping column with all outer ones (a patient);
    # AR(1) of rater-stacked rows runs within each rater's series (patient x rater)
    # (the grouping's innermost codes: sorted by the labels, outer first)
    units = grouping.nested[0][-1]
    if residual == "ar1" and rater is not None:
        rater_codes, labels = pd.factorize(np.asarray(rater, dtype=object), sort=True)
        _, units = np.unique(units * len(labels) + rater_codes, return_inverse=True)
    return _Residual(residual, t, r, np.asarray(units, dtype=np.intp).ravel())


def _model_arrays(exog: pd.DataFrame, levels: Sequence[Level],
                  re_design: pd.DataFrame | None) -> tuple[Any, Any, list[Any]]:
    """The design ``X``, the unit codes (one column per level) and the random-effect
    designs ``Z`` of a model, built once for the engine and the df source (raises for a
    random term that is no column)."""
    X = exog.to_numpy(dtype=float)
    columns: dict[str, np.ndarray[Any, Any]] = {}  # each term once (e.g. the intercept)
    for lvl in levels:
        for term in lvl.terms:
            if term not in columns:
                columns[term] = term_values(term, exog, re_design, X)
    Z = [np.column_stack([columns[t] for t in lvl.terms]) for lvl in levels]
    codes = np.column_stack([lvl.codes for lvl in levels])
    return X, codes, Z


def _engine_model(endog: pd.Series, exog: pd.DataFrame, levels: Sequence[Level], reml: bool,
                  re_design: pd.DataFrame | None,
                  residual: _Residual | None = None,
                  arrays: tuple[Any, Any, Any] | None = None) -> NestedLMM:
    X, codes, Z = arrays if arrays is not None else _model_arrays(exog, levels, re_design)
    res = residual or _Residual()
    return NestedLMM.from_codes(
        X, codes, Z, reml=reml, fe_names=[str(c) for c in exog.columns],
        re_names=[list(lvl.terms) for lvl in levels], level_names=[lvl.name for lvl in levels],
        independent=[not lvl.correlated for lvl in levels], residual=res.kind, time=res.time,
        rater=res.rater, residual_units=res.units)


def _emit(messages: Sequence[tuple[type[Warning], str]]) -> tuple[str, ...]:
    for category, text in messages:
        warnings.warn(text, category, stacklevel=5)
    return tuple(text for _, text in messages)


class _LazyEffects(Mapping[str, pd.DataFrame]):
    """Level -> DataFrame, computed on first use: conditional modes (labelling every
    unit costs more than a small model's fit) and the random-effect covariances (most
    callers read the variance table instead)."""

    def __init__(self, compute: Any) -> None:
        self._value = _Lazy(compute)

    def _frames(self) -> dict[str, pd.DataFrame]:
        frames: dict[str, pd.DataFrame] = self._value.get()
        return frames

    def __getitem__(self, key: str) -> pd.DataFrame:
        return self._frames()[key]

    def __iter__(self) -> Any:
        return iter(self._frames())

    def __len__(self) -> int:
        return len(self._frames())

    def __repr__(self) -> str:
        return repr(self._frames())

    def __reduce__(self) -> tuple[Any, ...]:
        return (dict, (self._frames(),))  # pickled and copied as the plain dict


def _effect_frames(levels: Sequence[Level], modes: Sequence[pd.DataFrame]
                   ) -> dict[str, pd.DataFrame]:
    return {lvl.name: pd.DataFrame(re.to_numpy(), index=lvl.labels, columns=list(lvl.terms))
            for lvl, re in zip(levels, modes, strict=False)}


def _record(res: EngineFit, levels: Sequence[Level], exog: pd.DataFrame, *, engine: str,
            converged: bool, messages: list[tuple[type[Warning], str]], raw: Any = None,
            optimizer_info: Mapping[str, Any] | None = None,
            residual_params: pd.DataFrame | None = None,
            effects: Mapping[str, pd.DataFrame] | None = None,
            ddf_source: DdfSource | None = None) -> MixedFit:
    """The :class:`MixedFit` of an engine evaluation (at its own or another optimum);
    ``effects`` replaces the evaluation's conditional modes (e.g. computed lazily)."""
    if res.is_singular:
        messages.insert(0, (BoundaryFitWarning, SINGULAR_MESSAGE))
    if not converged and not any(c is ConvergenceWarning for c, _ in messages):
        messages.append((ConvergenceWarning, f"The {engine} optimiser did not converge; "
                                             f"estimates may be inexact."))
    covs = [np.asarray(c, dtype=float) for c in res.cov_re]
    sigma2 = float(res.sigma2)
    names = exog.columns  # one (immutable) index for the estimates and both axes
    if effects is None:
        effects = _effect_frames(levels, res.random_effects)
    extra: dict[str, Any] = {} if residual_params is None else \
        {"residual_params": residual_params}
    return MixedFit(
        fe_params=pd.Series(np.asarray(res.beta, dtype=float), index=names),
        cov_fe=pd.DataFrame(np.asarray(res.cov_beta, dtype=float), index=names, columns=names),
        _variance_components=_Lazy(lambda: _variance_table(levels, covs, sigma2)),
        random_cov=_random_cov(levels, covs), llf=float(res.llf),
        reml=res.reml, nobs=res.nobs, n_groups={lvl.name: lvl.n_units for lvl in levels},
        n_cov_params=n_cov_params(levels) + int(np.size(res.psi)), converged=converged,
        is_singular=bool(res.is_singular), warnings=_emit(messages), engine=engine, raw=raw,
        optimizer_info={"criterion": "REML" if res.reml else "ML",
                        "theta": np.asarray(res.theta).tolist(), **(optimizer_info or {})},
        random_effects=effects, theta=np.asarray(res.theta, dtype=float),
        residual=res.residual, psi=np.asarray(res.psi, dtype=float), ddf_source=ddf_source,
        **extra,
    )


def _ddf_source(model: NestedLMM, y: np.ndarray[Any, Any], levels: Sequence[Level],
                res: EngineFit, arrays: tuple[Any, Any, Any]) -> DdfSource:
    """What the df of this fit need (computed lazily by the results): the covariance
    parameters are ``np.r_[θ, ψ]``, as :meth:`NestedLMM.evaluate` takes them."""
    X, codes, Z = arrays
    params = np.r_[np.asarray(res.theta, dtype=float), np.asarray(res.psi, dtype=float)]
    return DdfSource(model, y, params, res.reml, X, Z, codes,
                     tuple(not lvl.correlated for lvl in levels))


def _fit_fast(endog: pd.Series, exog: pd.DataFrame, levels: Sequence[Level], reml: bool,
              re_design: pd.DataFrame | None, residual: _Residual,
              arrays: tuple[Any, Any, Any], at: Any = None) -> MixedFit:
    model = _engine_model(endog, exog, levels, reml, re_design, residual, arrays)
    y = endog.to_numpy(dtype=float)
    if at is not None:
        res = model.evaluate(y, _covariance_vector(model, at), random_effects=False)
    else:
        res = model.fit(y, random_effects=False)
    messages: list[tuple[type[Warning], str]] = []
    if not res.converged:
        messages.append((ConvergenceWarning, f"The fast engine did not converge: {res.message}"))
    table = None
    if residual.kind != "iid":
        table = model.residual_table(y, res)
        if table["std_error"].isna().any():
            messages.append((ConvergenceWarning, "The residual parameters' standard errors "
                             "are not available (the deviance's Hessian is not positive "
                             "definite): a parameter may be on its boundary."))
    def modes() -> dict[str, pd.DataFrame]:
        # at the estimate: the same factorisation as the fit's own (the criterion of
        # `y` is kept by the model)
        with single_threaded_blas():
            at = model.evaluate(y, res.cov_params_vector, reml=res.reml)
        return _effect_frames(levels, at.random_effects)

    return _record(res, levels, exog, engine="fast", converged=res.converged,
                   messages=messages, optimizer_info={"n_iter": res.n_iter,
                                                      "message": res.message},
                   residual_params=table, effects=_LazyEffects(modes),
                   ddf_source=_ddf_source(model, y, levels, res, arrays))


def _covariance_vector(model: NestedLMM, value: Any) -> np.ndarray[Any, Any]:
    """``at`` of :func:`fit_mixed` as the engine's ``np.r_[θ, ψ]``."""
    out = np.asarray(value, dtype=float).ravel()
    size = model.n_theta + model.n_psi
    if out.shape != (size,) or not np.all(np.isfinite(out)):
        raise ValueError(f"`at` must hold {size} finite covariance parameters (θ then "
                         f"the residual parameters, a fit's np.r_[theta, psi]); got "
                         f"{out.size}.")
    return out


def _fit_statsmodels(endog: pd.Series, exog: pd.DataFrame, levels: Sequence[Level],
                     reml: bool, re_design: pd.DataFrame | None,
                     arrays: tuple[Any, Any, Any]) -> MixedFit:
    sm = fit_mixedlm(endog, exog, levels, reml, re_design)
    if sm["theta"] is None:
        detail = "; ".join(text for _, text in sm["messages"]) or "no estimate"
        raise ValueError(f"statsmodels MixedLM could not fit this model ({detail}); use "
                         f"engine='fast'.")
    model = _engine_model(endog, exog, levels, reml, re_design, arrays=arrays)
    y = endog.to_numpy(dtype=float)
    theta = _onto_boundary(model, y, sm["theta"], diagonal_positions(levels))
    res = model.evaluate(y, theta)
    messages: list[tuple[type[Warning], str]] = [
        (ConvergenceWarning, f"statsmodels: {text}") for category, text in
        sm["messages"] if not sm["converged"] and category is not RuntimeWarning]
    info = {"best_attempt": sm["best_attempt"], "attempts": sm["attempts"],
            "statsmodels_messages": [text for _, text in sm["messages"]]}
    return _record(res, levels, exog, engine="statsmodels", converged=sm["converged"],
                   messages=messages, raw=sm["raw"], optimizer_info=info,
                   ddf_source=_ddf_source(model, y, levels, res, arrays))


def _onto_boundary(model: NestedLMM, y: np.ndarray[Any, Any], theta: np.ndarray[Any, Any],
                   diagonal: Sequence[int]) -> np.ndarray[Any, Any]:
    """Set small diagonal elements of θ to exactly 0 where that does not lower the
    likelihood (to 1e-7): statsmodels' likelihood inverts the random-effects covariance,
    so its optimiser can only approach a boundary optimum, where lme4 reaches it."""
    out = theta.copy()
    dev = model.deviance(y, out)
    for k in sorted(diagonal, key=lambda j: out[j]):
        if out[k] >= 0.05 or out[k] == 0.0:
            continue
        trial = out.copy()
        trial[k] = 0.0
        value = model.deviance(y, trial)
        if value <= dev + 2e-7:
            out, dev = trial, min(dev, value)
    return out


def _check_random_effect_count(levels: Sequence[Level], nobs: int) -> None:
    """lme4's refusal (``checkZdims``): a level with at least as many random effects
    (units x terms) as observations leaves the variance components and the residual
    variance unidentified."""
    for lvl in levels:
        n_re = lvl.n_units * len(lvl.terms)
        if n_re >= nobs:
            raise ValueError(
                f"`random`: level {lvl.name!r} has {n_re} random effects ({lvl.n_units} "
                f"units x {len(lvl.terms)} terms), as many as or more than the "
                f"observations ({nobs}): the variance components and the residual variance "
                f"are not identified (lme4 refuses such a model). Use fewer random terms at "
                f"that level."
            )


def _grouping_of(groups: pd.DataFrame | Grouping, grouping: Grouping | None) -> Grouping:
    """The :class:`Grouping` of :func:`fit_mixed`'s ``groups`` (and ``grouping``)."""
    if isinstance(groups, Grouping):
        if grouping is not None and grouping is not groups:
            raise ValueError("`groups` is a Grouping: pass no other `grouping`.")
        return groups
    if grouping is None:
        return Grouping(groups)
    if not grouping.matches(groups):
        raise ValueError("`grouping` was made from other groups (columns or rows differ); "
                         "pass Grouping(groups) of these groups.")
    return grouping


def fit_mixed(
    endog: pd.Series,
    exog: pd.DataFrame,
    groups: pd.DataFrame | Grouping,
    random: Mapping[str, Sequence[str]],
    *,
    reml: bool = True,
    engine: str = "fast",
    independent: Collection[Hashable] = (),
    re_design: pd.DataFrame | None = None,
    residual: str = "iid",
    time: Any = None,
    rater: Any = None,
    at: Any = None,
    grouping: Grouping | None = None,
) -> MixedFit:
    """Fit a nested linear mixed model.

    Parameters
    ----------
    endog : Series
        Response (no missing values; callers drop them first).
    exog : DataFrame
        Fixed-effect design, full column rank (usually with an "Intercept" column).
    groups : DataFrame or Grouping
        Grouping labels, columns ordered outer -> inner (e.g. therapist, patient), or
        their :class:`Grouping` (the labels coded once, e.g. by the validation of the
        data). An inner unit is identified by its label together with all outer labels
        (lme4's ``therapist:patient``).
    random : mapping
        Level name (a column of ``groups``) -> names of random terms at that level:
        columns of ``exog`` or ``re_design``, or "Intercept" (a random intercept, whether
        or not ``exog`` has that column). Terms within a level are correlated (unstructured
        covariance), as lme4 ``(1 + x | level)``, unless the level is in ``independent``.
        Levels not in ``random`` get no random effects.
    reml : bool
        REML (default) or ML.
    engine : {"fast", "statsmodels"}
        The project's nested engine (default) or a genuine statsmodels ``MixedLM`` fit
        (an independent cross-check). statsmodels cannot express correlated terms at an
        inner level: such a structure raises under ``engine="statsmodels"``.
    independent : collection of str
        Levels whose terms are mutually independent (lme4 ``(1 + x || level)``).
    re_design : DataFrame, optional
        Extra columns available as random terms (e.g. time when the fixed design is
        parameterised by rater), aligned with ``endog``.
    residual : {"iid", "ar1", "rater", "rater_ar1"}
        Residual covariance within each unit of the innermost grouping column (a patient):
        independent with one variance (default, lme4's model); ``"ar1"``: correlation
        ``phi^|t_i - t_j|`` by the ``time`` value, so a missed session is a lag of 2
        (nlme ``corAR1(form = ~ time | therapist/patient)``); ``"rater"``: a residual SD
        per ``rater`` and one correlation of different raters' residuals at the same
        ``time`` (nlme ``weights = varIdent(form = ~ 1 | rater)``, ``correlation =
        corCompSymm(form = ~ 1 | therapist/patient/time)``); ``"rater_ar1"``: that rater
        covariance times ``phi^|t_i - t_j|`` (Kronecker form). Fast engine only.
    time : array_like, optional
        Time value of each row (aligned with ``endog``); needed by every structure but
        "iid". ``phi`` may be negative when all within-unit gaps are whole numbers;
        otherwise ``0 <= phi < 1`` (nlme ``corCAR1``).
    rater : array_like, optional
        Rater of each row for "rater" / "rater_ar1" (a categorical's category order, else
        sorted labels; the first is the reference of the SD ratios). With "ar1" it makes
        each rater's series its own AR(1) unit (nlme ``corAR1(form = ~ time |
        therapist/patient/rater)``).
    at : array_like, optional
        Covariance parameters (``np.r_[theta, psi]``) at which the model is evaluated
        without optimising (e.g. a known optimum): the estimates, covariance and
        likelihood there (``n_iter`` 0; fast engine only).
    grouping : Grouping, optional
        ``Grouping(groups)`` of these same ``groups``, shared by several fits so that the
        labels are coded once.

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
    if not isinstance(groups, Grouping) and (not isinstance(groups, pd.DataFrame)
                                             or groups.shape[1] == 0):
        raise TypeError("`groups` must be a DataFrame with at least one grouping column.")
    if not (len(endog) == len(exog) == len(groups)):
        raise ValueError("`endog`, `exog` and `groups` must have the same number of rows.")
    grouping = _grouping_of(groups, grouping)
    levels = levels_from_codes(grouping.columns, random, independent, grouping.nested)
    arrays = _model_arrays(exog, levels, re_design)
    _check_random_effect_count(levels, len(endog))
    spec = _residual_spec(residual, grouping, time, rater, len(endog))
    if engine == "fast":
        with single_threaded_blas():
            return _fit_fast(endog, exog, levels, reml, re_design, spec, arrays, at)
    if at is not None:
        raise ValueError("`at` is for engine='fast' (statsmodels MixedLM optimises "
                         "from its own start).")
    if spec.kind != "iid":
        raise ValueError(
            f"statsmodels MixedLM cannot fit residual={residual!r} (its residuals are "
            f"independent with one variance); use engine='fast' (the default), or "
            f"residual='iid'.")
    inner_correlated = [lv for lv in levels[1:] if lv.correlated and len(lv.terms) > 1]
    if inner_correlated:
        raise ValueError(
            f"statsmodels MixedLM cannot fit correlated random terms "
            f"{[lv.terms for lv in inner_correlated]} at the inner level(s) "
            f"{[lv.name for lv in inner_correlated]} (lme4 `(1 + x | outer:inner)`): its "
            f"variance components are independent. Use engine='fast' (the default), or "
            f"make the inner-level terms uncorrelated (random='slopes_uncorrelated', "
            f"lme4 `||`)."
        )
    return _fit_statsmodels(endog, exog, levels, reml, re_design, arrays)


def residual_note(residual: str, groups: Sequence[Hashable], time: Hashable | None,
                  rater: Hashable | None = None) -> list[str]:
    """The summary note describing a residual structure, with its nlme twin (empty for
    "iid").

    Examples
    --------
    >>> residual_note("ar1", ["therapist", "patient"], "session")[0][:42]
    'Residuals AR(1) over session within patien'
    """
    if residual == "iid":
        return []
    unit = "/".join(str(g) for g in groups)
    inner = str(groups[-1])
    ar = f"corAR1(form = ~ {time} | {unit})"
    if residual == "ar1" and rater is not None:
        return [f"Residuals AR(1) over {time} within each {rater}'s series of a {inner} "
                f"(phi^|t_i - t_j| by the {time} value); nlme: lme(..., correlation = "
                f"corAR1(form = ~ {time} | {unit}/{rater}))."]
    if residual == "ar1":
        return [f"Residuals AR(1) over {time} within {inner} (phi^|t_i - t_j| by the "
                f"{time} value, a missed session is a lag of 2); nlme: lme(..., "
                f"correlation = {ar})."]
    rater_text = (f"a residual SD per {rater} (ratio to the first) and one correlation of "
                  f"the raters' residuals at the same {time}")
    if residual == "rater":
        return [f"Residuals: {rater_text}; nlme: lme(..., weights = varIdent(form = ~ 1 | "
                f"{rater}), correlation = corCompSymm(form = ~ 1 | {unit}/{time}))."]
    return [f"Residuals: {rater_text}, times phi^|t_i - t_j| over {time} within {inner} "
            f"(rater covariance x AR(1), Kronecker form; no nlme twin)."]


def deviance_at(
    endog: pd.Series,
    exog: pd.DataFrame,
    groups: pd.DataFrame,
    random: Mapping[str, Sequence[str]],
    covariance: Any,
    *,
    reml: bool = False,
    independent: Collection[Hashable] = (),
    re_design: pd.DataFrame | None = None,
    residual: str = "iid",
    time: Any = None,
    rater: Any = None,
) -> float:
    """Profiled deviance (-2 log-likelihood) of a design at fixed covariance parameters.

    With the covariance parameters held at those of a fit (``np.r_[fit.theta, fit.psi]``,
    lme4's θ followed by the residual parameters), this is the generalised least-squares
    criterion of the fixed-effect design ``exog``: callers compare designs (e.g. profile
    a nonlinear parameter of the design) without refitting the variance components. The
    arguments are those of :func:`fit_mixed`.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> rng = np.random.default_rng(1)
    >>> g = pd.DataFrame({"g": np.repeat(np.arange(10), 5)})
    >>> X = pd.DataFrame({"Intercept": 1.0, "x": rng.normal(size=50)})
    >>> y = pd.Series(X["x"] + rng.normal(size=10)[g["g"]] + rng.normal(size=50))
    >>> fit = fit_mixed(y, X, g, {"g": ["Intercept"]}, reml=False)
    >>> bool(np.isclose(deviance_at(y, X, g, {"g": ["Intercept"]}, fit.theta), -2 * fit.llf))
    True
    """
    grouping = Grouping(groups)
    levels = levels_from_codes(grouping.columns, random, independent, grouping.nested)
    spec = _residual_spec(residual, grouping, time, rater, len(endog))
    with single_threaded_blas():
        model = _engine_model(endog, exog, levels, reml, re_design, spec)
        return float(model.deviance(endog.to_numpy(dtype=float),
                                    np.asarray(covariance, float)))
