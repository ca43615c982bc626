"""Diffusion-coefficient laws D(theta) [m^2/s], theta = n / n_bg (docs/model.md section 3).

Each law is a frozen dataclass whose fields are the TOML keys (with units). The solver uses
a law through ``nondim_parameters`` (dimensionless numbers, one UFL Constant each, with a
key set fixed per instance) and ``relative`` (D(theta) / D_ref written with ``ops`` so the
same definition is a UFL expression or a numpy value). ``diffusivity_m2_s`` and
``dD_dtheta_m2_s`` are exact numpy evaluations for analysis and tests.

The interface :class:`DiffusionLaw` lives in :mod:`cait_fem.physics.diffusion_law` and the
Gaussian SED law :class:`GaussianSED` in :mod:`cait_fem.physics.sed_law`; this module holds
the other laws, the registry of all of them (:func:`diffusion_law_from_dict`) and the range
check, and every law is importable from here.

The floor D_min (default 1e-12 of the law's reference D) is *added*, D + D_min, instead of
max(D, D_min): the sum is smooth, so the exact Newton Jacobian stays continuous where D
reaches the floor, and at 1e-12 of the bulk value the shift is negligible.
"""

from __future__ import annotations

import dataclasses
import math
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np

from cait_fem.errors import ConfigError

from .diffusion_law import FLOOR_FRACTION, DiffusionLaw, is_number, require, table_log_relative, table_parameters
from .ops import NUMPY, balanced_sum
from .sed import kT_eV
from .sed_law import IMMOBILE_EDGE_WIDTH, GaussianSED

__all__ = ["DiffusionLaw", "ConstantD", "ArrheniusD", "GaussianSED", "TabulatedD", "LogLinearD",
           "diffusion_law_from_dict", "kT_eV", "FLOOR_FRACTION", "IMMOBILE_EDGE_WIDTH",
           "check_diffusivity_range"]

#: smallest D [m^2/s] of a law at the case temperature: its floor, FLOOR_FRACTION * D,
#: must still be a normal double (2.2e-308), or the scaled floor and log D are lost
D_SMALLEST_M2_S = sys.float_info.min / FLOOR_FRACTION
#: every species' D at the case temperature lies within this factor of the native
#: species' D_ref (either way): the time scale is L^2 / D_ref (fem/scales.py), and the
#: forms resolve D over the 12 decades down to the floor (FLOOR_FRACTION); a species
#: 1e31 times faster (D_m2_s = 1e10) makes every step underflow against t.
RELATIVE_D_RANGE = 1.0 / FLOOR_FRACTION


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
        self._check("E_a_eV", is_number(self.E_a_eV) and self.E_a_eV >= 0, "must be a finite number >= 0")

    def reference_m2_s(self, temperature_K):
        return float(self.D0_m2_s * np.exp(-self.E_a_eV / kT_eV(temperature_K)))


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
                        and all(is_number(x) for x in values),
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
        return {**table_parameters(np.asarray(self.theta), log_D),
                "D_floor": self.floor_m2_s(temperature_K) / D_ref_m2_s}

    def relative(self, theta, params, ops=NUMPY):
        return ops.exp(table_log_relative(theta, params, len(self.theta) - 1, ops)) + params["D_floor"]

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
                    and all(is_number(x) and abs(x) <= self.MAX_DECADES for x in values),
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
    require(isinstance(d, Mapping), where, d, 'a table with a "model" key')
    model = d.get("model")
    require(isinstance(model, str) and model in _LAWS, f"{where}.model", model,
             "one of " + ", ".join(f'"{m}"' for m in _LAWS))
    law = _LAWS[model]
    keys = [f.name for f in dataclasses.fields(law) if f.name != "where"]
    for key, value in d.items():
        require(key == "model" or key in keys, f"{where}.{key}", value,
                 f'not a key of model "{model}"; allowed: ' + ", ".join(keys))
    for f in dataclasses.fields(law):
        required = f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING
        require(not required or f.name in d, f"{where}.{f.name}", None, f'required for model "{model}"')
    return law(**{k: v for k, v in d.items() if k != "model"}, where=where)
