"""`NestedLMM`: validation, precomputation, θ optimisation and the `EngineFit` result."""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
from scipy import optimize

from . import _core, _residual
from ._core import FloatArray, IntArray, Structure
from ._residual import RESIDUAL_KINDS, ResidualLayout

SINGULAR_TOL = 1e-4  # lme4 isSingular(tol = 1e-4) on the bounded elements of θ


@dataclass(frozen=True)
class EngineFit:
    """Estimates of one nested linear mixed model (the quantities lme4 reports).

    Attributes
    ----------
    beta, cov_beta : ndarray
        Fixed effects and their covariance ``σ²(X'V⁻¹X)⁻¹`` (lme4 ``fixef``, ``vcov``).
    sigma2 : float
        Residual variance (lme4 ``sigma(fit)^2``).
    theta : ndarray
        Relative Cholesky factors, lower triangles column-major, levels outer -> inner.
    cov_re : list of ndarray
        Random-effect covariance matrix per level (lme4 ``VarCorr``).
    llf : float
        ``logLik`` of the fit (REML: ``−REMLcrit/2``).
    reml, converged, is_singular : bool
    n_iter : int
        Optimiser iterations (summed over restarts).
    message : str
    random_effects : list of DataFrame
        Conditional modes per level, indexed by unit label (lme4 ``ranef``); empty
        when fitted with ``random_effects=False``.
    n_groups : tuple of int
    nobs : int
    fe_names, re_names, level_names : names of the columns, terms and levels.
    residual : str
        The residual structure (``"iid"``, ``"ar1"``, ``"rater"``, ``"rater_ar1"``).
    psi : ndarray
        Residual parameters on the optimiser's unconstrained scale (empty for ``"iid"``);
        ``np.r_[theta, psi]`` is what :meth:`NestedLMM.deviance` and
        :meth:`NestedLMM.evaluate` take.
    residual_params : dict
        The residual parameters as reported: ``phi`` (AR(1)), ``sd_ratio[rater]`` (residual
        SD of a rater relative to the first rater's, which is ``sqrt(sigma2)``),
        ``rater_corr`` (correlation of different raters' residuals at the same time).
    """

    beta: FloatArray
    cov_beta: FloatArray
    sigma2: float
    theta: FloatArray
    cov_re: list[FloatArray]
    llf: float
    reml: bool
    converged: bool
    is_singular: bool
    n_iter: int
    message: str
    random_effects: list[pd.DataFrame]
    n_groups: tuple[int, ...]
    nobs: int
    fe_names: list[str]
    re_names: list[list[str]]
    level_names: list[str]
    residual: str = "iid"
    psi: FloatArray = field(default_factory=lambda: np.empty(0))
    residual_params: dict[str, float] = field(default_factory=dict)

    @property
    def cov_params_vector(self) -> FloatArray:
        """``np.r_[theta, psi]``: the covariance parameters besides ``sigma2``."""
        return np.r_[self.theta, self.psi]

    @property
    def bse(self) -> FloatArray:
        """Standard errors of the fixed effects (lme4 ``sqrt(diag(vcov(fit)))``)."""
        return np.sqrt(np.diag(self.cov_beta))


def _as_matrix(value: Any, name: str, n: int | None) -> FloatArray:
    try:
        arr = np.asarray(value, dtype=float)
    except (TypeError, ValueError) as exc:
        raise TypeError(f"`{name}` must be numeric; convert it to floats first.") from exc
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2:
        raise ValueError(f"`{name}` must be a 2-D array (rows = observations); "
                         f"got {arr.ndim} dimensions.")
    if n is not None and arr.shape[0] != n:
        raise ValueError(f"`{name}` has {arr.shape[0]} rows but X has {n}; pass one row "
                         "per observation.")
    bad = ~np.isfinite(arr)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise ValueError(f"`{name}` has {int(bad.sum())} missing or infinite value(s) "
                         f"(first at row {row}, column {col}); drop those rows first.")
    return arr


def _group_codes(groups: Any, n: int) -> tuple[list[IntArray], list[pd.Index]]:
    """Codes and labels per level; an inner unit is its label with all outer labels."""
    frame = pd.DataFrame(groups) if not isinstance(groups, pd.DataFrame) else groups
    if frame.shape[0] != n:
        raise ValueError(f"`groups` has {frame.shape[0]} rows but X has {n}; pass one row "
                         "per observation.")
    if frame.shape[1] < 1:
        raise ValueError("`groups` needs at least one column (outer -> inner levels).")
    missing = frame.isna().to_numpy()
    if missing.any():
        col = int(np.flatnonzero(missing.any(axis=0))[0])
        raise ValueError(f"`groups` column {col} has missing labels; drop those rows first.")
    codes, labels = [], []
    for depth in range(frame.shape[1]):
        cols = [frame.iloc[:, c].to_numpy() for c in range(depth + 1)]
        key: pd.Index = (pd.Index(cols[0]) if depth == 0
                         else pd.MultiIndex.from_arrays(cols))
        try:
            # sorted codes keep every unit's descendants contiguous (needed by reduceat)
            code, uniq = key.factorize(sort=True)
        except TypeError as exc:
            raise ValueError(f"`groups` column {depth} mixes label types that cannot be "
                             "ordered; convert it to one type (e.g. str).") from exc
        codes.append(np.asarray(code, dtype=np.intp))
        labels.append(uniq if isinstance(uniq, pd.Index) else pd.Index(uniq))
    return codes, labels


@dataclass(frozen=True)
class _Codes:
    """Validated unit codes per level and their labels (:meth:`NestedLMM.from_codes`)."""

    codes: list[IntArray]
    labels: list[pd.Index]


def _checked_codes(codes: Any, n: int) -> list[IntArray]:
    """Validate :meth:`NestedLMM.from_codes` codes: used, nested and parent-ordered."""
    arr = np.asarray(codes)
    if arr.ndim == 1:
        arr = arr[:, None]
    if arr.ndim != 2 or arr.shape[0] != n or arr.shape[1] < 1:
        raise ValueError(f"`codes` must have shape (n, levels) with n = {n} rows (one per "
                         f"row of X); got shape {arr.shape}.")
    if not np.issubdtype(arr.dtype, np.integer):
        raise TypeError("`codes` must be integers; use the constructor for labels.")
    cols = [np.ascontiguousarray(arr[:, lvl], dtype=np.intp) for lvl in range(arr.shape[1])]
    for lvl, col in enumerate(cols):
        if col.min() < 0 or not np.bincount(col).all():
            raise ValueError(f"`codes` column {lvl} must use every code 0 .. max exactly; "
                             "use the constructor for arbitrary labels.")
    for lvl in range(len(cols) - 1):
        parent_of = np.empty(int(cols[lvl + 1].max()) + 1, dtype=np.intp)
        parent_of[cols[lvl + 1]] = cols[lvl]
        if np.any(parent_of[cols[lvl + 1]] != cols[lvl]) or np.any(np.diff(parent_of) < 0):
            raise ValueError(f"`codes` column {lvl + 1} is not nested in column {lvl} with "
                             "codes ordered by parent; use the constructor for labels.")
    return cols


class NestedLMM:
    """Linear mixed model with nested grouping and unstructured covariance per level.

    Parameters
    ----------
    X : array_like, shape (n, p)
        Fixed-effects design of full column rank.
    groups : array_like, shape (n, L)
        Unit labels, columns outer -> inner. An inner unit is the combination of its label
        with all outer labels (lme4 ``a:b``), so inner labels may repeat across outer units.
    Z : list of array_like
        ``Z[l]`` of shape ``(n, q_l)``: random-effect design at level ``l``.
    reml : bool, default True
        REML (lme4's default) or ML.
    fe_names, re_names, level_names : optional names for the results.
    independent : sequence of bool, optional
        Per level: its terms are mutually independent (diagonal covariance, lme4
        ``(1 + x || level)``) instead of unstructured. Default: unstructured everywhere.
    residual : {"iid", "ar1", "rater", "rater_ar1"}, default "iid"
        Residual covariance ``σ² C_u(ψ)`` per residual unit ``u`` (see
        :mod:`~alliancestats._mixed._engine._residual`): independent with one variance
        (lme4's model), AR(1) by ``time`` (nlme ``corAR1(form = ~ time | unit)``), a
        residual SD per ``rater`` with one correlation of different raters at the same
        ``time`` (nlme ``varIdent`` + ``corCompSymm``), or that rater covariance ⊗ AR(1).
    time : array_like, shape (n,), optional
        Time value of each row (needed by every non-iid structure).
    rater : array_like, shape (n,), optional
        Rater of each row (``"rater"``, ``"rater_ar1"``): a categorical's category order,
        else the sorted labels; the first rater is the reference of the SD ratios.
    residual_units : array_like of int, shape (n,), optional
        Residual unit of each row, nested in the innermost level's units (e.g. patients
        when only therapists have random effects). Default: the innermost level's units.

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(1)
    >>> ther = np.repeat(np.arange(20), 12); pat = np.tile(np.repeat([0, 1, 2], 4), 20)
    >>> X = np.column_stack([np.ones(240), rng.normal(size=240)])
    >>> y = X @ [1.0, 0.5] + rng.normal(size=20)[ther] + rng.normal(size=240)
    >>> model = NestedLMM(X, np.column_stack([ther, pat]), [X[:, :1], X[:, :1]])
    >>> fit = model.fit(y)
    >>> fit.beta.round(1).tolist(), fit.converged
    ([0.9, 0.5], True)
    """

    def __init__(
        self,
        X: Any,
        groups: Any,
        Z: Sequence[Any],
        *,
        reml: bool = True,
        fe_names: Sequence[str] | None = None,
        re_names: Sequence[Sequence[str]] | None = None,
        level_names: Sequence[str] | None = None,
        independent: Sequence[bool] | None = None,
        residual: str = "iid",
        time: Any = None,
        rater: Any = None,
        residual_units: Any = None,
    ) -> None:
        Xa = _as_matrix(X, "X", None)
        if isinstance(groups, _Codes):  # from_codes: checked codes and their labels
            codes, labels = groups.codes, groups.labels
        else:
            codes, labels = _group_codes(groups, Xa.shape[0])
        self._setup(Xa, codes, labels, Z, reml, fe_names, re_names, level_names, independent)
        self._set_residual(residual, time, rater, residual_units)

    @classmethod
    def from_codes(
        cls,
        X: Any,
        codes: Any,
        Z: Sequence[Any],
        *,
        reml: bool = True,
        fe_names: Sequence[str] | None = None,
        re_names: Sequence[Sequence[str]] | None = None,
        level_names: Sequence[str] | None = None,
        independent: Sequence[bool] | None = None,
        residual: str = "iid",
        time: Any = None,
        rater: Any = None,
        residual_units: Any = None,
    ) -> NestedLMM:
        """The model for groups already given as sorted integer codes (no label handling).

        Same model and numbers as the constructor with ``groups=codes``, without the
        conversion of labels to codes, which dominates the set-up of small models (a
        power simulation builds one per replicate). Units are labelled by their codes.

        Parameters
        ----------
        X, Z, reml, fe_names, re_names, level_names, independent, residual, time, rater, \
residual_units
            As for :class:`NestedLMM`.
        codes : array_like of int, shape (n, L)
            Column ``l``: the level-``l`` unit of each row as ``0 .. G_l − 1``, every code
            used. Inner codes are unique across outer units (``therapist:patient``) and
            ordered by their parent: a unit's code never precedes an earlier parent's
            units (so codes from sorting ``(outer, inner)`` label pairs qualify).

        Examples
        --------
        >>> import numpy as np
        >>> codes = np.column_stack([np.repeat(np.arange(10), 6), np.repeat(np.arange(30), 2)])
        >>> X = np.ones((60, 1)); y = np.random.default_rng(0).normal(size=60)
        >>> NestedLMM.from_codes(X, codes, [X, X]).fit(y).n_groups
        (10, 30)
        """
        Xa = _as_matrix(X, "X", None)
        cols = _checked_codes(codes, Xa.shape[0])
        labels: list[pd.Index] = [pd.RangeIndex(int(c.max()) + 1) for c in cols]
        return cls(Xa, _Codes(cols, labels), Z, reml=reml, fe_names=fe_names,
                   re_names=re_names, level_names=level_names, independent=independent,
                   residual=residual, time=time, rater=rater, residual_units=residual_units)

    def _setup(self, Xa: FloatArray, codes: list[IntArray], labels: list[pd.Index],
               Z: Sequence[Any], reml: bool, fe_names: Sequence[str] | None,
               re_names: Sequence[Sequence[str]] | None,
               level_names: Sequence[str] | None,
               independent: Sequence[bool] | None = None) -> None:
        n, p = Xa.shape
        rank = np.linalg.matrix_rank(Xa)
        if rank < p:
            raise ValueError(f"`X` is rank deficient (rank {rank} < {p} columns); drop "
                             "collinear columns.")
        if isinstance(Z, np.ndarray) or len(Z) != len(codes):
            raise ValueError(f"`Z` must be a list of {len(codes)} arrays, one per column of "
                             "`groups` (outer -> inner).")
        Zs = [_as_matrix(z, f"Z[{lvl}]", n) for lvl, z in enumerate(Z)]
        for lvl, lab in enumerate(labels):
            if len(lab) < 2:
                raise ValueError(f"level {lvl} of `groups` has only {len(lab)} unit; a random "
                                 "effect needs at least 2 units (drop that level).")
            if len(lab) >= n:
                raise ValueError(f"level {lvl} of `groups` has {len(lab)} units for {n} "
                                 "observations; its random effects are confounded with the "
                                 "residual (lme4 requires fewer units than observations).")
        self.reml = bool(reml)
        self.n_groups = tuple(len(lab) for lab in labels)
        self._labels = labels
        self.fe_names = list(fe_names) if fe_names is not None else [f"x{j}" for j in range(p)]
        self.re_names = ([list(r) for r in re_names] if re_names is not None
                         else [[f"z{j}" for j in range(z.shape[1])] for z in Zs])
        self.level_names = (list(level_names) if level_names is not None
                            else [f"level{lvl}" for lvl in range(len(Zs))])
        diag = tuple(bool(d) for d in independent) if independent is not None else \
            (False,) * len(Zs)
        if len(diag) != len(Zs):
            raise ValueError(f"`independent` must have one flag per level ({len(Zs)}); "
                             f"got {len(diag)}.")
        self._struct = _build_structure(Xa, codes, Zs, diag)
        self._inner_codes = codes[-1]
        self._parts = (Xa, Zs)  # for a residual structure's own layout of [Z | X]

    def _set_residual(self, residual: str, time: Any, rater: Any, units: Any) -> None:
        if not isinstance(residual, str) or residual not in RESIDUAL_KINDS:
            raise ValueError(f"`residual` must be one of {RESIDUAL_KINDS}; got {residual!r}.")
        self.residual = residual
        self._layout: ResidualLayout | None = None
        self._Wpad: FloatArray | None = None
        if residual == "iid":
            return
        n = self._struct.n
        if units is not None:
            units = np.asarray(units)
            if units.shape != (n,) or not np.issubdtype(units.dtype, np.integer):
                raise ValueError(f"`residual_units` must be {n} integer codes (one per row).")
        self._layout = _residual.build_layout(residual, n, self._inner_codes, units, time,
                                              rater)
        Xa, Zs = self._parts
        self._Wpad = _residual.padded(self._layout, np.column_stack([*Zs[::-1], Xa]))

    @property
    def n_theta(self) -> int:
        """Number of covariance parameters ``θ``."""
        return self._struct.n_theta

    @property
    def n_psi(self) -> int:
        """Number of residual parameters ``ψ`` (0 for ``residual="iid"``)."""
        return 0 if self._layout is None else self._layout.n_psi

    @property
    def psi_names(self) -> list[str]:
        """Names of the residual parameters (reported scale), in ``ψ`` order."""
        return [] if self._layout is None else self._layout.psi_names

    def _objective(self, y: FloatArray, reml: bool) -> _Objective:
        """The criterion of ``y``; the last one is reused for the same response, so a
        sequence of evaluations at many θ (derivatives for small-sample df, likelihood
        comparisons) prepares the θ-independent cross products once."""
        key = (reml, y.tobytes())
        last = getattr(self, "_last_objective", None)
        if last is not None and last[0] == key:
            objective: _Objective = last[1]
            return objective
        objective = _Objective(self._struct, self._layout, self._Wpad, y, reml)
        self._last_objective = (key, objective)
        return objective

    def _params(self, theta: Any, psi: Any = None) -> FloatArray:
        t = np.asarray(theta, dtype=float).ravel()
        if psi is not None:
            t = np.r_[t, np.asarray(psi, dtype=float).ravel()]
        size = self.n_theta + self.n_psi
        if t.shape != (size,):
            what = (f"{self.n_theta} elements" if not self.n_psi else
                    f"{size} elements (θ then the {self.n_psi} residual parameters ψ)")
            raise ValueError(f"`theta` must have {what}; got {t.size}.")
        return t

    def fit(self, y: Any, *, start: Any = None, reml: bool | None = None,
            random_effects: bool = True) -> EngineFit:
        """Fit the model to the response ``y`` (length n).

        Parameters
        ----------
        y : array_like, shape (n,)
        start : array_like, optional
            Starting ``θ`` (e.g. the ``theta`` of a previous fit; with a residual structure
            ``θ`` then ``ψ``, a previous fit's ``cov_params_vector``); default lme4's
            identity (and independent residuals).
        reml : bool, optional
            Override the model's criterion for this fit.
        random_effects : bool, default True
            Compute the conditional modes (``EngineFit.random_effects``); False leaves
            that list empty and saves their cost when only the fixed effects and the
            covariance parameters are wanted (e.g. in a power simulation).

        Returns
        -------
        EngineFit

        Examples
        --------
        >>> import numpy as np
        >>> g = np.column_stack([np.repeat(np.arange(10), 6), np.tile([0, 0, 1, 1, 2, 2], 10)])
        >>> X = np.ones((60, 1)); y = np.random.default_rng(0).normal(size=60)
        >>> NestedLMM(X, g, [X, X]).fit(y).nobs
        60
        """
        s = self._struct
        ya = _as_matrix(y, "y", s.n)
        if ya.shape[1] != 1:
            raise ValueError(f"`y` must be one column; got {ya.shape[1]} (use fit_many).")
        use_reml = self.reml if reml is None else bool(reml)
        obj = self._objective(ya[:, 0], use_reml)
        psi0 = np.empty(0) if self._layout is None else self._layout.psi_start()
        params, n_iter, ok, message = _optimise(s, obj, start, psi0)
        return self._result(obj, params, n_iter, ok, message, random_effects)

    def deviance(self, y: Any, theta: Any, *, psi: Any = None,
                 reml: bool | None = None) -> float:
        """Profiled deviance (−2 log-likelihood, REML or ML) of ``y`` at a given ``θ``.

        With a residual structure the covariance parameters are ``θ`` and ``ψ``: pass
        ``theta`` as ``np.r_[θ, ψ]`` (a fit's ``cov_params_vector``) or ``psi`` apart.

        With ``θ`` fixed (e.g. at a previous fit's ``theta``) this is the GLS criterion
        of the fixed-effect design, so callers can compare designs (e.g. profile a
        nonlinear parameter of ``X``) without refitting the covariance parameters.

        Examples
        --------
        >>> import numpy as np
        >>> g = np.column_stack([np.repeat(np.arange(10), 6), np.tile([0, 0, 1, 1, 2, 2], 10)])
        >>> X = np.ones((60, 1)); y = np.random.default_rng(0).normal(size=60)
        >>> model = NestedLMM(X, g, [X, X])
        >>> bool(model.deviance(y, model.fit(y).theta) <= model.deviance(y, [1.0, 1.0]))
        True
        """
        s = self._struct
        ya = _as_matrix(y, "y", s.n)
        t = self._params(theta, psi)
        use_reml = self.reml if reml is None else bool(reml)
        return self._objective(ya[:, 0], use_reml)(t)

    def gradient(self, y: Any, theta: Any, *, psi: Any = None,
                 reml: bool | None = None) -> FloatArray:
        """Gradient of :meth:`deviance` in ``θ`` (then ``ψ``) at a given ``θ``.

        Analytic in ``θ`` (a reverse pass through the blocked factorisation, exact also
        where ``Λ`` is singular) and in the residual parameters ``ψ``.

        Examples
        --------
        >>> import numpy as np
        >>> g = np.column_stack([np.repeat(np.arange(10), 6), np.tile([0, 0, 1, 1, 2, 2], 10)])
        >>> X = np.ones((60, 1)); y = np.random.default_rng(0).normal(size=60)
        >>> model = NestedLMM(X, g, [X, X])
        >>> model.gradient(y, [1.0, 1.0]).shape
        (2,)
        """
        s = self._struct
        ya = _as_matrix(y, "y", s.n)
        t = self._params(theta, psi)
        use_reml = self.reml if reml is None else bool(reml)
        obj = self._objective(ya[:, 0], use_reml)
        value, factor = obj.evaluate(t)
        return obj.gradient(t, value, factor)

    def evaluate(self, y: Any, theta: Any, *, psi: Any = None, reml: bool | None = None,
                 random_effects: bool = True) -> EngineFit:
        """The fit's quantities (β̂, vcov, σ², logLik, modes) at a given ``θ``, without
        optimising: e.g. lme4's quantities at covariance parameters another optimiser
        found. ``n_iter`` is 0 and ``converged`` True. ``θ`` and ``ψ`` as for
        :meth:`deviance`.

        Examples
        --------
        >>> import numpy as np
        >>> g = np.column_stack([np.repeat(np.arange(10), 6), np.tile([0, 0, 1, 1, 2, 2], 10)])
        >>> X = np.ones((60, 1)); y = np.random.default_rng(0).normal(size=60)
        >>> model = NestedLMM(X, g, [X, X])
        >>> fit = model.fit(y)
        >>> bool(np.isclose(model.evaluate(y, fit.theta).llf, fit.llf))
        True
        """
        s = self._struct
        ya = _as_matrix(y, "y", s.n)
        t = self._params(theta, psi)
        use_reml = self.reml if reml is None else bool(reml)
        return self._result(self._objective(ya[:, 0], use_reml), t, 0, True,
                            "evaluated at the given theta", random_effects)

    def residual_table(self, y: Any, fit: EngineFit, alpha: float = 0.05) -> pd.DataFrame:
        """The residual parameters of ``fit`` with standard errors and intervals.

        The covariance of ``ψ`` is ``2 H⁻¹`` of the profiled deviance's Hessian ``H`` in
        ``np.r_[θ, ψ]`` (central differences of the exact gradient) at the fit; standard
        errors of the reported parameters by the delta method; ``1 − alpha`` intervals
        are Wald intervals on the unconstrained scale mapped back, as nlme's
        ``intervals()``.

        Returns
        -------
        DataFrame
            Indexed by ``psi_names``; columns estimate, std_error, conf_low, conf_high
            (empty for ``residual="iid"``).

        Examples
        --------
        >>> import numpy as np
        >>> rng = np.random.default_rng(0)
        >>> g = np.repeat(np.arange(30), 6); t = np.tile(np.arange(6.0), 30)
        >>> X = np.ones((180, 1)); y = rng.normal(size=30)[g] + rng.normal(size=180)
        >>> model = NestedLMM(X, g, [X], residual="ar1", time=t)
        >>> list(model.residual_table(y, model.fit(y)).index)
        ['phi']
        """
        if self._layout is None:
            return pd.DataFrame(columns=["estimate", "std_error", "conf_low", "conf_high"])
        from scipy import stats

        ya = _as_matrix(y, "y", self._struct.n)[:, 0]
        obj = self._objective(ya, fit.reml)
        params = fit.cov_params_vector
        H = _hessian_from_gradient(obj, params)
        k = self._layout.n_psi
        try:
            cov: FloatArray = np.asarray(2.0 * np.linalg.inv(H)[-k:, -k:], dtype=float)
        except np.linalg.LinAlgError:
            cov = np.full((k, k), np.nan)
        table = _residual.residual_table(self._layout, fit.psi, cov,
                                         float(stats.norm.ppf(1 - alpha / 2)))
        return pd.DataFrame(table, index=self._layout.psi_names)

    def fit_many(self, Y: Any, *, reml: bool | None = None,
                 warm_start: bool = True) -> list[EngineFit]:
        """Fit each column of ``Y`` (n, R); each fit warm-starts from the previous θ.

        Examples
        --------
        >>> import numpy as np
        >>> g = np.column_stack([np.repeat(np.arange(10), 6), np.tile([0, 0, 1, 1, 2, 2], 10)])
        >>> X = np.ones((60, 1)); Y = np.random.default_rng(0).normal(size=(60, 3))
        >>> len(NestedLMM(X, g, [X, X]).fit_many(Y))
        3
        """
        Ya = _as_matrix(Y, "Y", self._struct.n)
        fits: list[EngineFit] = []
        for r in range(Ya.shape[1]):
            start = fits[-1].cov_params_vector if (warm_start and fits) else None
            fits.append(self.fit(Ya[:, r], start=start, reml=reml))
        return fits

    def _result(self, obj: _Objective, params: FloatArray, n_iter: int, ok: bool,
                message: str, random_effects: bool = True) -> EngineFit:
        s = self._struct
        reml = obj.reml
        theta, psi = params[:s.n_theta], params[s.n_theta:]
        lambdas = _core.theta_to_lambdas(theta, s.q, s.diag)
        f, logdet_c = obj.factor(params)
        sigma2 = f.pwrss / (s.n - s.p if reml else s.n)
        lower = _core.theta_lower_bounds(s.q, s.diag)
        singular = any(b is not None and t < SINGULAR_TOL
                       for t, b in zip(theta, lower, strict=True))
        effects = []
        if random_effects:
            modes = _core.conditional_modes(s, f)
            effects = [pd.DataFrame(b, index=lab, columns=names)
                       for b, lab, names in zip(modes, self._labels, self.re_names,
                                                strict=True)]
        return EngineFit(
            beta=f.beta,
            cov_beta=np.asarray(sigma2 * np.linalg.inv(f.rxx), dtype=float),
            sigma2=sigma2,
            theta=theta.copy(),
            cov_re=[sigma2 * lam @ lam.T for lam in lambdas],
            llf=-0.5 * (_core.objective(f, s.n, s.p, reml) + logdet_c),
            reml=reml,
            converged=ok,
            is_singular=singular,
            n_iter=n_iter,
            message=message,
            random_effects=effects,
            n_groups=self.n_groups,
            nobs=s.n,
            fe_names=list(self.fe_names),
            re_names=[list(r) for r in self.re_names],
            level_names=list(self.level_names),
            residual=self.residual,
            psi=psi.copy(),
            residual_params=({} if self._layout is None else self._layout.natural(psi)),
        )


_PSI_CACHE = 16  # prepared cross products kept per response, by ψ


class _Objective:
    """The profiled deviance of one response as a function of ``np.r_[θ, ψ]``.

    ``iid`` residuals: the per-unit cross products are prepared once (the original path).
    Otherwise each evaluation whitens the padded ``[W | y]`` of every residual unit at
    ``ψ`` and forms the cross products anew (``O(n)``), then eliminates as before and adds
    ``Σ log|C_u|``.
    """

    def __init__(self, struct: Structure, layout: ResidualLayout | None,
                 Wpad: FloatArray | None, y: FloatArray, reml: bool) -> None:
        self.struct, self.layout, self.reml = struct, layout, reml
        self._prep: _core.Prepared | None = None
        self._cache: dict[bytes, tuple[_core.Prepared, float]] = {}
        self._basis: Any = None  # the response's sums formed once (residual structures)
        if layout is None or Wpad is None:
            self._prep = _core.prepare(struct, struct.with_response(y))
            self._A = np.empty(0)
        else:
            self._A = np.concatenate([Wpad, _residual.padded(layout, y[:, None])], axis=2)
            self._basis = _residual.response_basis(layout, self._A)

    def factor(self, params: FloatArray) -> tuple[_core.Factor, float]:
        """The blocked factorisation at ``params`` and ``Σ log|C_u|`` (raises
        ``LinAlgError`` where the covariance is not positive definite)."""
        s = self.struct
        lambdas = _core.theta_to_lambdas(params[:s.n_theta], s.q, s.diag)
        if self.layout is None:
            assert self._prep is not None
            return _core.factorize(s, self._prep, lambdas), 0.0
        psi = params[s.n_theta:]
        key = psi.tobytes()
        hit = self._cache.get(key)
        if hit is None:
            # new ψ: whiten and prepare; steps in θ alone (most of a forward-difference
            # gradient, and of the Hessian) reuse a recent ψ's cross products
            cross, logdet = _residual.unit_cross(self.layout, self._A, psi, self._basis)
            if not np.isfinite(logdet):
                raise np.linalg.LinAlgError("the residual covariance is not positive "
                                            "definite")
            agg = None if self._prep is None else self._prep.agg
            self._prep = _core.prepare(s, cross, agg)
            if len(self._cache) >= _PSI_CACHE:
                self._cache.pop(next(iter(self._cache)))
            hit = self._cache[key] = (self._prep, logdet)
        return _core.factorize(s, hit[0], lambdas), hit[1]

    def __call__(self, params: FloatArray) -> float:
        if self.layout is None:
            assert self._prep is not None
            return _core.deviance(self.struct, self._prep, params, self.reml)
        return self.evaluate(params)[0]

    def evaluate(self, params: FloatArray) -> tuple[float, _core.Factor | None]:
        """The deviance at ``params`` and its factorisation (None where infinite)."""
        try:
            f, logdet = self.factor(params)
        except np.linalg.LinAlgError:
            return np.inf, None
        return _core.objective(f, self.struct.n, self.struct.p, self.reml) + logdet, f

    def gradient(self, params: FloatArray, value: float,
                 f: _core.Factor | None, r2_weight: float | None = None) -> FloatArray:
        """The deviance's gradient at ``params`` (``value`` and ``f`` from
        :meth:`evaluate` there): analytic in ``θ``
        (:func:`~alliancestats._mixed._engine._core.gradient`) and in ``ψ``
        (:func:`~alliancestats._mixed._engine._residual.psi_gradient`). With
        ``r2_weight`` the gradient of the log-determinants plus ``r2_weight · r²`` (as
        :func:`~alliancestats._mixed._engine._core.gradient`)."""
        s = self.struct
        if f is None or not np.isfinite(value):
            return np.full(params.size, np.nan)
        if self.layout is None:
            return _core.gradient(s, f, self.reml, r2_weight)
        # ψ re-weights the cross products: the same reverse pass continued into them
        grad, adjoint = _core.inner_adjoint(s, f, self.reml, r2_weight)
        psi = _residual.psi_gradient(self.layout, self._A, params[s.n_theta:], adjoint,
                                       self._basis)
        return np.r_[grad, psi]


def _build_structure(X: FloatArray, codes: list[IntArray], Zs: list[FloatArray],
                     diag: tuple[bool, ...] = ()) -> Structure:
    """Sort rows by innermost unit; per-unit cross products of ``[Z_{L-1} | ... | Z_0 | X]``."""
    inner = codes[-1]
    order = np.argsort(inner, kind="stable")
    sorted_inner = inner[order]
    unit_starts = np.flatnonzero(np.r_[True, sorted_inner[1:] != sorted_inner[:-1]])
    W = np.column_stack([*Zs[::-1], X])[order]
    cross = _unit_cross(W, unit_starts)
    starts, parents = [], []
    for lvl in range(len(codes) - 1):
        child = codes[lvl + 1]
        n_child = int(child.max()) + 1
        parent_of = np.empty(n_child, dtype=np.intp)
        parent_of[child] = codes[lvl]
        parents.append(parent_of)
        starts.append(np.flatnonzero(np.r_[True, parent_of[1:] != parent_of[:-1]]))
    return Structure(
        q=tuple(z.shape[1] for z in Zs), p=X.shape[1], n=X.shape[0], order=order,
        unit_starts=unit_starts, cross=cross, W_sorted=W, starts=tuple(starts),
        parent=tuple(parents), diag=diag,
    )


def _unit_cross(W: FloatArray, unit_starts: IntArray, chunk: int = 20000) -> FloatArray:
    """``W_j'W_j`` per unit, in row chunks so memory stays ``O(chunk · m²)``."""
    n, m = W.shape
    ends = np.r_[unit_starts[1:], n]
    out = np.empty((len(unit_starts), m, m))
    u0 = 0
    while u0 < len(unit_starts):
        # take whole units covering about `chunk` rows
        u1 = int(np.searchsorted(unit_starts, unit_starts[u0] + chunk, side="right"))
        u1 = max(u1, u0 + 1)
        r0, r1 = unit_starts[u0], ends[u1 - 1]
        block = W[r0:r1]
        outer = block[:, :, None] * block[:, None, :]
        out[u0:u1] = np.add.reduceat(outer, unit_starts[u0:u1] - r0, axis=0)
        u0 = u1
    return out


def _optimise(s: Structure, deviance: _Objective, start: Any,
              psi0: FloatArray) -> tuple[FloatArray, int, bool, str]:
    """Bounded minimisation of the profiled deviance over θ, with boundary restarts.

    SLSQP from the start (lme4's identity by default). Two kinds of false optimum are
    then checked, as a derivative-free optimiser such as lme4's bobyqa would escape them:

    - a diagonal element of ``Λ`` stuck at 0: with a nonzero element beside it the
      deviance is even in that element, so its gradient vanishes there (a saddle for a
      gradient method); restart with it moved into the interior. Where the curvature
      along the stuck elements shows a minimum (:func:`_stuck_curvature`), that restart
      only looks for another optimum and runs scaled by the curvature at the optimum
      found (:func:`_restart_scale`): half the iterations of restarts, the same optima;
    - an interior point whose level-``l`` factor is better set to 0 (a boundary optimum on
      the far side of a ridge): one evaluation per level, restart only if lower.
    """
    lower = [*_core.theta_lower_bounds(s.q, s.diag), *([None] * psi0.size)]
    bounded = np.array([b is not None for b in lower])
    bounds = [(b, None) for b in lower]
    size = s.n_theta + psi0.size
    theta0 = (np.r_[_core.theta_start(s.q, s.diag), psi0] if start is None
              else np.asarray(start, dtype=float).ravel().copy())
    if theta0.shape != (size,):
        what = "θ" if not psi0.size else "θ then ψ"
        raise ValueError(f"`start` must have {size} elements ({what}); got {theta0.size}.")
    theta0[bounded] = np.maximum(theta0[bounded], 0.0)

    # the deviance divided by n: gradients of order 1 keep SLSQP's first quasi-Newton step
    # (identity Hessian) from jumping straight onto the bounds
    def fun(t: FloatArray) -> float:
        return float(deviance(t)) / s.n

    # SLSQP's quasi-Newton model starts from the identity. From a warm start (near the
    # optimum, e.g. a similar data set's θ) optimising over θ / scale, the scale making the
    # deviance's curvature about 1 per coordinate, makes its first steps nearly Newton
    # steps: fewer iterations, same optimum. From lme4's default start, far from the
    # optimum, the curvature there is no guide (measured: more iterations), so no scaling.
    scale = np.ones(size) if start is None else _curvature_scale(fun, theta0, fun(theta0))
    grad = _Gradient(deviance, scale, s.n)

    def run(t0: FloatArray, options: dict[str, Any], over: _Gradient = grad) -> Any:
        res = _slsqp(over.value, over, t0 / over.scale, bounds, options)
        res.x = res.x * over.scale
        res.scale = over.scale
        return res

    best = run(theta0, _OPTIONS)
    n_iter = int(best.nit)
    for _ in range(_MAX_RESTARTS):
        trials = []
        stuck = bounded & (best.x < _SADDLE)
        if stuck.any():
            trial = best.x.copy()
            trial[stuck] = _INTERIOR
            # at a minimum along the stuck elements, scaled by the curvature there (SLSQP's
            # first steps nearly Newton steps); at a saddle, or where that is not known,
            # the identity model's longer path: scaled, it ended higher in 31 of 8775
            # optimisations (benchmarks/compare_optima.py, seeds 0-599)
            curvature = _stuck_curvature(s, deviance, best.x, stuck)
            trials.append((trial, grad if curvature is None else _Gradient(
                deviance, _restart_scale(fun, best, stuck, curvature / s.n), s.n)))
        pos = 0
        for size in _core.block_sizes(s.q, s.diag):
            trial = best.x.copy()
            trial[pos:pos + size] = 0.0
            pos += size
            if np.any(trial != best.x) and fun(trial) < best.fun:
                trials.append((trial, grad))
        improved = False
        for trial, over in trials:
            # a restart first runs to a loose tolerance: most come back to the optimum
            # already found (no need to polish that one again); one that ends lower is
            # polished to the full tolerance and then compared
            alt = run(trial, _SCREEN_OPTIONS, over)
            n_iter += int(alt.nit)
            if alt.fun < best.fun - 1e-12:
                alt_nit = int(alt.nit)
                alt = run(alt.x, _OPTIONS)
                n_iter += int(alt.nit)
                alt.nit = alt_nit + int(alt.nit)
            if alt.fun < best.fun - 1e-12:
                best, improved = alt, True
        if not improved:
            break
    ok = bool(np.isfinite(best.fun)) and bool(best.success)
    return np.asarray(best.x, dtype=float), n_iter, ok, str(best.message)


def _stuck_curvature(s: Structure, deviance: _Objective, x: FloatArray,
                     stuck: Any) -> FloatArray | None:
    """The deviance's curvature at 0 along the diagonal elements of ``Λ`` ``stuck`` at
    their bound at ``x``, if ``x`` is a minimum along them; else None.

    An element whose column of ``Λ`` has nothing (nonzero) below it enters the covariance
    only squared: the deviance is even in it, its gradient vanishes at 0 and the Hessian
    there does not couple it to the other elements. So its curvature at 0 is the
    gradient at a small value over that value (one evaluation for all such elements), and
    ``x`` (a minimum over the free elements) is a minimum along them exactly when all
    are positive. None where one is not (a saddle), or where an element has a nonzero
    element below it: the deviance is not even in it, and flipping the sign of its column
    gives the same covariance with the opposite gradient along it, so unless that
    gradient is 0 a lower point lies beside the flipped one.
    """
    marks = _core.theta_to_lambdas(np.arange(1.0, x.size + 1.0), s.q, s.diag)
    for lam in marks:  # each element of Λ holds its θ position + 1 (0: not in θ)
        for j in range(lam.shape[0]):
            below = lam[j + 1:, j].astype(int) - 1
            if stuck[int(lam[j, j]) - 1] and np.any(x[below[below >= 0]] != 0.0):
                return None
    probe = np.where(stuck, _PROBE, x)
    value, factor = deviance.evaluate(probe)
    if factor is None:
        return None
    curvature = deviance.gradient(probe, value, factor)[stuck] / _PROBE
    return curvature if np.all(curvature > 0.0) else None


def _hessian_from_gradient(obj: _Objective, x: FloatArray, rel: float = 1e-4) -> FloatArray:
    """Hessian of the deviance at ``x`` by central differences of its exact gradient
    (``2k`` gradients instead of ``2k²`` deviances), symmetrised."""
    k = x.size
    h = rel * np.maximum(1.0, np.abs(x))
    H = np.empty((k, k))
    for i in range(k):
        e = np.zeros(k)
        e[i] = h[i]
        up, down = obj.evaluate(x + e), obj.evaluate(x - e)
        H[i] = (obj.gradient(x + e, *up) - obj.gradient(x - e, *down)) / (2.0 * h[i])
    return 0.5 * (H + H.T)


try:  # scipy >= 1.16: SLSQP's iteration routine (C), called as scipy's own driver calls it
    from scipy.optimize._slsqplib import slsqp as _slsqp_step
except ImportError:  # pragma: no cover - older scipy: optimize.minimize throughout
    _slsqp_step = None

_SLSQP_MESSAGES = {
    -1: "Gradient evaluation required (g & a)", 0: "Optimization terminated successfully",
    1: "Function evaluation required (f & c)",
    2: "More equality constraints than independent variables",
    3: "More than 3*n iterations in LSQ subproblem", 4: "Inequality constraints incompatible",
    5: "Singular matrix E in LSQ subproblem", 6: "Singular matrix C in LSQ subproblem",
    7: "Rank-deficient equality constraint subproblem HFTI",
    8: "Positive directional derivative for linesearch", 9: "Iteration limit reached"}


def _slsqp(fun: Any, jac: Any, x0: FloatArray, bounds: list[tuple[float | None, None]],
           options: dict[str, Any]) -> optimize.OptimizeResult:
    """``optimize.minimize(fun, x0, jac=jac, method="SLSQP", bounds=bounds,
    options=options)`` for lower bounds only and no constraints, with the same iterates.

    scipy's driver (``_minimize_slsqp``) loops over SLSQP's iteration routine, wrapping
    ``fun`` and ``jac`` in its caching function object; this loop calls the routine with
    the same arguments and state and the functions directly. The wrapping cost about as
    much as the engine's own evaluation and gradient of a small model per iteration.
    Falls back to ``optimize.minimize`` where the routine is not available.
    """
    if not _slsqp_loop_usable():
        return optimize.minimize(fun, x0, jac=jac, method="SLSQP", bounds=bounds,
                                 options=options)
    return _slsqp_loop(fun, jac, x0, bounds, options)


@functools.cache
def _slsqp_loop_usable() -> bool:
    """Whether this scipy's SLSQP routine can be driven directly: it exists and, on a
    small bounded problem, takes exactly ``optimize.minimize``'s steps. The routine is
    scipy-internal, so a scipy that changed it falls back to ``optimize.minimize``
    (the same optimum, a little slower) instead of failing or drifting."""
    if _slsqp_step is None:
        return False
    target = np.array([-0.3, 0.7])

    def fun(x: FloatArray) -> float:
        return float(np.sum((x - target) ** 2 + 0.1 * (x - target) ** 4))

    def jac(x: FloatArray) -> FloatArray:
        return np.asarray(2.0 * (x - target) + 0.4 * (x - target) ** 3, dtype=float)

    x0, bounds = np.array([1.0, 0.0]), [(0.0, None), (None, None)]
    options = {"ftol": 1e-12, "maxiter": 100}
    try:
        ours = _slsqp_loop(fun, jac, x0, bounds, options)
    except Exception:  # any failure of the internal routine: fall back
        return False
    ref = optimize.minimize(fun, x0, jac=jac, method="SLSQP", bounds=bounds,
                            options=options)
    return bool(ours.x.tolist() == ref.x.tolist() and ours.nit == ref.nit)


def _slsqp_loop(fun: Any, jac: Any, x0: FloatArray, bounds: list[tuple[float | None, None]],
                options: dict[str, Any]) -> optimize.OptimizeResult:
    """SLSQP's iteration routine called as scipy's driver calls it (see :func:`_slsqp`)."""
    assert _slsqp_step is not None
    ftol, maxiter = float(options["ftol"]), int(options["maxiter"])
    n = x0.size
    lower = np.array([-np.inf if lo is None else lo for lo, _ in bounds], dtype=float)
    x = np.clip(np.asarray(x0, dtype=float).reshape(-1), lower, np.inf)
    xl = np.where(np.isfinite(lower), lower, np.nan)  # NaN: unbounded (scipy's convention)
    xu = np.full(n, np.nan)
    state: dict[str, Any] = {
        "acc": ftol, "alpha": 0.0, "f0": 0.0, "gs": 0.0, "h1": 0.0, "h2": 0.0, "h3": 0.0,
        "h4": 0.0, "t": 0.0, "t0": 0.0, "tol": 10.0 * ftol, "exact": 0, "inconsistent": 0,
        "reset": 0, "iter": 0, "itermax": maxiter, "line": 0, "m": 0, "meq": 0, "mode": 0,
        "n": n}
    indices = np.zeros(2 * n + 2, dtype=np.int32)
    # scipy's workspace size with no constraints (m = meq = mieq = 0)
    buffer = np.zeros(n * (n + 1) // 2 + 8 * n * n + 35 * n + 28 + 2 * n * (n + 1))
    fx = fun(x.copy())
    g = np.atleast_1d(jac(x.copy()))
    mult = np.zeros(2 * n + 2)
    C = np.zeros((1, n), order="F")
    d = np.zeros(1)
    while True:
        _slsqp_step(state, fx, g, C, d, x, mult, xl, xu, buffer, indices)
        if state["mode"] == 1:
            fx = fun(x.copy())
        if state["mode"] == -1:
            g = np.atleast_1d(jac(x.copy()))
        if abs(state["mode"]) != 1:
            break
    mode = int(state["mode"])
    return optimize.OptimizeResult(x=x, fun=fx, jac=g, nit=int(state["iter"]),
                                   status=mode, success=mode == 0,
                                   message=_SLSQP_MESSAGES.get(mode, f"exit mode {mode}"),
                                   hess_diag=_ldl_diagonal(buffer, n))


def _ldl_diagonal(packed: FloatArray, n: int) -> FloatArray:
    """Diagonal of ``L D L'`` from SLSQP's packed factors of its quasi-Newton Hessian
    (the start of its workspace: column by column, ``D[j]`` then ``L[j+1:, j]``)."""
    L = np.zeros((n, n))
    rows, cols = np.triu_indices(n)  # the upper triangle row by row, transposed: L by column
    L[cols, rows] = packed[:n * (n + 1) // 2]
    d = np.diag(L).copy()
    np.fill_diagonal(L, 1.0)
    return np.asarray((L * L) @ d, dtype=float)


def _curvature_scale(fun: Any, theta: FloatArray, f0: float,
                     coords: Any = None) -> FloatArray:
    """Per-coordinate ``1/sqrt(f'')`` at ``theta`` (``f0 = fun(theta)``) from forward
    second differences, in the coordinates ``coords`` (default all; the others 1).

    Only a preconditioner: a poor estimate costs iterations, never accuracy, so it is
    clipped to a moderate range and falls back to 1 where the curvature is not positive.
    """
    out = np.ones(theta.size)
    for j in range(theta.size) if coords is None else coords:
        h = _CURV_STEP * max(1.0, abs(theta[j]))
        t1, t2 = theta.copy(), theta.copy()
        t1[j] += h
        t2[j] += 2.0 * h
        curv = (fun(t2) - 2.0 * fun(t1) + f0) / (h * h)
        if np.isfinite(curv) and curv > 0.0:
            out[j] = np.clip(1.0 / np.sqrt(curv), _SCALE_MIN, _SCALE_MAX)
    return out


def _restart_scale(fun: Any, res: optimize.OptimizeResult, stuck: Any,
                   curvature: FloatArray) -> FloatArray:
    """Curvature scale (see :func:`_curvature_scale`) at an optimum ``res`` found by
    SLSQP over ``θ / res.scale``, for a restart from near it.

    Free elements: the diagonal of SLSQP's final quasi-Newton Hessian, at no cost (without
    it, from scipy's own driver, measured). Elements ``stuck`` at their bound, along which
    every step was blocked: their ``curvature`` (of ``fun``) at the bound, measured.
    """
    diag = res.get("hess_diag")
    if diag is None:
        out = _curvature_scale(fun, res.x, res.fun, np.flatnonzero(~stuck))
    else:
        curv = diag / res.scale**2  # the model's curvature over θ
        out = np.ones(res.x.size)
        ok = np.isfinite(curv) & (curv > 0.0)
        out[ok] = np.clip(1.0 / np.sqrt(curv[ok]), _SCALE_MIN, _SCALE_MAX)
    out[stuck] = np.clip(1.0 / np.sqrt(curvature), _SCALE_MIN, _SCALE_MAX)
    return out


_CURV_STEP = 1e-2
_SCALE_MIN, _SCALE_MAX = 1e-2, 1e2


class _Gradient:
    """The deviance / n over scaled coordinates ``θ / scale``, and its gradient.

    SLSQP asks for ``fun(x)`` and then the gradient at the same ``x``: the value keeps
    its factorisation, and the gradient is one reverse pass through it
    (:meth:`_Objective.gradient`), about the cost of one more deviance, instead of one
    deviance per parameter by finite differences.
    """

    def __init__(self, obj: _Objective, scale: FloatArray, n: int) -> None:
        self.obj, self.scale, self.n = obj, scale, n
        self._x: FloatArray | None = None
        self._f = 0.0
        self._factor: _core.Factor | None = None

    def value(self, x: FloatArray) -> float:
        if self._x is None or not np.array_equal(x, self._x):
            self._x = np.array(x, dtype=float)
            self._f, self._factor = self.obj.evaluate(self._x * self.scale)
        return self._f / self.n

    def __call__(self, x: FloatArray) -> FloatArray:
        self.value(x)
        assert self._x is not None
        g = self.obj.gradient(self._x * self.scale, self._f, self._factor)
        return g * self.scale / self.n


_OPTIONS = {"ftol": 1e-13, "maxiter": 1000}
_SCREEN_OPTIONS = {"ftol": 1e-8, "maxiter": 1000}  # restarts, before polishing
_MAX_RESTARTS = 3
_SADDLE = 1e-4  # a bounded θ element below this is re-examined from the interior
_PROBE = 1e-5  # a stuck element's curvature at 0: its gradient at this value / value
_INTERIOR = 0.5  # restart value: a relative SD of half the residual SD


def fit_nested_lmm(y: Any, X: Any, groups: Any, Z: Sequence[Any], reml: bool = True,
                   **kw: Any) -> EngineFit:
    """Fit a nested linear mixed model in one call (see :class:`NestedLMM`).

    Examples
    --------
    >>> import numpy as np
    >>> g = np.column_stack([np.repeat(np.arange(10), 6), np.tile([0, 0, 1, 1, 2, 2], 10)])
    >>> X = np.ones((60, 1)); y = np.random.default_rng(0).normal(size=60)
    >>> fit_nested_lmm(y, X, g, [X, X]).n_groups
    (10, 30)
    """
    start = kw.pop("start", None)
    return NestedLMM(X, groups, Z, reml=reml, **kw).fit(y, start=start)
