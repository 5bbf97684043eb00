"""The RSA model family and the geometry of a quadratic surface.

Every model of the family is a linear map from its free surface parameters to the
coefficients of the general surface

    Z = b0 + b1 X + b2 Y + b3 X^2 + b4 XY + b5 Y^2
           + b6 X^3 + b7 X^2 Y + b8 X Y^2 + b9 Y^3 + w1 W + w2 W X + w3 W Y,

``W = sign(X - Y)`` (R's RSA package, ``nicebread/RSA:R/RSA.R`` and ``R/helpers.R``):
``coef = T theta`` with ``T`` a 12 x m matrix over (b1..b9, w1..w3). The equality
constraints of the package are thus satisfied exactly by substitution, and the design of a
constrained fit is ``P @ T`` with ``P`` the 12 basis columns (:func:`basis`). The two
rank-one models (SRRR, SRSQD) need one nonlinear parameter, the angle ``phi`` of the
direction ``u = cos(phi) Y - sin(phi) X``: their quadratic part is ``g u^2`` (so
``b4^2 = 4 b3 b5`` holds exactly, for either sign of curvature), and for a fixed ``phi``
they are linear again, ``T = T(phi)``. Fitting profiles ``phi`` over the compact interval
[0, pi) (see :func:`profile_angle`).

Models with inequality constraints (``weak``: b3 b5 > 0; ``strong``: b3 b5 > 1e-6 on the
rank-one SRSQD surface) and SRSQD, whose feasible set in the package also contains the
piece b4 = b5 = 0 that the rank-one parameterisation does not reach, are fitted as the
best of their :attr:`FamilyModel.pieces` (see ``fit.py``).

The geometry functions (stationary point, principal axes, lateral shifts) follow
Edwards & Parry (1993) and the package's ``:=`` definitions, and return messages instead
of warning, so that callers decide when to warn.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from scipy import optimize

__all__ = [
    "COEF_NAMES",
    "CUBIC_MODELS",
    "CUBIC_WEIGHTS",
    "MODELS",
    "NONLINEAR_MODELS",
    "SURFACE_WEIGHTS",
    "FamilyModel",
    "axes_and_point",
    "basis",
    "family_model",
    "lateral_shifts",
    "model_parameters",
    "profile_angle",
]

#: Models of the family, in the order of R's ``RSA(models=...)`` documentation.
MODELS = (
    "full", "IA", "additive", "diff", "mean", "onlyx", "onlyy", "onlyx2", "onlyy2",
    "SQD", "SSQD", "RR", "SRR", "SRRR", "SRSQD", "null",
    "weak", "strong", "absdiff", "absunc", "cubic", "CA", "CL", "RRCA", "RRCL",
)
NONLINEAR_MODELS = ("SRRR", "SRSQD", "strong")
CUBIC_MODELS = ("cubic", "CA", "CL", "RRCA", "RRCL")
ABS_MODELS = ("absdiff", "absunc")

#: Coefficient slots: b0, then the 12 basis terms.
COEF_NAMES = ("b0", "b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8", "b9", "w1", "w2", "w3")
N_BASIS = 12

#: Rows a1..a5, columns b0..w3 (R RSA's ``:=`` definitions).
SURFACE_WEIGHTS = np.zeros((5, 13))
SURFACE_WEIGHTS[:, :6] = [
    [0, 1, 1, 0, 0, 0],
    [0, 0, 0, 1, 1, 1],
    [0, 1, -1, 0, 0, 0],
    [0, 0, 0, 1, -1, 1],
    [0, 0, 0, 1, 0, -1],
]
#: Rows u1, u2, u3 (line of congruence) and v1, v2, v3 (line of incongruence) of a cubic
#: surface (R RSA's cubic models; Humberg et al. 2022): Z(t, t) = b0 + u1 t + u2 t^2 +
#: u3 t^3 and Z(t, -t) = b0 + v1 t + v2 t^2 + v3 t^3.
CUBIC_WEIGHTS = np.zeros((6, 13))
CUBIC_WEIGHTS[:, 1:10] = [
    [1, 1, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 1, 1, 1, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 1, 1, 1, 1],
    [1, -1, 0, 0, 0, 0, 0, 0, 0],
    [0, 0, 1, -1, 1, 0, 0, 0, 0],
    [0, 0, 0, 0, 0, 1, -1, 1, -1],
]
CUBIC_NAMES = ("u1", "u2", "u3", "v1", "v2", "v3")


def basis(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The 12 basis columns X, Y, X^2, XY, Y^2, X^3, X^2 Y, X Y^2, Y^3, W, W X, W Y.

    ``W = sign(X - Y)`` (1, -1, or 0 when X == Y), as R's ``add.variables``.
    """
    w = np.sign(x - y)
    return np.column_stack([x, y, x * x, x * y, y * y, x**3, x * x * y, x * y * y, y**3,
                            w, w * x, w * y])


def _vec(**coefs: float) -> tuple[float, ...]:
    out = [0.0] * N_BASIS
    for name, value in coefs.items():
        out[COEF_NAMES.index(name) - 1] = value
    return tuple(out)


# Columns of T over the basis with the label template of the free parameter.
_X = ("{x}", _vec(b1=1))
_Y = ("{y}", _vec(b2=1))
_X2 = ("{x}^2", _vec(b3=1))
_XY = ("{x}:{y}", _vec(b4=1))
_Y2 = ("{y}^2", _vec(b5=1))
_X3 = ("{x}^3", _vec(b6=1))
_X2Y = ("{x}^2:{y}", _vec(b7=1))
_XY2 = ("{x}:{y}^2", _vec(b8=1))
_Y3 = ("{y}^3", _vec(b9=1))
_DIFF = ("({x} - {y})", _vec(b1=1, b2=-1))
_MEAN = ("({x} + {y})", _vec(b1=1, b2=1))
_SQD = ("({x} - {y})^2", _vec(b3=1, b4=-2, b5=1))
_CA = ("({x} - {y})^3", _vec(b6=1, b7=-3, b8=3, b9=-1))
_CL = ("({x} + {y})({x} - {y})^2", _vec(b6=1, b7=-1, b8=-1, b9=1))
_W = ("W", _vec(w1=1))
_WX = ("W:{x}", _vec(w2=1))
_WY = ("W:{y}", _vec(w3=1))
_ABS = ("|{x} - {y}|", _vec(w2=1, w3=-1))

_LINEAR: dict[str, tuple[tuple[str, tuple[float, ...]], ...]] = {
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
    "cubic": (_X, _Y, _X2, _XY, _Y2, _X3, _X2Y, _XY2, _Y3),
    "CA": (_SQD, _CA),
    "CL": (_SQD, _CL),
    "RRCA": (_MEAN, _SQD, _CA),
    "RRCL": (_MEAN, _SQD, _CL),
    "absdiff": (_ABS,),
    "absunc": (_X, _Y, _WX, _WY),
    # pieces of the models fitted as the best of several parameterisations
    "weak": (_X, _Y, _X2, _XY, _Y2),
    "SRSQD:b4=b5=0": (_X, _Y, _X2),
    "weak:b3=0": (_X, _Y, _XY, _Y2),
    "weak:b5=0": (_X, _Y, _X2, _XY),
}

#: Free surface weights of each model (R's ``k`` without controls: free.max - df).
_K = {"SRRR": 4, "SRSQD": 3, "weak": 5, "strong": 3}

#: Models fitted as the best of several pieces: (piece, feasibility check of b).
_PIECES: dict[str, tuple[str, ...]] = {
    "SRSQD": ("SRSQD:rank-one", "SRSQD:b4=b5=0"),
    "weak": ("full", "weak:b3=0", "weak:b5=0"),
    "strong": ("strong",),
}

# Model-specific intercept of the ridge/valley line Y = S X + C (R RSA's parameter `C`).
_SHIFT_INTERCEPT: dict[str, Callable[[np.ndarray], float]] = {
    "SSQD": lambda b: b[1] / (2 * b[3]),
    "SRR": lambda b: (b[1] - b[2]) / (4 * b[3]),
    "SRRR": lambda b: (-2 * b[1] * b[5] - b[2] * b[4]) / (4 * b[4] * b[5]),
    "SRSQD": lambda b: -0.5 * b[2] / b[5],
    "strong": lambda b: -0.5 * b[2] / b[5],
}

#: Smallest b3 b5 of R's ``strong`` model ("b3*b5 > 0.000001").
STRONG_BOUND = 1e-6


@dataclass(frozen=True)
class FamilyModel:
    """One member (or one piece of a member) of the RSA model family as a map
    coef = T theta, possibly depending on the angle ``phi``.

    Attributes
    ----------
    name : str
        The model's name (R RSA's), or ``"model:piece"`` for a piece.
    templates : tuple of str
        Labels of the free surface parameters, with ``{x}``/``{y}`` placeholders.
    nonlinear : bool
        Whether ``T`` depends on the angle ``phi`` (SRRR, SRSQD, strong).
    """

    name: str
    templates: tuple[str, ...]
    nonlinear: bool

    @property
    def model(self) -> str:
        """The family member this is (a piece's model)."""
        return self.name.split(":")[0]

    @property
    def k(self) -> int:
        """Number of free regression weights of the surface (R's ``k``, angle included)."""
        return _K.get(self.model, len(self.templates) + int(self.nonlinear))

    @property
    def order(self) -> str:
        """"cubic" for third-order models, "abs" for the piecewise models, else "quadratic"."""
        if self.model in CUBIC_MODELS:
            return "cubic"
        return "abs" if self.model in ABS_MODELS else "quadratic"

    @property
    def coef_names(self) -> tuple[str, ...]:
        """Names of the coefficients this model reports (b0..b5, b0..b9 or b0..b2, w1..w3)."""
        if self.order == "cubic":
            return COEF_NAMES[:10]
        if self.order == "abs":
            return (*COEF_NAMES[:3], *COEF_NAMES[10:])
        return COEF_NAMES[:6]

    @property
    def pieces(self) -> tuple[FamilyModel, ...]:
        """Parameterisations whose best feasible fit is this model's fit."""
        if ":" in self.name:
            return (self,)
        return tuple(_member(p) for p in _PIECES.get(self.name, (self.name,)))

    def accepts(self, piece: FamilyModel, b: np.ndarray) -> bool:
        """Whether the fit of ``piece`` (coefficients b0..w3) lies in this model.

        Only ``weak`` has a piece that can leave the model: its unconstrained (full) fit
        counts when b3 b5 > 0; otherwise the optimum lies on b3 = 0 or b5 = 0.
        """
        if self.name == "weak" and piece.name == "full":
            return bool(b[3] * b[5] > 0)
        return True

    def labels(self, x: str, y: str) -> list[str]:
        """Names of the free parameters for columns ``x`` and ``y``."""
        return [t.format(x=x, y=y) for t in self.templates]

    def transform(self, phi: float | None = None) -> np.ndarray:
        """``T`` (12 x len(templates)): b1..w3 = T theta."""
        if not self.nonlinear:
            cols = [c for _, c in _LINEAR[self.name]]
            return np.array(cols, dtype=float).T.reshape(N_BASIS, len(cols))
        if phi is None:
            raise ValueError(f"Model {self.name!r} needs the angle `phi`.")
        s, c = np.sin(phi), np.cos(phi)
        quad = _vec(b3=s * s, b4=-2 * s * c, b5=c * c)  # u^2 = s^2 X^2 - 2sc XY + c^2 Y^2
        if self.name == "SRRR":
            return np.array([_vec(b1=1), _vec(b2=1), quad]).T
        return np.array([_vec(b1=-s, b2=c), quad]).T  # SRSQD, strong: h u + g u^2

    def dtransform(self, phi: float) -> np.ndarray:
        """Derivative of ``T(phi)`` with respect to ``phi`` (nonlinear models only)."""
        s, c = np.sin(phi), np.cos(phi)
        dquad = _vec(b3=2 * s * c, b4=-2 * (c * c - s * s), b5=-2 * s * c)
        if self.name == "SRRR":
            return np.array([_vec(), _vec(), dquad]).T
        return np.array([_vec(b1=-c, b2=-s), dquad]).T


def _member(name: str) -> FamilyModel:
    if name == "SRRR":
        return FamilyModel(name, ("{x}", "{y}", "g"), nonlinear=True)
    if name in ("SRSQD", "SRSQD:rank-one", "strong"):
        return FamilyModel(name, ("h", "g"), nonlinear=True)
    if name == "weak":
        return FamilyModel(name, tuple(t for t, _ in _LINEAR["full"]), nonlinear=False)
    return FamilyModel(name, tuple(t for t, _ in _LINEAR[name]), nonlinear=False)


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
    return _member(name)


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
    """p11, p21 (slopes of the principal axes, Edwards 2002, "Alternatives to difference
    scores", eqs. for the eigenvectors of [[b3, b4/2], [b4/2, b5]]):
    ``(b5 - b3 ± sqrt((b3 - b5)^2 + b4^2)) / b4``, in a cancellation-free form."""
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
    b0, b1, b2, b3, b4, b5 = (float(v) for v in np.asarray(b)[:6])
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
    _, b1, b2, b3, b4, b5 = (float(v) for v in np.asarray(b)[:6])
    with np.errstate(divide="ignore", invalid="ignore"):
        S = -b4 / (2 * b5)
        out = {"S": S, "a4_rescaled": b3 / S**2 - b4 / S + b5}
        if model == "SRRR":
            out["meaneffect"] = (b2 * b4 - 2 * b1 * b5) / b4
    return {k: float(v) for k, v in out.items()}
