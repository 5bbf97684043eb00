"""Plots of fitted models and power results (matplotlib).

Every function takes ``ax=None`` (drawing on ``plt.gca()`` or on new axes when None),
returns the Axes it drew on (a Figure for multi-panel plots) and never calls
``plt.show()``, so plots compose with user figures and run under any backend.

========================================  =============================================
function                                  draws
========================================  =============================================
:func:`plot_surface`                      a fitted response surface (3-D or contour)
:func:`plot_lagged_agreement`             predicted outcome after agreement patterns
:func:`plot_truth_bias`                   truth force / directional bias by moderators
:func:`plot_trajectories`                 observed (and fitted) rating trajectories
:func:`plot_power`                        power curves with Monte-Carlo intervals
:func:`plot_box_score`                    box-score bars (:func:`.box_score`)
========================================  =============================================
"""

from __future__ import annotations

import warnings
from collections.abc import Hashable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from scipy import stats
from scipy.spatial import ConvexHull, Delaunay, QhullError

from ._validation import check_choice, require_columns, require_frame, require_numeric
from .exceptions import AllianceStatsWarning

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from .synthesis import BoxScoreResult

__all__ = [
    "plot_box_score",
    "plot_lagged_agreement",
    "plot_power",
    "plot_surface",
    "plot_trajectories",
    "plot_truth_bias",
]


def _hull_style() -> dict[str, Any]:
    """White with a dark outline: visible on any colour map and in the legend."""
    from matplotlib import patheffects

    return {"color": "white", "lw": 1.5,
            "path_effects": [patheffects.withStroke(linewidth=3, foreground="0.15")]}

_PATTERNS = ("both high", "both low", "therapist higher", "patient higher")


def _plt() -> Any:
    import matplotlib.pyplot as plt

    return plt


def _cycle_colors() -> list[str]:
    """The colours of the current style's property cycle (no pyplot needed)."""
    import matplotlib

    return list(matplotlib.rcParams["axes.prop_cycle"].by_key()["color"])


def _is_3d(ax: Any) -> bool:
    return getattr(ax, "name", "") == "3d"


def _require_rsa(result: Any, func: str) -> None:
    from .rsa import RSAResults

    if not isinstance(result, RSAResults):
        raise TypeError(f"{func}() needs the result of fit_rsa() or fit_lagged_rsa(); "
                        f"got {type(result).__name__}.")


# --------------------------------------------------------------------------- surfaces


def _check_level(result: Any, level: Any) -> None:
    """``level`` must be one of the fit's surfaces (message lists them)."""
    levels = list(result.levels)
    if levels == [None]:
        raise ValueError("`level` is only used with fits that have `by` or "
                         "decompose='unit'.")
    if level not in levels:
        what = "surfaces" if result.decomposed else "`by` levels"
        raise ValueError(f"`level` must be one of the {what} {levels}; got {level!r}.")


def _scales(result: Any, level: Any) -> tuple[float, float, float, float]:
    """x shift, y shift, x scale, y scale from the plotted coordinates of ``level`` to
    the fit's centred scale (the within-unit surface of ``decompose="unit"`` is drawn
    over deviations from the unit means, which are not shifted)."""
    c = result.centering
    if result.decomposed and level == "within":
        return 0.0, 0.0, c["x_scale"], c["y_scale"]
    return c["x_shift"], c["y_shift"], c["x_scale"], c["y_scale"]


def _to_raw(result: Any, level: Any, xc: np.ndarray, yc: np.ndarray
            ) -> tuple[np.ndarray, np.ndarray]:
    """Map the fit's centred (and scaled) coordinates back to the plotted scale."""
    mx, my, sx, sy = _scales(result, level)
    return xc * sx + mx, yc * sy + my


def _panel_data(result: Any, level: Any) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Observed x, y and outcome of one surface on its plotted coordinates."""
    obs = result.observations[result.level_mask(level)]
    xcol, ycol = ("x", "y") if not result.decomposed else (f"x_{level}", f"y_{level}")
    return (obs[xcol].to_numpy(float), obs[ycol].to_numpy(float),
            obs["outcome"].to_numpy(float))


def _geometry(result: Any, level: Any) -> tuple[float, float, float, float]:
    """X0, Y0, p10, p11 of one level on the centred scale (NaN when undefined)."""
    with warnings.catch_warnings():  # undefined geometry is simply not drawn
        warnings.simplefilter("ignore", AllianceStatsWarning)
        point, axes = result.stationary_point, result.principal_axes
    if level is not None:
        point, axes = point.xs(level, level="level"), axes.xs(level, level="level")
    est = [point.loc["X0", "estimate"], point.loc["Y0", "estimate"],
           axes.loc["p10", "estimate"], axes.loc["p11", "estimate"]]
    return tuple(float(v) for v in est)  # type: ignore[return-value]


def _panel_grid(result: Any, level: Any, n_grid: int) -> dict[str, Any]:
    """Observed points of one level and the fitted surface on a square grid over them."""
    xr, yr, zr = _panel_data(result, level)
    # One common range for X and Y keeps the line of congruence on the diagonal.
    lo, hi = float(min(xr.min(), yr.min())), float(max(xr.max(), yr.max()))
    grid = np.linspace(lo, hi, n_grid)
    zz = result.predict(grid, grid, level=level, grid=True)
    return {"level": level, "zr": zr, "xr": xr, "yr": yr, "lo": lo, "hi": hi,
            "grid": grid, "zz": zz}


def _observed_z_range(panel: Mapping[str, Any]) -> tuple[float, float]:
    """Range of the surface over the grid points inside the convex hull of the data.

    The colour scale spans this range so that colours resolve the surface where there are
    data; extrapolated corners (often far steeper) fall into the colour bar's extensions.
    """
    xx, yy = np.meshgrid(panel["grid"], panel["grid"])
    zz = panel["zz"]
    try:
        points = np.column_stack([panel["xr"], panel["yr"]])
        # triangulating the hull's corners gives the same region as all points, and
        # point location in it stays fast with many (often tied, rounded) ratings
        tri = Delaunay(points[ConvexHull(points).vertices])
        keep = tri.find_simplex(np.column_stack([xx.ravel(), yy.ravel()])) >= 0
    except (QhullError, ValueError):  # degenerate data: use the whole grid
        keep = np.ones(zz.size, dtype=bool)
    values = zz.ravel()[keep] if keep.any() else zz.ravel()
    return float(values.min()), float(values.max())


def _z_scales(panels: Sequence[Mapping[str, Any]]) -> dict[str, tuple[float, float]]:
    """Colour range (inside the data hulls) and full z range shared by all panels."""
    inner = [_observed_z_range(p) for p in panels]
    return {"zrange": (min(r[0] for r in inner), max(r[1] for r in inner)),
            "zlim": (min(float(p["zz"].min()) for p in panels),
                     max(float(p["zz"].max()) for p in panels))}


def _draw_surface(kind: str, ax: Any, panel: Mapping[str, Any], opts: Mapping[str, Any],
                  kwargs: dict[str, Any]) -> None:
    xx, yy = np.meshgrid(panel["grid"], panel["grid"])
    zmin, zmax = opts["zrange"]
    flat = not zmax - zmin > 1e-12 * max(1.0, abs(zmax))
    if kind == "3d":
        colours = {} if flat else {"vmin": zmin, "vmax": zmax}
        ax.plot_surface(xx, yy, panel["zz"],
                        **{"cmap": "viridis", "alpha": 0.8, **colours, **kwargs})
        lo, hi = opts["zlim"]
        if hi > lo:
            ax.set_zlim(lo, hi)
    else:
        from matplotlib.ticker import MaxNLocator

        # round contour values (about 14 bands) that cover the observed range
        levels: Any = 15 if flat else MaxNLocator(nbins=14).tick_values(zmin, zmax)
        filled = ax.contourf(xx, yy, panel["zz"], **{
            "levels": levels, "cmap": "viridis", "extend": "neither" if flat else "both",
            **kwargs})
        ax.get_figure().colorbar(filled, ax=ax, label=opts["zlabel"])


def _surface_panel(result: Any, kind: str, ax: Any, panel: Mapping[str, Any],
                   opts: dict[str, Any], kwargs: dict[str, Any]) -> None:
    level, lo, hi, grid = panel["level"], panel["lo"], panel["hi"], panel["grid"]
    xr, yr, zr = panel["xr"], panel["yr"], panel["zr"]
    mx, my, sx_, sy_ = _scales(result, level)
    # X = -Y on the centred scale, i.e. through the centre with slope -sy/sx.
    loic = my - sy_ / sx_ * (grid - mx)
    lines = [(grid, grid, "line of congruence (X = Y)", "k", "-"),
             (grid, loic, "line of incongruence (X = −Y)", "k", "--")]
    x0, y0, p10, p11 = _geometry(result, level)
    if opts["principal_axis"] and np.isfinite(p10) and np.isfinite(p11):
        xc = (grid - mx) / sx_
        lines.append((grid, _to_raw(result, level, xc, p10 + p11 * xc)[1],
                      "first principal axis", "tab:red", ":"))
    _draw_surface(kind, ax, panel, opts, kwargs)
    for gx, gy, label, color, style in lines:
        keep = (gy >= lo) & (gy <= hi)
        if kind == "3d":
            gz = result.predict(gx[keep], gy[keep], level=level)
            ax.plot(gx[keep], gy[keep], gz, color=color, linestyle=style, label=label)
        else:
            ax.plot(gx[keep], gy[keep], color=color, linestyle=style, label=label)
    if opts["stationary_point"] and np.isfinite(x0) and np.isfinite(y0):
        sx, sy = _to_raw(result, level, np.array([x0]), np.array([y0]))
        if lo <= sx[0] <= hi and lo <= sy[0] <= hi:
            extra = [result.predict(sx, sy, level=level)] if kind == "3d" else []
            ax.scatter(sx, sy, *extra, color="tab:red", marker="X", s=60,
                       label="stationary point", zorder=5)
    _surface_data(result, kind, ax, level, xr, yr, zr, opts)
    ax.set_xlim(lo, hi)
    ax.set_ylim(lo, hi)
    ax.set_xlabel(opts["xlabel"])
    ax.set_ylabel(opts["ylabel"])
    if kind == "3d":
        from matplotlib.ticker import MaxNLocator

        ax.set_zlabel(opts["zlabel"])
        for axis in (ax.xaxis, ax.yaxis):  # fewer ticks: 3-D tick labels crowd easily
            axis.set_major_locator(MaxNLocator(5))
    else:
        ax.set_aspect("equal")
    if level is not None:
        ax.set_title(f"{level}-unit surface" if result.decomposed
                     else f"{result.roles['by']} = {level}")


def _surface_data(result: Any, kind: str, ax: Any, level: Any, xr: np.ndarray,
                  yr: np.ndarray, zr: np.ndarray, opts: dict[str, Any]) -> None:
    """Observed (X, Y) points and their convex hull, if asked for."""
    if opts["points"]:
        if kind == "3d":
            ax.scatter(xr, yr, zr, color="0.2", s=6, alpha=0.4, label="observations")
        else:
            ax.scatter(xr, yr, color="0.2", s=6, alpha=0.4, label="observations")
    if opts["hull"]:
        try:
            hull = ConvexHull(np.column_stack([xr, yr]))
        except (QhullError, ValueError):  # fewer than 3 distinct points: nothing to draw
            return
        idx = np.append(hull.vertices, hull.vertices[0])
        hx, hy = xr[idx], yr[idx]
        if kind == "3d":
            ax.plot(hx, hy, result.predict(hx, hy, level=level), label="convex hull of data",
                    **_hull_style())
        else:
            ax.plot(hx, hy, label="convex hull of data", **_hull_style())


def plot_surface(
    result: Any,
    kind: str = "3d",
    *,
    level: Any = None,
    ax: Axes | None = None,
    fig: Figure | None = None,
    points: bool = False,
    hull: bool = True,
    stationary_point: bool = True,
    principal_axis: bool = True,
    n_grid: int = 40,
    legend: bool = True,
    xlabel: str | None = None,
    ylabel: str | None = None,
    zlabel: str | None = None,
    **kwargs: Any,
) -> Any:
    """Fitted response surface over the observed range of X and Y.

    Draws the surface (``kind="3d"``) or its filled contours (``kind="contour"``) over
    the square spanned by the smallest and largest observed X or Y, with the line of
    congruence (X = Y, solid) and of incongruence (X = −Y through the centre, dashed),
    optionally the stationary point, the first principal axis, the observations and the
    convex hull of the observed (X, Y) pairs (outside it the surface is extrapolated).

    The colour scale spans the fitted values inside that hull; steeper extrapolated
    corners take the end colours (the colour bar's pointed extensions). Panels of a
    ``by`` fit share one colour scale (and, in 3-D, one z axis) so they can be compared.

    Parameters
    ----------
    result : RSAResults
        From :func:`~alliancestats.fit_rsa` or :func:`~alliancestats.fit_lagged_rsa`.
    kind : {"3d", "contour"}
    level : optional
        One level of ``by`` (or ``"within"`` / ``"between"`` of a ``decompose="unit"``
        fit). With several surfaces and ``level=None`` every surface gets a panel and a
        :class:`~matplotlib.figure.Figure` is returned. The within-unit surface is drawn
        over the deviations from the unit's means (``observations["x_within"]``), the
        between-unit surface over the unit means.
    ax : matplotlib Axes, optional
        For ``kind="3d"`` a 3-D Axes (``fig.add_subplot(projection="3d")``). A new figure
        is made when None.
    fig : matplotlib Figure, optional
        With one panel per ``by`` level: draw the panels into this (empty) figure instead
        of a new pyplot figure, e.g. a ``matplotlib.figure.Figure()``, which needs no
        pyplot and leaves the pyplot state alone.
    points, hull, stationary_point, principal_axis : bool
        Which overlays to draw (the stationary point only when inside the plotted range).
    n_grid : int
        Grid points per axis.
    legend : bool
        Explain the lines and markers in a legend below the axes (with several panels, one
        legend below the figure).
    xlabel, ylabel, zlabel : str, optional
        Axis labels; default the column names of x, y and the outcome.
    **kwargs
        Passed to :meth:`mpl_toolkits.mplot3d.axes3d.Axes3D.plot_surface` (``kind="3d"``)
        or :meth:`matplotlib.axes.Axes.contourf` (``kind="contour"``), e.g. ``cmap``.

    Returns
    -------
    matplotlib Axes, or Figure with one panel per ``by`` level.

    Raises
    ------
    ValueError
        Unknown ``kind``; a 2-D ``ax`` with ``kind="3d"`` (or a 3-D one with
        ``"contour"``); ``ax`` given for a fit with several surfaces but no ``level``.

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import numpy as np, pandas as pd
    >>> from alliancestats import fit_rsa, plot_surface
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame({"x": rng.normal(size=80), "y": rng.normal(size=80)})
    >>> df["z"] = -(df.x - df.y) ** 2 + rng.normal(size=80)
    >>> ax = plot_surface(fit_rsa(df, outcome="z", x="x", y="y"), kind="contour")
    >>> ax.get_xlabel()
    'x'
    """
    _require_rsa(result, "plot_surface")
    if kind not in ("3d", "contour"):
        raise ValueError(f"`kind` must be '3d' or 'contour'; got {kind!r}.")
    if isinstance(n_grid, bool) or not isinstance(n_grid, int | np.integer) or n_grid < 2:
        raise ValueError(f"`n_grid` must be an integer >= 2; got {n_grid!r}.")
    if ax is not None and kind == "3d" and not _is_3d(ax):
        raise ValueError("kind='3d' needs a 3-D Axes, but `ax` is 2-D: make one with "
                         "fig.add_subplot(projection='3d'), or use kind='contour'.")
    if ax is not None and kind == "contour" and _is_3d(ax):
        raise ValueError("kind='contour' needs a 2-D Axes, but `ax` is 3-D.")
    roles = result.roles
    opts: dict[str, Any] = {"points": points, "hull": hull, "stationary_point": stationary_point,
            "principal_axis": principal_axis, "n_grid": int(n_grid), "legend": legend,
            "xlabel": xlabel or str(roles["x"]), "ylabel": ylabel or str(roles["y"]),
            "zlabel": zlabel or str(roles["outcome"])}
    levels = result.levels
    if level is not None:
        _check_level(result, level)
    if levels != [None] and level is None:
        if ax is not None:
            what = ("within- and between-unit surfaces" if result.decomposed
                    else f"one surface per level of {roles['by']!r}")
            raise ValueError(f"The fit has {what}; pass `level` (one of {levels}) to draw "
                             f"one of them on `ax`.")
        return _surface_figure(result, kind, levels, opts, kwargs, fig)
    if ax is None:
        fig = _plt().figure(figsize=(6.5, 5.5)) if fig is None else fig
        ax = fig.add_subplot(projection="3d" if kind == "3d" else None)
    panel = _panel_grid(result, level, opts["n_grid"])
    _surface_panel(result, kind, ax, panel, {**opts, **_z_scales([panel])}, kwargs)
    if legend:  # below the axes: inside, it would hide part of the surface
        ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14 if kind == "contour" else 0),
                  ncols=2, frameon=False, fontsize="small")
    return ax


def _surface_figure(result: Any, kind: str, levels: list[Any], opts: dict[str, Any],
                    kwargs: dict[str, Any], fig: Figure | None = None) -> Figure:
    panels = [_panel_grid(result, lev, opts["n_grid"]) for lev in levels]
    # One colour scale (and z axis) for all panels, so that the surfaces can be compared.
    opts = {**opts, **_z_scales(panels)}
    if fig is None:
        fig = _plt().figure(figsize=(6 * len(levels), 5.5), layout="constrained")
    for i, panel in enumerate(panels):
        ax = fig.add_subplot(1, len(levels), i + 1,
                             projection="3d" if kind == "3d" else None)
        _surface_panel(result, kind, ax, panel, opts, kwargs)
    if opts["legend"]:
        handles, labels = fig.axes[0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=min(len(labels), 4),
                   frameon=False)
    return fig


# --------------------------------------------------------------------------- lagged RSA


def plot_lagged_agreement(
    result: Any,
    *,
    low: float | None = None,
    high: float | None = None,
    alpha: float = 0.05,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Predicted outcome after four agreement patterns at the previous session.

    For each level of ``by`` (e.g. condition) the fitted surface is evaluated at
    (X, Y) = (high, high) "both high", (low, low) "both low", (high, low) "therapist
    higher" and (low, high) "patient higher" (X is the fit's ``x``, by convention the
    therapist's rating), with controls at their centre (a lagged outcome at its mean).
    Intervals are those of :meth:`RSAResults.predict_interval`: the prediction is a
    linear combination ``g' b`` of the surface coefficients (``g = (1, X, Y, X², XY, Y²)``
    on the fit's centred scale for second-order models, with the cubic or piecewise
    terms for those models), ``se = sqrt(g' V g)``, t with the fit's df.

    Parameters
    ----------
    result : RSAResults
        Usually from :func:`~alliancestats.fit_lagged_rsa` with ``by="condition"``.
    low, high : float, optional
        Rating values of "low" and "high"; default the pooled mean of the analysed X and Y
        minus / plus one pooled SD.
    alpha : float
        1 − confidence level of the intervals.
    ax : matplotlib Axes, optional
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.errorbar` (e.g. ``capsize``, ``markersize``).

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from alliancestats import datasets, fit_lagged_rsa, plot_lagged_agreement
    >>> res = fit_lagged_rsa(datasets.load("prn"), outcome="wellbeing",
    ...                      x="alliance_therapist", y="alliance_patient", time="session",
    ...                      unit=["therapist", "patient"], groups=["therapist", "patient"],
    ...                      by="condition")
    >>> ax = plot_lagged_agreement(res)
    >>> [t.get_text() for t in ax.get_xticklabels()]
    ['both high', 'both low', 'therapist higher', 'patient higher']
    """
    _require_rsa(result, "plot_lagged_agreement")
    if not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be between 0 and 1; got {alpha!r}.")
    table = agreement_predictions(result, low=low, high=high, alpha=alpha)
    plt = _plt()
    ax = plt.gca() if ax is None else ax
    levels = list(result.levels)
    width = 0.6 / max(len(levels), 1)
    pos = np.arange(len(_PATTERNS))
    by = result.roles["by"]
    n = len(_PATTERNS)
    for i, lev in enumerate(levels):  # the table holds the levels in this order
        sub = table.iloc[i * n:(i + 1) * n].set_index("pattern").loc[list(_PATTERNS)]
        err = np.vstack([sub["estimate"] - sub["conf_low"], sub["conf_high"] - sub["estimate"]])
        label = "all" if lev is None else _condition_label(by, lev)
        ax.errorbar(pos + (i - (len(levels) - 1) / 2) * width, sub["estimate"], yerr=err,
                    **{"fmt": "o", "capsize": 4, "label": label, **kwargs})
    ax.set_xticks(pos, list(_PATTERNS))
    ax.set_xlabel("agreement at the previous session")
    ax.set_ylabel(f"predicted {result.roles['outcome']}")
    ax.set_title(f"low = {table.attrs['low']:.2f}, high = {table.attrs['high']:.2f} "
                 f"(x: {result.roles['x']}, y: {result.roles['y']}); "
                 f"{100 * (1 - alpha):g}% CI", fontsize="small")
    if len(levels) > 1:
        ax.legend(frameon=False)
    return ax


def agreement_predictions(result: Any, *, low: float | None = None,
                          high: float | None = None, alpha: float = 0.05) -> pd.DataFrame:
    """Table behind :func:`plot_lagged_agreement`: level, pattern, x, y, estimate,
    std_error, conf_low, conf_high (``attrs`` holds ``low`` and ``high``).

    Predictions and intervals come from :meth:`RSAResults.predict_interval`, so every
    member of the model family works (second order, cubic, piecewise), and mixed fits use
    the fit's small-sample df.

    Raises
    ------
    ValueError
        For fits with ``decompose="unit"`` (their surfaces are over unit means and
        deviations from them, not over rating values: use ``predict_interval(level=...)``),
        or ``high`` not above ``low``.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from alliancestats import fit_rsa
    >>> rng = np.random.default_rng(1)
    >>> df = pd.DataFrame({"x": rng.normal(size=80), "y": rng.normal(size=80)})
    >>> df["z"] = -(df.x - df.y) ** 2 + rng.normal(size=80)
    >>> agreement_predictions(fit_rsa(df, outcome="z", x="x", y="y"))["pattern"].tolist()
    ['both high', 'both low', 'therapist higher', 'patient higher']
    """
    _require_rsa(result, "agreement_predictions")
    if result.decomposed:
        raise ValueError("agreement_predictions() evaluates the surface at rating values; "
                         "a fit with decompose='unit' has within- and between-unit surfaces "
                         "over deviations and unit means: use "
                         "result.predict_interval(x, y, level='within' or 'between').")
    obs = result.observations
    both = np.concatenate([obs["x"].to_numpy(float), obs["y"].to_numpy(float)])
    low = float(both.mean() - both.std(ddof=1)) if low is None else float(low)
    high = float(both.mean() + both.std(ddof=1)) if high is None else float(high)
    if not high > low:
        raise ValueError(f"`high` ({high}) must be larger than `low` ({low}).")
    xs = np.array([high, low, high, low])
    ys = np.array([high, low, low, high])
    frames = []
    for lev in result.levels:
        table = result.predict_interval(xs, ys, level=lev, alpha=alpha)
        frames.append(pd.DataFrame({"level": [lev] * 4, "pattern": _PATTERNS,
                                    **{c: table[c].to_numpy() for c in table.columns}}))
    out = pd.concat(frames, ignore_index=True)
    out.attrs.update(low=low, high=high)
    return out


# --------------------------------------------------------------------------- truth and bias

#: Label of the reference line at a truth force of 1 (not "perfect tracking": error in
#: the truth attenuates the slope; West & Kenny 2011).
_ONE_FOR_ONE = "1 = one-for-one change (attenuated by error in the truth)"

_EFFECT_LABELS = {"truth_force": "truth force", "directional_bias": "directional bias",
                  "bias_force": "bias force"}


def plot_truth_bias(
    result: Any,
    *,
    effects: str | Sequence[str] = ("truth_force", "directional_bias"),
    x: str = "session",
    x_values: Sequence[Any] | None = None,
    hue: str | None = "condition",
    hue_values: Sequence[Any] | None = None,
    alpha: float = 0.05,
    ax: Axes | None = None,
    fig: Figure | None = None,
    **kwargs: Any,
) -> Any:
    """Truth force and directional bias across one moderator, one line per another.

    Evaluates :meth:`TruthBiasResults.effects_at` on the grid ``x_values`` × ``hue_values``
    (other moderators at the fit's :attr:`~TruthBiasResults.reference_point`) and draws
    estimates with their confidence bands (the fit's ``ddf`` method). The truth-force panel
    has a dotted reference line at 1, labelled as a one-for-one change of judgment with
    truth: it is not "perfect tracking", because measurement error in the truth (the
    patient's rating) attenuates the truth force, so an accurate judge can show a slope
    below 1; compare truth forces between conditions or sessions rather than with 1.

    Parameters
    ----------
    result : TruthBiasResults
        From :func:`~alliancestats.fit_truth_bias` with moderators including ``x`` (and
        ``hue``).
    effects : str or sequence of str
        Among "truth_force", "directional_bias", "bias_force". One effect draws on one
        Axes; several draw one panel each and return the Figure.
    x, hue : str
        Moderator on the horizontal axis and moderator distinguishing the lines (None:
        a single line).
    x_values, hue_values : sequence, optional
        Moderator values; default the values the fit saw (``result.moderator_values``:
        the sorted distinct values of a numeric moderator, the levels of a categorical
        one).
    alpha : float
        1 − confidence level.
    ax : matplotlib Axes, optional
        Only for a single effect.
    fig : matplotlib Figure, optional
        For several effects: draw the panels into this (empty) figure, e.g. a
        ``matplotlib.figure.Figure()``, instead of a new pyplot figure.
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.plot` for every line (e.g. ``marker``).

    Returns
    -------
    matplotlib Axes (one effect) or Figure (several).

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from alliancestats import datasets, fit_truth_bias, plot_truth_bias
    >>> res = fit_truth_bias(datasets.load("prn"), judgment="alliance_therapist",
    ...                      truth="alliance_patient", groups=["therapist", "patient"],
    ...                      moderators=["condition", "session"])
    >>> fig = plot_truth_bias(res)  # sessions 1..6 and conditions 0, 1 as in the data
    >>> [ax.get_ylabel() for ax in fig.axes]
    ['truth force', 'directional bias']
    """
    if not callable(getattr(result, "effects_at", None)):
        raise TypeError("plot_truth_bias() needs the result of fit_truth_bias(); got "
                        f"{type(result).__name__}.")
    names = [effects] if isinstance(effects, str) else list(effects)
    bad = [e for e in names if e not in _EFFECT_LABELS]
    if not names or bad:
        raise ValueError(f"`effects` must be among {list(_EFFECT_LABELS)}; got {bad or names}.")
    if len(names) > 1 and ax is not None:
        raise ValueError("`ax` draws one effect; pass `effects` as one name, or ax=None for a "
                         "figure with one panel per effect.")
    grid = {x: _moderator_values(result, x, x_values, "x_values")}
    if hue is not None:
        grid[hue] = _moderator_values(result, hue, hue_values, "hue_values")
    table = result.effects_at(alpha=alpha, **grid)
    if len(names) == 1:
        ax = _plt().gca() if ax is None else ax
        _truth_bias_panel(table, names[0], x, hue, alpha, ax, kwargs)
        return ax
    if fig is None:
        fig = _plt().figure(figsize=(5.2 * len(names), 4), layout="constrained")
    axes = fig.subplots(1, len(names), squeeze=False)
    for name, panel in zip(names, axes[0], strict=True):
        _truth_bias_panel(table, name, x, hue, alpha, panel, kwargs, legend=False)
    if hue is not None:  # one legend for all panels, below them
        handles, labels = axes[0, 0].get_legend_handles_labels()
        fig.legend(handles, labels, loc="outside lower center", ncols=len(labels),
                   frameon=False)
    return fig


def _moderator_values(result: Any, name: str, values: Any, arg: str) -> list[Any]:
    """The values to plot: as given, else those the fit recorded for the moderator."""
    if values is not None:
        return list(values)
    known = getattr(result, "moderator_values", None)
    if isinstance(known, Mapping) and name in known:
        return list(known[name])
    if isinstance(known, Mapping):
        role = "x" if arg == "x_values" else "hue"
        raise ValueError(f"`{role}` {name!r} is not a moderator of the fit; its moderators "
                         f"are {list(known)}. Pass one of them as `{role}` (or hue=None for "
                         f"a single line).")
    raise ValueError(f"Pass `{arg}`: the values of moderator {name!r} to plot.")


def _truth_bias_panel(table: pd.DataFrame, effect: str, x: str, hue: str | None,
                      alpha: float, ax: Any, kwargs: dict[str, Any],
                      legend: bool = True) -> None:
    sub = table[table["effect"] == effect]
    if sub.empty:
        raise ValueError(f"The fit has no {effect!r} (bias_force needs `bias`).")
    groups = [(None, sub)] if hue is None else list(sub.groupby(hue, sort=True))
    for key, part in groups:
        part = part.sort_values(x)
        low, high = part["conf_low"], part["conf_high"]
        label = None if hue is None else _condition_label(hue, key)
        (line,) = ax.plot(part[x], part["estimate"], **{"marker": "o", "label": label,
                                                        **kwargs})
        ax.fill_between(part[x], low, high, color=line.get_color(), alpha=0.2, linewidth=0)
    if effect == "truth_force":
        # A slope of 1 is a one-for-one change, not "perfect tracking": error in the
        # truth (the patient's rating) attenuates the slope, so even a perfectly
        # attuned judge has a truth force below 1.
        ax.axhline(1.0, color="0.5", lw=0.8, ls=":", label="_one_for_one")
        ax.annotate(_ONE_FOR_ONE, xy=(1.0, 1.0), xycoords=("axes fraction", "data"),
                    xytext=(-2, 2), textcoords="offset points", ha="right", va="bottom",
                    fontsize="x-small", color="0.4")
    ax.axhline(0.0, color="0.5", lw=0.8)
    ax.set_xlabel(x)
    ax.set_ylabel(_EFFECT_LABELS[effect])
    ax.set_title(f"{_EFFECT_LABELS[effect]} ({100 * (1 - alpha):g}% CI)")
    if hue is not None and legend:
        ax.legend(frameon=False)


# --------------------------------------------------------------------------- trajectories


def plot_trajectories(
    data: Any,
    *,
    time: Hashable = "session",
    condition: Hashable | None = "condition",
    ratings: Mapping[str, Hashable] | None = None,
    growth_data: pd.DataFrame | None = None,
    alpha: float = 0.05,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Mean rating per session with confidence intervals, by rater × condition.

    Parameters
    ----------
    data : DataFrame or GrowthResults
        Long data (one row per patient × session, one column per rater), or a
        :func:`~alliancestats.fit_growth` result fitted to the rater-stacked data with
        ``rater`` and the condition as moderator: its fitted mean trajectories (lines with
        confidence bands, :func:`growth_trajectories`) are drawn over the observed means
        of ``growth_data`` (points; filled for the first rater, open for the second).
    time, condition : column names
        Session column and condition column (None: no split by condition).
    ratings : mapping, optional
        Rater label -> column, default ``{"therapist": "alliance_therapist",
        "patient": "alliance_patient"}``.
    growth_data : DataFrame, optional
        Required with a GrowthResults: the wide data (one column per rater) whose
        observed means are drawn beside the fit and whose sessions span the lines.
    alpha : float
        1 − confidence level of the t intervals of the means.
    ax : matplotlib Axes, optional
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.errorbar` for the observed means.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from alliancestats import datasets, plot_trajectories
    >>> ax = plot_trajectories(datasets.load("prn"))
    >>> ax.get_xlabel()
    'session'
    """
    if not 0 < alpha < 1:
        raise ValueError(f"`alpha` must be between 0 and 1; got {alpha!r}.")
    ratings = dict(ratings or {"therapist": "alliance_therapist",
                               "patient": "alliance_patient"})
    fitted = None
    if not isinstance(data, pd.DataFrame):
        if not isinstance(getattr(data, "growth_rates", None), pd.DataFrame):
            raise TypeError("`data` must be a DataFrame or the result of fit_growth(); "
                            f"got {type(data).__name__}.")
        if growth_data is None:
            raise ValueError("With a fit_growth() result, pass the data as `growth_data` "
                             "(for the observed means and the session range).")
        times: list[float] = sorted(growth_data[time].dropna().unique()) \
            if time in growth_data else []
        conds = None if condition is None else sorted(growth_data[condition].dropna().unique())
        fitted = growth_trajectories(data, times=times, conditions=conds, alpha=alpha)
        data = growth_data
    means = observed_means(data, time=time, condition=condition, ratings=ratings, alpha=alpha)
    ax = _plt().gca() if ax is None else ax
    drawn = _draw_means(means, condition, ax, kwargs, fitted is not None)
    if fitted is not None:
        _draw_fitted(fitted, list(ratings), ax)
    ax.set_xlabel(str(time))
    level = f"{100 * (1 - alpha):g}% CI"
    ax.set_ylabel(f"rating: mean ({level}) and fitted growth" if fitted is not None
                  else f"rating (mean, {level})")
    _trajectory_legend(ax, drawn)
    return ax


def _trajectory_legend(ax: Any, drawn: Mapping[Any, Any]) -> None:
    """Legend below the axes (the means fill the plot area), two columns.

    The errorbars drawn here (``drawn``: container -> line style to show) get plain line
    handles: errorbar handles hide the dashes that tell the raters apart, and with fitted
    lines the entry shows the rater's marker *and* the style of its fitted growth line.
    Other labelled artists already on ``ax`` keep their own handles.
    """
    from matplotlib.lines import Line2D

    handles, labels = ax.get_legend_handles_labels()
    shown = []
    for h in handles:
        if h in drawn:
            data = h.lines[0]
            h = Line2D([], [], color=data.get_color(), linestyle=drawn[h], lw=1.8,
                       marker=data.get_marker(), markerfacecolor=data.get_markerfacecolor())
        shown.append(h)
    ax.legend(shown, labels, loc="upper center", bbox_to_anchor=(0.5, -0.13), ncols=2,
              frameon=False, fontsize="small", handlelength=3)


def observed_means(data: pd.DataFrame, *, time: Hashable = "session",
                   condition: Hashable | None = "condition",
                   ratings: Mapping[str, Hashable] | None = None,
                   alpha: float = 0.05) -> pd.DataFrame:
    """Mean, SD, n and t confidence interval of each rating per session (× condition).

    Returns a long DataFrame: rater, [condition,] time, mean, sd, n, conf_low, conf_high.
    """
    data = require_frame(data)
    ratings = dict(ratings or {"therapist": "alliance_therapist",
                               "patient": "alliance_patient"})
    keys = [time] if condition is None else [condition, time]
    roles: dict[str, Any] = {"time": time, **{f"ratings[{k!r}]": v for k, v in ratings.items()}}
    if condition is not None:
        roles["condition"] = condition
    require_columns(data, roles)
    require_numeric(data, {f"ratings[{k!r}]": v for k, v in ratings.items()})
    frames = []
    for rater, col in ratings.items():
        by = [data[k] for k in keys]
        g = data[col].groupby(by, observed=True).agg(["mean", "std", "count"]).reset_index()
        g.insert(0, "rater", rater)
        frames.append(g.rename(columns={"std": "sd", "count": "n"}))
    out = pd.concat(frames, ignore_index=True)
    with np.errstate(invalid="ignore"):
        half = stats.t.ppf(1 - alpha / 2, np.maximum(out["n"] - 1, 1)) * out["sd"] / np.sqrt(
            out["n"])
    out["conf_low"], out["conf_high"] = out["mean"] - half, out["mean"] + half
    return out


_RATER_STYLES = ("-", "--", "-.", ":")


def _draw_means(means: pd.DataFrame, condition: Hashable | None, ax: Any,
                kwargs: dict[str, Any], points_only: bool = False) -> dict[Any, str]:
    """Errorbars of the means; returns each container with its rater's line style."""
    raters = list(dict.fromkeys(means["rater"]))
    conds = [None] if condition is None else sorted(means[condition].unique())
    time = means.columns[2] if condition is not None else means.columns[1]
    colors = _cycle_colors()
    offset = 0.04 * (len(raters) * len(conds) - 1)
    k = 0
    drawn: dict[Any, str] = {}
    for ci, cond in enumerate(conds):
        for ri, rater in enumerate(raters):
            sub = means[means["rater"] == rater]
            if cond is not None:
                sub = sub[sub[condition] == cond]
            err = np.vstack([sub["mean"] - sub["conf_low"], sub["conf_high"] - sub["mean"]])
            label = rater if cond is None else f"{rater}, {_condition_label(condition, cond)}"
            # small horizontal dodge so the intervals do not hide each other
            xs = sub[time].to_numpy(float) - offset / 2 + 0.08 * k
            bars = ax.errorbar(xs, sub["mean"], yerr=err, **{
                "color": colors[ci % len(colors)],
                "linestyle": "none" if points_only else _RATER_STYLES[ri % 4],
                "mfc": "white" if points_only and ri else None,
                "marker": "o", "capsize": 3, "label": label, **kwargs})
            # the style of the rater's fitted line, or of the drawn line (kwargs may set it)
            drawn[bars] = (_RATER_STYLES[ri % 4] if points_only
                           else bars.lines[0].get_linestyle())
            k += 1
    return drawn


def growth_trajectories(result: Any, *, times: Sequence[float],
                        conditions: Sequence[Any] | None = None,
                        alpha: float = 0.05) -> pd.DataFrame:
    """Fitted mean (fixed-effect) trajectory of a growth model per rater × condition.

    Each point is an exact linear contrast of the fixed effects (``result.contrast``):
    the rater's intercept plus, for every fixed effect built from ``time`` and the
    condition moderator, its coefficient times the product of their values (time on the
    fit's centred scale). Other moderators are held at 0.

    Returns a DataFrame: rater, condition, time, estimate, std_error, conf_low, conf_high.
    """
    roles = result.roles
    rater, time_col = roles.get("rater"), str(roles["time"])
    mods = [str(m) for m in roles.get("moderators") or []]
    cond = mods[0] if conditions is not None and mods else None
    shift = float(result.centering.get("time_center", 0.0) or 0.0)
    levels = list(dict.fromkeys(result.growth_rates[rater])) if rater else [None]
    names = list(result.params.index)
    rows, labels = [], []
    for lev in levels:
        conds: list[Any] = [None] if cond is None else list(conditions or [])
        for c in conds:
            for t in times:
                values = {time_col: float(t) - shift}
                if cond is not None:
                    values |= _condition_value(names, cond, c)
                rows.append(_growth_weights(names, rater, lev, values))
                labels.append({"rater": lev, "condition": c, "time": float(t)})
    table = result.contrast(pd.DataFrame(rows, columns=names).fillna(0.0), alpha=alpha)
    out = pd.concat([pd.DataFrame(labels), table.reset_index(drop=True)], axis=1)
    return out[["rater", "condition", "time", "estimate", "std_error", "conf_low",
                "conf_high"]]


def _condition_value(names: list[str], cond: str, value: Any) -> dict[str, float]:
    """The condition's part of a fitted mean: a dummy (``cond[level]`` terms, text or
    categorical conditions; the reference level has none) or the numeric value."""
    if any(f"{cond}[" in part for name in names for part in name.split(":")):
        return {f"{cond}[{value}]": 1.0}
    try:
        return {cond: float(value)}
    except (TypeError, ValueError):
        raise ValueError(f"Condition {cond!r} entered the growth model as a number, but "
                         f"`conditions` holds {value!r}; pass its numeric values.") from None


def _condition_label(condition: Hashable, value: Any) -> str:
    """Legend text of a condition: its label when it has one ("training"), else
    "condition = 1"."""
    if isinstance(value, str):
        return value
    return f"{condition} = {value}"


def _growth_weights(names: list[str], rater: Any, level: Any,
                    values: Mapping[str, float]) -> dict[str, float]:
    """Weights of the fixed effects for one fitted mean (see growth_trajectories)."""
    weights: dict[str, float] = {}
    prefix = f"{rater}[{level}]" if rater else None
    for name in names:
        parts = name.split(":")
        if prefix is not None:
            if parts[0] != prefix:
                continue
            parts = parts[1:]
        elif parts == ["Intercept"]:
            parts = []
        if all(p in values for p in parts):
            weights[name] = float(np.prod([values[p] for p in parts]))
    if prefix is not None and prefix not in weights:
        raise ValueError(f"Cannot find the intercept {prefix!r} of the growth model; "
                         f"fixed effects are {names}.")
    return weights


def _draw_fitted(fitted: pd.DataFrame, raters: list[str], ax: Any) -> None:
    """Fitted lines with confidence bands, styled like the observed means."""
    colors = _cycle_colors()
    conds = list(dict.fromkeys(fitted["condition"]))
    for (rater, cond), part in fitted.groupby(["rater", "condition"], sort=False,
                                              dropna=False):
        ci = conds.index(cond)
        style = _RATER_STYLES[raters.index(rater) % 4] if rater in raters else "-"
        color = colors[ci % len(colors)]
        ax.plot(part["time"], part["estimate"], color=color, linestyle=style, lw=2.2)
        ax.fill_between(part["time"], part["conf_low"], part["conf_high"], color=color,
                        alpha=0.12, linewidth=0)


# --------------------------------------------------------------------------- power

_SIZE_COLUMNS = ("n_therapists", "n_patients", "n_sessions")


def plot_power(
    result: Any,
    *,
    x: str | None = None,
    terms: str | Sequence[str] | None = None,
    target: float | None = 0.8,
    ax: Axes | None = None,
    **kwargs: Any,
) -> Axes:
    """Power curves with Monte-Carlo (Clopper–Pearson) intervals and the target line.

    Several curves are dodged horizontally by 1.5% of the size range so that their
    intervals do not hide each other.

    Parameters
    ----------
    result : PowerResult
        From :func:`~alliancestats.power`.
    x : {"n_therapists", "n_patients", "n_sessions"}, optional
        Size on the horizontal axis; default the one with most distinct values in the
        grid. Cells that differ in another size at the same ``x`` get their own lines
        (a size that follows ``x``, e.g. patients under a fixed caseload, does not).
    terms : str or sequence, optional
        Tested terms to draw (default all).
    target : float or None
        Height of the horizontal reference line (default 0.80; None for none).
    ax : matplotlib Axes, optional
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.errorbar` for every curve.

    Returns
    -------
    matplotlib Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> from alliancestats import power, plot_power
    >>> res = power("growth", n_therapists=[6, 8], n_patients=[18], n_sims=3,
    ...             rng=1, progress=False)  # doctest: +SKIP
    >>> ax = plot_power(res)  # doctest: +SKIP
    """
    table = getattr(result, "power", None)
    if not isinstance(table, pd.DataFrame):
        raise TypeError(f"plot_power() needs the result of power(); got "
                        f"{type(result).__name__}.")
    sizes = [c for c in _SIZE_COLUMNS if c in table.columns]
    if x is None:
        x = max(sizes, key=lambda c: table[c].nunique())
    elif x not in sizes:
        raise ValueError(f"`x` must be one of {sizes}; got {x!r}.")
    wanted = list(dict.fromkeys(table["term"])) if terms is None else (
        [terms] if isinstance(terms, str) else list(terms))
    unknown = [t for t in wanted if t not in set(table["term"])]
    if unknown or not wanted:
        raise ValueError(f"`terms` {unknown or wanted} not in the power table; available: "
                         f"{sorted(set(table['term']))}.")
    ax = _plt().gca() if ax is None else ax
    # a size that follows x (patients = caseload x therapists) does not split curves
    others = [c for c in sizes if c != x and table.groupby(x)[c].nunique().max() > 1]
    curves = list(table[table["term"].isin(wanted)].groupby(["term", *others], sort=False))
    # dodge the curves horizontally (1.5% of the x range apart) so intervals stay visible
    span = float(table[x].max() - table[x].min()) or 1.0
    for i, (keys, part) in enumerate(curves):
        part = part.sort_values(x)
        err = np.vstack([part["power"] - part["ci_low"], part["ci_high"] - part["power"]])
        label = ", ".join([str(keys[0]), *(f"{c}={v}" for c, v in zip(others, keys[1:],
                                                                       strict=True))])
        shift = 0.015 * span * (i - (len(curves) - 1) / 2)
        ax.errorbar(part[x] + shift, part["power"], yerr=np.clip(err, 0, None),
                    **{"marker": "o", "capsize": 3, "label": label, **kwargs})
    if target is not None:
        ax.axhline(target, color="0.4", ls="--", lw=1, label=f"target {target:g}")
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel(x.replace("_", " "))
    ax.set_ylabel("power (95% Monte-Carlo CI)")
    ax.legend(frameon=False, fontsize="small")
    return ax


_BOX_COLORS = {"sig_negative": "#c0504d", "nonsignificant": "#bfbfbf", "sig_positive": "#4f81bd"}
_BOX_LEGEND = {"sig_negative": "significant negative", "nonsignificant": "non-significant",
           "sig_positive": "significant positive"}


def plot_box_score(
    result: BoxScoreResult,
    ax: Axes | None = None,
    *,
    unit: str | None = None,
    percent: bool = True,
    annotate: bool = True,
    colors: Mapping[str, str] | None = None,
    **kwargs: Any,
) -> Axes:
    """Horizontal stacked bars: significant negative | non-significant | significant positive.

    Parameters
    ----------
    result : BoxScoreResult
    ax : matplotlib Axes, optional
        Drawn on ``plt.gca()`` when None.
    unit : {"study", "finding"}, optional
        Which tally; default the result's primary unit.
    percent : bool
        Bar lengths in percent of votes (default) or in counts.
    annotate : bool
        Write the count inside each non-empty segment.
    colors : mapping, optional
        Colours by category name (``"sig_negative"``, ``"nonsignificant"``,
        ``"sig_positive"``).
    **kwargs
        Passed to :meth:`matplotlib.axes.Axes.barh` (e.g. ``height``, ``edgecolor``).

    Returns
    -------
    matplotlib.axes.Axes

    Examples
    --------
    >>> import matplotlib
    >>> matplotlib.use("Agg")
    >>> import pandas as pd
    >>> from alliancestats import box_score
    >>> findings = pd.DataFrame({"study": list("ABC"), "outcome": "alliance",
    ...                          "r": [0.3, 0.1, -0.2], "sig": [True, False, False]})
    >>> ax = plot_box_score(box_score(findings, outcome="outcome", effect="r",
    ...                               significant="sig"))
    >>> ax.get_xlabel()
    '% of votes'
    """
    from .synthesis import BoxScoreResult

    if not isinstance(result, BoxScoreResult):
        raise TypeError(f"`result` must be a BoxScoreResult; got {type(result).__name__}.")
    u = result.unit if unit is None else check_choice(unit, "unit", ("study", "finding"))
    table = result.study_tally if u == "study" else result.finding_tally
    palette = {**_BOX_COLORS, **(dict(colors) if colors else {})}
    ax = _plt().gca() if ax is None else ax
    y = np.arange(len(table))
    left = np.zeros(len(table))
    for cat in ("sig_negative", "nonsignificant", "sig_positive"):
        counts = table[cat].to_numpy(dtype=float)
        width = 100 * counts / table["votes"].to_numpy(dtype=float) if percent else counts
        bars = ax.barh(y, width, left=left, color=palette[cat], label=_BOX_LEGEND[cat], **kwargs)
        if annotate:
            ax.bar_label(bars, labels=[f"{c:g}" if c else "" for c in counts],
                         label_type="center")
        left = left + width
    names = [" | ".join(map(str, idx)) if isinstance(idx, tuple) else str(idx)
             for idx in table.index]
    ax.set_yticks(y, [f"{name} (k={k})" for name, k in zip(names, table["votes"], strict=True)])
    ax.invert_yaxis()
    ax.set_xlabel("% of votes" if percent else "votes")
    if percent:
        ax.set_xlim(0, 100)
    ax.set_title(f"Box score ({u}-level votes)")
    # below the axis, so that it never hides a bar
    ax.legend(loc="upper center", bbox_to_anchor=(0.5, -0.14), ncol=3, fontsize="small",
              frameon=False)
    return ax
