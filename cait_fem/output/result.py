"""What a run returns: profiles at the output times, time series of the boundary quantities,
derived metrics (docs/model.md section 6), and writing them to a directory.

Output directory (one header row per CSV, units in the column names; descriptions and
units of every column in ``metadata.json["columns"]``):

- ``profiles.csv``   long format, one row per (output time, node):
  ``time_s, depth_nm, theta_<species>..., excess_charge, potential_V``
- ``timeseries.csv`` one row per accepted step: ``time_s, current_density_A_m2,
  surface_potential_V, charge_C_m2, foreign_inside_m2, influx_integral_m2, dt_s,
  newton_iterations``; for a beam or current front also ``beam_current_density_A_m2,
  delivered_charge_C_m2, landed_charge_C_m2`` (:data:`BEAM_COLUMNS`)
- ``summary.json``   :meth:`Result.summary`;  ``metadata.json``  :meth:`Result.to_metadata`
- ``profiles.png``, ``profiles_log.png``, ``diffusion.png``, ``timeseries.png`` (:meth:`Result.plot`)
"""

from __future__ import annotations

import importlib
import importlib.metadata
import platform
import sys
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import cached_property
from pathlib import Path

import numpy as np
from scipy.constants import e as _E_CHARGE

from cait_fem.analysis import metrics as _metrics
from cait_fem.case.case_file import experiment_to_dict, parameters_with_units
from cait_fem.case.experiment import Experiment
from cait_fem.fileio import existing_files, write_csv_atomic, write_json_atomic

PROFILES_CSV, TIMESERIES_CSV = "profiles.csv", "timeseries.csv"
SUMMARY_JSON, METADATA_JSON = "summary.json", "metadata.json"
DATA_FILES = (PROFILES_CSV, TIMESERIES_CSV, SUMMARY_JSON, METADATA_JSON)
PLOT_FILES = ("profiles.png", "profiles_log.png", "diffusion.png", "timeseries.png")
OUTPUT_FILES = DATA_FILES + PLOT_FILES
# what a 2D/3D run writes besides (cait_fem.post.spot_exports); here, so that the CLI can
# name a run's result set without loading DOLFINx
EXPORT_FILES = ("fields.bp", "rim_profiles.csv", "surface_profile.csv", "rim_profiles.png",
                "surface_profile.png", "field_near_rim.png")
FILE_DESCRIPTIONS = {
    PROFILES_CSV: "depth profiles at the output times, long format (one row per time and node)",
    TIMESERIES_CSV: "boundary quantities after every accepted time step",
    SUMMARY_JSON: "metrics (plateau, front, excess charge, conservation) and run statistics",
    METADATA_JSON: "every parameter with its unit, solver scales and floors, versions, provenance",
    "profiles.png": "theta of every species vs depth at every output time",
    "profiles_log.png": "the same, logarithmic theta axis",
    "diffusion.png": "D(theta) of every species at the sample temperature",
    "timeseries.png": "current density, surface potential, charge and foreign ions inside vs time",
}

TIMESERIES_COLUMNS = {
    "time_s": ("s", "simulated time of the accepted step (0 = initial state)"),
    "current_density_A_m2": ("A/m^2", "ionic current density through the back electrode"),
    "surface_potential_V": ("V", "electric potential of the front surface (back electrode = 0)"),
    "charge_C_m2": ("C/m^2", "charge passed through the back electrode since t = 0"),
    "foreign_inside_m2": ("m^-2", "foreign ions (all foreign species) inside the sample per area"),
    "influx_integral_m2": ("m^-2", "time integral of the foreign-ion influx at the front per area"),
    "dt_s": ("s", "step size that led to this time (0 at t = 0)"),
    "newton_iterations": ("1", "Newton iterations of this accepted step (0 at t = 0)"),
}
#: columns added for a front with an influx law (front.type "beam" or "current")
BEAM_COLUMNS = {
    "beam_current_density_A_m2": ("A/m^2", "beam current density j(t) at the front: the case's value, or its "
                                           "measured history (linear between samples)"),
    "delivered_charge_C_m2": ("C/m^2", "charge the beam delivered since t = 0, int_0^t j dt (exact integral of "
                                       "the history)"),
    "landed_charge_C_m2": ("C/m^2", "charge of the foreign ions that landed (entered the sample) since t = 0: "
                                    "z e influx_integral_m2; below the delivered charge where the surface potential "
                                    "reflects part of the beam"),
}


def check_output_directory(directory, overwrite: bool = False, names=OUTPUT_FILES) -> Path:
    """Raise FileExistsError if ``directory`` already holds any of our output files (unless
    ``overwrite``) or is not a directory. Call it before a solve to fail early."""
    d = Path(directory)
    if d.exists() and not d.is_dir():
        raise FileExistsError(f"output directory {d} exists and is not a directory")
    found = existing_files(d, names)
    if found and not overwrite:
        raise FileExistsError(f"output directory {d} already holds results ({', '.join(found)}); "
                              "choose another directory or pass --overwrite (overwrite=True) to replace them")
    return d


def on_root(comm, fn):
    """Run ``fn`` on rank 0 only; other ranks wait for it and get its return value or error."""
    if comm is None or comm.Get_size() == 1:
        return fn()
    value, error = None, None
    if comm.Get_rank() == 0:
        try:
            value = fn()
        except Exception as exc:  # noqa: BLE001 - re-raised below on every rank
            error = exc
    status = comm.bcast((value, None if error is None else (type(error), str(error))), root=0)
    if error is not None:
        raise error
    if status[1] is not None:
        cls, msg = status[1]
        try:
            raise cls(msg)
        except TypeError:
            raise RuntimeError(f"rank 0 failed: {msg}") from None
    return status[0]


def software_versions() -> dict:
    """Versions of Python and the libraries; modules are imported only if already loaded,
    otherwise their installed distribution version is read. Missing ones are omitted."""
    out = {"python": platform.python_version(), "platform": platform.platform()}
    candidates = {"cait_fem": ["cait_fem"], "numpy": ["numpy"], "scipy": ["scipy"],
                  "matplotlib": ["matplotlib"], "tqdm": ["tqdm"], "mpi4py": ["mpi4py"],
                  "dolfinx": ["fenics-dolfinx", "dolfinx-solver-real", "dolfinx"],
                  "basix": ["fenics-basix"], "ufl": ["fenics-ufl"], "ffcx": ["fenics-ffcx"],
                  "petsc4py": ["petsc4py", "petsc4py-real"]}
    for module, dists in candidates.items():
        version = None
        mod = sys.modules.get(module)
        if mod is not None:
            version = getattr(mod, "__version__", None)
        for dist in dists:
            if version is not None:
                break
            try:
                version = importlib.metadata.version(dist)
            except importlib.metadata.PackageNotFoundError:
                pass
        if version is not None:
            out[module] = str(version)
    try:
        if "petsc4py" in sys.modules:
            petsc = importlib.import_module("petsc4py.PETSc")
            out["petsc"] = ".".join(str(v) for v in petsc.Sys.getVersion())
        if "mpi4py" in sys.modules:
            mpi = importlib.import_module("mpi4py.MPI")
            out["mpi_library"] = mpi.Get_library_version().splitlines()[0].strip()
    except Exception:  # noqa: BLE001 - versions are informative only
        pass
    return out


@dataclass
class Result:
    experiment: Experiment
    depth_m: np.ndarray                 # (n_nodes,) ascending, 0 = front surface
    species_names: tuple[str, ...]      # order of the theta axis; native first
    output_times_s: np.ndarray          # (K,)
    theta: np.ndarray                   # (K, n_species, n_nodes)  n_i / n_bg
    potential_V: np.ndarray             # (K, n_nodes)
    time_s: np.ndarray                  # (M,) accepted step times, starting with 0
    current_density_A_m2: np.ndarray    # (M,) ionic current density at the back electrode
    surface_potential_V: np.ndarray     # (M,)
    charge_C_m2: np.ndarray             # (M,) charge passed through the back electrode
    foreign_inside_m2: np.ndarray       # (M,) foreign ions inside per area (all foreign species)
    influx_integral_m2: np.ndarray      # (M,) time integral of the foreign influx per area
    dt_s: np.ndarray                    # (M,) step size that led to each time (0 for t=0)
    newton_iterations: np.ndarray       # (M,) per accepted step (0 for t=0)
    stats: dict                         # steps, rejected_steps, newton_iterations, wall_time_s, cells, ...
    metadata: dict                      # filled by the solver: scales, floors, versions

    def __post_init__(self):
        self.species_names = tuple(self.species_names)
        for name in ("depth_m", "output_times_s", "theta", "potential_V", "time_s", "current_density_A_m2",
                     "surface_potential_V", "charge_C_m2", "foreign_inside_m2", "influx_integral_m2", "dt_s"):
            setattr(self, name, np.asarray(getattr(self, name), dtype=float))
        self.newton_iterations = np.asarray(self.newton_iterations, dtype=np.int64)
        n, k, s, m = self.depth_m.size, self.output_times_s.size, len(self.species_names), self.time_s.size
        expected = {"depth_m": (n,), "output_times_s": (k,), "theta": (k, s, n), "potential_V": (k, n)}
        expected.update({name: (m,) for name in TIMESERIES_COLUMNS if name != "time_s"})
        for name, shape in expected.items():
            if getattr(self, name).shape != shape:
                raise ValueError(f"Result.{name} has shape {getattr(self, name).shape}, expected {shape}")
        known = {sp.name for sp in self.experiment.species}
        if set(self.species_names) != known:
            raise ValueError(f"Result.species_names {self.species_names} != experiment species {sorted(known)}")
        self.stats = dict(self.stats or {})
        self.metadata = dict(self.metadata or {})

    # ------------------------------------------------------------------ access
    def time_index(self, time_s: float | None = None) -> int:
        """Index of the stored output time equal (1e-9 relative) to ``time_s``; None = last."""
        if self.output_times_s.size == 0:
            raise ValueError("the result holds no output times")
        if time_s is None:
            return self.output_times_s.size - 1
        k = int(np.argmin(np.abs(self.output_times_s - time_s)))
        t_k = self.output_times_s[k]
        if abs(t_k - time_s) > 1e-9 * max(abs(time_s), abs(t_k)):
            raise ValueError(f"no profile stored at t = {time_s!r} s; stored output times [s]: "
                             f"{', '.join(f'{t:.9g}' for t in self.output_times_s)}")
        return k

    def profile(self, time_s: float | None = None) -> dict[str, np.ndarray]:
        """theta of every species at the stored output time ``time_s`` (None = last)."""
        k = self.time_index(time_s)
        return {name: self.theta[k, i] for i, name in enumerate(self.species_names)}

    @property
    def charge_numbers(self) -> np.ndarray:
        z = {sp.name: sp.charge_number for sp in self.experiment.species}
        return np.array([z[n] for n in self.species_names], dtype=float)

    def _native_foreign(self, k: int) -> tuple[np.ndarray, np.ndarray]:
        index = {n: i for i, n in enumerate(self.species_names)}
        native = self.theta[k, index[self.experiment.native.name]]
        foreign = sum(self.theta[k, index[sp.name]] for sp in self.experiment.foreign)
        return native, np.asarray(foreign, dtype=float)

    @cached_property
    def excess_charge(self) -> np.ndarray:
        """(sum_i z_i n_i - n_bg) / n_bg at every output time and node, shape (K, n_nodes)
        (computed once; a Result is not meant to be modified after construction)."""
        z = {sp.name: sp.charge_number for sp in self.experiment.species}
        native = self.experiment.native.name
        return np.array([np.asarray(_metrics.excess_charge(
            {name: self.theta[k, i] for i, name in enumerate(self.species_names)}, z, native_name=native),
            dtype=float) for k in range(self.output_times_s.size)]).reshape(self.potential_V.shape)

    def _max_excess(self, k: int | None = None) -> tuple[float, float]:
        ex = np.abs(self.excess_charge if k is None else self.excess_charge[k:k + 1])
        beyond = self.depth_m > 1e-9
        far = float(np.max(ex[:, beyond])) if beyond.any() and ex.size else float("nan")
        return (float(np.max(ex)) if ex.size else float("nan")), far

    def metrics(self, time_s: float | None = None) -> dict:
        """Plateau, x50, front position and width (m) at an output time (None = last) from
        the native and the summed foreign fractions, plus the largest |excess charge| there,
        overall and beyond the first nanometre."""
        k = self.time_index(time_s)
        native, foreign = self._native_foreign(k)
        out = {"time_s": float(self.output_times_s[k])}
        out.update({key: float(v) for key, v in _metrics.profile_metrics(self.depth_m, native, foreign).items()})
        out["max_excess_charge"], out["max_excess_charge_beyond_1nm"] = self._max_excess(k)
        return out

    @property
    def has_influx_law(self) -> bool:
        """True for a front that delivers ions by a current (beam or current front)."""
        return self.experiment.front.type in ("beam", "current")

    @property
    def beam_current_density_A_m2(self) -> np.ndarray:
        """The beam current density j(t) [A/m^2] at ``time_s`` (NaN for a front without an
        influx law): the case's constant or its measured history."""
        front = self.experiment.front
        if front.type == "beam":
            return np.asarray(front.current_density_at(self.time_s), dtype=float)
        if front.type == "current":
            return np.full_like(self.time_s, front.current_density_A_m2)
        return np.full_like(self.time_s, np.nan)

    @property
    def delivered_charge_C_m2(self) -> np.ndarray:
        """The charge the beam delivered by ``time_s``, int_0^t j dt [C/m^2] (exact
        integral of the history; NaN for a front without an influx law). A sequential
        experiment counts from its own t = 0."""
        front = self.experiment.front
        if front.type == "beam":
            return np.asarray(front.charge_C_m2(self.time_s), dtype=float)
        if front.type == "current":
            return front.current_density_A_m2 * self.time_s
        return np.full_like(self.time_s, np.nan)

    @property
    def landed_charge_C_m2(self) -> np.ndarray:
        """The charge of the foreign ions that entered the sample by ``time_s`` [C/m^2]:
        z e times ``influx_integral_m2`` (NaN for a front without an influx law). Less than
        the delivered charge where the surface potential reflects part of the beam."""
        if not self.has_influx_law:
            return np.full_like(self.time_s, np.nan)
        return self.experiment.beam_species.charge_number * _E_CHARGE * self.influx_integral_m2

    def timeseries_columns(self) -> dict:
        """The columns of timeseries.csv: {name: (unit, description)}."""
        return {**TIMESERIES_COLUMNS, **(BEAM_COLUMNS if self.has_influx_law else {})}

    def exposure(self) -> dict:
        """The exposure of the run: its duration, the charge the beam delivered and the
        charge that landed [C/m^2], the delivered ions [m^-2] and the landed fraction, and
        the kind of current ("constant" or "measured history" with its sample count and
        source); {} for a front without an influx law."""
        if not self.has_influx_law or self.time_s.size == 0:
            return {}
        z = self.experiment.beam_species.charge_number
        delivered, landed = float(self.delivered_charge_C_m2[-1]), float(self.landed_charge_C_m2[-1])
        front = self.experiment.front
        out = {"exposure_time_s": float(self.time_s[-1]), "delivered_charge_C_m2": delivered,
               "landed_charge_C_m2": landed, "delivered_ions_m2": delivered / (z * _E_CHARGE),
               "landed_fraction": landed / delivered if delivered > 0 else float("nan"),
               "beam_current": "constant"}
        if getattr(front, "has_history", False):
            out["beam_current"] = "measured history"
            out["beam_history_samples"] = len(front.current_times_s)
            out["beam_history_source"] = front.current_history_source
        return out

    @property
    def conservation_error(self) -> float:
        """max_t |foreign ions gained - integrated influx| / (integrated influx at the end);
        "gained" counts from the initial state, which a sequential experiment inherits.
        NaN for a potential front, where the surface fraction is imposed and the influx is
        whatever that takes."""
        if self.time_s.size == 0 or self.experiment.front.type == "potential":
            return float("nan")  # a potential front imposes the surface fraction: no influx law
        scale = max(abs(float(self.influx_integral_m2[-1])), np.finfo(float).tiny)
        gained = self.foreign_inside_m2 - self.foreign_inside_m2[0]
        return float(np.max(np.abs(gained - self.influx_integral_m2)) / scale)

    def summary(self) -> dict:
        """summary.json: metrics at the last output time, maxima over all output times,
        final boundary quantities and run statistics; units in the key names."""
        def nm(v):
            return float(v) * 1e9
        last = lambda a: float(a[-1]) if a.size else float("nan")  # noqa: E731
        m = self.metrics()
        max_ex, max_ex_far = self._max_excess()
        out = {"name": self.experiment.name, "time_s": m["time_s"], "plateau_native": m["plateau_native"],
               "front_position_nm": nm(m["front_position_m"]), "front_width_nm": nm(m["front_width_m"]),
               "x50_nm": nm(m["x50_m"]), "conservation_error": self.conservation_error,
               "max_excess_charge": max_ex, "max_excess_charge_beyond_1nm": max_ex_far,
               "final_current_density_A_m2": last(self.current_density_A_m2),
               "final_surface_potential_V": last(self.surface_potential_V),
               "charge_C_m2": last(self.charge_C_m2), "foreign_inside_m2": last(self.foreign_inside_m2),
               "influx_integral_m2": last(self.influx_integral_m2), **self.exposure(),
               "steps": int(max(self.time_s.size - 1, 0)), "rejected_steps": 0,
               "newton_iterations": int(self.newton_iterations.sum()), "wall_time_s": None,
               "cells": None, "dofs": None}
        out.update(self.stats)
        outputs = []
        for t in self.output_times_s:
            mk = self.metrics(float(t))
            outputs.append({"time_s": mk["time_s"], "plateau_native": mk["plateau_native"],
                            "front_position_nm": nm(mk["front_position_m"]),
                            "front_width_nm": nm(mk["front_width_m"]), "x50_nm": nm(mk["x50_m"]),
                            "max_excess_charge": mk["max_excess_charge"],
                            "max_excess_charge_beyond_1nm": mk["max_excess_charge_beyond_1nm"]})
        out["outputs"] = outputs
        return out

    def columns(self) -> dict:
        """Units and descriptions of every CSV column (metadata.json "columns")."""
        prof = {"time_s": {"unit": "s", "description": "output time of the profile"},
                "depth_nm": {"unit": "nm", "description": "depth below the front (beam) surface"}}
        for name in self.species_names:
            prof[f"theta_{name}"] = {"unit": "1", "description": f"n_{name} / n_bg (fraction of the background)"}
        prof["excess_charge"] = {"unit": "1", "description": "(sum_i z_i n_i - n_bg) / n_bg"}
        prof["potential_V"] = {"unit": "V", "description": "electric potential (back electrode = 0)"}
        ts = {k: {"unit": u, "description": d} for k, (u, d) in self.timeseries_columns().items()}
        return {PROFILES_CSV: prof, TIMESERIES_CSV: ts}

    def to_metadata(self) -> dict:
        """metadata.json: every parameter with its unit, solver metadata, versions, provenance."""
        case = experiment_to_dict(self.experiment)
        versions = software_versions()
        versions.update(self.metadata.get("versions", {}) or {})
        return {"created_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
                "command_line": list(sys.argv), "working_directory": str(Path.cwd()),
                "experiment": case, "parameters": parameters_with_units(case),
                "species_order": list(self.species_names),
                "output_times_s": self.output_times_s, "exposure": self.exposure(),
                "solver_metadata": self.metadata, "stats": self.stats,
                "versions": versions, "columns": self.columns(),
                "files": FILE_DESCRIPTIONS}

    # ------------------------------------------------------------------ writing
    def _write(self, directory, overwrite: bool) -> list[Path]:
        d = check_output_directory(directory, overwrite)
        d.mkdir(parents=True, exist_ok=True)
        for stale in existing_files(d, PLOT_FILES):   # overwrite=True: no plots of an older run
            (d / stale).unlink()
        k, n = self.output_times_s.size, self.depth_m.size
        header = ["time_s", "depth_nm"] + [f"theta_{s}" for s in self.species_names] + ["excess_charge",
                                                                                        "potential_V"]
        cols = [np.repeat(self.output_times_s, n), np.tile(self.depth_m * 1e9, k)]
        cols += [self.theta[:, i, :].ravel() for i in range(len(self.species_names))]
        cols += [self.excess_charge.ravel(), self.potential_V.ravel()]
        paths = [write_csv_atomic(d / PROFILES_CSV, header, cols)]
        columns = self.timeseries_columns()
        paths.append(write_csv_atomic(d / TIMESERIES_CSV, list(columns), [getattr(self, c) for c in columns]))
        paths.append(write_json_atomic(d / SUMMARY_JSON, self.summary()))
        paths.append(write_json_atomic(d / METADATA_JSON, self.to_metadata()))
        return paths

    def save(self, directory, overwrite: bool = False, comm=None) -> list[Path]:
        """Write the CSV and JSON files into ``directory`` (created if needed). Refuses with
        FileExistsError if it already holds any output file, unless ``overwrite``. With an MPI
        ``comm`` only rank 0 writes; the other ranks wait and return the same paths."""
        return on_root(comm, lambda: self._write(directory, overwrite))

    def plot(self, directory, overwrite: bool = False, comm=None) -> list[Path]:
        """Write the four PNGs (see :mod:`cait_fem.output.plots`); refuses to replace existing
        PNGs unless ``overwrite``. Only rank 0 of ``comm`` draws."""
        def draw():
            from .plots import plot_all
            d = check_output_directory(directory, overwrite, names=PLOT_FILES)
            return plot_all(self, d)
        return on_root(comm, draw)
