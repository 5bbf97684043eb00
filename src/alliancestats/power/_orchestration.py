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

import contextlib
import dataclasses
import numbers
import os
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from .._validation import (
    check_caseloads,
    check_choice,
    check_p_missing,
    check_probability,
    check_sizes,
    progress_bar,
)
from ..exceptions import AllianceStatsWarning
from ..simulate import PRNParams, check_nesting, resolve_params
from . import _run as run
from ._designs import (
    DDF,
    DESIGNS,
    LEGACY_RANDOM,
    RESIDUAL_STRUCTURES,
    Design,
    Sizes,
    Target,
    parse_targets,
    warm_start_design,
    with_ddf,
    with_random,
    with_residual,
    with_targets,
    without_public_fit,
)
from ._result import SIZE_COLUMNS, PowerResult

__all__ = ["ENGINES", "null_effects", "power"]

ENGINES = ("fast", "statsmodels")
_VALID = ("ok", "singular")
DEFAULT_THERAPISTS = 40
DEFAULT_PATIENTS = 117


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
    return resolve_params(effects, "effects", "'null', ")


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
    caseloads: tuple[int, ...] | None = None,
) -> list[Sizes]:
    """Grid cells: the product of the size lists, each checked for feasibility."""
    sessions = _size_list(n_sessions, "n_sessions")
    if caseloads is not None:
        given = {"n_therapists": n_therapists, "n_patients": n_patients,
                 "patients_per_therapist": patients_per_therapist}
        clash = [name for name, value in given.items() if value is not None]
        if clash:
            raise ValueError(
                f"`caseloads` fixes the therapists ({len(caseloads)}) and patients "
                f"({sum(caseloads)}); leave out {', '.join(f'`{c}`' for c in clash)}."
            )
        n_therapists, n_patients = len(caseloads), sum(caseloads)
    therapists = _size_list(DEFAULT_THERAPISTS if n_therapists is None else n_therapists,
                            "n_therapists")
    if patients_per_therapist is None:
        patients = _size_list(DEFAULT_PATIENTS if n_patients is None else n_patients,
                              "n_patients")
        combos = [
            (t, p, s) for t in therapists for p in patients
            for s in sessions
        ]
    else:
        ppt = patients_per_therapist
        if isinstance(ppt, bool) or not isinstance(ppt, numbers.Real) or not float(ppt) >= 1:
            raise ValueError(f"`patients_per_therapist` must be a number >= 1; got {ppt!r}.")
        if n_patients is not None:
            raise ValueError(
                "Give either `n_patients` (patients in all) or `patients_per_therapist` "
                "(a fixed caseload), not both."
            )
        combos = [(t, round(float(ppt) * t), s) for t in therapists for s in sessions]
    cells = []
    for t, p, s in combos:
        try:
            check_sizes(t, p, s)
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


#: PRNParams fields added after checkpoints existed; recorded only when not at their
#: default, so a checkpoint made before they existed still resumes.
_LATER_FIELDS = ("sd_truth_growth_therapist", "sd_truth_force_therapist",
                 "sd_truth_force_growth_therapist",
                 "dropout_untrained", "dropout_trained", "dropout_wellbeing",
                 "residual_ar_truth", "residual_ar_judgment", "residual_ar_wellbeing",
                 "residual_corr_raters")


def _effects_record(params: PRNParams) -> dict[str, float]:
    """The parameters as recorded in a checkpoint's settings."""
    default = PRNParams()
    return {k: v for k, v in dataclasses.asdict(params).items()
            if k not in _LATER_FIELDS or v != getattr(default, k)}


def _caseload(patients_per_therapist: Any) -> float | None:
    """The fixed caseload as a float (validated by :func:`_grid`), or None."""
    return None if patients_per_therapist is None else float(patients_per_therapist)


def _positive_int(value: Any, name: str, allow_negative: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer; got {value!r}.")
    if int(value) == 0 or (int(value) < 0 and not allow_negative):
        extra = " (or negative: all cores but |n_jobs| - 1)" if allow_negative else ""
        raise ValueError(f"`{name}` must be a positive integer{extra}; got {value}.")
    return int(value)


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


@dataclass(frozen=True)
class Plan:
    """The validated arguments of one :func:`power` run (nothing simulated yet)."""

    spec: Design
    params: PRNParams
    cells: list[Sizes]
    caseloads: tuple[int, ...] | None
    targets: tuple[Target, ...] | None
    p_missing: float
    n_sims: int
    alpha: float
    n_jobs: int
    chunk_size: int | None
    engine: str
    ddf: str
    nesting: str = "full"

    @property
    def terms(self) -> tuple[str, ...]:
        """Names of the tested terms."""
        return self.spec.terms


def plan(
    design: Any,
    *,
    effects: Any = None,
    n_therapists: Any = None,
    n_patients: Any = None,
    n_sessions: Any = 6,
    p_missing: Any = 0.0,
    n_sims: Any = 1000,
    alpha: Any = 0.05,
    n_jobs: Any = 1,
    progress: Any = True,
    engine: Any = "fast",
    patients_per_therapist: Any = None,
    chunk_size: Any = None,
    targets: Any = None,
    random: Any = None,
    caseloads: Any = None,
    ddf: Any = None,
    residual: Any = None,
    nesting: Any = "full",
) -> Plan:
    """Validate the arguments of :func:`power` (same meaning) before any simulation."""
    spec = _design(design)
    params = _effects(effects, spec)
    if random is not None:
        spec = with_random(spec, random)
    if residual is None:
        residual = RESIDUAL_STRUCTURES.get(spec.name, ("iid",))[0]
    spec = with_residual(spec, residual)
    nest = check_nesting(nesting)
    if nest == "partial":
        spec = without_public_fit(spec)
    chosen = None if targets is None else parse_targets(spec, targets)
    loads = None if caseloads is None else check_caseloads(caseloads)
    cells = _grid(spec, n_therapists, n_patients, n_sessions, patients_per_therapist, loads)
    p_miss = check_p_missing(p_missing)
    sims = _positive_int(n_sims, "n_sims")
    level = check_probability(alpha, "alpha")
    jobs = _positive_int(n_jobs, "n_jobs", allow_negative=True)
    chunk = None if chunk_size is None else _positive_int(chunk_size, "chunk_size")
    used_engine = _engine(engine)
    if used_engine == "statsmodels" and spec.name == "growth":
        raise ValueError("engine='statsmodels': the growth design fits correlated "
                         "patient-level intercepts and slopes, which statsmodels MixedLM "
                         "cannot fit; use engine='fast' (the default).")
    if used_engine != "fast":
        _check_statsmodels(spec, chosen, random, residual, nest)
    if chosen is not None:
        spec = with_targets(spec, chosen)
    if ddf is None:
        used_ddf = "satterthwaite" if used_engine == "fast" and spec.arrays else "z"
    else:
        used_ddf = check_choice(ddf, "ddf", DDF)
        if used_ddf != "z" and used_engine != "fast":
            raise ValueError("`ddf='satterthwaite'` is computed on the fast engine's "
                             "arrays; use engine='fast' (the default) or ddf='z'.")
    spec = with_ddf(spec, used_ddf)
    if not isinstance(progress, bool):
        raise TypeError(f"`progress` must be True or False; got {progress!r}.")
    return Plan(spec, params, cells, loads, chosen, p_miss, sims, level, jobs, chunk,
                used_engine, used_ddf, nest)


def _check_statsmodels(spec: Design, targets: Any, random: Any, residual: Any,
                       nesting: str) -> None:
    """Refuse with engine='statsmodels' what only the fast engine's arrays can fit."""
    fast_only = []
    if targets is not None:
        fast_only.append("`targets`")
    if random is not None and not (spec.name == "truth_bias"
                                   and random in ("intercept", "auto")):
        fast_only.append(f"`random={random!r}`")
    if residual != "iid":
        fast_only.append(f"`residual={residual!r}`")
    if nesting != "full":
        fast_only.append(f"`nesting={nesting!r}`")
    if fast_only:
        raise ValueError(f"{' and '.join(fast_only)} are fitted on the fast engine's arrays "
                         "(statsmodels MixedLM cannot express them); use engine='fast' (the "
                         "default).")


def read_seed(rng: Any, checkpoint: str | os.PathLike[str] | None) -> np.random.SeedSequence:
    """The root seed a run would use: from ``rng``, else the checkpoint's, else fresh."""
    manifest = None if checkpoint is None else run.read_manifest(checkpoint)
    entropy, root_key = _root_seed(rng, manifest)
    return np.random.SeedSequence(entropy, spawn_key=root_key)


def power(
    design: str,
    *,
    effects: Mapping[str, float] | PRNParams | str | None = None,
    n_therapists: int | Sequence[int] | None = None,
    n_patients: int | Sequence[int] | None = None,
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
    targets: str | Sequence[str] | Mapping[str, Mapping[str, float]] | None = None,
    random: str | None = None,
    caseloads: Sequence[int] | None = None,
    ddf: str | None = None,
    residual: str | None = None,
    nesting: str = "full",
) -> PowerResult:
    r"""Monte-Carlo power of a PRN trial design for one research question.

    For each grid cell (a combination of sizes), ``n_sims`` trials are simulated with
    :func:`~alliancestats.simulate_prn`'s data-generating process, the design's model is
    fitted to each, and the share of replicates in which each tested term has a
    two-sided p-value below ``alpha`` (t test with Satterthwaite df, as the analysis, or
    Wald z; see ``ddf``) is the power (the type-I error rate when the
    term's true value is 0).

    Parameters
    ----------
    design : {"truth_bias", "growth", "lagged_rsa", "growth_single"}
        The research question (see :mod:`alliancestats.power` for the tested terms;
        ``"growth_single"`` is powerlmm's model, see the guide page on powerlmm).
    effects : dict, PRNParams, "null" or None
        Simulator parameters: None for the documented :class:`~alliancestats.PRNParams`
        defaults, a dict overriding some of them by name, a full ``PRNParams``, or
        ``"null"`` for :func:`null_effects` (every tested term 0: type-I error).
    n_therapists, n_patients, n_sessions : int or sequence of int
        Sizes; sequences span a grid (their product). Every therapist treats at least
        one patient, so each cell needs ``n_patients >= n_therapists``. Not given (None):
        40 therapists; 117 patients, or as ``patients_per_therapist`` implies; or as
        ``caseloads`` implies.
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
        Instead of ``n_patients`` (giving both is an error): each cell has
        ``round(patients_per_therapist * n_therapists)`` patients, so the caseload stays
        fixed along the grid, and :meth:`PowerResult.required_size` answers in
        therapists.
    chunk_size : int, optional
        Replicates per task (default: about four tasks per worker and cell, 5 to 100
        each). Affects scheduling and checkpoint granularity, never the results.
    targets : str, list of str or dict, optional
        What to test instead of the design's default terms: names of the design's
        built-in targets (e.g. ``"truth_force_difference_last"``, the trained minus
        untrained truth force at the last session; ``"a2_trained"``,
        ``"a1_difference"``; ``"time:condition[therapist-patient]"``), and/or any
        linear contrast of the model's fixed effects as ``{name: {column: weight}}``
        (the columns are listed in the error message for an unknown one). Each is
        tested as ``ddf`` says; ``true_value`` is the contrast of the
        population coefficients (NaN when a weighted coefficient depends on the
        sample's centring). Needs ``engine="fast"``.
    caseloads : sequence of int, optional
        Patients of each therapist (powerlmm's ``unequal_clusters``), e.g. ``[2, 2, 3,
        3, 4, 10]``: every replicate has ``len(caseloads)`` therapists with these
        caseloads (arms randomised over them), instead of the random caseloads of
        ``caseload_shape``. Leave ``n_therapists``, ``n_patients`` and
        ``patients_per_therapist`` out; ``n_sessions`` may still be a grid.
    ddf : {"satterthwaite", "z"}, optional
        The test of each term. None (default) tests as the analysis does: t tests with
        Satterthwaite df (the model functions' default, lmerTest's) with
        ``engine="fast"``; Wald z tests with ``engine="statsmodels"`` or a design
        without model arrays. ``"z"``: Wald z tests (half the cost per replicate; the
        same decisions when the df are large, liberal for therapist-level terms with
        few therapists).
    random : str, optional
        Random-effects structure of the fitted model; None: the analysis' default.
        Truth and bias: ``"auto"`` (default, West & Kenny's random intercepts and truth
        forces for therapists and patients, correlated, simplified step by step when a
        fit is singular, as ``fit_truth_bias(random="auto")``), ``"slopes"`` (the same
        without simplification) or ``"intercept"`` (random intercepts only: liberal for
        moderators of the truth force when truth force varies over therapists). Growth:
        ``"rater_slopes_therapist"`` (default, the report's dyadic structure with
        therapist random slopes per rater), ``"rater_slopes"`` (without them: liberal
        when therapists' growth rates vary), ``"slopes"`` (random intercepts and slopes
        shared by the raters) or ``"rater_intercepts"``.
        With ``engine="statsmodels"`` only the truth-and-bias ``"intercept"`` and
        ``"auto"`` (which MixedLM starts from uncorrelated patient-level slopes).
    residual : {"iid", "ar1", "rater", "rater_ar1"}, optional
        Residual structure of the fitted model (the simulated one is set by the
        ``residual_*`` effects, independently); None: the analysis' default, ``"rater"``
        for the growth design (as the report: the calibrated dyadic structure) and
        ``"iid"`` for the others. ``"ar1"``: AR(1) over sessions within each patient
        (per rater for growth); for the growth design also ``"rater"`` (a residual SD
        per rater, correlated at a session) and ``"rater_ar1"``. As ``residual=`` on
        the model functions. Other than ``"iid"`` needs ``engine="fast"``.
    nesting : {"full", "partial"}
        ``"partial"``: a partially nested trial (therapists in the trained arm only; the
        untrained arm's patients ungrouped), simulated as ``simulate_prn(nesting=
        "partial")`` and fitted with therapist random effects in the trained arm only
        (lme4 ``(0 + condition | therapist)``). Needs ``engine="fast"``.

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
    run_plan = plan(
        design, effects=effects, n_therapists=n_therapists, n_patients=n_patients,
        n_sessions=n_sessions, p_missing=p_missing, n_sims=n_sims, alpha=alpha,
        n_jobs=n_jobs, progress=progress, engine=engine,
        patients_per_therapist=patients_per_therapist, chunk_size=chunk_size,
        targets=targets, random=random, caseloads=caseloads, ddf=ddf, residual=residual,
        nesting=nesting,
    )
    spec, params, cells, loads, chosen = (run_plan.spec, run_plan.params, run_plan.cells,
                                          run_plan.caseloads, run_plan.targets)
    p_miss, sims, level, jobs = (run_plan.p_missing, run_plan.n_sims, run_plan.alpha,
                                 run_plan.n_jobs)
    chunk, used_engine, used_ddf = run_plan.chunk_size, run_plan.engine, run_plan.ddf
    with contextlib.ExitStack() as stack:
        if checkpoint is not None:
            # Held until the run ends: a second run on the same directory fails at once.
            stack.enter_context(run.CheckpointLock(checkpoint))
        manifest = None if checkpoint is None else run.read_manifest(checkpoint)
        entropy, root_key = _root_seed(rng, manifest)
        replicate_settings = {
            "design": spec.name,
            "effects": _effects_record(params),
            "p_missing": p_miss,
            "engine": used_engine,
            "entropy": entropy,
            "root_key": list(root_key),
        }
        if chosen is not None:
            replicate_settings["targets"] = {t.name: t.describe() for t in chosen}
        if spec.random and spec.random != LEGACY_RANDOM.get(spec.name):
            replicate_settings["random"] = spec.random
        if spec.residual != "iid":
            replicate_settings["residual"] = spec.residual
        if run_plan.nesting != "full":
            replicate_settings["nesting"] = run_plan.nesting
        if loads is not None:
            replicate_settings["caseloads"] = list(loads)
        if used_ddf != "z":
            replicate_settings["ddf"] = used_ddf
        store = None if checkpoint is None else run.Checkpoint(checkpoint, replicate_settings)
        chunks = (store.load(cells, len(spec.terms)) if store is not None
                  else {c: [] for c in cells})
        repaired = [] if store is None else list(store.quarantined)
        if repaired:
            warnings.warn(
                f"checkpoint {str(checkpoint)!r}: {len(repaired)} damaged chunk "
                f"file(s) moved to {run.QUARANTINE}/ and their replicates computed again "
                f"({'; '.join(repaired[:3])}).",
                AllianceStatsWarning,
                stacklevel=2,
            )
        template = run.ChunkTask(spec, cells[0], params, p_miss, used_engine, entropy,
                                 root_key, 0, 0, caseloads=loads, nesting=run_plan.nesting)
        _simulate_and_fit(template, cells, sims, chunks, store, jobs, backend, progress,
                          chunk)

    settings = {
        **replicate_settings,
        "model": spec.model,
        "terms": list(spec.terms),
        "default_effects": dataclasses.asdict(PRNParams()),
        "cells": [dataclasses.astuple(c) for c in cells],
        "patients_per_therapist": _caseload(patients_per_therapist),
        "n_sims": sims,
        "alpha": level,
        "engine_requested": engine,
        "n_jobs": jobs,
        "backend": None if backend is None else str(backend),
        "checkpoint": None if checkpoint is None else os.fspath(checkpoint),
        "quarantined": repaired,
        "ddf": used_ddf,
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
    done = run.done_replicates(chunks)
    todo = [c for c in cells if len(set(range(n_sims)) - done.get(c, set())) > 0]
    if not todo:
        return
    theta0 = {c: _pilot_theta(template, c) for c in todo}
    workers = 1 if backend is None and n_jobs == 1 else _n_workers(n_jobs)
    size = chunk_size or run.default_chunk_size(n_sims, workers)
    tasks = run.plan_tasks(template, todo, n_sims, done, size, theta0)
    with progress_bar(progress, total=sum(t.size for t in tasks),
                      desc=f"power {template.design.name}", unit="rep") as bar:

        def on_result(chunk: run.Chunk) -> None:
            if store is not None:
                store.save(chunk)
            sizes = Sizes(*(int(v) for v in chunk["sizes"]))
            chunks.setdefault(sizes, []).append(chunk)
            bar.update(len(chunk["replicate"]))

        run.execute(tasks, n_jobs=n_jobs, backend=backend, on_result=on_result)


def _n_workers(n_jobs: int) -> int:
    from joblib import cpu_count

    return n_jobs if n_jobs > 0 else max(1, cpu_count() + 1 + n_jobs)


def _pilot_theta(template: run.ChunkTask, sizes: Sizes) -> tuple[float, ...] | None:
    """Warm start for a cell: the covariance parameters fitted to its replicate 0.

    It is a function of the settings alone, so every chunk of the cell starts from the
    same point whoever runs it (results stay independent of chunking and workers). A
    singular pilot fit gives no warm start (None): a boundary point is a poor start, and
    every singular warm-started fit is refitted anyway (:func:`fit_arrays`).
    """
    if template.engine != "fast":
        return None
    task = dataclasses.replace(template, design=warm_start_design(template.design),
                               sizes=sizes, start=0, stop=1)
    with run.one_blas_thread():
        outcome = run.fit_replicate(task, run.simulate_replicate(task, 0))
    return outcome.theta if outcome.status == "ok" else None


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
        df = stacked("df")
        t_based = np.isfinite(df)
        pvals = np.where(t_based, 2.0 * stats.t.sf(np.abs(est / se), np.where(t_based, df, 1)),
                         2.0 * stats.norm.sf(np.abs(est / se)))
        crit = np.where(t_based, stats.t.isf(alpha / 2, np.where(t_based, df, 1)),
                        stats.norm.isf(alpha / 2))
    status = stacked("status")
    messages = stacked("message")
    simplified = np.char.startswith(messages.astype(str), "random: ")
    valid = np.isin(status, _VALID)[:, None] & np.isfinite(est) & np.isfinite(se) & (se > 0)
    pvals = np.where(valid, pvals, np.nan)
    rows = []
    for i, cell in enumerate(cells):
        block = slice(i * n_sims, (i + 1) * n_sims)
        truth = spec.true_values(params, cell)
        for j, term in enumerate(terms):
            row = _term_row(cell, term, truth[j], est[block, j], se[block, j],
                            pvals[block, j], valid[block, j], status[block], alpha,
                            crit[block, j])
            if spec.simplify:  # random="auto": replicates fitted with a simpler structure
                row["n_simplified"] = int((valid[block, j] & simplified[block]).sum())
            rows.append(row)
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
        _failures(index, status, messages),
        MappingProxyType(settings),
        timings,
    )


def _term_row(
    cell: Sizes, term: str, truth: float, est: np.ndarray, se: np.ndarray,
    pvals: np.ndarray, valid: np.ndarray, status: np.ndarray, alpha: float,
    crit: np.ndarray,
) -> dict[str, Any]:
    """One row of the power table: rejection rate with its Monte-Carlo uncertainty;
    ``crit`` is each replicate's two-sided critical value (z, or t with its df)."""
    n = int(valid.sum())
    k = int((pvals[valid] < alpha).sum())
    p = k / n if n else np.nan
    if n:
        ci = stats.binomtest(k, n).proportion_ci(confidence_level=0.95, method="exact")
        low, high = ci.low, ci.high
        covered = np.abs(est[valid] - truth) <= crit[valid] * se[valid]
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


