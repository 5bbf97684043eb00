"""Likelihood-ratio tests between nested mixed-model fits, and their parametric bootstrap.

Array-level pieces working on :class:`~alliancestats._mixed._ddf.DdfSource` (the model,
response and design of one fit); :func:`alliancestats.results.compare_models` is the
public entry point.

- :func:`log_likelihood`: the fit's log-likelihood under REML or ML; an ML value of a
  REML fit is a refit by ML (lme4's ``anova`` does the same when fixed effects differ),
  warm-started at the fit's ``θ``.
- :func:`bootstrap_lrt`: the reference distribution of the LR statistic by simulating
  from the smaller model at its estimates and refitting both models to each simulated
  response (pbkrtest ``PBrefdist``/``PBmodcomp``); one ``SeedSequence`` child per
  replicate, so results do not depend on ``n_jobs``.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from ._ddf import DdfSource, FloatArray

__all__ = ["bootstrap_lrt", "log_likelihood", "simulate_response"]


def _example_fit() -> Any:
    """The fit of this module's examples: random intercepts of 10 simulated groups of 6."""
    import pandas as pd

    from . import fit_mixed

    rng = np.random.default_rng(0)
    g = np.repeat(np.arange(10), 6)
    X = pd.DataFrame({"Intercept": np.ones(60)})
    y = pd.Series(rng.normal(size=10)[g] + rng.normal(size=60))
    return fit_mixed(y, X, pd.DataFrame({"g": g}), {"g": ["Intercept"]})


def log_likelihood(source: DdfSource, reml: bool) -> float:
    """Log-likelihood of the fit under REML or ML (refitting if the criterion differs).

    Examples
    --------
    >>> import numpy as np
    >>> from alliancestats._mixed._compare import _example_fit
    >>> fit = _example_fit()  # random intercepts, 10 groups of 6 rows
    >>> bool(np.isclose(log_likelihood(fit.ddf_source, True), fit.llf))
    True
    """
    if reml == source.reml:
        return float(source.model.evaluate(source.y, source.theta, reml=reml,
                                           random_effects=False).llf)
    return float(source.model.fit(source.y, start=source.theta, reml=reml,
                                  random_effects=False).llf)


def simulate_response(source: DdfSource, rng: np.random.Generator) -> FloatArray:
    """One response drawn from the fitted model: ``Xβ̂ + Σ_l Z_l b_l + e`` with
    ``b_l ~ N(0, Σ̂_l)`` per unit and ``e ~ N(0, σ̂²)`` (iid residuals).

    Examples
    --------
    >>> import numpy as np
    >>> from alliancestats._mixed._compare import _example_fit
    >>> fit = _example_fit()  # random intercepts, 10 groups of 6 rows
    >>> simulate_response(fit.ddf_source, np.random.default_rng(1)).shape
    (60,)
    """
    fit = source.model.evaluate(source.y, source.theta, reml=source.reml,
                                random_effects=False)
    y = source.X @ fit.beta + np.sqrt(fit.sigma2) * rng.standard_normal(source.y.size)
    codes = np.asarray(source.codes).reshape(source.y.size, -1)
    for level, (Z, cov) in enumerate(zip(source.Z, fit.cov_re, strict=True)):
        n_units = int(codes[:, level].max()) + 1
        k = Z.shape[1]
        vals, vecs = np.linalg.eigh(np.asarray(cov, dtype=float).reshape(k, k))
        root = vecs * np.sqrt(np.clip(vals, 0.0, None))
        b = rng.standard_normal((n_units, k)) @ root.T
        y = y + np.einsum("ij,ij->i", Z, b[codes[:, level]])
    return np.asarray(y, dtype=float)


def _check_iid(source: DdfSource) -> None:
    if not source.has_iid_residuals():
        raise ValueError("the parametric bootstrap simulates iid residuals; it is not "
                         "available for this residual structure.")


def _replicate(small: DdfSource, large: DdfSource, reml: bool,
               seed: np.random.SeedSequence) -> float:
    from . import single_threaded_blas

    rng = np.random.default_rng(seed)
    # one BLAS thread in every path (joblib's workers have one; a serial run would
    # otherwise compute with several and differ in the last bits)
    with single_threaded_blas():
        y = simulate_response(small, rng)
        try:
            f0 = small.model.fit(y, start=small.theta, reml=reml, random_effects=False)
            f1 = large.model.fit(y, start=large.theta, reml=reml, random_effects=False)
        except (np.linalg.LinAlgError, ValueError):
            return float("nan")
    if not (f0.converged and f1.converged):
        return float("nan")
    return max(2.0 * (float(f1.llf) - float(f0.llf)), 0.0)


def bootstrap_lrt(small: DdfSource, large: DdfSource, *, reml: bool, n: int,
                  rng: Any = None, n_jobs: int = 1) -> FloatArray:
    """LR statistics of ``n`` responses simulated from ``small`` (NaN: a failed refit).

    Parameters
    ----------
    small, large : DdfSource
        The fits of the smaller and the larger model (same response).
    reml : bool
        Criterion of the refits (REML only when the fixed effects are the same).
    n : int
        Number of simulated responses.
    rng : None, int or Generator
        Root of the replicates' random streams.
    n_jobs : int
        joblib workers; results do not depend on it.

    Returns
    -------
    ndarray, shape (n,)
    """
    from joblib import Parallel, delayed

    from .._validation import as_generator

    _check_iid(small)
    seeds = np.random.SeedSequence(
        int(as_generator(rng).integers(0, 2**63 - 1))).spawn(int(n))
    out = Parallel(n_jobs=n_jobs)(
        delayed(_replicate)(small, large, reml, s) for s in seeds)
    return np.asarray(out, dtype=float)
