"""Analytic limits and invariants of the full solver at realistic parameters (docs/model.md sections 6 and 8).

Expected values come from physics (Ohm's law with the Nernst-Einstein conductivity, the
Buckley-Leverett / Welge displacement, conservation), never from earlier runs of the code.
"""

import numpy as np
import pytest
from scipy import constants as sc
from support.compare import approx

import cait_fem as cf
from cait_fem.analysis import buckley_leverett

T, N_BG, EPS_R, THICKNESS = 300.0, 1.41e28, 8.0, 1e-3
SED = cf.GaussianSED(fwhm_eV=0.25, vacancy_fraction=0.10, D_bulk_m2_s=1e-17)
D_K, D_SLOW = 5.6e-21, 6e-22


def _glass(**kw):
    return cf.Glass(n_bg_m3=N_BG, eps_r=EPS_R, temperature_K=T, thickness_m=THICKNESS, **kw)


def _beam_experiment(D_foreign, t_end_s=30000.0, **run):
    return cf.Experiment(
        glass=_glass(),
        species=(cf.Species("Li", "native", SED), cf.Species("K", "foreign", cf.ConstantD(D_m2_s=D_foreign))),
        front=cf.Beam(current_density_A_m2=1e-2, E_kin_eV=10.0, sigma_E_eV=0.5),
        run=cf.RunSettings(t_end_s=t_end_s, output_times_s=(t_end_s / 3,), **run),
    )


@pytest.fixture(scope="module")
def k_result():
    return cf.simulate(_beam_experiment(D_K))


@pytest.fixture(scope="module")
def slow_result():
    return cf.simulate(_beam_experiment(D_SLOW))


@pytest.mark.dolfinx
def test_no_beam_nothing_moves():
    exp = cf.Experiment(
        glass=_glass(),
        species=(cf.Species("Li", "native", SED), cf.Species("K", "foreign", cf.ConstantD(D_m2_s=D_K))),
        front=cf.Beam(current_density_A_m2=0.0, E_kin_eV=10.0, sigma_E_eV=0.5),
        run=cf.RunSettings(t_end_s=1e4),
    )
    r = cf.simulate(exp)
    assert np.max(np.abs(r.theta[-1, 0] - 1.0)) < 1e-12
    assert np.max(np.abs(r.theta[-1, 1])) < 1e-12
    assert np.max(np.abs(r.potential_V[-1])) < 1e-9
    assert np.max(np.abs(r.current_density_A_m2)) < 1e-15
    # with nothing happening, the steps must have grown to the end in a few dozen steps
    assert r.stats["steps"] < 80


@pytest.mark.dolfinx
def test_potential_front_gives_ohmic_current():
    """Uniform glass (D_f = D_n, surface fraction 1): j = sigma U / d with the Nernst-Einstein
    conductivity sigma = n e^2 D / (k_B T), once the dielectric relaxation (~1e-4 s) is over.

    The contact where theta_f = 1 is imposed carries a junction (Nernst) potential
    (k_B T / e) ln(1 / theta_f(0+)) of some 0.1 V while little foreign has entered; U = 100 V
    makes that a 0.1 % effect, so the 1 % criterion tests the bulk ohmic response."""
    D, U = 1e-17, 100.0
    exp = cf.Experiment(
        glass=_glass(),
        species=(cf.Species("Li", "native", cf.ConstantD(D_m2_s=D)),
                 cf.Species("K", "foreign", cf.ConstantD(D_m2_s=D))),
        front=cf.PotentialFront(U_V=U, surface_fraction=1.0),
        run=cf.RunSettings(t_end_s=10.0),
    )
    r = cf.simulate(exp)
    sigma = N_BG * sc.e**2 * D / (sc.k * T)
    expected = sigma * U / THICKNESS
    assert r.current_density_A_m2[-1] == approx(expected, rel=1e-2)
    # charge passed is the time integral of the current (trapezoid over the steps)
    q_trap = np.trapezoid(r.current_density_A_m2, r.time_s)
    assert r.charge_C_m2[-1] == approx(q_trap, rel=2e-2)


@pytest.mark.dolfinx
def test_foreign_ions_conserved(k_result):
    r = k_result
    assert r.influx_integral_m2[-1] > 1e20
    rel = np.max(np.abs(r.foreign_inside_m2 - r.influx_integral_m2)) / r.influx_integral_m2[-1]
    assert rel < 1e-6
    # the BDF-integrated influx agrees with the trapezoid rule to time-discretisation accuracy
    flux = np.gradient(r.influx_integral_m2, r.time_s)
    assert np.trapezoid(flux, r.time_s) == approx(r.influx_integral_m2[-1], rel=1e-3)


@pytest.mark.dolfinx
def test_electroneutral_outside_first_nanometre(k_result):
    r = k_result
    excess = r.excess_charge[-1]
    beyond = r.depth_m > 1e-9
    assert np.max(np.abs(excess[beyond])) < 1e-3
    assert r.summary()["max_excess_charge_beyond_1nm"] < 1e-3


@pytest.mark.dolfinx
def test_profiles_stay_in_unit_interval(k_result, slow_result):
    """No over- or undershoot at the sharp drift-dominated fronts (exponential fitting).

    The ideal NPP model has no site exclusion: inside the surface Debye layer (~0.03 nm)
    that carries the field of the landed charge, theta_foreign may exceed 1 (for the slow
    ion by ~10 %, as Gauss's law demands); beyond the first nanometre it may not."""
    assert k_result.theta.min() > -1e-9
    assert k_result.theta.max() < 1.0 + 1e-9
    beyond = slow_result.depth_m > 1e-9
    assert slow_result.theta.min() > -1e-9
    assert slow_result.theta[:, :, beyond].max() < 1.0 + 1e-9


@pytest.mark.dolfinx
def test_plateau_is_a_ramp_lower_for_slower_foreign_ion(k_result, slow_result):
    levels = []
    for r in (k_result, slow_result):
        depth, th = r.depth_m, r.theta[-1]
        m = r.metrics()
        x50 = m["x50_m"]
        assert 50e-9 < x50 < 200e-9
        assert 0.02 < m["plateau_native"] < 0.5  # native ions stay behind the front
        near, deep = np.interp([0.1 * x50, 0.8 * x50], depth, th[0])
        assert near < deep  # slowly rising ramp towards the front
        levels.append(m["plateau_native"])
    assert levels[1] < levels[0]


@pytest.mark.dolfinx
@pytest.mark.parametrize("which", ["k", "slow"])
def test_front_matches_buckley_leverett(which, k_result, slow_result):
    r, D_f = (k_result, D_K) if which == "k" else (slow_result, D_SLOW)
    landed_m = r.foreign_inside_m2[-1] / N_BG
    wf = buckley_leverett.welge_front(lambda th: SED.diffusivity_m2_s(th, T), D_f, landed_m)
    x_front = r.metrics()["front_position_m"]
    assert x_front == approx(wf.front_position_m, rel=0.02)
    # behind the front the ramp is the Buckley-Leverett rarefaction x(theta) = q F'(s)
    D_n = lambda th: SED.diffusivity_m2_s(th, T)  # noqa: E731
    dD_n = lambda th: SED.dD_dtheta_m2_s(th, T)  # noqa: E731
    th_grid = np.linspace(1e-3, wf.theta_star, 400)
    x_bl = buckley_leverett.profile(th_grid, D_n, dD_n, D_f, landed_m, wf.theta_star)
    for frac in (0.2, 0.5, 0.8):
        x = frac * wf.front_position_m
        simulated = np.interp(x, r.depth_m, r.theta[-1, 0])
        assert simulated == approx(np.interp(x, x_bl, th_grid), abs=0.01), frac


@pytest.mark.dolfinx
def test_discharge_electrode_tends_to_reversible_and_limits_current():
    """J.n = k (n - n_bg) at the back: fast kinetics (k = 1e-3 m/s) behave like the
    reversible electrode; slow kinetics make the back electrode a bottleneck."""
    def run(back):
        exp = cf.Experiment(
            glass=_glass(), back=back,
            species=(cf.Species("Li", "native", SED), cf.Species("K", "foreign", cf.ConstantD(D_m2_s=D_K))),
            front=cf.Beam(current_density_A_m2=1e-2, E_kin_eV=10.0, sigma_E_eV=0.5),
            run=cf.RunSettings(t_end_s=100.0))
        return cf.simulate(exp)

    reversible = run(cf.BackElectrode())
    fast = run(cf.BackElectrode(native="discharge", discharge_rate_m_s=1e-3))
    slow = run(cf.BackElectrode(native="discharge", discharge_rate_m_s=1e-14))
    assert fast.current_density_A_m2[-1] == approx(reversible.current_density_A_m2[-1], rel=1e-4)
    assert slow.current_density_A_m2[-1] < 0.5 * reversible.current_density_A_m2[-1]
    # the native ions piling up at a slow electrode carry the discharge flux k (n - n_bg)
    n_back = slow.theta[-1, 0, -1] * N_BG
    j_kinetic = sc.e * 1e-14 * (n_back - N_BG)
    assert slow.current_density_A_m2[-1] == approx(j_kinetic, rel=0.02)


@pytest.mark.dolfinx
def test_thermodynamic_flux_option():
    """flux = "thermodynamic" (docs/model.md sections 2 and 3.7): the SED chemical potential adds a
    thermodynamic factor (~20 in the bulk) to the native diffusion term. Diffusion-free
    displacement does not see it, so the front still sits where Buckley-Leverett puts it;
    the front is wider than with the ideal flux, and the profiles stay in [0, 1]."""
    ideal = _beam_experiment(D_K)
    exp = cf.Experiment(glass=ideal.glass, species=ideal.species, front=ideal.front, run=ideal.run,
                        flux="thermodynamic")
    r = cf.simulate(exp)
    landed_m = r.foreign_inside_m2[-1] / N_BG
    wf = buckley_leverett.welge_front(lambda th: SED.diffusivity_m2_s(th, T), D_K, landed_m)
    m = r.metrics()
    assert m["front_position_m"] == approx(wf.front_position_m, rel=0.02)
    assert m["front_width_m"] > 1.5 * cf.simulate(ideal).metrics()["front_width_m"]
    assert r.theta.min() > -1e-9 and r.theta.max() < 1.0 + 1e-9
    assert r.conservation_error < 1e-6


def test_thermodynamic_factor_of_the_sed():
    """Gamma = (theta/kT) dE_F/dtheta from the Gaussian SED, against a finite difference of
    the Fermi level E_F = sigma Phi^-1(theta p_b) (the chemical potential at T -> 0)."""
    from scipy.special import ndtri

    from cait_fem.physics.sed import kT_eV, sigma_eV

    params = SED.nondim_parameters(T, 1e-17)
    theta, eps = np.array([0.05, 0.3, 0.8, 1.0]), 1e-6
    E_F = lambda th: sigma_eV(0.25) * ndtri(th * 0.9)  # noqa: E731
    expected = theta * (E_F(theta + eps) - E_F(theta - eps)) / (2 * eps) / kT_eV(T)
    assert np.allclose(SED.thermodynamic_factor(theta, params), expected, rtol=1e-7)
    assert cf.ConstantD(D_m2_s=1e-20).thermodynamic_factor(theta, {}) == approx(1.0)


@pytest.mark.dolfinx
def test_warns_when_the_front_leaves_the_fine_mesh():
    exp = _beam_experiment(D_K, t_end_s=3000.0)
    shallow = cf.Experiment(glass=exp.glass, species=exp.species, front=exp.front, run=exp.run,
                            mesh=cf.MeshSettings(fine_depth_m=10e-9))
    with pytest.warns(UserWarning, match="mesh.fine_depth_m"):
        r = cf.simulate(shallow)
    assert r.stats["warnings"]
