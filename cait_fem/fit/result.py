"""What a fit returns, and its report: ``fit.json``, per-experiment CSVs and the figures.

``fit.json`` (stable contract): ``parameters`` keyed by dotted path (``[k]`` for a table
knot), each with ``unit``, ``value``, ``stderr``, ``ci95`` = [low, high], ``initial``,
``numerical_shift``, ``value_default_numerics``, ``log``, ``shared``, ``experiments``; a
parameter fitted per experiment has instead ``per_experiment`` = {name: {value, stderr,
ci95, initial, ...}}. ``value`` is the estimate corrected to refined numerics,
``value_default_numerics`` the optimum of the fit with the cases' own numerics (where the
model profiles, residuals and chi^2 are reported), ``numerical_shift`` their difference
(in the parameter's unit; null with ``refinement_factor = 1``), and ``ci95`` includes it
(docs/fitting.md, "Numerical error"); ``stderr`` is the statistical standard error only.
Then ``cost`` (half the sum of squared weighted residuals, including the smoothing penalty
of free-form tables, also given alone as ``regularisation_cost``), ``chi2``, ``dof``,
``reduced_chi2``, ``evaluations``, ``jacobian_evaluations`` (computed; ``jacobians_reused``
more were answered with the last one), ``forward_solves``,
``wall_time_s``, the correlation matrix, ``numerical_error`` (the refined evaluation at the
optimum: factor, method, wall time, per experiment its spacings [nm], time tolerance,
nodes, steps, wall time [s] and the RMS and max change of the compared model values [theta];
null with ``refinement_factor = 1``), and per experiment its residual statistics, profile
metrics and transport analysis (:mod:`cait_fem.analysis.transport`, docs/model.md
section 6); with data, ``data_layout`` ("fractions", "counts" or "tofsims") and
``data_normalisation`` (:attr:`~cait_fem.analysis.measured.MeasuredProfile.normalisation`:
factors, bulk rows, matrix signal, RSFs, depth scale).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cait_fem.analysis.metrics import profile_metrics
from cait_fem.analysis.transport import psed_parts, transport_summary
from cait_fem.case.case_file import experiment_to_dict, unit_of
from cait_fem.errors import ConfigError
from cait_fem.fileio import write_csv_atomic, write_json_atomic
from cait_fem.output.result import check_output_directory, on_root, software_versions
from cait_fem.physics.diffusion import ConstantD, GaussianSED, TabulatedD

from .arrhenius import ARRHENIUS_FILES, write_series

# (the temperature-series files only for experiments at several temperatures: fit/arrhenius.py)
FIT_FILES = ("fit.json", "fit_profiles.png", "fit_diffusivity.png", "fit_sed.png") + ARRHENIUS_FILES


def _file_stem(name: str) -> str:
    """An experiment name as the start of a file name in the output directory; a name that
    would leave it (``..``, a separator) or hide the file is refused (the fit file's
    validation should have refused it already)."""
    if not name or name in (".", "..") or name.startswith(".") or "/" in name or "\\" in name or "\0" in name:
        raise ConfigError(f"experiment name {name!r} cannot name an output file: use letters, digits, '_' and "
                          "'-' (no path separators, not starting with '.')")
    return name


def output_names(experiment_names) -> list[str]:
    """Every file name a fit of these experiments may write into its output directory
    (``fit_sed.png`` only for a Gaussian SED law; listed anyway, for the clash check)."""
    return list(FIT_FILES) + [f"{_file_stem(n)}_{kind}.csv" for n in experiment_names
                              for kind in ("profile", "model")]


def previous_fit_names(directory) -> list[str]:
    """The files of the fit whose ``fit.json`` is in ``directory`` (its experiments named
    there), or the fixed names if there is none or it is unreadable: what a new fit
    replaces."""
    import json

    names = list(FIT_FILES)
    try:
        experiments = json.loads((Path(directory) / "fit.json").read_text(encoding="utf-8")).get("experiments", {})
    except (OSError, ValueError, AttributeError):
        return names
    for n in experiments if isinstance(experiments, dict) else ():
        try:
            names += output_names([n])[len(FIT_FILES):]
        except (ConfigError, TypeError):
            continue  # not a name this program writes: leave such a file alone
    return names


@dataclass(frozen=True)
class ParameterEstimate:
    parameter: object  # FreeParameter
    value: float
    stderr: float
    ci95: tuple[float, float]
    initial: float
    at_bound: bool
    # The optimum with the default numerics, and value - that optimum: the linearised shift
    # the refined numerics cause (None without the check, NaN if it failed); docs/fitting.md
    # "Numerical error".
    value_default_numerics: float | None = None
    numerical_shift: float | None = None

    def as_dict(self) -> dict:
        return {"value": self.value, "stderr": self.stderr, "ci95": list(self.ci95), "initial": self.initial,
                "at_bound": self.at_bound, "numerical_shift": self.numerical_shift,
                "value_default_numerics": self.value_default_numerics}


@dataclass
class FitResult:
    case: object
    problem: object
    z: np.ndarray
    estimates: list[ParameterEstimate]
    covariance_z: np.ndarray
    outputs: dict  # experiment name -> ForwardOutput at the optimum
    cost: float
    chi2: float
    dof: int
    residuals: np.ndarray
    evaluations: int
    jacobian_evaluations: int
    forward_solves: int
    failed_solves: int
    wall_time_s: float
    success: bool
    status: int
    message: str
    mpi_size: int
    groups: int
    simulations_built: int
    compile_wall_s: float
    numerical_error: dict | None = None  # the refined evaluation at the optimum (Fitter.numerical_error)
    jacobians_reused: int = 0  # requests answered with the last Jacobian (fitter.JACOBIAN_REUSE_CHI2)

    # -- values ---------------------------------------------------------------------------
    def value(self, name: str, experiment: str | None = None) -> float:
        """Best value of parameter ``name`` (dotted path, ``[k]`` for a knot)."""
        for e in self.estimates:
            p = e.parameter
            if p.name == name and (experiment is None or experiment in p.targets):
                return e.value
        raise KeyError(f"{name!r} (experiment {experiment!r}) is not a fitted parameter")

    def estimate(self, name: str, experiment: str | None = None) -> ParameterEstimate:
        return next(e for e in self.estimates if e.parameter.name == name
                    and (experiment is None or experiment in e.parameter.targets))

    @property
    def correlation(self) -> np.ndarray:
        d = np.sqrt(np.diag(self.covariance_z))
        with np.errstate(invalid="ignore", divide="ignore"):
            return self.covariance_z / np.outer(d, d)

    @property
    def reduced_chi2(self) -> float:
        return self.chi2 / self.dof if self.dof > 0 else math.nan

    def experiment(self, name: str):
        """The run case of experiment ``name`` at the best parameters."""
        return self.problem.experiment_at(name, self.z)

    # -- per experiment -------------------------------------------------------------------
    def _slice(self, name: str) -> slice:
        start = 0
        for n in self.problem.names:
            size = self.problem.residual_size(n)
            if n == name:
                return slice(start, start + size)
            start += size
        raise KeyError(name)

    def experiment_summary(self, name: str) -> dict:
        r = self.residuals[self._slice(name)]
        out = self.outputs[name]
        exp = self.experiment(name)
        metrics = self.problem.metrics(out)
        summary = {"points": int(r.size), "chi2": float(r @ r),
                   "rms_weighted_residual": float(np.sqrt(np.mean(r**2))) if r.size else math.nan,
                   "sims_resolution_nm": self.problem.measurement_at(name, self.z)[0] * 1e9,
                   "depth_offset_nm": self.problem.measurement_at(name, self.z)[1] * 1e9,
                   "plateau": metrics["plateau_native"], "front_position_nm": metrics["front_position_m"] * 1e9,
                   "front_width_nm": metrics["front_width_m"] * 1e9,
                   "surface_potential_V": out.surface_potential_V,
                   "back_current_density_A_m2": out.current_density_A_m2}
        e = self.case.experiment(name)
        if e.data is not None:
            summary["rms_theta"] = self.rms_theta(name)
            # how the fractions were made from counts (bulk, matrix, RSFs, depth scale)
            summary["data_layout"] = e.data.layout
            summary["data_normalisation"] = e.data.normalisation
        summary["analysis"] = self.analysis(name)
        summary["analysis_of_data"] = self.analysis(name, of_data=True)
        summary["case"] = experiment_to_dict(exp)
        return summary

    def rms_theta(self, name: str) -> dict:
        """Root-mean-square misfit in theta per measured species of experiment ``name``."""
        keep, species = self.problem.data_rows(name)
        out, data = self.outputs[name], self.case.experiment(name).data
        misfit = {s: self.problem.model_at_data(name, self.z, out, s) - data.theta[s][keep] for s in species}
        return {s: float(np.sqrt(np.mean(m**2))) for s, m in misfit.items()}

    def analysis(self, name: str, of_data: bool = False) -> dict:
        """docs/model.md section 6 quantities (paper eqs. 3, 8, 9) of the fitted model profile, or
        with ``of_data`` of the measured profile (its plateau, front and gradient; the bulk
        field from the model's current). {} if the foreign D is not constant or the data
        lack a species; {"error": ...} if eq. 3 is undefined for the profile."""
        exp, out, e = self.experiment(name), self.outputs[name], self.case.experiment(name)
        foreign = exp.species[exp.front_species_index]
        if not isinstance(foreign.diffusion, ConstantD) or out.error is not None:
            return {}
        if of_data:
            if e.data is None or exp.native.name not in e.data.theta or foreign.name not in e.data.theta:
                return {}
            depth, native, other = e.data.depth_m, e.data.theta[exp.native.name], e.data.theta[foreign.name]
        else:
            depth, native, other = out.depth_m, out.theta[0], out.theta[1:].sum(axis=0)
        try:
            return transport_summary(depth, native, other, exp.native.diffusion, foreign.diffusion.D_m2_s,
                                     exp.glass.temperature_K, exp.glass.n_bg_m3, out.current_density_A_m2,
                                     tracer_D_m2_s=e.tracer_D_native_m2_s, charge_number=exp.native.charge_number)
        except ValueError as exc:  # eq. 3 undefined for this profile (e.g. no plateau yet)
            return {"error": str(exc)}

    # -- native D(theta) with its band ------------------------------------------------------
    def native_diffusivity(self, name: str, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """D_native(theta) [m^2/s] of experiment ``name`` and its 95 % band from the
        covariance (delta method on log D in the fitted variables)."""
        exp = self.experiment(name)
        T = exp.glass.temperature_K
        logD = np.log(exp.native.diffusion.diffusivity_m2_s(theta, T))
        grads = np.zeros((theta.size, self.z.size))
        for j, p in enumerate(self.problem.free):
            if name not in p.targets or p.is_measurement or not p.path.startswith(f"species.{exp.native.name}."):
                continue
            h = 1e-6 * max(1.0, abs(self.z[j]))
            zj = self.z.copy()
            zj[j] += h
            law = self.problem.experiment_at(name, zj).native.diffusion
            grads[:, j] = (np.log(law.diffusivity_m2_s(theta, T)) - logD) / h
        cov = np.nan_to_num(self.covariance_z, nan=np.inf)
        var = np.einsum("ij,jk,ik->i", grads, cov, grads, optimize=True) if grads.any() else np.zeros(theta.size)
        half = _t95(self.dof) * np.sqrt(np.clip(var, 0, None))
        return np.exp(logD), np.exp(logD - half), np.exp(logD + half)

    # -- report -------------------------------------------------------------------------------
    def to_dict(self) -> dict:
        params: dict = {}
        for est in self.estimates:
            p = est.parameter
            entry = params.setdefault(p.name, {"unit": _unit(p.name), "log": p.spec.log, "shared": p.spec.shared,
                                               "min": p.spec.min, "max": p.spec.max})
            if p.spec.shared or len(self._holders(p.name)) == 1:
                entry.update(est.as_dict(), experiments=list(p.targets))
            else:
                entry.setdefault("per_experiment", {})[p.targets[0]] = est.as_dict()
        for fixed in self.problem.fixed:
            params.setdefault(fixed.name, {"unit": _unit(fixed.name), "value": fixed.x0, "fixed": True,
                                           "experiments": list(fixed.targets)})
        labels = [e.parameter.label for e in self.estimates]
        return {
            "name": self.case.name, "source": self.case.source, "parameters": params,
            "cost": self.cost, "chi2": self.chi2, "dof": self.dof, "reduced_chi2": self.reduced_chi2,
            "regularisation_cost": 0.5 * float(np.sum(self.problem.regularisation(self.z) ** 2)),
            "evaluations": self.evaluations, "jacobian_evaluations": self.jacobian_evaluations,
            "jacobians_reused": self.jacobians_reused,
            "forward_solves": self.forward_solves, "failed_solves": self.failed_solves,
            "wall_time_s": self.wall_time_s, "success": self.success, "status": self.status,
            "message": self.message,
            "parallel": {"mpi_processes": self.mpi_size, "groups": self.groups,
                         "simulations_built": self.simulations_built,
                         "compile_wall_s": self.compile_wall_s},
            "correlation": {"labels": labels, "matrix": self.correlation.tolist()},
            "numerical_error": self.numerical_error,
            "settings": dict(self.case.settings.__dict__),
            "experiments": {n: self.experiment_summary(n) for n in self.problem.names},
            "software": software_versions(),
        }

    def _holders(self, name: str) -> list:
        return [e for e in self.estimates if e.parameter.name == name]

    def save(self, directory, overwrite: bool = False, comm=None) -> list[Path]:
        """fit.json, <experiment>_profile.csv (data, model, residuals), <experiment>_model.csv
        and the figures; on rank 0 of ``comm`` only; existing files are kept unless
        ``overwrite``."""
        names = output_names(self.problem.names)
        return on_root(comm, lambda: self._write(Path(directory), overwrite, names))

    def _write(self, d: Path, overwrite: bool, names) -> list[Path]:
        check_output_directory(d, overwrite, names)
        d.mkdir(parents=True, exist_ok=True)
        written = []
        for n in self.problem.names:
            written += self._write_csvs(d, n)
        written += self._plots(d)
        written += write_series(self, d)
        written.append(write_json_atomic(d / "fit.json", self.to_dict()))
        return written

    def _write_csvs(self, d: Path, name: str) -> list[Path]:
        out, e = self.outputs[name], self.case.experiment(name)
        model_cols = [out.depth_m * 1e9] + [out.theta[i] for i in range(len(out.species_names))]
        model_head = ["depth_nm"] + [f"theta_{s}" for s in out.species_names]
        fine = _fine_grid_m(out, e)
        model_head += ["broadened_depth_nm"] + [f"broadened_theta_{s}" for s in out.species_names]
        written = []
        name = _file_stem(name)
        broadened = [self.problem.model_at_data(name, self.z, out, s, depth_m=fine) for s in out.species_names]
        n = max(out.depth_m.size, fine.size)
        pad = [np.pad(c, (0, n - c.size), constant_values=np.nan) for c in model_cols + [fine * 1e9] + broadened]
        written.append(write_csv_atomic(d / f"{name}_model.csv", model_head, pad))
        if e.data is not None:
            keep, species = self.problem.data_rows(name)
            cols, head = [e.data.depth_m[keep] * 1e9], ["depth_nm"]
            for s in species:
                model = self.problem.model_at_data(name, self.z, out, s)
                data = e.data.theta[s][keep]
                cols += [data, model, (model - data) / self.problem.sigmas(name, s)]
                head += [f"data_theta_{s}", f"model_theta_{s}", f"residual_{s}_sigma"]
            written.append(write_csv_atomic(d / f"{name}_profile.csv", head, cols))
        return written

    def _plots(self, d: Path) -> list[Path]:
        from . import plots  # matplotlib: loaded when a fit is written, not on import

        panels = []
        for name in self.problem.names:
            out, e = self.outputs[name], self.case.experiment(name)
            fine = _fine_grid_m(out, e)
            model = {s: self.problem.model_at_data(name, self.z, out, s, depth_m=fine) for s in out.species_names}
            data_depth = e.data.depth_m * 1e9 if e.data is not None else np.zeros(0)
            data = dict(e.data.theta) if e.data is not None else {}
            rms = self.rms_theta(name) if e.data is not None else None
            panels.append(plots.ProfilePanel(title=f"{name}", data_depth_nm=data_depth, data_theta=data,
                                             model_depth_nm=fine * 1e9, model_theta=model, native=out.species_names[0],
                                             residual_rms=max(rms.values()) if rms else None))
        written = [plots.plot_profile_fits(panels, d / "fit_profiles.png")]
        theta = np.linspace(0.005, 1.0, 400)
        first = self.experiment(self.problem.names[0])
        D, lo, hi = self.native_diffusivity(self.problem.names[0], theta)
        foreign = {}
        per_experiment = {}
        for name in self.problem.names:
            exp = self.experiment(name)
            f = exp.species[exp.front_species_index]
            if isinstance(f.diffusion, ConstantD):
                foreign[f.name] = f.diffusion.D_m2_s
            Dn = exp.native.diffusion.diffusivity_m2_s(theta, exp.glass.temperature_K)
            if not np.allclose(Dn, D, rtol=1e-9):
                per_experiment[name] = Dn
        law = first.native.diffusion
        knots = (np.array(law.theta), np.array(law.D_m2_s)) if isinstance(law, TabulatedD) else None
        written.append(plots.plot_diffusivity_fit(theta, D, lo, hi, foreign, d / "fit_diffusivity.png",
                                                  native=first.native.name, knots=knots,
                                                  per_experiment=per_experiment or None))
        if isinstance(law, GaussianSED):
            written.append(self._plot_sed(d / "fit_sed.png"))
        return written

    def _plot_sed(self, path: Path) -> Path:
        from . import plots

        first = self.experiment(self.problem.names[0])
        law, g = first.native.diffusion, first.glass
        from cait_fem.physics.sed import sigma_eV

        E = np.linspace(-4.5, 4.5, 1200) * sigma_eV(law.fwhm_eV)
        mobile, levels, parts = {}, {}, None
        for name in self.problem.names:
            plateau = self.problem.metrics(self.outputs[name])["plateau_native"]
            if not np.isfinite(plateau):
                continue
            parts = psed_parts(E, self.experiment(name).native.diffusion, g.n_bg_m3, plateau, g.temperature_K)
            mobile[name] = parts["mobile_m3_eV"]
            levels[name] = parts["fermi_level_plateau_eV"]
        if parts is None:
            parts = psed_parts(E, law, g.n_bg_m3, 1.0, g.temperature_K)
        return plots.plot_site_energy_distribution(E, parts["sed_m3_eV"], parts["populated_initial_m3_eV"], mobile,
                                                   parts["fermi_level_bulk_eV"], path,
                                                   fermi_levels_plateau_eV=levels or None)


def _fine_grid_m(out, e) -> np.ndarray:
    """Depths for the broadened model curve: the data's range, or without data twice the
    replaced zone (x50; 300 nm if there is none yet)."""
    if e.data is not None:
        top = e.data.depth_m[-1]
    else:
        x50 = profile_metrics(out.depth_m, out.theta[0], out.theta[1:].sum(axis=0))["x50_m"]
        top = 2.0 * x50 if np.isfinite(x50) and x50 > 0 else 300e-9
    return np.linspace(0.0, min(top, out.depth_m[-1]), 600)


def _unit(name: str) -> str:
    key = name.split(".")[-1].split("[")[0]
    return unit_of(key)


def _t95(dof: int) -> float:
    from .fitter import quantile95

    return quantile95(dof)
