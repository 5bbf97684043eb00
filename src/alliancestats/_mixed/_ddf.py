r"""Small-sample inference for the fixed effects: Satterthwaite and Kenward–Roger df.

Satterthwaite (as lmerTest 3.1, Kuznetsova et al. 2017)
------------------------------------------------------
The variance parameters are ``φ = (θ, σ)``: lme4's relative Cholesky factors and the
residual standard deviation. The (RE)ML deviance as a function of ``φ`` (not profiled over
``σ``; lmerTest's ``devfun_vp``) is

.. math::

    d(\theta, \sigma) = \log|L_\theta|^2 \,[+ \log|R_X|^2]
        + r^2(\theta)/\sigma^2 + k \log(2\pi\sigma^2), \qquad k = n \;[n - p],

(brackets: REML), with ``r²(θ)`` the penalised residual sum of squares at ``β̂(θ)``. Its
``θ``-only part is read off the profiled criterion, ``a(θ) = d_p(θ) − k(1 + log(2π r²/k))``,
so every quantity comes from :meth:`NestedLMM.evaluate` at ``θ`` (and residual structures
added to the engine are covered without change). The asymptotic covariance of ``φ̂`` is
``A = 2 H⁻¹``, ``H`` the Hessian of ``d`` at the estimate (a Moore–Penrose inverse over
eigenvalues > 1e-8, as lmerTest, which warns about the others); ``C(φ) = σ² (X'V⁻¹X)⁻¹``
with ``V`` relative (lme4's ``σ² R_X⁻¹R_X⁻ᵀ``). For a contrast ``l``

.. math::

    \nu = \frac{2\,(l^\top C l)^2}{g^\top A g}, \qquad
    g_j = l^\top \frac{\partial C}{\partial\varphi_j} l,

and for a q-row ``L`` the F test of Fai & Cornelius (1996) as lmerTest's ``contestMD``.
The ``σ`` derivatives are analytic. In ``θ`` (random-effect and residual parameters) the
engine's exact reverse-mode gradient with the weight ``w`` on ``r²``
(:func:`~alliancestats._mixed._engine._core.gradient`'s ``r2_weight``) is
``∇a + w ∇r²``: ``w = 1/σ̂²`` gives the gradient of the ``θ`` part of ``d`` at fixed
``σ``, whose central differences at ``θ ± h e_j`` (``h = 3·10⁻⁵ max(|θ_j|, 0.1)``) are
the ``θ`` block of ``H``; two weights at the estimate give ``∇r²`` (the ``θσ`` block);
the same factorisations give the central differences of ``R_X⁻¹R_X⁻ᵀ``. That is
``1 + 2 n_θ`` factorisations and ``2 + 2 n_θ`` reverse passes per fit (cached), instead
of the ``1 + 2 n_θ (n_θ + 1)`` evaluations of second differences of ``d`` — whose
rounding error, ``∝ 1/h²``, is also much larger where ``H`` is ill-conditioned. Where a
step leaves the parameter space the evaluations-only path (central differences with one
Richardson extrapolation, steps ``h = 10⁻³ max(|θ_j|, 0.1)`` and ``h/2``) is used.

Kenward–Roger (as pbkrtest 0.5, Halekoh & Højsgaard 2014)
--------------------------------------------------------
The variance parameters are the covariance elements of every level's random-effect
covariance (lower triangles column-major, diagonals of independent levels) and ``σ²``;
``V = Σ_r γ_r G_r`` is linear in them. With ``Φ = vcov(β̂)``,
``P_r = −X'V⁻¹G_rV⁻¹X``, ``Q_rs = X'V⁻¹G_rV⁻¹G_sV⁻¹X``, the REML expected information
``I_rs = tr(V⁻¹G_rV⁻¹G_s) − 2 tr(ΦQ_rs) + tr(ΦP_rΦP_s)`` and ``W = 2 I⁻¹``, the adjusted
covariance is ``Φ_A = Φ + 2 Φ [Σ_rs W_rs (Q_rs − P_rΦP_s)] Φ`` (pbkrtest's ``vcovAdj``,
no second-derivative term) and the df of ``L`` follow the moment match of ``Lb_ddf``. ``V``
is block-diagonal by top-level unit (e.g. therapist), so everything is summed over those
blocks with dense per-block matrices: memory ``O(m · n_max²)`` per block (``m`` variance
parameters, ``n_max`` rows of the largest block) and time ``O(G · m² · n_max³)`` — a few
milliseconds at PRN size (40 therapists, ~40 rows each), practical up to blocks of a few
hundred rows; no ``n × n`` matrix is formed.

References
----------
Kuznetsova, A., Brockhoff, P. B. and Christensen, R. H. B. (2017). lmerTest package: tests
in linear mixed effects models. *Journal of Statistical Software* 82(13).

Halekoh, U. and Højsgaard, S. (2014). A Kenward-Roger approximation and parametric
bootstrap methods for tests in linear mixed models – the R package pbkrtest. *Journal of
Statistical Software* 59(9).

Kenward, M. G. and Roger, J. H. (1997). Small sample inference for fixed effects from
restricted maximum likelihood. *Biometrics* 53(3), 983–997.

Fai, A. H.-T. and Cornelius, P. L. (1996). Approximate F-tests of multiple degree of
freedom hypotheses in generalized least squares analyses of unbalanced split-plot
experiments. *Journal of Statistical Computation and Simulation* 54(4), 363–378.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ._engine import NestedLMM, _core

FloatArray = np.ndarray[Any, np.dtype[np.float64]]

__all__ = ["DDF_CHOICES", "DdfSource", "FTest", "KenwardRoger", "Satterthwaite",
           "kenward_roger", "satterthwaite", "satterthwaite_df"]

#: ``ddf=`` choices of every mixed-model fit; the first is the default.
DDF_CHOICES = ("satterthwaite", "kenward-roger", "z")

#: lmerTest's tolerance on the eigenvalues of the deviance Hessian (``as_lmerModLT``).
EIGEN_TOL = 1e-8
_REL_STEP = 1e-3  # θ step: _REL_STEP * max(|θ_j|, _STEP_FLOOR), then halved (Richardson)
_STEP_FLOOR = 0.1
_GRAD_STEP = 3e-5  # θ step of the central differences of the exact gradient


@dataclass(frozen=True)
class FTest:
    """An F test of ``L β = 0``: statistic, numerator and denominator df, p-value."""

    statistic: float
    df_num: float
    df_denom: float
    p_value: float


def _rows(L: Any, p: int) -> FloatArray:
    arr = np.atleast_2d(np.asarray(L, dtype=float))
    if arr.shape[1] != p:
        raise ValueError(f"`L` must have {p} columns (one per fixed effect); got "
                         f"{arr.shape[1]}.")
    return arr


def _f_p_value(f: float, q: float, ddf: float) -> float:
    from scipy import stats

    if not math.isfinite(ddf):
        return float(stats.chi2.sf(f * q, q))
    return float(stats.f.sf(f, q, ddf))


# -- Satterthwaite ---------------------------------------------------------------------
@dataclass(frozen=True)
class Satterthwaite:
    """The per-fit pieces of Satterthwaite's df (lmerTest's ``vcov_varpar``, ``Jac_list``).

    Attributes
    ----------
    cov : ndarray (p, p)
        ``C = vcov(β̂)`` at the estimate.
    vcov_varpar : ndarray (k, k)
        ``2 H⁻¹`` (Moore–Penrose over eigenvalues > 1e-8), ``k = n_θ + 1``.
    jacobian : ndarray (k, p, p)
        ``∂C/∂φ_j`` for ``φ = (θ, σ)``.
    hessian : ndarray (k, k)
        Hessian of the deviance in ``φ``.
    messages : tuple of str
        lmerTest's warnings about negative or near-zero eigenvalues of the Hessian.
    """

    cov: FloatArray
    vcov_varpar: FloatArray
    jacobian: FloatArray
    hessian: FloatArray
    messages: tuple[str, ...] = ()

    def df(self, L: Any) -> FloatArray:
        """Satterthwaite df of each row ``l`` of ``L`` (lmerTest ``contest1D``):
        ``2 (l'Cl)² / (g'Ag)``."""
        rows = _rows(L, self.cov.shape[0])
        var = np.einsum("ij,jk,ik->i", rows, self.cov, rows)
        grad = np.einsum("ij,mjk,ik->im", rows, self.jacobian, rows)
        denom = np.einsum("im,mn,in->i", grad, self.vcov_varpar, grad)
        with np.errstate(divide="ignore", invalid="ignore"):
            out = np.where(var > 0, 2.0 * var ** 2 / denom, np.nan)
        return np.asarray(out, dtype=float)

    def f_test(self, L: Any, beta: Any) -> FTest:
        """F test of ``L β = 0`` with the Fai–Cornelius denominator df (lmerTest
        ``contestMD``; a single row is ``t²`` with :meth:`df`)."""
        rows = _rows(L, self.cov.shape[0])
        b = np.asarray(beta, dtype=float)
        VL = rows @ self.cov @ rows.T
        d, P = np.linalg.eigh(VL)
        d, P = d[::-1], P[:, ::-1]
        pos = d > max(np.sqrt(np.finfo(float).eps) * d[0], 0.0)
        q = int(pos.sum())
        if q == 0:
            return FTest(math.nan, 0.0, math.nan, math.nan)
        PtL = P[:, :q].T @ rows
        t2 = (PtL @ b) ** 2 / d[:q]
        fval = float(t2.sum() / q)
        nu = self.df(PtL)
        ddf = _fai_cornelius(nu)
        return FTest(fval, float(q), ddf, _f_p_value(fval, q, ddf))


def _fai_cornelius(nu: FloatArray, tol: float = 1e-8) -> float:
    """Denominator df of the F statistic from the per-direction df (lmerTest
    ``get_Fstat_ddf``)."""
    if nu.size == 1:
        return float(nu[0])
    if np.all(np.abs(np.diff(nu)) < tol):
        return float(nu.mean())
    if np.any(nu <= 2):
        return 2.0
    e = float(np.sum(nu / (nu - 2.0)))
    return 2.0 * e / (e - nu.size)


def _theta_pieces(model: NestedLMM, y: FloatArray, theta: FloatArray,
                  reml: bool) -> FloatArray:
    """``[a(θ), r²(θ), vec(R_X⁻¹R_X⁻ᵀ)]`` at ``θ`` (see the module notes)."""
    fit = model.evaluate(y, theta, reml=reml, random_effects=False)
    p = fit.beta.size
    k = fit.nobs - p if reml else fit.nobs
    sigma2 = float(fit.sigma2)
    pwrss = sigma2 * k
    a = -2.0 * float(fit.llf) - k * (1.0 + math.log(2.0 * math.pi * sigma2))
    rxinv = np.asarray(fit.cov_beta, dtype=float) / sigma2
    return np.concatenate([[a, pwrss], rxinv.ravel()])


def _theta_derivatives(fun: Any, theta: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Value, gradient (n_θ, m) and Hessian (n_θ, n_θ, m) of a vector function of ``θ``:
    central differences at steps ``h`` and ``h/2``, Richardson-extrapolated (O(h⁴))."""
    t = theta.size
    f0 = np.asarray(fun(theta), dtype=float)
    m = f0.size
    steps = _REL_STEP * np.maximum(np.abs(theta), _STEP_FLOOR)
    grads, hessians = [], []
    for scale in (1.0, 0.5):
        h = steps * scale
        fp, fm = np.empty((t, m)), np.empty((t, m))
        for j in range(t):
            e = np.zeros(t)
            e[j] = h[j]
            fp[j], fm[j] = fun(theta + e), fun(theta - e)
        grad = (fp - fm) / (2.0 * h[:, None])
        hess = np.empty((t, t, m))
        for j in range(t):
            hess[j, j] = (fp[j] - 2.0 * f0 + fm[j]) / h[j] ** 2
        for i in range(t):
            for j in range(i):
                e = np.zeros(t)
                e[i], e[j] = h[i], h[j]
                both = np.asarray(fun(theta + e), dtype=float) - 2.0 * f0 + \
                    np.asarray(fun(theta - e), dtype=float)
                hij = (both - hess[i, i] * h[i] ** 2 - hess[j, j] * h[j] ** 2) / \
                    (2.0 * h[i] * h[j])
                hess[i, j] = hess[j, i] = hij
        grads.append(grad)
        hessians.append(hess)
    grad = (4.0 * grads[1] - grads[0]) / 3.0
    hess = (4.0 * hessians[1] - hessians[0]) / 3.0
    return f0, grad, hess


def _pseudo_inverse(h: FloatArray) -> tuple[FloatArray, tuple[str, ...]]:
    """``H⁺`` over eigenvalues > 1e-8 and lmerTest's messages about the others."""
    evals, evecs = np.linalg.eigh(h)
    messages = []
    neg = evals < -EIGEN_TOL
    zero = np.abs(evals) <= EIGEN_TOL
    if neg.any():
        vals = " ".join(f"{v:.1e}" for v in evals[neg])
        messages.append(f"Satterthwaite df: the deviance Hessian has {int(neg.sum())} "
                        f"negative eigenvalue(s) ({vals}): the fit may not have converged; "
                        f"those directions are left out (as lmerTest).")
    if zero.any():
        vals = " ".join(f"{v:.1e}" for v in evals[zero])
        messages.append(f"Satterthwaite df: the deviance Hessian has {int(zero.sum())} "
                        f"eigenvalue(s) close to zero ({vals}); those directions are left "
                        f"out (as lmerTest).")
    pos = evals > EIGEN_TOL
    inv = (evecs[:, pos] / evals[pos]) @ evecs[:, pos].T
    return np.asarray(inv, dtype=float), tuple(messages)


def satterthwaite(model: NestedLMM, y: Any, theta: Any, *,
                  reml: bool | None = None) -> Satterthwaite:
    """The Satterthwaite pieces of a fit at its estimate ``theta`` (lmerTest's).

    Parameters
    ----------
    model : NestedLMM
        The model (design and grouping).
    y : array_like, shape (n,)
        The response it was fitted to.
    theta : array_like
        The estimate (``EngineFit.theta``).
    reml : bool, optional
        The criterion of the fit (default: the model's).

    Returns
    -------
    Satterthwaite
        ``.df(L)`` for contrasts, ``.f_test(L, beta)`` for joint tests.

    Examples
    --------
    >>> import numpy as np
    >>> from alliancestats._mixed._engine import NestedLMM
    >>> rng = np.random.default_rng(3)
    >>> g = np.repeat(np.arange(8), 10)
    >>> x = np.repeat(rng.integers(0, 2, 8), 10).astype(float)
    >>> X = np.column_stack([np.ones(80), x])
    >>> y = x + rng.normal(size=8)[g] + rng.normal(size=80)
    >>> model = NestedLMM(X, g[:, None], [X[:, :1]])
    >>> fit = model.fit(y)
    >>> float(satterthwaite(model, y, fit.theta).df([0.0, 1.0])[0].round(2))
    6.0
    """
    use_reml = model.reml if reml is None else bool(reml)
    ya = np.asarray(y, dtype=float).ravel()
    t0 = np.asarray(theta, dtype=float).ravel()
    try:
        return _satterthwaite_gradient(model, ya, t0, use_reml)
    except np.linalg.LinAlgError:
        # a step left the parameter space (e.g. a residual correlation at its bound):
        # the evaluations-only path, as before
        return _satterthwaite_evaluations(model, ya, t0, use_reml)


def _assemble(theta_hess: FloatArray, r2_grad: FloatArray, rxinv_jac: FloatArray,
              rxinv: FloatArray, pwrss: float, k: int) -> Satterthwaite:
    """The :class:`Satterthwaite` pieces from the ``θ`` derivatives: ``theta_hess`` the
    Hessian of ``a + r²/σ²`` at fixed ``σ``, ``r2_grad`` = ``∇r²``, ``rxinv_jac`` the
    ``θ`` derivatives of ``R_X⁻¹R_X⁻ᵀ``; the ``σ`` derivatives are analytic."""
    n_t, p = r2_grad.size, rxinv.shape[0]
    sigma2 = pwrss / k
    sigma = math.sqrt(sigma2)
    H = np.empty((n_t + 1, n_t + 1))
    H[:n_t, :n_t] = theta_hess
    H[:n_t, n_t] = H[n_t, :n_t] = -2.0 * r2_grad / sigma ** 3
    H[n_t, n_t] = 6.0 * pwrss / sigma2 ** 2 - 2.0 * k / sigma2
    inv, messages = _pseudo_inverse(H)
    jac = np.empty((n_t + 1, p, p))
    jac[:n_t] = sigma2 * rxinv_jac
    jac[n_t] = 2.0 * sigma * rxinv
    return Satterthwaite(cov=sigma2 * rxinv, vcov_varpar=2.0 * inv, jacobian=jac,
                         hessian=H, messages=messages)


def _satterthwaite_evaluations(model: NestedLMM, ya: FloatArray, t0: FloatArray,
                               reml: bool) -> Satterthwaite:
    """All ``θ`` derivatives by differences of evaluations (``1 + 2 n_θ (n_θ + 1)``)."""
    n_t = t0.size

    def fun(t: FloatArray) -> FloatArray:
        return _theta_pieces(model, ya, t, reml)

    f0, grad, hess = _theta_derivatives(fun, t0)
    fit = model.evaluate(ya, t0, reml=reml, random_effects=False)
    p = fit.beta.size
    k = fit.nobs - p if reml else fit.nobs
    pwrss = float(f0[1])
    sigma2 = pwrss / k
    theta_hess = hess[:, :, 0] + hess[:, :, 1] / sigma2
    return _assemble(theta_hess, grad[:, 1], grad[:, 2:].reshape(n_t, p, p),
                     f0[2:].reshape(p, p), pwrss, k)


def _satterthwaite_gradient(model: NestedLMM, ya: FloatArray, t0: FloatArray,
                            reml: bool) -> Satterthwaite:
    """The ``θ`` derivatives from the engine's exact gradient (see the module notes).

    At fixed ``σ`` the ``θ`` block of the deviance Hessian is the Hessian of
    ``a(θ) + r²(θ)/σ²``, whose gradient is one reverse pass with the weight ``1/σ²`` on
    ``r²``; ``∇r²`` at the estimate is the difference of two weights. Central differences
    of that gradient (and of ``R_X⁻¹R_X⁻ᵀ``) at ``θ ± h e_j``: ``1 + 2 n_θ``
    factorisations and ``2 + 2 n_θ`` reverse passes. With a residual structure the steps
    in the random-effect parameters need only their part of the gradient (the residual
    log-determinant does not depend on them); the mixed block comes from the steps in
    ``ψ``.
    """
    obj = model._objective(ya, reml)  # noqa: SLF001
    n_t, n_re = t0.size, obj.struct.n_theta
    value, f = obj.evaluate(t0)
    if f is None or not np.isfinite(value):
        raise np.linalg.LinAlgError("the deviance is not finite at the estimate")
    p = f.beta.size
    k = obj.struct.n - p if reml else obj.struct.n
    pwrss = f.pwrss
    weight = k / pwrss  # 1/σ²
    r2_grad = (obj.gradient(t0, value, f, r2_weight=weight)
               - obj.gradient(t0, value, f, r2_weight=0.0)) / weight

    def pieces(t: FloatArray, full: bool) -> tuple[FloatArray, FloatArray]:
        val, fac = obj.evaluate(t)
        if fac is None or not np.isfinite(val):
            raise np.linalg.LinAlgError("the deviance is not finite near the estimate")
        grad = (obj.gradient(t, val, fac, r2_weight=weight) if full
                else _core.gradient(obj.struct, fac, reml, weight))
        if not np.all(np.isfinite(grad)):
            raise np.linalg.LinAlgError("the gradient is not finite near the estimate")
        return grad, _rxinv(fac)

    steps = _GRAD_STEP * np.maximum(np.abs(t0), _STEP_FLOOR)
    hess = np.zeros((n_t, n_t))
    jac = np.empty((n_t, p, p))
    for j in range(n_t):
        e = np.zeros(n_t)
        e[j] = steps[j]
        g_up, r_up = pieces(t0 + e, j >= n_re)
        g_down, r_down = pieces(t0 - e, j >= n_re)
        hess[j, :g_up.size] = (g_up - g_down) / (2.0 * steps[j])
        jac[j] = (r_up - r_down) / (2.0 * steps[j])
    hess[:n_re, n_re:] = hess[n_re:, :n_re].T
    hess = 0.5 * (hess + hess.T)
    return _assemble(hess, r2_grad, jac, _rxinv(f), pwrss, k)


def _rxinv(f: Any) -> FloatArray:
    """``R_X⁻¹R_X⁻ᵀ = F_XX⁻¹`` of a factorisation."""
    return np.asarray(np.linalg.inv(f.rxx), dtype=float)


def satterthwaite_df(model: NestedLMM, y: Any, theta: Any, L: Any, *,
                     reml: bool | None = None) -> FloatArray:
    """Satterthwaite df of the contrasts ``L β`` (one per row) at a fit's ``theta``.

    The array-level entry point (e.g. for a power simulation that fits
    :class:`NestedLMM` directly): the same numbers as ``ddf="satterthwaite"`` on the
    model functions and as lmerTest's ``contest1D``. Test ``l'β̂ / sqrt(l' C l)`` against
    ``t(df)``, with ``C`` the fit's ``cov_beta``.

    Parameters
    ----------
    model : NestedLMM
    y : array_like, shape (n,)
    theta : array_like
        The fit's estimate (``EngineFit.theta``).
    L : array_like, shape (r, p) or (p,)
        Contrast weights on the fixed effects.
    reml : bool, optional
        The criterion of the fit (default: the model's).

    Returns
    -------
    ndarray, shape (r,)

    Examples
    --------
    >>> import numpy as np
    >>> from alliancestats._mixed._engine import NestedLMM
    >>> rng = np.random.default_rng(3)
    >>> g = np.repeat(np.arange(8), 10)
    >>> X = np.column_stack([np.ones(80), np.repeat(rng.integers(0, 2, 8), 10)])
    >>> y = X[:, 1] + rng.normal(size=8)[g] + rng.normal(size=80)
    >>> model = NestedLMM(X, g[:, None], [X[:, :1]])
    >>> satterthwaite_df(model, y, model.fit(y).theta, np.eye(2)).round(1).tolist()
    [6.0, 6.0]
    """
    return satterthwaite(model, y, theta, reml=reml).df(L)


# -- Kenward–Roger ---------------------------------------------------------------------
@dataclass(frozen=True)
class KenwardRoger:
    """The per-fit pieces of Kenward–Roger (pbkrtest ``vcovAdj``).

    Attributes
    ----------
    cov : ndarray (p, p)
        ``Φ``, the unadjusted ``vcov(β̂)``.
    cov_adjusted : ndarray (p, p)
        ``Φ_A`` (pbkrtest ``vcovAdj``).
    P : ndarray (m, p, p)
    W : ndarray (m, m)
        ``2 I⁻¹`` (pbkrtest's attributes ``P`` and ``W``).
    """

    cov: FloatArray
    cov_adjusted: FloatArray
    P: FloatArray
    W: FloatArray

    def _stats(self, rows: FloatArray) -> tuple[float, float, float]:
        """(q, df2, F scaling) for the hypothesis ``rows β = 0`` (pbkrtest ``.KR_adjust``)."""
        phi = self.cov
        q = float(np.linalg.matrix_rank(rows))
        theta = rows.T @ np.linalg.solve(rows @ phi @ rows.T, rows)
        U = np.einsum("ij,jk,mkl,ln->min", theta, phi, self.P, phi)
        tr = np.einsum("mii->m", U)
        a1 = float(tr @ self.W @ tr)
        a2 = float(np.einsum("rs,rij,sji->", self.W, U, U))
        b = (a1 + 6.0 * a2) / (2.0 * q)
        g = ((q + 1.0) * a1 - (q + 4.0) * a2) / ((q + 2.0) * a2)
        denom = 3.0 * q + 2.0 * (1.0 - g)
        c1, c2, c3 = g / denom, (q - g) / denom, (q + 2.0 - g) / denom
        v0 = 1.0 + c1 * b
        v0 = 0.0 if abs(v0) < 1e-10 else v0
        v1, v2 = 1.0 - c2 * b, 1.0 - c3 * b
        num = 1.0 - a2 / q
        ratio = 0.0 if abs(num) < 1e-14 and abs(v1) < 1e-14 else num / v1
        rho = ratio ** 2 * v0 / (q * v2)
        df2 = 4.0 + (q + 2.0) / (q * rho - 1.0)
        scaling = 1.0 if abs(df2 - 2.0) < 0.01 else df2 * (1.0 - a2 / q) / (df2 - 2.0)
        return q, df2, scaling

    def df(self, L: Any) -> FloatArray:
        """Kenward–Roger df of each row ``l`` of ``L`` (pbkrtest ``Lb_ddf``, as lmerTest's
        ``contest1D`` with ``ddf = "Kenward-Roger"``); test with :attr:`cov_adjusted`."""
        rows = _rows(L, self.cov.shape[0])
        out = np.empty(rows.shape[0])
        for i, row in enumerate(rows):
            out[i] = self._stats(row[None, :])[1] if np.any(row != 0) else np.nan
        return out

    def f_test(self, L: Any, beta: Any) -> FTest:
        """Scaled F test of ``L β = 0`` (pbkrtest ``KRmodcomp``, as lmerTest's
        ``contestMD`` with ``ddf = "Kenward-Roger"``)."""
        rows = _rows(L, self.cov.shape[0])
        b = np.asarray(beta, dtype=float)
        q, df2, scaling = self._stats(rows)
        est = rows @ b
        wald = float(est @ np.linalg.solve(rows @ self.cov_adjusted @ rows.T, est))
        fval = scaling * wald / q
        return FTest(fval, q, df2, _f_p_value(fval, q, df2))


def _kr_parameters(q: Sequence[int], diag: Sequence[bool]) -> list[tuple[int, int, int]]:
    """(level, a, b) of every covariance element: lower triangles column-major, or the
    diagonal of an independent level (pbkrtest's order within a term)."""
    out = []
    for level, (k, d) in enumerate(zip(q, diag, strict=True)):
        if d:
            out += [(level, a, a) for a in range(k)]
            continue
        for b in range(k):
            out += [(level, a, b) for a in range(b, k)]
    return out


def kenward_roger(X: Any, Z: Sequence[Any], codes: Any, cov_re: Sequence[Any],
                  sigma2: float, cov_beta: Any, *, independent: Sequence[bool] | None = None,
                  chunk_rows: int = 200_000) -> KenwardRoger:
    """Kenward–Roger pieces of a nested linear mixed model with iid residuals.

    Parameters
    ----------
    X : array_like (n, p)
        Fixed-effect design.
    Z : list of array_like (n, q_l)
        Random-effect design per level, outer -> inner.
    codes : array_like of int (n, L)
        Unit of each row per level (inner units unique across outer units).
    cov_re : list of array_like (q_l, q_l)
        Random-effect covariance per level at the REML estimate (lme4 ``VarCorr``).
    sigma2 : float
        Residual variance.
    cov_beta : array_like (p, p)
        ``vcov(β̂)`` (lme4's).
    independent : sequence of bool, optional
        Per level: independent terms (lme4 ``||``): only their variances are parameters.
    chunk_rows : int
        Top-level units are processed in chunks of about this many padded rows.

    Returns
    -------
    KenwardRoger

    Examples
    --------
    >>> import numpy as np
    >>> rng = np.random.default_rng(3)
    >>> g = np.repeat(np.arange(8), 10)
    >>> X = np.column_stack([np.ones(80), np.repeat(rng.integers(0, 2, 8), 10)])
    >>> # balanced: KR df of the between-unit effect are the ANOVA df, 8 - 2
    >>> kr = kenward_roger(X, [np.ones((80, 1))], g[:, None], [[[0.5]]], 1.0,
    ...                    np.linalg.inv(X.T @ np.linalg.inv(
    ...                        np.kron(np.eye(8), 0.5 * np.ones((10, 10))) + np.eye(80)) @ X))
    >>> float(kr.df([0.0, 1.0])[0].round(6))
    6.0
    """
    Xa = np.asarray(X, dtype=float)
    Zs = [np.asarray(z, dtype=float).reshape(Xa.shape[0], -1) for z in Z]
    cod = np.asarray(codes).reshape(Xa.shape[0], -1)
    covs = [np.asarray(c, dtype=float).reshape(z.shape[1], z.shape[1])
            for c, z in zip(cov_re, Zs, strict=True)]
    diag = list(independent) if independent is not None else [False] * len(Zs)
    params = _kr_parameters([z.shape[1] for z in Zs], diag)
    gamma = np.array([covs[lv][a, b] for lv, a, b in params] + [float(sigma2)])
    m, p = gamma.size, Xa.shape[1]
    top = cod[:, 0]
    order = np.argsort(top, kind="stable")
    bounds = np.flatnonzero(np.r_[True, top[order][1:] != top[order][:-1], True])
    blocks = [order[bounds[i]:bounds[i + 1]] for i in range(bounds.size - 1)]
    nmax = max(b.size for b in blocks)
    per_chunk = max(1, chunk_rows // (nmax * max(m, 1)))
    P, Q, K = np.zeros((m, p, p)), np.zeros((m, m, p, p)), np.zeros((m, m))
    for start in range(0, len(blocks), per_chunk):
        part = blocks[start:start + per_chunk]
        dP, dQ, dK = _kr_chunk(Xa, Zs, cod, part, nmax, params, gamma)
        P += dP
        Q += dQ
        K += dK
    phi = np.asarray(cov_beta, dtype=float)
    PhiP = np.einsum("ij,rjk->rik", phi, P)
    info = K - 2.0 * np.einsum("ij,rsji->rs", phi, Q) + np.einsum("rij,sji->rs", PhiP, PhiP)
    evals = np.linalg.eigvalsh(info)
    W = 2.0 * (np.linalg.inv(info) if np.min(np.abs(evals)) > 1e-10 else np.linalg.pinv(info))
    UU = np.einsum("rs,rsij->ij", W, Q) - np.einsum("rs,rij,jk,skl->il", W, P, phi, P)
    adjusted = phi + 2.0 * phi @ UU @ phi
    adjusted = 0.5 * (adjusted + adjusted.T)
    return KenwardRoger(cov=phi, cov_adjusted=adjusted, P=P, W=W)


def _kr_chunk(X: FloatArray, Zs: list[FloatArray], codes: Any, blocks: list[Any], nmax: int,
              params: list[tuple[int, int, int]],
              gamma: FloatArray) -> tuple[FloatArray, FloatArray, FloatArray]:
    """Contributions of some top-level blocks to ``P``, ``Q`` and ``tr(V⁻¹G_rV⁻¹G_s)``;
    blocks are zero-padded to ``nmax`` rows with unit variance (exact: padded rows carry
    no design and no covariance)."""
    c, p, m = len(blocks), X.shape[1], gamma.size
    real = np.zeros((c, nmax), dtype=bool)
    Xb = np.zeros((c, nmax, p))
    idx = np.zeros((c, nmax), dtype=np.intp)
    for i, rows in enumerate(blocks):
        real[i, :rows.size] = True
        Xb[i, :rows.size] = X[rows]
        idx[i, :rows.size] = rows
    pair = real[:, :, None] & real[:, None, :]
    G = np.zeros((m, c, nmax, nmax))
    for r, (lv, a, b) in enumerate(params):
        same = pair & (codes[idx, lv][:, :, None] == codes[idx, lv][:, None, :])
        za = np.where(real, Zs[lv][idx, a], 0.0)
        zb = np.where(real, Zs[lv][idx, b], 0.0)
        outer = za[:, :, None] * zb[:, None, :]
        if a != b:
            outer = outer + outer.transpose(0, 2, 1)
        G[r] = outer * same
    eye = np.eye(nmax)
    G[m - 1] = pair * eye
    V = np.einsum("r,rcij->cij", gamma, G) + (~real)[:, :, None] * eye
    Vinv = np.linalg.inv(V)
    TT = Vinv @ Xb
    H = G @ Vinv  # (m, c, n, n)
    GT = G @ TT  # (m, c, n, p)
    VGT = Vinv @ GT
    P = -np.einsum("rcnp,cnq->rpq", GT, TT)
    Q = np.einsum("rcnp,scnq->rspq", GT, VGT)
    Hf = H.reshape(m, -1)
    HT = H.transpose(0, 1, 3, 2).reshape(m, -1)
    K = Hf @ HT.T
    return P, Q, K


# -- the per-fit source the results use --------------------------------------------------
@dataclass
class DdfSource:
    """What small-sample inference needs from one mixed-model fit; the Satterthwaite and
    Kenward–Roger pieces are computed on first use and cached.

    Parameters
    ----------
    model : NestedLMM
    y : ndarray
    theta : ndarray
        The estimate.
    reml : bool
    X, Z, codes, independent
        The design as given to the engine (for Kenward–Roger).
    """

    model: NestedLMM
    y: FloatArray
    theta: FloatArray
    reml: bool
    X: FloatArray
    Z: list[FloatArray]
    codes: Any
    independent: tuple[bool, ...]
    _cache: dict[str, Any] = field(default_factory=dict, repr=False, compare=False)

    def has_iid_residuals(self) -> bool:
        """Whether ``θ`` holds only random-effect parameters (iid residuals)."""
        expected = sum(len(_kr_parameters([z.shape[1]], [d]))
                       for z, d in zip(self.Z, self.independent, strict=True))
        return bool(self.theta.size == expected)

    def satterthwaite(self) -> Satterthwaite:
        """The cached :class:`Satterthwaite` pieces."""
        if "satterthwaite" not in self._cache:
            self._cache["satterthwaite"] = satterthwaite(self.model, self.y, self.theta,
                                                         reml=self.reml)
        out: Satterthwaite = self._cache["satterthwaite"]
        return out

    def kenward_roger(self) -> KenwardRoger:
        """The cached :class:`KenwardRoger` pieces (REML fits with iid residuals)."""
        if "kenward_roger" not in self._cache:
            if not self.reml:
                raise ValueError("Kenward–Roger df need a REML fit (reml=True), as "
                                 "pbkrtest; use ddf='satterthwaite' for ML fits.")
            if not self.has_iid_residuals():
                raise ValueError("Kenward–Roger df are implemented for iid residuals "
                                 "only; use ddf='satterthwaite' with this residual "
                                 "structure.")
            fit = self.model.evaluate(self.y, self.theta, reml=True, random_effects=False)
            self._cache["kenward_roger"] = kenward_roger(
                self.X, self.Z, self.codes, fit.cov_re, float(fit.sigma2), fit.cov_beta,
                independent=self.independent)
        out: KenwardRoger = self._cache["kenward_roger"]
        return out
