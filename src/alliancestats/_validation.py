"""Input validation shared by every public function.

Each helper raises ``TypeError`` (wrong kind of object) or ``ValueError`` (wrong value)
with a message that names the argument, the column and what to do about it. Nothing here
mutates its input.
"""

from __future__ import annotations

import difflib
import inspect
import numbers
import os
import re
import warnings
from collections.abc import Hashable, Iterable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from .exceptions import DataWarning

__all__ = [
    "as_column_list",
    "as_generator",
    "check_choice",
    "check_groups",
    "check_known_keys",
    "check_nested",
    "check_unique_rows",
    "check_variance",
    "close_matches",
    "handle_missing",
    "numbered_stubs",
    "progress_bar",
    "require_columns",
    "require_frame",
    "require_numeric",
    "take_columns",
    "user_stacklevel",
    "wide_layout_hint",
    "without_attrs",
]

# Column labels are typed loosely: pandas accepts any hashable label, its stubs mostly str.
RoleSpec = Mapping[str, Any]


def _fmt(values: Iterable[Any], limit: int = 8) -> str:
    items = [repr(v) for v in values]
    shown = ", ".join(items[:limit])
    return shown + (f", ... ({len(items)} in all)" if len(items) > limit else "")


def require_frame(data: Any, name: str = "data") -> pd.DataFrame:
    """Return ``data`` if it is a DataFrame with at least one row, else raise.

    Examples
    --------
    >>> import pandas as pd
    >>> require_frame(pd.DataFrame({"a": [1]})).shape
    (1, 1)
    """
    if not isinstance(data, pd.DataFrame):
        raise TypeError(
            f"`{name}` must be a pandas DataFrame; got {type(data).__name__}. "
            f"Convert it with pandas.DataFrame(...) first."
        )
    if data.shape[0] == 0:
        raise ValueError(f"`{name}` has no rows.")
    if data.columns.has_duplicates:
        dupes = data.columns[data.columns.duplicated()].unique()
        raise ValueError(f"`{name}` has duplicate column names: {_fmt(dupes)}. Rename them.")
    return data


def without_attrs(data: pd.DataFrame) -> pd.DataFrame:
    """``data``, or a shallow view of it without ``attrs`` when it has some: pandas
    deep-copies ``attrs`` (e.g. a data set's description) into every frame and column
    taken from it, which would dominate a small model's validation.

    Examples
    --------
    >>> import pandas as pd
    >>> data = pd.DataFrame({"a": [1]})
    >>> data.attrs["note"] = "simulated"
    >>> without_attrs(data).attrs, data.attrs
    ({}, {'note': 'simulated'})
    """
    return pd.DataFrame(data, copy=False) if data.attrs else data


def take_columns(data: pd.DataFrame, columns: Sequence[Hashable]) -> pd.DataFrame:
    """``data[columns]``, the columns taken by position: looking up a list of labels
    costs more than the rest of a small frame's selection (pandas' string column index).

    Examples
    --------
    >>> import pandas as pd
    >>> list(take_columns(pd.DataFrame({"a": [1], "b": [2], "c": [3]}), ["c", "a"]).columns)
    ['c', 'a']
    """
    locs = [data.columns.get_loc(c) for c in columns]
    positions = [i for i in locs if isinstance(i, int)]
    if len(positions) == len(locs):
        return data.take(positions, axis=1)
    return data[list(columns)]  # labels that are not unique: pandas' own selection


def as_column_list(value: Any, name: str) -> list[Any]:
    """Normalise a column spec (a name, a sequence of names, or None) to a list."""
    if value is None:
        return []
    if isinstance(value, str) or not isinstance(value, Iterable):
        if not isinstance(value, Hashable):
            raise TypeError(f"`{name}` must be a column name or a list of column names.")
        return [value]
    cols = list(value)
    for col in cols:
        if not isinstance(col, Hashable) or isinstance(col, list | tuple | set | dict):
            raise TypeError(f"`{name}` must hold column names; got {col!r}.")
    if len(set(cols)) != len(cols):
        raise ValueError(f"`{name}` names a column more than once: {_fmt(cols)}.")
    return cols


def require_columns(data: pd.DataFrame, roles: RoleSpec, name: str = "data") -> None:
    """Check that each role's column(s) exist in ``data``.

    Parameters
    ----------
    data : DataFrame
    roles : mapping
        Argument name -> column name, list of column names, or None (role unused).
    name : str
        Name of the frame argument in the calling function (e.g. "studies").

    Raises
    ------
    ValueError
        Naming the argument and the missing column, with close matches.

    Examples
    --------
    >>> import pandas as pd
    >>> require_columns(pd.DataFrame({"wai_t": [1.0]}), {"judgment": "wai_t"})
    """
    for role, spec in roles.items():
        for col in as_column_list(spec, role):
            if col in data.columns:
                continue
            available = [str(c) for c in data.columns]
            close = close_matches(col, data.columns)
            hint = f" Close matches: {_fmt(close)}." if close else ""
            raise ValueError(
                f"`{role}` refers to column {col!r}, which is not in `{name}`.{hint} "
                f"Available columns: {_fmt(available, 12)}.{wide_layout_hint(data)}"
            )


def close_matches(name: Any, columns: Iterable[Any], n: int = 3) -> list[Any]:
    """Columns that ``name`` probably meant: same name in another case first
    (``"ors"`` -> ``'ORS'``), then similar spellings (:func:`difflib.get_close_matches`,
    compared without case).

    Examples
    --------
    >>> close_matches("ors", ["Sess", "ORS", "WAI_T"])
    ['ORS']
    >>> close_matches("wai_c", ["WAI_T", "WAI_C", "ORS"])
    ['WAI_C', 'WAI_T']
    """
    cols = list(columns)
    lowered: dict[str, list[Any]] = {}
    for col in cols:
        lowered.setdefault(str(col).casefold(), []).append(col)
    key = str(name).casefold()
    same = [c for c in lowered.get(key, []) if c != name]
    similar = difflib.get_close_matches(key, list(lowered), n=n, cutoff=0.6)
    found = same + [c for k in similar for c in lowered[k] if c not in same and c != name]
    return found[:n]


_NUMBERED = re.compile(r"^(?P<stub>.*?\D)(?P<sep>[_.\- ]?)(?P<num>\d+)$")


def numbered_stubs(columns: Iterable[Any]) -> dict[str, list[str]]:
    """Wide-layout column families: stub -> columns (``WAI_T`` -> ``WAI_T_1 .. WAI_T_6``).

    A stub counts when at least two of its columns differ only in a trailing number.

    Examples
    --------
    >>> numbered_stubs(["id", "WAI_T_1", "WAI_T_2", "ORS_1", "x"])
    {'WAI_T': ['WAI_T_1', 'WAI_T_2']}
    """
    families: dict[str, list[str]] = {}
    for col in columns:
        match = _NUMBERED.match(str(col))
        if match:
            families.setdefault(match["stub"] + "\0" + match["sep"], []).append(str(col))
    return {key.split("\0")[0]: cols for key, cols in families.items() if len(cols) >= 2}


def wide_layout_hint(data: pd.DataFrame) -> str:
    """A sentence pointing to ``sessions_to_long`` when ``data`` looks wide, else ''."""
    stubs = numbered_stubs(data.columns)
    if not stubs:
        return ""
    first = next(iter(stubs.values()))
    example = f"{first[0]} ... {first[-1]}"
    seps = {re.sub(r"\d+$", "", c)[len(s):] for s, cols in stubs.items() for c in cols}
    sep = next(iter(seps)) if len(seps) == 1 else "_"
    sep_arg = "" if sep == "_" else f", sep={sep!r}"
    return (f" The data look wide (one column per session, e.g. {example}): reshape them "
            f"to one row per session with alliancestats.sessions_to_long(data, "
            f"unit=[<therapist column>, <patient column>], stubs={sorted(stubs)!r}"
            f"{sep_arg}, time='session') first.")


def require_numeric(data: pd.DataFrame, roles: RoleSpec) -> None:
    """Check that each role's column(s) are numeric (bool counts as numeric)."""
    for role, spec in roles.items():
        columns = {col: data[col] for col in as_column_list(spec, role)}
        for col, series in columns.items():
            if pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_complex_dtype(
                series
            ):
                continue
            bad = series[pd.to_numeric(series, errors="coerce").isna() & series.notna()]
            examples = _fmt(bad.unique()[:3], 3) if len(bad) else "none"
            raise ValueError(
                f"`{role}` column {col!r} must be numeric; got dtype {series.dtype} "
                f"(e.g. {examples}). Convert it with pandas.to_numeric(..., errors='coerce')."
            )
        for col, series in columns.items():
            if series.dtype.kind in "biu":  # numpy integers and booleans: never infinite
                continue
            values = series.to_numpy(dtype=float, na_value=np.nan)
            if np.isinf(values).any():
                raise ValueError(
                    f"`{role}` column {col!r} contains infinite values; "
                    f"replace them (e.g. with NaN) before fitting."
                )


def check_choice(value: Any, name: str, choices: Sequence[str]) -> str:
    """Return ``value`` if it is one of ``choices``; else a ValueError with a close match."""
    if not isinstance(value, str):
        raise TypeError(f"`{name}` must be a string, one of {_fmt(choices)}; got {value!r}.")
    if value in choices:
        return value
    close = difflib.get_close_matches(value, list(choices), n=1, cutoff=0.5)
    hint = f" Did you mean {close[0]!r}?" if close else ""
    raise ValueError(f"`{name}` must be one of {_fmt(choices, 30)}; got {value!r}.{hint}")


def check_known_keys(keys: Iterable[Any], valid: Sequence[str], name: str, kind: str) -> None:
    """Raise a ValueError for the first key not in ``valid``, with close matches.

    ``kind`` says what the valid names are, e.g. "the fields of PRNParams".

    Examples
    --------
    >>> check_known_keys(["truth_mean"], ["truth_mean", "truth_growth"], "params", "fields")
    """
    for key in keys:
        if key in valid:
            continue
        close = difflib.get_close_matches(str(key), list(valid), n=3, cutoff=0.6)
        hint = f" Did you mean {_fmt(close)}?" if close else ""
        raise ValueError(
            f"`{name}` has unknown key {key!r}.{hint} Valid keys are {kind}: "
            f"{', '.join(valid)}."
        )


def handle_missing(
    data: pd.DataFrame,
    columns: Sequence[Hashable],
    policy: str = "drop",
    *,
    stacklevel: int | None = None,
    select: bool = False,
) -> tuple[pd.DataFrame, dict[str, int]]:
    """Drop rows with missing values in ``columns`` (or raise), counting per column.

    Returns a new frame (never a view on the caller's data) and a dict mapping each column
    with missing values to its number of missing entries. ``select=True`` keeps only
    ``columns`` (selected with the rows, in one copy). With ``policy="drop"`` a single
    :class:`~alliancestats.exceptions.DataWarning` reports the counts; it points at the
    user's line, the first caller outside alliancestats (:func:`user_stacklevel`), however
    deep the call. ``stacklevel`` is accepted for older callers and not used.
    """
    check_choice(policy, "missing", ("drop", "raise"))
    cols = list(dict.fromkeys(columns))
    # per column, not via data[cols].isna(): no intermediate frames or Series (this runs
    # in every model call, where a pandas object costs more than the check)
    masks = [pd.isna(data[c].array) for c in cols]
    counts = {str(c): int(m.sum()) for c, m in zip(cols, masks, strict=True) if m.any()}
    if not counts:  # (a take copies, as pandas' column selection does)
        return (take_columns(data, cols) if select else data.copy()), {}
    detail = ", ".join(f"{c!r}: {n}" for c, n in counts.items())
    row_missing = np.logical_or.reduce(masks)
    n_rows = int(row_missing.sum())
    if policy == "raise":
        raise ValueError(
            f"`data` has missing values ({detail}) and missing='raise'. "
            f"Use missing='drop' to drop the {n_rows} incomplete rows."
        )
    if n_rows == len(data):
        raise ValueError(f"Every row of `data` has a missing value ({detail}); nothing to fit.")
    warnings.warn(
        f"Dropped {n_rows} of {len(data)} rows with missing values (per column: {detail}).",
        DataWarning,
        stacklevel=user_stacklevel(),
    )
    if select:
        return take_columns(data, cols).take(np.flatnonzero(~row_missing)), counts
    return data.loc[~row_missing].copy(), counts


def check_variance(data: pd.DataFrame, column: Hashable, role: str) -> None:
    """Raise if ``column`` is constant (no information to estimate a slope)."""
    values = data[column]
    if values.nunique(dropna=True) < 2:
        raise ValueError(
            f"`{role}` column {column!r} has zero variance (all values "
            f"{values.dropna().iloc[0]!r}); it cannot be used as a predictor."
            if values.notna().any()
            else f"`{role}` column {column!r} has no non-missing values."
        )


def check_groups(
    data: pd.DataFrame, groups: Sequence[Hashable], *, min_groups: int = 2,
    codes: Mapping[Hashable, tuple[Any, Any]] | None = None,
) -> None:
    """Check grouping columns: no missing labels and at least ``min_groups`` groups each.

    ``codes``: per column its ``pd.factorize`` codes and labels, when the caller has them
    (missing labels are code -1)."""
    for col in groups:
        code, labels = codes[col] if codes is not None else pd.factorize(data[col])
        n_missing = int((code < 0).sum())
        if n_missing:
            raise ValueError(
                f"`groups` column {col!r} has {n_missing} missing labels; "
                f"drop or fill those rows first."
            )
        n = len(labels)
        if n < min_groups:
            raise ValueError(
                f"`groups` column {col!r} has {n} distinct value(s); a multilevel model "
                f"needs at least {min_groups}. Use groups=None for a single-level fit."
            )


def check_nested(data: pd.DataFrame, outer: Any, inner: Any,
                 codes: Mapping[Hashable, tuple[Any, Any]] | None = None) -> None:
    """Warn when an ``inner`` label occurs under several ``outer`` units.

    Nesting is judged on the (outer, inner) combination, as lme4's ``(1 | outer:inner)``:
    patient "1" of therapist A and patient "1" of therapist B are different patients. When
    labels look globally unique but one appears under two therapists, that is more often a
    data-entry error than intended reuse, so say so.
    """
    # distinct outer labels per inner label (as groupby(inner)[outer].nunique(): missing
    # inner labels dropped, missing outer labels not counted), from codes (``codes``:
    # per column its pd.factorize codes and labels, when the caller has them)
    inner_code, inner_labels = codes[inner] if codes is not None else pd.factorize(data[inner])
    outer_code, outer_labels = codes[outer] if codes is not None else pd.factorize(data[outer])
    keep = (inner_code >= 0) & (outer_code >= 0)
    pairs = np.unique(inner_code[keep].astype(np.int64) * max(len(outer_labels), 1)
                      + outer_code[keep])
    per_inner = np.bincount(pairs // max(len(outer_labels), 1), minlength=len(inner_labels))
    shared = np.flatnonzero(per_inner > 1)
    if len(shared) and len(shared) < 0.5 * len(per_inner):
        warnings.warn(
            f"{len(shared)} `{inner}` label(s) occur under more than one `{outer}` "
            f"(e.g. {_fmt(pd.Index(inner_labels[shared]).sort_values()[:3], 3)}); they are "
            f"treated as different units "
            f"(nested coding, {outer}:{inner}). Check the data if that is not intended.",
            DataWarning,
            stacklevel=3,
        )


def check_unique_rows(data: pd.DataFrame, keys: Sequence[Hashable], role: str) -> None:
    """Raise if the combination of ``keys`` (e.g. patient and session) is duplicated."""
    dup = data.duplicated(subset=list(keys), keep=False)
    if dup.any():
        example = data.loc[dup, list(keys)].iloc[0].to_dict()
        raise ValueError(
            f"`{role}`: {int(dup.sum())} rows share the same {_fmt(keys)} (e.g. {example}); "
            f"each unit may have one row per time point. Aggregate or de-duplicate first."
        )


def as_generator(rng: Any) -> np.random.Generator:
    """Turn ``rng`` (None, int, SeedSequence or Generator) into a numpy Generator (SPEC 7).

    Examples
    --------
    >>> bool(as_generator(1).integers(10) == as_generator(1).integers(10))
    True
    """
    if isinstance(rng, np.random.Generator):
        return rng
    if rng is None or isinstance(rng, np.random.SeedSequence):
        return np.random.default_rng(rng)
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if int(rng) < 0:
            raise ValueError(f"`rng` seed must be non-negative; got {rng}.")
        return np.random.default_rng(int(rng))
    raise TypeError(
        f"`rng` must be None, an int seed, a numpy SeedSequence or Generator; "
        f"got {type(rng).__name__}."
    )


def _check_size(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer; got {type(value).__name__} {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}; got {value}.")
    return int(value)


def check_sizes(n_therapists: Any, n_patients: Any, n_sessions: Any) -> tuple[int, int, int]:
    """Validated sizes of a simulated PRN trial (every therapist has a patient)."""
    n_t = _check_size(n_therapists, "n_therapists", 1)
    n_p = _check_size(n_patients, "n_patients", 1)
    n_s = _check_size(n_sessions, "n_sessions", 2)
    if n_p < n_t:
        raise ValueError(
            f"`n_patients` ({n_p}) must be at least `n_therapists` ({n_t}): every "
            f"therapist treats at least one patient."
        )
    return n_t, n_p, n_s


def check_p_missing(p_missing: Any) -> float:
    """Validated probability of a missed session, in [0, 1)."""
    if isinstance(p_missing, bool) or not isinstance(p_missing, numbers.Real):
        raise TypeError(f"`p_missing` must be a number in [0, 1); got {p_missing!r}.")
    if not 0.0 <= float(p_missing) < 1.0:
        raise ValueError(f"`p_missing` must be in [0, 1); got {p_missing}.")
    return float(p_missing)


def check_probability(value: Any, name: str) -> float:
    """Validated probability strictly between 0 and 1 (a target power, an alpha)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(f"`{name}` must be a number in (0, 1); got {value!r}.")
    if not 0.0 < float(value) < 1.0:
        raise ValueError(f"`{name}` must be in (0, 1); got {value}.")
    return float(value)


def check_caseloads(caseloads: Any) -> tuple[int, ...]:
    """Validated patients per therapist: a non-empty sequence of integers >= 1."""
    if isinstance(caseloads, (str, bytes)) or not isinstance(caseloads, Iterable):
        raise TypeError(f"`caseloads` must be a list of patient counts, one per therapist; "
                        f"got {type(caseloads).__name__}.")
    values = list(caseloads)
    if not values:
        raise ValueError("`caseloads` is empty; give one patient count per therapist.")
    out = []
    for i, value in enumerate(values):
        if isinstance(value, bool) or not isinstance(value, numbers.Integral):
            raise TypeError(f"`caseloads[{i}]` must be an integer; got {value!r}.")
        if value < 1:
            raise ValueError(f"`caseloads[{i}]` must be at least 1 (every therapist treats "
                             f"a patient); got {value}.")
        out.append(int(value))
    return tuple(out)


_PACKAGE_DIR = os.path.dirname(os.path.abspath(__file__))


def user_stacklevel() -> int:
    """The ``stacklevel`` that makes a warning point at the first caller outside
    alliancestats (the user's script or notebook cell), for ``warnings.warn`` called in
    the function that calls this one. Fixed numbers break when the same check is reached
    through calls of different depth (``fit_rsa`` vs ``fit_lagged_rsa``).

    Examples
    --------
    >>> import warnings
    >>> def check():
    ...     warnings.warn("note", UserWarning, stacklevel=user_stacklevel())
    >>> user_stacklevel() >= 1
    True
    """
    frame = inspect.currentframe()
    frame = frame.f_back if frame is not None else None  # the function that warns
    level = 1
    while frame is not None and os.path.abspath(frame.f_code.co_filename).startswith(
            _PACKAGE_DIR + os.sep):
        frame = frame.f_back
        level += 1
    return level


def progress_bar(enabled: bool, **kwargs: Any) -> Any:
    """A tqdm progress bar: ``tqdm.auto`` (a notebook widget or a console bar) when
    ``enabled``, else a disabled console bar.

    ``tqdm.auto`` is imported only when the bar is shown: importing it in a Jupyter kernel
    without ipywidgets emits ``TqdmWarning: IProgress not found``, which a caller who
    asked for ``progress=False`` should not see.

    Examples
    --------
    >>> with progress_bar(False, total=3) as bar:
    ...     bar.update(3)
    """
    if enabled:
        from tqdm.auto import tqdm as auto

        return auto(**{"disable": None, **kwargs})
    from tqdm import tqdm as plain

    return plain(**{**kwargs, "disable": True})
