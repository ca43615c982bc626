"""Progress of a run over simulated time.

A reporter is a callback of the run (:class:`cait_fem.run.callbacks.Callback`): its
``update(t_s, dt_s, newton_iterations)`` is called after every accepted step and its
``close()`` at the end (``run(progress=reporter)`` or ``run(callbacks=[reporter])``).
Steps start near 1e-9 s and grow by orders of magnitude, so the bar advances on a
logarithmic scale of simulated time, ``log(1 + t/t_ref) / log(1 + t_end/t_ref)`` with
``t_ref = t_end * 1e-6`` by default; the postfix shows t, dt and the Newton iterations of the last step. Only rank 0 of
``comm`` shows anything; ``quiet=True`` (or :class:`QuietReporter`) shows nothing.
"""

from __future__ import annotations

import math
import sys

from .callbacks import Callback


def _rank(comm) -> int:
    if comm is None:
        return 0
    rank = getattr(comm, "rank", None)
    return int(rank if rank is not None else comm.Get_rank())


class QuietReporter(Callback):
    """Does nothing; the same interface as :class:`ProgressReporter`."""

    steps = 0

    def update(self, t_s: float, dt_s: float, newton_iterations: int) -> None:
        self.steps += 1

    def close(self) -> None:
        pass

    def on_step(self, step) -> None:
        self.update(step.t_s, step.dt_s, step.newton_iterations)

    def on_end(self, error=None) -> None:
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
        return False


class ProgressReporter(QuietReporter):
    """tqdm bar over simulated time (log-ish scale), postfix ``t, dt, newton``.

    Parameters: ``t_end_s`` the end of the run; ``t_ref_s`` the time at which the log scale
    turns linear (default ``1e-6 t_end``); ``quiet`` suppress everything; ``comm`` an MPI
    communicator (only rank 0 draws); ``desc`` the bar's label; ``file`` its stream.
    """

    resolution = 1000

    def __init__(self, t_end_s: float, *, t_ref_s: float | None = None, quiet: bool = False, comm=None,
                 desc: str = "cait-fem", file=None, mininterval: float = 0.5):
        if not (t_end_s > 0 and math.isfinite(t_end_s)):
            raise ValueError(f"t_end_s = {t_end_s!r} must be a finite number > 0")
        self.t_end_s = float(t_end_s)
        self.t_ref_s = float(t_ref_s) if t_ref_s else self.t_end_s * 1e-6
        self.steps = 0
        self.total_newton_iterations = 0
        self._bar = None
        if quiet or _rank(comm) != 0:
            return
        from tqdm import tqdm
        self._bar = tqdm(total=self.resolution, desc=desc, file=file if file is not None else sys.stderr,
                         mininterval=mininterval, leave=True, dynamic_ncols=True,
                         bar_format="{desc}: {percentage:3.0f}%|{bar}| [{elapsed}{postfix}]")
        self._bar.set_postfix_str(self._postfix(0.0, 0.0, 0), refresh=False)

    @property
    def active(self) -> bool:
        return self._bar is not None

    def fraction(self, t_s: float) -> float:
        """Progress in [0, 1] on the log-ish time scale."""
        if t_s <= 0:
            return 0.0
        f = math.log1p(t_s / self.t_ref_s) / math.log1p(self.t_end_s / self.t_ref_s)
        return min(max(f, 0.0), 1.0)

    @staticmethod
    def _postfix(t_s, dt_s, newton_iterations) -> str:
        return f"t={t_s:.3g} s, dt={dt_s:.2g} s, newton={newton_iterations}"

    def update(self, t_s: float, dt_s: float, newton_iterations: int) -> None:
        self.steps += 1
        self.total_newton_iterations += int(newton_iterations)
        if self._bar is None:
            return
        n = int(round(self.fraction(float(t_s)) * self.resolution))
        self._bar.set_postfix_str(self._postfix(float(t_s), float(dt_s), int(newton_iterations)),
                                  refresh=False)
        self._bar.update(max(n - self._bar.n, 0))

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None


def make_reporter(t_end_s: float, *, quiet: bool = False, comm=None, **kwargs):
    """A :class:`ProgressReporter`, or a :class:`QuietReporter` when quiet or not rank 0."""
    if quiet or _rank(comm) != 0:
        return QuietReporter()
    return ProgressReporter(t_end_s, comm=comm, **kwargs)
