"""Shared test support: case texts, experiment and mesh builders, the CLI/MPI runners, the
tolerance-explicit ``approx`` and the DOLFINx import blocker. Test modules import from here,
never from each other, so each test module can be run, moved or deleted on its own.

Importing this package (and ``cases``, ``compare``, ``paths``, ``blocker``, ``experiments``)
needs no DOLFINx; ``fields`` and ``meshes`` import DOLFINx inside their functions only."""
