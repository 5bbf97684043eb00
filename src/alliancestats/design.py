"""The design layer: moderators, one dummy-coding rule, crossed designs, frames, random
effects specifications and their lme4 text.

Every model module builds its fixed-effect design here, from validated data, and the power
designs build theirs with the same array-level builder (:func:`crossed_columns`), so a
model's design exists once.

Dummy coding (one rule for every model): a numeric moderator enters as given; a
categorical one (a pandas Categorical, strings, booleans, ...) enters as treatment dummies
``column[level]`` against a reference level: the Categorical's first category present in
the analysed rows, otherwise the first of the sorted levels. Summaries print the reference.
"""

from __future__ import annotations

import difflib
import itertools
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._mixed import single_threaded_blas
from ._mixed._spec import nested_codes
from ._validation import (
    as_column_list,
    check_groups,
    check_nested,
    handle_missing,
    require_columns,
    require_numeric,
)

__all__ = ["RANDOM_CHOICES", "Moderator", "check_identifiable", "check_rank", "check_roles",
           "crossed_columns", "crossed_design", "effect_weights", "level_label",
           "moderator_grid", "moderator_terms", "prepare_frame", "random_formula",
           "random_spec", "rater_random_formula", "rater_random_spec", "term_name"]

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

#: ``random=`` choices shared by the truth-and-bias and growth models.
RANDOM_CHOICES = ("intercept", "slopes", "slopes_uncorrelated")


# -- moderators ---------------------------------------------------------------------------
@dataclass(frozen=True)
class Moderator:
    """One moderator column: numeric (enters as given) or categorical (treatment dummies)."""

    column: Hashable
    levels: tuple[Any, ...] = ()  # categorical levels, reference first; () for numeric

    @property
    def categorical(self) -> bool:
        return bool(self.levels)

    @property
    def names(self) -> list[str]:
        """Design column names: the column, or one ``col[level]`` per non-reference level."""
        if not self.categorical:
            return [str(self.column)]
        return [f"{self.column}[{lvl}]" for lvl in self.levels[1:]]

    @classmethod
    def from_data(cls, data: pd.DataFrame, column: Hashable) -> Moderator:
        series = data[column]
        if pd.api.types.is_numeric_dtype(series) and not isinstance(
            series.dtype, pd.CategoricalDtype
        ):
            return cls(column)
        if isinstance(series.dtype, pd.CategoricalDtype):
            present = set(series.dropna().unique())
            levels = tuple(c for c in series.cat.categories if c in present)
        else:
            levels = tuple(sorted(series.dropna().unique(), key=str))
        return cls(column, levels)

    def columns(self, data: pd.DataFrame) -> pd.DataFrame:
        """The moderator's design columns for ``data``."""
        if not self.categorical:
            return pd.DataFrame({self.names[0]: data[self.column].to_numpy(dtype=float)},
                                index=data.index)
        values = data[self.column]
        return pd.DataFrame({name: (values == lvl).to_numpy(dtype=float)
                             for name, lvl in zip(self.names, self.levels[1:], strict=True)},
                            index=data.index)

    def at(self, value: Any) -> dict[str, float]:
        """Design values at one moderator value (a number, or a level label)."""
        if not self.categorical:
            if isinstance(value, bool) or not isinstance(value, int | float | np.number):
                raise TypeError(
                    f"Moderator {self.column!r} is numeric; got {value!r}. Pass a number."
                )
            return {self.names[0]: float(value)}
        if value not in self.levels:
            raise ValueError(
                f"Moderator {self.column!r} has levels {list(self.levels)}; got {value!r}."
            )
        return {name: float(value == lvl)
                for name, lvl in zip(self.names, self.levels[1:], strict=True)}


def moderator_terms(moderators: Sequence[Moderator]) -> list[tuple[str, ...]]:
    """Every product of moderator design columns (one column per moderator at most), in
    R's order: the empty product, main effects, two-way products, ..."""
    terms: list[tuple[str, ...]] = []
    for size in range(len(moderators) + 1):
        for combo in itertools.combinations(moderators, size):
            terms += list(itertools.product(*(m.names for m in combo)))
    return terms


def term_name(base: str | None, combo: tuple[str, ...]) -> str:
    """R-style name of ``base`` crossed with moderator columns ``combo``."""
    parts = ([base] if base else []) + list(combo)
    return ":".join(parts) if parts else "Intercept"


def crossed_columns(
    bases: Mapping[str | None, FloatArray | None],
    mod_columns: Mapping[str, FloatArray],
    moderators: Sequence[Moderator],
    n: int,
) -> tuple[FloatArray, list[str], dict[str, tuple[str | None, tuple[str, ...]]]]:
    """Array-level design of ``bases`` (None = intercept) crossed with all moderator
    products: what both the model functions and the power designs build.

    Parameters
    ----------
    bases : mapping
        Base name (None for the intercept) -> its column (None for a column of ones).
    mod_columns : mapping
        Moderator design column name (:attr:`Moderator.names`) -> values.
    moderators : sequence of Moderator
    n : int
        Number of rows.

    Returns
    -------
    X : ndarray, shape (n, k)
        Columns in R's order per base: the base, its main-effect products, two-way, ...
    names : list of str
        R-style column names (``truth:condition``).
    structure : dict
        Column name -> (base, moderator combination), for :func:`effect_weights`.

    Examples
    --------
    >>> import numpy as np
    >>> cond = Moderator("condition")
    >>> X, names, _ = crossed_columns({None: None, "truth": np.array([1.0, 2.0])},
    ...                               {"condition": np.array([0.0, 1.0])}, [cond], 2)
    >>> names
    ['Intercept', 'condition', 'truth', 'truth:condition']
    >>> X[:, 3].tolist()
    [0.0, 2.0]
    """
    combos = moderator_terms(moderators)
    X = np.empty((n, len(bases) * len(combos)))
    names: list[str] = []
    structure: dict[str, tuple[str | None, tuple[str, ...]]] = {}
    j = 0
    for base, values in bases.items():
        base_values = np.ones(n) if values is None else np.asarray(values, dtype=float)
        for combo in combos:
            col = base_values.copy()
            for name in combo:
                col = col * np.asarray(mod_columns[name], dtype=float)
            X[:, j] = col
            name = term_name(base, combo)
            names.append(name)
            structure[name] = (base, combo)
            j += 1
    return X, names, structure


def crossed_design(
    bases: Mapping[str | None, pd.Series | None],
    mod_columns: pd.DataFrame,
    moderators: Sequence[Moderator],
    index: pd.Index,
) -> tuple[pd.DataFrame, dict[str, tuple[str | None, tuple[str, ...]]]]:
    """:func:`crossed_columns` for pandas inputs: the design as a DataFrame on ``index``.

    Examples
    --------
    >>> import pandas as pd
    >>> frame = pd.DataFrame({"truth": [1.0, 2.0], "condition": [0, 1]})
    >>> cond = Moderator.from_data(frame, "condition")
    >>> X, _ = crossed_design({None: None, "truth": frame["truth"]}, cond.columns(frame),
    ...                       [cond], frame.index)
    >>> list(X.columns)
    ['Intercept', 'condition', 'truth', 'truth:condition']
    """
    arrays = {b: (None if v is None else v.to_numpy(dtype=float)) for b, v in bases.items()}
    mods = {str(c): mod_columns[c].to_numpy(dtype=float) for c in mod_columns.columns}
    X, names, structure = crossed_columns(arrays, mods, moderators, len(index))
    if len(set(names)) < len(names):
        dup = sorted({n for n in names if names.count(n) > 1})
        raise ValueError(f"Design column name(s) {dup} arise twice: a column name clashes "
                         f"with a generated term; rename that column.")
    return pd.DataFrame(X, columns=names, index=index), structure


def moderator_grid(
    moderators: Sequence[Moderator], values: Mapping[str, Any]
) -> list[dict[Hashable, Any]]:
    """Combinations of moderator values (a value or a sequence each; absent ones at 0 or
    the reference level)."""
    by_name = {str(m.column): m for m in moderators}
    for key in values:
        if key not in by_name:
            close = difflib.get_close_matches(key, list(by_name), n=1, cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"{key!r} is not a moderator of this model (moderators: "
                f"{list(by_name)}).{hint}"
            )
    axes = []
    for m in moderators:
        value = values.get(str(m.column), m.levels[0] if m.categorical else 0.0)
        seq = list(value) if isinstance(value, Sequence | np.ndarray | pd.Index) and not \
            isinstance(value, str) else [value]
        if not seq:
            raise ValueError(f"Moderator {m.column!r}: empty sequence of values.")
        axes.append(seq)
    return [dict(zip([m.column for m in moderators], combo, strict=True))
            for combo in itertools.product(*axes)]


def effect_weights(
    structure: Mapping[str, tuple[str | None, tuple[str, ...]]],
    moderators: Sequence[Moderator],
    base: str | None,
    point: Mapping[Hashable, Any],
) -> dict[str, float]:
    """Weights over coefficients giving the effect of ``base`` at moderator values ``point``."""
    design: dict[str, float] = {}
    for m in moderators:
        design.update(m.at(point[m.column]))
    weights = {}
    for name, (b, combo) in structure.items():
        if b != base:
            continue
        weights[name] = float(np.prod([design[c] for c in combo])) if combo else 1.0
    return weights


# -- frames and identifiability -------------------------------------------------------------
def check_identifiable(frame: pd.DataFrame, groups: list[Hashable]) -> None:
    """Levels that cannot be separated from the next one (or from the residual)."""
    codes, _ = nested_codes(frame[groups])
    for outer, inner in itertools.pairwise(range(len(groups))):
        parent = np.zeros(int(codes[inner].max()) + 1, dtype=np.intp)
        parent[codes[inner]] = codes[outer]
        if (np.bincount(parent) <= 1).all():
            raise ValueError(
                f"`groups`: every {groups[outer]!r} unit has exactly one {groups[inner]!r} in "
                f"the analysed rows, so {groups[outer]!r} and {groups[inner]!r} random "
                f"effects cannot be separated. Pass groups={groups[inner]!r} (or "
                f"{groups[outer]!r}) alone."
            )
    n_inner = int(codes[-1].max()) + 1
    if n_inner >= len(frame):
        raise ValueError(
            f"`groups`: each {groups[-1]!r} unit has a single analysed row, so its random "
            f"intercept cannot be separated from the residual. A multilevel model needs "
            f"repeated rows per unit; drop {groups[-1]!r} from `groups`."
        )


def check_roles(roles: Mapping[str, Any]) -> None:
    seen: dict[Any, str] = {}
    for role, spec in roles.items():
        for col in as_column_list(spec, role):
            if col in seen:
                raise ValueError(
                    f"Column {col!r} is given both as `{seen[col]}` and as `{role}`; each "
                    f"column may play one role."
                )
            seen[col] = role


def check_rank(exog: pd.DataFrame) -> None:
    with single_threaded_blas():  # an SVD of n x p: BLAS threads only cost here
        rank = np.linalg.matrix_rank(exog.to_numpy(dtype=float))
    if rank < exog.shape[1]:
        _, r = np.linalg.qr(exog.to_numpy(dtype=float))
        tol = np.abs(np.diag(r)).max() * 1e-10
        aliased = [c for c, d in zip(exog.columns, np.diag(r), strict=True) if abs(d) < tol]
        raise ValueError(
            f"The fixed-effect design is rank deficient (rank {rank} of {exog.shape[1]}); "
            f"aliased term(s): {aliased or list(exog.columns)}. A moderator may be constant "
            f"or collinear with another in the analysed rows; remove it."
        )


def prepare_frame(
    data: pd.DataFrame,
    roles: Mapping[str, Any],
    numeric: Mapping[str, Any],
    groups: list[Hashable],
    missing: str,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Shared validation: columns exist, roles distinct, numeric roles numeric, missing rows
    dropped (counted), groups usable and identifiable. Never mutates ``data``."""
    # A shallow view without ``attrs``: pandas deep-copies ``attrs`` (e.g. a data set's
    # description) into every derived frame, which would dominate a small model's fit.
    data = data.copy(deep=False)
    data.attrs = {}
    require_columns(data, roles)
    check_roles(roles)
    require_numeric(data, numeric)
    used = list(dict.fromkeys(
        c for spec in roles.values() for c in as_column_list(spec, "columns")
    ))
    frame, dropped = handle_missing(data[used], used, missing, stacklevel=4)
    check_groups(frame, groups)
    for outer, inner in itertools.pairwise(groups):
        check_nested(frame, outer, inner)
    check_identifiable(frame, groups)
    return frame, dropped


# -- random-effects specifications -------------------------------------------------------------
def level_label(groups: Sequence[Hashable], depth: int) -> str:
    """lme4's grouping label of a nested level, e.g. ``therapist:patient``."""
    return ":".join(str(g) for g in groups[: depth + 1])


def random_formula(groups: Sequence[Hashable], slope: str | None, random: str) -> str:
    """lme4 notation of the random part."""
    parts = []
    for depth in range(len(groups)):
        label = level_label(groups, depth)
        if random == "intercept" or slope is None:
            parts.append(f"(1 | {label})")
        elif random == "slopes" or depth == 0:
            parts.append(f"(1 + {slope} | {label})")
        else:
            parts.append(f"(1 + {slope} || {label})")
    return " + ".join(parts)


def random_spec(
    groups: Sequence[Hashable], slope: str | None, random: str
) -> tuple[dict[str, list[str]], list[str]]:
    """``random`` and ``independent`` arguments of :func:`fit_mixed`."""
    terms = ["Intercept"] if random == "intercept" or slope is None else ["Intercept", slope]
    spec = {str(g): list(terms) for g in groups}
    independent = [str(g) for g in groups[1:]] if random == "slopes_uncorrelated" else []
    return spec, independent


def rater_random_spec(group_cols: Sequence[Hashable],
                       bases: dict[str | None, pd.Series | None]) -> dict[str, list[str]]:
    """``random`` for fit_mixed: outer levels an intercept, the innermost level the rater
    indicators then the rater x time columns (lme4's ``0 + rater + rater:time`` order)."""
    names = [str(k) for k in bases if k is not None]  # per rater: indicator, indicator x time
    terms = names[0::2] + names[1::2]
    spec = {str(g): ["Intercept"] for g in group_cols[:-1]}
    spec[str(group_cols[-1])] = terms
    return spec


def rater_random_formula(group_cols: Sequence[Hashable], rater: Hashable,
                          time: Hashable) -> str:
    """lme4 notation of the ``rater_slopes`` random part."""
    labels = [level_label(group_cols, d) for d in range(len(group_cols))]
    return " + ".join([*(f"(1 | {lab})" for lab in labels[:-1]),
                       f"(0 + {rater} + {rater}:{time} | {labels[-1]})"])
