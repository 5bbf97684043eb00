"""Data layer: reading files, reshaping (rater stacking, sessions wide <-> long),
lagged predictors and centring.

Every function returns a new frame and leaves its input untouched. Column names are never
hard-coded: each function takes the columns by role.
"""

from __future__ import annotations

import csv
import re
import warnings
from collections.abc import Hashable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from ._validation import (
    as_column_list,
    check_unique_rows,
    numbered_stubs,
    require_columns,
    require_frame,
    require_numeric,
)
from .exceptions import DataWarning

__all__ = [
    "add_lags",
    "center_grand_mean",
    "center_pooled",
    "center_within",
    "read_data",
    "sessions_to_long",
    "sessions_to_wide",
    "stack_raters",
]

_READERS = {
    ".csv": "csv",
    ".tsv": "tsv",
    ".txt": "tsv",
    ".xlsx": "excel",
    ".xls": "excel",
    ".sav": "spss",
    ".zsav": "spss",
    ".dta": "stata",
    ".parquet": "parquet",
    ".pq": "parquet",
}


def add_lags(
    data: pd.DataFrame,
    columns: Hashable | Sequence[Hashable],
    *,
    by: Hashable | Sequence[Hashable],
    time: Hashable,
    lag: int = 1,
) -> pd.DataFrame:
    """Add lagged copies of ``columns``: the value at ``time - lag`` for the same unit.

    The lag is looked up by time value, never taken from "the previous row": if session
    ``t - lag`` of a unit is absent (a missed session), the lagged value is NaN, so a
    session-3 rating is never paired with a session-1 rating.

    Parameters
    ----------
    data : DataFrame
        Long data, one row per unit and time point.
    columns : column name or list of names
        Columns to lag.
    by : column name or list of names
        Columns identifying the unit (e.g. ``"patient"`` or ``["therapist", "patient"]``).
    time : column name
        Integer-valued time (e.g. session number).
    lag : int
        Positive number of time steps.

    Returns
    -------
    DataFrame
        A copy of ``data`` (same row order and index) with new columns
        ``f"{col}_lag{lag}"``.

    Raises
    ------
    ValueError
        Missing columns, non-integer times, duplicated (unit, time) rows, bad ``lag``,
        or a lag column name that already exists.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"id": [1, 1, 1], "t": [1, 2, 4], "x": [10.0, 20.0, 40.0]})
    >>> add_lags(df, "x", by="id", time="t")["x_lag1"].tolist()
    [nan, 10.0, nan]
    """
    data = require_frame(data)
    lagged = lagged_values(data, columns, by=by, time=time, lag=lag)
    out = data.copy()
    for name, values in lagged.items():
        out[name] = values
    return out


def lagged_values(
    data: pd.DataFrame,
    columns: Hashable | Sequence[Hashable],
    *,
    by: Hashable | Sequence[Hashable],
    time: Hashable,
    lag: int = 1,
    duplicate_hint: str = "",
) -> dict[str, np.ndarray[Any, Any]]:
    """The lagged columns of :func:`add_lags` as arrays, ``{f"{col}_lag{lag}": values}``
    (aligned with the rows of ``data``), without copying the frame.

    Checks as :func:`add_lags`; ``duplicate_hint`` is appended to the message about
    duplicated (unit, time) rows.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"id": [1, 1, 1], "t": [1, 2, 4], "x": [10.0, 20.0, 40.0]})
    >>> lagged_values(df, "x", by="id", time="t")["x_lag1"].tolist()
    [nan, 10.0, nan]
    """
    cols = as_column_list(columns, "columns")
    units = as_column_list(by, "by")
    if not cols:
        raise ValueError("`columns` must name at least one column to lag.")
    if not units:
        raise ValueError("`by` must name the column(s) identifying the unit.")
    if isinstance(lag, bool) or not isinstance(lag, int | np.integer) or lag < 1:
        raise ValueError(f"`lag` must be a positive integer; got {lag!r}.")
    require_columns(data, {"columns": cols, "by": units, "time": time})
    times = data[time]
    if not (isinstance(times.dtype, np.dtype) and times.dtype.kind in "iuf"):
        require_numeric(data, {"time": time})  # raises unless numeric (e.g. nullable)
        time_values = times.to_numpy(dtype=float, na_value=np.nan)
    else:
        time_values = times.to_numpy(dtype=float)
        if np.isinf(time_values).any():
            require_numeric(data, {"time": time})  # raises, naming the column
    if np.isnan(time_values).any():
        raise ValueError(f"`time` column {time!r} has missing values; drop those rows first.")
    if not np.allclose(time_values, np.round(time_values)):
        raise ValueError(
            f"`time` column {time!r} must hold whole numbers (session numbers); "
            f"got e.g. {times[times != np.round(times)].iloc[0]!r}."
        )
    new_names = [f"{col}_lag{lag}" for col in cols]
    clash = [n for n in new_names if n in data.columns]
    series = {c: data[c] for c in cols}
    fast = (all(_plain_numeric(v) for v in series.values())
            and _small_time_range(time_values, len(data)))
    source = _lag_rows(data, units, time_values, lag) if fast else None
    if source is None or source.duplicated:
        _check_unique_with_hint(data, [*units, time], duplicate_hint)
    if clash:
        raise ValueError(f"Lag column(s) {clash} already exist in `data`; drop or rename them.")
    if source is not None:
        # numeric columns: look the rows up by (unit, time) codes, no frame merge
        found = source.rows >= 0
        take = np.where(found, source.rows, 0)
        return {name: np.where(found, series[col].to_numpy(dtype=float)[take], np.nan)
                for col, name in zip(cols, new_names, strict=True)}
    # Shift the time of a copy forward by `lag`, then merge on (unit, time): exact lookup.
    source_frame = data[[*units, time, *cols]].copy()
    source_frame[time] = source_frame[time] + lag
    source_frame.columns = [*units, time, *new_names]
    keys = data[[*units, time]].reset_index(drop=True)
    lagged = keys.merge(source_frame, on=[*units, time], how="left", validate="one_to_one")
    return {name: lagged[name].to_numpy() for name in new_names}


def _check_unique_with_hint(data: pd.DataFrame, keys: list[Hashable], hint: str) -> None:
    try:
        check_unique_rows(data, keys, "time")
    except ValueError as err:
        raise ValueError(f"{err}{hint}") from None


def _plain_numeric(column: pd.Series) -> bool:
    """A numpy integer or float column (lagged values become float64 with NaN, as a
    merge makes them)."""
    return isinstance(column.dtype, np.dtype) and column.dtype.kind in "iuf"


def _small_time_range(times: np.ndarray[Any, Any], n: int) -> bool:
    """(unit, time) fits one int64 code (e.g. not times in nanoseconds)."""
    return float(times.max() - times.min()) * (n + 1) < 2.0 ** 60


class _LagSource(NamedTuple):
    rows: np.ndarray[Any, np.dtype[np.intp]]
    duplicated: bool


def _lag_rows(data: pd.DataFrame, units: list[Hashable], times: np.ndarray[Any, Any],
              lag: int) -> _LagSource:
    """Per row, the row of the same unit at ``time - lag`` (-1 if absent), and whether
    some (unit, time) key repeats. Units are compared as a merge compares them (missing
    labels form a unit of their own)."""
    unit = np.zeros(len(data), dtype=np.int64)
    for col in units:
        code, uniq = pd.factorize(data[col], use_na_sentinel=False)
        unit = unit * max(len(uniq), 1) + code
        unit = pd.factorize(unit)[0].astype(np.int64)
    t = np.round(times).astype(np.int64)
    t = t - t.min()
    span = int(t.max()) + lag + 1
    key = unit * span + t
    order = np.argsort(key, kind="stable")
    sorted_key = key[order]
    want = key - lag  # same unit: t - lag >= -lag stays inside the unit's span
    pos = np.minimum(np.searchsorted(sorted_key, want), len(key) - 1)
    hit = (sorted_key[pos] == want) & (t >= lag)
    return _LagSource(np.where(hit, order[pos], -1),
                      bool((sorted_key[1:] == sorted_key[:-1]).any()))


def stack_raters(
    data: pd.DataFrame,
    *,
    ratings: Mapping[str, Hashable],
    rater: str = "rater",
    value: str = "alliance",
    id_vars: Sequence[Hashable] | None = None,
) -> pd.DataFrame:
    """Stack one rating column per rater into long form with a rater column.

    Parameters
    ----------
    data : DataFrame
        One row per session, one column per rater's rating.
    ratings : mapping
        Rater label -> rating column, e.g. ``{"therapist": "alliance_therapist",
        "patient": "alliance_patient"}``. The order of the mapping sets the order of the
        rater categories (the first is the reference level).
    rater, value : str
        Names of the new rater and rating columns.
    id_vars : list of column names, optional
        Columns carried along (default: every column that is not a rating column).

    Returns
    -------
    DataFrame
        ``len(ratings)`` rows per input row; ``rater`` is an ordered categorical.

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"patient": [1], "wai_t": [5.0], "wai_p": [6.0]})
    >>> stack_raters(df, ratings={"therapist": "wai_t", "patient": "wai_p"})["alliance"].tolist()
    [5.0, 6.0]
    """
    data = require_frame(data)
    if not isinstance(ratings, Mapping) or len(ratings) < 2:
        raise TypeError(
            "`ratings` must be a mapping of at least two rater labels to columns, e.g. "
            "{'therapist': 'alliance_therapist', 'patient': 'alliance_patient'}."
        )
    rating_cols = list(ratings.values())
    require_columns(data, {"ratings": rating_cols})
    keep = (
        as_column_list(id_vars, "id_vars")
        if id_vars is not None
        else [c for c in data.columns if c not in rating_cols]
    )
    require_columns(data, {"id_vars": keep})
    for name in (rater, value):
        if name in keep:
            raise ValueError(
                f"New column name {name!r} already exists in `data`; pass another "
                f"`rater=`/`value=` name."
            )
    parts = []
    for label, col in ratings.items():
        part = data[keep].copy()
        part[rater] = label
        part[value] = data[col].to_numpy()
        part["_row"] = np.arange(len(data))
        parts.append(part)
    long = pd.concat(parts, ignore_index=True)
    long[rater] = pd.Categorical(long[rater], categories=list(ratings), ordered=False)
    long = long.sort_values(["_row", rater], kind="stable").drop(columns="_row")
    return long.reset_index(drop=True)


def sessions_to_wide(
    data: pd.DataFrame,
    *,
    unit: Hashable | Sequence[Hashable],
    time: Hashable,
    values: Hashable | Sequence[Hashable],
) -> pd.DataFrame:
    """Long (one row per session) to wide (one row per unit, ``f"{value}_{time}"`` columns).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"id": [1, 1], "s": [1, 2], "x": [3.0, 4.0]})
    >>> sessions_to_wide(df, unit="id", time="s", values="x").columns.tolist()
    ['id', 'x_1', 'x_2']
    """
    data = require_frame(data)
    units = as_column_list(unit, "unit")
    vals = as_column_list(values, "values")
    require_columns(data, {"unit": units, "time": time, "values": vals})
    check_unique_rows(data, [*units, time], "time")
    wide = data.pivot(index=units, columns=time, values=vals)
    wide.columns = [f"{v}_{t}" for v, t in wide.columns]  # type: ignore[str-unpack]
    _check_wide_names([str(u) for u in units], list(wide.columns), time)
    return wide.reset_index()


def _check_wide_names(units: list[str], made: list[str], time: Hashable) -> None:
    """Refuse a wide frame whose column names would repeat (they could not be told apart)."""
    names = pd.Index([*units, *made])
    if not names.has_duplicates:
        return
    dupes = list(names[names.duplicated()].unique())
    raise ValueError(
        f"sessions_to_wide would make duplicate column names {dupes}: a `values` column "
        f"joined with a `time` value ({time!r}) gives the name of another column (or two "
        f"time values print alike, such as 1 and '1'). Rename the clashing column or "
        f"recode `time` first."
    )


def sessions_to_long(
    data: pd.DataFrame,
    *,
    unit: Hashable | Sequence[Hashable],
    stubs: Sequence[str],
    time: str = "session",
    sep: str = "_",
) -> pd.DataFrame:
    """Wide (``x_1, x_2, ...``) to long, one row per unit and time; inverse of
    :func:`sessions_to_wide`. Sessions with all values missing are dropped.

    Examples
    --------
    >>> import pandas as pd
    >>> wide = pd.DataFrame({"id": [1], "x_1": [3.0], "x_2": [4.0]})
    >>> sessions_to_long(wide, unit="id", stubs=["x"])["x"].tolist()
    [3.0, 4.0]
    """
    data = require_frame(data)
    units = as_column_list(unit, "unit")
    require_columns(data, {"unit": units})
    if isinstance(stubs, str) or not stubs:
        raise TypeError("`stubs` must be a non-empty list of column-name prefixes, e.g. "
                        "stubs=['WAI_T', 'WAI_C'].")
    if not isinstance(sep, str):
        raise TypeError(f"`sep` must be a string such as '_'; got {sep!r}.")
    _check_long_names(data, units, list(stubs), time, sep)
    _check_wide_units(data, units, list(stubs), sep)
    long = pd.wide_to_long(data, stubnames=list(stubs), i=units, j=time, sep=sep)
    long = long.reset_index().dropna(subset=list(stubs), how="all")
    return long.sort_values([*units, time], kind="stable").reset_index(drop=True)


def _stub_columns(data: pd.DataFrame, stub: str, sep: str) -> list[Hashable]:
    prefix = f"{stub}{sep}"
    return [c for c in data.columns
            if str(c).startswith(prefix) and str(c)[len(prefix):].isdigit()]


def _check_long_names(data: pd.DataFrame, units: list[Hashable], stubs: list[str],
                      time: Hashable, sep: str) -> None:
    for stub in stubs:
        if not isinstance(stub, str):
            raise TypeError(f"`stubs` must hold column-name prefixes (str); got {stub!r}.")
        if not _stub_columns(data, stub, sep):
            close = [c for c in numbered_stubs(data.columns) if c != stub]
            hint = f" Prefixes of numbered columns in `data`: {close}." if close else ""
            raise ValueError(f"`stubs`: no column starts with {stub + sep!r} followed by a "
                             f"session number (e.g. {stub + sep + '1'!r}).{hint}")
        if stub in data.columns:
            raise ValueError(f"`stubs`: {stub!r} is already a column of `data`, so the long "
                             f"column cannot take that name; rename it first.")
    if time in data.columns:
        raise ValueError(f"`time` {time!r} is already a column of `data`; choose another "
                         f"name for the session column (e.g. time='session').")
    if time in stubs:
        raise ValueError(f"`time` {time!r} is also in `stubs`; choose another name.")


def _check_wide_units(data: pd.DataFrame, units: list[Hashable], stubs: list[str],
                      sep: str) -> None:
    """The ``unit`` columns must identify the rows of the wide frame (one row per unit)."""
    missing = data[units].isna().any(axis=1)
    if missing.any():
        cols = [c for c in units if data[c].isna().any()]
        raise ValueError(f"`unit` column(s) {cols} have {int(missing.sum())} missing values; "
                         f"every row needs its unit. Fill or drop those rows first.")
    dup = data.duplicated(subset=units, keep=False)
    if not dup.any():
        return
    example = data.loc[dup, units].iloc[0]
    shown = ", ".join(f"{c}={v!r}" for c, v in example.items())
    times = int((data[units] == example.to_numpy()).all(axis=1).sum())
    stub_cols = {c for s in stubs for c in _stub_columns(data, s, sep)}
    others = [c for c in data.columns if c not in units and c not in stub_cols
              and not data.duplicated(subset=[c, *units]).any()]
    others.sort(key=lambda c: data[c].nunique())
    outer = [c for c in others if data[c].nunique() < len(data)]
    hint = (f" If ids restart within another unit (clients numbered within each "
            f"therapist), name both, outer first: unit={[outer[0], *units]!r}."
            if outer else " Give the columns that together identify a row.")
    raise ValueError(
        f"`unit` {units!r} does not identify the rows of the wide data: "
        f"{int(dup.sum())} rows share their value (e.g. {shown} is on {times} rows), "
        f"but sessions_to_long needs one row per unit.{hint}"
    )


def center_grand_mean(
    data: pd.DataFrame, columns: Hashable | Sequence[Hashable]
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Subtract each column's own mean. Returns the new frame and the means used.

    Examples
    --------
    >>> import pandas as pd
    >>> out, means = center_grand_mean(pd.DataFrame({"x": [1.0, 3.0]}), "x")
    >>> out["x"].tolist(), means
    ([-1.0, 1.0], {'x': 2.0})
    """
    data = require_frame(data)
    cols = as_column_list(columns, "columns")
    require_columns(data, {"columns": cols})
    require_numeric(data, {"columns": cols})
    out = data.copy()
    means = {str(c): float(data[c].mean()) for c in cols}
    for c in cols:
        out[c] = data[c] - means[str(c)]
    return out, means


def center_pooled(
    data: pd.DataFrame,
    columns: Sequence[Hashable],
    *,
    scale: bool = False,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Centre (and optionally scale) several commensurate columns by one common constant.

    The constant is the mean of all values stacked (R RSA's ``center="pooled"``), so
    ``x == y`` before means ``x == y`` after. ``scale=True`` also divides by the pooled
    SD (n - 1 denominator).

    Returns the new frame and ``{"center": m, "scale": s}`` (s = 1 without scaling).

    Examples
    --------
    >>> import pandas as pd
    >>> out, c = center_pooled(pd.DataFrame({"x": [1.0, 2.0], "y": [3.0, 6.0]}), ["x", "y"])
    >>> c["center"]
    3.0
    """
    data = require_frame(data)
    cols = as_column_list(columns, "columns")
    require_columns(data, {"columns": cols})
    require_numeric(data, {"columns": cols})
    stacked = data[cols].to_numpy(dtype=float).ravel()
    stacked = stacked[~np.isnan(stacked)]
    center = float(stacked.mean())
    spread = float(stacked.std(ddof=1)) if scale else 1.0
    if scale and not spread > 0:
        raise ValueError(f"`columns` {cols} have zero pooled variance; cannot scale.")
    out = data.copy()
    for c in cols:
        out[c] = (data[c] - center) / spread
    return out, {"center": center, "scale": spread}


def center_within(
    data: pd.DataFrame,
    columns: Hashable | Sequence[Hashable],
    *,
    by: Hashable | Sequence[Hashable],
    suffix_mean: str = "_mean",
) -> pd.DataFrame:
    """Person-mean (within-unit) centring: ``x - mean_j(x)``, plus the unit means.

    Adds ``f"{col}{suffix_mean}"`` holding each unit's mean, so the between-unit part can
    enter a model separately (within/between decomposition).

    Examples
    --------
    >>> import pandas as pd
    >>> df = pd.DataFrame({"id": [1, 1], "x": [1.0, 3.0]})
    >>> center_within(df, "x", by="id")[["x", "x_mean"]].values.tolist()
    [[-1.0, 2.0], [1.0, 2.0]]
    """
    data = require_frame(data)
    cols = as_column_list(columns, "columns")
    units = as_column_list(by, "by")
    require_columns(data, {"columns": cols, "by": units})
    require_numeric(data, {"columns": cols})
    no_unit = data[units].isna().any(axis=1)
    if no_unit.any():
        which = [c for c in units if data[c].isna().any()]
        warnings.warn(
            f"center_within: {int(no_unit.sum())} of {len(data)} rows have a missing `by` "
            f"value (column(s) {which}); their centred values and unit means are NaN. "
            f"Fill in the unit or drop those rows.", DataWarning, stacklevel=2)
    out = data.copy()
    for c in cols:
        means = data.groupby(units, observed=True, sort=False)[c].transform("mean")
        out[f"{c}{suffix_mean}"] = means
        out[c] = data[c] - means
    return out


def read_data(path: str | Path, **kwargs: Any) -> pd.DataFrame:
    """Read a data file, choosing the reader by extension.

    Supported: ``.csv``, ``.tsv``/``.txt`` (tab-separated), ``.xlsx``/``.xls`` (Excel),
    ``.sav``/``.zsav`` (SPSS, via pyreadstat), ``.dta`` (Stata), ``.parquet``.

    Text files are read as UTF-8 (a byte-order mark is skipped) unless ``encoding`` says
    otherwise; for ``.csv`` the separator is sniffed unless ``sep`` is given (``,``,
    ``;``, tab or ``|``), and a ``;``-separated file with decimal commas (``4,5``, as
    European spreadsheet exports write) is read with ``decimal=","``.

    For SPSS files the variable and value labels are kept in ``df.attrs["column_labels"]``
    and ``df.attrs["value_labels"]`` (codes stay numeric, as models need them); pass
    ``apply_value_formats=True`` to get the labels instead.

    Parameters
    ----------
    path : str or Path
    **kwargs
        Passed on to the underlying reader (``pandas.read_csv``, ``pandas.read_excel``,
        ``pyreadstat.read_sav``, ``pandas.read_stata``, ``pandas.read_parquet``).

    Raises
    ------
    ValueError
        Unknown extension, or a file that exists but cannot be parsed.
    FileNotFoundError
        No such file.

    Examples
    --------
    >>> import pandas as pd, tempfile, os
    >>> tmp = os.path.join(tempfile.mkdtemp(), "d.csv")
    >>> pd.DataFrame({"a": [1]}).to_csv(tmp, index=False)
    >>> read_data(tmp).shape
    (1, 1)
    """
    if not isinstance(path, str | Path):
        raise TypeError(f"`path` must be a file path; got {type(path).__name__}.")
    file = Path(path)
    if file.is_dir():
        raise IsADirectoryError(f"`path` {str(file)!r} is a directory; give the data file "
                                f"inside it (e.g. {str(file / 'data.csv')!r}).")
    suffix = file.suffix.lower()
    if suffix not in _READERS:
        raise ValueError(
            f"`path` has extension {suffix or '(none)'!r}, which read_data does not know. "
            f"Supported: {', '.join(sorted(_READERS))}."
        )
    if not file.is_file():
        raise FileNotFoundError(f"`path`: no such file: {str(file)!r}.")
    try:
        frame = _read(file, _READERS[suffix], kwargs)
    except UnicodeDecodeError as exc:
        used = kwargs.get("encoding", "utf-8")
        raise ValueError(
            f"Could not read {str(file)!r}: it is not {used}-encoded text (byte "
            f"{exc.object[exc.start:exc.start + 1]!r} at position {exc.start}). Exports from "
            f"Excel or SPSS on Windows are often Latin-1: pass encoding='latin-1' (or "
            f"'cp1252'; on the command line --encoding latin-1).") from None
    except Exception as exc:  # each parser raises its own error types; report them alike
        raise ValueError(f"Could not read {str(file)!r} as {_READERS[suffix]}: {exc}") from exc
    return frame


def _csv_options(file: Path, kwargs: dict[str, Any]) -> dict[str, Any]:
    """``read_csv`` options for text files: a UTF-8 byte-order mark is skipped, and unless
    the caller chose them, the separator is sniffed (``,`` ``;`` tab ``|``) and a ``;``
    separator with decimal commas (``4,5``; European exports) sets ``decimal=','``."""
    options = dict(kwargs)
    encoding = options.setdefault("encoding", "utf-8-sig")
    if str(encoding).replace("_", "-").lower() in {"utf-8", "utf8"}:
        options["encoding"] = "utf-8-sig"  # the same, and skips a byte-order mark
    if "sep" in options or "delimiter" in options:
        return options
    with file.open(encoding=options["encoding"], newline="") as handle:
        sample = handle.read(65536)
    try:
        sep = csv.Sniffer().sniff(sample, delimiters=",;\t|").delimiter
    except csv.Error:
        sep = ","
    options["sep"] = sep
    if sep == ";" and "decimal" not in options and re.search(r"(^|;)\s*-?\d+,\d+\s*(;|$)",
                                                              sample, re.MULTILINE):
        options["decimal"] = ","
    return options


def _read(file: Path, kind: str, kwargs: dict[str, Any]) -> pd.DataFrame:
    if kind == "csv":
        return pd.read_csv(file, **_csv_options(file, kwargs))
    if kind == "tsv":
        return pd.read_csv(file, **_csv_options(file, {"sep": "\t", **kwargs}))
    if kind == "excel":
        return pd.read_excel(file, **kwargs)
    if kind == "stata":
        return pd.read_stata(file, **kwargs)
    if kind == "parquet":
        return pd.read_parquet(file, **kwargs)
    import pyreadstat  # imported lazily: only SPSS files need it

    reader = pyreadstat.read_sav
    frame, meta = reader(str(file), **kwargs)
    frame.attrs["column_labels"] = dict(
        zip(meta.column_names, meta.column_labels, strict=True)
    )
    frame.attrs["value_labels"] = {
        col: meta.value_labels[name]
        for col, name in meta.variable_to_label.items()
        if name in meta.value_labels
    }
    return frame
