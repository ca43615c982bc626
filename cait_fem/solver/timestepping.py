"""Adaptive implicit time stepping: variable-step BDF1/BDF2 around the SNES Newton solver.

Per step: choose h (controller proposal, capped by dt_max and the BDF2 step-ratio limit,
shortened to land exactly on the next output time), set the BDF coefficients in the forms'
Constants, start Newton from the extrapolated state, then

* Newton failed: restore the history, divide h by 4, retry (``run.max_retries`` in a row);
* error estimate above ``run.time_tolerance``: reject, shrink h from the estimate, retry;
* otherwise accept, report the step to the caller, propose the next h from the error
  estimate and the Newton iteration count.

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

import numpy as np
from mpi4py import MPI

from . import bdf
from cait_fem.case.experiment import RunSettings
from cait_fem.errors import SolverError

NEWTON_TARGET = 4  # Newton iterations per step above which the step is not grown
NEWTON_FAILURE_SHRINK = 0.25
REJECTION_SHRINK_MAX = 0.7


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
class StepperState:
    """Everything the stepper carries from one accepted step to the next (dimensionless
    times; states are local arrays of ``forms.u``), so that a run resumed from it takes
    exactly the steps the uninterrupted run takes (cait_fem.run.checkpoint)."""

    t: float
    h_next: float
    history: list  # [(t, state array)], oldest first, at most 3
    steps: list  # previous accepted step sizes, newest first, at most 2
    stats: dict


@dataclass
class AcceptedStep:
    """What the caller needs to record an accepted step (dimensionless times)."""

    t: float
    h: float
    coefficients: tuple[float, float, float]
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

    def _error_estimate(self, order, h, history, steps) -> float:
        """Local error of the accepted Newton solution, max over owned concentration dofs."""
        f = self.forms
        diff = (f.u.x.array - bdf.predict(order, h, history)).reshape(-1, f.psi_index + 1)
        local = np.abs(diff[: self.n_owned, : f.psi_index])
        local_max = float(local.max()) if local.size else 0.0
        return bdf.error_factor(order, h, steps) * self.comm.allreduce(local_max, op=MPI.MAX)

    def _fail(self, what: str, t: float, h: float, retries: int) -> SolverError:
        s = self.time_scale_s
        return SolverError(f"{what} at t = {t * s:.6g} s with dt = {h * s:.3g} s after {retries - 1} "
                           "step reductions; try a smaller run.dt_initial_s, a finer mesh, a larger "
                           "run.max_retries or looser solver tolerances")

    def integrate(self, targets: list[float], on_step, schedule: list[float] | None = None,
                  resume: StepperState | None = None, after_step=None):
        """Step until the last target; ``on_step(AcceptedStep)`` after every accepted step,
        ``after_step(StepperState)`` once the step is complete (to checkpoint it).
        ``schedule``: increasing step end times to replay (they must contain the targets).
        ``resume``: continue from a saved state instead of from ``forms.u`` at t = 0."""
        f, run = self.forms, self.settings
        replay = list(schedule) if schedule is not None else None
        tol = run.time_tolerance
        max_order = 2 if run.scheme == "bdf2" else 1
        dt_max = (run.dt_max_s or np.inf) / self.time_scale_s
        if resume is None:
            t, h_next = 0.0, run.dt_initial_s / self.time_scale_s
            history = [(0.0, f.u.x.array.copy())]  # newest last, at most 3 states
            steps: list[float] = []  # previous accepted step sizes, newest first
        else:
            t, h_next = resume.t, resume.h_next
            history = [(tk, np.array(state)) for tk, state in resume.history]
            steps = list(resume.steps)
            self.stats = StepperStats(**resume.stats)
            f.u.x.array[:] = history[-1][1]
            if replay is not None:
                replay = [te for te in replay if te > t * (1.0 + 1e-12)]
        k = sum(1 for target in targets if target <= t * (1.0 + 1e-12))
        retries = 0
        while k < len(targets):
            order = min(max_order, len(history))
            remaining = targets[k] - t
            if replay:
                h = replay[0] - t
                hits = truncated = h >= remaining * (1.0 - 1e-10)
                if hits:
                    h = remaining
            else:
                h = min(h_next, dt_max)
                if order == 2:
                    h = min(h, bdf.MAX_BDF2_RATIO * steps[0])
                hits = h >= remaining * (1.0 - 1e-10)
                truncated = hits or 2.0 * h > remaining
                if hits:
                    h = remaining
                elif truncated:
                    h = 0.5 * remaining  # two equal steps rather than a sliver before the output time
            a = bdf.coefficients(order, h, steps[0] if steps else None)
            f.set_bdf(h, a)
            f.u_n.x.array[:] = history[-1][1]
            f.u_nm1.x.array[:] = history[-2][1] if len(history) >= 2 else history[-1][1]
            f.u.x.array[:] = bdf.predict(min(order, len(history) - 1), h, history)

            if self.stats.steps >= run.max_steps:
                raise SolverError(f"run.max_steps = {run.max_steps} steps taken and t = "
                                  f"{t * self.time_scale_s:.6g} s < t_end; raise run.max_steps or "
                                  "run.time_tolerance")
            converged, its, reason = self.newton.solve()
            self.stats.newton_iterations += its
            self.stats.krylov_iterations += getattr(self.newton, "last_linear_iterations", 0)
            if not converged:
                self.stats.newton_failures += 1
                if replay:
                    replay = None
                    self.stats.replay_abandoned = True
                retries += 1
                if retries > run.max_retries:
                    raise self._fail(f"Newton did not converge (PETSc reason {reason}, last update "
                                     f"max {self.newton.last_update_max})", t, h, retries)
                h_next = NEWTON_FAILURE_SHRINK * h
                continue

            err = None if replay or len(history) < order + 1 else self._error_estimate(order, h, history, steps)
            if replay:
                replay.pop(0)
                h_next = h  # where adaptive stepping resumes should replay be abandoned
            elif err is not None and err > tol:
                self.stats.rejected_steps += 1
                retries += 1
                if retries > run.max_retries:
                    raise self._fail(f"time step rejected (error estimate {err:.3g} > "
                                     f"run.time_tolerance = {tol:.3g})", t, h, retries)
                h_next = h * min(REJECTION_SHRINK_MAX, bdf.step_factor(err, tol, order))
                continue

            retries = 0
            on_step(AcceptedStep(t + h, h, a, its, hits))  # before the history moves on
            t += h
            steps = [h] + steps[:1]
            history = history[-2:] + [(t, f.u.x.array.copy())]
            self.stats.steps += 1
            grow = bdf.step_factor(err, tol, order) if err is not None else 2.0
            if its > NEWTON_TARGET:
                grow = min(grow, 1.0 if its <= NEWTON_TARGET + 2 else 0.5)
            h_next = max(h * grow, h_next) if truncated else h * grow
            k += hits
            if after_step is not None:
                after_step(StepperState(t, h_next, history, steps, self.stats.as_dict()))
