"""Vote parsing shared by :func:`box_score` and :func:`vote_count_estimate`.

A finding's direction comes from a numeric effect (its sign) or a label
("positive", "neg", "null", ...); its significance from booleans or from p-values
compared with ``alpha``.
"""

from __future__ import annotations

from collections.abc import Hashable
from typing import Any

import numpy as np
import pandas as pd

from .._validation import as_column_list, require_numeric

#: The three vote categories, in the order used by every table.
CATEGORIES: tuple[str, str, str] = ("sig_positive", "nonsignificant", "sig_negative")

_DIRECTION_LABELS: dict[str, int] = {
    "positive": 1, "pos": 1, "+": 1,
    "negative": -1, "neg": -1, "-": -1, "\u2212": -1,
    "null": 0, "none": 0, "zero": 0, "0": 0,
}


def _check_level(value: Any, name: str) -> float:
    """A probability strictly between 0 and 1 (alpha, confidence level)."""
    if isinstance(value, bool) or not isinstance(value, int | float | np.integer | np.floating):
        raise TypeError(f"`{name}` must be a number between 0 and 1; got {value!r}.")
    if not 0 < float(value) < 1:
        raise ValueError(f"`{name}` must be strictly between 0 and 1; got {value!r}.")
    return float(value)


def _single_column(value: Any, name: str, *, required: bool) -> Hashable | None:
    cols = as_column_list(value, name)
    if not cols:
        if required:
            raise TypeError(f"`{name}` must name a column of `studies`; got None.")
        return None
    if len(cols) != 1:
        raise TypeError(f"`{name}` must name one column; got {cols!r}.")
    return cols[0]


def _show(values: Any, limit: int = 3) -> str:
    """A few distinct values for a message, as plain Python reprs (no np.float64(...))."""
    items = pd.unique(np.asarray(values, dtype=object))[:limit]
    return ", ".join(repr(v.item() if isinstance(v, np.generic) else v) for v in items)


def _valid_labels() -> str:
    return ", ".join(repr(k) for k in _DIRECTION_LABELS)


def _directions(values: pd.Series, role: str) -> np.ndarray:
    """Direction (+1, 0, -1) of each finding, from a numeric effect or a label."""
    col = values.name
    if pd.api.types.is_bool_dtype(values):
        raise ValueError(
            f"`{role}` column {col!r} is boolean; give the effect (numeric, its sign is the "
            f"direction) or direction labels ({_valid_labels()})."
        )
    numeric = pd.to_numeric(values, errors="coerce") if values.dtype == object else values
    if pd.api.types.is_numeric_dtype(numeric) and not pd.api.types.is_complex_dtype(numeric):
        x = np.asarray(numeric, dtype=float)
        if not np.isnan(x).any():
            return np.sign(x).astype(int)
    labels = values.astype(str).str.strip().str.lower()
    mapped = labels.map(_DIRECTION_LABELS)
    unknown = pd.unique(values[mapped.isna().to_numpy()])
    if len(unknown):
        shown = _show(unknown, 5)
        raise ValueError(
            f"`{role}` column {col!r} has unknown direction label(s) {shown}. Valid labels "
            f"(case-insensitive): {_valid_labels()}; or give a numeric effect whose sign is "
            f"the direction."
        )
    return mapped.to_numpy(dtype=int)


def _is_boolean(values: pd.Series) -> bool:
    if pd.api.types.is_bool_dtype(values):
        return True
    if values.dtype == object:
        return all(isinstance(v, bool | np.bool_) for v in values)
    return False


def _significance(values: pd.Series, alpha: float | None, role: str = "significant") -> np.ndarray:
    """Boolean significance of each finding (booleans as given, or p < alpha)."""
    col = values.name
    if alpha is None:
        if _is_boolean(values):
            return values.to_numpy(dtype=bool)
        if pd.api.types.is_numeric_dtype(values):
            raise ValueError(
                f"`{role}` column {col!r} is numeric (dtype {values.dtype}), not boolean. If it "
                f"holds p-values, pass alpha=0.05 (p < alpha counts as significant); if it "
                f"holds 0/1 codes, convert it with .astype(bool)."
            )
        examples = _show(values)
        raise ValueError(
            f"`{role}` column {col!r} must be boolean (True/False); got dtype {values.dtype} "
            f"(e.g. {examples}). Map it first, e.g. studies[{col!r}].map({{'yes': True, "
            f"'no': False}})."
        )
    if _is_boolean(values):
        raise ValueError(
            f"`alpha` was given, so `{role}` column {col!r} should hold p-values, but it is "
            f"boolean. Drop `alpha` to use the booleans as they are."
        )
    require_numeric(values.to_frame(), {role: col})
    p = values.to_numpy(dtype=float)
    if ((p < 0) | (p > 1)).any():
        bad = _show(p[(p < 0) | (p > 1)])
        raise ValueError(
            f"`{role}` column {col!r} holds p-values (alpha={alpha}), which must lie in [0, 1]; "
            f"got {bad}."
        )
    return p < alpha


def _check_sig_direction(sig: np.ndarray, direction: np.ndarray, study: pd.Series) -> None:
    bad = sig & (direction == 0)
    if bad.any():
        examples = _show(study[bad])
        raise ValueError(
            f"{int(bad.sum())} finding(s) are significant but have no direction (effect 0 or "
            f"label 'null'), e.g. in {examples}. Give the sign of the significant effect."
        )

