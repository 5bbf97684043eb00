"""The random-effects specification shared by both engines: levels, terms, unit codes."""

from __future__ import annotations

import functools
from collections.abc import Collection, Hashable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import pandas as pd

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.intp]]

#: Name of the random intercept term (also the intercept column of a design).
INTERCEPT = "Intercept"


@dataclass(frozen=True)
class Level:
    """One grouping level with random terms.

    ``codes`` are the unit of each row (sorted by the labels of this and all outer
    levels, so inner codes are ordered by their parent), ``n_units`` their number;
    ``correlated`` False for lme4 ``||``. ``labels`` (the units, tuples of outer .. this
    level's labels for inner levels) are built on first use from ``parts``: per column
    of this and the outer levels, its name, the label codes of each unit's first row and
    its sorted labels.
    """

    name: str
    terms: tuple[str, ...]
    correlated: bool
    codes: IntArray
    n_units: int
    parts: tuple[tuple[Hashable, IntArray, Any], ...] = field(repr=False, compare=False)

    @functools.cached_property
    def labels(self) -> pd.Index:
        """The units, as an index (a MultiIndex for inner levels)."""
        levels = [pd.Index(np.asarray(sorted_labels)) for _, _, sorted_labels in self.parts]
        if len(self.parts) == 1:
            return levels[0].rename(self.name)
        return pd.MultiIndex(levels=levels, codes=[cast(Any, codes) for _, codes, _ in self.parts],
                             names=[name for name, _, _ in self.parts],
                             verify_integrity=False)


def nested_codes(groups: pd.DataFrame) -> tuple[list[IntArray], list[IntArray]]:
    """Unit codes of each nested level, outer -> inner, in one pass over the data.

    A level-``d`` unit is the combination of the labels of columns ``0..d`` (lme4's
    ``therapist:patient``). Codes follow the sorted labels, outer first, so inner codes are
    ordered by their parent (the order the engine needs). Also returns, per level, the
    first row of each unit (to label units without building an index per row).

    Examples
    --------
    >>> import pandas as pd
    >>> g = pd.DataFrame({"t": ["b", "a", "a", "b"], "p": [1, 1, 2, 1]})
    >>> codes, first = nested_codes(g)
    >>> [c.tolist() for c in codes]
    [[1, 0, 0, 1], [2, 0, 1, 2]]
    """
    codes, first, _ = _nested_codes(groups)
    return codes, first


def _nested_codes(groups: pd.DataFrame, columns: Sequence[Hashable] | None = None
                  ) -> tuple[list[IntArray], list[IntArray], list[tuple[IntArray, Any]]]:
    """:func:`nested_codes` and, per column, its label codes and sorted labels.
    ``columns``: the grouping columns among those of ``groups`` (default: all)."""
    names = list(groups.columns) if columns is None else list(columns)
    n = len(groups)
    key = np.zeros(n, dtype=np.int64)
    codes, first, labels = [], [], []
    for depth, name in enumerate(names):
        col, uniq = pd.factorize(groups.iloc[:, depth] if columns is None else
                                 groups[name], sort=True)
        if (col < 0).any():
            raise ValueError(f"`groups` column {name!r} has missing labels; "
                             f"drop those rows first.")
        labels.append((col, uniq))
        # mixed radix: sorted outer codes, then this level's sorted label codes
        key = key * max(len(uniq), 1) + col
        if depth == 0:
            # the labels' codes are already the units, sorted
            index = np.full(len(uniq), n, dtype=np.intp)
            np.minimum.at(index, col, np.arange(n))
            inverse = col
            key = inverse.astype(np.int64)
        else:
            units, index, inverse = np.unique(key, return_index=True, return_inverse=True)
            key = np.arange(len(units), dtype=np.int64)[inverse]
        codes.append(np.asarray(inverse, dtype=np.intp).ravel())
        first.append(np.asarray(index, dtype=np.intp))
    return codes, first, labels


def levels_from_groups(
    groups: pd.DataFrame,
    random: Mapping[str, Sequence[str]],
    independent: Collection[Hashable],
    nested: Any = None,
) -> list[Level]:
    """Levels with random terms, outer -> inner; inner units identified with all outer
    labels (lme4's ``therapist:patient``). ``nested``: ``_nested_codes(groups)`` when
    already computed (several fits of one grouping)."""
    return levels_from_codes(list(groups.columns), random, independent,
                             nested if nested is not None else _nested_codes(groups))


def levels_from_codes(
    columns: Sequence[Hashable],
    random: Mapping[str, Sequence[str]],
    independent: Collection[Hashable],
    nested: Any,
) -> list[Level]:
    """:func:`levels_from_groups` from the grouping's column names and its
    ``_nested_codes``."""
    names = [str(c) for c in columns]
    unknown = [lvl for lvl in random if str(lvl) not in names]
    if unknown:
        raise ValueError(
            f"`random` names level(s) {unknown} that are not columns of `groups` "
            f"({list(columns)})."
        )
    spec = {str(k): tuple(v) for k, v in random.items()}
    indep = {str(k) for k in independent}
    all_codes, firsts, labels = nested
    out = []
    for depth, name in enumerate(names):
        terms = spec.get(name, ())
        if not terms:
            continue
        rows = firsts[depth]
        # the units' labels from the per-column codes of their first rows (no
        # factorisation of label arrays again), built when asked for
        parts = tuple((names[d], labels[d][0][rows], labels[d][1]) for d in range(depth + 1))
        out.append(Level(name, terms, name not in indep or len(terms) == 1,
                         all_codes[depth], len(rows), parts))
    if not out:
        raise ValueError("`random` gives no random-effect terms; use a single-level model.")
    return out


def term_values(name: str, exog: pd.DataFrame, re_design: pd.DataFrame | None,
                X: FloatArray | None = None) -> FloatArray:
    """The column of a random term: from ``re_design``, else ``exog`` (taken from ``X``,
    ``exog`` as an array, when given), else the intercept."""
    if re_design is not None and name in re_design.columns:
        return re_design[name].to_numpy(dtype=float)
    if name in exog.columns:
        return exog[name].to_numpy(dtype=float) if X is None else \
            X[:, exog.columns.get_loc(name)]
    if name == INTERCEPT:
        return np.ones(len(exog))
    raise ValueError(
        f"`random` term {name!r} is neither a column of the fixed-effect design nor of "
        f"`re_design` (and is not {INTERCEPT!r})."
    )


def n_cov_params(levels: Sequence[Level]) -> int:
    """Covariance parameters including the residual variance (AIC/BIC degrees of freedom)."""
    return sum(len(lv.terms) * (len(lv.terms) + 1) // 2 if lv.correlated else len(lv.terms)
               for lv in levels) + 1
