"""Column multigrid (cait_fem.solver.column_multigrid) on layered model problems: robust for any
depth/lateral anisotropy, as the theory of line smoothing with lateral semi-coarsening says
(Boerm & Hiptmair 2001), where point-smoothed algebraic multigrid is not."""

import numpy as np
import pytest
import scipy.sparse as sp

# DOLFINx is imported inside the tests, so that collecting this module needs none.
pytestmark = pytest.mark.dolfinx


def _layered_laplacian(n_columns, spacing_z, kappa_lateral, kappa_depth, h_lateral=1.0):
    """FD Laplacian of -div(kappa grad u) on a 2D section (columns x depth layers, graded
    in depth), column-major rows, u = 0 on the back (the last layer), zero flux elsewhere.
    Same weights as P1 on a structured mesh with mass-lumped coefficients."""
    L = len(spacing_z) + 1
    # depth: 1D stiffness of graded intervals, lateral: uniform spacing
    wz = kappa_depth / np.asarray(spacing_z)
    cell = np.concatenate([[0.0], spacing_z]) + np.concatenate([spacing_z, [0.0]])  # 2 x dual cell length
    Kz = sp.diags([np.concatenate([wz, [0]]) + np.concatenate([[0], wz]), -wz, -wz], [0, -1, 1])
    Kx = sp.diags([np.r_[1.0, 2.0 * np.ones(n_columns - 2), 1.0], -np.ones(n_columns - 1), -np.ones(n_columns - 1)],
                  [0, -1, 1]) * (kappa_lateral / h_lateral)
    A = (sp.kron(sp.diags(np.full(n_columns, h_lateral)), Kz) + sp.kron(Kx, sp.diags(0.5 * cell))).tolil()
    back = np.arange(L - 1, n_columns * L, L)
    A[back, :] = 0.0
    A[:, back] = 0.0
    A[back, back] = 1.0
    return A.tocsr(), L


def _petsc(A_csr):
    from mpi4py import MPI

    from petsc4py import PETSc
    return PETSc.Mat().createAIJ(A_csr.shape, csr=(A_csr.indptr.astype(PETSc.IntType),
                                                   A_csr.indices.astype(PETSc.IntType), A_csr.data),
                                 comm=MPI.COMM_SELF)


def _manufactured(A, seed):
    """A random solution, its right-hand side and a vector for the computed one."""
    x_true, b = A.createVecs()
    x_true.setArray(np.random.default_rng(seed).uniform(-1, 1, A.getSize()[0]))
    A.mult(x_true, b)
    return x_true, b, b.duplicate()


def _solve(A_csr, L):
    from mpi4py import MPI

    from petsc4py import PETSc

    from cait_fem.solver import column_multigrid
    A = _petsc(A_csr)
    ksp = PETSc.KSP().create(MPI.COMM_SELF)
    ksp.setOptionsPrefix("test_colmg_")
    opts = PETSc.Options()
    for key, value in column_multigrid.OPTIONS.items():
        opts["test_colmg_" + key] = value
    ksp.setOperators(A)
    ksp.setType("gmres")
    ksp.setTolerances(rtol=1e-8, max_it=100)
    levels = column_multigrid.configure(ksp.getPC(), A, L)
    ksp.setFromOptions()
    x_true, b, x = _manufactured(A, seed=0)
    ksp.solve(b, x)
    error = np.abs(x.array - x_true.array).max() / np.abs(x_true.array).max()
    its, reason = ksp.getIterationNumber(), ksp.getConvergedReason()
    for key in column_multigrid.OPTIONS:
        opts.delValue("test_colmg_" + key)
    for obj in (ksp, A, x, b, x_true):
        obj.destroy()
    return its, reason, error, levels


@pytest.mark.parametrize("ratio", [1e-4, 1.0, 1e4, 1e8])
def test_iterations_do_not_depend_on_the_anisotropy(ratio):
    """Depth/lateral conductance ratios from 1e-4 (lateral dominates: the bulk) to 1e8
    (nm layers under the front) on graded layers: the same few iterations."""
    spacing = 0.01 * 1.3 ** np.arange(25)
    its, reason, error, levels = _solve(*_layered_laplacian(300, spacing, 1.0, ratio))
    assert reason > 0 and error < 1e-5
    assert levels >= 3  # a real hierarchy, not one direct solve
    assert its <= 12, its


def test_iterations_do_not_grow_with_the_lateral_size():
    """Where lateral conduction dominates, the hard case for aggregation (piecewise-constant
    lateral interpolation needed 25, 42, 67 iterations for 100, 300, 1000 columns)."""
    spacing = 0.01 * 1.3 ** np.arange(20)
    its = [_solve(*_layered_laplacian(n, spacing, 1.0, 1e-4))[0] for n in (100, 400, 1600)]
    assert max(its) <= min(its) + 3, its


def test_the_line_smoother_is_exact_without_lateral_coupling():
    """Independent columns: the column-block solve is A's inverse, so one Richardson step
    with the smoother alone solves to round-off."""
    from mpi4py import MPI

    from petsc4py import PETSc

    from cait_fem.solver import column_multigrid
    spacing = 0.1 * 1.2 ** np.arange(15)
    A_csr, L = _layered_laplacian(7, spacing, 0.0, 1.0)
    A = _petsc(A_csr)
    pc = PETSc.PC().create(MPI.COMM_SELF)
    pc.setType("python")
    pc.setPythonContext(column_multigrid.LineSmoother(L))
    pc.setOperators(A)
    pc.setUp()
    x_true, b, x = _manufactured(A, seed=1)
    pc.apply(b, x)
    np.testing.assert_allclose(x.array, x_true.array, rtol=0, atol=1e-12)
