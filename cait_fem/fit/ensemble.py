"""Forward solves of a fit, run concurrently on MPI sub-communicators.

The ranks of ``comm`` are split into ``groups`` sub-communicators (default: one per rank).
Every group builds, once and lazily, one :class:`~cait_fem.run.simulation.Simulation` per
experiment on its sub-communicator: forms are compiled once and each later solve only
loads new parameter values into Constants. A batch of tasks (the experiments of one
residual evaluation, or the perturbed solves of one finite-difference Jacobian) is split
over the groups by longest-expected-first scheduling, each group solves its share, and
the results are gathered on every rank, so the optimiser runs identically everywhere.
A task that starts from another task's final state (``initial_from``, a sequential
experiment) waits for it: a batch is solved in waves, each wave's results gathered
before the next.
A task that fails (SolverError) comes back with ``error`` set rather than raising, so no
rank is left waiting in a collective call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass

from mpi4py import MPI

import numpy as np

from cait_fem.case.experiment import Experiment
from cait_fem.errors import SolverError

from .problem import ForwardOutput


@dataclass(frozen=True)
class Task:
    key: object
    name: str  # experiment name (selects the compiled Simulation)
    experiment: Experiment
    schedule_s: np.ndarray | None = None  # replay these step ends (see AdaptiveBDF)
    initial_from: object = None  # key of a task of the same batch whose final state is the start
    initial: ForwardOutput | None = None  # or that final state itself


class Ensemble:
    def __init__(self, experiments: dict[str, Experiment], comm=None, groups: int = 0, depth_resolutions=None):
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        size = self.comm.size
        self.groups = min(groups or size, size)
        self.color = self.comm.rank * self.groups // size
        self.sub = self.comm.Split(self.color, self.comm.rank)
        self.base = dict(experiments)
        #: per experiment name, the depth rule its mesh is built with, when not its own
        #: (experiments that hand over their state share one mesh)
        self.depth_resolutions = dict(depth_resolutions or {})
        self._sims: dict = {}
        self.cost_s = {name: 1.0 for name in experiments}  # expected wall time per solve
        self.solves = 0
        self.compile_wall_s = 0.0
        self.simulations_built = 0  # of the fit's own experiments (not of those added later)
        self._added: set[str] = set()

    def add(self, name: str, experiment: Experiment, expected_cost_s: float, depth_resolution=None) -> None:
        """Another experiment to solve under ``name`` with its own Simulation (another mesh,
        e.g. the refined numerics of the fit's numerical error check), built on first use.
        ``expected_cost_s`` [s] orders the scheduling before its first solve."""
        self.base[name] = experiment
        self.cost_s[name] = expected_cost_s
        if depth_resolution is not None:
            self.depth_resolutions[name] = depth_resolution
        self._added.add(name)

    def discard(self, name: str) -> None:
        """Forget an added experiment and free its Simulation (mesh, forms, solver)."""
        self._sims.pop(name, None)
        self.base.pop(name, None)
        self.cost_s.pop(name, None)
        self.depth_resolutions.pop(name, None)
        self._added.discard(name)

    def _simulation(self, name: str):
        if name not in self._sims:
            from cait_fem.run.simulation import Simulation

            t0 = time.perf_counter()
            self._sims[name] = Simulation(self.base[name], comm=self.sub,
                                          depth_resolution=self.depth_resolutions.get(name))
            self.compile_wall_s += time.perf_counter() - t0
            self.simulations_built += name not in self._added
        return self._sims[name]

    def _assign(self, tasks: list[Task]) -> list[int]:
        """Group of every task: the longest expected first, each to the least loaded group."""
        load = [0.0] * self.groups
        group = [0] * len(tasks)
        for i in sorted(range(len(tasks)), key=lambda i: -self.cost_s[tasks[i].name]):
            g = int(np.argmin(load))
            group[i] = g
            load[g] += self.cost_s[tasks[i].name] * (0.8 if tasks[i].schedule_s is not None else 1.0)
        return group

    def _solve(self, task: Task, initial: ForwardOutput | None = None) -> ForwardOutput:
        sim = self._simulation(task.name)
        t0 = time.perf_counter()
        try:
            if initial is not None and initial.error is not None:
                raise SolverError(f"its initial state, the final state of another experiment, failed: {initial.error}")
            # a replayed (finite-difference) solve only needs the final profiles
            r = sim.run(task.experiment, schedule_s=task.schedule_s, record_series=task.schedule_s is None,
                        spatial_estimate=False,  # the fit's own numerical check: docs/fitting.md
                        initial=None if initial is None else initial.as_initial())
        except SolverError as exc:
            return ForwardOutput(sim.depth_m, tuple(s.name for s in task.experiment.species),
                                 np.zeros((len(task.experiment.species), sim.depth_m.size)), np.zeros(1),
                                 np.nan, np.nan, time.perf_counter() - t0, 0, error=str(exc))
        return ForwardOutput(r.depth_m, r.species_names, r.theta[-1], r.time_s, float(r.current_density_A_m2[-1]),
                             float(r.surface_potential_V[-1]), time.perf_counter() - t0, int(r.stats["steps"]),
                             potential_V=r.potential_V[-1])

    def run(self, tasks: list[Task]) -> list[ForwardOutput]:
        keys = {t.key: i for i, t in enumerate(tasks)}
        for t in tasks:
            if t.initial_from is not None and t.initial_from not in keys:
                raise ValueError(f"task {t.key!r} starts from {t.initial_from!r}, which is not in the batch")
        shared: dict[int, ForwardOutput] = {}
        while len(shared) < len(tasks):
            # the next wave: every task whose initial state is known
            wave = [i for i, t in enumerate(tasks) if i not in shared
                    and (t.initial_from is None or keys[t.initial_from] in shared)]
            if not wave:
                raise ValueError("tasks start from each other in a cycle")
            group = self._assign([tasks[i] for i in wave])
            mine = {}
            for i, g in zip(wave, group):
                if g == self.color:
                    t = tasks[i]
                    initial = shared[keys[t.initial_from]] if t.initial_from is not None else t.initial
                    mine[i] = self._solve(t, initial)
            for part in self.comm.allgather(mine if self.sub.rank == 0 else {}):
                shared.update(part)
        outputs = [shared[i] for i in range(len(tasks))]
        for t, out in zip(tasks, outputs):
            if out.error is None and t.schedule_s is None:
                self.cost_s[t.name] = out.wall_s
        self.solves += len(tasks)
        return outputs

    def close(self) -> None:
        self._sims.clear()
        self.sub.Free()
