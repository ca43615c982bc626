"""Callbacks of a run (in the style of PyBaMM's): objects that :meth:`Simulation.run
<cait_fem.run.simulation.Simulation.run>` tells about every accepted step, every output time
and the end of the run, in the order given. Progress bars, field exports and checkpoints are
callbacks; so is anything a user wants to watch or record during a run.

A callback implements ``on_step``, ``on_output`` and ``on_end``: subclass :class:`Callback`
(whose methods do nothing) and override what is needed, or implement all three (the writers
of :mod:`cait_fem.post`, a layer below, do: :class:`~cait_fem.post.fields.FieldWriter`,
:class:`~cait_fem.post.spot_exports.SpotExports`). While ``on_step`` and ``on_output`` run,
the simulation's state (``forms.u``) holds the accepted step's solution.

Pure: no DOLFINx.
"""

from __future__ import annotations

from dataclasses import dataclass

from cait_fem.errors import ConfigError

from .record import RunRecord

METHODS = ("on_step", "on_output", "on_end")


@dataclass(frozen=True)
class StepInfo:
    """An accepted step: it ends at ``t_s`` [s] and took ``dt_s`` [s] and
    ``newton_iterations``; ``reached_output``: ``t_s`` is an output time; ``record``: what the
    run has recorded so far, including this step (its ``stepper_state`` resumes the run after
    this step)."""

    t_s: float
    dt_s: float
    newton_iterations: int
    reached_output: bool
    record: RunRecord


class Callback:
    """Base class of the callbacks of a run; every method does nothing."""

    def on_step(self, step: StepInfo) -> None:
        """After every accepted step."""

    def on_output(self, t_s: float, step: StepInfo) -> None:
        """At every output time ``t_s`` [s], after :meth:`on_step` of that step."""

    def on_end(self, error: BaseException | None = None) -> None:
        """Once, when the run stops: after its last step (``error`` None) or because of
        ``error`` (which is raised again after every callback's ``on_end``)."""


class CallbackList(Callback):
    """Several callbacks called in turn, in the order given. Refuses (ConfigError) an
    object that lacks one of the three methods."""

    def __init__(self, callbacks=()):
        self.callbacks = list(callbacks)
        for i, cb in enumerate(self.callbacks):
            missing = [m for m in METHODS if not callable(getattr(cb, m, None))]
            if missing:
                raise ConfigError(f"callbacks[{i}] = {cb!r} has no {', '.join(missing)}: a callback implements "
                                  f"{', '.join(METHODS)} (subclass cait_fem.run.callbacks.Callback)")

    def on_step(self, step: StepInfo) -> None:
        for cb in self.callbacks:
            cb.on_step(step)

    def on_output(self, t_s: float, step: StepInfo) -> None:
        for cb in self.callbacks:
            cb.on_output(t_s, step)

    def on_end(self, error: BaseException | None = None) -> None:
        for cb in self.callbacks:
            cb.on_end(error)


class ExportAdapter(Callback):
    """``run(exports=[...])``: ``export.write(t_s)`` at every output time. The caller closes
    the export (as before callbacks existed); pass it in ``callbacks`` to have the run close it."""

    def __init__(self, export):
        if not callable(getattr(export, "write", None)):
            raise ConfigError(f"exports: {export!r} has no write(t_s); an export is written at every output "
                              "time (e.g. cait_fem.post.spot_exports.SpotExports)")
        self.export = export

    def on_output(self, t_s: float, step: StepInfo) -> None:
        self.export.write(t_s)


class ProgressAdapter(Callback):
    """``run(progress=reporter)``: ``reporter.update(t_s, dt_s, newton_iterations)`` after
    every step and ``reporter.close()`` at the end (:mod:`cait_fem.run.progress`)."""

    def __init__(self, reporter):
        missing = [m for m in ("update", "close") if not callable(getattr(reporter, m, None))]
        if missing:
            raise ConfigError(f"progress: {reporter!r} has no {', '.join(missing)}; a progress reporter has "
                              "update(t_s, dt_s, newton_iterations) and close() (cait_fem.run.progress)")
        self.reporter = reporter

    def on_step(self, step: StepInfo) -> None:
        self.reporter.update(step.t_s, step.dt_s, step.newton_iterations)

    def on_end(self, error: BaseException | None = None) -> None:
        self.reporter.close()
