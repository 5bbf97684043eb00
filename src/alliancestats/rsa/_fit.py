"""Design construction and estimation for response surface analysis (private).

:func:`prepare` validates the data and turns it into a :class:`Design` (centred polynomial
terms, level codes, controls, grouping labels); :func:`estimate` fits one member of the
model family to a design, by OLS (single level) or through :func:`fit_mixed`
(multilevel), and returns an :class:`Estimate`. Both are pure functions of numpy arrays
after validation, so that the bootstrap can refit resampled designs cheaply.
"""

from __future__ import annotations

import itertools
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
from scipy import linalg
from statsmodels.regression.linear_model import OLS

from .._mixed import fit_mixed, single_threaded_blas
from .._validation import (
    as_column_list,
    check_choice,
    check_groups,
    check_nested,
    check_variance,
    handle_missing,
    require_columns,
    require_frame,
    require_numeric,
)
from ..data import center_pooled
from ..exceptions import DataWarning
from ..results import FitRecord
from ._family import FamilyModel, profile_angle

COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3")
_CENTER_WORDS = ("pooled", "variablewise")


@dataclass(frozen=True)
class Design:
    """Validated, centred data of one RSA fit (numpy arrays, no missing values)."""

    endog: np.ndarray
    P: np.ndarray  # n x 5: X, Y, X^2, XY, Y^2 after centring/scaling
    codes: np.ndarray  # level code per row (all 0 without `by`)
    levels: tuple[Any, ...]  # (None,) without `by`
    controls: np.ndarray  # n x c
    control_names: tuple[str, ...]
    groups: pd.DataFrame | None  # grouping labels outer -> inner, RangeIndex
    x_raw: np.ndarray
    y_raw: np.ndarray
    names: dict[str, Any]  # outcome, x, y, by, groups
    centering: dict[str, Any]
    dropped: dict[str, int] = field(default_factory=dict)

    @property
    def nobs(self) -> int:
        return len(self.endog)

    def take(self, rows: np.ndarray, groups: pd.DataFrame | None) -> Design:
        """The design restricted to ``rows`` (with repetition) and new group labels."""
        return replace(
            self, endog=self.endog[rows], P=self.P[rows], codes=self.codes[rows],
            controls=self.controls[rows], groups=groups, x_raw=self.x_raw[rows],
            y_raw=self.y_raw[rows],
        )


@dataclass(frozen=True)
class Spec:
    """Everything about the model except the data."""

    family: FamilyModel
    random: Any = "intercept"
    reml: bool = True
    engine: str = "fast"
    cov_type: str = "nonrobust"


@dataclass(frozen=True)
class Estimate:
    """Result of :func:`estimate` in engine-neutral form.

    ``B`` holds b0..b5 per level (L x 6). ``bfun`` maps the parameters listed in ``bidx``
    (positions in ``params``) to B, so that nonlinear functions of the surface get delta
    method SEs by differentiating through the model's own parameterisation (constrained
    models stay on their constraint). ``bjac`` is dB/dparams (6L x p) at the estimate.
    """

    params: pd.Series
    cov: pd.DataFrame
    B: np.ndarray
    bjac: np.ndarray
    bfun: Callable[[np.ndarray], np.ndarray]
    bidx: np.ndarray
    llf: float
    nobs: int
    df_resid: float | None
    n_cov_params: int
    record: FitRecord
    ols: Any = None
    r_squared: float = np.nan
    phi: float | None = None
    notes: tuple[str, ...] = ()


# ----------------------------------------------------------------------------- prepare
def _centre_constants(
    frame: pd.DataFrame, x: Hashable, y: Hashable, center: Any, scale: Any
) -> dict[str, Any]:
    """Shift and scale of x and y (METHODS §2.6); squares are formed afterwards."""
    if isinstance(center, bool) or not (
        center is None or isinstance(center, Real) or center in _CENTER_WORDS
    ):
        raise ValueError(
            f"`center` must be 'pooled', 'variablewise', None or a number (e.g. the scale "
            f"midpoint); got {center!r}."
        )
    if not (scale is None or scale in _CENTER_WORDS):
        raise ValueError(f"`scale` must be None, 'pooled' or 'variablewise'; got {scale!r}.")
    xv, yv = frame[x].to_numpy(float), frame[y].to_numpy(float)
    if center == "pooled":
        _, c = center_pooled(frame[[x, y]], [x, y])
        mx = my = c["center"]
    elif center == "variablewise":
        mx, my = float(xv.mean()), float(yv.mean())
    else:
        mx = my = 0.0 if center is None else float(center)
    if scale == "pooled":
        sx = sy = float(np.concatenate([xv - mx, yv - my]).std(ddof=1))
    elif scale == "variablewise":
        sx, sy = float(xv.std(ddof=1)), float(yv.std(ddof=1))
    else:
        sx = sy = 1.0
    if "variablewise" in (center, scale):
        warnings.warn(
            "Variablewise centring/scaling puts x and y on different scales: x == y no "
            "longer means numerical agreement, and a1, a3 and the principal axes change "
            "meaning. Prefer center='pooled' for congruence hypotheses.",
            DataWarning, stacklevel=5,
        )
    return {"center": center, "scale": scale, "x_shift": mx, "y_shift": my,
            "x_scale": sx, "y_scale": sy}


def _control_matrix(frame: pd.DataFrame, controls: list[Any]) -> tuple[np.ndarray, list[str]]:
    """Numeric controls as given; categorical ones as treatment dummies (first dropped)."""
    cols: list[np.ndarray] = []
    names: list[str] = []
    for col in controls:
        series = frame[col]
        if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series):
            cols.append(series.to_numpy(float))
            names.append(str(col))
            continue
        levels = sorted(series.unique(), key=str)
        for lev in levels[1:]:
            cols.append((series == lev).to_numpy(float))
            names.append(f"{col}[{lev}]")
    matrix = np.column_stack(cols) if cols else np.empty((len(frame), 0))
    return matrix, names


def prepare(
    data: Any,
    *,
    outcome: Hashable,
    x: Hashable,
    y: Hashable,
    groups: Any,
    controls: Any,
    by: Hashable | None,
    center: Any,
    scale: Any,
    missing: str,
    center_controls: Sequence[Hashable] = (),
) -> Design:
    """Validate ``data`` and build the :class:`Design` (see ``fit_rsa``)."""
    data = require_frame(data)
    group_cols = as_column_list(groups, "groups")
    control_cols = as_column_list(controls, "controls")
    roles: dict[str, Any] = {"outcome": outcome, "x": x, "y": y, "groups": group_cols,
             "controls": control_cols, "by": by}
    require_columns(data, roles)
    if x == y:
        raise ValueError(f"`x` and `y` both name column {x!r}; the surface needs two "
                         f"different predictors.")
    used = [outcome, x, y]
    for role, cols in (("controls", control_cols), ("groups", group_cols), ("by", [by])):
        clash = [c for c in cols if c in used and c is not None]
        if clash:
            raise ValueError(f"`{role}` column {clash[0]!r} is already used as outcome, x or y.")
    require_numeric(data, {"outcome": outcome, "x": x, "y": y})
    columns = list(dict.fromkeys([outcome, x, y, *control_cols, *group_cols,
                                  *([by] if by is not None else [])]))
    frame, dropped = handle_missing(data, columns, missing, stacklevel=5)
    frame = frame.reset_index(drop=True)
    for role, col in (("x", x), ("y", y), ("outcome", outcome)):
        check_variance(frame, col, role)
    if np.array_equal(frame[x].to_numpy(float), frame[y].to_numpy(float)):
        raise ValueError(
            f"`x` ({x!r}) and `y` ({y!r}) are identical on every analysed row: X^2, XY and "
            f"Y^2 coincide, so the surface is not identified."
        )
    if group_cols:
        check_groups(frame, group_cols)
        for outer, inner in itertools.pairwise(group_cols):
            check_nested(frame, outer, inner)
    consts = _centre_constants(frame, x, y, center, scale)
    xc = (frame[x].to_numpy(float) - consts["x_shift"]) / consts["x_scale"]
    yc = (frame[y].to_numpy(float) - consts["y_shift"]) / consts["y_scale"]
    P = np.column_stack([xc, yc, xc * xc, xc * yc, yc * yc])
    if by is None:
        codes, levels = np.zeros(len(frame), dtype=int), (None,)
    else:
        cat = pd.Categorical(frame[by])
        if len(cat.categories) < 2:
            raise ValueError(f"`by` column {by!r} has a single level "
                             f"({cat.categories[0]!r}); it needs at least two.")
        codes, levels = np.asarray(cat.codes, dtype=int), tuple(cat.categories)
    for col in center_controls:  # e.g. the prior outcome of a lagged fit
        mean = float(frame[col].mean())
        consts[f"{col}_shift"] = mean
        frame[col] = frame[col] - mean
    ctrl, ctrl_names = _control_matrix(frame, control_cols)
    return Design(
        endog=frame[outcome].to_numpy(float), P=P, codes=codes, levels=levels,
        controls=ctrl, control_names=tuple(ctrl_names),
        groups=frame[group_cols].reset_index(drop=True) if group_cols else None,
        x_raw=frame[x].to_numpy(float), y_raw=frame[y].to_numpy(float),
        names={"outcome": outcome, "x": x, "y": y, "by": by, "groups": group_cols,
               "controls": control_cols},
        centering=consts, dropped=dropped,
    )


# ------------------------------------------------------------------------------ design
def exog_matrix(
    design: Design, family: FamilyModel, phi: float | None = None
) -> tuple[np.ndarray, list[str], np.ndarray, list[int]]:
    """Fixed-effect design ``[1, level dummies, P_l @ T per level, controls]``.

    Returns the matrix, its column names, the linear map M (6L x p) from the parameters
    to b0..b5 of each level, and the positions of the surface terms per level.
    """
    T = family.transform(phi)
    n, L = design.nobs, len(design.levels)
    by = design.names["by"]
    labels = family.labels(str(design.names["x"]), str(design.names["y"]))
    cols, names = [np.ones(n)], ["Intercept"]
    for lev in range(1, L):
        cols.append((design.codes == lev).astype(float))
        names.append(f"{by}[{design.levels[lev]}]")
    surface_pos: list[int] = []
    for lev in range(L):
        block = (design.P * (design.codes == lev)[:, None]) @ T
        cols.extend(block.T)
        surface_pos.append(len(names))
        names.extend(labels if by is None else [f"{t}:{by}[{design.levels[lev]}]"
                                                for t in labels])
    cols.extend(design.controls.T)
    names.extend(design.control_names)
    M = np.zeros((6 * L, len(names)))
    m = T.shape[1]
    for lev in range(L):
        M[6 * lev, 0] = 1.0
        if lev:
            M[6 * lev, lev] = 1.0
        M[6 * lev + 1: 6 * lev + 6, surface_pos[lev]: surface_pos[lev] + m] = T
    return np.column_stack(cols), names, M, surface_pos


def _check_rank(X: np.ndarray, names: list[str], design: Design, family: FamilyModel) -> None:
    n, p = X.shape
    if n <= p:
        raise ValueError(
            f"Too few observations for model {family.name!r}: it has {p} coefficients but "
            f"only {n} complete rows; at least {p + 1} are needed."
        )
    for lev, label in enumerate(design.levels):
        n_lev = int((design.codes == lev).sum())
        if label is not None and n_lev <= family.k + 1:
            raise ValueError(
                f"Level {label!r} of `by` column {design.names['by']!r} has {n_lev} rows; "
                f"model {family.name!r} needs more than {family.k + 1} per level."
            )
    with single_threaded_blas():  # an SVD of n x p: BLAS threads only cost here
        full = np.linalg.matrix_rank(X) == p
    if full:
        return
    rank = 0
    for j in range(p):  # find the first column that adds nothing
        new = np.linalg.matrix_rank(X[:, : j + 1])
        if new == rank:
            raise ValueError(
                f"The design is rank-deficient: term {names[j]!r} is a linear combination "
                f"of earlier terms ({', '.join(names[:j])}). Typical causes: y is an exact "
                f"linear function of x, a predictor takes only two values, or a control "
                f"duplicates a surface term."
            )
        rank = new


# ---------------------------------------------------------------------------- estimate
def random_spec(random: Any, groups: list[Any], names: list[str], family: FamilyModel,
                x: Hashable, y: Hashable) -> dict[str, list[str]]:
    """Translate ``random`` into fit_mixed's {level: [exog columns]}."""
    if isinstance(random, str):
        check_choice(random, "random", ("intercept", "slopes"))
        spec = {str(g): ["Intercept"] for g in groups}
        if random == "slopes":
            lin = [str(x), str(y)]
            if not all(t in names for t in lin):
                raise ValueError(
                    f"random='slopes' adds random slopes of {lin} at level "
                    f"{groups[-1]!r}, but model {family.name!r} (or `by`) has no such "
                    f"columns; pass a mapping {{level: [columns]}} from {names}."
                )
            spec[str(groups[-1])] = ["Intercept", *lin]
        return spec
    if not isinstance(random, Mapping):
        raise TypeError("`random` must be 'intercept', 'slopes' or a mapping "
                        "{grouping column: [design columns]}.")
    out: dict[str, list[str]] = {}
    for level, terms in random.items():
        if level not in groups:
            raise ValueError(f"`random` names level {level!r}, not one of `groups` {groups}.")
        bad = [t for t in as_column_list(terms, "random") if t not in names]
        if bad:
            raise ValueError(f"`random` terms {bad} at level {level!r} are not design "
                             f"columns; choose from {names}.")
        out[str(level)] = list(as_column_list(terms, "random"))
    return out


def _bfun_linear(M: np.ndarray, idx: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    sub = M[:, idx]
    return lambda theta: sub @ theta


def _ols_variance_table(scale: float) -> pd.DataFrame:
    return pd.DataFrame({"level": ["Residual"], "term": [""], "variance": [scale],
                         "sd": [np.sqrt(scale)], "corr": [np.nan]})


def estimate(design: Design, spec: Spec) -> Estimate:
    """Fit ``spec`` to ``design``: OLS without groups, else a mixed model."""
    family = spec.family
    if family.nonlinear and len(design.levels) > 1:
        raise ValueError(
            f"Model {family.name!r} with `by` is not supported (one nonlinear angle per "
            f"level); fit each level separately or use a linear model such as 'SRR'."
        )
    X0, names, _, _ = exog_matrix(design, family, 0.3 if family.nonlinear else None)
    _check_rank(X0, names, design, family)
    if design.groups is None:
        return _estimate_ols(design, spec)
    return _estimate_mixed(design, spec)


def _estimate_ols(design: Design, spec: Spec) -> Estimate:
    family = spec.family
    y = design.endog
    phi: float | None = None
    if family.nonlinear:
        phi = profile_angle(lambda a: _rss(*_xy_ols(design, family, a)))
    X, names, M, _ = exog_matrix(design, family, phi)
    fit = OLS(pd.Series(y, name=str(design.names["outcome"])),
                 pd.DataFrame(X, columns=names)).fit(cov_type=spec.cov_type)
    params, cov = fit.params, fit.cov_params()
    df_resid = float(fit.df_resid)
    idx = np.arange(len(names))
    bfun = _bfun_linear(M, idx)
    bjac = M
    notes: list[str] = []
    if phi is not None:
        params, cov, bfun, bjac, df_resid = _nls_covariance(design, spec, fit, M, phi)
        idx = np.arange(len(params))
        notes.append(f"Angle phi profiled over [0, pi); SEs from the Gauss-Newton "
                     f"(nls) covariance with phi free (phi = {phi:.6g}).")
    B = bfun(params.to_numpy()[idx]).reshape(-1, 6)
    if spec.cov_type != "nonrobust":
        notes.append(f"Heteroscedasticity-consistent covariance {spec.cov_type}.")
    record = FitRecord(params=params, cov_params=cov, nobs=design.nobs, llf=float(fit.llf),
                       method="OLS", n_cov_params=1, df_resid=df_resid,
                       variance_components=_ols_variance_table(float(fit.ssr / df_resid)),
                       engine="ols")
    return Estimate(
        params=params, cov=cov, B=B, bjac=bjac, bfun=bfun, bidx=idx, llf=float(fit.llf),
        nobs=design.nobs, df_resid=df_resid, n_cov_params=1, record=record,
        ols=fit, r_squared=float(fit.rsquared), phi=phi, notes=tuple(notes),
    )


def _nls_covariance(
    design: Design, spec: Spec, fit: Any, M: np.ndarray, phi: float
) -> tuple[pd.Series, pd.DataFrame, Callable[[np.ndarray], np.ndarray], np.ndarray, float]:
    """Parameters (linear ones + phi) and their nls covariance, as R's ``nls``.

    The Jacobian of the fitted values is ``[X(phi), dX/dphi theta]``. Regressing the
    residuals (orthogonal to that Jacobian at the optimum) on it with statsmodels gives
    sigma^2 (J'J)^-1 for cov_type="nonrobust" and the matching sandwich for HC types.
    """
    family = spec.family
    theta = fit.params.to_numpy()
    names = list(fit.params.index)
    m = family.transform(phi).shape[1]
    start = names.index(family.labels(str(design.names["x"]), str(design.names["y"]))[0])
    dT = family.dtransform(phi)
    dfit = design.P @ dT @ theta[start: start + m]
    J = np.column_stack([fit.model.exog, dfit])
    jfit = OLS(fit.resid.to_numpy(), J).fit(cov_type=spec.cov_type)
    all_names = [*names, "phi"]
    params = pd.Series([*theta, phi], index=all_names)
    cov = pd.DataFrame(jfit.cov_params(), index=all_names, columns=all_names)
    p_lin = len(names)

    def bfun(par: np.ndarray) -> np.ndarray:
        Mp = M.copy()
        Mp[1:6, start: start + m] = family.transform(par[-1])
        return Mp @ par[:p_lin]

    bjac = np.column_stack([M, np.r_[0.0, dT @ theta[start: start + m]]])
    return params, cov, bfun, bjac, float(jfit.df_resid)


def _estimate_mixed(design: Design, spec: Spec) -> Estimate:
    family = spec.family
    groups = design.groups
    if groups is None:  # estimate() routes single-level designs to OLS
        raise ValueError("A mixed model needs `groups`.")
    endog = pd.Series(design.endog, name=str(design.names["outcome"]))
    _X, names, _, _ = exog_matrix(design, family, 0.0 if family.nonlinear else None)
    rand = random_spec(spec.random, list(groups.columns), names, family,
                       design.names["x"], design.names["y"])

    def fit_at(angle: float | None, reml: bool) -> Any:
        X_a, names_a, M_a, _ = exog_matrix(design, family, angle)
        return fit_mixed(endog, pd.DataFrame(X_a, columns=names_a), groups, rand,
                         reml=reml, engine=spec.engine), M_a

    phi: float | None = None
    notes: list[str] = []
    if family.nonlinear:
        phi = _profile_mixed_angle(design, family, rand, fit_at)
        notes.append(
            f"Angle phi = {phi:.6g} maximises the ML likelihood (coordinate ascent: GLS "
            f"profile of phi given the variance components, then a mixed refit); SEs are "
            f"conditional on phi (use bootstrap() for intervals that include its "
            f"uncertainty). AIC/BIC count phi as a parameter."
        )
    mfit, M = fit_at(phi, spec.reml)
    n_cov = mfit.n_cov_params + int(family.nonlinear)
    record = FitRecord.from_mixed(mfit).restricted(names, n_cov_params=n_cov)
    params = record.params
    idx = np.arange(len(names))
    B = (M @ params.to_numpy()).reshape(-1, 6)
    return Estimate(
        params=params, cov=record.cov_params, B=B, bjac=M, bfun=_bfun_linear(M, idx),
        bidx=idx, llf=float(mfit.llf), nobs=design.nobs, df_resid=None,
        n_cov_params=n_cov, record=record, phi=phi, notes=tuple(notes),
    )


def _whitener(design: Design, mfit: Any, rand: Mapping[str, list[str]],
              exog: pd.DataFrame) -> Callable[[np.ndarray], np.ndarray]:
    """Multiply by V^(-1/2) (per top-level cluster) for the fitted variance components."""
    groups = design.groups
    if groups is None:
        raise ValueError("A mixed model needs `groups`.")
    vc = mfit.variance_components
    sigma2 = float(vc.loc[vc["level"] == "Residual", "variance"].iloc[0])
    top = pd.factorize(groups.iloc[:, 0])[0]
    blocks = []
    for k in range(top.max() + 1):
        rows = np.flatnonzero(top == k)
        V = sigma2 * np.eye(len(rows))
        for depth, level in enumerate(groups.columns):
            terms = rand.get(str(level))
            if not terms:
                continue
            G = mfit.random_cov[str(level)].loc[terms, terms].to_numpy()
            Z = np.column_stack([np.ones(len(rows)) if t == "Intercept"
                                 else exog[t].to_numpy()[rows] for t in terms])
            units = pd.MultiIndex.from_frame(groups.iloc[rows, : depth + 1]).factorize()[0]
            for u in range(units.max() + 1):
                idx = np.flatnonzero(units == u)
                V[np.ix_(idx, idx)] += Z[idx] @ G @ Z[idx].T
        blocks.append((rows, np.linalg.cholesky(V)))

    def whiten(A: np.ndarray) -> np.ndarray:
        out = np.empty_like(A, dtype=float)
        for rows, chol in blocks:
            out[rows] = linalg.solve_triangular(chol, A[rows], lower=True)
        return out

    return whiten


def _profile_mixed_angle(
    design: Design, family: FamilyModel, rand: Mapping[str, list[str]],
    fit_at: Callable[[float | None, bool], tuple[Any, np.ndarray]], max_iter: int = 20,
) -> float:
    """ML estimate of the angle by coordinate ascent on the joint likelihood.

    Given the variance components, the likelihood over (fixed effects, phi) is a GLS
    problem, so phi is profiled cheaply on whitened data; given phi, a mixed refit
    updates the variance components. Each step cannot lower the likelihood.
    """
    labels = family.labels(str(design.names["x"]), str(design.names["y"]))
    if any(t in labels and t in ("g", "h") for terms in rand.values() for t in terms):
        raise ValueError(f"Random slopes of the rotated terms of {family.name!r} are not "
                         f"supported; use random='intercept'.")
    phi = profile_angle(lambda a: _rss(*_xy_ols(design, family, a)))  # start: OLS angle
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(max_iter):
            mfit, _ = fit_at(phi, False)
            X0, names, _, _ = exog_matrix(design, family, phi)
            whiten = _whitener(design, mfit, rand, pd.DataFrame(X0, columns=names))
            # Whitening is linear and row-wise, so whiten the angle-free pieces once:
            # X(phi) = [1, P T(phi), controls] (no `by` for rank-one models).
            y_w = whiten(design.endog[:, None])[:, 0]
            fixed_w = whiten(np.column_stack([np.ones(design.nobs), design.controls]))
            new = profile_angle(partial(_whitened_rss, T=family.transform, P_w=whiten(design.P),
                                        fixed_w=fixed_w, y_w=y_w))
            step = abs((new - phi + np.pi / 2) % np.pi - np.pi / 2)
            phi = new
            if step < 1e-7:
                break
    return phi


def _xy_ols(design: Design, family: FamilyModel, angle: float) -> tuple[np.ndarray,
                                                                         np.ndarray]:
    return exog_matrix(design, family, angle)[0], design.endog


def _whitened_rss(angle: float, *, T: Callable[[float], np.ndarray], P_w: np.ndarray,
                  fixed_w: np.ndarray, y_w: np.ndarray) -> float:
    return _rss(np.column_stack([fixed_w, P_w @ T(angle)]), y_w)


def _rss(X: np.ndarray, y: np.ndarray) -> float:
    resid = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    return float(resid @ resid)
