"""Fit files (TOML) -> :class:`FitCase`, validated before any solve.

A fit file names the experiments, each a run case (the format of ``cait-fem run``) plus
what was measured, and the parameters to adjust by their dotted path in the run case
(:mod:`cait_fem.fit.parameters`). Relative paths are relative to the fit file::

    name = "Li3B7O12"

    [[experiment]]
    name = "K"
    case = "k_cait.toml"              # or an inline table with the run case
    data = "k_sims.csv"               # depth_nm, theta_<species> (see cait_fem.analysis.measured)
                                      # or, instead of data, a raw ToF-SIMS file (counts against
                                      # sputter time; cait_fem.analysis.tofsims):
    # [experiment.tofsims]
    # file = "k_raw.csv"
    # masses = { 7Li = "Li", 39K = "K" }
    # crater_depth_nm = 250.0         # or depth_table = { time_s = [...], depth_nm = [...] }
    # normalisation = "matrix"        # or "bulk"
    # matrix = "BO2"
    # rsf = { K = 0.4 }
    sims_resolution_nm = 2.0          # ToF-SIMS depth resolution sigma (default 0)
    depth_offset_nm = 0.0             # data depth = model depth + offset (default 0)
    theta_sigma = 0.01                # 1-sigma of the measured fractions (default: unknown)
    depth_range_nm = [0.0, 300.0]     # compare only here (default: all rows)
    weight = 1.0                      # multiplies this experiment's residuals
    tracer_D_native_m2_s = 5e-18      # a measured tracer D* of the native ion: Haven ratio
    max_data_points = 100000          # more data rows are refused (default 100000)
    temperature_K = 320.0             # replaces glass.temperature_K of the case (a temperature
                                      # series: one run case at several temperatures)
    initial_from = "Rb"               # only for a sequential experiment (double CAIT): start
                                      # from the final model state of this earlier experiment
    targets = { plateau = 0.15, front_nm = 100.0 }        # instead of / besides data
    target_sigma = { plateau = 0.005, front_nm = 5.0 }

    [fit]
    max_evaluations = 40              # forward evaluations of the residual (not Jacobians)
    ftol = 1e-4                       # scipy least_squares tolerances (see FitSettings)
    xtol = 1e-5
    gtol = 1e-8
    fd_step = 1e-3                    # finite-difference step in the transformed variable
    absolute_sigma = false            # true: stderr from the given sigmas, not scaled by chi2_red
    groups = 0                        # MPI sub-communicators for the ensemble (0: one per rank)
    smoothing = 1.0                   # curvature penalty of free-form log D tables (0: none)
    presolve = true                   # first match plateau and front of each profile (see fitter)
    refinement_factor = 2.0           # numerical error check at the optimum: mesh / 2, steps / 2 (1: off)

    [fit.parameters]
    "species.K.diffusion.D_m2_s"   = { initial = 1e-20, min = 1e-23, max = 1e-18, log = true }
    "species.Li.diffusion.fwhm_eV" = { initial = 0.20, min = 0.05, max = 0.50, shared = true }
    "sims_resolution_nm"           = { initial = 2.0, min = 0.0, max = 10.0 }

A parameter entry applies to every experiment whose case has the path (or to those listed
in ``experiments = [...]``); ``shared = true`` gives them one common value, otherwise each
gets its own, and ``initial`` may then be a table {experiment = value}. For a table value
(the D_m2_s knots of ``model = "tabulated"``) every knot is a parameter, or those listed in
``knots = [0, 1, 2]``. ``fixed = true`` writes ``initial`` into the cases without adjusting it.
Without ``initial`` the value is taken from the case (for a shared parameter the cases
must agree). Without ``data`` and ``targets`` an experiment has nothing to compare.

An experiment ``name`` names output files: letters, digits, ``_``, ``-`` and ``.``, not
starting with ``.``. Refused before any solve (docs/fitting.md, "What is refused before
the fit"): a ``depth_range_nm`` without data, fewer compared values than free parameters,
data deeper than the sample, bounds at which the case is invalid, booleans as numbers.

Targets are profile metrics of the final simulated profile (docs/model.md section 8.3): the
native ``plateau`` fraction [-] and ``front_nm``, the front position [nm]; a target's
residual is (model - target) / target_sigma.
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass, field, fields
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package
    import tomli as tomllib

from cait_fem.analysis.measured import MeasuredProfile, read_profile_csv
from cait_fem.analysis.tofsims import read_tofsims_csv, settings_from_dict
from cait_fem.case.case_file import experiment_from_dict, experiment_to_dict, load_case
from cait_fem.case.experiment import Experiment
from cait_fem.case.structure import check_same_structure
from cait_fem.errors import ConfigError

from .parameters import MEASUREMENT_PATHS, ParameterSpec, read_value, split_path

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
PARAMETER_KEYS = ("initial", "min", "max", "log", "shared", "fixed", "experiments", "knots")
TOP_KEYS = ("name", "experiment", "fit")


@dataclass(frozen=True)
class FitSettings:
    """Stopping: ``ftol`` is relative to the cost. With residuals in units of their sigma
    the cost is about half the number of points, so 1e-4 stops once an iteration gains
    far less than one unit of chi^2 (statistically nothing) instead of polishing digits
    that cost a Jacobian each. ``xtol`` is relative to |z|, where z = log10 x of a D is
    about -20: 1e-5 is a 0.05 % step in D."""

    max_evaluations: int = 40
    ftol: float = 1e-4
    xtol: float = 1e-5
    gtol: float = 1e-8
    fd_step: float = 1e-3
    absolute_sigma: bool = False
    groups: int = 0
    smoothing: float = 1.0
    presolve: bool = True
    # At the optimum every experiment is solved once more with its spacings divided and its
    # time steps shrunk by this factor (cait_fem.case.refinement.refined_numerics); the
    # linearised parameter shift corrects the estimates and widens ci95 (docs/fitting.md,
    # "Numerical error"). 1 switches the check off.
    refinement_factor: float = 2.0


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


@dataclass(frozen=True)
class FitCase:
    experiments: tuple[FitExperiment, ...]
    parameters: tuple[ParameterSpec, ...]
    settings: FitSettings = FitSettings()
    name: str = "fit"
    source: str = "<dict>"

    def experiment(self, name: str) -> FitExperiment:
        return next(e for e in self.experiments if e.name == name)


def _fail(where: str, key: str, value, allowed: str):
    raise ConfigError(f"{where}: {key} = {value!r} is not allowed: {allowed}")


def _number(where, key, value, *, low=-math.inf, high=math.inf, open_low=False) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if open_low else value >= low) and value <= high
    if not ok:
        bound = f"> {low}" if open_low else (f">= {low}" if math.isfinite(low) else "")
        _fail(where, key, value, f"a finite number {bound}".strip() + (f", <= {high}" if math.isfinite(high) else ""))
    return float(value)


def _keys(where: str, d, allowed) -> dict:
    if not isinstance(d, dict):
        _fail(where, "table", d, "must be a TOML table")
    for k in d:
        if k not in allowed:
            raise ConfigError(f"{where}: {k!r} is not a known key (value {d[k]!r}); allowed: {', '.join(allowed)}")
    return d


def _case(where: str, value, base: Path, name: str) -> Experiment:
    if isinstance(value, dict):
        exp = experiment_from_dict(value, source=f"{where}.case", default_name=name)
    elif isinstance(value, str):
        path = base / value
        if not path.is_file():
            _fail(where, "case", value, f"a run case file; {path} does not exist")
        exp = load_case(path)
    else:
        _fail(where, "case", value, "a path to a run case (TOML) or an inline table")
    d = experiment_to_dict(exp)
    d["run"]["output_times_s"] = []
    return experiment_from_dict(d, source=f"{where}.case")


def _experiment(where: str, d: dict, base: Path) -> FitExperiment:
    _keys(where, d, EXPERIMENT_KEYS)
    name = d.get("name")
    if not isinstance(name, str) or not _SAFE_NAME.fullmatch(name) or ".." in name:
        raise ConfigError(f"{where}.name = {name!r} is not allowed: a non-empty name of letters, digits, "
                          "'_', '-' and '.', not starting with '.' and without '/', '\\' or '..' "
                          "(it names the output files <name>_profile.csv and <name>_model.csv)")
    if "case" not in d:
        raise ConfigError(f"{where}: case is missing: every experiment needs its run case")
    exp = _case(where, d["case"], base, name)
    if "temperature_K" in d:
        T = _number(where, "temperature_K", d["temperature_K"], low=0.0, open_low=True)
        case = experiment_to_dict(exp)
        case["glass"]["temperature_K"] = T
        exp = experiment_from_dict(case, source=f"{where}.case at temperature_K = {T!r}")
    data, data_key = _data(where, d, base, exp)
    targets = dict(_keys(f"{where}.targets", d.get("targets", {}), tuple(TARGETS)))
    for k, v in targets.items():
        # plateau: a fraction of the native ion [0, 1]; front_nm: a depth > 0
        targets[k] = _number(f"{where}.targets", k, v, low=0.0, open_low=k == "front_nm",
                             high=1.0 if k == "plateau" else math.inf)
    sigmas = dict(_keys(f"{where}.target_sigma", d.get("target_sigma", {}), tuple(TARGETS)))
    for k in sigmas:
        sigmas[k] = _number(f"{where}.target_sigma", k, sigmas[k], low=0.0, open_low=True)
    if data is None and not targets:
        raise ConfigError(f"{where}: experiment {name!r} has neither data nor targets: nothing to compare "
                          "(data: a profile CSV in data, or a raw ToF-SIMS file in [experiment.tofsims])")
    kwargs = {}
    for key in ("sims_resolution_nm", "depth_offset_nm"):
        if key in d:
            kwargs[key] = _number(where, key, d[key], low=0.0 if key == "sims_resolution_nm" else -math.inf)
    if "theta_sigma" in d:
        kwargs["theta_sigma"] = _number(where, "theta_sigma", d["theta_sigma"], low=0.0, open_low=True)
    for key in ("weight", "tracer_D_native_m2_s"):
        if key in d:
            kwargs[key] = _number(where, key, d[key], low=0.0, open_low=True)
    if "depth_range_nm" in d:
        r = d["depth_range_nm"]
        numbers = isinstance(r, list) and len(r) == 2 and all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) for v in r)
        if not (numbers and 0 <= r[0] < r[1]):
            _fail(where, "depth_range_nm", r, "[low, high] with 0 <= low < high")
        kwargs["depth_range_nm"] = (float(r[0]), float(r[1]))
        if data is not None:
            depth_nm = data.depth_m * 1e9
            # the same comparison as FitProblem.data_rows
            inside = int(((data.depth_m >= r[0] * 1e-9) & (data.depth_m <= r[1] * 1e-9)).sum())
            if inside == 0:
                _fail(where, "depth_range_nm", r, f"a range holding data points: the data {data_key} "
                      f"span depth_nm {float(depth_nm[0])!r} .. {float(depth_nm[-1])!r}")
    if "initial_from" in d:
        kwargs["initial_from"] = d["initial_from"]  # checked against the others in _check_sequence
    return FitExperiment(name=name, experiment=exp, data=data, targets=targets,
                         target_sigma={k: sigmas.get(k, TARGETS[k]) for k in targets}, **kwargs)


def _data(where: str, d: dict, base: Path, exp: Experiment) -> tuple[MeasuredProfile | None, str]:
    """The measured profile of ``data`` (a profile CSV) or ``tofsims`` (a raw ToF-SIMS
    file), and how messages name it."""
    if "data" in d and "tofsims" in d:
        _fail(where, "tofsims", d["tofsims"], f"either data (a profile CSV) or tofsims (a raw ToF-SIMS file), "
              f"not both: data = {d['data']!r} is also given")
    if "data" not in d and "tofsims" not in d:
        if "max_data_points" in d:
            _fail(where, "max_data_points", d["max_data_points"], "only with data or tofsims (a measured profile)")
        return None, ""
    limit = d.get("max_data_points", MAX_DATA_POINTS)
    if isinstance(limit, bool) or not isinstance(limit, int) or limit < 1:
        _fail(where, "max_data_points", limit, "an integer >= 1")
    native, foreign = exp.native.name, [s.name for s in exp.foreign]
    if "tofsims" in d:
        if "bulk_from_nm" in d:
            _fail(where, "bulk_from_nm", d["bulk_from_nm"], "inside [experiment.tofsims] for a raw ToF-SIMS file")
        settings = settings_from_dict(d["tofsims"], f"{where}.tofsims", native, foreign)
        key, value = "tofsims.file", settings.file
        data = read_tofsims_csv(base / settings.file, settings, native, foreign, max_rows=limit,
                                max_rows_key=f"{where}.max_data_points")
    else:
        if not isinstance(d["data"], str):
            _fail(where, "data", d["data"], "a path to a CSV file of the measured profile")
        bulk = d.get("bulk_from_nm")
        if bulk is not None:
            bulk = _number(where, "bulk_from_nm", bulk, low=0.0)
        key, value = "data", d["data"]
        data = read_profile_csv(base / d["data"], native, foreign, bulk_from_nm=bulk, max_rows=limit,
                                max_rows_key=f"{where}.max_data_points")
    deepest = float(data.depth_m[-1])
    if deepest > exp.glass.thickness_m:
        _fail(where, key, value, f"a profile within the sample: its deepest point, "
              f"depth_nm = {deepest * 1e9!r}, lies below the back electrode at glass.thickness_m = "
              f"{exp.glass.thickness_m!r} m of the case")
    return data, repr(value)


def _parameter(path: str, d, experiments: list[FitExperiment]) -> ParameterSpec:
    where = f"fit.parameters.{path!r}"
    d = dict(_keys(where, d, PARAMETER_KEYS))
    for flag in ("log", "shared", "fixed"):
        if not isinstance(d.get(flag, False), bool):
            _fail(where, flag, d[flag], "true or false")
    lo = _number(where, "min", d["min"]) if "min" in d else -math.inf
    hi = _number(where, "max", d["max"]) if "max" in d else math.inf
    if not lo < hi:
        _fail(where, "max", hi, f"greater than min = {lo}")
    if d.get("log") and not lo > 0:
        _fail(where, "min", d.get("min"), "a number > 0 when log = true (a log-scale parameter is positive)")
    names = [e.name for e in experiments]
    chosen = d.get("experiments")
    if chosen is not None:
        if not (isinstance(chosen, list) and chosen and all(c in names for c in chosen)):
            _fail(where, "experiments", chosen, f"a non-empty list of experiment names from {names}")
        chosen = tuple(chosen)
    initial = d.get("initial")
    if isinstance(initial, dict):
        if d.get("shared") or not initial or any(k not in names for k in initial):
            _fail(where, "initial", initial, f"a table {{experiment = value}} with names from {names}, "
                  "for a parameter that is not shared")
        labels = [f"initial.{k}" for k in initial]
        values = list(initial.values())
    elif initial is not None:
        values = initial if isinstance(initial, list) else [initial]
        labels = ["initial"] if len(values) == 1 else [f"initial[{i}]" for i in range(len(values))]
    if initial is not None:
        for label, v in zip(labels, values):
            _number(where, label, v, low=lo, high=hi)
            if d.get("log") and v <= 0:
                _fail(where, label, v, "a number > 0 when log = true")
        if isinstance(initial, dict):
            initial = {k: float(v) for k, v in initial.items()}
        else:
            initial = tuple(float(v) for v in initial) if isinstance(initial, list) else float(initial)
    knots = d.get("knots")
    if knots is not None:
        if not (isinstance(knots, list) and knots and all(isinstance(k, int) and not isinstance(k, bool)
                                                          and k >= 0 for k in knots)
                and len(set(knots)) == len(knots)) or "[" in path:
            _fail(where, "knots", knots, "a list of distinct knot indices >= 0 of a table value "
                  "(the path without [k])")
        knots = tuple(knots)
    spec = ParameterSpec(path=path, initial=initial, min=lo, max=hi, log=bool(d.get("log", False)),
                         shared=bool(d.get("shared", False)), fixed=bool(d.get("fixed", False)),
                         experiments=chosen, knots=knots)
    if spec.is_measurement:
        if isinstance(initial, tuple) or knots is not None:
            _fail(where, "initial" if knots is None else "knots", initial if knots is None else list(knots),
                  "one number (a measurement value has no knots)")
        if initial is None and spec.shared:
            values = {repr(e.measurement_value(path)) for e in experiments if chosen is None or e.name in chosen}
            if len(values) > 1:
                _fail(where, "initial", None, f"required: the experiments disagree on the shared value "
                      f"({', '.join(sorted(values))})")
        return spec
    holders = [e for e in experiments if (chosen is None or e.name in chosen) and _has(e, path)]
    if not holders:
        first = next(e for e in experiments if chosen is None or e.name in chosen)
        read_value(first.case_dict, path, where)  # raises the precise message
        raise ConfigError(f"{where}: no experiment has this value")  # pragma: no cover
    if initial is None and spec.shared:
        values = {repr(read_value(e.case_dict, path, where)) for e in holders}
        if len(values) > 1:
            _fail(where, "initial", None, f"required: the cases disagree on the shared value ({', '.join(values)})")
    for e in holders:
        current = read_value(e.case_dict, path, where)
        if isinstance(current, list):
            if knots is not None and max(knots) >= len(current):
                _fail(where, "knots", list(knots), f"indices below {len(current)}, the knots of {path}")
            count = len(knots) if knots is not None else len(current)
            if isinstance(initial, tuple) and len(initial) != count:
                _fail(where, "initial", list(initial), f"{count} values, one per fitted knot of {path}")
        elif isinstance(initial, tuple) or knots is not None:
            _fail(where, "initial" if knots is None else "knots", list(initial if knots is None else knots),
                  f"one number: {path} is not a table")
    return spec


def _has(e: FitExperiment, path: str) -> bool:
    try:
        read_value(e.case_dict, split_path(path)[0], "fit")
        return True
    except ConfigError:
        return False


def fit_case_from_dict(d: dict, base: Path = Path("."), source: str = "<dict>") -> FitCase:
    try:
        return _fit_case(d, Path(base), source)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _fit_case(d: dict, base: Path, source: str) -> FitCase:
    _keys("fit file", d, TOP_KEYS)
    raw = d.get("experiment")
    if not isinstance(raw, list) or not raw:
        _fail("fit file", "experiment", raw, "one or more [[experiment]] tables")
    experiments = [_experiment(f"experiment[{i}]", e, base) for i, e in enumerate(raw)]
    names = [e.name for e in experiments]
    if len(set(names)) != len(names):
        _fail("fit file", "experiment names", names, "unique names")
    _check_sequence(experiments)
    fit = dict(_keys("fit", d.get("fit", {}), tuple(f.name for f in fields(FitSettings)) + ("parameters",)))
    params_raw = fit.pop("parameters", {})
    if not isinstance(params_raw, dict) or not params_raw:
        _fail("fit", "parameters", params_raw, "a [fit.parameters] table with at least one parameter")
    settings = _settings(fit)
    parameters = tuple(_parameter(p, v, experiments) for p, v in params_raw.items())
    if all(p.fixed for p in parameters):
        raise ConfigError("fit.parameters: every parameter is fixed: nothing to fit")
    case = FitCase(experiments=tuple(experiments), parameters=parameters, settings=settings,
                   name=_fit_name(d.get("name", "fit")), source=source)
    _check_applicable(case)
    return case


def _check_sequence(experiments: list[FitExperiment]) -> None:
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
            _fail(where, "initial_from", e.initial_from,
                  f"the name of an earlier [[experiment]] (one of {earlier})" if earlier else
                  "the name of an earlier [[experiment]], and this is the first one")
        src = next(x for x in experiments if x.name == e.initial_from).experiment
        new = e.experiment
        for key in ("thickness_m", "n_bg_m3"):
            a, b = getattr(src.glass, key), getattr(new.glass, key)
            if a != b:
                _fail(where, "initial_from", e.initial_from, f"an experiment on the same sample: its "
                      f"glass.{key} = {a!r}, this case's = {b!r}")
        if src.native.name != new.native.name:
            _fail(where, "initial_from", e.initial_from, f"an experiment with the same native species: its is "
                  f"{src.native.name!r}, this case's {new.native.name!r}")
        if src.mesh != new.mesh or src.geometry != new.geometry:
            _fail(where, "initial_from", e.initial_from, "an experiment with the same [mesh] and [geometry] "
                  "settings (its final state is handed over node by node)")
        names = [s.name for s in new.species]
        lost = [s.name for s in src.foreign if s.name not in names]
        if lost:
            _fail(where, "initial_from", e.initial_from, f"an experiment whose foreign species this case keeps: "
                  f"{lost} would be lost at the hand-over; add them as foreign [[species]]")


def _fit_name(name) -> str:
    if not isinstance(name, str) or not name:
        _fail("fit file", "name", name, "a non-empty string naming the fit")
    return name


def _settings(fit: dict) -> FitSettings:
    kwargs = {}
    for f in fields(FitSettings):
        if f.name not in fit:
            continue
        v = fit[f.name]
        if f.name in ("absolute_sigma", "presolve"):
            if not isinstance(v, bool):
                _fail("fit", f.name, v, "true or false")
        elif f.name == "smoothing":
            v = _number("fit", f.name, v, low=0.0)
        elif f.name == "refinement_factor":  # above 8 a 1D solve costs > 64x the default
            v = _number("fit", f.name, v, low=1.0, high=8.0)
        elif f.name in ("max_evaluations", "groups"):
            if isinstance(v, bool) or not isinstance(v, int) or v < (1 if f.name == "max_evaluations" else 0):
                _fail("fit", f.name, v, "an integer >= 1" if f.name == "max_evaluations" else "an integer >= 0")
        else:
            v = _number("fit", f.name, v, low=0.0, open_low=True, high=0.5 if f.name == "fd_step" else math.inf)
        kwargs[f.name] = v
    return FitSettings(**kwargs)


def _check_applicable(case: FitCase) -> None:
    """Every parameter, at its start value, must give a valid case of unchanged structure
    (so that one compiled Simulation per experiment serves the whole fit)."""
    from .problem import FitProblem  # the start point is the problem's business

    problem = FitProblem(case)
    for e in case.experiments:
        new = problem.experiment_at(e.name, problem.x0)
        check_same_structure(e.experiment, new)
    for p in problem.free:
        _check_bounds(problem, p)
    rows = sum(problem.residual_size(e.name) for e in case.experiments)
    if rows < len(problem.free):
        labels = ", ".join(p.label for p in problem.free)
        raise ConfigError(f"fit.parameters: {len(problem.free)} free parameters ({labels}) but only {rows} "
                          "compared values (data points in depth_range_nm times species, plus targets); "
                          "need at least as many values as parameters: fix parameters or widen depth_range_nm")


# Where a parameter has no bound, it is tried this far out: the optimiser may go there.
_FAR = 1e300


def _check_bounds(problem, p) -> None:
    """The fit may move ``p`` anywhere in [min, max]: the case must accept both ends (a
    value it refuses would abort the fit half-way, with nothing saved)."""
    spec = p.spec
    where = f"fit.parameters.{spec.path!r}"
    for key, bound, far in (("min", spec.min, -_FAR), ("max", spec.max, _FAR)):
        value = bound if math.isfinite(bound) else far
        if spec.log and value <= 0:
            continue  # log10 scale: the lower end is > 0 (checked), 0 itself is never reached
        given = f"{key} = {value!r}" if math.isfinite(bound) else f"{key} is not given, so {value!r} is reachable"
        if spec.is_measurement:
            if spec.path == "sims_resolution_nm" and value < 0:
                raise ConfigError(f"{where}: {given}, which is not allowed: sims_resolution_nm is a "
                                  "standard deviation, >= 0; give min >= 0")
            continue
        for name in p.targets:
            try:
                problem.experiment_at(name, problem.x0, {(p.path, p.index): value})
            except ConfigError as exc:
                raise ConfigError(f"{where}: {given}, where the case is invalid: {exc}; give bounds "
                                  "inside the allowed range") from None


def load_fit_case(path) -> FitCase:
    p = Path(path)
    try:
        d = tomllib.loads(p.read_bytes().decode("utf-8-sig"))  # a byte-order mark is allowed
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the fit file: {exc.strerror or exc}") from None
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        raise ConfigError(f"{p}: not a valid UTF-8 TOML file: {exc}") from None
    return fit_case_from_dict(d, p.parent, str(p))


__all__ = ["FitCase", "FitExperiment", "FitSettings", "load_fit_case", "fit_case_from_dict",
           "MEASUREMENT_PATHS"]
