"""Number and p-value formatting shared by every summary and the report.

One rule everywhere: p-values as journals print them (three decimals, or ``< 0.001``;
never ``0`` or ``0.000``), other numbers with a fixed number of decimals unless they are
too small to show that way (then significant digits). Tables keep full precision in
``to_frame()`` and CSV files; only what is shown to a reader is rounded.
"""

from __future__ import annotations

import math
import re
from typing import Any

import pandas as pd

__all__ = [
    "P_DIGITS",
    "csv_safe",
    "format_number",
    "format_p",
    "format_table",
    "is_p_column",
    "shorten",
]

#: Decimals of a printed p-value; smaller values print as ``< 0.001``.
P_DIGITS = 3

_P_COLUMNS = frozenset({"P>|z|", "P>|t|", "p", "pvalue", "pvalues"})


def format_p(value: Any, digits: int = P_DIGITS) -> str:
    """A p-value for reading: ``digits`` decimals, or ``< 0.001`` below that.

    Parameters
    ----------
    value : float
        The p-value (NaN or None prints as an empty string).
    digits : int
        Decimals shown; the floor is ``10 ** -digits``.

    Returns
    -------
    str

    Examples
    --------
    >>> format_p(0.0123), format_p(0.0), format_p(3e-40), format_p(float("nan"))
    ('0.012', '< 0.001', '< 0.001', '')
    """
    if value is None or pd.isna(value):
        return ""
    p = float(value)
    floor = 10.0 ** -digits
    if p < floor:
        return f"< {floor:.{digits}f}"
    return f"{min(p, 1.0):.{digits}f}"


def format_number(value: Any, digits: int = 3) -> str:
    """A number for reading: ``digits`` decimals; tiny non-zero values in ``g`` format.

    Parameters
    ----------
    value : float
        NaN or None prints as an empty string; infinities as ``inf``/``-inf``.
    digits : int
        Decimals shown.

    Returns
    -------
    str

    Examples
    --------
    >>> format_number(1.23456), format_number(-0.00002), format_number(0.0, 2)
    ('1.235', '-2e-05', '0.00')
    """
    if value is None or pd.isna(value):
        return ""
    x = float(value)
    if math.isinf(x):
        return "inf" if x > 0 else "-inf"
    if x != 0 and abs(x) < 0.5 * 10.0 ** -digits:
        return f"{x:.{digits}g}"
    text = f"{x:.{digits}f}"
    return text[1:] if text.startswith("-") and float(text) == 0 else text


def is_p_column(name: Any) -> bool:
    """Whether a column holds p-values (``p_value``, ``sign_p_value``, ``P>|z|``, ...).

    Examples
    --------
    >>> is_p_column("sig_positive_p_value"), is_p_column("estimate")
    (True, False)
    """
    text = str(name)
    return "p_value" in text or text in _P_COLUMNS


def format_table(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """A copy of ``table`` with float columns as display strings.

    p-value columns (see :func:`is_p_column`) go through :func:`format_p`, other float
    columns through :func:`format_number`; other columns are left as they are.

    Parameters
    ----------
    table : DataFrame
    digits : int
        Decimals of the non-p-value numbers.

    Returns
    -------
    DataFrame

    Examples
    --------
    >>> t = pd.DataFrame({"estimate": [0.5, -1.25], "p_value": [1e-20, 0.2]})
    >>> format_table(t, 2).to_dict("list")
    {'estimate': ['0.50', '-1.25'], 'p_value': ['< 0.001', '0.200']}
    """
    shown = table.copy()
    for col in shown.columns:
        values = shown[col]
        if not isinstance(values, pd.Series) or not pd.api.types.is_float_dtype(values):
            continue
        if is_p_column(col):
            shown[col] = values.map(format_p).astype(object)
        else:
            shown[col] = values.map(lambda v: format_number(v, digits)).astype(object)
    return shown


def shorten(text: Any, width: int = 80) -> str:
    """``text`` cut to ``width`` characters (an ellipsis marks the cut), for labels in
    figures and tables; files meant for further analysis keep the full text.

    Examples
    --------
    >>> shorten("x" * 100, 10)
    'xxxxxxxxx…'
    """
    text = str(text)
    return text if len(text) <= width else text[: max(width - 1, 0)] + "…"


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_NUMBER = re.compile(r"^[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?$")


def _csv_cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_START) and not _NUMBER.match(value):
        return "'" + value
    return value


def csv_safe(frame: pd.DataFrame) -> pd.DataFrame:
    """A copy of ``frame`` safe to open in a spreadsheet (no CSV/formula injection).

    Text cells and column names starting with ``=``, ``+``, ``-``, ``@``, tab or carriage
    return get a leading ``'`` so that spreadsheets show them as text instead of running
    them as formulas (OWASP's advice). Numbers, and text that is a plain number such as
    ``-0.5``, are left alone.

    Examples
    --------
    >>> t = pd.DataFrame({"term": ["=HYPERLINK(1)", "x", "-1.5"], "estimate": [-1.0, 2, 3]})
    >>> csv_safe(t).to_dict("list")
    {'term': ["'=HYPERLINK(1)", 'x', '-1.5'], 'estimate': [-1.0, 2.0, 3.0]}
    """
    out = frame.copy()
    for i in range(out.shape[1]):
        col = out.iloc[:, i]
        if not (pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col)):
            out.isetitem(i, col.map(_csv_cell).astype(object).to_numpy())
    out.columns = pd.Index([_csv_cell(c) for c in out.columns], dtype=object)
    return out
