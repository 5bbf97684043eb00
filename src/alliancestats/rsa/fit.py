r"""Fitting response surfaces: :func:`fit_rsa`, :func:`fit_lagged_rsa`, :func:`compare_rsa`.

The model (Edwards & Parry 1993; R package RSA, ``nicebread/RSA:R/RSA.R``) is

.. math::

    Z = b_0 + b_1 X + b_2 Y + b_3 X^2 + b_4 XY + b_5 Y^2 \;(+\, c' \text{controls}) + e,

with X and Y centred on one common constant (their pooled grand mean by default), so that
X = Y keeps meaning numerical agreement; third-order models add
``b6 X^3 + b7 X^2 Y + b8 X Y^2 + b9 Y^3`` and the piecewise models ``W = sign(X - Y)``
terms (see :mod:`alliancestats.rsa.family`). Without ``groups`` it is fitted by OLS
(statsmodels); with ``groups`` as a nested linear mixed model
(:func:`alliancestats._mixed.fit_mixed`).

Which reference this reproduces: the OLS fit equals R's ``lm`` on the polynomial
(unbiased residual variance, t tests with n - p df). R's ``RSA()`` with its defaults uses
lavaan's MLR estimator (robust SEs, z tests) and removes outliers; with
``estimator="ML", se="standard", out.rm=FALSE`` it gives the same estimates as ``lm`` and
SEs smaller by exactly sqrt((n - p)/n). ``cov_type="HC0"`` is the closest analogue of MLR.

Internally, :func:`prepare` validates the data and turns it into a :class:`Design`
(centred basis terms, level codes, controls, grouping labels); :func:`estimate` fits one
member of the model family to a design and returns an :class:`Estimate`. Both work on
numpy arrays after validation, so that the bootstrap can refit resampled designs cheaply.
Designs are built by position: column names of the data never decide which column plays
which part in the model.
"""

from __future__ import annotations

import functools
import inspect
import itertools
import re
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from functools import partial
from numbers import Real
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats
from statsmodels.regression.linear_model import OLS

from .._mixed import (
    ENGINES,
    INTERCEPT,
    RESIDUALS,
    MixedFit,
    deviance_at,
    fit_mixed,
    residual_note,
    single_threaded_blas,
)
from .._validation import (
    as_column_list,
    check_choice,
    check_groups,
    check_nested,
    check_unique_rows,
    check_variance,
    handle_missing,
    require_columns,
    require_frame,
    require_numeric,
)
from ..data import lagged_values
from ..design import Moderator
from ..exceptions import DataWarning
from ..results import FitRecord, check_ddf
from .family import (
    COEF_NAMES,
    CUBIC_MODELS,
    MODELS,
    STRONG_BOUND,
    FamilyModel,
    basis,
    family_model,
    profile_angle,
)
from .results import RSAResults

__all__ = ["COV_TYPES", "Design", "Estimate", "Spec", "compare_rsa", "estimate",
           "fit_lagged_rsa", "fit_rsa", "prepare"]

COV_TYPES = ("nonrobust", "HC0", "HC1", "HC2", "HC3")
_CENTER_WORDS = ("pooled", "variablewise")
_N_COEF = len(COEF_NAMES)
# Column names that usually identify a repeated unit (patients, therapists, dyads).
_ID_LIKE = re.compile(
    r"(^|[^a-z])id($|[^a-z])|id$|^id|patient|client|therapist|subject|participant|person"
    r"|dyad|couple|family|case|unit|respondent",
    re.IGNORECASE,
)


@dataclass(frozen=True)
class Design:
    """Validated, centred data of one RSA fit (numpy arrays, no missing values)."""

    endog: np.ndarray
    P: np.ndarray  # n x 12 basis terms (family.basis) after centring/scaling
    codes: np.ndarray  # level code per row (all 0 without `by`)
    levels: tuple[Any, ...]  # (None,) without `by`
    controls: np.ndarray  # n x c
    control_names: tuple[str, ...]
    groups: pd.DataFrame | None  # grouping labels outer -> inner, RangeIndex
    x_raw: np.ndarray
    y_raw: np.ndarray
    names: dict[str, Any]  # outcome, x, y, by, groups, controls, unit, time, decompose
    centering: dict[str, Any]
    dropped: dict[str, int] = field(default_factory=dict)
    # decompose="unit": basis terms of the within-unit deviations and of the unit means
    # (each n x 12); `levels` are then ("within", "between")
    parts: tuple[np.ndarray, ...] | None = None
    # the `time` value of each row (None without `time`): AR(1) residuals use it
    time_values: np.ndarray | None = None

    @property
    def nobs(self) -> int:
        return len(self.endog)

    def take(self, rows: np.ndarray, groups: pd.DataFrame | None) -> Design:
        """The design restricted to ``rows`` (with repetition) and new group labels."""
        return replace(
            self, endog=self.endog[rows], P=self.P[rows], codes=self.codes[rows],
            controls=self.controls[rows], groups=groups, x_raw=self.x_raw[rows],
            y_raw=self.y_raw[rows],
            parts=None if self.parts is None else tuple(p[rows] for p in self.parts),
            time_values=None if self.time_values is None else self.time_values[rows],
        )

    @property
    def has_by(self) -> bool:
        """Whether the surfaces are levels of ``by`` (else one surface, or the parts of
        ``decompose``)."""
        return self.names["by"] is not None


@dataclass(frozen=True)
class Spec:
    """Everything about the model except the data."""

    family: FamilyModel
    random: Any = "intercept"
    reml: bool = True
    engine: str = "fast"
    cov_type: str = "nonrobust"
    ddf: str = "satterthwaite"
    residual: str = "iid"


@dataclass(frozen=True)
class Estimate:
    """Result of :func:`estimate` in engine-neutral form.

    ``B`` holds b0..w3 (13 coefficients, see ``family.COEF_NAMES``) per level (L x 13).
    ``bfun`` maps the parameters listed in ``bidx`` (positions in ``params``) to B, so
    that nonlinear functions of the surface get delta-method SEs by differentiating
    through the model's own parameterisation (constrained models stay on their
    constraint). ``bjac`` is dB/dparams (13L x p) at the estimate. ``piece`` is the
    parameterisation that gave the fit (see ``FamilyModel.pieces``).
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
    piece: str = ""
    # the mixed fit, from which random_pca is computed on use
    mixed: MixedFit | None = field(default=None, repr=False, compare=False)

    @functools.cached_property
    def random_pca(self) -> pd.DataFrame | None:
        """lme4's ``rePCA`` of a mixed fit (see :func:`random_pca`); None for OLS."""
        return None if self.mixed is None else random_pca(self.mixed)


# ----------------------------------------------------------------------------- prepare
def _plain_frame(data: Any) -> pd.DataFrame:
    """``data`` checked to be a frame, as a shallow view without ``attrs``.

    pandas deep-copies ``attrs`` (e.g. a data set's description) into every frame and
    column derived from it, which would cost more than the model fit; the caller's frame
    is left untouched.
    """
    data = require_frame(data)
    if not data.attrs:
        return data
    return pd.DataFrame(data)  # shares the columns; the constructor leaves attrs empty


def _center_value(center: Any) -> Any:
    """``center`` with old spellings mapped (``"none"`` -> None, with a FutureWarning)."""
    if isinstance(center, str) and center.lower() == "none":
        warnings.warn("center='none' is deprecated and will be removed in the next release; "
                      "use center=None.", FutureWarning, stacklevel=5)
        return None
    return center


def _centre_constants(xv: np.ndarray, yv: np.ndarray, center: Any, scale: Any
                      ) -> dict[str, Any]:
    """Shift and scale of x and y (R RSA's ``center``/``scale``); squares come after."""
    if isinstance(center, bool) or not (
        center is None or isinstance(center, Real) or center in _CENTER_WORDS
    ):
        raise ValueError(
            f"`center` must be 'pooled', 'variablewise', None (no centring) or a number "
            f"(e.g. the scale midpoint); got {center!r}."
        )
    if not (scale is None or scale in _CENTER_WORDS):
        raise ValueError(f"`scale` must be None, 'pooled' or 'variablewise'; got {scale!r}.")
    if center == "pooled":  # the mean of all values, as center_pooled
        mx = my = float(np.column_stack([xv, yv]).ravel().mean())
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


def _distinct_labels(series: pd.Series, role: str) -> list[Any]:
    """Sorted distinct values of a categorical column; refuse labels that print alike."""
    values = list(pd.unique(series))
    text = [str(v) for v in values]
    if len(set(text)) < len(text):
        seen: dict[str, Any] = {}
        for v, t in zip(values, text, strict=True):
            if t in seen:
                raise ValueError(
                    f"`{role}` column {series.name!r} has the distinct labels {seen[t]!r} "
                    f"and {v!r}, which print the same, so the terms of the model could not "
                    f"be told apart. Convert the column to one type first, e.g. "
                    f"data[{series.name!r}].astype(str)."
                )
            seen[t] = v
    if isinstance(series.dtype, pd.CategoricalDtype):
        return [c for c in series.cat.categories if c in set(values)]
    try:
        return sorted(values)
    except TypeError:
        return sorted(values, key=str)


def _control_matrix(frame: pd.DataFrame, cols: _Columns, controls: list[Any],
                    center_controls: Sequence[Hashable], consts: dict[str, Any]
                    ) -> tuple[np.ndarray, list[str]]:
    """Controls by the design layer's one dummy-coding rule (numeric as given,
    categorical as treatment dummies against the first level); ``center_controls`` are
    centred on their mean (recorded in ``consts``)."""
    blocks: list[np.ndarray] = []
    names: list[str] = []
    for col in controls:
        series = cols[col]
        if col in center_controls:  # e.g. the prior outcome of a lagged fit
            mean = float(series.mean())
            consts[f"{col}_shift"] = mean
            blocks.append((series - mean).to_numpy(dtype=float)[:, None])
            names.append(str(col))
            continue
        if not pd.api.types.is_numeric_dtype(series):
            _distinct_labels(series, "controls")  # refuse labels that print alike
        moderator = Moderator.from_data(frame, col)
        if moderator.categorical:
            table = moderator.columns(frame)
            blocks.append(table.to_numpy(dtype=float))
            names.extend(str(c) for c in table.columns)
        else:
            blocks.append(cols.values(col)[:, None])
            names.append(str(col))
    if not blocks:
        return np.empty((len(frame), 0)), []
    return np.column_stack(blocks), names


def _check_repeated_units(data: pd.DataFrame, frame: pd.DataFrame, *, units: list[Any],
                          time: Any, groups: list[Any], used: list[Any],
                          codes: _Columns, unique_checked: bool = False) -> None:
    """Duplicated (unit, time) rows raise; exact duplicate rows and repeated units of a
    single-level fit warn (the rows are then not independent)."""
    if time is not None and units and not unique_checked:
        key = codes.key([*units, time])
        if len(key) and key.max() + 1 < len(key):  # some (unit, time) repeats
            check_unique_rows(frame, [*units, time], "time")
    elif time is None:
        try:
            n_dup = int(data.duplicated().sum())
        except TypeError:  # unhashable cells: nothing to compare
            n_dup = 0
        if n_dup:
            warnings.warn(
                f"{n_dup} rows of `data` are exact copies of other rows (every column "
                f"equal); they are fitted as separate observations. Remove them with "
                f"data.drop_duplicates() if they were entered twice, or pass `time` (and "
                f"`unit`) so that duplicated sessions are detected.",
                DataWarning, stacklevel=5,
            )
    if groups:
        return
    if not units:  # every id-like column together identifies the finest unit
        units = [c for c in frame.columns if c not in used and _ID_LIKE.search(str(c))
                 and not pd.api.types.is_float_dtype(frame[c])
                 and not pd.api.types.is_bool_dtype(frame[c])]
        if not units:
            return
    counts = frame.groupby(units, observed=True, dropna=True).size()
    if len(counts) < 2 or counts.max() < 2:
        return
    warnings.warn(
        f"Single-level fit (groups=None), but the units {units!r} repeat: {len(counts)} "
        f"units with up to {int(counts.max())} rows each. Rows of one unit are not "
        f"independent, so OLS standard errors are too small; pass groups={units!r} "
        f"(outer -> inner, e.g. ['therapist', 'patient']) for a multilevel fit.",
        DataWarning, stacklevel=5,
    )


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
    unit: Any = None,
    time: Hashable | None = None,
    center_controls: Sequence[Hashable] = (),
    decompose: str | None = None,
    unique_rows_checked: bool = False,
) -> Design:
    """Validate ``data`` and build the :class:`Design` (see ``fit_rsa``).

    ``unique_rows_checked``: the caller has checked that (``unit``, ``time``) rows are
    unique (``fit_lagged_rsa``, on all rows of its data).
    """
    data = _plain_frame(data)
    if decompose is not None:
        check_choice(decompose, "decompose", ("unit",))
        if groups is None:
            raise ValueError("decompose='unit' fits the within- and between-unit surfaces in "
                             "one mixed model: pass `groups` (e.g. ['therapist', "
                             "'patient']).")
        if by is not None:
            raise ValueError("decompose='unit' together with `by` is not supported yet; fit "
                             "each level of the `by` column separately.")
    group_cols = as_column_list(groups, "groups")
    control_cols = as_column_list(controls, "controls")
    unit_cols = as_column_list(unit, "unit")
    roles: dict[str, Any] = {"outcome": outcome, "x": x, "y": y, "groups": group_cols,
                             "controls": control_cols, "by": by, "unit": unit_cols,
                             "time": time}
    require_columns(data, roles)
    if x == y:
        raise ValueError(f"`x` and `y` both name column {x!r}; the surface needs two "
                         f"different predictors.")
    used = [outcome, x, y]
    for role, role_cols in (("controls", control_cols), ("groups", group_cols),
                            ("by", [by]), ("unit", unit_cols), ("time", [time])):
        clash = [c for c in role_cols if c is not None and c in used]
        if clash:
            raise ValueError(f"`{role}` column {clash[0]!r} is already used as outcome, x or y.")
    given = _Columns(data)
    numeric = {"outcome": outcome, "x": x, "y": y, **({} if time is None else {"time": time})}
    if not all(given.plain_numeric(col) for col in numeric.values()):
        require_numeric(data, numeric)  # raises, naming the column
    units = unit_cols or group_cols
    columns = list(dict.fromkeys([outcome, x, y, *control_cols, *group_cols,
                                  *([by] if by is not None else []), *unit_cols,
                                  *([time] if time is not None else [])]))
    frame, dropped = _complete_rows(data, columns, missing, given)
    cols = given if frame is data else _Columns(frame)
    xv, yv, endog = cols.values(x), cols.values(y), cols.values(outcome)
    for role, col, values in (("x", x, xv), ("y", y, yv), ("outcome", outcome, endog)):
        if not values.min() < values.max():
            check_variance(frame, col, role)  # raises, naming the column
    if np.array_equal(xv, yv):
        raise ValueError(
            f"`x` ({x!r}) and `y` ({y!r}) are identical on every analysed row: X^2, XY and "
            f"Y^2 coincide, so the surface is not identified."
        )
    if group_cols:
        _check_group_columns(frame, group_cols, cols)
    _check_repeated_units(data, frame, units=units, time=time, groups=group_cols,
                          used=columns, codes=cols, unique_checked=unique_rows_checked)
    consts = _centre_constants(xv, yv, center, scale)
    xc = (xv - consts["x_shift"]) / consts["x_scale"]
    yc = (yv - consts["y_shift"]) / consts["y_scale"]
    parts: tuple[np.ndarray, ...] | None = None
    if decompose is not None:
        unit_codes = cols.key(units)
        counts = np.bincount(unit_codes)
        xm = (np.bincount(unit_codes, xc) / counts)[unit_codes]
        ym = (np.bincount(unit_codes, yc) / counts)[unit_codes]
        parts = (basis(xc - xm, yc - ym), basis(xm, ym))
        consts["decompose"] = {"unit": list(units), "n_units": len(counts)}
    levels: tuple[Any, ...]
    if decompose is not None:
        level_codes, levels = np.zeros(len(frame), dtype=int), ("within", "between")
    elif by is None:
        level_codes, levels = np.zeros(len(frame), dtype=int), (None,)
    else:
        level_codes, levels = _by_codes(cols[by], by)
    ctrl, ctrl_names = _control_matrix(frame, cols, control_cols, center_controls, consts)
    return Design(
        endog=endog, P=basis(xc, yc), codes=level_codes, levels=levels,
        controls=ctrl, control_names=tuple(ctrl_names),
        groups=frame[group_cols].reset_index(drop=True) if group_cols else None,
        x_raw=xv, y_raw=yv,
        names={"outcome": outcome, "x": x, "y": y, "by": by, "groups": group_cols,
               "controls": control_cols, "unit": unit_cols, "time": time,
               "decompose": decompose},
        centering=consts, dropped=dropped, parts=parts,
        time_values=None if time is None else cols.values(time),
    )


def _complete_rows(data: pd.DataFrame, columns: list[Hashable], missing: str,
                   cols: _Columns) -> tuple[pd.DataFrame, dict[str, int]]:
    """The rows without missing values in ``columns`` (RangeIndex) and the counts of
    missing values (``handle_missing``; the frame itself when nothing is missing)."""
    check_choice(missing, "missing", ("drop", "raise"))
    if any(cols.has_missing(c) for c in columns):
        frame, dropped = handle_missing(data, columns, missing, stacklevel=6)
        return frame.reset_index(drop=True), dropped
    if isinstance(data.index, pd.RangeIndex) and data.index.start == 0 \
            and data.index.step == 1:
        return data, {}
    return data.reset_index(drop=True), {}


class _Columns:
    """The columns of a frame, each taken out once: as Series, as float arrays, and as
    integer codes of labels (in order of appearance)."""

    def __init__(self, frame: pd.DataFrame) -> None:
        self._frame = frame
        self._series: dict[Hashable, pd.Series] = {}
        self._values: dict[Hashable, np.ndarray] = {}
        self._codes: dict[Hashable, tuple[np.ndarray, int]] = {}

    def __getitem__(self, column: Hashable) -> pd.Series:
        if column not in self._series:
            self._series[column] = self._frame[column]
        return self._series[column]

    def values(self, column: Hashable) -> np.ndarray:
        """The column as float64 (missing values as NaN)."""
        if column not in self._values:
            self._values[column] = _float_values(self[column])
        return self._values[column]

    def has_missing(self, column: Hashable) -> bool:
        if column in self._values:
            return bool(np.isnan(self._values[column]).any())
        return bool(self[column].hasnans)

    def plain_numeric(self, column: Hashable) -> bool:
        """Numeric, not complex, no infinite values (else ``require_numeric`` raises)."""
        series = self[column]
        return (pd.api.types.is_numeric_dtype(series)
                and not pd.api.types.is_complex_dtype(series)
                and not np.isinf(self.values(column)).any())

    def of(self, column: Hashable) -> tuple[np.ndarray, int]:
        """The codes of ``column`` and its number of distinct labels."""
        if column not in self._codes:
            code, uniq = pd.factorize(self[column])
            self._codes[column] = (np.asarray(code, dtype=np.int64), len(uniq))
        return self._codes[column]

    def key(self, columns: Sequence[Hashable]) -> np.ndarray:
        """One code per distinct combination of ``columns`` (0, 1, ... by first row)."""
        key = np.zeros(len(self._frame), dtype=np.int64)
        for col in columns:
            code, n = self.of(col)
            key = pd.factorize(key * max(n, 1) + code)[0].astype(np.int64)
        return key


def _float_values(series: pd.Series) -> np.ndarray:
    """A numeric column as float64, missing values as NaN (numpy columns directly)."""
    if isinstance(series.dtype, np.dtype):
        return series.to_numpy(dtype=float)
    return series.to_numpy(dtype=float, na_value=np.nan)


def _check_group_columns(frame: pd.DataFrame, group_cols: list[Any],
                         codes: _Columns) -> None:
    """``check_groups`` and ``check_nested`` on codes (their messages when they fail)."""
    if any(codes.of(col)[1] < 2 for col in group_cols):
        check_groups(frame, group_cols)  # raises, naming the column
    for outer, inner in itertools.pairwise(group_cols):
        inner_code, n_inner = codes.of(inner)
        outer_code, n_outer = codes.of(outer)
        pairs = np.unique(inner_code * max(n_outer, 1) + outer_code)
        per_inner = np.bincount(pairs // max(n_outer, 1), minlength=n_inner)
        shared = int((per_inner > 1).sum())
        if shared and shared < 0.5 * len(per_inner):
            check_nested(frame, outer, inner)  # the warning, worded there


def _by_codes(series: pd.Series, by: Hashable) -> tuple[np.ndarray, tuple[Any, ...]]:
    """Level of each row (positions in the sorted distinct labels) and the labels."""
    labels = _distinct_labels(series, "by")
    if len(labels) < 2:
        raise ValueError(f"`by` column {by!r} has a single level "
                         f"({labels[0]!r}); it needs at least two.")
    lookup = {lev: i for i, lev in enumerate(labels)}
    code, uniq = pd.factorize(series)
    return np.array([lookup[v] for v in uniq], dtype=int)[code], tuple(labels)


# ------------------------------------------------------------------------------ design
def exog_matrix(
    design: Design, family: FamilyModel, phi: float | None = None
) -> tuple[np.ndarray, list[str], np.ndarray, list[int]]:
    """Fixed-effect design ``[1, level dummies, P_l @ T per level, controls]``.

    Returns the matrix, its column labels (distinct, see ``_check_names``; they name the
    terms, while which column plays which part is decided by position),
    the linear map M (13L x p) from the parameters to b0..w3 of each level, and the
    positions of the surface terms per level.
    """
    T = family.transform(phi)
    n, L = design.nobs, len(design.levels)
    by = design.names["by"]
    x, y = str(design.names["x"]), str(design.names["y"])
    labels = family.labels(x, y)
    cols, names = [np.ones(n)], ["Intercept"]
    if design.has_by:
        for lev in range(1, L):
            cols.append((design.codes == lev).astype(float))
            names.append(f"{by}[{design.levels[lev]}]")
    surface_pos: list[int] = []
    for lev in range(L):
        if design.parts is not None:  # decompose: within deviations, unit means
            part = design.levels[lev]
            block = design.parts[lev] @ T
            part_labels = family.labels(f"{x}_{part}", f"{y}_{part}")
        else:
            block = (design.P * (design.codes == lev)[:, None]) @ T
            part_labels = labels if by is None else [f"{t}:{by}[{design.levels[lev]}]"
                                                     for t in labels]
        cols.extend(block.T)
        surface_pos.append(len(names))
        names.extend(part_labels)
    cols.extend(design.controls.T)
    names.extend(design.control_names)
    M = np.zeros((_N_COEF * L, len(names)))
    m = T.shape[1]
    for lev in range(L):
        M[_N_COEF * lev, 0] = 1.0
        if lev and design.has_by:
            M[_N_COEF * lev, lev] = 1.0
        M[_N_COEF * lev + 1: _N_COEF * (lev + 1), surface_pos[lev]: surface_pos[lev] + m] = T
    return np.column_stack(cols), names, M, surface_pos


def _check_names(names: list[str], design: Design) -> None:
    """Refuse column names that make two terms of the model print alike.

    The design is built by position, so a clash cannot change the model; it would make
    ``params`` ambiguous, so it is refused with a way out.
    """
    seen: set[str] = set()
    for name in names:
        if name in seen:
            roles = {k: v for k, v in design.names.items()
                     if k in ("x", "y", "controls", "by")}
            raise ValueError(
                f"Two terms of the model are both labelled {name!r} (column names "
                f"{roles}). A column named like a generated term ('Intercept', 'x^2', "
                f"'x:y', 'name[level]', 'g', 'h', 'W') cannot be told apart from it: "
                f"rename the column, e.g. data.rename(columns={{...}})."
            )
        seen.add(name)


def _check_rank(X: np.ndarray, names: list[str], design: Design, family: FamilyModel) -> None:
    n, p = X.shape
    if n <= p:
        raise ValueError(
            f"Too few observations for model {family.model!r}: it has {p} coefficients but "
            f"only {n} complete rows; at least {p + 1} are needed."
        )
    for lev, label in enumerate(design.levels):
        n_lev = int((design.codes == lev).sum())
        if design.has_by and n_lev <= family.k + 1:
            raise ValueError(
                f"Level {label!r} of `by` column {design.names['by']!r} has {n_lev} rows; "
                f"model {family.model!r} needs more than {family.k + 1} per level."
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
RANDOM_WORDS = ("intercept", "slopes", "linear", "quadratic")


def _random_terms(kind: str, level: Any, names: list[str], family: FamilyModel,
                  x: Hashable, y: Hashable) -> list[int]:
    """Positions of the random terms that ``kind`` names at one level (0 = intercept)."""
    if kind == "intercept":
        return [0]
    decomposed = f"{x}_within" in names
    if kind in ("slopes", "linear"):
        lin = [f"{x}_within", f"{y}_within"] if decomposed else [str(x), str(y)]
        if not all(t in names for t in lin):
            raise ValueError(
                f"random={kind!r} adds random slopes of {lin} at level {level!r}, but model "
                f"{family.model!r} (or `by`) has no such columns; pass a mapping "
                f"{{level: [columns]}} from {names}."
            )
        return [0, *(names.index(t) for t in lin)]
    # "quadratic": every free surface term of the model (the within part if decomposed)
    m = len(family.templates)
    labels = family.labels(f"{x}_within", f"{y}_within") if decomposed \
        else family.labels(str(x), str(y))
    if m == 0 or names[1:1 + m] != labels:
        raise ValueError(
            f"random='quadratic' puts every surface term of the model at level {level!r}; "
            f"with `by` pass a mapping {{level: [columns]}} from {names}."
        )
    return list(range(1 + m))


def random_spec(random: Any, groups: list[Any], names: list[str], family: FamilyModel,
                x: Hashable, y: Hashable) -> dict[str, list[int]]:
    """Translate ``random`` into {level: [positions of design columns]} (0 = intercept).

    A word applies to the innermost level, with random intercepts at the outer levels:
    "intercept" (intercepts only), "linear" (alias "slopes": correlated random x and y
    slopes), "quadratic" (every surface term of the model). A mapping gives, per level,
    a word or a list of design columns.
    """
    if isinstance(random, str):
        check_choice(random, "random", RANDOM_WORDS)
        spec = {str(g): [0] for g in groups}
        spec[str(groups[-1])] = _random_terms(random, groups[-1], names, family, x, y)
        return spec
    if not isinstance(random, Mapping):
        raise TypeError("`random` must be 'intercept', 'linear', 'quadratic' or a mapping "
                        "{grouping column: 'intercept' | 'linear' | 'quadratic' | "
                        "[design columns]}.")
    out: dict[str, list[int]] = {}
    for level, terms in random.items():
        if level not in groups:
            raise ValueError(f"`random` names level {level!r}, not one of `groups` {groups}.")
        if isinstance(terms, str) and terms in RANDOM_WORDS:
            out[str(level)] = _random_terms(terms, level, names, family, x, y)
            continue
        wanted = as_column_list(terms, "random")
        bad = [t for t in wanted if t not in names]
        if bad:
            raise ValueError(f"`random` terms {bad} at level {level!r} are not design "
                             f"columns or one of {RANDOM_WORDS}; choose from {names}.")
        out[str(level)] = [names.index(t) for t in wanted]
    return out


def _bfun_linear(M: np.ndarray, idx: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    sub = M[:, idx]
    return lambda theta: sub @ theta


def _ols_variance_table(scale: float) -> pd.DataFrame:
    return pd.DataFrame({"level": ["Residual"], "term": [""], "variance": [scale],
                         "sd": [np.sqrt(scale)], "corr": [np.nan]})


def estimate(design: Design, spec: Spec) -> Estimate:
    """Fit ``spec`` to ``design``: OLS without groups, else a mixed model.

    A model with several pieces (SRSQD, weak) is the best feasible fit among them.
    """
    family = spec.family
    if family.nonlinear and len(design.levels) > 1:
        what = "`by`" if design.has_by else "decompose='unit'"
        raise ValueError(
            f"Model {family.model!r} with {what} is not supported (one nonlinear angle per "
            f"surface); fit each level separately or use a linear model such as 'SRR'."
        )
    X0, names, _, _ = exog_matrix(design, family, 0.3 if family.nonlinear else None)
    _check_names(names, design)
    _check_rank(X0, names, design, family)
    fit_one = _estimate_ols if design.groups is None else _estimate_mixed
    pieces = family.pieces
    best: Estimate | None = None
    first_error: ValueError | None = None
    for piece in pieces:
        sub = replace(spec, family=piece)
        if design.groups is not None and len(pieces) > 1:
            sub = replace(sub, reml=False)  # pieces are compared by ML
        try:
            est = fit_one(design, sub)
        except ValueError as err:
            first_error = first_error or err
            continue
        if not family.accepts(piece, est.B[0]):
            continue
        if best is None or est.llf > best.llf + 1e-10:
            best = est
    if best is None:
        raise first_error or ValueError(f"Model {family.model!r} could not be fitted.")
    if len(pieces) > 1:
        piece = next(p for p in pieces if p.name == best.piece)
        if design.groups is not None and spec.reml:
            best = fit_one(design, replace(spec, family=piece))
        if piece is not pieces[0]:
            best = replace(best, notes=(*best.notes, _piece_note(family, piece)))
    return best


def _piece_note(family: FamilyModel, piece: FamilyModel) -> str:
    if family.name == "SRSQD":
        return ("SRSQD: the best fit on the model's constraints (b4^2 = 4 b3 b5, "
                "2 b1 b5 = b2 b4) has b4 = b5 = 0 with b1, b2, b3 free, a part of the "
                "feasible set of R's RSA package that the rank-one form g (Y - S X)^2 "
                "does not reach (S infinite); reported as Z ~ x + y + x^2.")
    constraint = piece.name.split(":")[1]
    return (f"weak: the unconstrained optimum has b3 b5 <= 0, so the constrained optimum "
            f"lies on the boundary {constraint} of b3 b5 > 0 (a supremum, as R's "
            f"lavaan fit approaches it).")


def _estimate_ols(design: Design, spec: Spec) -> Estimate:
    family = spec.family
    y = design.endog
    phi: float | None = None
    strong_g: float | None = None
    if family.nonlinear:
        phi, strong_g = _profile_ols(design, family)
    X, names, M, _ = exog_matrix(design, family, phi)
    offset = np.zeros(len(y))
    if strong_g is not None:  # the bound of `strong` is active: g fixed on it
        X, names, M, offset = _fix_quadratic(design, family, X, names, M, phi, strong_g)
    fit = OLS(pd.Series(y - offset, name=str(design.names["outcome"])),
              pd.DataFrame(X, columns=names)).fit(cov_type=spec.cov_type)
    params, cov = fit.params, fit.cov_params()
    df_resid = float(fit.df_resid)
    idx = np.arange(len(names))
    bfun = _bfun_linear(M, idx)
    bjac = M
    notes: list[str] = []
    B_offset = np.zeros(M.shape[0])
    if strong_g is not None:
        B_offset = _strong_offset(family, phi, strong_g)
        notes.append(f"strong: the bound b3 b5 > {STRONG_BOUND:g} is active; g = "
                     f"{strong_g:.6g} and phi = {phi:.6g} are fixed on it (SEs of the other "
                     f"parameters are conditional on them).")
        base = bfun
        bfun = lambda theta: base(theta) + B_offset  # noqa: E731
    elif phi is not None:
        params, cov, bfun, bjac, df_resid = _nls_covariance(design, spec, fit, M, phi)
        idx = np.arange(len(params))
        notes.append(f"Angle phi profiled over [0, pi); SEs from the Gauss-Newton "
                     f"(nls) covariance with phi free (phi = {phi:.6g}).")
    B = bfun(params.to_numpy()[idx]).reshape(-1, _N_COEF)
    if spec.cov_type != "nonrobust":
        notes.append(f"Heteroscedasticity-consistent covariance {spec.cov_type}.")
    ssr = float(fit.ssr)
    llf = float(fit.llf)
    r2 = float(1 - ssr / np.sum((y - y.mean()) ** 2)) if strong_g is not None \
        else float(fit.rsquared)
    n_cov = 1 + (2 if strong_g is not None else 0)  # g, phi fixed on the bound count
    record = FitRecord(params=params, cov_params=cov, nobs=design.nobs, llf=llf,
                       method="OLS", n_cov_params=n_cov, df_resid=df_resid,
                       variance_components=_ols_variance_table(ssr / df_resid),
                       engine="ols")
    return Estimate(
        params=params, cov=cov, B=B, bjac=bjac, bfun=bfun, bidx=idx, llf=llf,
        nobs=design.nobs, df_resid=df_resid, n_cov_params=n_cov, record=record, ols=fit,
        r_squared=r2, phi=phi, notes=tuple(notes), piece=family.name,
    )


def _profile_ols(design: Design, family: FamilyModel) -> tuple[float, float | None]:
    """The angle (and, for ``strong`` with its bound active, the fixed g)."""
    y = design.endog

    def rss_at(angle: float) -> float:
        return _rss(exog_matrix(design, family, angle)[0], y)

    if family.name != "strong":
        return profile_angle(rss_at), None
    return _profile_strong(design, family, lambda X, z: _rss(X, z))


def _profile_strong(
    design: Design, family: FamilyModel, crit: Callable[[np.ndarray, np.ndarray], float]
) -> tuple[float, float | None]:
    """R's ``strong``: SRSQD's rank-one surface with b3 b5 = g^2 s^2 c^2 >= 1e-6.

    For a fixed angle the criterion is a least-squares problem in (b0, h, g) with
    |g| >= a(phi) = sqrt(1e-6) / |sin(phi) cos(phi)|: the unconstrained g if it is
    feasible, else the better of g = +-a(phi). Profiling this over phi gives the
    constrained optimum (the supremum, as the bound is strict in R).
    """
    y = design.endog
    bound = np.sqrt(STRONG_BOUND)

    def at(angle: float) -> tuple[float, float | None]:
        X, _, _, pos = exog_matrix(design, family, angle)
        free = crit(X, y)
        g_free = np.linalg.lstsq(X, y, rcond=None)[0][pos[0] + 1]
        sc = abs(np.sin(angle) * np.cos(angle))
        a = np.inf if sc < 1e-12 else bound / sc
        if abs(g_free) >= a:
            return free, None
        if not np.isfinite(a):
            return np.inf, 0.0
        u2 = X[:, pos[0] + 1]
        Xh = np.delete(X, pos[0] + 1, axis=1)
        best = min(((crit(Xh, y - g * u2), g) for g in (a, -a)), key=lambda t: t[0])
        return best

    phi = profile_angle(lambda a: at(a)[0])
    return phi, at(phi)[1]


def _fix_quadratic(design: Design, family: FamilyModel, X: np.ndarray, names: list[str],
                   M: np.ndarray, phi: float | None, g: float
                   ) -> tuple[np.ndarray, list[str], np.ndarray, np.ndarray]:
    """Drop the g column of ``strong`` (fixed at ``g``): design, names, map and the
    offset g u^2. Its design is [Intercept, h, g, controls] (no `by`)."""
    pos = 2
    offset = g * X[:, pos]
    return (np.delete(X, pos, axis=1), names[:pos] + names[pos + 1:],
            np.delete(M, pos, axis=1), offset)


def _strong_offset(family: FamilyModel, phi: float | None, g: float) -> np.ndarray:
    out = np.zeros(_N_COEF)
    out[1:] = family.transform(phi)[:, 1] * g
    return out


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
    start = 1  # nonlinear models have no `by`: [Intercept, surface terms, controls]
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
        Mp[1:_N_COEF, start: start + m] = family.transform(par[-1])
        return Mp @ par[:p_lin]

    bjac = np.column_stack([M, np.r_[0.0, dT @ theta[start: start + m]]])
    return params, cov, bfun, bjac, float(jfit.df_resid)


# -- mixed models ----------------------------------------------------------------------
def _positional(names: Sequence[str]) -> list[str]:
    """Internal column names of a design handed to the mixed-model layer by position."""
    return [f"c{j}" for j in range(len(names))]


def _mixed_record(mfit: MixedFit, n_cov_params: int, ddf: str = "satterthwaite"
                  ) -> FitRecord:
    """The record of a mixed fit (its terms carry the design's labels, so that
    contrasts over the labels get their small-sample df) with the count of covariance
    parameters ``n_cov_params`` and the degrees-of-freedom method ``ddf``."""
    return replace(FitRecord.from_mixed(mfit, ddf=ddf), n_cov_params=n_cov_params)


def _mixed_fit(design: Design, spec: Spec, X: np.ndarray, names: list[str],
               rand: Mapping[str, list[int]], reml: bool, endog: np.ndarray | None = None
               ) -> Any:
    # The design's labels name the terms: they are distinct (_check_names), and the
    # first column is the intercept, so random term 0 is the intercept either way.
    random = {lvl: [INTERCEPT if j == 0 else names[j] for j in pos]
              for lvl, pos in rand.items()}
    y = design.endog if endog is None else endog
    if design.groups is None:  # estimate() routes single-level designs to OLS
        raise ValueError("A mixed model needs `groups`.")
    groups = design.groups
    if not all(isinstance(c, str) for c in groups.columns):
        # levels are named by their text (any hashable column name works)
        groups = groups.set_axis([str(c) for c in groups.columns], axis=1)
    return fit_mixed(pd.Series(y, name="y"), pd.DataFrame(X, columns=names),
                     groups, random, reml=reml, engine=spec.engine,
                     residual=spec.residual, time=_residual_time(design, spec))


def _residual_time(design: Design, spec: Spec) -> np.ndarray | None:
    """The session values of the rows for a residual structure (None for iid)."""
    if spec.residual == "iid":
        return None
    if design.time_values is None:
        raise ValueError(f"residual={spec.residual!r} needs `time`: name the session column "
                         f"(e.g. time='session').")
    return design.time_values


def random_pca(mfit: MixedFit) -> pd.DataFrame:
    """Principal components of each level's random effects, relative to the residual SD
    (lme4 ``rePCA``): level, component, sd, proportion, cumulative and the loadings."""
    vc = mfit.variance_components
    sigma2 = float(vc.loc[vc["level"] == "Residual", "variance"].iloc[0])
    rows = []
    for level, cov in mfit.random_cov.items():
        evals, evecs = np.linalg.eigh(cov.to_numpy(dtype=float) / sigma2)
        order = np.argsort(evals)[::-1]
        evals, evecs = np.clip(evals[order], 0.0, None), evecs[:, order]
        total = float(evals.sum()) or 1.0
        terms = list(cov.index)
        for k, (value, vec) in enumerate(zip(evals, evecs.T, strict=True)):
            rows.append({"level": level, "component": k + 1, "sd": float(np.sqrt(value)),
                         "proportion": float(value / total),
                         "cumulative": float(evals[: k + 1].sum() / total),
                         "loadings": dict(zip(terms, np.round(vec, 4).tolist(),
                                              strict=True))})
    return pd.DataFrame(rows, columns=["level", "component", "sd", "proportion",
                                       "cumulative", "loadings"])


def _singular_advice(pca: pd.DataFrame, mfit: MixedFit, tol: float = 1e-4) -> list[str]:
    """Which random terms to drop when a level's covariance is (nearly) rank-deficient.

    Greedy and basis-free: while the (reduced) relative covariance has principal
    components with a share of variance below ``tol``, drop the term that lies most in
    their span (the squared norm of its projection), quadratic terms before linear ones
    and never the intercept (Nestler, Humberg & Schönbrodt 2019 drop quadratic, then
    linear random slopes).
    """
    notes = []
    for level, table in pca.groupby("level", sort=False):
        n_null = int((table["proportion"] < tol).sum())
        cov = mfit.random_cov[str(level)]
        if n_null == 0 or len(table) < 2:
            continue
        terms = list(cov.index)
        sub = cov.to_numpy(dtype=float)
        keep = list(range(len(terms)))
        drop: list[str] = []
        while len(keep) > 1:
            evals, evecs = np.linalg.eigh(sub[np.ix_(keep, keep)])
            evals = np.clip(evals, 0.0, None)
            null = evals < tol * max(float(evals.sum()), np.finfo(float).tiny)
            if not null.any():
                break
            weight = np.round((evecs[:, null] ** 2).sum(axis=1), 6)
            pool = [k for k, i in enumerate(keep)
                    if terms[i] != INTERCEPT and weight[k] > 1e-6]
            if not pool:
                break
            higher = [k for k in pool if "^" in terms[keep[k]] or ":" in terms[keep[k]]]
            pick = max(higher or pool, key=lambda k: (weight[k], -k))
            drop.append(terms[keep[pick]])
            del keep[pick]
        props = ", ".join(f"{p:.3g}" for p in table["proportion"])
        notes.append(
            f"Random effects at level {level!r} are singular: {n_null} of {len(table)} "
            f"principal components have ~0 variance (proportions {props}; lme4 rePCA, "
            f"see random_pca). Drop {drop}: random={{{level!r}: "
            f"{[terms[i] for i in keep]}}}."
        )
    return notes


def _estimate_mixed(design: Design, spec: Spec) -> Estimate:
    family = spec.family
    groups = design.groups
    if groups is None:  # estimate() routes single-level designs to OLS
        raise ValueError("A mixed model needs `groups`.")
    X, names, M, _ = exog_matrix(design, family, 0.0 if family.nonlinear else None)
    rand = random_spec(spec.random, list(groups.columns), names, family,
                       design.names["x"], design.names["y"])
    phi: float | None = None
    strong_g: float | None = None
    notes: list[str] = []
    if family.nonlinear:
        phi, strong_g = _profile_mixed_angle(design, spec, rand)
        notes.append(
            f"Angle phi = {phi:.6g} maximises the ML likelihood (coordinate ascent: the "
            f"angle profiled at fixed variance components, then a mixed refit); SEs are "
            f"conditional on phi (use bootstrap() for intervals that include its "
            f"uncertainty). AIC/BIC count phi as a parameter."
        )
    if family.nonlinear:
        X, names, M, _ = exog_matrix(design, family, phi)
    offset = np.zeros(design.nobs)
    if strong_g is not None:
        X, names, M, offset = _fix_quadratic(design, family, X, names, M, phi, strong_g)
        notes.append(f"strong: the bound b3 b5 > {STRONG_BOUND:g} is active; g = "
                     f"{strong_g:.6g} is fixed on it.")
    mfit = _mixed_fit(design, spec, X, names, rand, spec.reml, design.endog - offset)
    n_cov = (mfit.n_cov_params + int(family.nonlinear)
             + int(strong_g is not None))  # phi (and g fixed on strong's bound) count
    record = _mixed_record(mfit, n_cov, spec.ddf)
    params, cov = record.params, record.cov_params
    if mfit.is_singular:
        notes += _singular_advice(random_pca(mfit), mfit)
    idx = np.arange(len(names))
    bfun = _bfun_linear(M, idx)
    if strong_g is not None:
        B_offset = _strong_offset(family, phi, strong_g)
        base = bfun
        bfun = lambda theta: base(theta) + B_offset  # noqa: E731
    B = bfun(params.to_numpy()).reshape(-1, _N_COEF)
    return Estimate(
        params=params, cov=cov, B=B, bjac=M, bfun=bfun,
        bidx=idx, llf=float(mfit.llf), nobs=design.nobs, df_resid=None,
        n_cov_params=n_cov, record=record, phi=phi, notes=tuple(notes),
        piece=family.name, mixed=mfit,
    )


def _deviance_at(design: Design, spec: Spec, rand: Mapping[str, list[int]],
                 mfit: MixedFit) -> Callable[[np.ndarray, np.ndarray], float]:
    """ML deviance of (X, y) at the covariance parameters of ``mfit`` (θ and the residual
    parameters held fixed: the GLS criterion of the fixed-effect design)."""
    groups = design.groups
    if groups is None or mfit.theta is None:
        raise ValueError("A mixed model needs `groups`.")
    groups = groups.set_axis([str(c) for c in groups.columns], axis=1)
    covariance = np.r_[np.asarray(mfit.theta, dtype=float), np.asarray(mfit.psi, dtype=float)]
    time = _residual_time(design, spec)

    def crit(X: np.ndarray, y: np.ndarray) -> float:
        internal = _positional([""] * X.shape[1])
        random = {lvl: [INTERCEPT if j == 0 else internal[j] for j in pos]
                  for lvl, pos in rand.items()}
        return deviance_at(pd.Series(y), pd.DataFrame(X, columns=internal), groups, random,
                           covariance, reml=False, residual=spec.residual, time=time)

    return crit


def _profile_mixed_angle(
    design: Design, spec: Spec, rand: Mapping[str, list[int]], max_iter: int = 20,
) -> tuple[float, float | None]:
    """ML estimate of the angle by coordinate ascent on the joint likelihood.

    Given the variance components (lme4's theta), the likelihood over (fixed effects,
    phi) is the GLS criterion of X(phi), which the nested engine evaluates at fixed theta;
    given phi, a mixed refit updates theta. No step can lower the likelihood.
    """
    family = spec.family
    groups = design.groups
    if groups is None:
        raise ValueError("A mixed model needs `groups`.")
    rotated = {3} if family.name == "SRRR" else {1, 2}
    slopes = {j for terms in rand.values() for j in terms if j}
    if slopes & rotated or (family.name == "strong" and slopes):
        raise ValueError(f"Random slopes of the rotated terms of {family.model!r} are not "
                         f"supported; use random='intercept'.")
    phi, g = _profile_ols(design, family)  # start: the OLS angle
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for _ in range(max_iter):
            X, names, M, _ = exog_matrix(design, family, phi)
            offset = np.zeros(design.nobs)
            if g is not None:
                X, names, M, offset = _fix_quadratic(design, family, X, names, M, phi, g)
            mfit = _mixed_fit(design, spec, X, names, rand, False, design.endog - offset)
            crit = _deviance_at(design, spec, rand, mfit)
            if family.name == "strong":
                new, g = _profile_strong(design, family, crit)
            else:
                new = profile_angle(partial(_design_criterion, design=design,
                                            family=family, crit=crit))
            step = abs((new - phi + np.pi / 2) % np.pi - np.pi / 2)
            phi = new
            if step < 1e-7:
                break
    return phi, g


def _design_criterion(angle: float, *, design: Design, family: FamilyModel,
                      crit: Callable[[np.ndarray, np.ndarray], float]) -> float:
    return crit(exog_matrix(design, family, angle)[0], design.endog)


def _rss(X: np.ndarray, y: np.ndarray) -> float:
    resid = y - X @ np.linalg.lstsq(X, y, rcond=None)[0]
    return float(resid @ resid)


# ------------------------------------------------------------------------ entry points
def _formula(est: Estimate, design: Design) -> str:
    terms = [t for t in est.params.index if t not in ("Intercept", "phi")]
    rhs = " + ".join(terms) if terms else "1"
    if est.phi is not None:
        rhs += "  [u = cos(phi) y - sin(phi) x]"
    groups = design.names["groups"]
    for i in range(len(groups)):
        rhs += " + (1 | " + ":".join(str(g) for g in groups[: i + 1]) + ")"
    return f"{design.names['outcome']} ~ {rhs}"


def _build(design: Design, spec: Spec, lag_info: dict[str, Any] | None = None) -> RSAResults:
    est = estimate(design, spec)
    notes = []
    c = design.centering
    if c["center"] is not None or c["scale"] is not None:
        centred = "not centred" if c["center"] is None else f"centred ({c['center']})"
        scaled = "not scaled" if c["scale"] is None else f"scaled ({c['scale']})"
        notes.append(f"x and y {centred} and {scaled} before forming squares; b, a, X0, "
                     f"Y0, p10 refer to that scale.")
    if design.parts is not None:
        unit = c["decompose"]["unit"]
        notes.append(f"decompose='unit': *_between are the means of x and y per "
                     f"{':'.join(map(str, unit))} ({c['decompose']['n_units']} units), "
                     f"*_within the deviations from them; squares and products are formed "
                     f"within each part.")
    if spec.residual != "iid":
        notes += residual_note(spec.residual, design.names["groups"], design.names["time"])
    return RSAResults(est=est, design=design, spec=spec, formula=_formula(est, design),
                      refit=estimate, lag_info=lag_info, extra_notes=notes)


def _make_spec(model: Any, random: Any, reml: Any, engine: Any, cov_type: Any,
               groups: Any, ddf: Any = "satterthwaite", residual: Any = "iid",
               time: Hashable | None = None) -> Spec:
    family = family_model(model)
    check_choice(cov_type, "cov_type", COV_TYPES)
    check_choice(engine, "engine", ENGINES)
    check_choice(residual, "residual", RESIDUALS)
    if groups is not None and cov_type != "nonrobust":
        raise ValueError(f"cov_type={cov_type!r} is only available for single-level fits "
                         f"(groups=None); mixed models use model-based SEs.")
    if not isinstance(reml, bool):
        raise TypeError(f"`reml` must be True or False; got {reml!r}.")
    check_ddf(ddf, reml if groups is not None else True, residual)
    if groups is None and ddf != "satterthwaite":
        raise ValueError(f"ddf={ddf!r} applies to mixed fits (with `groups`); a single-level "
                         f"fit uses t tests with n - p residual df (as R's lm).")
    if residual not in ("iid", "ar1"):
        raise ValueError(f"residual={residual!r} needs rater-stacked data; response surfaces "
                         f"take residual='iid' or 'ar1'.")
    if residual != "iid":
        if groups is None:
            raise ValueError(f"residual={residual!r} models serial correlation within the "
                             f"innermost `groups` unit: pass `groups` (e.g. ['therapist', "
                             f"'patient']).")
        if time is None:
            raise ValueError(f"residual={residual!r} needs `time`: name the session column "
                             f"(e.g. time='session').")
    return Spec(family, random, reml, engine, cov_type, ddf, residual)


def fit_rsa(
    data: pd.DataFrame,
    *,
    outcome: Hashable,
    x: Hashable,
    y: Hashable,
    groups: Hashable | Sequence[Hashable] | None = None,
    controls: Hashable | Sequence[Hashable] | None = None,
    by: Hashable | None = None,
    model: str = "full",
    random: Any = "intercept",
    center: Any = "pooled",
    scale: str | None = None,
    reml: bool = True,
    missing: str = "drop",
    engine: str = "fast",
    cov_type: str = "nonrobust",
    unit: Hashable | Sequence[Hashable] | None = None,
    time: Hashable | None = None,
    decompose: str | None = None,
    ddf: str = "satterthwaite",
    residual: str = "iid",
) -> RSAResults:
    r"""Fit a polynomial response surface, single-level (OLS) or multilevel.

    Parameters
    ----------
    data : DataFrame
    outcome, x, y : column names
        Outcome Z and the two commensurate predictors (e.g. therapist- and patient-rated
        alliance).
    groups : column name or list, optional
        Grouping columns outer -> inner (e.g. ``["therapist", "patient"]``): a mixed model
        with a random intercept at every level (lme4 ``(1|therapist) +
        (1|therapist:patient)``). None: single-level OLS.
    controls : column name or list, optional
        Covariates entering linearly (categorical ones as dummies), not interacted.
    by : column name, optional
        One surface per level of this column in one model: intercept and polynomial terms
        per level, controls and variance components pooled. See ``surface_differences``.
    model : str
        Member of the model family (R RSA's constraints, substituted exactly):
        second order ``full``, ``IA``, ``additive``, ``diff``, ``mean``, ``onlyx``,
        ``onlyy``, ``onlyx2``, ``onlyy2``, ``SQD``, ``SSQD``, ``RR``, ``SRR``, ``SRRR``,
        ``SRSQD``, ``null``, ``weak``, ``strong``; third order ``cubic``, ``CA``, ``CL``,
        ``RRCA``, ``RRCL``; piecewise ``absdiff``, ``absunc``.
    random : {"intercept", "linear", "quadratic"} or mapping
        Random effects of mixed fits: intercepts at every level; "linear" (or "slopes")
        adds correlated random x and y slopes at the innermost level (lme4
        ``(1 + X + Y | therapist:patient)``), "quadratic" every surface term of the model
        (``(1 + X + Y + X2 + XY + Y2 | therapist:patient)`` for "full"); or a mapping
        {level: "intercept" | "linear" | "quadratic" | [design columns]}. A singular
        structure is reported with the principal components of the random effects
        (lme4 ``rePCA``) and the terms to drop.
    center : "pooled", "variablewise", None or number
        Subtract the pooled grand mean of stacked x and y (default), each variable's own
        mean (warns), nothing (None), or a given constant such as the scale midpoint.
    scale : None, "pooled" or "variablewise"
        Optionally divide by the pooled SD of the centred, stacked x and y.
    reml : bool
        REML (default) or ML for mixed fits.
    missing : {"drop", "raise"}
    engine : {"fast", "statsmodels"}
        Mixed-model engine: the project's nested engine (default) or statsmodels
        ``MixedLM`` (a cross-check).
    cov_type : {"nonrobust", "HC0", "HC1", "HC2", "HC3"}
        Single-level covariance of the coefficients.
    unit : column name or list, optional
        The repeated-measures unit (e.g. ``["therapist", "patient"]``); defaults to
        ``groups``. Used to check the data: with ``time``, duplicated (unit, time) rows
        raise; a single-level fit on repeated units warns.
    time : column name, optional
        Session number; with ``unit`` (or ``groups``) each unit may have one row per
        time point.
    decompose : {None, "unit"}
        ``"unit"``: separate within-unit and between-unit surfaces in one mixed model
        (Nestler, Humberg & Schönbrodt 2019). x and y (pooled-centred) are split into
        the unit means (``unit``, default the ``groups`` key, e.g. therapist:patient) and
        the deviations from them; the surface of the deviations (``x_within``, ...) and
        the surface of the means (``x_between``, ...) share the intercept. The
        surfaces are the levels "within" and "between" of ``surface``,
        ``surface_differences`` (between minus within) and ``surface_equality``. In lme4
        terms: ``z ~ Xw + Yw + I(Xw^2) + I(Xw*Yw) + I(Yw^2) + Xb + Yb + I(Xb^2) +
        I(Xb*Yb) + I(Yb^2) + (1 | therapist) + (1 | therapist:patient)``.
    ddf : {"satterthwaite", "kenward-roger", "z"}
        Degrees of freedom of the tests of mixed fits: Satterthwaite (default, as lmerTest
        and SPSS/SAS MIXED), Kenward–Roger (REML fits; adjusted covariance and df, as
        pbkrtest) or Wald z. Every linear quantity (coefficients, a1..a5, u1..v3, their
        differences between levels, predictions) gets its own df (lmerTest
        ``contest1D``); ``surface_equality`` is an F test with Satterthwaite
        (Fai–Cornelius) or Kenward–Roger denominator df (``contestMD``). The stationary
        point and the principal axes are nonlinear: delta-method z (or
        :meth:`RSAResults.bootstrap`). Single-level fits use t with n - p df.
    residual : {"iid", "ar1"}
        Residuals of mixed fits: independent (default, lme4's model) or AR(1) over the
        ``time`` values within the innermost ``groups`` unit (a patient), correlation
        ``phi^|t_i - t_j|``, so that a missed session is a lag of 2 (nlme
        ``corAR1(form = ~ session | therapist/patient)``); ``phi`` is in
        ``result.residual_params``. Needs ``groups`` and ``time``; fast engine only.

    Returns
    -------
    RSAResults

    Raises
    ------
    ValueError
        Unknown columns or model name, x identical to y, constant predictors, too few
        observations, a rank-deficient design, duplicated (unit, time) rows, column names
        that clash with generated term names, missing values with ``missing="raise"``.

    Warns
    -----
    DataWarning
        Dropped rows, exact duplicate rows (without ``time``), a single-level fit on
        repeated units (``unit``, or a column that looks like an id and repeats).

    Notes
    -----
    Constrained models are fitted on the substituted design (e.g. SQD is
    ``Z ~ (X - Y)^2``) and mapped back to b1..b9 with the implied covariance. SRRR,
    SRSQD and strong are fitted in the exact rank-one reparameterisation
    ``g (cos(phi) Y - sin(phi) X)^2`` by profiling the angle (nonlinear least squares
    single-level; profile ML for mixed fits, SEs conditional on the angle). SRSQD is
    the better of that form and the part b4 = b5 = 0 of its constraints (which R's RSA
    package can reach); weak is the best fit with b3 b5 >= 0.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from alliancestats import fit_rsa
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"x": rng.normal(size=200), "y": rng.normal(size=200)})
    >>> df["z"] = 1 - (df.x - df.y) ** 2 + rng.normal(scale=0.5, size=200)
    >>> res = fit_rsa(df, outcome="z", x="x", y="y", center=None)
    >>> bool(abs(res.surface.loc["a4", "estimate"] + 4) < 0.3)
    True
    >>> res.congruence_test().verdict
    True
    """
    return _fit_rsa(data, outcome=outcome, x=x, y=y, groups=groups, controls=controls,
                    by=by, model=model, random=random, center=center, scale=scale,
                    reml=reml, missing=missing, engine=engine, cov_type=cov_type,
                    unit=unit, time=time, decompose=decompose, ddf=ddf, residual=residual)


def _fit_rsa(data: Any, *, outcome: Hashable, x: Hashable, y: Hashable, groups: Any,
             controls: Any, by: Hashable | None, model: Any, random: Any, center: Any,
             scale: Any, reml: Any, missing: str, engine: Any, cov_type: Any, unit: Any,
             time: Hashable | None, decompose: str | None, ddf: Any = "satterthwaite",
             residual: Any = "iid", lag_info: dict[str, Any] | None = None,
             center_controls: Sequence[Hashable] = ()) -> RSAResults:
    spec = _make_spec(model, random, reml, engine, cov_type, groups, ddf, residual, time)
    design = prepare(data, outcome=outcome, x=x, y=y, groups=groups, controls=controls,
                     by=by, center=_center_value(center), scale=scale, missing=missing,
                     unit=unit, time=time, center_controls=center_controls,
                     decompose=decompose, unique_rows_checked=lag_info is not None)
    if spec.residual != "iid":
        _check_residual_units(design)
    if lag_info is not None:
        lag_info = {**lag_info, "rows_used": design.nobs}
    return _build(design, spec, lag_info)


def _check_residual_units(design: Design) -> None:
    """AR(1) residuals need one row per (innermost ``groups`` unit, time)."""
    groups, time = design.groups, design.time_values
    if groups is None or time is None:  # _make_spec requires both
        raise ValueError("A residual structure needs `groups` and `time`.")
    key = groups.assign(__time__=time)
    dup = key.duplicated()
    if dup.any():
        row = key[dup].iloc[0]
        raise ValueError(
            f"residual='ar1' runs over `time` within the innermost `groups` unit, but the "
            f"unit {tuple(row.iloc[:-1])} has two rows at {design.names['time']!r} = "
            f"{row.iloc[-1]:g}. Give the unit of the repeated measures as the innermost "
            f"grouping column (e.g. groups=['therapist', 'patient'])."
        )


@functools.cache
def _fit_rsa_signature() -> inspect.Signature:
    return inspect.signature(fit_rsa)


def fit_lagged_rsa(
    data: pd.DataFrame,
    *,
    outcome: Hashable,
    x: Hashable,
    y: Hashable,
    time: Hashable,
    unit: Hashable | Sequence[Hashable],
    groups: Hashable | Sequence[Hashable] | None,
    lag: int = 1,
    prior_outcome: bool = True,
    **fit_rsa_kwargs: Any,
) -> RSAResults:
    """Lagged RSA: outcome at t on the surface of x and y at t - lag.

    Lags are looked up by time with :func:`alliancestats.add_lags`: a missed session
    yields no lagged pair (gaps are never bridged). Rows without lagged x and y (first
    sessions, sessions after a gap; with ``prior_outcome`` also without the lagged
    outcome) are structurally excluded, counted in ``lag_info`` and not warned about.
    The lagged outcome enters as a covariate centred on its grand mean over the analysed
    rows (residualised change; Nestler, Humberg & Schönbrodt 2019).

    Parameters
    ----------
    data : DataFrame
        Long data, one row per unit and time point.
    outcome, x, y : column names
    time : column name
        Integer session number.
    unit : column name or list
        The repeated-measures unit (e.g. ``["therapist", "patient"]``); each unit may
        have one row per time point.
    groups : column name, list or None
        As in :func:`fit_rsa`.
    lag : int
    prior_outcome : bool
        Add the lagged outcome as a covariate.
    **fit_rsa_kwargs
        Passed on to :func:`fit_rsa` (``controls``, ``by``, ``model``, ``center``,
        ``reml``, ``ddf``, ``residual``, ...), with its defaults. With
        ``residual="ar1"`` the AR(1) runs over the ``time`` values of the analysed rows:
        a session dropped for lack of a lagged pair leaves a gap of 2 (nlme
        ``corAR1(form = ~ session | therapist/patient)`` on the lagged data).

    Returns
    -------
    RSAResults
        ``lag_info`` records the lag structure and row counts.

    Raises
    ------
    ValueError
        As :func:`fit_rsa`, and duplicated (unit, time) rows (e.g. patient ids that
        restart within each therapist: pass ``unit=["therapist", "patient"]``).

    Examples
    --------
    >>> from alliancestats import fit_lagged_rsa
    >>> from alliancestats.simulate import simulate_prn
    >>> df = simulate_prn(rng=1)
    >>> res = fit_lagged_rsa(df, outcome="wellbeing", x="alliance_therapist",
    ...                      y="alliance_patient", time="session",
    ...                      unit=["therapist", "patient"],
    ...                      groups=["therapist", "patient"])
    >>> res.lag_info["rows_used"] == res.nobs
    True
    """
    data = _plain_frame(data)
    units = as_column_list(unit, "unit")
    require_columns(data, {"outcome": outcome, "x": x, "y": y, "time": time, "unit": units})
    for key in ("x", "y", "outcome"):
        if key in fit_rsa_kwargs:
            raise TypeError(f"fit_lagged_rsa() got an unexpected keyword argument {key!r}.")
    lag_cols = [x, y, outcome] if prior_outcome else [x, y]
    lagged = lagged_values(
        data, lag_cols, by=units, time=time, lag=lag,
        duplicate_hint=" If ids restart within an outer unit (patient 1 of every "
                       "therapist), name the whole key, e.g. unit=['therapist', 'patient'].")
    xl, yl, zl = (f"{c}_lag{lag}" for c in (x, y, outcome))
    has_pair = pd.notna(lagged[xl]) & pd.notna(lagged[yl])
    keep = has_pair & pd.notna(lagged[zl]) if prior_outcome else has_pair
    if not keep.any():
        raise ValueError(f"No row has its {time!r} - {lag} values of x and y for the same "
                         f"unit; check `time`, `unit` and `lag`.")
    rows = np.flatnonzero(keep)
    analysed = pd.DataFrame({**{c: data[c].array.take(rows) for c in data.columns},
                             **{name: values[rows] for name, values in lagged.items()}})
    info = {"time": time, "unit": units, "lag": lag, "rows_in": len(data),
            "rows_without_lagged_xy": int((~has_pair).sum()),
            "rows_without_lagged_outcome": int((has_pair & ~keep).sum()),
            "prior_outcome": zl if prior_outcome else None}
    try:
        bound = _fit_rsa_signature().bind(
            analysed, outcome=outcome, x=xl, y=yl, groups=groups, unit=units,
            time=time, **fit_rsa_kwargs)
    except TypeError as err:
        raise TypeError(f"fit_lagged_rsa(): {err} (the keyword arguments are passed on to "
                        f"fit_rsa()).") from None
    bound.apply_defaults()
    kwargs = dict(bound.arguments)
    if prior_outcome:
        kwargs["controls"] = [*as_column_list(kwargs["controls"], "controls"), zl]
    return _fit_rsa(**kwargs, lag_info=info,
                    center_controls=[zl] if prior_outcome else [])


# -------------------------------------------------------------------------- comparison
#: Nested sets of R's ``RSA::compare`` (``R/compare.R``), largest model first.
COMPARE_SETS: dict[str, tuple[str, ...]] = {
    "directed": ("cubic", "full", "IA", "additive", "diff", "null"),
    "flat_sq": ("cubic", "full", "SRRR", "SRSQD", "SSQD", "SQD", "null"),
    "RR": ("cubic", "full", "SRRR", "SRR", "RR", "SQD", "null"),
    "SRR_SSQD": ("full", "SRR", "SSQD"),
    "onlyx": ("full", "onlyx2", "onlyx"),
    "onlyy": ("full", "onlyy2", "onlyy"),
    "cubic": ("cubic", "RRCA", "CA", "SQD", "null"),
    "cubic_level": ("cubic", "RRCL", "CL", "SQD", "null"),
    "abs": ("absunc", "absdiff"),
}

_DEFAULT_MODELS = ("full", "SRRR", "SRR", "RR", "SQD", "SSQD", "SRSQD", "IA", "additive",
                   "onlyx2", "onlyy2", "onlyx", "onlyy", "null")


def compare_rsa(
    data: pd.DataFrame,
    *,
    models: Sequence[str] | str = _DEFAULT_MODELS,
    **fit_rsa_kwargs: Any,
) -> pd.DataFrame:
    """Fit several members of the RSA model family and compare them (R's ``RSA::compare``
    and ``aictab``).

    Mixed models are compared by ML: with ``reml=True`` (the default of :func:`fit_rsa`)
    each model is refitted by ML, as likelihoods of REML fits with different fixed
    effects are not comparable; ``attrs["notes"]`` says so.

    Parameters
    ----------
    data : DataFrame
    models : sequence of str or "all" / "cubic"
        Members of the family (see :func:`fit_rsa`); "all" is every model, "cubic" the
        second-order default set plus the third-order models (R's ``cubic=TRUE``).
    **fit_rsa_kwargs
        Passed on to :func:`fit_rsa` (``outcome``, ``x``, ``y``, ``groups``,
        ``residual``, ...). ``ddf`` is accepted and validated, but the comparison rests on
        likelihoods alone (likelihood-ratio tests, information criteria), so it does not
        change the table.

    Returns
    -------
    DataFrame
        One row per model (ordered by k): ``k`` (free surface weights), ``n_params``
        (all estimated parameters, incl. intercept, controls and variances), ``logLik``,
        ``AIC``, ``AICc`` (K = n_params), ``BIC``, ``delta_AICc``, ``aic_weight``,
        ``aicc_weight``, ``r_squared`` (OLS), the likelihood-ratio test against the full
        model (``chi2``, ``df``, ``p_value``; the full cubic model when a third-order
        model is compared), ``method`` and ``converged``. ``attrs["sets"]`` holds R's
        nested sets (directed, flat_sq, RR, SRR_SSQD, onlyx, onlyy, cubic, cubic_level,
        abs) restricted to the fitted models, each with the LR test of every model
        against the next larger model of its set.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from alliancestats import compare_rsa
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"x": rng.normal(size=100), "y": rng.normal(size=100)})
    >>> df["z"] = -(df.x - df.y) ** 2 + rng.normal(size=100)
    >>> table = compare_rsa(df, outcome="z", x="x", y="y", models=("full", "SQD", "null"))
    >>> table["model"].tolist()
    ['null', 'SQD', 'full']
    """
    if isinstance(models, str):
        if models == "all":
            models = MODELS
        elif models == "cubic":
            models = (*_DEFAULT_MODELS, *CUBIC_MODELS)
        else:
            models = (models,)
    for m in models:
        family_model(m)
    kwargs = dict(fit_rsa_kwargs)
    check_ddf(kwargs.pop("ddf", "satterthwaite"))  # the comparison uses likelihoods only
    notes = []
    if kwargs.get("groups") is not None and kwargs.get("reml", True):
        notes.append("Mixed models refitted by ML (reml=False) for the comparison.")
    kwargs["reml"] = False
    kwargs.pop("model", None)
    is_cubic = any(m in CUBIC_MODELS for m in models)
    top = "cubic" if is_cubic else "full"
    fits: dict[str, RSAResults] = {}
    seen: set[str] = set()
    for m in dict.fromkeys([*models, top]):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fits[m] = fit_rsa(data, model=m, **kwargs)
        for w in caught:  # re-emit each distinct message once (e.g. dropped rows)
            if str(w.message) not in seen:
                seen.add(str(w.message))
                warnings.warn(w.message, stacklevel=2)
    full = fits[top]
    rows = []
    for m in models:
        res = fits[m]
        K, n = res.df_model, res.nobs
        chi2, ddf, p = _lrt(full, res)
        rows.append({
            "model": m, "k": family_model(m).k, "n_params": K, "logLik": res.llf,
            "AIC": res.aic, "AICc": res.aic + 2 * K * (K + 1) / (n - K - 1) if n > K + 1
            else np.nan, "BIC": res.bic, "r_squared": res.rsquared,
            "chi2": chi2, "df": ddf, "p_value": p,
            "method": res.method, "converged": res.converged,
        })
    table = pd.DataFrame(rows).sort_values(["n_params", "model"], kind="stable")
    for crit in ("AIC", "AICc"):
        delta = table[crit] - table[crit].min()
        w = np.exp(-delta / 2)
        table[f"{crit.lower()}_weight"] = w / w.sum()
        if crit == "AICc":
            table["delta_AICc"] = delta
    table = table.reset_index(drop=True)
    table.attrs["notes"] = notes
    table.attrs["sets"] = _compare_sets(fits)
    return table


def _lrt(big: RSAResults, small: RSAResults) -> tuple[float, float, float]:
    """Likelihood-ratio test of ``small`` against the larger ``big`` (NaN if not nested
    by parameter count)."""
    ddf = big.df_model - small.df_model
    if ddf <= 0:
        return np.nan, np.nan, np.nan
    chi2 = 2 * (big.llf - small.llf)
    return chi2, float(ddf), float(stats.chi2.sf(max(chi2, 0.0), ddf))


def _compare_sets(fits: Mapping[str, RSAResults]) -> dict[str, pd.DataFrame]:
    """R's ``compare()`` sets among the fitted models: each model against the next larger
    fitted model of the set (``lavTestLRT`` order), with R² and its change."""
    out: dict[str, pd.DataFrame] = {}
    for name, members in COMPARE_SETS.items():
        present = [m for m in members if m in fits]
        if len(present) < 2:
            continue
        rows = []
        for i, m in enumerate(present):
            res = fits[m]
            row: dict[str, Any] = {"model": m, "k": family_model(m).k, "logLik": res.llf,
                                   "r_squared": res.rsquared}
            if i:
                chi2, ddf, p = _lrt(fits[present[i - 1]], res)
                row.update({"versus": present[i - 1], "chi2": chi2, "df": ddf,
                            "p_value": p,
                            "delta_r_squared": fits[present[i - 1]].rsquared - res.rsquared})
            rows.append(row)
        out[name] = pd.DataFrame(rows)
    return out
