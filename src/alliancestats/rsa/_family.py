"""The RSA model family and the geometry of a quadratic surface (private).

Every model of the family is a linear map from its free surface parameters to
(b1, ..., b5) of ``Z = b0 + b1 X + b2 Y + b3 X^2 + b4 XY + b5 Y^2``: ``b = T theta``.
The constraints of R's RSA package (``nicebread/RSA:R/RSA.R``, METHODS §2.4) are thus
satisfied exactly by substitution, and the design of the constrained fit is ``P @ T``
with ``P = [X, Y, X^2, XY, Y^2]``. The two rank-one models (SRRR, SRSQD) need one
nonlinear parameter, the angle ``phi`` of the direction ``u = cos(phi) Y - sin(phi) X``:
their quadratic part is ``g u^2`` (so ``b4^2 = 4 b3 b5`` holds exactly, for either sign of
curvature), and for a fixed ``phi`` they are linear again, ``T = T(phi)``. Fitting profiles
``phi`` over the compact interval [0, pi) (see :func:`profile_angle`).

The geometry functions (stationary point, principal axes, lateral shifts) follow
METHODS §2.3 and return messages instead of warning, so that callers decide when to warn.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

__all__ = [
    "MODELS",
    "NONLINEAR_MODELS",
    "SURFACE_WEIGHTS",
    "FamilyModel",
    "axes_and_point",
    "family_model",
    "lateral_shifts",
    "model_parameters",
    "profile_angle",
]

#: Models of the family, in the order of R's ``RSA(models=...)`` documentation.
MODELS = (
    "full", "IA", "additive", "diff", "mean", "onlyx", "onlyy", "onlyx2", "onlyy2",
    "SQD", "SSQD", "RR", "SRR", "SRRR", "SRSQD", "null",
)
NONLINEAR_MODELS = ("SRRR", "SRSQD")

#: Rows a1..a5, columns b0..b5 (R RSA's ``:=`` definitions; METHODS §2.2).
SURFACE_WEIGHTS = np.array(
    [
        [0, 1, 1, 0, 0, 0],
        [0, 0, 0, 1, 1, 1],
        [0, 1, -1, 0, 0, 0],
        [0, 0, 0, 1, -1, 1],
        [0, 0, 0, 1, 0, -1],
    ],
    dtype=float,
)

# Columns of T over (b1, b2, b3, b4, b5) with the label template of the free parameter.
_X = ("{x}", (1, 0, 0, 0, 0))
_Y = ("{y}", (0, 1, 0, 0, 0))
_X2 = ("{x}^2", (0, 0, 1, 0, 0))
_XY = ("{x}:{y}", (0, 0, 0, 1, 0))
_Y2 = ("{y}^2", (0, 0, 0, 0, 1))
_DIFF = ("({x} - {y})", (1, -1, 0, 0, 0))
_MEAN = ("({x} + {y})", (1, 1, 0, 0, 0))
_SQD = ("({x} - {y})^2", (0, 0, 1, -2, 1))

_LINEAR: dict[str, tuple[tuple[str, tuple[int, ...]], ...]] = {
    "full": (_X, _Y, _X2, _XY, _Y2),
    "IA": (_X, _Y, _XY),
    "additive": (_X, _Y),
    "diff": (_DIFF,),
    "mean": (_MEAN,),
    "onlyx": (_X,),
    "onlyy": (_Y,),
    "onlyx2": (_X, _X2),
    "onlyy2": (_Y, _Y2),
    "SQD": (_SQD,),
    "SSQD": (_DIFF, _SQD),
    "RR": (_MEAN, _SQD),
    "SRR": (_X, _Y, _SQD),
    "null": (),
}

# Model-specific intercept of the ridge/valley line Y = S X + C (R RSA's parameter `C`).
_SHIFT_INTERCEPT: dict[str, Callable[[np.ndarray], float]] = {
    "SSQD": lambda b: b[1] / (2 * b[3]),
    "SRR": lambda b: (b[1] - b[2]) / (4 * b[3]),
    "SRRR": lambda b: (-2 * b[1] * b[5] - b[2] * b[4]) / (4 * b[4] * b[5]),
    "SRSQD": lambda b: -0.5 * b[2] / b[5],
}


@dataclass(frozen=True)
class FamilyModel:
    """One member of the RSA model family as a (possibly angle-dependent) map b = T theta.

    Attributes
    ----------
    name : str
    templates : tuple of str
        Labels of the free surface parameters, with ``{x}``/``{y}`` placeholders.
    nonlinear : bool
        Whether ``T`` depends on the angle ``phi`` (SRRR, SRSQD).
    """

    name: str
    templates: tuple[str, ...]
    nonlinear: bool

    @property
    def k(self) -> int:
        """Number of free regression weights of the surface (R's ``k``, angle included)."""
        return len(self.templates) + int(self.nonlinear)

    def labels(self, x: str, y: str) -> list[str]:
        """Names of the free parameters for columns ``x`` and ``y``."""
        return [t.format(x=x, y=y) for t in self.templates]

    def transform(self, phi: float | None = None) -> np.ndarray:
        """``T`` (5 x len(templates)): b1..b5 = T theta."""
        if self.name in _LINEAR:
            cols = [c for _, c in _LINEAR[self.name]]
            return np.array(cols, dtype=float).T.reshape(5, len(cols))
        if phi is None:
            raise ValueError(f"Model {self.name!r} needs the angle `phi`.")
        s, c = np.sin(phi), np.cos(phi)
        quad = [0.0, 0.0, s * s, -2 * s * c, c * c]  # u^2 = s^2 X^2 - 2 s c XY + c^2 Y^2
        if self.name == "SRRR":
            return np.array([[1.0, 0, 0, 0, 0], [0, 1.0, 0, 0, 0], quad]).T
        return np.array([[-s, c, 0, 0, 0], quad]).T  # SRSQD: h u + g u^2

    def dtransform(self, phi: float) -> np.ndarray:
        """Derivative of ``T(phi)`` with respect to ``phi`` (nonlinear models only)."""
        s, c = np.sin(phi), np.cos(phi)
        dquad = [0.0, 0.0, 2 * s * c, -2 * (c * c - s * s), -2 * s * c]
        if self.name == "SRRR":
            return np.array([[0.0] * 5, [0.0] * 5, dquad]).T
        return np.array([[-c, -s, 0, 0, 0], dquad]).T


def family_model(name: object) -> FamilyModel:
    """The :class:`FamilyModel` called ``name``; ValueError with the closest match."""
    if not isinstance(name, str):
        raise TypeError(f"`model` must be a string, one of {', '.join(MODELS)}; got {name!r}.")
    if name not in MODELS:
        lowered = {m.lower(): m for m in MODELS}
        close = difflib.get_close_matches(name.lower(), list(lowered), n=1, cutoff=0.4)
        hint = f" Did you mean {lowered[close[0]]!r}?" if close else ""
        raise ValueError(
            f"`model` must be one of {', '.join(MODELS)}; got {name!r}.{hint}"
        )
    if name == "SRRR":
        return FamilyModel(name, ("{x}", "{y}", "g"), nonlinear=True)
    if name == "SRSQD":
        return FamilyModel(name, ("h", "g"), nonlinear=True)
    return FamilyModel(name, tuple(t for t, _ in _LINEAR[name]), nonlinear=False)


def profile_angle(objective: Callable[[float], float], n_grid: int = 72) -> float:
    """Minimise ``objective(phi)`` over the period [0, pi): grid search, then Brent.

    The rank-one quadratic ``g (cos(phi) Y - sin(phi) X)^2`` has period pi in ``phi``,
    so a grid over one period finds the global basin and a bounded refinement polishes
    it. Returns ``phi`` in [0, pi).
    """
    grid = np.linspace(0.0, np.pi, n_grid, endpoint=False)
    values = np.array([objective(p) for p in grid])
    best = float(grid[int(np.nanargmin(values))])
    step = np.pi / n_grid
    res = optimize.minimize_scalar(
        objective, bounds=(best - step, best + step), method="bounded",
        options={"xatol": 1e-10},
    )
    phi = float(res.x) if res.fun <= np.nanmin(values) else best
    return phi % np.pi


# --------------------------------------------------------------------------- geometry
def _is_rank_one(b: np.ndarray, rtol: float = 1e-9) -> bool:
    scale = b[3] ** 2 + b[4] ** 2 + b[5] ** 2
    return bool(abs(4 * b[3] * b[5] - b[4] ** 2) <= rtol * scale)


def _axis_slopes(b3: float, b4: float, b5: float) -> tuple[float, float]:
    """p11, p21 by the formulas of METHODS §2.3 in a cancellation-free form."""
    d = b5 - b3
    r = float(np.hypot(d, b4))
    if b4 == 0:
        if d > 0:
            return np.inf, 0.0
        if d < 0:
            return 0.0, np.inf
        return np.nan, np.nan
    # (d + r)/b4 and (d - r)/b4, each rewritten via (r + d)(r - d) = b4^2 when it cancels.
    p11 = (d + r) / b4 if d >= 0 else b4 / (r - d)
    p21 = -b4 / (r + d) if d >= 0 else (d - r) / b4
    return p11, p21


def axes_and_point(b: np.ndarray) -> tuple[dict[str, float], list[str]]:
    """X0, Y0, Z0, p10, p11, p20, p21 of the surface with coefficients ``b`` (b0..b5).

    Returns the values and a list of messages about undefined quantities. Special cases:
    ``D = 4 b3 b5 - b4^2 = 0`` (rank-one quadratic part) has no unique stationary point;
    if the gradient can vanish at all, the stationary points form a ridge/valley line,
    which is reported as the first principal axis (p10 its intercept). ``b4 = 0``: the
    axes are parallel to the X and Y axes (slope 0, or inf with an undefined intercept).
    """
    b0, b1, b2, b3, b4, b5 = (float(v) for v in b)
    msgs: list[str] = []
    p11, p21 = _axis_slopes(b3, b4, b5)
    if b4 == 0:
        msgs.append("b4 = 0: the principal axes are parallel to the X and Y axes "
                    "(slopes 0 and inf); their intercepts and SEs are partly undefined.")
    out = dict.fromkeys(("X0", "Y0", "Z0", "p10", "p11", "p20", "p21"), np.nan)
    out["p11"], out["p21"] = p11, p21
    if _is_rank_one(b):
        msgs.append(_ridge(b, out))
        return out, msgs
    D = 4 * b3 * b5 - b4**2
    X0 = (b2 * b4 - 2 * b1 * b5) / D
    Y0 = (b1 * b4 - 2 * b2 * b3) / D
    out["X0"], out["Y0"] = X0, Y0
    out["Z0"] = b0 + b1 * X0 + b2 * Y0 + b3 * X0**2 + b4 * X0 * Y0 + b5 * Y0**2
    out["p10"] = Y0 - p11 * X0 if np.isfinite(p11) else np.nan
    out["p20"] = Y0 - p21 * X0 if np.isfinite(p21) else np.nan
    return out, msgs


def _ridge(b: np.ndarray, out: dict[str, float]) -> str:
    """Fill the intercept of the axis along which a rank-one surface is flat.

    With D = 0 the stationary points, if any, form a line (a ridge for a concave surface,
    where it is the first principal axis; a valley for a convex one, the second axis).
    That axis gets its intercept; the other axis has no unique intercept.
    """
    B = np.array([[b[3], b[4] / 2], [b[4] / 2, b[5]]])
    grad = np.array([b[1], b[2]])
    evals, evecs = np.linalg.eigh(B)
    j = int(np.argmax(np.abs(evals)))
    lam, v = evals[j], evecs[:, j]
    if lam == 0:
        return "The surface has no quadratic part: no stationary point or principal axes."
    off = grad - (grad @ v) * v
    if np.linalg.norm(off) > 1e-8 * max(np.linalg.norm(grad), abs(lam)):
        return ("D = 4 b3 b5 - b4^2 = 0 and the linear part is not parallel to the "
                "curvature: the surface has no stationary point (a rising ridge).")
    point = -0.5 * (grad @ v) / lam * v  # minimum-norm stationary point
    axis = "1" if lam < 0 else "2"  # the flat direction has the larger/smaller eigenvalue
    slope = out[f"p{axis}1"]
    if np.isfinite(slope):
        out[f"p{axis}0"] = point[1] - slope * point[0]
    kind = "ridge" if lam < 0 else "valley"
    return (f"D = 4 b3 b5 - b4^2 = 0: the stationary points form a line (a {kind}, the "
            f"principal axis {axis}); X0, Y0 are not unique and p{axis}0 is the intercept "
            f"of that line.")


def lateral_shifts(b: np.ndarray, model: str) -> dict[str, float]:
    """``shift_loic_x`` (C1 = -p10/(p11 + 1), where PA1 crosses the LOIC), its PA2
    analogue, and the model's ridge intercept ``shift_intercept`` (R's ``C``) if defined."""
    geo, _ = axes_and_point(b)
    with np.errstate(divide="ignore", invalid="ignore"):
        out: dict[str, Any] = {
            "shift_loic_x": np.float64(-geo["p10"]) / (geo["p11"] + 1),
            "shift_loic_x_pa2": np.float64(-geo["p20"]) / (geo["p21"] + 1),
        }
        if model in _SHIFT_INTERCEPT:
            out["shift_intercept"] = _SHIFT_INTERCEPT[model](np.asarray(b, np.float64))
    return {k: float(v) for k, v in out.items()}


def model_parameters(b: np.ndarray, model: str) -> dict[str, float]:
    """SRRR/SRSQD extras as R defines them: S = -b4/(2 b5) (ridge slope),
    a4_rescaled = b3/S^2 - b4/S + b5, and SRRR's ``meaneffect`` = (b2 b4 - 2 b1 b5)/b4."""
    if model not in NONLINEAR_MODELS:
        return {}
    _, b1, b2, b3, b4, b5 = (float(v) for v in b)
    with np.errstate(divide="ignore", invalid="ignore"):
        S = -b4 / (2 * b5)
        out = {"S": S, "a4_rescaled": b3 / S**2 - b4 / S + b5}
        if model == "SRRR":
            out["meaneffect"] = (b2 * b4 - 2 * b1 * b5) / b4
    return {k: float(v) for k, v in out.items()}
