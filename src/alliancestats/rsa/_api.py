r"""Polynomial response surface analysis (RSA): single-level, multilevel, lagged, by group.

The model (Edwards & Parry 1993; R package RSA, ``nicebread/RSA:R/RSA.R``) is

.. math::

    Z = b_0 + b_1 X + b_2 Y + b_3 X^2 + b_4 XY + b_5 Y^2 \;(+\, c' \text{controls}) + e,

with X and Y centred on one common constant (their pooled grand mean by default), so that
X = Y keeps meaning numerical agreement. Without ``groups`` it is fitted by OLS
(statsmodels); with ``groups`` as a nested linear mixed model with random intercepts
(:func:`alliancestats._mixed.fit_mixed`). The surface parameters of R's RSA package,

    a1 = b1 + b2, a2 = b3 + b4 + b5, a3 = b1 - b2, a4 = b3 - b4 + b5, a5 = b3 - b5,

are exact linear contrasts of the coefficients. The stationary point, the principal axes
and the lateral shifts are nonlinear; their SEs come from the delta method (or
:meth:`RSAResults.bootstrap`).

Which reference this reproduces: the OLS fit equals R's ``lm`` on the polynomial
(unbiased residual variance, t tests with n - p df). R's ``RSA()`` with its defaults uses
lavaan's MLR estimator (robust SEs, z tests) and removes outliers; with
``estimator="ML", se="standard", out.rm=FALSE`` it gives the same estimates as ``lm`` and
SEs smaller by exactly sqrt((n - p)/n). ``cov_type="HC0"`` is the closest analogue of MLR.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Hashable, Sequence
from typing import Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import stats

from .._mixed import ENGINES
from .._validation import (
    as_column_list,
    as_generator,
    check_choice,
    require_columns,
    require_frame,
)
from ..data import add_lags
from ..exceptions import AllianceStatsWarning
from ..results import EFFECT_COLUMNS, ModelResults, linear_combination
from ._bootstrap import (
    CongruenceTest,
    RSABootstrap,
    boot_labels,
    chunked,
    collect,
    replicate_chunk,
    surface_quantities,
    warn_failures,
)
from ._family import (
    MODELS,
    SURFACE_WEIGHTS,
    axes_and_point,
    family_model,
    lateral_shifts,
    model_parameters,
)
from ._fit import COV_TYPES, Design, Estimate, Spec, estimate, prepare

__all__ = ["MODELS", "CongruenceTest", "RSABootstrap", "RSAResults", "compare_rsa",
           "fit_lagged_rsa", "fit_rsa"]

_A_NAMES = ["a1", "a2", "a3", "a4", "a5"]
_B_NAMES = ["b0", "b1", "b2", "b3", "b4", "b5"]
_INTERVAL_COLUMNS = ["estimate", "std_error", "conf_low", "conf_high"]


class RSAResults(ModelResults):
    """Results of :func:`fit_rsa` / :func:`fit_lagged_rsa` (immutable).

    Besides the :class:`~alliancestats.results.ModelResults` interface (``params`` are the
    estimated free parameters of the chosen model), it offers the surface: ``coefs``
    (b0..b5), ``surface`` (a1..a5), ``stationary_point``, ``principal_axes``,
    ``lateral_shift``, ``predict``, ``discrepancy_table``, ``congruence_test``,
    ``surface_differences`` (with ``by``) and ``bootstrap``.
    """

    def __init__(self, *, est: Estimate, design: Design, spec: Spec, formula: str,
                 lag_info: dict[str, Any] | None = None, extra_notes: Sequence[str] = ()
                 ) -> None:
        self._est = est
        self._design = design
        self._spec = spec
        self._lag_info = dict(lag_info or {})
        self._model_name = f"Response surface analysis (model '{spec.family.name}')"
        labels = [_B_NAMES[j] if lev is None else f"{lev}:{_B_NAMES[j]}"
                  for lev in design.levels for j in range(6)]
        self._b_labels = labels
        bjac = est.bjac
        full_cov = est.cov.to_numpy()
        self._b_cov = pd.DataFrame(bjac @ full_cov @ bjac.T, index=labels, columns=labels)
        names = design.names
        roles = {"outcome": names["outcome"], "x": names["x"], "y": names["y"],
                 "groups": names["groups"], "controls": names["controls"], "by": names["by"]}
        super().__init__(
            est.record, formula=formula, roles=roles, centering=design.centering,
            dropped_rows=design.dropped, notes=[*est.notes, *extra_notes],
        )

    # -- coefficients and surface parameters -------------------------------------------
    @property
    def model(self) -> str:
        """Name of the fitted member of the model family."""
        return self._spec.family.name

    @property
    def levels(self) -> list[Any]:
        """Levels of ``by`` (``[None]`` without ``by``)."""
        return list(self._design.levels)

    @property
    def ols(self) -> Any:
        """The statsmodels OLS results (single-level fits), or None."""
        return self._est.ols

    @property
    def rsquared(self) -> float:
        """R² of the OLS fit (NaN for mixed models)."""
        return self._est.r_squared

    @property
    def lag_info(self) -> dict[str, Any]:
        """Lag structure and row counts of :func:`fit_lagged_rsa` (empty otherwise)."""
        return dict(self._lag_info)

    @property
    def angle(self) -> float | None:
        """Profiled angle phi of the rank-one models SRRR/SRSQD (None otherwise)."""
        return self._est.phi

    def _b_series(self) -> pd.Series:
        return pd.Series(self._est.B.ravel(), index=self._b_labels)

    @property
    def coefs(self) -> pd.Series:
        """b0..b5 implied by the fit (indexed (level, b) with ``by``)."""
        values = self._est.B.ravel()
        if self._design.levels == (None,):
            return pd.Series(values, index=_B_NAMES, name="estimate")
        index = pd.MultiIndex.from_product([self.levels, _B_NAMES], names=["level", "term"])
        return pd.Series(values, index=index, name="estimate")

    def cov_coefs(self) -> pd.DataFrame:
        """Covariance of b0..b5 (all levels): J V J' with J = db/dparams."""
        return self._b_cov.copy()

    def _level_weights(self, rows: np.ndarray, names: list[str]) -> pd.DataFrame:
        frames = []
        for lev in self._design.levels:
            cols = [_B_NAMES[j] if lev is None else f"{lev}:{_B_NAMES[j]}" for j in range(6)]
            idx = names if lev is None else pd.MultiIndex.from_product(
                [[lev], names], names=["level", "term"])
            frames.append(pd.DataFrame(rows, index=idx, columns=cols))
        return pd.concat(frames).fillna(0.0)

    def _surface_table(self, alpha: float) -> pd.DataFrame:
        weights = self._level_weights(SURFACE_WEIGHTS, _A_NAMES)
        return linear_combination(self._b_series(), self._b_cov, weights, alpha=alpha,
                                  df=self.df_resid)

    @property
    def surface(self) -> pd.DataFrame:
        """a1..a5 with SE, test and CI (exact linear contrasts of b; by level with ``by``)."""
        return self._surface_table(0.05)

    def surface_at(self, alpha: float = 0.05) -> pd.DataFrame:
        """:attr:`surface` with (1 - alpha) confidence intervals."""
        return self._surface_table(alpha)

    # -- nonlinear quantities (delta method) -------------------------------------------
    def _crit(self, alpha: float) -> float:
        dist = stats.norm if self.df_resid is None else stats.t(self.df_resid)
        return float(dist.ppf(1 - alpha / 2))

    def _delta_table(
        self, fun: Callable[[np.ndarray], dict[str, float]], alpha: float = 0.05
    ) -> pd.DataFrame:
        """Values of ``fun(b)`` per level with delta-method SEs.

        Differentiates through the model's parameterisation (params -> b), so that a
        constrained model is perturbed only along its constraint (METHODS §2.3).
        """
        est = self._est
        theta = est.params.to_numpy()[est.bidx]
        V = est.cov.to_numpy()[np.ix_(est.bidx, est.bidx)]
        sd = np.sqrt(np.clip(np.diag(V), 0, None))
        steps = np.where(sd > 0, 1e-4 * sd, 1e-7 * np.maximum(np.abs(theta), 1.0))
        frames = []
        crit = self._crit(alpha)
        for lev_i, lev in enumerate(self._design.levels):
            base = fun(est.B[lev_i])
            keys = list(base)
            grad = np.zeros((len(keys), len(theta)))
            for j, h in enumerate(steps):
                up, down = theta.copy(), theta.copy()
                up[j] += h
                down[j] -= h
                f_up = fun(est.bfun(up).reshape(-1, 6)[lev_i])
                f_down = fun(est.bfun(down).reshape(-1, 6)[lev_i])
                grad[:, j] = [(f_up[k] - f_down[k]) / (2 * h) for k in keys]
            with np.errstate(invalid="ignore"):
                se = np.sqrt(np.einsum("ij,jk,ik->i", grad, V, grad))
            values = np.array([base[k] for k in keys])
            se = np.where(np.isfinite(values), se, np.nan)
            idx = keys if lev is None else pd.MultiIndex.from_product(
                [[lev], keys], names=["level", "term"])
            frames.append(pd.DataFrame(
                {"estimate": values, "std_error": se, "conf_low": values - crit * se,
                 "conf_high": values + crit * se}, index=idx))
        return pd.concat(frames)

    def _geometry_messages(self) -> list[str]:
        msgs: list[str] = []
        for lev_i, lev in enumerate(self._design.levels):
            where = "" if lev is None else f"level {lev!r}: "
            msgs += [where + m for m in axes_and_point(self._est.B[lev_i])[1]]
        return msgs

    def _warn_geometry(self) -> None:
        for msg in self._geometry_messages():
            warnings.warn(msg, AllianceStatsWarning, stacklevel=3)

    def _point_table(self, alpha: float) -> pd.DataFrame:
        def fun(b: np.ndarray) -> dict[str, float]:
            geo = axes_and_point(b)[0]
            return {"X0": geo["X0"], "Y0": geo["Y0"]}
        return self._delta_table(fun, alpha)

    def _axes_table(self, alpha: float) -> pd.DataFrame:
        def fun(b: np.ndarray) -> dict[str, float]:
            geo = axes_and_point(b)[0]
            return {k: geo[k] for k in ("p10", "p11", "p20", "p21")}
        table = self._delta_table(fun, alpha)
        for lev_i, _ in enumerate(self._design.levels):  # b4 = 0: derivative undefined
            if self._est.B[lev_i, 4] == 0:
                table.iloc[4 * lev_i: 4 * lev_i + 4, 1:] = np.nan
        return table

    @property
    def stationary_point(self) -> pd.DataFrame:
        """X0, Y0 (centred scale of the fit) with delta-method SE and CI.

        Undefined (NaN, with a warning) when D = 4 b3 b5 - b4² = 0.
        """
        self._warn_geometry()
        return self._point_table(0.05)

    @property
    def principal_axes(self) -> pd.DataFrame:
        """p10, p11 (first principal axis Y = p10 + p11 X) and p20, p21, delta-method CIs.

        Special cases (warned): b4 = 0 gives slopes 0 and inf; D = 0 with a ridge line
        reports that line as the first axis (p20 undefined).
        """
        self._warn_geometry()
        return self._axes_table(0.05)

    @property
    def lateral_shift(self) -> pd.DataFrame:
        """``shift_loic_x`` = -p10/(p11 + 1) (X where PA1 crosses the LOIC),
        ``shift_loic_x_pa2`` (same for PA2) and, for SSQD/SRR/SRRR/SRSQD, the model's
        ridge intercept ``shift_intercept`` (R RSA's ``C``), with delta-method CIs."""
        self._warn_geometry()
        return self._delta_table(lambda b: lateral_shifts(b, self.model))

    @property
    def model_parameters(self) -> pd.DataFrame:
        """SRRR/SRSQD: S (ridge slope), a4_rescaled, meaneffect (SRRR); empty otherwise."""
        if not model_parameters(self._est.B[0], self.model):
            return pd.DataFrame(columns=_INTERVAL_COLUMNS)
        return self._delta_table(lambda b: model_parameters(b, self.model))

    # -- prediction and description -------------------------------------------------------
    def predict(self, x: Any, y: Any, *, level: Any = None, grid: bool = False) -> np.ndarray:
        """Predicted outcome on the surface at (x, y) on the original scale of x and y.

        Controls are at 0 (a centred prior outcome at its mean). ``grid=True`` evaluates
        every combination (``np.meshgrid(x, y)``) and returns shape (len(y), len(x)).

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> from alliancestats import fit_rsa
        >>> rng = np.random.default_rng(1)
        >>> df = pd.DataFrame({"x": rng.normal(size=50), "y": rng.normal(size=50)})
        >>> df["z"] = df.x + df.y
        >>> fit_rsa(df, outcome="z", x="x", y="y").predict([1.0], [2.0]).round(6)
        array([3.])
        """
        b = self._est.B[self._level_index(level)]
        xv, yv = np.asarray(x, dtype=float), np.asarray(y, dtype=float)
        if grid:
            xv, yv = np.meshgrid(np.ravel(xv), np.ravel(yv))
        c = self._design.centering
        xs = (xv - c["x_shift"]) / c["x_scale"]
        ys = (yv - c["y_shift"]) / c["y_scale"]
        return b[0] + b[1] * xs + b[2] * ys + b[3] * xs**2 + b[4] * xs * ys + b[5] * ys**2

    def _level_index(self, level: Any) -> int:
        levels = self._design.levels
        if levels == (None,):
            if level is not None:
                raise ValueError("`level` is only used with fits that have `by`.")
            return 0
        if level is None or level not in levels:
            raise ValueError(f"`level` must be one of the `by` levels {list(levels)}; "
                             f"got {level!r}.")
        return levels.index(level)

    def discrepancy_table(self, standardize: str = "pooled") -> pd.DataFrame:
        """Share of analysed rows with x > y, x ~ y and x < y (Shanock et al. 2010).

        Both variables are standardised, then Δ = zY - zX is cut at ±0.5 right-closed
        (R ``cut``): "x > y" if Δ <= -0.5, "x ~ y" if -0.5 < Δ <= 0.5, else "x < y".
        ``"pooled"`` (default, R RSA) uses one mean/SD of the stacked x and y, which keeps
        the table invariant to a common affine change; ``"variablewise"`` standardises
        each variable separately as Shanock et al. did.
        """
        check_choice(standardize, "standardize", ("pooled", "variablewise"))
        xr, yr = self._design.x_raw, self._design.y_raw
        if standardize == "pooled":
            both = np.concatenate([xr, yr])
            zx = (xr - both.mean()) / both.std(ddof=1)
            zy = (yr - both.mean()) / both.std(ddof=1)
        else:
            zx = (xr - xr.mean()) / xr.std(ddof=1)
            zy = (yr - yr.mean()) / yr.std(ddof=1)
        cats = pd.cut(zy - zx, [-np.inf, -0.5, 0.5, np.inf], right=True,
                      labels=["x > y", "x ~ y", "x < y"])
        if self._design.levels == (None,):
            counts = pd.Series(cats).value_counts(sort=False).rename("n").to_frame()
            counts.index.name = "category"
            counts["share"] = counts["n"] / counts["n"].sum()
            return counts
        levels = pd.Series([self._design.levels[c] for c in self._design.codes], name="level")
        n = pd.DataFrame({"level": levels, "category": cats}).groupby(
            ["level", "category"], observed=False).size().rename("n")
        return pd.DataFrame({"n": n, "share": n / n.groupby(level="level").transform("sum")})

    # -- congruence --------------------------------------------------------------------
    def congruence_test(
        self,
        *,
        variant: str = "strict",
        direction: str = "maximum",
        alpha: float = 0.05,
        level: Any = None,
        bootstrap: RSABootstrap | None = None,
    ) -> CongruenceTest:
        """Test a congruence hypothesis with all its conditions and one verdict.

        ``variant="strict"`` (Humberg, Nestler & Back 2019): the first principal axis is
        the line of congruence (CI of p10 contains 0, CI of p11 contains 1), a3 is not
        significant, and a4 is significant with the sign of ``direction`` ("maximum": the
        outcome peaks at congruence, a4 < 0; "minimum": a4 > 0, and then the axis
        conditions apply to the second principal axis, p20 and p21, along which a convex
        surface is flattest). ``variant="a5"``
        (Nestler, Humberg & Schönbrodt 2019) replaces the axis conditions by a5 not
        significant. With ``bootstrap`` (from :meth:`bootstrap`), the p10/p11 intervals
        are percentile intervals, as Humberg et al. recommend.
        """
        check_choice(variant, "variant", ("strict", "a5"))
        check_choice(direction, "direction", ("maximum", "minimum"))
        li = self._level_index(level)
        lev = self._design.levels[li]
        pick = (lambda t: t) if lev is None else (lambda t: t.xs(lev, level="level"))
        surf = pick(self._surface_table(alpha))
        rows: list[dict[str, Any]] = []

        def add(q: str, est: float, low: float, high: float, p: float, req: str,
                met: bool) -> None:
            rows.append({"quantity": q, "estimate": est, "conf_low": low, "conf_high": high,
                         "p_value": p, "requirement": req, "met": bool(met)})

        interval = "delta"
        # A peak runs along the first principal axis, a valley along the second (Edwards
        # 2002): that axis must coincide with the line of congruence.
        axis = "1" if direction == "maximum" else "2"
        if variant == "strict":
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AllianceStatsWarning)
                axes = pick(self._axes_table(alpha))
            if bootstrap is not None:
                interval = "percentile bootstrap"
                ci = bootstrap.conf_int(alpha)
                prefix = "" if lev is None else f"{lev}:"
                for q in (f"p{axis}0", f"p{axis}1"):
                    axes.loc[q, ["conf_low", "conf_high"]] = ci.loc[
                        prefix + q, ["conf_low", "conf_high"]].to_numpy(float)
            for q, null in ((f"p{axis}0", 0.0), (f"p{axis}1", 1.0)):
                r = axes.loc[q]
                add(q, r.estimate, r.conf_low, r.conf_high, np.nan, f"CI contains {null:g}",
                    _contains(r.conf_low, r.conf_high, null))
        for q in ("a3", "a5") if variant == "a5" else ("a3",):
            r = surf.loc[q]
            add(q, r.estimate, r.conf_low, r.conf_high, r.p_value,
                f"not significant at {alpha:g}", r.p_value >= alpha)
        r = surf.loc["a4"]
        sign = -1 if direction == "maximum" else 1
        add("a4", r.estimate, r.conf_low, r.conf_high, r.p_value,
            f"significant, {'< 0' if sign < 0 else '> 0'}",
            r.p_value < alpha and np.sign(r.estimate) == sign)
        table = pd.DataFrame(rows).set_index("quantity")
        return CongruenceTest(table, bool(table["met"].all()), variant, direction, lev,
                              interval)

    # -- by-group differences ------------------------------------------------------------
    def _difference_weights(self, rows: np.ndarray, names: list[str]) -> pd.DataFrame:
        levels = self._design.levels
        if levels == (None,):
            raise ValueError("Surface differences need a fit with `by`.")
        ref = levels[0]
        frames = []
        for lev in levels[1:]:
            w = pd.DataFrame(0.0, index=pd.MultiIndex.from_product(
                [[lev], names], names=["level", "term"]), columns=self._b_labels)
            w[[f"{lev}:{b}" for b in _B_NAMES]] = rows
            w[[f"{ref}:{b}" for b in _B_NAMES]] -= rows
            frames.append(w)
        return pd.concat(frames)

    @property
    def surface_differences(self) -> pd.DataFrame:
        """a1..a5 of each level minus those of the first (reference) level, with SE,
        test and CI (exact contrasts; the model pools the variance components)."""
        weights = self._difference_weights(SURFACE_WEIGHTS, _A_NAMES)
        return linear_combination(self._b_series(), self._b_cov, weights, df=self.df_resid)

    @property
    def surface_equality(self) -> pd.Series:
        """Joint Wald test that b1..b5 (equivalently a1..a5) are equal in all levels
        (F with ``df_resid`` for OLS, chi-square for mixed models)."""
        weights = self._difference_weights(np.eye(6)[1:], _B_NAMES[1:])
        jac = pd.DataFrame(self._est.bjac, index=self._b_labels, columns=self.params.index)
        return self.wald_test(weights @ jac)

    # -- bootstrap ------------------------------------------------------------------------
    def bootstrap(
        self, n: int = 2000, *, rng: Any = None, n_jobs: int = 1, alpha: float = 0.05
    ) -> RSABootstrap:
        """Percentile bootstrap of a1..a5, the stationary point and the principal axes.

        Resamples top-level clusters (the first ``groups`` column, e.g. therapists) with
        replacement, or rows for single-level fits, and refits the same model with the
        centring constants of the original fit. Every replicate has its own child
        generator (``rng.spawn``), so results do not depend on ``n_jobs``. Failed refits
        are counted and excluded.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> from alliancestats import fit_rsa
        >>> rng = np.random.default_rng(2)
        >>> df = pd.DataFrame({"x": rng.normal(size=80), "y": rng.normal(size=80)})
        >>> df["z"] = -(df.x - df.y) ** 2 + rng.normal(size=80)
        >>> boot = fit_rsa(df, outcome="z", x="x", y="y").bootstrap(50, rng=1)
        >>> boot.n_requested - boot.n_failed
        50
        """
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 2:
            raise ValueError(f"`n` must be an integer >= 2; got {n!r}.")
        gens = as_generator(rng).spawn(int(n))
        n_chunks = 1 if n_jobs == 1 else 4 * max(1, abs(int(n_jobs)))
        parts = Parallel(n_jobs=n_jobs)(
            delayed(replicate_chunk)(self._design, self._spec, chunk)
            for chunk in chunked(gens, n_chunks)
        )
        results = [r for part in parts for r in part]
        labels = boot_labels(self._design.levels)
        draws, ests, n_failed, fails = collect(results, labels, surface_quantities(self._est.B))
        warn_failures(n_failed, int(n))
        groups = self._design.names["groups"]
        return RSABootstrap(draws, ests, int(n), n_failed, fails,
                            str(groups[0]) if groups else "rows", alpha)

    # -- tables for summary / to_frame ----------------------------------------------------
    def _derived_frame(self, alpha: float) -> list[tuple[str, pd.DataFrame]]:
        surf = self._surface_table(alpha)
        if isinstance(surf.index, pd.MultiIndex):
            surf.index = [f"{lev}:{t}" for lev, t in surf.index]
        return [("surface", surf[EFFECT_COLUMNS])]

    def _summary_tables(self, alpha: float) -> list[tuple[str, pd.DataFrame]]:
        tables = super()._summary_tables(alpha)
        tables.append(("Surface parameters (a1..a5)", self._surface_table(alpha)))
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AllianceStatsWarning)
            tables.append(("Stationary point (delta method)", self._point_table(alpha)))
            tables.append(("Principal axes (delta method)", self._axes_table(alpha)))
        if self._design.levels != (None,):
            tables.append((f"Surface differences vs level {self._design.levels[0]!r}",
                           self.surface_differences))
        return tables

    def summary(self, alpha: float = 0.05) -> Any:
        """lme4-style summary plus the surface parameters, stationary point and axes."""
        out = super().summary(alpha)
        out.notes += self._geometry_messages()
        if self._lag_info:
            out.notes.append("Lags: " + ", ".join(f"{k}={v}" for k, v in self._lag_info.items()))
        return out


def _contains(low: float, high: float, value: float) -> bool:
    """Whether [low, high] contains ``value`` up to floating-point noise."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return False
    tol = 1e-9 * max(1.0, abs(value), abs(low), abs(high))
    return bool(low - tol <= value <= high + tol)


def _formula(est: Estimate, design: Design, spec: Spec) -> str:
    terms = [t for t in est.params.index if t not in ("Intercept", "phi")]
    rhs = " + ".join(terms) if terms else "1"
    if est.phi is not None:
        rhs += "  [u = cos(phi) y - sin(phi) x]"
    groups = design.names["groups"]
    for i in range(len(groups)):
        rhs += " + (1 | " + ":".join(str(g) for g in groups[: i + 1]) + ")"
    return f"{design.names['outcome']} ~ {rhs}"


def _build(design: Design, spec: Spec, lag_info: dict[str, Any] | None = None) -> RSAResults:
    est = estimate(design, spec)
    notes = []
    c = design.centering
    if c["center"] is not None or c["scale"] is not None:
        notes.append(f"x and y centred ({c['center']}) and scaled ({c['scale']}) before "
                     f"forming squares; b, a, X0, Y0, p10 refer to that scale.")
    return RSAResults(est=est, design=design, spec=spec, formula=_formula(est, design, spec),
                      lag_info=lag_info, extra_notes=notes)


def _make_spec(model: Any, random: Any, reml: Any, engine: Any, cov_type: Any,
               groups: Any) -> Spec:
    family = family_model(model)
    check_choice(cov_type, "cov_type", COV_TYPES)
    check_choice(engine, "engine", ENGINES)
    if groups is not None and cov_type != "nonrobust":
        raise ValueError(f"cov_type={cov_type!r} is only available for single-level fits "
                         f"(groups=None); mixed models use model-based SEs.")
    if not isinstance(reml, bool):
        raise TypeError(f"`reml` must be True or False; got {reml!r}.")
    return Spec(family, random, reml, engine, cov_type)


def fit_rsa(
    data: pd.DataFrame,
    *,
    outcome: Hashable,
    x: Hashable,
    y: Hashable,
    groups: Hashable | Sequence[Hashable] | None = None,
    controls: Hashable | Sequence[Hashable] | None = None,
    by: Hashable | None = None,
    model: str = "full",
    random: Any = "intercept",
    center: Any = "pooled",
    scale: str | None = None,
    reml: bool = True,
    missing: str = "drop",
    engine: str = "fast",
    cov_type: str = "nonrobust",
) -> RSAResults:
    r"""Fit a polynomial response surface, single-level (OLS) or multilevel.

    Parameters
    ----------
    data : DataFrame
    outcome, x, y : column names
        Outcome Z and the two commensurate predictors (e.g. therapist- and patient-rated
        alliance).
    groups : column name or list, optional
        Grouping columns outer -> inner (e.g. ``["therapist", "patient"]``): a mixed model
        with a random intercept at every level (lme4 ``(1|therapist) +
        (1|therapist:patient)``). None: single-level OLS.
    controls : column name or list, optional
        Covariates entering linearly (categorical ones as dummies), not interacted.
    by : column name, optional
        One surface per level in one model: intercept and polynomial terms per level,
        controls and variance components pooled. See ``surface_differences``.
    model : str
        Member of the model family (R RSA's constraints, substituted exactly): ``full``,
        ``IA``, ``additive``, ``diff``, ``mean``, ``onlyx``, ``onlyy``, ``onlyx2``,
        ``onlyy2``, ``SQD``, ``SSQD``, ``RR``, ``SRR``, ``SRRR``, ``SRSQD``, ``null``.
    random : {"intercept", "slopes"} or mapping
        Random effects of mixed fits: intercepts at every level; "slopes" adds correlated
        random x and y slopes at the innermost level; or {level: [design columns]}.
    center : "pooled", "variablewise", None or number
        Subtract the pooled grand mean of stacked x and y (default), each variable's own
        mean (warns), nothing, or a given constant such as the scale midpoint.
    scale : None, "pooled" or "variablewise"
        Optionally divide by the pooled SD of the centred, stacked x and y.
    reml : bool
        REML (default) or ML for mixed fits.
    missing : {"drop", "raise"}
    engine : {"fast", "statsmodels"}
        Mixed-model engine.
    cov_type : {"nonrobust", "HC0", "HC1", "HC2", "HC3"}
        Single-level covariance of the coefficients.

    Returns
    -------
    RSAResults

    Raises
    ------
    ValueError
        Unknown columns or model name, x identical to y, constant predictors, too few
        observations, a rank-deficient design, missing values with ``missing="raise"``.

    Notes
    -----
    Constrained models are fitted on the substituted design (e.g. SQD is
    ``Z ~ (X - Y)^2``) and mapped back to b1..b5 with the implied covariance. SRRR and
    SRSQD are fitted in the exact rank-one reparameterisation
    ``g (cos(phi) Y - sin(phi) X)^2`` by profiling the angle (nonlinear least squares
    single-level; profile ML for mixed fits, SEs conditional on the angle).

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from alliancestats import fit_rsa
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"x": rng.normal(size=200), "y": rng.normal(size=200)})
    >>> df["z"] = 1 - (df.x - df.y) ** 2 + rng.normal(scale=0.5, size=200)
    >>> res = fit_rsa(df, outcome="z", x="x", y="y", center=None)
    >>> bool(abs(res.surface.loc["a4", "estimate"] + 4) < 0.3)
    True
    >>> res.congruence_test().verdict
    True
    """
    spec = _make_spec(model, random, reml, engine, cov_type, groups)
    design = prepare(data, outcome=outcome, x=x, y=y, groups=groups, controls=controls,
                     by=by, center=center, scale=scale, missing=missing)
    return _build(design, spec)


def fit_lagged_rsa(
    data: pd.DataFrame,
    *,
    outcome: Hashable,
    x: Hashable,
    y: Hashable,
    time: Hashable,
    unit: Hashable | Sequence[Hashable],
    groups: Hashable | Sequence[Hashable] | None,
    lag: int = 1,
    prior_outcome: bool = True,
    **fit_rsa_kwargs: Any,
) -> RSAResults:
    """Lagged RSA: outcome at t on the surface of x and y at t - lag.

    Lags are looked up by time with :func:`alliancestats.add_lags`: a missed session
    yields no lagged pair (gaps are never bridged). Rows without lagged x and y (first
    sessions, sessions after a gap; with ``prior_outcome`` also without the lagged
    outcome) are structurally excluded, counted in ``lag_info`` and not warned about.
    The lagged outcome enters as a covariate centred on its grand mean over the analysed
    rows (residualised change; METHODS §3.5).

    Parameters
    ----------
    data : DataFrame
        Long data, one row per unit and time point.
    outcome, x, y : column names
    time : column name
        Integer session number.
    unit : column name or list
        Identifies the series (e.g. ``["therapist", "patient"]`` or ``"patient"``).
    groups : column name, list or None
        As in :func:`fit_rsa`.
    lag : int
    prior_outcome : bool
        Add the lagged outcome as a covariate.
    **fit_rsa_kwargs
        Passed to :func:`fit_rsa` (``controls``, ``by``, ``model``, ``center``, ...).

    Returns
    -------
    RSAResults
        ``lag_info`` records the lag structure and row counts.

    Examples
    --------
    >>> from alliancestats import fit_lagged_rsa
    >>> from alliancestats.simulate import simulate_prn
    >>> df = simulate_prn(rng=1)
    >>> res = fit_lagged_rsa(df, outcome="wellbeing", x="alliance_therapist",
    ...                      y="alliance_patient", time="session",
    ...                      unit=["therapist", "patient"], groups=None)
    >>> res.lag_info["rows_used"] == res.nobs
    True
    """
    data = require_frame(data)
    units = as_column_list(unit, "unit")
    require_columns(data, {"outcome": outcome, "x": x, "y": y, "time": time, "unit": units})
    for key in ("x", "y", "outcome", "center_controls"):
        if key in fit_rsa_kwargs:
            raise TypeError(f"fit_lagged_rsa() got an unexpected keyword argument {key!r}.")
    lag_cols = [x, y, outcome] if prior_outcome else [x, y]
    lagged = add_lags(data, lag_cols, by=units, time=time, lag=lag)
    xl, yl, zl = (f"{c}_lag{lag}" for c in (x, y, outcome))
    has_pair = lagged[[xl, yl]].notna().all(axis=1)
    keep = has_pair & (lagged[zl].notna() if prior_outcome else True)
    if not keep.any():
        raise ValueError(f"No row has its {time!r} - {lag} values of x and y for the same "
                         f"unit; check `time`, `unit` and `lag`.")
    info = {"time": time, "unit": units, "lag": lag, "rows_in": len(data),
            "rows_without_lagged_xy": int((~has_pair).sum()),
            "rows_without_lagged_outcome": int((has_pair & ~keep).sum()),
            "prior_outcome": zl if prior_outcome else None}
    kwargs = dict(fit_rsa_kwargs)
    spec = _make_spec(kwargs.pop("model", "full"), kwargs.pop("random", "intercept"),
                      kwargs.pop("reml", True), kwargs.pop("engine", "fast"),
                      kwargs.pop("cov_type", "nonrobust"), groups)
    controls = as_column_list(kwargs.pop("controls", None), "controls")
    if prior_outcome:
        controls.append(zl)
    design = prepare(lagged.loc[keep], outcome=outcome, x=xl, y=yl, groups=groups,
                     controls=controls, center_controls=[zl] if prior_outcome else [],
                     by=kwargs.pop("by", None), center=kwargs.pop("center", "pooled"),
                     scale=kwargs.pop("scale", None), missing=kwargs.pop("missing", "drop"))
    if kwargs:
        raise TypeError(f"fit_lagged_rsa() got unexpected keyword arguments {sorted(kwargs)}.")
    info["rows_used"] = design.nobs
    return _build(design, spec, lag_info=info)


def compare_rsa(
    data: pd.DataFrame,
    *,
    models: Sequence[str] = ("full", "SRRR", "SRR", "RR", "SQD", "SSQD", "SRSQD", "IA",
                             "additive", "onlyx2", "onlyy2", "onlyx", "onlyy", "null"),
    **fit_rsa_kwargs: Any,
) -> pd.DataFrame:
    """Fit several members of the RSA model family and compare them (R's ``RSA::compare``
    and ``aictab``).

    Mixed models are compared by ML: with ``reml=True`` (the default of :func:`fit_rsa`)
    each model is refitted by ML, as likelihoods of REML fits with different fixed
    effects are not comparable; ``attrs["notes"]`` says so.

    Returns
    -------
    DataFrame
        One row per model (ordered by k): ``k`` (free surface weights), ``n_params``
        (all estimated parameters, incl. intercept, controls and variances), ``logLik``,
        ``AIC``, ``AICc`` (K = n_params), ``BIC``, ``delta_AICc``, ``aic_weight``,
        ``aicc_weight``, ``r_squared`` (OLS), the likelihood-ratio test against the full
        model (``chi2``, ``df``, ``p_value``), ``method`` and ``converged``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from alliancestats import compare_rsa
    >>> rng = np.random.default_rng(0)
    >>> df = pd.DataFrame({"x": rng.normal(size=100), "y": rng.normal(size=100)})
    >>> df["z"] = -(df.x - df.y) ** 2 + rng.normal(size=100)
    >>> table = compare_rsa(df, outcome="z", x="x", y="y", models=("full", "SQD", "null"))
    >>> table["model"].tolist()
    ['null', 'SQD', 'full']
    """
    if isinstance(models, str):
        models = (models,)
    for m in models:
        family_model(m)
    kwargs = dict(fit_rsa_kwargs)
    notes = []
    if kwargs.get("groups") is not None and kwargs.get("reml", True):
        notes.append("Mixed models refitted by ML (reml=False) for the comparison.")
    kwargs["reml"] = False
    kwargs.pop("model", None)
    fits: dict[str, RSAResults] = {}
    seen: set[str] = set()
    for m in dict.fromkeys([*models, "full"]):
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            fits[m] = fit_rsa(data, model=m, **kwargs)
        for w in caught:  # re-emit each distinct message once (e.g. dropped rows)
            if str(w.message) not in seen:
                seen.add(str(w.message))
                warnings.warn(w.message, stacklevel=2)
    full = fits["full"]
    rows = []
    for m in models:
        res = fits[m]
        K, n = res.df_model, res.nobs
        chi2 = 2 * (full.llf - res.llf)
        ddf = full.df_model - K
        rows.append({
            "model": m, "k": family_model(m).k, "n_params": K, "logLik": res.llf,
            "AIC": res.aic, "AICc": res.aic + 2 * K * (K + 1) / (n - K - 1) if n > K + 1
            else np.nan, "BIC": res.bic, "r_squared": res.rsquared,
            "chi2": chi2 if ddf > 0 else np.nan, "df": ddf if ddf > 0 else np.nan,
            "p_value": stats.chi2.sf(max(chi2, 0.0), ddf) if ddf > 0 else np.nan,
            "method": res.method, "converged": res.converged,
        })
    table = pd.DataFrame(rows).sort_values(["n_params", "model"], kind="stable")
    for crit in ("AIC", "AICc"):
        delta = table[crit] - table[crit].min()
        w = np.exp(-delta / 2)
        table[f"{crit.lower()}_weight"] = w / w.sum()
        if crit == "AICc":
            table["delta_AICc"] = delta
    table = table.reset_index(drop=True)
    table.attrs["notes"] = notes
    return table
