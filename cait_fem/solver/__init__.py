"""Solving the discrete system: Newton (PETSc SNES), the CPR preconditioner with its column
multigrid, and adaptive BDF time stepping. The BDF formulas, the step-size controller and
the depth columns are pure.
"""
