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

The ``[[experiment]]`` tables are read by :mod:`cait_fem.fit.experiments` (names from there
are importable from here too), the ``[fit]`` table and the parameters here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package
    import tomli as tomllib

from cait_fem.case.structure import check_same_structure
from cait_fem.errors import ConfigError

from .experiments import EXPERIMENT_KEYS, MAX_DATA_POINTS, TARGETS, FitExperiment, check_sequence, experiment_from_table
from .parameters import MEASUREMENT_PATHS, ParameterSpec, read_value, split_path
from .validation import fail, known_keys, number

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
class FitCase:
    experiments: tuple[FitExperiment, ...]
    parameters: tuple[ParameterSpec, ...]
    settings: FitSettings = FitSettings()
    name: str = "fit"
    source: str = "<dict>"

    def experiment(self, name: str) -> FitExperiment:
        return next(e for e in self.experiments if e.name == name)


def _parameter(path: str, d, experiments: list[FitExperiment]) -> ParameterSpec:
    where = f"fit.parameters.{path!r}"
    d = dict(known_keys(where, d, PARAMETER_KEYS))
    for flag in ("log", "shared", "fixed"):
        if not isinstance(d.get(flag, False), bool):
            fail(where, flag, d[flag], "true or false")
    lo = number(where, "min", d["min"]) if "min" in d else -math.inf
    hi = number(where, "max", d["max"]) if "max" in d else math.inf
    if not lo < hi:
        fail(where, "max", hi, f"greater than min = {lo}")
    if d.get("log") and not lo > 0:
        fail(where, "min", d.get("min"), "a number > 0 when log = true (a log-scale parameter is positive)")
    names = [e.name for e in experiments]
    chosen = d.get("experiments")
    if chosen is not None:
        if not (isinstance(chosen, list) and chosen and all(c in names for c in chosen)):
            fail(where, "experiments", chosen, f"a non-empty list of experiment names from {names}")
        chosen = tuple(chosen)
    initial = d.get("initial")
    if isinstance(initial, dict):
        if d.get("shared") or not initial or any(k not in names for k in initial):
            fail(where, "initial", initial, f"a table {{experiment = value}} with names from {names}, "
                  "for a parameter that is not shared")
        labels = [f"initial.{k}" for k in initial]
        values = list(initial.values())
    elif initial is not None:
        values = initial if isinstance(initial, list) else [initial]
        labels = ["initial"] if len(values) == 1 else [f"initial[{i}]" for i in range(len(values))]
    if initial is not None:
        for label, v in zip(labels, values):
            number(where, label, v, low=lo, high=hi)
            if d.get("log") and v <= 0:
                fail(where, label, v, "a number > 0 when log = true")
        if isinstance(initial, dict):
            initial = {k: float(v) for k, v in initial.items()}
        else:
            initial = tuple(float(v) for v in initial) if isinstance(initial, list) else float(initial)
    knots = d.get("knots")
    if knots is not None:
        if not (isinstance(knots, list) and knots and all(isinstance(k, int) and not isinstance(k, bool)
                                                          and k >= 0 for k in knots)
                and len(set(knots)) == len(knots)) or "[" in path:
            fail(where, "knots", knots, "a list of distinct knot indices >= 0 of a table value "
                  "(the path without [k])")
        knots = tuple(knots)
    spec = ParameterSpec(path=path, initial=initial, min=lo, max=hi, log=bool(d.get("log", False)),
                         shared=bool(d.get("shared", False)), fixed=bool(d.get("fixed", False)),
                         experiments=chosen, knots=knots)
    if spec.is_measurement:
        if isinstance(initial, tuple) or knots is not None:
            fail(where, "initial" if knots is None else "knots", initial if knots is None else list(knots),
                  "one number (a measurement value has no knots)")
        if initial is None and spec.shared:
            values = {repr(e.measurement_value(path)) for e in experiments if chosen is None or e.name in chosen}
            if len(values) > 1:
                fail(where, "initial", None, f"required: the experiments disagree on the shared value "
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
            fail(where, "initial", None, f"required: the cases disagree on the shared value ({', '.join(values)})")
    for e in holders:
        current = read_value(e.case_dict, path, where)
        if isinstance(current, list):
            if knots is not None and max(knots) >= len(current):
                fail(where, "knots", list(knots), f"indices below {len(current)}, the knots of {path}")
            count = len(knots) if knots is not None else len(current)
            if isinstance(initial, tuple) and len(initial) != count:
                fail(where, "initial", list(initial), f"{count} values, one per fitted knot of {path}")
        elif isinstance(initial, tuple) or knots is not None:
            fail(where, "initial" if knots is None else "knots", list(initial if knots is None else knots),
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
    known_keys("fit file", d, TOP_KEYS)
    raw = d.get("experiment")
    if not isinstance(raw, list) or not raw:
        fail("fit file", "experiment", raw, "one or more [[experiment]] tables")
    experiments = [experiment_from_table(f"experiment[{i}]", e, base) for i, e in enumerate(raw)]
    names = [e.name for e in experiments]
    if len(set(names)) != len(names):
        fail("fit file", "experiment names", names, "unique names")
    check_sequence(experiments)
    fit = dict(known_keys("fit", d.get("fit", {}), tuple(f.name for f in fields(FitSettings)) + ("parameters",)))
    params_raw = fit.pop("parameters", {})
    if not isinstance(params_raw, dict) or not params_raw:
        fail("fit", "parameters", params_raw, "a [fit.parameters] table with at least one parameter")
    settings = _settings(fit)
    parameters = tuple(_parameter(p, v, experiments) for p, v in params_raw.items())
    if all(p.fixed for p in parameters):
        raise ConfigError("fit.parameters: every parameter is fixed: nothing to fit")
    case = FitCase(experiments=tuple(experiments), parameters=parameters, settings=settings,
                   name=_fit_name(d.get("name", "fit")), source=source)
    _check_applicable(case)
    return case


def _fit_name(name) -> str:
    if not isinstance(name, str) or not name:
        fail("fit file", "name", name, "a non-empty string naming the fit")
    return name


def _settings(fit: dict) -> FitSettings:
    kwargs = {}
    for f in fields(FitSettings):
        if f.name not in fit:
            continue
        v = fit[f.name]
        if f.name in ("absolute_sigma", "presolve"):
            if not isinstance(v, bool):
                fail("fit", f.name, v, "true or false")
        elif f.name == "smoothing":
            v = number("fit", f.name, v, low=0.0)
        elif f.name == "refinement_factor":  # above 8 a 1D solve costs > 64x the default
            v = number("fit", f.name, v, low=1.0, high=8.0)
        elif f.name in ("max_evaluations", "groups"):
            if isinstance(v, bool) or not isinstance(v, int) or v < (1 if f.name == "max_evaluations" else 0):
                fail("fit", f.name, v, "an integer >= 1" if f.name == "max_evaluations" else "an integer >= 0")
        else:
            v = number("fit", f.name, v, low=0.0, open_low=True, high=0.5 if f.name == "fd_step" else math.inf)
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
           "MEASUREMENT_PATHS", "TARGETS", "EXPERIMENT_KEYS", "MAX_DATA_POINTS"]
