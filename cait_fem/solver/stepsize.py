"""Step-size control of the adaptive BDF stepper (pure numpy, no DOLFINx).

:class:`Stepsize` makes every decision about the size of the next step; the stepper
(:class:`cait_fem.solver.timestepping.AdaptiveBDF`) only solves and reports back. All times
are dimensionless (the stepper's time scale). The rules, in the order they apply:

* proposal: the previous accepted step times the factor from the error estimate
  (:func:`cait_fem.solver.bdf.step_factor`, at most 2, and 2 when there was no estimate),
  limited by the Newton iterations: more than :data:`NEWTON_TARGET` iterations keep h
  (up to ``NEWTON_TARGET + 2``) or halve it (more);
* caps: ``dt_max``, and at order k >= 2 the step ratio ``h / h_previous <= bdf.MAX_RATIO[k]``
  (zero stability of variable-step BDF2 and BDF3);
* output times: a step within a relative 1e-10 of the next output time lands exactly on it;
  a step that would leave less than itself before the output time is replaced by half the
  remaining interval, so two equal steps reach it rather than a full step and a sliver.
  A shortened ("truncated") step does not shrink the proposal carried on beyond it;
* Newton failure: retry with h / 4 (:data:`NEWTON_FAILURE_SHRINK`);
* rejection (error estimate above the tolerance): retry with
  ``h * min(0.7, step_factor)`` (:data:`REJECTION_SHRINK_MAX`);
* consecutive failed attempts of one step (Newton failures and rejections together) are
  limited to ``max_retries``;
* replay of a schedule (``schedule``): the step ends are given, no error test is made and
  the proposal is not used; a Newton failure abandons the replay for adaptive stepping;
* break times (``breaks``: kinks and jumps of a boundary value, e.g. a voltage history):
  steps land on them like on output times (but store nothing); after a jump the stepper
  restarts as at t = 0 (order 1, step ``dt_initial``), since the history before it
  says nothing about the solution after it.

The order is 1 for the first step (one state known) and rises by one per step to
``max_order`` (BDFk needs k earlier states); the error is estimated once the predictor has
its ``order + 1`` earlier states: from the second step at order 1, the third at order 2,
the fourth at order 3.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from . import bdf

NEWTON_TARGET = 4  # Newton iterations per step above which the step is not grown
NEWTON_FAILURE_SHRINK = 0.25
REJECTION_SHRINK_MAX = 0.7
HISTORY_LENGTH = 4  # states kept: BDF3 and its cubic predictor need four
#: relative tolerance within which a step reaches an output time (rounding of t + h)
LANDING_RTOL = 1e-10
#: relative tolerance within which a time counts as reached when resuming
REACHED_RTOL = 1e-12


@dataclass
class StepperState:
    """Everything the stepper carries from one accepted step to the next (dimensionless
    times; states are local arrays of ``forms.u``), so that a run resumed from it takes
    exactly the steps the uninterrupted run takes (cait_fem.run.checkpoint)."""

    t: float
    h_next: float
    history: list  # [(t, state array)], oldest first, at most HISTORY_LENGTH
    steps: list  # previous accepted step sizes, newest first, at most HISTORY_LENGTH - 1
    stats: dict


@dataclass(frozen=True)
class Step:
    """One attempt proposed by :class:`Stepsize`: from ``t`` over ``h`` at BDF ``order``;
    the predictor extrapolates at ``predictor_order``; ``hits``: the step ends on the next
    output time; ``truncated``: h was shortened for that output time."""

    t: float
    h: float
    order: int
    predictor_order: int
    hits: bool
    truncated: bool
    #: the step ends on a break time (``Stepsize(breaks=...)``)
    at_break: bool = False

    @property
    def t_end(self) -> float:
        return self.t + self.h


class Stepsize:
    """Step-size controller from t = 0 (or a :class:`StepperState` via :meth:`resume`)
    through the increasing output times ``targets``.

    ``dt_initial``, ``dt_max``: first and largest step; ``max_order``: 1, 2 or 3 (BDF1 to BDF3);
    ``tolerance``: bound of the local error estimate; ``max_retries``: failed attempts in
    a row before giving up; ``schedule``: increasing step end times to replay (an earlier
    run's; they must contain the targets); ``breaks``: (time, jump) pairs, times the steps
    land on, and after a jump restart from (see module doc). All times dimensionless.

    Use: ``step = propose()``, solve, then ``newton_failed(step)``, or
    ``accepts(err)`` and ``accepted(step, err, newton_iterations)`` or ``rejected(step, err)``;
    ``newton_failed``/``rejected`` return False once ``max_retries`` is exceeded.
    """

    def __init__(self, targets, *, dt_initial: float, max_order: int, tolerance: float,
                 max_retries: int, dt_max: float = np.inf, schedule=None, breaks=()):
        if max_order not in range(1, bdf.MAX_ORDER + 1):
            raise ValueError(f"max_order = {max_order!r}: BDF1 to BDF{bdf.MAX_ORDER} (1 to {bdf.MAX_ORDER})")
        self.targets = [float(t) for t in targets]
        self.max_order = max_order
        self.tolerance = tolerance
        self.max_retries = max_retries
        self.dt_max = dt_max
        self.replay = list(schedule) if schedule is not None else None
        self.breaks = sorted((float(t), bool(jump)) for t, jump in breaks)
        self.b = 0  # index of the next break time
        self.dt_initial = dt_initial
        self.t = 0.0
        self.h_next = dt_initial
        self.steps: list[float] = []  # previous accepted step sizes, newest first, at most HISTORY_LENGTH - 1
        self.n_states = 1  # states known to the stepper (the initial one)
        self.k = 0  # index of the next output time
        self.retries = 0  # failed attempts of the current step

    def resume(self, state: StepperState) -> None:
        """Continue from ``state`` (of an interrupted run with the same targets)."""
        self.t, self.h_next = state.t, state.h_next
        self.steps = list(state.steps)
        self.n_states = len(state.history)
        if self.replay is not None:
            self.replay = [te for te in self.replay if te > self.t * (1.0 + REACHED_RTOL)]
        self.k = sum(1 for target in self.targets if target <= self.t * (1.0 + REACHED_RTOL))
        self.retries = 0
        if any(jump and abs(tb - self.t) <= REACHED_RTOL * tb for tb, jump in self.breaks):
            self.n_states = 1  # stopped right after a jump: restart there, as the run did

    # -- state ----------------------------------------------------------------------------
    @property
    def done(self) -> bool:
        """The last output time is reached."""
        return self.k >= len(self.targets)

    @property
    def replaying(self) -> bool:
        """The next step is one of the schedule's."""
        return bool(self.replay)

    def order(self) -> int:
        return min(self.max_order, self.n_states)

    def _next_break(self) -> float | None:
        """The first break time after t (None if none is left)."""
        while self.b < len(self.breaks) and self.breaks[self.b][0] <= self.t * (1.0 + REACHED_RTOL):
            self.b += 1
        return self.breaks[self.b][0] if self.b < len(self.breaks) else None

    # -- decisions ------------------------------------------------------------------------
    def propose(self) -> Step:
        """The next attempt."""
        order = self.order()
        target = self.targets[self.k]
        remaining = target - self.t
        brk = self._next_break()
        on_target = False  # the break is the output time: landing there serves both
        if brk is not None and brk >= target * (1.0 - LANDING_RTOL):
            on_target = brk <= target * (1.0 + LANDING_RTOL)
            brk = None
        if self.replay:
            h = self.replay[0] - self.t
            hits = truncated = h >= remaining * (1.0 - LANDING_RTOL)
            if hits:
                h = remaining
            at_break = (brk is not None and self.t + h >= brk * (1.0 - LANDING_RTOL)) or (hits and on_target)
        else:
            stop = remaining if brk is None else brk - self.t
            h = min(self.h_next, self.dt_max)
            if order >= 2:
                h = min(h, bdf.MAX_RATIO[order] * self.steps[0])
            lands = h >= stop * (1.0 - LANDING_RTOL)
            truncated = lands or 2.0 * h > stop
            if lands:
                h = stop
            elif truncated:
                h = 0.5 * stop  # two equal steps rather than a sliver before the output time
            hits, at_break = lands and brk is None, lands and (brk is not None or on_target)
        return Step(self.t, h, order, min(order, self.n_states - 1), hits, truncated, at_break)

    def wants_error_estimate(self, step: Step) -> bool:
        """Whether ``step`` is tested: not when replaying, nor before the predictor has
        ``order + 1`` earlier states."""
        return not self.replay and self.n_states >= step.order + 1

    def accepts(self, err: float | None) -> bool:
        """The error test (``err`` None: no test)."""
        return err is None or err <= self.tolerance

    def newton_failed(self, step: Step) -> bool:
        """Newton did not converge on ``step``: abandon a replay, retry with h / 4.
        False once the retries are used up."""
        if self.replay:
            self.replay = None
        self.retries += 1
        self.h_next = NEWTON_FAILURE_SHRINK * step.h
        return self.retries <= self.max_retries

    def rejected(self, step: Step, err: float) -> bool:
        """``step`` failed the error test with estimate ``err``: retry with a step shrunk
        from the estimate, by 0.7 at least. False once the retries are used up."""
        self.retries += 1
        self.h_next = step.h * min(REJECTION_SHRINK_MAX, bdf.step_factor(err, self.tolerance, step.order))
        return self.retries <= self.max_retries

    def accepted(self, step: Step, err: float | None, newton_iterations: int) -> None:
        """``step`` is accepted (``err`` its error estimate, None if none was made): move on
        and propose the next h."""
        carried = self.h_next
        if self.replay:
            self.replay.pop(0)
            carried = step.h  # where adaptive stepping resumes should replay be abandoned
        self.retries = 0
        self.t = step.t_end
        self.steps = [step.h] + self.steps[: HISTORY_LENGTH - 2]
        self.n_states = min(HISTORY_LENGTH, self.n_states + 1)
        grow = bdf.step_factor(err, self.tolerance, step.order) if err is not None else 2.0
        if newton_iterations > NEWTON_TARGET:
            grow = min(grow, 1.0 if newton_iterations <= NEWTON_TARGET + 2 else 0.5)
        self.h_next = max(step.h * grow, carried) if step.truncated else step.h * grow
        self.k += step.hits
        if step.at_break:
            jump = self.breaks[self.b][1]
            self.b += 1
            if jump:
                self.n_states, self.steps, self.h_next = 1, [], self.dt_initial
