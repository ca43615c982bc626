"""Variable-step BDF coefficients, predictors and local error estimates (pure numpy).

With h = t_{n+1} - t_n, h1 = t_n - t_{n-1}, h2 = t_{n-1} - t_{n-2}, omega = h / h1:

BDF1: u_{n+1} - u_n = h f_{n+1};  BDF2 (variable step):
  (1+2w)/(1+w) u_{n+1} - (1+w) u_n + w^2/(1+w) u_{n-1} = h f_{n+1},
zero-stable for w < 1 + sqrt(2) (the stepper caps the growth ratio below that).

The local error is estimated Milne-style from the difference between the implicit
solution and an explicit extrapolation (the predictor) through the previous states: for
a method whose local error is C_L y^(p+1) and a predictor whose error is C_P y^(p+1),
err ~ C_L / (C_L + C_P) (u_{n+1} - u^P). For BDF2, C_L = h^2 (h+h1)^2 / (6 (2h+h1)) and
C_P = h (h+h1) (h+h1+h2) / 6 (quadratic extrapolation); for BDF1, C_L = h^2 / 2 and
C_P = h (h+h1) / 2 (linear extrapolation). At constant step these give the classical
factors 2/11 and 1/3.
"""

from __future__ import annotations

import math

import numpy as np

from cait_fem.errors import SolverError

MAX_BDF2_RATIO = 2.4  # < 1 + sqrt(2)


def _check_step(name: str, h) -> None:
    """A step must be finite and > 0; otherwise the stepper has broken down (e.g. steps
    that underflow against t), which is a solver failure, not a division by zero."""
    if h is None or not (math.isfinite(h) and h > 0.0):
        raise SolverError(f"time step {name} = {h!r} (dimensionless) is not a finite number > 0: the "
                          "step size collapsed; the problem is too stiff for the time integration")


def coefficients(order: int, h: float, h1: float | None) -> tuple[float, float, float]:
    """(a0, a1, a2) with (a0 u_{n+1} + a1 u_n + a2 u_{n-1}) / h = du/dt."""
    _check_step("h", h)
    if order == 1:
        return 1.0, -1.0, 0.0
    _check_step("h1", h1)
    w = h / h1
    return (1.0 + 2.0 * w) / (1.0 + w), -(1.0 + w), w * w / (1.0 + w)


def predict(order: int, h: float, history: list[tuple[float, np.ndarray]]) -> np.ndarray:
    """Extrapolate to t_n + h from the newest ``order + 1`` states in ``history``
    ([(t, u)], newest last) with the Lagrange polynomial through them."""
    _check_step("h", h)
    pts = history[-(order + 1):]
    times = [t for t, _ in pts]
    if len(set(times)) != len(times) or not all(math.isfinite(t) for t in times):
        raise SolverError(f"the predictor's times {times} are not distinct finite numbers: steps "
                          "underflowed against t (t + h == t); the problem is too stiff for the time integration")
    t_new = pts[-1][0] + h
    out = np.zeros_like(pts[-1][1])
    for j, (tj, uj) in enumerate(pts):
        w = 1.0
        for m, (tm, _) in enumerate(pts):
            if m != j:
                w *= (t_new - tm) / (tj - tm)
        out += w * uj
    return out


def error_factor(order: int, h: float, steps: list[float]) -> float:
    """C_L / (C_L + C_P) for the error estimate; ``steps`` = [h1, h2] (previous steps)."""
    if order == 1:
        h1 = steps[0]
        cl, cp = h * h / 2.0, h * (h + h1) / 2.0
    else:
        h1, h2 = steps[0], steps[1]
        cl = h * h * (h + h1) ** 2 / (6.0 * (2.0 * h + h1))
        cp = h * (h + h1) * (h + h1 + h2) / 6.0
    return cl / (cl + cp)


def step_factor(err: float, tol: float, order: int, safety: float = 0.9,
                fmin: float = 0.2, fmax: float = 2.0) -> float:
    """Multiplier for the next step from the error estimate (elementary controller); an
    infinite estimate shrinks the step most (``fmin``), a NaN one is a SolverError."""
    if math.isnan(err):
        raise SolverError("the local error estimate is NaN: the solution is no longer a number")
    if err <= 0.0:
        return fmax
    return float(min(fmax, max(fmin, safety * (tol / err) ** (1.0 / (order + 1)))))
