r"""Data-generating process of a practice-research-network (PRN) alliance trial.

The design follows the randomised PRN trial of Tasca et al. (2023): therapists are
randomised to alliance training (``condition = 1``) or not (``condition = 0``), patients
are nested in therapists, and at each of the first sessions both the therapist and the
patient rate the working alliance (a 1–7 item-mean scale) and the patient reports
well-being (a 0–40 scale such as the Outcome Rating Scale). Every parameter of the model
is a field of :class:`PRNParams`; :func:`simulate_prn` draws one data set.

Model (therapist :math:`k`, patient :math:`j`, session :math:`t = 1, \dots, T`,
:math:`s = t - 1`, condition :math:`c_k \in \{0, 1\}`):

.. math::

    Y_{tjk} &= \mu_P + (g_P + r_k) s + v_k + u_{jk} + r_{jk} s + e_{tjk}
        \quad\text{(patient-rated alliance, the "truth")}\\
    X_{tjk} - \mu_P &= \beta_0(c_k, s) + \{\beta_T(c_k, s) + f_k + f_{jk}\}(Y_{tjk} - \mu_P)
        + w_k + z_{jk} + \epsilon_{tjk}
        \quad\text{(therapist-rated, the "judgment")}\\
    \beta_0(c, s) &= \gamma_{00} + \gamma_{01} c + \gamma_{02} s + \gamma_{03} c s,
    \qquad
    \beta_T(c, s) = \gamma_{10} + \gamma_{11} c + \gamma_{12} s + \gamma_{13} c s\\
    W_{1jk} &= \mu_W + v^{(1)}_k + u^{(1)}_{jk} + e^{(1)}_{1jk}\\
    W_{tjk} &= \omega_0 + \phi W_{t-1,jk} + \tau (t - 1)
        + f_{c_k}(X_{t-1,jk} - m,\; Y_{t-1,jk} - m)
        + v^{(W)}_k + u^{(W)}_{jk} + e^{(W)}_{tjk}, \quad t \ge 2\\
    f_c(x, y) &= b_{1c} x + b_{2c} y + b_{3c} x^2 + b_{4c} x y + b_{5c} y^2

All random effects and residuals are independent normal variables with mean 0 and the
standard deviations in :class:`PRNParams`; the therapist random slopes :math:`r_k` (of
session) and :math:`f_k` (of truth force) are 0 by default. Optionally the session-level
residuals are AR(1) over sessions within a patient and the two raters' residuals
correlated at a session (the ``residual_*`` fields), and in a partially nested trial
(``nesting="partial"``) the untrained arm's patients have no therapist-level effects
(the same numbers are drawn either way). Sessions are missed at
random (``p_missing``) and, optionally, patients drop out (monotone, a per-session hazard
by arm, MCAR or depending on the previous session's well-being: the ``dropout_*``
fields). The pieces (:func:`allocate`, :func:`simulate_alliance`,
:func:`simulate_wellbeing`, :func:`missing_mask`, :func:`dropout_mask`, :func:`to_frame`)
are pure functions over numpy arrays so that a power analysis can call them directly.
Each piece consumes a fixed number of draws from the generator whatever the parameter
values (a standard deviation of 0 still draws its standard normals), so two parameter
settings run with the same seed share their random numbers. The draws of the
design-realism options (therapist slopes, dropout) come from a child generator
(:func:`design_stream`), so the default design reproduces earlier versions bit for bit.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from ._validation import (
    as_generator,
    check_caseloads,
    check_known_keys,
    check_p_missing,
    check_sizes,
)

__all__ = ["COLUMNS", "PRNParams", "simulate_prn"]

#: Canonical column names of simulated and bundled PRN data, in order.
COLUMNS = (
    "therapist",
    "patient",
    "session",
    "condition",
    "alliance_therapist",
    "alliance_patient",
    "wellbeing",
)

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.int64]]

# Surface coefficient order shared with the RSA module: b1 X, b2 Y, b3 X^2, b4 XY, b5 Y^2.
_B_NAMES = ("b1", "b2", "b3", "b4", "b5")


@dataclass(frozen=True)
class PRNParams:
    r"""Parameters of the PRN data-generating process (see the module docstring).

    Alliance values are in scale points of a 1–7 item-mean scale, well-being in points of
    a 0–40 scale; "per session" means per one-session step of :math:`s = t - 1`. Every
    ``sd_*`` field is a standard deviation (set it to 0 to remove that random effect or
    residual). Values are not clipped to the scale ranges, so the model holds exactly;
    with the defaults about 2 % of patient-rated alliance values lie above 7 and well
    under 1 % of well-being values outside 0–40.

    Parameters
    ----------
    caseload_shape : float
        Shape of the gamma distribution of therapists' caseload weights; patients beyond
        one per therapist are spread multinomially with probabilities proportional to
        these weights (smaller = more uneven caseloads). Must be > 0.
    truth_mean : float
        :math:`\mu_P`, mean patient-rated alliance at session 1 (both arms).
    truth_growth : float
        :math:`g_P`, mean growth of patient-rated alliance per session (both arms).
    sd_truth_therapist, sd_truth_patient : float
        SDs of the therapist (:math:`v_k`) and patient (:math:`u_{jk}`) random intercepts
        of patient-rated alliance.
    sd_truth_growth : float
        SD of the patient random growth slope :math:`r_{jk}` (per session).
    sd_truth_residual : float
        SD of the session-level residual :math:`e_{tjk}` of patient-rated alliance.
    gamma00 : float
        Directional bias at session 1, untrained: therapist-rated minus :math:`\mu_P` when
        patient-rated alliance equals :math:`\mu_P` (negative: therapists rate lower).
    gamma01 : float
        Training effect on the directional bias at session 1.
    gamma02 : float
        Change of the directional bias per session, untrained.
    gamma03 : float
        Extra change of the directional bias per session with training (> 0 makes
        therapist-rated alliance grow faster in the trained arm).
    gamma10 : float
        Truth force at session 1, untrained (slope of therapist- on patient-rated alliance).
    gamma11 : float
        Training effect on the truth force at session 1.
    gamma12 : float
        Change of the truth force per session, untrained.
    gamma13 : float
        Extra change of the truth force per session with training (> 0: temporal
        congruence rises over sessions for trained therapists).
    sd_judgment_therapist, sd_judgment_patient : float
        SDs of the therapist (:math:`w_k`) and patient (:math:`z_{jk}`) random intercepts
        of therapist-rated alliance.
    sd_truth_force : float
        SD of the patient random truth force :math:`f_{jk}`; 0 (the default) gives the
        random-intercept truth-and-bias model exactly.
    sd_truth_force_therapist : float
        SD of the therapist random truth force :math:`g_k` (truth force varying across
        perceivers, West & Kenny 2011); 0 by default. With it, a model without a
        therapist-level random truth slope tests moderators of the truth force
        (``truth:condition``) liberally.
    sd_truth_force_growth_therapist : float
        SD of the therapist random change of the truth force per session :math:`h_k`
        (the force at session s is shifted by :math:`g_k + h_k (s - 1)`); 0 by default.
        It makes tests of ``truth:condition:session`` liberal unless modelled.
    sd_judgment_residual : float
        SD of the session-level residual :math:`\epsilon_{tjk}` of therapist-rated alliance.
    wellbeing_baseline : float
        :math:`\mu_W`, mean well-being at session 1.
    sd_wellbeing_baseline_therapist, sd_wellbeing_baseline_patient : float
        SDs of the therapist and patient random intercepts of session-1 well-being.
    sd_wellbeing_baseline_residual : float
        SD of the residual of session-1 well-being.
    wellbeing_intercept : float
        :math:`\omega_0`, intercept of the well-being equation for sessions 2 and later
        (on the raw, uncentred previous well-being).
    wellbeing_ar : float
        :math:`\phi`, autoregressive effect of the previous session's well-being.
    wellbeing_time : float
        :math:`\tau`, well-being change per session beyond the autoregression.
    sd_wellbeing_therapist, sd_wellbeing_patient : float
        SDs of the therapist and patient random intercepts of well-being from session 2
        on (drawn independently of the session-1 random intercepts).
    sd_wellbeing_residual : float
        SD of the session-level residual of well-being from session 2 on.
    alliance_center : float
        :math:`m`, the fixed centring constant of both lagged alliance ratings in the
        surface :math:`f_c`. It is a parameter, not a sample mean; the default is close
        to the population pooled mean of both ratings under the default parameters
        (5.12 over sessions 1–5, the lagged predictors of a six-session design).
    b1_trained, b2_trained, b3_trained, b4_trained, b5_trained : float
        Lagged response-surface coefficients of the trained arm (b1 X, b2 Y, b3 X², b4 XY,
        b5 Y², X = therapist-rated, Y = patient-rated, both centred at ``alliance_center``).
        The defaults are a congruence surface: a1 = b1 + b2 = 1.5 (agreement on a
        positive alliance helps), a4 = b3 − b4 + b5 = −3 (disagreement hurts),
        a2 = a3 = a5 = 0.
    b1_untrained, b2_untrained, b3_untrained, b4_untrained, b5_untrained : float
        The same for the untrained arm (all 0 by default: no lagged alliance effect).
    sd_truth_growth_therapist : float
        SD of a therapist random slope of session in patient-rated alliance (added to
        :math:`g_P` for all of a therapist's patients; per session). 0 by default.
    dropout_untrained, dropout_trained : float
        Per-session dropout hazard of each arm, in [0, 1): the probability that a patient
        still in treatment leaves before each session from session 2 on. Dropout is
        monotone (once gone, gone; session 1 is always attended) and acts on top of the
        intermittent missed sessions of ``p_missing``. 0 by default (no dropout).
    dropout_wellbeing : float
        MAR dropout: change in the log-odds of the hazard per point of the previous
        session's well-being above ``wellbeing_baseline`` (negative: patients doing worse
        leave sooner). 0 (the default) makes dropout MCAR.
    residual_ar_truth, residual_ar_judgment : float
        AR(1) correlation over sessions of the session-level residuals of patient-rated
        (:math:`e_{tjk}`) and therapist-rated (:math:`\epsilon_{tjk}`) alliance within a
        patient: stationary, so each residual keeps its SD and two sessions ``d`` apart
        correlate :math:`\phi^d` (a missed session is a gap, not a neighbour: the full
        panel is simulated before sessions are deleted). In (−1, 1); 0 by default
        (independent residuals). They make the growth ratings' residuals serially
        correlated too.
    residual_ar_wellbeing : float
        The same for the well-being residual of sessions 2 and later (on top of the
        autoregression ``wellbeing_ar`` on the previous well-being). 0 by default.
    residual_corr_raters : float
        Correlation of the two raters' residual innovations at the same session
        (:math:`\epsilon_{tjk}` with :math:`e_{tjk}`), e.g. a shared session-specific
        mood or method effect, in (−1, 1); 0 by default. With equal AR parameters it is
        the same-session correlation of the residuals themselves. In the rater-stacked
        growth model the raters' residuals are correlated and of different size even
        at 0 (the therapist's rating carries ``truth force x e`` plus its own
        :math:`\epsilon`); this adds to it. In the truth-and-bias model such a
        correlation is a confound of the truth force (it is not identified apart from
        it), so leave it 0 to simulate that model exactly.

    Examples
    --------
    >>> p = PRNParams(gamma13=0.1)
    >>> p.gamma13, p.truth_force(condition=1, session=6)
    (0.1, 0.8)
    >>> p.surface(condition=1)["a4"]
    -3.0
    """

    caseload_shape: float = 2.0
    # Patient-rated alliance (truth).
    truth_mean: float = 5.2
    truth_growth: float = 0.05
    sd_truth_therapist: float = 0.3
    sd_truth_patient: float = 0.6
    sd_truth_growth: float = 0.05
    sd_truth_residual: float = 0.4
    # Therapist-rated alliance (judgment), truth-and-bias model.
    gamma00: float = -0.4
    gamma01: float = 0.0
    gamma02: float = 0.03
    gamma03: float = 0.05
    gamma10: float = 0.3
    gamma11: float = 0.0
    gamma12: float = 0.0
    gamma13: float = 0.06
    sd_judgment_therapist: float = 0.3
    sd_judgment_patient: float = 0.5
    sd_truth_force: float = 0.0
    sd_truth_force_therapist: float = 0.0
    sd_truth_force_growth_therapist: float = 0.0
    sd_judgment_residual: float = 0.4
    # Well-being at session 1.
    wellbeing_baseline: float = 22.0
    sd_wellbeing_baseline_therapist: float = 1.5
    sd_wellbeing_baseline_patient: float = 5.0
    sd_wellbeing_baseline_residual: float = 4.0
    # Well-being from session 2 on.
    wellbeing_intercept: float = 11.0
    wellbeing_ar: float = 0.5
    wellbeing_time: float = 0.3
    sd_wellbeing_therapist: float = 1.0
    sd_wellbeing_patient: float = 2.0
    sd_wellbeing_residual: float = 4.0
    alliance_center: float = 5.1
    b1_trained: float = 0.75
    b2_trained: float = 0.75
    b3_trained: float = -0.75
    b4_trained: float = 1.5
    b5_trained: float = -0.75
    b1_untrained: float = 0.0
    b2_untrained: float = 0.0
    b3_untrained: float = 0.0
    b4_untrained: float = 0.0
    b5_untrained: float = 0.0
    # Design realism (all off by default: the design above exactly).
    sd_truth_growth_therapist: float = 0.0
    dropout_untrained: float = 0.0
    dropout_trained: float = 0.0
    dropout_wellbeing: float = 0.0
    # Residual structures (all off by default: independent residuals).
    residual_ar_truth: float = 0.0
    residual_ar_judgment: float = 0.0
    residual_ar_wellbeing: float = 0.0
    residual_corr_raters: float = 0.0

    def __post_init__(self) -> None:
        for field in dataclasses.fields(self):
            value = getattr(self, field.name)
            if isinstance(value, bool) or not isinstance(value, numbers.Real):
                raise TypeError(
                    f"`params` field {field.name!r} must be a real number; "
                    f"got {type(value).__name__} {value!r}."
                )
            value = float(value)
            if not math.isfinite(value):
                raise ValueError(f"`params` field {field.name!r} must be finite; got {value}.")
            if field.name.startswith("sd_") and value < 0:
                raise ValueError(
                    f"`params` field {field.name!r} is a standard deviation and must be "
                    f">= 0; got {value}."
                )
            # Store plain floats so asdict() is JSON-ready and equality is exact.
            object.__setattr__(self, field.name, value)
        if self.caseload_shape <= 0:
            raise ValueError(
                f"`params` field 'caseload_shape' must be > 0; got {self.caseload_shape}."
            )
        for name in ("residual_ar_truth", "residual_ar_judgment", "residual_ar_wellbeing",
                     "residual_corr_raters"):
            if not -1.0 < getattr(self, name) < 1.0:
                raise ValueError(
                    f"`params` field {name!r} is a correlation and must be in (-1, 1); "
                    f"got {getattr(self, name)}."
                )
        for name in ("dropout_untrained", "dropout_trained"):
            if not 0.0 <= getattr(self, name) < 1.0:
                raise ValueError(
                    f"`params` field {name!r} is a per-session dropout probability and "
                    f"must be in [0, 1); got {getattr(self, name)}."
                )

    @property
    def has_dropout(self) -> bool:
        """True when either arm has a dropout hazard."""
        return self.dropout_untrained > 0 or self.dropout_trained > 0

    def directional_bias(self, condition: int, session: int) -> float:
        """Directional bias β0 of therapist-rated alliance at a session (1-based).

        Examples
        --------
        >>> round(PRNParams().directional_bias(condition=0, session=6), 2)
        -0.25
        """
        c, s = float(condition), float(session - 1)
        return self.gamma00 + self.gamma01 * c + (self.gamma02 + self.gamma03 * c) * s

    def truth_force(self, condition: int, session: int) -> float:
        """Truth force β_T of therapist-rated alliance at a session (1-based).

        Examples
        --------
        >>> round(PRNParams().truth_force(condition=1, session=6), 2)
        0.6
        """
        c, s = float(condition), float(session - 1)
        return self.gamma10 + self.gamma11 * c + (self.gamma12 + self.gamma13 * c) * s

    def rsa_coefficients(self, condition: int) -> dict[str, float]:
        """Lagged surface coefficients b1..b5 of one arm (1 = trained).

        Examples
        --------
        >>> PRNParams().rsa_coefficients(0)["b1"]
        0.0
        """
        arm = "trained" if condition else "untrained"
        return {b: getattr(self, f"{b}_{arm}") for b in _B_NAMES}

    def surface(self, condition: int) -> dict[str, float]:
        """Surface parameters a1..a5 of one arm's lagged well-being surface.

        Uses the RSA definitions a1 = b1 + b2, a2 = b3 + b4 + b5, a3 = b1 − b2,
        a4 = b3 − b4 + b5, a5 = b3 − b5.

        Examples
        --------
        >>> PRNParams().surface(1)
        {'a1': 1.5, 'a2': 0.0, 'a3': 0.0, 'a4': -3.0, 'a5': 0.0}
        """
        b1, b2, b3, b4, b5 = self.rsa_coefficients(condition).values()
        return {
            "a1": b1 + b2,
            "a2": b3 + b4 + b5,
            "a3": b1 - b2,
            "a4": b3 - b4 + b5,
            "a5": b3 - b5,
        }

    def expected_alliance_means(self, n_sessions: int = 6) -> pd.DataFrame:
        """Population mean of both alliance ratings by condition and session.

        E[Y] = μ_P + g_P s and E[X] = μ_P + β0(c, s) + β_T(c, s) g_P s, since every random
        effect has mean 0 and the random truth force is independent of Y.

        Examples
        --------
        >>> PRNParams().expected_alliance_means(2).round(3)
           condition  session  alliance_therapist  alliance_patient
        0          0        1               4.800              5.20
        1          0        2               4.845              5.25
        2          1        1               4.800              5.20
        3          1        2               4.898              5.25
        """
        rows = []
        for c in (0, 1):
            for t in range(1, n_sessions + 1):
                truth_dev = self.truth_growth * (t - 1)
                judgment_dev = self.directional_bias(c, t) + self.truth_force(c, t) * truth_dev
                rows.append((c, t, self.truth_mean + judgment_dev, self.truth_mean + truth_dev))
        return pd.DataFrame(
            rows, columns=["condition", "session", "alliance_therapist", "alliance_patient"]
        )


def resolve_params(params: Any, name: str = "params", options: str = "") -> PRNParams:
    """Turn ``params`` (None, PRNParams or a dict of overrides) into PRNParams.

    ``name`` is the argument's name in messages; ``options`` lists further accepted
    values of the caller (e.g. "'null', ").
    """
    if params is None:
        return PRNParams()
    if isinstance(params, PRNParams):
        return params
    if not isinstance(params, Mapping):
        raise TypeError(
            f"`{name}` must be None, {options}a PRNParams or a dict of overrides; "
            f"got {type(params).__name__}."
        )
    names = [f.name for f in dataclasses.fields(PRNParams)]
    check_known_keys(params, names, name, "the fields of PRNParams")
    try:
        return dataclasses.replace(PRNParams(), **params)
    except (TypeError, ValueError) as exc:
        raise type(exc)(f"`{name}`: {exc}") from exc


def allocate(
    rng: np.random.Generator,
    n_therapists: int,
    n_patients: int,
    caseload_shape: float,
    caseloads: tuple[int, ...] | None = None,
) -> tuple[IntArray, IntArray]:
    """Randomise therapists to arms and spread patients over therapists.

    Returns ``condition`` (one 0/1 per therapist; exactly ⌊n/2⌋ trained, in random order)
    and ``therapist`` (the 0-based therapist index of each patient, sorted ascending).
    Every therapist gets one patient; the rest are multinomial with probabilities
    proportional to gamma(``caseload_shape``) weights. Given ``caseloads`` (one count per
    therapist, summing to ``n_patients``), therapist k treats ``caseloads[k]`` patients
    instead; the same numbers are drawn either way, so the rest of the trial uses the
    same random numbers.
    """
    n_trained = n_therapists // 2
    arms = np.repeat(np.array([0, 1], dtype=np.int64), [n_therapists - n_trained, n_trained])
    condition = rng.permutation(arms)
    weights = rng.gamma(caseload_shape, size=n_therapists)
    total = weights.sum()
    # A very small shape can underflow every weight to 0; fall back to equal caseloads.
    probs = weights / total if total > 0 else np.full(n_therapists, 1.0 / n_therapists)
    counts = 1 + rng.multinomial(n_patients - n_therapists, probs)
    if caseloads is not None:
        counts = np.asarray(caseloads, dtype=np.int64)
    therapist = np.repeat(np.arange(n_therapists, dtype=np.int64), counts)
    return condition, therapist


def simulate_alliance(
    rng: np.random.Generator,
    therapist: IntArray,
    condition: IntArray,
    n_sessions: int,
    params: PRNParams,
    extra: np.random.Generator,
    clustered: FloatArray | None = None,
) -> tuple[FloatArray, FloatArray]:
    """Therapist-rated (X) and patient-rated (Y) alliance, each (n_patients, n_sessions).

    ``therapist`` is each patient's therapist index, ``condition`` each therapist's arm.
    The therapist random slopes (session in the truth, truth force) are drawn from
    ``extra`` (see :func:`design_stream`), so ``rng`` gives the same numbers as before
    they existed, and with their SDs at 0 the result is exactly that of the design
    without them. ``clustered`` (one 0/1 per patient, partially nested designs) removes
    every therapist-level effect of the patients with 0; the same numbers are drawn.
    The residuals get their AR(1) and cross-rater correlation from the same standard
    normals (:func:`rater_residuals`).
    """
    p = params
    n_ther, n_pat = condition.shape[0], therapist.shape[0]
    s = np.arange(n_sessions, dtype=float)[None, :]
    c = condition[therapist].astype(float)[:, None]

    # Truth: patient-rated alliance growth model.
    v = p.sd_truth_therapist * rng.standard_normal(n_ther)
    u = p.sd_truth_patient * rng.standard_normal(n_pat)
    r = p.sd_truth_growth * rng.standard_normal(n_pat)
    z_e = rng.standard_normal((n_pat, n_sessions))
    # Judgment: truth-and-bias model, centred on the population truth mean.
    w = p.sd_judgment_therapist * rng.standard_normal(n_ther)
    z = p.sd_judgment_patient * rng.standard_normal(n_pat)
    f = p.sd_truth_force * rng.standard_normal(n_pat)
    z_eps = rng.standard_normal((n_pat, n_sessions))
    z_e, z_eps = rater_residuals(z_e, z_eps, p)
    e = p.sd_truth_residual * z_e
    eps = p.sd_judgment_residual * z_eps
    if clustered is not None:  # partially nested: no therapist effects where unclustered
        v, w = v[therapist] * clustered, w[therapist] * clustered
    else:
        v, w = v[therapist], w[therapist]
    y_dev = p.truth_growth * s + (v + u)[:, None] + r[:, None] * s + e

    bias = p.gamma00 + p.gamma01 * c + (p.gamma02 + p.gamma03 * c) * s
    force = p.gamma10 + p.gamma11 * c + (p.gamma12 + p.gamma13 * c) * s + f[:, None]
    # Therapist random slopes (design realism), from the separate ``extra`` stream so
    # that ``rng`` draws exactly what it drew before they existed; 0 under the defaults.
    weight = np.ones(n_pat) if clustered is None else clustered
    growth_k = p.sd_truth_growth_therapist * extra.standard_normal(n_ther)
    force_k = p.sd_truth_force_therapist * extra.standard_normal(n_ther)
    y_dev = y_dev + (growth_k[therapist] * weight)[:, None] * s
    force = force + (force_k[therapist] * weight)[:, None]
    if p.sd_truth_force_growth_therapist > 0:  # drawn only when used (earlier streams kept)
        force_growth_k = p.sd_truth_force_growth_therapist * extra.standard_normal(n_ther)
        force = force + (force_growth_k[therapist] * weight)[:, None] * s
    x_dev = bias + force * y_dev + (w + z)[:, None] + eps
    return p.truth_mean + x_dev, p.truth_mean + y_dev


def ar1_series(z: FloatArray, phi: float) -> FloatArray:
    """Stationary AR(1) over the columns (sessions) of independent standard normals.

    Row by row, ``out[:, 0] = z[:, 0]`` and ``out[:, t] = phi * out[:, t-1] +
    sqrt(1 - phi**2) * z[:, t]``: unit variance and correlation ``phi**d`` at lag ``d``.
    ``phi = 0`` returns ``z`` itself (no arithmetic: the default reproduces earlier
    versions bit for bit).

    Examples
    --------
    >>> z = np.random.default_rng(0).standard_normal((20000, 3))
    >>> x = ar1_series(z, 0.5)
    >>> float(np.corrcoef(x[:, 0], x[:, 2])[0, 1].round(2)), x.std(axis=0).round(1).tolist()
    (0.25, [1.0, 1.0, 1.0])
    """
    if phi == 0.0:
        return z
    out = np.empty_like(z)
    out[:, 0] = z[:, 0]
    scale = math.sqrt(1.0 - phi * phi)
    for t in range(1, z.shape[1]):
        out[:, t] = phi * out[:, t - 1] + scale * z[:, t]
    return out


def rater_residuals(z_truth: FloatArray, z_judgment: FloatArray, params: PRNParams
                    ) -> tuple[FloatArray, FloatArray]:
    """Standardised residuals of both ratings with their cross-rater and serial correlation.

    The judgment's innovations are ``rho * z_truth + sqrt(1 - rho**2) * z_judgment``
    (``rho = residual_corr_raters``), then each series is made AR(1) over sessions
    (:func:`ar1_series`). The inputs are returned unchanged under the defaults.
    """
    p = params
    rho = p.residual_corr_raters
    if rho != 0.0:
        z_judgment = rho * z_truth + math.sqrt(1.0 - rho * rho) * z_judgment
    return ar1_series(z_truth, p.residual_ar_truth), ar1_series(z_judgment,
                                                                p.residual_ar_judgment)


def ungroup(condition: IntArray, therapist: IntArray, clustered: np.ndarray[Any, Any]
            ) -> tuple[IntArray, IntArray]:
    """Units of a partially nested trial: every unclustered patient its own unit.

    Returns the new (condition per unit, unit per patient), units numbered in patient
    order (so the unit of each patient stays sorted ascending): a clustered patient's
    unit is its therapist's, an unclustered patient's a unit of its own, with the arm
    of the therapist slot it was allocated to.
    """
    keep = np.asarray(clustered, dtype=bool)
    new_unit = np.ones(therapist.shape[0], dtype=bool)
    new_unit[1:] = (therapist[1:] != therapist[:-1]) | ~keep[1:] | ~keep[:-1]
    unit = np.cumsum(new_unit).astype(np.int64) - 1
    return condition[therapist[new_unit]].astype(np.int64), unit


def design_stream(rng: np.random.Generator) -> np.random.Generator:
    """The generator of the design-realism draws (therapist slopes, dropout).

    A child of ``rng`` (``Generator.spawn``): spawning does not advance ``rng``, so every
    draw of the original design comes from ``rng`` exactly as before these options
    existed, and the default design reproduces earlier results bit for bit.
    """
    try:
        return rng.spawn(1)[0]
    except (TypeError, ValueError):  # a bit generator without a SeedSequence
        jumped = getattr(rng.bit_generator, "jumped", None)
        if jumped is None:
            raise TypeError(
                "`rng` is a Generator whose bit generator can neither spawn nor jump; "
                "give an int seed, a SeedSequence or numpy.random.default_rng(seed)."
            ) from None
        return np.random.Generator(jumped())


def dropout_mask(
    extra: np.random.Generator,
    observed: np.ndarray[Any, np.dtype[np.bool_]],
    arm: IntArray,
    wellbeing: FloatArray,
    params: PRNParams,
) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """``observed`` with monotone dropout applied (a new array; the input is unchanged).

    Before each session t >= 2 a patient still in treatment leaves with probability
    ``expit(logit(h_arm) + dropout_wellbeing * (W[t-1] - wellbeing_baseline))``, where
    ``arm`` is each patient's condition and W the (latent, full-panel) well-being. Once
    gone, every later session is missing. A patient left with no observed session keeps
    session 1 (attended by everyone). Always draws (n_patients, n_sessions - 1)
    uniforms from ``extra``.
    """
    p = params
    n_pat, n_sessions = observed.shape
    draws = extra.random((n_pat, n_sessions - 1))
    out = observed.copy()
    if not p.has_dropout:
        return out
    base = np.where(arm == 1, p.dropout_trained, p.dropout_untrained)[:, None]
    with np.errstate(divide="ignore"):
        logit = np.log(base) - np.log1p(-base)
    shift = p.dropout_wellbeing * (wellbeing[:, :-1] - p.wellbeing_baseline)
    hazard = np.where(base > 0, 1.0 / (1.0 + np.exp(-(logit + shift))), 0.0)
    leaves = draws < hazard  # leaves[j, i]: gone before session i + 2
    gone = np.zeros((n_pat, n_sessions), dtype=bool)
    gone[:, 1:] = np.logical_or.accumulate(leaves, axis=1)
    out &= ~gone
    none = ~out.any(axis=1)
    out[none, 0] = True
    return out


def _surface_terms(x: FloatArray, y: FloatArray, center: float) -> FloatArray:
    """Polynomial terms (x, y, x², xy, y²) after centring, stacked on a new last axis."""
    xc, yc = x - center, y - center
    return np.stack([xc, yc, xc * xc, xc * yc, yc * yc], axis=-1)


def simulate_wellbeing(
    rng: np.random.Generator,
    therapist: IntArray,
    condition: IntArray,
    alliance_therapist: FloatArray,
    alliance_patient: FloatArray,
    params: PRNParams,
    clustered: FloatArray | None = None,
) -> FloatArray:
    """Well-being, (n_patients, n_sessions), driven by the previous session's alliance.

    The alliance arrays are the full latent panel, so a session's well-being depends on
    the previous session's ratings even when that session is later deleted as missed.
    ``clustered`` as in :func:`simulate_alliance`; the residuals of sessions 2+ are
    AR(1) with ``residual_ar_wellbeing``.
    """
    p = params
    n_ther = condition.shape[0]
    n_pat, n_sessions = alliance_patient.shape
    trained = condition[therapist].astype(bool)

    v1 = p.sd_wellbeing_baseline_therapist * rng.standard_normal(n_ther)
    u1 = p.sd_wellbeing_baseline_patient * rng.standard_normal(n_pat)
    e1 = p.sd_wellbeing_baseline_residual * rng.standard_normal(n_pat)
    v = p.sd_wellbeing_therapist * rng.standard_normal(n_ther)
    u = p.sd_wellbeing_patient * rng.standard_normal(n_pat)
    e = p.sd_wellbeing_residual * ar1_series(rng.standard_normal((n_pat, n_sessions - 1)),
                                             p.residual_ar_wellbeing)
    v1, v = v1[therapist], v[therapist]
    if clustered is not None:
        v1, v = v1 * clustered, v * clustered

    b = np.where(
        trained[:, None],
        np.array(list(p.rsa_coefficients(1).values())),
        np.array(list(p.rsa_coefficients(0).values())),
    )
    terms = _surface_terms(alliance_therapist[:, :-1], alliance_patient[:, :-1], p.alliance_center)
    # surface[j, i]: effect of the alliance at session i+1 on well-being at session i+2.
    surface = np.einsum("jk,jik->ji", b, terms)
    level = v + u

    wellbeing = np.empty((n_pat, n_sessions))
    wellbeing[:, 0] = p.wellbeing_baseline + v1 + u1 + e1
    for i in range(1, n_sessions):  # recursion over sessions only; patients vectorised
        wellbeing[:, i] = (
            p.wellbeing_intercept
            + p.wellbeing_ar * wellbeing[:, i - 1]
            + p.wellbeing_time * i
            + surface[:, i - 1]
            + level
            + e[:, i - 1]
        )
    return wellbeing


def missing_mask(
    rng: np.random.Generator, n_patients: int, n_sessions: int, p_missing: float
) -> np.ndarray[Any, np.dtype[np.bool_]]:
    """Observed-session mask (True = attended), MCAR with probability ``p_missing``.

    A patient whose every session was drawn as missed keeps one session chosen at
    random, so every patient appears in the data; the realised missing share is
    therefore slightly below ``p_missing`` when ``p_missing ** n_sessions`` is not small.
    """
    observed = rng.random((n_patients, n_sessions)) >= p_missing
    rescue = rng.integers(n_sessions, size=n_patients)
    none = ~observed.any(axis=1)
    observed[none, rescue[none]] = True
    return observed


def _labels(prefix: str, n: int, min_width: int) -> np.ndarray[Any, np.dtype[np.str_]]:
    width = max(min_width, len(str(n)))
    return np.array([f"{prefix}{i:0{width}d}" for i in range(1, n + 1)])


def to_frame(
    therapist: IntArray,
    condition: IntArray,
    alliance_therapist: FloatArray,
    alliance_patient: FloatArray,
    wellbeing: FloatArray,
    observed: np.ndarray[Any, np.dtype[np.bool_]],
    clustered: np.ndarray[Any, Any] | None = None,
) -> pd.DataFrame:
    """Long frame of the observed patient-sessions, sorted by therapist, patient, session.

    With ``clustered`` (partially nested designs) an unclustered patient's ``therapist``
    is a unit of its own, labelled ``"U"`` and the patient's number (``"U007"``).
    """
    n_pat = alliance_patient.shape[0]
    ther_labels = _labels("T", condition.shape[0], 2)
    pat_labels = _labels("P", n_pat, 3)
    # Patients are numbered within ascending therapist index, so row-major order of the
    # (patient, session) grid is already sorted by therapist, patient and session.
    pat_idx, ses_idx = np.nonzero(observed)
    units = ther_labels[therapist]
    if clustered is not None:
        alone = ~np.asarray(clustered, dtype=bool)
        units = np.where(alone, np.char.add("U", np.char.lstrip(pat_labels, "P")), units)
    return pd.DataFrame(
        {
            "therapist": units[pat_idx],
            "patient": pat_labels[pat_idx],
            "session": (ses_idx + 1).astype(np.int64),
            "condition": condition[therapist[pat_idx]].astype(np.int64),
            "alliance_therapist": alliance_therapist[observed],
            "alliance_patient": alliance_patient[observed],
            "wellbeing": wellbeing[observed],
        }
    )


def simulate_prn(
    n_therapists: int | None = None,
    n_patients: int | None = None,
    n_sessions: int = 6,
    *,
    params: PRNParams | Mapping[str, float] | None = None,
    p_missing: float = 0.0,
    rng: Any = None,
    caseloads: Sequence[int] | None = None,
    nesting: str = "full",
) -> pd.DataFrame:
    r"""Simulate one PRN trial data set with known parameters.

    Therapists are randomised to alliance training (``condition`` 1) or not (0), exactly
    ⌊n/2⌋ trained; patients are spread unevenly over therapists (each has at least one);
    every patient is followed for ``n_sessions`` sessions, at each of which the therapist
    and the patient rate the alliance and the patient reports well-being. The generating
    model is given in :mod:`alliancestats.simulate` and :class:`PRNParams`.

    Parameters
    ----------
    n_therapists : int, optional
        Number of therapists (>= 1); default 40, or ``len(caseloads)``.
    n_patients : int, optional
        Number of patients in all (>= ``n_therapists``); default 117, or
        ``sum(caseloads)``.
    n_sessions : int
        Sessions per patient (>= 2).
    params : PRNParams or dict, optional
        Generating parameters; a dict overrides the named :class:`PRNParams` defaults.
    p_missing : float
        Probability that a patient misses a session, independently per patient-session
        (MCAR), in [0, 1). A missed session is an absent row. No patient misses every
        session (one session is kept at random).
    rng : None, int, SeedSequence or numpy Generator
        Source of randomness (SPEC 7); the same seed gives an identical frame.
    caseloads : sequence of int, optional
        Patients of each therapist (each >= 1), e.g. ``[2, 2, 3, 8]``, instead of the
        random caseloads of ``params.caseload_shape`` (powerlmm's ``unequal_clusters``).
        Arms are still randomised over therapists.
    nesting : {"full", "partial"}
        ``"full"`` (default): patients nested in therapists in both arms.
        ``"partial"``: a partially nested trial (Bauer, Sterba & Hallfors 2008; powerlmm's
        ``partially_nested``): only the trained arm's patients share therapists; the
        untrained arm's patients are not clustered (treatment as usual by unrelated
        providers, or a wait-list arm), so they carry no therapist-level effect and each
        is a unit of its own in the ``therapist`` column (``"U007"``). The allocation is
        unchanged: the untrained therapists' caseload slots only decide how many
        patients the control arm has, so ``n_therapists`` counts the ⌊n/2⌋ trained
        therapists plus those slots. The same random numbers are drawn as with
        ``"full"``.

    Returns
    -------
    DataFrame
        Columns ``therapist`` ("T01", ...), ``patient`` ("P001", ..., unique across
        therapists), ``session`` (int, 1-based), ``condition`` (int 0/1),
        ``alliance_therapist``, ``alliance_patient``, ``wellbeing`` (float); rows sorted
        by therapist, patient and session. ``attrs["params"]`` holds the parameters
        (``dataclasses.asdict``) plus ``n_therapists``, ``n_patients``, ``n_sessions``
        and ``p_missing``.

    Raises
    ------
    TypeError
        If a size is not an integer, ``p_missing`` not a number or ``params`` of the
        wrong type.
    ValueError
        If a size is out of range, ``p_missing`` is outside [0, 1) or ``params`` names
        an unknown or invalid parameter.

    Notes
    -----
    *Missed sessions.* The full panel is simulated first and missed sessions deleted
    afterwards, so well-being after a missed session still depends on the (unobserved)
    alliance ratings and well-being of the missed session.

    *Centring.* Therapist-rated alliance is generated centred on the population truth
    mean ``truth_mean`` (:math:`\mu_P`). A truth-and-bias fit centred on a different
    constant :math:`M` (e.g. the sample mean of patient-rated alliance), with
    :math:`\delta = M - \mu_P`, estimates :math:`\beta_0 + (\beta_T - 1)\delta` as the
    directional bias, i.e. :math:`\gamma_{00} + (\gamma_{10} - 1)\delta`,
    :math:`\gamma_{01} + \gamma_{11}\delta`, :math:`\gamma_{02} + \gamma_{12}\delta`,
    :math:`\gamma_{03} + \gamma_{13}\delta`; the truth-force coefficients are unchanged.
    Likewise the lagged surface is centred on ``alliance_center``; centring on another
    constant changes b1 and b2 (not b3..b5).

    *Lagged well-being and random intercepts.* Well-being from session 2 on depends on
    the previous well-being and on patient random intercepts, so a random-intercept
    model of the lagged equation has a lagged outcome correlated with the random
    intercept (the dynamic-panel initial-conditions problem). To check recovery of
    :math:`\phi` and b1..b5 exactly, set the well-being ``sd_*`` of sessions 2+ to 0.

    Examples
    --------
    >>> from alliancestats import simulate_prn
    >>> df = simulate_prn(rng=1)
    >>> df.shape
    (702, 7)
    >>> df.groupby("therapist")["condition"].first().value_counts().sort_index().tolist()
    [20, 20]
    >>> small = simulate_prn(4, 8, 3, params={"gamma13": 0.0}, p_missing=0.1, rng=2)
    >>> small.attrs["params"]["gamma13"], small["patient"].nunique()
    (0.0, 8)
    """
    loads = None if caseloads is None else check_caseloads(caseloads)
    n_t, n_p, n_s = check_sizes(*_sizes_from(n_therapists, n_patients, loads), n_sessions)
    p_miss = check_p_missing(p_missing)
    prm = resolve_params(params)
    nest = check_nesting(nesting)
    gen = as_generator(rng)

    extra = design_stream(gen)
    condition, therapist = allocate(gen, n_t, n_p, prm.caseload_shape, loads)
    clustered = clustering(condition, therapist, nest)
    x, y = simulate_alliance(gen, therapist, condition, n_s, prm, extra, clustered)
    w = simulate_wellbeing(gen, therapist, condition, x, y, prm, clustered)
    observed = missing_mask(gen, n_p, n_s, p_miss)
    observed = dropout_mask(extra, observed, condition[therapist], w, prm)
    frame = to_frame(therapist, condition, x, y, w, observed, clustered)
    frame.attrs["params"] = {
        **dataclasses.asdict(prm),
        "n_therapists": n_t,
        "n_patients": n_p,
        "n_sessions": n_s,
        "p_missing": p_miss,
        **({} if loads is None else {"caseloads": list(loads)}),
        **({} if nest == "full" else {"nesting": nest}),
    }
    return frame


NESTINGS = ("full", "partial")


def check_nesting(nesting: Any) -> str:
    """The validated ``nesting`` argument."""
    if not isinstance(nesting, str) or nesting not in NESTINGS:
        raise ValueError(f"`nesting` must be one of {NESTINGS} ('partial': therapists in "
                         f"the trained arm only); got {nesting!r}.")
    return nesting


def clustering(condition: IntArray, therapist: IntArray, nesting: str
               ) -> FloatArray | None:
    """Per patient 1.0 if clustered in a therapist, else 0.0 (None: all clustered)."""
    if nesting == "full":
        return None
    return condition[therapist].astype(float)


def _sizes_from(
    n_therapists: Any, n_patients: Any, caseloads: tuple[int, ...] | None
) -> tuple[Any, Any]:
    """(n_therapists, n_patients): given, from the caseloads, or the defaults 40, 117."""
    if caseloads is None:
        return (40 if n_therapists is None else n_therapists,
                117 if n_patients is None else n_patients)
    for name, given, implied in (("n_therapists", n_therapists, len(caseloads)),
                                 ("n_patients", n_patients, sum(caseloads))):
        if given is not None and given != implied:
            raise ValueError(
                f"`{name}` ({given}) does not match `caseloads` ({implied}); leave "
                f"`{name}` out when giving caseloads."
            )
    return len(caseloads), sum(caseloads)
