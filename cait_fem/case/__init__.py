"""The experiment as validated data (SI units in the field names): glass, species, front and
back boundaries, geometry, mesh/run/solver settings, presets, and TOML case files.
No DOLFINx, PETSc or MPI.
"""
