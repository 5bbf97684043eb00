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
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from joblib import Parallel, delayed
from scipy import stats
from scipy.spatial import ConvexHull, QhullError

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
from .congruence import (
    ALTERNATIVE_MODELS,
    CONGRUENCE_MODELS,
    axis_lines,
    curvatures,
    determinant,
    equivalence_bounds,
    model_weights,
    tost_interval,
    tost_linear,
)
from .family import (
    COEF_NAMES,
    CUBIC_NAMES,
    CUBIC_WEIGHTS,
    SURFACE_WEIGHTS,
    _axis_slopes,
    axes_and_point,
    basis,
    family_model,
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
        # J = db/dparams: the coefficients' covariance is J V J'
        self._J = pd.DataFrame(bjac, index=labels, columns=est.params.index)
        names = design.names
        roles = {"outcome": names["outcome"], "x": names["x"], "y": names["y"],
                 "groups": names["groups"], "controls": names["controls"], "by": names["by"]}
        super().__init__(
            est.record, formula=formula, roles=roles, centering=design.centering,
            dropped_rows=design.dropped, notes=[*est.notes, *extra_notes],
        )

    @property
    def _b_cov(self) -> pd.DataFrame:
        """J V J' with V the covariance of inference (Kenward–Roger's adjusted one under
        ``ddf="kenward-roger"``, else the fit's)."""
        names = self._J.columns
        V = self._inference_cov().loc[names, names].to_numpy()
        J = self._J.to_numpy()
        return pd.DataFrame(J @ V @ J.T, index=self._J.index, columns=self._J.index)

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

    def _b_combination(self, weights: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
        """Linear combinations ``weights`` of the coefficients b (columns as
        :meth:`cov_coefs`) with each row's own df (lmerTest ``contest1D``; ``df_resid``
        for least squares)."""
        w = weights.reindex(columns=self._b_labels, fill_value=0.0)
        df = self.contrast_df(w @ self._J)
        return linear_combination(self._b_series(), self._b_cov, weights, alpha=alpha,
                                  df=df)

    def _surface_table(self, alpha: float) -> pd.DataFrame:
        weights = self._level_weights(SURFACE_WEIGHTS, _A_NAMES)
        table = self._b_combination(weights, alpha)
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
        return self._b_combination(weights)

    @property
    def observations(self) -> pd.DataFrame:
        """The analysed rows on the original scale: x, y, outcome and level (the ``by``
        level, None without ``by``), one row per observation used in the fit.

        With ``decompose="unit"`` also ``x_within``, ``y_within`` (deviations from the
        unit's means, in the units of x and y) and ``x_between``, ``y_between`` (the
        unit's means on the original scale): the coordinates of the within- and
        between-unit surfaces (:meth:`predict` with ``level="within"`` / ``"between"``).
        """
        d = self._design
        out = pd.DataFrame({"x": d.x_raw, "y": d.y_raw, "outcome": d.endog,
                            "level": [d.levels[c] if d.has_by else None for c in d.codes]})
        if d.parts is not None:
            c = d.centering
            within, between = d.parts
            out["x_within"] = within[:, 0] * c["x_scale"]
            out["y_within"] = within[:, 1] * c["y_scale"]
            out["x_between"] = between[:, 0] * c["x_scale"] + c["x_shift"]
            out["y_between"] = between[:, 1] * c["y_scale"] + c["y_shift"]
        return out

    @property
    def decomposed(self) -> bool:
        """Whether the fit has within- and between-unit surfaces (``decompose="unit"``)."""
        return self._design.parts is not None

    def level_mask(self, level: Any = None) -> np.ndarray:
        """Boolean mask of the analysed rows (as in :attr:`observations`) of ``level``
        (every row for a fit without ``by``, and for both the within- and the
        between-unit surface of ``decompose="unit"``: each row has a part in both).

        Raises
        ------
        ValueError
            If ``level`` is not one of :attr:`levels` (or given for a single surface).
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
        constrained model is perturbed only along its constraint (the delta method of
        Edwards 2002 and of R's RSA package, which differentiates the auxiliary
        parameters through the model's defined parameters).
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

        Nonlinear in the coefficients, so no small-sample df: the interval is
        delta-method z for mixed fits (t with ``df_resid`` for OLS); use
        :meth:`bootstrap` for percentile intervals.

        Undefined (NaN, with a warning) when D = 4 b3 b5 - b4² = 0.
        """
        self._warn_geometry()
        return self._point_table(0.05)

    @property
    def principal_axes(self) -> pd.DataFrame:
        """p10, p11 (first principal axis Y = p10 + p11 X) and p20, p21, delta-method CIs
        (z for mixed fits, t with ``df_resid`` for OLS; nonlinear, so no small-sample df).

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
        (``g' cov_coefs() g``); the interval uses t with ``df_resid`` for OLS and, for
        mixed fits, t with each point's own df of the fit's ``ddf`` method (normal
        quantiles under ``ddf="z"``). x and y as in :meth:`predict` (one point per pair,
        no grid).

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
        weights = pd.DataFrame(terms, columns=self._b_labels[li * k:(li + 1) * k])
        table = self._b_combination(weights, alpha)
        return pd.DataFrame({"x": xv, "y": yv, **{c: table[c].to_numpy() for c in
                                                  ("estimate", "std_error", "conf_low",
                                                   "conf_high")}})

    def _level_index(self, level: Any) -> int:
        levels = self._design.levels
        if levels == (None,):
            if level is not None:
                raise ValueError("`level` is only used with fits that have `by`.")
            return 0
        if level is None or level not in levels:
            what = "surfaces" if self._design.parts is not None else "`by` levels"
            raise ValueError(f"`level` must be one of the {what} {list(levels)}; "
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
        equivalence: Mapping[str, float] | None = None,
        route: str = "equivalence",
        interval: str = "bootstrap",
        n_boot: int = 500,
        rng: Any = None,
        bootstrap: RSABootstrap | None = None,
        compare_models: bool = True,
        min_weight: float = 0.5,
    ) -> CongruenceTest:
        """Whether the surface shows the conditions of a congruence effect, with evidence
        for each (Humberg, Nestler & Back 2019), and one verdict.

        A congruence hypothesis ("the outcome is highest when x and y agree, and lower
        the more they disagree") needs a ridge on the line of congruence. Its conditions
        are:

        1. the first principal axis is the line of congruence: intercept p10 = 0 and
           slope p11 = 1 (``variant="strict"``), or a5 = 0, the axes parallel to the
           lines of (in)congruence (``variant="a5"``; Nestler, Humberg & Schönbrodt 2019;
           Schönbrodt, Humberg & Nestler 2018, Appendix A);
        2. a3 = 0: no slope along the line of incongruence at the origin;
        3. a4 < 0: the surface curves downward across the line of congruence.

        1 and 2 are *null* conditions. A non-significant a3 or an interval of p10 that
        covers 0 is no evidence for them (it gets more likely the less informative the
        data), so they count as met only when **equivalence** is shown: the (1 - 2 alpha)
        interval lies inside the band of smallest effects of interest ``equivalence``
        (two one-sided tests at ``alpha``). 3 is a one-sided test at ``alpha`` in the
        predicted direction. The verdict is "conditions consistent with congruence" when
        all hold, else "congruence not established" (which is not evidence against
        congruence).

        The **model comparison** route (Schönbrodt, Humberg & Nestler 2018) is reported
        beside it: the AICc weight of the models whose ridge is the line of congruence
        (SQD, RR) against those that shift (SSQD, SRR) or rotate it (SRRR) and the full
        model, refitted on the same data (by ML for mixed fits; as :func:`compare_rsa`).
        It counts as met when the congruence models carry at least ``min_weight`` of the
        weight. AICc cannot give strong evidence for the simpler of two nested models (a
        superfluous parameter costs at most 2 units, an evidence ratio of e = 2.7), so
        this route is a plausibility check, weaker than equivalence.

        On a ridge or valley line (4 b3 b5 - b4^2 indistinguishable from 0, e.g. the
        rising ridge of model RR), the stationary point does not exist or is not
        estimable, and X0, Y0, p20 (p10 for a valley) are unstable: they are not used.
        The axis is then located by its slope p11 and by the intercept of the ridge line
        itself (the line of maxima across the second axis, ``-(b2 - p11 b1) / (2 l2)``,
        which equals Y0 - p11 X0 whenever the stationary point exists); ``ridge`` is
        True and ``reasons`` says so.

        ``direction="minimum"`` ("the outcome is lowest at congruence", a valley) turns 3
        into a4 > 0 and applies 1 to the second principal axis (p20, p21).

        Parameters
        ----------
        variant : {"strict", "a5"}
        direction : {"maximum", "minimum"}
        alpha : float
            Level of every test (equivalence intervals are (1 - 2 alpha)).
        level : optional
            The surface (a ``by`` level, "within" / "between") for fits with several.
        equivalence : dict, optional
            Smallest effects of interest in the units of the fitted surface: "a3", "a5"
            (as |a| < bound), "p10" (|p10| < bound; also p20) and "p11" (|p11 - 1| <
            bound; also p21). Missing keys take the defaults: a3 = 0.1 SD(outcome) /
            SD(x, y), a5 = 0.1 SD(outcome) / SD(x, y)^2, p10 = 0.25 SD(x, y), p11 = 0.2,
            with the SDs of the analysed rows (x and y stacked, on the fit's scale).
            Set them from substantive knowledge when you can.
        route : {"equivalence", "model comparison"}
            Which route decides ``verdict`` (both are in ``table`` and ``routes``).
        interval : {"bootstrap", "delta"}
            Intervals of the principal axis (p10, p11): the percentile cluster bootstrap
            (default; top-level clusters, or rows for single-level fits) or the delta
            method.
        n_boot : int
            Bootstrap replicates (default 500: enough for 90% percentile intervals; each
            replicate is one refit, so a mixed fit costs about ``n_boot`` times its own
            time).
        rng : None, int or Generator
            Randomness of the bootstrap (SPEC 7): pass a seed for reproducible results.
        bootstrap : RSABootstrap, optional
            A bootstrap already made with :meth:`bootstrap` (then ``n_boot`` and ``rng``
            are not used).
        compare_models : bool
            Whether to evaluate the model-comparison route (fits with one surface only).
        min_weight : float
            AICc weight the congruence models need on the model-comparison route.

        Returns
        -------
        CongruenceTest
            ``table`` (the checklist: one row per condition with route, estimate,
            intervals, bounds, test, requirement, met, outcome, can_show, cannot_show),
            ``criteria`` (the table plus the model-comparison criterion), ``verdict``,
            ``conclusion``, ``routes``, ``bounds``, ``ridge``, ``model_comparison``,
            ``reasons`` and ``details``.

        Raises
        ------
        ValueError
            For a model that is not second order, an unknown option, or
            ``route="model comparison"`` on a fit with several surfaces.

        Notes
        -----
        a5 = b3 - b5 was introduced by Nestler, Humberg & Schönbrodt (2019, Appendix A)
        and Schönbrodt, Humberg & Nestler (2018, Appendix A). With a5 = 0, p11 = 1 and
        the ridge's intercept is a3 / a4 (R RSA's documentation of ``RSA``).

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> from alliancestats import fit_rsa
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame({"x": rng.normal(size=300), "y": rng.normal(size=300)})
        >>> df["z"] = -(df.x - df.y) ** 2 + rng.normal(scale=0.5, size=300)
        >>> test = fit_rsa(df, outcome="z", x="x", y="y").congruence_test(rng=1)
        >>> test.conclusion, list(test.criteria.index)
        ('conditions consistent with congruence', ['p10', 'p11', 'a3', 'a4', 'AICc weight'])
        """
        check_choice(variant, "variant", ("strict", "a5"))
        check_choice(direction, "direction", ("maximum", "minimum"))
        check_choice(route, "route", ("equivalence", "model comparison"))
        check_choice(interval, "interval", ("bootstrap", "delta"))
        if not 0 < alpha < 0.5:
            raise ValueError(f"`alpha` must be between 0 and 0.5; got {alpha!r}.")
        if not 0 < min_weight < 1:
            raise ValueError(f"`min_weight` must be between 0 and 1; got {min_weight!r}.")
        if self._spec.family.order != "quadratic":
            raise ValueError(f"congruence_test() checks the conditions of a second-order "
                             f"surface; model {self.model!r} is not one (fit e.g. 'full').")
        single = len(self._design.levels) == 1
        if route == "model comparison" and not single:
            raise ValueError("route='model comparison' needs a fit with one surface: the "
                             "constrained models apply to every surface of the fit at once. "
                             "Fit the level on its own, or use route='equivalence'.")
        if route == "model comparison" and not compare_models:
            raise ValueError("route='model comparison' needs compare_models=True.")
        li = self._level_index(level)
        lev = self._design.levels[li]
        pick = (lambda t: t) if lev is None else (lambda t: t.xs(lev, level="level"))
        surf = pick(self._surface_table(alpha))
        bounds = equivalence_bounds(equivalence, **self._level_scales(li))
        details = self._congruence_details(surf, li, alpha)
        ridge = bool(not details.loc["D", "met"])
        rows: list[dict[str, Any]] = []
        used = "none"
        if variant == "strict":
            if interval == "bootstrap" and bootstrap is None:
                bootstrap = self.bootstrap(n_boot, rng=rng)
            used = "delta" if interval == "delta" and bootstrap is None else \
                "percentile bootstrap"
            rows += self._axis_rows(direction, alpha, lev, pick, bounds,
                                    bootstrap if used != "delta" else None)
        if variant == "a5":
            rows.append(_equivalence_row(surf, "a5", bounds["a5"], alpha))
        rows.append(_equivalence_row(surf, "a3", bounds["a3"], alpha))
        rows.append(_one_sided(surf, -1 if direction == "maximum" else 1, alpha))
        comparison = pd.DataFrame()
        if compare_models and single:
            comparison = self._congruence_models()
            rows.append(_weight_row(comparison, min_weight))
        criteria = pd.DataFrame(rows).set_index("quantity")
        routes = _route_outcomes(criteria, single and compare_models)
        verdict = bool(routes[route])
        reasons = _congruence_reasons(criteria, details, routes, route, direction, ridge,
                                      used)
        checklist = criteria["route"] != "model comparison"
        return CongruenceTest(criteria[checklist], verdict, variant, direction, lev, used,
                              reasons=tuple(reasons), details=details, route=route,
                              routes=routes, bounds=bounds, ridge=ridge,
                              model_comparison=comparison,
                              model_criterion=criteria[~checklist])

    def _level_scales(self, li: int) -> dict[str, float]:
        """Pooled SD of the analysed x and y (stacked, fit scale) and the outcome's SD,
        for the surface ``li``."""
        d = self._design
        pts = (d.parts[li] if d.parts is not None else d.P)[:, :2]
        z = np.asarray(d.endog, dtype=float)
        if d.has_by:
            pts, z = pts[d.codes == li], z[d.codes == li]
        sd_xy = float(np.std(pts.ravel(), ddof=1))
        sd_z = float(np.std(z, ddof=1))
        if not (sd_xy > 0 and sd_z > 0):
            raise ValueError("The default equivalence bounds need variation in x, y and "
                             "the outcome; pass `equivalence` explicitly.")
        return {"sd_xy": sd_xy, "sd_outcome": sd_z}

    def _axis_rows(self, direction: str, alpha: float, lev: Any,
                   pick: Callable[[pd.DataFrame], pd.DataFrame], bounds: dict[str, float],
                   boot: RSABootstrap | None) -> list[dict[str, Any]]:
        """Condition 1 as equivalence: the intercept of the extremal line of the axis
        (p10 for a ridge, p20 for a valley) within +-bound of 0 and its slope within
        +-bound of 1."""
        k = "1" if direction == "maximum" else "2"
        names = {f"p{k}0": f"p{k}0_line", f"p{k}1": f"p{k}1"}

        def fun(b: np.ndarray) -> dict[str, float]:
            out = axis_lines(b)
            out["p11"], out["p21"] = _axis_slopes(float(b[3]), float(b[4]), float(b[5]))
            return {q: out[src] for q, src in names.items()}

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AllianceStatsWarning)
            wide = pick(self._delta_table(fun, alpha))
            narrow = pick(self._delta_table(fun, 2 * alpha))
        what = "ridge" if k == "1" else "valley"
        if boot is not None:
            boot_wide, boot_narrow = boot.conf_int(alpha), boot.conf_int(2 * alpha)
        rows = []
        for q, null, bound in ((f"p{k}0", 0.0, bounds["p10"]), (f"p{k}1", 1.0, bounds["p11"])):
            w = _values(wide, q, ("estimate", "std_error", "conf_low", "conf_high"))
            est, se, low, high = w["estimate"], w["std_error"], w["conf_low"], w["conf_high"]
            tlow, thigh = (_values(narrow, q)[c] for c in ("conf_low", "conf_high"))
            df = np.inf if self.df_resid is None else float(self.df_resid)
            p = tost_linear(est - null, se, df, bound, alpha)[2]
            test = f"TOST, {100 * (1 - 2 * alpha):g}% CI, delta method"
            if boot is not None:
                col = ("" if lev is None else f"{lev}:") + names[q]
                draws = boot.draws[col].to_numpy(float)
                draws = draws[np.isfinite(draws)]
                wb = _values(boot_wide, col, ("std_error", "conf_low", "conf_high"))
                nb = _values(boot_narrow, col)
                low, high, tlow, thigh = (wb["conf_low"], wb["conf_high"], nb["conf_low"],
                                          nb["conf_high"])
                p = (max(float(np.mean(draws <= null - bound)),
                         float(np.mean(draws >= null + bound))) if len(draws) else np.nan)
                se, df = wb["std_error"], np.nan
                kind = "case" if boot.cluster == "rows" else "cluster"
                test = (f"TOST, {100 * (1 - 2 * alpha):g}% percentile {kind} bootstrap "
                        f"({len(draws)} replicates resampling {boot.cluster})")
            met = tost_interval(tlow, thigh, null, bound)
            label = (f"intercept of the {what} line" if q.endswith("0")
                     else f"slope of principal axis {k}")
            rows.append({
                "quantity": q, "route": "equivalence", "estimate": est,
                "conf_low": low, "conf_high": high, "tost_low": tlow, "tost_high": thigh,
                "bound_low": null - bound, "bound_high": null + bound, "df": df,
                "p_value": p, "test": test,
                "requirement": f"{label} within {null:g} +- {bound:.3g}",
                "met": met, "outcome": "equivalent" if met else "not established",
                "can_show": _SHOWS[q[:2] + q[-1]][0], "cannot_show": _SHOWS[q[:2] + q[-1]][1],
            })
        return rows

    def _congruence_models(self) -> pd.DataFrame:
        """AICc weights of SQD, RR against SSQD, SRR, SRRR, full, refitted on the fit's
        data by ML (the models and likelihoods of :func:`compare_rsa`)."""
        fits = {}
        for m in (*CONGRUENCE_MODELS, *ALTERNATIVE_MODELS):
            spec = replace(self._spec, family=family_model(m), reml=False)
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    est = self._refit(self._design, spec)
            except (ValueError, np.linalg.LinAlgError, ArithmeticError):
                continue  # a model that cannot be fitted drops out, as in R's aictab
            fits[m] = (float(est.llf), len(est.params) + est.n_cov_params, est.nobs)
        return model_weights(fits)

    def _congruence_details(self, surf: pd.DataFrame, li: int, alpha: float
                            ) -> pd.DataFrame:
        """a1, a2, the stationary point's location and D = 4 b3 b5 - b4^2 (described,
        not part of the verdict)."""
        rows = [_two_sided(surf, q, alpha) for q in ("a1", "a2")]
        for row in rows:
            row["requirement"] = "level effect along the line of congruence"
            row["met"] = bool(row["p_value"] < alpha)  # here: "is there a level effect?"
        lev = self._design.levels[li]

        def offset(b: np.ndarray) -> dict[str, float]:
            geo = axes_and_point(b)[0]
            return {"X0": geo["X0"], "Y0": geo["Y0"], "Y0 - X0": geo["Y0"] - geo["X0"],
                    "D": determinant(b)}

        with warnings.catch_warnings():
            warnings.simplefilter("ignore", AllianceStatsWarning)
            point = self._delta_table(offset, alpha)
        if lev is not None:
            point = pd.DataFrame(point.xs(lev, level="level"))
        test = f"{100 * (1 - alpha):g}% CI, delta method"
        inside = self._inside_data(li, _values(point, "X0")["estimate"],
                                   _values(point, "Y0")["estimate"])
        b = self._est.B[li]
        exact = abs(determinant(b)) <= 1e-9 * (b[3] ** 2 + b[4] ** 2 + b[5] ** 2)
        for q, req in (("X0", "inside the observed data"), ("Y0", "inside the observed data"),
                       ("Y0 - X0", "on the line of congruence (CI contains 0)"),
                       ("D", "stationary point established (CI excludes 0)")):
            r = _values(point, q)
            if q == "D":
                met = not exact and not _contains(r["conf_low"], r["conf_high"], 0.0)
            elif q == "Y0 - X0":
                met = _contains(r["conf_low"], r["conf_high"], 0.0)
            else:
                met = inside
            rows.append({"quantity": q, **r, "df": np.nan, "p_value": np.nan,
                         "test": test, "requirement": req,
                         "met": bool(met) if np.isfinite(r["estimate"]) else False})
        return pd.DataFrame(rows).set_index("quantity")

    def _inside_data(self, li: int, x0: float, y0: float) -> bool:
        """Whether (x0, y0) on the fit's centred scale lies in the convex hull of the
        level's analysed (x, y) pairs."""
        if not (np.isfinite(x0) and np.isfinite(y0)):
            return False
        d = self._design
        pts = (d.parts[li] if d.parts is not None else d.P)[:, :2]
        if d.has_by:
            pts = pts[d.codes == li]
        try:
            hull = ConvexHull(np.unique(pts, axis=0))
        except (QhullError, ValueError):  # degenerate data: no area
            return False
        scale = float(np.abs(pts).max()) or 1.0
        return bool(np.all(hull.equations @ np.array([x0, y0, 1.0]) <= 1e-12 * scale))

    def congruence_table(self, *, variant: str = "strict", direction: str = "maximum",
                         alpha: float = 0.05, **kwargs: Any) -> pd.DataFrame:
        """:meth:`congruence_test` for every surface of the fit in one table.

        One row per surface (the ``by`` levels, "within"/"between" with
        ``decompose="unit"``, or the single surface) and criterion: the columns of
        :attr:`CongruenceTest.table`, the surface's ``verdict`` (bool) and
        ``conclusion`` (in words). ``kwargs`` go to :meth:`congruence_test`
        (``equivalence``, ``interval``, ``n_boot``, ``rng``, ...); one bootstrap serves
        every surface.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> from alliancestats import fit_rsa
        >>> rng = np.random.default_rng(0)
        >>> df = pd.DataFrame({"x": rng.normal(size=300), "y": rng.normal(size=300),
        ...                    "g": np.repeat(["a", "b"], 150)})
        >>> df["z"] = -(df.x - df.y) ** 2 + rng.normal(scale=0.5, size=300)
        >>> res = fit_rsa(df, outcome="z", x="x", y="y", by="g")
        >>> table = res.congruence_table(variant="a5")
        >>> table.groupby("surface")["conclusion"].first().tolist()
        ['conditions consistent with congruence', 'conditions consistent with congruence']
        """
        if (variant == "strict" and kwargs.get("interval", "bootstrap") == "bootstrap"
                and kwargs.get("bootstrap") is None):
            kwargs["bootstrap"] = self.bootstrap(int(kwargs.pop("n_boot", 500)),
                                                 rng=kwargs.pop("rng", None))
        frames = []
        for lev in self._design.levels:
            test = self.congruence_test(variant=variant, direction=direction, alpha=alpha,
                                        level=lev, **kwargs)
            frame = test.criteria.reset_index()
            frame.insert(0, "surface", "all" if lev is None else lev)
            frame["verdict"] = test.verdict
            frame["conclusion"] = test.conclusion
            frames.append(frame)
        return pd.concat(frames, ignore_index=True)

    # -- principal-axis curvatures -------------------------------------------------------
    def _curvature_table(self, alpha: float) -> pd.DataFrame:
        if self._spec.family.order != "quadratic":
            raise ValueError(f"Principal-axis curvatures need a second-order surface; "
                             f"model {self.model!r} is not one.")
        return self._delta_table(curvatures, alpha)

    @property
    def principal_curvatures(self) -> pd.DataFrame:
        """Curvatures along the principal axes and the eigenvalues of the quadratic form,
        with delta-method SE and CI (R RSA's ``PA1.curv``, ``PA2.curv``, ``l1``, ``l2``).

        ``PA1.curv = b3 + b4 p11 + b5 p11^2`` is the second-order coefficient of the
        surface along the first principal axis per unit of X; it equals
        ``l1 (1 + p11^2)`` with ``l1 >= l2`` the eigenvalues of ``[[b3, b4/2],
        [b4/2, b5]]`` (the curvatures per unit of distance along the axes). A ridge has
        l2 < 0 and l1 near 0, a rising ridge l1 = 0 exactly. Use :meth:`curvature_table`
        with a :meth:`bootstrap` for percentile intervals.

        Examples
        --------
        >>> import numpy as np, pandas as pd
        >>> from alliancestats import fit_rsa
        >>> rng = np.random.default_rng(3)
        >>> df = pd.DataFrame({"x": rng.normal(size=200), "y": rng.normal(size=200)})
        >>> df["z"] = -(df.x - df.y) ** 2 + rng.normal(scale=0.3, size=200)
        >>> curv = fit_rsa(df, outcome="z", x="x", y="y").principal_curvatures
        >>> bool(abs(curv.loc["l2", "estimate"] + 2) < 0.1)
        True
        """
        return self._curvature_table(0.05)

    def curvature_table(self, alpha: float = 0.05,
                        bootstrap: RSABootstrap | None = None) -> pd.DataFrame:
        """:attr:`principal_curvatures` at level ``1 - alpha``; with ``bootstrap`` (from
        :meth:`bootstrap`) the SE is the bootstrap SD and the interval the percentile
        one."""
        table = self._curvature_table(alpha)
        if bootstrap is None:
            return table
        ci = bootstrap.conf_int(alpha)
        for idx in table.index:
            col = idx if not isinstance(idx, tuple) else f"{idx[0]}:{idx[1]}"
            table.loc[idx, ["std_error", "conf_low", "conf_high"]] = ci.loc[
                col, ["std_error", "conf_low", "conf_high"]].to_numpy(float)
        return table

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
        return self._b_combination(weights)

    @property
    def surface_equality(self) -> pd.Series:
        """Joint test that b1..b5 (equivalently a1..a5) are equal in all levels: F with
        ``df_resid`` for OLS; for mixed models F with Satterthwaite (Fai–Cornelius) or
        Kenward–Roger denominator df (lmerTest ``contestMD``), chi-square under
        ``ddf="z"`` (statistic, df, df_denom, p_value)."""
        eye = np.eye(len(COEF_NAMES))[self._coef_pos[1:]]
        weights = self._difference_weights(eye, self._coef_names[1:])
        return self.wald_test(weights @ self._J)

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
            ref = "z" if self.df_resid is None else f"t({self.df_resid:g})"
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", AllianceStatsWarning)
                tables.append((f"Stationary point (delta method, {ref})",
                               self._point_table(alpha)))
                tables.append((f"Principal axes (delta method, {ref})",
                               self._axes_table(alpha)))
                tables.append((f"Principal-axis curvatures and eigenvalues (delta "
                               f"method, {ref})", self._curvature_table(alpha)))
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


_INTERVAL = ("estimate", "conf_low", "conf_high")


def _values(table: pd.DataFrame, name: str,
            columns: Sequence[str] = _INTERVAL) -> dict[str, float]:
    """The numbers of row ``name`` of a table as floats."""
    values = table.loc[[name], list(columns)].to_numpy(dtype=float)[0]
    return dict(zip(columns, values.tolist(), strict=True))


#: What each criterion can and cannot show (the verdict table's last columns).
_SHOWS = {
    "p10": ("the ridge line runs within the bound of the origin's line of congruence",
            "anything about shifts smaller than the bound; failing it means 'not "
            "established', not 'shifted'"),
    "p20": ("the valley line runs within the bound of the line of congruence",
            "anything about shifts smaller than the bound; failing it means 'not "
            "established', not 'shifted'"),
    "p11": ("the axis is parallel to the line of congruence within the bound",
            "rotations smaller than the bound; failing it means 'not established'"),
    "p21": ("the axis is parallel to the line of congruence within the bound",
            "rotations smaller than the bound; failing it means 'not established'"),
    "a3": ("no slope along the line of incongruence at the origin larger than the bound",
           "slopes smaller than the bound; the slope away from the origin (see p10)"),
    "a5": ("the curvature is symmetric within the bound (axes parallel to the lines of "
           "(in)congruence)",
           "asymmetries smaller than the bound; where the ridge lies (with a3)"),
    "a4": ("the surface curves across the line of congruence in the predicted direction "
           "at the origin",
           "where the ridge lies: a4 alone is no congruence effect (Humberg et al. 2019, "
           "fallacy 1)"),
    "AICc weight": ("the congruence models fit about as well as the shifted, rotated and "
                    "full models after the AICc penalty",
                    "strong evidence: a superfluous parameter costs at most 2 AICc units "
                    "(evidence ratio 2.7); not a test of the sign of a4"),
}


def _two_sided(surf: pd.DataFrame, name: str, alpha: float) -> dict[str, Any]:
    """Whether ``name`` is significant (two-sided), for the descriptive details."""
    r = _values(surf, name, (*_INTERVAL, "df", "p_value"))
    return {"quantity": name, **r, "test": f"two-sided {'z' if np.isinf(r['df']) else 't'}",
            "requirement": f"significant at {alpha:g}", "met": bool(r["p_value"] < alpha)}


def _equivalence_row(surf: pd.DataFrame, name: str, bound: float, alpha: float
                     ) -> dict[str, Any]:
    """Equivalence of a linear surface parameter with 0: TOST with the fit's df."""
    r = _values(surf, name, (*_INTERVAL, "df", "std_error"))
    se = r.pop("std_error")
    low, high, p = tost_linear(r["estimate"], se, r["df"], bound, alpha)
    met = tost_interval(low, high, 0.0, bound)
    kind = "z" if np.isinf(r["df"]) else "t"
    return {"quantity": name, "route": "equivalence", **r, "tost_low": low,
            "tost_high": high, "bound_low": -bound, "bound_high": bound, "p_value": p,
            "test": f"TOST ({kind}), {100 * (1 - 2 * alpha):g}% CI",
            "requirement": f"|{name}| < {bound:.3g} (equivalence at {alpha:g})",
            "met": met, "outcome": "equivalent" if met else "not established",
            "can_show": _SHOWS[name][0], "cannot_show": _SHOWS[name][1]}


def _one_sided(surf: pd.DataFrame, sign: int, alpha: float) -> dict[str, Any]:
    """a4 with the sign the hypothesis predicts: one-sided test at ``alpha`` (p from the
    t (or z) distribution in the predicted direction)."""
    r = _values(surf, "a4", (*_INTERVAL, "df", "std_error"))
    se = r.pop("std_error")
    t = r["estimate"] / se if se > 0 else np.nan
    p = float(stats.t.sf(sign * t, r["df"])) if np.isfinite(t) else np.nan
    met = bool(np.isfinite(p) and p < alpha)
    return {"quantity": "a4", "route": "significance", **r, "tost_low": np.nan,
            "tost_high": np.nan, "bound_low": np.nan, "bound_high": np.nan, "p_value": p,
            "test": f"one-sided {'z' if np.isinf(r['df']) else 't'}",
            "requirement": f"significant, {'< 0' if sign < 0 else '> 0'} (one-sided, "
                           f"alpha = {alpha:g})",
            "met": met, "outcome": "significant" if met else "not significant",
            "can_show": _SHOWS["a4"][0], "cannot_show": _SHOWS["a4"][1]}


def _weight_row(comparison: pd.DataFrame, min_weight: float) -> dict[str, Any]:
    """The summed AICc weight of the congruence models as a criterion."""
    weight = float(comparison.loc[comparison["congruent"], "weight"].sum()) \
        if len(comparison) else np.nan
    fitted = ", ".join(comparison["model"]) if len(comparison) else "none"
    met = bool(np.isfinite(weight) and weight >= min_weight)
    return {"quantity": "AICc weight", "route": "model comparison", "estimate": weight,
            "conf_low": np.nan, "conf_high": np.nan, "tost_low": np.nan,
            "tost_high": np.nan, "bound_low": min_weight, "bound_high": 1.0, "df": np.nan,
            "p_value": np.nan,
            "test": f"AICc weights (Schönbrodt, Humberg & Nestler 2018) of {fitted}",
            "requirement": f"SQD + RR carry >= {min_weight:g} of the weight",
            "met": met, "outcome": "congruence models preferred" if met else
            "not preferred", "can_show": _SHOWS["AICc weight"][0],
            "cannot_show": _SHOWS["AICc weight"][1]}


def _route_outcomes(table: pd.DataFrame, with_models: bool) -> dict[str, bool | None]:
    """Each route's outcome: equivalence (every equivalence criterion and a4) and model
    comparison (the AICc weight and a4)."""
    met = table["met"].astype(bool)
    a4 = bool(met["a4"])
    eq = bool(met[table["route"] == "equivalence"].all()) and a4
    models = bool(met["AICc weight"]) and a4 if with_models else None
    return {"equivalence": eq, "model comparison": models}


def _congruence_reasons(table: pd.DataFrame, details: pd.DataFrame,
                        routes: dict[str, bool | None], route: str, direction: str,
                        ridge: bool, interval: str) -> list[str]:
    """One sentence per criterion, the verdict, the ridge case and the details."""
    out = []
    for q, r in table.iterrows():
        if r.route == "model comparison":
            out.append(f"AICc weight of SQD + RR = {r.estimate:.3g} ({r.test}): "
                       f"{r.requirement} -> {'met' if r.met else 'NOT met'} "
                       f"({r.outcome}).")
            continue
        if r.route == "equivalence":
            what = (f"TOST interval [{r.tost_low:.3g}, {r.tost_high:.3g}]"
                    f" vs bounds ({r.bound_low:.3g}, {r.bound_high:.3g})")
        else:
            what = f"p = {r.p_value:.3g}"
        out.append(f"{q} = {r.estimate:.3g} ({what}; {r.test}): {r.requirement} -> "
                   f"{'met' if r.met else 'NOT met'} ({r.outcome}; {r.can_show}).")
    for name, outcome in routes.items():
        if outcome is None:
            continue
        words = "conditions consistent with congruence" if outcome else \
            "congruence not established"
        mark = " (decides the verdict)" if name == route else ""
        out.append(f"Verdict, {name} route{mark}: {words}.")
    out.append("'Not established' is not evidence against congruence; non-significant "
               "null conditions are never counted as met (Humberg, Nestler & Back 2019 "
               "checklist, with equivalence tests).")
    if ridge:
        other = "p20" if direction == "maximum" else "p10"
        d = _values(details, "D")
        out.append(f"Ridge / no stationary point: D = 4 b3 b5 - b4^2 = "
                   f"{d['estimate']:.3g} is indistinguishable from 0 (CI "
                   f"[{d['conf_low']:.3g}, {d['conf_high']:.3g}"
                   f"]): the surface is (close to) a ridge or valley line, possibly rising, "
                   f"without an estimable stationary point. X0, Y0 and {other} are not "
                   f"used; the axis is located by its slope and the intercept of the "
                   f"ridge line itself (-(b2 - p11 b1) / (2 l2)), which needs no "
                   f"stationary point.")
    level = details.loc[["a1", "a2"], "met"]
    if level.any():
        sig = ", ".join(str(q) for q in level.index[level])
        out.append(f"Level effect along the line of congruence ({sig} significant): the "
                   f"outcome at agreement also depends on the level of x and y.")
    else:
        out.append("No level effect along the line of congruence shown (a1, a2 not "
                   "significant; not evidence of none).")
    x0, y0 = _values(details, "X0")["estimate"], _values(details, "Y0")["estimate"]
    if not ridge and np.isfinite(x0) and np.isfinite(y0):
        where = "inside" if details.loc["X0", "met"] else "outside"
        out.append(f"Stationary point (X0, Y0) = ({x0:.3g}, {y0:.3g}) on the centred scale, "
                   f"{where} the observed data.")
    return out


def _contains(low: float, high: float, value: float) -> bool:
    """Whether [low, high] contains ``value`` up to floating-point noise."""
    if not (np.isfinite(low) and np.isfinite(high)):
        return False
    tol = 1e-9 * max(1.0, abs(value), abs(low), abs(high))
    return bool(low - tol <= value <= high + tol)
