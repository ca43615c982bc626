"""Run an Experiment: mesh -> forms -> adaptive BDF time stepping with SNES -> Result.

A :class:`Simulation` compiles its forms once; :meth:`Simulation.run` can then be called
again with an experiment of the same structure but other parameter values (what a fit
does) without any JIT compilation.
"""

from __future__ import annotations

import time as _time
import warnings

import numpy as np
from mpi4py import MPI  # (MPI is initialised by mpi4py before PETSc/DOLFINx)
from scipy import constants as sc

from dolfinx import mesh as dmesh

from .backend import require_dolfinx
from .case import Experiment, PotentialFront
from .errors import ConfigError
from .forms import BACK_TAG, FRONT_TAG, NPPForms
from .mesh1d import create_interval_mesh, graded_nodes_m
from .newton import NewtonSolver
from .observables import Observables
from .result import Result
from .scales import Scales
from .timestepping import AdaptiveBDF


class Simulation:
    """One experiment on one mesh, forms compiled once."""

    def __init__(self, experiment: Experiment, comm=None):
        require_dolfinx()
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.experiment = experiment
        self.scales = Scales.of(experiment)
        nodes = graded_nodes_m(experiment.glass.thickness_m, experiment.mesh) / self.scales.length_m
        self.domain = create_interval_mesh(self.comm, nodes)
        self.facet_tags = _tag_ends(self.domain, nodes[-1])
        self.forms = NPPForms(experiment, self.scales, self.domain, self.facet_tags)
        self.newton = NewtonSolver(self.forms, self.forms.dirichlet_bcs(), experiment.solver, self.comm)
        self.n_owned = self.forms.V.dofmap.index_map.size_local
        self.observables = Observables(self.forms, self.n_owned, self.comm)
        self.bs = self.forms.V.dofmap.index_map_bs
        x_all = np.concatenate(self.comm.allgather(self.forms.V.tabulate_dof_coordinates()[: self.n_owned, 0]))
        self._order = np.argsort(x_all, kind="stable")  # owned nodes of all ranks -> by depth
        self.depth_m = x_all[self._order] * self.scales.length_m
        self.cells = self.domain.topology.index_map(1).size_global

    # -- parallel helpers ---------------------------------------------------------------
    def _gather(self, owned_rows: np.ndarray) -> np.ndarray:
        """All owned node rows from every rank, sorted by depth, on every rank."""
        return np.concatenate(self.comm.allgather(owned_rows), axis=0)[self._order]

    def _state_rows(self) -> np.ndarray:
        return self.forms.u.x.array.reshape(-1, self.bs)[: self.n_owned]

    # -- the run --------------------------------------------------------------------------
    def run(self, experiment: Experiment | None = None, progress=None, initial: Result | None = None,
            schedule_s=None, record_series: bool = True) -> Result:
        """Integrate from t = 0 to ``run.t_end_s``. ``experiment``: new parameter values for
        the same structure (no recompilation). ``initial``: start from the final state of a
        previous result on the same sample (a sequential experiment, e.g. double CAIT);
        default the pristine glass (MODEL.md section 5). ``schedule_s``: replay these step
        end times [s] without error control (e.g. ``earlier_result.time_s[1:]``), so that
        results depend smoothly on the parameters (finite-difference Jacobians of a fit).
        ``record_series = False``: no per-step observables (the time series hold t = 0 only), for
        solves of which only the profiles matter."""
        if experiment is not None:
            self.forms.set_parameters(experiment)
            self.newton.update_settings(experiment.solver)
            self.experiment = experiment
        exp, sc_, f = self.experiment, self.scales, self.forms
        wall0 = _time.perf_counter()
        f.u.x.array[:] = self._initial_state(initial)
        f.u_n.x.array[:] = f.u.x.array
        f.u_nm1.x.array[:] = f.u.x.array
        start = self.observables.integrals(with_rate=False)
        self._content0 = start["native_deviation"]
        p = f.psi_index
        series = {k: [0.0] for k in ("t", "current", "psi_s", "charge", "foreign", "influx", "dt", "its")}
        series["psi_s"][0] = start["surface_potential"] * sc_.potential_V
        series["foreign"][0] = sc_.density_m3 * sc_.length_m * start["foreign"]
        influx = [0.0, 0.0]  # I_n, I_{n-1}: the influx integrated with the same BDF formula
        outputs_theta, outputs_psi = [], []

        def on_step(step):
            if record_series:
                a = step.coefficients
                now = self.observables.integrals()
                influx[:] = [(step.h * now["influx"] - a[1] * influx[0] - a[2] * influx[1]) / a[0], influx[0]]
                self._record(series, step, now, influx[0])
            if progress is not None:
                progress.update(step.t * sc_.time_s, step.h * sc_.time_s, step.newton_iterations)
            if step.reached_output:
                rows = self._gather(self._state_rows())
                outputs_theta.append(self._thetas(rows))
                outputs_psi.append(rows[:, p] * sc_.potential_V)

        stepper = AdaptiveBDF(f, self.newton, exp.run, sc_.time_s, self.n_owned, self.comm)
        schedule = None if schedule_s is None else [t / sc_.time_s for t in schedule_s]
        stepper.integrate([t / sc_.time_s for t in exp.run.all_output_times_s], on_step, schedule)
        if progress is not None:
            progress.close()

        stats = stepper.stats.as_dict()
        stats.update(
            linear_solves=stats["newton_iterations"],
            wall_time_s=_time.perf_counter() - wall0,
            cells=self.cells,
            dofs=self.forms.V.dofmap.index_map.size_global * self.bs,
            mpi_size=self.comm.size,
        )
        result = Result(
            experiment=exp,
            depth_m=self.depth_m,
            species_names=tuple(s.name for s in exp.species),
            output_times_s=np.array(exp.run.all_output_times_s),
            theta=np.array(outputs_theta),
            potential_V=np.array(outputs_psi),
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
        _warn_if_front_left_fine_mesh(result)
        return result

    # -- observables ----------------------------------------------------------------------
    def _initial_state(self, initial: Result | None) -> np.ndarray:
        """The state vector at t = 0: pristine glass, or ``initial``'s last profiles
        interpolated onto this mesh (species matched by name, absent ones start at 0)."""
        f, sc_, exp = self.forms, self.scales, self.experiment
        state = np.zeros((f.u.x.array.size // self.bs, self.bs))
        x = f.V.tabulate_dof_coordinates()[:, 0] * sc_.length_m
        if initial is None:
            if isinstance(exp.front, PotentialFront):
                # The potential is algebraic: start Newton from the charge-free (Laplace)
                # field between the contact at U and the grounded back electrode.
                state[:, f.psi_index] = exp.front.U_V / sc_.potential_V * (1.0 - x / exp.glass.thickness_m)
            return state.ravel()
        if abs(initial.depth_m[-1] - exp.glass.thickness_m) > 1e-9 * exp.glass.thickness_m:
            raise ConfigError(f"initial state: sample thickness {initial.depth_m[-1]!r} m differs from "
                              f"glass.thickness_m = {exp.glass.thickness_m!r}")
        if initial.species_names[0] != exp.native.name:
            raise ConfigError(f"initial state: native species {initial.species_names[0]!r} differs from "
                              f"this experiment's native species {exp.native.name!r}")
        for i, s in enumerate(exp.species):
            if s.name in initial.species_names:
                theta = initial.theta[-1, initial.species_names.index(s.name)]
                state[:, i] = np.interp(x, initial.depth_m, theta) - (1.0 if i == 0 else 0.0)
        state[:, f.psi_index] = np.interp(x, initial.depth_m, initial.potential_V[-1]) / sc_.potential_V
        return state.ravel()

    def _thetas(self, state_rows: np.ndarray) -> np.ndarray:
        th = state_rows[:, : self.forms.n_species].T.copy()
        th[0] += 1.0
        return th

    def _record(self, series, step, now, influx):
        sc_, z_n = self.scales, self.forms.charges[0]
        amount = sc_.density_m3 * sc_.length_m  # dimensionless content -> m^-2
        W, W_rate = now["native_deviation"], now["native_deviation_rate"]
        series["t"].append(step.t * sc_.time_s)
        series["dt"].append(step.h * sc_.time_s)
        series["its"].append(step.newton_iterations)
        series["current"].append(-z_n * sc.e * amount * W_rate / sc_.time_s)
        series["psi_s"].append(now["surface_potential"] * sc_.potential_V)
        series["charge"].append(-z_n * sc.e * amount * (W - self._content0))
        series["foreign"].append(amount * now["foreign"])
        series["influx"].append(amount * influx)

    def metadata(self) -> dict:
        T = self.experiment.glass.temperature_K
        return {
            "scales": self.scales.to_dict(),
            "diffusion_floor_m2_s": {s.name: s.diffusion.floor_m2_s(T) for s in self.experiment.species},
            "mesh_cells": self.cells,
            "discretisation": "P1, exponentially fitted (Scharfetter-Gummel) fluxes, lumped storage; "
                              f"{self.experiment.run.scheme.upper()} variable step",
        }


def _warn_if_front_left_fine_mesh(result: Result) -> None:
    """The mesh coarsens beyond mesh.fine_depth_m; a front out there is poorly resolved."""
    fine = result.experiment.mesh.fine_depth_m
    foreign = result.theta[-1, 1:].sum(axis=0)
    reached = result.depth_m[foreign > 0.5].max(initial=0.0)
    if reached > 0.9 * fine:
        message = (f"the replaced zone reaches {reached * 1e9:.0f} nm, near or beyond mesh.fine_depth_m = "
                   f"{fine * 1e9:.0f} nm where the mesh coarsens: raise mesh.fine_depth_m for accurate "
                   "profiles")
        result.stats.setdefault("warnings", []).append(message)
        warnings.warn(message, stacklevel=3)


def _tag_ends(domain, x_back: float) -> dmesh.MeshTags:
    fdim = domain.topology.dim - 1
    front = dmesh.locate_entities_boundary(domain, fdim, lambda x: np.isclose(x[0], 0.0))
    back = dmesh.locate_entities_boundary(domain, fdim, lambda x: np.isclose(x[0], x_back))
    idx = np.concatenate([front, back]).astype(np.int32)
    vals = np.concatenate([np.full(len(front), FRONT_TAG), np.full(len(back), BACK_TAG)]).astype(np.int32)
    order = np.argsort(idx)
    return dmesh.meshtags(domain, fdim, idx[order], vals[order])


def simulate(experiment: Experiment, *, progress=None, comm=None, initial: Result | None = None) -> Result:
    """Run ``experiment`` and return its :class:`~cait_fem.result.Result`; ``initial``: a
    previous result whose final state this experiment starts from."""
    return Simulation(experiment, comm=comm).run(progress=progress, initial=initial)
