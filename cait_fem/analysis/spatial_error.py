"""The spatial error of depth profiles, estimated by Richardson extrapolation (pure numpy).

A run on nodes x_0 < x_1 < ... and a second one on every other node (spacing 2h) taking
the same time steps differ, at the common nodes, by (2^p - 1) times the error of the
finer run, p the order of the scheme in the spacing: e_h ~ (u_2h - u_h) / (2^p - 1). The
exponentially fitted P1 scheme is second order (docs/numerics.md section 4 has the
measurements that justify p = 2 at the default resolution). Both runs take the same time
steps, so their time errors cancel in the difference and only the spatial part is left.

Errors are in theta units, over the *profile range* of each output time: from the surface
to 1.5 times the depth where the total foreign fraction falls below 1/2 (x_50), where
profiles differ from the pristine glass; the RMS is over depth, not over nodes.
"""

from __future__ import annotations

import math

import numpy as np

from . import metrics

__all__ = ["profile_range_m", "profile_difference", "richardson_estimate", "ORDER"]

#: order of the depth discretisation in the spacing (docs/numerics.md section 4)
ORDER = 2
#: the profile range ends at this multiple of x_50
RANGE_FACTOR = 1.5


def profile_range_m(depth_m, theta) -> float:
    """End [m] of the depth range where the profile ``theta`` (species x depth, native
    first) differs from the pristine glass: 1.5 x_50 of the total foreign fraction; without
    a foreign-rich layer, 1.5 times the depth where the foreign total falls below 0.01
    (the whole sample if it never does); never less than the first five nodes."""
    depth = np.asarray(depth_m, dtype=float)
    foreign = np.asarray(theta, dtype=float)[1:].sum(axis=0)
    x = metrics.x50(depth, foreign)
    if not math.isfinite(x):
        below = np.flatnonzero(foreign < 1e-2)
        x = depth[below[0]] if below.size and below[0] > 0 else depth[-1] / RANGE_FACTOR
    # at least the first few nodes, so that an RMS over the range exists at early times
    return float(min(max(RANGE_FACTOR * x, depth[min(4, depth.size - 1)]), depth[-1]))


def profile_difference(depth_m, theta, other_depth_m, other_theta, end_m: float) -> tuple[float, float]:
    """(RMS over depth, max) on [0, ``end_m``] of ``other_theta`` - ``theta`` at the nodes
    ``depth_m`` (the other profile interpolated linearly there; the largest over species).
    ``theta``: species x depth."""
    depth = np.asarray(depth_m, dtype=float)
    keep = depth <= end_m
    x = depth[keep]
    if x.size < 2:
        return float("nan"), float("nan")
    rms = peak = 0.0
    for own, other in zip(np.asarray(theta, dtype=float), np.asarray(other_theta, dtype=float)):
        e = np.interp(x, other_depth_m, other) - own[keep]
        rms = max(rms, math.sqrt(metrics.integrate_lumped(x, e**2) / (x[-1] - x[0])))
        peak = max(peak, float(np.max(np.abs(e))))
    return rms, peak


def richardson_estimate(depth_m, theta, coarse_depth_m, coarse_theta, ratio: float = 2.0,
                        order: int = ORDER) -> dict:
    """The estimated spatial error of the profiles ``theta`` (outputs x species x depth on
    ``depth_m`` [m]) from a run on the coarser nodes ``coarse_depth_m`` (spacing ``ratio``
    times larger; the same output times): per output time the RMS over the profile range
    and the largest pointwise value, ``{"rms": [...], "max": [...], "range_m": [...]}``,
    compared at the coarse nodes (where both are nodal values)."""
    scale = 1.0 / (ratio**order - 1.0)
    rms, peak, ranges = [], [], []
    for fine, coarse in zip(np.asarray(theta, dtype=float), np.asarray(coarse_theta, dtype=float)):
        end = profile_range_m(depth_m, fine)
        # the fine profile at the coarse nodes, so that only nodal values are compared
        fine_at_coarse = np.array([np.interp(coarse_depth_m, depth_m, s) for s in fine])
        r, m = profile_difference(coarse_depth_m, fine_at_coarse, coarse_depth_m, coarse, end)
        rms.append(r * scale)
        peak.append(m * scale)
        ranges.append(end)
    return {"rms": rms, "max": peak, "range_m": ranges}
