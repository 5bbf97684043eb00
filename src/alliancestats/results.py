"""Shared results base and the printable :class:`Summary`.

Every model function returns an immutable subclass of :class:`ModelResults`. The base
holds the fixed effects and their covariance and derives everything inferential from them
(standard errors, Wald statistics, p-values, confidence intervals, linear contrasts), so
the model modules only add their domain quantities (surface parameters, truth force, ...).

Inference for mixed models uses t tests with small-sample degrees of freedom per estimate
(``ddf="satterthwaite"``, the default, as lmerTest; ``"kenward-roger"``, as pbkrtest, with
the adjusted covariance) or Wald z (``ddf="z"``: lme4's ``summary`` prints the same ratios
as "t value" with no df and no p-value; ``"z"`` refers them to the normal distribution);
single-level least squares uses t with ``df_resid``. Every linear quantity derived from the
fixed effects (contrasts, effects at moderator values, growth rates) gets its own df, and
joint tests are F tests with a denominator df (lmerTest's ``contest1D``/``contestMD``). The
summary names the method.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ._format import format_table
from ._mixed import DDF_CHOICES, MixedFit

__all__ = ["EFFECT_COLUMNS", "FitRecord", "ModelComparison", "ModelResults",
           "ResidualComparison", "Summary", "SummaryMixin", "check_ddf", "compare_models",
           "compare_residuals", "linear_combination"]

#: Columns of every table of derived effects (a1..a5, truth force, growth rates, ...);
#: ``df`` is ``inf`` for z inference.
EFFECT_COLUMNS = ["estimate", "std_error", "df", "statistic", "p_value", "conf_low",
                  "conf_high"]

#: How the summary names each inference method.
_METHOD_LABELS = {
    "satterthwaite": "t tests, Satterthwaite df",
    "kenward-roger": "t tests, Kenward-Roger df and adjusted SEs",
    "z": "Wald z tests",
    "residual": "t tests",
}
_METHOD_NOTES = {
    "satterthwaite": "Satterthwaite degrees of freedom (as lmerTest): each estimate and "
                     "each derived effect is tested against t with its own df; joint tests "
                     "are F tests with Fai-Cornelius denominator df.",
    "kenward-roger": "Kenward-Roger degrees of freedom and adjusted covariance (as "
                     "pbkrtest): SEs, t tests and intervals use the adjusted covariance; "
                     "joint tests are scaled F tests.",
    "z": "Wald z tests and intervals (no small-sample df correction; lme4's summary "
         "prints these ratios as t values without p-values).",
}


def _format_table(table: pd.DataFrame, digits: int) -> pd.DataFrame:
    """Round floats for display; p-values as ``0.012`` or ``< 0.001`` (one rule, as the
    report prints them)."""
    return format_table(table, digits)


def _latex_escape(text: str) -> str:
    for char, repl in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"),
                       ("$", r"\$"), ("#", r"\#"), ("_", r"\_"), ("{", r"\{"), ("}", r"\}")):
        text = text.replace(char, repl)
    return text


class Summary:
    """A printable model summary in lme4's order, as text, HTML or LaTeX.

    Parameters
    ----------
    title : str
        First line, e.g. "Linear mixed model fit by REML (truth-and-bias)".
    header : sequence of (label, value)
        Formula, roles, fit statistics, sizes: one "label: value" line each.
    tables : sequence of (caption, DataFrame)
        Printed in order (variance components, fixed effects, derived effects, ...).
    warnings : sequence of str
        Fit warnings, printed at the end as lme4 does.
    notes : sequence of str
        Further remarks (inference method, engine, centring).
    digits : int
        Decimals for floats.

    Examples
    --------
    >>> import pandas as pd
    >>> fixed = pd.DataFrame({"estimate": [1.0]}, index=["x"])
    >>> s = Summary("Demo", [("Formula", "y ~ x")], [("Fixed effects", fixed)])
    >>> "Fixed effects" in str(s)
    True
    """

    def __init__(
        self,
        title: str,
        header: Sequence[tuple[str, str]],
        tables: Sequence[tuple[str, pd.DataFrame]],
        warnings: Sequence[str] = (),
        notes: Sequence[str] = (),
        digits: int = 4,
    ) -> None:
        self.title = title
        self.header = list(header)
        self.tables = [(caption, table.copy()) for caption, table in tables]
        self.warnings = list(warnings)
        self.notes = list(notes)
        self.digits = digits

    def as_text(self) -> str:
        """The summary as plain text."""
        width = max([len(self.title), 60])
        lines = [self.title, "=" * width]
        pad = max((len(label) for label, _ in self.header), default=0)
        lines += [f"{label:<{pad}} : {value}" for label, value in self.header]
        for caption, table in self.tables:
            lines += ["", caption, "-" * len(caption)]
            lines.append(_format_table(table, self.digits).to_string())
        if self.notes:
            lines += ["", *(f"Note: {note}" for note in self.notes)]
        if self.warnings:
            lines += ["", "Warnings:", *(f"  - {w}" for w in self.warnings)]
        return "\n".join(lines)

    def as_html(self) -> str:
        """The summary as an HTML fragment (what Jupyter shows)."""
        parts = [f"<div class='alliancestats-summary'><h4>{html.escape(self.title)}</h4>"]
        if self.header:
            rows = "".join(
                f"<tr><th style='text-align:left'>{html.escape(label)}</th>"
                f"<td style='text-align:left'>{html.escape(str(value))}</td></tr>"
                for label, value in self.header
            )
            parts.append(f"<table>{rows}</table>")
        for caption, table in self.tables:
            parts.append(f"<h5>{html.escape(caption)}</h5>")
            parts.append(_format_table(table, self.digits).to_html(border=0, na_rep=""))
        if self.notes:
            parts.append("<p>" + "<br>".join(html.escape(n) for n in self.notes) + "</p>")
        if self.warnings:
            items = "".join(f"<li>{html.escape(w)}</li>" for w in self.warnings)
            parts.append(f"<p><b>Warnings</b></p><ul style='color:#a33'>{items}</ul>")
        parts.append("</div>")
        return "".join(parts)

    def _repr_html_(self) -> str:
        return self.as_html()

    def as_latex(self) -> str:
        """The summary's tables as LaTeX ``tabular`` environments (booktabs rules)."""
        out = [f"% {_latex_escape(self.title)}"]
        for label, value in self.header:
            out.append(f"% {label}: {value}")
        for caption, table in self.tables:
            shown = _format_table(table, self.digits)
            cols = "l" + "r" * shown.shape[1]
            head = " & ".join(["", *(_latex_escape(str(c)) for c in shown.columns)])
            body = [
                " & ".join([_latex_escape(str(idx)), *(_latex_escape(str(v)) for v in row)])
                + r" \\"
                for idx, row in zip(shown.index, shown.to_numpy(), strict=True)
            ]
            out += [
                r"\begin{table}[ht]", r"\centering", f"\\caption{{{_latex_escape(caption)}}}",
                f"\\begin{{tabular}}{{{cols}}}", r"\toprule", head + r" \\", r"\midrule",
                *body, r"\bottomrule", r"\end{tabular}", r"\end{table}",
            ]
        return "\n".join(out)

    def __str__(self) -> str:
        return self.as_text()

    def __repr__(self) -> str:
        return self.as_text()


def linear_combination(
    params: pd.Series,
    cov: pd.DataFrame,
    weights: pd.DataFrame,
    *,
    alpha: float = 0.05,
    df: float | np.ndarray[Any, Any] | None = None,
) -> pd.DataFrame:
    """Estimate, SE, Wald test and CI of linear combinations ``weights @ params``.

    This is the exact contrast (statsmodels ``t_test(L)``): Var(Lb) = L V L'.

    Parameters
    ----------
    params : Series
        Coefficients, indexed by name.
    cov : DataFrame
        Their covariance, indexed and labelled like ``params``.
    weights : DataFrame
        One row per combination, columns a subset of ``params.index`` (missing -> 0).
    alpha : float
        1 - confidence level.
    df : float, array_like or None
        Degrees of freedom of the t reference: one value for all rows (e.g. residual df),
        one per row (e.g. Satterthwaite df from :meth:`ModelResults.contrast_df`), or
        None (or ``inf``) for z.

    Returns
    -------
    DataFrame
        Indexed like ``weights``, columns :data:`EFFECT_COLUMNS` (``df`` is ``inf`` for z).

    Examples
    --------
    >>> import pandas as pd
    >>> b = pd.Series([1.0, 2.0], index=["x", "y"])
    >>> V = pd.DataFrame([[1.0, 0.0], [0.0, 4.0]], index=b.index, columns=b.index)
    >>> L = pd.DataFrame({"x": [1.0], "y": [1.0]}, index=["x+y"])
    >>> linear_combination(b, V, L)["std_error"].round(4).tolist()
    [2.2361]
    """
    unknown = [c for c in weights.columns if c not in params.index]
    if unknown:
        raise ValueError(f"Contrast weights name unknown coefficients: {unknown}.")
    L = weights.reindex(columns=params.index, fill_value=0.0).to_numpy(dtype=float)
    V = cov.loc[params.index, params.index].to_numpy(dtype=float)
    est = L @ params.to_numpy(dtype=float)
    var = np.einsum("ij,jk,ik->i", L, V, L)
    se = np.sqrt(np.clip(var, 0.0, None))
    with np.errstate(divide="ignore", invalid="ignore"):
        stat = est / se
    dfs = np.broadcast_to(np.inf if df is None else np.asarray(df, dtype=float),
                          est.shape).astype(float)
    crit = stats.t.ppf(1 - alpha / 2, dfs)
    return pd.DataFrame(
        {
            "estimate": est,
            "std_error": se,
            "df": dfs,
            "statistic": stat,
            "p_value": 2 * stats.t.sf(np.abs(stat), dfs),
            "conf_low": est - crit * se,
            "conf_high": est + crit * se,
        },
        index=weights.index,
    )


@dataclass(frozen=True)
class FitRecord:
    """What a results object holds: the estimates and the facts of one fit, from any
    estimator (the mixed-model layer, OLS).

    Attributes
    ----------
    params : Series
        Fixed effects (coefficients), indexed by name.
    cov_params : DataFrame
        Their covariance.
    nobs : int
    llf : float
        Log-likelihood (REML fits: the REML log-likelihood, lme4's ``logLik`` scale).
    method : {"REML", "ML", "OLS"}
    n_cov_params : int
        Covariance parameters including the residual variance (AIC/BIC degrees of freedom).
    df_resid : float or None
        Residual degrees of freedom of t inference (least squares); None for z.
    n_groups, variance_components, converged, is_singular, warnings, engine, raw,
    optimizer_info, random_effects, notes
        As on :class:`ModelResults` (``variance_components`` None: those of ``mixed``,
        built on first use).
    mixed : MixedFit or None
        The mixed-model fit itself (what small-sample inference needs), or None.
    ddf : {"satterthwaite", "kenward-roger", "z"}
        Degrees-of-freedom method of a mixed-model fit (ignored when ``df_resid`` is set).
    """

    params: pd.Series
    cov_params: pd.DataFrame
    nobs: int
    llf: float
    method: str
    n_cov_params: int
    df_resid: float | None = None
    n_groups: Mapping[str, int] = field(default_factory=dict)
    variance_components: pd.DataFrame | None = None
    converged: bool = True
    is_singular: bool = False
    warnings: tuple[str, ...] = ()
    engine: str = "ols"
    raw: Any = None
    optimizer_info: Mapping[str, Any] = field(default_factory=dict)
    random_effects: Mapping[str, pd.DataFrame] = field(default_factory=dict)
    notes: tuple[str, ...] = ()
    mixed: MixedFit | None = None
    ddf: str = "z"

    @classmethod
    def from_mixed(cls, fit: MixedFit, ddf: str = "satterthwaite") -> FitRecord:
        """The record of a mixed-model fit, with its degrees-of-freedom method ``ddf``
        (one of :data:`~alliancestats._mixed.DDF_CHOICES`; ``"kenward-roger"`` needs a
        REML fit)."""
        check_ddf(ddf, fit.reml)
        return cls(
            params=fit.fe_params, cov_params=fit.cov_fe, nobs=fit.nobs, llf=fit.llf,
            method=fit.method, n_cov_params=fit.n_cov_params, n_groups=fit.n_groups,
            converged=fit.converged,
            is_singular=fit.is_singular, warnings=fit.warnings, engine=fit.engine,
            raw=fit.raw, optimizer_info=fit.optimizer_info,
            random_effects=fit.random_effects, notes=fit.notes, mixed=fit, ddf=ddf,
        )

    def restricted(self, names: Sequence[str], **changes: Any) -> FitRecord:
        """The record with coefficients limited to ``names`` (and other fields changed)."""
        index = list(names)
        return replace(self, params=self.params.loc[index],
                       cov_params=self.cov_params.loc[index, index], **changes)


def check_ddf(ddf: Any, reml: bool = True, residual: str = "iid") -> str:
    """Validate a ``ddf=`` argument (and that Kenward–Roger comes with REML and iid
    residuals).

    Examples
    --------
    >>> check_ddf("satterthwaite")
    'satterthwaite'
    """
    if not isinstance(ddf, str) or ddf not in DDF_CHOICES:
        raise ValueError(f"`ddf` must be one of {DDF_CHOICES}; got {ddf!r}.")
    if ddf == "kenward-roger" and not reml:
        raise ValueError("`ddf='kenward-roger'` needs a REML fit (reml=True), as pbkrtest; "
                         "use ddf='satterthwaite' for ML fits.")
    if ddf == "kenward-roger" and residual != "iid":
        raise ValueError(f"`ddf='kenward-roger'` is implemented for iid residuals only; use "
                         f"ddf='satterthwaite' with residual={residual!r}.")
    return ddf


class SummaryMixin:
    """``_repr_html_``, ``__str__`` (and a default ``__repr__``) from ``summary()``: what
    every results class shows in a notebook and prints."""

    def summary(self) -> Summary:  # pragma: no cover - every subclass defines it
        raise NotImplementedError

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def __str__(self) -> str:
        return self.summary().as_text()


class ModelResults(SummaryMixin):
    """Immutable base of all fitted-model results: holds one :class:`FitRecord`.

    Subclasses call ``super().__init__(fit, ...)`` and may override
    :meth:`_summary_tables` / :meth:`_derived_frame` to add their own tables. All pandas
    objects are copied on the way out, so a user cannot change a result after the fact.

    Parameters
    ----------
    fit : FitRecord
        The estimates (see :meth:`FitRecord.from_mixed`).
    formula : str
        The model in R-like notation.
    roles, centering, dropped_rows : dict, optional
        Which column played which role; centring constants; missing values per column
        among dropped rows.
    notes : sequence of str
        Remarks for the summary (added to the fit's own).

    Attributes
    ----------
    params, bse, pvalues, tvalues : Series
        Fixed effects, standard errors, two-sided p-values and Wald statistics.
    llf : float
        Log-likelihood (REML fits: the REML log-likelihood, lme4's ``logLik`` scale).
    aic, bic : float
        Information criteria with k = fixed effects + covariance parameters + residual.
    nobs : int
    n_groups : dict
        Number of units per grouping level (empty for single-level fits).
    variance_components : DataFrame
        Columns level, term, variance, sd, corr (lme4's ``VarCorr``).
    converged, is_singular : bool
    warnings : list of str
    method : {"REML", "ML", "OLS"}
    roles, centering : dict
    engine : str
        Which estimation engine ran ("fast", "statsmodels", "ols").
    mixedlm : statsmodels result or None
    """

    _model_name = "Linear mixed model"

    def __init__(
        self,
        fit: FitRecord,
        *,
        formula: str = "",
        roles: Mapping[str, Any] | None = None,
        centering: Mapping[str, Any] | None = None,
        dropped_rows: Mapping[str, int] | None = None,
        notes: Sequence[str] = (),
    ) -> None:
        if not isinstance(fit, FitRecord):
            raise TypeError(f"`fit` must be a FitRecord; got {type(fit).__name__}.")
        params = fit.params.astype(float)
        cov = fit.cov_params
        if not (cov.index.equals(params.index) and cov.columns.equals(params.index)):
            cov = cov.loc[params.index, params.index]
        self._fit = replace(fit, params=params, cov_params=cov.astype(float),
                            notes=(*fit.notes, *notes))
        self._formula = formula
        self._roles = dict(roles or {})
        self._centering = dict(centering or {})
        self._dropped_rows = dict(dropped_rows or {})
        # derived quantities, computed on first use (the result is immutable); only
        # copies leave the object
        self._cache: dict[Any, Any] = {}
        self._frozen = True

    def _cached(self, key: Any, compute: Any) -> Any:
        """``compute()``, once per ``key``."""
        if key not in self._cache:
            self._cache[key] = compute()
        return self._cache[key]

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError(f"{type(self).__name__} is immutable; refit to change it.")
        super().__setattr__(name, value)

    def _vc_table(self) -> pd.DataFrame:
        vc = self._fit.variance_components
        if vc is None and self._fit.mixed is not None:
            vc = self._fit.mixed.variance_components  # built on first use
        if vc is None:
            return pd.DataFrame(columns=["level", "term", "variance", "sd", "corr"])
        return vc.copy()

    # -- fixed effects and inference -------------------------------------------------
    @property
    def params(self) -> pd.Series:
        """Fixed-effect estimates."""
        return self._fit.params.copy()

    def cov_params(self) -> pd.DataFrame:
        """Covariance of the fixed effects (lme4's ``vcov``: sigma^2 (X'V^-1X)^-1)."""
        return self._fit.cov_params.copy()

    @property
    def ddf(self) -> str:
        """Degrees-of-freedom method: "satterthwaite", "kenward-roger", "z" (mixed
        models) or "residual" (least squares, t with ``df_resid``)."""
        if self._fit.df_resid is not None:
            return "residual"
        if self._fit.mixed is None or self._fit.mixed.ddf_source is None:
            return "z"
        return self._fit.ddf

    def _full_weights(self, weights: pd.DataFrame) -> np.ndarray[Any, Any]:
        """Contrast weights over all fixed effects of the mixed fit (a record may hold a
        subset of them)."""
        assert self._fit.mixed is not None
        unknown = [c for c in weights.columns if c not in self._fit.params.index]
        if unknown:
            raise ValueError(f"Contrast weights name unknown coefficients: {unknown}.")
        full = self._fit.mixed.fe_params.index
        return weights.reindex(columns=full, fill_value=0.0).to_numpy(dtype=float)

    def contrast_df(self, weights: pd.DataFrame) -> np.ndarray[Any, np.dtype[np.float64]]:
        """Degrees of freedom of each linear combination in ``weights`` (one row each,
        columns named after coefficients): Satterthwaite or Kenward–Roger per row (lmerTest
        ``contest1D``), ``inf`` for z, ``df_resid`` for least squares.

        Use it to test quantities computed from the coefficients outside this class:
        pass the row's gradient with respect to :attr:`params` as weights.

        Examples
        --------
        >>> from alliancestats import fit_truth_bias, simulate_prn
        >>> res = fit_truth_bias(simulate_prn(20, 60, rng=1), judgment="alliance_therapist",
        ...                      truth="alliance_patient", groups=["therapist", "patient"],
        ...                      moderators="condition")
        >>> w = pd.DataFrame({"condition": [1.0]})
        >>> bool(res.contrast_df(w)[0] < 40)
        True
        """
        method = self.ddf
        n = len(weights)
        if method == "residual":
            return np.full(n, float(self._fit.df_resid or np.inf))
        if method == "z":
            return np.full(n, np.inf)
        L = self._full_weights(weights)
        source = self._fit.mixed.ddf_source if self._fit.mixed is not None else None
        assert source is not None
        if method == "kenward-roger":
            return source.kenward_roger().df(L)
        return source.satterthwaite().df(L)

    def _inference_cov(self) -> pd.DataFrame:
        """The covariance used for inference: Kenward–Roger's adjusted one under
        ``ddf="kenward-roger"``, else the fit's."""
        if self.ddf != "kenward-roger":
            return self._fit.cov_params
        assert self._fit.mixed is not None
        assert self._fit.mixed.ddf_source is not None
        full = self._fit.mixed.fe_params.index
        adj = pd.DataFrame(self._fit.mixed.ddf_source.kenward_roger().cov_adjusted,
                           index=full, columns=full)
        names = self._fit.params.index
        return adj.loc[names, names]

    def _ddf_messages(self) -> list[str]:
        source = self._fit.mixed.ddf_source if self._fit.mixed is not None else None
        if self.ddf != "satterthwaite" or source is None:
            return []
        return list(source.satterthwaite().messages)

    @property
    def bse(self) -> pd.Series:
        """Standard errors of the fixed effects (Kenward–Roger: from the adjusted
        covariance)."""
        values = self._cached("bse", lambda: np.sqrt(np.diag(self._inference_cov())))
        return pd.Series(values.copy(), index=self._fit.params.index)

    @property
    def tvalues(self) -> pd.Series:
        """Wald statistics (t for small-sample df and least squares, z otherwise)."""
        return self._fit.params / self.bse

    @property
    def df(self) -> pd.Series:
        """Degrees of freedom of each coefficient's test (``inf`` for z)."""
        names = self._fit.params.index

        def compute() -> np.ndarray[Any, Any]:
            eye = pd.DataFrame(np.eye(len(names)), index=names, columns=names)
            return self.contrast_df(eye)

        return pd.Series(self._cached("df", compute).copy(), index=names)

    @property
    def inference(self) -> str:
        """"z" (normal reference) or "t" (with small-sample or residual df)."""
        return "z" if self.ddf == "z" else "t"

    @property
    def df_resid(self) -> float | None:
        """Residual degrees of freedom of least-squares t inference, None for mixed
        models (their df are per estimate: :attr:`df`)."""
        return self._fit.df_resid

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values of the t (or z) tests."""
        return pd.Series(2 * stats.t.sf(np.abs(self.tvalues), self.df),
                         index=self._fit.params.index)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Confidence intervals (t with each coefficient's df, or z), columns
        ``conf_low`` and ``conf_high``."""
        if not 0 < alpha < 1:
            raise ValueError(f"`alpha` must be between 0 and 1; got {alpha!r}.")
        crit = stats.t.ppf(1 - alpha / 2, self.df)
        se = self.bse
        return pd.DataFrame(
            {"conf_low": self._fit.params - crit * se, "conf_high": self._fit.params + crit * se}
        )

    def contrast(self, weights: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
        """Linear combinations of the fixed effects with SE, df, test and CI.

        ``weights`` has one row per combination and columns named after coefficients.
        Each row gets its own df (:meth:`contrast_df`); under Kenward–Roger the SEs use
        the adjusted covariance.
        """
        return linear_combination(self._fit.params, self._inference_cov(), weights,
                                  alpha=alpha, df=self.contrast_df(weights))

    def wald_test(self, weights: pd.DataFrame) -> pd.Series:
        """Joint test that all combinations in ``weights`` are zero.

        Returns statistic, df (numerator), df_denom and p_value: an F test with
        Satterthwaite (Fai–Cornelius) or Kenward–Roger denominator df for mixed models
        (lmerTest ``contestMD``), F with ``df_resid`` for least squares, and a chi-square
        (``df_denom`` = inf) under ``ddf="z"``.
        """
        method = self.ddf
        if method in ("satterthwaite", "kenward-roger"):
            assert self._fit.mixed is not None
            assert self._fit.mixed.ddf_source is not None
            L = self._full_weights(weights)
            source = self._fit.mixed.ddf_source
            beta = self._fit.mixed.fe_params.to_numpy(dtype=float)
            res = (source.kenward_roger() if method == "kenward-roger"
                   else source.satterthwaite()).f_test(L, beta)
            return pd.Series({"statistic": res.statistic, "df": res.df_num,
                              "df_denom": res.df_denom, "p_value": res.p_value})
        L = weights.reindex(columns=self._fit.params.index, fill_value=0.0).to_numpy(float)
        est = L @ self._fit.params.to_numpy()
        middle = L @ self._fit.cov_params.to_numpy() @ L.T
        chi2 = float(est @ np.linalg.pinv(middle) @ est)
        q = int(np.linalg.matrix_rank(middle))
        if self._fit.df_resid is None:
            return pd.Series({"statistic": chi2, "df": q, "df_denom": np.inf,
                              "p_value": stats.chi2.sf(chi2, q)})
        f = chi2 / q
        return pd.Series(
            {"statistic": f, "df": q, "df_denom": self._fit.df_resid,
             "p_value": stats.f.sf(f, q, self._fit.df_resid)}
        )

    # -- fit statistics ---------------------------------------------------------------
    @property
    def llf(self) -> float:
        """Log-likelihood (REML log-likelihood for REML fits, as lme4's ``logLik``)."""
        return self._fit.llf

    @property
    def df_model(self) -> int:
        """Number of estimated parameters (fixed + covariance + residual variance)."""
        return len(self._fit.params) + self._fit.n_cov_params

    @property
    def aic(self) -> float:
        """Akaike information criterion, ``-2 llf + 2 k`` (R's ``AIC``)."""
        return -2 * self._fit.llf + 2 * self.df_model

    @property
    def bic(self) -> float:
        """Bayesian information criterion, ``-2 llf + k log(nobs)`` (R's ``BIC``)."""
        return -2 * self._fit.llf + np.log(self._fit.nobs) * self.df_model

    @property
    def nobs(self) -> int:
        """Number of observations used in the fit."""
        return self._fit.nobs

    @property
    def n_groups(self) -> dict[str, int]:
        """Number of units per grouping level."""
        return dict(self._fit.n_groups)

    @property
    def variance_components(self) -> pd.DataFrame:
        """Random-effect variances, SDs and correlations, and the residual (VarCorr)."""
        return self._vc_table()

    @property
    def residual_params(self) -> pd.DataFrame:
        """Residual-structure parameters (``phi``, ``sd_ratio[<rater>]``, ``rater_corr``)
        with estimate, std_error, conf_low, conf_high; empty for independent residuals."""
        mixed = self._fit.mixed
        if mixed is None or mixed.residual == "iid":
            return pd.DataFrame(columns=["estimate", "std_error", "conf_low", "conf_high"],
                                dtype=float)
        return mixed.residual_params.copy()

    @property
    def random_effects(self) -> dict[str, pd.DataFrame]:
        """Conditional modes of the random effects per level (BLUPs), if available."""
        return {k: v.copy() for k, v in self._fit.random_effects.items()}

    @property
    def converged(self) -> bool:
        """Whether the optimiser reported convergence."""
        return self._fit.converged

    @property
    def is_singular(self) -> bool:
        """Whether the fit is on the boundary (lme4's ``isSingular``)."""
        return self._fit.is_singular

    @property
    def warnings(self) -> list[str]:
        """Warnings raised while fitting (also printed by :meth:`summary`)."""
        return list(self._fit.warnings)

    @property
    def method(self) -> str:
        """"REML", "ML" or "OLS"."""
        return self._fit.method

    @property
    def formula(self) -> str:
        """The model in R-like notation, for reference."""
        return self._formula

    @property
    def roles(self) -> dict[str, Any]:
        """Which column played which role."""
        return dict(self._roles)

    @property
    def centering(self) -> dict[str, Any]:
        """Centring (and scaling) constants applied before fitting."""
        return dict(self._centering)

    @property
    def engine(self) -> str:
        """Which engine estimated the model."""
        return self._fit.engine

    @property
    def mixedlm(self) -> Any:
        """The raw statsmodels result (escape hatch), or None."""
        return self._fit.raw

    @property
    def optimizer_info(self) -> dict[str, Any]:
        """Optimiser record: method(s) tried, iterations, final objective, messages."""
        return dict(self._fit.optimizer_info)

    @property
    def dropped_rows(self) -> dict[str, int]:
        """Missing values per column among rows dropped before fitting."""
        return dict(self._dropped_rows)

    # -- tables -----------------------------------------------------------------------
    def _coef_table(self, alpha: float = 0.05) -> pd.DataFrame:
        table = pd.DataFrame(
            {"estimate": self._fit.params, "std_error": self.bse, "df": self.df,
             "statistic": self.tvalues, "p_value": self.pvalues}
        )
        return table.join(self.conf_int(alpha))

    def _derived_frame(self, alpha: float) -> list[tuple[str, pd.DataFrame]]:
        """(component, table with EFFECT_COLUMNS) pairs that subclasses add to to_frame."""
        return []

    def to_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """Tidy table: term, estimate, std_error, df, statistic, p_value, conf_low,
        conf_high, component ("fixed", derived components, "variance" for variance
        components). ``df`` is ``inf`` for z inference."""
        parts = [self._coef_table(alpha).assign(component="fixed")]
        parts += [table.assign(component=name) for name, table in self._derived_frame(alpha)]
        frame = pd.concat(
            [p.rename_axis("term").reset_index() for p in parts], ignore_index=True
        )
        vc = self._vc_table()
        if len(vc):
            terms = [
                f"{lvl}: {term}" if term else str(lvl)
                for lvl, term in zip(vc["level"], vc["term"], strict=True)
            ]
            vc_rows = pd.DataFrame(
                {"term": terms, "estimate": vc["variance"].to_numpy(float),
                 "component": "variance"}
            )
            frame = pd.concat([frame, vc_rows], ignore_index=True)
        frame["term"] = frame["term"].astype(str)
        return frame[["term", *EFFECT_COLUMNS, "component"]]

    def _summary_header(self) -> list[tuple[str, str]]:
        header: list[tuple[str, str]] = []
        if self._formula:
            header.append(("Formula", self._formula))
        for role, col in self._roles.items():
            if col is not None and col != [] and col != ():
                header.append((f"  {role}", str(col)))
        fit = f"logLik {self._fit.llf:.4f}   AIC {self.aic:.4f}   BIC {self.bic:.4f}"
        if self._fit.method == "REML":
            fit = f"REML criterion {-2 * self._fit.llf:.4f}   " + fit
        header.append(("Fit", fit))
        groups = ", ".join(f"{k}: {v}" for k, v in self._fit.n_groups.items())
        sizes = f"{self._fit.nobs}" + (f"; groups: {groups}" if groups else "")
        header.append(("Observations", sizes))
        if self._dropped_rows:
            detail = ", ".join(f"{k}: {v}" for k, v in self._dropped_rows.items())
            header.append(("Missing dropped", detail))
        if self._centering:
            header.append(("Centring", ", ".join(f"{k}={_shown(v)}"
                                                 for k, v in self._centering.items())))
        header.append(("Engine", f"{self._fit.engine}; converged: {self._fit.converged}; "
                                  f"singular: {self._fit.is_singular}"))
        return header

    def _summary_tables(self, alpha: float) -> list[tuple[str, pd.DataFrame]]:
        tables: list[tuple[str, pd.DataFrame]] = []
        vc = self._vc_table()
        if len(vc):
            tables.append(("Random effects", vc.set_index(["level", "term"])))
        mixed = self._fit.mixed
        if mixed is not None and mixed.residual != "iid":
            tables.append((f"Residual structure ({mixed.residual})", self.residual_params))
        tables.append((f"Fixed effects ({_METHOD_LABELS[self.ddf]})", self._coef_table(alpha)))
        return tables

    def summary(self, alpha: float = 0.05) -> Summary:
        """lme4-style summary: method and formula, fit statistics, variance components,
        groups, fixed effects, derived effects, warnings."""
        title = f"{self._model_name} fit by {self._fit.method}"
        notes = list(self._fit.notes)
        if self._fit.method != "OLS" and self.ddf in _METHOD_NOTES:
            notes.append(_METHOD_NOTES[self.ddf])
        warn = [*self._fit.warnings, *self._ddf_messages()]
        if self._fit.is_singular and not any("singular" in w for w in warn):
            warn.append("boundary (singular) fit: a variance is ~0 or a correlation ~ +/-1.")
        if not self._fit.converged and not any("converge" in w for w in warn):
            warn.append("The optimiser did not report convergence.")
        return Summary(title, self._summary_header(), self._summary_tables(alpha), warn, notes)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__}: {self._fit.method}, nobs={self._fit.nobs}, "
                f"llf={self._fit.llf:.3f}, engine={self._fit.engine!r}>")


# -- likelihood-ratio tests between nested fits ------------------------------------------
@dataclass(frozen=True)
class ModelComparison(SummaryMixin):
    """Likelihood-ratio test of two nested mixed-model fits (:func:`compare_models`).

    Attributes
    ----------
    table : DataFrame
        Indexed "small", "large": npar, AIC, BIC, llf, deviance (on the criterion the
        test uses), then for "large" the LR statistic, its df and the chi-square p-value
        (lme4 ``anova(small, large)``), and with a bootstrap the bootstrap p-value and its
        Monte-Carlo SE.
    criterion : {"REML", "ML"}
        The likelihood compared.
    statistic, df, p_value : float
        LR statistic ``2 (llf_large − llf_small)``, difference in parameters, chi-square p.
    bootstrap : ndarray
        LR statistics of the simulated responses (empty without a bootstrap; NaN: a
        failed refit, excluded).
    p_value_bootstrap, mcse : float
        ``(1 + #{LR* ≥ LR}) / (1 + B)`` over the valid replicates, and its Monte-Carlo
        SE (NaN without a bootstrap).
    notes : tuple of str
    """

    table: pd.DataFrame
    criterion: str
    statistic: float
    df: float
    p_value: float
    bootstrap: np.ndarray[Any, np.dtype[np.float64]]
    p_value_bootstrap: float
    mcse: float
    notes: tuple[str, ...]

    def summary(self) -> Summary:
        """The comparison table with its notes."""
        return Summary(f"Likelihood-ratio test of nested models ({self.criterion})", [],
                       [("Models", self.table)], notes=self.notes)


def _shown(value: Any) -> str:
    """A centring constant for the summary header: floats to 6 significant digits (the
    full values are in ``result.centering``)."""
    if isinstance(value, float | np.floating):
        return f"{float(value):.6g}"
    return str(value)


def _record(res: ModelResults) -> FitRecord:
    """The record a result holds (this module's own class)."""
    return res._fit  # noqa: SLF001


def _mixed_source(res: Any, name: str) -> Any:
    if not isinstance(res, ModelResults):
        raise TypeError(f"`{name}` must be a results object of a mixed-model fit; got "
                        f"{type(res).__name__}.")
    mixed = _record(res).mixed
    if mixed is None or mixed.ddf_source is None:
        raise TypeError(f"`{name}` is not a mixed-model fit (no likelihood to compare); "
                        f"use its F or t tests.")
    return mixed.ddf_source


def _column_space_within(small: np.ndarray[Any, Any], large: np.ndarray[Any, Any]) -> bool:
    rank = np.linalg.matrix_rank
    return bool(rank(np.column_stack([large, small])) == rank(large))


def compare_models(a: ModelResults, b: ModelResults, *, bootstrap: int = 0, rng: Any = None,
                   n_jobs: int = 1) -> ModelComparison:
    """Likelihood-ratio test of two nested mixed-model fits of the same response.

    As lme4's ``anova(m0, m1)``: the models are ordered by their number of parameters;
    when their fixed effects differ, REML fits are refitted by ML first (REML likelihoods
    of different fixed effects are not comparable), and the result says so; with the same
    fixed effects and both fitted by REML the REML likelihoods are compared. The
    chi-square reference is conservative when the larger model adds variance components
    (their null value, 0, is on the boundary: "is there a therapist effect at all?"); the
    parametric bootstrap (``bootstrap=B``, as pbkrtest's ``PBmodcomp``) simulates ``B``
    responses from the smaller model at its estimates, refits both models to each and
    uses the simulated LR statistics as reference.

    Parameters
    ----------
    a, b : results of :func:`~alliancestats.fit_truth_bias` or :func:`~alliancestats.fit_growth`
        Fits of the same rows and response; one model's fixed effects must lie in the
        column space of the other's, and its random effects must be a special case of
        the other's (not checked beyond the parameter count).
    bootstrap : int
        Number of parametric-bootstrap replicates (0: none). iid residuals only.
    rng : None, int or Generator
        Seed of the bootstrap (same seed, same result, for any ``n_jobs``).
    n_jobs : int
        joblib workers for the bootstrap.

    Returns
    -------
    ModelComparison

    Raises
    ------
    TypeError
        If an argument is not a mixed-model result.
    ValueError
        If the fits have different responses or are not nested.

    Examples
    --------
    >>> from alliancestats import compare_models, fit_truth_bias, simulate_prn
    >>> df = simulate_prn(20, 60, rng=3)
    >>> roles = dict(judgment="alliance_therapist", truth="alliance_patient",
    ...              groups=["therapist", "patient"])
    >>> small = fit_truth_bias(df, **roles)
    >>> large = fit_truth_bias(df, **roles, moderators="condition")
    >>> res = compare_models(small, large)
    >>> res.criterion, int(res.df)
    ('ML', 2)
    """
    from ._mixed._compare import bootstrap_lrt, log_likelihood

    sa, sb = _mixed_source(a, "a"), _mixed_source(b, "b")
    if isinstance(bootstrap, bool) or not isinstance(bootstrap, int | np.integer) \
            or bootstrap < 0:
        raise ValueError(f"`bootstrap` must be a non-negative integer; got {bootstrap!r}.")
    if sa.y.shape != sb.y.shape or not np.allclose(sa.y, sb.y, rtol=1e-10, atol=1e-12):
        raise ValueError("`a` and `b` were fitted to different responses (rows, outcome "
                         "or centring); fit both to the same rows of the same outcome.")
    npar = {id(a): sa.X.shape[1] + _record(a).n_cov_params,
            id(b): sb.X.shape[1] + _record(b).n_cov_params}
    small, large = (a, b) if npar[id(a)] <= npar[id(b)] else (b, a)
    s_small, s_large = (sa, sb) if small is a else (sb, sa)
    if npar[id(small)] == npar[id(large)]:
        raise ValueError("`a` and `b` have the same number of parameters; a likelihood-"
                         "ratio test needs one model nested in the other.")
    if not _column_space_within(s_small.X, s_large.X):
        raise ValueError("the fixed effects of the smaller model are not contained in "
                         "those of the larger one; the models are not nested.")
    same_fixed = _column_space_within(s_large.X, s_small.X)
    notes: list[str] = []
    reml = bool(same_fixed and s_small.reml and s_large.reml)
    if not reml and (s_small.reml or s_large.reml):
        notes.append("Refitted with ML (instead of REML): the fixed effects differ, as "
                     "lme4's anova().")
    llf = [log_likelihood(s, reml) for s in (s_small, s_large)]
    stat = max(2.0 * (llf[1] - llf[0]), 0.0)
    k = [npar[id(small)], npar[id(large)]]
    df = float(k[1] - k[0])
    p = float(stats.chi2.sf(stat, df))
    n = s_small.y.size
    if _record(small).n_cov_params != _record(large).n_cov_params:
        notes.append("The larger model adds variance parameters: their null value is on "
                     "the boundary, so the chi-square p-value is conservative; "
                     "bootstrap=B gives a parametric-bootstrap p-value.")
    boot = np.empty(0)
    p_boot = mcse = math.nan
    if bootstrap:
        boot = bootstrap_lrt(s_small, s_large, reml=reml, n=int(bootstrap), rng=rng,
                             n_jobs=n_jobs)
        valid = boot[np.isfinite(boot)]
        if valid.size < boot.size:
            notes.append(f"{boot.size - valid.size} of {boot.size} bootstrap refits "
                         f"failed and were excluded.")
        p_boot = float((1 + np.sum(valid >= stat)) / (1 + valid.size))
        mcse = float(math.sqrt(p_boot * (1 - p_boot) / max(valid.size, 1)))
    table = pd.DataFrame(
        {"npar": k, "aic": [-2 * v + 2 * kk for v, kk in zip(llf, k, strict=True)],
         "bic": [-2 * v + math.log(n) * kk for v, kk in zip(llf, k, strict=True)],
         "llf": llf, "deviance": [-2 * v for v in llf],
         "statistic": [math.nan, stat], "df": [math.nan, df], "p_value": [math.nan, p]},
        index=pd.Index(["small", "large"]))
    if bootstrap:
        table["p_value_bootstrap"] = [math.nan, p_boot]
        table["bootstrap_mcse"] = [math.nan, mcse]
    return ModelComparison(table, "REML" if reml else "ML", stat, df, p, boot, p_boot, mcse,
                           tuple(notes))


# -- likelihood-ratio tests of residual structures ---------------------------------------
#: For each residual structure, the structures nested in it (its parameters at a null
#: value give theirs: ``φ = 0``, SD ratios 1, rater correlation 0).
_RESIDUAL_NESTED = {"iid": (), "ar1": ("iid",), "rater": ("iid",),
                    "rater_ar1": ("iid", "ar1", "rater")}


@dataclass(frozen=True)
class ResidualComparison(SummaryMixin):
    """Likelihood-ratio tests of residual structures of one model (:func:`compare_residuals`).

    Attributes
    ----------
    table : DataFrame
        Indexed by residual structure, in the order given: npar, aic, bic, llf, deviance
        and, for every structure after the first, the LR statistic against the first, its
        df and chi-square p-value (nlme ``anova(m0, m1)``).
    fits : dict
        The fitted results by residual structure.
    criterion : {"REML", "ML"}
        The likelihood compared (the fits' own).
    notes : tuple of str
    """

    table: pd.DataFrame
    fits: Mapping[str, ModelResults]
    criterion: str
    notes: tuple[str, ...]

    def summary(self) -> Summary:
        """The comparison table with its notes."""
        return Summary(f"Likelihood-ratio tests of residual structures ({self.criterion})",
                       [], [("Residual structures", self.table)], notes=self.notes)


def _check_residual_list(residuals: Any) -> list[str]:
    from ._mixed import RESIDUALS

    if isinstance(residuals, str) or not isinstance(residuals, Sequence):
        raise TypeError("`residuals` must be a list of residual structures, e.g. "
                        f"['iid', 'ar1']; got {residuals!r}.")
    out = list(residuals)
    bad = [r for r in out if r not in RESIDUALS]
    if bad:
        raise ValueError(f"`residuals` has unknown structure(s) {bad}; choose from "
                         f"{RESIDUALS}.")
    if len(out) < 2 or len(set(out)) != len(out):
        raise ValueError(f"`residuals` needs at least two different structures; got {out}.")
    base = out[0]
    not_nested = [r for r in out[1:] if base not in _RESIDUAL_NESTED[r]]
    if not_nested:
        raise ValueError(f"the first structure, {base!r}, must be nested in every other "
                         f"one to test against it; it is not in {not_nested}. Put the "
                         f"simplest first (e.g. ['iid', 'ar1', 'rater']).")
    return out


def compare_residuals(fit: Any, data: pd.DataFrame, *, residuals: Sequence[str] = ("iid",
                      "ar1"), **model: Any) -> ResidualComparison:
    """Fit one model with several residual structures and test them against the first.

    "Is there serial correlation?" in one call: ``fit(data, residual=r, **model)`` for
    every ``r`` in ``residuals``, then likelihood-ratio tests of each structure against the
    first (which must be nested in it, e.g. ``"iid"``), with AIC and BIC, as nlme's
    ``anova(m0, m1)``. The fixed and random effects are the same in every fit, so REML
    fits compare their REML likelihoods (valid: only the covariance differs).

    The chi-square reference with df = the number of added residual parameters is the
    usual large-sample one. Its null values are interior (``φ = 0`` when ``-1 < φ < 1``, SD
    ratio 1, rater correlation 0), so no boundary correction applies — except for ``φ``
    restricted to ``0 ≤ φ < 1`` (fractional time gaps, nlme ``corCAR1``), where the null is
    on the boundary and the p-value is conservative (about twice the mixture's), as it is
    when a structure's parameters are poorly identified against random slopes.

    Parameters
    ----------
    fit : callable
        A model function taking ``residual=``: :func:`~alliancestats.fit_truth_bias`,
        :func:`~alliancestats.fit_growth`, :func:`~alliancestats.fit_rsa` (with groups) or
        :func:`~alliancestats.fit_lagged_rsa`.
    data : DataFrame
        Passed to ``fit``.
    residuals : sequence of str
        Residual structures, the first nested in all others (default ``("iid", "ar1")``).
    **model
        The model's other arguments (roles, moderators, ``time``, ``rater``, ``random``,
        ``reml``, ...), the same for every fit; not ``residual``.

    Returns
    -------
    ResidualComparison

    Raises
    ------
    TypeError
        If ``fit`` is not callable or ``residuals`` is not a list of names.
    ValueError
        If a structure is unknown, repeated, or not nested as required, or ``residual`` is
        passed in ``model``.

    Examples
    --------
    >>> from alliancestats import compare_residuals, fit_truth_bias, simulate_prn
    >>> df = simulate_prn(20, 60, rng=3)
    >>> res = compare_residuals(fit_truth_bias, df, residuals=["iid", "ar1"],
    ...                         judgment="alliance_therapist", truth="alliance_patient",
    ...                         groups=["therapist", "patient"], time="session")
    >>> res.criterion, int(res.table.loc["ar1", "df"])
    ('REML', 1)
    """
    if not callable(fit):
        raise TypeError("`fit` must be a model function such as fit_truth_bias or "
                        f"fit_growth; got {type(fit).__name__}.")
    if "residual" in model:
        raise ValueError("pass the structures as `residuals=[...]`, not `residual=`.")
    names = _check_residual_list(residuals)
    fits = {r: fit(data, residual=r, **model) for r in names}
    for r, res in fits.items():
        _mixed_source(res, f"the {r!r} fit")
    base = fits[names[0]]
    criterion = base.method
    llf = np.array([fits[r].llf for r in names])
    k = np.array([fits[r].df_model for r in names], dtype=float)
    stat = np.r_[math.nan, np.maximum(2.0 * (llf[1:] - llf[0]), 0.0)]
    df = np.r_[math.nan, k[1:] - k[0]]
    p = np.r_[math.nan, stats.chi2.sf(stat[1:], df[1:])]
    table = pd.DataFrame(
        {"npar": k.astype(int), "aic": [fits[r].aic for r in names],
         "bic": [fits[r].bic for r in names], "llf": llf, "deviance": -2.0 * llf,
         "statistic": stat, "df": df, "p_value": p},
        index=pd.Index(names, name="residual"))
    notes = [f"Each structure is tested against {names[0]!r} ({criterion} likelihoods: the "
             f"fixed and random effects are the same in every fit), chi-square reference "
             f"with df = added residual parameters."]
    restricted = [r for r in names[1:] if r in ("ar1", "rater_ar1")
                  and _fractional_time(data, model.get("time"))]
    if restricted:
        notes.append(f"{', '.join(map(repr, restricted))}: phi is restricted to [0, 1) "
                     "(fractional time values), so its null value 0 is on the boundary "
                     "and the chi-square p-value is conservative.")
    if not all(fits[r].converged for r in names):
        notes.append("Some fits did not converge: " + ", ".join(
            r for r in names if not fits[r].converged) + ".")
    return ResidualComparison(table, fits, criterion, tuple(notes))


def _fractional_time(data: Any, time: Any) -> bool:
    """Whether the time column has non-integer values (AR(1) then needs ``φ ≥ 0``)."""
    try:
        values = pd.to_numeric(pd.Series(data[time]), errors="coerce").dropna()
    except (KeyError, TypeError, ValueError):
        return False
    return bool(len(values) and not np.all(values == np.round(values)))
