"""The spatial error check of a 1D run (docs/numerics.md section 4.2): a companion run on
every other node replaying the run's steps, its Richardson estimate in the Result's
statistics, the warning above ``mesh.spatial_tolerance`` and the refinement factor that
:func:`cait_fem.simulate` uses to run again."""

from __future__ import annotations

import time
import warnings
import weakref

import numpy as np

from cait_fem.analysis.spatial_error import richardson_estimate
from cait_fem.errors import SolverError
from cait_fem.mesh.interval import create_interval_mesh, tag_ends
from cait_fem.output.result import Result

from . import checkpoint
from .callbacks import Callback, StepInfo

#: the pointwise spatial error estimate may reach this multiple of mesh.spatial_tolerance
#: (the RMS standard is 1e-3, the pointwise one 1e-2: docs/numerics.md section 4)
PEAK_FACTOR = 15.0


class StepTimes(Callback):
    """The end times [s] of a run's accepted steps, to replay them."""

    def __init__(self):
        self.t_s: list[float] = []

    def on_step(self, step: StepInfo) -> None:
        self.t_s.append(step.t_s)


def warn(result: Result, message: str) -> None:
    """A warning printed (Python warnings) and kept in ``result.stats["warnings"]``."""
    result.stats.setdefault("warnings", []).append(message)
    warnings.warn(message, stacklevel=4)


def exceeds_tolerance(stats: dict, tolerance: float) -> bool:
    """Whether the estimate in ``stats`` is above ``tolerance`` (RMS) or PEAK_FACTOR times
    it (pointwise); False without an estimate."""
    rms = stats.get("spatial_error_estimate")
    return rms is not None and (rms > tolerance or stats["spatial_error_estimate_max"] > PEAK_FACTOR * tolerance)


def refinement_factor(stats: dict, tolerance: float) -> float:
    """How much finer the depth mesh must be for the estimates in ``stats`` to meet
    ``tolerance`` (RMS) and PEAK_FACTOR * ``tolerance`` (pointwise): the error is second
    order in the spacing, with a margin of 1.2; between 1.5 and 4."""
    need = max(stats["spatial_error_estimate"] / tolerance,
               stats["spatial_error_estimate_max"] / (PEAK_FACTOR * tolerance))
    return float(min(max(1.2 * need**0.5, 1.5), 4.0))


class SpatialErrorCheck:
    """The check of one :class:`~cait_fem.run.simulation.Simulation` on the generated 1D
    mesh of ``depth_nodes`` (dimensionless); its companion is built on first use (the forms
    come from the JIT cache) and reused by later runs."""

    def __init__(self, sim, depth_nodes):
        # a weak reference: a cycle Simulation <-> check would leave both to the cyclic
        # garbage collector, which runs at different moments on different MPI ranks, and
        # the collective destruction of their PETSc objects (MUMPS) would then deadlock
        self._sim = weakref.ref(sim)
        self.depth_nodes, self._companion = depth_nodes, None

    @property
    def sim(self):
        return self._sim()

    def applies(self, wanted, schedule_s, initial, resume) -> bool:
        """``wanted`` (None: ``mesh.estimate_spatial_error`` unless replaying) and possible:
        a generated 1D mesh, a run from the pristine glass or a Result."""
        sim = self.sim
        if wanted is None:
            wanted = sim.experiment.mesh.estimate_spatial_error and schedule_s is None
        if not wanted or sim.user_mesh or sim.experiment.geometry.kind != "slab":
            return False  # no coarse companion of a user's or a 2D/3D mesh
        return resume is None and not isinstance(initial, checkpoint.Checkpoint)

    def companion(self):
        """The same case on every other node of this mesh."""
        if self._companion is None:
            coarse = self.depth_nodes[::2]
            if coarse[-1] != self.depth_nodes[-1]:
                coarse = np.append(coarse, self.depth_nodes[-1])
            sim = self.sim
            domain = create_interval_mesh(sim.comm, coarse)
            self._companion = type(sim)(sim.experiment, sim.comm, mesh=(domain, tag_ends(domain, coarse[-1])),
                                        mesh_unit_m=sim.scales.length_m)
        return self._companion

    def estimate(self, result: Result, step_times_s, initial) -> None:
        """Richardson estimate against the companion taking the same steps, into
        ``result.stats`` (and a warning when it exceeds ``mesh.spatial_tolerance``)."""
        t0 = time.perf_counter()
        exp = self.sim.experiment
        tolerance = exp.mesh.spatial_tolerance
        try:
            coarse = self.companion().run(exp, initial=initial, schedule_s=step_times_s, record_series=False,
                                          spatial_estimate=False)
            est = richardson_estimate(result.depth_m, result.theta, coarse.depth_m, coarse.theta)
            rms, peak = float(np.nanmax(est["rms"])), float(np.nanmax(est["max"]))
            failure = None if np.isfinite(rms) and np.isfinite(peak) else "no profile range to compare"
        except SolverError as exc:
            failure = f"the run on every other node failed ({exc})"
        if failure is not None:
            warn(result, f"the spatial error could not be estimated: {failure}")
            result.stats.update(spatial_error_estimate=None, spatial_error_estimate_max=None)
            return
        result.stats.update(spatial_error_estimate=rms, spatial_error_estimate_max=peak,
                            spatial_tolerance=tolerance,
                            spatial_error_by_output={"time_s": [float(t) for t in result.output_times_s],
                                                     "rms": est["rms"], "max": est["max"],
                                                     "profile_range_m": est["range_m"]},
                            spatial_estimate_wall_s=time.perf_counter() - t0)
        if exceeds_tolerance(result.stats, tolerance):
            which = (f"RMS {rms:.2g}" if rms > tolerance else f"pointwise {peak:.2g}")
            warn(result, f"estimated spatial error of the profiles {which} exceeds mesh.spatial_tolerance = "
                         f"{tolerance:g}{'' if rms > tolerance else f' x {PEAK_FACTOR:g}'} (theta): refine the "
                         "depth mesh (raise mesh.cells_per_front_width, lower mesh.max_front_spacing_m)")
