"""The front and back boundaries of a case as validated data (docs/model.md section 4):
the ion beam, a potential or current front, a blocking anode (with its voltage history)
and the back electrode. SI units in the field names; no DOLFINx."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from .beam_history import charge_at, check_history, current_at, history_breaks
from .checks import fraction, is_real, positive, require


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
            ok = is_real(self.current_density_A_m2) and self.current_density_A_m2 >= 0
            require(ok and math.isfinite(self.current_density_A_m2), "front.current_density_A_m2",
                     self.current_density_A_m2, "must be a finite number >= 0 (or give a current history: "
                     "current_history_csv, or current_times_s with current_density_history_A_m2)")
            require(self.current_history_source is None, "front.current_history_source",
                     self.current_history_source, "only with a current history")
        else:
            require(self.current_density_A_m2 is None, "front.current_density_A_m2", self.current_density_A_m2,
                     "not with a current history (current_times_s, current_density_history_A_m2): give one of them")
            for key, value in zip(("current_times_s", "current_density_history_A_m2"), history):
                require(value is not None, f"front.{key}", value, "required with a current history")
            times, values = check_history(*history, "current_times_s", "current_density_history_A_m2")
            object.__setattr__(self, "current_times_s", times)
            object.__setattr__(self, "current_density_history_A_m2", values)
            require(self.current_history_source is None or isinstance(self.current_history_source, str),
                     "front.current_history_source", self.current_history_source, "a string")
        positive("front.E_kin_eV", self.E_kin_eV)
        positive("front.sigma_E_eV", self.sigma_E_eV)

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
        require(isinstance(arr, (list, tuple)) and len(arr) >= 1, f"front.{key}", arr,
                 "a non-empty array of finite numbers")
        object.__setattr__(front, key, tuple(arr))
        for i, v in enumerate(arr):
            require(is_real(v) and math.isfinite(v), f"front.{key}[{i}]", v, "must be a finite number")
    require(len(times) == len(values), f"front.{values_key}", list(values),
             f"one value per entry of front.{times_key} ({len(times)})")
    require(all(b > a for a, b in zip(times, times[1:])), f"front.{times_key}", list(times),
             "must be strictly increasing")
    if first_time_zero:
        require(times[0] == 0, f"front.{times_key}[0]", times[0], "must be 0 (the history starts at t = 0)")
    else:
        require(times[0] >= 0, f"front.{times_key}[0]", times[0], "must be >= 0")


class _VoltageHistory:
    """The front potential U(t) of a contact front (docs/model.md section 4.7): ``voltage``
    "constant" (``U_V`` [V]), "ramp" (from 0 at ``ramp_rate_V_s`` [V/s], signed, until
    ``U_V`` [V] is reached, then held), "steps" (``step_U_V[i]`` [V] from ``step_times_s[i]``
    [s] on; the first time is 0) or "table" (linear interpolation in (``table_times_s`` [s],
    ``table_U_V`` [V]), held at the end values outside the table)."""

    def _check_voltage(self) -> None:
        kind = self.voltage
        require(isinstance(kind, str) and kind in VOLTAGE_HISTORIES, "front.voltage", kind,
                 "one of " + ", ".join(f'"{k}"' for k in VOLTAGE_HISTORIES))
        needed = _VOLTAGE_KEYS[kind]
        for key in _OPTIONAL_VOLTAGE_KEYS:
            value = getattr(self, key)
            if key in needed:
                require(value is not None, f"front.{key}", value, f'required with front.voltage = "{kind}"')
            else:
                require(value is None, f"front.{key}", value,
                         f'not used with front.voltage = "{kind}" (keys of it: {", ".join(needed)})')
        if self.U_V is not None:
            require(is_real(self.U_V) and math.isfinite(self.U_V), "front.U_V", self.U_V, "must be a finite number")
        if kind == "ramp":
            r = self.ramp_rate_V_s
            require(is_real(r) and math.isfinite(r) and r != 0, "front.ramp_rate_V_s", r,
                     "must be a finite number != 0 with the sign of front.U_V")
            require(self.U_V != 0 and (r > 0) == (self.U_V > 0), "front.ramp_rate_V_s", r,
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
        require(self.surface_fraction is not None, "front.surface_fraction", None,
                 'required with front.type = "potential": a fraction in [0, 1]')
        fraction("front.surface_fraction", self.surface_fraction)


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
        ok = is_real(self.current_density_A_m2) and self.current_density_A_m2 >= 0
        require(ok and math.isfinite(self.current_density_A_m2), "front.current_density_A_m2",
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
        require(self.native in ("reversible", "discharge"), "back.native", self.native,
                 'one of "reversible", "discharge"')
        if self.native == "discharge":
            positive("back.discharge_rate_m_s", self.discharge_rate_m_s)
        else:
            require(self.discharge_rate_m_s is None, "back.discharge_rate_m_s", self.discharge_rate_m_s,
                     'only with back.native = "discharge"')
