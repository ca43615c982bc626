"""Make DOLFINx and its stack unimportable, to prove that code needs none of it.

``install()`` puts a finder first in ``sys.meta_path`` that refuses ``dolfinx``,
``petsc4py``, ``mpi4py``, ``ufl`` and ``basix`` (and their submodules) with a
ModuleNotFoundError, as on a machine without them. ``tests/conftest.py`` installs it when
``CAIT_FEM_BLOCK_DOLFINX=1`` (``make test-fast``) and, through ``blocking_site``, in the
child processes of the tests; the architecture test installs it in a subprocess."""

import sys
from pathlib import Path

BLOCKED = ("dolfinx", "petsc4py", "mpi4py", "ufl", "basix")
ENV_VAR = "CAIT_FEM_BLOCK_DOLFINX"
SITE_DIR = Path(__file__).parent / "blocking_site"  # its sitecustomize blocks in child processes


class DolfinxBlocker:
    """A meta-path finder that refuses the modules in ``BLOCKED``."""

    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in BLOCKED:
            raise ModuleNotFoundError(f"{name} is blocked ({ENV_VAR}=1: this code must not need DOLFINx)",
                                      name=name)
        return None  # not ours: let the other finders look


def install():
    """Block the modules; refuse if one of them is already loaded (the block would be a lie)."""
    loaded = sorted(m for m in sys.modules if m.split(".")[0] in BLOCKED)
    if loaded:
        raise RuntimeError(f"cannot block DOLFINx: already imported {loaded}")
    if not any(isinstance(f, DolfinxBlocker) for f in sys.meta_path):
        sys.meta_path.insert(0, DolfinxBlocker())
