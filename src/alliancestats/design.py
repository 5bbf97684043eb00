"""The design layer: moderators, one dummy-coding rule, crossed designs, frames, random
effects specifications and their lme4 text.

Every model module builds its fixed-effect design here, from validated data, and the power
designs build theirs with the same array-level builder (:func:`crossed_columns`), so a
model's design exists once.

Dummy coding (one rule for every model): a numeric moderator enters as given; a
categorical one (a pandas Categorical, strings, booleans, ...) enters as treatment dummies
``column[level]`` against a reference level: the level the caller names (``reference=``),
else the Categorical's first category present in the analysed rows, else the first of the
sorted levels. Summaries print the reference.

Column names are labels, never identities: designs are built from arrays by position and
role, and any label that would make two design terms (or two grouping levels) print alike
is refused with a message naming the columns, so a column called ``Intercept`` or
``a:b`` can never change the model. The lme4 text of a model names the variables actually
used (``I(session - 1)``), quoted with backticks where R needs it.
"""

from __future__ import annotations

import difflib
import itertools
import re
import warnings
from collections.abc import Callable, Hashable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._mixed import (
    SINGULAR_TOL,
    Grouping,
    single_threaded_blas,
    theta_diagonal_positions,
    theta_to_lambdas,
)
from ._validation import (
    as_column_list,
    check_groups,
    check_nested,
    handle_missing,
    require_columns,
    require_numeric,
    without_attrs,
)
from .exceptions import DataWarning

__all__ = [
    "RANDOM_CHOICES",
    "Moderator",
    "RandomStructure",
    "check_distinct_labels",
    "check_group_order",
    "check_identifiable",
    "check_occasions",
    "check_rank",
    "check_reference",
    "check_roles",
    "checked_crossed_columns",
    "crossed_columns",
    "crossed_design",
    "effect_weights",
    "level_label",
    "level_lambdas",
    "moderator_grid",
    "moderator_terms",
    "prepare_frame",
    "r_name",
    "r_shifted",
    "random_formula",
    "random_spec",
    "rater_random_formula",
    "rater_random_spec",
    "reduced_theta",
    "simplify_random",
    "structure_formula",
    "term_name",
    "warn_duplicate_rows",
]

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.intp]]

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
    def from_data(cls, data: pd.DataFrame, column: Hashable,
                  reference: Any = None) -> Moderator:
        """The moderator of ``column`` in ``data``; ``reference`` (a level label) puts that
        level first for a categorical moderator (None: the Categorical's first category
        present, else the first sorted level)."""
        series = data[column]
        if pd.api.types.is_numeric_dtype(series) and not isinstance(
            series.dtype, pd.CategoricalDtype
        ):
            if reference is not None:
                raise ValueError(
                    f"`reference` names a level for moderator {column!r}, which is numeric "
                    f"(it enters as given, with no reference level). Drop it from "
                    f"`reference`, or convert the column with .astype('category')."
                )
            return cls(column)
        if isinstance(series.dtype, pd.CategoricalDtype):
            present = set(series.dropna().unique())
            levels = tuple(c for c in series.cat.categories if c in present)
        else:
            levels = tuple(sorted(series.dropna().unique(), key=str))
        if reference is not None:
            if reference not in levels:
                close = difflib.get_close_matches(str(reference), [str(v) for v in levels],
                                                  n=1, cutoff=0.5)
                hint = f" Did you mean {close[0]!r}?" if close else ""
                raise ValueError(
                    f"`reference` level {reference!r} of moderator {column!r} is not among "
                    f"its levels in the analysed rows {list(levels)}.{hint}"
                )
            levels = (reference, *(lvl for lvl in levels if lvl != reference))
        return cls(column, levels)

    def observed(self, data: pd.DataFrame) -> list[Any]:
        """Values to tabulate or plot: the levels (reference first) of a categorical
        moderator; the sorted distinct values of a numeric one with at most 10 of them,
        else its minimum, quartiles and maximum."""
        if self.categorical:
            return list(self.levels)
        values = data[self.column].dropna()
        distinct = np.sort(values.unique())
        if len(distinct) <= 10:
            return [v.item() if isinstance(v, np.generic) else v for v in distinct]
        return [float(q) for q in values.quantile([0.0, 0.25, 0.5, 0.75, 1.0])]

    def reference_value(self, data: pd.DataFrame) -> Any:
        """Where effects are reported by default: the reference level of a categorical
        moderator; 0 for a numeric one when 0 lies within its observed range, else its
        smallest observed value (e.g. the first session, not a session 0 that never
        happened)."""
        if self.categorical:
            return self.levels[0]
        values = data[self.column].dropna()
        low, high = values.min(), values.max()
        if low <= 0 <= high:
            return 0
        return low.item() if isinstance(low, np.generic) else low

    def columns(self, data: pd.DataFrame) -> pd.DataFrame:
        """The moderator's design columns for ``data``."""
        if not self.categorical:
            return pd.DataFrame({self.names[0]: data[self.column].to_numpy(dtype=float)},
                                index=data.index)
        values = data[self.column]
        return pd.DataFrame({name: (values == lvl).to_numpy(dtype=float)
                             for name, lvl in zip(self.names, self.levels[1:], strict=True)},
                            index=data.index)

    def arrays(self, data: pd.DataFrame) -> dict[str, FloatArray]:
        """The moderator's design columns for ``data`` as arrays (name -> values), the
        input of :func:`crossed_columns`."""
        if not self.categorical:
            return {self.names[0]: data[self.column].to_numpy(dtype=float)}
        values = data[self.column].to_numpy()
        return {name: (values == lvl).astype(float)
                for name, lvl in zip(self.names, self.levels[1:], strict=True)}

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


def check_reference(reference: Any, moderators: Sequence[Hashable]) -> dict[Hashable, Any]:
    """Validate ``reference=`` (moderator column -> reference level); returns a dict.

    Examples
    --------
    >>> check_reference({"Group": "control"}, ["Group", "session"])
    {'Group': 'control'}
    """
    if reference is None:
        return {}
    if not isinstance(reference, Mapping):
        raise TypeError(
            f"`reference` must be a dict of moderator column -> reference level, e.g. "
            f"reference={{'Group': 'control'}}; got {type(reference).__name__}."
        )
    for key in reference:
        if key not in moderators:
            close = difflib.get_close_matches(str(key), [str(m) for m in moderators], n=1,
                                              cutoff=0.5)
            hint = f" Did you mean {close[0]!r}?" if close else ""
            raise ValueError(
                f"`reference` names {key!r}, which is not a moderator of this model "
                f"(moderators: {list(moderators)}).{hint}"
            )
    return dict(reference)


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


def checked_crossed_columns(
    bases: Mapping[str | None, FloatArray | None],
    mod_columns: Mapping[str, FloatArray],
    moderators: Sequence[Moderator],
    n: int,
) -> tuple[FloatArray, list[str], dict[str, tuple[str | None, tuple[str, ...]]]]:
    """:func:`crossed_columns` after refusing names that would make two terms print
    alike (what :func:`crossed_design` checks), for model functions that build their
    design from arrays.

    Examples
    --------
    >>> import numpy as np
    >>> X, names, _ = checked_crossed_columns({None: None, "truth": np.array([1.0, 2.0])},
    ...                                       {}, [], 2)
    >>> names
    ['Intercept', 'truth']
    """
    names = [term_name(b, combo) for b in bases for combo in moderator_terms(moderators)]
    _refuse_clashes(names, bases, moderators)
    return crossed_columns(bases, mod_columns, moderators, n)


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
    names = [term_name(b, combo) for b in bases for combo in moderator_terms(moderators)]
    _refuse_clashes(names, bases, moderators)
    arrays = {b: (None if v is None else v.to_numpy(dtype=float)) for b, v in bases.items()}
    mods = {str(c): mod_columns[c].to_numpy(dtype=float) for c in mod_columns.columns}
    X, names, structure = crossed_columns(arrays, mods, moderators, len(index))
    return pd.DataFrame(X, columns=names, index=index), structure


def _describe_term(base: str | None, combo: tuple[str, ...]) -> str:
    if base is None and not combo:
        return "the intercept"
    parts = ([f"column {base!r}"] if base is not None else []) + [
        f"moderator column {c!r}" for c in combo]
    return " x ".join(parts)


def _refuse_clashes(names: Sequence[str], bases: Mapping[str | None, Any],
                    moderators: Sequence[Moderator]) -> None:
    """Refuse designs in which two different terms print alike (e.g. a column called
    ``Intercept``, ``a:b`` or ``g[level]``): a name must never stand for two terms."""
    mod_names = [n for m in moderators for n in m.names]
    if len(set(mod_names)) < len(mod_names):
        name = next(n for n in mod_names if mod_names.count(n) > 1)
        owners = [repr(m.column) for m in moderators if name in m.names]
        raise ValueError(
            f"Moderators {' and '.join(owners)} would both give a design column called "
            f"{name!r} (a numeric column named like a categorical's 'column[level]' "
            f"dummy). Rename the column, e.g. data.rename(columns={{{name!r}: "
            f"{name.replace('[', '_').replace(']', '')!r}}})."
        )
    if len(set(names)) == len(names):
        return
    sources: dict[str, list[str]] = {}
    combos = moderator_terms(moderators)
    for base in bases:
        for combo in combos:
            sources.setdefault(term_name(base, combo), []).append(_describe_term(base, combo))
    name = next(n for n in names if names.count(n) > 1)
    raise ValueError(
        f"Two terms of the model would both be called {name!r} ({' and '.join(sources[name])})"
        f": a column name clashes with a name the model generates (the intercept, "
        f"'a:b' products, 'column[level]' dummies). Rename the column, e.g. "
        f"data.rename(columns={{{name!r}: {name + '_'!r}}})."
    )


def moderator_grid(
    moderators: Sequence[Moderator], values: Mapping[str, Any],
    defaults: Mapping[Hashable, Any] | None = None,
) -> list[dict[Hashable, Any]]:
    """Combinations of moderator values (a value or a sequence each; absent ones at
    ``defaults[column]``, else at 0 or the reference level)."""
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
        fallback = (defaults or {}).get(m.column, m.levels[0] if m.categorical else 0.0)
        value = values.get(str(m.column), fallback)
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
def check_identifiable(frame: pd.DataFrame, groups: list[Hashable],
                       n_units: Sequence[int] | None = None) -> None:
    """Levels that cannot be separated from the next one (or from the residual).

    ``n_units``: the number of units of each level, outer first (a level-d unit is the
    combination of the labels of columns 0..d), when the caller has them already
    (:func:`prepare_frame`, from its :class:`~alliancestats._mixed.Grouping`)."""
    if n_units is None:
        n_units = [len(first) for first in Grouping(frame, groups).nested[1]]
    for outer, inner in itertools.pairwise(range(len(groups))):
        # every outer unit has at least one inner unit: all have exactly one when the
        # counts agree
        if n_units[inner] == n_units[outer]:
            raise ValueError(
                f"`groups`: every {groups[outer]!r} unit has exactly one {groups[inner]!r} in "
                f"the analysed rows, so {groups[outer]!r} and {groups[inner]!r} random "
                f"effects cannot be separated. Pass groups={groups[inner]!r} (or "
                f"{groups[outer]!r}) alone."
            )
    if n_units[-1] >= len(frame):
        raise ValueError(
            f"`groups`: each {groups[-1]!r} unit has a single analysed row, so its random "
            f"intercept cannot be separated from the residual. A multilevel model needs "
            f"repeated rows per unit; drop {groups[-1]!r} from `groups`."
        )


def _column_codes(frame: pd.DataFrame,
                  columns: Sequence[Hashable]) -> dict[Hashable, tuple[Any, Any]]:
    """``pd.factorize`` codes and labels of each column, for group checks called without
    them (:func:`prepare_frame` passes its grouping's codes)."""
    return {col: pd.factorize(frame[col]) for col in columns}


#: Pairs of roles one column may play at once: a session column may be the occasion that
#: identifies rows (``time``) and a moderator of the forces.
SHARED_ROLES = frozenset({("time", "moderators"), ("moderators", "time")})


def check_roles(roles: Mapping[str, Any]) -> None:
    """Each column plays one role (except the pairs in :data:`SHARED_ROLES`)."""
    seen: dict[Any, str] = {}
    for role, spec in roles.items():
        for col in as_column_list(spec, role):
            if col in seen and (seen[col], role) in SHARED_ROLES:
                continue
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


def check_distinct_labels(roles: Mapping[str, Any]) -> None:
    """Distinct columns must print differently (``1`` and ``"1"``, ``1.5`` and ``"1.5"``):
    the model's terms and levels are labelled by ``str(column)``.

    Examples
    --------
    >>> check_distinct_labels({"truth": 1, "moderators": ["condition"]})
    """
    seen: dict[str, tuple[Any, str]] = {}
    for role, spec in roles.items():
        for col in as_column_list(spec, role):
            label = str(col)
            if label in seen and seen[label][0] is not col and seen[label][0] != col:
                other, other_role = seen[label]
                raise ValueError(
                    f"Columns {other!r} (`{other_role}`) and {col!r} (`{role}`) are different "
                    f"columns with the same printed name {label!r}, so the model's terms "
                    f"could not be told apart. Rename one of them."
                )
            seen.setdefault(label, (col, role))


def _restarts_within(frame: pd.DataFrame, outer: Hashable, inner: Hashable) -> bool:
    """Whether ``inner`` labels restart within each ``outer`` unit (each unit holds the
    first few of the sorted inner labels: patients 1, 2, 3 of every therapist)."""
    ordered = sorted(frame[inner].unique().tolist(), key=lambda v: (str(type(v)), v))
    rank = {v: i for i, v in enumerate(ordered)}
    sets = frame.groupby(outer, observed=True)[inner].agg(  # type: ignore[call-overload]
        lambda s: sorted(rank[v] for v in s.unique()))
    return all(ranks == list(range(len(ranks))) for ranks in sets)


def _distinct_pairs(a: tuple[Any, Any], b: tuple[Any, Any]) -> tuple[IntArray, IntArray]:
    """Per label of ``a`` the number of distinct ``b`` labels with it, and per label of
    ``b`` the number of distinct ``a`` labels (as ``groupby(...).nunique()``), from the
    ``pd.factorize`` codes and labels of both; rows with a missing label are not
    counted."""
    ca, ua = a
    cb, ub = b
    keep = (ca >= 0) & (cb >= 0)
    width = max(len(ub), 1)
    pairs = np.unique(ca[keep].astype(np.int64) * width + cb[keep])
    return (np.bincount(pairs // width, minlength=len(ua)),
            np.bincount(pairs % width, minlength=len(ub)))


def check_group_order(frame: pd.DataFrame, groups: Sequence[Hashable],
                      codes: Mapping[Hashable, tuple[Any, Any]] | None = None) -> None:
    """Refuse ``groups`` given inner level first (``["patient", "therapist"]``).

    Two patterns give the order away: the declared inner column is constant within each
    declared outer unit while its units span several outer ones (globally unique ids); or
    the declared outer labels restart within the declared inner units while the inner ones
    do not restart within the outer (ids numbered 1, 2, ... within each therapist).
    """
    codes = codes or _column_codes(frame, groups)
    for outer, inner in itertools.pairwise(groups):
        inner_per_outer, outer_per_inner = _distinct_pairs(codes[outer], codes[inner])
        strictly_reversed = (inner_per_outer <= 1).all() and (outer_per_inner > 1).any()
        restart_reversed = (outer_per_inner > 1).any() and (inner_per_outer > 1).any() and \
            _restarts_within(frame, inner, outer) and not _restarts_within(frame, outer, inner)
        if strictly_reversed or restart_reversed:
            order = list(groups)
            i = order.index(outer)
            order[i], order[i + 1] = inner, outer
            raise ValueError(
                f"`groups`: {inner!r} is not nested in {outer!r} — {outer!r} units sit "
                f"inside {inner!r} units, not the other way round. List the levels outer "
                f"first: groups={order!r}."
            )


def check_occasions(frame: pd.DataFrame, groups: Sequence[Hashable], time: Hashable,
                    extra: Sequence[Hashable] = ()) -> None:
    """Raise if a unit has two rows at one occasion (``time``; ``extra`` e.g. the rater),
    pointing to ids that restart within an outer unit when there is a single level."""
    keys = [*groups, *extra, time]
    dup = frame.duplicated(subset=keys, keep=False)
    if not dup.any():
        return
    example = {str(k): v for k, v in frame.loc[dup, keys].iloc[0].items()}
    hint = ""
    if len(groups) == 1:
        hint = (f" If {groups[0]!r} ids restart within an outer unit (patients numbered "
                f"1, 2, ... within each therapist), pass the outer level too: "
                f"groups=[<therapist column>, {groups[0]!r}].")
    raise ValueError(
        f"`time`: {int(dup.sum())} rows share the same {', '.join(map(repr, keys))} "
        f"(e.g. {example}); each unit may have one row per {time!r}.{hint} Otherwise "
        f"aggregate or de-duplicate the rows first."
    )


def _may_repeat(data: pd.DataFrame, probe: Sequence[Hashable]) -> bool:
    """Whether two rows of ``data`` may be equal: False only when no two rows agree on
    the numeric ``probe`` columns (then no two whole rows can be equal). Missing values
    and signed zeros compare equal, as in :meth:`DataFrame.duplicated`."""
    if not probe:
        return True
    try:
        values = np.column_stack([data[c].to_numpy(dtype=float, na_value=np.nan)
                                  for c in probe])
    except (TypeError, ValueError):
        return True
    # equal rows are neighbours once sorted (NaNs sort last, equal to each other)
    ordered = values[np.lexsort(values.T[::-1])]
    nan = np.isnan(ordered)
    same = (ordered[1:] == ordered[:-1]) | (nan[1:] & nan[:-1])
    return bool(same.all(axis=1).any())


def warn_duplicate_rows(data: pd.DataFrame, stacklevel: int = 3,
                        probe: Sequence[Hashable] = ()) -> None:
    """A :class:`~alliancestats.exceptions.DataWarning` when whole rows repeat (e.g. a
    data set appended to itself), for models whose roles cannot identify occasions.

    ``probe``: numeric columns checked first (e.g. the ratings): when no two rows share
    their values, no whole rows repeat and the full comparison of every column is
    skipped.

    Examples
    --------
    >>> import pandas as pd
    >>> warn_duplicate_rows(pd.DataFrame({"x": [1.0, 2.0], "g": ["a", "a"]}), probe=["x"])
    """
    if not _may_repeat(data, probe):
        return
    n = int(data.duplicated().sum())
    if n:
        warnings.warn(
            f"{n} of {len(data)} rows of `data` are exact copies of other rows; they are "
            f"fitted as separate observations. Remove them (data.drop_duplicates()) if "
            f"they are not, and pass `time` to check one row per unit and occasion.",
            DataWarning, stacklevel=stacklevel)


def prepare_frame(
    data: pd.DataFrame,
    roles: Mapping[str, Any],
    numeric: Mapping[str, Any],
    groups: list[Hashable],
    missing: str,
) -> tuple[pd.DataFrame, dict[str, int], Grouping]:
    """Shared validation: columns exist, roles distinct, numeric roles numeric, missing rows
    dropped (counted), groups usable and identifiable. Never mutates ``data``.

    Returns the analysed rows of the used columns, the missing values per column among
    the dropped rows, and the :class:`~alliancestats._mixed.Grouping` of ``groups`` in
    those rows: the labels are coded once, for these checks and for the fit (pass it to
    ``fit_mixed`` as ``groups``)."""
    data = without_attrs(data)
    require_columns(data, roles)
    check_roles(roles)
    check_distinct_labels(roles)
    require_numeric(data, numeric)
    used = list(dict.fromkeys(
        c for spec in roles.values() for c in as_column_list(spec, "columns")
    ))
    frame, dropped = handle_missing(data, used, missing, select=True)
    grouping = Grouping(frame, groups)
    codes = grouping.column_codes
    check_groups(frame, groups, codes=codes)
    check_group_order(frame, groups, codes)
    for outer, inner in itertools.pairwise(groups):
        check_nested(frame, outer, inner, codes)
    check_identifiable(frame, groups, n_units=[len(first) for first in grouping.nested[1]])
    return frame, dropped, grouping


# -- R text ---------------------------------------------------------------------------------
_R_RESERVED = frozenset({"if", "else", "repeat", "while", "function", "for", "next",
                         "break", "TRUE", "FALSE", "NULL", "Inf", "NaN", "NA",
                         "NA_integer_", "NA_real_", "NA_character_", "in"})
_R_SYNTACTIC = re.compile(r"^((\.[A-Za-z_.])|[A-Za-z])[A-Za-z0-9_.]*$|^\.$")


def r_name(column: Hashable) -> str:
    """A column as R writes it in a formula: backtick-quoted unless syntactic.

    Examples
    --------
    >>> r_name("session"), r_name("WAI T"), r_name(3)
    ('session', '`WAI T`', '`3`')
    """
    text = str(column)
    if _R_SYNTACTIC.match(text) and text not in _R_RESERVED:
        return text
    return "`" + text.replace("\\", "\\\\").replace("`", "\\`") + "`"


def r_shifted(column: Hashable, shift: float | None) -> str:
    """``I(column - shift)`` in R (``column`` when there is no shift), the shift printed so
    that pasting the formula reproduces the fit (to 10 significant digits).

    Examples
    --------
    >>> r_shifted("session", 1.0), r_shifted("x", -2.5), r_shifted("x", None)
    ('I(session - 1)', 'I(x + 2.5)', 'x')
    """
    if shift is None or shift == 0:
        return r_name(column)
    sign = "-" if shift > 0 else "+"
    return f"I({r_name(column)} {sign} {abs(shift):.10g})"


# -- random-effects specifications -------------------------------------------------------------
def level_label(groups: Sequence[Hashable], depth: int) -> str:
    """lme4's grouping label of a nested level, e.g. ``therapist:patient``."""
    return ":".join(r_name(g) for g in groups[: depth + 1])


@dataclass(frozen=True)
class RandomStructure:
    """Random terms per grouping level: ``levels[i]`` = (terms, correlated) for
    ``groups[i]``; terms are design names (``"Intercept"`` for the random intercept)."""

    levels: tuple[tuple[tuple[str, ...], bool], ...]

    @classmethod
    def from_choice(cls, n_levels: int, slope: str, random: str) -> RandomStructure:
        """The structure of a ``random=`` choice of :data:`RANDOM_CHOICES`."""
        terms = ("Intercept",) if random == "intercept" else ("Intercept", slope)
        return cls(tuple((terms, random != "slopes_uncorrelated" or depth == 0)
                         for depth in range(n_levels)))

    def spec(self, groups: Sequence[Hashable]) -> tuple[dict[str, list[str]], list[str]]:
        """``random`` and ``independent`` arguments of :func:`fit_mixed`."""
        spec = {str(g): list(terms) for g, (terms, _) in zip(groups, self.levels, strict=True)
                if terms}
        independent = [str(g) for g, (terms, corr) in zip(groups, self.levels, strict=True)
                       if terms and not corr]
        return spec, independent

    def without(self, depth: int, term: str | None) -> RandomStructure:
        """The structure with ``term`` dropped at level ``depth`` (None: the level's terms
        made independent instead)."""
        levels = list(self.levels)
        terms, corr = levels[depth]
        levels[depth] = (terms, False) if term is None else \
            (tuple(t for t in terms if t != term), corr)
        return RandomStructure(tuple(levels))


def structure_formula(groups: Sequence[Hashable], structure: RandomStructure,
                      labels: Mapping[str, str]) -> str:
    """lme4 text of a :class:`RandomStructure`; ``labels`` maps design names to R text.

    Examples
    --------
    >>> s = RandomStructure(((("Intercept", "x"), True), (("Intercept",), True)))
    >>> structure_formula(["g", "h"], s, {"x": "I(x - 1)"})
    '(1 + I(x - 1) | g) + (1 | g:h)'
    """
    parts = []
    for depth, (terms, corr) in enumerate(structure.levels):
        if not terms:
            continue
        shown = [labels.get(t, t) for t in terms if t != "Intercept"]
        lhs = " + ".join((["1"] if "Intercept" in terms else ["0"]) + shown)
        bar = "|" if corr or len(terms) == 1 else "||"
        parts.append(f"({lhs} {bar} {level_label(groups, depth)})")
    return " + ".join(parts)


def _cholesky_diagonal(cov: FloatArray) -> FloatArray:
    """Diagonal of the Cholesky factor of a PSD matrix, 0 where it degenerates."""
    k = cov.shape[0]
    L = np.zeros_like(cov)
    for j in range(k):
        d = cov[j, j] - L[j, :j] @ L[j, :j]
        L[j, j] = np.sqrt(d) if d > 0 else 0.0
        for i in range(j + 1, k):
            L[i, j] = (cov[i, j] - L[i, :j] @ L[j, :j]) / L[j, j] if L[j, j] > 0 else 0.0
    return np.diag(L).copy()


def simplify_random(
    structure: RandomStructure,
    groups: Sequence[Hashable],
    random_cov: Mapping[str, pd.DataFrame],
    residual_variance: float,
    tol: float,
    keep: Sequence[str] = ("Intercept",),
) -> tuple[RandomStructure, dict[str, str]] | None:
    """One step down from a singular fit, or None when no step applies.

    A level is singular when a diagonal element of its relative Cholesky factor is below
    ``tol`` (lme4's ``isSingular``). Per singular level, outer first: a term not in
    ``keep`` whose variance is ~0 relative to the residual (relative SD below
    ``10 * tol``) is dropped, since the fit without it is the same fit; otherwise, when
    all its variances are positive, a correlation of +/-1 is removed (the level's terms
    made independent, lme4 ``||``). A level whose kept term (the intercept) has variance
    0 is left as it is: dropping a slope with positive variance would change the model
    and not cure that. Returns the new structure and a record: level, term, action,
    reason.
    """
    scale = max(residual_variance, np.finfo(float).tiny)
    for depth, (terms, corr) in enumerate(structure.levels):
        if len(terms) < 2:
            continue
        cov = random_cov[str(groups[depth])].loc[list(terms), list(terms)].to_numpy(float)
        rel = cov / scale
        if _cholesky_diagonal(rel).min() >= tol:
            continue
        sds = np.sqrt(np.clip(np.diag(rel), 0.0, None))
        level = str(groups[depth])
        droppable = [j for j, t in enumerate(terms) if t not in keep and sds[j] < 10 * tol]
        if droppable:
            term = terms[droppable[0]]
            return structure.without(depth, term), {
                "level": level, "term": term, "action": "dropped",
                "reason": "its variance was estimated at 0 (boundary fit)"}
        if corr and sds.min() >= 10 * tol:
            r = cov[0, 1] / np.sqrt(cov[0, 0] * cov[1, 1])
            return structure.without(depth, None), {
                "level": level, "term": " and ".join(terms), "action": "correlation dropped",
                "reason": f"the correlation was estimated at {r:+.2f} (boundary fit)"}
    return None



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
                       bases: Mapping[str | None, Any]) -> dict[str, list[str]]:
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


def _theta_layout(structure: RandomStructure) -> tuple[tuple[int, ...], tuple[bool, ...]]:
    """The engine's θ layout of ``structure``: terms per level and whether a level's
    terms are independent (levels without terms have no θ)."""
    levels = [(len(terms), not corr) for terms, corr in structure.levels if terms]
    return tuple(k for k, _ in levels), tuple(d for _, d in levels)


def level_lambdas(structure: RandomStructure, theta: FloatArray) -> list[FloatArray]:
    """The relative covariance factor Λ of each level of ``structure`` from its θ (lme4's
    order: per level outer first, the lower triangle column-major, or the relative SDs
    of independent terms)."""
    return theta_to_lambdas(theta, *_theta_layout(structure))


def reduced_theta(old: RandomStructure, new: RandomStructure, theta: FloatArray
                   ) -> FloatArray:
    """θ of ``new`` (``old`` with a term dropped or a level's terms made independent)
    holding the random-effect covariances of a fit of ``old`` at ``theta`` (those of a
    dropped term removed). A kept leading block of a Cholesky factor is taken as it is,
    so a term dropped at exactly zero variance leaves the same covariance matrices."""
    parts = []
    for lam, (terms, _), (kept, corr) in zip(level_lambdas(old, theta), old.levels,
                                              new.levels, strict=True):
        if not kept:
            continue
        idx = [terms.index(t) for t in kept]
        k = len(kept)
        if corr and k > 1:
            # a leading block: the Cholesky factor's own block
            sub: Any = lam[:k, :k] if idx == list(range(k)) else \
                np.linalg.cholesky((lam @ lam.T)[np.ix_(idx, idx)])
            cols, rows = np.triu_indices(k)  # the lower triangle column-major
            parts.append(sub[rows, cols])
        else:  # relative SDs (sign-free: Λ's diagonal is non-negative)
            parts.append(np.sqrt(np.sum(lam[idx] ** 2, axis=1)))
    return np.concatenate(parts) if parts else np.empty(0)


# -- simplifying a singular random part (random="auto") --------------------------------------
#: A term dropped at zero variance leaves the same fit: the simpler model is evaluated at
#: the singular fit's covariance parameters, and kept when its deviance is within this of
#: the singular fit's (the simpler model's optimum lies between the two), else refitted.
SAME_FIT_TOL = 1e-9
#: ... unless another variance parameter (a diagonal element of Λ) is this close to its
#: bound without being on it: there the singular fit's optimiser is least accurate (a
#: flat ridge), and a refit of the simpler model ended elsewhere by up to 2.4e-4 in θ
#: (and once on the other side of the singularity threshold) in 3 of 690 steps.
NEAR_BOUNDARY = (1e-8, 1e-3)


@dataclass(frozen=True)
class StructureFit:
    """One fit of a random structure, as :func:`fit_simplifying` reads it.

    ``record`` is the caller's own (e.g. a MixedFit and its warnings); ``theta`` and
    ``psi`` are the covariance parameters (``np.r_[theta, psi]`` is what a fit is
    evaluated at); ``covariances`` gives, when asked, the random-effect covariance
    matrices by level name (labelled by term) and the residual variance.
    """

    record: Any
    converged: bool
    singular: bool
    llf: float
    theta: FloatArray
    psi: FloatArray
    covariances: Callable[[], tuple[Mapping[str, pd.DataFrame], float]]


#: ``fit(structure, at, singular)``: the REML/ML fit of ``structure`` (``at`` None), or
#: the model evaluated at covariance parameters ``at`` reduced from the ``singular`` fit.
FitStructure = Callable[[RandomStructure, "FloatArray | None", "StructureFit | None"],
                        StructureFit]


def fit_simplifying(structure: RandomStructure, groups: Sequence[Hashable],
                    fit: FitStructure, evaluate: bool = True
                    ) -> tuple[StructureFit, RandomStructure, list[dict[str, str]]]:
    """Fit ``structure``, simplifying it while the fit is singular (``random="auto"``).

    The one rule of :func:`~alliancestats.fit_truth_bias` and the power designs: while
    the fit is singular, :func:`simplify_random` takes one step down. A term dropped at
    variance 0 leaves the same fit, so the simpler model is evaluated at the singular
    fit's other covariance parameters (:func:`reduced_theta`), unless the guards
    :data:`NEAR_BOUNDARY` and :data:`SAME_FIT_TOL` call for a refit; after a removed
    correlation it is refitted.

    Parameters
    ----------
    structure : RandomStructure
        The structure fitted first.
    groups : sequence
        Level names, outer to inner (the keys of the covariances of a fit).
    fit : callable
        ``fit(structure, at, singular)`` (:data:`FitStructure`).
    evaluate : bool
        Whether ``fit`` can evaluate a model at given covariance parameters (the fast
        engine); otherwise every simpler structure is refitted.

    Returns
    -------
    fit : StructureFit
        The kept fit.
    structure : RandomStructure
        Its structure.
    steps : list of dict
        The records of :func:`simplify_random`, one per step.
    """
    steps: list[dict[str, str]] = []
    current = fit(structure, None, None)
    while current.singular:
        random_cov, residual_variance = current.covariances()
        step = simplify_random(structure, groups, random_cov, residual_variance,
                               SINGULAR_TOL)
        if step is None:
            break
        simpler, record = step
        current = _simpler_fit(structure, simpler, record["action"], current, fit, evaluate)
        structure = simpler
        steps.append(record)
    return current, structure, steps


def _simpler_fit(old: RandomStructure, new: RandomStructure, action: str,
                 singular: StructureFit, fit: FitStructure, evaluate: bool) -> StructureFit:
    """The fit of ``new``, one step simpler than ``old`` (fitted as ``singular``).

    A dropped term's variance was estimated at 0: the simpler model's profiled deviance is
    the full one restricted to that term's parameters at 0, so its minimum lies between
    the full minimum and the full deviance at the singular fit's other parameters. When
    those two agree (to :data:`SAME_FIT_TOL`) the simpler model is evaluated there instead
    of being refitted, unless a variance parameter is near its bound
    (:data:`NEAR_BOUNDARY`) or the model cannot be evaluated (``evaluate``). A removed
    correlation is refitted from the engine's own start: a warm start from the singular
    fit's variances ended at another optimum in 2 of 694 such steps (REML
    log-likelihood lower by up to 0.0015)."""
    if action == "dropped" and evaluate and singular.converged:
        theta = reduced_theta(old, new, singular.theta)
        bounded = theta[_bounded_positions(new)]
        low, high = NEAR_BOUNDARY
        if not np.any((bounded > low) & (bounded < high)):
            same = fit(new, np.r_[theta, singular.psi], singular)
            if -2.0 * same.llf <= -2.0 * singular.llf + SAME_FIT_TOL:
                return same
    return fit(new, None, None)


def _bounded_positions(structure: RandomStructure) -> list[int]:
    """Positions in θ of the diagonal elements of Λ (bounded below by 0)."""
    return theta_diagonal_positions(*_theta_layout(structure))
