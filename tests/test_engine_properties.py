"""Properties of the nested engine that follow from the model (hypothesis).

- the likelihood is a function of the multiset of (row, unit) pairs: permuting rows or
  relabelling units (keeping the nesting) leaves every estimate unchanged;
- a therapist level without between-therapist variation in the data is estimated on the
  boundary and flagged singular, without an error.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from alliancestats._mixed._engine import NestedLMM

SETTINGS = settings(max_examples=8, deadline=None,
                    suppress_health_check=[HealthCheck.too_slow])


@st.composite
def nested_data(draw: Any) -> dict[str, Any]:
    """A random two-level design (4-8 therapists, 1-3 patients each, 2-5 sessions)."""
    seed = draw(st.integers(0, 2**32 - 1))
    slopes = draw(st.booleans())
    rng = np.random.default_rng(seed)
    n_ther = int(rng.integers(4, 9))
    rows = []
    for k in range(n_ther):
        for j in range(int(rng.integers(1, 4))):
            rows += [(k, j)] * int(rng.integers(2, 6))
    g = np.array(rows)
    n = len(g)
    x = rng.normal(size=n)
    X = np.column_stack([np.ones(n), x])
    y = (1 + 0.5 * x + rng.normal(0, 0.7, n_ther)[g[:, 0]]
         + rng.normal(0, 0.7, (n_ther, 3))[g[:, 0], g[:, 1]] + rng.normal(size=n))
    Zp = X if slopes else X[:, :1]
    return {"X": X, "g": g, "y": y, "Z": [X[:, :1], Zp], "seed": seed}


def _same(a: Any, b: Any) -> None:
    np.testing.assert_allclose(a.llf, b.llf, rtol=1e-10)
    np.testing.assert_allclose(a.beta, b.beta, rtol=1e-4, atol=1e-6)
    np.testing.assert_allclose(a.sigma2, b.sigma2, rtol=1e-4)
    for ca, cb in zip(a.cov_re, b.cov_re, strict=True):
        np.testing.assert_allclose(ca, cb, rtol=1e-3, atol=1e-5)


@SETTINGS
@given(nested_data())
def test_row_permutation_leaves_fit_unchanged(d: dict[str, Any]) -> None:
    perm = np.random.default_rng(d["seed"]).permutation(len(d["y"]))
    base = NestedLMM(d["X"], d["g"], d["Z"]).fit(d["y"])
    moved = NestedLMM(d["X"][perm], d["g"][perm], [z[perm] for z in d["Z"]]).fit(d["y"][perm])
    _same(base, moved)


@SETTINGS
@given(nested_data())
def test_relabelling_units_leaves_fit_unchanged(d: dict[str, Any]) -> None:
    rng = np.random.default_rng(d["seed"])
    # therapists get shuffled string names; patient numbers are permuted within the range
    names = np.array([f"t{v}" for v in rng.permutation(50)[: d["g"][:, 0].max() + 1]])
    pmap = rng.permutation(3)
    g = pd.DataFrame({"ther": names[d["g"][:, 0]], "pat": pmap[d["g"][:, 1]] * 10})
    base = NestedLMM(d["X"], d["g"], d["Z"]).fit(d["y"])
    relabelled = NestedLMM(d["X"], g, d["Z"]).fit(d["y"])
    _same(base, relabelled)
    # the unit labels come back as given
    assert set(relabelled.random_effects[0].index) == set(names[np.unique(d["g"][:, 0])])


@SETTINGS
@given(nested_data(), st.booleans())
def test_no_between_therapist_variation_gives_flagged_boundary_fit(
    d: dict[str, Any], reml: bool
) -> None:
    # remove the therapist means of y: the data hold no between-therapist variation, so the
    # therapist variance is estimated at exactly 0 (lme4 isSingular)
    ther = d["g"][:, 0]
    y = d["y"] - pd.Series(d["y"]).groupby(ther).transform("mean").to_numpy()
    X = d["X"][:, :1]
    fit = NestedLMM(X, d["g"], [X, X], reml=reml).fit(y)
    assert fit.converged
    assert fit.is_singular
    assert fit.theta[0] < 1e-4
    np.testing.assert_allclose(fit.cov_re[0], 0.0, atol=1e-6)
    assert np.isfinite(fit.llf)
    assert np.all(np.isfinite(fit.cov_beta))
