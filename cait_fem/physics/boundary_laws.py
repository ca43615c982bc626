"""Boundary laws of docs/model.md section 4, pure: numpy values or UFL expressions via ``ops``.

The forms (UFL) and the observables (numpy) use the same function, so the influx that
enters the residual is exactly the influx that is integrated for the conservation check.
"""

from __future__ import annotations

import math

from .ops import NUMPY


def landing_fraction(surface_potential, E_kin, sigma_E, charge_number: float = 1.0, ops=NUMPY):
    """Fraction of beam ions whose kinetic energy exceeds the surface barrier z e phi_s:
    Phi((E_kin - z e phi_s) / sigma_E), Phi the standard normal CDF. All energies and the
    potential in the same units (the solver uses k_B T and k_B T / e)."""
    return 0.5 * (1.0 + ops.erf((E_kin - charge_number * surface_potential) / (sigma_E * math.sqrt(2.0))))
