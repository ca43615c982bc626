"""Where things are: the repository, the tests, the venv's executables (cait-fem, mpirun),
and the lines a generated child script (serial or under mpirun) starts with so that it
imports this checkout's ``cait_fem`` and the ``support`` package."""

import subprocess
import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
BIN = Path(sys.executable).parent


def script_prelude() -> str:
    """Python lines for the top of a generated script: the repository and ``tests/`` first on
    sys.path (a child started by mpirun does not inherit pytest's sys.path)."""
    return f"import sys\nsys.path[:0] = [{str(TESTS)!r}, {str(ROOT)!r}]\n"


def run_cli(args, mpi: int = 0, timeout: float = 600):
    """Run the venv's ``cait-fem`` with ``args`` from the repository root, under
    ``mpirun -n mpi`` when ``mpi`` > 0; returns the CompletedProcess (text output)."""
    cmd = [str(BIN / "cait-fem"), *args]
    if mpi:
        cmd = [str(BIN / "mpirun"), "-n", str(mpi), *cmd]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=ROOT)
