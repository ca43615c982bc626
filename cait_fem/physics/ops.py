"""Math namespaces, so that one definition of a law gives numpy values and UFL expressions.

A law written as ``f(x, ops)`` using only arithmetic and ``ops.*`` evaluates with
``ops=NUMPY`` on arrays, and with ``ops=ufl_ops()`` builds a UFL expression that the forms
differentiate exactly. UFL conditionals evaluate both branches, so every branch written
here keeps the arguments of ``log`` and ``sqrt`` positive and ``exp`` from overflowing
for all inputs in the documented range.
"""

from __future__ import annotations

import functools
import math
from types import SimpleNamespace

import numpy as np
from scipy import special

__all__ = ["NumpyOps", "NUMPY", "ufl_ops", "ndtri_approx", "balanced_sum"]


class NumpyOps:
    """The ops namespace for numpy arrays (and floats); ``where`` selects elementwise."""

    exp = staticmethod(np.exp)
    log = staticmethod(np.log)
    sqrt = staticmethod(np.sqrt)
    erf = staticmethod(special.erf)
    abs = staticmethod(np.abs)
    where = staticmethod(np.where)
    lt = staticmethod(np.less)
    gt = staticmethod(np.greater)
    max = staticmethod(np.maximum)
    min = staticmethod(np.minimum)
    ndtr = staticmethod(special.ndtr)
    ndtri = staticmethod(special.ndtri)


NUMPY = NumpyOps()


@functools.cache
def ufl_ops() -> SimpleNamespace:
    """The ops namespace for UFL expressions.

    ``ndtr`` is written with ``erf``; ``ndtri`` is :func:`ndtri_approx` because UFL has
    no inverse error function, without the Halley refinement: Acklam's 1.15e-9 relative
    accuracy changes an SED diffusivity by < 1e-7 relative, far below any discretisation
    error, while the refinement (erf, exp and the tail continued fraction, all
    differentiated again for the Jacobian) made the Jacobian kernel several times dearer.
    The Jacobian stays the exact derivative of the residual that is assembled.
    """
    import ufl

    ops = SimpleNamespace(
        exp=ufl.exp, log=ufl.ln, sqrt=ufl.sqrt, erf=ufl.erf, abs=abs,
        where=ufl.conditional, lt=ufl.lt, gt=ufl.gt, max=ufl.max_value, min=ufl.min_value,
        ndtr=lambda x: 0.5 * (1.0 + ufl.erf(x / math.sqrt(2.0))),
    )
    ops.ndtri = lambda p: ndtri_approx(p, ops, refine=False)
    return ops


# P. J. Acklam, "An algorithm for computing the inverse normal cumulative distribution
# function" (2003): rational approximations with relative error below 1.15e-9.
_A = (-3.969683028665376e+01, 2.209460984245205e+02, -2.759285104469687e+02,
      1.383577518672690e+02, -3.066479806614716e+01, 2.506628277459239e+00)
_B = (-5.447609879822406e+01, 1.615858368580409e+02, -1.556989798598866e+02,
      6.680131188771972e+01, -1.328068155288572e+01, 1.0)
_C = (-7.784894002430293e-03, -3.223964580411365e-01, -2.400758277161838e+00,
      -2.549732539343734e+00, 4.374664141464968e+00, 2.938163982698783e+00)
_D = (7.784695709041462e-03, 3.224671290700398e-01, 2.445134137142996e+00,
      3.754408661907416e+00, 1.0)
_P_LOW = 0.02425
_TINY = 1e-300
# Below x = -2.5 the residual Phi(x) - p is taken from the Mills ratio instead of erf,
# whose 1 + erf(x) cancels catastrophically in the tail (at p = 1e-20 it would carry no
# correct digit). The Mills ratio is Laplace's continued fraction
# 1/(z + 1/(z + 2/(z + ... + 60/z))), accurate to ~1e-15 for z >= 2.5, evaluated as the
# ratio of its convergent's numerator and denominator polynomials: their coefficients are
# positive integers, so the power form has no cancellation for z > 0, and a balanced sum
# keeps the expression shallow (UFL's algorithms recurse once per nesting level).
_X_MILLS = 2.5
_MILLS_LEVELS = 60


def _mills_convergent(levels: int) -> tuple[list[float], list[float]]:
    """Power-form coefficients of numerator P and denominator Q of the continued fraction
    1/(z + 1/(z + 2/(z + ... + levels/z))), from P_k = z P_k-1 + a_k P_k-2 (same for Q)."""
    p_prev, p = [1], [0]  # P_-1 = 1, P_0 = 0
    q_prev, q = [0], [1]  # Q_-1 = 0, Q_0 = 1
    def step(cur, prev, a):
        out = [0] + cur  # z * cur
        for j, c in enumerate(prev):
            out[j] += a * c
        return out

    for k in range(1, levels + 2):
        a = 1 if k == 1 else k - 1
        p_prev, p = p, step(p, p_prev, a)
        q_prev, q = q, step(q, q_prev, a)
    return [float(c) for c in p], [float(c) for c in q]


_MILLS_P, _MILLS_Q = _mills_convergent(_MILLS_LEVELS)


def balanced_sum(terms):
    """Sum by pairs, so an expression of n terms is log2(n) levels deep, not n."""
    terms = list(terms)
    while len(terms) > 1:
        terms = [terms[i] + terms[i + 1] if i + 1 < len(terms) else terms[i] for i in range(0, len(terms), 2)]
    return terms[0]


def _power_form(coefficients, z):
    return balanced_sum(c * z**j for j, c in enumerate(coefficients) if c != 0.0)


def _horner(coefficients, x):
    value = coefficients[0]
    for c in coefficients[1:]:
        value = value * x + c
    return value


def _mills_ratio(z):
    """(1 - Phi(z)) / phi(z) for z >= 2.5 (relative accuracy ~1e-15)."""
    return _power_form(_MILLS_P, z) / _power_form(_MILLS_Q, z)


def ndtri_approx(p, ops, refine: bool = True):
    """Inverse standard normal CDF, written with ``ops`` primitives and arithmetic only.

    Acklam's rational approximation followed by one Halley step on Phi(x) = p. Relative
    accuracy ~1e-14 for p in [1e-20, 1 - 1e-12] (absolute ~1e-16 near p = 1/2); with
    ``refine=False`` Acklam's alone, 1.15e-9 relative.
    The work is done on t = min(p, 1 - p) <= 1/2 (exact in floating point), where
    x <= 0; the sign is restored at the end, so the upper tail is as accurate as the lower.
    """
    upper = ops.gt(p, 0.5)  # one condition for both folds keeps d/dp right at p = 1/2
    t = ops.max(ops.where(upper, 1.0 - p, p), _TINY)
    log_t = ops.log(t)
    centred = t - 0.5  # exact for t >= 1/4 (Sterbenz), which keeps relative accuracy at p -> 1/2

    r = centred * centred
    x_central = centred * _horner(_A, r) / _horner(_B, r)
    q = ops.sqrt(-2.0 * log_t)  # t <= 1/2 keeps -2 log t > 0
    x_tail = _horner(_C, q) / _horner(_D, q)
    x = ops.where(ops.lt(t, _P_LOW), x_tail, x_central)
    if not refine:
        return ops.where(upper, -x, x)

    # u = (Phi(x) - t) / phi(x); each branch clamps x to where it is used so that the
    # branch not taken stays finite (UFL evaluates both).
    x_near = ops.max(x, -_X_MILLS - 0.5)
    u_near = (0.5 * ops.erf(x_near / math.sqrt(2.0)) - centred) * math.sqrt(2.0 * math.pi) \
        * ops.exp(0.5 * x_near * x_near)
    z_far = ops.max(-x, _X_MILLS)
    u_far = _mills_ratio(z_far) - math.sqrt(2.0 * math.pi) * ops.exp(0.5 * z_far * z_far + log_t)
    u = ops.where(ops.lt(x, -_X_MILLS), u_far, u_near)

    x = x - u / (1.0 + 0.5 * x * u)
    return ops.where(upper, -x, x)
