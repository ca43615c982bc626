"""The least-squares problem of a fit: parameter vector -> experiments -> residuals.

:class:`FitProblem` expands the fit file's parameter entries into the scalars the optimiser
moves (one per shared value, per experiment otherwise, per knot for a table), builds each
experiment's run case at a parameter vector, and turns a forward solution into weighted
residuals: (SIMS-broadened model - data) / sigma at every data point, and
(metric - target) / sigma for profile-metric targets. No solver lives here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from cait_fem.analysis.metrics import profile_metrics
from cait_fem.analysis.sims_resolution import model_at_data
from cait_fem.case.case_file import experiment_from_dict, experiment_to_dict
from cait_fem.case.experiment import Experiment
from cait_fem.errors import ConfigError

from .parameters import FreeParameter, ParameterSpec, read_value, split_path, with_values

# Residual (in sigma units) given to every point of an experiment whose forward solve
# failed: large enough that the trust region rejects the step, finite for the optimiser.
FAILED_RESIDUAL = 1e3


@dataclass
class ForwardOutput:
    """A forward solve's final state (what residuals and reports need)."""

    depth_m: np.ndarray
    species_names: tuple[str, ...]
    theta: np.ndarray  # (species, nodes) at t_end
    time_s: np.ndarray  # accepted step end times, 0 first
    current_density_A_m2: float
    surface_potential_V: float
    wall_s: float
    steps: int
    error: str | None = None
    potential_V: np.ndarray | None = None  # at t_end [V]: with theta, the state a later step starts from

    def theta_of(self, name: str) -> np.ndarray:
        return self.theta[self.species_names.index(name)]

    def as_initial(self) -> FinalState:
        """This final state in the form ``Simulation.run(initial=...)`` takes."""
        return FinalState(self.depth_m, self.species_names, self.theta[None], self.potential_V[None])


@dataclass(frozen=True)
class FinalState:
    """The last profiles of a run, shaped like a Result's (``theta`` (1, species, nodes),
    ``potential_V`` (1, nodes) [V]): what a sequential experiment starts from."""

    depth_m: np.ndarray
    species_names: tuple[str, ...]
    theta: np.ndarray
    potential_V: np.ndarray


class FitProblem:
    def __init__(self, case):
        self.case = case
        self._dicts = {e.name: experiment_to_dict(e.experiment) for e in case.experiments}
        expanded = [p for spec in case.parameters for p in self._expand(spec)]
        self.free: list[FreeParameter] = [p for p in expanded if not p.spec.fixed]
        self.fixed: list[FreeParameter] = [p for p in expanded if p.spec.fixed]
        self.x0 = np.array([p.to_z(p.x0) for p in self.free])
        lo, hi = zip(*(p.z_bounds for p in self.free))
        self.bounds = (np.array(lo), np.array(hi))
        self.names = [e.name for e in case.experiments]

    # -- parameters -------------------------------------------------------------------------
    def _expand(self, spec: ParameterSpec) -> list[FreeParameter]:
        experiments = [e for e in self.case.experiments if spec.experiments is None or e.name in spec.experiments]
        where = f"fit.parameters.{spec.path!r}"
        path, index = split_path(spec.path)
        if spec.is_measurement:
            holders = experiments
            current = [[e.measurement_value(spec.path)] for e in holders]
        else:
            holders, current = [], []
            for e in experiments:
                try:
                    value = read_value(self._dicts[e.name], path, where)
                except ConfigError:
                    continue
                holders.append(e)
                current.append(value if isinstance(value, list) else [value])
        is_table = not spec.is_measurement and isinstance(read_value(self._dicts[holders[0].name], path, where), list)
        if is_table:
            indices = [index] if index is not None else list(spec.knots or range(len(current[0])))
        else:
            indices = [None]
        out = []
        for k, knot in enumerate(indices):
            position = knot if knot is not None else 0
            if spec.initial is None:
                starts = [c[position] for c in current]
            elif isinstance(spec.initial, dict):
                starts = [spec.initial.get(e.name, c[position]) for e, c in zip(holders, current)]
            elif isinstance(spec.initial, tuple):
                starts = [spec.initial[k]] * len(holders)
            else:
                starts = [spec.initial] * len(holders)
            for s in starts:
                if not spec.min <= s <= spec.max:
                    raise ConfigError(f"{where}: the start value {s!r} lies outside [min, max] = "
                                      f"[{spec.min}, {spec.max}]; give initial")
            if spec.shared:
                out.append(FreeParameter(spec, path, knot, tuple(e.name for e in holders), starts[0]))
            else:
                out += [FreeParameter(spec, path, knot, (e.name,), s) for e, s in zip(holders, starts)]
        return out

    def physical(self, z) -> np.ndarray:
        return np.array([p.from_z(v) for p, v in zip(self.free, z)])

    def _assignments(self, name: str, z) -> tuple[dict, dict]:
        case_values, measurement = {}, {}
        for p, x in [(p, p.x0) for p in self.fixed] + list(zip(self.free, self.physical(z))):
            if name not in p.targets:
                continue
            if p.is_measurement:
                measurement[p.path] = x
            else:
                case_values[(p.path, p.index)] = x
        return case_values, measurement

    def experiment_at(self, name: str, z, override: dict | None = None) -> Experiment:
        """The run case of experiment ``name`` at ``z``; ``override`` {(path, index): value}
        replaces single values (to try a parameter at its bounds)."""
        values, _ = self._assignments(name, z)
        values.update(override or {})
        return experiment_from_dict(with_values(self._dicts[name], values), source=f"fit experiment {name!r}")

    def measurement_at(self, name: str, z) -> tuple[float, float]:
        """(SIMS resolution sigma [m], depth offset [m]) of experiment ``name`` at ``z``."""
        e = self.case.experiment(name)
        _, m = self._assignments(name, z)
        sigma_nm = m.get("sims_resolution_nm", e.sims_resolution_nm)
        return max(sigma_nm, 0.0) * 1e-9, m.get("depth_offset_nm", e.depth_offset_nm) * 1e-9

    def initial_from(self, name: str) -> str | None:
        """The experiment whose final state experiment ``name`` starts from (None: pristine)."""
        return self.case.experiment(name).initial_from

    def affects(self, j: int, name: str) -> bool:
        """Whether parameter ``j`` changes the solve of experiment ``name``: its own, or,
        for a sequential experiment, one of an experiment it starts from."""
        while name is not None:
            if name in self.free[j].targets:
                return True
            name = self.initial_from(name)
        return False

    def needs_solve(self, j: int) -> bool:
        return not self.free[j].is_measurement

    # -- residuals ----------------------------------------------------------------------------
    def data_rows(self, name: str):
        e = self.case.experiment(name)
        if e.data is None:
            return None, []
        depth = e.data.depth_m
        keep = np.ones(depth.size, bool)
        if e.depth_range_nm is not None:
            keep = (depth >= e.depth_range_nm[0] * 1e-9) & (depth <= e.depth_range_nm[1] * 1e-9)
        return keep, list(e.data.theta)

    def residual_size(self, name: str) -> int:
        keep, species = self.data_rows(name)
        return (int(keep.sum()) * len(species) if keep is not None else 0) + len(self.case.experiment(name).targets)

    def sigmas(self, name: str, species: str) -> np.ndarray:
        e = self.case.experiment(name)
        keep, _ = self.data_rows(name)
        if species in e.data.sigma:
            return e.data.sigma[species][keep]
        return np.full(int(keep.sum()), e.theta_sigma if e.theta_sigma is not None else 1.0)

    def model_at_data(self, name: str, z, out: ForwardOutput, species: str, depth_m=None) -> np.ndarray:
        e = self.case.experiment(name)
        sigma_m, offset_m = self.measurement_at(name, z)
        if depth_m is None:
            keep, _ = self.data_rows(name)
            depth_m = e.data.depth_m[keep]
        return model_at_data(out.depth_m, out.theta_of(species), depth_m, sigma_m, offset_m)

    def metrics(self, out: ForwardOutput) -> dict:
        native = out.theta[0]
        return profile_metrics(out.depth_m, native, out.theta[1:].sum(axis=0))

    # -- regularisation of free-form tables ---------------------------------------------------
    def _tables(self) -> list[tuple[str, str]]:
        """(experiment, path) of every fitted D(theta) table with at least three knots (not
        other list values, such as the ``decades`` of a log-linear law)."""
        seen = []
        for p in self.free:
            if p.index is None or p.is_measurement or not p.path.endswith(".D_m2_s"):
                continue
            for name in p.targets[:1] if p.spec.shared else p.targets:
                key = (name, p.path)
                if key not in seen and len(read_value(self._dicts[name], p.path, "fit")) >= 3:
                    seen.append(key)
        return seen

    def regularisation(self, z) -> np.ndarray:
        """Smoothing residuals of free-form D(theta) tables: ``smoothing`` times the curvature
        of log10 D over theta (second divided difference on the knots, scaled by the mean
        knot spacing squared), one per interior knot. Without it the inversion is ill-posed
        wherever the profile does not constrain D (e.g. inside a sharp front)."""
        weight = self.case.settings.smoothing
        if weight == 0:
            return np.zeros(0)
        parts = []
        for name, path in self._tables():
            law_dict = with_values(self._dicts[name], self._assignments(name, z)[0])
            y = np.log10(read_value(law_dict, path, "fit"))
            theta = np.asarray(read_value(law_dict, path.rsplit(".", 1)[0] + ".theta", "fit"))
            h = np.diff(theta)
            slope = np.diff(y) / h
            curvature = 2.0 * np.diff(slope) / (h[1:] + h[:-1])
            parts.append(weight * curvature * h.mean() ** 2)
        return np.concatenate(parts) if parts else np.zeros(0)

    # -- presolve on profile metrics ------------------------------------------------------------
    def measured_metrics(self, name: str, z=None, out: ForwardOutput | None = None) -> tuple[float, float] | None:
        """(plateau, front position [m]) of the measured profile, or with ``out`` of the model
        seen at the data depths (SIMS-broadened); None if the data lack native or foreign."""
        e = self.case.experiment(name)
        keep, species = self.data_rows(name)
        native = self.case.experiment(name).experiment.native.name
        foreign = [s for s in species if s != native]
        if keep is None or native not in species or not foreign:
            return None
        if out is None:
            values = {s: e.data.theta[s][keep] for s in species}
        else:
            values = {s: self.model_at_data(name, z, out, s) for s in species}
        m = profile_metrics(e.data.depth_m[keep], values[native], sum(values[s] for s in foreign))
        return m["plateau_native"], m["front_position_m"]

    def presolve_residuals(self, name: str, z, out: ForwardOutput) -> np.ndarray:
        """The first stage of a fit from a poor start: match the plateau and the front
        position of each measured profile ((model - data) / (0.01, 1 nm)) instead of every
        point. Far from the optimum a sharp front in the wrong place makes the point
        residuals saturate and Gauss-Newton steps tiny; these two numbers move smoothly."""
        data = self.measured_metrics(name)
        if data is None or not all(np.isfinite(data)):
            return self.residuals(name, z, out)
        e = self.case.experiment(name)
        if out.error is not None:
            model = (np.nan, np.nan)
        else:
            model = self.measured_metrics(name, z, out)
        r = [(model[0] - data[0]) / 0.01, (model[1] - data[1]) / 1e-9]
        r = [v if np.isfinite(v) else FAILED_RESIDUAL for v in r]
        return e.weight * np.concatenate([r, self._target_residuals(name, out)])

    def _target_residuals(self, name: str, out: ForwardOutput) -> np.ndarray:
        e = self.case.experiment(name)
        if not e.targets:
            return np.zeros(0)
        if out.error is not None:
            return np.full(len(e.targets), FAILED_RESIDUAL)
        m = self.metrics(out)
        model = {"plateau": m["plateau_native"], "front_nm": m["front_position_m"] * 1e9}
        r = [(model[key] - target) / e.target_sigma[key] for key, target in e.targets.items()]
        return np.array([v if np.isfinite(v) else FAILED_RESIDUAL for v in r])

    def residuals(self, name: str, z, out: ForwardOutput) -> np.ndarray:
        e = self.case.experiment(name)
        if out.error is not None:
            return np.full(self.residual_size(name), FAILED_RESIDUAL)
        parts = []
        keep, species = self.data_rows(name)
        for s in species:
            data = e.data.theta[s][keep]
            parts.append((self.model_at_data(name, z, out, s) - data) / self.sigmas(name, s))
        parts.append(self._target_residuals(name, out))
        return e.weight * np.concatenate(parts)


def uninformative(estimates, cost: float, dof: int) -> list[str]:
    """Why a finished fit tells nothing, one sentence per reason (empty: it is usable).
    ``estimates`` are :class:`~cait_fem.fit.result.ParameterEstimate`; ``cost`` half the
    weighted chi^2, ``dof`` compared values minus free parameters. A parameter without a
    finite standard error is not identified by the data (the Jacobian has no component
    along it), and a zero cost with no degree of freedom is an exact interpolation whose
    uncertainty is undefined (docs/fitting.md, "Meaningless fits")."""
    reasons = [f"{e.parameter.label} = {e.value:.6g} is not determined by the data (standard error "
               f"{e.stderr!r}): the compared values do not depend on it; fix it, or compare data that do"
               for e in estimates if not math.isfinite(e.stderr)]
    if cost == 0.0 and dof <= 0:
        reasons.append(f"the cost is exactly 0 with {dof} degrees of freedom: the model matches every compared "
                       "value exactly, so the uncertainties are undefined; compare more values than parameters")
    return reasons
