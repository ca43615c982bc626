"""Run an Experiment: mesh -> forms -> adaptive BDF time stepping with SNES -> Result.

A :class:`Simulation` compiles its forms once; :meth:`Simulation.run` can then be called
again with an experiment of the same structure but other parameter values (what a fit
does) without any JIT compilation. :func:`cait_fem.simulate`
(:mod:`cait_fem.run.converged`) repeats a run on finer meshes until its spatial error
estimate meets the tolerance.
"""

from __future__ import annotations

import time as _time
from functools import partial

from mpi4py import MPI  # (MPI is initialised by mpi4py before PETSc/DOLFINx)

import numpy as np
from scipy import constants as sc

from cait_fem.case.experiment import AnodeFront, Beam, Experiment, PotentialFront
from cait_fem.errors import ConfigError
from cait_fem.fem.backend import require_dolfinx
from cait_fem.fem.forms import BACK_TAG, FRONT_TAG, NPPForms
from cait_fem.fem.observables import Observables
from cait_fem.fem.scales import LENGTH_SCALE_M, Scales
from cait_fem.fem.state import StateLayout
from cait_fem.mesh.depth_grading import graded_nodes_m
from cait_fem.mesh.interval import create_interval_mesh, tag_ends
from cait_fem.mesh.tag_check import check_user_mesh
from cait_fem.output.result import Result
from cait_fem.post.axis_profile import AxisProfile
from cait_fem.solver.newton import NewtonSolver
from cait_fem.solver.timestepping import AdaptiveBDF, StepperState

from . import checkpoint
from .callbacks import Callback, CallbackList, ExportAdapter, ProgressAdapter, StepInfo
from .record import SERIES, RunRecord  # noqa: F401 (SERIES: the time series' keys, also here)
from .spatial_check import SpatialErrorCheck, StepTimes, warn


class Simulation:
    """One experiment on one mesh, forms compiled once.

    ``mesh``: optional ``(domain, facet_tags)``, a DOLFINx mesh of your own instead of the
    one cait_fem generates from ``experiment.mesh`` and ``experiment.geometry``: a simplex
    mesh of the geometry's dimension (1D for a slab, 2D for a section or axisymmetric r-z
    section, 3D otherwise), the depth its last coordinate from 0 (front) to
    ``glass.thickness_m``, coordinates in units of ``mesh_unit_m`` [m] (default 1e-9: nm),
    facets tagged as in :mod:`cait_fem.mesh.tags` (at least ``beam_spot`` = 1 and
    ``back_electrode`` = 2), in 2D/3D the lateral coordinates 0 at the spot centre (the
    depth profile of the Result is sampled there). Its communicator is the run's
    (``comm``, if given, must be it).
    ``mesh_unit_m`` is also the length scale of the forms (:class:`~cait_fem.fem.scales.Scales`).
    ``depth_resolution``: build the mesh with this rule instead of ``experiment``'s
    (:class:`~cait_fem.case.resolution.DepthResolution`; e.g. the checkpoint's, so that a run
    resumed with a later ``t_end_s`` continues on the mesh it was written on)."""

    def __init__(self, experiment: Experiment, comm=None, *, mesh=None, mesh_unit_m: float = LENGTH_SCALE_M,
                 depth_resolution=None):
        require_dolfinx()
        self.experiment = experiment
        self.scales = Scales.of(experiment, mesh_unit_m)
        geometry = experiment.geometry
        self.depth_resolution = depth_resolution if depth_resolution is not None else experiment.depth_resolution
        depths = graded_nodes_m(experiment.glass.thickness_m, experiment.mesh,
                                self.depth_resolution) / self.scales.length_m
        self.spatial_check = SpatialErrorCheck(self, depths)
        self.user_mesh = mesh is not None
        if mesh is not None:
            self.domain, self.facet_tags = check_user_mesh(mesh, comm, experiment, self.scales.length_m)
            self.comm = self.domain.comm
        else:
            self.comm = comm if comm is not None else MPI.COMM_WORLD
            if geometry.kind == "slab":
                self.domain = create_interval_mesh(self.comm, depths)
                self.facet_tags = tag_ends(self.domain, depths[-1])
            else:
                from cait_fem.mesh.gmsh_sample import create_mesh
                self.domain, _, self.facet_tags = create_mesh(self.comm, geometry, experiment.glass.thickness_m,
                                                              experiment.mesh, self.scales.length_m,
                                                              resolution=self.depth_resolution)
        self.forms = NPPForms(self.domain, self.facet_tags, experiment.physics, length_scale_m=self.scales.length_m,
                              front_tag=FRONT_TAG, back_tag=BACK_TAG, axisymmetric=geometry.axisymmetric)
        self.layout = self.forms.layout
        self.newton = NewtonSolver(self.forms, self.forms.dirichlet_bcs(), experiment.solver, self.comm)
        self.n_owned = self.forms.V.dofmap.index_map.size_local
        self.observables = Observables(self.forms, self.n_owned, self.comm)
        self.bs = self.layout.block_size
        self.axis = AxisProfile(self.forms, self.n_owned, depths, self.comm)
        self.depth_m = self.axis.depth * self.scales.length_m
        tdim = self.domain.topology.dim
        self.cells = self.domain.topology.index_map(tdim).size_global

    # -- the run --------------------------------------------------------------------------
    def run(self, experiment: Experiment | None = None, progress=None, initial=None,
            schedule_s=None, record_series: bool = True, checkpoint_dir=None, resume=None,
            exports=(), callbacks=(), spatial_estimate: bool | None = None) -> Result:
        """Integrate from t = 0 to ``run.t_end_s``. ``experiment``: new parameter values for
        the same structure (no recompilation). ``initial``: start from the final state of a
        previous run on the same sample (a sequential experiment, e.g. double CAIT): a
        :class:`~cait_fem.output.result.Result` (its profiles, interpolated in depth) or a
        :class:`~cait_fem.run.checkpoint.Checkpoint` (its nodal state, same mesh); default the
        pristine glass (docs/model.md section 5). ``schedule_s``: replay these step
        end times [s] without error control (e.g. ``earlier_result.time_s[1:]``), so that
        results depend smoothly on the parameters (finite-difference Jacobians of a fit).
        ``record_series = False``: no per-step observables (the time series hold t = 0 only), for
        solves of which only the profiles matter. ``resume``: a
        :class:`~cait_fem.run.checkpoint.Checkpoint` of an interrupted run of this experiment
        (same structure and mesh) to continue from, to this experiment's t_end.

        ``callbacks``: :class:`~cait_fem.run.callbacks.Callback` objects told about every
        accepted step, output time and the end of the run, in this order (e.g.
        :class:`cait_fem.post.spot_exports.SpotExports`, :class:`cait_fem.post.fields.FieldWriter`,
        a :class:`cait_fem.run.progress.ProgressReporter`; the run closes them at its end).
        Shorthands: ``progress``: a reporter (``update(t_s, dt_s, newton_iterations)`` after
        every step, ``close()`` at the end); ``exports``: objects whose ``write(t_s)`` is called
        at every output time (the caller closes them); ``checkpoint_dir``: write a checkpoint
        there at every output time (the latest replaces the previous one).

        ``spatial_estimate``: estimate the profiles' spatial error (docs/numerics.md section 4)
        by a second run on every other node replaying this run's steps; into
        ``result.stats`` (``spatial_error_estimate``, RMS in theta, its largest pointwise
        value and per output time) with a warning above ``mesh.spatial_tolerance``. Default:
        ``mesh.estimate_spatial_error`` for a run of a generated 1D mesh with error control
        (not a replay), started from the pristine glass or a Result."""
        wall0 = _time.perf_counter()
        steps = StepTimes()
        events = self._callbacks([*callbacks, steps], progress, exports, checkpoint_dir)
        try:
            self._load_parameters(experiment)
            record = self._start(initial, resume, record_series)
            stats = self._integrate(record, schedule_s, events)
        except BaseException as exc:
            events.on_end(exc)
            raise
        events.on_end(None)
        result = self._result(record, stats, wall0)
        if self.spatial_check.applies(spatial_estimate, schedule_s, initial, resume):
            self.spatial_check.estimate(result, steps.t_s, initial)
            result.stats["wall_time_s"] = _time.perf_counter() - wall0
        _warn_if_front_left_fine_mesh(result)
        return result

    def _callbacks(self, callbacks, progress, exports, checkpoint_dir) -> CallbackList:
        """All of a run's callbacks: progress first, the checkpoint last, so that a run
        resumed from a checkpoint finds everything of its output time already done."""
        every = [] if progress is None else [ProgressAdapter(progress)]
        every += [ExportAdapter(e) for e in exports] + list(callbacks)
        if checkpoint_dir is not None:
            every.append(_CheckpointWriter(self, checkpoint_dir))
        return CallbackList(every)

    def _load_parameters(self, experiment: Experiment | None) -> None:
        """New parameter values for the compiled forms and the Newton solver."""
        if experiment is not None:
            self.forms.set_parameters(experiment)
            self.newton.update_settings(experiment.solver)
            self.experiment = experiment

    def _start(self, initial, resume, record_series: bool) -> RunRecord:
        """Set the state at t = 0 into the forms and start the run's record; with ``resume``,
        continue the checkpoint's record (its ``stepper_state`` is where stepping resumes)."""
        f, sc_ = self.forms, self.scales
        f.set_time(0.0)  # a voltage history starts again with every run
        f.u.x.array[:] = self._initial_state(initial)
        f.u_n.x.array[:] = f.u.x.array
        f.u_nm1.x.array[:] = f.u.x.array
        start = self.observables.integrals(with_rate=False)
        record = RunRecord.at_start(content0=start["native_deviation"],
                                    surface_potential_V=start["surface_potential"] * sc_.potential_V,
                                    foreign_m2=sc_.density_m3 * sc_.length_m * start["foreign"],
                                    record_series=record_series)
        self._resumed = None
        if resume is not None:
            self._restore(resume, record)
        return record

    def _integrate(self, record: RunRecord, schedule_s, events: CallbackList) -> dict:
        """Step through the output times, recording into ``record`` and telling ``events``;
        the stepper's statistics."""
        sc_ = self.scales
        stepper = AdaptiveBDF(self.forms, self.newton, self.experiment.run, sc_.time_s, self.n_owned, self.comm,
                              breaks=self._voltage_breaks())
        schedule = None if schedule_s is None else [t / sc_.time_s for t in schedule_s]
        stepper.integrate([t / sc_.time_s for t in self.experiment.run.all_output_times_s],
                          partial(self._store_step, record), schedule, resume=record.stepper_state,
                          after_step=partial(self._step_done, record, events))
        return stepper.stats.as_dict()

    def _voltage_breaks(self) -> tuple:
        """(dimensionless time, jump) of the kinks and jumps of the front's voltage history
        (docs/model.md section 4.7), or of the large changes of a beam current history
        (section 4.1), before t_end: the stepper lands on them."""
        front, ts = self.experiment.front, self.scales.time_s
        if isinstance(front, Beam):
            breaks = front.current_breaks_s()
        elif isinstance(front, (PotentialFront, AnodeFront)):
            breaks = front.voltage_breaks_s()
        else:
            return ()
        return tuple((t / ts, jump) for t, jump in breaks if t < self.experiment.run.t_end_s)

    def _store_step(self, record: RunRecord, step) -> None:
        """Record an accepted step (the forms hold its solution and BDF coefficients)."""
        if record.record_series:
            now = self.observables.integrals()
            influx = record.integrate_influx(step.h, step.coefficients, now["influx"])
            self._record(record, step, now, influx)
        if step.reached_output:
            rows = self.axis.rows(self.forms.u)
            record.add_output(self.layout.thetas(rows), self.layout.potential(rows) * self.scales.potential_V)

    def _step_done(self, record: RunRecord, events: CallbackList, step, state: StepperState) -> None:
        """The stepper has moved on past ``step``: tell the callbacks."""
        record.stepper_state = state
        ts = self.scales.time_s
        info = StepInfo(t_s=step.t * ts, dt_s=step.h * ts, newton_iterations=step.newton_iterations,
                        reached_output=step.reached_output, record=record)
        events.on_step(info)
        if step.reached_output:
            events.on_output(info.t_s, info)

    def _result(self, record: RunRecord, stats: dict, wall0: float) -> Result:
        """The Result of a finished run; ``wall0``: its start (``time.perf_counter()``)."""
        exp, series = self.experiment, record.series
        stats.update(
            linear_solves=stats["newton_iterations"],
            wall_time_s=_time.perf_counter() - wall0,
            cells=self.cells,
            dofs=self.forms.V.dofmap.index_map.size_global * self.bs,
            mpi_size=self.comm.size,
        )
        return Result(
            experiment=exp,
            depth_m=self.depth_m,
            species_names=tuple(s.name for s in exp.species),
            output_times_s=np.array(exp.run.all_output_times_s),
            theta=np.array(record.theta),
            potential_V=np.array(record.potential_V),
            time_s=np.array(series["t"]),
            current_density_A_m2=np.array(series["current"]),
            surface_potential_V=np.array(series["psi_s"]),
            charge_C_m2=np.array(series["charge"]),
            foreign_inside_m2=np.array(series["foreign"]),
            influx_integral_m2=np.array(series["influx"]),
            dt_s=np.array(series["dt"]),
            newton_iterations=np.array(series["its"], dtype=int),
            stats=stats,
            metadata=self.metadata(),
        )

    # -- checkpoint / restart ------------------------------------------------------------
    def _node_data(self):
        if not hasattr(self, "_keys"):
            self._keys = checkpoint.node_keys(self.forms)
            self._coords = self.forms.V.tabulate_dof_coordinates()[:, : self.domain.geometry.dim]
        return self._keys, self._coords

    def _checkpoint(self, directory, record: RunRecord) -> None:
        """Write the run as of its last accepted step (``record.stepper_state``). Collective."""
        state = record.stepper_state
        ts, keys = self.scales.time_s, self._node_data()[0]
        checkpoint.write_checkpoint(
            directory, self.comm, experiment=self.experiment, t_s=state.t * ts, step=state.stats["steps"],
            keys=keys, n_owned=self.n_owned, coordinates=self._coords,
            history_t_s=[tk * ts for tk, _ in state.history],
            history_rows=[u.reshape(-1, self.bs) for _, u in state.history],
            stepper={"h_next_s": state.h_next * ts, "steps_s": [h * ts for h in state.steps], "stats": state.stats,
                     # the dimensionless values too: resumed with the same time scale, the
                     # run continues bit for bit (seconds -> scaled loses the last bit)
                     "time_scale_s": ts, "t": state.t, "h_next": state.h_next, "steps": list(state.steps),
                     "history_t": [tk for tk, _ in state.history]},
            run_state=record.run_state(self.depth_m),
        )

    def _restore(self, ckpt, record: RunRecord) -> None:
        """Load ``ckpt`` into ``record``: its series, profiles and the stepper state to resume."""
        changed = checkpoint.resume_changes(ckpt, self.experiment)  # ConfigError for another structure
        self._resumed = {"resumed_from": str(ckpt.path), "resumed_at_s": ckpt.t_s, "changed_parameters": changed}
        if ckpt.t_s >= self.experiment.run.t_end_s:
            raise ConfigError(f"checkpoint {ckpt.path}: its run reached t = {ckpt.t_s:g} s >= run.t_end_s = "
                              f"{self.experiment.run.t_end_s:g} s; raise run.t_end_s to continue it")
        keys, coords = self._node_data()
        ts, st = self.scales.time_s, ckpt.stepper
        same_scale = st.get("time_scale_s") == ts
        times = st["history_t"] if same_scale else [tk / ts for tk in ckpt.history_t_s]
        history = [(tk, ckpt.local_rows(keys, rows, coords).ravel()) for tk, rows in zip(times, ckpt.history)]
        depth = ckpt.run_state["arrays"]["depth_m"]
        if depth.shape != self.depth_m.shape or not np.allclose(depth, self.depth_m, rtol=1e-12, atol=0):
            raise ConfigError(f"checkpoint {ckpt.path}: its depth profile points differ from this run's")
        record.restore(ckpt.run_state)
        if same_scale:
            record.stepper_state = StepperState(t=st["t"], h_next=st["h_next"], history=history,
                                                steps=list(st["steps"]), stats=dict(st["stats"]))
        else:
            record.stepper_state = StepperState(t=ckpt.t_s / ts, h_next=st["h_next_s"] / ts, history=history,
                                                steps=[h / ts for h in st["steps_s"]], stats=dict(st["stats"]))

    # -- observables ----------------------------------------------------------------------
    def _initial_state(self, initial) -> np.ndarray:
        """The state vector at t = 0: pristine glass; ``initial``'s last profiles
        interpolated onto this mesh (a Result; species matched by name, absent ones start
        at 0); or a Checkpoint's nodal state on this mesh."""
        f, sc_, exp = self.forms, self.scales, self.experiment
        if isinstance(initial, checkpoint.Checkpoint):
            return self._state_from_checkpoint(initial)
        lay = self.layout
        state = np.zeros_like(lay.rows(f.u.x.array))
        depth_axis = self.domain.geometry.dim - 1
        x = f.V.tabulate_dof_coordinates()[:, depth_axis] * sc_.length_m
        if initial is None:
            if isinstance(exp.front, (PotentialFront, AnodeFront)):
                # The potential is algebraic: start Newton from the charge-free (Laplace)
                # field between the contact at U and the grounded back electrode.
                U = exp.front.voltage_at(0.0)
                state[:, lay.psi] = U / sc_.potential_V * (1.0 - x / exp.glass.thickness_m)
            return state.ravel()
        if abs(initial.depth_m[-1] - exp.glass.thickness_m) > 1e-9 * exp.glass.thickness_m:
            raise ConfigError(f"initial state: sample thickness {initial.depth_m[-1]!r} m differs from "
                              f"glass.thickness_m = {exp.glass.thickness_m!r}")
        if initial.species_names[0] != exp.native.name:
            raise ConfigError(f"initial state: native species {initial.species_names[0]!r} differs from "
                              f"this experiment's native species {exp.native.name!r}")
        # absent species: theta = 0 (w = -1 cannot happen: the native species is present)
        thetas = np.zeros((lay.n_species, len(x)))
        for i, name in enumerate(lay.species_names):
            if name in initial.species_names:
                thetas[i] = np.interp(x, initial.depth_m, initial.theta[-1, initial.species_names.index(name)])
        psi = np.interp(x, initial.depth_m, initial.potential_V[-1]) / sc_.potential_V
        return lay.state_rows(thetas, psi).ravel()

    def _state_from_checkpoint(self, ckpt) -> np.ndarray:
        """The final nodal state of ``ckpt`` (same mesh), species matched by name."""
        keys, coords = self._node_data()
        old = ckpt.local_rows(keys, ckpt.history[-1], coords)
        old_layout, lay = StateLayout.of(ckpt.experiment), self.layout
        old_native = old_layout.species_names[old_layout.native]
        if old_native != lay.species_names[lay.native]:
            raise ConfigError(f"initial state: native species {old_native!r} of checkpoint {ckpt.path} "
                              f"differs from this experiment's native species {self.experiment.native.name!r}")
        # Stored columns are copied as they are (no theta round trip, so w keeps its digits);
        # the native column is w in both layouts, and absent foreign species start at 0.
        state = np.zeros((len(keys), lay.block_size))
        for i, name in enumerate(lay.species_names):
            if name in old_layout.species_names:
                state[:, i] = old[:, old_layout.species_names.index(name)]
        state[:, lay.psi] = old[:, old_layout.psi]
        return state.ravel()

    def _record(self, record: RunRecord, step, now, influx):
        """Append the observables of an accepted step to the record's time series (SI units)."""
        series = record.series
        sc_, z_n = self.scales, self.forms.charges[self.layout.native]
        amount = sc_.density_m3 * sc_.length_m  # dimensionless content -> m^-2
        W, W_rate = now["native_deviation"], now["native_deviation_rate"]
        series["t"].append(step.t * sc_.time_s)
        series["dt"].append(step.h * sc_.time_s)
        series["its"].append(step.newton_iterations)
        series["current"].append(-z_n * sc.e * amount * W_rate / sc_.time_s)
        series["psi_s"].append(now["surface_potential"] * sc_.potential_V)
        series["charge"].append(-z_n * sc.e * amount * (W - record.content0))
        series["foreign"].append(amount * now["foreign"])
        series["influx"].append(amount * influx)

    def spot_area_m2(self) -> float:
        """Beam-spot area [m^2]; per metre out of plane [m^2/m] for a 2D section; 1 for a
        1D slab, whose quantities are per unit area."""
        geometry, L = self.experiment.geometry, self.scales.length_m
        measure = self.observables.spot_area()
        if geometry.kind == "slab":
            return 1.0
        if geometry.kind == "section":
            return measure * L
        return measure * L**2 * (2.0 * np.pi if geometry.axisymmetric else 1.0)

    def metadata(self) -> dict:
        T = self.experiment.glass.temperature_K
        return {
            "geometry": self.experiment.geometry.kind,
            "spot_area_m2": self.spot_area_m2(),
            "quantities_per_area": "per unit area of the beam spot (series and contents)",
            "scales": self.scales.to_dict(),
            "diffusion_floor_m2_s": {s.name: s.diffusion.floor_m2_s(T) for s in self.experiment.species},
            "mesh_cells": self.cells,
            "depth_resolution": self.depth_resolution.to_dict(),
            # a resumed run: its checkpoint and the parameters changed since ({key: [old, new]})
            **(getattr(self, "_resumed", None) or {}),
            **({"mesh": "user-supplied (domain, facet_tags)"} if self.user_mesh else {}),
            "discretisation": "P1, exponentially fitted (Scharfetter-Gummel) fluxes, lumped storage; "
                              f"{self.experiment.run.scheme.upper()} variable step",
        }


class _CheckpointWriter(Callback):
    """``run(checkpoint_dir=...)``: a checkpoint at every output time (replacing the last)."""

    def __init__(self, sim: Simulation, directory):
        self.sim, self.directory = sim, directory

    def on_output(self, t_s: float, step: StepInfo) -> None:
        self.sim._checkpoint(self.directory, step.record)


def _warn_if_front_left_fine_mesh(result: Result) -> None:
    """The mesh coarsens beyond mesh.fine_depth_m; a front out there is poorly resolved."""
    fine = result.metadata["depth_resolution"]["fine_depth_m"]
    foreign = result.theta[-1, 1:].sum(axis=0)
    reached = result.depth_m[foreign > 0.5].max(initial=0.0)
    if reached > 0.9 * fine:
        message = (f"the replaced zone reaches {reached * 1e9:.0f} nm, near or beyond the fine region's end at "
                   f"{fine * 1e9:.0f} nm where the mesh coarsens: set mesh.fine_depth_m deeper for accurate "
                   "profiles")
        warn(result, message)
