"""Dimensionless front and back-electrode values of a case at a time (docs/model.md section 4).

What :class:`~cait_fem.fem.forms.NPPForms` loads into its boundary Constants: the front
potential of a voltage history, a beam's particle flux, landing energy and spread, a
potential front's surface fraction, the back electrode's discharge rate. Pure: no
DOLFINx, so they are tested and reused without a mesh.
"""

from __future__ import annotations

import numpy as np
from scipy.constants import e as _ELEMENTARY_CHARGE

from cait_fem.case.experiment import AnodeFront, Beam, CurrentFront, Physics

from .scales import Scales


def particle_flux(current_density_A_m2: float, charge_number: float, scales: Scales) -> float:
    """The dimensionless particle flux j / (z e) of a current density j [A/m^2]."""
    return current_density_A_m2 / (charge_number * _ELEMENTARY_CHARGE) / scales.flux_m2_s


def front_values(physics: Physics, scales: Scales, charge_number: float, time_s: float,
                 left: bool = False) -> dict:
    """The front's Constants at ``time_s`` [s]: ``U`` (potential and anode fronts; ``left``:
    the value just before a jump of the voltage history), ``flux`` (beam and current
    fronts), ``E_kin`` and ``sigma_E`` (beam), ``surface_fraction`` (potential front).
    ``charge_number``: z of the species entering at the front (unused for an anode)."""
    front = physics.front
    if isinstance(front, AnodeFront):
        return {"U": front.voltage_at(time_s, left) / scales.potential_V}
    if isinstance(front, Beam):
        return {"flux": particle_flux(front.current_density_at(time_s), charge_number, scales),
                "E_kin": front.E_kin_eV / scales.potential_V, "sigma_E": front.sigma_E_eV / scales.potential_V}
    if isinstance(front, CurrentFront):
        return {"flux": particle_flux(front.current_density_A_m2, charge_number, scales)}
    return {"U": front.voltage_at(time_s, left) / scales.potential_V, "surface_fraction": front.surface_fraction}


def back_rate(physics: Physics, scales: Scales) -> float:
    """The dimensionless discharge rate of the back electrode (0 unless it discharges)."""
    back = physics.back
    if back.native == "discharge":
        return back.discharge_rate_m_s * scales.time_s / scales.length_m
    return 0.0


def beam_step_flux(beam: Beam, scales: Scales, charge_number: float, times, dt: float, a) -> float:
    """The dimensionless beam flux of a BDF step ending at ``times[0]`` from the previous
    states at ``times[1:]`` (dimensionless, newest first): the BDF derivative of the exact
    delivered charge Q(t), (a0 Q(t) + a1 Q(t_n) + ...) / dt, instead of j(t). The step's
    BDF formula integrates it back to Q, so the charge the model receives equals the
    delivered charge at every step to round-off, however the samples vary between steps
    (docs/numerics.md section 6); for a smooth j(t) it is j(t) + O(dt^order)."""
    times = np.asarray(times, dtype=float)[: len(a)]
    charges = beam.charge_C_m2(times * scales.time_s)
    # sum a_k = 0 only up to rounding: differences against Q(t_n), or a beam switched off
    # would receive rounding * Q / dt over the restart's tiny steps
    j = float(np.dot(np.asarray(a, dtype=float)[: len(times)], charges - charges[1])) / (dt * scales.time_s)
    return particle_flux(j, charge_number, scales)
