"""Column multigrid: the potential solver of the CPR preconditioner on layered meshes.

A_p (:mod:`cait_fem.solver.cpr`) lives on a mesh that is nm-thin in depth under the front and um
wide laterally: cell aspect ratios up to 1e5, and a conductivity that jumps by orders of
magnitude across the replaced layer. Algebraic multigrid with point or rank-local
smoothers struggles there, and worse on several ranks (docs/numerics.md section 9).
On an extruded mesh the classical cure is tensor-product multigrid (Boerm & Hiptmair,
Numer. Algorithms 26, 2001): smooth with exact solves along every depth line, coarsen
only laterally. Both parts are robust for any depth/lateral anisotropy, and both are
independent of the MPI partition when every column lives on one rank -- which the CPR
layout guarantees -- so the iteration count is the same on any number of ranks.

- Rows of A_p are column-major: the ``n_layers`` nodes of a column, front to back, are
  consecutive, and a rank owns whole columns.
- Prolongation P = P_lateral (x) I: the columns are aggregated (greedily, as in
  smoothed-aggregation AMG's first phase, on the lateral graph of the rank's columns), and
  the piecewise-constant interpolation from the aggregates is smoothed by one Jacobi step
  of the depth-summed lateral conductance; every layer of a column interpolates from the
  same layer of the coarse columns. Coarse operators are Galerkin products, computed by
  PCMG; they keep the column structure and stay tridiagonal along each column.
- Smoother: Chebyshev (2 iterations) preconditioned by column-block Jacobi, the column
  blocks factored by LAPACK's tridiagonal LU (``dgttrf``) and applied in one call.
- Coarsest level (at most ``COARSE_COLUMNS`` columns in total): LU, redundant on every rank.

P is built once, from the first A_p's lateral conductances (any fixed P gives a correct
multigrid; the iterations per solve stayed flat as the conductivity changed, from the
pristine glass to 1000 s of beam, docs/numerics.md section 9). Every Jacobian then costs the Galerkin
products and the tridiagonal factorisations, both O(n).
"""

from __future__ import annotations

from mpi4py import MPI  # noqa: F401  (MPI is initialised by mpi4py before PETSc)

import numpy as np
import scipy.sparse as sp
from petsc4py import PETSc
from scipy.linalg import lapack

#: Total number of columns at which coarsening stops (the coarse LU then has this many
#: columns of ``n_layers`` unknowns)
COARSE_COLUMNS = 24
#: Chebyshev iterations per smoothing (pre and post)
SMOOTHING_STEPS = 2


def aggregate(graph: sp.csr_matrix) -> tuple[np.ndarray, int]:
    """Greedy aggregation of the vertices of a symmetric graph (no self loops): a vertex
    whose neighbours are all free founds an aggregate with them; the rest join a
    neighbouring aggregate (isolated vertices found their own). Returns the aggregate of
    each vertex and the number of aggregates."""
    n = graph.shape[0]
    ptr, nbr = graph.indptr, graph.indices
    agg = np.full(n, -1, dtype=np.int64)
    count = 0
    for v in range(n):
        around = nbr[ptr[v]:ptr[v + 1]]
        if agg[v] < 0 and np.all(agg[around] < 0):
            agg[v] = count
            agg[around] = count
            count += 1
    for v in np.flatnonzero(agg < 0):
        around = nbr[ptr[v]:ptr[v + 1]]
        joined = around[agg[around] >= 0]
        if len(joined):
            agg[v] = agg[joined[0]]
        else:
            agg[v] = count
            count += 1
    return agg, count


def _local_csr(A: PETSc.Mat):
    """CSR of the rank's diagonal block (local row and column numbers)."""
    block = A.getDiagonalBlock() if A.getComm().getSize() > 1 else A
    ptr, col, val = block.getValuesCSR()
    rows = np.repeat(np.arange(len(ptr) - 1), np.diff(ptr))
    return rows, col, val, len(ptr) - 1


def column_graph(A: PETSc.Mat, n_layers: int) -> sp.csr_matrix:
    """Lateral conductance between the rank's columns: the summed magnitude of A's entries
    coupling their nodes (symmetrised; zero diagonal)."""
    rows, col, val, n = _local_csr(A)
    a, b = rows // n_layers, col // n_layers
    keep = a != b
    n_columns = n // n_layers
    g = sp.csr_matrix((np.abs(val[keep]), (a[keep], b[keep])), shape=(n_columns, n_columns))
    return (0.5 * (g + g.T)).tocsr()


def _tentative(agg: np.ndarray, count: int) -> sp.csr_matrix:
    """Piecewise-constant prolongation from the aggregates."""
    n = len(agg)
    return sp.csr_matrix((np.ones(n), (np.arange(n), agg)), shape=(n, count))


def lateral_prolongation(graph: sp.csr_matrix, tentative: sp.csr_matrix) -> sp.csr_matrix:
    """Smoothed aggregation on the column graph: the piecewise-constant (tentative)
    prolongation smoothed by one damped Jacobi step of the graph Laplacian,
    (I - 2/3 D^-1 G) P_tent. Its rows sum to one, and it interpolates nearly linearly
    between aggregates, which keeps the iteration count from growing with the lateral
    size where lateral conduction dominates (the bulk); piecewise-constant interpolation
    does not (measured on a 2D section, depth/lateral ratio 1e-4: 25, 42, 67 iterations
    for 100, 300, 1000 columns)."""
    n = graph.shape[0]
    degree = np.asarray(graph.sum(axis=1)).ravel()
    inv = np.divide(1.0, degree, out=np.zeros(n), where=degree > 0)
    laplacian = sp.diags(degree) - graph
    return (tentative - (2.0 / 3.0) * sp.diags(inv) @ laplacian @ tentative).tocsr()


def prolongations(A: PETSc.Mat, n_layers: int, coarse_columns: int = COARSE_COLUMNS) -> list[PETSc.Mat]:
    """P_lateral (x) I for each coarsening, finest first, until at most ``coarse_columns``
    columns remain in total (or aggregation stops reducing them)."""
    comm = A.getComm().tompi4py()
    graph = column_graph(A, n_layers)
    result = []
    while True:
        total = comm.allreduce(graph.shape[0])
        if total <= coarse_columns:
            break
        agg, count = aggregate((graph > 0).astype(float).tocsr())
        if comm.allreduce(count) == total:
            break
        first = comm.scan(count) - count
        tentative = _tentative(agg, count)
        lateral = lateral_prolongation(graph, tentative).tocoo()
        # (x) I: fine node (c, k) takes coarse nodes (a, k) with the weight of P_lateral[c, a]
        layer = np.arange(n_layers)
        rows = (lateral.row[:, None] * n_layers + layer).ravel()
        cols = ((first + lateral.col[:, None]) * n_layers + layer).ravel()
        vals = np.repeat(lateral.data, n_layers)
        full = sp.csr_matrix((vals, (rows, cols)), shape=(graph.shape[0] * n_layers, (first + count) * n_layers))
        full.sort_indices()
        P = PETSc.Mat().createAIJ(size=((graph.shape[0] * n_layers, None), (count * n_layers, None)),
                                  csr=(full.indptr.astype(PETSc.IntType), full.indices.astype(PETSc.IntType),
                                       full.data), comm=comm)
        result.append(P)
        coarse = (tentative.T @ graph @ tentative).tolil()
        coarse.setdiag(0)
        graph = coarse.tocsr()
        graph.eliminate_zeros()
    return result


class LineSmoother:
    """petsc4py Python-PC context: block Jacobi over the columns, each tridiagonal block
    solved exactly (entries of A outside the column's tridiagonal are left to the
    multigrid iteration)."""

    def __init__(self, n_layers: int):
        self.n_layers = n_layers
        self.factors = None

    def setUp(self, pc):
        A, _ = pc.getOperators()
        rows, col, val, n = _local_csr(A)
        if n == 0:  # a rank without columns
            self.factors = None
            return
        L = self.n_layers
        d, dl, du = np.zeros(n), np.zeros(n - 1), np.zeros(n - 1)
        on = col == rows
        d[rows[on]] = val[on]
        up = (col == rows + 1) & ((rows + 1) % L != 0)
        du[rows[up]] = val[up]
        down = (col == rows - 1) & (rows % L != 0)
        dl[col[down]] = val[down]
        *factors, info = lapack.dgttrf(dl, d, du)
        if info != 0:
            raise RuntimeError(f"column multigrid: singular column block (dgttrf info {info})")
        self.factors = factors

    def apply(self, pc, x, y):
        if self.factors is None:
            return
        dl, d, du, du2, ipiv = self.factors
        y.array[:] = lapack.dgttrs(dl, d, du, du2, ipiv, x.array_r)[0]


#: PETSc options of the column multigrid, set under the potential KSP's prefix (the
#: level smoothers' PC is set in code: a Python PC cannot be named in the database)
OPTIONS = {
    "pc_mg_galerkin": "both",
    "mg_levels_ksp_chebyshev_esteig": "0,0.1,0,1.1",
}


def configure(pc: PETSc.PC, A: PETSc.Mat, n_layers: int) -> int:
    """Make ``pc`` the column multigrid for A's layout (see the module docstring; ``A``
    only provides the column graph; :data:`OPTIONS` go in the database before the KSP's
    setFromOptions). Returns the number of levels."""
    Ps = prolongations(A, n_layers)
    levels = len(Ps) + 1
    pc.setType("mg")
    pc.setMGLevels(levels)
    pc.setMGType(PETSc.PC.MGType.MULTIPLICATIVE)
    pc.setMGCycleType(PETSc.PC.MGCycleType.V)
    for i, P in enumerate(Ps):
        pc.setMGInterpolation(levels - 1 - i, P)
        P.destroy()
    for level in range(1, levels):
        ksp = pc.getMGSmoother(level)
        ksp.setType("chebyshev")
        ksp.setTolerances(max_it=SMOOTHING_STEPS)
        smoother = ksp.getPC()
        smoother.setType("python")
        smoother.setPythonContext(LineSmoother(n_layers))
    coarse = pc.getMGCoarseSolve()
    coarse.setType("preonly")
    coarse.getPC().setType("redundant" if A.getComm().getSize() > 1 else "lu")
    return levels
