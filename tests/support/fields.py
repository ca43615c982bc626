"""DOLFINx test states on small structured meshes, for the sampling and field-output tests
and their MPI child script. DOLFINx is imported inside the functions, so importing this
module needs none."""

from types import SimpleNamespace

import numpy as np

SPECIES = ["Li", "K"]
POTENTIAL_V = 0.025852  # k_B T / e at 300 K


def linear_state(x, gdim):
    """[w, theta_K, psi] as linear functions of the coordinates x (3, n) (nm; depth is x[gdim - 1]):
    P1 holds them exactly, so any sampled or written value can be checked to rounding."""
    lat, depth = x[0], x[gdim - 1]
    y = x[1] if gdim == 3 else 0.0 * x[0]
    return np.vstack([-0.3 + 1e-3 * lat - 5e-4 * depth + 2e-4 * y,
                      0.2 + 1e-3 * depth - 3e-4 * y,
                      1.0 + 1e-2 * lat - 2e-3 * depth + 5e-3 * y])


def square(comm=None, cell="triangle"):
    """lateral x in [0, 400] nm, depth in [0, 300] nm (default: COMM_WORLD); ``cell`` a
    ``dolfinx.mesh.CellType`` name"""
    from mpi4py import MPI

    from dolfinx import mesh

    comm = MPI.COMM_WORLD if comm is None else comm
    return mesh.create_rectangle(comm, [[0.0, 0.0], [400.0, 300.0]], [8, 6], mesh.CellType[cell])


def box(comm=None):
    """[-100, 100]^2 nm laterally, depth [0, 200] nm (default: COMM_WORLD)"""
    from mpi4py import MPI

    from dolfinx import mesh

    comm = MPI.COMM_WORLD if comm is None else comm
    return mesh.create_box(comm, [[-100.0, -100.0, 0.0], [100.0, 100.0, 200.0]], [3, 3, 3])


def interval():
    """depth [0, 100] nm, 4 cells, on COMM_WORLD"""
    from mpi4py import MPI

    from dolfinx import mesh

    return mesh.create_interval(MPI.COMM_WORLD, 4, [0.0, 100.0])


def state_on(domain, scale=1.0):
    """The linear state on a blocked P1 space: what the writers see of the forms."""
    from dolfinx import fem

    V = fem.functionspace(domain, ("Lagrange", 1, (3,)))
    u = fem.Function(V, name="state")
    u.interpolate(lambda x: scale * linear_state(x, domain.geometry.dim))
    from cait_fem.fem.state import StateLayout

    return SimpleNamespace(domain=domain, V=V, u=u, layout=StateLayout(tuple(SPECIES), (1, 1)))


def expected(points, scale=1.0):
    """Analytic state at points (n, gdim) -> (n, 3)."""
    p = np.asarray(points, dtype=float)
    x = np.zeros((3, len(p)))
    x[:p.shape[1]] = p.T
    return scale * linear_state(x, p.shape[1]).T


def structured_points(domain, rng):
    """Vertices and edge midpoints of the structured mesh (cell and partition boundaries,
    domain corners and edges) plus random interior points."""
    if domain.geometry.dim == 1:
        axes = [np.linspace(0, 100, 9)]
        lo, hi = np.array([0.0]), np.array([100.0])
    elif domain.geometry.dim == 2:
        axes = [np.linspace(0, 400, 17), np.linspace(0, 300, 13)]  # half-cell spacing
        lo, hi = np.array([0.0, 0.0]), np.array([400.0, 300.0])
    else:
        axes = [np.linspace(-100, 100, 7)] * 2 + [np.linspace(0, 200, 7)]
        lo, hi = np.array([-100.0, -100.0, 0.0]), np.array([100.0, 100.0, 200.0])
    grid = np.stack(np.meshgrid(*axes, indexing="ij"), axis=-1).reshape(-1, len(axes))
    return np.vstack([grid, lo + (hi - lo) * rng.uniform(0.01, 0.99, (40, len(axes)))])
