"""The analytic gradient of the profiled deviance against central differences.

The optimiser uses the gradient of the deviance in ``θ`` (a reverse pass through the
blocked elimination, :meth:`NestedLMM.gradient`); here it is compared with central
differences of the deviance at many random ``θ`` for one to three nested levels, scalar
and vector terms, unstructured and independent (``||``) levels, REML and ML, interior
points and points with bounded elements exactly 0 (singular ``Λ``), and with a residual
structure (where ``ψ`` is differenced).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from alliancestats._mixed._engine import NestedLMM
from alliancestats._mixed._engine._core import theta_lower_bounds


def _model(levels: int, q: list[int], diag: list[bool], seed: int,
           **kw: Any) -> tuple[NestedLMM, np.ndarray]:
    rng = np.random.default_rng(seed)
    rows = []
    for a in range(6):
        for b in range(3):
            for c in range(2 if levels == 3 else 1):
                rows += [(a, 3 * a + b, 2 * (3 * a + b) + c)] * int(rng.integers(1, 6))
    codes = np.array(rows)[:, :levels]
    if levels == 3:
        codes[:, 2] = np.unique(codes[:, 2], return_inverse=True)[1]
    n = len(codes)
    X = np.column_stack([np.ones(n), rng.normal(size=(n, 2))])
    y = X @ [1.0, 0.5, -0.3] + rng.normal(size=6)[codes[:, 0]] + rng.normal(size=n)
    model = NestedLMM.from_codes(X, codes, [X[:, :k] for k in q], independent=diag, **kw)
    return model, y


def _random_theta(model: NestedLMM, diag: list[bool], rng: np.random.Generator,
                  zeros: bool) -> np.ndarray:
    theta = rng.normal(size=model.n_theta)
    q = tuple(len(names) for names in model.re_names)
    for j, bound in enumerate(theta_lower_bounds(q, diag)):
        if bound is not None:
            theta[j] = 0.0 if zeros and rng.random() < 0.5 else abs(theta[j])
    return theta


def _central(fun: Any, x: np.ndarray, h: float = 1e-6) -> np.ndarray:
    return np.array([(fun(x + h * e) - fun(x - h * e)) / (2 * h) for e in np.eye(x.size)])


STRUCTURES = [
    (1, [1], [False]), (1, [2], [False]), (2, [1, 1], [False, False]),
    (2, [2, 2], [False, False]), (2, [1, 2], [False, False]), (2, [3, 2], [False, True]),
    (3, [1, 2, 1], [False, False, False]), (3, [2, 3, 2], [True, False, False]),
]


@pytest.mark.parametrize(("levels", "q", "diag"), STRUCTURES)
@pytest.mark.parametrize("reml", [True, False])
def test_gradient_matches_central_differences(levels: int, q: list[int], diag: list[bool],
                                              reml: bool) -> None:
    model, y = _model(levels, q, diag, seed=levels * 10 + sum(q))
    rng = np.random.default_rng(7)
    for trial in range(12):
        theta = _random_theta(model, diag, rng, zeros=trial % 3 == 0)
        grad = model.gradient(y, theta, reml=reml)
        # the deviance is even in a bounded element at 0, so central differences there
        # are exact as well
        expected = _central(lambda t: model.deviance(y, t, reml=reml), theta)
        np.testing.assert_allclose(grad, expected, rtol=1e-5, atol=1e-5)


def test_gradient_with_a_residual_structure() -> None:
    rng = np.random.default_rng(3)
    ther = np.repeat(np.arange(12), 10)
    pat = np.repeat(np.arange(24), 5)
    t = np.tile(np.arange(5.0), 24)
    X = np.column_stack([np.ones(120), t])
    y = X @ [1.0, 0.2] + rng.normal(size=12)[ther] + rng.normal(size=120)
    model = NestedLMM.from_codes(X, np.column_stack([ther, pat]), [X[:, :1], X],
                                 residual="ar1", time=t)
    for _ in range(5):
        params = np.r_[_random_theta(model, [False, False], rng, zeros=False),
                       rng.normal(scale=0.5)]
        grad = model.gradient(y, params)
        # ψ by forward differences: a looser tolerance
        expected = _central(lambda t: model.deviance(y, t), params)
        np.testing.assert_allclose(grad, expected, rtol=1e-4, atol=1e-4)


def test_gradient_vanishes_at_the_fitted_optimum() -> None:
    model, y = _model(2, [2, 2], [False, False], seed=5)
    fit = model.fit(y)
    grad = model.gradient(y, fit.theta)
    free = fit.theta > 1e-6  # bounded elements on the boundary may have a positive slope
    assert np.all(np.abs(grad[free]) < 1e-3 * fit.nobs)
