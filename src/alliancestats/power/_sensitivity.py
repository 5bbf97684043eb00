"""Power over a grid of uncertain simulator parameters (:func:`power_sensitivity`).

The default effect sizes of :class:`~alliancestats.PRNParams` are not estimates from a
trial; a power statement is only as good as them. :func:`power_sensitivity` runs
:func:`~alliancestats.power.power` once per combination of the values of the varied
parameters, with one root seed for every combination (common random numbers: the
differences between rows are the parameters', not the Monte-Carlo draws'), and stacks
the power tables into one tidy table.
"""

from __future__ import annotations

import dataclasses
import inspect
import itertools
import numbers
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_known_keys
from ..simulate import PRNParams
from ._orchestration import null_effects, plan, power, read_seed

__all__ = ["power_sensitivity"]

_OWN = ("design", "effects", "rng", "checkpoint")


def power_sensitivity(
    design: str,
    vary: Mapping[str, Sequence[float]],
    *,
    effects: Mapping[str, float] | PRNParams | str | None = None,
    rng: Any = None,
    checkpoint: str | os.PathLike[str] | None = None,
    **power_kwargs: Any,
) -> pd.DataFrame:
    """Power over a grid of uncertain simulator parameters, as one tidy table.

    For every combination of the values in ``vary`` (their product), :func:`power` is
    run with those parameters on top of ``effects`` and the same root seed, so each
    row can be reproduced alone with ``power(design, effects={**effects, **cell},
    rng=table.attrs["seed"], ...)``, and the rows share their random numbers (the
    simulator draws the same normals whatever the parameter values), which makes the
    differences between them sharper than independent runs would.

    Parameters
    ----------
    design : {"truth_bias", "growth", "lagged_rsa", "growth_single"}
        As in :func:`power`.
    vary : mapping of str to sequence of float
        :class:`~alliancestats.PRNParams` field name -> the values to try, e.g.
        ``{"sd_truth_force_therapist": [0, 0.1, 0.2]}``. Several fields span their product.
    effects : dict, PRNParams, "null" or None
        The other simulator parameters, as in :func:`power`; a dict must not also set a
        field of ``vary``.
    rng : None, int, SeedSequence or Generator
        Root seed of every cell (SPEC 7); drawn once when None (or taken from
        ``checkpoint`` when resuming). Recorded in ``attrs["seed"]``.
    checkpoint : path, optional
        Directory holding one :func:`power` checkpoint per combination (sub-directories
        named by the values), so an interrupted run resumes.
    **power_kwargs
        Passed to :func:`power`: sizes (``n_therapists``, ``n_patients``,
        ``n_sessions``, ``patients_per_therapist``, ``caseloads``), ``n_sims``,
        ``p_missing``, ``alpha``, ``targets``, ``random``, ``residual``, ``nesting``,
        ``ddf``, ``engine``, ``n_jobs``, ``backend``, ``chunk_size``, ``progress``.

    Returns
    -------
    DataFrame
        One row per combination x size cell x tested term: the varied fields, then the
        columns of :attr:`PowerResult.power` (``true_value``, ``power``, ``mcse``,
        ``ci_low``, ``ci_high``, ``n_valid``, ...). ``attrs`` holds ``design``,
        ``vary``, ``effects`` (the base overrides) and ``seed`` (a SeedSequence).

    Raises
    ------
    TypeError, ValueError
        For invalid arguments (naming the argument), before anything is simulated.

    Examples
    --------
    >>> from alliancestats.power import power_sensitivity
    >>> table = power_sensitivity("truth_bias", {"sd_truth_force_therapist": [0.0, 0.2]},
    ...                           random="intercept", n_therapists=10, n_patients=30,
    ...                           n_sims=4, rng=1, progress=False)
    >>> table[["sd_truth_force_therapist", "term"]].to_numpy().tolist()
    [[0.0, 'truth:condition:session'], [0.2, 'truth:condition:session']]
    """
    grid = _grid(vary)
    base = _base_effects(design, effects, grid[0])
    unknown = sorted(set(power_kwargs) - (set(inspect.signature(power).parameters) - set(_OWN)))
    if unknown:
        raise TypeError(f"power_sensitivity() got unexpected keyword arguments {unknown}; "
                        "pass power()'s options by name.")
    checks = {k: v for k, v in power_kwargs.items() if k != "backend"}
    for cell in grid:  # validate every combination before simulating anything
        plan(design, effects={**base, **cell}, **checks)
    dirs = [None if checkpoint is None else Path(checkpoint) / _cell_name(cell)
            for cell in grid]
    seed = read_seed(rng, dirs[0])
    tables = []
    for cell, where in zip(grid, dirs, strict=True):
        res = power(design, effects={**base, **cell}, rng=seed, checkpoint=where,
                    **power_kwargs)
        table = res.power
        for pos, (name, value) in enumerate(cell.items()):
            table.insert(pos, name, value)
        tables.append(table)
    out = pd.concat(tables, ignore_index=True)
    out.attrs = {"design": design, "vary": {k: list(v) for k, v in _values(vary).items()},
                 "effects": dict(base), "seed": seed}
    return out


def _values(vary: Any) -> dict[str, list[float]]:
    if not isinstance(vary, Mapping):
        raise TypeError("`vary` must be a dict of PRNParams field name -> list of values, "
                        f"e.g. {{'sd_truth_force_therapist': [0, 0.1, 0.2]}}; "
                        f"got {type(vary).__name__}.")
    if not vary:
        raise ValueError("`vary` is empty; name at least one PRNParams field to vary.")
    check_known_keys(vary, [f.name for f in dataclasses.fields(PRNParams)], "vary",
                     "the fields of PRNParams")
    out = {}
    for name, values in vary.items():
        if isinstance(values, str | bytes) or not isinstance(values, Sequence | np.ndarray):
            raise TypeError(f"`vary[{name!r}]` must be a list of numbers; got {values!r}.")
        items = list(values.tolist() if isinstance(values, np.ndarray) else values)
        if not items:
            raise ValueError(f"`vary[{name!r}]` is empty; give at least one value.")
        for v in items:
            if isinstance(v, bool) or not isinstance(v, numbers.Real):
                raise TypeError(f"`vary[{name!r}]` must hold numbers; got {v!r}.")
        if len(set(items)) != len(items):
            raise ValueError(f"`vary[{name!r}]` lists a value more than once: {items}.")
        out[str(name)] = [float(v) for v in items]
    return out


def _grid(vary: Any) -> list[dict[str, float]]:
    values = _values(vary)
    names = list(values)
    return [dict(zip(names, combo, strict=True))
            for combo in itertools.product(*values.values())]


def _base_effects(design: str, effects: Any, cell: Mapping[str, float]) -> dict[str, float]:
    """The fixed overrides as a dict (``vary`` goes on top of them)."""
    if isinstance(effects, str):
        plan(design, effects=effects)  # checks the design and the "null" spelling
        return null_effects(design)
    if isinstance(effects, PRNParams):
        return dataclasses.asdict(effects)
    if effects is None:
        return {}
    if isinstance(effects, Mapping):
        both = sorted(set(effects) & set(cell))
        if both:
            raise ValueError(f"`effects` and `vary` both set {both}; set each field in "
                             "one of them.")
        return dict(effects)
    raise TypeError("`effects` must be None, 'null', a PRNParams or a dict of overrides; "
                    f"got {type(effects).__name__}.")


def _cell_name(cell: Mapping[str, float]) -> str:
    return "__".join(f"{name}={value!r}" for name, value in cell.items())
