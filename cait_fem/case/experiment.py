"""The experiment as data: glass, species, front and back boundaries, mesh and run settings.

Everything here is plain, validated data with SI units in the field names. Nothing here
imports DOLFINx. An :class:`Experiment` is what :func:`cait_fem.simulate` runs and what a
TOML case file (:mod:`cait_fem.case.case_file`) turns into.

Validation happens in ``__post_init__`` so that a bad value is reported, with its field
name, the value and what is allowed, before any mesh or form is built.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from cait_fem.errors import ConfigError
from cait_fem.physics.diffusion import DiffusionLaw, check_diffusivity_range

from .beam_history import charge_at, check_history, current_at, history_breaks
from .estimates import DEFAULT_MAX_CELLS, check_size
from .geometry import Geometry
from .resolution import DepthResolution, depth_resolution


def _require(condition: bool, field_name: str, value, allowed: str) -> None:
    if not condition:
        raise ConfigError(f"{field_name} = {value!r} is not allowed: {allowed}")


def _is_real(value) -> bool:
    # bool is an int subclass: true would silently mean 1 (1 A/m^2, 1 m, one step)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _is_count(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _positive(field_name: str, value) -> None:
    ok = _is_real(value)
    _require(ok and math.isfinite(value) and value > 0, field_name, value, "must be a finite number > 0")


def _fraction(field_name: str, value, *, open_low=False, open_high=False) -> None:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    lo_ok = ok and (value > 0 if open_low else value >= 0)
    hi_ok = ok and (value < 1 if open_high else value <= 1)
    interval = ("(" if open_low else "[") + "0, 1" + (")" if open_high else "]")
    _require(lo_ok and hi_ok, field_name, value, f"must lie in {interval}")


@dataclass(frozen=True)
class Glass:
    """The solid electrolyte sample (1D: a slab of thickness ``thickness_m``).

    n_bg_m3: density of the immobile anionic background = initial native cation density [m^-3].
    eps_r: relative permittivity [-]. temperature_K: sample temperature [K].
    thickness_m: distance from the front (beam) surface to the back electrode [m].
    """

    n_bg_m3: float
    eps_r: float
    temperature_K: float
    thickness_m: float
    name: str = "glass"

    @classmethod
    def preset(cls, name: str, **overrides) -> Glass:
        """A glass from :mod:`cait_fem.case.presets` (e.g. "Li3B7O12"); keyword arguments
        override preset values (typically temperature_K and thickness_m)."""
        from .presets import glass_preset

        values = {k: v for k, v in glass_preset(name).items() if k in _GLASS_FIELDS}
        values.update(overrides)
        values.setdefault("name", name)
        return cls(**values)

    def __post_init__(self):
        _positive("glass.n_bg_m3", self.n_bg_m3)
        _positive("glass.eps_r", self.eps_r)
        _positive("glass.temperature_K", self.temperature_K)
        _positive("glass.thickness_m", self.thickness_m)


_GLASS_FIELDS = ("n_bg_m3", "eps_r", "temperature_K", "thickness_m", "name")


@dataclass(frozen=True)
class Species:
    """A mobile cation. ``role`` is "native" (fills the glass at t = 0) or "foreign" (enters
    at the front). ``charge_number`` is z (default +1); ``diffusion`` a law of
    :mod:`cait_fem.physics.diffusion` giving D(theta) in m^2/s."""

    name: str
    role: str
    diffusion: DiffusionLaw
    charge_number: int = 1

    def __post_init__(self):
        _require(isinstance(self.name, str) and self.name.isidentifier(), "species.name", self.name,
                 "a non-empty identifier (letters, digits, underscore)")
        _require(self.role in ("native", "foreign"), f"species.{self.name}.role", self.role,
                 'one of "native", "foreign"')
        _require(isinstance(self.charge_number, int) and not isinstance(self.charge_number, bool)
                 and self.charge_number > 0, f"species.{self.name}.charge_number", self.charge_number,
                 "a positive integer (cations)")
        _require(isinstance(self.diffusion, DiffusionLaw), f"species.{self.name}.diffusion",
                 self.diffusion, "a cait_fem.physics.diffusion law")


@dataclass(frozen=True)
class Beam:
    """Alkali ion beam on the front surface (docs/model.md section 4.1): current density
    ``current_density_A_m2`` [A/m^2], kinetic energy mean ``E_kin_eV`` and spread
    ``sigma_E_eV`` [eV]. Ions land only if their kinetic energy exceeds e*phi_s.
    ``species``: the foreign species in the beam (default: the first foreign species).

    Instead of a constant current density, a measured history: ``current_times_s`` [s]
    (from 0, strictly increasing, reaching run.t_end_s) and ``current_density_history_A_m2``
    [A/m^2], linear between the samples (:mod:`cait_fem.case.beam_history`; a case file may
    read them from a CSV, ``current_history_csv``). ``current_history_source``: where they
    came from (informational)."""

    # defaults only so that current_density_A_m2 may be left out for a history while the
    # field order (current_density_A_m2, E_kin_eV, sigma_E_eV, species) of positional calls stays
    current_density_A_m2: float | None = None
    E_kin_eV: float | None = None
    sigma_E_eV: float | None = None
    species: str | None = None
    current_times_s: tuple[float, ...] | None = None
    current_density_history_A_m2: tuple[float, ...] | None = None
    current_history_source: str | None = None
    type: str = field(default="beam", init=False)

    def __post_init__(self):
        history = (self.current_times_s, self.current_density_history_A_m2)
        if history == (None, None):
            ok = _is_real(self.current_density_A_m2) and self.current_density_A_m2 >= 0
            _require(ok and math.isfinite(self.current_density_A_m2), "front.current_density_A_m2",
                     self.current_density_A_m2, "must be a finite number >= 0 (or give a current history: "
                     "current_history_csv, or current_times_s with current_density_history_A_m2)")
            _require(self.current_history_source is None, "front.current_history_source",
                     self.current_history_source, "only with a current history")
        else:
            _require(self.current_density_A_m2 is None, "front.current_density_A_m2", self.current_density_A_m2,
                     "not with a current history (current_times_s, current_density_history_A_m2): give one of them")
            for key, value in zip(("current_times_s", "current_density_history_A_m2"), history):
                _require(value is not None, f"front.{key}", value, "required with a current history")
            times, values = check_history(*history, "current_times_s", "current_density_history_A_m2")
            object.__setattr__(self, "current_times_s", times)
            object.__setattr__(self, "current_density_history_A_m2", values)
            _require(self.current_history_source is None or isinstance(self.current_history_source, str),
                     "front.current_history_source", self.current_history_source, "a string")
        _positive("front.E_kin_eV", self.E_kin_eV)
        _positive("front.sigma_E_eV", self.sigma_E_eV)

    @property
    def has_history(self) -> bool:
        """True for a measured current history, False for a constant current density."""
        return self.current_times_s is not None

    def current_density_at(self, t_s):
        """The beam current density j(t) [A/m^2] at ``t_s`` [s] (scalar or array)."""
        if not self.has_history:
            return self.current_density_A_m2 + 0.0 * t_s
        return current_at(t_s, self.current_times_s, self.current_density_history_A_m2)

    def charge_C_m2(self, t_s):
        """The charge the beam delivered by ``t_s`` [s], int_0^t j dt [C/m^2], exactly."""
        if not self.has_history:
            return self.current_density_A_m2 * t_s
        return charge_at(t_s, self.current_times_s, self.current_density_history_A_m2)

    def current_breaks_s(self) -> tuple[tuple[float, bool], ...]:
        """(time [s], restart) the time stepper lands on (:func:`~cait_fem.case.beam_history.history_breaks`)."""
        if not self.has_history:
            return ()
        return history_breaks(self.current_times_s, self.current_density_history_A_m2)


VOLTAGE_HISTORIES = ("constant", "ramp", "steps", "table")
# keys each voltage history needs (the others must be absent)
_VOLTAGE_KEYS = {"constant": ("U_V",), "ramp": ("U_V", "ramp_rate_V_s"),
                 "steps": ("step_times_s", "step_U_V"), "table": ("table_times_s", "table_U_V")}
_OPTIONAL_VOLTAGE_KEYS = ("U_V", "ramp_rate_V_s", "step_times_s", "step_U_V", "table_times_s", "table_U_V")


def _voltage_series(front, times_key: str, values_key: str, *, first_time_zero: bool) -> None:
    times, values = getattr(front, times_key), getattr(front, values_key)
    for key, arr in ((times_key, times), (values_key, values)):
        _require(isinstance(arr, (list, tuple)) and len(arr) >= 1, f"front.{key}", arr,
                 "a non-empty array of finite numbers")
        object.__setattr__(front, key, tuple(arr))
        for i, v in enumerate(arr):
            _require(_is_real(v) and math.isfinite(v), f"front.{key}[{i}]", v, "must be a finite number")
    _require(len(times) == len(values), f"front.{values_key}", list(values),
             f"one value per entry of front.{times_key} ({len(times)})")
    _require(all(b > a for a, b in zip(times, times[1:])), f"front.{times_key}", list(times),
             "must be strictly increasing")
    if first_time_zero:
        _require(times[0] == 0, f"front.{times_key}[0]", times[0], "must be 0 (the history starts at t = 0)")
    else:
        _require(times[0] >= 0, f"front.{times_key}[0]", times[0], "must be >= 0")


class _VoltageHistory:
    """The front potential U(t) of a contact front (docs/model.md section 4.7): ``voltage``
    "constant" (``U_V`` [V]), "ramp" (from 0 at ``ramp_rate_V_s`` [V/s], signed, until
    ``U_V`` [V] is reached, then held), "steps" (``step_U_V[i]`` [V] from ``step_times_s[i]``
    [s] on; the first time is 0) or "table" (linear interpolation in (``table_times_s`` [s],
    ``table_U_V`` [V]), held at the end values outside the table)."""

    def _check_voltage(self) -> None:
        kind = self.voltage
        _require(isinstance(kind, str) and kind in VOLTAGE_HISTORIES, "front.voltage", kind,
                 "one of " + ", ".join(f'"{k}"' for k in VOLTAGE_HISTORIES))
        needed = _VOLTAGE_KEYS[kind]
        for key in _OPTIONAL_VOLTAGE_KEYS:
            value = getattr(self, key)
            if key in needed:
                _require(value is not None, f"front.{key}", value, f'required with front.voltage = "{kind}"')
            else:
                _require(value is None, f"front.{key}", value,
                         f'not used with front.voltage = "{kind}" (keys of it: {", ".join(needed)})')
        if self.U_V is not None:
            _require(_is_real(self.U_V) and math.isfinite(self.U_V), "front.U_V", self.U_V, "must be a finite number")
        if kind == "ramp":
            r = self.ramp_rate_V_s
            _require(_is_real(r) and math.isfinite(r) and r != 0, "front.ramp_rate_V_s", r,
                     "must be a finite number != 0 with the sign of front.U_V")
            _require(self.U_V != 0 and (r > 0) == (self.U_V > 0), "front.ramp_rate_V_s", r,
                     f"must have the sign of front.U_V = {self.U_V!r} (a ramp from 0 towards it; != 0)")
        elif kind == "steps":
            _voltage_series(self, "step_times_s", "step_U_V", first_time_zero=True)
        elif kind == "table":
            _voltage_series(self, "table_times_s", "table_U_V", first_time_zero=False)

    def voltage_at(self, t_s: float, left: bool = False) -> float:
        """U(t) [V] at time ``t_s`` [s]; at a jump of "steps" the value after it, or with
        ``left`` the value before it (for a time step that ends on the jump; times within a
        relative 1e-9 of the jump count as on it, against the rounding of t)."""
        kind = self.voltage
        if kind == "constant":
            return float(self.U_V)
        if kind == "ramp":
            return float(self.U_V) * min(1.0, self.ramp_rate_V_s * t_s / self.U_V)
        if kind == "steps":
            times, values = self.step_times_s, self.step_U_V
            if left:
                i = sum(1 for t in times if t < t_s * (1.0 - 1e-9)) - 1
            else:
                i = sum(1 for t in times if t <= t_s * (1.0 + 1e-9)) - 1
            return float(values[max(i, 0)])
        return float(_interp(t_s, self.table_times_s, self.table_U_V))

    def voltage_breaks_s(self) -> tuple[tuple[float, bool], ...]:
        """Times [s] > 0 where U(t) has a kink or a jump, as (time, jump): the time stepper
        lands on them so that no step straddles one, and restarts after a jump."""
        kind = self.voltage
        if kind == "ramp":
            return ((self.U_V / self.ramp_rate_V_s, False),)
        if kind == "steps":
            return tuple((float(t), True) for t in self.step_times_s if t > 0)
        if kind == "table":
            return tuple((float(t), False) for t in self.table_times_s if t > 0)
        return ()


def _interp(t: float, times, values) -> float:
    if t <= times[0]:
        return values[0]
    for (t0, v0), (t1, v1) in zip(zip(times, values), zip(times[1:], values[1:])):
        if t <= t1:
            return v0 + (v1 - v0) * (t - t0) / (t1 - t0)
    return values[-1]


@dataclass(frozen=True)
class PotentialFront(_VoltageHistory):
    """Front held at potential U [V] with a fixed foreign-ion surface fraction
    ``surface_fraction`` = n_f / n_bg [-] of foreign ``species`` (default: the first): a
    contact that supplies that ion (an ion-conducting paste, a molten salt, a hydrogen
    plasma or corona for H+ in alkali-proton substitution). U is ``U_V`` [V] or a
    voltage history (``voltage``, see :class:`_VoltageHistory`; docs/model.md section 4.7)."""

    # defaults only so that U_V may be left out for a voltage history while the field
    # order (U_V, surface_fraction, species) stays that of positional calls
    U_V: float | None = None
    surface_fraction: float | None = None
    species: str | None = None
    voltage: str = "constant"
    ramp_rate_V_s: float | None = None
    step_times_s: tuple[float, ...] | None = None
    step_U_V: tuple[float, ...] | None = None
    table_times_s: tuple[float, ...] | None = None
    table_U_V: tuple[float, ...] | None = None
    type: str = field(default="potential", init=False)

    def __post_init__(self):
        self._check_voltage()
        _require(self.surface_fraction is not None, "front.surface_fraction", None,
                 'required with front.type = "potential": a fraction in [0, 1]')
        _fraction("front.surface_fraction", self.surface_fraction)


@dataclass(frozen=True)
class AnodeFront(_VoltageHistory):
    """Blocking anode on the front (thermal electro-poling, docs/model.md section 4.6): the
    front is held at U(t) [V] (``U_V`` or a voltage history, see :class:`_VoltageHistory`)
    and no ion crosses it (zero normal flux of every species); the back electrode is the
    cathode. A case with this front needs no foreign species."""

    U_V: float | None = None
    voltage: str = "constant"
    ramp_rate_V_s: float | None = None
    step_times_s: tuple[float, ...] | None = None
    step_U_V: tuple[float, ...] | None = None
    table_times_s: tuple[float, ...] | None = None
    table_U_V: tuple[float, ...] | None = None
    type: str = field(default="anode", init=False)
    species: None = field(default=None, init=False)

    def __post_init__(self):
        self._check_voltage()


@dataclass(frozen=True)
class CurrentFront:
    """Constant influx of foreign ``species`` (default: the first) carrying
    ``current_density_A_m2`` [A/m^2]."""

    current_density_A_m2: float
    species: str | None = None
    type: str = field(default="current", init=False)

    def __post_init__(self):
        ok = _is_real(self.current_density_A_m2) and self.current_density_A_m2 >= 0
        _require(ok and math.isfinite(self.current_density_A_m2), "front.current_density_A_m2",
                 self.current_density_A_m2, "must be a finite number >= 0")


Front = Beam | PotentialFront | CurrentFront | AnodeFront


@dataclass(frozen=True)
class BackElectrode:
    """Grounded backside electrode (phi = 0). ``native`` is "reversible" (n_native = n_bg,
    default) or "discharge" (flux J.n = k (n - n_bg) with ``discharge_rate_m_s`` = k [m/s])."""

    native: str = "reversible"
    discharge_rate_m_s: float | None = None
    type: str = field(default="electrode", init=False)

    def __post_init__(self):
        _require(self.native in ("reversible", "discharge"), "back.native", self.native,
                 'one of "reversible", "discharge"')
        if self.native == "discharge":
            _positive("back.discharge_rate_m_s", self.discharge_rate_m_s)
        else:
            _require(self.discharge_rate_m_s is None, "back.discharge_rate_m_s", self.discharge_rate_m_s,
                     'only with back.native = "discharge"')


@dataclass(frozen=True)
class MeshSettings:
    """The depth mesh and its accuracy (docs/numerics.md section 4).

    By default the spacing follows the case (:mod:`cait_fem.case.resolution`): graded from
    ``surface_spacing_m`` at the surface (resolving the Debye layer), then
    ``cells_per_front_width`` cells per estimated width of the front (a few field lengths
    (k_B T / e) / E; it grows with depth), at most ``max_front_spacing_m``, over the depth the front can reach
    by the end of the run; then geometric growth by ``growth_ratio`` up to
    ``bulk_spacing_m``, constant to the back electrode. ``front_spacing_m`` (uniform
    spacing) and ``fine_depth_m`` [m] replace the rule's values when given.

    ``spatial_tolerance`` [theta]: the largest acceptable estimated spatial error of the
    profiles (RMS over the profile's depth range, docs/numerics.md section 4); the run
    warns when its estimate exceeds it, and when the pointwise estimate exceeds 15 times
    it (the default 5e-4 leaves room for the time error within the standard of RMS 1e-3,
    max 1e-2). ``estimate_spatial_error``: compute that estimate (a second solve on every other
    node, about half the cost of the run). ``max_refinements``: when the estimate exceeds
    the tolerance, :func:`cait_fem.simulate` refines the depth mesh by the factor the
    estimate asks for (second order) and runs again, at most this many times (0: only
    warn).

    ``max_cells``: the largest mesh (cells of the whole 1D/2D/3D mesh, as estimated by
    :mod:`cait_fem.case.estimates` before meshing) an experiment may ask for; a guard
    against a spacing that would need more memory than the machine has, not a setting
    of the mesh itself."""

    front_spacing_m: float | None = None
    surface_spacing_m: float = 0.01e-9
    fine_depth_m: float | None = None
    growth_ratio: float = 1.08
    bulk_spacing_m: float = 20e-6
    cells_per_front_width: float = 12.0
    max_front_spacing_m: float = 0.3e-9
    spatial_tolerance: float = 5e-4
    estimate_spatial_error: bool = True
    max_refinements: int = 2
    max_cells: int = DEFAULT_MAX_CELLS

    def __post_init__(self):
        if self.front_spacing_m is not None:
            _positive("mesh.front_spacing_m", self.front_spacing_m)
        _positive("mesh.surface_spacing_m", self.surface_spacing_m)
        if self.fine_depth_m is not None:
            ok = _is_real(self.fine_depth_m) and self.fine_depth_m >= 0
            _require(ok and math.isfinite(self.fine_depth_m), "mesh.fine_depth_m", self.fine_depth_m,
                     "must be a finite number >= 0")
        ok = _is_real(self.growth_ratio) and math.isfinite(self.growth_ratio)
        _require(ok and 1.0 < self.growth_ratio <= 2.0, "mesh.growth_ratio", self.growth_ratio,
                 "must lie in (1, 2]")
        _positive("mesh.bulk_spacing_m", self.bulk_spacing_m)
        if self.front_spacing_m is not None:
            _require(self.bulk_spacing_m >= self.front_spacing_m, "mesh.bulk_spacing_m", self.bulk_spacing_m,
                     f"must be >= mesh.front_spacing_m = {self.front_spacing_m!r}")
        ok = _is_real(self.cells_per_front_width) and math.isfinite(self.cells_per_front_width)
        _require(ok and 0.1 <= self.cells_per_front_width <= 1000, "mesh.cells_per_front_width",
                 self.cells_per_front_width, "must lie in [0.1, 1000]")
        _positive("mesh.max_front_spacing_m", self.max_front_spacing_m)
        _require(self.bulk_spacing_m >= self.max_front_spacing_m, "mesh.bulk_spacing_m", self.bulk_spacing_m,
                 f"must be >= mesh.max_front_spacing_m = {self.max_front_spacing_m!r}")
        _positive("mesh.spatial_tolerance", self.spatial_tolerance)
        _require(isinstance(self.estimate_spatial_error, bool), "mesh.estimate_spatial_error",
                 self.estimate_spatial_error, "true or false")
        _require(_is_count(self.max_refinements) and 0 <= self.max_refinements <= 5, "mesh.max_refinements",
                 self.max_refinements, "an integer from 0 to 5")
        _require(isinstance(self.max_cells, int) and not isinstance(self.max_cells, bool) and self.max_cells > 0,
                 "mesh.max_cells", self.max_cells, "a positive integer")


#: MeshSettings fields that are not part of a case's structure (what compiled forms and
#: the mesh fix): guards and accuracy checks
MESH_CHECK_FIELDS = ("max_cells", "spatial_tolerance", "estimate_spatial_error", "max_refinements")


#: the time integration schemes, "bdfK" of order K
SCHEMES = ("bdf1", "bdf2", "bdf3")


@dataclass(frozen=True)
class RunSettings:
    """Time integration. ``t_end_s`` [s]; profiles are stored at ``output_times_s`` [s]
    (each in (0, t_end_s]; t_end_s is always stored). ``scheme`` "bdf1", "bdf2" or "bdf3"
    (variable-step BDF of that order, docs/numerics.md section 6);
    the local error estimate is kept below ``time_tolerance`` (absolute, in theta units);
    the first step is ``dt_initial_s`` [s]; steps never exceed ``dt_max_s`` [s]."""

    t_end_s: float
    output_times_s: tuple[float, ...] = ()
    scheme: str = "bdf3"
    time_tolerance: float = 2e-4
    dt_initial_s: float = 1e-9
    dt_max_s: float | None = None
    max_steps: int = 200_000
    max_retries: int = 12

    @property
    def order(self) -> int:
        """The BDF order of ``scheme``."""
        return int(self.scheme[-1])

    def __post_init__(self):
        _positive("run.t_end_s", self.t_end_s)
        times = tuple(self.output_times_s)
        object.__setattr__(self, "output_times_s", times)
        for i, t in enumerate(times):
            ok = _is_real(t) and math.isfinite(t)
            _require(ok and 0 < t <= self.t_end_s, f"run.output_times_s[{i}]", t,
                     f"must lie in (0, run.t_end_s = {self.t_end_s!r}]")
        _require(list(times) == sorted(set(times)), "run.output_times_s", list(times),
                 "must be strictly increasing")
        _require(self.scheme in SCHEMES, "run.scheme", self.scheme, 'one of "bdf1", "bdf2", "bdf3"')
        _positive("run.time_tolerance", self.time_tolerance)
        _positive("run.dt_initial_s", self.dt_initial_s)
        if self.dt_max_s is not None:
            _positive("run.dt_max_s", self.dt_max_s)
        _require(_is_count(self.max_steps) and self.max_steps > 0, "run.max_steps", self.max_steps,
                 "a positive integer")
        _require(_is_count(self.max_retries) and self.max_retries >= 0, "run.max_retries",
                 self.max_retries, "an integer >= 0")

    @property
    def all_output_times_s(self) -> tuple[float, ...]:
        times = list(self.output_times_s)
        if not times or times[-1] != self.t_end_s:
            times.append(self.t_end_s)
        return tuple(times)


LINEAR_SOLVERS = ("auto", "petsc", "mumps", "superlu_dist", "iterative")
PRECONDITIONERS = ("ilu", "asm", "cpr")


@dataclass(frozen=True)
class SolverSettings:
    """Newton (PETSc SNES) and linear solver. Newton stops when the estimated remaining
    error of every concentration (theta units) is below ``newton_atol`` and that of the
    potential is below ``potential_atol`` (units of k_B T / e); see cait_fem.solver.newton.
    ``linear_solver`` "auto" picks PETSc's LU for a serial 1D run and MUMPS otherwise.
    ``jacobian_lag``: the exact Jacobian is assembled and factorised every ``jacobian_lag``
    Newton iterations of a step (1: every iteration, quadratic convergence). Within one
    time step it changes little, so a lag of 3 gives the same solution to the Newton
    tolerance at a lower cost (docs/numerics.md section 5).

    ``linear_solver = "iterative"``: Newton-Krylov for 2D/3D runs beyond direct-solver
    reach (a 3D mesh of 1.5e5 unknowns already needs 2 GB and 40-50 s per MUMPS
    factorisation; docs/numerics.md section 9, "Linear solvers at scale"): GMRES (left
    preconditioned, restart 100) stopped at ``krylov_rtol`` (relative decrease of the
    preconditioned residual), failed after ``krylov_max_iterations``; a failed linear solve
    is a failed Newton solve, so the stepper shrinks the step. ``preconditioner``:

    * "cpr" (recommended for large meshes, serial or MPI): two-stage constrained-pressure-
      residual preconditioner (:mod:`cait_fem.solver.cpr`): a multigrid solve of the decoupled
      potential equation (charge conservation) -- column multigrid on the layered meshes of
      :mod:`cait_fem.mesh.gmsh_sample`, GAMG on others -- then point-block ILU(``ilu_levels``) of the
      whole system per rank; ``ilu_levels = 0`` is enough there. A few Krylov iterations
      per Newton iteration, independent of the rank count on layered meshes.
    * "ilu" (default): point-block ILU(``ilu_levels``) of the whole system, per MPI rank
      (block Jacobi); "asm" the same on subdomains overlapping by one cell layer. Robust in
      serial, but the iterations grow with the mesh, and in parallel both need many
      iterations or break down (no global coupling of the potential)."""

    newton_atol: float = 1e-7
    potential_atol: float = 1e-5
    max_newton_iterations: int = 12
    linear_solver: str = "auto"
    jacobian_lag: int = 2
    preconditioner: str = "ilu"
    ilu_levels: int = 1
    krylov_rtol: float = 1e-8
    krylov_max_iterations: int = 1000

    def __post_init__(self):
        _positive("solver.newton_atol", self.newton_atol)
        _positive("solver.potential_atol", self.potential_atol)
        _require(_is_count(self.max_newton_iterations) and self.max_newton_iterations > 0,
                 "solver.max_newton_iterations", self.max_newton_iterations, "a positive integer")
        _require(self.linear_solver in LINEAR_SOLVERS, "solver.linear_solver", self.linear_solver,
                 "one of " + ", ".join(f'"{name}"' for name in LINEAR_SOLVERS))
        _require(isinstance(self.jacobian_lag, int) and not isinstance(self.jacobian_lag, bool)
                 and 1 <= self.jacobian_lag <= 10, "solver.jacobian_lag", self.jacobian_lag,
                 "an integer from 1 (exact Newton) to 10")
        _require(self.preconditioner in PRECONDITIONERS, "solver.preconditioner", self.preconditioner,
                 "one of " + ", ".join(f'"{name}"' for name in PRECONDITIONERS)
                 + ' (used with linear_solver = "iterative")')
        _require(isinstance(self.ilu_levels, int) and not isinstance(self.ilu_levels, bool)
                 and 0 <= self.ilu_levels <= 4, "solver.ilu_levels", self.ilu_levels, "an integer from 0 to 4")
        _fraction("solver.krylov_rtol", self.krylov_rtol, open_low=True, open_high=True)
        _require(isinstance(self.krylov_max_iterations, int) and not isinstance(self.krylov_max_iterations, bool)
                 and self.krylov_max_iterations > 0, "solver.krylov_max_iterations",
                 self.krylov_max_iterations, "a positive integer")


@dataclass(frozen=True)
class Physics:
    """The physics of a case, without run, solver, mesh or geometry settings: what the weak
    form (:class:`cait_fem.fem.forms.NPPForms`) needs. ``species`` is stored native first,
    then the foreign species in the order given; ``flux`` as in :class:`Experiment`."""

    glass: Glass
    species: tuple[Species, ...]
    front: Front
    back: BackElectrode = BackElectrode()
    flux: str = "ideal"

    def __post_init__(self):
        species = tuple(self.species)
        object.__setattr__(self, "species", species)
        names = [s.name for s in species]
        dupes = sorted({n for n in names if names.count(n) > 1})
        _require(not dupes, "species.name", dupes, "species names must be unique")
        natives = [s.name for s in species if s.role == "native"]
        _require(len(natives) == 1, "species.role", natives, 'exactly one species with role = "native"')
        foreign = [s.name for s in species if s.role == "foreign"]
        # an anode lets no ion in: a poling case may have the native ions only
        if not isinstance(self.front, AnodeFront):
            _require(len(foreign) >= 1, "species.role", foreign, 'at least one species with role = "foreign" '
                     '(none only with front.type = "anode")')
        # Canonical order, relied on by the forms and results: native first, then the
        # foreign species as given (the first one enters at the front).
        native = next(s for s in species if s.role == "native")
        object.__setattr__(self, "species", (native,) + tuple(s for s in species if s.role == "foreign"))
        _require(isinstance(self.glass, Glass), "glass", self.glass, "a cait_fem Glass")
        _require(isinstance(self.front, (Beam, PotentialFront, CurrentFront, AnodeFront)), "front", self.front,
                 "a Beam, PotentialFront, CurrentFront or AnodeFront")
        _require(isinstance(self.back, BackElectrode), "back", self.back, "a cait_fem BackElectrode")
        _require(self.flux in ("ideal", "thermodynamic"), "flux", self.flux,
                 'one of "ideal", "thermodynamic"')
        if self.flux == "thermodynamic":
            for s in species:
                _require(getattr(s.diffusion, "filling", "zero-temperature") == "zero-temperature",
                         "flux", self.flux, f"only with zero-temperature SED filling (species.{s.name} "
                         "uses fermi-dirac, whose tabulated Fermi level has no usable derivative)")
        for s in species:
            for other in s.diffusion.fraction_names:
                _require(other in names, f"species.{s.name}.diffusion.fractions", list(s.diffusion.fraction_names),
                         f"names of species of this case: {names}")
        if self.front.species is not None:
            _require(self.front.species in foreign, "front.species", self.front.species,
                     f"the name of a foreign species: one of {foreign}")
        # D(T) of every law finite, representable and within range of the native D_ref
        # (the time scale): e.g. Arrhenius E_a_eV = 100 underflows to D = 0 at 300 K
        check_diffusivity_range({s.name: s.diffusion for s in species}, natives[0], self.glass.temperature_K)

    @property
    def native(self) -> Species:
        return self.species[0]

    @property
    def foreign(self) -> tuple[Species, ...]:
        return self.species[1:]

    @property
    def front_species_index(self) -> int:
        """Index in ``species`` of the foreign species that enters at the front
        (``front.species``, default the first foreign species)."""
        names = [s.name for s in self.species]
        if isinstance(self.front, AnodeFront):
            return None  # nothing enters
        return names.index(self.front.species) if self.front.species is not None else 1

    @property
    def beam_species(self) -> Species:
        """The foreign species that enters at the front."""
        return self.species[self.front_species_index]


@dataclass(frozen=True)
class Experiment:
    """A complete CAIT run: what :func:`cait_fem.simulate` takes. ``species`` is stored
    native first, then the foreign species in the order given."""

    glass: Glass
    species: tuple[Species, ...]
    front: Front
    run: RunSettings
    back: BackElectrode = BackElectrode()
    mesh: MeshSettings = MeshSettings()
    solver: SolverSettings = SolverSettings()
    name: str = "cait"
    #: the sample's shape, beam spot and back electrode (default: a 1D slab)
    geometry: Geometry = Geometry()
    #: "ideal": J_i = -D_i (grad n_i + z_i n_i grad psi) (docs/model.md section 2, the paper's
    #: form); "thermodynamic": J_i = -(D_i n_i / k_B T) grad(mu_i + z_i e phi), with mu_i
    #: the site-energy-distribution Fermi level for an SED law (ideal mu for the others).
    flux: str = "ideal"

    def __post_init__(self):
        # The physics checks (species, front, flux) and the canonical species order are
        # Physics's; building it here validates them.
        physics = Physics(self.glass, tuple(self.species), self.front, self.back, self.flux)
        object.__setattr__(self, "species", physics.species)
        object.__setattr__(self, "_physics", physics)  # validated once; not a field
        _require(isinstance(self.geometry, Geometry), "geometry", self.geometry, "a cait_fem.case.geometry.Geometry")
        if isinstance(self.front, Beam) and self.front.has_history:
            end = self.front.current_times_s[-1]
            _require(end >= self.run.t_end_s, "front.current_times_s", f"[..., {end!r}]",
                     f"the beam history must reach run.t_end_s = {self.run.t_end_s!r} s (its last time is {end!r} s)")
        if self.mesh.front_spacing_m is not None:
            _require(self.mesh.front_spacing_m < self.glass.thickness_m, "mesh.front_spacing_m",
                     self.mesh.front_spacing_m, f"must be < glass.thickness_m = {self.glass.thickness_m!r}")
        # resolved once: the mesh a Simulation builds for this case (pure, microseconds)
        object.__setattr__(self, "_depth_resolution", depth_resolution(self))
        # Before any mesh or step: a mesh beyond mesh.max_cells, or a run that cannot
        # finish in run.max_steps, is refused here, in microseconds.
        check_size(self)

    @property
    def physics(self) -> Physics:
        """The physics part of this experiment (no run, solver, mesh or geometry settings)."""
        return self._physics

    @property
    def depth_resolution(self) -> DepthResolution:
        """The depth rule this case's mesh is built with (:mod:`cait_fem.case.resolution`)."""
        return self._depth_resolution

    @property
    def native(self) -> Species:
        return self.physics.native

    @property
    def foreign(self) -> tuple[Species, ...]:
        return self.physics.foreign

    @property
    def front_species_index(self) -> int:
        """Index in ``species`` of the foreign species that enters at the front."""
        return self.physics.front_species_index

    @property
    def beam_species(self) -> Species:
        """The foreign species that enters at the front."""
        return self.physics.beam_species
