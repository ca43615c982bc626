"""Variable-step BDF coefficients, predictors and local error estimates (pure numpy).

With t_{n+1} the new time, h = t_{n+1} - t_n and the previous steps h1 = t_n - t_{n-1},
h2 = t_{n-1} - t_{n-2}: BDFk takes du/dt at t_{n+1} as the derivative of the polynomial
interpolating u_{n+1}, u_n, ..., u_{n+1-k}:

  (a0 u_{n+1} + a1 u_n + ... + ak u_{n+1-k}) / h = f(u_{n+1}),

a_j = h l_j'(t_{n+1}) with l_j the Lagrange basis (:func:`coefficients`). BDF1 is
backward Euler; variable-step BDF2 is (1+2w)/(1+w) u_{n+1} - (1+w) u_n + w^2/(1+w) u_{n-1}
with w = h / h1, zero-stable for w < 1 + sqrt(2); variable-step BDF3 is stable for step
ratios below 2.553 (Li & Liao, "Stability of variable-step BDF2 and BDF3 methods", SIAM J.
Numer. Anal. 2022, arXiv:2201.00527). The stepper caps the ratio below those
(:data:`MAX_RATIO`). For the real negative spectrum of diffusion, and the near-real one
of the exponentially fitted drift, BDF3's A(86 deg) stability is as good as A-stability.

The local error is estimated Milne-style from the difference between the implicit
solution and an explicit extrapolation (the predictor) through the previous k + 1 states:
for a method whose local error is C_L y^(k+1) and a predictor whose error is C_P y^(k+1),
err ~ C_L / (C_L + C_P) (u_{n+1} - u^P). With d_j = t_{n+1} - t_{n-j} (d_0 = h): the
interpolation error of the BDF polynomial gives the derivative defect
prod_{j<k} d_j y^(k+1) / (k+1)!, so C_L = (h / a0) prod_{j<k} d_j / (k+1)!, and the
extrapolation error is C_P = prod_{j<=k} d_j / (k+1)!. For BDF2 this is
C_L = h^2 (h+h1)^2 / (6 (2h+h1)), C_P = h (h+h1) (h+h1+h2) / 6; at constant step the
factors C_L / (C_L + C_P) are the classical 1/3, 2/11 and 3/25 for k = 1, 2, 3.
"""

from __future__ import annotations

import math

import numpy as np

from cait_fem.errors import SolverError

MAX_ORDER = 3
#: largest step ratio h / h_previous per order (zero stability, see module doc):
#: BDF2 below 1 + sqrt(2), BDF3 below 2.553
MAX_RATIO = {2: 2.4, 3: 2.0}


def _check_step(name: str, h) -> None:
    """A step must be finite and > 0; otherwise the stepper has broken down (e.g. steps
    that underflow against t), which is a solver failure, not a division by zero."""
    if h is None or not (math.isfinite(h) and h > 0.0):
        raise SolverError(f"time step {name} = {h!r} (dimensionless) is not a finite number > 0: the "
                          "step size collapsed; the problem is too stiff for the time integration")


def coefficients(order: int, h: float, steps) -> tuple[float, ...]:
    """(a0, ..., a_order) with (a0 u_{n+1} + a1 u_n + ...) / h = du/dt at t_{n+1};
    ``steps`` = [h1, h2, ...], the previous steps, newest first (``order - 1`` are used)."""
    _check_step("h", h)
    if order not in range(1, MAX_ORDER + 1):
        raise ValueError(f"BDF order {order!r}: 1 to {MAX_ORDER}")
    steps = list(steps or [])[: order - 1]
    if len(steps) < order - 1:
        raise ValueError(f"BDF{order} needs {order - 1} previous steps, got {len(steps)}")
    for k, hk in enumerate(steps, start=1):
        _check_step(f"h{k}", hk)
    # nodes relative to t_{n+1}, in units of h: 0, -1, -1 - h1/h, ...
    nodes = [0.0, -1.0]
    for hk in steps:
        nodes.append(nodes[-1] - hk / h)
    out = []
    for j, xj in enumerate(nodes):
        # l_j'(0) = sum_{m != j} 1/(x_j - x_m) prod_{q != j, m} (0 - x_q)/(x_j - x_q)
        total = 0.0
        for m, xm in enumerate(nodes):
            if m == j:
                continue
            term = 1.0 / (xj - xm)
            for q, xq in enumerate(nodes):
                if q not in (j, m):
                    term *= -xq / (xj - xq)
            total += term
        out.append(total)
    return tuple(out)


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
    """C_L / (C_L + C_P) for the error estimate (module doc); ``steps`` = [h1, ..., h_order]
    (the previous steps, newest first: the predictor needs ``order``)."""
    if len(steps) < order:
        raise ValueError(f"the BDF{order} error estimate needs {order} previous steps, got {len(steps)}")
    d = [h]
    for hk in steps[:order]:
        d.append(d[-1] + hk)
    a0 = coefficients(order, h, steps)[0]
    cl = h / a0 * math.prod(d[:order])
    cp = math.prod(d[: order + 1])
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
