"""Nondimensionalisation of the NPP system (docs/model.md section 8.1: never assemble raw SI numbers).

Unknowns and coordinates are scaled as

    x = L x~,   n_i = n_bg theta_i,   phi = (k_B T / e) psi,   t = (L^2 / D_ref) t~,

with L the unit of the mesh coordinates, by default 1 nm (the scale of the profiles and of
the mesh near the front) and D_ref the
native species' reference diffusion coefficient. Then the Nernst-Planck flux is
J~_i = -(D_i/D_ref) (grad theta_i + z_i theta_i grad psi) and Poisson reads
-lambda~^2 lap psi = sum_i z_i theta_i - z_native, lambda~ = lambda_D / L with the Debye
length lambda_D = sqrt(eps0 eps_r k_B T / (e^2 n_bg)). For Li3B7O12 at 300 K this gives
lambda~^2 ~ 1e-3, a beam flux of order 1 and t_ref = 0.1 s: every coefficient that reaches
the assembler is within a few decades of 1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from scipy import constants as sc

from cait_fem.errors import ConfigError

LENGTH_SCALE_M = 1e-9


@dataclass(frozen=True)
class Scales:
    length_m: float
    density_m3: float
    potential_V: float
    time_s: float
    D_ref_m2_s: float
    debye_length_m: float

    @classmethod
    def of(cls, physics, length_m: float = LENGTH_SCALE_M) -> Scales:
        """The scales of ``physics`` (a :class:`~cait_fem.case.experiment.Physics` or an
        Experiment: its glass and native species) for mesh coordinates in units of
        ``length_m`` [m] (default 1e-9: nm)."""
        ok = isinstance(length_m, (int, float)) and not isinstance(length_m, bool)
        if not (ok and math.isfinite(length_m) and length_m > 0):
            raise ConfigError(f"length scale (mesh unit) = {length_m!r} m is not allowed: must be a finite "
                              "number > 0 [m], e.g. 1e-9 for coordinates in nm")
        g = physics.glass
        kT_over_e = sc.k * g.temperature_K / sc.e
        D_ref = physics.native.diffusion.reference_m2_s(g.temperature_K)
        debye = math.sqrt(sc.epsilon_0 * g.eps_r * sc.k * g.temperature_K / (sc.e**2 * g.n_bg_m3))
        return cls(
            length_m=float(length_m),
            density_m3=g.n_bg_m3,
            potential_V=kT_over_e,
            time_s=length_m**2 / D_ref,
            D_ref_m2_s=D_ref,
            debye_length_m=debye,
        )

    @property
    def flux_m2_s(self) -> float:
        """Particle flux density [m^-2 s^-1] that corresponds to a dimensionless flux of 1."""
        return self.density_m3 * self.length_m / self.time_s

    @property
    def debye_squared(self) -> float:
        """(lambda_D / L)^2, the coefficient of the dimensionless Poisson equation."""
        return (self.debye_length_m / self.length_m) ** 2

    def to_dict(self) -> dict:
        return {
            "length_m": self.length_m,
            "density_m3": self.density_m3,
            "potential_V": self.potential_V,
            "time_s": self.time_s,
            "D_ref_m2_s": self.D_ref_m2_s,
            "debye_length_m": self.debye_length_m,
        }
