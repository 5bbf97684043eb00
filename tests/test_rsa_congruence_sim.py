"""Seeded simulation of the congruence verdict's error rate (``benchmarks/sim_congruence.py``
has the full grid and the power of the route; numbers in the RSA guide).

A ridge 0.4 SD off the line of congruence (``z = -0.5 (x - y + 0.4)^2 + e``, a3 = -0.8,
noise SD 1.5) must be judged "consistent with congruence" in at most 5% of samples of 40
on the default (equivalence) route. Each condition is a TOST at alpha = 0.05 whose bound
the true surface violates, so the rate is at most 5% by construction; the test guards the
implementation. 100 samples, the default 500 bootstrap replicates each.
"""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd
import pytest

from alliancestats import fit_rsa

pytestmark = pytest.mark.slow


def _verdicts(shift: float, n: int, reps: int, seed: int) -> np.ndarray:
    out = []
    for ss in np.random.SeedSequence(seed).spawn(reps):
        data_rng, boot_rng = (np.random.default_rng(s) for s in ss.spawn(2))
        x, y = data_rng.normal(size=n), data_rng.normal(size=n)
        z = -0.5 * (x - y + shift) ** 2 + data_rng.normal(0, 1.5, n)
        res = fit_rsa(pd.DataFrame({"x": x, "y": y, "z": z}), outcome="z", x="x", y="y")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            test = res.congruence_test(rng=boot_rng, compare_models=False)
        out.append(test.verdict)
    return np.asarray(out)


def test_shifted_ridge_is_rarely_consistent_at_n_40() -> None:
    verdicts = _verdicts(0.4, 40, 100, seed=2024)
    assert verdicts.mean() <= 0.05
