"""Bundled data sets.

Each data set is a CSV file with a JSON file of the same name beside it holding its
description and, for simulated data, the generating parameters, the seed and the library
version that wrote it. The files are read with :mod:`importlib.resources`, so they work
from an installed wheel as well as from a source checkout.

Examples
--------
>>> from alliancestats import datasets
>>> datasets.list_datasets()["name"].tolist()
['prn']
>>> df = datasets.load("prn")
>>> df.shape[1], df.attrs["params"]["n_therapists"]
(7, 40)
"""

from __future__ import annotations

import copy
import difflib
import json
from functools import cache
from importlib import resources
from typing import Any

import pandas as pd

__all__ = ["list_datasets", "load"]

# Column dtypes of the canonical PRN layout; other columns are left to pandas.
_DTYPES: dict[str, str] = {
    "therapist": "str",
    "patient": "str",
    "session": "int64",
    "condition": "int64",
}


def _files() -> Any:
    return resources.files(__name__)


@cache
def _registry() -> dict[str, dict[str, Any]]:
    """Name -> metadata (the parsed JSON) of every data set shipped with the package."""
    entries = {}
    for item in sorted(_files().iterdir(), key=lambda f: f.name):
        if item.name.endswith(".json"):
            meta = json.loads(item.read_text(encoding="utf-8"))
            entries[meta["name"]] = meta
    return entries


def _check_name(name: Any) -> dict[str, Any]:
    names = list(_registry())
    if not isinstance(name, str):
        raise TypeError(
            f"`name` must be a string, one of {', '.join(map(repr, names))}; "
            f"got {type(name).__name__}."
        )
    if name not in names:
        close = difflib.get_close_matches(name, names, n=1, cutoff=0.4)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        raise ValueError(
            f"Unknown data set {name!r}.{hint} Valid names: {', '.join(map(repr, names))} "
            f"(see datasets.list_datasets())."
        )
    return _registry()[name]


def load(name: str) -> pd.DataFrame:
    """Load a bundled data set as a new DataFrame.

    Parameters
    ----------
    name : str
        Name of the data set, e.g. ``"prn"``; see :func:`list_datasets`.

    Returns
    -------
    DataFrame
        A fresh copy (changing it does not affect later loads). Label columns are
        strings, ``session`` and ``condition`` integers. For simulated data,
        ``attrs["params"]`` holds the generating parameters as returned by
        :func:`~alliancestats.simulate_prn`, and ``attrs["dataset"]`` the name,
        description, seed, rounding and library version that wrote the file.

    Raises
    ------
    TypeError
        If ``name`` is not a string.
    ValueError
        If there is no data set called ``name`` (the message lists the valid names).

    Notes
    -----
    ``"prn"`` is **simulated** data: the original trial's data (Tasca et al., 2023,
    Psychotherapy 60(1)) are not public. It was drawn from
    :func:`~alliancestats.simulate_prn` with 40 therapists, 117 patients, 6 sessions and
    5 % of sessions missed at random, with the parameters recorded in
    ``attrs["params"]``, and rounded to 2 decimals.

    Examples
    --------
    >>> from alliancestats import datasets
    >>> prn = datasets.load("prn")
    >>> sorted(prn["condition"].unique().tolist())
    [0, 1]
    >>> prn.attrs["dataset"]["simulated"]
    True
    """
    meta = _check_name(name)
    with _files().joinpath(meta["file"]).open("r", encoding="utf-8") as fh:
        frame = pd.read_csv(fh, dtype=dict(_DTYPES))
    if "params" in meta:
        frame.attrs["params"] = copy.deepcopy(meta["params"])
    frame.attrs["dataset"] = {k: copy.deepcopy(v) for k, v in meta.items() if k != "params"}
    return frame


def list_datasets() -> pd.DataFrame:
    """Describe the bundled data sets.

    Returns
    -------
    DataFrame
        One row per data set: ``name``, ``description``, ``n_rows`` and ``columns``
        (a comma-separated list of column names).

    Examples
    --------
    >>> from alliancestats import datasets
    >>> datasets.list_datasets().columns.tolist()
    ['name', 'description', 'n_rows', 'columns']
    """
    rows = []
    for name, meta in _registry().items():
        frame = load(name)
        rows.append(
            {
                "name": name,
                "description": meta["description"],
                "n_rows": len(frame),
                "columns": ", ".join(map(str, frame.columns)),
            }
        )
    return pd.DataFrame(rows, columns=["name", "description", "n_rows", "columns"])
