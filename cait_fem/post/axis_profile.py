"""The depth profile through the centre of the beam spot, gathered on every rank.

This is what a SIMS depth profile measures and what a 1D run computes, so a Result of any
dimension carries it as its ``depth_m``/``theta`` (the 1D analysis, metrics, plots and
fits then apply unchanged). In 1D it is the whole mesh: the owned nodes of all ranks,
sorted by depth once. In 2D/3D it is the state sampled along the axis (lateral
coordinates 0) at the depth layers of the mesh grading, which are nodes of the layered
meshes of :mod:`cait_fem.mesh.gmsh_sample`.
"""

from __future__ import annotations

import numpy as np


class AxisProfile:
    """``rows(u)``: the state rows (one per depth, components as in the forms) along the
    axis, on every rank; ``depth``: the dimensionless depths."""

    def __init__(self, forms, n_owned: int, layer_depths: np.ndarray, comm):
        self.comm, self.n_owned = comm, n_owned
        self.layout = forms.layout
        self.bs = self.layout.block_size
        domain = forms.domain
        if domain.topology.dim == 1:
            x = forms.V.tabulate_dof_coordinates()[:n_owned, 0]
            x_all = np.concatenate(comm.allgather(x))
            self._order = np.argsort(x_all, kind="stable")
            self.depth = x_all[self._order]
            self._sampler = None
        else:
            from .sampling import PointSampler, depth_line

            self.depth = np.asarray(layer_depths, dtype=float)
            self._sampler = PointSampler(domain, depth_line(domain, self.depth))

    def rows(self, u) -> np.ndarray:
        if self._sampler is not None:
            return self._sampler.values(u)
        owned = self.layout.rows(u.x.array)[: self.n_owned]
        return np.concatenate(self.comm.allgather(owned), axis=0)[self._order]
