"""Depth columns of a layered sample mesh (pure numpy; no DOLFINx).

The sample meshes of :mod:`cait_fem.mesh.gmsh_sample` are a lateral (2D or 1D) mesh extruded in
depth, so their nodes stand in columns: the same lateral position at every depth layer.
That structure is what makes the potential of the CPR preconditioner cheap to solve
(:mod:`cait_fem.solver.column_multigrid`): an exact solve along each column handles the nm-thin
layers under the front, and multigrid only has to coarsen laterally. These functions find
the columns from the node coordinates, and decide which MPI rank owns each whole column.
"""

from __future__ import annotations

import numpy as np


def find_columns(lateral: np.ndarray, depth: np.ndarray, tolerance: float):
    """Column of each node, or None if the nodes do not stand in columns.

    ``lateral``: n x k lateral coordinates (k = 0 in 1D: one column), ``depth``: n depth
    coordinates, ``tolerance``: lateral distance under which two nodes share a column (in
    the units of the coordinates; a small fraction of the smallest lateral spacing).
    Returns ``(column, n_layers)``: ``column[i]`` in 0..n_columns-1 for every node, and the
    number of nodes per column, which must be the same for every column (and at least 2),
    with distinct depths in each; otherwise None.

    Nodes are clustered one lateral axis at a time: sorted within their current cluster,
    split where the gap exceeds ``tolerance``. Extruded coordinates agree to round-off,
    while distinct columns are a mesh spacing apart, so the clusters are exact.
    """
    lateral = np.asarray(lateral, dtype=float).reshape(len(depth), -1)
    depth = np.asarray(depth, dtype=float)
    n = len(depth)
    if n == 0:
        return None
    column = np.zeros(n, dtype=np.int64)
    for axis in range(lateral.shape[1]):
        order = np.lexsort((lateral[:, axis], column))
        c, v = column[order], lateral[order, axis]
        new = np.empty(n, dtype=bool)
        new[0] = True
        new[1:] = (c[1:] != c[:-1]) | (np.diff(v) > tolerance)
        column[order] = np.cumsum(new) - 1
    counts = np.bincount(column)
    n_layers = int(counts[0])
    if n_layers < 2 or np.any(counts != n_layers):
        return None
    order = np.lexsort((depth, column))
    same_column = column[order][1:] == column[order][:-1]
    if np.any(same_column & (np.diff(depth[order]) <= 0.0)):
        return None
    return column, n_layers


def column_owners(column: np.ndarray, rank: np.ndarray, n_ranks: int) -> np.ndarray:
    """Rank that owns each column: the one that owns most of its nodes (``rank[i]``: owner
    of node i), the lowest such rank on a tie. A column cut by the mesh partition moves
    whole to one rank, so that line solves along it need no communication."""
    n_columns = int(column.max()) + 1 if len(column) else 0
    votes = np.bincount(column * n_ranks + rank, minlength=n_columns * n_ranks).reshape(n_columns, n_ranks)
    return np.argmax(votes, axis=1)
