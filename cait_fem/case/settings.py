"""Mesh, time-integration and solver settings of a case as validated data (SI units in
the field names; docs/numerics.md); no DOLFINx."""

from __future__ import annotations

import math
from dataclasses import dataclass

from .checks import fraction, is_count, is_real, positive, require
from .estimates import DEFAULT_MAX_CELLS


@dataclass(frozen=True)
class MeshSettings:
    """The depth mesh and its accuracy (docs/numerics.md section 4).

    By default the spacing follows the case (:mod:`cait_fem.case.resolution`): graded from
    ``surface_spacing_m`` at the surface (resolving the Debye layer), then
    ``cells_per_front_width`` cells per estimated width of the front (a few field lengths
    (k_B T / e) / E; it grows with depth), at most ``max_front_spacing_m``, over the depth the front can reach
    by the end of the run; then geometric growth by ``growth_ratio`` up to
    ``bulk_spacing_m``, constant to the back electrode. ``front_spacing_m`` (uniform
    spacing) and ``fine_depth_m`` [m] replace the rule's values when given.

    ``spatial_tolerance`` [theta]: the largest acceptable estimated spatial error of the
    profiles (RMS over the profile's depth range, docs/numerics.md section 4); the run
    warns when its estimate exceeds it, and when the pointwise estimate exceeds 15 times
    it (the default 5e-4 leaves room for the time error within the standard of RMS 1e-3,
    max 1e-2). ``estimate_spatial_error``: compute that estimate (a second solve on every other
    node, about half the cost of the run). ``max_refinements``: when the estimate exceeds
    the tolerance, :func:`cait_fem.simulate` refines the depth mesh by the factor the
    estimate asks for (second order) and runs again, at most this many times (0: only
    warn).

    ``max_cells``: the largest mesh (cells of the whole 1D/2D/3D mesh, as estimated by
    :mod:`cait_fem.case.estimates` before meshing) an experiment may ask for; a guard
    against a spacing that would need more memory than the machine has, not a setting
    of the mesh itself."""

    front_spacing_m: float | None = None
    surface_spacing_m: float = 0.01e-9
    fine_depth_m: float | None = None
    growth_ratio: float = 1.08
    bulk_spacing_m: float = 20e-6
    cells_per_front_width: float = 12.0
    max_front_spacing_m: float = 0.3e-9
    spatial_tolerance: float = 5e-4
    estimate_spatial_error: bool = True
    max_refinements: int = 2
    max_cells: int = DEFAULT_MAX_CELLS

    def __post_init__(self):
        if self.front_spacing_m is not None:
            positive("mesh.front_spacing_m", self.front_spacing_m)
        positive("mesh.surface_spacing_m", self.surface_spacing_m)
        if self.fine_depth_m is not None:
            ok = is_real(self.fine_depth_m) and self.fine_depth_m >= 0
            require(ok and math.isfinite(self.fine_depth_m), "mesh.fine_depth_m", self.fine_depth_m,
                     "must be a finite number >= 0")
        ok = is_real(self.growth_ratio) and math.isfinite(self.growth_ratio)
        require(ok and 1.0 < self.growth_ratio <= 2.0, "mesh.growth_ratio", self.growth_ratio,
                 "must lie in (1, 2]")
        positive("mesh.bulk_spacing_m", self.bulk_spacing_m)
        if self.front_spacing_m is not None:
            require(self.bulk_spacing_m >= self.front_spacing_m, "mesh.bulk_spacing_m", self.bulk_spacing_m,
                     f"must be >= mesh.front_spacing_m = {self.front_spacing_m!r}")
        ok = is_real(self.cells_per_front_width) and math.isfinite(self.cells_per_front_width)
        require(ok and 0.1 <= self.cells_per_front_width <= 1000, "mesh.cells_per_front_width",
                 self.cells_per_front_width, "must lie in [0.1, 1000]")
        positive("mesh.max_front_spacing_m", self.max_front_spacing_m)
        require(self.bulk_spacing_m >= self.max_front_spacing_m, "mesh.bulk_spacing_m", self.bulk_spacing_m,
                 f"must be >= mesh.max_front_spacing_m = {self.max_front_spacing_m!r}")
        positive("mesh.spatial_tolerance", self.spatial_tolerance)
        require(isinstance(self.estimate_spatial_error, bool), "mesh.estimate_spatial_error",
                 self.estimate_spatial_error, "true or false")
        require(is_count(self.max_refinements) and 0 <= self.max_refinements <= 5, "mesh.max_refinements",
                 self.max_refinements, "an integer from 0 to 5")
        require(isinstance(self.max_cells, int) and not isinstance(self.max_cells, bool) and self.max_cells > 0,
                 "mesh.max_cells", self.max_cells, "a positive integer")


#: MeshSettings fields that are not part of a case's structure (what compiled forms and
#: the mesh fix): guards and accuracy checks
MESH_CHECK_FIELDS = ("max_cells", "spatial_tolerance", "estimate_spatial_error", "max_refinements")


#: the time integration schemes, "bdfK" of order K
SCHEMES = ("bdf1", "bdf2", "bdf3")


@dataclass(frozen=True)
class RunSettings:
    """Time integration. ``t_end_s`` [s]; profiles are stored at ``output_times_s`` [s]
    (each in (0, t_end_s]; t_end_s is always stored). ``scheme`` "bdf1", "bdf2" or "bdf3"
    (variable-step BDF of that order, docs/numerics.md section 6);
    the local error estimate is kept below ``time_tolerance`` (absolute, in theta units);
    the first step is ``dt_initial_s`` [s]; steps never exceed ``dt_max_s`` [s]."""

    t_end_s: float
    output_times_s: tuple[float, ...] = ()
    scheme: str = "bdf3"
    time_tolerance: float = 2e-4
    dt_initial_s: float = 1e-9
    dt_max_s: float | None = None
    max_steps: int = 200_000
    max_retries: int = 12

    @property
    def order(self) -> int:
        """The BDF order of ``scheme``."""
        return int(self.scheme[-1])

    def __post_init__(self):
        positive("run.t_end_s", self.t_end_s)
        times = tuple(self.output_times_s)
        object.__setattr__(self, "output_times_s", times)
        for i, t in enumerate(times):
            ok = is_real(t) and math.isfinite(t)
            require(ok and 0 < t <= self.t_end_s, f"run.output_times_s[{i}]", t,
                     f"must lie in (0, run.t_end_s = {self.t_end_s!r}]")
        require(list(times) == sorted(set(times)), "run.output_times_s", list(times),
                 "must be strictly increasing")
        require(self.scheme in SCHEMES, "run.scheme", self.scheme, 'one of "bdf1", "bdf2", "bdf3"')
        positive("run.time_tolerance", self.time_tolerance)
        positive("run.dt_initial_s", self.dt_initial_s)
        if self.dt_max_s is not None:
            positive("run.dt_max_s", self.dt_max_s)
        require(is_count(self.max_steps) and self.max_steps > 0, "run.max_steps", self.max_steps,
                 "a positive integer")
        require(is_count(self.max_retries) and self.max_retries >= 0, "run.max_retries",
                 self.max_retries, "an integer >= 0")

    @property
    def all_output_times_s(self) -> tuple[float, ...]:
        times = list(self.output_times_s)
        if not times or times[-1] != self.t_end_s:
            times.append(self.t_end_s)
        return tuple(times)


LINEAR_SOLVERS = ("auto", "petsc", "mumps", "superlu_dist", "iterative")
PRECONDITIONERS = ("ilu", "asm", "cpr")


@dataclass(frozen=True)
class SolverSettings:
    """Newton (PETSc SNES) and linear solver. Newton stops when the estimated remaining
    error of every concentration (theta units) is below ``newton_atol`` and that of the
    potential is below ``potential_atol`` (units of k_B T / e); see cait_fem.solver.newton.
    ``linear_solver`` "auto" picks PETSc's LU for a serial 1D run and MUMPS otherwise.
    ``jacobian_lag``: the exact Jacobian is assembled and factorised every ``jacobian_lag``
    Newton iterations of a step (1: every iteration, quadratic convergence). Within one
    time step it changes little, so a lag of 3 gives the same solution to the Newton
    tolerance at a lower cost (docs/numerics.md section 5).

    ``linear_solver = "iterative"``: Newton-Krylov for 2D/3D runs beyond direct-solver
    reach (a 3D mesh of 1.5e5 unknowns already needs 2 GB and 40-50 s per MUMPS
    factorisation; docs/numerics.md section 9, "Linear solvers at scale"): GMRES (left
    preconditioned, restart 100) stopped at ``krylov_rtol`` (relative decrease of the
    preconditioned residual), failed after ``krylov_max_iterations``; a failed linear solve
    is a failed Newton solve, so the stepper shrinks the step. ``preconditioner``:

    * "cpr" (recommended for large meshes, serial or MPI): two-stage constrained-pressure-
      residual preconditioner (:mod:`cait_fem.solver.cpr`): a multigrid solve of the decoupled
      potential equation (charge conservation) -- column multigrid on the layered meshes of
      :mod:`cait_fem.mesh.gmsh_sample`, GAMG on others -- then point-block ILU(``ilu_levels``) of the
      whole system per rank; ``ilu_levels = 0`` is enough there. A few Krylov iterations
      per Newton iteration, independent of the rank count on layered meshes.
    * "ilu" (default): point-block ILU(``ilu_levels``) of the whole system, per MPI rank
      (block Jacobi); "asm" the same on subdomains overlapping by one cell layer. Robust in
      serial, but the iterations grow with the mesh, and in parallel both need many
      iterations or break down (no global coupling of the potential)."""

    newton_atol: float = 1e-7
    potential_atol: float = 1e-5
    max_newton_iterations: int = 12
    linear_solver: str = "auto"
    jacobian_lag: int = 2
    preconditioner: str = "ilu"
    ilu_levels: int = 1
    krylov_rtol: float = 1e-8
    krylov_max_iterations: int = 1000

    def __post_init__(self):
        positive("solver.newton_atol", self.newton_atol)
        positive("solver.potential_atol", self.potential_atol)
        require(is_count(self.max_newton_iterations) and self.max_newton_iterations > 0,
                 "solver.max_newton_iterations", self.max_newton_iterations, "a positive integer")
        require(self.linear_solver in LINEAR_SOLVERS, "solver.linear_solver", self.linear_solver,
                 "one of " + ", ".join(f'"{name}"' for name in LINEAR_SOLVERS))
        require(isinstance(self.jacobian_lag, int) and not isinstance(self.jacobian_lag, bool)
                 and 1 <= self.jacobian_lag <= 10, "solver.jacobian_lag", self.jacobian_lag,
                 "an integer from 1 (exact Newton) to 10")
        require(self.preconditioner in PRECONDITIONERS, "solver.preconditioner", self.preconditioner,
                 "one of " + ", ".join(f'"{name}"' for name in PRECONDITIONERS)
                 + ' (used with linear_solver = "iterative")')
        require(isinstance(self.ilu_levels, int) and not isinstance(self.ilu_levels, bool)
                 and 0 <= self.ilu_levels <= 4, "solver.ilu_levels", self.ilu_levels, "an integer from 0 to 4")
        fraction("solver.krylov_rtol", self.krylov_rtol, open_low=True, open_high=True)
        require(isinstance(self.krylov_max_iterations, int) and not isinstance(self.krylov_max_iterations, bool)
                 and self.krylov_max_iterations > 0, "solver.krylov_max_iterations",
                 self.krylov_max_iterations, "a positive integer")
