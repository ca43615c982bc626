"""Column partition of a sample mesh over MPI ranks.

A CAIT sample is a thin layer problem: nm-thick cells under the front, um-thick ones in the
bulk, and the potential is fixed only at the back electrode. DOLFINx's default graph
partition cuts such a mesh in depth (on 2 ranks one rank owned only the first 70 nm), so
one rank's subdomain has a floating potential and its strongest couplings (through the
thin layers) are cut. Every preconditioner that works rank by rank degrades there; the
CPR potential multigrid needed 20x more iterations than in serial (docs/numerics.md
section 9). Cutting the sample laterally instead -- columns through the whole depth, by
recursive coordinate bisection of the cell centroids in the lateral coordinates -- keeps
every depth line on one rank and gives each rank a piece of the back electrode.
"""

from __future__ import annotations

import numpy as np


def lateral_bisection(lateral: np.ndarray, nparts: int) -> np.ndarray:
    """Rank (0..nparts-1) of each point of ``lateral`` (n x k coordinates): recursive
    bisection along the coordinate of largest extent, at the quantile that balances the
    point counts (ranks get n / nparts points, +-1)."""
    dest = np.zeros(len(lateral), dtype=np.int32)
    _bisect(lateral, np.arange(len(lateral)), 0, nparts, dest)
    return dest


def _bisect(points, index, first, nparts, dest):
    if nparts == 1 or len(index) == 0:
        dest[index] = first
        return
    low = nparts // 2
    pts = points[index]
    axis = int(np.argmax(pts.max(axis=0) - pts.min(axis=0))) if pts.shape[1] > 1 else 0
    order = index[np.argsort(pts[:, axis], kind="stable")]
    cut = (len(order) * low) // nparts
    _bisect(points, order[:cut], first, low, dest)
    _bisect(points, order[cut:], first + low, nparts - low, dest)


def column_partitioner(x: np.ndarray, dimension: int):
    """A DOLFINx cell partitioner (for ``dolfinx.io.gmsh.model_to_mesh``) that assigns the
    simplices of a mesh whose input nodes are ``x`` (on the rank that holds the mesh;
    depth is coordinate ``dimension - 1``) to ranks by :func:`lateral_bisection` of their
    centroids. No ghost cells (DOLFINx's default ghost mode)."""
    from dolfinx.cpp.graph import AdjacencyList_int32

    def partition(comm, nparts, cell_types, cells):
        topology = np.asarray(cells[0], dtype=np.int64)
        if topology.size == 0:
            return AdjacencyList_int32(np.zeros((0, 1), dtype=np.int32))
        centroids = x[topology.reshape(-1, dimension + 1)].mean(axis=1)
        return AdjacencyList_int32(lateral_bisection(centroids[:, : dimension - 1], nparts).reshape(-1, 1))

    return partition
