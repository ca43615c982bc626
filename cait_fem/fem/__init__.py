"""The finite-element model: nondimensional scales and the state layout (pure), the UFL weak
form of the Nernst-Planck-Poisson system, observables assembled from it, and the one place
that imports and checks DOLFINx (``backend``).
"""
