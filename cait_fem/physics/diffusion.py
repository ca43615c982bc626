"""Diffusion-coefficient laws D(theta) [m^2/s], theta = n / n_bg (docs/model.md section 3).

Each law is a frozen dataclass whose fields are the TOML keys (with units). The solver uses
a law through ``nondim_parameters`` (dimensionless numbers, one UFL Constant each, with a
key set fixed per instance) and ``relative`` (D(theta) / D_ref written with ``ops`` so the
same definition is a UFL expression or a numpy value). ``diffusivity_m2_s`` and
``dD_dtheta_m2_s`` are exact numpy evaluations for analysis and tests.

The floor D_min (default 1e-12 of the law's reference D) is *added*, D + D_min, instead of
max(D, D_min): the sum is smooth, so the exact Newton Jacobian stays continuous where D
reaches the floor, and at 1e-12 of the bulk value the shift is negligible.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import sys
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np
from scipy import special

from cait_fem.errors import ConfigError

from . import sed
from .ops import NUMPY, balanced_sum
from .sed import kT_eV

__all__ = ["DiffusionLaw", "ConstantD", "ArrheniusD", "GaussianSED", "TabulatedD", "LogLinearD",
           "diffusion_law_from_dict", "kT_eV", "FLOOR_FRACTION", "IMMOBILE_EDGE_WIDTH",
           "check_diffusivity_range"]

FLOOR_FRACTION = 1e-12
#: smallest D [m^2/s] of a law at the case temperature: its floor, FLOOR_FRACTION * D,
#: must still be a normal double (2.2e-308), or the scaled floor and log D are lost
D_SMALLEST_M2_S = sys.float_info.min / FLOOR_FRACTION
#: every species' D at the case temperature lies within this factor of the native
#: species' D_ref (either way): the time scale is L^2 / D_ref (fem/scales.py), and the
#: forms resolve D over the 12 decades down to the floor (FLOOR_FRACTION); a species
#: 1e31 times faster (D_m2_s = 1e10) makes every step underflow against t.
RELATIVE_D_RANGE = 1.0 / FLOOR_FRACTION
# SED occupancy clamp: keeps Phi^-1 finite when Newton steps theta below 0 or above 1/p_b
_P_MIN, _P_MAX = 1e-20, 1.0 - 1e-12
_FD_KNOTS = 120
#: default width w [-] (in native fraction) of the mobile edge of an SED with an immobile
#: fraction (``mobile_edge_width``): D reaches 99 % of the SED value 2.1 w above theta_imm.
#: The plateau comes out flat to about w / 10 (docs/model.md section 3.10); every node the
#: front passes stops within a time ~ w / (its drain rate), which the time steps resolve:
#: w = 0.002 took 1.9x the steps of 0.005 for a flat plateau only 3e-4 flatter
#: (docs/numerics.md section 3).
IMMOBILE_EDGE_WIDTH = 5e-3


def _require(condition: bool, name: str, value, allowed: str) -> None:
    if not condition:
        raise ConfigError(f"{name} = {value!r} is not allowed: {allowed}")


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _table_parameters(theta_knots, log_D_knots) -> dict[str, float]:
    """Parameters of the piecewise-linear log D table read by :func:`_table_log_relative`."""
    params = {"log_D_0": float(log_D_knots[0])}
    for k in range(len(theta_knots) - 1):
        width = float(theta_knots[k + 1] - theta_knots[k])
        params[f"theta_{k}"] = float(theta_knots[k])
        params[f"width_{k}"] = width
        params[f"slope_{k}"] = float(log_D_knots[k + 1] - log_D_knots[k]) / width
    return params


def _table_log_relative(theta, params, n_segments: int, ops):
    """log D = log_D_0 + sum_k slope_k min(max(theta - theta_k, 0), width_k): linear between
    knots and constant outside, written with min/max only (no search over knots); summed by
    pairs to keep the UFL expression shallow."""
    ramps = (params[f"slope_{k}"] * ops.min(ops.max(theta - params[f"theta_{k}"], 0.0), params[f"width_{k}"])
             for k in range(n_segments))
    return params["log_D_0"] + balanced_sum(ramps)


@dataclass(frozen=True)
class DiffusionLaw(ABC):
    """Interface of all laws. ``where`` (keyword only, not compared) is the config path
    used in error messages, e.g. "species.Li.diffusion"."""

    model: ClassVar[str]
    where: str = field(default="diffusion", kw_only=True, compare=False, repr=False)

    def __post_init__(self):
        self._check("D_min_m2_s", self.D_min_m2_s is None or self._is_positive("D_min_m2_s"),
                    "must be a finite number > 0 (or absent: 1e-12 of the reference D)")
        self._validate()

    @abstractmethod
    def _validate(self) -> None: ...

    def _check(self, key: str, ok: bool, allowed: str) -> None:
        _require(ok, f"{self.where}.{key}", getattr(self, key), allowed)

    def _is_positive(self, key: str) -> bool:
        return _is_number(getattr(self, key)) and getattr(self, key) > 0

    def _positive(self, key: str) -> None:
        self._check(key, self._is_positive(key), "must be a finite number > 0")

    @abstractmethod
    def reference_m2_s(self, temperature_K: float) -> float:
        """Characteristic D [m^2/s] at T: the value the floor and the scaling refer to."""

    def floor_m2_s(self, temperature_K: float) -> float:
        """D_min [m^2/s]: ``D_min_m2_s`` if given, else 1e-12 * reference_m2_s(T)."""
        if self.D_min_m2_s is not None:
            return float(self.D_min_m2_s)
        return FLOOR_FRACTION * self.reference_m2_s(temperature_K)

    @abstractmethod
    def nondim_parameters(self, temperature_K: float, D_ref_m2_s: float) -> dict[str, float]:
        """The dimensionless numbers that fix D(theta)/D_ref at T (keys fixed per instance)."""

    @abstractmethod
    def relative(self, theta, params: Mapping[str, Any], ops=NUMPY):
        """D(theta)/D_ref (floor included) from ``params``, finite and > 0 for any real theta."""

    @abstractmethod
    def _core_m2_s(self, theta: np.ndarray, temperature_K: float) -> np.ndarray:
        """D(theta) [m^2/s] without the floor."""

    #: names of the species whose fractions D depends on; () for a law of the species'
    #: own fraction only (all laws but :class:`LogLinearD`)
    fraction_names: ClassVar[tuple[str, ...]] = ()

    def relative_of(self, own, fractions: Mapping[str, Any], params: Mapping[str, Any], ops=NUMPY):
        """D/D_ref as the forms evaluate it: ``own`` is the species' own fraction, ``fractions``
        every species' fraction by name (the same expressions). A law of its own fraction
        only ignores ``fractions``; a law of several fractions overrides this."""
        return self.relative(own, params, ops)

    def relative_between(self, own, ends, params: Mapping[str, Any], ops=NUMPY):
        """D/D_ref of the flux between two nodes, as the forms evaluate it for a law of the
        species' own fraction: ``own`` its value at the midpoint, ``ends`` its two nodal
        values. The law at the midpoint, unless a law overrides this (an immobile
        fraction, :meth:`GaussianSED.relative_between`)."""
        return self.relative(own, params, ops)

    def thermodynamic_factor(self, theta, params: Mapping[str, Any], ops=NUMPY):
        """Gamma = (theta / k_B T) d mu / d theta, the factor of grad theta in the
        thermodynamically consistent flux. 1 for an ideal species (mu = k_B T ln theta);
        laws with a site energy distribution override it."""
        return 1.0 + 0.0 * theta

    def diffusivity_m2_s(self, theta, temperature_K: float) -> np.ndarray:
        """D(theta) [m^2/s], floor included, evaluated exactly in numpy."""
        theta = np.asarray(theta, dtype=float)
        return self._core_m2_s(theta, temperature_K) + self.floor_m2_s(temperature_K)

    @abstractmethod
    def dD_dtheta_m2_s(self, theta, temperature_K: float) -> np.ndarray:
        """Exact dD/dtheta [m^2/s] (the additive floor does not contribute)."""

    def to_dict(self) -> dict:
        """The TOML table of this law: {"model": ..., key: value, ...} (absent keys omitted)."""
        out: dict[str, Any] = {"model": self.model}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            if f.name != "where" and value is not None:
                out[f.name] = list(value) if isinstance(value, tuple) else value
        return out

    def replace(self, **changes) -> DiffusionLaw:
        """A copy with ``changes`` applied and validated again."""
        return dataclasses.replace(self, **changes)


class _CompositionIndependent(DiffusionLaw):
    """A law whose D depends on temperature only; D(T) is ``reference_m2_s``."""

    def nondim_parameters(self, temperature_K, D_ref_m2_s):
        return {"log_D": math.log(self.reference_m2_s(temperature_K) / D_ref_m2_s),
                "D_floor": self.floor_m2_s(temperature_K) / D_ref_m2_s}

    def relative(self, theta, params, ops=NUMPY):
        # 0 * theta only broadcasts the constant to theta's shape
        return ops.exp(params["log_D"] + 0.0 * theta) + params["D_floor"]

    def _core_m2_s(self, theta, temperature_K):
        return np.full_like(theta, self.reference_m2_s(temperature_K))

    def dD_dtheta_m2_s(self, theta, temperature_K):
        return np.zeros_like(np.asarray(theta, dtype=float))


@dataclass(frozen=True)
class ConstantD(_CompositionIndependent):
    """D [m^2/s] independent of composition and temperature."""

    model: ClassVar[str] = "constant"
    reference_keys: ClassVar[tuple[str, ...]] = ("D_m2_s",)
    D_m2_s: float
    D_min_m2_s: float | None = None

    def _validate(self):
        self._positive("D_m2_s")

    def reference_m2_s(self, temperature_K):
        return float(self.D_m2_s)


@dataclass(frozen=True)
class ArrheniusD(_CompositionIndependent):
    """D = D0 exp(-E_a / k_B T), independent of composition. D0 [m^2/s], E_a [eV]."""

    model: ClassVar[str] = "arrhenius"
    reference_keys: ClassVar[tuple[str, ...]] = ("D0_m2_s", "E_a_eV")
    D0_m2_s: float
    E_a_eV: float
    D_min_m2_s: float | None = None

    def _validate(self):
        self._positive("D0_m2_s")
        self._check("E_a_eV", _is_number(self.E_a_eV) and self.E_a_eV >= 0, "must be a finite number >= 0")

    def reference_m2_s(self, temperature_K):
        return float(self.D0_m2_s * np.exp(-self.E_a_eV / kT_eV(temperature_K)))


@dataclass(frozen=True)
class GaussianSED(DiffusionLaw):
    """Native-ion D from a Gaussian site energy distribution (see :mod:`cait_fem.physics.sed`):
    D(theta) = D_bulk exp((E_F(p) - E_F(p_b)) / k_B T), p = theta (1 - v), p_b = 1 - v.

    Give either ``D_bulk_m2_s`` or both ``D0_m2_s`` and ``E_DC_eV`` (then D_bulk = D0
    exp(-E_DC/kT)), or ``D_ref_m2_s``, ``T_ref_K`` and ``E_DC_eV``: D_bulk = D_ref
    exp(-(E_DC/k_B) (1/T - 1/T_ref)), the same Arrhenius law with D_bulk at T_ref [K] as
    its prefactor. For a fit over a temperature series this is the better pair: D0 and
    E_DC are correlated to 1 - 1e-4 over a few tens of kelvin (the data fix D_bulk in
    the middle of the range), D_ref near the middle and E_DC hardly at all.
    The occupancy is clamped to [1e-20, 1 - 1e-12], where D is constant.
    ``filling = "fermi-dirac"`` is exact in ``diffusivity_m2_s``; for the forms
    (``relative``) it is a 120-knot table, linear in log D, with knots equally spaced in
    E_F from where D is 1e-3 of the floor to p = p_b + 0.9 v, constant beyond.

    ``mobile_fraction`` f_m (optional, in (0, 1]): only the top f_m of the populated SED
    is mobile; the ions in its deepest sites, below the cut-off site energy E_c, a
    fraction theta_imm = 1 - f_m of the bulk density, do not take part in long-range
    transport (docs/model.md section 3.10). D is then multiplied by the mobile edge

        m(theta) = 1 - exp(-(max(theta - theta_imm, 0) / w)^2),

    w = ``mobile_edge_width`` [-] (default :data:`IMMOBILE_EDGE_WIDTH`, 0.005), which is
    1 (to 1e-4) from theta_imm + 3 w up and 0 at and below theta_imm, where only
    the floor is left: the native ions are frozen once the SED has been emptied down to
    E_c. m is continuously differentiable, so the exact Jacobian stays continuous.
    Absent (default): no cut-off, every native ion is mobile.
    """

    model: ClassVar[str] = "sed"
    fwhm_eV: float
    vacancy_fraction: float = 0.10
    D_bulk_m2_s: float | None = None
    D0_m2_s: float | None = None
    E_DC_eV: float | None = None
    filling: str = "zero-temperature"
    D_min_m2_s: float | None = None
    D_ref_m2_s: float | None = None
    T_ref_K: float | None = None
    mobile_fraction: float | None = None
    mobile_edge_width: float | None = None

    def _validate(self):
        self._positive("fwhm_eV")
        f = self.mobile_fraction
        self._check("mobile_fraction", f is None or (_is_number(f) and 0 < f <= 1),
                    "a fraction in (0, 1]: the mobile part of the populated SED (absent: all mobile)")
        w = self.mobile_edge_width
        if w is not None:
            self._check("mobile_edge_width", f is not None,
                        "only with mobile_fraction (the width of its mobile edge)")
            self._check("mobile_edge_width", _is_number(w) and 0 < w <= 0.1,
                        "a native fraction in (0, 0.1]: the width of the mobile edge above theta_imm")
        v = self.vacancy_fraction
        self._check("vacancy_fraction", _is_number(v) and 0 < v < 1,
                    "must lie in (0, 1) (v = 0 puts the bulk Fermi level at infinity)")
        self._check("filling", self.filling in sed.FILLINGS, " or ".join(f'"{f}"' for f in sed.FILLINGS))
        if self.D_bulk_m2_s is not None:
            for key in ("D0_m2_s", "E_DC_eV", "D_ref_m2_s", "T_ref_K"):
                self._check(key, getattr(self, key) is None,
                            "give either D_bulk_m2_s or both D0_m2_s and E_DC_eV, not both "
                            "(or D_ref_m2_s, T_ref_K and E_DC_eV)")
            self._positive("D_bulk_m2_s")
        elif self.D_ref_m2_s is not None or self.T_ref_K is not None:
            self._check("D0_m2_s", self.D0_m2_s is None,
                        "give either D0_m2_s or D_ref_m2_s with T_ref_K (the prefactor at T_ref), not both")
            for key in ("D_ref_m2_s", "T_ref_K"):
                self._check(key, self._is_positive(key), "a finite number > 0; D_ref_m2_s and T_ref_K go together")
            self._check("E_DC_eV", _is_number(self.E_DC_eV) and self.E_DC_eV >= 0,
                        "a finite number >= 0, with D_ref_m2_s and T_ref_K")
        else:
            self._check("D0_m2_s", self._is_positive("D0_m2_s"),
                        "a finite number > 0, with E_DC_eV (or give D_bulk_m2_s instead)")
            self._check("E_DC_eV", _is_number(self.E_DC_eV) and self.E_DC_eV >= 0,
                        "a finite number >= 0, with D0_m2_s (or give D_bulk_m2_s instead)")

    @property
    def reference_keys(self) -> tuple[str, ...]:
        if self.D_bulk_m2_s is not None:
            return ("D_bulk_m2_s",)
        return ("D_ref_m2_s", "T_ref_K", "E_DC_eV") if self.D_ref_m2_s is not None else ("D0_m2_s", "E_DC_eV")

    @property
    def prefactor_m2_s(self) -> float | None:
        """D0 [m^2/s] of D_bulk = D0 exp(-E_DC / k_B T); None for a fixed D_bulk_m2_s."""
        if self.D_ref_m2_s is not None:
            return float(self.D_ref_m2_s * np.exp(self.E_DC_eV / kT_eV(self.T_ref_K)))
        return None if self.D0_m2_s is None else float(self.D0_m2_s)

    def reference_m2_s(self, temperature_K):
        if self.D_bulk_m2_s is not None:
            return float(self.D_bulk_m2_s)
        if self.D_ref_m2_s is not None:
            # written from T_ref, not through D0: no overflow of exp(E_DC / k_B T_ref)
            return float(self.D_ref_m2_s * np.exp(-self.E_DC_eV * (1.0 / kT_eV(temperature_K)
                                                                   - 1.0 / kT_eV(self.T_ref_K))))
        return float(self.D0_m2_s * np.exp(-self.E_DC_eV / kT_eV(temperature_K)))

    @property
    def _p_bulk(self) -> float:
        return 1.0 - self.vacancy_fraction

    def _sed_args(self, temperature_K):
        return dict(fwhm_eV=self.fwhm_eV, filling=self.filling, temperature_K=temperature_K)

    @property
    def immobile_fraction(self) -> float:
        """theta_imm = 1 - mobile_fraction [-]: the native fraction frozen below E_c (0 without a cut-off)."""
        return 0.0 if self.mobile_fraction is None else 1.0 - float(self.mobile_fraction)

    def cutoff_energy_eV(self, temperature_K: float) -> float | None:
        """E_c - E_F(p_b) [eV] (< 0): the cut-off site energy below which the native ions
        are immobile, measured from the bulk Fermi level; None without a cut-off."""
        if self.mobile_fraction is None:
            return None
        if self.immobile_fraction == 0.0:
            return -math.inf
        return float(sed.fermi_shift_eV(self.immobile_fraction, vacancy_fraction=self.vacancy_fraction,
                                        **self._sed_args(temperature_K)))

    @property
    def edge_width(self) -> float:
        """w [-] of the mobile edge: ``mobile_edge_width`` or :data:`IMMOBILE_EDGE_WIDTH`."""
        return IMMOBILE_EDGE_WIDTH if self.mobile_edge_width is None else float(self.mobile_edge_width)

    @staticmethod
    def mobile_edge(theta, theta_immobile, width, ops=NUMPY):
        """m(theta) [-] (class docstring); ``theta_immobile`` and ``width`` numbers or UFL Constants."""
        # beyond u = 10, exp(-u^2) < 4e-44: m is 1 in double precision (no underflow)
        u = ops.min(ops.max(theta - theta_immobile, 0.0) / width, 10.0)
        return 1.0 - ops.exp(-u * u)

    def _cut_parameters(self) -> dict[str, float]:
        if self.mobile_fraction is None:
            return {}
        return {"theta_immobile": self.immobile_fraction, "edge_width": self.edge_width}

    def nondim_parameters(self, temperature_K, D_ref_m2_s):
        return {**self._sed_parameters(temperature_K, D_ref_m2_s), **self._cut_parameters()}

    def _sed_parameters(self, temperature_K, D_ref_m2_s):
        D_bulk, kT = self.reference_m2_s(temperature_K), float(kT_eV(temperature_K))
        floor = self.floor_m2_s(temperature_K)
        if self.filling == "zero-temperature":
            return {"log_D_bulk": math.log(D_bulk / D_ref_m2_s), "s": sed.sigma_eV(self.fwhm_eV) / kT,
                    "p_bulk": self._p_bulk, "x_bulk": float(special.ndtri(self._p_bulk)),
                    "D_floor": floor / D_ref_m2_s}
        args = self._sed_args(temperature_K)
        p_top = self._p_bulk + 0.9 * self.vacancy_fraction
        E_bulk, E_top, E_min = sed.fermi_level_eV(np.array([self._p_bulk, p_top, _P_MIN]), **args)
        log_low = min(math.log(floor / D_bulk) - math.log(1e3), -10.0)
        E_knots = np.linspace(max(E_bulk + kT * log_low, E_min), E_top, _FD_KNOTS)
        theta_knots = sed.occupancy(E_knots, **args) / self._p_bulk
        log_D = math.log(D_bulk / D_ref_m2_s) + (E_knots - E_bulk) / kT
        return {**_table_parameters(theta_knots, log_D), "D_floor": floor / D_ref_m2_s}

    def _sed_relative(self, theta, params, ops):
        """D_SED(theta)/D_ref without the mobile edge and the floor."""
        if self.filling == "fermi-dirac":
            return ops.exp(_table_log_relative(theta, params, _FD_KNOTS - 1, ops))
        p = ops.min(ops.max(theta * params["p_bulk"], _P_MIN), _P_MAX)
        return ops.exp(params["log_D_bulk"] + params["s"] * (ops.ndtri(p) - params["x_bulk"]))

    def relative(self, theta, params, ops=NUMPY):
        core = self._sed_relative(theta, params, ops)
        if "theta_immobile" in params:
            core = core * self.mobile_edge(theta, params["theta_immobile"], params["edge_width"], ops)
        return core + params["D_floor"]

    def relative_between(self, own, ends, params, ops=NUMPY):
        """With an immobile fraction, the mobile edge of the flux between nodes a and b is
        the harmonic mean 2 m_a m_b / (m_a + m_b) of its nodal values (docs/numerics.md
        section 2): 0 as soon as one node is frozen, so that a node at theta_imm is not
        drained through the mobility of its neighbour's midpoint value, and m + O(h^2)
        where theta is smooth. The SED part stays at the midpoint."""
        if "theta_immobile" not in params:
            return self.relative(own, params, ops)
        m_a, m_b = (self.mobile_edge(t, params["theta_immobile"], params["edge_width"], ops) for t in ends)
        # 1e-100: 0/0 where both nodes are frozen, yet its square stays a normal double
        edge = 2.0 * m_a * m_b / (m_a + m_b + 1e-100)
        return self._sed_relative(own, params, ops) * edge + params["D_floor"]

    def thermodynamic_factor(self, theta, params, ops=NUMPY):
        """The SED Fermi level is the chemical potential: mu = E0 + sigma Phi^-1(p), so
        Gamma = (theta / k_B T) d mu / d theta = (sigma / k_B T) p / phi(Phi^-1(p)), p = theta p_b.
        Zero-temperature filling only (Experiment refuses the combination otherwise)."""
        p = ops.min(ops.max(theta * params["p_bulk"], _P_MIN), _P_MAX)
        x = ops.ndtri(p)
        return params["s"] * p * math.sqrt(2.0 * math.pi) * ops.exp(0.5 * x * x)

    def _clamped(self, theta):
        p = theta * self._p_bulk
        return np.clip(p, _P_MIN, _P_MAX), (p >= _P_MIN) & (p <= _P_MAX)

    def _sed_core_m2_s(self, theta, temperature_K):
        p, _ = self._clamped(theta)
        shift = sed.fermi_shift_eV(p / self._p_bulk, vacancy_fraction=self.vacancy_fraction,
                                   **self._sed_args(temperature_K))
        return self.reference_m2_s(temperature_K) * np.exp(shift / kT_eV(temperature_K))

    def _core_m2_s(self, theta, temperature_K):
        core = self._sed_core_m2_s(theta, temperature_K)
        if self.mobile_fraction is None:
            return core
        return core * self.mobile_edge(np.asarray(theta, dtype=float), self.immobile_fraction, self.edge_width)

    def dD_dtheta_m2_s(self, theta, temperature_K):
        theta = np.asarray(theta, dtype=float)
        p, inside = self._clamped(theta)
        slope = sed.fermi_level_slope_eV(p, **self._sed_args(temperature_K))
        dlogD = np.where(inside, self._p_bulk * slope / kT_eV(temperature_K), 0.0)
        core = self._sed_core_m2_s(theta, temperature_K)
        if self.mobile_fraction is None:
            return core * dlogD
        w = self.edge_width
        u = np.minimum(np.maximum(theta - self.immobile_fraction, 0.0) / w, 10.0)
        tail = np.exp(-u * u)
        return core * (dlogD * (1.0 - tail) + np.where(u < 10.0, 2.0 * u / w * tail, 0.0))


@dataclass(frozen=True)
class TabulatedD(DiffusionLaw):
    """D from pairs (theta_k, D_k [m^2/s]): linear in log D between knots, constant outside."""

    model: ClassVar[str] = "tabulated"
    reference_keys: ClassVar[tuple[str, ...]] = ("D_m2_s",)
    theta: tuple[float, ...]
    D_m2_s: tuple[float, ...]
    D_min_m2_s: float | None = None

    def _validate(self):
        for key in ("theta", "D_m2_s"):
            values = getattr(self, key)
            self._check(key, isinstance(values, (list, tuple, np.ndarray)) and len(values) >= 2
                        and all(_is_number(x) for x in values),
                        'a list of at least two finite numbers (use model = "constant" for one value)')
        theta, D = self.theta, self.D_m2_s
        self._check("D_m2_s", len(D) == len(theta), f"one value per theta ({len(theta)})")
        self._check("theta", theta[0] >= 0 and all(b > a for a, b in zip(theta, theta[1:])),
                    "strictly increasing values >= 0")
        self._check("D_m2_s", all(d > 0 for d in D), "values > 0")
        object.__setattr__(self, "theta", tuple(float(x) for x in theta))
        object.__setattr__(self, "D_m2_s", tuple(float(x) for x in D))

    def reference_m2_s(self, temperature_K):
        return max(self.D_m2_s)

    def nondim_parameters(self, temperature_K, D_ref_m2_s):
        log_D = np.log(np.asarray(self.D_m2_s) / D_ref_m2_s)
        return {**_table_parameters(np.asarray(self.theta), log_D),
                "D_floor": self.floor_m2_s(temperature_K) / D_ref_m2_s}

    def relative(self, theta, params, ops=NUMPY):
        return ops.exp(_table_log_relative(theta, params, len(self.theta) - 1, ops)) + params["D_floor"]

    def _core_m2_s(self, theta, temperature_K):
        return np.exp(np.interp(theta, self.theta, np.log(self.D_m2_s)))

    def dD_dtheta_m2_s(self, theta, temperature_K):
        theta = np.asarray(theta, dtype=float)
        knots, log_D = np.asarray(self.theta), np.log(self.D_m2_s)
        slopes = np.diff(log_D) / np.diff(knots)
        segment = np.searchsorted(knots, theta, side="right") - 1
        inside = (segment >= 0) & (segment < len(slopes))
        slope = np.where(inside, slopes[np.clip(segment, 0, len(slopes) - 1)], 0.0)
        return self._core_m2_s(theta, temperature_K) * slope


@dataclass(frozen=True)
class LogLinearD(DiffusionLaw):
    """D of several species' fractions (docs/model.md section 3.9), log-linear in each:

        log10 D = log10 D_m2_s + sum_k decades[k] * theta_{fractions[k]}

    ``D_m2_s`` [m^2/s] is D where all listed fractions are 0; ``fractions`` names species
    of the case (the species itself, another foreign species, the native one);
    ``decades[k]`` [-] is the change of log10 D when theta of ``fractions[k]`` goes from 0
    to 1. Written for the first foreign ion of a double CAIT experiment, whose D stays
    constant while it is alone (step 1) and changes once the second foreign ion arrives
    (step 2): ``fractions = ["Cs"]``. Composition only, no temperature dependence.

    ``relative`` (own fraction only) and ``diffusivity_m2_s`` without ``fractions`` give
    the value with every listed fraction 0; the forms call :meth:`relative_of`.
    """

    model: ClassVar[str] = "log_linear"
    reference_keys: ClassVar[tuple[str, ...]] = ("D_m2_s",)
    #: |decades| above this would push D below the floor (1e-12 D) inside [0, 1]
    MAX_DECADES: ClassVar[float] = 10.0
    D_m2_s: float
    fractions: tuple[str, ...]
    decades: tuple[float, ...]
    D_min_m2_s: float | None = None

    def _validate(self):
        self._positive("D_m2_s")
        names = self.fractions
        self._check("fractions", isinstance(names, (list, tuple)) and len(names) >= 1
                    and all(isinstance(n, str) and n.isidentifier() for n in names)
                    and len(set(names)) == len(names),
                    "a non-empty list of distinct species names")
        values = self.decades
        self._check("decades", isinstance(values, (list, tuple, np.ndarray)) and len(values) == len(names)
                    and all(_is_number(x) and abs(x) <= self.MAX_DECADES for x in values),
                    f"one finite number per name in fractions ({len(names)}), each within "
                    f"[-{self.MAX_DECADES:g}, {self.MAX_DECADES:g}] (decades of D per unit fraction)")
        object.__setattr__(self, "fractions", tuple(names))
        object.__setattr__(self, "decades", tuple(float(x) for x in values))

    @property
    def fraction_names(self) -> tuple[str, ...]:
        return self.fractions

    def reference_m2_s(self, temperature_K):
        return float(self.D_m2_s)

    def nondim_parameters(self, temperature_K, D_ref_m2_s):
        # keyed by species name: other names are another compiled structure
        slopes = {f"slope_{n}": math.log(10.0) * d for n, d in zip(self.fractions, self.decades)}
        return {"log_D": math.log(self.D_m2_s / D_ref_m2_s), **slopes,
                "D_floor": self.floor_m2_s(temperature_K) / D_ref_m2_s}

    def relative_of(self, own, fractions, params, ops=NUMPY):
        log_D = params["log_D"] + balanced_sum(params[f"slope_{n}"] * fractions[n] for n in self.fractions)
        return ops.exp(log_D + 0.0 * own) + params["D_floor"]

    def relative(self, theta, params, ops=NUMPY):
        return ops.exp(params["log_D"] + 0.0 * theta) + params["D_floor"]

    def _core_m2_s(self, theta, temperature_K, fractions=None):
        fractions = fractions or {}
        log10_D = math.log10(self.D_m2_s) + np.zeros_like(theta)
        for n, d in zip(self.fractions, self.decades):
            if n in fractions:
                log10_D = log10_D + d * np.asarray(fractions[n], dtype=float)
        return 10.0 ** log10_D

    def diffusivity_m2_s(self, theta, temperature_K, fractions: Mapping[str, Any] | None = None) -> np.ndarray:
        """D [m^2/s], floor included; ``fractions`` {species name: theta array} (absent
        names count as 0)."""
        theta = np.asarray(theta, dtype=float)
        return self._core_m2_s(theta, temperature_K, fractions) + self.floor_m2_s(temperature_K)

    def dD_dtheta_m2_s(self, theta, temperature_K):
        """0: ``theta`` alone does not move D; the partial derivatives are
        ln(10) decades[k] D along theta_{fractions[k]}."""
        return np.zeros_like(np.asarray(theta, dtype=float))

    def to_dict(self) -> dict:
        out = super().to_dict()
        out["fractions"] = list(self.fractions)
        out["decades"] = list(self.decades)
        return out


def _describe_reference(law: DiffusionLaw, where: str) -> str:
    """``where.key = value`` for the key that sets D(T) (the last of the law's
    ``reference_keys``), with the others."""
    *others, key = law.reference_keys
    text = f"{where}.{key} = {getattr(law, key)!r}"
    if others:
        text += " (with " + ", ".join(f"{k} = {getattr(law, k)!r}" for k in others) + ")"
    return text


def check_diffusivity_range(laws: Mapping[str, DiffusionLaw], native: str, temperature_K: float) -> None:
    """ConfigError unless every law's D at ``temperature_K`` [K] is a finite number of at
    least :data:`D_SMALLEST_M2_S` and, relative to the native species' D_ref, within a
    factor :data:`RELATIVE_D_RANGE` (1e12) either way: the range in which the scaled
    system is representable (module constants). ``laws``: {species name: law}."""
    D = {}
    for name, law in laws.items():
        where = f"species.{name}.diffusion"
        value = law.reference_m2_s(temperature_K)
        if not (math.isfinite(value) and value >= D_SMALLEST_M2_S):
            raise ConfigError(f"{_describe_reference(law, where)} gives D = {value:.3g} m^2/s at glass.temperature_K "
                              f"= {temperature_K!r}: below the smallest representable D, {D_SMALLEST_M2_S:.3g} m^2/s "
                              f"(its floor, {FLOOR_FRACTION:g} D, must be a normal double); change "
                              f"{where}.{law.reference_keys[-1]} so that D is a physical diffusion coefficient")
        D[name] = value
    D_ref = D[native]
    for name, law in laws.items():
        ratio = D[name] / D_ref
        if not (1.0 / RELATIVE_D_RANGE <= ratio <= RELATIVE_D_RANGE):
            where = f"species.{name}.diffusion"
            raise ConfigError(f"{_describe_reference(law, where)} gives D = {D[name]:.3g} m^2/s at glass.temperature_K "
                              f"= {temperature_K!r}, {ratio:.3g} times the native species' D_ref = {D_ref:.3g} m^2/s: "
                              f"must lie within a factor {RELATIVE_D_RANGE:g} of it either way (the scaled system "
                              "resolves 12 decades of D, docs/numerics.md section 1); change "
                              f"{where}.{law.reference_keys[-1]}")


_LAWS: dict[str, type[DiffusionLaw]] = {
    law.model: law for law in (ConstantD, ArrheniusD, GaussianSED, TabulatedD, LogLinearD)}


def diffusion_law_from_dict(d: Mapping, where: str) -> DiffusionLaw:
    """Build a law from its TOML table ``d`` (keys as in :meth:`DiffusionLaw.to_dict`);
    ``where`` is the table's path, used in the :class:`ConfigError` messages."""
    _require(isinstance(d, Mapping), where, d, 'a table with a "model" key')
    model = d.get("model")
    _require(isinstance(model, str) and model in _LAWS, f"{where}.model", model,
             "one of " + ", ".join(f'"{m}"' for m in _LAWS))
    law = _LAWS[model]
    keys = [f.name for f in dataclasses.fields(law) if f.name != "where"]
    for key, value in d.items():
        _require(key == "model" or key in keys, f"{where}.{key}", value,
                 f'not a key of model "{model}"; allowed: ' + ", ".join(keys))
    for f in dataclasses.fields(law):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        _require(not required or f.name in d, f"{where}.{f.name}", None, f'required for model "{model}"')
    return law(**{k: v for k, v in d.items() if k != "model"}, where=where)
