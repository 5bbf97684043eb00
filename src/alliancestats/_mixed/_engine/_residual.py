r"""Residual covariance structures per residual unit, applied by whitening.

With ``iid`` residuals the engine's marginal covariance is ``σ²(ZΛΛ'Z' + I)``. Here the
identity becomes a block-diagonal ``C(ψ)``, one block ``C_u(ψ)`` per residual unit ``u`` (a
patient: its sessions, or its sessions × raters), so ``R = σ² C(ψ)``:

- ``"ar1"``: ``C_u[i, j] = φ^{|t_i − t_j|}`` by the time value of the rows (a missed session
  is a lag of 2; nlme ``corAR1(form = ~ time | therapist/patient)``, which with gaps is
  nlme's ``corARMA(p = 1)`` on the integer time values, or ``corCAR1`` for ``φ ≥ 0``).
  ``|φ| < 1`` when all within-unit gaps are integers, else ``0 ≤ φ < 1`` (``φ^d`` is not
  real for negative ``φ`` and fractional ``d``);
- ``"rater"``: ``C_u[i, j] = δ_{r_i} δ_{r_j} ρ^{[r_i ≠ r_j]} [t_i = t_j]``: a residual SD
  ratio ``δ_r`` per rater (the first rater's is 1; nlme ``varIdent(form = ~ 1 | rater)``)
  and one correlation ``ρ`` of different raters' residuals at the same time (nlme
  ``corCompSymm(form = ~ 1 | therapist/patient/time)``); ``ρ > −1/(k − 1)`` for ``k``
  raters;
- ``"rater_ar1"``: ``δ_{r_i} δ_{r_j} ρ^{[r_i ≠ r_j]} φ^{|t_i − t_j|}``, the rater covariance
  ⊗ AR(1) over time (no nlme twin: nlme takes one correlation structure).

Whitening each unit's rows by the Cholesky factor ``L_u`` of ``C_u`` turns the model into
one with ``iid`` residuals for ``L_u⁻¹y``, ``L_u⁻¹X``, ``L_u⁻¹Z``, so the blocked profiled
deviance applies to the whitened per-unit cross products unchanged and
``−2ℓ = −2ℓ_whitened + Σ_u log|C_u|`` (ML and REML alike: ``X'V⁻¹X`` is invariant).
AR(1) is Markov in time, so its whitening is the closed form
``e_1 = ε_1``, ``e_j = (ε_j − φ^{d_j} ε_{j−1}) / sqrt(1 − φ^{2 d_j})`` (``d_j`` the gap to the
previous row) with ``log|C_u| = Σ_j log(1 − φ^{2 d_j})``: ``O(n)``; so is ``"rater"``
with two raters. In both, a row's two coefficients depend on its class only (its gap;
which raters rated its time), so the whitened cross products are weighted sums of
per-class sums of unwhitened ones, formed once per fit (:class:`_Basis`). The other
rater structures factor each unit's small block (a batch of Cholesky factorisations of
padded blocks).

The optimiser works on unconstrained ``ψ``: ``φ = tanh ψ`` (``|φ| < 1``) or
``φ = 1 / (1 + e^{−ψ})`` (``0 < φ < 1``), ``δ_r = e^{ψ_r}``,
``ρ = −1/(k−1) + k/(k−1) · 1 / (1 + e^{−ψ})`` (``tanh(ψ/2)`` for two raters).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import sparse

from ._core import FloatArray, IntArray

#: ``residual=`` choices of the engine; the first is the default.
RESIDUAL_KINDS = ("iid", "ar1", "rater", "rater_ar1")


@dataclass(frozen=True)
class ResidualLayout:
    """Rows of each residual unit in padded slots, and what ``C_u(ψ)`` needs of them.

    ``slots[u, j]`` is the row (input order) in slot ``j`` of unit ``u`` (``-1`` pads the
    unit to ``m`` slots; rows sorted by time, then rater); ``time`` and ``rater`` per slot
    (0 in padding); ``gap`` the time since the previous slot of the same unit (0 for the
    first slot and padding); ``engine_starts`` the reduceat offsets summing residual units
    into the engine's innermost units (None when they coincide).
    """

    kind: str
    slots: IntArray
    mask: np.ndarray[Any, np.dtype[np.bool_]]
    time: FloatArray
    rater: IntArray
    gap: FloatArray
    n_raters: int
    rater_labels: tuple[str, ...]
    integer_time: bool
    engine_starts: IntArray | None
    # "rater", more than two raters: C_u is block diagonal by time; blocks of <= k rows in
    # padded-slot indices
    block_slots: IntArray | None = None  # (k, B): flat slot of rater i, -1 if absent
    block_pattern: IntArray | None = None  # (B,): which raters are present, as a code
    block_masks: np.ndarray[Any, Any] | None = None  # (P, k) present raters per code
    block_count: FloatArray | None = None  # (P,): blocks per code

    @functools.cached_property
    def _patterns(self) -> tuple[IntArray, IntArray, FloatArray]:
        """The distinct unit configurations (only the kinds that are not
        :attr:`elementwise` use them)."""
        rel = np.where(self.mask, self.time - self.time[:, :1], -1.0)
        key = np.column_stack([rel, self.rater])
        _, rows, pattern, count = np.unique(key, axis=0, return_index=True,
                                            return_inverse=True, return_counts=True)
        return (np.asarray(pattern, dtype=np.intp).ravel(), np.asarray(rows, dtype=np.intp),
                np.asarray(count, dtype=float))

    @property
    def pattern(self) -> IntArray:
        """Per unit: its configuration (time pattern and raters) among the distinct ones."""
        return self._patterns[0]

    @property
    def pattern_rows(self) -> IntArray:
        """Per configuration: one unit having it."""
        return self._patterns[1]

    @property
    def pattern_count(self) -> FloatArray:
        """Per configuration: the number of units having it."""
        return self._patterns[2]

    @property
    def has_ar(self) -> bool:
        return self.kind in ("ar1", "rater_ar1")

    @property
    def has_rater(self) -> bool:
        return self.kind in ("rater", "rater_ar1")

    @property
    def n_psi(self) -> int:
        """Number of residual parameters."""
        return int(self.has_ar) + (self.n_raters if self.has_rater else 0)

    @property
    def psi_names(self) -> list[str]:
        names = ["phi"] if self.has_ar else []
        if self.has_rater:
            names += [f"sd_ratio[{r}]" for r in self.rater_labels[1:]] + ["rater_corr"]
        return names

    def psi_start(self) -> FloatArray:
        """``φ = 0`` (``0.2`` when restricted to ``φ ≥ 0``, as nlme's corCAR1), ``δ = 1``,
        ``ρ = 0``."""
        out = []
        if self.has_ar:
            out.append(0.0 if self.integer_time else float(np.log(0.2 / 0.8)))
        if self.has_rater:
            out += [0.0] * (self.n_raters - 1)
            out.append(float(np.log(1.0 / (self.n_raters - 1))))
        return np.array(out, dtype=float)

    def natural(self, psi: FloatArray) -> dict[str, float]:
        """``ψ`` on the reported scale: ``phi``, ``sd_ratio[rater]``, ``rater_corr``."""
        phi, ratios, rho = self.unpack(psi)
        out: dict[str, float] = {}
        if self.has_ar:
            out["phi"] = phi
        if self.has_rater:
            for label, ratio in zip(self.rater_labels[1:], ratios[1:], strict=True):
                out[f"sd_ratio[{label}]"] = float(ratio)
            out["rater_corr"] = rho
        return out

    def unpack(self, psi: FloatArray) -> tuple[float, FloatArray, float]:
        pos = 0
        phi = 0.0
        if self.has_ar:
            phi = (float(np.tanh(psi[0])) if self.integer_time
                   else float(1.0 / (1.0 + np.exp(-psi[0]))))
            pos = 1
        ratios = np.ones(max(self.n_raters, 1))
        rho = 0.0
        if self.has_rater:
            k = self.n_raters
            ratios[1:] = np.exp(psi[pos:pos + k - 1])
            low = -1.0 / (k - 1)
            rho = float(low + (1.0 - low) / (1.0 + np.exp(-psi[pos + k - 1])))
        return phi, ratios, rho

    def whiten(self, A: FloatArray, psi: FloatArray) -> tuple[FloatArray, float]:
        """``L_u⁻¹ A_u`` for every unit (``A`` of shape ``(U, m, c)``, zero in padding) and
        ``Σ_u log|C_u|``; ``inf`` log-determinant if some ``C_u`` is not positive definite.
        For the kinds that are not :attr:`elementwise`."""
        phi, ratios, rho = self.unpack(psi)
        if self.kind == "rater":
            return self._whiten_blocks(A, ratios, rho)
        C = self._correlation_parts(phi, ratios, rho)[0]
        try:
            L = np.linalg.cholesky(C)
        except np.linalg.LinAlgError:
            return A, np.inf
        logdet = 2.0 * float(np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
                             @ self.pattern_count)
        Linv = np.linalg.inv(L)
        return np.matmul(Linv[self.pattern], A), logdet

    @functools.cached_property
    def engine_of_unit(self) -> IntArray:
        """The engine innermost unit of each residual unit."""
        U = self.slots.shape[0]
        if self.engine_starts is None:
            return np.arange(U)
        sizes = np.diff(np.r_[self.engine_starts, U])
        return np.repeat(np.arange(sizes.size), sizes)

    @functools.cached_property
    def pattern_sum(self) -> Any:
        """Sparse (configurations × units) indicator: sums per-unit arrays by
        configuration."""
        U = self.pattern.size
        return sparse.csr_array((np.ones(U), (self.pattern, np.arange(U))),
                                shape=(self.pattern_rows.size, U))

    @property
    def elementwise(self) -> bool:
        """Whether the whitening is elementwise, ``e_j = s_j a_j − c_j a_{j−1}`` by slot
        (AR(1); ``"rater"`` with two raters), with ``(s_j, c_j)`` set by the slot's class."""
        return self.kind == "ar1" or (self.kind == "rater" and self.n_raters == 2)

    @functools.cached_property
    def slot_classes(self) -> tuple[IntArray, FloatArray, FloatArray]:
        """:attr:`elementwise` kinds: each slot's class (``-1`` in padding), the number of
        slots per class and, for AR(1), each class's gap (0: a unit's first slot).

        Two raters: 0 the first rater, 1 the second alone at its time, 2 the second
        with the first at the same time (the slot before).
        """
        cls = np.full(self.mask.shape, -1, dtype=np.intp)
        if self.kind == "ar1":
            gaps, code = np.unique(self.gap[self.mask], return_inverse=True)
            cls[self.mask] = np.asarray(code, dtype=np.intp).ravel()
        else:
            second = self.mask & (self.rater == 1)
            partner = np.zeros_like(second)
            partner[:, 1:] = (second[:, 1:] & (self.rater[:, :-1] == 0)
                              & self.mask[:, :-1] & (self.time[:, :-1] == self.time[:, 1:]))
            cls[self.mask] = (second.astype(np.intp) + partner)[self.mask]
            gaps = np.empty(0)
        count = np.bincount(cls[self.mask], minlength=gaps.size if gaps.size else 3)
        return cls, count.astype(float), gaps

    @functools.cached_property
    def lagged(self) -> np.ndarray[Any, np.dtype[np.bool_]]:
        """:attr:`elementwise` kinds: per slot class, whether its ``c`` may be nonzero (a
        later AR(1) slot; the second rater paired with the first)."""
        if self.kind == "ar1":
            return np.asarray(self.slot_classes[2] > 0.0)
        return np.array([False, False, True])

    def scales(self, psi: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray,
                                              FloatArray] | None:
        """:attr:`elementwise` kinds: ``s`` and ``c`` per slot class and their derivatives
        in ``ψ`` (shape ``(n_psi, classes)``); None if ``C`` is not positive definite.

        AR(1), ``α = φ^d`` for the gap ``d`` (0 at a unit's first slot):
        ``s = 1 / sqrt(1 − α²)``, ``c = α s``, so ``∂s = α α' s³`` and ``∂c = α' s³``.
        Two raters, at a time both rated (the first rater's ``δ_1`` is 1):
        ``e_1 = a_1``, ``e_2 = (a_2 / δ_2 − ρ a_1) / sqrt(1 − ρ²)``; a rater alone is
        scaled by ``1 / δ``.
        """
        phi, ratios, rho = self.unpack(psi)
        jac = natural_jacobian(self, psi)
        if self.kind == "ar1":
            gap = self.slot_classes[2]  # gap[0] = 0: the units' first slots
            alpha = _power(phi, gap)
            alpha[0] = 0.0
            v = 1.0 - alpha * alpha
            if np.any(v <= 0.0):
                return None
            s = 1.0 / np.sqrt(v)
            dc = (s * s * s * _power_derivative(self, phi, gap))[None]
            return s, alpha * s, alpha * dc, dc
        w = 1.0 - rho * rho
        if w <= 0.0:
            return None
        root = float(np.sqrt(w))
        s = np.array([1.0, 1.0 / ratios[1], 1.0 / (ratios[1] * root)])
        c = np.array([0.0, 0.0, rho / root])
        # ψ_1 = log δ_2; ψ_2 maps to ρ
        ds = np.array([[0.0, -s[1], -s[2]], [0.0, 0.0, s[2] * rho / w * jac[1]]])
        dc = np.array([[0.0, 0.0, 0.0], [0.0, 0.0, jac[1] / (w * root)]])
        return s, c, ds, dc

    def _whiten_blocks(self, A: FloatArray, ratios: FloatArray,
                       rho: float) -> tuple[FloatArray, float]:
        """``"rater"``: whiten each time's block of raters (one small factorisation per
        pattern of present raters)."""
        assert self.block_slots is not None
        assert self.block_masks is not None
        assert self.block_pattern is not None
        assert self.block_count is not None
        k = self.n_raters
        S = np.where(np.eye(k, dtype=bool), 1.0, rho) * np.outer(ratios, ratios)
        masks = self.block_masks
        both = masks[:, :, None] & masks[:, None, :]
        C = np.where(both, S[None], 0.0)
        idx = np.arange(k)
        C[:, idx, idx] = np.where(masks, C[:, idx, idx], 1.0)
        try:
            L = np.linalg.cholesky(C)
        except np.linalg.LinAlgError:
            return A, np.inf
        logdet = 2.0 * float(np.log(np.diagonal(L, axis1=1, axis2=2)).sum(axis=1)
                             @ self.block_count)
        Linv = np.linalg.inv(L)
        U, m, c = A.shape
        flat = np.concatenate([A.reshape(U * m, c), np.zeros((1, c))])
        G = flat[self.block_slots]  # (k, B, c); absent raters read the zero row
        W = np.empty_like(G)
        for i in range(k):
            W[i] = Linv[self.block_pattern, i, 0][:, None] * G[0]
            for j in range(1, i + 1):
                W[i] += Linv[self.block_pattern, i, j][:, None] * G[j]
        out = np.zeros_like(flat)
        out[self.block_slots] = W  # absent raters write into the dropped last row
        return out[:-1].reshape(U, m, c), logdet

    def correlation_derivatives(self, psi: FloatArray) -> tuple[FloatArray, FloatArray]:
        """``C(ψ)`` per distinct unit configuration and its derivatives in each ``ψ_j``
        (shape ``(n_psi, configurations, m, m)``, zero in the padding)."""
        phi, ratios, rho = self.unpack(psi)
        dt, same, both, _, hits = self._geometry
        C, serial, scale = self._correlation_parts(phi, ratios, rho)
        jac = natural_jacobian(self, psi)
        out = []
        if self.has_ar:
            d_serial = _power_derivative(self, phi, dt)
            out.append(d_serial * np.where(same, 1.0, rho) * scale)
        if self.has_rater:
            Cm = np.where(both, C, 0.0)
            out.extend(Cm * hit for hit in hits)
            out.append(serial * (~same) * scale * jac[-1])
        dC = np.stack([np.where(both, d, 0.0) for d in out])
        return C, dC

    @functools.cached_property
    def _geometry(self) -> tuple[FloatArray, Any, Any, FloatArray, list[FloatArray]]:
        """Per distinct unit configuration (ψ-independent): time distances, same rater,
        both slots present, identity in the padding, and per rater after the first
        whether one (1) or both (2) slots are its."""
        rows = self.pattern_rows
        t, r, mask = self.time[rows], self.rater[rows], self.mask[rows]
        dt = np.abs(t[:, :, None] - t[:, None, :])
        same = r[:, :, None] == r[:, None, :]
        both = mask[:, :, None] & mask[:, None, :]
        m = mask.shape[1]
        pad = np.zeros((rows.size, m, m))
        idx = np.arange(m)
        pad[:, idx, idx] = ~mask
        hits = [(r == level)[:, :, None] * 1.0 + (r == level)[:, None, :]
                for level in range(1, self.n_raters)] if self.has_rater else []
        return dt, same, both, pad, hits

    def _correlation_parts(self, phi: float, ratios: FloatArray,
                           rho: float) -> tuple[FloatArray, FloatArray, FloatArray]:
        """``C(ψ)`` per distinct unit configuration (identity in the padding), its serial
        factor and its SD-ratio factor."""
        dt, same, both, pad, _ = self._geometry
        serial = _power(phi, dt) if self.has_ar else (dt == 0.0).astype(float)
        s = ratios[self.rater[self.pattern_rows]]
        scale = s[:, :, None] * s[:, None, :]
        C = np.where(both, serial * np.where(same, 1.0, rho) * scale, 0.0) + pad
        return C, serial, scale



def psi_gradient(layout: ResidualLayout, A: FloatArray, psi: FloatArray,
                 adjoint: FloatArray, basis: _Basis | None = None) -> FloatArray:
    r"""Exact derivative in ``ψ`` of the objective plus ``Σ_u log|C_u|``.

    ``A`` is the padded ``[Z | X | y]`` (as :func:`unit_cross` takes it) and ``adjoint``
    the objective's derivative in the whitened cross products ``M_e`` of each engine
    innermost unit ``e`` (:func:`~alliancestats._mixed._engine._core.inner_adjoint`).
    With ``W_u`` the whitening of residual unit ``u`` (``W_u'W_u = C_u⁻¹``) and
    ``A_w = W_u A_u``, ``∂M_u = −A_w' P A_w`` for ``P = W_u ∂C_u W_u'``, and
    ``∂ log|C_u| = tr P``, so

    .. math::

        ∂/∂ψ_j = Σ_u \operatorname{tr} P_{uj} − ⟨P_{uj}, A_w Ḡ_e A_w'⟩
               = Σ_u ⟨∂C_{uj}, C_u⁻¹ − C_u⁻¹ A_u Ḡ_e A_u' C_u⁻¹⟩,

    summed per distinct unit configuration (``C`` depends on the configuration only),
    so the unwhitened ``A_u Ḡ_e A_u'`` suffices. The :attr:`~ResidualLayout.elementwise`
    kinds use their closed form (:func:`_elementwise_gradient`) on ``A``'s
    :class:`_Basis` (:func:`response_basis`; formed here when not given). No extra
    deviance.
    """
    if layout.elementwise:
        return _elementwise_gradient(layout, basis or _Basis.build(layout, A), psi, adjoint)
    C, dC = layout.correlation_derivatives(psi)
    try:
        Linv = np.linalg.inv(np.linalg.cholesky(C))
    except np.linalg.LinAlgError:
        return np.full(psi.size, np.nan)
    Cinv = np.matmul(Linv.transpose(0, 2, 1), Linv)
    G = adjoint[layout.engine_of_unit] if layout.engine_starts is not None else adjoint
    Q = np.matmul(np.matmul(A, G), A.transpose(0, 2, 1))  # (U, m, m)
    m = A.shape[1]
    Qp = np.asarray(layout.pattern_sum @ Q.reshape(Q.shape[0], m * m)).reshape(-1, m, m)
    T = layout.pattern_count[:, None, None] * Cinv - np.matmul(np.matmul(Cinv, Qp), Cinv)
    return np.asarray(np.einsum("jpab,pab->j", dC, T), dtype=float)


def _elementwise_gradient(layout: ResidualLayout, basis: _Basis, psi: FloatArray,
                          adjoint: FloatArray) -> FloatArray:
    r""":func:`psi_gradient` of the :attr:`~ResidualLayout.elementwise` kinds: with
    ``M_e = Σ_κ s_κ² S0_κe − s_κ c_κ S1_κe + c_κ² S2_κe`` (:class:`_Basis`), the
    derivative is ``Σ_κ 2 s ∂s g0_κ − (∂s c + s ∂c) g1_κ + 2 c ∂c g2_κ`` with
    ``g_κ = Σ_e ⟨Ḡ_e, S_κe⟩``, plus ``∂ log|C| = −2 Σ_κ n_κ ∂s_κ / s_κ``."""
    found = layout.scales(psi)
    if found is None:
        return np.full(psi.size, np.nan)
    s, c, ds, dc = found
    g = basis.project(adjoint)
    d_weight = 2.0 * s * ds * g[:, 0] - (ds * c + s * dc) * g[:, 1] + 2.0 * c * dc * g[:, 2]
    count = layout.slot_classes[1]
    return np.asarray(d_weight.sum(axis=1) - 2.0 * (ds / s) @ count, dtype=float)


@dataclass(frozen=True)
class _Basis:
    r"""ψ-independent pieces of the whitened cross products of an
    :attr:`~ResidualLayout.elementwise` kind.

    With ``e_j = s_j a_j − c_j a_{j−1}``, a unit's ``Σ_j e_j e_j'`` is
    ``Σ_j s_j² a_j a_j' − s_j c_j (a_j a_{j−1}' + a_{j−1} a_j') + c_j² a_{j−1} a_{j−1}'``
    and ``(s_j, c_j)`` depend on the slot's class only: per engine innermost unit ``e``
    and class ``κ`` the three sums ``S0, S1, S2`` are formed once, and every ψ costs one
    weighted sum of them instead of a whitening and a product per unit. ``rows[e]``
    holds unit ``e``'s sums flattened (zero padded to the longest unit; ``S1, S2`` only
    for classes with ``c ≠ 0``), ``term[e]`` the weight of each (``3κ + t``; ``3K`` in
    the padding, weight 0).
    """

    rows: FloatArray  # (E, R, c²)
    term: IntArray  # (E, R)
    n_classes: int
    width: int  # c

    @classmethod
    def build(cls, layout: ResidualLayout, A: FloatArray) -> _Basis:
        """The sums ``S0, S1, S2`` of the padded ``A`` (shape ``(U, m, c)``)."""
        klass, count, _ = layout.slot_classes
        K, c = count.size, A.shape[2]
        prev = np.zeros_like(A)
        prev[:, 1:] = A[:, :-1]
        real = klass >= 0
        a, b = A[real], prev[real]
        # group the slots by (engine unit, class): a units x slots indicator
        key = layout.engine_of_unit[np.nonzero(real)[0]] * K + klass[real]
        order = np.argsort(key, kind="stable")
        starts = np.flatnonzero(np.r_[True, np.diff(key[order]) != 0])
        group = key[order][starts]
        n = key.size
        by_group = sparse.csr_array((np.ones(n), order, np.r_[starts, n]),
                                    shape=(group.size, n))
        outer = np.empty((n, c, c))

        def summed(u: FloatArray, v: FloatArray) -> FloatArray:
            np.einsum("ni,nj->nij", u, v, out=outer)
            return np.asarray(by_group @ outer.reshape(n, c * c))

        s1 = summed(a, b).reshape(-1, c, c)
        s1 += s1.transpose(0, 2, 1).copy()  # a_j a_{j−1}' + a_{j−1} a_j'
        # S1, S2 only where c may be nonzero
        lag = layout.lagged[group % K]
        sums = [summed(a, a), s1.reshape(-1, c * c)[lag], summed(b, b)[lag]]
        groups = [group * 3, group[lag] * 3 + 1, group[lag] * 3 + 2]
        # each engine unit's sums in the slots 0, 1, .. of its row
        unit, term = np.divmod(np.concatenate(groups), 3 * K)
        order = np.argsort(unit, kind="stable")
        pos = np.empty_like(order)
        pos[order] = np.arange(unit.size) - np.searchsorted(unit[order], unit[order])
        rows = np.zeros((int(layout.engine_of_unit[-1]) + 1, int(pos.max()) + 1, c * c))
        terms = np.full(rows.shape[:2], 3 * K)
        terms[unit, pos] = term
        start = 0
        for part in sums:
            here = slice(start, start + part.shape[0])
            rows[unit[here], pos[here]] = part
            start = here.stop
        return cls(rows, terms, K, c)

    def combine(self, s: FloatArray, c: FloatArray) -> FloatArray:
        """Per engine unit ``Σ_κ s_κ² S0 − s_κ c_κ S1 + c_κ² S2``, shape ``(E, c, c)``."""
        weight = np.r_[np.column_stack([s * s, -s * c, c * c]).ravel(), 0.0]
        out = np.matmul(weight[self.term][:, None, :], self.rows)
        return out.reshape(-1, self.width, self.width)

    def project(self, adjoint: FloatArray) -> FloatArray:
        """``Σ_e ⟨Ḡ_e, S_κe⟩`` per class and sum (shape ``(classes, 3)``)."""
        flat = adjoint.reshape(adjoint.shape[0], -1, 1)
        inner = np.matmul(self.rows, flat)
        sums = np.bincount(self.term.ravel(), inner.ravel(),
                           minlength=3 * self.n_classes + 1)
        return np.asarray(sums[:-1], dtype=float).reshape(-1, 3)


def _power(phi: float, d: FloatArray) -> FloatArray:
    """``φ^d`` (``0^0 = 1``), for a negative ``φ`` only at integer ``d``."""
    if phi >= 0.0:
        return np.power(phi, d)
    return np.power(-phi, d) * np.where(np.mod(d, 2.0) == 1.0, -1.0, 1.0)


def _power_derivative(layout: ResidualLayout, phi: float, d: FloatArray) -> FloatArray:
    """``∂φ^d / ∂ψ`` of the AR(1) parameter's ``ψ`` (0 at ``d = 0``).

    Integer times (``φ = tanh ψ``): ``d φ^{d−1} (1 − φ²)``. Fractional times
    (``φ = 1 / (1 + e^{−ψ})``): ``d φ^d (1 − φ)``, written so that it stays finite as
    ``φ → 0`` at a gap below 1 (``φ^{d−1}`` alone would be infinite there).
    """
    if layout.integer_time:
        later = d > 0.0
        return np.where(later, d * _power(phi, np.where(later, d - 1.0, 0.0)), 0.0) \
            * (1.0 - phi * phi)
    return np.asarray(d * np.power(phi, d) * (1.0 - phi), dtype=float)


def build_layout(kind: str, n: int, engine_units: IntArray, units: IntArray | None,
                 time: Any, rater: Any) -> ResidualLayout:
    """The padded layout of the residual units.

    Parameters
    ----------
    kind : one of RESIDUAL_KINDS except "iid"
    n : number of rows
    engine_units : the engine's innermost unit of each row (codes 0 ..)
    units : residual unit of each row (nested in ``engine_units``), or None for the
        engine's innermost units
    time, rater : per row; ``time`` numeric (needed by every kind), ``rater`` labels
        (needed by "rater" and "rater_ar1")
    """
    if kind not in RESIDUAL_KINDS[1:]:
        raise ValueError(f"`residual` must be one of {RESIDUAL_KINDS}; got {kind!r}.")
    if time is None:
        raise ValueError(f"residual={kind!r} needs `time` (the occasion of each row, e.g. "
                         "session): pass the time values.")
    t = np.asarray(time, dtype=float).ravel()
    if t.shape != (n,) or not np.all(np.isfinite(t)):
        raise ValueError(f"`time` must be {n} finite numbers (one per row); got shape "
                         f"{t.shape} or missing values.")
    has_rater = kind in ("rater", "rater_ar1")
    if has_rater:
        if rater is None:
            raise ValueError(f"residual={kind!r} needs `rater` (the rater of each row of "
                             "rater-stacked data).")
        r_codes, r_labels = _rater_codes(rater, n)
        if len(r_labels) < 2:
            raise ValueError(f"residual={kind!r} needs at least two raters; got "
                             f"{len(r_labels)}. Use residual='ar1' or 'iid'.")
    else:
        r_codes, r_labels = np.zeros(n, dtype=np.intp), ("",)
    eng = np.asarray(engine_units, dtype=np.intp)
    res_units = eng if units is None else np.asarray(units, dtype=np.intp)
    order = np.lexsort((r_codes, t, res_units, eng))
    su, st, sr = res_units[order], t[order], r_codes[order]
    new_unit = np.r_[True, (su[1:] != su[:-1]) | (eng[order][1:] != eng[order][:-1])]
    unit_id = np.cumsum(new_unit) - 1
    if units is not None:
        # a residual unit must lie inside one engine unit
        first_eng = eng[order][new_unit]
        key = su[new_unit]
        if np.unique(key).size != key.size:
            raise ValueError("the residual units are not nested in the innermost grouping "
                             "level; pass residual units within its units.")
        offsets = np.flatnonzero(np.r_[True, first_eng[1:] != first_eng[:-1]])
        engine_starts: IntArray | None = None if offsets.size == key.size else offsets
    else:
        engine_starts = None
    same_unit = ~new_unit
    dup = same_unit & np.r_[False, st[1:] == st[:-1]] & np.r_[False, sr[1:] == sr[:-1]]
    if np.any(dup):
        what = "(unit, time, rater)" if has_rater else "(unit, time)"
        raise ValueError(f"`time` has {int(dup.sum())} duplicated {what} row(s) within a "
                         "residual unit; each unit needs one row per time"
                         f"{' and rater' if has_rater else ''}.")
    starts = np.flatnonzero(new_unit)
    sizes = np.diff(np.r_[starts, n])
    U, m = starts.size, int(sizes.max())
    pos = np.arange(n) - starts[unit_id]
    slots = np.full((U, m), -1, dtype=np.intp)
    slots[unit_id, pos] = order
    mask = slots >= 0
    time_pad = np.zeros((U, m))
    time_pad[unit_id, pos] = st
    rater_pad = np.zeros((U, m), dtype=np.intp)
    rater_pad[unit_id, pos] = sr
    gap = np.zeros((U, m))
    gap[:, 1:] = np.where(mask[:, 1:], time_pad[:, 1:] - time_pad[:, :-1], 0.0)
    d = np.abs(np.diff(np.where(mask, time_pad, np.nan), axis=1))
    d = d[np.isfinite(d)]
    integer_time = bool(np.all(d == np.round(d)))
    blocks = _time_blocks(unit_id * m + pos, unit_id, st, sr, len(r_labels)) \
        if kind == "rater" and len(r_labels) > 2 else {}
    return ResidualLayout(kind, slots, mask, time_pad, rater_pad, gap, len(r_labels),
                          r_labels, integer_time, engine_starts, **blocks)


def _time_blocks(flat_slot: IntArray, unit_id: IntArray, t: FloatArray, r: IntArray,
                 k: int) -> dict[str, Any]:
    """The (unit, time) blocks of sorted rows: each rater's flat padded slot (or -1) and
    the pattern of present raters."""
    new_block = np.r_[True, (unit_id[1:] != unit_id[:-1]) | (t[1:] != t[:-1])]
    block_id = np.cumsum(new_block) - 1
    n_blocks = int(block_id[-1]) + 1
    block_slots = np.full((n_blocks, k), -1, dtype=np.intp)
    block_slots[block_id, r] = flat_slot
    present = block_slots >= 0
    masks, code, count = np.unique(present, axis=0, return_inverse=True, return_counts=True)
    return {"block_slots": np.ascontiguousarray(block_slots.T),
            "block_pattern": np.asarray(code, np.intp).ravel(),
            "block_masks": masks, "block_count": np.asarray(count, dtype=float)}


def _rater_codes(rater: Any, n: int) -> tuple[IntArray, tuple[str, ...]]:
    """Codes by the order of a categorical's categories, else of the sorted labels."""
    import pandas as pd

    values = rater if isinstance(rater, pd.Series) else pd.Series(np.asarray(rater))
    if len(values) != n:
        raise ValueError(f"`rater` has {len(values)} values for {n} rows.")
    if values.isna().any():
        raise ValueError("`rater` has missing labels; drop those rows first.")
    if isinstance(values.dtype, pd.CategoricalDtype):
        cat = values.cat.remove_unused_categories()
        return (np.asarray(cat.cat.codes, dtype=np.intp),
                tuple(str(c) for c in cat.cat.categories))
    codes, uniq = pd.factorize(values, sort=True)
    return np.asarray(codes, dtype=np.intp), tuple(str(u) for u in uniq)


def padded(layout: ResidualLayout, A: FloatArray) -> FloatArray:
    """Rows of ``A`` (input order, shape ``(n, c)``) in the layout's slots, zero padded."""
    out = np.zeros((*layout.slots.shape, A.shape[1]))
    out[layout.mask] = A[layout.slots[layout.mask]]
    return out


def response_basis(layout: ResidualLayout, A: FloatArray) -> _Basis | None:
    """What :func:`unit_cross` and :func:`psi_gradient` form from the padded ``A`` once
    per response (the :attr:`~ResidualLayout.elementwise` kinds' :class:`_Basis`; None for
    the others). ``A`` must not change while it is in use."""
    return _Basis.build(layout, A) if layout.elementwise else None


def unit_cross(layout: ResidualLayout, A: FloatArray, psi: FloatArray,
               basis: _Basis | None = None) -> tuple[FloatArray, float]:
    """Whitened cross products per engine innermost unit and ``Σ log|C_u|``: for the
    :attr:`~ResidualLayout.elementwise` kinds a weighted sum of the response's
    :class:`_Basis` (:func:`response_basis`; formed here when not given), else by
    whitening every unit."""
    if layout.elementwise:
        basis = basis or _Basis.build(layout, A)
        found = layout.scales(psi)
        if found is None:
            return np.empty(0), np.inf
        s, c = found[0], found[1]
        return basis.combine(s, c), -2.0 * float(np.log(s) @ layout.slot_classes[1])
    Aw, logdet = layout.whiten(A, psi)
    if not np.isfinite(logdet):
        return np.empty(0), np.inf
    cross = np.matmul(Aw.transpose(0, 2, 1), Aw)
    if layout.engine_starts is not None:
        cross = np.add.reduceat(cross, layout.engine_starts, axis=0)
    return cross, logdet


def natural_jacobian(layout: ResidualLayout, psi: FloatArray) -> FloatArray:
    """Derivatives of the reported parameters (``natural`` order) in ``ψ`` (diagonal:
    each reported parameter is a function of its own ``ψ``)."""
    out = np.empty(psi.size)
    pos = 0
    if layout.has_ar:
        if layout.integer_time:
            out[0] = 1.0 - np.tanh(psi[0]) ** 2
        else:
            e = 1.0 / (1.0 + np.exp(-psi[0]))
            out[0] = e * (1.0 - e)
        pos = 1
    if layout.has_rater:
        k = layout.n_raters
        out[pos:pos + k - 1] = np.exp(psi[pos:pos + k - 1])
        e = 1.0 / (1.0 + np.exp(-psi[pos + k - 1]))
        out[pos + k - 1] = (1.0 + 1.0 / (k - 1)) * e * (1.0 - e)
    return out


def residual_table(layout: ResidualLayout, psi: FloatArray, cov_psi: FloatArray,
                   crit: float) -> dict[str, FloatArray]:
    """Estimates, delta-method SEs and intervals of the reported residual parameters.

    Intervals are Wald intervals on the unconstrained scale ``ψ ± crit · se(ψ)`` mapped
    back (so they respect ``|φ| < 1``, ``δ > 0``, ``ρ`` in range), as nlme's
    ``intervals()``; ``crit`` is the normal quantile.
    """
    se_psi = np.sqrt(np.clip(np.diag(cov_psi), 0.0, None)) if cov_psi.size else \
        np.empty(0)
    bad = ~np.isfinite(se_psi)
    est = np.array(list(layout.natural(psi).values()))
    low = np.array(list(layout.natural(psi - crit * se_psi).values()))
    high = np.array(list(layout.natural(psi + crit * se_psi).values()))
    se = natural_jacobian(layout, psi) * se_psi
    for arr in (low, high, se):
        arr[bad] = np.nan
    return {"estimate": est, "std_error": se, "conf_low": np.minimum(low, high),
            "conf_high": np.maximum(low, high)}
