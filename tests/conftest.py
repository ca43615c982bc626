"""Test-suite wide settings: with ``CAIT_FEM_BLOCK_DOLFINX=1`` (``make test-fast``)
DOLFINx, PETSc, MPI, UFL and Basix cannot be imported, here and in child processes the
tests start, so the tests that run prove they need none of them. Tolerances are explicit
in each test (``support.compare.approx``); pytest itself is not patched."""

import os

from support import blocker

if os.environ.get(blocker.ENV_VAR) == "1":
    blocker.install()
    os.environ["PYTHONPATH"] = os.pathsep.join(
        [str(blocker.SITE_DIR)] + [p for p in os.environ.get("PYTHONPATH", "").split(os.pathsep) if p])
else:
    try:
        # MPI first: the DOLFINx wheel finds its MPI library only once mpi4py has loaded it,
        # and tests import DOLFINx lazily, in whatever order they run.
        import mpi4py.MPI  # noqa: F401
    except ImportError:  # no DOLFINx stack here: only the fast tier can run
        pass
