"""Numerical core: per-unit cross products and the blocked profiled deviance.

Block order of every per-unit matrix is ``[Z_{L-1} | ... | Z_0 | X | y]`` (innermost level
first), so eliminating a level always removes the leading ``q_l`` rows and columns.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from scipy import sparse
from scipy.linalg import lapack

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
    diag: tuple[bool, ...] = ()  # per level: diagonal Λ (independent terms, lme4 `||`)

    @property
    def n_levels(self) -> int:
        return len(self.q)

    @property
    def n_theta(self) -> int:
        return sum(block_sizes(self.q, self.diag))

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


def _diag_flags(q: tuple[int, ...], diag: tuple[bool, ...] | None) -> tuple[bool, ...]:
    return tuple(diag) if diag else (False,) * len(q)


def block_sizes(q: tuple[int, ...], diag: tuple[bool, ...] | None = None) -> list[int]:
    """Number of ``θ`` elements per level: a lower triangle, or a diagonal."""
    return [k if d else k * (k + 1) // 2 for k, d in zip(q, _diag_flags(q, diag), strict=True)]


def theta_to_lambdas(theta: FloatArray, q: tuple[int, ...],
                     diag: tuple[bool, ...] | None = None) -> list[FloatArray]:
    """``Λ_l`` from ``θ``: lower triangles column-major (lme4's order), or the diagonal of
    a level whose terms are independent; levels outer first."""
    out = []
    pos = 0
    for k, d in zip(q, _diag_flags(q, diag), strict=True):
        if k == 1:
            out.append(np.array([[theta[pos]]]))
            pos += 1
            continue
        rows, cols = _free_indices(k, d)
        lam = np.zeros((k, k))
        lam[rows, cols] = theta[pos:pos + rows.size]
        pos += rows.size
        out.append(lam)
    return out


@functools.cache
def _free_indices(k: int, diag: bool = False) -> tuple[IntArray, IntArray]:
    """(row, column) of the free elements of a k×k ``Λ``: the lower triangle in
    column-major order (lme4's θ order), or the diagonal."""
    if diag:
        idx = np.arange(k)
        return idx, idx
    cols, rows = np.triu_indices(k)
    return rows, cols


def theta_lower_bounds(q: tuple[int, ...],
                       diag: tuple[bool, ...] | None = None) -> list[float | None]:
    """0 for diagonal elements of each ``Λ_l``, unbounded otherwise (lme4's ``lower``)."""
    bounds: list[float | None] = []
    for k, d in zip(q, _diag_flags(q, diag), strict=True):
        rows, cols = _free_indices(k, d)
        bounds.extend(0.0 if r == c else None for r, c in zip(rows, cols, strict=True))
    return bounds


def diagonal_positions(q: tuple[int, ...], diag: tuple[bool, ...] | None = None) -> list[int]:
    """Positions in ``θ`` of the diagonal elements of each ``Λ_l`` (those bounded by 0)."""
    return [i for i, b in enumerate(theta_lower_bounds(q, diag)) if b is not None]


def theta_start(q: tuple[int, ...], diag: tuple[bool, ...] | None = None) -> FloatArray:
    """lme4's default start: identity ``Λ_l``."""
    lower = theta_lower_bounds(q, diag)
    return np.array([1.0 if b is not None else 0.0 for b in lower])


@dataclass(frozen=True)
class Prepared:
    """Per-response quantities of the innermost stage (θ-independent).

    ``c11``, ``c12``: per innermost unit the ``Z_{L-1}`` block and its cross products with
    the rest (``[Z_{L-2} | ... | Z_0 | X | y]``); ``outer``: per unit and pair ``(a, b)`` of
    its terms the flattened ``c12[a]' c12[b]``; ``rest``: the ``[rest]`` blocks summed by
    parent. ``agg`` is a parent × (unit, a, b) sparse matrix with one entry per column:
    with the flattened ``H`` as its data, ``agg @ outer`` is every parent's summed Schur
    correction without a (units × r²) temporary. Its data are overwritten per
    evaluation, so a ``Prepared`` belongs to one fit (one thread).
    """

    c11: FloatArray
    c12: FloatArray
    outer: FloatArray
    rest: FloatArray
    agg: sparse.csr_array


def prepare(struct: Structure, full: FloatArray,
            agg: sparse.csr_array | None = None) -> Prepared:
    """Split the per-unit ``[W | y]`` cross products for the innermost elimination.

    ``agg`` may be a previous :class:`Prepared`'s (it depends on the structure only), for
    callers that prepare new cross products of one structure many times (residual
    structures re-weight them at every evaluation).
    """
    k = struct.q[-1]
    c12 = full[:, :k, k:]
    r = c12.shape[2]
    outer = (c12[:, :, None, :, None] * c12[:, None, :, None, :]).reshape(-1, r * r)
    n_in = full.shape[0]
    starts = struct.starts[-1] if struct.n_levels > 1 else np.zeros(1, dtype=np.intp)
    rest = np.add.reduceat(full[:, k:, k:], starts, axis=0)
    if agg is None:
        cols = n_in * k * k
        agg = sparse.csr_array(
            (np.zeros(cols), np.arange(cols), np.r_[starts * (k * k), cols]),
            shape=(len(starts), cols),
        )
    return Prepared(np.ascontiguousarray(full[:, :k, :k]), c12, outer, rest, agg)


def _shrink(m11: FloatArray, lam: FloatArray) -> tuple[FloatArray, float, FloatArray]:
    """``H = Λ (Λ'M11Λ + I)⁻¹ Λ'`` per unit, ``Σ log det(Λ'M11Λ + I)`` and the inverses
    ``(Λ'M11Λ + I)⁻¹`` (kept for the gradient).

    With ``H`` the elimination works in unscaled coordinates: the Schur complement of the
    scaled system is ``D'(M22 − M21 H M12)D``. Sizes 1 and 2 use closed forms because on
    stacks of tiny matrices LAPACK's per-call cost dominates the arithmetic.
    """
    k = lam.shape[0]
    if k == 1:
        l2 = lam[0, 0] ** 2
        a = l2 * m11[:, 0, 0] + 1.0
        binv = (1.0 / a)[:, None, None]
        return l2 * binv, float(np.log(a).sum()), binv
    if k == 2:
        return _shrink_2(m11, lam)
    A = lam.T @ m11 @ lam + np.eye(k)
    inv = np.asarray(np.linalg.inv(A), dtype=float)
    logdet = float(np.sum(np.linalg.slogdet(A)[1]))
    return lam @ inv @ lam.T, logdet, inv


def _shrink_2(m11: FloatArray, lam: FloatArray) -> tuple[FloatArray, float, FloatArray]:
    """:func:`_shrink` for two terms, elementwise (``Λ`` lower triangular or diagonal)."""
    a, b, d = lam[0, 0], lam[1, 0], lam[1, 1]
    m00, m01, m11_ = m11[:, 0, 0], m11[:, 0, 1], m11[:, 1, 1]
    # B = Λ'M11Λ + I
    b00 = a * a * m00 + 2.0 * a * b * m01 + b * b * m11_ + 1.0
    b01 = d * (a * m01 + b * m11_)
    b11 = d * d * m11_ + 1.0
    det = b00 * b11 - b01 * b01  # > 0: B is positive definite
    i00, i01, i11 = b11 / det, -b01 / det, b00 / det
    inv = np.empty_like(m11)
    inv[:, 0, 0] = i00
    inv[:, 1, 1] = i11
    inv[:, 0, 1] = inv[:, 1, 0] = i01
    # H = Λ B⁻¹ Λ' with P = Λ B⁻¹
    p00, p01 = a * i00, a * i01
    p10, p11 = b * i00 + d * i01, b * i01 + d * i11
    H = np.empty_like(m11)
    H[:, 0, 0] = a * p00
    H[:, 0, 1] = H[:, 1, 0] = b * p00 + d * p01
    H[:, 1, 1] = b * p10 + d * p11
    return H, float(np.log(det).sum()), inv


@dataclass
class Factor:
    """Result of one blocked factorisation at a given ``θ``."""

    logdet_l: float  # log |L_θ|²
    logdet_rx: float  # log |R_X|²
    pwrss: float  # penalised residual sum of squares r²
    reduced: FloatArray  # the reduced [X | y] system; its X block is X'V⁻¹X up to σ²
    hs: list[FloatArray]  # per level (outer -> inner): H per unit
    m12s: list[FloatArray]  # per level: unscaled cross products of its block with the rest
    m11s: list[FloatArray] = field(default_factory=list)  # per level: its own block
    binvs: list[FloatArray] = field(default_factory=list)  # per level: (Λ'M11Λ + I)⁻¹
    lambdas: list[FloatArray] = field(default_factory=list)
    _beta: FloatArray | None = field(default=None, repr=False)

    @property
    def rxx(self) -> FloatArray:
        p = self.reduced.shape[0] - 1
        return self.reduced[:p, :p]

    @property
    def beta(self) -> FloatArray:
        """``β̂``, solved on first use (the deviance alone does not need it)."""
        if self._beta is None:
            p = self.reduced.shape[0] - 1
            self._beta = np.asarray(np.linalg.solve(self.rxx, self.reduced[:p, p]), float)
        beta: FloatArray = self._beta
        return beta


def factorize(struct: Structure, prep: Prepared, lambdas: list[FloatArray]) -> Factor:
    """Blocked elimination innermost -> outermost; the final ``[X | y]`` system."""
    p = struct.p
    H, logdet, binv = _shrink(prep.c11, lambdas[-1])
    r = prep.c12.shape[2]
    prep.agg.data[:] = H.ravel()
    M = prep.rest - (prep.agg @ prep.outer).reshape(-1, r, r)
    hs, m12s, m11s, binvs = [H], [prep.c12], [prep.c11], [binv]
    for level in range(struct.n_levels - 2, -1, -1):
        k = struct.q[level]
        m11 = M[:, :k, :k]
        H, ld, binv = _shrink(m11, lambdas[level])
        logdet += ld
        m12 = M[:, :k, k:]
        hs.append(H)
        m12s.append(m12)
        m11s.append(m11)
        binvs.append(binv)
        if level == 0:
            # the last Schur complements are only needed summed: one (r-k) x (r-k) product
            rk = r - k
            hm = H[:, 0, 0, None] * m12[:, 0] if k == 1 else (H @ m12).reshape(-1, rk)
            M = (M[:, k:, k:].sum(axis=0) - m12.reshape(-1, rk).T @ hm)[None]
        else:
            S = M[:, k:, k:] - m12.transpose(0, 2, 1) @ (H @ m12)
            M = np.add.reduceat(S, struct.starts[level - 1], axis=0)
        r -= k
    F = M[0] if M.shape[0] == 1 else M.sum(axis=0)
    # one Cholesky of [X | y]: its X block is R_X, its last diagonal element r (lme4's
    # R_X and r² = pwrss); fails (LinAlgError) when r² is not positive. LAPACK directly:
    # numpy's wrapper costs more than the factorisation of a (p+1)² matrix.
    chol, info = lapack.dpotrf(F, lower=True, clean=False)
    if info != 0:
        raise np.linalg.LinAlgError("the [X | y] system is not positive definite")
    diag = np.diagonal(chol)
    logdet_rx = 2.0 * float(np.log(diag[:p]).sum())
    return Factor(logdet, logdet_rx, float(diag[p] ** 2), F, hs[::-1], m12s[::-1],
                  m11s=m11s[::-1], binvs=binvs[::-1], lambdas=list(lambdas))


def gradient(struct: Structure, f: Factor, reml: bool,
             r2_weight: float | None = None) -> FloatArray:
    r"""Gradient of :func:`objective` in ``θ`` (lme4's order) from a factorisation.

    Reverse-mode differentiation of the blocked elimination. The objective depends on
    the final ``[X | y]`` system ``F`` through ``log|F_XX|`` (REML) and
    ``N log r²`` with ``r² = F_yy − F_yX F_XX⁻¹ F_Xy`` (``N = n`` or ``n − p``), so its
    adjoint is ``Ḡ_F = (N/r²)[ββ', −β; −β', 1] + [F_XX⁻¹, 0; 0, 0]``. Going back
    through one level's elimination (per unit ``S = M22 − M12' H M12`` summed into the
    parent, ``H = Λ B⁻¹ Λ'``, ``B = Λ'M11Λ + I``, plus ``log|B|``) with the parent's
    adjoint ``Ḡ``:

    .. math::

        Ḡ_H = −M12 Ḡ M12', \quad K = B⁻¹ − B⁻¹Λ'Ḡ_HΛB⁻¹, \quad
        ∂/∂Λ = 2 Σ_units (M11 Λ K + Ḡ_H Λ B⁻¹),

    and the unit's own adjoint, passed to the level inside it, is
    ``[ΛKΛ', −H M12 Ḡ; −Ḡ M12' H, Ḡ]``. One pass costs about one deviance evaluation,
    and it is exact at the boundary (``Λ`` singular) as well.

    ``r2_weight`` replaces the weight ``N/r²`` of ``r²``: the result is then the gradient
    of ``log|L_θ|² [+ log|R_X|²] + r2_weight · r²(θ)`` (0 gives the log-determinants'
    gradient alone; the difference of two weights gives ``∇r²``).
    """
    return _reverse_pass(struct, f, reml, r2_weight, into_inner=False)[0]


def inner_adjoint(struct: Structure, f: Factor, reml: bool,
                  r2_weight: float | None = None) -> tuple[FloatArray, FloatArray]:
    """:func:`gradient` and the adjoint of every innermost unit's ``[W | y]`` cross
    products: ``Ḡ_u = ∂ objective / ∂ M_u`` of shape ``(n_inner, m, m)``.

    The same reverse pass, continued one step into the innermost units (the adjoint
    :func:`gradient` hands inner levels, here for the innermost level itself). With it
    the derivative of the objective in anything that changes the cross products (the
    residual parameters, which re-weight them) is ``Σ_u tr(Ḡ_u ∂M_u)``. ``r2_weight`` as
    for :func:`gradient`.
    """
    grad, gbar = _reverse_pass(struct, f, reml, r2_weight, into_inner=True)
    assert gbar is not None
    return grad, gbar


def _reverse_pass(struct: Structure, f: Factor, reml: bool, r2_weight: float | None,
                  into_inner: bool) -> tuple[FloatArray, FloatArray | None]:
    """The reverse pass of :func:`gradient`, level by level from the top; with
    ``into_inner`` one step further, to the innermost units' adjoint."""
    L = struct.n_levels
    gbar = _seed(struct, f, reml, r2_weight)[None]
    out = []
    for level in range(L):
        lam, H, m12 = f.lambdas[level], f.hs[level], f.m12s[level]
        m11, binv = f.m11s[level], f.binvs[level]
        gs = gbar if level == 0 else gbar[struct.parent[level - 1]]
        k = lam.shape[0]
        if k == 1:
            gh, lk = _level_grad_1(lam[0, 0], m11[:, 0, 0], binv[:, 0, 0], m12[:, 0], gs)
            grad = np.array([[lk]])
        else:
            gh, grad = _level_grad(lam, m11, binv, m12, gs)
        rows, cols = _free_indices(k, bool(struct.diag[level]) if struct.diag else False)
        out.append(grad[rows, cols])
        if into_inner or level < L - 1:
            gbar = _unit_adjoint(lam, H, binv, m12, gs, gh)
    return np.concatenate(out), (gbar if into_inner else None)


def _seed(struct: Structure, f: Factor, reml: bool,
          r2_weight: float | None = None) -> FloatArray:
    """The adjoint of the final ``[X | y]`` system: ``c [ββ', −β; −β', 1]`` (``c = N/r²``
    or ``r2_weight``) plus ``[F_XX⁻¹, 0; 0, 0]`` under REML."""
    p = struct.p
    beta = f.beta
    c = ((struct.n - p if reml else struct.n) / f.pwrss if r2_weight is None
         else float(r2_weight))
    gF = np.empty((p + 1, p + 1))
    gF[:p, :p] = c * np.outer(beta, beta)
    gF[:p, p] = gF[p, :p] = -c * beta
    gF[p, p] = c
    if reml:
        gF[:p, :p] += np.linalg.inv(f.rxx)
    return gF


def _quad(m12: FloatArray, gs: FloatArray) -> FloatArray:
    """``M12 Ḡ M12'`` per unit (``gs`` one shared matrix or one per unit)."""
    n, k, r = m12.shape
    t = ((m12.reshape(-1, r) @ gs[0]).reshape(n, k, r) if gs.shape[0] == 1
         else m12 @ gs)
    return t @ m12.transpose(0, 2, 1)


def _level_grad_1(lam: float, m11: FloatArray, binv: FloatArray, m12: FloatArray,
                  gs: FloatArray) -> tuple[FloatArray, float]:
    """Scalar ``Λ``: ``Ḡ_H`` per unit and ``∂/∂λ``."""
    t = m12 @ gs[0] if gs.shape[0] == 1 else np.einsum("ni,nij->nj", m12, gs)
    gh = -np.einsum("ni,ni->n", t, m12)
    kk = binv - binv * binv * lam * lam * gh
    return gh, float(2.0 * lam * (m11 @ kk + gh @ binv))


def _level_grad(lam: FloatArray, m11: FloatArray, binv: FloatArray, m12: FloatArray,
                gs: FloatArray) -> tuple[FloatArray, FloatArray]:
    """``Ḡ_H`` per unit and ``∂/∂Λ`` (full matrix) for a level of ``k > 1`` terms."""
    gh = -_quad(m12, gs)
    if lam.shape[0] == 2:
        return gh, _level_grad_2(lam, m11, binv, gh)
    bl = binv @ lam.T  # B⁻¹Λ'
    blt = bl.transpose(0, 2, 1)
    kk = binv - bl @ gh @ blt
    grad = 2.0 * ((m11 @ lam) @ kk + gh @ blt).sum(axis=0)
    return gh, grad


def _level_grad_2(lam: FloatArray, m11: FloatArray, binv: FloatArray,
                  gh: FloatArray) -> FloatArray:
    """:func:`_level_grad`'s ``∂/∂Λ`` for two terms, elementwise (all per-unit matrices
    symmetric but ``U = ΛB⁻¹``)."""
    a, b, d = lam[0, 0], lam[1, 0], lam[1, 1]
    i00, i01, i11 = binv[:, 0, 0], binv[:, 0, 1], binv[:, 1, 1]
    g00, g01, g11 = gh[:, 0, 0], gh[:, 0, 1], gh[:, 1, 1]
    m00, m01, m11_ = m11[:, 0, 0], m11[:, 0, 1], m11[:, 1, 1]
    # U = Λ B⁻¹
    u00, u01 = a * i00, a * i01
    u10, u11 = b * i00 + d * i01, b * i01 + d * i11
    # V = Ḡ_H U
    v00, v01 = g00 * u00 + g01 * u10, g00 * u01 + g01 * u11
    v10, v11 = g01 * u00 + g11 * u10, g01 * u01 + g11 * u11
    # K = B⁻¹ − U' V
    k00 = i00 - (u00 * v00 + u10 * v10)
    k01 = i01 - (u00 * v01 + u10 * v11)
    k11 = i11 - (u01 * v01 + u11 * v11)
    # W = M11 Λ
    w00, w01 = m00 * a + m01 * b, m01 * d
    w10, w11 = m01 * a + m11_ * b, m11_ * d
    out = np.empty((2, 2))
    out[0, 0] = (w00 * k00 + w01 * k01 + v00).sum()
    out[0, 1] = (w00 * k01 + w01 * k11 + v01).sum()
    out[1, 0] = (w10 * k00 + w11 * k01 + v10).sum()
    out[1, 1] = (w10 * k01 + w11 * k11 + v11).sum()
    return 2.0 * out


def _unit_adjoint(lam: FloatArray, H: FloatArray, binv: FloatArray, m12: FloatArray,
                  gs: FloatArray, gh: FloatArray) -> FloatArray:
    """The adjoint of each unit's ``M`` (before eliminating its own block)."""
    k = lam.shape[0]
    n, _, rk = m12.shape
    G = np.empty((n, k + rk, k + rk))
    if k == 1:
        l2 = lam[0, 0] ** 2
        b = binv[:, 0, 0]
        G[:, 0, 0] = l2 * (b - b * b * l2 * gh)
        t = m12[:, 0] @ gs[0] if gs.shape[0] == 1 else np.einsum("ni,nij->nj", m12[:, 0], gs)
        g12 = -H[:, 0, 0, None] * t
        G[:, 0, 1:] = g12
        G[:, 1:, 0] = g12
    else:
        bl = binv @ lam.T
        kk = binv - bl @ gh @ bl.transpose(0, 2, 1)
        G[:, :k, :k] = lam @ kk @ lam.T
        g12 = -(H @ m12) @ (gs[0] if gs.shape[0] == 1 else gs)
        G[:, :k, k:] = g12
        G[:, k:, :k] = g12.transpose(0, 2, 1)
    G[:, k:, k:] = gs
    return G


def deviance(struct: Structure, prep: Prepared, theta: FloatArray, reml: bool) -> float:
    """Profiled deviance (−2 log-likelihood, REML or ML) at ``θ``."""
    try:
        f = factorize(struct, prep, theta_to_lambdas(theta, struct.q, struct.diag))
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


def conditional_modes(struct: Structure, f: Factor) -> list[FloatArray]:
    """``b_l = H (M12_y − M12_X β − Σ_anc M12_anc b_anc)`` per level, outer -> inner."""
    p = struct.p
    bs: list[FloatArray] = []
    for level, (H, m12) in enumerate(zip(f.hs, f.m12s, strict=True)):
        # columns of m12: [Z_{level-1} | ... | Z_0 | X | y]
        rhs = m12[:, :, -1] - m12[:, :, -1 - p:-1] @ f.beta
        pos = 0
        for anc in range(level - 1, -1, -1):
            k = struct.q[anc]
            idx = _ancestor_index(struct, level, anc)
            rhs = rhs - np.einsum("nij,nj->ni", m12[:, :, pos:pos + k], bs[anc][idx])
            pos += k
        bs.append(np.einsum("nij,nj->ni", H, rhs))
    return bs


def _ancestor_index(struct: Structure, level: int, anc: int) -> IntArray:
    """Index of each level-``level`` unit's ancestor at level ``anc`` (< level)."""
    idx = struct.parent[level - 1]
    for lv in range(level - 1, anc, -1):
        idx = struct.parent[lv - 1][idx]
    return idx
