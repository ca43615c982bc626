"""Sequential experiments (docs/model.md section 5): double CAIT, Rb+ @ K+ @ Li3B7O12, starts
from the final state of the K+ experiment; and the front species selection."""

import numpy as np
import pytest
from support.compare import approx

import cait_fem as cf

SED = cf.GaussianSED(fwhm_eV=0.25, vacancy_fraction=0.10, D_bulk_m2_s=1e-17)
GLASS = cf.Glass(n_bg_m3=1.41e28, eps_r=8.0, temperature_K=300.0, thickness_m=1e-3)
BEAM = dict(current_density_A_m2=1e-2, E_kin_eV=10.0, sigma_E_eV=0.5)
LI = cf.Species("Li", "native", SED)
K = cf.Species("K", "foreign", cf.ConstantD(D_m2_s=5.6e-21))
RB = cf.Species("Rb", "foreign", cf.ConstantD(D_m2_s=2e-21))
# One explicit mesh for both experiments, so that the state is handed over node by node
# (each experiment's default depth rule would give each its own mesh, and the hand-over
# would interpolate: docs/model.md section 5)
MESH = cf.MeshSettings(front_spacing_m=0.2e-9, fine_depth_m=300e-9, estimate_spatial_error=False)


@pytest.fixture(scope="module")
def first():
    return cf.simulate(cf.Experiment(glass=GLASS, species=(LI, K), front=cf.Beam(**BEAM),
                                     run=cf.RunSettings(t_end_s=5000.0), mesh=MESH))


@pytest.fixture(scope="module")
def second(first):
    exp = cf.Experiment(glass=GLASS, species=(LI, K, RB), front=cf.Beam(**BEAM, species="Rb"),
                        run=cf.RunSettings(t_end_s=5000.0), mesh=MESH)
    return cf.simulate(exp, initial=first)


@pytest.mark.dolfinx
def test_second_experiment_starts_where_the_first_ended(first, second):
    assert second.species_names == ("Li", "K", "Rb")
    k_before = first.foreign_inside_m2[-1]
    assert second.foreign_inside_m2[0] == approx(k_before, rel=1e-9)
    assert second.charge_C_m2[0] == 0.0


@pytest.mark.dolfinx
def test_only_rb_enters_and_everything_is_conserved(first, second):
    depth = second.depth_m
    k_after = np.trapezoid(second.theta[-1, 1], depth) * GLASS.n_bg_m3
    k_before = np.trapezoid(first.theta[-1, 1], first.depth_m) * GLASS.n_bg_m3
    assert k_after == approx(k_before, rel=1e-6)  # K+ neither enters nor leaves
    rb_inside = np.trapezoid(second.theta[-1, 2], depth) * GLASS.n_bg_m3
    assert rb_inside == approx(second.influx_integral_m2[-1], rel=1e-6)
    assert second.conservation_error < 1e-6


@pytest.mark.dolfinx
def test_rb_pushes_the_k_zone_deeper(first, second):
    """The new foreign ion enters behind the old one: K+ is pushed ahead, Rb+ sits at the
    surface."""
    x50_k_first = first.metrics()["x50_m"]
    k, rb, depth = second.theta[-1, 1], second.theta[-1, 2], second.depth_m
    k_centre = np.trapezoid(depth * k, depth) / np.trapezoid(k, depth)
    rb_centre = np.trapezoid(depth * rb, depth) / np.trapezoid(rb, depth)
    k_centre_first = np.trapezoid(depth * first.theta[-1, 1], depth) / np.trapezoid(first.theta[-1, 1], depth)
    assert rb_centre < k_centre
    assert k_centre > k_centre_first
    assert second.metrics()["x50_m"] > x50_k_first


def test_front_species_must_be_foreign():
    with pytest.raises(cf.ConfigError, match="front.species"):
        cf.Experiment(glass=GLASS, species=(LI, K), front=cf.Beam(**BEAM, species="Li"),
                      run=cf.RunSettings(t_end_s=1.0))


@pytest.mark.dolfinx
def test_initial_state_on_another_sample_is_refused(first):
    thin = cf.Glass(n_bg_m3=1.41e28, eps_r=8.0, temperature_K=300.0, thickness_m=0.5e-3)
    exp = cf.Experiment(glass=thin, species=(LI, K), front=cf.Beam(**BEAM), run=cf.RunSettings(t_end_s=1.0))
    with pytest.raises(cf.ConfigError, match="thickness"):
        cf.simulate(exp, initial=first)
