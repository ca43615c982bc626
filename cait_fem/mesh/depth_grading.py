"""Graded 1D depth mesh: fine and uniform where the profiles live, geometric toward the bulk.

The front of a CAIT profile is a few nm wide and travels ~100 nm, so the spacing must be
small over the whole depth the front may reach (docs/model.md section 8.5), not only at the
surface; beyond that the fields are smooth (ohmic bulk) and the spacing grows by a fixed
ratio up to the bulk spacing, which is kept to the back electrode.
"""

from __future__ import annotations

import numpy as np

from cait_fem.case.estimates import check_mesh_size
from cait_fem.case.experiment import MeshSettings
from cait_fem.case.geometry import Geometry


def graded_nodes_m(thickness_m: float, settings: MeshSettings) -> np.ndarray:
    """Node depths [m], ascending from 0 (front) to ``thickness_m`` (back electrode):
    geometric from ``surface_spacing_m`` at the surface up to ``front_spacing_m``, uniform
    to ``fine_depth_m``, geometric again up to ``bulk_spacing_m``. ConfigError, before any
    array is built, when the count exceeds ``settings.max_cells``."""
    check_mesh_size(Geometry(), thickness_m, settings)
    h0 = settings.front_spacing_m
    # The surface space-charge layer is a Debye length (~0.03 nm) thick: grade into it.
    surface = [0.0]
    h = min(settings.surface_spacing_m, h0)
    while h < h0:
        surface.append(surface[-1] + h)
        h *= settings.growth_ratio
    start = surface[-1]
    fine_end = min(settings.fine_depth_m, thickness_m)
    n_fine = max(int(round((fine_end - start) / h0)), 1)
    nodes = surface[:-1] + list(start + h0 * np.arange(n_fine + 1))
    h = h0
    while nodes[-1] < thickness_m:
        h = min(h * settings.growth_ratio, settings.bulk_spacing_m)
        nodes.append(nodes[-1] + h)
    x = np.asarray(nodes)
    x[-1] = thickness_m
    # A sliver cell at the back would spoil the grading; merge it into its neighbour.
    if len(x) > 2 and x[-1] - x[-2] < 0.5 * (x[-2] - x[-3]):
        x = np.delete(x, -2)
    if x[-2] >= thickness_m:  # fine region reached the back: drop overshooting nodes
        x = np.append(x[x < thickness_m], thickness_m)
    return x
