"""Python imports this at the start of every child process of a blocked test run (the
conftest puts this directory on PYTHONPATH when CAIT_FEM_BLOCK_DOLFINX=1), so a CLI or
script started by a fast-tier test cannot use DOLFINx either."""

import os

if os.environ.get("CAIT_FEM_BLOCK_DOLFINX") == "1":
    import importlib.util
    from pathlib import Path

    _spec = importlib.util.spec_from_file_location("_cait_fem_dolfinx_blocker",
                                                   Path(__file__).parents[1] / "blocker.py")
    _blocker = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_blocker)
    _blocker.install()
