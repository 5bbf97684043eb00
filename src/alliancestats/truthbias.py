r"""Truth-and-bias (T&B) model of judgment accuracy (West & Kenny, 2011).

A perceiver's judgment (the therapist's alliance rating) is regressed on the truth (the
patient's rating of the same session) and optionally on a bias variable, in a nested
mixed model (sessions within patients within therapists):

.. math::

    J^*_{ijk} = \beta_0 + \beta_T T^*_{ijk} + \beta_B B^*_{ijk}
        + \text{moderator terms} + u_{0jk} + u_{Tjk} T^*_{ijk} + v_{0k} + v_{Tk} T^*_{ijk}
        + e_{ijk},

with :math:`J^* = J - M_T`, :math:`T^* = T - M_T` (and a commensurate :math:`B^* = B -
M_T`), :math:`M_T` the truth's grand mean over the analysed rows. Because judgment and truth
are shifted by the same constant, the intercept is the **directional bias** (mean judgment
minus truth at the truth mean), the truth slope the **truth force** and the bias slope the
**bias force**. Moderators (condition, session, ...) are crossed in full with the
intercept, truth and bias, so each force is a linear function of them;
:meth:`TruthBiasResults.effects_at` evaluates it with exact linear-contrast standard errors.
The random part shown is the default (``random="auto"``): random intercepts and random
truth forces of patients (:math:`u`) and therapists (:math:`v`), correlated within each
level, as West & Kenny (2011) recommend; when that fit is singular it is simplified step by
step and the steps are recorded (:attr:`TruthBiasResults.random_fallback`).

West, T. V., & Kenny, D. A. (2011). The truth and bias model of judgment. *Psychological
Review*, 118(2), 357-378.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import replace
from typing import Any

import numpy as np
import pandas as pd

from ._mixed import (
    ENGINES,
    RESIDUALS,
    Grouping,
    MixedFit,
    fit_mixed,
    residual_note,
)
from ._validation import (
    as_column_list,
    check_choice,
    check_variance,
    require_frame,
    without_attrs,
)
from .design import (
    RANDOM_CHOICES,
    Moderator,
    RandomStructure,
    StructureFit,
    check_occasions,
    check_rank,
    check_reference,
    checked_crossed_columns,
    effect_weights,
    fit_simplifying,
    moderator_grid,
    prepare_frame,
    r_name,
    r_shifted,
    structure_formula,
    warn_duplicate_rows,
)
from .results import EFFECT_COLUMNS, FitRecord, ModelResults, check_ddf

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

__all__ = ["TB_RANDOM_CHOICES", "TruthBiasResults", "fit_truth_bias"]

#: ``random=`` choices of :func:`fit_truth_bias`: the recommended default, then the fixed
#: structures shared with the growth model.
TB_RANDOM_CHOICES = ("auto", *RANDOM_CHOICES)
CENTER_CHOICES = ("truth_mean", "within_dyad")
EFFECTS = ("directional_bias", "truth_force", "bias_force", "truth_force_between")


# -- results --------------------------------------------------------------------------------
class TruthBiasResults(ModelResults):
    """Results of :func:`fit_truth_bias` (immutable).

    Besides everything on :class:`~alliancestats.results.ModelResults`:

    Attributes
    ----------
    directional_bias, truth_force : Series
        estimate, std_error, df, statistic, p_value, conf_low, conf_high at the
        :attr:`reference_point` (categorical moderators at their reference level, numeric
        ones at 0 when 0 is observed, else at their smallest observed value, e.g. the
        first session).
    bias_force : Series or None
        The same for the bias variable; None without ``bias``.
    truth_force_between : Series or None
        With ``center="within_dyad"`` the between-dyad truth force (``truth_force`` is
        then the within-dyad one); None otherwise.
    reference_point : dict
        Moderator column -> the value the headline effects are reported at.
    moderator_values : dict
        Moderator column -> observed values (levels of a categorical moderator, reference
        first; distinct values of a numeric one, or its quartiles when it has many).
    random_fallback : list of dict
        Steps by which ``random="auto"`` simplified a singular fit (level, term, action,
        reason), in order; empty when the first structure was kept.
    """

    _model_name = "Truth-and-bias linear mixed model"

    def __init__(
        self,
        fit: FitRecord,
        *,
        moderators: Sequence[Moderator],
        structure: Mapping[str, tuple[str | None, tuple[str, ...]]],
        effect_bases: Mapping[str, str | None],
        reference_point: Mapping[Hashable, Any] | None = None,
        moderator_values: Mapping[Hashable, Sequence[Any]] | None = None,
        random_fallback: Sequence[Mapping[str, str]] = (),
        **kwargs: Any,
    ) -> None:
        self._moderators = tuple(moderators)
        self._structure = dict(structure)
        self._effect_bases = dict(effect_bases)
        self._reference_point = dict(reference_point or {})
        self._moderator_values = {k: list(v) for k, v in (moderator_values or {}).items()}
        self._random_fallback = [dict(step) for step in random_fallback]
        super().__init__(fit, **kwargs)

    @property
    def moderators(self) -> list[Hashable]:
        """Moderator columns, in model order."""
        return [m.column for m in self._moderators]

    @property
    def reference_point(self) -> dict[Hashable, Any]:
        """Moderator values of the headline effects (and of moderators not named in
        :meth:`effects_at`)."""
        return dict(self._reference_point)

    @property
    def moderator_values(self) -> dict[Hashable, list[Any]]:
        """Observed values (or levels) of each moderator, for tables and plots."""
        return {k: list(v) for k, v in self._moderator_values.items()}

    @property
    def reference_levels(self) -> dict[Hashable, Any]:
        """Reference level of each categorical moderator (its dummies contrast the other
        levels with it)."""
        return {m.column: m.levels[0] for m in self._moderators if m.categorical}

    @property
    def random_fallback(self) -> list[dict[str, str]]:
        """How ``random="auto"`` simplified a singular fit (empty if it did not)."""
        return [dict(step) for step in self._random_fallback]

    def effects_at(self, alpha: float = 0.05, **moderator_values: Any) -> pd.DataFrame:
        """Directional bias, truth force (and bias force) at given moderator values.

        Parameters
        ----------
        alpha : float
            1 - confidence level of the intervals.
        **moderator_values
            Moderator column -> a value or a sequence of values (numeric moderators: on the
            scale given to the fit; categorical: level labels). The grid is the product of
            the sequences; moderators not named are held at the :attr:`reference_point`.

        Returns
        -------
        DataFrame
            One row per effect x combination: ``effect`` ("directional_bias",
            "truth_force", and "bias_force" with ``bias``, "truth_force_between" with
            ``center="within_dyad"``), one column per moderator, then
            estimate, std_error, df, statistic, p_value, conf_low, conf_high. Standard
            errors are exact linear contrasts of the fixed effects; each row is tested
            with its own df (the fit's ``ddf`` method; ``inf`` for z).

        Examples
        --------
        >>> from alliancestats import fit_truth_bias, simulate_prn
        >>> df = simulate_prn(rng=1)
        >>> res = fit_truth_bias(df, judgment="alliance_therapist", truth="alliance_patient",
        ...                      groups=["therapist", "patient"],
        ...                      moderators=["condition", "session"], random="intercept")
        >>> res.effects_at(condition=[0, 1], session=6).shape
        (4, 10)
        """
        if not moderator_values:  # the headline table: computed once
            return self._cached(("effects", alpha), lambda: self._effects_at(alpha)).copy()
        return self._effects_at(alpha, **moderator_values)

    def _effects_at(self, alpha: float, **moderator_values: Any) -> pd.DataFrame:
        grid = moderator_grid(self._moderators, moderator_values, self._reference_point)
        rows, labels = [], []
        for effect, base in self._effect_bases.items():
            for point in grid:
                rows.append(effect_weights(self._structure, self._moderators, base, point))
                labels.append((effect, point))
        weights = pd.DataFrame(rows).fillna(0.0)
        table = self.contrast(weights, alpha=alpha).reset_index(drop=True)
        front = pd.DataFrame(
            [{"effect": e, **{str(k): v for k, v in p.items()}} for e, p in labels]
        )
        return pd.concat([front, table[EFFECT_COLUMNS]], axis=1)

    def _effect(self, effect: str) -> pd.Series | None:
        if effect not in self._effect_bases:
            return None
        table = self.effects_at()
        row = table.loc[table["effect"] == effect, EFFECT_COLUMNS].iloc[0]
        return row.rename(effect).astype(float)

    @property
    def directional_bias(self) -> pd.Series:
        """Directional (mean-level) bias at the :attr:`reference_point`: mean judgment
        minus truth."""
        out = self._effect("directional_bias")
        assert out is not None  # always estimated
        return out

    @property
    def truth_force(self) -> pd.Series:
        """Truth force (slope of judgment on truth) at the :attr:`reference_point`."""
        out = self._effect("truth_force")
        assert out is not None
        return out

    @property
    def truth_force_between(self) -> pd.Series | None:
        """With ``center="within_dyad"``: the between-dyad truth force (slope on the dyad's
        mean truth; :attr:`truth_force` is then the within-dyad, session-to-session one);
        otherwise None."""
        return self._effect("truth_force_between")

    @property
    def bias_force(self) -> pd.Series | None:
        """Bias force (slope of judgment on the bias variable) at the
        :attr:`reference_point`, or None."""
        return self._effect("bias_force")

    def _effects_table(self, alpha: float) -> pd.DataFrame:
        table = self.effects_at(alpha=alpha)
        return table.set_index("effect")[EFFECT_COLUMNS]

    def _derived_frame(self, alpha: float) -> list[tuple[str, pd.DataFrame]]:
        return [("truth_bias", self._effects_table(alpha))]

    def _headline_caption(self) -> str:
        parts = []
        for m in self._moderators:
            value = self._reference_point.get(m.column, m.levels[0] if m.categorical else 0)
            text = f"{m.column}={value}"
            if m.categorical:
                text += " (reference level)"
            elif value != 0:
                text += " (its smallest observed value; 0 is not observed)"
            parts.append(text)
        return "Truth-and-bias effects" + (f" at {', '.join(parts)}" if parts else "")

    def _summary_header(self) -> list[tuple[str, str]]:
        header = super()._summary_header()
        refs = self.reference_levels
        if refs:
            header.append(("Reference levels", ", ".join(f"{k} = {v!r}"
                                                          for k, v in refs.items())))
        return header

    def _summary_tables(self, alpha: float) -> list[tuple[str, pd.DataFrame]]:
        return [*super()._summary_tables(alpha),
                (self._headline_caption(), self._effects_table(alpha))]


# -- the fit --------------------------------------------------------------------------------
def _center(
    frame: pd.DataFrame,
    judgment: Hashable,
    truth: Hashable,
    bias: Hashable | None,
    groups: list[Hashable],
    center: str | None,
    bias_commensurate: bool,
) -> tuple[dict[str, FloatArray], dict[str, Any]]:
    """Centred judgment, truth (and between-dyad truth, bias) and the constants used."""
    J = frame[judgment].to_numpy(dtype=float)
    T = frame[truth].to_numpy(dtype=float)
    B = None if bias is None else frame[bias].to_numpy(dtype=float)
    if center is None:
        out = {"judgment": J, "truth": T}
        info: dict[str, Any] = {"method": "none"}
        if B is not None:
            out["bias"] = B
        return out, info
    m_t = float(T.mean())
    info = {"method": center, "truth_mean": m_t}
    out = {"judgment": J - m_t}
    if center == "truth_mean":
        out["truth"] = T - m_t
    else:  # within_dyad: the dyad mean enters as a between-dyad predictor
        dyad_mean = pd.Series(T, index=frame.index).groupby(
            [frame[g] for g in groups], observed=True).transform("mean").to_numpy()
        out["truth"] = T - dyad_mean
        out["between"] = dyad_mean - m_t
    if B is not None:
        b_center = m_t if bias_commensurate else float(B.mean())
        out["bias"] = B - b_center
        info["bias_center"] = b_center
    return out, info


def _r_terms(judgment: Hashable, truth: Hashable, bias: Hashable | None,
             groups: Sequence[Hashable], info: Mapping[str, Any]) -> dict[str, str]:
    """R text of the variables as the model uses them (centred), for a runnable formula."""
    if info["method"] == "none":
        out = {"judgment": r_name(judgment), "truth": r_name(truth)}
        if bias is not None:
            out["bias"] = r_name(bias)
        return out
    m = info["truth_mean"]
    out = {"judgment": r_shifted(judgment, m), "truth": r_shifted(truth, m)}
    if info["method"] == "within_dyad":
        ave = f"ave({', '.join([r_name(truth), *(r_name(g) for g in groups)])})"
        out["truth"] = f"I({r_name(truth)} - {ave})"
        out["between"] = f"I({ave} - {m:.10g})"
    if bias is not None:
        out["bias"] = r_shifted(bias, info["bias_center"])
    return out


def _r_moderator(m: Moderator) -> str:
    """A moderator in R: categorical ones releveled when R's alphabetical reference would
    differ from ours."""
    if m.categorical and m.levels[0] != sorted(m.levels, key=str)[0]:
        return f"relevel(factor({r_name(m.column)}), ref = {str(m.levels[0])!r})"
    return r_name(m.column)


def _fit_structure(endog: pd.Series, exog: pd.DataFrame, grouping: Grouping,
                   structure: RandomStructure, options: Mapping[str, Any],
                   **how: Any) -> tuple[MixedFit, list[warnings.WarningMessage]]:
    """Fit ``structure`` (``how``: e.g. fit_mixed's ``at``), its warnings caught."""
    spec, independent = structure.spec(grouping.columns)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        fit = fit_mixed(endog, exog, grouping, spec, independent=independent, **options,
                        **how)
    return fit, list(caught)


def _fit_auto(endog: pd.Series, exog: pd.DataFrame, grouping: Grouping,
              structure: RandomStructure, options: Mapping[str, Any]
              ) -> tuple[MixedFit, RandomStructure, list[dict[str, str]]]:
    """Fit, simplifying the structure while the fit is singular (see ``random="auto"``,
    :func:`~alliancestats.design.fit_simplifying`); the kept fit's warnings are
    re-emitted, those of the simplified-away fits recorded as the steps. ``grouping``:
    the call's units, coded once for every fit."""

    def fit(structure: RandomStructure, at: Any, singular: StructureFit | None
            ) -> StructureFit:
        how = {} if at is None else {"at": at}
        result, caught = _fit_structure(endog, exog, grouping, structure, options,
                                        **how)
        if singular is not None:  # evaluated at the singular fit's optimum
            before = singular.record[0].optimizer_info
            result = replace(result, optimizer_info={
                **before, "theta": result.optimizer_info["theta"],
                "message": f"{before.get('message', '')} (the optimum of the fit with "
                           f"the dropped term at variance 0)"})
        return StructureFit(
            (result, caught), result.converged, result.is_singular, result.llf,
            np.asarray(result.theta, dtype=float), np.asarray(result.psi, dtype=float),
            lambda: (result.random_cov,
                     float(result.variance_components["variance"].iloc[-1])))

    kept, structure, steps = fit_simplifying(structure, grouping.columns, fit,
                                             evaluate=options.get("engine", "fast") == "fast")
    result, caught = kept.record
    for w in caught:
        warnings.warn(w.message, w.category, stacklevel=4)
    return result, structure, steps


def fit_truth_bias(
    data: pd.DataFrame,
    *,
    judgment: Hashable,
    truth: Hashable,
    groups: Hashable | Sequence[Hashable],
    bias: Hashable | None = None,
    moderators: Hashable | Sequence[Hashable] | None = None,
    random: str = "auto",
    center: str | None = "truth_mean",
    reml: bool = True,
    missing: str = "drop",
    engine: str = "fast",
    time: Hashable | None = None,
    bias_commensurate: bool = True,
    ddf: str = "satterthwaite",
    residual: str = "iid",
    reference: Mapping[Hashable, Any] | None = None,
) -> TruthBiasResults:
    r"""Fit the truth-and-bias model (West & Kenny, 2011) as a nested mixed model.

    Parameters
    ----------
    data : DataFrame
        Long data, one row per judgment (e.g. per patient-session). Not modified.
    judgment : column name
        The perceiver's judgment (e.g. therapist-rated alliance).
    truth : column name
        The criterion on the same metric (e.g. patient-rated alliance).
    groups : column name or list of names
        Grouping levels, outer to inner (``["therapist", "patient"]``). Inner units are
        identified together with their outer units (lme4 ``therapist:patient``), so
        patient ids may restart within therapists. An inner-first order is refused when
        the data show it.
    bias : column name, optional
        A bias variable (e.g. the therapist's own-perspective rating).
    moderators : column name or list of names, optional
        Moderators, entered as given (numeric) or as treatment dummies (categorical), and
        crossed in full with the intercept, truth and bias: ``["condition", "session"]``
        fits ``judgment ~ (truth [+ bias]) * condition * session``. The ``time`` column
        may also be a moderator.
    random : {"auto", "slopes", "slopes_uncorrelated", "intercept"}
        ``"auto"`` (default): West & Kenny's model, random truth force at every level
        correlated with the random intercepts (``"slopes"``); if that fit is singular it
        is simplified one step at a time, outer level first: a term whose variance is
        estimated at 0 is dropped (the fit without it is the same fit: it is evaluated
        at the singular fit's other parameters, not refitted), else a
        correlation estimated at +/-1 is dropped (``||``); a level keeps at least its
        intercept. Each step (level, term, reason) is recorded in
        :attr:`TruthBiasResults.random_fallback` and printed in the summary; the formula
        shows the structure kept. With ``engine="statsmodels"`` it starts from
        ``"slopes_uncorrelated"``. ``"slopes"``: random truth slopes correlated with the
        intercepts at every level (``(1 + truth | therapist) + (1 + truth |
        therapist:patient)``), kept even when singular. ``"slopes_uncorrelated"``: as
        ``"slopes"`` with the inner levels' intercept and slope independent (``(1 + truth
        || therapist:patient)``). ``"intercept"``: random intercepts only (``(1 |
        therapist) + (1 | therapist:patient)``): tests of moderators of the truth force
        (``truth:condition``) are liberal when the truth force varies across therapists.
    center : {"truth_mean", "within_dyad", None}
        ``"truth_mean"``: judgment, truth and a commensurate bias minus the truth's grand
        mean over the analysed rows (the intercept is then the directional bias).
        ``"within_dyad"``: truth minus the innermost unit's (dyad's) truth mean, that mean
        minus the grand mean entering as a between-dyad predictor ``f"{truth}_between"``
        (not crossed with moderators), judgment minus the grand mean: the truth slope is
        then the within-dyad (session-to-session) truth force and ``{truth}_between`` the
        between-dyad one. ``None``: as given (``"none"`` still works, with a
        FutureWarning).
    reml : bool
        REML (default) or ML (use ML to compare fixed effects by likelihood ratio).
    missing : {"drop", "raise"}
        Rows with a missing value in any used column are dropped (counted per column,
        one :class:`~alliancestats.exceptions.DataWarning`), or raise.
    engine : {"fast", "statsmodels"}
        The project's nested engine (default), or a genuine statsmodels ``MixedLM`` fit
        as an independent cross-check (it cannot fit ``random="slopes"``: correlated
        patient-level terms raise a ``ValueError``).
    time : column name, optional
        Occasion column (e.g. session): each innermost unit may have one row per
        occasion (duplicates raise). It may also be listed in ``moderators``. Without it,
        rows that repeat exactly give a :class:`~alliancestats.exceptions.DataWarning`.
        Needed by ``residual="ar1"``.
    bias_commensurate : bool
        Whether the bias variable is on the judgment's metric (centred on the truth mean,
        the default) or not (centred on its own mean).
    ddf : {"satterthwaite", "kenward-roger", "z"}
        Degrees of freedom of every test and interval of the fixed effects and of the
        derived effects (:meth:`TruthBiasResults.effects_at`): Satterthwaite (default, as
        lmerTest and SPSS/SAS MIXED), Kenward–Roger (REML only; adjusted covariance as
        pbkrtest) or Wald z.
    reference : dict, optional
        Reference level per categorical moderator, e.g. ``{"Group": "control"}``
        (default: a Categorical's first category, else the first sorted label). The
        summary prints every reference level.
    residual : {"iid", "ar1"}
        Residuals independent with one variance (default), or AR(1) over ``time`` within
        the innermost unit: correlation ``phi^|t_i - t_j|`` by the time value, so a
        missed session is a lag of 2 (nlme ``corAR1(form = ~ time | therapist/patient)``).
        ``phi`` is in ``result.residual_params``. Fast engine only.

    Returns
    -------
    TruthBiasResults
        The headline effects (:attr:`~TruthBiasResults.truth_force`, ...) are at the
        :attr:`~TruthBiasResults.reference_point`: numeric moderators at 0 when 0 is
        observed, else at their smallest observed value (session 1, not session 0);
        the coefficients themselves are those of the printed formula.

    Raises
    ------
    TypeError, ValueError
        For unknown or misspelt columns, non-numeric ratings, constant truth, duplicated
        (unit, time) rows, unusable grouping, column names that clash with generated
        terms, or a random structure the engine cannot fit.

    Notes
    -----
    Condition is a therapist-level variable, so its effects are tested against the
    therapist-level variance: with the 12–40 therapists of PRN trials, Wald z tests of
    them are liberal, which is why t tests with Satterthwaite df are the default.

    Examples
    --------
    >>> from alliancestats import fit_truth_bias, simulate_prn
    >>> df = simulate_prn(rng=1)
    >>> res = fit_truth_bias(df, judgment="alliance_therapist", truth="alliance_patient",
    ...                      groups=["therapist", "patient"], moderators="condition")
    >>> list(res.truth_force.index)
    ['estimate', 'std_error', 'df', 'statistic', 'p_value', 'conf_low', 'conf_high']
    """
    data = without_attrs(require_frame(data))
    group_cols = as_column_list(groups, "groups")
    if not group_cols:
        raise ValueError("`groups` must name at least one grouping column.")
    mod_cols = as_column_list(moderators, "moderators")
    check_choice(random, "random", TB_RANDOM_CHOICES)
    if center == "none":
        warnings.warn("center='none' is deprecated; use center=None (the spelling every "
                      "model uses). 'none' will stop working in the next release.",
                      FutureWarning, stacklevel=2)
        center = None
    if center is not None:
        check_choice(center, "center", CENTER_CHOICES)
    check_choice(engine, "engine", ENGINES)
    check_choice(residual, "residual", RESIDUALS)
    if residual not in ("iid", "ar1"):
        raise ValueError(f"residual={residual!r} needs rater-stacked data (fit_growth with "
                         "`rater`); fit_truth_bias takes residual='iid' or 'ar1'.")
    if residual == "ar1" and time is None:
        raise ValueError("residual='ar1' needs `time`: name the occasion column (e.g. "
                         "time='session').")
    if not isinstance(reml, bool | np.bool_):
        raise TypeError(f"`reml` must be True or False; got {reml!r}.")
    references = check_reference(reference, mod_cols)
    check_ddf(ddf, bool(reml), residual)
    # the occasion may also be a moderator (time="session", moderators=[..., "session"])
    roles: dict[str, Any] = {"judgment": judgment, "truth": truth, "bias": bias,
                             "moderators": mod_cols, "groups": group_cols,
                             "time": None if time in mod_cols else time}
    frame, dropped, grouping = prepare_frame(
        data, roles, {"judgment": judgment, "truth": truth, "bias": bias}, group_cols, missing
    )
    check_variance(frame, truth, "truth")
    if bias is not None:
        check_variance(frame, bias, "bias")
    for col in mod_cols:
        check_variance(frame, col, "moderators")
    if time is not None:
        check_occasions(frame, group_cols, time)
    else:
        warn_duplicate_rows(data, probe=[judgment, truth])

    centred, centering = _center(frame, judgment, truth, bias, group_cols, center,
                                 bias_commensurate)
    mods = [Moderator.from_data(frame, c, references.get(c)) for c in mod_cols]
    exog, structure, effect_bases = _design(frame, centred, truth, bias, mods)

    start = "slopes" if random == "auto" else random
    if random == "auto" and engine == "statsmodels":
        start = "slopes_uncorrelated"
    rstruct = RandomStructure.from_choice(len(group_cols), str(truth), start)
    endog = pd.Series(centred["judgment"], index=frame.index, copy=False)
    steps: list[dict[str, str]] = []
    options: dict[str, Any] = {"reml": reml, "engine": engine, "residual": residual,
                               "time": None if residual == "iid" else
                               frame[time].to_numpy(dtype=float)}
    if random == "auto":
        fit, rstruct, steps = _fit_auto(endog, exog, grouping, rstruct, options)
    else:
        spec, independent = rstruct.spec(group_cols)
        fit = fit_mixed(endog, exog, grouping, spec, independent=independent, **options)
    texts = _r_terms(judgment, truth, bias, group_cols, centering)
    formula = _formula(texts, bias is not None, mods, group_cols, rstruct, str(truth))
    return TruthBiasResults(
        FitRecord.from_mixed(fit, ddf=ddf),
        moderators=mods,
        structure=structure,
        effect_bases=effect_bases,
        reference_point={m.column: m.reference_value(frame) for m in mods},
        moderator_values={m.column: m.observed(frame) for m in mods},
        random_fallback=steps,
        formula=formula,
        roles={"judgment": judgment, "truth": truth, "bias": bias, "groups": group_cols,
               "moderators": mod_cols, "time": time},
        centering=centering,
        dropped_rows=dropped,
        notes=[_centring_note(centering, judgment, truth, bias),
               *_fallback_notes(random, start, steps, group_cols, str(truth)),
               *residual_note(residual, group_cols, time)],
    )


def _design(frame: pd.DataFrame, centred: Mapping[str, FloatArray], truth: Hashable,
            bias: Hashable | None, mods: Sequence[Moderator]
            ) -> tuple[pd.DataFrame, dict[str, tuple[str | None, tuple[str, ...]]],
                       dict[str, str | None]]:
    """Fixed-effect design from the centred arrays (by role; names are labels only),
    built from arrays (:func:`~alliancestats.design.crossed_columns`)."""
    mod_columns = {name: values for m in mods for name, values in m.arrays(frame).items()}
    bases: dict[str | None, FloatArray | None] = {
        None: None, str(truth): centred["truth"]}
    effect_bases: dict[str, str | None] = {"directional_bias": None,
                                           "truth_force": str(truth)}
    if bias is not None:
        bases[str(bias)] = centred["bias"]
        effect_bases["bias_force"] = str(bias)
    X, names, structure = checked_crossed_columns(bases, mod_columns, mods, len(frame))
    if "between" in centred:
        name = f"{truth}_between"
        if name in names:
            raise ValueError(
                f"center='within_dyad' adds the between-dyad truth {name!r}, which is "
                f"already the name of a term of the model (a moderator column?). Rename "
                f"that column."
            )
        X = np.column_stack([X, centred["between"]])
        names.append(name)
        structure[name] = (name, ())
        effect_bases["truth_force_between"] = name
    exog = pd.DataFrame(X, columns=names, index=frame.index, copy=False)
    check_rank(exog)
    return exog, structure, effect_bases


def _formula(texts: Mapping[str, str], has_bias: bool, mods: Sequence[Moderator],
             groups: Sequence[Hashable], rstruct: RandomStructure, truth: str) -> str:
    """The model in lme4 syntax, runnable as printed on the raw data."""
    rhs = " + ".join([texts["truth"], *([texts["bias"]] if has_bias else [])])
    rhs = f"({rhs})" if has_bias and mods else rhs
    rhs = " * ".join([rhs, *(_r_moderator(m) for m in mods)])
    if "between" in texts:
        rhs += f" + {texts['between']}"
    random_part = structure_formula(groups, rstruct, {truth: texts["truth"]})
    return f"{texts['judgment']} ~ {rhs} + {random_part}"


def _fallback_notes(random: str, start: str, steps: Sequence[Mapping[str, str]],
                    groups: Sequence[Hashable], truth: str) -> list[str]:
    if random != "auto":
        return []
    first = structure_formula(groups, RandomStructure.from_choice(len(groups), truth, start),
                              {truth: truth})
    if not steps:
        return [f"Random part: the recommended structure {first} (random truth force, "
                f"West & Kenny 2011) was kept."]
    done = "; ".join(
        f"{s['level']}: " + (f"{s['term']} dropped" if s["action"] == "dropped" else
                             f"correlation of {s['term']} dropped") + f", as {s['reason']}"
        for s in steps)
    return [f"Random part: the recommended structure {first} gave a singular fit and was "
            f"simplified ({done}); the formula shows the structure kept."]


def _centring_note(info: Mapping[str, Any], judgment: Hashable, truth: Hashable,
                   bias: Hashable | None) -> str:
    if info["method"] == "none":
        return "Judgment and truth entered as given (no centring): the intercept is not " \
               "the directional bias unless the truth is centred."
    m = info["truth_mean"]
    text = (f"{judgment} and {truth} centred on the truth mean {m:.4f}; the intercept is the "
            f"directional bias (judgment minus truth at the truth mean).")
    if info["method"] == "within_dyad":
        text = (f"{truth} centred within dyad (its dyad mean minus {m:.4f} enters as "
                f"{truth}_between): the {truth} terms are the within-dyad truth force, "
                f"{truth}_between the between-dyad one; {judgment} centred on the truth "
                f"mean {m:.4f}.")
    if bias is not None:
        text += f" {bias} centred on {info['bias_center']:.4f}."
    return text
