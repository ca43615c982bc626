"""Newton solver for the NPP forms, with a stopping test that means something.

The Jacobian is UFL's exact derivative of the residual (every concentration-dependent D
included), so Newton converges quadratically; the test below stops on the size of the
Newton update, component by component, in the units the user thinks in (theta for
concentrations, k_B T / e for the potential). A residual-norm test would not do: with
(d / lambda_D)^2 ~ 1e15, round-off in the space charge puts residual noise far above any
useful absolute tolerance in the bulk (docs/model.md section 8.2).
"""

from __future__ import annotations

import math

from mpi4py import MPI  # noqa: F401  (MPI is initialised by mpi4py before PETSc/DOLFINx)

from dolfinx.fem.petsc import NonlinearProblem, assemble_jacobian, assemble_vector, assign, set_bc
from petsc4py import PETSc

from cait_fem.case.experiment import SolverSettings
from cait_fem.errors import ConfigError

from .cpr import CPRPreconditioner

#: GMRES restart length of the iterative option (docs/numerics.md, "Linear solvers at scale")
GMRES_RESTART = 100


def linear_solver_options(settings: SolverSettings, comm_size: int, dimension: int = 1) -> dict:
    choice = settings.linear_solver
    if choice == "iterative":
        return krylov_options(settings)
    if choice == "auto":
        # PETSc's own LU with a band ordering is the fastest for a 1D band matrix but
        # serial only, and fills in badly in 2D/3D, where MUMPS' nested dissection wins
        # (docs/numerics.md section 5).
        choice = "petsc" if comm_size == 1 and dimension == 1 else "mumps"
    opts = {"ksp_type": "preonly", "pc_type": "lu", "pc_factor_mat_solver_type": choice}
    if choice == "petsc":
        opts["pc_factor_mat_ordering_type"] = "rcm"
    return opts


def krylov_options(settings: SolverSettings) -> dict:
    """Newton-Krylov: GMRES, left preconditioned (the default, so the stopping test is on the
    preconditioned residual: the unpreconditioned residual is dominated by the rows of the
    um-sized bulk cells, and a relative decrease of it leaves the nm-sized surface rows
    unconverged), with a point-block ILU per rank (block Jacobi) or per overlapping
    subdomain (ASM). The Jacobian stays BAIJ, so ILU works on the 3x3 node blocks."""
    opts = {
        "ksp_type": "gmres",
        "ksp_gmres_restart": GMRES_RESTART,
        "ksp_rtol": settings.krylov_rtol,
        "ksp_max_it": settings.krylov_max_iterations,
    }
    if settings.preconditioner == "cpr":
        return opts  # a Python PC, set up by NewtonSolver (cait_fem.solver.cpr)
    opts |= {
        "pc_type": "bjacobi" if settings.preconditioner == "ilu" else "asm",
        "sub_ksp_type": "preonly",
        "sub_pc_type": "ilu",
        "sub_pc_factor_levels": settings.ilu_levels,
    }
    if settings.preconditioner == "asm":
        opts["pc_asm_overlap"] = 1
    return opts


class NewtonSolver:
    """Newton's method for the NPP forms (compiled once), with our stopping test;
    ``solve()`` returns (converged, iterations, PETSc SNES reason).

    DOLFINx's ``NonlinearProblem`` provides the compiled forms, the matrix and vectors and
    a SNES whose KSP (``ksp``) is configured from the options; the iteration itself is
    written out here rather than run by ``SNESSolve``: SNES evaluates the residual at every
    new iterate before its convergence test sees the update, and our test is on the update
    (:meth:`_test`), so the residual at the accepted iterate, a third of the residual
    evaluations of a typical two-iteration step, was computed for nothing
    (docs/numerics.md section 5). The iterates are those of SNES ``newtonls`` with the
    basic line search: x_{k+1} = x_k - J^{-1} F(x_k), J rebuilt every ``jacobian_lag``
    iterations.

    ``linear_iterations``: linear (Krylov) iterations of all solves so far, and
    ``last_linear_iterations`` those of the last solve (a direct solve counts 1 per Newton
    iteration); ``monitors``: callables ``(iteration, update Vec)`` called after every
    Newton update (e.g. to watch quadratic convergence)."""

    _count = 0

    def __init__(self, forms, bcs, settings: SolverSettings, comm):
        NewtonSolver._count += 1
        self.settings = settings
        self.forms = forms
        options = {
            "snes_type": "newtonls",
            "snes_linesearch_type": "basic",
            "snes_max_it": settings.max_newton_iterations,
            **linear_solver_options(settings, comm.size, forms.domain.topology.dim),
        }
        prefix = f"cait_npp_{NewtonSolver._count}_"
        self.problem = NonlinearProblem(
            forms.F, forms.u, bcs=bcs, J=forms.J,
            petsc_options_prefix=prefix, petsc_options=options, kind="baij",
        )
        # The sub-solvers of block Jacobi / ASM read their options (sub_pc_factor_levels)
        # only at the first preconditioner set-up, inside the first solve, while DOLFINx
        # means to delete the options once the SNES has read them (with DOLFINx 0.11 and
        # petsc4py 3.25 the prefixed names in fact stay in the database): they are put in
        # place around every solve and removed after it (see solve()).
        self._setup_options = ({prefix + k: v for k, v in options.items() if k.startswith("sub_")}
                               if settings.linear_solver == "iterative" else {})
        self.linear_iterations = 0
        self.last_linear_iterations = 0
        self.ksp = self.problem.solver.getKSP()
        problem = self.problem
        self.ksp.setOperators(problem.A, problem.P_mat if problem.P_mat is not None else problem.A)
        self.cpr = None
        if settings.linear_solver == "iterative" and settings.preconditioner == "cpr":
            self.cpr = CPRPreconditioner(forms, settings.ilu_levels, prefix)
            pc = self.ksp.getPC()
            pc.setType("python")
            pc.setPythonContext(self.cpr)
        self.bcs = list(bcs)
        self._update = problem.x.duplicate()
        self.monitors = []
        self.last_update_max = None

    def _residual(self, x, b):
        """F(x) with the Dirichlet rows x - g. DOLFINx's default also applies a lifting,
        J[:, bc] (g - x_bc); :meth:`solve` sets the Dirichlet values into the iterate first,
        so that term is zero and is skipped (it was ~10 % of the run time at 1D size)."""
        x.ghostUpdate(addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
        assign(x, self.forms.u)
        with b.localForm() as b_local:
            b_local.set(0.0)
        assemble_vector(b, self.problem.F)
        b.ghostUpdate(addv=PETSc.InsertMode.ADD, mode=PETSc.ScatterMode.REVERSE)
        set_bc(b, self.bcs, x, -1.0)

    def _residual_finite(self, x, b) -> bool:
        self._residual(x, b)
        norm = b.norm()
        return norm == norm

    def _jacobian(self, x):
        p = self.problem
        assemble_jacobian(None, x, p.A, p.P_mat, self.forms.u, p.J, p.preconditioner, self.bcs)

    def _test(self, it: int, dy) -> int:
        """The stopping test after update ``it`` (1, 2, ...) ``dy``: an SNES reason."""
        p = self.forms.layout.psi
        update = (max(dy.strideNorm(i, PETSc.NormType.INFINITY) for i in range(self.forms.layout.n_species)),
                  dy.strideNorm(p, PETSc.NormType.INFINITY))
        self.last_update_max = update
        # the max norm skips NaN entries (comparisons with NaN are false); the 1-norm sums
        # them and so is NaN or inf as soon as one entry is
        if not math.isfinite(dy.norm(PETSc.NormType.NORM_1)) or any(u != u for u in update):
            return PETSc.SNES.ConvergedReason.DIVERGED_FUNCTION_NANORINF
        # Remaining error of the iterate, estimated from the observed contraction
        # rho = |dy_k| / |dy_{k-1}| as rho / (1 - rho) |dy_k| (Hairer & Wanner, Solving
        # ODEs II, IV.8); before a rate is known, the update itself. (Carrying the previous
        # step's rate over to the first update, as RADAU5 does, ended most steps after one
        # iteration but, where a fit tried a slower ion on a coarse mesh, accepted poor
        # iterates and the steps collapsed: 200000 steps to t = 183 s instead of 488.)
        estimate = update
        if self._previous is not None:
            estimate = tuple(_remaining(d, d_prev) for d, d_prev in zip(update, self._previous))
        self._previous = update
        if estimate[0] <= self.settings.newton_atol and estimate[1] <= self.settings.potential_atol:
            return PETSc.SNES.ConvergedReason.CONVERGED_SNORM_RELATIVE
        if it >= self.settings.max_newton_iterations:
            return PETSc.SNES.ConvergedReason.DIVERGED_MAX_IT
        return PETSc.SNES.ConvergedReason.ITERATING

    def update_settings(self, settings: SolverSettings) -> None:
        """New tolerances and iteration limits for the next solves (the linear solver, its
        preconditioner and the Jacobian lag are fixed at construction)."""
        for key in ("linear_solver", "jacobian_lag", "preconditioner", "ilu_levels"):
            new, old = getattr(settings, key), getattr(self.settings, key)
            if new != old:
                raise ConfigError(f"solver.{key} = {new!r} differs from the compiled {old!r}; "
                                  "build a new Simulation")
        self.settings = settings
        if settings.linear_solver == "iterative":
            self.ksp.setTolerances(rtol=settings.krylov_rtol, max_it=settings.krylov_max_iterations)

    def solve(self) -> tuple[bool, int, int]:
        """Newton from the current content of ``forms.u`` (Dirichlet values imposed first).
        Returns (converged, iterations, PETSc SNES reason)."""
        for bc in self.bcs:
            bc.set(self.forms.u.x.array)
        opts = PETSc.Options()
        for key, value in self._setup_options.items():
            opts[key] = value
        try:
            reason, its, linear = self._iterate()
        finally:
            for key in self._setup_options:
                opts.delValue(key)
        self.last_linear_iterations = linear
        self.linear_iterations += linear
        return reason > 0, its, reason

    def _iterate(self) -> tuple[int, int, int]:
        """(reason, Newton iterations, linear iterations) of one solve from ``forms.u``."""
        x, b, dy = self.problem.x, self.problem.b, self._update
        assign(self.forms.u, x)
        self._previous = None
        reason, it, linear = PETSc.SNES.ConvergedReason.ITERATING, 0, 0
        if not self._residual_finite(x, b):  # NaN residual: let the stepper shrink the step
            reason = PETSc.SNES.ConvergedReason.DIVERGED_FUNCTION_NANORINF
        while reason == PETSc.SNES.ConvergedReason.ITERATING:
            if it % self.settings.jacobian_lag == 0:
                self._jacobian(x)
            self.ksp.solve(b, dy)
            linear += self.ksp.getIterationNumber()
            # A failed Krylov solve (DIVERGED_ITS, breakdown, zero pivot) fails the Newton
            # solve: never accepted.
            if self.ksp.getConvergedReason() < 0:
                reason = PETSc.SNES.ConvergedReason.DIVERGED_LINEAR_SOLVE
                break
            x.axpy(-1.0, dy)
            it += 1
            reason = self._test(it, dy)
            for monitor in self.monitors:
                monitor(it, dy)
            if reason == PETSc.SNES.ConvergedReason.ITERATING and not self._residual_finite(x, b):
                reason = PETSc.SNES.ConvergedReason.DIVERGED_FUNCTION_NANORINF
        x.ghostUpdate(addv=PETSc.InsertMode.INSERT, mode=PETSc.ScatterMode.FORWARD)
        assign(x, self.forms.u)
        return reason, it, linear


def _remaining(update: float, previous: float) -> float:
    if previous == 0.0:
        return update
    rho = update / previous
    return float("inf") if rho >= 1.0 else rho / (1.0 - rho) * update
