"""Adaptive implicit time stepping: variable-step BDF1/BDF2/BDF3 around the Newton solver.

Per step: ask the step-size controller (:class:`cait_fem.solver.stepsize.Stepsize`, where
all the rules are) for h, set the BDF coefficients in the forms' Constants, start Newton
from the extrapolated state, then report to the controller: Newton failed (the history is
restored and a smaller step tried), the error estimate is above ``run.time_tolerance``
(rejected, retried) or the step is accepted and reported to the caller.

Replay (``schedule``): the step ends are given (those of an earlier adaptive run) and no
error test is made. A fit needs this: with adaptive steps the discrete solution is a
piecewise-smooth function of the parameters, jumping wherever the controller takes another
decision, so finite-difference Jacobians would measure those jumps. With the steps frozen
the solution is a smooth function of the parameters. If Newton fails on a replayed step,
replay is abandoned and the run goes on adaptively (``stats.replay_abandoned``).

The formulas (coefficients, predictor, error constants) are in :mod:`cait_fem.solver.bdf`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from mpi4py import MPI

import numpy as np

from cait_fem.case.experiment import RunSettings
from cait_fem.errors import SolverError

from . import bdf

# the constants and StepperState are re-exported: they used to live here
from .stepsize import (  # noqa: F401
    HISTORY_LENGTH,
    NEWTON_FAILURE_SHRINK,
    NEWTON_TARGET,
    REJECTION_SHRINK_MAX,
    Step,
    StepperState,
    Stepsize,
)


@dataclass
class StepperStats:
    steps: int = 0
    rejected_steps: int = 0
    newton_failures: int = 0
    newton_iterations: int = 0
    #: linear solver iterations (Krylov iterations; a direct solve counts 1 per Newton iteration)
    krylov_iterations: int = 0
    replay_abandoned: bool = False

    def as_dict(self) -> dict:
        return dict(self.__dict__)


@dataclass
class AcceptedStep:
    """What the caller needs to record an accepted step (dimensionless times)."""

    t: float
    h: float
    #: BDF coefficients (a0, a1, ...) of the step, ``order + 1`` of them
    coefficients: tuple
    newton_iterations: int
    reached_output: bool


@dataclass
class AdaptiveBDF:
    """Drives ``forms.u`` from its current content (the state at t = 0) through ``targets``
    (dimensionless output times); ``time_scale_s`` converts times for messages."""

    forms: object
    newton: object
    settings: RunSettings
    time_scale_s: float
    n_owned: int
    comm: MPI.Comm
    stats: StepperStats = field(default_factory=StepperStats)
    #: (time, jump) pairs, dimensionless: kinks and jumps of time-dependent boundary values
    #: that steps land on (:class:`~cait_fem.solver.stepsize.Stepsize`)
    breaks: tuple = ()

    def _error_estimate(self, step: Step, history, steps) -> float:
        """Local error of the accepted Newton solution, max over owned concentration dofs."""
        layout = self.forms.layout
        cached = getattr(self, "_prediction", None)
        if cached is not None and cached[0] == (step.order, step.h, history[-1][0]):
            predicted = cached[1]  # the Newton initial guess was this same extrapolation
        else:
            predicted = bdf.predict(step.order, step.h, history)
        diff = layout.rows(self.forms.u.x.array - predicted)
        local = np.abs(diff[: self.n_owned, : layout.n_species])
        local_max = float(local.max()) if local.size else 0.0
        return bdf.error_factor(step.order, step.h, steps) * self.comm.allreduce(local_max, op=MPI.MAX)

    def _fail(self, what: str, t: float, h: float, retries: int) -> SolverError:
        s = self.time_scale_s
        return SolverError(f"{what} at t = {t * s:.6g} s with dt = {h * s:.3g} s after {retries - 1} "
                           "step reductions; try a smaller run.dt_initial_s, a finer mesh, a larger "
                           "run.max_retries or looser solver tolerances")

    def controller(self, targets, schedule=None) -> Stepsize:
        """The step-size controller of this run's settings (dimensionless times)."""
        run = self.settings
        return Stepsize(targets, dt_initial=run.dt_initial_s / self.time_scale_s,
                        dt_max=(run.dt_max_s or np.inf) / self.time_scale_s,
                        max_order=run.order, tolerance=run.time_tolerance,
                        max_retries=run.max_retries, schedule=schedule, breaks=self.breaks)

    def _set_up(self, step: Step, history, steps) -> tuple:
        """BDF coefficients, previous states and, for forms with time-dependent boundary
        values (``set_time``), those at the step's end into the forms; the predictor into ``u``."""
        f = self.forms
        a = bdf.coefficients(step.order, step.h, steps)
        for k, previous in enumerate((f.u_n, f.u_nm1, f.u_nm2), start=1):
            previous.x.array[:] = history[-min(k, len(history))][1]
        f.set_bdf(step.h, a)
        if hasattr(f, "set_time"):
            # a step ending on a jump takes the value before it (left): the jump acts from
            # the next step on
            f.set_time(step.t_end, left=step.at_break, previous_times=[tk for tk, _ in reversed(history)][: len(a) - 1])
        predicted = bdf.predict(step.predictor_order, step.h, history)
        self._prediction = ((step.predictor_order, step.h, history[-1][0]), predicted)
        f.u.x.array[:] = predicted
        return a

    def integrate(self, targets: list[float], on_step, schedule: list[float] | None = None,
                  resume: StepperState | None = None, after_step=None):
        """Step until the last target; ``on_step(AcceptedStep)`` after every accepted step,
        ``after_step(AcceptedStep, StepperState)`` once the step is complete (to checkpoint it).
        ``schedule``: increasing step end times to replay (they must contain the targets).
        ``resume``: continue from a saved state instead of from ``forms.u`` at t = 0."""
        f, run = self.forms, self.settings
        control = self.controller(targets, schedule)
        if resume is None:
            history = [(0.0, f.u.x.array.copy())]  # newest last, at most HISTORY_LENGTH states
        else:
            history = [(tk, np.array(state)) for tk, state in resume.history]
            self.stats = StepperStats(**resume.stats)
            f.u.x.array[:] = history[-1][1]
            control.resume(resume)
        while not control.done:
            step = control.propose()
            if not (np.isfinite(step.h) and step.t + step.h > step.t):
                # h below the rounding of t: two states at the same time would follow
                s = self.time_scale_s
                raise SolverError(f"the time step dt = {step.h * s:.3g} s no longer advances t = {step.t * s:.6g} s "
                                  "in double precision: the solution changes faster than the steps can resolve; "
                                  "check the case for unphysical values (diffusion coefficients, beam current, "
                                  "run.time_tolerance)")
            a = self._set_up(step, history, control.steps)
            if self.stats.steps >= run.max_steps:
                raise SolverError(f"run.max_steps = {run.max_steps} steps taken and t = "
                                  f"{step.t * self.time_scale_s:.6g} s < t_end; raise run.max_steps or "
                                  "run.time_tolerance")
            converged, its, reason = self.newton.solve()
            self.stats.newton_iterations += its
            self.stats.krylov_iterations += getattr(self.newton, "last_linear_iterations", 0)
            if not converged:
                self.stats.newton_failures += 1
                self.stats.replay_abandoned |= control.replaying
                if not control.newton_failed(step):
                    raise self._fail(f"Newton did not converge (PETSc reason {reason}, last update "
                                     f"max {self.newton.last_update_max})", step.t, step.h, control.retries)
                continue
            err = self._error_estimate(step, history, control.steps) if control.wants_error_estimate(step) else None
            if not control.accepts(err):
                self.stats.rejected_steps += 1
                if not control.rejected(step, err):
                    raise self._fail(f"time step rejected (error estimate {err:.3g} > run.time_tolerance "
                                     f"= {control.tolerance:.3g})", step.t, step.h, control.retries)
                continue
            accepted = AcceptedStep(step.t_end, step.h, a, its, step.hits)
            on_step(accepted)  # before the history moves on
            control.accepted(step, err, its)
            history = history[-(HISTORY_LENGTH - 1):] + [(control.t, f.u.x.array.copy())]
            self.stats.steps += 1
            if after_step is not None:
                after_step(accepted, StepperState(control.t, control.h_next, history, list(control.steps),
                                                  self.stats.as_dict()))
