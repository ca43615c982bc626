"""The dimensionless front and back values the forms load (cait_fem.fem.boundary_values,
docs/model.md section 4): checked against the SI definitions, without DOLFINx."""

import dataclasses

import numpy as np
import pytest
from scipy.constants import e, k
from support.compare import approx
from support.experiments import SLAB_EXP

import cait_fem as cf
from cait_fem.fem.boundary_values import back_rate, beam_step_flux, front_values, particle_flux
from cait_fem.fem.scales import Scales
from cait_fem.solver.bdf import coefficients

J = 1e-2  # A/m^2


def _physics(front=None, back=None):
    exp = SLAB_EXP
    if front is not None:
        exp = dataclasses.replace(exp, front=front)
    if back is not None:
        exp = dataclasses.replace(exp, back=back)
    return exp.physics


def test_beam_values_are_the_si_flux_and_energies_over_their_scales():
    physics = _physics()
    scales = Scales.of(physics)
    values = front_values(physics, scales, 1.0, 0.0)
    assert values["flux"] * scales.flux_m2_s == approx(J / e, rel=1e-14)
    kT_e = k * physics.glass.temperature_K / e
    assert values["E_kin"] * kT_e == approx(10.0, rel=1e-14)
    assert values["sigma_E"] * kT_e == approx(0.5, rel=1e-14)


def test_a_divalent_current_front_carries_half_the_ions():
    physics = _physics(front=cf.CurrentFront(current_density_A_m2=J))
    scales = Scales.of(physics)
    assert front_values(physics, scales, 2.0, 0.0) == {"flux": approx(J / (2 * e) / scales.flux_m2_s, rel=1e-14)}
    assert particle_flux(J, 2.0, scales) == approx(0.5 * particle_flux(J, 1.0, scales), rel=1e-15)


def test_back_rate_is_the_discharge_velocity_over_the_length_per_time():
    physics = _physics(back=cf.BackElectrode(native="discharge", discharge_rate_m_s=3e-9))
    scales = Scales.of(physics)
    assert back_rate(physics, scales) * scales.length_m / scales.time_s == approx(3e-9, rel=1e-14)
    assert back_rate(_physics(), scales) == 0.0


def _ramp_beam(j0, slope, t_end):
    times = np.linspace(0.0, t_end, 5)
    return cf.Beam(E_kin_eV=10.0, sigma_E_eV=0.5, current_times_s=list(times),
                   current_density_history_A_m2=list(j0 + slope * times))


@pytest.mark.parametrize("order", [1, 2, 3])
def test_step_flux_is_the_bdf_derivative_of_the_delivered_charge(order):
    """On a linear ramp Q(t) is quadratic: BDF2 and BDF3 differentiate it exactly, BDF1
    gives the mean current of the step, (Q(t) - Q(t_n)) / dt."""
    beam = _ramp_beam(J, 2e-6, 4000.0)
    scales = Scales.of(_physics(front=beam))
    dt, steps = 37.0, [55.0, 21.0]
    t = 1234.0
    times = [t, t - dt, t - dt - steps[0], t - dt - steps[0] - steps[1]]
    a = coefficients(order, dt / scales.time_s, [h / scales.time_s for h in steps])
    flux = beam_step_flux(beam, scales, 1.0, [x / scales.time_s for x in times], dt / scales.time_s, a)
    expected_j = J + 2e-6 * t if order > 1 else J + 2e-6 * (t - dt / 2)
    assert flux * scales.flux_m2_s * e == approx(expected_j, rel=1e-9)


def test_a_switched_off_beam_gives_exactly_no_flux():
    """After the switch-off Q is constant: the variable-step BDF3 coefficients sum to zero
    only up to rounding, so the flux must come from differences of Q, exactly 0."""
    beam = cf.Beam(E_kin_eV=10.0, sigma_E_eV=0.5, current_times_s=[0.0, 100.0, 100.5, 1e4],
                   current_density_history_A_m2=[J, J, 0.0, 0.0])
    scales = Scales.of(_physics(front=beam))
    h = [1e-9 / scales.time_s, 3e-9 / scales.time_s, 7e-9 / scales.time_s]
    a = coefficients(3, h[0], h[1:])
    t = 500.0 / scales.time_s
    times = [t, t - h[0], t - h[0] - h[1], t - h[0] - h[1] - h[2]]
    assert beam_step_flux(beam, scales, 1.0, times, h[0], a) == 0.0
