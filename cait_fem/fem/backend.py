"""The one place that imports DOLFINx, after mpi4py, and checks its version.

cait_fem does not install DOLFINx as a hard dependency: on clusters it comes from conda,
spack or a container, and a second PETSc would break it. ``pip install cait_fem[wheel]``
brings the binary wheel (DOLFINx 0.11 with PETSc, MPICH) for a laptop or CI.
"""

from __future__ import annotations

SUPPORTED = (0, 11)


def require_dolfinx():
    """Import and return the ``dolfinx`` module, or raise ImportError saying what to do."""
    try:
        import mpi4py.MPI  # noqa: F401  (MPI must be initialised before PETSc)

        import dolfinx
    except ImportError as exc:
        raise ImportError(
            "cait_fem's solver needs DOLFINx 0.11 (FEniCSx) with petsc4py and mpi4py. "
            "Install the binary wheel with `pip install 'cait_fem[wheel]'`, or use your "
            "conda/spack/docker DOLFINx 0.11 environment. Original error: " f"{exc}"
        ) from exc
    found = tuple(int(p) for p in dolfinx.__version__.split(".")[:2])
    if found != SUPPORTED:
        raise ImportError(
            f"cait_fem needs DOLFINx {SUPPORTED[0]}.{SUPPORTED[1]}.x, found {dolfinx.__version__} "
            f"at {dolfinx.__file__}. The 0.11 API (NonlinearProblem, dolfinx.io.gmsh) differs "
            "from other releases; install `cait_fem[wheel]` in a fresh venv or load a 0.11 module."
        )
    return dolfinx
