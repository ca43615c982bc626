"""The ``[[experiment]]`` tables of a fit file (format: :mod:`cait_fem.fit.config`):
one measured experiment each, its run case, its measured profile (a profile CSV or a raw
ToF-SIMS file) or profile targets, and the hand-over between sequential experiments."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field
from pathlib import Path

from cait_fem.analysis.measured import MeasuredProfile, read_profile_csv
from cait_fem.analysis.tofsims import read_tofsims_csv, settings_from_dict
from cait_fem.case.case_file import experiment_from_dict, experiment_to_dict, load_case
from cait_fem.case.experiment import Experiment
from cait_fem.errors import ConfigError

from .validation import fail, known_keys, number

TARGETS = {"plateau": 0.01, "front_nm": 5.0}  # target -> default sigma
EXPERIMENT_KEYS = ("name", "case", "data", "tofsims", "sims_resolution_nm", "depth_offset_nm", "theta_sigma",
                   "depth_range_nm", "weight", "targets", "target_sigma", "bulk_from_nm",
                   "tracer_D_native_m2_s", "max_data_points", "initial_from", "temperature_K")
# Rows of a measured profile compared per experiment unless max_data_points raises it: a
# SIMS profile has 1e2-1e4 points; 1e6 rows cost more in residuals than in solves and
# write a 100 MB model CSV, more likely a wrong export than a measurement.
MAX_DATA_POINTS = 100_000
# An experiment name becomes part of output file names (<name>_profile.csv): no path
# separators, no "..", no leading dot (hidden files).
_SAFE_NAME = re.compile(r"[A-Za-z0-9_\-][A-Za-z0-9_.\-]*")


@dataclass(frozen=True)
class FitExperiment:
    """One measured experiment. ``experiment``: the run case with its only output at
    ``run.t_end_s`` (profiles are measured after the beam is off)."""

    name: str
    experiment: Experiment
    data: MeasuredProfile | None = None
    sims_resolution_nm: float = 0.0
    depth_offset_nm: float = 0.0
    theta_sigma: float | None = None
    depth_range_nm: tuple[float, float] | None = None
    weight: float = 1.0
    targets: dict = field(default_factory=dict)
    target_sigma: dict = field(default_factory=dict)
    tracer_D_native_m2_s: float | None = None  # measured tracer D* of the native ion (Haven ratio)
    #: name of an earlier experiment whose final model state, at the same parameter
    #: vector, is this one's initial state (docs/fitting.md, "Sequential experiments")
    initial_from: str | None = None

    @property
    def case_dict(self) -> dict:
        return experiment_to_dict(self.experiment)

    def measurement_value(self, path: str) -> float:
        return float(getattr(self, path))


def _case(where: str, value, base: Path, name: str) -> Experiment:
    if isinstance(value, dict):
        exp = experiment_from_dict(value, source=f"{where}.case", default_name=name)
    elif isinstance(value, str):
        path = base / value
        if not path.is_file():
            fail(where, "case", value, f"a run case file; {path} does not exist")
        exp = load_case(path)
    else:
        fail(where, "case", value, "a path to a run case (TOML) or an inline table")
    d = experiment_to_dict(exp)
    d["run"]["output_times_s"] = []
    return experiment_from_dict(d, source=f"{where}.case")


def experiment_from_table(where: str, d: dict, base: Path) -> FitExperiment:
    """The :class:`FitExperiment` of one ``[[experiment]]`` table ``d`` of a fit file at
    ``where`` (for messages); relative paths are relative to ``base``."""
    known_keys(where, d, EXPERIMENT_KEYS)
    name = d.get("name")
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(f"{where}.name = {name!r} is not allowed: a non-empty name of letters, digits, "
                          "'_', '-' and '.', not starting with '.' and without '/', '\\' or '..' "
                          "(it names the output files <name>_profile.csv and <name>_model.csv)")
    if "case" not in d:
        raise ConfigError(f"{where}: case is missing: every experiment needs its run case")
    exp = _case(where, d["case"], base, name)
    if "temperature_K" in d:
        T = number(where, "temperature_K", d["temperature_K"], low=0.0, open_low=True)
        case = experiment_to_dict(exp)
        case["glass"]["temperature_K"] = T
        exp = experiment_from_dict(case, source=f"{where}.case at temperature_K = {T!r}")
    data, data_key = _data(where, d, base, exp)
    targets = dict(known_keys(f"{where}.targets", d.get("targets", {}), tuple(TARGETS)))
    for k, v in targets.items():
        # plateau: a fraction of the native ion [0, 1]; front_nm: a depth > 0
        targets[k] = number(f"{where}.targets", k, v, low=0.0, open_low=k == "front_nm",
                             high=1.0 if k == "plateau" else math.inf)
    sigmas = dict(known_keys(f"{where}.target_sigma", d.get("target_sigma", {}), tuple(TARGETS)))
    for k in sigmas:
        sigmas[k] = number(f"{where}.target_sigma", k, sigmas[k], low=0.0, open_low=True)
    if data is None and not targets:
        raise ConfigError(f"{where}: experiment {name!r} has neither data nor targets: nothing to compare "
                          "(data: a profile CSV in data, or a raw ToF-SIMS file in [experiment.tofsims])")
    kwargs = {}
    for key in ("sims_resolution_nm", "depth_offset_nm"):
        if key in d:
            kwargs[key] = number(where, key, d[key], low=0.0 if key == "sims_resolution_nm" else -math.inf)
    if "theta_sigma" in d:
        kwargs["theta_sigma"] = number(where, "theta_sigma", d["theta_sigma"], low=0.0, open_low=True)
    for key in ("weight", "tracer_D_native_m2_s"):
        if key in d:
            kwargs[key] = number(where, key, d[key], low=0.0, open_low=True)
    if "depth_range_nm" in d:
        r = d["depth_range_nm"]
        numbers = isinstance(r, list) and len(r) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in r)
        if not (numbers and 0 <= r[0] < r[1]):
            fail(where, "depth_range_nm", r, "[low, high] with 0 <= low < high")
        kwargs["depth_range_nm"] = (float(r[0]), float(r[1]))
        if data is not None:
            depth_nm = data.depth_m * 1e9
            # the same comparison as FitProblem.data_rows
            inside = int(((data.depth_m >= r[0] * 1e-9) & (data.depth_m <= r[1] * 1e-9)).sum())
            if inside == 0:
                fail(where, "depth_range_nm", r, f"a range holding data points: the data {data_key} "
                      f"span depth_nm {float(depth_nm[0])!r} .. {float(depth_nm[-1])!r}")
    if "initial_from" in d:
        kwargs["initial_from"] = d["initial_from"]  # checked against the others in check_sequence
    return FitExperiment(name=name, experiment=exp, data=data, targets=targets,
                         target_sigma={k: sigmas.get(k, TARGETS[k]) for k in targets}, **kwargs)


def _data(where: str, d: dict, base: Path, exp: Experiment) -> tuple[MeasuredProfile | None, str]:
    """The measured profile of ``data`` (a profile CSV) or ``tofsims`` (a raw ToF-SIMS
    file), and how messages name it."""
    if "data" in d and "tofsims" in d:
        fail(where, "tofsims", d["tofsims"], f"either data (a profile CSV) or tofsims (a raw ToF-SIMS file), "
              f"not both: data = {d['data']!r} is also given")
    if "data" not in d and "tofsims" not in d:
        if "max_data_points" in d:
            fail(where, "max_data_points", d["max_data_points"], "only with data or tofsims (a measured profile)")
        return None, ""
    limit = d.get("max_data_points", MAX_DATA_POINTS)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        fail(where, "max_data_points", limit, "an integer >= 1")
    native, foreign = exp.native.name, [s.name for s in exp.foreign]
    if "tofsims" in d:
        if "bulk_from_nm" in d:
            fail(where, "bulk_from_nm", d["bulk_from_nm"], "inside [experiment.tofsims] for a raw ToF-SIMS file")
        settings = settings_from_dict(d["tofsims"], f"{where}.tofsims", native, foreign)
        key, value = "tofsims.file", settings.file
        data = read_tofsims_csv(base / settings.file, settings, native, foreign, max_rows=limit,
                                max_rows_key=f"{where}.max_data_points")
    else:
        if not isinstance(d["data"], str):
            fail(where, "data", d["data"], "a path to a CSV file of the measured profile")
        bulk = d.get("bulk_from_nm")
        if bulk is not None:
            bulk = number(where, "bulk_from_nm", bulk, low=0.0)
        key, value = "data", d["data"]
        data = read_profile_csv(base / d["data"], native, foreign, bulk_from_nm=bulk, max_rows=limit,
                                max_rows_key=f"{where}.max_data_points")
    deepest = float(data.depth_m[-1])
    if deepest > exp.glass.thickness_m:
        fail(where, key, value, f"a profile within the sample: its deepest point, "
              f"depth_nm = {deepest * 1e9!r}, lies below the back electrode at glass.thickness_m = "
              f"{exp.glass.thickness_m!r} m of the case")
    return data, repr(value)


def check_sequence(experiments: list[FitExperiment]) -> None:
    """``initial_from`` names an earlier experiment on the same sample (same glass
    thickness and background density, same native species, same depth mesh, so that its
    final state is handed over node by node) whose foreign species this one keeps: a
    species missing in the later case would vanish with its ions at the hand-over."""
    for i, e in enumerate(experiments):
        if e.initial_from is None:
            continue
        where = f"experiment[{i}]"
        earlier = [x.name for x in experiments[:i]]
        if not isinstance(e.initial_from, str) or e.initial_from not in earlier:
            fail(where, "initial_from", e.initial_from,
                  f"the name of an earlier [[experiment]] (one of {earlier})" if earlier else
                  "the name of an earlier [[experiment]], and this is the first one")
        src = next(x for x in experiments if x.name == e.initial_from).experiment
        new = e.experiment
        for key in ("thickness_m", "n_bg_m3"):
            a, b = getattr(src.glass, key), getattr(new.glass, key)
            if a != b:
                fail(where, "initial_from", e.initial_from, f"an experiment on the same sample: its "
                      f"glass.{key} = {a!r}, this case's = {b!r}")
        if src.native.name != new.native.name:
            fail(where, "initial_from", e.initial_from, f"an experiment with the same native species: its is "
                  f"{src.native.name!r}, this case's {new.native.name!r}")
        if src.mesh != new.mesh or src.geometry != new.geometry:
            fail(where, "initial_from", e.initial_from, "an experiment with the same [mesh] and [geometry] "
                  "settings (its final state is handed over node by node)")
        names = [s.name for s in new.species]
        lost = [s.name for s in src.foreign if s.name not in names]
        if lost:
            fail(where, "initial_from", e.initial_from, f"an experiment whose foreign species this case keeps: "
                  f"{lost} would be lost at the hand-over; add them as foreign [[species]]")
