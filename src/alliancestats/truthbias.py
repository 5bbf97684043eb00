r"""Truth-and-bias (T&B) model of judgment accuracy (West & Kenny, 2011).

A perceiver's judgment (the therapist's alliance rating) is regressed on the truth (the
patient's rating of the same session) and optionally on a bias variable, in a nested
mixed model (sessions within patients within therapists):

.. math::

    J^*_{ijk} = \beta_0 + \beta_T T^*_{ijk} + \beta_B B^*_{ijk}
        + \text{moderator terms} + u_{jk} + v_k + e_{ijk},

with :math:`J^* = J - M_T`, :math:`T^* = T - M_T` (and a commensurate :math:`B^* = B -
M_T`), :math:`M_T` the truth's grand mean over the analysed rows. Because judgment and truth
are shifted by the same constant, the intercept is the **directional bias** (mean judgment
minus truth at the truth mean), the truth slope the **truth force** and the bias slope the
**bias force**. Moderators (condition, session, ...) are crossed in full with the
intercept, truth and bias, so each force is a linear function of them;
:meth:`TruthBiasResults.effects_at` evaluates it with exact linear-contrast standard errors.
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from ._mixed import ENGINES, RESIDUALS, fit_mixed, residual_note
from ._validation import (
    as_column_list,
    check_choice,
    check_unique_rows,
    check_variance,
    require_frame,
)
from .design import (
    RANDOM_CHOICES,
    Moderator,
    check_rank,
    crossed_design,
    effect_weights,
    moderator_grid,
    prepare_frame,
    random_formula,
    random_spec,
)
from .results import EFFECT_COLUMNS, FitRecord, ModelResults, check_ddf

__all__ = ["TruthBiasResults", "fit_truth_bias"]

CENTER_CHOICES = ("truth_mean", "within_dyad")
EFFECTS = ("directional_bias", "truth_force", "bias_force")


# -- results --------------------------------------------------------------------------------
class TruthBiasResults(ModelResults):
    """Results of :func:`fit_truth_bias` (immutable).

    Besides everything on :class:`~alliancestats.results.ModelResults`:

    Attributes
    ----------
    directional_bias, truth_force : Series
        estimate, std_error, df, statistic, p_value, conf_low, conf_high at moderators = 0
        (numeric moderators at 0, categorical ones at their reference level).
    bias_force : Series or None
        The same for the bias variable; None without ``bias``.
    moderator_values : dict
        Each moderator's observed values in the analysed rows (numeric: sorted distinct
        values; categorical: levels, reference first): the default grid of
        :func:`~alliancestats.plot_truth_bias`.
    """

    _model_name = "Truth-and-bias linear mixed model"

    def __init__(
        self,
        fit: FitRecord,
        *,
        moderators: Sequence[Moderator],
        structure: Mapping[str, tuple[str | None, tuple[str, ...]]],
        effect_bases: Mapping[str, str | None],
        moderator_values: Mapping[Hashable, Sequence[Any]] | None = None,
        **kwargs: Any,
    ) -> None:
        self._moderator_values = {k: tuple(v) for k, v in (moderator_values or {}).items()}
        self._moderators = tuple(moderators)
        self._structure = dict(structure)
        self._effect_bases = dict(effect_bases)
        super().__init__(fit, **kwargs)

    @property
    def moderators(self) -> list[Hashable]:
        """Moderator columns, in model order."""
        return [m.column for m in self._moderators]

    @property
    def moderator_values(self) -> dict[Hashable, list[Any]]:
        """Observed values (numeric) or levels (categorical) of each moderator."""
        return {k: list(v) for k, v in self._moderator_values.items()}

    def effects_at(self, alpha: float = 0.05, **moderator_values: Any) -> pd.DataFrame:
        """Directional bias, truth force (and bias force) at given moderator values.

        Parameters
        ----------
        alpha : float
            1 - confidence level of the intervals.
        **moderator_values
            Moderator column -> a value or a sequence of values (numeric moderators: on the
            scale given to the fit; categorical: level labels). The grid is the product of
            the sequences; moderators not named are held at 0 (or the reference level).

        Returns
        -------
        DataFrame
            One row per effect x combination: ``effect``, one column per moderator, then
            estimate, std_error, df, statistic, p_value, conf_low, conf_high. Standard
            errors are exact linear contrasts of the fixed effects; each row is tested
            with its own df (the fit's ``ddf`` method; ``inf`` for z).

        Examples
        --------
        >>> from alliancestats import fit_truth_bias, simulate_prn
        >>> df = simulate_prn(rng=1)
        >>> res = fit_truth_bias(df, judgment="alliance_therapist", truth="alliance_patient",
        ...                      groups=["therapist", "patient"],
        ...                      moderators=["condition", "session"])
        >>> res.effects_at(condition=[0, 1], session=6).shape
        (4, 10)
        """
        grid = moderator_grid(self._moderators, moderator_values)
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
        """Directional (mean-level) bias at moderators = 0: mean judgment minus truth."""
        out = self._effect("directional_bias")
        assert out is not None  # always estimated
        return out

    @property
    def truth_force(self) -> pd.Series:
        """Truth force (slope of judgment on truth) at moderators = 0."""
        out = self._effect("truth_force")
        assert out is not None
        return out

    @property
    def bias_force(self) -> pd.Series | None:
        """Bias force (slope of judgment on the bias variable) at moderators = 0, or None."""
        return self._effect("bias_force")

    def _effects_table(self, alpha: float) -> pd.DataFrame:
        table = self.effects_at(alpha=alpha)
        return table.set_index("effect")[EFFECT_COLUMNS]

    def _derived_frame(self, alpha: float) -> list[tuple[str, pd.DataFrame]]:
        return [("truth_bias", self._effects_table(alpha))]

    def _summary_tables(self, alpha: float) -> list[tuple[str, pd.DataFrame]]:
        at = ", ".join(
            f"{m.column}={m.levels[0] if m.categorical else 0}" for m in self._moderators
        )
        caption = "Truth-and-bias effects" + (f" at {at}" if at else "")
        return [*super()._summary_tables(alpha), (caption, self._effects_table(alpha))]


# -- the fit --------------------------------------------------------------------------------
def _center(
    frame: pd.DataFrame,
    judgment: Hashable,
    truth: Hashable,
    bias: Hashable | None,
    groups: list[Hashable],
    center: str | None,
    bias_commensurate: bool,
) -> tuple[dict[str, pd.Series], dict[str, Any]]:
    """Centred judgment, truth (and between-dyad truth, bias) and the constants used."""
    J = frame[judgment].astype(float)
    T = frame[truth].astype(float)
    if center is None:
        out = {"judgment": J, "truth": T}
        info: dict[str, Any] = {"method": "none"}
        if bias is not None:
            out["bias"] = frame[bias].astype(float)
        return out, info
    m_t = float(T.mean())
    info = {"method": center, "truth_mean": m_t}
    out = {"judgment": J - m_t}
    if center == "truth_mean":
        out["truth"] = T - m_t
    else:  # within_dyad: METHODS 1.2, the dyad mean enters as a between-dyad predictor
        dyad_mean = T.groupby([frame[g] for g in groups], observed=True).transform("mean")
        out["truth"] = T - dyad_mean
        out["between"] = dyad_mean - m_t
    if bias is not None:
        B = frame[bias].astype(float)
        b_center = m_t if bias_commensurate else float(B.mean())
        out["bias"] = B - b_center
        info["bias_center"] = b_center
    return out, info


def fit_truth_bias(
    data: pd.DataFrame,
    *,
    judgment: Hashable,
    truth: Hashable,
    groups: Hashable | Sequence[Hashable],
    bias: Hashable | None = None,
    moderators: Hashable | Sequence[Hashable] | None = None,
    random: str = "intercept",
    center: str | None = "truth_mean",
    reml: bool = True,
    missing: str = "drop",
    engine: str = "fast",
    time: Hashable | None = None,
    bias_commensurate: bool = True,
    ddf: str = "satterthwaite",
    residual: str = "iid",
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
        identified together with their outer units (lme4 ``therapist:patient``).
    bias : column name, optional
        A bias variable (e.g. the therapist's own-perspective rating).
    moderators : column name or list of names, optional
        Moderators, entered as given (numeric) or as treatment dummies (categorical), and
        crossed in full with the intercept, truth and bias: ``["condition", "session"]``
        fits ``judgment ~ (truth [+ bias]) * condition * session``.
    random : {"intercept", "slopes", "slopes_uncorrelated"}
        ``"intercept"``: a random intercept at every level (lme4 ``(1 | therapist) +
        (1 | therapist:patient)``). ``"slopes"``: plus random truth slopes, correlated with
        the intercepts at every level (``(1 + truth | therapist) + (1 + truth |
        therapist:patient)``); statsmodels cannot fit correlated inner-level slopes, so this
        needs the fast engine. ``"slopes_uncorrelated"``: as ``"slopes"`` but the inner
        levels' intercept and slope are independent (``(1 + truth || therapist:patient)``).
    center : {"truth_mean", "within_dyad", None}
        ``"truth_mean"``: judgment, truth and a commensurate bias minus the truth's grand
        mean over the analysed rows (the intercept is then the directional bias).
        ``"within_dyad"``: truth minus the innermost unit's (dyad's) truth mean, that mean
        minus the grand mean entering as a between-dyad predictor ``f"{truth}_between"``
        (not crossed with moderators), judgment minus the grand mean (tracking accuracy;
        METHODS 1.2). ``None``: as given (``"none"`` still works, with a FutureWarning).
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
        Occasion column (e.g. session): each innermost unit must have one row per
        occasion; needed by ``residual="ar1"``. It may also be a moderator.
    bias_commensurate : bool
        Whether the bias variable is on the judgment's metric (centred on the truth mean,
        the default) or not (centred on its own mean).
    ddf : {"satterthwaite", "kenward-roger", "z"}
        Degrees of freedom of every test and interval of the fixed effects and of the
        derived effects (:meth:`TruthBiasResults.effects_at`): Satterthwaite (default, as
        lmerTest and SPSS/SAS MIXED), Kenward–Roger (REML only; adjusted covariance as
        pbkrtest) or Wald z.
    residual : {"iid", "ar1"}
        Residuals independent with one variance (default), or AR(1) over ``time`` within
        the innermost unit: correlation ``phi^|t_i - t_j|`` by the time value, so a
        missed session is a lag of 2 (nlme ``corAR1(form = ~ time | therapist/patient)``).
        ``phi`` is in ``result.residual_params``. Fast engine only.

    Returns
    -------
    TruthBiasResults

    Raises
    ------
    TypeError, ValueError
        For unknown or misspelt columns, non-numeric ratings, constant truth, duplicated
        (unit, time) rows, unusable grouping, or a random structure the engine cannot fit.

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
    data = require_frame(data)
    group_cols = as_column_list(groups, "groups")
    if not group_cols:
        raise ValueError("`groups` must name at least one grouping column.")
    mod_cols = as_column_list(moderators, "moderators")
    check_choice(random, "random", RANDOM_CHOICES)
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
    check_ddf(ddf, bool(reml), residual)
    # the occasion may also be a moderator (time="session", moderators=[..., "session"])
    roles: dict[str, Any] = {"judgment": judgment, "truth": truth, "bias": bias,
                             "moderators": mod_cols, "groups": group_cols,
                             "time": None if time in mod_cols else time}
    frame, dropped = prepare_frame(
        data, roles, {"judgment": judgment, "truth": truth, "bias": bias}, group_cols, missing
    )
    check_variance(frame, truth, "truth")
    if bias is not None:
        check_variance(frame, bias, "bias")
    for col in mod_cols:
        check_variance(frame, col, "moderators")
    if time is not None:
        check_unique_rows(frame, [*group_cols, time], "time")

    centred, centering = _center(frame, judgment, truth, bias, group_cols, center,
                                 bias_commensurate)
    mods = [Moderator.from_data(frame, c) for c in mod_cols]
    mod_columns = pd.concat([m.columns(frame) for m in mods], axis=1) if mods else \
        pd.DataFrame(index=frame.index)
    bases: dict[str | None, pd.Series | None] = {None: None, str(truth): centred["truth"]}
    effect_bases: dict[str, str | None] = {"directional_bias": None,
                                           "truth_force": str(truth)}
    if bias is not None:
        bases[str(bias)] = centred["bias"]
        effect_bases["bias_force"] = str(bias)
    exog, structure = crossed_design(bases, mod_columns, mods, frame.index)
    if "between" in centred:
        exog[f"{truth}_between"] = centred["between"].to_numpy(dtype=float)
    check_rank(exog)

    spec, independent = random_spec(group_cols, str(truth), random)
    fit = fit_mixed(
        centred["judgment"], exog, frame[group_cols], spec, reml=reml, engine=engine,
        independent=independent, residual=residual,
        time=None if residual == "iid" else frame[time].to_numpy(dtype=float),
    )
    rhs = " + ".join([str(truth), *([str(bias)] if bias is not None else [])])
    rhs = f"({rhs})" if bias is not None and mods else rhs
    rhs = " * ".join([rhs, *(str(m.column) for m in mods)])
    if "between" in centred:
        rhs += f" + {truth}_between"
    formula = f"{judgment} ~ {rhs} + {random_formula(group_cols, str(truth), random)}"
    return TruthBiasResults(
        FitRecord.from_mixed(fit, ddf=ddf),
        moderators=mods,
        structure=structure,
        effect_bases=effect_bases,
        moderator_values={m.column: list(m.levels) if m.categorical
                          else sorted(frame[m.column].dropna().unique().tolist())
                          for m in mods},
        formula=formula,
        roles={"judgment": judgment, "truth": truth, "bias": bias, "groups": group_cols,
               "moderators": mod_cols, "time": time},
        centering=centering,
        dropped_rows=dropped,
        notes=[_centring_note(centering, judgment, truth, bias),
               *residual_note(residual, group_cols, time)],
    )


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
                f"{truth}_between); {judgment} centred on the truth mean {m:.4f}.")
    if bias is not None:
        text += f" {bias} centred on {info['bias_center']:.4f}."
    return text
