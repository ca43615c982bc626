"""Alkali-proton substitution: H+ entering through a potential front (docs/model.md section 4.8).

Expected values are Ohm's law with Nernst-Einstein conductivities sigma_i = e^2 n_bg D_i /
(k_B T): one conductor when D_H = D_Li, two resistors in series (the proton layer and the
rest of the glass) when H+ is slow. The glass is the Li3B7O12 preset's (n_bg = 1.41e28
m^-3), 1 um thick, with constant diffusion coefficients.
"""

from pathlib import Path

import numpy as np
import pytest
from scipy import constants as sc
from support.compare import approx

import cait_fem as cf

DEMOS = Path(__file__).resolve().parents[1] / "demos"
T, THICKNESS, D_LI, U = 300.0, 1e-6, 1e-17, 10.0


def test_the_aps_demo_case_reads_protons_from_the_presets():
    exp = cf.load_case(DEMOS / "aps.toml")
    h = exp.species[exp.front_species_index]
    assert (h.name, h.charge_number, type(h.diffusion).__name__) == ("H", 1, "ConstantD")
    assert isinstance(exp.front, cf.PotentialFront) and exp.front.voltage_at(123.0) == 10.0


def _aps(D_H, t_end_s, outputs, front=None):
    glass = cf.Glass.preset("Li3B7O12", temperature_K=T, thickness_m=THICKNESS)
    species = (cf.Species("Li", "native", cf.ConstantD(D_m2_s=D_LI)),
               cf.Species("H", "foreign", cf.ConstantD(D_m2_s=D_H)))
    front = front or cf.PotentialFront(U_V=U, surface_fraction=1.0)
    exp = cf.Experiment(glass=glass, species=species, front=front,
                        run=cf.RunSettings(t_end_s=t_end_s, output_times_s=outputs), name="aps")
    return exp, cf.simulate(exp)


def _sigma(exp, D):
    return sc.e**2 * exp.glass.n_bg_m3 * D / (sc.k * T)


@pytest.mark.dolfinx
def test_protons_as_mobile_as_the_native_ions_give_the_ohmic_current():
    """D_H = D_Li: the total cation fraction obeys one Nernst-Planck equation, the glass is
    one conductor, j = sigma U / d, once the contact's space-charge layer (a junction
    potential of some k_B T / e, 0.2 % of U) has relaxed."""
    exp, r = _aps(D_LI, 1.0, (0.3,))
    ohmic = _sigma(exp, D_LI) * U / THICKNESS
    for t in (0.3, 1.0):
        assert np.interp(t, r.time_s, r.current_density_A_m2) == approx(ohmic, rel=1e-2)
    assert r.theta[-1, 1].max() > 0.99  # protons did enter


@pytest.mark.dolfinx
def test_slow_protons_limit_the_current_by_their_layer():
    """D_H = D_Li / 100: a sharp proton layer of thickness l (theta_H = 1/2) in series with
    the native glass: j = U / (l / sigma_H + (d - l) / sigma_Li), and the potential drop
    across the layer is j l / sigma_H (its resistance)."""
    D_H = D_LI / 100
    exp, r = _aps(D_H, 3.0, (1.0,))
    s_h, s_li = _sigma(exp, D_H), _sigma(exp, D_LI)
    x = r.depth_m
    for k, t in enumerate(r.output_times_s):
        th = r.theta[k, 1]
        i = int(np.argmax(th < 0.5))
        layer = float(np.interp(0.5, th[[i, i - 1]], x[[i, i - 1]]))
        current = np.interp(t, r.time_s, r.current_density_A_m2)
        assert current == approx(U / (layer / s_h + (THICKNESS - layer) / s_li), rel=1.5e-2)
        drop = U - np.interp(layer, x, r.potential_V[k])
        assert drop / current == approx(layer / s_h, rel=3e-2)
        # and the layer does limit it: well below the ohmic current of the pristine glass
        assert current < 0.8 * s_li * U / THICKNESS


@pytest.mark.dolfinx
def test_a_ramped_potential_front_follows_ohms_law():
    """The same one-conductor glass under U(t) = 20 V/s t up to 10 V (a voltage history,
    docs/model.md section 4.7): j(t) = sigma U(t) / d during and after the ramp."""
    front = cf.PotentialFront(surface_fraction=1.0, voltage="ramp", U_V=U, ramp_rate_V_s=20.0)
    exp, r = _aps(D_LI, 1.0, (0.25,), front=front)
    sigma = _sigma(exp, D_LI)
    for t in (0.25, 0.5, 1.0):
        assert np.interp(t, r.time_s, r.current_density_A_m2) == approx(sigma * front.voltage_at(t) / THICKNESS,
                                                                         rel=1e-2)
    assert np.min(np.abs(r.time_s - 0.5)) < 1e-12  # the stepper landed on the ramp's end
