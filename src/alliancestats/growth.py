r"""Multilevel growth model of (rater-stacked) ratings.

Without ``rater``: ``outcome ~ time * moderators`` (time crossed in full with the
moderators) with random effects for patients within therapists.

With ``rater`` (long data, one row per rating, e.g. from
:func:`~alliancestats.data.stack_raters`), each rater has its own intercept and growth
rate, both moderated (lme4 notation, two raters and a condition moderator)::

    alliance ~ 0 + rater + rater:time + rater:condition + rater:time:condition + (random)

so that the growth rate of rater *r* in condition *c* is ``b[rater[r]:time] + c *
b[rater[r]:time:condition]``: every rate, the training effect on growth per rater and the
rater x condition x time difference-in-differences are exact linear contrasts
(:attr:`GrowthResults.growth_rates`, :attr:`GrowthResults.contrasts`).

By default the random effects are **rater-general**: one intercept (and, with
``random="slopes"``, one time slope) per therapist and per patient, shared by all ratings of
that unit; differences between raters are fixed effects. Ratings of the same session by the
two raters are otherwise treated as conditionally independent.

``random="rater_slopes"`` is the multivariate (dyadic) growth model instead: every patient
has its own intercept and time slope *per rater*, all correlated (unstructured covariance),
plus a random intercept per unit of each outer level (lme4, two raters, groups therapist
and patient)::

    alliance ~ 0 + rater + rater:time + rater:condition + rater:time:condition +
        (1 | therapist) + (0 + rater + rater:time | therapist:patient)

so that, e.g., the correlation between the therapist's and the patient's growth rates
across patients is estimated.

``random="rater_slopes_therapist"`` adds a time slope per rater at each outer level
(therapists' caseloads grow at their own rates, in each rater's eyes), correlated with the
therapist's random intercept::

    (1 + rater:time | therapist) + (0 + rater + rater:time | therapist:patient)

When a moderator is assigned to therapists (training), this therapist-level slope variance
is part of the standard error of its effect on growth; ``"rater_slopes"`` omits it and
tests such effects liberally when therapists' growth rates vary (see the growth guide).

``random="rater_intercepts"`` keeps only the rater-specific intercepts of that structure,
the random part of the classic two-intercept dyadic model (Kenny, Kashy & Cook 2006)::

    (1 | therapist) + (0 + rater | therapist:patient)

(nlme: ``random = list(therapist = pdDiag(~ 1), patient = pdSymm(~ 0 + rater))``): each
patient has one intercept per rater, correlated, and no random growth rates.
statsmodels cannot fit correlated terms at an inner level, so these structures (and
``random="slopes"``) need the default ``engine="fast"``.
"""

from __future__ import annotations

from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._mixed import ENGINES, RESIDUALS, fit_mixed, residual_note
from ._validation import (
    as_column_list,
    check_choice,
    check_variance,
    require_frame,
)
from .design import (
    RANDOM_CHOICES,
    Moderator,
    check_occasions,
    check_reference,
    checked_crossed_columns,
    effect_weights,
    moderator_grid,
    prepare_frame,
    r_name,
    r_shifted,
    random_formula,
    random_spec,
    rater_random_spec,
)
from .results import EFFECT_COLUMNS, FitRecord, ModelResults, check_ddf

__all__ = ["GROWTH_RANDOM_CHOICES", "GrowthResults", "fit_growth"]

#: ``random=`` choices of :func:`fit_growth`: the shared ones plus the rater-specific one.
GROWTH_RANDOM_CHOICES = (*RANDOM_CHOICES, "rater_slopes", "rater_intercepts",
                         "rater_slopes_therapist")

#: The ``random=`` choices that give each rater its own random effects (need ``rater``).
_RATER_RANDOM = ("rater_slopes", "rater_intercepts", "rater_slopes_therapist")

#: Moderators with at most this many distinct values are tabulated at each value.
_MAX_TABULATED = 10


class GrowthResults(ModelResults):
    """Results of :func:`fit_growth` (immutable).

    Besides everything on :class:`~alliancestats.results.ModelResults`:

    Attributes
    ----------
    growth_rates : DataFrame
        Growth rate (change per unit of time) for every rater x moderator combination:
        columns rater (if any), one per moderator, then estimate, std_error, df, statistic,
        p_value, conf_low, conf_high. Moderators with few distinct values (e.g. condition
        0/1) are tabulated at each value, others at 0.
    contrasts : DataFrame
        Per moderator (design column): its effect on the growth rate for each rater (e.g.
        the training effect on growth), and with two or more raters the difference of
        those effects between each rater and the first (the rater x condition x time
        difference-in-differences); other moderators at 0. Indexed by a readable label.
    """

    _model_name = "Growth linear mixed model"

    def __init__(
        self,
        fit: FitRecord,
        *,
        moderators: Sequence[Moderator],
        structure: dict[str, tuple[str | None, tuple[str, ...]]],
        rater_levels: Sequence[Any],
        rater: Hashable | None,
        time: Hashable,
        tabulate: dict[Hashable, list[Any]],
        moderator_values: Mapping[Hashable, Sequence[Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        self._moderator_values = {k: list(v) for k, v in (moderator_values or {}).items()}
        self._moderators = tuple(moderators)
        self._structure = dict(structure)
        self._rater_levels = list(rater_levels)
        self._rater = rater
        self._time = time
        self._tabulate: dict[str, Any] = {str(k): v for k, v in tabulate.items()}
        super().__init__(fit, **kwargs)

    @property
    def moderator_values(self) -> dict[Hashable, list[Any]]:
        """Observed values (or levels, reference first) of each moderator."""
        return {k: list(v) for k, v in self._moderator_values.items()}

    @property
    def reference_levels(self) -> dict[Hashable, Any]:
        """Reference level of each categorical moderator (and of the rater)."""
        out = {m.column: m.levels[0] for m in self._moderators if m.categorical}
        if self._rater is not None:
            out = {self._rater: self._rater_levels[0], **out}
        return out

    def _summary_header(self) -> list[tuple[str, str]]:
        header = super()._summary_header()
        refs = self.reference_levels
        if refs:
            header.append(("Reference levels", ", ".join(f"{k} = {v!r}"
                                                          for k, v in refs.items())))
        return header

    def _slope_base(self, level: Any) -> str:
        return f"{self._rater}[{level}]:{self._time}" if self._rater is not None \
            else str(self._time)

    def _levels(self) -> list[Any]:
        return self._rater_levels if self._rater is not None else [None]

    def rates_at(self, alpha: float = 0.05, **moderator_values: Any) -> pd.DataFrame:
        """Growth rates per rater at given moderator values (a value or sequence each).

        Examples
        --------
        >>> from alliancestats import fit_growth, simulate_prn
        >>> df = simulate_prn(rng=1)
        >>> res = fit_growth(df, outcome="alliance_patient", time="session",
        ...                  groups=["therapist", "patient"], moderators="condition",
        ...                  random="intercept")
        >>> res.rates_at(condition=[0, 1])["condition"].tolist()
        [0, 1]
        """
        grid = moderator_grid(self._moderators, moderator_values)
        rows, labels = [], []
        for level in self._levels():
            for point in grid:
                rows.append(effect_weights(self._structure, self._moderators,
                                           self._slope_base(level), point))
                labels.append({**({str(self._rater): level} if self._rater is not None
                                  else {}), **{str(k): v for k, v in point.items()}})
        table = self.contrast(pd.DataFrame(rows).fillna(0.0), alpha=alpha)
        return pd.concat([pd.DataFrame(labels), table.reset_index(drop=True)], axis=1)

    @property
    def growth_rates(self) -> pd.DataFrame:
        """Growth rate by rater x moderator values, with SE, df, test and 95% CI."""
        return self.rates_at(**self._tabulate)

    def _contrast_weights(self) -> pd.DataFrame:
        rows: dict[str, dict[str, float]] = {}
        levels = self._levels()
        for m in self._moderators:
            for name in m.names:
                per_level = {}
                for level in levels:
                    base = self._slope_base(level)
                    coef = f"{base}:{name}"
                    label = f"{name} effect on growth" + (
                        f" ({self._rater}={level})" if self._rater is not None else "")
                    rows[label] = {coef: 1.0}
                    per_level[level] = coef
                for level in levels[1:]:
                    label = (f"{name} effect on growth: {self._rater} {level} - "
                             f"{levels[0]}")
                    rows[label] = {per_level[level]: 1.0, per_level[levels[0]]: -1.0}
        if self._rater is not None:
            for level in levels[1:]:
                rows[f"growth ({self._rater}={level}) - ({self._rater}={levels[0]}) at "
                     f"moderators = 0"] = {self._slope_base(level): 1.0,
                                           self._slope_base(levels[0]): -1.0}
        return pd.DataFrame.from_dict(rows, orient="index").fillna(0.0)

    def contrasts_at(self, alpha: float = 0.05) -> pd.DataFrame:
        """:attr:`contrasts` with ``1 - alpha`` confidence intervals."""
        weights = self._contrast_weights()
        if weights.empty:
            return pd.DataFrame(columns=EFFECT_COLUMNS)
        return self.contrast(weights, alpha=alpha)

    @property
    def contrasts(self) -> pd.DataFrame:
        """Moderator effects on growth per rater and their between-rater differences."""
        return self.contrasts_at()

    def _derived_frame(self, alpha: float) -> list[tuple[str, pd.DataFrame]]:
        rates = self.rates_at(alpha=alpha, **self._tabulate)
        keys = [c for c in rates.columns if c not in EFFECT_COLUMNS]
        rates.index = pd.Index(["growth " + ", ".join(f"{k}={row[k]}" for k in keys)
                                for _, row in rates.iterrows()]) if keys else \
            pd.Index(["growth"])
        out = [("growth_rate", rates[EFFECT_COLUMNS])]
        contrasts = self.contrasts_at(alpha)
        if len(contrasts):
            out.append(("growth_contrast", contrasts))
        return out

    def _summary_tables(self, alpha: float) -> list[tuple[str, pd.DataFrame]]:
        tables = super()._summary_tables(alpha)
        rates = self.rates_at(alpha=alpha, **self._tabulate)
        keys = [c for c in rates.columns if c not in EFFECT_COLUMNS]
        tables.append((f"Growth rates (per unit of {self._time})",
                       rates.set_index(keys) if keys else rates))
        contrasts = self.contrasts_at(alpha)
        if len(contrasts):
            tables.append(("Growth contrasts", contrasts))
        return tables


def _time_values(frame: pd.DataFrame, time: Hashable, time_center: Any) -> tuple[
        pd.Series, dict[str, Any]]:
    t = frame[time].astype(float)
    if time_center is None:
        return t, {}
    if isinstance(time_center, str):
        check_choice(time_center, "time_center", ("first", "mean"))
        value = float(t.min()) if time_center == "first" else float(t.mean())
    elif isinstance(time_center, int | float | np.number) and not isinstance(time_center, bool):
        value = float(time_center)
    else:
        raise TypeError(
            f"`time_center` must be None, 'first', 'mean' or a number; got {time_center!r}."
        )
    return t - value, {"time": f"{time} - {value:g}", "time_center": value}


def _rater_labels(values: pd.Series, levels: Sequence[Any]) -> pd.Series:
    """Rater labels as a categorical in the model's rater order (the first is the
    reference of the residual SD ratios)."""
    return pd.Series(pd.Categorical(values.to_numpy(), categories=list(levels)),
                     index=values.index)


def fit_growth(
    data: pd.DataFrame,
    *,
    outcome: Hashable,
    time: Hashable,
    groups: Hashable | Sequence[Hashable],
    rater: Hashable | None = None,
    moderators: Hashable | Sequence[Hashable] | None = None,
    random: str = "slopes",
    reml: bool = True,
    missing: str = "drop",
    engine: str = "fast",
    time_center: str | float | None = "first",
    ddf: str = "satterthwaite",
    residual: str = "iid",
    reference: Mapping[Hashable, Any] | None = None,
) -> GrowthResults:
    """Fit a multilevel growth model, by rater if the data are stacked by rater.

    Parameters
    ----------
    data : DataFrame
        Long data: one row per unit and time point, or (with ``rater``) one row per rating.
        Not modified.
    outcome : column name
        The rating (e.g. ``"alliance"`` after :func:`~alliancestats.data.stack_raters`).
    time : column name
        Numeric time (e.g. session).
    groups : column name or list of names
        Grouping levels outer to inner (``["therapist", "patient"]``).
    rater : column name, optional
        Rater column of stacked data: each rater gets its own intercept and growth rate,
        moderated by ``moderators``. The order of a categorical's categories (as made by
        ``stack_raters``) sets the reference rater; otherwise sorted labels.
    moderators : column name or list of names, optional
        E.g. ``"condition"``; numeric as given, categorical as dummies; crossed in full with
        the (rater-specific) intercepts and growth rates.
    random : str
        One of "slopes", "intercept", "slopes_uncorrelated", "rater_slopes",
        "rater_slopes_therapist", "rater_intercepts". Random effects per level,
        rater-general except the ``"rater_*"`` structures (see the module notes).
        ``"slopes"``: a random intercept and time slope, correlated, for therapists
        and for patients within therapists (lme4 ``(1 + time | therapist) +
        (1 + time | therapist:patient)``). ``"intercept"``: random intercepts only.
        ``"slopes_uncorrelated"``: as ``"slopes"`` with the patient-level intercept and
        slope independent (``(1 + time || therapist:patient)``).
        ``"rater_slopes"`` (needs ``rater``): per unit of the innermost level, one
        intercept and one time slope per rater, all correlated, and a random intercept for
        each outer level (lme4 ``(1 | therapist) + (0 + rater + rater:time |
        therapist:patient)``). Without therapist random slopes it tests effects of a
        therapist-level moderator on growth liberally when therapists' growth rates
        vary (patient rater: 12 % at a nominal 5 % in simulation, growth guide).
        ``"rater_slopes_therapist"`` (needs ``rater``): as ``"rater_slopes"`` plus a time
        slope per rater at each outer level, correlated with its random intercept (lme4
        ``(1 + rater:time | therapist) + (0 + rater + rater:time |
        therapist:patient)``). Recommended for rater-stacked data, with
        ``residual="rater"``: the rater-general structures ignore the dyadic structure of
        the two ratings and give conservative tests of growth contrasts in simulation,
        ``"rater_slopes"`` ignores therapist-level slope variance; this pair covered the
        training effects on growth in 93–97 % of simulated trials with and without
        therapist random slopes (see the growth user guide). Often singular (the
        simulated fits were, mostly); its fixed effects and contrasts were calibrated
        including the singular fits. The default stays ``"slopes"`` because it also
        serves a single series (no ``rater``).
        ``"rater_intercepts"`` (needs ``rater``): per unit of the innermost level one
        intercept per rater, correlated, and a random intercept for each outer level
        (lme4 ``(1 | therapist) + (0 + rater | therapist:patient)``): the two-intercept
        dyadic model, without random growth rates.
    reml : bool
        REML (default) or ML.
    missing : {"drop", "raise"}
        Rows with missing values in used columns are dropped (counted, one warning).
    engine : {"fast", "statsmodels"}
        The project's nested engine (default), or a genuine statsmodels ``MixedLM`` fit
        as a cross-check; statsmodels cannot fit correlated patient-level terms
        (``"slopes"`` and the ``"rater_*"`` structures) and raises a
        ``ValueError`` for them.
    time_center : {"first", "mean"}, number or None
        Subtract the first time point (default: intercepts refer to the first session),
        the mean time, a given value, or nothing. Recorded in ``centering``; the formula
        names the variable used (``I(session - 1)``), so it runs as printed in lme4.
    reference : dict, optional
        Reference level per categorical moderator (or for ``rater``), e.g.
        ``{"Group": "control"}`` (default: a Categorical's first category, else the first
        sorted label). The summary prints every reference level.
    ddf : {"satterthwaite", "kenward-roger", "z"}
        Degrees of freedom of every test and interval of the fixed effects, growth rates
        and growth contrasts: Satterthwaite (default, as lmerTest and SPSS/SAS MIXED),
        Kenward–Roger (REML only; adjusted covariance as pbkrtest) or Wald z.
    residual : {"iid", "ar1", "rater", "rater_ar1"}
        Residuals within each innermost unit (patient): independent with one variance
        (default); ``"ar1"``: AR(1) over the ``time`` value (a missed session is a lag of
        2; with ``rater``, within each rater's series: nlme ``corAR1(form = ~ time |
        therapist/patient/rater)``); ``"rater"`` (needs ``rater``): a residual SD per
        rater and one correlation of the raters' residuals at the same time (nlme
        ``varIdent(form = ~ 1 | rater)`` + ``corCompSymm(form = ~ 1 |
        therapist/patient/time)``); ``"rater_ar1"``: that rater covariance times
        ``phi^|t_i - t_j|``. Estimates in ``result.residual_params``. Fast engine only.

    Returns
    -------
    GrowthResults

    Raises
    ------
    TypeError, ValueError
        For unknown or misspelt columns, non-numeric outcome or time, duplicated
        (unit[, rater], time) rows (with a hint when ids restart within an outer unit),
        grouping given inner level first, column names that clash with generated terms,
        or a random structure the engine cannot fit.

    Examples
    --------
    >>> from alliancestats import fit_growth, simulate_prn, stack_raters
    >>> long = stack_raters(simulate_prn(rng=2), ratings={
    ...     "therapist": "alliance_therapist", "patient": "alliance_patient"})
    >>> res = fit_growth(long, outcome="alliance", time="session", rater="rater",
    ...                  groups=["therapist", "patient"], moderators="condition",
    ...                  random="intercept")
    >>> res.growth_rates.shape
    (4, 9)
    """
    data = require_frame(data)
    group_cols = as_column_list(groups, "groups")
    if not group_cols:
        raise ValueError("`groups` must name at least one grouping column.")
    mod_cols = as_column_list(moderators, "moderators")
    check_choice(random, "random", GROWTH_RANDOM_CHOICES)
    if random in _RATER_RANDOM and rater is None:
        what = "intercept" if random == "rater_intercepts" else "intercept and slope"
        raise ValueError(
            f"random={random!r} gives each rater its own random {what} and needs stacked "
            f"ratings: pass `rater` (e.g. rater='rater' after stack_raters), or use "
            f"random='slopes'."
        )
    check_choice(engine, "engine", ENGINES)
    check_choice(residual, "residual", RESIDUALS)
    if residual in ("rater", "rater_ar1") and rater is None:
        raise ValueError(f"residual={residual!r} models the raters' residuals and needs "
                         "stacked ratings: pass `rater` (e.g. rater='rater' after "
                         "stack_raters), or use residual='ar1'.")
    if not isinstance(reml, bool | np.bool_):
        raise TypeError(f"`reml` must be True or False; got {reml!r}.")
    check_ddf(ddf, bool(reml), residual)
    references = check_reference(reference, [*mod_cols, *([rater] if rater is not None
                                                            else [])])
    roles: dict[str, Any] = {"outcome": outcome, "time": time, "rater": rater,
                             "moderators": mod_cols, "groups": group_cols}
    frame, dropped, grouping = prepare_frame(data, roles, {"outcome": outcome, "time": time},
                                             group_cols, missing)
    check_variance(frame, time, "time")
    for col in mod_cols:
        check_variance(frame, col, "moderators")
    check_occasions(frame, group_cols, time, [rater] if rater is not None else [])
    if str(time) == "Intercept":
        raise ValueError(
            f"`time` column {time!r} has the name of the random intercept, so the random "
            f"terms could not be told apart. Rename it, e.g. "
            f"data.rename(columns={{{time!r}: 'time'}})."
        )
    t, centering = _time_values(frame, time, time_center)
    mods = [Moderator.from_data(frame, c, references.get(c)) for c in mod_cols]
    mod_columns = {name: values for m in mods for name, values in m.arrays(frame).items()}

    levels: list[Any] = []
    bases: dict[str | None, np.ndarray[Any, Any] | None]
    t_values = t.to_numpy(dtype=float)
    if rater is None:
        bases = {None: None, str(time): t_values}
    else:
        levels = list(Moderator.from_data(frame.astype({rater: "category"})
                                          if not isinstance(frame[rater].dtype,
                                                            pd.CategoricalDtype)
                                          else frame, rater, references.get(rater)).levels)
        if len(levels) < 2:
            raise ValueError(
                f"`rater` column {rater!r} has {len(levels)} rater(s) in the analysed rows; "
                f"a rater-specific growth model needs at least two. Use rater=None."
            )
        bases = {}
        raters = frame[rater].to_numpy()
        for level in levels:
            indicator = (raters == level).astype(float)
            bases[f"{rater}[{level}]"] = indicator
            bases[f"{rater}[{level}]:{time}"] = indicator * t_values
    # the design from arrays, as the truth-and-bias model and the power designs build it
    X, names, structure = checked_crossed_columns(bases, mod_columns, mods, len(frame))
    exog = pd.DataFrame(X, columns=names, index=frame.index, copy=False)
    re_design = pd.DataFrame({"Intercept": 1.0, str(time): t_values}, index=frame.index)
    independent: list[str] = []
    if random in _RATER_RANDOM:
        spec = rater_random_spec(group_cols, bases)
        inner = str(group_cols[-1])
        if random == "rater_intercepts":  # the rater indicators only, lme4's 0 + rater
            spec[inner] = spec[inner][: len(levels)]
        elif random == "rater_slopes_therapist":  # outer levels: lme4's 1 + rater:time
            spec.update({str(g): ["Intercept", *spec[inner][len(levels):]]
                         for g in group_cols[:-1]})
    else:
        spec, independent = random_spec(group_cols, str(time), random)
    fit = fit_mixed(frame[outcome].astype(float), exog, grouping, spec,
                              reml=reml, engine=engine, independent=independent,
                              re_design=re_design, residual=residual,
                              time=None if residual == "iid" else
                              frame[time].to_numpy(dtype=float),
                              rater=None if residual == "iid" or rater is None else
                              _rater_labels(frame[rater], levels))
    tabulate = {m.column: (list(m.levels) if m.categorical else
                           sorted(frame[m.column].unique().tolist())
                           if frame[m.column].nunique() <= _MAX_TABULATED else [0.0])
                for m in mods}
    formula = _formula(outcome, time, centering.get("time_center"), rater, mods, group_cols,
                       random)
    notes: list[str] = []
    if rater is None:
        notes.append("Growth rates are per unit of time.")
    elif random == "rater_slopes":
        notes.append(f"Each {group_cols[-1]} has a random intercept and time slope per "
                     f"rater, all correlated (rater-specific random effects).")
    elif random == "rater_slopes_therapist":
        outer = ", ".join(str(g) for g in group_cols[:-1])
        notes.append(f"Each {group_cols[-1]} has a random intercept and time slope per "
                     f"rater, all correlated; each unit of {outer} a random intercept and "
                     f"a time slope per rater, correlated (rater-specific random "
                     f"effects).")
    elif random == "rater_intercepts":
        notes.append(f"Each {group_cols[-1]} has a random intercept per rater, correlated "
                     f"(the two-intercept dyadic model); growth rates are not random.")
    else:
        notes.append("Random effects are shared by all raters of a unit (rater-general); "
                     "rater differences are fixed effects.")
    notes += residual_note(residual, group_cols, time, rater)
    return GrowthResults(
        FitRecord.from_mixed(fit, ddf=ddf),
        moderators=mods,
        structure=structure,
        rater_levels=levels,
        rater=rater,
        time=time,
        tabulate=tabulate,
        moderator_values={m.column: m.observed(frame) for m in mods},
        formula=formula,
        roles={"outcome": outcome, "time": time, "groups": group_cols, "rater": rater,
               "moderators": mod_cols},
        centering=centering,
        dropped_rows=dropped,
        notes=notes,
    )


def _r_factor(column: Hashable, levels: Sequence[Any]) -> str:
    """A categorical column in R, releveled when R's alphabetical reference differs."""
    if levels and levels[0] != sorted(levels, key=str)[0]:
        return f"relevel(factor({r_name(column)}), ref = {str(levels[0])!r})"
    return r_name(column)


def _formula(outcome: Hashable, time: Hashable, shift: float | None, rater: Hashable | None,
             mods: Sequence[Moderator],
             groups: Sequence[Hashable], random: str) -> str:
    """The model in lme4 syntax, in the variables actually used (``I(session - 1)``), so
    that it runs as printed on the raw data."""
    t = r_shifted(time, shift)
    mod_text = [_r_factor(m.column, m.levels) if m.categorical else r_name(m.column)
                for m in mods]
    crossed = " * ".join([t, *mod_text])
    # rater enters cell-means coded (0 + rater / ...): its reference level does not
    # change the model in R, only the order of the coefficients
    fixed = crossed if rater is None else f"0 + {r_name(rater)} / ({crossed})"
    if random in _RATER_RANDOM:
        assert rater is not None
        r = r_name(rater)
        labels = [":".join(r_name(g) for g in groups[: d + 1]) for d in range(len(groups))]
        inner = f"0 + {r}" if random == "rater_intercepts" else f"0 + {r} + {r}:{t}"
        outer = f"1 + {r}:{t}" if random == "rater_slopes_therapist" else "1"
        random_part = " + ".join([*(f"({outer} | {lab})" for lab in labels[:-1]),
                                  f"({inner} | {labels[-1]})"])
    else:
        random_part = random_formula(groups, t, random)
    return f"{r_name(outcome)} ~ {fixed} + {random_part}"
