"""The results of a response surface fit: :class:`RSAResults`.

The surface parameters of R's RSA package,

    a1 = b1 + b2, a2 = b3 + b4 + b5, a3 = b1 - b2, a4 = b3 - b4 + b5, a5 = b3 - b5,

are exact linear contrasts of the coefficients (and u1..u3, v1..v3 along the lines of
congruence and incongruence of a third-order surface). The stationary point, the
principal axes and the lateral shifts are nonlinear; their SEs come from the delta method
(or :meth:`RSAResults.bootstrap`).
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import stats

from .._validation import as_generator, check_choice
from ..exceptions import AllianceStatsWarning
from ..results import EFFECT_COLUMNS, ModelResults, linear_combination
from .bootstrap import (
    CongruenceTest,
    RSABootstrap,
    boot_labels,
    chunked,
    collect,
    replicate_chunk,
    surface_quantities,
    warn_failures,
)
from .family import (
    COEF_NAMES,
    CUBIC_NAMES,
    CUBIC_WEIGHTS,
    SURFACE_WEIGHTS,
    axes_and_point,
    basis,
    lateral_shifts,
    model_parameters,
)

if TYPE_CHECKING:
    from .fit import Design, Estimate, Spec

__all__ = ["RSAResults"]

_A_NAMES = ["a1", "a2", "a3", "a4", "a5"]
_INTERVAL_COLUMNS = ["estimate", "std_error", "conf_low", "conf_high"]


class RSAResults(ModelResults):
    """Results of :func:`fit_rsa` / :func:`fit_lagged_rsa` (immutable).

    Besides the :class:`~alliancestats.results.ModelResults` interface (``params`` are the
    estimated free parameters of the chosen model), it offers the surface: ``coefs``
    (b0..b5; b0..b9 for third-order models; b0..b2, w1..w3 for the piecewise ones),
    ``surface`` (a1..a5), ``cubic_surface`` (u1..u3, v1..v3 of third-order models),
    ``stationary_point``, ``principal_axes``, ``lateral_shift``, ``predict``,
    ``discrepancy_table``, ``congruence_test``, ``surface_differences`` (with ``by``),
    ``bootstrap`` and ``observations`` (the analysed data).
    """

    def __init__(self, *, est: Estimate, design: Design, spec: Spec, formula: str,
                 refit: Callable[[Design, Spec], Estimate],
                 lag_info: dict[str, Any] | None = None, extra_notes: Sequence[str] = ()
                 ) -> None:
        self._est = est
        self._design = design
        self._spec = spec
        self._refit = refit
        self._lag_info = dict(lag_info or {})
        self._model_name = f"Response surface analysis (model '{spec.family.model}')"
        self._coef_names = list(spec.family.coef_names)
        pos = [COEF_NAMES.index(c) for c in self._coef_names]
        rows = [lev_i * len(COEF_NAMES) + j for lev_i in range(len(design.levels))
                for j in pos]
        self._coef_pos = pos
        labels = [c if lev is None else f"{lev}:{c}"
                  for lev in design.levels for c in self._coef_names]
        self._b_labels = labels
        bjac = est.bjac[rows]
        self._bjac = bjac
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
        """The surfaces of the fit: levels of ``by``, ``["within", "between"]`` with
        ``decompose="unit"``, else ``[None]``."""
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
    def random_pca(self) -> pd.DataFrame:
        """Principal components of each level's random-effects covariance relative to the
        residual SD (lme4 ``rePCA``): level, component, sd, proportion, cumulative and
        loadings (term -> weight). Components with ~0 variance show a singular
        structure and which terms span it. Empty for single-level fits."""
        pca = self._est.random_pca
        if pca is None:
            return pd.DataFrame(columns=["level", "component", "sd", "proportion",
                                         "cumulative", "loadings"])
        return pca.copy()

    @property
    def angle(self) -> float | None:
        """Profiled angle phi of the rank-one models SRRR/SRSQD (None otherwise)."""
        return self._est.phi

    def _b_series(self) -> pd.Series:
        return pd.Series(self._est.B[:, self._coef_pos].ravel(), index=self._b_labels)

    @property
    def coefs(self) -> pd.Series:
        """b0..b5 implied by the fit (b0..b9 for third-order models, b0..b2 and w1..w3
        for the piecewise ones; indexed (level, b) with ``by``)."""
        values = self._est.B[:, self._coef_pos].ravel()
        if self._design.levels == (None,):
            return pd.Series(values, index=self._coef_names, name="estimate")
        index = pd.MultiIndex.from_product([self.levels, self._coef_names],
                                           names=["level", "term"])
        return pd.Series(values, index=index, name="estimate")

    def cov_coefs(self) -> pd.DataFrame:
        """Covariance of the coefficients in :attr:`coefs` (all levels): J V J' with
        J = db/dparams."""
        return self._b_cov.copy()

    def _level_weights(self, rows: np.ndarray, names: list[str]) -> pd.DataFrame:
        frames = []
        sub = rows[:, self._coef_pos]
        for lev in self._design.levels:
            cols = [c if lev is None else f"{lev}:{c}" for c in self._coef_names]
            idx = names if lev is None else pd.MultiIndex.from_product(
                [[lev], names], names=["level", "term"])
            frames.append(pd.DataFrame(sub, index=idx, columns=cols))
        return pd.concat(frames).fillna(0.0)

    def _surface_table(self, alpha: float) -> pd.DataFrame:
        weights = self._level_weights(SURFACE_WEIGHTS, _A_NAMES)
        table = linear_combination(self._b_series(), self._b_cov, weights, alpha=alpha,
                                   df=self.df_resid)
        if self._spec.family.order == "abs":  # not a polynomial: a1..a5 are undefined
            table.loc[:, :] = np.nan
        return table

    @property
    def surface(self) -> pd.DataFrame:
        """a1..a5 with SE, test and CI (exact linear contrasts of b; by level with ``by``).

        For third-order models these are the first- and second-order coefficients along
        the lines of congruence and incongruence at the origin (see also
        :attr:`cubic_surface`); for the piecewise models (absdiff, absunc) they are
        undefined (NaN), as in R's RSA package.
        """
        return self._surface_table(0.05)

    @property
    def cubic_surface(self) -> pd.DataFrame:
        """u1, u2, u3 and v1, v2, v3 of a third-order surface, with SE, test and CI.

        Along the line of congruence ``Z(t, t) = b0 + u1 t + u2 t^2 + u3 t^3``; along the
        line of incongruence ``Z(t, -t) = b0 + v1 t + v2 t^2 + v3 t^3`` (R RSA's cubic
        models; Humberg, Schönbrodt, Back & Nestler 2022). Exact linear contrasts of
        b1..b9.

        Raises
        ------
        ValueError
            For models that are not third order.
        """
        if self._spec.family.order != "cubic":
            raise ValueError(f"cubic_surface needs a third-order model (cubic, CA, CL, RRCA, "
                             f"RRCL); this fit is {self.model!r}.")
        weights = self._level_weights(CUBIC_WEIGHTS, list(CUBIC_NAMES))
        return linear_combination(self._b_series(), self._b_cov, weights, alpha=0.05,
                                  df=self.df_resid)

    @property
    def observations(self) -> pd.DataFrame:
        """The analysed rows on the original scale: x, y, outcome and level (the ``by``
        level, None without ``by``), one row per observation used in the fit."""
        d = self._design
        return pd.DataFrame({"x": d.x_raw, "y": d.y_raw, "outcome": d.endog,
                             "level": [d.levels[c] if d.has_by else None for c in d.codes]})

    def level_mask(self, level: Any = None) -> np.ndarray:
        """Boolean mask of the analysed rows (as in :attr:`observations`) of ``level``.

        Raises
        ------
        ValueError
            If ``level`` is not one of the ``by`` levels (or given without ``by``).
        """
        d = self._design
        index = self._level_index(level)
        if not d.has_by:  # one surface, or the within/between parts of every row
            return np.ones(d.nobs, dtype=bool)
        return np.asarray(d.codes == index)

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
                f_up = fun(est.bfun(up).reshape(-1, len(COEF_NAMES))[lev_i])
                f_down = fun(est.bfun(down).reshape(-1, len(COEF_NAMES))[lev_i])
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
        order = self._spec.family.order
        if order != "quadratic":
            return [f"Model {self.model!r} is not a second-order surface: the stationary "
                    f"point and principal axes are not defined."]
        msgs: list[str] = []
        for lev_i, lev in enumerate(self._design.levels):
            where = "" if lev is None else f"level {lev!r}: "
            msgs += [where + m for m in axes_and_point(self._est.B[lev_i])[1]]
        return msgs

    def _warn_geometry(self) -> None:
        for msg in self._geometry_messages():
            warnings.warn(msg, AllianceStatsWarning, stacklevel=3)

    def _point_table(self, alpha: float) -> pd.DataFrame:
        quadratic = self._spec.family.order == "quadratic"

        def fun(b: np.ndarray) -> dict[str, float]:
            geo = axes_and_point(b)[0]
            if not quadratic:
                return {"X0": np.nan, "Y0": np.nan}
            return {"X0": geo["X0"], "Y0": geo["Y0"]}
        return self._delta_table(fun, alpha)

    def _axes_table(self, alpha: float) -> pd.DataFrame:
        quadratic = self._spec.family.order == "quadratic"

        def fun(b: np.ndarray) -> dict[str, float]:
            geo = axes_and_point(b)[0]
            return {k: geo[k] if quadratic else np.nan for k in ("p10", "p11", "p20", "p21")}
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
        With ``decompose="unit"``, ``level="between"`` takes unit means on the original
        scale, ``level="within"`` deviations from the unit's means (not shifted).

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
        xv, yv = np.broadcast_arrays(xv, yv)
        c = self._design.centering
        within = self._design.parts is not None and level == "within"
        xs = (xv - (0.0 if within else c["x_shift"])) / c["x_scale"]
        ys = (yv - (0.0 if within else c["y_shift"])) / c["y_scale"]
        terms = basis(xs.ravel(), ys.ravel())
        return np.asarray(b[0] + terms @ b[1:]).reshape(xs.shape)

    def predict_interval(self, x: Any, y: Any, *, level: Any = None,
                         alpha: float = 0.05) -> pd.DataFrame:
        """Predicted outcome at points (x, y) with SE and confidence interval.

        The prediction is a linear combination of the coefficients, so its SE is exact
        (``g' cov_coefs() g``); ``df_resid`` t quantiles for OLS, normal ones for mixed
        fits. x and y as in :meth:`predict` (one point per pair, no grid).

        Returns
        -------
        DataFrame
            Columns x, y, estimate, std_error, conf_low, conf_high.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> from alliancestats import fit_rsa
        >>> rng = np.random.default_rng(1)
        >>> df = pd.DataFrame({"x": rng.normal(size=60), "y": rng.normal(size=60)})
        >>> df["z"] = df.x - df.y + rng.normal(size=60)
        >>> table = fit_rsa(df, outcome="z", x="x", y="y").predict_interval([0, 1], [0, 1])
        >>> list(table.columns)
        ['x', 'y', 'estimate', 'std_error', 'conf_low', 'conf_high']
        """
        if not 0 < alpha < 1:
            raise ValueError(f"`alpha` must be between 0 and 1; got {alpha!r}.")
        li = self._level_index(level)
        xv, yv = np.broadcast_arrays(np.asarray(x, dtype=float).ravel(),
                                     np.asarray(y, dtype=float).ravel())
        c = self._design.centering
        within = self._design.parts is not None and level == "within"
        xs = (xv - (0.0 if within else c["x_shift"])) / c["x_scale"]
        ys = (yv - (0.0 if within else c["y_shift"])) / c["y_scale"]
        terms = np.column_stack([np.ones(len(xs)), basis(xs, ys)])[:, self._coef_pos]
        k = len(self._coef_pos)
        cov = self._b_cov.to_numpy()[li * k:(li + 1) * k, li * k:(li + 1) * k]
        est = self._est.B[li, self._coef_pos]
        value = terms @ est
        se = np.sqrt(np.einsum("ij,jk,ik->i", terms, cov, terms))
        crit = self._crit(alpha)
        return pd.DataFrame({"x": xv, "y": yv, "estimate": value, "std_error": se,
                             "conf_low": value - crit * se, "conf_high": value + crit * se})

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
        if not self._design.has_by:
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
        if self._spec.family.order != "quadratic":
            raise ValueError(f"congruence_test() checks the conditions of a second-order "
                             f"surface; model {self.model!r} is not one (fit e.g. 'full').")
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

    def congruence_table(self, *, variant: str = "strict", direction: str = "maximum",
                         alpha: float = 0.05) -> pd.DataFrame:
        """:meth:`congruence_test` for every surface of the fit in one table.

        One row per surface (the ``by`` levels, "within"/"between" with
        ``decompose="unit"``, or the single surface) and condition: quantity, estimate,
        conf_low, conf_high, p_value, requirement, met, and the surface's ``verdict``
        (every condition met).

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> from alliancestats import fit_rsa
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame({"x": rng.normal(size=300), "y": rng.normal(size=300),
        ...                    "g": np.repeat(["a", "b"], 150)})
        >>> df["z"] = -(df.x - df.y) ** 2 + rng.normal(scale=0.5, size=300)
        >>> table = fit_rsa(df, outcome="z", x="x", y="y", by="g").congruence_table()
        >>> table.groupby("surface")["verdict"].first().tolist()
        [True, True]
        """
        frames = []
        for lev in self._design.levels:
            test = self.congruence_test(variant=variant, direction=direction, alpha=alpha,
                                        level=lev)
            frame = test.table.reset_index()
            frame.insert(0, "surface", "all" if lev is None else lev)
            frame["verdict"] = test.verdict
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

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
            w[[f"{lev}:{b}" for b in self._coef_names]] = rows[:, self._coef_pos]
            w[[f"{ref}:{b}" for b in self._coef_names]] -= rows[:, self._coef_pos]
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
        eye = np.eye(len(COEF_NAMES))[self._coef_pos[1:]]
        weights = self._difference_weights(eye, self._coef_names[1:])
        jac = pd.DataFrame(self._bjac, index=self._b_labels, columns=self.params.index)
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
            delayed(replicate_chunk)(self._design, self._spec, chunk, self._refit)
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
        order = self._spec.family.order
        if order != "abs":
            tables.append(("Surface parameters (a1..a5)", self._surface_table(alpha)))
        if order == "cubic":
            tables.append(("Cubic surface parameters (u: line of congruence, v: line of "
                           "incongruence)", self.cubic_surface))
        if order == "quadratic":
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
