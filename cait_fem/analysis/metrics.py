"""Depth-profile analysis (docs/model.md sections 6 and 8.3), pure numpy.

Profiles are nodal values theta(x) = n / n_bg on depths ``depth`` [m] sorted ascending
(0 = front surface), linear between nodes. The definitions follow docs/model.md section 8.3:

- x_50: the first depth where the total foreign fraction drops below 0.5;
- plateau: the median over depth of the native fraction in [0, 0.9 x_50], i.e. the level
  below which theta_native lies on half of that depth range (the plateau is a slow ramp,
  the median is robust to its ends). It is taken over the piecewise-linear profile, not
  over the nodes: graded meshes put many nodes into the first nanometres, where
  theta_native is lowest, and a median over nodes moved with the grading;
- front position: the first crossing of theta_native = (plateau + 1) / 2 beyond 0.5 x_50;
- front width: x(90 %) - x(10 %) of the rise from the plateau to 1, both beyond 0.5 x_50.

Where a quantity does not exist yet (no foreign-rich surface layer, no rise) it is NaN.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

__all__ = ["x50", "depth_median", "plateau_level", "front_position", "front_width", "profile_metrics",
           "excess_charge", "integrate_lumped"]


def _crossing(x0, x1, y0, y1, level) -> float:
    return float(x0 + (level - y0) * (x1 - x0) / (y1 - y0))


def x50(depth, theta_foreign) -> float:
    """First depth [m] where ``theta_foreign`` < 0.5, interpolated linearly between the
    last node at or above 0.5 and the first below it. NaN if the surface value is already
    below 0.5 or the fraction never drops below 0.5."""
    depth, f = np.asarray(depth, dtype=float), np.asarray(theta_foreign, dtype=float)
    below = np.flatnonzero(f < 0.5)
    if below.size == 0 or below[0] == 0:
        return float("nan")
    i = below[0]
    return _crossing(depth[i - 1], depth[i], f[i - 1], f[i], 0.5)


def depth_median(depth, values, start: float, end: float) -> float:
    """Median over depth of the piecewise-linear profile ``values`` on [``start``, ``end``]
    [m]: the level m for which values < m on exactly half of the interval's length. It
    does not depend on where the nodes are, only on the profile; NaN for an empty interval."""
    depth, values = np.asarray(depth, dtype=float), np.asarray(values, dtype=float)
    if not (np.isfinite(start) and np.isfinite(end) and end > start):
        return float("nan")
    inner = (depth > start) & (depth < end)
    x = np.concatenate(([start], depth[inner], [end]))
    y = np.interp(x, depth, values)
    lo, hi = np.minimum(y[:-1], y[1:]), np.maximum(y[:-1], y[1:])
    length = np.diff(x)
    flat = hi == lo

    def below(level):  # depth on which the profile is < level (linear within each cell)
        part = np.where(flat, (lo < level).astype(float),
                        np.clip((level - lo) / np.where(flat, 1.0, hi - lo), 0.0, 1.0))
        return float(np.sum(length * part))

    half = 0.5 * (end - start)
    a, b = float(lo.min()), float(hi.max())
    if a == b:
        return a
    # below() is continuous and non-decreasing in the level: bisect to round-off
    for _ in range(200):
        mid = 0.5 * (a + b)
        if mid in (a, b):
            break
        a, b = (mid, b) if below(mid) < half else (a, mid)
    return 0.5 * (a + b)


def plateau_level(depth, theta_native, theta_foreign) -> float:
    """Median over depth of ``theta_native`` on [0, 0.9 x_50] (:func:`depth_median`);
    NaN without x_50."""
    x = x50(depth, theta_foreign)
    return depth_median(depth, theta_native, 0.0, 0.9 * x) if np.isfinite(x) else float("nan")


def _first_reach(depth, values, level, start) -> float:
    """First depth >= ``start`` where the linear interpolant of ``values`` reaches ``level``
    from below (``start`` itself if it is already there); NaN if it never does."""
    if not np.isfinite(start) or not np.isfinite(level):
        return float("nan")
    beyond = depth > start
    xs = np.concatenate(([start], depth[beyond]))
    vs = np.concatenate(([np.interp(start, depth, values)], values[beyond]))
    reached = np.flatnonzero(vs >= level)
    if reached.size == 0:
        return float("nan")
    j = reached[0]
    return float(start) if j == 0 else _crossing(xs[j - 1], xs[j], vs[j - 1], vs[j], level)


def front_position(depth, theta_native, plateau: float, x50_m: float) -> float:
    """First crossing [m] of theta_native = (plateau + 1) / 2 beyond 0.5 ``x50_m``."""
    depth, native = np.asarray(depth, dtype=float), np.asarray(theta_native, dtype=float)
    return _first_reach(depth, native, 0.5 * (plateau + 1.0), 0.5 * x50_m)


def rise_width(depth, theta_native, plateau: float, x50_m: float, low: float, high: float) -> float:
    """x(high) - x(low) [m] of the native rise from ``plateau`` to 1 (fractions of the rise),
    beyond 0.5 ``x50_m``."""
    depth, native = np.asarray(depth, dtype=float), np.asarray(theta_native, dtype=float)
    rise = 1.0 - plateau
    x_low = _first_reach(depth, native, plateau + low * rise, 0.5 * x50_m)
    x_high = _first_reach(depth, native, plateau + high * rise, 0.5 * x50_m)
    return x_high - x_low


def front_width(depth, theta_native, plateau: float, x50_m: float) -> float:
    """x(90 %) - x(10 %) [m] of the native rise from ``plateau`` to 1, beyond 0.5 ``x50_m``."""
    return rise_width(depth, theta_native, plateau, x50_m, 0.1, 0.9)


def profile_metrics(depth_m, theta_native, theta_foreign_total) -> dict[str, float]:
    """plateau_native [-], x50_m, front_position_m, front_width_m [m] of one profile
    (NaN where undefined, e.g. before a foreign-rich layer has formed)."""
    x = x50(depth_m, theta_foreign_total)
    plateau = plateau_level(depth_m, theta_native, theta_foreign_total)
    return {"plateau_native": plateau, "x50_m": x,
            "front_position_m": front_position(depth_m, theta_native, plateau, x),
            "front_width_m": front_width(depth_m, theta_native, plateau, x)}


def excess_charge(theta_by_species, charge_numbers, native_name=None) -> np.ndarray:
    """Local excess charge (sum_i z_i n_i - z_native n_bg) / n_bg = sum_i z_i theta_i - z_native.

    The immobile background carries -z_native e n_bg, which neutralises the initial state
    n_native = n_bg (for z_native = 1 this is docs/model.md section 6's (sum_i z_i n_i - n_bg) / n_bg).
    Either dicts keyed by species name (``native_name`` required), or an array with the
    species on axis 0 and matching charge numbers, the native species first (as in
    :class:`cait_fem.output.result.Result`).
    """
    if isinstance(theta_by_species, Mapping):
        if native_name is None:
            raise ValueError("native_name is required when theta_by_species is a dict")
        total = sum(charge_numbers[name] * np.asarray(theta, dtype=float)
                    for name, theta in theta_by_species.items())
        return total - charge_numbers[native_name]
    theta = np.asarray(theta_by_species, dtype=float)
    z = np.asarray(charge_numbers, dtype=float).reshape((-1,) + (1,) * (theta.ndim - 1))
    return np.sum(z * theta, axis=0) - z[0]


def integrate_lumped(depth, values) -> np.ndarray:
    """Integral over depth of nodal ``values`` (last axis) with lumped P1 mass, which in 1D
    is the trapezoid rule. [values] * m."""
    depth, values = np.asarray(depth, dtype=float), np.asarray(values, dtype=float)
    return np.sum(0.5 * np.diff(depth) * (values[..., 1:] + values[..., :-1]), axis=-1)
