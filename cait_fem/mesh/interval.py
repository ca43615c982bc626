"""The 1D sample as a DOLFINx interval mesh on given node depths (see depth_grading)."""

from __future__ import annotations

import numpy as np

from . import tags


def create_interval_mesh(comm, nodes: np.ndarray):
    """A DOLFINx interval mesh with the given node coordinates (dimensionless), distributed
    over ``comm``. Rank 0 provides the topology, the partitioner distributes it."""
    import basix.ufl
    from dolfinx import mesh as dmesh

    if comm.rank == 0:
        x = np.asarray(nodes, dtype=np.float64).reshape(-1, 1)
        n = len(nodes) - 1
        cells = np.stack([np.arange(n), np.arange(1, n + 1)], axis=1).astype(np.int64)
    else:
        x = np.zeros((0, 1), dtype=np.float64)
        cells = np.zeros((0, 2), dtype=np.int64)
    element = basix.ufl.element("Lagrange", "interval", 1, shape=(1,))
    return dmesh.create_mesh(comm, cells, element, x)


def tag_ends(domain, x_back: float):
    """Facet tags of an interval mesh: the front (x = 0) :data:`tags.BEAM_SPOT`, the back
    (x = ``x_back``) :data:`tags.BACK_ELECTRODE`."""
    from dolfinx import mesh as dmesh

    fdim = domain.topology.dim - 1
    front = dmesh.locate_entities_boundary(domain, fdim, lambda x: np.isclose(x[0], 0.0))
    back = dmesh.locate_entities_boundary(domain, fdim, lambda x: np.isclose(x[0], x_back))
    idx = np.concatenate([front, back]).astype(np.int32)
    vals = np.concatenate([np.full(len(front), tags.BEAM_SPOT),
                           np.full(len(back), tags.BACK_ELECTRODE)]).astype(np.int32)
    order = np.argsort(idx)
    return dmesh.meshtags(domain, fdim, idx[order], vals[order])
