"""The result of :func:`alliancestats.power.power`: tables, required sizes, summary."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from .._validation import check_choice, check_probability
from ..exceptions import AllianceStatsWarning
from ..results import Summary
from ._designs import Sizes

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes

__all__ = ["SIZE_COLUMNS", "PowerResult"]

SIZE_COLUMNS = ["n_therapists", "n_patients", "n_sessions"]


@dataclass(frozen=True, eq=False)
class PowerResult:
    """Result of :func:`power` (immutable; every table is returned as a copy).

    Attributes
    ----------
    power : DataFrame
        One row per grid cell × tested term: ``n_therapists``, ``n_patients``,
        ``n_sessions``, ``term``, ``true_value`` (the population value under the
        simulated parameters), ``power`` (share of valid replicates with two-sided
        p < alpha), ``mcse`` (its Monte-Carlo SE, sqrt(p(1 − p)/n_valid)), ``ci_low``,
        ``ci_high`` (95 % Clopper–Pearson interval), ``n_valid``, ``n_failed``
        (excluded replicates), ``n_singular`` (boundary fits, counted as valid),
        ``mean_estimate``, ``sd_estimate``, ``mean_std_error`` and ``coverage`` (share of
        valid replicates whose 1 − alpha Wald interval covers ``true_value``); with
        ``random="auto"`` also ``n_simplified`` (valid replicates whose singular fit was
        simplified to a smaller random part, as ``fit_truth_bias(random="auto")``).
    estimates, std_errors, pvalues : DataFrame
        Per replicate: index (n_therapists, n_patients, n_sessions, replicate), one
        column per term; NaN where the fit failed.
    failures : DataFrame
        Every replicate whose fit was not clean: cell, ``replicate``, ``status``
        ("singular", "not converged" or "error"), ``counted`` (True for singular fits,
        which count as valid), ``reason``.
    settings : mapping
        Everything needed to reproduce the run, including the root seed ``entropy``.
    timings : DataFrame
        Seconds spent simulating and fitting per cell (not part of the results proper:
        they vary from run to run).
    """

    _power: pd.DataFrame
    _estimates: pd.DataFrame
    _std_errors: pd.DataFrame
    _pvalues: pd.DataFrame
    _failures: pd.DataFrame
    _settings: Mapping[str, Any]
    _timings: pd.DataFrame

    @property
    def power(self) -> pd.DataFrame:
        """Power per grid cell × tested term (see the class docstring)."""
        return self._power.copy()

    @property
    def estimates(self) -> pd.DataFrame:
        """Per-replicate estimates of the tested terms."""
        return self._estimates.copy()

    @property
    def std_errors(self) -> pd.DataFrame:
        """Per-replicate standard errors of the tested terms."""
        return self._std_errors.copy()

    @property
    def pvalues(self) -> pd.DataFrame:
        """Per-replicate two-sided p-values of the tested terms (t with Satterthwaite df,
        or Wald z; ``settings["ddf"]``)."""
        return self._pvalues.copy()

    @property
    def failures(self) -> pd.DataFrame:
        """Replicates with a singular, non-converged or failed fit, with the reason."""
        return self._failures.copy()

    @property
    def settings(self) -> Mapping[str, Any]:
        """Read-only settings of the run (design, effects, sizes, seed entropy, ...)."""
        return self._settings

    @property
    def timings(self) -> pd.DataFrame:
        """Seconds simulating and fitting, per cell (varies between runs)."""
        return self._timings.copy()

    @property
    def terms(self) -> tuple[str, ...]:
        """Names of the tested terms."""
        return tuple(self._settings["terms"])

    def to_frame(self) -> pd.DataFrame:
        """The power table in tidy form (one row per cell × term); same as ``.power``."""
        return self.power

    def required_size(
        self,
        target: float = 0.8,
        *,
        along: str | None = None,
        term: str | Sequence[str] | None = None,
        conservative: bool = False,
    ) -> pd.DataFrame:
        """Smallest simulated size from which power reaches ``target`` at every larger size.

        A simulated power curve carries Monte-Carlo noise and can dip: with sizes 20, 30,
        40 and power 0.81, 0.78, 0.86 the answer is 40, not 20 (the first size above the
        target), because 30 does not reach it. ``required_low`` and ``required_high``
        bound the answer with Monte-Carlo confidence, from the 95 % Clopper–Pearson
        intervals; refine the grid, or raise ``n_sims``, between them. A dip beyond
        Monte-Carlo error (a smaller size's interval entirely above a larger size's) is
        warned about and flagged in ``monotone``: power is then not monotone in the size
        for that term (e.g. failed or singular fits that depend on the size), and the
        answer needs a look at ``.power``.

        With a fixed caseload (``power(..., patients_per_therapist=k)``) the grid runs
        over therapists and the answer is a number of therapists, with ``n_patients`` =
        that number x k beside it.

        Parameters
        ----------
        target : float
            Power to reach, in (0, 1).
        along : {"n_therapists", "n_patients", "n_sessions"}, optional
            Grid dimension to search; defaults to the one that varies (n_therapists when
            several vary, and always with a fixed caseload, where "n_patients" is not a
            dimension of its own). The other dimensions stay as they are: one row per
            term and combination of their values.
        term : str or list of str, optional
            Tested term(s); default all.
        conservative : bool
            Require the lower Clopper–Pearson bound (instead of the estimate) to reach
            ``target``.

        Returns
        -------
        DataFrame
            Columns: the other size columns (``patients_per_therapist`` instead of
            ``n_patients`` with a fixed caseload), ``term``, ``along``, ``required`` (the
            smallest grid value whose power, and that of every larger grid value, reaches
            the target; missing when the largest does not), with a fixed caseload
            ``n_patients`` at that size, that cell's ``power``, ``ci_low``, ``ci_high``,
            then the Monte-Carlo interval of the required size: ``required_low`` (one
            more than the largest grid value whose Clopper–Pearson upper bound is below
            the target, i.e. shown too small; the smallest grid value when none is) and
            ``required_high`` (the smallest grid value from which every lower bound
            reaches the target; missing when none does), and ``monotone`` (False when
            the curve dips beyond Monte-Carlo error). Only simulated sizes are
            considered: refine the grid around the answer for a finer one.

        Warns
        -----
        AllianceStatsWarning
            When a term's power curve is not monotone beyond Monte-Carlo error.

        Examples
        --------
        >>> from alliancestats import power
        >>> res = power("truth_bias", n_therapists=[10, 20], n_patients=40,
        ...             n_sims=4, rng=1, progress=False)
        >>> list(res.required_size(0.8).columns)  # doctest: +NORMALIZE_WHITESPACE
        ['n_patients', 'n_sessions', 'term', 'along', 'required', 'power', 'ci_low',
         'ci_high', 'required_low', 'required_high', 'monotone']
        >>> fixed = power("truth_bias", n_therapists=[10, 20], patients_per_therapist=3,
        ...               n_sims=4, rng=1, progress=False)
        >>> list(fixed.required_size(0.8).columns)  # doctest: +NORMALIZE_WHITESPACE
        ['patients_per_therapist', 'n_sessions', 'term', 'along', 'required',
         'n_patients', 'power', 'ci_low', 'ci_high', 'required_low', 'required_high',
         'monotone']
        """
        target = check_probability(target, "target")
        caseload = self._settings.get("patients_per_therapist")
        table = self._power
        dim = self._along(along)
        terms = self._terms(term)
        follows = caseload is not None and dim == "n_therapists"
        others = [c for c in SIZE_COLUMNS if c != dim and not (follows and c == "n_patients")]
        score = "ci_low" if conservative else "power"
        rows = []
        for key, block in table[table["term"].isin(terms)].groupby([*others, "term"], sort=True):
            block = block.sort_values(dim)
            first = _first_of_tail(block, block[score] >= target)
            row: dict[str, Any] = {"patients_per_therapist": caseload} if follows else {}
            row.update(dict(zip([*others, "term"], key, strict=True)))
            row.update({"along": dim,
                        "required": pd.NA if first is None else int(first[dim])})
            if follows:
                row["n_patients"] = pd.NA if first is None else int(first["n_patients"])
            for col in ("power", "ci_low", "ci_high"):
                row[col] = np.nan if first is None else first[col]
            row.update(_mc_interval(block, dim, target))
            dips = _dips(block, dim)
            row["monotone"] = not dips
            if dips:
                where = ", ".join(f"{c}={v}" for c, v in zip(others, key[:-1], strict=True))
                _warn_dips(str(key[-1]), where, dips)
            rows.append(row)
        out = pd.DataFrame(rows)
        for col in ("required", "required_low", "required_high",
                    *(["n_patients"] if follows else [])):
            out[col] = out[col].astype("Int64")
        return out

    def _along(self, along: str | None) -> str:
        fixed = self._settings.get("patients_per_therapist") is not None
        if along is None:
            varying = [c for c in SIZE_COLUMNS if self._power[c].nunique() > 1]
            if fixed and "n_therapists" in varying:
                return "n_therapists"
            return varying[0] if varying else "n_therapists"
        dim = check_choice(along, "along", SIZE_COLUMNS)
        if fixed and dim == "n_patients":
            raise ValueError(
                "`along='n_patients'` does not apply with a fixed caseload "
                f"(patients_per_therapist={self._settings['patients_per_therapist']:g}): "
                "patients follow therapists; use along='n_therapists'."
            )
        return dim

    def _terms(self, term: str | Sequence[str] | None) -> list[str]:
        if term is None:
            return list(self.terms)
        names = [term] if isinstance(term, str) else list(term)
        for name in names:
            check_choice(name, "term", self.terms)
        return names

    def summary(self) -> Summary:
        """Printable summary: settings, the power table and failure counts."""
        s = self._settings
        changed = {k: v for k, v in s["effects"].items() if v != s["default_effects"][k]}
        header = [
            ("Design", f"{s['design']} ({s['model']})"),
            ("Tested", ", ".join(s["terms"])),
            ("Replicates per cell", str(s["n_sims"])),
            ("alpha", f"{s['alpha']:g}"),
            ("Missed sessions (MCAR)", f"{s['p_missing']:g}"),
            *([("Patients per therapist", f"{s['patients_per_therapist']:g} (fixed)")]
              if s.get("patients_per_therapist") is not None else []),
            ("Effects changed from defaults", ", ".join(f"{k}={v:g}" for k, v in
                                                         changed.items()) or "none"),
            ("Engine", s["engine"]),
            *([("Nesting", "partial (therapists in the trained arm only)")]
              if s.get("nesting") == "partial" else []),
            ("Tests", "t, Satterthwaite df" if s.get("ddf") == "satterthwaite"
             else "Wald z"),
            ("Seed entropy", str(s["entropy"])),
        ]
        cols = ["true_value", "power", "mcse", "ci_low", "ci_high", "n_valid", "n_failed",
                "n_singular", *(["n_simplified"] if "n_simplified" in self._power else [])]
        table = self._power.set_index([*SIZE_COLUMNS, "term"])[cols]
        return Summary(
            f"Monte-Carlo power: {s['design']} design",
            header,
            [("Power by cell and term", table)],
            warnings=[*self._failure_lines(), *self._repair_lines()],
            notes=[
                "power = share of valid replicates with two-sided p < alpha; "
                "mcse = sqrt(power (1 - power) / n_valid); 95% Clopper-Pearson interval.",
                "Singular (boundary) fits that converged count as valid; failed fits "
                "(not converged, errors) are excluded and listed in `.failures`.",
            ],
        )

    def _repair_lines(self) -> list[str]:
        repaired = list(self._settings.get("quarantined", []))
        if not repaired:
            return []
        return [f"checkpoint: {len(repaired)} damaged chunk file(s) quarantined and "
                f"recomputed: {'; '.join(repaired[:3])}"]

    def _failure_lines(self) -> list[str]:
        lines = []
        fails = self._failures
        for key, block in fails.groupby(SIZE_COLUMNS, sort=True):
            counts = block["status"].value_counts()
            parts = ", ".join(f"{n} {status}" for status, n in counts.items())
            cell = Sizes(*(int(v) for v in key)).label()  # type: ignore[call-overload]
            lines.append(
                f"cell {cell}: {parts} of {self._settings['n_sims']} replicates "
                f"({int((~block['counted']).sum())} excluded from power)"
            )
        return lines

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def __repr__(self) -> str:
        s = self._settings
        return (
            f"PowerResult(design={s['design']!r}, cells={len(s['cells'])}, "
            f"n_sims={s['n_sims']}, terms={list(s['terms'])})"
        )

    def plot(self, **kwargs: Any) -> Axes:
        """Power curves; see :func:`alliancestats.plotting.plot_power` (``**kwargs``).

        With a fixed caseload the number of patients follows the number of therapists,
        so each term is one curve over therapists.

        Examples
        --------
        >>> import matplotlib
        >>> matplotlib.use("Agg")
        >>> from alliancestats import power
        >>> res = power("truth_bias", n_therapists=[6, 10], patients_per_therapist=3,
        ...             n_sims=3, rng=1, progress=False)
        >>> len(res.plot().lines) >= 1
        True
        """
        from ..plotting import plot_power

        ax: Axes = plot_power(self, **kwargs)
        return ax


def _first_of_tail(block: pd.DataFrame, reaches: pd.Series) -> pd.Series | None:
    """First row of the longest run at the end of ``block`` (sorted by size) in which
    every row ``reaches``; None when the last row does not."""
    first = None
    for idx in reversed(block.index):
        if not reaches.loc[idx]:
            break
        first = block.loc[idx]
    return first


def _mc_interval(block: pd.DataFrame, dim: str, target: float) -> dict[str, Any]:
    """Monte-Carlo interval of the required size from the Clopper–Pearson bounds."""
    sizes = block[dim].to_numpy()
    too_small = sizes[(block["ci_high"] < target).to_numpy()]
    enough = _first_of_tail(block, block["ci_low"] >= target)
    return {"required_low": int(too_small.max()) + 1 if len(too_small) else int(sizes[0]),
            "required_high": pd.NA if enough is None else int(enough[dim])}


def _dips(block: pd.DataFrame, dim: str) -> list[tuple[int, int]]:
    """Pairs (smaller, larger size) whose 95 % intervals do not overlap, the smaller
    size's above: a fall of power beyond Monte-Carlo error."""
    sizes = block[dim].to_numpy()
    low, high = block["ci_low"].to_numpy(), block["ci_high"].to_numpy()
    return [(int(sizes[i]), int(sizes[j])) for i in range(len(sizes))
            for j in range(i + 1, len(sizes)) if low[i] > high[j]]


def _warn_dips(term: str, where: str, dips: list[tuple[int, int]]) -> None:
    pairs = "; ".join(f"{a} > {b}" for a, b in dips[:3])
    warnings.warn(
        f"required_size: the power curve of {term!r}{' at ' + where if where else ''} "
        f"falls beyond Monte-Carlo error (power at a smaller size above a larger size's, "
        f"95% Clopper-Pearson intervals apart: {pairs}). The answer is the smallest size "
        "from which every larger simulated size reaches the target; inspect `.power` "
        "(failed or singular fits, n_valid) and raise n_sims.",
        AllianceStatsWarning,
        stacklevel=3,
    )
