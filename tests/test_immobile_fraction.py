"""An immobile fraction of the native ions (docs/model.md section 3.10): the SED law's
``mobile_fraction``, its cut-off site energy, the flat-plateau bound of the Welge
construction, and the plateau the full solver leaves behind the front.

Expected values come from the Gaussian integral, the Buckley-Leverett construction and
conservation, never from earlier runs of the code.
"""

import dataclasses
import math

import numpy as np
import pytest
from scipy import integrate
from support.compare import approx

import cait_fem as cf
from cait_fem.analysis import buckley_leverett
from cait_fem.physics.diffusion import IMMOBILE_EDGE_WIDTH, GaussianSED
from cait_fem.physics.ops import NUMPY

T, N_BG = 300.0, 1.41e28
SED = GaussianSED(fwhm_eV=0.25, vacancy_fraction=0.10, D_bulk_m2_s=1e-17)
W = IMMOBILE_EDGE_WIDTH


def _sed_only(theta):
    return SED.diffusivity_m2_s(theta, T)


@pytest.mark.parametrize("mobile", [0.85, 0.93, 0.97])
def test_the_cutoff_energy_holds_the_immobile_ions(mobile):
    """Sites below E_c of the Gaussian SED hold 1 - mobile of the bulk native density."""
    law = SED.replace(mobile_fraction=mobile)
    sigma = 0.25 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    p_bulk = 0.9
    # the bulk Fermi level, from the Gaussian integral by bisection (independent of sed.py)
    occupied = lambda E: integrate.quad(  # noqa: E731
        lambda x: math.exp(-0.5 * (x / sigma) ** 2) / (sigma * math.sqrt(2 * math.pi)), -np.inf, E)[0]
    lo, hi = -1.0, 1.0
    for _ in range(80):
        mid = 0.5 * (lo + hi)
        lo, hi = (mid, hi) if occupied(mid) < p_bulk else (lo, mid)
    E_c = lo + law.cutoff_energy_eV(T)
    assert law.cutoff_energy_eV(T) < 0
    assert occupied(E_c) / p_bulk == approx(1.0 - mobile, rel=1e-7)


def test_without_cutoff_nothing_changes():
    theta = np.linspace(0.0, 1.1, 50)
    assert SED.cutoff_energy_eV(T) is None and SED.immobile_fraction == 0.0
    assert "theta_immobile" not in SED.nondim_parameters(T, 1e-17)
    assert np.array_equal(SED.relative_between(theta, (theta, theta), SED.nondim_parameters(T, 1e-17)),
                          SED.relative(theta, SED.nondim_parameters(T, 1e-17)))


def test_below_the_cutoff_only_the_floor_is_left_and_above_the_edge_the_sed():
    law = SED.replace(mobile_fraction=0.85)
    below = np.linspace(-0.1, 0.15, 30)
    assert np.all(law.diffusivity_m2_s(below, T) == law.floor_m2_s(T))
    above = np.linspace(0.15 + 5 * W, 1.05, 40)
    assert np.allclose(law.diffusivity_m2_s(above, T), _sed_only(above), rtol=1e-10, atol=0)
    # the edge rises monotonically from 0 to 1 within a few widths
    edge = np.linspace(0.15, 0.15 + 5 * W, 200)
    m = law.mobile_edge(edge, 0.15, W)
    assert m[0] == 0.0 and np.all(np.diff(m) > 0) and m[-1] > 1 - 1e-10


def test_the_edge_is_continuously_differentiable():
    """dD/dtheta is the derivative of D (central differences across the edge) and tends to
    0 from both sides of theta_imm: the exact Newton Jacobian stays continuous."""
    law = SED.replace(mobile_fraction=0.85)
    theta = 0.15 + W * np.array([0.05, 0.3, 0.7, 1.0, 1.5, 2.5, 4.0])
    h = 1e-7 * W
    fd = (law.diffusivity_m2_s(theta + h, T) - law.diffusivity_m2_s(theta - h, T)) / (2 * h)
    assert np.allclose(law.dD_dtheta_m2_s(theta, T), fd, rtol=1e-5, atol=0)
    near = law.dD_dtheta_m2_s(np.array([0.15 - 1e-9, 0.15 + 1e-9]), T)
    assert np.all(np.abs(near) < 1e-5 * law.dD_dtheta_m2_s(0.15 + W, T))  # linear in the distance


def test_the_flux_mobility_between_nodes_stops_at_a_frozen_node_and_is_second_order():
    law = SED.replace(mobile_fraction=0.85)
    params = law.nondim_parameters(T, 1e-17)
    floor = params["D_floor"]
    # one end frozen: only the floor, whatever the other end and the midpoint
    frozen = law.relative_between(0.5, (0.1499, 0.85), params, NUMPY)
    assert frozen == approx(floor, rel=1e-12)
    # equal ends: the law itself
    theta = np.linspace(0.16, 1.0, 9)
    assert np.allclose(law.relative_between(theta, (theta, theta), params, NUMPY),
                       law.relative(theta, params, NUMPY), rtol=1e-13, atol=0)
    # ends theta -+ h across the edge: the harmonic mean differs from m(theta) by O(h^2)
    mid = 0.15 + 1.5 * W
    errors = [abs(law.relative_between(mid, (mid - h, mid + h), params, NUMPY) - law.relative(mid, params, NUMPY))
              for h in (W / 4, W / 8, W / 16)]
    orders = np.log2(np.array(errors[:-1]) / np.array(errors[1:]))
    assert np.all(orders > 1.9), orders


def test_flat_plateau_bound_separates_a_piston_front_from_a_ramp():
    """Below the bound, Welge's tangent lands on the immobile level; above it, it does not."""
    law = SED.replace(mobile_fraction=0.93)
    bound = buckley_leverett.flat_plateau_bound_m2_s(_sed_only, 0.07)
    D_cut = lambda th: law.diffusivity_m2_s(th, T)  # noqa: E731
    assert buckley_leverett.welge_state(D_cut, 0.9 * bound) == approx(0.07, abs=2 * W)
    assert buckley_leverett.welge_state(D_cut, 1.1 * bound) > 0.07 + 0.01
    # the bound itself: theta D(theta) = D_f (theta - theta_imm) touches at one theta
    theta = np.linspace(0.0701, 1.0, 20000)
    assert np.min(theta * _sed_only(theta) / (theta - 0.07)) == approx(bound, rel=1e-4)


# -- the full solver ---------------------------------------------------------------------

def _experiment(mobile, D_foreign, t_end_s=30000.0):
    glass = cf.Glass(n_bg_m3=N_BG, eps_r=8.0, temperature_K=T, thickness_m=1e-3)
    species = (cf.Species("Li", "native", SED.replace(mobile_fraction=mobile)),
               cf.Species("K", "foreign", cf.ConstantD(D_m2_s=D_foreign)))
    return cf.Experiment(glass=glass, species=species, front=cf.Beam(1e-2, 10.0, 0.5),
                         run=cf.RunSettings(t_end_s=t_end_s, output_times_s=(t_end_s / 3, t_end_s)))


@pytest.fixture(scope="module")
def flat_result():
    """K+-like, 15 % immobile, D_foreign half the flat-plateau bound."""
    bound = buckley_leverett.flat_plateau_bound_m2_s(_sed_only, 0.15)
    return cf.simulate(_experiment(0.85, 0.5 * bound))


@pytest.mark.dolfinx
@pytest.mark.slow
def test_the_plateau_is_flat_at_the_immobile_level_and_time_independent(flat_result):
    r = flat_result
    for k, t in enumerate(r.output_times_s):
        m = r.metrics(t)
        x_front = m["front_position_m"]
        depths = np.array([0.02, 0.1, 0.3, 0.5, 0.7, 0.9]) * x_front
        plateau = np.interp(depths, r.depth_m, r.theta[k, 0])
        assert np.all(np.abs(plateau - 0.15) < 1e-3), (t, plateau)
    # the part of the plateau already there at t/3 has not moved since
    early = r.metrics(r.output_times_s[0])["front_position_m"]
    depths = np.linspace(0.05, 0.9, 12) * early
    change = np.interp(depths, r.depth_m, r.theta[1, 0]) - np.interp(depths, r.depth_m, r.theta[0, 0])
    assert np.max(np.abs(change)) < 2e-4


@pytest.mark.dolfinx
@pytest.mark.slow
def test_the_front_is_where_the_landed_ions_fill_the_mobile_part(flat_result):
    """Piston displacement: x_front = q / (1 - theta_imm), q the landed amount / n_bg."""
    r = flat_result
    landed_m = r.foreign_inside_m2[-1] / N_BG
    assert r.metrics()["front_position_m"] == approx(landed_m / 0.85, rel=0.02)


@pytest.mark.dolfinx
@pytest.mark.slow
def test_above_the_bound_the_ramp_follows_buckley_leverett():
    """D_foreign 3x the bound for 7 % immobile: mobile native ions stay behind the front
    in a ramp from theta_imm up to Welge's state, where Buckley-Leverett puts them."""
    bound = buckley_leverett.flat_plateau_bound_m2_s(_sed_only, 0.07)
    D_f = 3.0 * bound
    r = cf.simulate(dataclasses.replace(_experiment(0.93, D_f), run=cf.RunSettings(t_end_s=30000.0)))
    law = r.experiment.native.diffusion
    D_n = lambda th: law.diffusivity_m2_s(th, T)  # noqa: E731
    landed_m = r.foreign_inside_m2[-1] / N_BG
    wf = buckley_leverett.welge_front(D_n, D_f, landed_m)
    assert wf.theta_star > 0.07 + 0.02
    assert r.metrics()["front_position_m"] == approx(wf.front_position_m, rel=0.02)
    # away from the two jumps (plateau -> fan near 0.3 x_front, and the front), which
    # diffusion smears over a few nm
    depths = np.array([0.05, 0.15, 0.45, 0.6, 0.8]) * wf.front_position_m
    expected = buckley_leverett.displacement_profile(depths, D_n, D_f, landed_m)
    assert np.all(np.abs(expected[:2] - 0.07) < 3 * W)  # the surface keeps the immobile level
    assert np.all(expected[2:] > 0.07 + 0.02)  # mobile native ions in the fan
    simulated = np.interp(depths, r.depth_m, r.theta[-1, 0])
    assert np.allclose(simulated, expected, atol=5e-3), (simulated, expected)


def test_fig4_split_comes_from_the_cutoff_of_the_transport():
    """The mobile part of the populated SED holds f_m of the native ions, wherever the
    simulated plateau put the after-the-run split."""
    from cait_fem.analysis.transport import psed_parts
    from cait_fem.physics.sed import sigma_eV

    law = SED.replace(mobile_fraction=0.93)
    E = np.linspace(-6.0, 6.0, 24001) * sigma_eV(0.25)
    parts = psed_parts(E, law, N_BG, 0.2, T)  # a plateau argument that disagrees: ignored
    assert parts["split_from"] == "cut-off" and parts["immobile_fraction"] == approx(0.07, rel=1e-12)
    assert np.trapezoid(parts["mobile_m3_eV"], E) / N_BG == approx(0.93, rel=2e-3)
    assert parts["fermi_level_plateau_eV"] - parts["fermi_level_bulk_eV"] == approx(law.cutoff_energy_eV(T), rel=1e-12)
    plain = psed_parts(E, SED, N_BG, 0.2, T)
    assert plain["split_from"] == "plateau" and np.trapezoid(plain["mobile_m3_eV"], E) / N_BG == approx(0.8, rel=2e-3)


@pytest.mark.dolfinx
@pytest.mark.slow
def test_a_fit_recovers_each_experiments_mobile_fraction_with_one_shared_sed():
    """Two experiments on one SED, their immobile fractions 15 % and 10 %: the fit of
    ``species.Li.diffusion.mobile_fraction`` per experiment (not shared) from plateau
    targets finds both, from a common start of 0.92."""
    from support.experiments import SLAB_GLASS

    from cait_fem.case.case_file import experiment_to_dict
    from cait_fem.fit import fit_case_from_dict, run_fit

    def case(mobile):
        exp = cf.Experiment(glass=SLAB_GLASS, species=(cf.Species("Li", "native", SED.replace(mobile_fraction=mobile)),
                                                       cf.Species("K", "foreign", cf.ConstantD(D_m2_s=1e-21))),
                            front=cf.Beam(1e-2, 10.0, 0.5), run=cf.RunSettings(t_end_s=1500.0))
        return experiment_to_dict(exp)

    truth = {"A": 0.85, "B": 0.90}
    fit_case = fit_case_from_dict({
        "experiment": [{"name": n, "case": case(0.92), "targets": {"plateau": 1.0 - f},
                        "target_sigma": {"plateau": 2e-3}} for n, f in truth.items()],
        "fit": {"parameters": {"species.Li.diffusion.mobile_fraction": {"min": 0.75, "max": 0.99}}}})
    fit = run_fit(fit_case, quiet=True)
    for name, f in truth.items():
        estimate = fit.estimate("species.Li.diffusion.mobile_fraction", name)
        assert estimate.value == approx(f, abs=2e-3), name
        assert estimate.ci95[0] <= f <= estimate.ci95[1], name
