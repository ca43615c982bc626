"""The result of a run and how it is written: ``Result`` (profiles, time series, metrics),
CSV/JSON files and the figures. Pure: no DOLFINx, PETSc or MPI (a communicator is passed in
where only rank 0 may write).
"""
