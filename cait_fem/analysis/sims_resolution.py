"""ToF-SIMS depth resolution: what a measured depth profile sees of a model profile.

Sputter depth profiling mixes the signal of neighbouring depths (atomic mixing, crater
roughness), so the measured value at depth z is the model profile convolved with a
Gaussian of standard deviation ``sigma_m``. The sample ends at the front surface: there
is no signal from x < 0, so the kernel is cut at x = 0 and renormalised,

    result(z) = int_0^inf f(x) g(z - x) dx / int_0^inf g(z - x) dx.

A model profile f is piecewise linear between its nodes ``depth_m`` (first node at 0)
and constant at its last value beyond the last node, as the FEM solution is. For such f
the integral has a closed form per segment in the normal CDF and PDF, so
:func:`broaden` is exact, not a quadrature, however fine or coarse the mesh is.

For very many data depths (more than :data:`INTERPOLATE_ABOVE` and four times the grid)
:func:`model_at_data` evaluates :func:`broaden` exactly on a grid of spacing sigma / 20
over the data range and interpolates with a cubic spline: the broadened curve is smooth
on the scale sigma, so the spline's error stays below 1e-7 of the profile's range.
"""

from __future__ import annotations

import math

import numpy as np
from scipy.special import erfcx, ndtr

__all__ = ["broaden", "model_at_data", "KERNEL_HALF_WIDTH"]

# Segments further than this many sigma from the evaluation point are left out: the
# Gaussian mass beyond 8 sigma is 6e-16, below rounding of the kept sum.
KERNEL_HALF_WIDTH = 8.0

_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)

# model_at_data: at least this many evaluation depths before a grid is considered, so
# ordinary profiles (1e1-1e4 rows) are always evaluated exactly, point by point.
INTERPOLATE_ABOVE = 20_000
# Grid spacing sigma / 20: the cubic-spline error of a Gaussian-smoothed curve is about
# (5/384) h^4 max|f''''| <= 1e-7 of the profile's range, far below SIMS noise ...
GRID_POINTS_PER_SIGMA = 20
# ... and a grid only when it has at most a quarter as many depths as the data.
GRID_COST_FACTOR = 4


def _check_profile(depth_m, values) -> tuple[np.ndarray, np.ndarray]:
    x, f = np.asarray(depth_m, dtype=float), np.asarray(values, dtype=float)
    if x.ndim != 1 or x.shape != f.shape or x.size == 0:
        raise ValueError(f"depth_m and values must be 1-D arrays of one length >= 1, "
                         f"got shapes {x.shape} and {f.shape}")
    if not (np.all(np.isfinite(x)) and np.all(np.isfinite(f))):
        raise ValueError("depth_m and values must be finite")
    if x[0] != 0.0:
        raise ValueError(f"the first model node must be at the surface, depth 0; got {x[0]!r} m")
    if np.any(np.diff(x) <= 0.0):
        raise ValueError("depth_m must be strictly increasing")
    return x, f


def _upper_tail_and_pdf(u: np.ndarray, t0: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Q(u) = 1 - Phi(u) and phi(u), both divided by exp(-t0^2 / 2), for t0 >= 0 (per
    entry; where t0 > 0, u >= t0). The scaling keeps the ratio finite for z many sigma
    outside the sample (t0 = -z / sigma), where both integrals underflow unscaled."""
    tail = ndtr(-u)
    pdf = np.exp(-0.5 * u * u)
    scaled = t0 > 0.0
    if scaled.any():
        us, ts = u[scaled], t0[scaled]
        e = np.exp(-0.5 * (us - ts) * (us + ts))
        # Q(u) = erfcx(u / sqrt 2) exp(-u^2 / 2) / 2
        tail[scaled] = 0.5 * erfcx(us / math.sqrt(2.0)) * e
        pdf[scaled] = e
    return tail, pdf * _INV_SQRT_2PI


def broaden(depth_m, values, sigma_m: float, at_m) -> np.ndarray:
    """The piecewise-linear profile (``depth_m`` [m], ``values``) convolved with a Gaussian
    of standard deviation ``sigma_m`` [m], the kernel cut at the surface and renormalised
    (module docstring), evaluated at the depths ``at_m`` [m] (any real values; the shape
    of ``at_m`` is kept). ``sigma_m`` = 0 is linear interpolation with constant
    extrapolation, as :func:`numpy.interp`."""
    x, f = _check_profile(depth_m, values)
    if not (math.isfinite(sigma_m) and sigma_m >= 0.0):
        raise ValueError(f"sigma_m = {sigma_m!r} is not allowed: must be finite and >= 0")
    at = np.asarray(at_m, dtype=float)
    if not np.all(np.isfinite(at)):
        raise ValueError("at_m must be finite")
    if sigma_m == 0.0:
        return np.interp(at, x, f)
    z = at.ravel()
    s = float(sigma_m)

    # Segment k = [x_k, x_k+1]. For z < 0 the renormalised kernel sits at the surface, so
    # the window is centred on max(z, 0).
    centre = np.maximum(z, 0.0)
    first = np.searchsorted(x[1:], centre - KERNEL_HALF_WIDTH * s, side="right")
    stop = np.searchsorted(x[:-1], centre + KERNEL_HALF_WIDTH * s, side="left")
    count = np.maximum(stop - first, 0)

    # Ragged (point, node) pairs: nodes first .. first + count of each point, flattened.
    n_nodes = np.where(count > 0, count + 1, 0)
    point = np.repeat(np.arange(z.size), n_nodes)
    group_start = np.cumsum(n_nodes) - n_nodes
    node = np.repeat(first, n_nodes) + np.arange(point.size) - np.repeat(group_start, n_nodes)

    t0 = np.maximum(-z / s, 0.0)
    u = (x[node] - z[point]) / s
    tail, pdf = _upper_tail_and_pdf(u, t0[point])

    # Nodes j and j + 1 bound a segment unless j is the last node of its point's group.
    seg = np.ones(max(point.size - 1, 0), dtype=bool)
    ends = group_start[count > 0] + count[count > 0]
    seg[ends[:-1]] = False
    fn = f[node]
    du = np.where(seg, np.diff(u), 1.0)
    mass = np.where(seg, tail[:-1] - tail[1:], 0.0)
    # int_{u0}^{u1} (f0 + df/du (u - u0)) phi(u) du
    part = fn[:-1] * mass + np.diff(fn) / du * (pdf[:-1] - pdf[1:] - u[:-1] * mass)
    part[~seg] = 0.0

    # Beyond the last node f is constant: its weight is the scaled Q there, always kept.
    last_tail, _ = _upper_tail_and_pdf((x[-1] - z) / s, t0)
    numerator = np.bincount(point[:-1], weights=part, minlength=z.size) + f[-1] * last_tail
    denominator = np.bincount(point[:-1], weights=mass, minlength=z.size) + last_tail
    return (numerator / denominator).reshape(at.shape)


def model_at_data(depth_m, values, data_depth_m, sigma_m: float = 0.0,
                  offset_m: float = 0.0) -> np.ndarray:
    """The model profile as a SIMS measurement at the nominal data depths ``data_depth_m``
    [m] sees it: :func:`broaden` at ``data_depth_m - offset_m``.

    Sign convention: model depth = data depth - ``offset_m``. With ``offset_m`` > 0 the
    data depth scale runs deeper than the model's (e.g. surface roughness or
    pre-sputtering before the first recorded point), so a model feature at depth d appears
    in the data at d + ``offset_m``."""
    if not math.isfinite(offset_m):
        raise ValueError(f"offset_m = {offset_m!r} is not allowed: must be finite")
    at = np.asarray(data_depth_m, dtype=float) - offset_m
    grid = _interpolation_grid(at, sigma_m)
    if grid is None:
        return broaden(depth_m, values, sigma_m, at)
    # Many more points than the broadened curve has features: the exact sum costs every
    # point ~16 sigma worth of mesh nodes (60 s per evaluation for 1e6 SIMS rows), but the
    # curve is smooth on the scale sigma: evaluate it exactly on a grid and interpolate
    # (accuracy in the module docstring).
    from scipy.interpolate import CubicSpline

    return CubicSpline(grid, broaden(depth_m, values, sigma_m, grid))(at)


def _interpolation_grid(at: np.ndarray, sigma_m: float) -> np.ndarray | None:
    """Depths [m] on which :func:`model_at_data` evaluates the broadened profile before
    interpolating to ``at`` [m], or None to evaluate ``at`` directly (sigma 0, few points,
    or a grid not much smaller than ``at``)."""
    if not (math.isfinite(sigma_m) and sigma_m > 0.0) or at.size < INTERPOLATE_ABOVE \
            or not np.all(np.isfinite(at)):
        return None
    lo, hi = float(at.min()), float(at.max())
    count = int(math.ceil((hi - lo) / (sigma_m / GRID_POINTS_PER_SIGMA))) + 1
    if count < 4 or GRID_COST_FACTOR * count > at.size:
        return None
    return np.linspace(lo, hi, count)
