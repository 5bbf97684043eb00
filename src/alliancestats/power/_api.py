r"""Monte-Carlo power for practice-research-network (PRN) trial designs.

:func:`power` simulates many trials with :mod:`alliancestats.simulate`, fits the model
of one research question to each and reports the share of replicates in which the
tested effect is significant, with its Monte-Carlo uncertainty:

========================  ===================================================  ==========
design                    tested terms                                         model
========================  ===================================================  ==========
``"truth_bias"``          ``truth:condition:session`` (training changes how    T&B
                          fast truth force grows over sessions, γ13)
``"growth"``              ``time:condition[therapist]`` (faster growth of      growth
                          therapist-rated alliance with training) and
                          ``time:condition[patient]`` (the same for patient
                          ratings; 0 under the simulator's defaults)
``"lagged_rsa"``          ``a4_difference`` (trained minus untrained lagged    lagged RSA
                          congruence curvature), ``a1_trained``,
                          ``a4_trained`` (the trained arm's surface)
========================  ===================================================  ==========

Every replicate has its own seed, ``SeedSequence(entropy, spawn_key=(n_therapists,
n_patients, n_sessions, replicate))``, so results are identical whatever the number of
workers, the backend or the chunking, and after an interrupted run is resumed from its
checkpoint.
"""

from __future__ import annotations

import argparse
import dataclasses
import numbers
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats

from .._validation import check_choice
from ..results import Summary
from ..simulate import PRNParams, _check_p_missing, _check_sizes, _resolve_params
from . import _run as run
from ._designs import DESIGNS, Design, Sizes

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["PowerResult", "add_power_arguments", "null_effects", "power", "power_main"]

ENGINES = ("fast", "statsmodels")
SIZE_COLUMNS = ["n_therapists", "n_patients", "n_sessions"]
_VALID = ("ok", "singular")


# --------------------------------------------------------------------------- result


@dataclass(frozen=True, eq=False)
class PowerResult:
    """Result of :func:`power` (immutable; every table is returned as a copy).

    Attributes
    ----------
    power : DataFrame
        One row per grid cell × tested term: ``n_therapists``, ``n_patients``,
        ``n_sessions``, ``term``, ``true_value`` (the population value under the
        simulated parameters), ``power`` (share of valid replicates with two-sided Wald
        p < alpha), ``mcse`` (its Monte-Carlo SE, sqrt(p(1 − p)/n_valid)), ``ci_low``,
        ``ci_high`` (95 % Clopper–Pearson interval), ``n_valid``, ``n_failed``
        (excluded replicates), ``n_singular`` (boundary fits, counted as valid),
        ``mean_estimate``, ``sd_estimate``, ``mean_std_error`` and ``coverage`` (share of
        valid replicates whose 1 − alpha Wald interval covers ``true_value``).
    estimates, std_errors, pvalues : DataFrame
        Per replicate: index (n_therapists, n_patients, n_sessions, replicate), one
        column per term; NaN where the fit failed.
    failures : DataFrame
        Every replicate whose fit was not clean: cell, ``replicate``, ``status``
        ("singular", "not converged" or "error"), ``counted`` (True for singular fits,
        which count as valid), ``reason``.
    settings : mapping
        Everything needed to reproduce the run, including the root seed ``entropy``.
    timings : DataFrame
        Seconds spent simulating and fitting per cell (not part of the results proper:
        they vary from run to run).
    """

    _power: pd.DataFrame
    _estimates: pd.DataFrame
    _std_errors: pd.DataFrame
    _pvalues: pd.DataFrame
    _failures: pd.DataFrame
    _settings: Mapping[str, Any]
    _timings: pd.DataFrame

    @property
    def power(self) -> pd.DataFrame:
        """Power per grid cell × tested term (see the class docstring)."""
        return self._power.copy()

    @property
    def estimates(self) -> pd.DataFrame:
        """Per-replicate estimates of the tested terms."""
        return self._estimates.copy()

    @property
    def std_errors(self) -> pd.DataFrame:
        """Per-replicate standard errors of the tested terms."""
        return self._std_errors.copy()

    @property
    def pvalues(self) -> pd.DataFrame:
        """Per-replicate two-sided Wald z p-values of the tested terms."""
        return self._pvalues.copy()

    @property
    def failures(self) -> pd.DataFrame:
        """Replicates with a singular, non-converged or failed fit, with the reason."""
        return self._failures.copy()

    @property
    def settings(self) -> Mapping[str, Any]:
        """Read-only settings of the run (design, effects, sizes, seed entropy, ...)."""
        return self._settings

    @property
    def timings(self) -> pd.DataFrame:
        """Seconds simulating and fitting, per cell (varies between runs)."""
        return self._timings.copy()

    @property
    def terms(self) -> tuple[str, ...]:
        """Names of the tested terms."""
        return tuple(self._settings["terms"])

    def to_frame(self) -> pd.DataFrame:
        """The power table in tidy form (one row per cell × term); same as ``.power``."""
        return self.power

    def required_size(
        self,
        target: float = 0.8,
        *,
        along: str | None = None,
        term: str | Sequence[str] | None = None,
        conservative: bool = False,
    ) -> pd.DataFrame:
        """Smallest simulated size whose power reaches ``target``.

        Parameters
        ----------
        target : float
            Power to reach, in (0, 1).
        along : {"n_therapists", "n_patients", "n_sessions"}, optional
            Grid dimension to search; defaults to the one that varies (n_therapists when
            several vary). The other dimensions stay as they are: one row per term and
            combination of their values.
        term : str or list of str, optional
            Tested term(s); default all.
        conservative : bool
            Require the lower Clopper–Pearson bound (instead of the estimate) to reach
            ``target``.

        Returns
        -------
        DataFrame
            Columns: the other size columns, ``term``, ``along``, ``required`` (the
            smallest grid value reaching the target, missing when none does), and that
            cell's ``power``, ``ci_low``, ``ci_high``. Only simulated sizes are
            considered: refine the grid around the answer for a finer one.

        Examples
        --------
        >>> res = power("truth_bias", n_therapists=[10, 20], n_patients=40,
        ...             n_sims=4, rng=1, progress=False)
        >>> list(res.required_size(0.8).columns)  # doctest: +NORMALIZE_WHITESPACE
        ['n_patients', 'n_sessions', 'term', 'along', 'required', 'power', 'ci_low',
         'ci_high']
        """
        if isinstance(target, bool) or not isinstance(target, numbers.Real):
            raise TypeError(f"`target` must be a number in (0, 1); got {target!r}.")
        if not 0.0 < float(target) < 1.0:
            raise ValueError(f"`target` must be in (0, 1); got {target}.")
        table = self._power
        dim = self._along(along)
        terms = self._terms(term)
        others = [c for c in SIZE_COLUMNS if c != dim]
        score = table["ci_low"] if conservative else table["power"]
        rows = []
        for key, block in table[table["term"].isin(terms)].groupby([*others, "term"], sort=True):
            block = block.sort_values(dim)
            hit = block[score.loc[block.index] >= target]
            first = hit.iloc[0] if len(hit) else None
            rows.append(
                {
                    **dict(zip([*others, "term"], key, strict=True)),
                    "along": dim,
                    "required": pd.NA if first is None else int(first[dim]),
                    "power": np.nan if first is None else first["power"],
                    "ci_low": np.nan if first is None else first["ci_low"],
                    "ci_high": np.nan if first is None else first["ci_high"],
                }
            )
        out = pd.DataFrame(rows)
        out["required"] = out["required"].astype("Int64")
        return out

    def _along(self, along: str | None) -> str:
        varying = [c for c in SIZE_COLUMNS if self._power[c].nunique() > 1]
        if along is None:
            return varying[0] if varying else "n_therapists"
        return check_choice(along, "along", SIZE_COLUMNS)

    def _terms(self, term: str | Sequence[str] | None) -> list[str]:
        if term is None:
            return list(self.terms)
        names = [term] if isinstance(term, str) else list(term)
        for name in names:
            check_choice(name, "term", self.terms)
        return names

    def summary(self) -> Summary:
        """Printable summary: settings, the power table and failure counts."""
        s = self._settings
        changed = {k: v for k, v in s["effects"].items() if v != s["default_effects"][k]}
        header = [
            ("Design", f"{s['design']} ({s['model']})"),
            ("Tested", ", ".join(s["terms"])),
            ("Replicates per cell", str(s["n_sims"])),
            ("alpha", f"{s['alpha']:g}"),
            ("Missed sessions (MCAR)", f"{s['p_missing']:g}"),
            ("Effects changed from defaults", ", ".join(f"{k}={v:g}" for k, v in
                                                         changed.items()) or "none"),
            ("Engine", s["engine"]),
            ("Seed entropy", str(s["entropy"])),
        ]
        cols = ["true_value", "power", "mcse", "ci_low", "ci_high", "n_valid", "n_failed",
                "n_singular"]
        table = self._power.set_index([*SIZE_COLUMNS, "term"])[cols]
        return Summary(
            f"Monte-Carlo power: {s['design']} design",
            header,
            [("Power by cell and term", table)],
            warnings=self._failure_lines(),
            notes=[
                "power = share of valid replicates with two-sided Wald z p < alpha; "
                "mcse = sqrt(power (1 - power) / n_valid); 95% Clopper-Pearson interval.",
                "Singular (boundary) fits that converged count as valid; failed fits "
                "(not converged, errors) are excluded and listed in `.failures`.",
            ],
        )

    def _failure_lines(self) -> list[str]:
        lines = []
        fails = self._failures
        for key, block in fails.groupby(SIZE_COLUMNS, sort=True):
            counts = block["status"].value_counts()
            parts = ", ".join(f"{n} {status}" for status, n in counts.items())
            cell = Sizes(*(int(v) for v in key)).label()  # type: ignore[call-overload]
            lines.append(
                f"cell {cell}: {parts} of {self._settings['n_sims']} replicates "
                f"({int((~block['counted']).sum())} excluded from power)"
            )
        return lines

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def __repr__(self) -> str:
        s = self._settings
        return (
            f"PowerResult(design={s['design']!r}, cells={len(s['cells'])}, "
            f"n_sims={s['n_sims']}, terms={list(s['terms'])})"
        )

    def plot(self, **kwargs: Any) -> Axes:
        """Power curve; see :func:`alliancestats.plotting.plot_power` (``**kwargs``)."""
        from ..plotting import plot_power

        ax: Axes = plot_power(self, **kwargs)
        return ax


# --------------------------------------------------------------------------- inputs


def null_effects(design: str) -> dict[str, float]:
    """Simulator overrides under which every term ``design`` tests is exactly 0.

    ``power(design, effects="null")`` uses them; combine them with other overrides
    as ``{**null_effects(design), "sd_truth_force": 0.1}``. The rejection rate under
    the null is the type-I error rate, estimated the same way as power.

    Examples
    --------
    >>> null_effects("truth_bias")
    {'gamma13': 0.0}
    """
    return dict(_design(design).null)


def _design(design: Any) -> Design:
    if isinstance(design, Design):
        return design
    name = check_choice(design, "design", tuple(DESIGNS))
    return DESIGNS[name]


def _effects(effects: Any, design: Design) -> PRNParams:
    """Resolve ``effects`` (None, "null", a PRNParams or a dict of overrides)."""
    if isinstance(effects, str):
        check_choice(effects, "effects", ("null",))
        return PRNParams(**design.null)
    return _resolve_params(effects, "effects", "'null', ")


def _size_list(value: Any, name: str) -> list[int]:
    values = [value] if not isinstance(value, Sequence) or isinstance(value, str) else value
    if isinstance(value, np.ndarray):
        values = value.tolist()
    if len(values) == 0:
        raise ValueError(f"`{name}` is empty; give a size or a list of sizes.")
    out = []
    for v in values:
        if isinstance(v, np.integer):
            v = int(v)
        if isinstance(v, bool) or not isinstance(v, numbers.Integral):
            raise TypeError(f"`{name}` must be an integer or a list of integers; got {v!r}.")
        out.append(int(v))
    if len(set(out)) != len(out):
        raise ValueError(f"`{name}` lists a size more than once: {out}.")
    return sorted(out)


def _grid(
    design: Design,
    n_therapists: Any,
    n_patients: Any,
    n_sessions: Any,
    patients_per_therapist: Any,
) -> list[Sizes]:
    """Grid cells: the product of the size lists, each checked for feasibility."""
    therapists = _size_list(n_therapists, "n_therapists")
    sessions = _size_list(n_sessions, "n_sessions")
    if patients_per_therapist is None:
        combos = [
            (t, p, s) for t in therapists for p in _size_list(n_patients, "n_patients")
            for s in sessions
        ]
    else:
        ppt = patients_per_therapist
        if isinstance(ppt, bool) or not isinstance(ppt, numbers.Real) or not float(ppt) >= 1:
            raise ValueError(f"`patients_per_therapist` must be a number >= 1; got {ppt!r}.")
        if n_patients != 117:
            raise ValueError("Give either `n_patients` or `patients_per_therapist`, not both.")
        combos = [(t, round(float(ppt) * t), s) for t in therapists for s in sessions]
    cells = []
    for t, p, s in combos:
        try:
            _check_sizes(t, p, s)
        except (TypeError, ValueError) as exc:
            raise type(exc)(f"grid cell {Sizes(t, p, s).label()}: {exc}") from exc
        if t < 2:
            raise ValueError(f"`n_therapists` must be at least 2 (one per arm); got {t}.")
        if s < design.min_sessions:
            raise ValueError(
                f"`n_sessions` must be at least {design.min_sessions} for the "
                f"{design.name!r} design; got {s}."
            )
        cells.append(Sizes(t, p, s))
    return cells


def _positive_int(value: Any, name: str, allow_negative: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer; got {value!r}.")
    if int(value) == 0 or (int(value) < 0 and not allow_negative):
        extra = " (or negative: all cores but |n_jobs| - 1)" if allow_negative else ""
        raise ValueError(f"`{name}` must be a positive integer{extra}; got {value}.")
    return int(value)


def _alpha(alpha: Any) -> float:
    if isinstance(alpha, bool) or not isinstance(alpha, numbers.Real):
        raise TypeError(f"`alpha` must be a number in (0, 1); got {alpha!r}.")
    if not 0.0 < float(alpha) < 1.0:
        raise ValueError(f"`alpha` must be in (0, 1); got {alpha}.")
    return float(alpha)


def _root_seed(rng: Any, manifest: Mapping[str, Any] | None) -> tuple[int, tuple[int, ...]]:
    """Root entropy and spawn key from ``rng`` (SPEC 7), or from a checkpoint to resume.

    With ``rng=None`` a resumed run reuses the checkpoint's seed; a new run draws fresh
    entropy from the operating system (recorded in ``settings``).
    """
    if rng is None:
        if manifest is not None:
            stored = manifest["settings"]
            return int(stored["entropy"]), tuple(int(k) for k in stored["root_key"])
        return _entropy_int(np.random.SeedSequence().entropy), ()
    if isinstance(rng, np.random.SeedSequence):
        return _entropy_int(rng.entropy), tuple(int(k) for k in rng.spawn_key)
    if isinstance(rng, np.random.Generator):
        words = rng.integers(0, 2**32, size=4, dtype=np.uint64)
        return sum(int(w) << (32 * i) for i, w in enumerate(words)), ()
    if isinstance(rng, numbers.Integral) and not isinstance(rng, bool):
        if int(rng) < 0:
            raise ValueError(f"`rng` seed must be non-negative; got {rng}.")
        return int(rng), ()
    raise TypeError(
        f"`rng` must be None, an int seed, a numpy SeedSequence or Generator; "
        f"got {type(rng).__name__}."
    )


def _entropy_int(entropy: Any) -> int:
    if isinstance(entropy, numbers.Integral):
        return int(entropy)
    # SeedSequence accepts a sequence of ints as entropy; fold it into one integer.
    return int(np.random.SeedSequence(entropy).generate_state(1, np.uint64)[0])


def _engine(engine: Any) -> str:
    """The validated engine name."""
    return str(check_choice(engine, "engine", ENGINES))


# --------------------------------------------------------------------------- power()


def power(
    design: str,
    *,
    effects: Mapping[str, float] | PRNParams | str | None = None,
    n_therapists: int | Sequence[int] = 40,
    n_patients: int | Sequence[int] = 117,
    n_sessions: int | Sequence[int] = 6,
    p_missing: float = 0.0,
    n_sims: int = 1000,
    alpha: float = 0.05,
    rng: Any = None,
    n_jobs: int = 1,
    backend: Any = None,
    progress: bool = True,
    checkpoint: str | os.PathLike[str] | None = None,
    engine: str = "fast",
    patients_per_therapist: float | None = None,
    chunk_size: int | None = None,
) -> PowerResult:
    r"""Monte-Carlo power of a PRN trial design for one research question.

    For each grid cell (a combination of sizes), ``n_sims`` trials are simulated with
    :func:`~alliancestats.simulate_prn`'s data-generating process, the design's model is
    fitted to each, and the share of replicates in which each tested term has a
    two-sided Wald z p-value below ``alpha`` is the power (the type-I error rate when the
    term's true value is 0).

    Parameters
    ----------
    design : {"truth_bias", "growth", "lagged_rsa"}
        The research question (see :mod:`alliancestats.power` for the tested terms).
    effects : dict, PRNParams, "null" or None
        Simulator parameters: None for the documented :class:`~alliancestats.PRNParams`
        defaults, a dict overriding some of them by name, a full ``PRNParams``, or
        ``"null"`` for :func:`null_effects` (every tested term 0: type-I error).
    n_therapists, n_patients, n_sessions : int or sequence of int
        Sizes; sequences span a grid (their product). Every therapist treats at least
        one patient, so each cell needs ``n_patients >= n_therapists``.
    p_missing : float
        Probability that a patient misses a session (MCAR), in [0, 1).
    n_sims : int
        Replicates per grid cell.
    alpha : float
        Significance level of the two-sided tests.
    rng : None, int, SeedSequence or Generator
        Root seed (SPEC 7). Its entropy is recorded in ``settings["entropy"]``; the same
        seed gives identical results. With None, a fresh seed is drawn, or the
        checkpoint's seed is reused when resuming.
    n_jobs : int
        Parallel workers (joblib; -1 for all cores). Results do not depend on it.
    backend : None, str or distributed.Client
        None or a joblib backend name ("loky", "threading", "multiprocessing"); or
        ``"dask"`` to run on the current dask client, or on a new ``LocalCluster`` with
        ``n_jobs`` workers; or a scheduler address ("tcp://host:8786"); or a
        ``distributed.Client``.
    progress : bool
        Show a progress bar (``tqdm.auto``; off when not on a terminal or notebook).
    checkpoint : path, optional
        Directory for finished chunks. Each chunk is written atomically as it
        finishes; re-running the same call resumes an interrupted run, computing only
        the missing replicates. More replicates or grid cells may be added later; a
        checkpoint made with other effects, missingness, engine or seed is refused.
    engine : {"fast", "statsmodels"}
        "fast" fits with the project's nested-design engine on arrays built once per
        replicate without formula parsing, warm-started from a pilot fit per cell
        (falls back to "statsmodels" when the engine is unavailable); "statsmodels"
        calls the public model function (``fit_truth_bias``, ``fit_growth``,
        ``fit_lagged_rsa``) on each simulated data frame.
    patients_per_therapist : float, optional
        Instead of ``n_patients``: each cell has ``round(patients_per_therapist *
        n_therapists)`` patients, so the caseload stays fixed along the grid.
    chunk_size : int, optional
        Replicates per task (default: about four tasks per worker and cell, 5 to 100
        each). Affects scheduling and checkpoint granularity, never the results.

    Returns
    -------
    PowerResult

    Raises
    ------
    TypeError, ValueError
        For invalid arguments (naming the argument), an unknown effect name (with
        close matches), or a checkpoint made with different settings.

    See Also
    --------
    null_effects, PowerResult.required_size, alliancestats.simulate_prn

    Notes
    -----
    *Validity.* A replicate counts when its fit converged and gave finite estimates and
    standard errors. Singular (boundary) fits count as valid: as in lme4, a variance
    component estimated at 0 leaves the fixed-effect tests usable, and dropping those
    replicates would bias power in designs where a variance is truly small. Their
    number is reported (``n_singular``). Non-converged fits and numerical errors are
    excluded, counted (``n_failed``) and listed with the reason in ``failures``.

    *Monte-Carlo error.* With R valid replicates the power estimate has standard error
    sqrt(p(1 − p)/R), at most 0.016 for R = 1000; the Clopper–Pearson interval is exact.

    Examples
    --------
    >>> from alliancestats import power
    >>> res = power("truth_bias", n_therapists=20, n_patients=60, n_sims=20, rng=1,
    ...             progress=False)
    >>> res.power[["term", "n_valid"]]
                          term  n_valid
    0  truth:condition:session       20
    >>> null = power("truth_bias", effects="null", n_therapists=20, n_patients=60,
    ...              n_sims=20, rng=1, progress=False)
    >>> null.settings["effects"]["gamma13"]
    0.0
    """
    spec = _design(design)
    params = _effects(effects, spec)
    cells = _grid(spec, n_therapists, n_patients, n_sessions, patients_per_therapist)
    p_miss = _check_p_missing(p_missing)
    sims = _positive_int(n_sims, "n_sims")
    level = _alpha(alpha)
    jobs = _positive_int(n_jobs, "n_jobs", allow_negative=True)
    chunk = None if chunk_size is None else _positive_int(chunk_size, "chunk_size")
    used_engine = _engine(engine)
    if used_engine == "statsmodels" and spec.name == "growth":
        raise ValueError("engine='statsmodels': the growth design fits correlated "
                         "patient-level intercepts and slopes, which statsmodels MixedLM "
                         "cannot fit; use engine='fast' (the default).")
    if not isinstance(progress, bool):
        raise TypeError(f"`progress` must be True or False; got {progress!r}.")
    manifest = None if checkpoint is None else run.read_manifest(checkpoint)
    entropy, root_key = _root_seed(rng, manifest)

    replicate_settings = {
        "design": spec.name,
        "effects": dataclasses.asdict(params),
        "p_missing": p_miss,
        "engine": used_engine,
        "entropy": entropy,
        "root_key": list(root_key),
    }
    store = None if checkpoint is None else run.Checkpoint(checkpoint, replicate_settings)
    chunks = store.load(cells) if store is not None else {c: [] for c in cells}
    template = run.ChunkTask(spec, cells[0], params, p_miss, used_engine, entropy,
                             root_key, 0, 0)
    _simulate_and_fit(template, cells, sims, chunks, store, jobs, backend, progress, chunk)

    settings = {
        **replicate_settings,
        "model": spec.model,
        "terms": list(spec.terms),
        "default_effects": dataclasses.asdict(PRNParams()),
        "cells": [dataclasses.astuple(c) for c in cells],
        "n_sims": sims,
        "alpha": level,
        "engine_requested": engine,
        "n_jobs": jobs,
        "backend": None if backend is None else str(backend),
        "checkpoint": None if checkpoint is None else os.fspath(checkpoint),
    }
    merged = {c: run.assemble(chunks[c], sims, len(spec.terms)) for c in cells}
    return _build_result(spec, params, cells, merged, settings)


def _simulate_and_fit(
    template: run.ChunkTask,
    cells: list[Sizes],
    n_sims: int,
    chunks: dict[Sizes, list[run.Chunk]],
    store: run.Checkpoint | None,
    n_jobs: int,
    backend: Any,
    progress: bool,
    chunk_size: int | None,
) -> None:
    """Compute every missing replicate; finished chunks are added to ``chunks``."""
    from tqdm.auto import tqdm

    done = run.done_replicates(chunks)
    todo = [c for c in cells if len(set(range(n_sims)) - done.get(c, set())) > 0]
    if not todo:
        return
    theta0 = {c: _pilot_theta(template, c) for c in todo}
    workers = 1 if backend is None and n_jobs == 1 else _n_workers(n_jobs)
    size = chunk_size or run.default_chunk_size(n_sims, workers)
    tasks = run.plan_tasks(template, todo, n_sims, done, size, theta0)
    with tqdm(
        total=sum(t.size for t in tasks),
        disable=None if progress else True,
        desc=f"power {template.design.name}",
        unit="rep",
    ) as bar:

        def on_result(chunk: run.Chunk) -> None:
            if store is not None:
                store.save(chunk)
            sizes = Sizes(*(int(v) for v in chunk["sizes"]))
            chunks.setdefault(sizes, []).append(chunk)
            bar.update(len(chunk["replicate"]))
            run._after_chunk(chunk)

        run.execute(tasks, n_jobs=n_jobs, backend=backend, on_result=on_result)


def _n_workers(n_jobs: int) -> int:
    from joblib import cpu_count

    return n_jobs if n_jobs > 0 else max(1, cpu_count() + 1 + n_jobs)


def _pilot_theta(template: run.ChunkTask, sizes: Sizes) -> tuple[float, ...] | None:
    """Warm start for a cell: the covariance parameters fitted to its replicate 0.

    It is a function of the settings alone, so every chunk of the cell starts from the
    same point whoever runs it (results stay independent of chunking and workers).
    """
    if template.engine != "fast":
        return None
    task = dataclasses.replace(template, sizes=sizes, start=0, stop=1)
    with run.one_blas_thread():
        outcome = run.fit_replicate(task, run.simulate_replicate(task, 0))
    return outcome.theta if outcome.status in _VALID else None


# --------------------------------------------------------------------------- tables


def _build_result(
    spec: Design,
    params: PRNParams,
    cells: list[Sizes],
    merged: Mapping[Sizes, run.Chunk],
    settings: dict[str, Any],
) -> PowerResult:
    alpha, n_sims = settings["alpha"], settings["n_sims"]
    terms = list(spec.terms)
    index = pd.MultiIndex.from_tuples(
        [(*dataclasses.astuple(c), r) for c in cells for r in range(n_sims)],
        names=[*SIZE_COLUMNS, "replicate"],
    )

    def stacked(key: str) -> np.ndarray:
        return np.concatenate([merged[c][key] for c in cells])

    est, se = stacked("estimate"), stacked("std_error")
    with np.errstate(invalid="ignore", divide="ignore"):
        pvals = 2.0 * stats.norm.sf(np.abs(est / se))
    status = stacked("status")
    valid = np.isin(status, _VALID)[:, None] & np.isfinite(est) & np.isfinite(se) & (se > 0)
    pvals = np.where(valid, pvals, np.nan)
    rows = []
    for i, cell in enumerate(cells):
        block = slice(i * n_sims, (i + 1) * n_sims)
        truth = spec.true_values(params, cell)
        for j, term in enumerate(terms):
            rows.append(
                _term_row(cell, term, truth[j], est[block, j], se[block, j],
                          pvals[block, j], valid[block, j], status[block], alpha)
            )
    seconds = stacked("seconds")
    timings = pd.DataFrame(
        {
            **{c: [getattr(cell, c) for cell in cells] for c in SIZE_COLUMNS},
            "seconds_simulating": [seconds[i * n_sims:(i + 1) * n_sims, 0].sum()
                                   for i in range(len(cells))],
            "seconds_fitting": [seconds[i * n_sims:(i + 1) * n_sims, 1].sum()
                                for i in range(len(cells))],
        }
    )
    return PowerResult(
        pd.DataFrame(rows),
        pd.DataFrame(np.where(valid, est, np.nan), index=index, columns=terms),
        pd.DataFrame(np.where(valid, se, np.nan), index=index, columns=terms),
        pd.DataFrame(pvals, index=index, columns=terms),
        _failures(index, status, stacked("message")),
        MappingProxyType(settings),
        timings,
    )


def _term_row(
    cell: Sizes, term: str, truth: float, est: np.ndarray, se: np.ndarray,
    pvals: np.ndarray, valid: np.ndarray, status: np.ndarray, alpha: float,
) -> dict[str, Any]:
    """One row of the power table: rejection rate with its Monte-Carlo uncertainty."""
    n = int(valid.sum())
    k = int((pvals[valid] < alpha).sum())
    p = k / n if n else np.nan
    if n:
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        low, high = ci.low, ci.high
        z = stats.norm.isf(alpha / 2)
        covered = np.abs(est[valid] - truth) <= z * se[valid]
    else:
        low = high = np.nan
        covered = np.array([])
    return {
        **dataclasses.asdict(cell),
        "term": term,
        "true_value": truth,
        "power": p,
        "mcse": np.sqrt(p * (1 - p) / n) if n else np.nan,
        "ci_low": low,
        "ci_high": high,
        "n_valid": n,
        "n_failed": len(valid) - n,
        "n_singular": int((valid & (status == "singular")).sum()),
        "mean_estimate": est[valid].mean() if n else np.nan,
        "sd_estimate": est[valid].std(ddof=1) if n > 1 else np.nan,
        "mean_std_error": se[valid].mean() if n else np.nan,
        "coverage": covered.mean() if n and np.isfinite(truth) else np.nan,
    }


def _failures(index: pd.MultiIndex, status: np.ndarray, message: np.ndarray) -> pd.DataFrame:
    bad = status != "ok"
    frame = index[bad].to_frame(index=False)
    frame["status"] = status[bad].astype(str)
    frame["counted"] = frame["status"] == "singular"
    frame["reason"] = message[bad].astype(str)
    return frame


# --------------------------------------------------------------------------- command line


def add_power_arguments(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Add the options of ``alliancestats power`` to ``parser`` (a CLI subparser)."""
    parser.add_argument("--design", default="truth_bias", choices=sorted(DESIGNS),
                        help="research question to power (default: truth_bias)")
    parser.add_argument("--therapists", default="40", metavar="N[,N...]",
                        help="numbers of therapists, comma-separated (a grid)")
    size = parser.add_mutually_exclusive_group()
    size.add_argument("--patients", default="117", metavar="N[,N...]",
                      help="numbers of patients in all, comma-separated")
    size.add_argument("--patients-per-therapist", type=float, default=None, metavar="X",
                      help="patients per therapist instead of --patients")
    parser.add_argument("--sessions", default="6", metavar="N[,N...]",
                        help="sessions per patient, comma-separated")
    parser.add_argument("--missing", type=float, default=0.0, metavar="P",
                        help="probability of a missed session (MCAR)")
    parser.add_argument("--sims", type=int, default=1000, help="replicates per grid cell")
    parser.add_argument("--alpha", type=float, default=0.05)
    parser.add_argument("--seed", type=int, default=None,
                        help="root seed (default: fresh, or the checkpoint's when resuming)")
    parser.add_argument("--jobs", type=int, default=1, help="parallel workers (-1: all)")
    parser.add_argument("--backend", default=None,
                        help="joblib backend, 'dask' or a dask scheduler address")
    parser.add_argument("--engine", default="fast", choices=ENGINES)
    parser.add_argument("--effect", action="append", default=[], metavar="NAME=VALUE",
                        help="override a simulator parameter (repeatable), e.g. gamma13=0.1")
    parser.add_argument("--null", action="store_true",
                        help="simulate under the null (type-I error) instead")
    parser.add_argument("--target", type=float, default=0.8,
                        help="power for the required-size table (default 0.8)")
    parser.add_argument("--out", required=True, metavar="DIR",
                        help="output directory (table, plot, checkpoint for resuming)")
    parser.add_argument("--no-progress", action="store_true", help="hide the progress bar")
    return parser


def _parse_sizes(text: str, name: str) -> list[int]:
    try:
        return [int(part) for part in text.split(",") if part.strip()]
    except ValueError:
        raise ValueError(f"`{name}` must be comma-separated integers; got {text!r}.") from None


def _parse_effects(items: Sequence[str], null: bool, design: str) -> dict[str, float] | str:
    effects: dict[str, float] = null_effects(design) if null else {}
    for item in items:
        name, sep, value = item.partition("=")
        try:
            effects[name.strip()] = float(value)
        except ValueError:
            sep = ""
        if not sep:
            raise ValueError(f"`--effect` must look like NAME=NUMBER; got {item!r}.")
    return effects


def power_main(args: argparse.Namespace) -> int:
    """Run ``alliancestats power`` from parsed arguments; write the outputs to ``--out``.

    Writes ``power.csv`` (the power table), ``required_size.csv``, ``summary.txt``,
    ``replicates.csv`` (per-replicate estimates, SEs and p-values), ``failures.csv``,
    ``power.png`` (when :mod:`alliancestats.plotting` is available) and keeps the
    checkpoint in ``checkpoint/``: re-running the same command resumes an interrupted
    run. Returns the exit status.
    """
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = power(
        args.design,
        effects=_parse_effects(args.effect, args.null, args.design),
        n_therapists=_parse_sizes(args.therapists, "--therapists"),
        n_patients=_parse_sizes(args.patients, "--patients"),
        n_sessions=_parse_sizes(args.sessions, "--sessions"),
        patients_per_therapist=args.patients_per_therapist,
        p_missing=args.missing,
        n_sims=args.sims,
        alpha=args.alpha,
        rng=args.seed,
        n_jobs=args.jobs,
        backend=args.backend,
        progress=not args.no_progress,
        checkpoint=out / "checkpoint",
        engine=args.engine,
    )
    res.power.to_csv(out / "power.csv", index=False)
    res.required_size(args.target).to_csv(out / "required_size.csv", index=False)
    tables = {"estimate": res.estimates, "std_error": res.std_errors, "p_value": res.pvalues}
    long = {k: v.rename_axis(columns="term").stack() for k, v in tables.items()}
    pd.concat(long, axis=1).reset_index().to_csv(out / "replicates.csv", index=False)
    res.failures.to_csv(out / "failures.csv", index=False)
    text = str(res.summary())
    (out / "summary.txt").write_text(text + "\n")
    print(text)
    _save_plot(res, out / "power.png")
    return 0


def _save_plot(res: PowerResult, path: Path) -> None:
    try:
        ax = res.plot()
    except ImportError:
        print("(no plot: alliancestats.plotting.plot_power is not available)")
        return
    fig = ax.get_figure(root=True)
    if fig is not None:
        fig.savefig(path, dpi=150, bbox_inches="tight")
        import matplotlib.pyplot as plt

        plt.close(fig)


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m alliancestats.power`` (same options as the CLI)."""
    parser = argparse.ArgumentParser(prog="alliancestats power", description=__doc__
                                     and __doc__.splitlines()[0])
    args = add_power_arguments(parser).parse_args(argv)
    try:
        return power_main(args)
    except (TypeError, ValueError) as exc:
        parser.error(str(exc))
        return 2  # pragma: no cover - parser.error exits


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
