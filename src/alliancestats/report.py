"""The end-to-end PRN analysis report (``alliancestats report``).

:func:`write_report` fits the three models of a practice-research-network trial —
multilevel growth of the alliance by rater × condition, the truth-and-bias model with
condition and session moderators, and the lagged response surface analysis by condition
— and writes to an output directory:

* ``report.html`` — one self-contained page (figures embedded as PNG, no external
  resources): data overview, per model the equation, the estimates with confidence
  intervals, figures and every warning raised while fitting; versions and the exact call;
* ``estimates.csv`` — all estimates in tidy form (``to_frame()`` of every model plus a
  ``model`` column);
* ``figures/*.png`` and ``figures/*.svg``.

Each model section is isolated: a model that fails (or is not available) is reported in
its section and the other sections are still written.
"""

from __future__ import annotations

import base64
import html
import io
import platform
import sys
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

from ._validation import require_columns, require_frame, require_numeric
from .simulate import COLUMNS

__all__ = ["DEFAULT_ROLES", "write_report"]

#: Canonical column names of the PRN layout (``datasets.load("prn")``).
DEFAULT_ROLES: dict[str, str] = {name: name for name in COLUMNS}

_PACKAGES = ("alliancestats", "numpy", "scipy", "pandas", "statsmodels", "matplotlib")


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


def _say(message: str, progress: bool) -> None:
    if progress:
        print(f"alliancestats report: {message}", file=sys.stderr, flush=True)


def _number(value: float, digits: int) -> str:
    if pd.isna(value):
        return ""
    if value != 0 and abs(value) < 10.0 ** -digits:
        return f"{value:.{digits}g}"
    return f"{value:.{digits}f}"


def _p_value(value: float) -> str:
    """p-values as journals print them: three decimals, or < 0.001."""
    return "" if pd.isna(value) else "< 0.001" if value < 0.001 else f"{value:.3f}"


def _table(frame: pd.DataFrame, digits: int = 3) -> str:
    """An HTML table with numbers rounded for reading (CSV keeps full precision)."""
    shown = frame.copy()
    for col in shown.columns:
        if col == "p_value":
            shown[col] = shown[col].map(_p_value)
        elif pd.api.types.is_float_dtype(shown[col]):
            shown[col] = shown[col].map(lambda v: _number(v, digits))
    # A default RangeIndex carries no information: leave it out of the table.
    plain = isinstance(shown.index, pd.RangeIndex)
    return shown.to_html(classes="tbl", border=0, na_rep="", escape=True, index=not plain)


def _plain(frame: pd.DataFrame, label: str = "term") -> pd.DataFrame:
    """The index as columns (an unnamed one called ``label``), unless it is a default
    RangeIndex, which says nothing."""
    if isinstance(frame.index, pd.RangeIndex):
        return frame
    if frame.index.nlevels == 1 and frame.index.name is None:
        frame = frame.rename_axis(label)
    return frame.reset_index()


def _figure(fig: Any, name: str, outdir: Path, caption: str) -> str:
    """Save ``fig`` as PNG and SVG and return an <figure> with the PNG embedded."""
    import matplotlib.pyplot as plt

    figdir = outdir / "figures"
    figdir.mkdir(parents=True, exist_ok=True)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    png = buf.getvalue()
    (figdir / f"{name}.png").write_bytes(png)
    fig.savefig(figdir / f"{name}.svg", bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure><img alt="{html.escape(caption)}" src="data:image/png;base64,{data}">'
            f"<figcaption>{html.escape(caption)} (<code>figures/{name}.png</code>, "
            f"<code>.svg</code>)</figcaption></figure>")


def _warnings_html(records: Sequence[str]) -> str:
    if not records:
        return '<p class="ok">No warnings were raised while fitting.</p>'
    items = "".join(f"<li>{html.escape(m)}</li>" for m in dict.fromkeys(records))
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
            section.parts.append(f'<p class="err">This model is not available in this '
                                 f"version of alliancestats ({html.escape(str(exc))}).</p>")
        except Exception as exc:  # a failing model must not take the other sections down
            section.failed, section.status = True, "failed"
            detail = "".join(traceback.format_exception_only(exc)).strip()
            section.parts.append(f'<p class="err">The model could not be fitted: '
                                 f"<code>{html.escape(detail)}</code></p>")
    # A warning is often both stored on the result and emitted; list it once, with its class.
    emitted = [f"{r.category.__name__}: {r.message}" for r in records]
    stored = [m for m in caught if not any(e.endswith(f": {m}") for e in emitted)]
    section.parts.append(_warnings_html(emitted + stored))
    section.seconds = time.perf_counter() - start
    _say(f"{section.title}: {section.status} ({section.seconds:.1f} s)", progress)
    return section


# --------------------------------------------------------------------------- data overview


def _overview(data: pd.DataFrame, roles: Mapping[str, str], source: str, outdir: Path
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
    missing_cells = data[list(roles.values())].isna().sum().rename("missing values")
    ratings = {"therapist": roles["alliance_therapist"], "patient": roles["alliance_patient"]}
    means = observed_means(data, time=se, condition=co, ratings=ratings)
    wide = means.pivot_table(index=[co, se], columns="rater", values=["mean", "sd", "n"])
    wide.columns = [f"{pair[1]} {pair[0]}" for pair in wide.columns]
    wide = wide[[f"{r} {s}" for r in ratings for s in ("mean", "sd", "n")]]
    wide = wide.astype({f"{r} n": "int64" for r in ratings})
    outcome = data.groupby([co, se], observed=True)[roles["wellbeing"]].agg(["mean", "std"])
    wide[f"{roles['wellbeing']} mean"] = outcome["mean"]
    wide[f"{roles['wellbeing']} sd"] = outcome["std"]
    sec.parts += [
        '<div class="row">', _table(sizes), _table(arms.rename_axis(co)),
        _table(per_session.to_frame()), _table(missing_cells.to_frame()), "</div>",
        f"<h3>Means and SDs by {html.escape(co)} × {html.escape(se)} × rater</h3>",
        _table(wide.reset_index(), digits=2),
    ]
    ax = plot_trajectories(data, time=se, condition=co, ratings=ratings)
    sec.parts.append(_figure(ax.get_figure(), "observed_means", outdir,
                             "Observed alliance means (95% CI) by rater × condition"))
    sec.estimates.append(means.assign(model="data", component="observed mean"))
    return sec


# --------------------------------------------------------------------------- models


def _tidy(result: Any, model: str) -> pd.DataFrame:
    frame = result.to_frame().copy()
    frame.insert(0, "model", model)
    return frame


def _estimates_html(result: Any) -> str:
    frame = result.to_frame()
    cols = [c for c in ("term", "estimate", "std_error", "statistic", "p_value", "conf_low",
                        "conf_high", "component") if c in frame.columns]
    return _table(frame[cols].reset_index(drop=True))


def _growth_body(data: pd.DataFrame, roles: Mapping[str, str], outdir: Path
                 ) -> Callable[[Section, list[str]], None]:
    def body(sec: Section, caught: list[str]) -> None:
        from .data import stack_raters
        from .growth import fit_growth
        from .plotting import plot_trajectories

        long = stack_raters(data, ratings={"therapist": roles["alliance_therapist"],
                                           "patient": roles["alliance_patient"]},
                            rater="rater", value="alliance")
        sec.parts.append(
            '<p class="eq">alliance<sub>rtpj</sub> = β<sub>0r</sub> + β<sub>1r</sub> '
            "session<sub>t</sub> + β<sub>2r</sub> condition<sub>j</sub> + β<sub>3r</sub> "
            "session<sub>t</sub>·condition<sub>j</sub> + random intercepts and session "
            "slopes of therapists and patients (uncorrelated at the patient level) + e; "
            "rater r, session t (centred on the first), patient p, therapist j. "
            "β<sub>1r</sub> is the growth rate of rater r without training, "
            "β<sub>3r</sub> the training effect on it.</p>")
        res = fit_growth(long, outcome="alliance", time=roles["session"],
                         groups=[roles["therapist"], roles["patient"]], rater="rater",
                         moderators=[roles["condition"]], random="slopes_uncorrelated")
        caught += list(res.warnings)
        sec.parts.append(f"<p>Fitted model: <code>{html.escape(res.formula)}</code> "
                         f"({html.escape(res.method)}, {res.nobs} ratings).</p>")
        for name in ("growth_rates", "contrasts"):
            table = getattr(res, name, None)
            if isinstance(table, pd.DataFrame):
                sec.parts += [f"<h3>{name.replace('_', ' ').capitalize()}</h3>",
                              _table(_plain(table, label="contrast"))]
        sec.parts += ["<h3>All estimates</h3>", _estimates_html(res)]
        sec.estimates.append(_tidy(res, "growth"))
        ax = plot_trajectories(res, growth_data=data, time=roles["session"],
                               condition=roles["condition"],
                               ratings={"therapist": roles["alliance_therapist"],
                                        "patient": roles["alliance_patient"]})
        sec.parts.append(_figure(ax.get_figure(), "growth_trajectories", outdir,
                                 "Observed means (95% CI) and fitted growth by rater × "
                                 "condition"))
    return body


def _truth_bias_body(data: pd.DataFrame, roles: Mapping[str, str], outdir: Path
                     ) -> Callable[[Section, list[str]], None]:
    def body(sec: Section, caught: list[str]) -> None:
        from .plotting import plot_truth_bias
        from .truthbias import fit_truth_bias

        se, co = roles["session"], roles["condition"]
        sec.parts.append(
            '<p class="eq">J*<sub>tpj</sub> = β<sub>0</sub> + β<sub>T</sub> T*<sub>tpj</sub>'
            " + moderator terms (condition × session, crossed with the intercept and T*) "
            "+ u<sub>0j</sub> + u<sub>0pj</sub> + e, with J = therapist-rated and T = "
            "patient-rated alliance, both centred on the grand mean of T. β<sub>0</sub> is "
            "the directional bias, β<sub>T</sub> the truth force (West &amp; Kenny 2011).</p>")
        res = fit_truth_bias(data, judgment=roles["alliance_therapist"],
                             truth=roles["alliance_patient"],
                             groups=[roles["therapist"], roles["patient"]],
                             moderators=[co, se])
        caught += list(res.warnings)
        sec.parts.append(f"<p>Fitted model: <code>{html.escape(res.formula)}</code> "
                         f"({html.escape(res.method)}, {res.nobs} sessions).</p>")
        sessions = sorted(data[se].dropna().unique())
        conditions = sorted(data[co].dropna().unique())
        grid: dict[str, Any] = {co: conditions, se: sessions}
        effects = res.effects_at(alpha=0.05, **grid)
        sec.parts += [f"<h3>Truth force and directional bias by {html.escape(co)} × "
                      f"{html.escape(se)}</h3>", _table(effects)]
        sec.parts += ["<h3>All estimates</h3>", _estimates_html(res)]
        sec.estimates.append(_tidy(res, "truth_bias"))
        fig = plot_truth_bias(res, x=se, x_values=sessions, hue=co, hue_values=conditions)
        sec.parts.append(_figure(fig, "truth_bias", outdir,
                                 "Truth force and directional bias by session × condition "
                                 "(95% CI)"))
    return body


def _rsa_body(data: pd.DataFrame, roles: Mapping[str, str], outdir: Path
              ) -> Callable[[Section, list[str]], None]:
    def body(sec: Section, caught: list[str]) -> None:
        from .plotting import agreement_predictions, plot_lagged_agreement, plot_surface
        from .rsa import fit_lagged_rsa

        sec.parts.append(
            '<p class="eq">Z<sub>t</sub> = b<sub>0c</sub> + b<sub>1c</sub>X<sub>t−1</sub> + '
            "b<sub>2c</sub>Y<sub>t−1</sub> + b<sub>3c</sub>X<sup>2</sup><sub>t−1</sub> + "
            "b<sub>4c</sub>X<sub>t−1</sub>Y<sub>t−1</sub> + b<sub>5c</sub>Y<sup>2</sup>"
            "<sub>t−1</sub> + φ Z<sub>t−1</sub> + u<sub>0j</sub> + u<sub>0pj</sub> + e, "
            "with Z = well-being, X = therapist- and Y = patient-rated alliance at the "
            "previous session (centred on their pooled mean), one surface per condition c. "
            "a1 = b1 + b2, a2 = b3 + b4 + b5 (line of congruence), a3 = b1 − b2, "
            "a4 = b3 − b4 + b5 (line of incongruence), a5 = b3 − b5.</p>")
        res = fit_lagged_rsa(data, outcome=roles["wellbeing"], x=roles["alliance_therapist"],
                             y=roles["alliance_patient"], time=roles["session"],
                             unit=[roles["therapist"], roles["patient"]],
                             groups=[roles["therapist"], roles["patient"]],
                             by=roles["condition"])
        caught += list(res.warnings)
        info = res.lag_info
        sec.parts.append(
            f"<p>Fitted model: <code>{html.escape(res.formula)}</code> ({res.method}; "
            f"{info['rows_used']} of {info['rows_in']} rows have the previous session, "
            f"{info['rows_without_lagged_xy']} do not).</p>")
        sec.parts += ["<h3>Surface parameters by condition</h3>",
                      _table(_plain(res.surface)),
                      "<h3>Differences from the first condition</h3>",
                      _table(_plain(res.surface_differences))]
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # undefined geometry is in the summary notes
            geometry = pd.concat([res.stationary_point, res.principal_axes])
        sec.parts += ["<h3>Stationary point and principal axes (delta method)</h3>",
                      _table(_plain(geometry.sort_index()))]
        pred = agreement_predictions(res)
        sec.parts += ["<h3>Predicted outcome after agreement patterns</h3>",
                      _table(pred)]
        sec.parts += ["<h3>All estimates</h3>", _estimates_html(res)]
        sec.estimates.append(_tidy(res, "lagged_rsa"))
        sec.parts.append(_figure(plot_surface(res, kind="contour", points=True), "rsa_contour",
                                 outdir, "Fitted surfaces by condition (contours)"))
        sec.parts.append(_figure(plot_surface(res, kind="3d"), "rsa_surface", outdir,
                                 "Fitted surfaces by condition (3-D)"))
        ax = plot_lagged_agreement(res)
        sec.parts.append(_figure(ax.get_figure(), "lagged_agreement", outdir,
                                 "Predicted well-being after agreement patterns (95% CI)"))
    return body


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
        "Inference for mixed models is z-based (Wald); intervals are 95%.</p>"
        f"<ol>{toc}</ol>{body}"
        '<section id="reproduce"><h2>Reproducibility</h2>'
        f"<p>Call: <code>{html.escape(call)}</code></p>{_table(_versions())}</section>"
        "</body></html>"
    )


def _check_roles(data: pd.DataFrame, roles: Mapping[str, str]) -> None:
    unknown = sorted(set(roles) - set(DEFAULT_ROLES))
    if unknown:
        raise ValueError(f"`roles` has unknown keys {unknown}; expected {list(DEFAULT_ROLES)}.")
    require_columns(data, dict(roles))
    require_numeric(data, {k: roles[k] for k in ("session", "alliance_therapist",
                                                 "alliance_patient", "wellbeing")})


def write_report(
    data: pd.DataFrame | None = None,
    *,
    out: str | Path,
    roles: Mapping[str, str] | None = None,
    source: str | None = None,
    call: str | None = None,
    progress: bool = True,
) -> Path:
    """Fit growth, truth-and-bias and lagged RSA models and write the HTML report.

    Parameters
    ----------
    data : DataFrame, optional
        Long PRN data, one row per patient × session; default the bundled simulated
        ``datasets.load("prn")``.
    out : path
        Output directory (created if needed). Receives ``report.html``,
        ``estimates.csv`` and ``figures/``.
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
        The path of ``report.html``.

    Raises
    ------
    TypeError, ValueError
        ``data`` is not a DataFrame, or a role's column is missing or not numeric
        (checked before anything is fitted).

    Examples
    --------
    >>> import tempfile
    >>> from alliancestats.report import write_report
    >>> path = write_report(out=tempfile.mkdtemp(), progress=False)  # doctest: +SKIP
    >>> path.name  # doctest: +SKIP
    'report.html'
    """
    import matplotlib

    matplotlib.use("Agg")  # headless: figures are only written to files
    start = time.perf_counter()
    if data is None:
        from .datasets import load

        data, source = load("prn"), source or "bundled simulated data set 'prn'"
    data = require_frame(data)
    full_roles = {**DEFAULT_ROLES, **dict(roles or {})}
    _check_roles(data, full_roles)
    outdir = Path(out)
    outdir.mkdir(parents=True, exist_ok=True)
    _say(f"{len(data)} rows; writing to {outdir}", progress)
    sections = [_run_section(Section("Data overview", "data"),
                             lambda sec, _: _fill(sec, _overview(data, full_roles,
                                                                 source or "data frame", outdir)),
                             progress)]
    models = [("Growth of the alliance by rater × condition", "growth", _growth_body),
              ("Truth and bias: does the therapist track the patient's alliance?",
               "truth_bias", _truth_bias_body),
              ("Lagged response surface: agreement at t−1 and well-being at t", "lagged_rsa",
               _rsa_body)]
    for title, anchor, make in models:
        sections.append(_run_section(Section(title, anchor), make(data, full_roles, outdir),
                                     progress))
    frames = [f for s in sections for f in s.estimates if s.title != "Data overview"]
    tidy = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame(
        columns=["model", "term", "estimate"])
    tidy.to_csv(outdir / "estimates.csv", index=False)
    if call is None:  # called from Python: record the call and the running script
        call = (f"write_report(data, out={str(out)!r}, roles={dict(roles or {})!r}) "
                f"from {Path(sys.argv[0]).name or 'an interactive session'}")
    page = _page(sections, call, time.perf_counter() - start)
    path = outdir / "report.html"
    path.write_text(page, encoding="utf-8")
    _say(f"wrote {path} ({time.perf_counter() - start:.1f} s)", progress)
    return path


def _fill(target: Section, source: Section) -> None:
    target.parts += source.parts
    target.estimates += source.estimates
