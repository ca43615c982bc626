"""Graded lateral node positions for the 2D meshes: fine at the rims, coarse far from them.

The fields change fastest across the rim of the beam spot (the edge of the influx) and
the rim of a back electrode smaller than the sample (the edge of the current path), so
the lateral spacing is ``rim_spacing_m`` there and grows geometrically away from them;
inside the spot and far outside, the fields vary only on the scale of the sample. Pure
numpy (no gmsh, no DOLFINx), so the grading can be tested on its own.
"""

from __future__ import annotations

import math

import numpy as np

from cait_fem.errors import ConfigError


def rims_inside(radius_m: float, rims_m) -> list[float]:
    """The rim radii strictly inside (0, radius_m), sorted, without duplicates (``None``
    entries, e.g. a spot covering the whole front, are dropped)."""
    rims: list[float] = []
    for r in sorted(float(r) for r in rims_m if r is not None):
        if 0.0 < r < radius_m * (1.0 - 1e-12) and (not rims or r - rims[-1] > 1e-12 * radius_m):
            rims.append(r)
    return rims


def _graded_cells(length_m: float, rim_spacing_m: float, growth_ratio: float, max_spacing_m: float) -> list[float]:
    """Cell sizes filling ``length_m`` from a rim outward: rim_spacing_m, growing by
    growth_ratio per cell up to max_spacing_m; the last cell takes the remainder, or is
    merged into its neighbour when it would be less than half of it (no sliver cell)."""
    cells: list[float] = []
    h, covered = rim_spacing_m, 0.0
    while covered + h < length_m * (1.0 - 1e-12):
        cells.append(h)
        covered += h
        h = min(h * growth_ratio, max_spacing_m)
    last = length_m - covered
    if cells and last < 0.5 * cells[-1]:
        cells[-1] += last
    else:
        cells.append(last)
    return cells


def lateral_nodes_m(radius_m: float, rims_m, rim_spacing_m: float, growth_ratio: float,
                    max_spacing_m: float) -> np.ndarray:
    """Node positions [m] ascending from 0 (the axis) to ``radius_m`` (the side).

    Every rim of ``rims_m`` inside (0, radius_m) is a node; the spacing there is
    ``rim_spacing_m`` and grows by ``growth_ratio`` per cell away from the nearest rim, up
    to ``max_spacing_m``. Between two rims the grading is symmetric about the midpoint.
    Without rims (a spot and an electrode covering the whole face) the spacing is uniform,
    about ``max_spacing_m``, with at least two cells."""
    for name, value in (("radius_m", radius_m), ("rim_spacing_m", rim_spacing_m),
                        ("max_spacing_m", max_spacing_m)):
        if not (isinstance(value, (int, float)) and math.isfinite(value) and value > 0):
            raise ConfigError(f"lateral {name} = {value!r} is not allowed: must be a finite number > 0")
    if not (isinstance(growth_ratio, (int, float)) and 1.0 <= growth_ratio <= 2.0):
        raise ConfigError(f"lateral growth_ratio = {growth_ratio!r} is not allowed: must lie in [1, 2]")
    rims = rims_inside(radius_m, rims_m)
    if not rims:
        n = max(2, math.ceil(radius_m / max_spacing_m - 1e-9))
        return np.linspace(0.0, radius_m, n + 1)
    h = min(rim_spacing_m, max_spacing_m)
    nodes = [0.0]
    breaks = [0.0] + rims + [radius_m]
    for i, (a, b) in enumerate(zip(breaks[:-1], breaks[1:])):
        left_rim, right_rim = i > 0, i + 1 < len(breaks) - 1
        if left_rim and right_rim:  # grade from both ends, mirrored about the midpoint
            half = _graded_cells(0.5 * (b - a), h, growth_ratio, max_spacing_m)
            cells = half + half[::-1]
        elif left_rim:
            cells = _graded_cells(b - a, h, growth_ratio, max_spacing_m)
        else:  # the segment from the axis to the first rim grows toward the axis
            cells = _graded_cells(b - a, h, growth_ratio, max_spacing_m)[::-1]
        inner = a + np.cumsum(cells[:-1])
        nodes.extend(inner.tolist())
        nodes.append(b)  # the rim (or the side) exactly, not a + sum(cells)
    return np.asarray(nodes)
