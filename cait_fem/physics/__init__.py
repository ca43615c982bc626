"""Physics as pure functions: diffusion laws D(theta), the Gaussian site energy distribution
and its ionic Fermi level, boundary laws, and the numpy/UFL namespaces (``ops``) that let one
law definition serve both exact evaluation and the weak forms. No DOLFINx, PETSc or MPI.
"""
