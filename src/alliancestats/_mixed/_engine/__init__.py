r"""Fast linear mixed models for nested grouping, by the profiled (RE)ML deviance.

The model
---------
Observations ``i = 1..n`` sit in units nested ``L`` levels deep (level 0 outermost, e.g.
therapist; level ``L-1`` innermost, e.g. patient within therapist). Unit ``g`` at level
``l`` carries a random effect ``b_g`` of length ``q_l`` entering row ``i`` through the
row ``Z_l[i]``:

.. math::

    y = X\beta + \sum_l Z_l b_{l,g_l(i)} + \varepsilon, \quad
    b_{l,g} \sim N(0, \sigma^2 \Lambda_l \Lambda_l^\top), \quad
    \varepsilon \sim N(0, \sigma^2 I),

with an unstructured covariance per level parametrised by its relative lower-triangular
Cholesky factor ``Λ_l`` (lme4's ``θ``: the lower triangle of each ``Λ_l`` column by column,
levels outer to inner; diagonal elements bounded below by 0).

Profiled deviance
-----------------
With spherical effects ``u = Λ⁻¹ b`` the conditional modes and ``β`` solve the penalised
least-squares problem ``min ||y − Xβ − ZΛu||² + ||u||²`` (Bates et al. 2015, eqs. 11–21).
Writing ``L_θ`` for the Cholesky factor of ``Λ'Z'ZΛ + I``, ``R_X`` for that of the Schur
complement of the fixed-effects block and ``r²`` for the penalised residual sum of squares,

.. math::

    -2\ell_{ML}(\theta) = \log|L_\theta|^2 + n\,(1 + \log(2\pi r^2 / n)),

    -2\ell_{REML}(\theta) = \log|L_\theta|^2 + \log|R_X|^2
        + (n-p)\,(1 + \log(2\pi r^2 / (n-p))),

with ``σ̂² = r²/n`` (ML) or ``r²/(n−p)`` (REML), ``β̂ = R_X^{-1}…`` and
``vcov(β̂) = σ̂² (R_X^\top R_X)^{-1}``, exactly the quantities lme4 reports.

Nested structure
----------------
For nested grouping ``Λ'Z'ZΛ + I`` is block-arrow shaped: an innermost unit's block couples
only to its ancestors. The engine stores, once per model, the cross products of
``[Z_{L-1} | … | Z_0 | X]`` for each innermost unit (and those with ``y`` once per response).
One deviance evaluation scales them by ``Λ``, eliminates the innermost units' blocks (a
batch of small Cholesky factorisations), sums the Schur complements into the parents (a
fixed-pattern sparse product for the innermost level, ``np.add.reduceat`` over units
sorted by ancestry above it), and repeats level by level up to the ``(p+1) × (p+1)``
system of ``[X | y]``, whose Cholesky factor gives ``R_X`` and ``r²``. Time and memory
are linear in the number of units; no ``n × n`` or ``n × Σq`` matrix is formed.

Gradient and optimisation
-------------------------
The gradient of the profiled deviance in ``θ`` is exact and costs about one more
evaluation: a reverse pass through the same elimination (``_core.gradient``). With the
final system's adjoint ``Ḡ_F = (N/r²)[ββ', −β; −β', 1] + [R_X'R_X]⁻¹`` (the last term
for REML; ``N = n`` or ``n − p``), each level's elimination per unit,
``S = M22 − M12' H M12`` with ``H = Λ B⁻¹ Λ'``, ``B = Λ'M11Λ + I``, and ``log|B|``, passes
``Ḡ_H = −M12 Ḡ M12'`` and ``K = B⁻¹ − B⁻¹Λ'Ḡ_HΛB⁻¹`` to
``∂/∂Λ = 2 Σ_units (M11 Λ K + Ḡ_H Λ B⁻¹)`` and hands its inner units the adjoint
``[ΛKΛ', −H M12 Ḡ; −Ḡ M12' H, Ḡ]``. It holds at the boundary too (``Λ`` singular), where
the deviance is even in a zero diagonal element, so its derivative there is 0. Residual
parameters ``ψ`` re-weight the per-unit cross products, so the same reverse pass,
continued into the innermost units (``_core.inner_adjoint``), gives their exact
derivatives too (``_residual.psi_gradient``).

``θ`` is optimised by bounded SLSQP with this gradient (from a warm start over
curvature-scaled coordinates), with restarts from boundary points so singular optima are
found as lme4 finds them; a restart runs first to a loose tolerance and is polished only
if it ends lower. :meth:`NestedLMM.from_codes` skips the label handling for callers that
already hold sorted integer codes (e.g. a power simulation).

References
----------
Bates, D., Mächler, M., Bolker, B. and Walker, S. (2015). Fitting linear mixed-effects
models using lme4. *Journal of Statistical Software* 67(1), 1–48.
doi:10.18637/jss.v067.i01.

Bates, D. et al. MixedModels.jl (profiled deviance with blocked Cholesky factors).

Pinheiro, J. C. and Bates, D. M. (2000). *Mixed-Effects Models in S and S-PLUS*. Springer.
"""

from __future__ import annotations

from ._core import diagonal_positions, theta_to_lambdas
from ._model import EngineFit, NestedLMM, fit_nested_lmm

__all__ = ["EngineFit", "NestedLMM", "diagonal_positions", "fit_nested_lmm",
           "theta_to_lambdas"]
