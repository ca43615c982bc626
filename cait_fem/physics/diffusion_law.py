"""The interface of a diffusion-coefficient law D(theta) [m^2/s], theta = n / n_bg
(docs/model.md section 3), and the pieces the laws share: validation and the
piecewise-linear log D tables. The laws themselves are in :mod:`cait_fem.physics.diffusion`
(and :mod:`cait_fem.physics.sed_law`); import them from there.

The floor D_min (default 1e-12 of the law's reference D) is *added*, D + D_min, instead of
max(D, D_min): the sum is smooth, so the exact Newton Jacobian stays continuous where D
reaches the floor, and at 1e-12 of the bulk value the shift is negligible.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, ClassVar

import numpy as np

from cait_fem.errors import ConfigError

from .ops import NUMPY, balanced_sum

#: the default floor D_min as a fraction of a law's reference D (module doc)
FLOOR_FRACTION = 1e-12


def require(condition: bool, name: str, value, allowed: str) -> None:
    """ConfigError "``name`` = ``value`` is not allowed: ``allowed``" unless ``condition``."""
    if not condition:
        raise ConfigError(f"{name} = {value!r} is not allowed: {allowed}")


def is_number(value) -> bool:
    """A finite real number, not a bool."""
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def table_parameters(theta_knots, log_D_knots) -> dict[str, float]:
    """Parameters of the piecewise-linear log D table read by :func:`table_log_relative`."""
    params = {"log_D_0": float(log_D_knots[0])}
    for k in range(len(theta_knots) - 1):
        width = float(theta_knots[k + 1] - theta_knots[k])
        params[f"theta_{k}"] = float(theta_knots[k])
        params[f"width_{k}"] = width
        params[f"slope_{k}"] = float(log_D_knots[k + 1] - log_D_knots[k]) / width
    return params


def table_log_relative(theta, params, n_segments: int, ops):
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
        require(ok, f"{self.where}.{key}", getattr(self, key), allowed)

    def _is_positive(self, key: str) -> bool:
        return is_number(getattr(self, key)) and getattr(self, key) > 0

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
    #: own fraction only (all laws but :class:`cait_fem.physics.diffusion.LogLinearD`)
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
        fraction, :meth:`cait_fem.physics.sed_law.GaussianSED.relative_between`)."""
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
