"""The end-to-end PRN analysis report (``alliancestats report``).

:func:`write_report` fits the three models of a practice-research-network trial —
multilevel growth of the alliance by rater × condition (the dyadic structure the growth
guide recommends, ``random="rater_slopes_therapist"``), the truth-and-bias model with condition and
session moderators (West & Kenny's random truth force, ``random="auto"``, with its
fallback steps listed), and the lagged response surface analysis by condition with session
as a control — and writes to an output directory:

* ``report.html`` — one self-contained page (figures embedded as PNG, no external
  resources): data overview, per model the equation of the model actually fitted, the
  reference level of every categorical variable, the estimates with confidence
  intervals (the inference method named at the top), figures and every warning raised
  while fitting; versions and the exact call;
* ``estimates.csv`` — all estimates in tidy form (``to_frame()`` of every model plus a
  ``model`` column);
* ``figures/*.png`` and ``figures/*.svg``.

Each model section is isolated: a model that fails (or is not available) is reported in
its section and the other sections are still written; a figure that cannot be drawn is
reported as a figure failure, not as a failed model. :func:`run_report` says which
sections failed (the command exits non-zero then, unless ``--keep-going``).

The report is written into a temporary directory inside ``out`` and moved into place
when it is complete, so an interrupted run leaves the previous report as it was; figures
of an earlier report that this one no longer draws are removed. Nothing global changes:
figures are drawn on :class:`matplotlib.figure.Figure` objects, never through pyplot, so
the matplotlib backend (e.g. a notebook's) and pyplot's figure list are left alone.
Column names and labels are shortened in the HTML tables and figures (the full text is
in ``estimates.csv``), and every CSV cell that a spreadsheet would run as a formula is
neutralised.
"""

from __future__ import annotations

import base64
import html
import io
import os
import platform
import re
import shutil
import sys
import tempfile
import time
import traceback
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ._format import csv_safe, format_number, format_p, shorten
from ._validation import require_columns, require_frame, require_numeric
from .simulate import COLUMNS

__all__ = ["DEFAULT_ROLES", "ReportRun", "run_report", "write_report"]

#: Canonical column names of the PRN layout (``datasets.load("prn")``).
DEFAULT_ROLES: dict[str, str] = {name: name for name in COLUMNS}

_PACKAGES = ("alliancestats", "numpy", "scipy", "pandas", "statsmodels", "matplotlib")

#: Most observations drawn as points on the response-surface contours: beyond it they
#: hide the surface and make the SVG slow to write and to open (60 000 points: ~7 s).
MAX_POINTS = 5000
#: Longest label (column name, level, term) shown in a table cell or a figure.
LABEL_WIDTH = 60
#: Roles whose SPSS value labels replace the codes (categorical roles).
_LABELLED_ROLES = ("therapist", "patient", "condition")
#: Roles whose whole-number float columns (SPSS stores every number as a double) become
#: integers again.
_INTEGER_ROLES = ("therapist", "patient", "session")


@dataclass
class Section:
    """One part of the report: HTML fragments, figures and tidy estimates."""

    title: str
    anchor: str
    parts: list[str] = field(default_factory=list)
    estimates: list[pd.DataFrame] = field(default_factory=list)
    seconds: float = 0.0
    failed: bool = False
    status: str = "done"
    figures: list[str] = field(default_factory=list)
    figure_failures: list[str] = field(default_factory=list)
    error: str = ""
    inference: str = ""


def _say(message: str, progress: bool) -> None:
    if progress:
        print(f"alliancestats report: {message}", file=sys.stderr, flush=True)


def _shown(value: Any) -> Any:
    """A table cell or label as shown: text shortened to :data:`LABEL_WIDTH`."""
    return shorten(value, LABEL_WIDTH) if isinstance(value, str) else value


def _short_words(text: Any, width: int, word: int = 2 * LABEL_WIDTH) -> str:
    """``text`` with every long word (a column name, a label) cut to ``word`` characters,
    then the whole cut to ``width``: for formulas, warnings, errors and the call."""
    words = re.split(r"(\s+)", str(text))
    return shorten("".join(shorten(w, word) for w in words), width)


def _short_labels(index: pd.Index) -> pd.Index:
    if isinstance(index, pd.MultiIndex):
        return pd.MultiIndex.from_tuples(
            [tuple(_shown_label(v) for v in row) for row in index],
            names=[None if n is None else _shown_label(n) for n in index.names])
    return index.map(_shown_label).set_names(
        None if index.name is None else _shown_label(index.name))


def _shown_label(value: Any) -> Any:
    return value if isinstance(value, int | float | np.number) else _shown(str(value))


def _table(frame: pd.DataFrame, digits: int = 3) -> str:
    """An HTML table with numbers rounded for reading (CSV keeps full precision) and
    labels shortened (:data:`LABEL_WIDTH`)."""
    shown = frame.copy()
    for i, col in enumerate(shown.columns):
        values = shown.iloc[:, i]
        if "p_value" in str(col):
            shown.isetitem(i, values.map(format_p).astype(object).to_numpy())
        elif pd.api.types.is_float_dtype(values):
            shown.isetitem(i, values.map(lambda v: format_number(v, digits)).astype(object)
                           .to_numpy())
        elif not pd.api.types.is_numeric_dtype(values):
            shown.isetitem(i, values.map(_shown).astype(object).to_numpy())
    shown.columns = _short_labels(shown.columns)
    # A default RangeIndex carries no information: leave it out of the table.
    plain = isinstance(shown.index, pd.RangeIndex)
    if not plain:
        shown.index = _short_labels(shown.index)
    return shown.to_html(classes="tbl", border=0, na_rep="", escape=True, index=not plain)


def _plain(frame: pd.DataFrame, label: str = "term") -> pd.DataFrame:
    """The index as columns (an unnamed one called ``label``), unless it is a default
    RangeIndex, which says nothing."""
    if isinstance(frame.index, pd.RangeIndex):
        return frame
    if frame.index.nlevels == 1 and frame.index.name is None:
        frame = frame.rename_axis(label)
    return frame.reset_index()


def _new_figure(**kwargs: Any) -> Any:
    """A Figure that pyplot does not know about (no backend switch, no figure list)."""
    from matplotlib.figure import Figure

    return Figure(**kwargs)


def _shorten_text(fig: Any) -> None:
    """Cut every text of ``fig`` (labels, ticks, legends, titles) to LABEL_WIDTH * 2."""
    from matplotlib.text import Text

    for text in fig.findobj(Text):
        content = text.get_text()
        if len(content) > 2 * LABEL_WIDTH:
            text.set_text(shorten(content, 2 * LABEL_WIDTH))


def _save_figure(fig: Any, name: str, figdir: Path, caption: str) -> str:
    """Save ``fig`` as PNG and SVG and return a <figure> with the PNG embedded."""
    _shorten_text(fig)
    figdir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    png = buf.getvalue()
    (figdir / f"{name}.png").write_bytes(png)
    fig.savefig(figdir / f"{name}.svg", format="svg", bbox_inches="tight")
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)} (<code>figures/{name}.png</code>, "
            f"<code>.svg</code>)</figcaption></figure>")


def _figure(sec: Section, draw: Callable[[Any], Any], name: str, figdir: Path,
            caption: str, **figure_kwargs: Any) -> None:
    """Draw one figure into ``sec``; a failure is a figure failure, never a model failure.

    ``draw`` gets a fresh :class:`~matplotlib.figure.Figure` and draws on it.
    """
    try:
        fig = _new_figure(**figure_kwargs)
        draw(fig)
        sec.parts.append(_save_figure(fig, name, figdir, caption))
        sec.figures.append(name)
    except Exception as exc:  # the model is fine; only this picture is missing
        detail = "".join(traceback.format_exception_only(exc)).strip()
        sec.figure_failures.append(name)
        sec.parts.append(f'<p class="err">The figure &ldquo;{html.escape(caption)}&rdquo; '
                         f"could not be drawn (the estimates above are not affected): "
                         f"<code>{html.escape(_short_words(detail, 500))}</code></p>")


def _warnings_html(records: Sequence[str]) -> str:
    if not records:
        return '<p class="ok">No warnings were raised while fitting.</p>'
    items = "".join(f"<li>{html.escape(_short_words(m, 1000))}</li>"
                    for m in dict.fromkeys(records))
    return f'<div class="warn"><b>Warnings raised while fitting</b><ul>{items}</ul></div>'


def _run_section(section: Section, body: Callable[[Section, list[str]], None],
                 progress: bool) -> Section:
    """Run one section; any failure becomes a message inside it, never a crash."""
    _say(f"{section.title} ...", progress)
    start = time.perf_counter()
    caught: list[str] = []
    with warnings.catch_warnings(record=True) as records:
        warnings.simplefilter("always")
        try:
            body(section, caught)
        except ImportError as exc:
            section.failed, section.status = True, "not available"
            section.error = f"not available ({exc})"
            section.parts.append(f'<p class="err">This model is not available in this '
                                 f"version of alliancestats ({html.escape(str(exc))}).</p>")
        except Exception as exc:  # a failing model must not take the other sections down
            section.failed, section.status = True, "failed"
            detail = "".join(traceback.format_exception_only(exc)).strip()
            section.error = " ".join(detail.split())
            section.parts.append(f'<p class="err">The model could not be fitted: '
                                 f"<code>{html.escape(_short_words(detail, 1000))}</code></p>")
    if not section.failed and section.figure_failures:
        section.status = f"done; figure failed: {', '.join(section.figure_failures)}"
    # A warning is often both stored on the result and emitted; list it once, with its class.
    emitted = [f"{r.category.__name__}: {r.message}" for r in records]
    stored = [m for m in caught if not any(e.endswith(f": {m}") for e in emitted)]
    section.parts.append(_warnings_html(emitted + stored))
    section.seconds = time.perf_counter() - start
    _say(f"{section.title}: {section.status} ({section.seconds:.1f} s)", progress)
    return section


# --------------------------------------------------------------------------- data overview


def _overview(data: pd.DataFrame, roles: Mapping[str, Any], source: str, figdir: Path
              ) -> Section:
    from .plotting import observed_means, plot_trajectories

    sec = Section("Data overview", "data")
    th, pa, se, co = (roles[k] for k in ("therapist", "patient", "session", "condition"))
    sessions = np.sort(data[se].dropna().unique())
    patients = data[[th, pa]].drop_duplicates()
    n_expected = len(patients) * len(sessions)
    arms = data.drop_duplicates([th, pa]).groupby(co, observed=True).agg(
        therapists=(th, "nunique"), patients=(pa, "size"))
    sizes = pd.DataFrame({"value": [
        source, len(data), data[th].nunique(), len(patients), len(sessions),
        f"{sessions.min():g}–{sessions.max():g}" if len(sessions) else "",
        n_expected - len(data.drop_duplicates([th, pa, se]))]},
        index=["data", "rows", "therapists", "patients", "sessions",
               "session range", "missing patient-sessions"])
    per_session = data.groupby(se, observed=True)[pa].size().rename("patients observed")
    missing_cells = data[list(dict.fromkeys(roles.values()))].isna().sum().rename(
        "missing values")
    ratings = {"therapist": roles["alliance_therapist"], "patient": roles["alliance_patient"]}
    sec.parts += ['<div class="row">', _table(sizes), _table(arms.rename_axis(co)),
                  _table(per_session.to_frame()), _table(missing_cells.to_frame()), "</div>"]
    means = observed_means(data, time=se, condition=co, ratings=ratings)
    if means.empty:
        sec.parts.append("<p>No session has ratings: no means to show.</p>")
        return sec
    sec.parts += [f"<h3>Means and SDs by {html.escape(_shown(str(co)))} × "
                  f"{html.escape(_shown(str(se)))} × rater</h3>",
                  _table(_means_table(data, means, roles, ratings), digits=2)]
    _figure(sec, lambda fig: plot_trajectories(data, time=se, condition=co, ratings=ratings,
                                               ax=fig.add_subplot()),
            "observed_means", figdir, "Observed alliance means (95% CI) by rater × condition",
            figsize=(7, 5))
    sec.estimates.append(means.assign(model="data", component="observed mean"))
    return sec


def _means_table(data: pd.DataFrame, means: pd.DataFrame, roles: Mapping[str, Any],
                 ratings: Mapping[str, Any]) -> pd.DataFrame:
    """Mean, SD and n of each rating and of the outcome per condition × session."""
    co, se, wb = roles["condition"], roles["session"], roles["wellbeing"]
    wide = means.pivot_table(index=[co, se], columns="rater", values=["mean", "sd", "n"],
                             observed=True, dropna=False)
    wide.columns = [f"{pair[1]} {pair[0]}" for pair in wide.columns]
    wanted = [f"{r} {s}" for r in ratings for s in ("mean", "sd", "n")]
    wide = wide.reindex(columns=wanted)
    for r in ratings:
        wide[f"{r} n"] = wide[f"{r} n"].fillna(0).astype("int64")
    outcome = data.groupby([co, se], observed=True)[wb].agg(["mean", "std"])
    wide[f"{wb} mean"] = outcome["mean"]
    wide[f"{wb} sd"] = outcome["std"]
    return wide.reset_index()


# --------------------------------------------------------------------------- models


def _all_estimates(sec: Section, result: Any, model: str) -> None:
    """The "All estimates" table and the tidy rows for estimates.csv, from one
    ``to_frame()`` (it computes every derived effect and its df)."""
    frame = result.to_frame()
    cols = [c for c in ("term", "estimate", "std_error", "df", "statistic", "p_value",
                        "conf_low", "conf_high", "component") if c in frame.columns]
    sec.parts += ["<h3>All estimates</h3>", _table(frame[cols].reset_index(drop=True))]
    tidy = frame.copy()
    tidy.insert(0, "model", model)
    sec.estimates.append(tidy)


#: How the page header names each inference method of the fitted models.
_INFERENCE_WORDS = {
    "satterthwaite": "t tests with Satterthwaite degrees of freedom (as lmerTest)",
    "kenward-roger": "t tests with Kenward–Roger degrees of freedom (as pbkrtest)",
    "z": "Wald z tests (no small-sample correction)",
    "residual": "t tests with residual degrees of freedom",
}


def _fitted(res: Any, unit: str) -> str:
    return (f"<p>Fitted model: <code>{html.escape(_short_words(res.formula, 600))}</code> "
            f"({html.escape(res.method)}, {res.nobs} {unit}).</p>")


#: Random and residual structure of the report's growth model: the one the growth guide
#: recommends for rater-stacked data (calibrated in simulation, also when therapists'
#: growth rates vary; the rater-general ones are conservative).
GROWTH_RANDOM = "rater_slopes_therapist"
GROWTH_RESIDUAL = "rater"
#: lme4's singularity tolerance on the diagonal of the relative covariance factors.
_SINGULAR_TOL = 1e-4


def _growth_body(data: pd.DataFrame, roles: Mapping[str, Any], figdir: Path
                 ) -> Callable[[Section, list[str]], None]:
    def body(sec: Section, caught: list[str]) -> None:
        from .data import stack_raters
        from .growth import fit_growth
        from .plotting import plot_trajectories

        long = stack_raters(data, ratings={"therapist": roles["alliance_therapist"],
                                           "patient": roles["alliance_patient"]},
                            rater="rater", value="alliance")
        co = roles["condition"]
        res = fit_growth(long, outcome="alliance", time=roles["session"],
                         groups=[roles["therapist"], roles["patient"]], rater="rater",
                         moderators=[co], random=GROWTH_RANDOM,
                         residual=GROWTH_RESIDUAL)
        caught += list(res.warnings)
        ref = res.reference_levels.get(co)
        base = (f"{_shown(str(co))} = 0" if ref is None else
                f"the reference level {_shown(str(co))} = {_shown(str(ref))}")
        sec.parts.append(
            '<p class="eq">alliance<sub>rtpj</sub> = β<sub>0r</sub> + β<sub>1r</sub> '
            "session<sub>t</sub> + β<sub>2r</sub> condition<sub>j</sub> + β<sub>3r</sub> "
            "session<sub>t</sub>·condition<sub>j</sub> + u<sub>0j</sub> + u<sub>1rj</sub> "
            "session<sub>t</sub> + u<sub>0rpj</sub> "
            "+ u<sub>1rpj</sub> session<sub>t</sub> + e<sub>rtpj</sub>; rater r, session t "
            "(centred on the first), patient p, therapist j. Per therapist a random "
            "intercept and a growth rate for each rater, per patient an intercept and a "
            "growth rate for each rater, correlated within each level (training is "
            "assigned to therapists, so their growth rates' variance enters the test of "
            "its effect); a residual variance per rater, the two raters' residuals "
            "of a session correlated (the dyadic growth model the growth guide "
            "recommends for ratings stacked by rater). β<sub>1r</sub> is the growth "
            "rate of rater r at "
            f"{html.escape(base)}, β<sub>3r</sub> the difference in it between the "
            "conditions.</p>")
        sec.parts.append(_fitted(res, "ratings"))
        sec.parts.append(_reference_html(res.reference_levels))
        if res.is_singular:
            sec.parts.append(_singular_html(res))
        for name in ("growth_rates", "contrasts"):
            table = getattr(res, name, None)
            if isinstance(table, pd.DataFrame):
                sec.parts += [f"<h3>{name.replace('_', ' ').capitalize()}</h3>",
                              _table(_plain(table, label="contrast"))]
        _all_estimates(sec, res, "growth")
        ratings = {"therapist": roles["alliance_therapist"],
                   "patient": roles["alliance_patient"]}
        _figure(sec, lambda fig: plot_trajectories(
            res, growth_data=data, time=roles["session"], condition=co,
            ratings=ratings, ax=fig.add_subplot()),
            "growth_trajectories", figdir,
            "Observed means (95% CI) and fitted growth by rater × condition", figsize=(7, 5))
    return body


def _reference_html(references: Mapping[Any, Any]) -> str:
    """The reference level of every categorical moderator (and of the rater)."""
    if not references:
        return ""
    items = ", ".join(f"{html.escape(_shown(str(k)))} = "
                      f"<b>{html.escape(_shown(str(v)))}</b>" for k, v in references.items())
    return (f"<p>Reference levels: {items}. Terms of a categorical variable compare each "
            f"other level with its reference level.</p>")


def _singular_levels(res: Any) -> list[tuple[str, int, int]]:
    """(level, rank, number of terms) of each level whose random-effect covariance is on
    the boundary, from the relative covariance factors (lme4's isSingular rule: a
    diagonal element of a level's factor below 1e-4)."""
    theta = list(res.optimizer_info.get("theta", []) or [])
    vc = res.variance_components
    levels = [lv for lv in dict.fromkeys(vc["level"]) if lv != "Residual"]
    out, pos = [], 0
    for level in levels:
        q = int((vc["level"] == level).sum())
        diag = []
        for j in range(q):
            if pos < len(theta):
                diag.append(abs(float(theta[pos])))
            pos += q - j
        rank = sum(d >= _SINGULAR_TOL for d in diag)
        if len(diag) == q and rank < q:
            out.append((str(level), rank, q))
    return out


def _singular_html(res: Any) -> str:
    """What is singular in a fit, said plainly: the structure is kept, not switched."""
    parts = []
    for level, rank, q in _singular_levels(res):
        what = ("its variance is estimated at 0" if q == 1 else
                f"the covariance matrix of its {q} random terms has rank {rank}: a "
                f"combination of them has variance ~0 (e.g. a variance of 0 or a "
                f"correlation of ±1)")
        parts.append(f"{html.escape(_shown(level))}: {what}")
    detail = ("; ".join(parts) + ". ") if parts else ""
    return ('<p class="warn">The fit is singular (on the boundary of the parameter space, '
            f"lme4's isSingular). {detail}The report keeps this structure rather than "
            "switching silently to another: the fixed effects, growth rates and contrasts "
            "remain usable, but the variance components at the boundary are not "
            "interpretable. A simpler structure to compare is "
            "<code>random=\"rater_intercepts\"</code> (see the growth guide).</p>")


def _truth_bias_body(data: pd.DataFrame, roles: Mapping[str, Any], figdir: Path
                     ) -> Callable[[Section, list[str]], None]:
    def body(sec: Section, caught: list[str]) -> None:
        from .plotting import plot_truth_bias
        from .truthbias import fit_truth_bias

        se, co = roles["session"], roles["condition"]
        truth = roles["alliance_patient"]
        res = fit_truth_bias(data, judgment=roles["alliance_therapist"], truth=truth,
                             groups=[roles["therapist"], roles["patient"]],
                             moderators=[co, se])
        caught += list(res.warnings)
        sec.inference = str(getattr(res, "ddf", ""))
        sec.parts.append(_truth_bias_equation(res, truth))
        sec.parts.append(_fallback_html(res.random_fallback))
        sec.parts.append(_fitted(res, "sessions"))
        sec.parts.append(_reference_html(res.reference_levels))
        sessions = _levels(data[se])
        conditions = _levels(data[co])
        grid: dict[str, Any] = {str(co): conditions, str(se): sessions}
        effects = res.effects_at(alpha=0.05, **grid)
        sec.parts += [f"<h3>Truth force and directional bias by "
                      f"{html.escape(_shown(str(co)))} × {html.escape(_shown(str(se)))}</h3>",
                      _table(effects)]
        _all_estimates(sec, res, "truth_bias")
        _figure(sec, lambda fig: plot_truth_bias(res, x=str(se), x_values=sessions,
                                                 hue=str(co), hue_values=conditions, fig=fig),
                "truth_bias", figdir,
                "Truth force and directional bias by session × condition (95% CI)",
                figsize=(10.4, 4), layout="constrained")
    return body


def _random_terms_html(res: Any, truth: Any) -> tuple[str, str]:
    """The random part of a fitted truth-and-bias model, term by term, from its variance
    components (so it is the structure kept, after any fallback)."""
    vc = res.variance_components
    sub = {0: "j", 1: "pj"}
    pieces, words = [], []
    for depth, level in enumerate(lv for lv in dict.fromkeys(vc["level"]) if lv != "Residual"):
        rows = vc[vc["level"] == level]
        idx = sub.get(depth, f"{depth}")
        terms = []
        for term in rows["term"]:
            if term == "Intercept":
                pieces.append(f"u<sub>0{idx}</sub>")
                terms.append("intercept")
            else:
                pieces.append(f"u<sub>T{idx}</sub> T*<sub>tpj</sub>")
                terms.append("truth force" if str(term) == str(truth) else str(term))
        correlated = len(rows) > 1 and rows["corr"].notna().any()
        text = " and ".join(terms)
        if len(rows) > 1:
            text += " (correlated)" if correlated else " (uncorrelated)"
        words.append(f"{html.escape(_shown(str(level)))}: random {html.escape(text)}")
    return " + ".join(pieces), "; ".join(words)


def _truth_bias_equation(res: Any, truth: Any) -> str:
    """The equation of the model actually fitted (its random part as kept)."""
    terms, words = _random_terms_html(res, truth)
    centre = res.centering.get("truth_mean")
    centred = ("both centred on the grand mean of T" + (f" ({centre:.3f})"
                                                       if centre is not None else ""))
    return ('<p class="eq">J*<sub>tpj</sub> = β<sub>0</sub> + β<sub>T</sub> T*<sub>tpj</sub>'
            " + moderator terms (condition × session, crossed with the intercept and T*)"
            f" + {terms} + e<sub>tpj</sub>, with J = therapist-rated and T = patient-rated "
            f"alliance, {centred}; session t, patient p, therapist j. β<sub>0</sub> is the "
            "directional bias, β<sub>T</sub> the truth force (West &amp; Kenny 2011). "
            f"Random part as fitted: {words}.</p>")


def _step_html(step: Mapping[str, str]) -> str:
    term = html.escape(_shown(str(step.get("term", ""))))
    action = str(step.get("action", ""))
    done = (f"the correlation of {term} dropped" if action.startswith("correlation")
            else f"{term} {html.escape(action)}")
    return (f"{html.escape(_shown(str(step.get('level', ''))))}: {done}, as "
            f"{html.escape(str(step.get('reason', '')))}")


def _fallback_html(steps: Sequence[Mapping[str, str]]) -> str:
    """How the default random structure was reached (random="auto")."""
    start = ("The recommended random structure (West &amp; Kenny 2011) is a random truth "
             "force at the therapist and the patient level, correlated with the random "
             "intercepts")
    if not steps:
        return f"<p>{start}; it was fitted as it is (not singular).</p>"
    items = "".join(f"<li>{_step_html(step)}</li>" for step in steps)
    return (f"<p>{start}. That fit was singular, so it was simplified one step at a time "
            f"(each step drops only what the data estimated at the boundary):</p>"
            f"<ol>{items}</ol><p>The estimates below are from the structure kept, shown in "
            f"the equation above and in the fitted formula.</p>")


def _levels(values: pd.Series) -> list[Any]:
    """Observed levels in the data's order: a Categorical's categories, else sorted."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        present = set(values.dropna())
        return [c for c in values.cat.categories if c in present]
    return sorted(values.dropna().unique())


def _rsa_body(data: pd.DataFrame, roles: Mapping[str, Any], figdir: Path
              ) -> Callable[[Section, list[str]], None]:
    def body(sec: Section, caught: list[str]) -> None:
        from .plotting import agreement_predictions, plot_lagged_agreement, plot_surface
        from .rsa import fit_lagged_rsa

        sec.parts.append(
            '<p class="eq">Z<sub>t</sub> = b<sub>0c</sub> + b<sub>1c</sub>X<sub>t−1</sub> + '
            "b<sub>2c</sub>Y<sub>t−1</sub> + b<sub>3c</sub>X<sup>2</sup><sub>t−1</sub> + "
            "b<sub>4c</sub>X<sub>t−1</sub>Y<sub>t−1</sub> + b<sub>5c</sub>Y<sup>2</sup>"
            "<sub>t−1</sub> + γ session<sub>t</sub> + φ Z<sub>t−1</sub> + u<sub>0j</sub> + "
            "u<sub>0pj</sub> + e, with Z = well-being, X = therapist- and Y = patient-rated "
            "alliance at the previous session (centred on their pooled mean), one surface "
            "per condition c. Session is a control (the time trend the design implies: "
            "well-being changes over sessions while both ratings grow; without it the "
            "surface absorbs the trend), as in the power design. a1 = b1 + b2, a2 = b3 + "
            "b4 + b5 (line of congruence), a3 = b1 − b2, a4 = b3 − b4 + b5 (line of "
            "incongruence), a5 = b3 − b5. The model is observational at the session "
            "level: a1 is the level effect along the line of congruence, not a causal "
            "effect of agreement.</p>")
        session = roles["session"]
        res = fit_lagged_rsa(data, outcome=roles["wellbeing"], x=roles["alliance_therapist"],
                             y=roles["alliance_patient"], time=session,
                             unit=[roles["therapist"], roles["patient"]],
                             groups=[roles["therapist"], roles["patient"]],
                             by=roles["condition"], controls=[session])
        caught += list(res.warnings)
        sec.inference = str(getattr(res, "ddf", ""))
        sec.parts.append(
            f"<p>Fitted model: <code>{html.escape(_short_words(res.formula, 600))}</code> "
            f"({html.escape(res.method)}). {_lag_rows(res.lag_info)}</p>")
        reference = res.levels[0] if len(res.levels) else None
        if reference is not None:
            sec.parts.append(_reference_html({roles["condition"]: reference}))
        shown_ref = html.escape(_shown(str(reference)))
        sec.parts += ["<h3>Surface parameters by condition</h3>",
                      _table(_plain(res.surface)),
                      f"<h3>Differences from the reference condition ({shown_ref})</h3>",
                      _table(_plain(res.surface_differences))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # undefined geometry is in the summary notes
            geometry = pd.concat([res.stationary_point, res.principal_axes])
        sec.parts += ["<h3>Stationary point and principal axes (delta method)</h3>",
                      _table(_plain(geometry.sort_index()))]
        pred = agreement_predictions(res)
        sec.parts += ["<h3>Predicted outcome after agreement patterns</h3>",
                      _table(pred)]
        _all_estimates(sec, res, "lagged_rsa")
        width = 6 * max(len(res.levels), 1)
        points = res.nobs <= MAX_POINTS
        caption = "Fitted surfaces by condition (contours" + (
            ", with the observations)" if points else
            f"; the {res.nobs} observations are not drawn, more than {MAX_POINTS})")
        _figure(sec, lambda fig: plot_surface(res, kind="contour", points=points, fig=fig),
                "rsa_contour", figdir, caption, figsize=(width, 5.5), layout="constrained")
        _figure(sec, lambda fig: plot_surface(res, kind="3d", fig=fig), "rsa_surface",
                figdir, "Fitted surfaces by condition (3-D)", figsize=(width, 5.5),
                layout="constrained")
        _figure(sec, lambda fig: plot_lagged_agreement(res, ax=fig.add_subplot()),
                "lagged_agreement", figdir,
                "Predicted well-being after agreement patterns (95% CI)", figsize=(7, 5))
    return body


def _lag_rows(info: Mapping[str, Any]) -> str:
    """Where the rows went, in counts that add up to the rows in the data."""
    rows_in, used = int(info["rows_in"]), int(info["rows_used"])
    no_xy = int(info.get("rows_without_lagged_xy", 0))
    no_prior = int(info.get("rows_without_lagged_outcome", 0))
    missing_now = rows_in - used - no_xy - no_prior
    parts = [f"{no_xy} have no therapist and patient rating at the previous session"]
    if no_prior:
        parts.append(f"{no_prior} no outcome at the previous session")
    if missing_now:
        parts.append(f"{missing_now} a missing value at the current session")
    return (f"{used} of {rows_in} rows were analysed; of the other {rows_in - used}, "
            + ", ".join(parts) + ".")


# --------------------------------------------------------------------------- page


def _versions() -> pd.DataFrame:
    rows = {"python": platform.python_version()}
    for pkg in _PACKAGES:
        try:
            rows[pkg] = metadata.version(pkg)
        except metadata.PackageNotFoundError:
            module = sys.modules.get(pkg)
            rows[pkg] = str(getattr(module, "__version__", "not installed"))
    return pd.DataFrame({"version": rows})


_CSS = """
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;max-width:1100px;margin:2em auto;
padding:0 1em;color:#222;line-height:1.45}
h1{border-bottom:2px solid #345}h2{margin-top:2em;border-bottom:1px solid #ccc}
table.tbl{border-collapse:collapse;font-size:.85em;margin:.5em 1em .8em 0}
table.tbl td,table.tbl th{padding:2px 8px;border-bottom:1px solid #e3e3e3;text-align:right;
white-space:nowrap}
table.tbl td:first-child,table.tbl th:first-child{text-align:left}
table.tbl th{background:#f3f5f7}.row{display:flex;flex-wrap:wrap;align-items:flex-start}
figure{margin:1em 0}figure img{max-width:100%}figcaption{font-size:.85em;color:#555}
.eq{background:#f7f7f2;padding:.6em;border-left:3px solid #aa8}
.warn{background:#fff6e0;border-left:3px solid #e0a000;padding:.3em .8em}
.err{background:#fde8e8;border-left:3px solid #c00;padding:.6em}.ok{color:#2a7a2a}
code{font-size:.9em;word-break:break-word}
"""


def _inference_text(sections: Sequence[Section]) -> str:
    """One sentence naming the inference of every model section that was fitted."""
    used: dict[str, list[str]] = {}
    for sec in sections:
        if sec.inference:
            used.setdefault(sec.inference, []).append(sec.anchor.replace("_", " "))
    if not used:
        return "Intervals are 95%."
    if len(used) == 1:
        method = next(iter(used))
        return (f"Tests and intervals of the models: "
                f"{_INFERENCE_WORDS.get(method, method)}; intervals are 95%.")
    parts = [f"{_INFERENCE_WORDS.get(m, m)} ({', '.join(names)})" for m, names in used.items()]
    return f"Tests and intervals: {'; '.join(parts)}; intervals are 95%."


def _page(sections: Sequence[Section], call: str, seconds: float) -> str:
    toc = "".join(f'<li><a href="#{s.anchor}">{html.escape(s.title)}</a>'
                  f'{f" ({s.status})" if s.failed else ""}</li>' for s in sections)
    body = "".join(f'<section id="{s.anchor}"><h2>{html.escape(s.title)}</h2>'
                   + "".join(s.parts) + "</section>" for s in sections)
    stamp = time.strftime("%Y-%m-%d %H:%M:%S %Z")
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        "<title>alliancestats PRN report</title>"
        f"<style>{_CSS}</style></head><body>"
        "<h1>PRN analysis report</h1>"
        f"<p>Written by alliancestats on {html.escape(stamp)} in {seconds:.1f} s. "
        f"{html.escape(_inference_text(sections))}</p>"
        f"<ol>{toc}</ol>{body}"
        '<section id="reproduce"><h2>Reproducibility</h2>'
        f"<p>Call: <code>{html.escape(_short_words(call, 2000, 150))}</code></p>"
        f"{_table(_versions())}</section>"
        "</body></html>"
    )


def _check_roles(data: pd.DataFrame, roles: Mapping[str, Any]) -> None:
    unknown = sorted(set(roles) - set(DEFAULT_ROLES))
    if unknown:
        raise ValueError(f"`roles` has unknown keys {unknown}; expected {list(DEFAULT_ROLES)}.")
    require_columns(data, dict(roles))
    require_numeric(data, {k: roles[k] for k in ("session", "alliance_therapist",
                                                 "alliance_patient", "wellbeing")})


@dataclass(frozen=True)
class ReportRun:
    """What :func:`run_report` wrote and which sections failed.

    Attributes
    ----------
    path : Path
        ``report.html``.
    sections : tuple of (title, status)
        Every section with its status ("done", "failed", "not available", or "done;
        figure failed: ...").
    failures : tuple of (title, reason)
        Sections whose model (or data overview) failed; figure failures are not here.
    """

    path: Path
    sections: tuple[tuple[str, str], ...]
    failures: tuple[tuple[str, str], ...]

    @property
    def ok(self) -> bool:
        """True when no section failed."""
        return not self.failures


def write_report(
    data: pd.DataFrame | None = None,
    *,
    out: str | Path,
    roles: Mapping[str, Any] | None = None,
    source: str | None = None,
    call: str | None = None,
    progress: bool = True,
) -> Path:
    """Fit growth, truth-and-bias and lagged RSA models and write the HTML report.

    Parameters
    ----------
    data : DataFrame, optional
        Long PRN data, one row per patient × session; default the bundled simulated
        ``datasets.load("prn")``. SPSS value labels read by
        :func:`~alliancestats.read_data` (``data.attrs["value_labels"]``) replace the
        codes of the therapist, patient and condition columns (arms are shown by their
        labels); whole-number session and id columns stored as floats become integers.
        ``data`` itself is not changed.
    out : path
        Output directory (created if needed). Receives ``report.html``,
        ``estimates.csv`` and ``figures/``; checked before anything is fitted. The files
        are written into a temporary directory inside it and moved into place when the
        report is complete; ``.png``/``.svg`` files in ``figures/`` that this report does
        not draw are removed.
    roles : mapping, optional
        Role -> column name, overriding :data:`DEFAULT_ROLES` (keys ``therapist``,
        ``patient``, ``session``, ``condition``, ``alliance_therapist``,
        ``alliance_patient``, ``wellbeing``).
    source : str, optional
        How the data are described in the report (default the file name or "prn").
    call : str, optional
        The command or call to record for reproducibility (default: this function's call
        with ``out`` and ``roles``, and the running script).
    progress : bool
        Print one line per step on stderr.

    Returns
    -------
    Path
        The path of ``report.html``. A section whose model fails is reported inside the
        report; use :func:`run_report` to learn which sections failed.

    Raises
    ------
    TypeError, ValueError
        ``data`` is not a DataFrame, or a role's column is missing or not numeric
        (checked before anything is fitted).
    OSError
        ``out`` (or ``out/figures``) is a file, or cannot be written (checked before
        anything is fitted).

    Examples
    --------
    >>> import tempfile
    >>> from alliancestats.report import write_report
    >>> path = write_report(out=tempfile.mkdtemp(), progress=False)  # doctest: +SKIP
    >>> path.name  # doctest: +SKIP
    'report.html'
    """
    return run_report(data, out=out, roles=roles, source=source, call=call,
                      progress=progress).path


def run_report(
    data: pd.DataFrame | None = None,
    *,
    out: str | Path,
    roles: Mapping[str, Any] | None = None,
    source: str | None = None,
    call: str | None = None,
    progress: bool = True,
) -> ReportRun:
    """:func:`write_report`, returning which sections failed as well as the path.

    Parameters and errors are those of :func:`write_report`.

    Returns
    -------
    ReportRun

    Examples
    --------
    >>> import tempfile
    >>> from alliancestats.report import run_report
    >>> run = run_report(out=tempfile.mkdtemp(), progress=False)  # doctest: +SKIP
    >>> run.ok, run.path.name  # doctest: +SKIP
    (True, 'report.html')
    """
    start = time.perf_counter()
    if data is None:
        from .datasets import load

        data, source = load("prn"), source or "bundled simulated data set 'prn'"
    data = require_frame(data)
    full_roles: dict[str, Any] = {**DEFAULT_ROLES, **dict(roles or {})}
    _check_roles(data, full_roles)
    data = _prepare(data, full_roles)
    outdir = _check_outdir(Path(out))
    stage = Path(tempfile.mkdtemp(prefix=".report-", dir=outdir))
    try:
        _say(f"{len(data)} rows; writing to {outdir}", progress)
        sections = _sections(data, full_roles, source or "data frame", stage / "figures",
                             progress)
        _write_estimates(sections, stage / "estimates.csv")
        if call is None:  # called from Python: record the call and the running script
            call = (f"write_report(data, out={str(out)!r}, roles={dict(roles or {})!r}) "
                    f"from {Path(sys.argv[0]).name or 'an interactive session'}")
        page = _page(sections, call, time.perf_counter() - start)
        (stage / "report.html").write_text(page, encoding="utf-8")
        path = _publish(stage, outdir, [n for sec in sections for n in sec.figures])
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    _say(f"wrote {path} ({time.perf_counter() - start:.1f} s)", progress)
    return ReportRun(path=path,
                     sections=tuple((sec.title, sec.status) for sec in sections),
                     failures=tuple((sec.title, sec.error or sec.status)
                                    for sec in sections if sec.failed))


def _sections(data: pd.DataFrame, roles: Mapping[str, Any], source: str, figdir: Path,
              progress: bool) -> list[Section]:
    sections = [_run_section(Section("Data overview", "data"),
                             lambda sec, _: _fill(sec, _overview(data, roles, source, figdir)),
                             progress)]
    models = [("Growth of the alliance by rater × condition", "growth", _growth_body),
              ("Truth and bias: do the therapist's ratings follow the patient's?",
               "truth_bias", _truth_bias_body),
              ("Lagged response surface: agreement at t−1 and well-being at t", "lagged_rsa",
               _rsa_body)]
    for title, anchor, make in models:
        sections.append(_run_section(Section(title, anchor), make(data, roles, figdir),
                                     progress))
    return sections


def _write_estimates(sections: Sequence[Section], path: Path) -> None:
    """All model estimates, full labels, formula-like cells neutralised (CSV injection)."""
    frames = [f for s in sections for f in s.estimates if s.anchor != "data"]
    tidy = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["model", "term", "estimate"])
    csv_safe(tidy).to_csv(path, index=False)


def _check_outdir(outdir: Path) -> Path:
    """Create ``outdir`` if needed; refuse a file in its place or in place of figures/."""
    for path in (outdir, outdir / "figures"):
        if path.exists() and not path.is_dir():
            raise NotADirectoryError(f"`out`: {str(path)!r} exists and is not a directory; "
                                     f"remove it or choose another --out.")
    outdir.mkdir(parents=True, exist_ok=True)
    if not os.access(outdir, os.W_OK | os.X_OK):
        raise PermissionError(f"`out`: cannot write to {str(outdir)!r}.")
    return outdir


def _publish(stage: Path, outdir: Path, figures: Sequence[str]) -> Path:
    """Move the finished report into ``outdir``: figures first, report.html last, then
    remove the figures of an earlier report that this one does not draw."""
    figdir = outdir / "figures"
    figdir.mkdir(exist_ok=True)
    made = set()
    for file in sorted((stage / "figures").glob("*")) if (stage / "figures").is_dir() else []:
        os.replace(file, figdir / file.name)
        made.add(file.name)
    os.replace(stage / "estimates.csv", outdir / "estimates.csv")
    os.replace(stage / "report.html", outdir / "report.html")
    for old in figdir.iterdir():
        if old.suffix in {".png", ".svg"} and old.name not in made and old.is_file():
            old.unlink()
    return outdir / "report.html"


def _prepare(data: pd.DataFrame, roles: Mapping[str, Any]) -> pd.DataFrame:
    """A copy with SPSS value labels applied to the categorical roles and whole-number
    float ids and sessions as integers (SPSS stores every number as a double)."""
    out = data.copy()
    labels = data.attrs.get("value_labels") or {}
    for role in _LABELLED_ROLES:
        col = roles[role]
        mapping = labels.get(col) if isinstance(labels, Mapping) else None
        if mapping:
            out[col] = _labelled(out[col], mapping)
    for role in _INTEGER_ROLES:
        col = roles[role]
        values = out[col]
        if pd.api.types.is_float_dtype(values) and values.notna().all() and bool(
                (values == np.round(values)).all()):
            out[col] = values.astype("int64")
    return out


def _labelled(codes: pd.Series, mapping: Mapping[Any, Any]) -> pd.Series:
    """Codes replaced by their value labels, ordered by code (the first code's label is
    the reference level); codes without a label keep their value, as text."""
    order = [str(mapping[k]) for k in sorted(mapping)]
    text = codes.map(lambda v: v if pd.isna(v) else str(mapping.get(v, _code_text(v))))
    extra = sorted(set(text.dropna()) - set(order))
    categories = list(dict.fromkeys(order + extra))
    used = [c for c in categories if c in set(text.dropna())]
    return pd.Series(pd.Categorical(text, categories=used), index=codes.index, name=codes.name)


def _code_text(value: Any) -> str:
    return f"{value:g}" if isinstance(value, float) else str(value)


def _fill(target: Section, source: Section) -> None:
    target.parts += source.parts
    target.estimates += source.estimates
