"""Adaptive sample-size search on top of :func:`alliancestats.power.power`.

:func:`find_size` brackets the smallest number of therapists (at a fixed caseload) or
of patients per therapist (at a fixed number of therapists) whose power reaches a
target, by bisection on the power curve, then adds replicates at the sizes around the
answer so that the answer comes with a Monte-Carlo interval. Every evaluation is an
ordinary :func:`power` call on one grid cell with one root seed, so evaluations share
a checkpoint, a cell evaluated twice is extended rather than recomputed, and the search
is reproducible for any ``n_jobs``.
"""

from __future__ import annotations

import numbers
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from .._validation import check_choice, check_probability
from ..results import Summary
from ._orchestration import plan, power, read_seed
from ._result import PowerResult

__all__ = ["SizeSearch", "find_size"]

ALONG = ("n_therapists", "patients_per_therapist")


@dataclass(frozen=True, eq=False)
class SizeSearch:
    """Result of :func:`find_size` (immutable).

    Attributes
    ----------
    required : int or None
        Smallest evaluated size whose estimated power reaches the target, with every
        larger evaluated size reaching it too; None when even ``upper`` does not.
    interval : tuple of (int or None, int or None)
        Monte-Carlo interval for the required size: ``low`` is one more than the
        largest evaluated size whose 95 % Clopper–Pearson upper bound is below the
        target (smaller sizes are too small, with Monte-Carlo confidence), ``high`` the
        smallest evaluated size whose lower bound reaches it (that size is enough). None
        where no evaluated size is that clear.
    curve : tuple of float
        Model-based answer from a probit power curve fitted to every evaluation
        (binomial likelihood, ``power = Phi(a + b sqrt(size))``, the shape of a Wald
        test's power): the size where the curve crosses the target, and its 95 %
        delta-method interval (NaN when the fit is not possible).
    evaluations : DataFrame
        Every evaluated size, in order of size: the size, ``n_therapists``,
        ``n_patients``, ``n_sessions``, ``n_sims``, ``power``, ``ci_low``, ``ci_high``.
    settings : mapping
        The search settings (target, term, along, bounds, replicates, seed entropy).
    """

    required: int | None
    interval: tuple[int | None, int | None]
    curve: tuple[float, float, float]
    evaluations: pd.DataFrame
    settings: Mapping[str, Any]

    def summary(self) -> Summary:
        """Printable summary: the answer, its interval and every evaluated size."""
        s = self.settings
        low, high = self.interval
        header = [
            ("Design", str(s["design"])),
            ("Term", str(s["term"])),
            ("Target power", f"{s['target']:g}"),
            ("Searched", f"{s['along']} in [{s['lower']}, {s['upper']}]"),
            ("Required", "not reached" if self.required is None else str(self.required)),
            ("Monte-Carlo interval", f"[{'?' if low is None else low}, "
                                     f"{'?' if high is None else high}]"),
            ("Power-curve fit", "{:.1f} (95% CI {:.1f} to {:.1f})".format(*self.curve)),
            ("Seed entropy", str(s["entropy"])),
        ]
        table = self.evaluations.set_index(s["along"])
        return Summary(
            f"Sample-size search: {s['design']} design",
            header,
            [("Evaluated sizes", table)],
            notes=[
                "required = smallest evaluated size with estimated power >= target (and "
                "every larger evaluated size too); interval from the 95% Clopper-Pearson "
                "bounds of the evaluated sizes."
            ],
        )

    def _repr_html_(self) -> str:
        return self.summary().as_html()

    def __repr__(self) -> str:
        return (f"SizeSearch(required={self.required}, interval={self.interval}, "
                f"curve={tuple(round(v, 1) for v in self.curve)}, "
                f"evaluated={len(self.evaluations)})")


def find_size(
    design: str,
    target: float = 0.8,
    *,
    along: str = "n_therapists",
    term: str | None = None,
    lower: int = 4,
    upper: int = 200,
    patients_per_therapist: float | None = None,
    n_therapists: int | None = None,
    n_sessions: int = 6,
    n_sims: int = 200,
    n_sims_final: int | None = None,
    rng: Any = None,
    checkpoint: Any = None,
    progress: bool = False,
    **power_kwargs: Any,
) -> SizeSearch:
    """Smallest trial size whose power reaches ``target``, searched adaptively.

    Bisection on the (monotone) power curve between ``lower`` and ``upper`` with
    ``n_sims`` replicates per evaluated size; then the sizes next to the answer get
    ``n_sims_final`` replicates in all, and the search continues if they change the
    answer. The answer comes with a Monte-Carlo interval (see :class:`SizeSearch`).

    Parameters
    ----------
    design : {"truth_bias", "growth", "lagged_rsa"}
        As in :func:`power`.
    target : float
        Power to reach, in (0, 1).
    along : {"n_therapists", "patients_per_therapist"}
        Search over therapists at a fixed caseload (give ``patients_per_therapist``), or
        over whole patients per therapist at a fixed number of therapists (give
        ``n_therapists``).
    term : str, optional
        Tested term (default: the design's first term, or the first of ``targets``).
    lower, upper : int
        Search bounds (sizes along ``along``), ``lower < upper``.
    patients_per_therapist : float, optional
        The fixed caseload when searching therapists (default 3).
    n_therapists : int, optional
        The fixed number of therapists when searching patients per therapist.
    n_sessions : int
        Sessions per patient.
    n_sims : int
        Replicates per evaluated size during the bisection.
    n_sims_final : int, optional
        Replicates at the sizes next to the answer (default ``4 * n_sims``).
    rng : None, int, SeedSequence or Generator
        Root seed of every evaluation (SPEC 7); drawn once when None, or taken from
        ``checkpoint`` when it has one.
    checkpoint : path, optional
        One checkpoint directory shared by every evaluation: an interrupted search
        resumes, and a repeated search reuses every replicate.
    progress : bool
        Progress bars of the evaluations.
    **power_kwargs
        Passed to :func:`power` (``effects``, ``p_missing``, ``alpha``, ``engine``,
        ``targets``, ``random``, ``residual``, ``nesting``, ``ddf``, ``n_jobs``,
        ``backend``, ``chunk_size``).

    Returns
    -------
    SizeSearch

    Raises
    ------
    TypeError, ValueError
        For invalid arguments (naming the argument), before anything is simulated.

    Examples
    --------
    >>> from alliancestats.power import find_size
    >>> res = find_size("truth_bias", 0.8, patients_per_therapist=3, lower=10,
    ...                 upper=80, n_sims=20, rng=1)
    >>> res.required is None or 10 <= res.required <= 80
    True
    """
    target = check_probability(target, "target")
    along = check_choice(along, "along", ALONG)
    lower = _int(lower, "lower", 1)
    upper = _int(upper, "upper", 2)
    if lower >= upper:
        raise ValueError(f"`lower` ({lower}) must be below `upper` ({upper}).")
    sims = _int(n_sims, "n_sims", 1)
    final = 4 * sims if n_sims_final is None else _int(n_sims_final, "n_sims_final", 1)
    for key in ("n_patients", "n_sims", "caseloads"):
        if key in power_kwargs:
            raise TypeError(f"find_size() sets {key!r} itself; do not pass it.")
    if along == "n_therapists":
        if n_therapists is not None:
            raise ValueError("`n_therapists` is what is searched; leave it out, or search "
                             "along='patients_per_therapist'.")
        caseload = 3.0 if patients_per_therapist is None else patients_per_therapist

        def cell(n: int) -> dict[str, Any]:
            return {"n_therapists": n, "patients_per_therapist": caseload}
    else:
        if n_therapists is None or patients_per_therapist is not None:
            raise ValueError("along='patients_per_therapist' needs `n_therapists` (and no "
                             "`patients_per_therapist`).")
        therapists = _int(n_therapists, "n_therapists", 2)

        def cell(n: int) -> dict[str, Any]:
            return {"n_therapists": therapists, "n_patients": n * therapists}

    # Validate everything (the design, the term, the effects, ...) before simulating.
    allowed = ("effects", "p_missing", "alpha", "engine", "targets", "random", "n_jobs",
               "chunk_size", "residual", "nesting", "ddf")
    checked = plan(design, **cell(lower), n_sessions=n_sessions, progress=progress,
                   **{k: v for k, v in power_kwargs.items() if k in allowed})
    plan(design, **cell(upper), n_sessions=n_sessions,
         **{k: v for k, v in power_kwargs.items() if k in allowed})
    unknown = sorted(set(power_kwargs) - {*allowed, "backend"})
    if unknown:
        raise TypeError(f"find_size() got unexpected keyword arguments {unknown}.")
    terms = checked.terms
    chosen = terms[0] if term is None else check_choice(term, "term", terms)
    seed = read_seed(rng, checkpoint)
    common = {"n_sessions": n_sessions, "rng": seed, "checkpoint": checkpoint,
              "progress": progress, **power_kwargs}

    rows: dict[int, dict[str, Any]] = {}

    def evaluate(n: int, reps: int) -> float:
        if n in rows and rows[n]["n_sims"] >= reps:
            return float(rows[n]["power"])
        res = power(design, **cell(n), **common, n_sims=reps)
        rows[n] = _row(res, chosen, n, along, reps)
        return float(rows[n]["power"])

    low, high = lower, upper
    if evaluate(high, sims) < target:
        return _finish(rows, target, along, None, _settings(design, chosen, target, along,
                                                            lower, upper, sims, final, seed))
    if evaluate(low, sims) >= target:
        high = low
    while True:
        while high - low > 1:
            mid = (low + high) // 2
            if evaluate(mid, sims) >= target:
                high = mid
            else:
                low = mid
        # More replicates next to the answer; continue if they move it.
        if high > low and evaluate(low, final) >= target:
            high, low = low, max(lower, low - max(1, (upper - lower) // 8))
            if evaluate(low, sims) >= target:
                high = low
            continue
        if evaluate(high, final) < target:
            if high == upper:  # not reached once the upper bound has every replicate
                break
            low, high = high, upper
            continue
        break
    required = _required(rows, target)
    return _finish(rows, target, along, required,
                   _settings(design, chosen, target, along, lower, upper, sims, final, seed))


def _int(value: Any, name: str, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise TypeError(f"`{name}` must be an integer; got {value!r}.")
    if value < minimum:
        raise ValueError(f"`{name}` must be at least {minimum}; got {value}.")
    return int(value)


def _row(res: PowerResult, term: str, n: int, along: str, reps: int) -> dict[str, Any]:
    line = res.power.query("term == @term").iloc[0]
    return {along: n, "n_therapists": int(line["n_therapists"]),
            "n_patients": int(line["n_patients"]), "n_sessions": int(line["n_sessions"]),
            "n_sims": reps, "power": float(line["power"]), "ci_low": float(line["ci_low"]),
            "ci_high": float(line["ci_high"])}


def _required(rows: Mapping[int, Mapping[str, Any]], target: float) -> int | None:
    """Smallest evaluated size from which every evaluated size reaches the target."""
    answer = None
    for n in sorted(rows, reverse=True):
        if rows[n]["power"] < target:
            break
        answer = n
    return answer


def _finish(rows: Mapping[int, Mapping[str, Any]], target: float, along: str,
            required: int | None, settings: dict[str, Any]) -> SizeSearch:
    table = pd.DataFrame([rows[n] for n in sorted(rows)])
    too_small = [n for n in sorted(rows) if rows[n]["ci_high"] < target]
    enough = [n for n in sorted(rows) if rows[n]["ci_low"] >= target]
    low = too_small[-1] + 1 if too_small else None
    high = enough[0] if enough else None
    curve = _probit_crossing(table, settings["along"], target)
    return SizeSearch(required, (low, high), curve, table, settings)


def _probit_crossing(table: pd.DataFrame, along: str, target: float
                     ) -> tuple[float, float, float]:
    """Size where a probit curve in sqrt(size), fitted to the evaluations, reaches the
    target, with a 95% delta-method interval; NaNs when it cannot be fitted."""
    import warnings

    import statsmodels.api as sm
    from scipy import stats

    nan = (np.nan, np.nan, np.nan)
    if len(table) < 3:
        return nan
    hits = np.round(table["power"].to_numpy(float) * table["n_sims"].to_numpy(float))
    counts = np.column_stack([hits, table["n_sims"].to_numpy() - hits])
    X = sm.add_constant(np.sqrt(table[along].to_numpy(float)))
    family = sm.families.Binomial(link=sm.families.links.Probit())
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            fit = sm.GLM(counts, X, family=family).fit()
    except (ValueError, np.linalg.LinAlgError):  # pragma: no cover - degenerate data
        return nan
    a, b = fit.params
    if not np.isfinite(b) or b <= 0:
        return nan
    root = (stats.norm.ppf(target) - a) / b
    if root <= 0:
        return nan
    size = root**2
    grad = np.array([-2 * root / b, -2 * root * root / b])
    se = float(np.sqrt(grad @ np.asarray(fit.cov_params()) @ grad))
    return float(size), float(size - 1.96 * se), float(size + 1.96 * se)


def _settings(design: str, term: str, target: float, along: str, lower: int, upper: int,
              sims: int, final: int, seed: np.random.SeedSequence) -> dict[str, Any]:
    return {"design": design, "term": term, "target": target, "along": along,
            "lower": lower, "upper": upper, "n_sims": sims, "n_sims_final": final,
            "entropy": seed.entropy, "root_key": list(seed.spawn_key)}
