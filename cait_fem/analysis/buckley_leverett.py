"""Electroneutral, diffusion-free (Buckley-Leverett) displacement: docs/model.md section 8.4.

When the space charge is negligible and the field dominates diffusion, the foreign ion
displaces the native one like water displacing oil. With s = 1 - theta the foreign
fraction, the foreign ion carries the fraction

    F(s) = D_f s / (D_f s + D_n(theta) theta)

of the current, and a state s travels to x(s) = q F'(s), q the landed foreign amount per
area divided by n_bg [m]. The front is Welge's tangent from s = 0: F(s*)/s* = F'(s*), i.e.
theta* minimises G(theta) = D_f (1 - theta) + theta D_n(theta), where
d(theta D_n)/dtheta = D_f. The front then sits at x = q D_f / G(theta*).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy import optimize

__all__ = ["WelgeFront", "welge_state", "front_position_m", "profile", "welge_front", "flat_plateau_bound_m2_s",
           "displacement_profile"]

DiffusionOfTheta = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class WelgeFront:
    """theta_star: native fraction just behind the front [-]; D_native_at_star_m2_s:
    D_n(theta*) [m^2/s]; front_position_m: x of the front for the given landed amount [m]."""

    theta_star: float
    D_native_at_star_m2_s: float
    front_position_m: float


def welge_state(D_native: DiffusionOfTheta, D_foreign_m2_s: float) -> float:
    """theta* = argmin over theta in [0, 1] of D_f (1 - theta) + theta D_n(theta).

    The global minimum is located on a dense grid (log-spaced down to 1e-12, linear up to
    1) and refined by a bounded scalar minimisation between the grid neighbours. Returns
    1.0 if the minimum is at theta = 1 (no displacement front: the native ion is the slower
    one everywhere) and 0.0 if it is at the smallest grid value (piston-like displacement:
    every native ion is replaced). ``D_native`` takes and returns arrays [m^2/s].
    """
    grid = np.unique(np.concatenate((np.logspace(-12, 0, 1201), np.linspace(0.0, 1.0, 2001)[1:])))

    def G(theta):
        return D_foreign_m2_s * (1.0 - theta) + theta * np.asarray(D_native(theta), dtype=float)

    i = int(np.argmin(G(grid)))
    if i == grid.size - 1:
        return 1.0
    if i == 0:
        return 0.0
    lo, hi = grid[i - 1], grid[i + 1]
    found = optimize.minimize_scalar(lambda t: float(G(np.array([t]))[0]), bounds=(lo, hi),
                                     method="bounded", options={"xatol": 1e-12 * hi, "maxiter": 500})
    return float(found.x)


def front_position_m(theta_star: float, D_native_at_star_m2_s: float, D_foreign_m2_s: float,
                     landed_m: float) -> float:
    """x_front = q / (1 - theta* + theta* D_n(theta*) / D_f) [m]; ``landed_m`` = q."""
    return landed_m / (1.0 - theta_star + theta_star * D_native_at_star_m2_s / D_foreign_m2_s)


def profile(theta_grid, D_native: DiffusionOfTheta, dD_native_dtheta: DiffusionOfTheta,
            D_foreign_m2_s: float, landed_m: float, theta_star: float) -> np.ndarray:
    """Depth x(theta) = q F'(s) [m] of each native fraction behind the front (theta <=
    theta*), NaN for theta > theta* (ahead of the front theta = 1). Assumes F is concave
    on s > 1 - theta* (true for native D increasing with theta, as for an SED).

    F'(s) = D_f (G + s G'(theta)) / G^2 with G = D_f s + theta D_n and
    G'(theta) = -D_f + D_n + theta dD_n/dtheta; both callables take arrays [m^2/s].
    """
    theta = np.asarray(theta_grid, dtype=float)
    s = 1.0 - theta
    D_n = np.asarray(D_native(theta), dtype=float)
    G = D_foreign_m2_s * s + theta * D_n
    dG = -D_foreign_m2_s + D_n + theta * np.asarray(dD_native_dtheta(theta), dtype=float)
    x = landed_m * D_foreign_m2_s * (G + s * dG) / G**2
    return np.where(theta <= theta_star, x, np.nan)


def welge_front(D_native: DiffusionOfTheta, D_foreign_m2_s: float, landed_m: float) -> WelgeFront:
    """The Welge state, D_n there and the front position for landed amount q = ``landed_m``."""
    theta_star = welge_state(D_native, D_foreign_m2_s)
    D_star = float(np.asarray(D_native(np.array([theta_star])), dtype=float)[0])
    return WelgeFront(theta_star, D_star, front_position_m(theta_star, D_star, D_foreign_m2_s, landed_m))


def flat_plateau_bound_m2_s(D_native: DiffusionOfTheta, theta_immobile: float) -> float:
    """Largest D_foreign [m^2/s] for which a native law cut off at ``theta_immobile`` (D = 0
    at and below it) leaves a flat plateau at theta_imm (docs/model.md section 3.10).

    Welge's tangent from s = 0 then touches F at s* = 1 - theta_imm, where F = 1, and the
    front jumps from 1 straight to theta_imm, if F(s) <= s / s* for every s < s*, i.e.
    theta D_n(theta) >= D_f (theta - theta_imm) for theta in (theta_imm, 1]:

        D_flat = min over theta in (theta_imm, 1] of theta D_n(theta) / (theta - theta_imm).

    Above it the states between theta_imm and the tangent point fan out into a ramp that
    stretches as the front advances. ``D_native``: the law above the cut-off (for an SED
    with an immobile fraction, the SED without it), taking and returning arrays [m^2/s].
    Evaluated on a grid dense near theta_imm (geometric in theta - theta_imm from 1e-9).
    """
    theta = theta_immobile + np.unique(np.concatenate((np.geomspace(1e-9, 1.0, 4001),
                                                       np.linspace(0.0, 1.0, 4001)[1:])))
    theta = theta[theta <= 1.0]
    ratio = theta * np.asarray(D_native(theta), dtype=float) / (theta - theta_immobile)
    return float(ratio.min())


def displacement_profile(depth_m, D_native: DiffusionOfTheta, D_foreign_m2_s: float, landed_m: float,
                         points: int = 20001) -> np.ndarray:
    """Native fraction theta(x) [-] at depths ``depth_m`` [m] of the displacement from
    theta = 0 at the surface into theta = 1, for any D_native: the entropy solution of
    ds/dt + dF(s)/dq = 0 follows the upper concave envelope of F on [0, 1] (Oleinik):
    where the envelope is F, a fan with x = q F'(s); where it is a chord, a shock. An SED
    alone gives one chord (the front, Welge's tangent) and a fan; an immobile fraction
    adds a chord from the surface state, the plateau at theta_imm, to the fan. ``points``:
    grid in s (the envelope's slopes are chord slopes of neighbouring points).
    """
    s = np.concatenate((np.linspace(0.0, 1.0, points), [1.0 - 1e-12]))
    s = np.unique(s)
    theta = 1.0 - s
    G = D_foreign_m2_s * s + theta * np.asarray(D_native(theta), dtype=float)
    F = np.where(G > 0, D_foreign_m2_s * s / np.where(G > 0, G, 1.0), 1.0)
    hull = [0]
    for i in range(1, s.size):  # upper hull, monotone chain
        while len(hull) >= 2:
            a, b = hull[-2], hull[-1]
            if (F[b] - F[a]) * (s[i] - s[a]) <= (F[i] - F[a]) * (s[b] - s[a]):
                hull.pop()
            else:
                break
        hull.append(i)
    hull = np.array(hull)
    slopes = np.diff(F[hull]) / np.diff(s[hull])  # decreasing along s
    speed = np.asarray(depth_m, dtype=float) / landed_m
    # the first hull vertex whose right chord is slower than x / q: the state at x
    k = np.searchsorted(-slopes, -speed, side="left")
    return 1.0 - s[hull[np.minimum(k, hull.size - 1)]]
