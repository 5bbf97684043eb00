"""Shared results base and the printable :class:`Summary`.

Every model function returns an immutable subclass of :class:`ModelResults`. The base
holds the fixed effects and their covariance and derives everything inferential from them
(standard errors, Wald statistics, p-values, confidence intervals, linear contrasts), so
the model modules only add their domain quantities (surface parameters, truth force, ...).

Inference is Wald-based: z (standard normal) for mixed models, as statsmodels MixedLM and
lme4's ``summary`` without lmerTest; t with ``df_resid`` degrees of freedom for
single-level least squares. The summary says which.
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pandas as pd
from scipy import stats

from ._mixed import MixedFit

__all__ = ["EFFECT_COLUMNS", "FitRecord", "ModelResults", "Summary", "SummaryMixin",
           "linear_combination"]

#: Columns of every table of derived effects (a1..a5, truth force, growth rates, ...).
EFFECT_COLUMNS = ["estimate", "std_error", "statistic", "p_value", "conf_low", "conf_high"]


def _format_table(table: pd.DataFrame, digits: int) -> pd.DataFrame:
    """Round floats for display; p-values get scientific notation when tiny."""
    shown = table.copy()
    for col in shown.columns:
        if not pd.api.types.is_float_dtype(shown[col]):
            continue
        if "p_value" in str(col) or str(col) in {"P>|z|", "P>|t|"}:
            shown[col] = shown[col].map(lambda p: "" if pd.isna(p) else f"{p:.4g}")
        else:
            shown[col] = shown[col].map(lambda v: "" if pd.isna(v) else f"{v:.{digits}f}")
    return shown


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
    df: float | None = None,
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
    df : float or None
        Residual degrees of freedom for t inference; None for z.

    Returns
    -------
    DataFrame
        Indexed like ``weights``, columns :data:`EFFECT_COLUMNS`.

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
    dist = stats.norm if df is None else stats.t(df)
    crit = dist.ppf(1 - alpha / 2)
    return pd.DataFrame(
        {
            "estimate": est,
            "std_error": se,
            "statistic": stat,
            "p_value": 2 * dist.sf(np.abs(stat)),
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
        As on :class:`ModelResults`.
    mixed : MixedFit or None
        The mixed-model fit itself (what small-sample inference needs), or None.
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

    @classmethod
    def from_mixed(cls, fit: MixedFit) -> FitRecord:
        """The record of a mixed-model fit."""
        return cls(
            params=fit.fe_params, cov_params=fit.cov_fe, nobs=fit.nobs, llf=fit.llf,
            method=fit.method, n_cov_params=fit.n_cov_params, n_groups=fit.n_groups,
            variance_components=fit.variance_components, converged=fit.converged,
            is_singular=fit.is_singular, warnings=fit.warnings, engine=fit.engine,
            raw=fit.raw, optimizer_info=fit.optimizer_info,
            random_effects=fit.random_effects, notes=fit.notes, mixed=fit,
        )

    def restricted(self, names: Sequence[str], **changes: Any) -> FitRecord:
        """The record with coefficients limited to ``names`` (and other fields changed)."""
        index = list(names)
        return replace(self, params=self.params.loc[index],
                       cov_params=self.cov_params.loc[index, index], **changes)


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
        self._fit = replace(
            fit, params=params,
            cov_params=fit.cov_params.loc[params.index, params.index].astype(float),
            notes=(*fit.notes, *notes))
        self._formula = formula
        self._roles = dict(roles or {})
        self._centering = dict(centering or {})
        self._dropped_rows = dict(dropped_rows or {})
        self._frozen = True

    def __setattr__(self, name: str, value: Any) -> None:
        if getattr(self, "_frozen", False):
            raise AttributeError(f"{type(self).__name__} is immutable; refit to change it.")
        super().__setattr__(name, value)

    def _vc_table(self) -> pd.DataFrame:
        vc = self._fit.variance_components
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
    def bse(self) -> pd.Series:
        """Standard errors of the fixed effects."""
        return pd.Series(np.sqrt(np.diag(self._fit.cov_params)), index=self._fit.params.index)

    @property
    def tvalues(self) -> pd.Series:
        """Wald statistics (z for mixed models, t for least squares)."""
        return self._fit.params / self.bse

    @property
    def inference(self) -> str:
        """"z" (normal reference) or "t" (with ``df_resid`` degrees of freedom)."""
        return "z" if self._fit.df_resid is None else "t"

    @property
    def df_resid(self) -> float | None:
        """Residual degrees of freedom of t inference, None for z inference."""
        return self._fit.df_resid

    def _dist(self) -> Any:
        df = self._fit.df_resid
        return stats.norm if df is None else stats.t(df)

    @property
    def pvalues(self) -> pd.Series:
        """Two-sided p-values of the Wald tests."""
        return pd.Series(2 * self._dist().sf(np.abs(self.tvalues)), index=self._fit.params.index)

    def conf_int(self, alpha: float = 0.05) -> pd.DataFrame:
        """Wald confidence intervals, columns ``conf_low`` and ``conf_high``."""
        if not 0 < alpha < 1:
            raise ValueError(f"`alpha` must be between 0 and 1; got {alpha!r}.")
        crit = self._dist().ppf(1 - alpha / 2)
        se = self.bse
        return pd.DataFrame(
            {"conf_low": self._fit.params - crit * se, "conf_high": self._fit.params + crit * se}
        )

    def contrast(self, weights: pd.DataFrame, alpha: float = 0.05) -> pd.DataFrame:
        """Linear combinations of the fixed effects with SE, test and CI.

        ``weights`` has one row per combination and columns named after coefficients.
        """
        return linear_combination(self._fit.params, self._fit.cov_params, weights, alpha=alpha,
                                  df=self._fit.df_resid)

    def wald_test(self, weights: pd.DataFrame) -> pd.Series:
        """Joint Wald test that all combinations in ``weights`` are zero.

        Returns statistic (chi-square, or F for t inference), df and p_value.
        """
        L = weights.reindex(columns=self._fit.params.index, fill_value=0.0).to_numpy(float)
        est = L @ self._fit.params.to_numpy()
        middle = L @ self._fit.cov_params.to_numpy() @ L.T
        chi2 = float(est @ np.linalg.pinv(middle) @ est)
        q = int(np.linalg.matrix_rank(middle))
        if self._fit.df_resid is None:
            return pd.Series({"statistic": chi2, "df": q, "p_value": stats.chi2.sf(chi2, q)})
        f = chi2 / q
        return pd.Series(
            {"statistic": f, "df": q, "p_value": stats.f.sf(f, q, self._fit.df_resid)}
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
            {"estimate": self._fit.params, "std_error": self.bse, "statistic": self.tvalues,
             "p_value": self.pvalues}
        )
        return table.join(self.conf_int(alpha))

    def _derived_frame(self, alpha: float) -> list[tuple[str, pd.DataFrame]]:
        """(component, table with EFFECT_COLUMNS) pairs that subclasses add to to_frame."""
        return []

    def to_frame(self, alpha: float = 0.05) -> pd.DataFrame:
        """Tidy table: term, estimate, std_error, statistic, p_value, conf_low, conf_high,
        component ("fixed", derived components, "variance" for variance components)."""
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
            header.append(("Centring", ", ".join(f"{k}={v}" for k, v in self._centering.items())))
        header.append(("Engine", f"{self._fit.engine}; converged: {self._fit.converged}; "
                                  f"singular: {self._fit.is_singular}"))
        return header

    def _summary_tables(self, alpha: float) -> list[tuple[str, pd.DataFrame]]:
        tables: list[tuple[str, pd.DataFrame]] = []
        vc = self._vc_table()
        if len(vc):
            tables.append(("Random effects", vc.set_index(["level", "term"])))
        tables.append((f"Fixed effects ({self.inference} tests)", self._coef_table(alpha)))
        return tables

    def summary(self, alpha: float = 0.05) -> Summary:
        """lme4-style summary: method and formula, fit statistics, variance components,
        groups, fixed effects, derived effects, warnings."""
        title = f"{self._model_name} fit by {self._fit.method}"
        notes = list(self._fit.notes)
        if self._fit.df_resid is None and self._fit.method != "OLS":
            notes.append("Wald z tests and intervals (no small-sample df correction).")
        warn = list(self._fit.warnings)
        if self._fit.is_singular and not any("singular" in w for w in warn):
            warn.append("boundary (singular) fit: a variance is ~0 or a correlation ~ +/-1.")
        if not self._fit.converged and not any("converge" in w for w in warn):
            warn.append("The optimiser did not report convergence.")
        return Summary(title, self._summary_header(), self._summary_tables(alpha), warn, notes)

    def __repr__(self) -> str:
        return (f"<{type(self).__name__}: {self._fit.method}, nobs={self._fit.nobs}, "
                f"llf={self._fit.llf:.3f}, engine={self._fit.engine!r}>")
