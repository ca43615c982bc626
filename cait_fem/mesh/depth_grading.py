"""Graded 1D depth mesh: fine where fronts will pass, geometric toward the bulk.

The spacing follows :class:`cait_fem.case.resolution.DepthResolution`: geometric from
``mesh.surface_spacing_m`` at the surface (the Debye layer is ~0.03 nm thick) up to the
rule's spacing at that depth, then ``h(x) = front_spacing_m + spacing_slope * x`` (capped)
over the fine region where fronts travel (docs/numerics.md section 4), then geometric
with ``growth_ratio`` up to ``bulk_spacing_m``, kept to the back electrode.
"""

from __future__ import annotations

import numpy as np

from cait_fem.case.estimates import check_mesh_size
from cait_fem.case.experiment import MeshSettings
from cait_fem.case.geometry import Geometry
from cait_fem.case.resolution import DepthResolution, explicit_resolution


def graded_nodes_m(thickness_m: float, settings: MeshSettings, resolution: DepthResolution | None = None) -> np.ndarray:
    """Node depths [m], ascending from 0 (front) to ``thickness_m`` (back electrode).
    ``resolution``: the case's rule (``Experiment.depth_resolution``); without it, the
    explicit spacings of ``settings``. ConfigError, before any array is built, when the
    count exceeds ``settings.max_cells``."""
    res = resolution if resolution is not None else explicit_resolution(settings)
    check_mesh_size(Geometry(), thickness_m, settings, res)
    g = settings.growth_ratio
    h0, slope = res.front_spacing_m, res.spacing_slope
    surface = [0.0]
    h = min(settings.surface_spacing_m, h0)
    while h < h0:
        surface.append(surface[-1] + h)
        h *= g
    start = surface[-1]
    fine_end = min(res.fine_depth_m, thickness_m)
    if slope == 0.0:  # uniform: a whole number of cells up to fine_end
        n_fine = max(int(round((fine_end - start) / h0)), 1)
        nodes = surface[:-1] + list(start + h0 * np.arange(n_fine + 1))
        h = h0
    else:
        nodes = surface[:-1] + list(res.fine_nodes(start, fine_end))
        h = nodes[-1] - nodes[-2]
    while nodes[-1] < thickness_m:
        h = min(h * g, settings.bulk_spacing_m)
        nodes.append(nodes[-1] + h)
    x = np.asarray(nodes)
    x[-1] = thickness_m
    # A sliver cell at the back would spoil the grading; merge it into its neighbour.
    if len(x) > 2 and x[-1] - x[-2] < 0.5 * (x[-2] - x[-3]):
        x = np.delete(x, -2)
    if x[-2] >= thickness_m:  # fine region reached the back: drop overshooting nodes
        x = np.append(x[x < thickness_m], thickness_m)
    return x
