"""Numerical core: per-unit cross products and the blocked profiled deviance.

Block order of every per-unit matrix is ``[Z_{L-1} | ... | Z_0 | X | y]`` (innermost level
first), so eliminating a level always removes the leading ``q_l`` rows and columns.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

FloatArray = np.ndarray[Any, np.dtype[np.float64]]
IntArray = np.ndarray[Any, np.dtype[np.intp]]

LOG_2PI = float(np.log(2.0 * np.pi))


@dataclass(frozen=True)
class Structure:
    """Everything about a nested design that does not depend on ``y`` or ``θ``.

    ``cross`` holds, per innermost unit, ``W'W`` for ``W = [Z_{L-1} | ... | Z_0 | X]`` (rows
    sorted by unit). ``starts[l]`` are the reduceat offsets that sum level ``l+1`` units into
    their level-``l`` parents; ``parent[l]`` maps each level-``l+1`` unit to its parent.
    """

    q: tuple[int, ...]  # random terms per level, outer -> inner
    p: int
    n: int
    order: IntArray  # row permutation sorting rows by innermost unit
    unit_starts: IntArray  # reduceat offsets of the sorted rows per innermost unit
    cross: FloatArray  # (n_inner, m-1, m-1)
    W_sorted: FloatArray  # (n, m-1) sorted design, for the y-dependent cross products
    starts: tuple[IntArray, ...]  # len L-1
    parent: tuple[IntArray, ...]  # len L-1

    @property
    def n_levels(self) -> int:
        return len(self.q)

    @property
    def n_theta(self) -> int:
        return sum(k * (k + 1) // 2 for k in self.q)

    def with_response(self, y: FloatArray) -> FloatArray:
        """Per innermost unit cross products of ``[W | y]``: shape ``(n_inner, m, m)``."""
        ys = y[self.order]
        wy = np.add.reduceat(self.W_sorted * ys[:, None], self.unit_starts, axis=0)
        yy = np.add.reduceat(ys * ys, self.unit_starts)
        n_in, k, _ = self.cross.shape
        full = np.empty((n_in, k + 1, k + 1))
        full[:, :k, :k] = self.cross
        full[:, :k, k] = wy
        full[:, k, :k] = wy
        full[:, k, k] = yy
        return full


def theta_to_lambdas(theta: FloatArray, q: tuple[int, ...]) -> list[FloatArray]:
    """Lower-triangular ``Λ_l`` from ``θ`` (lower triangles column-major, levels outer first)."""
    out = []
    pos = 0
    for k in q:
        lam = np.zeros((k, k))
        cols, rows = np.triu_indices(k)  # column-major lower triangle: (row, col) = (r, c)
        size = k * (k + 1) // 2
        lam[rows, cols] = theta[pos:pos + size]
        pos += size
        out.append(lam)
    return out


def theta_lower_bounds(q: tuple[int, ...]) -> list[float | None]:
    """0 for diagonal elements of each ``Λ_l``, unbounded otherwise (lme4's ``lower``)."""
    bounds: list[float | None] = []
    for k in q:
        cols, rows = np.triu_indices(k)
        bounds.extend(0.0 if r == c else None for r, c in zip(rows, cols, strict=True))
    return bounds


def theta_start(q: tuple[int, ...]) -> FloatArray:
    """lme4's default start: identity ``Λ_l``."""
    lower = theta_lower_bounds(q)
    return np.array([1.0 if b is not None else 0.0 for b in lower])


def _scale(full: FloatArray, lambdas: list[FloatArray], p: int) -> FloatArray:
    """``D' C D`` with ``D = blockdiag(Λ_{L-1}, ..., Λ_0, I_{p+1})`` for every unit."""
    blocks = [*lambdas[::-1], np.eye(p + 1)]
    m = sum(b.shape[0] for b in blocks)
    D = np.zeros((m, m))
    pos = 0
    for b in blocks:
        k = b.shape[0]
        D[pos:pos + k, pos:pos + k] = b
        pos += k
    return np.asarray(D.T @ full @ D)


def _eliminate(M: FloatArray, k: int) -> tuple[FloatArray, FloatArray, float]:
    """Absorb the leading ``k`` effects (plus the identity penalty) of every unit.

    Returns the Schur complements, ``K = A11⁻¹ A12`` (kept for back substitution) and the
    summed ``log det A11``.
    """
    A12 = M[:, :k, k:]
    if k == 1:
        # scalar blocks: avoid LAPACK call overhead on (n, 1, 1) stacks
        a11 = M[:, 0, 0] + 1.0
        K = A12 / a11[:, None, None]
        S = M[:, 1:, 1:] - A12.transpose(0, 2, 1) * K
        return S, K, float(np.sum(np.log(a11)))
    A11 = M[:, :k, :k] + np.eye(k)
    chol = np.linalg.cholesky(A11)
    K = np.linalg.solve(A11, A12)
    S = M[:, k:, k:] - A12.transpose(0, 2, 1) @ K
    logdet = 2.0 * float(np.sum(np.log(np.diagonal(chol, axis1=1, axis2=2))))
    return S, K, logdet


@dataclass
class Factor:
    """Result of one blocked factorisation at a given ``θ``."""

    logdet_l: float  # log |L_θ|²
    logdet_rx: float  # log |R_X|²
    pwrss: float  # penalised residual sum of squares r²
    beta: FloatArray
    rxx: FloatArray  # X'V⁻¹X up to σ² (the reduced fixed-effects block)
    ks: list[FloatArray]  # per level (outer -> inner) the K matrices


def factorize(struct: Structure, full: FloatArray, lambdas: list[FloatArray]) -> Factor:
    """Blocked elimination innermost -> outermost; the final ``[X | y]`` system."""
    p = struct.p
    M = _scale(full, lambdas, p)
    logdet = 0.0
    ks: list[FloatArray] = []
    for level in range(struct.n_levels - 1, -1, -1):
        S, K, ld = _eliminate(M, struct.q[level])
        logdet += ld
        ks.append(K)
        M = np.add.reduceat(S, struct.starts[level - 1], axis=0) if level > 0 else S
    F = M.sum(axis=0)
    rxx = F[:p, :p]
    chol = np.linalg.cholesky(rxx)
    beta = np.linalg.solve(rxx, F[:p, p])
    pwrss = float(F[p, p] - F[:p, p] @ beta)
    logdet_rx = 2.0 * float(np.sum(np.log(np.diag(chol))))
    return Factor(logdet, logdet_rx, pwrss, beta, rxx, ks[::-1])


def deviance(struct: Structure, full: FloatArray, theta: FloatArray, reml: bool) -> float:
    """Profiled deviance (−2 log-likelihood, REML or ML) at ``θ``."""
    try:
        f = factorize(struct, full, theta_to_lambdas(theta, struct.q))
    except np.linalg.LinAlgError:
        return np.inf
    return objective(f, struct.n, struct.p, reml)


def objective(f: Factor, n: int, p: int, reml: bool) -> float:
    """−2 log-likelihood from a factorisation (lme4's deviance / REML criterion)."""
    if f.pwrss <= 0.0:
        return np.inf
    if reml:
        nmp = n - p
        return f.logdet_l + f.logdet_rx + nmp * (1.0 + LOG_2PI + np.log(f.pwrss / nmp))
    return f.logdet_l + n * (1.0 + LOG_2PI + np.log(f.pwrss / n))


def conditional_modes(struct: Structure, f: Factor, lambdas: list[FloatArray]) -> list[FloatArray]:
    """``b_l = Λ_l u_l`` per level by back substitution through the stored ``K`` blocks."""
    p = struct.p
    us: list[FloatArray] = []  # spherical effects, outer -> inner
    for level, K in enumerate(f.ks):
        # columns of K: [Z_{level-1} | ... | Z_0 | X | y]
        u = K[:, :, -1] - K[:, :, -1 - p:-1] @ f.beta
        pos = 0
        for anc in range(level - 1, -1, -1):
            k = struct.q[anc]
            idx = _ancestor_index(struct, level, anc)
            u = u - np.einsum("nij,nj->ni", K[:, :, pos:pos + k], us[anc][idx])
            pos += k
        us.append(u)
    return [u @ lam.T for u, lam in zip(us, lambdas, strict=True)]


def _ancestor_index(struct: Structure, level: int, anc: int) -> IntArray:
    """Index of each level-``level`` unit's ancestor at level ``anc`` (< level)."""
    idx = struct.parent[level - 1]
    for lv in range(level - 1, anc, -1):
        idx = struct.parent[lv - 1][idx]
    return idx
