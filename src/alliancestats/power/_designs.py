"""Simulation-and-fit recipes of the designs :func:`alliancestats.power.power` knows.

A :class:`Design` bundles what one Monte-Carlo replicate needs: the tested terms, how to
fit one simulated trial (``fit_fast`` on numpy arrays, ``fit_public`` through the public
model function on a data frame) and the population values of the tested terms.

Simulation reuses the pure pieces of :mod:`alliancestats.simulate` in the order
:func:`~alliancestats.simulate.simulate_prn` calls them, so :func:`simulate_panel` and
``simulate_prn`` give the same trial for the same generator; only the conversion to a
data frame is skipped on the fast path.
"""

from __future__ import annotations

import dataclasses
import functools
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from ..design import Moderator, crossed_columns, moderator_terms, term_name
from ..simulate import (
    FloatArray,
    IntArray,
    PRNParams,
    allocate,
    clustering,
    design_stream,
    dropout_mask,
    missing_mask,
    simulate_alliance,
    simulate_wellbeing,
    to_frame,
    ungroup,
)

__all__ = [
    "DESIGNS",
    "Design",
    "FitOutcome",
    "ModelArrays",
    "Panel",
    "Sizes",
    "simulate_panel",
]

BoolArray = np.ndarray[Any, np.dtype[np.bool_]]


@dataclass(frozen=True, order=True)
class Sizes:
    """One grid cell: numbers of therapists, patients and sessions."""

    n_therapists: int
    n_patients: int
    n_sessions: int

    def label(self) -> str:
        """Short, file-name-safe label, e.g. ``T40-P117-S6``."""
        return f"T{self.n_therapists}-P{self.n_patients}-S{self.n_sessions}"


@dataclass(frozen=True)
class Panel:
    """One simulated trial as (patient, session) arrays.

    ``condition`` is per therapist, ``therapist`` per patient (sorted ascending), the
    ratings and ``observed`` are (n_patients, n_sessions). ``clustered`` (partially
    nested trials) is 1.0 for a patient who shares a therapist, 0.0 for one who does
    not; None when every patient is nested in a therapist.
    """

    condition: IntArray
    therapist: IntArray
    alliance_therapist: FloatArray
    alliance_patient: FloatArray
    wellbeing: FloatArray
    observed: BoolArray
    clustered: FloatArray | None = None

    def to_frame(self) -> pd.DataFrame:
        """The long data frame :func:`~alliancestats.simulate.simulate_prn` returns."""
        return to_frame(
            self.therapist,
            self.condition,
            self.alliance_therapist,
            self.alliance_patient,
            self.wellbeing,
            self.observed,
            self.clustered,
        )

    def units(self) -> tuple[IntArray, IntArray]:
        """(arm per therapist-level unit, unit per patient): the therapists, and with
        partial nesting every unclustered patient as a unit of its own."""
        if self.clustered is None:
            return self.condition, self.therapist
        return ungroup(self.condition, self.therapist, self.clustered)

    def arm(self, pat: IntArray) -> FloatArray:
        """Condition (0/1, float) of the given patients."""
        return self.condition[self.therapist[pat]].astype(float)


def simulate_panel(
    rng: np.random.Generator,
    sizes: Sizes,
    params: PRNParams,
    p_missing: float,
    caseloads: tuple[int, ...] | None = None,
    nesting: str = "full",
) -> Panel:
    """Draw one trial; same draws, in the same order, as ``simulate_prn``."""
    extra = design_stream(rng)
    condition, therapist = allocate(
        rng, sizes.n_therapists, sizes.n_patients, params.caseload_shape, caseloads
    )
    clustered = clustering(condition, therapist, nesting)
    x, y = simulate_alliance(rng, therapist, condition, sizes.n_sessions, params, extra,
                             clustered)
    w = simulate_wellbeing(rng, therapist, condition, x, y, params, clustered)
    observed = missing_mask(rng, sizes.n_patients, sizes.n_sessions, p_missing)
    observed = dropout_mask(extra, observed, condition[therapist], w, params)
    return Panel(condition, therapist, x, y, w, observed, clustered)


@dataclass(frozen=True)
class ModelArrays:
    """A linear mixed model as arrays: response, fixed design and nested groups.

    ``groups`` holds 0-based integer codes, one column per level, outer to inner; an
    inner code is unique across outer units (lme4's ``therapist:patient``). ``random``
    maps each level to the indices of the ``X`` columns that get random effects at that
    level (correlated unless ``independent`` says so for the level), unless ``Z`` gives
    the random-effect designs explicitly (one array per level).

    ``outer_weight`` multiplies the outermost level's design row by row: the arm
    indicator of a partially nested trial, so that the therapist random effects exist
    in the trained arm only (Bauer, Sterba & Hallfors 2008). ``residual`` is the
    engine's residual structure, with the ``time`` of each row, the ``rater`` code of
    each row (rater-stacked data) and the residual units (``residual_units``; None: the
    innermost level's units).
    """

    y: FloatArray
    X: FloatArray
    columns: tuple[str, ...]
    groups: IntArray
    levels: tuple[str, ...]
    random: Mapping[str, tuple[int, ...]]
    Z: tuple[FloatArray, ...] | None = None
    independent: tuple[bool, ...] | None = None
    outer_weight: FloatArray | None = None
    residual: str = "iid"
    time: FloatArray | None = None
    rater: IntArray | None = None
    residual_units: IntArray | None = None

    def z_matrices(self) -> list[FloatArray]:
        """Random-effect design per level, outer to inner."""
        if self.Z is not None:
            Z = list(self.Z)
        else:
            Z = [self.X[:, list(self.random[level])] for level in self.levels]
        if self.outer_weight is not None:
            Z[0] = Z[0] * self.outer_weight[:, None]
        return Z

    def residual_units_for(self) -> IntArray | None:
        """Residual units for the engine: rater-stacked AR(1) runs within each rater's
        series (patient x rater); otherwise the innermost level's units."""
        if self.residual == "ar1" and self.rater is not None:
            return self.groups[:, -1] * 2 + self.rater
        return self.residual_units


@dataclass(frozen=True)
class FitOutcome:
    """What one replicate's fit reports about the tested terms.

    ``status`` is "ok", "singular" (converged at the boundary) or "not converged";
    ``theta`` is the covariance parameter vector, for warm starts (None when the
    fitting path does not use it); ``df`` the Satterthwaite df of each tested term
    (None: Wald z tests).
    """

    estimate: FloatArray
    std_error: FloatArray
    status: str
    message: str = ""
    theta: tuple[float, ...] | None = None
    df: FloatArray | None = None


FastFit = Callable[[Panel, "tuple[float, ...] | None"], FitOutcome]
PublicFit = Callable[[pd.DataFrame], FitOutcome]
TrueValues = Callable[[PRNParams, Sizes], FloatArray]


@dataclass(frozen=True)
class Design:
    """How to test one research question by simulation.

    Attributes
    ----------
    name : str
    model : str
        Short description of the fitted model, for summaries.
    terms : tuple of str
        Names of the tested quantities (the rows of the power table).
    descriptions : tuple of str
        One plain-language line per term.
    null : mapping
        :class:`~alliancestats.simulate.PRNParams` overrides under which every tested
        quantity is 0 (type-I error check).
    fit_fast, fit_public : callables
        Fit one simulated trial with the fast engine (arrays) or through the public
        model function (data frame); return a :class:`FitOutcome`.
    true_values : callable
        Population values of the terms under given parameters and sizes.
    min_sessions : int
        Fewest sessions per patient for which the model is identified.
    arrays : callable, optional
        The fast path's model arrays of one simulated trial (fixed-effect columns named
        in ``ModelArrays.columns``); needed for ``targets=``.
    coefficients : callable, optional
        Population value of every fixed-effect column (NaN where it depends on the
        sample, e.g. through centring), for the true values of ``targets=``.
    columns : tuple of str
        Names of the fixed-effect columns of ``arrays``.
    random : str
        Name of the fitted random-effects structure ("" for the lagged RSA's only one).
    simplify : bool
        Simplify a singular random part step by step (``random="auto"``).
    residual : str
        The fitted residual structure ("iid", "ar1", "rater", "rater_ar1").
    """

    name: str
    model: str
    terms: tuple[str, ...]
    descriptions: tuple[str, ...]
    null: Mapping[str, float]
    fit_fast: FastFit
    fit_public: PublicFit
    true_values: TrueValues
    min_sessions: int = 2
    notes: tuple[str, ...] = field(default=())
    arrays: Callable[[Panel], ModelArrays] | None = None
    coefficients: Callable[[PRNParams, Sizes], FloatArray] | None = None
    columns: tuple[str, ...] = ()
    random: str = ""
    simplify: bool = False
    residual: str = "iid"


def observed_index(panel: Panel) -> tuple[IntArray, IntArray]:
    """(patient, session) indices of the observed rows, in frame order (0-based)."""
    pat, ses = np.nonzero(panel.observed)
    return pat.astype(np.int64), ses.astype(np.int64)


def contrast_outcome(
    beta: FloatArray,
    cov: FloatArray,
    contrasts: FloatArray,
    status: str,
    message: str = "",
    theta: tuple[float, ...] | None = None,
) -> FitOutcome:
    """Estimates and SEs of the tested linear combinations ``contrasts @ beta``."""
    est = contrasts @ beta
    with np.errstate(invalid="ignore"):
        se = np.sqrt(np.einsum("ij,jk,ik->i", contrasts, cov, contrasts))
    return FitOutcome(est, se, status, message, theta)


def quiet(func: Callable[[], Any]) -> tuple[Any, list[str]]:
    """Run ``func`` recording (not showing) its warnings; return (value, messages).

    A power run fits thousands of models; their warnings are summarised per replicate
    in the result's ``failures`` table instead of being printed thousands of times.
    """
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        value = func()
    return value, [str(w.message) for w in caught]


DESIGNS: dict[str, Design] = {}


# ------------------------------------------------------------------------- fitting glue


def _codes(labels: IntArray) -> IntArray:
    """0-based consecutive codes (units without analysed rows disappear)."""
    return np.unique(labels, return_inverse=True)[1].astype(np.int64)


def nested_groups(panel: Panel, pat: IntArray) -> IntArray:
    """(therapist, patient) codes of the rows, outer to inner (with partial nesting an
    unclustered patient is a therapist-level unit of its own)."""
    _, unit = panel.units()
    return np.column_stack([_codes(unit[pat]), _codes(pat)])


def outer_weight(panel: Panel, pat: IntArray) -> FloatArray | None:
    """Row weights of the therapist-level random effects: the arm indicator in a
    partially nested trial (therapists in the trained arm only), else None."""
    return None if panel.clustered is None else panel.clustered[pat]


def engine_model(arrays: ModelArrays) -> Any:
    """The engine's model of ``arrays`` (REML, sorted codes, no label handling)."""
    from .._mixed._engine import NestedLMM  # the engine is optional at import time

    return NestedLMM.from_codes(
        arrays.X, arrays.groups, arrays.z_matrices(), reml=True,
        independent=arrays.independent, residual=arrays.residual,
        time=None if arrays.residual == "iid" else arrays.time,
        rater=arrays.rater if arrays.residual in ("rater", "rater_ar1") else None,
        residual_units=None if arrays.residual == "iid" else arrays.residual_units_for(),
    )


def engine_fit(arrays: ModelArrays, start: tuple[float, ...] | None
               ) -> tuple[Any, Any, list[str]]:
    """(model, fit, warning messages) of the REML fit of ``arrays``.

    ``start`` (covariance parameters, θ then any residual parameters) warm-starts the
    optimiser; it is ignored when its length does not fit the model. A warm-started fit
    that ends on the boundary (singular) or does not converge is refitted from the
    engine's own start and the fit with the higher REML likelihood is kept: from a warm
    start the optimiser can stop at a boundary point that is not the optimum (seen in
    about 1 in 20 truth-and-bias replicates, REML log-likelihood lower by up to 0.08,
    estimates off by up to 0.02 SE, the fit wrongly called singular).
    """
    model = engine_model(arrays)
    if start is not None and len(start) != model.n_theta + model.n_psi:
        start = None
    fit, messages = quiet(lambda: model.fit(
        arrays.y, start=None if start is None else np.asarray(start), random_effects=False
    ))
    if start is not None and (fit.is_singular or not fit.converged):
        cold, cold_messages = quiet(lambda: model.fit(arrays.y, random_effects=False))
        if cold.converged and (not fit.converged or cold.llf > fit.llf):
            fit, messages = cold, cold_messages
    return model, fit, messages


def fit_status(fit: Any) -> str:
    """"ok", "singular" or "not converged"."""
    return "not converged" if not fit.converged else "singular" if fit.is_singular else "ok"


def engine_outcome(model: Any, fit: Any, arrays: ModelArrays, contrasts: FloatArray,
                   messages: list[str], ddf: str) -> FitOutcome:
    """The tested contrasts of an engine fit (with Satterthwaite df unless ``ddf="z"``)."""
    status = fit_status(fit)
    note = getattr(fit, "message", None)
    if not fit.converged and note:
        messages.insert(0, str(note))
    params = np.asarray(fit.cov_params_vector, dtype=float)
    theta = tuple(float(t) for t in params)
    outcome = contrast_outcome(np.asarray(fit.beta, float), np.asarray(fit.cov_beta, float),
                               contrasts, status, "; ".join(messages)[:300], theta)
    if ddf == "z":
        return outcome
    from .._mixed._ddf import satterthwaite_df

    df = np.full(len(contrasts), np.nan)
    if fit.converged:
        df, _ = quiet(lambda: np.asarray(
            satterthwaite_df(model, arrays.y, params, contrasts), dtype=float))
    return dataclasses.replace(outcome, df=df)


def fit_arrays(
    arrays: ModelArrays, contrasts: FloatArray, start: tuple[float, ...] | None,
    ddf: str = "z",
) -> FitOutcome:
    """Fit a nested LMM (REML) with the fast engine; outcome of the tested contrasts.

    The arrays are handed to the engine directly (no formula, no data frame, groups as
    the sorted codes of :func:`nested_groups`); ``start`` warm-starts the covariance
    parameters (:func:`engine_fit`). Conditional modes are not computed: only the fixed
    effects are tested.

    ``ddf="satterthwaite"`` adds each contrast's Satterthwaite df at the fit (as
    ``ddf="satterthwaite"`` on the model functions and lmerTest's ``contest1D``).
    """
    model, fit, messages = engine_fit(arrays, start)
    return engine_outcome(model, fit, arrays, contrasts, messages, ddf)


@functools.lru_cache(maxsize=32)
def _term_index(terms: tuple[str, ...]) -> pd.Index:
    """The labels of a level's random terms, made once: building a pandas index costs
    more than labelling the small covariance matrix with it."""
    return pd.Index(list(terms))


def fit_simplified(
    arrays: ModelArrays, contrasts: FloatArray, start: tuple[float, ...] | None,
    ddf: str = "z",
) -> FitOutcome:
    """As :func:`fit_arrays`, simplifying a singular random part as ``random="auto"``
    does in :func:`~alliancestats.fit_truth_bias`, by the same rule
    (:func:`~alliancestats.design.fit_simplifying`).

    The fit starts from ``arrays.random`` (terms named by their ``X`` column); while it
    is singular, :func:`~alliancestats.design.simplify_random` takes one step down (a
    term whose variance is 0 dropped, else a correlation of ±1 removed). The steps are
    listed at the start of the outcome's message (``random: ...``); a simplified fit
    reports no ``theta`` (it is no warm start for the full structure). Only the first
    fit is warm-started (from ``start``); a simplified structure is fitted from the
    engine's own start or evaluated at the singular fit's optimum, as
    ``fit_truth_bias`` does.
    """
    from ..design import RandomStructure, StructureFit, fit_simplifying

    names, levels = arrays.columns, arrays.levels
    flags = arrays.independent or (False,) * len(levels)
    first = RandomStructure(tuple(
        (tuple(names[i] for i in arrays.random[lvl]), not flag)
        for lvl, flag in zip(levels, flags, strict=True)))

    def fit(structure: RandomStructure, at: FloatArray | None,
            singular: StructureFit | None) -> StructureFit:
        current = arrays if structure is first else dataclasses.replace(
            arrays,
            random={lvl: tuple(names.index(t) for t in terms)
                    for lvl, (terms, _) in zip(levels, structure.levels, strict=True)},
            independent=tuple(not corr for _, corr in structure.levels))
        if at is None:
            model, res, messages = engine_fit(current, start if structure is first else None)
        else:  # the singular fit's warnings stand for this one's
            model = engine_model(current)
            res, extra = quiet(lambda: model.evaluate(current.y, at, random_effects=False))
            messages = [*singular.record[2], *extra] if singular is not None else extra

        def covariances() -> tuple[dict[str, pd.DataFrame], float]:
            return ({lvl: pd.DataFrame(np.asarray(cov, float), index=_term_index(terms),
                                       columns=_term_index(terms))
                     for lvl, (terms, _), cov in zip(levels, structure.levels, res.cov_re,
                                                     strict=True)},
                    float(res.sigma2))

        return StructureFit((model, res, messages, current), res.converged, res.is_singular,
                            float(res.llf), np.asarray(res.theta, dtype=float),
                            np.asarray(res.psi, dtype=float), covariances)

    kept, _, records = fit_simplifying(first, levels, fit)
    model, res, messages, current = kept.record
    steps = [f"{r['level']}: {r['term']} {r['action']}" for r in records]
    if steps:
        messages.insert(0, "random: " + "; ".join(steps))
    outcome = engine_outcome(model, res, current, contrasts, messages, ddf)
    return dataclasses.replace(outcome, theta=None) if steps else outcome


def results_outcome(result: Any, estimate: Any, std_error: Any,
                    messages: list[str]) -> FitOutcome:
    """FitOutcome from a public results object and the tested terms' numbers."""
    if not result.converged:
        status = "not converged"
    elif result.is_singular:
        status = "singular"
    else:
        status = "ok"
    text = "; ".join(dict.fromkeys([*result.warnings, *messages]))
    return FitOutcome(np.asarray(estimate, float), np.asarray(std_error, float), status,
                      text[:300])


# ------------------------------------------------------------------------- truth & bias

#: Both numeric moderators of the power designs, as the model functions see them.
MODERATORS = (Moderator("condition"), Moderator("session"))
CONDITION = (Moderator("condition"),)


def _column_names(bases: tuple[str | None, ...], moderators: tuple[Moderator, ...]
                  ) -> tuple[str, ...]:
    """Names :func:`~alliancestats.design.crossed_columns` gives ``bases`` x moderators."""
    return tuple(term_name(b, combo) for b in bases for combo in moderator_terms(moderators))


TB_COLUMNS = _column_names((None, "truth"), MODERATORS)
TB_TERMS = ("truth:condition:session",)


def truth_bias_arrays(panel: Panel) -> ModelArrays:
    """``judgment ~ truth * condition * session`` + (1|therapist) + (1|therapist:patient).

    As :func:`~alliancestats.fit_truth_bias`: judgment and truth centred on the truth's
    mean over the analysed rows; condition (0/1) and session (1-based) as given; the
    fixed-effect columns built by the same array-level builder
    (:func:`~alliancestats.design.crossed_columns`), in its order.
    """
    pat, ses = observed_index(panel)
    truth = panel.alliance_patient[pat, ses]
    centre = truth.mean()
    t = truth - centre
    c = panel.arm(pat)
    s = ses.astype(float) + 1.0
    bases: dict[str | None, FloatArray | None] = {None: None, "truth": t}
    X, names, _ = crossed_columns(bases, {"condition": c, "session": s}, MODERATORS, len(t))
    y = panel.alliance_therapist[pat, ses] - centre
    return ModelArrays(y, X, tuple(names), nested_groups(panel, pat),
                       ("therapist", "patient"), {"therapist": (0,), "patient": (0,)},
                       outer_weight=outer_weight(panel, pat), time=s)


def truth_bias_slopes_arrays(panel: Panel) -> ModelArrays:
    """As :func:`truth_bias_arrays` with correlated random truth slopes at both levels
    (lme4 ``(1 + truth | therapist) + (1 + truth | therapist:patient)``, as
    ``fit_truth_bias(random="slopes")``)."""
    arrays = truth_bias_arrays(panel)
    pair = (0, arrays.columns.index("truth"))
    return dataclasses.replace(arrays, random={"therapist": pair, "patient": pair})


TB_CONTRAST = np.eye(len(TB_COLUMNS))[[TB_COLUMNS.index(t) for t in TB_TERMS]]


def truth_bias_fast(panel: Panel, start: tuple[float, ...] | None) -> FitOutcome:
    return fit_arrays(truth_bias_arrays(panel), TB_CONTRAST, start)


def truth_bias_public(frame: pd.DataFrame) -> FitOutcome:
    return TruthBiasPublic("intercept")(frame)


@dataclass(frozen=True)
class TruthBiasPublic:
    """fit_public of the truth-and-bias design: ``fit_truth_bias`` with statsmodels'
    MixedLM and the given ``random`` (with "auto", fit_truth_bias starts MixedLM from
    uncorrelated patient-level slopes, the richest structure it can fit)."""

    random: str

    def __call__(self, frame: pd.DataFrame) -> FitOutcome:
        from ..truthbias import fit_truth_bias

        res, messages = quiet(lambda: fit_truth_bias(
            frame, judgment="alliance_therapist", truth="alliance_patient",
            groups=["therapist", "patient"], moderators=["condition", "session"],
            random=self.random, engine="statsmodels",
        ))
        name = "alliance_patient:condition:session"
        return results_outcome(res, res.params[[name]], res.bse[[name]], messages)


def truth_bias_coefficients(params: PRNParams, sizes: Sizes) -> FloatArray:
    """Population coefficients of TB_COLUMNS: exact for the truth-force columns (with
    session counted from 1, as fitted); NaN for the bias columns, which depend on the
    sample's centring constant."""
    p = params
    values = {"truth": p.gamma10 - p.gamma12, "truth:condition": p.gamma11 - p.gamma13,
              "truth:session": p.gamma12, "truth:condition:session": p.gamma13}
    return np.array([values.get(c, np.nan) for c in TB_COLUMNS])


def truth_bias_truth(params: PRNParams, sizes: Sizes) -> FloatArray:
    """γ13: invariant to the centring constant and to the coding origin of session."""
    return np.array([params.gamma13])


DESIGNS["truth_bias"] = Design(
    name="truth_bias",
    model="truth-and-bias LMM, judgment ~ truth * condition * session, random "
          "intercepts for therapist and patient",
    terms=TB_TERMS,
    descriptions=("training x session moderation of the truth force (gamma13)",),
    null={"gamma13": 0.0},
    fit_fast=truth_bias_fast,
    fit_public=truth_bias_public,
    true_values=truth_bias_truth,
    arrays=truth_bias_arrays,
    columns=TB_COLUMNS,
    coefficients=truth_bias_coefficients,
)


# --------------------------------------------------------------------------- lagged RSA

RSA_TERMS = ("a4_difference", "a1_trained", "a4_trained")
RSA_COLUMNS = (
    "Intercept", "condition[1]",
    *(f"{t}:condition[{c}]" for c in (0, 1) for t in ("X", "Y", "X2", "XY", "Y2")),
    "session", "wellbeing_lag1",
)


def lagged_rsa_arrays(panel: Panel) -> ModelArrays:
    """Lagged RSA by condition, as :func:`~alliancestats.fit_lagged_rsa` builds it with
    ``by="condition", controls=["session"]``.

    This is the one lagged-RSA model of the project: session is a control because
    well-being trends over sessions while both ratings grow; without it the surface
    absorbs part of the trend (a1 biased, power overstated; see the power guide and
    ``test_lagged_rsa_model_needs_the_session_control``).

    Rows: sessions whose previous session was also attended. X, Y = therapist- and
    patient-rated alliance at t - 1, centred on their pooled mean over the analysed
    rows; one intercept and surface per condition; controls session (as given) and
    the previous well-being centred on its mean; random intercepts for therapist and
    patient.
    """
    pair = panel.observed[:, 1:] & panel.observed[:, :-1]
    pat, prev = (a.astype(np.int64) for a in np.nonzero(pair))
    x = panel.alliance_therapist[pat, prev]
    y = panel.alliance_patient[pat, prev]
    centre = np.concatenate([x, y]).mean()
    xc, yc = x - centre, y - centre
    P = np.column_stack([xc, yc, xc * xc, xc * yc, yc * yc])
    c = panel.arm(pat)
    w_prev = panel.wellbeing[pat, prev]
    X = np.column_stack([
        np.ones_like(c), c, P * (1.0 - c)[:, None], P * c[:, None], prev + 2.0,
        w_prev - w_prev.mean(),
    ])
    return ModelArrays(panel.wellbeing[pat, prev + 1], X, RSA_COLUMNS,
                       nested_groups(panel, pat), ("therapist", "patient"),
                       {"therapist": (0,), "patient": (0,)},
                       outer_weight=outer_weight(panel, pat), time=(prev + 2.0).astype(float))


def _rsa_contrasts() -> FloatArray:
    a1, a4 = np.array([1, 1, 0, 0, 0.0]), np.array([0, 0, 1, -1, 1.0])
    L = np.zeros((3, len(RSA_COLUMNS)))
    untrained, trained = slice(2, 7), slice(7, 12)
    L[0, trained], L[0, untrained] = a4, -a4
    L[1, trained] = a1
    L[2, trained] = a4
    return L


RSA_CONTRAST = _rsa_contrasts()


def lagged_rsa_fast(panel: Panel, start: tuple[float, ...] | None) -> FitOutcome:
    return fit_arrays(lagged_rsa_arrays(panel), RSA_CONTRAST, start)


def lagged_rsa_public(frame: pd.DataFrame) -> FitOutcome:
    from ..rsa import fit_lagged_rsa

    res, messages = quiet(lambda: fit_lagged_rsa(
        frame, outcome="wellbeing", x="alliance_therapist", y="alliance_patient",
        time="session", unit=["therapist", "patient"], groups=["therapist", "patient"],
        by="condition", controls=["session"], engine="statsmodels",
    ))
    surface, diff = res.surface, res.surface_differences
    rows = [diff.loc[(1, "a4")], surface.loc[(1, "a1")], surface.loc[(1, "a4")]]
    return results_outcome(res, [r["estimate"] for r in rows],
                           [r["std_error"] for r in rows], messages)


def _pooled_shift(params: PRNParams, sizes: Sizes) -> float:
    """m - alliance_center: population pooled mean of both lagged ratings (sessions
    1..S-1, the trial's share of trained therapists) minus the generating centre."""
    means = params.expected_alliance_means(sizes.n_sessions - 1)
    share = (sizes.n_therapists // 2) / sizes.n_therapists
    weight = np.where(means["condition"] == 1, share, 1 - share)
    pooled = means[["alliance_therapist", "alliance_patient"]].mean(axis=1)
    return float((weight * pooled).sum() / weight.sum()) - params.alliance_center


def lagged_rsa_coefficients(params: PRNParams, sizes: Sizes) -> FloatArray:
    """Population coefficients of RSA_COLUMNS: b1..b5 per arm after centring on the
    population pooled mean (b1 + (2 b3 + b4) d, b2 + (b4 + 2 b5) d, b3, b4, b5 with
    d = m - alliance_center), session (tau) and the previous well-being (phi, the
    generating value; a random-intercept fit of a lagged outcome is biased for it);
    NaN for the intercepts."""
    d = _pooled_shift(params, sizes)
    values = {"session": params.wellbeing_time, "wellbeing_lag1": params.wellbeing_ar}
    for c in (0, 1):
        b1, b2, b3, b4, b5 = params.rsa_coefficients(c).values()
        shifted = (b1 + (2 * b3 + b4) * d, b2 + (b4 + 2 * b5) * d, b3, b4, b5)
        for name, value in zip(("X", "Y", "X2", "XY", "Y2"), shifted, strict=True):
            values[f"{name}:condition[{c}]"] = value
    return np.array([values.get(c, np.nan) for c in RSA_COLUMNS])


def lagged_rsa_truth(params: PRNParams, sizes: Sizes) -> FloatArray:
    """a4 difference and trained a4 exactly; trained a1 at the population pooled centre.

    Centring X and Y on m instead of the generating ``alliance_center`` changes a1 by
    2 a2 (m - alliance_center) and leaves a2..a5 unchanged. m is the population mean of
    both lagged ratings over sessions 1..S-1 with the trial's share of trained
    therapists (0 under the default a2 = 0, so a1 is then exact).
    """
    trained, untrained = params.surface(1), params.surface(0)
    means = params.expected_alliance_means(sizes.n_sessions - 1)
    share = (sizes.n_therapists // 2) / sizes.n_therapists
    weight = np.where(means["condition"] == 1, share, 1 - share)
    pooled = means[["alliance_therapist", "alliance_patient"]].mean(axis=1)
    m = float((weight * pooled).sum() / weight.sum())
    a1 = trained["a1"] + 2 * trained["a2"] * (m - params.alliance_center)
    return np.array([trained["a4"] - untrained["a4"], a1, trained["a4"]])


DESIGNS["lagged_rsa"] = Design(
    name="lagged_rsa",
    model="lagged multilevel RSA by condition, wellbeing(t) ~ surface of alliance(t-1) "
          "+ session + wellbeing(t-1), random intercepts for therapist and patient",
    terms=RSA_TERMS,
    descriptions=(
        "trained minus untrained curvature along the line of incongruence (a4)",
        "trained arm: slope along the line of congruence (a1)",
        "trained arm: curvature along the line of incongruence (a4)",
    ),
    null={f"b{i}_{arm}": 0.0 for arm in ("trained", "untrained") for i in range(1, 6)},
    fit_fast=lagged_rsa_fast,
    fit_public=lagged_rsa_public,
    true_values=lagged_rsa_truth,
    min_sessions=3,
    arrays=lagged_rsa_arrays,
    columns=RSA_COLUMNS,
    coefficients=lagged_rsa_coefficients,
)


# ------------------------------------------------------------------------------- growth

GROWTH_TERMS = ("time:condition[therapist]", "time:condition[patient]")
RATERS = ("therapist", "patient")
GROWTH_COLUMNS = _column_names(
    tuple(name for r in RATERS for name in (f"rater[{r}]", f"rater[{r}]:session")), CONDITION
)


def growth_arrays(panel: Panel) -> ModelArrays:
    """Rater-stacked growth model, as :func:`~alliancestats.fit_growth` builds it.

    ``alliance ~ 0 + rater + rater:condition + rater:time + rater:time:condition`` with
    rater-general random intercepts and time slopes, correlated, for therapists and
    patients (lme4 ``(1 + time | therapist) + (1 + time | therapist:patient)``); time is
    session minus the first analysed session. The fixed-effect columns come from the
    array-level builder (:func:`~alliancestats.design.crossed_columns`) with the bases
    ``fit_growth`` uses (one indicator and one indicator x time per rater).
    """
    pat, ses = observed_index(panel)
    t = (ses - ses.min()).astype(float)
    c = panel.arm(pat)
    n = len(t)
    tt = np.concatenate([t, t])
    bases: dict[str | None, FloatArray | None] = {}
    for r, rater in enumerate(RATERS):  # rows: therapist ratings, then patient ratings
        indicator = np.repeat([1.0 - r, float(r)], n)
        bases[f"rater[{rater}]"] = indicator
        bases[f"rater[{rater}]:session"] = indicator * tt
    X, names, _ = crossed_columns(bases, {"condition": np.concatenate([c, c])}, CONDITION,
                                  2 * n)
    y = np.concatenate([panel.alliance_therapist[pat, ses], panel.alliance_patient[pat, ses]])
    Z = np.column_stack([np.ones_like(tt), tt])
    weight = outer_weight(panel, pat)
    return ModelArrays(y, X, tuple(names), np.concatenate([nested_groups(panel, pat)] * 2),
                       ("therapist", "patient"), {}, (Z, Z),
                       outer_weight=None if weight is None else np.concatenate([weight] * 2),
                       time=tt, rater=np.repeat(np.array([0, 1], dtype=np.int64), n))


def growth_rater_arrays(panel: Panel) -> ModelArrays:
    """The dyadic growth model, as ``fit_growth(random="rater_slopes")``: a therapist
    random intercept, and per patient a random intercept and time slope for each rater,
    all correlated (lme4 ``(1 | therapist) + (0 + rater + rater:time |
    therapist:patient)``); fixed part as :func:`growth_arrays`."""
    arrays = growth_arrays(panel)
    ther, pat = (arrays.X[:, arrays.columns.index(f"rater[{r}]")] for r in RATERS)
    t = np.asarray(arrays.time)
    Z = (np.ones((len(t), 1)), np.column_stack([ther, pat, ther * t, pat * t]))
    return dataclasses.replace(arrays, Z=Z)


def growth_rater_therapist_arrays(panel: Panel) -> ModelArrays:
    """The dyadic growth model with therapist random slopes, as
    ``fit_growth(random="rater_slopes_therapist")``: :func:`growth_rater_arrays` with a
    random intercept and a time slope per rater, all correlated, per therapist (lme4
    ``(1 + rater:time | therapist) + (0 + rater + rater:time | therapist:patient)``)."""
    arrays = growth_rater_arrays(panel)
    assert arrays.Z is not None
    inner = arrays.Z[1]  # rater indicators, then rater x time
    return dataclasses.replace(arrays, Z=(np.column_stack([arrays.Z[0], inner[:, 2:]]),
                                          inner))


def growth_rater_intercepts_arrays(panel: Panel) -> ModelArrays:
    """The two-intercept dyadic model, as ``fit_growth(random="rater_intercepts")``:
    ``(1 | therapist) + (0 + rater | therapist:patient)``."""
    arrays = growth_rater_arrays(panel)
    assert arrays.Z is not None
    return dataclasses.replace(arrays, Z=(arrays.Z[0], arrays.Z[1][:, :2]))


def growth_fast(panel: Panel, start: tuple[float, ...] | None) -> FitOutcome:
    return fit_arrays(growth_arrays(panel), GROWTH_CONTRAST, start)


GROWTH_CONTRAST = np.eye(len(GROWTH_COLUMNS))[
    [GROWTH_COLUMNS.index(f"rater[{r}]:session:condition") for r in ("therapist", "patient")]
]


def growth_public(frame: pd.DataFrame) -> FitOutcome:
    return GrowthPublic("slopes")(frame)


@dataclass(frozen=True)
class GrowthPublic:
    """fit_public of the growth design: ``fit_growth`` on the rater-stacked frame with
    the given ``random`` (the project's engine: MixedLM cannot fit these models)."""

    random: str

    def __call__(self, frame: pd.DataFrame) -> FitOutcome:
        from ..data import stack_raters
        from ..growth import fit_growth

        long = stack_raters(frame, ratings={"therapist": "alliance_therapist",
                                            "patient": "alliance_patient"})
        res, messages = quiet(lambda: fit_growth(
            long, outcome="alliance", time="session", rater="rater",
            groups=["therapist", "patient"], moderators="condition", random=self.random,
        ))
        names = [f"rater[{r}]:session:condition" for r in ("therapist", "patient")]
        return results_outcome(res, res.params[names], res.bse[names], messages)


def growth_coefficients(params: PRNParams, sizes: Sizes) -> FloatArray:
    """Population coefficients of GROWTH_COLUMNS: least-squares line (intercept at the
    first session, slope per session) through each arm's population mean trajectory per
    rater, as :func:`growth_truth` (exact for patient ratings)."""
    means = params.expected_alliance_means(sizes.n_sessions)
    values = {}
    for r, col in (("therapist", "alliance_therapist"), ("patient", "alliance_patient")):
        lines = [np.polyfit(g["session"] - 1, g[col], 1)
                 for _, g in means.groupby("condition", sort=True)]
        (s0, i0), (s1, i1) = lines
        values.update({f"rater[{r}]": i0, f"rater[{r}]:condition": i1 - i0,
                       f"rater[{r}]:session": s0, f"rater[{r}]:session:condition": s1 - s0})
    return np.array([values[c] for c in GROWTH_COLUMNS])


def growth_truth(params: PRNParams, sizes: Sizes) -> FloatArray:
    """Least-squares slope difference (trained - untrained) of the population mean
    trajectories per rater over the simulated sessions (exact for patient ratings; for
    therapist ratings the trajectory is quadratic when gamma13 != 0)."""
    means = params.expected_alliance_means(sizes.n_sessions)
    out = []
    for col in ("alliance_therapist", "alliance_patient"):
        slopes = [np.polyfit(g["session"], g[col], 1)[0]
                  for _, g in means.groupby("condition", sort=True)]
        out.append(slopes[1] - slopes[0])
    return np.array(out)


DESIGNS["growth"] = Design(
    name="growth",
    model="rater-stacked growth LMM, alliance ~ 0 + rater * time * condition (rater-"
          "specific fixed effects), correlated random intercepts and time slopes for "
          "therapist and patient",
    terms=GROWTH_TERMS,
    descriptions=(
        "training effect on the growth of therapist-rated alliance (per session)",
        "training effect on the growth of patient-rated alliance (per session)",
    ),
    null={"gamma03": 0.0, "gamma11": 0.0, "gamma13": 0.0},
    fit_fast=growth_fast,
    fit_public=growth_public,
    true_values=growth_truth,
    arrays=growth_arrays,
    columns=GROWTH_COLUMNS,
    coefficients=growth_coefficients,
)


# ------------------------------------------------------------------------------ targets

Weights = Mapping[str, float]


def _tb_truth_force_difference_last(n_sessions: int) -> Weights:
    return {"truth:condition": 1.0, "truth:condition:session": float(n_sessions)}


def _tb_truth_force_difference_first(n_sessions: int) -> Weights:
    return {"truth:condition": 1.0, "truth:condition:session": 1.0}


def _rsa_targets() -> dict[str, Weights | Callable[[int], Weights]]:
    a = {"a1": (1, 1, 0, 0, 0), "a2": (0, 0, 1, 1, 1), "a3": (1, -1, 0, 0, 0),
         "a4": (0, 0, 1, -1, 1), "a5": (0, 0, 1, 0, -1)}
    names = ("X", "Y", "X2", "XY", "Y2")
    out: dict[str, Weights | Callable[[int], Weights]] = {}
    for key, w in a.items():
        for arm, c in (("trained", 1), ("untrained", 0)):
            out[f"{key}_{arm}"] = {f"{n}:condition[{c}]": float(v)
                                   for n, v in zip(names, w, strict=True) if v}
        out[f"{key}_difference"] = {**{f"{n}:condition[1]": float(v)
                                       for n, v in zip(names, w, strict=True) if v},
                                    **{f"{n}:condition[0]": -float(v)
                                       for n, v in zip(names, w, strict=True) if v}}
    return out


#: Named targets of each design: weights over the design's fixed-effect columns, either
#: fixed or a module-level function of the number of sessions.
BUILTIN_TARGETS: dict[str, dict[str, Weights | Callable[[int], Weights]]] = {
    "truth_bias": {
        "truth:condition:session": {"truth:condition:session": 1.0},
        "truth_force_difference_first": _tb_truth_force_difference_first,
        "truth_force_difference_last": _tb_truth_force_difference_last,
        "truth_force_growth_untrained": {"truth:session": 1.0},
    },
    "lagged_rsa": _rsa_targets(),
    "growth": {
        "time:condition[therapist]": {"rater[therapist]:session:condition": 1.0},
        "time:condition[patient]": {"rater[patient]:session:condition": 1.0},
        "time:condition[therapist-patient]": {"rater[therapist]:session:condition": 1.0,
                                              "rater[patient]:session:condition": -1.0},
        "time[therapist]": {"rater[therapist]:session": 1.0},
        "time[patient]": {"rater[patient]:session": 1.0},
    },
}


@dataclass(frozen=True)
class Target:
    """One tested linear combination of a design's fixed effects.

    ``weights`` is a tuple of (column, weight) pairs, or the name of a built-in target
    whose weights depend on the number of sessions.
    """

    name: str
    weights: tuple[tuple[str, float], ...] | None = None
    builtin: str | None = None
    design: str = ""

    def resolve(self, n_sessions: int) -> dict[str, float]:
        """Weights by column for a trial with ``n_sessions`` sessions."""
        if self.weights is not None:
            return dict(self.weights)
        spec = BUILTIN_TARGETS[self.design][str(self.builtin)]
        return dict(spec(n_sessions) if callable(spec) else spec)

    def describe(self) -> str:
        """Settings record: the weights, or the built-in's name."""
        if self.weights is not None:
            return " + ".join(f"{w:g}*{c}" for c, w in self.weights)
        return f"built-in {self.builtin!r}"


def contrast_matrix(targets: tuple[Target, ...], columns: tuple[str, ...],
                    n_sessions: int) -> FloatArray:
    """Rows of weights over ``columns``, one per target."""
    index = {c: i for i, c in enumerate(columns)}
    L = np.zeros((len(targets), len(columns)))
    for row, target in enumerate(targets):
        for column, weight in target.resolve(n_sessions).items():
            L[row, index[column]] = weight
    return L


@dataclass(frozen=True)
class ContrastFit:
    """fit_fast of a design with other tested targets (picklable for every backend)."""

    arrays: Callable[[Panel], ModelArrays]
    columns: tuple[str, ...]
    targets: tuple[Target, ...]
    ddf: str = "z"
    simplify: bool = False

    def __call__(self, panel: Panel, start: tuple[float, ...] | None) -> FitOutcome:
        L = contrast_matrix(self.targets, self.columns, panel.observed.shape[1])
        fit = fit_simplified if self.simplify else fit_arrays
        return fit(self.arrays(panel), L, start, self.ddf)


@dataclass(frozen=True)
class ResidualArrays:
    """A design's array builder fitting another residual structure (picklable)."""

    arrays: Callable[[Panel], ModelArrays]
    residual: str

    def __call__(self, panel: Panel) -> ModelArrays:
        return dataclasses.replace(self.arrays(panel), residual=self.residual)


def _contrast_fit(design: Design, targets: tuple[Target, ...] | None = None) -> ContrastFit:
    """The fast fit of ``design`` testing ``targets`` (default: its own terms), keeping
    the ddf of its current fit."""
    assert design.arrays is not None
    if targets is None:
        targets = tuple(Target(t, builtin=t, design=design.name) for t in design.terms)
    current = design.fit_fast
    ddf = current.ddf if isinstance(current, ContrastFit) else "z"
    return ContrastFit(design.arrays, design.columns, targets, ddf, design.simplify)


@dataclass(frozen=True)
class ContrastTruth:
    """true_values of a design with other targets: weights @ population coefficients
    (NaN when a weighted column's population value depends on the sample)."""

    coefficients: Callable[[PRNParams, Sizes], FloatArray]
    columns: tuple[str, ...]
    targets: tuple[Target, ...]

    def __call__(self, params: PRNParams, sizes: Sizes) -> FloatArray:
        L = contrast_matrix(self.targets, self.columns, sizes.n_sessions)
        beta = self.coefficients(params, sizes)
        used = L != 0
        out = (L * np.where(used, beta, 0.0)).sum(axis=1)
        unknown = (used & np.isnan(beta)[None, :]).any(axis=1)
        return np.where(unknown, np.nan, out)


def _no_public_fit(frame: pd.DataFrame) -> FitOutcome:
    raise TypeError("`targets`, `random`, `residual`, `nesting='partial'` and `ddf` are "
                    "fitted with engine='fast' only.")


#: Random-effects structures the fitted model of a design may use: design -> structure
#: -> (array builder, simplify when singular, description). The first is the default.
RANDOM_STRUCTURES: dict[str, dict[str, tuple[Callable[[Panel], ModelArrays], bool, str]]] = {
    "truth_bias": {
        "auto": (truth_bias_slopes_arrays, True,
                 "random intercepts and truth forces, correlated, for therapist and patient "
                 "(West & Kenny), simplified step by step when singular as "
                 "fit_truth_bias(random='auto')"),
        "slopes": (truth_bias_slopes_arrays, False,
                   "random intercepts and truth forces, correlated, for therapist and "
                   "patient"),
        "intercept": (truth_bias_arrays, False, "random intercepts for therapist and patient"),
    },
    "growth": {
        "rater_slopes_therapist": (growth_rater_therapist_arrays, False,
                                   "per therapist a random intercept and a time slope "
                                   "for each rater; per patient a random intercept and "
                                   "time slope for each rater; correlated within each "
                                   "level (dyadic, fit_growth(random="
                                   "'rater_slopes_therapist'))"),
        "rater_slopes": (growth_rater_arrays, False,
                         "therapist random intercept; per patient a random intercept and "
                         "time slope for each rater, all correlated (dyadic, "
                         "fit_growth(random='rater_slopes'))"),
        "slopes": (growth_arrays, False,
                   "correlated random intercepts and time slopes for therapist and patient, "
                   "shared by the raters"),
        "rater_intercepts": (growth_rater_intercepts_arrays, False,
                             "therapist random intercept; per patient correlated random "
                             "intercepts for each rater"),
    },
}

#: The structure each design fitted before ``random`` had other defaults (checkpoints
#: made then record no ``random``).
LEGACY_RANDOM = {"truth_bias": "intercept", "growth": "slopes"}

#: Residual structures each design's fitted model may use; the first is the default (the
#: analysis' default: for growth the calibrated dyadic residuals, per-rater SDs
#: correlated at a session, as the report fits).
RESIDUAL_STRUCTURES = {
    "truth_bias": ("iid", "ar1"),
    "lagged_rsa": ("iid", "ar1"),
    "growth": ("rater", "iid", "ar1", "rater_ar1"),
}

_MODEL_BASE = {
    "truth_bias": "truth-and-bias LMM, judgment ~ truth * condition * session",
    "growth": "rater-stacked growth LMM, alliance ~ 0 + rater * time * condition "
              "(rater-specific fixed effects)",
}

_PUBLIC_FITS: dict[str, Callable[[str], PublicFit]] = {
    "truth_bias": TruthBiasPublic, "growth": GrowthPublic}


def with_random(design: Design, random: str) -> Design:
    """The design fitting another random-effects structure (fast engine), same terms."""
    from .._validation import check_choice

    choices = RANDOM_STRUCTURES.get(design.name)
    if choices is None:
        raise ValueError(
            f"`random` can be chosen for the {sorted(RANDOM_STRUCTURES)} designs only; "
            f"the {design.name!r} design fits its documented structure."
        )
    name = check_choice(random, "random", tuple(choices))
    builder, simplify, text = choices[name]
    arrays: Callable[[Panel], ModelArrays] = builder
    if design.residual != "iid":
        arrays = ResidualArrays(builder, design.residual)
    chosen = dataclasses.replace(
        design, model=f"{_MODEL_BASE[design.name]}, {text}", arrays=arrays,
        simplify=simplify, random=name, fit_public=_PUBLIC_FITS[design.name](name))
    return dataclasses.replace(chosen, fit_fast=_contrast_fit(chosen))


def with_residual(design: Design, residual: str) -> Design:
    """The design fitting a residual structure of the engine (fast engine), same terms."""
    from .._validation import check_choice

    choices = RESIDUAL_STRUCTURES.get(design.name, ("iid",))
    name = check_choice(residual, "residual", choices)
    if name == "iid" or design.arrays is None:
        return design
    base = design.arrays.arrays if isinstance(design.arrays, ResidualArrays) else design.arrays
    what = {"ar1": "AR(1) residuals over sessions within each patient"
                   + (" and rater" if design.name == "growth" else ""),
            "rater": "a residual SD per rater, raters' residuals correlated at a session",
            "rater_ar1": "rater residual covariance x AR(1) over sessions"}[name]
    chosen = dataclasses.replace(design, model=f"{design.model}; residual: {what}",
                                 arrays=ResidualArrays(base, name), residual=name,
                                 fit_public=_no_public_fit)
    return dataclasses.replace(chosen, fit_fast=_contrast_fit(chosen))


def without_public_fit(design: Design) -> Design:
    """The design with no public-function fit (e.g. a partially nested trial, whose
    therapist effect in one arm only the model functions do not express)."""
    return dataclasses.replace(design, fit_public=_no_public_fit)


DDF = ("satterthwaite", "z")


def with_ddf(design: Design, ddf: str) -> Design:
    """The design testing its terms with ``ddf`` ("z": Wald z; "satterthwaite": t tests
    with Satterthwaite df, as the model functions' default)."""
    if ddf == "z":
        return design
    if design.arrays is None:
        raise ValueError(f"`ddf={ddf!r}` needs a design fitted on arrays; the "
                         f"{design.name!r} design is tested with ddf='z'.")
    fit = design.fit_fast
    if not isinstance(fit, ContrastFit):
        fit = _contrast_fit(design)
    return dataclasses.replace(design, fit_fast=dataclasses.replace(fit, ddf=ddf),
                               fit_public=_no_public_fit)


def warm_start_design(design: Design) -> Design:
    """The design fitting what a warm start needs: the covariance parameters of its
    first fit. No df (they do not change the fit), and no simplification of a singular
    random part (a singular or simplified fit gives no warm start): the same warm start
    as the design's own fit, at the cost of one fit."""
    fit = design.fit_fast
    if not isinstance(fit, ContrastFit):
        return design
    return dataclasses.replace(design, fit_fast=dataclasses.replace(fit, ddf="z",
                                                                    simplify=False))


def parse_targets(design: Design, targets: Any) -> tuple[Target, ...]:
    """Validate ``targets=``: names of built-in targets and/or {name: {column: weight}}.

    Raises TypeError/ValueError naming the bad entry, with the valid names or columns.
    """
    from .._validation import check_choice

    builtins = BUILTIN_TARGETS.get(design.name, {})
    if design.arrays is None or design.coefficients is None or not design.columns:
        raise ValueError(f"`targets` are not available for the {design.name!r} design.")
    columns = design.columns
    if isinstance(targets, str):
        targets = [targets]
    items: list[tuple[str, Any]]
    if isinstance(targets, Mapping):
        items = list(targets.items())
    elif isinstance(targets, (list, tuple)):
        items = [(t, None) for t in targets]
    else:
        raise TypeError(
            f"`targets` must be a target name, a list of names or a dict "
            f"{{name: {{column: weight}}}}; got {type(targets).__name__}."
        )
    if not items:
        raise ValueError("`targets` is empty; name at least one target.")
    out = []
    for name, weights in items:
        if not isinstance(name, str) or not name:
            raise TypeError(f"`targets` names must be non-empty strings; got {name!r}.")
        if weights is None:
            check_choice(name, "targets", tuple(builtins))
            out.append(Target(name, builtin=name, design=design.name))
            continue
        if not isinstance(weights, Mapping) or not weights:
            raise TypeError(
                f"`targets[{name!r}]` must be a non-empty dict {{column: weight}} over the "
                f"design's columns {list(columns)}; got {weights!r}."
            )
        pairs = []
        for column, weight in weights.items():
            check_choice(column, f"targets[{name!r}] column", columns)
            if isinstance(weight, bool) or not isinstance(weight, (int, float, np.number)):
                raise TypeError(f"`targets[{name!r}][{column!r}]` must be a number; "
                                f"got {weight!r}.")
            if not np.isfinite(float(weight)):
                raise ValueError(f"`targets[{name!r}][{column!r}]` must be finite; "
                                 f"got {weight}.")
            pairs.append((str(column), float(weight)))
        out.append(Target(name, weights=tuple(pairs), design=design.name))
    names = [t.name for t in out]
    if len(set(names)) != len(names):
        raise ValueError(f"`targets` names a target more than once: {names}.")
    return tuple(out)


def with_targets(design: Design, targets: tuple[Target, ...]) -> Design:
    """The design testing ``targets`` instead of its default terms (fast engine)."""
    if design.arrays is None or design.coefficients is None:
        raise ValueError(f"`targets` are not available for the {design.name!r} design.")
    return dataclasses.replace(
        design,
        terms=tuple(t.name for t in targets),
        descriptions=tuple(t.describe() for t in targets),
        fit_fast=_contrast_fit(design, targets),
        fit_public=_no_public_fit,
        true_values=ContrastTruth(design.coefficients, design.columns, targets),
    )


# ------------------------------------------------------ growth of one rating (powerlmm)

GROWTH_SINGLE_COLUMNS = _column_names((None, "session"), CONDITION)
GROWTH_SINGLE_TERMS = ("time:condition",)


def growth_single_arrays(panel: Panel) -> ModelArrays:
    """Three-level growth model of therapist-rated alliance alone (one outcome).

    ``alliance_therapist ~ session * condition + (1 + session | therapist) +
    (1 + session | therapist:patient)``, as :func:`~alliancestats.fit_growth` without
    ``rater``; time is session minus the first analysed session (0, 1, ..., as powerlmm's
    ``T_end`` coding). This is the model powerlmm's analytic power is computed for: with
    ``gamma11 = gamma12 = gamma13 = 0`` and no random truth force the simulated
    therapist ratings follow it exactly (see :func:`growth_single_components`).
    """
    pat, ses = observed_index(panel)
    t = (ses - ses.min()).astype(float)
    c = panel.condition[panel.therapist[pat]].astype(float)
    bases: dict[str | None, FloatArray | None] = {None: None, "session": t}
    X, names, _ = crossed_columns(bases, {"condition": c}, CONDITION, len(t))
    pair = (0, names.index("session"))
    return ModelArrays(panel.alliance_therapist[pat, ses], X, tuple(names),
                       nested_groups(panel, pat), ("therapist", "patient"),
                       {"therapist": pair, "patient": pair})


GROWTH_SINGLE_CONTRAST = np.eye(len(GROWTH_SINGLE_COLUMNS))[
    [GROWTH_SINGLE_COLUMNS.index("session:condition")]
]


def growth_single_fast(panel: Panel, start: tuple[float, ...] | None) -> FitOutcome:
    return fit_arrays(growth_single_arrays(panel), GROWTH_SINGLE_CONTRAST, start)


def growth_single_public(frame: pd.DataFrame) -> FitOutcome:
    from ..growth import fit_growth

    res, messages = quiet(lambda: fit_growth(
        frame, outcome="alliance_therapist", time="session",
        groups=["therapist", "patient"], moderators="condition", random="slopes",
    ))
    name = "session:condition"
    return results_outcome(res, res.params[[name]], res.bse[[name]], messages)


def growth_single_coefficients(params: PRNParams, sizes: Sizes) -> FloatArray:
    """Population coefficients of GROWTH_SINGLE_COLUMNS (the therapist-rated columns of
    :func:`growth_coefficients`)."""
    stacked = dict(zip(GROWTH_COLUMNS, growth_coefficients(params, sizes), strict=True))
    return np.array([stacked["rater[therapist]" + ("" if c == "Intercept" else f":{c}")]
                     for c in GROWTH_SINGLE_COLUMNS])


def growth_single_truth(params: PRNParams, sizes: Sizes) -> FloatArray:
    """Slope difference of therapist-rated alliance, as in :func:`growth_truth`."""
    return growth_truth(params, sizes)[:1]


def growth_single_components(params: PRNParams) -> dict[str, float]:
    """Variance components of the therapist ratings' three-level growth model.

    With ``gamma11 = gamma12 = gamma13 = 0`` and no random truth force, therapist-rated
    alliance is ``mu + gamma00 + gamma01 c + (gamma02 + gamma03 c) s + gamma10 Y_dev +
    w_k + z_jk + eps``, a linear growth model with independent random intercepts and
    slopes at both levels; the SDs below are its parameters (powerlmm's
    ``sigma_cluster_intercept``, ``sigma_cluster_slope``, ``sigma_subject_intercept``,
    ``sigma_subject_slope`` and ``sigma_error``, with ``cor_cluster = cor_subject = 0``).

    Examples
    --------
    >>> c = growth_single_components(PRNParams(gamma10=1.0, gamma13=0.0))
    >>> round(c["sigma_error"] ** 2, 2)
    0.32
    """
    p = params
    g = p.gamma10
    return {
        "fixed_intercept": p.truth_mean + p.gamma00,
        "fixed_slope": p.gamma02 + g * p.truth_growth,
        "slope_difference": p.gamma03,
        "sigma_cluster_intercept": float(np.hypot(p.sd_judgment_therapist,
                                                  g * p.sd_truth_therapist)),
        "sigma_cluster_slope": abs(g) * p.sd_truth_growth_therapist,
        "sigma_subject_intercept": float(np.hypot(p.sd_judgment_patient,
                                                  g * p.sd_truth_patient)),
        "sigma_subject_slope": abs(g) * p.sd_truth_growth,
        "sigma_error": float(np.hypot(p.sd_judgment_residual, g * p.sd_truth_residual)),
    }


DESIGNS["growth_single"] = Design(
    name="growth_single",
    model="three-level growth LMM of therapist-rated alliance alone, alliance_therapist "
          "~ session * condition, correlated random intercepts and session slopes for "
          "therapist and patient (powerlmm's model)",
    terms=GROWTH_SINGLE_TERMS,
    descriptions=("training effect on the growth of therapist-rated alliance (per session)",),
    null={"gamma03": 0.0, "gamma11": 0.0, "gamma13": 0.0},
    fit_fast=growth_single_fast,
    fit_public=growth_single_public,
    true_values=growth_single_truth,
    arrays=growth_single_arrays,
    columns=GROWTH_SINGLE_COLUMNS,
    coefficients=growth_single_coefficients,
)

BUILTIN_TARGETS["growth_single"] = {
    "time:condition": {"session:condition": 1.0},
    "time": {"session": 1.0},
    "condition": {"condition": 1.0},
}
# The documented default structures of the analysis (issue: methodologically sound
# defaults): West & Kenny's random truth force for the truth-and-bias model, the
# calibrated dyadic structure with therapist random slopes for growth (the report's
# defaults).
DESIGNS["truth_bias"] = with_random(DESIGNS["truth_bias"], "auto")
DESIGNS["growth"] = with_random(DESIGNS["growth"], "rater_slopes_therapist")
