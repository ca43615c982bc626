"""StateLayout (cait_fem.fem.state): the columns of the state and their conversions, and the
Physics part of a case. Pure numpy: no DOLFINx needed."""

import numpy as np
import pytest
from support.compare import approx

import cait_fem as cf
from cait_fem.case.structure import check_same_structure
from cait_fem.errors import ConfigError
from cait_fem.fem.scales import LENGTH_SCALE_M, Scales
from cait_fem.fem.state import StateLayout


def _layout():
    return StateLayout(("Li", "K", "Rb"), (1, 1, 2))


def test_indices_of_three_species():
    lay = _layout()
    assert lay.n_species == 3
    assert lay.native == 0
    assert lay.foreign == (1, 2)
    assert lay.psi == 3
    assert lay.block_size == 4
    assert lay.field_names == ["theta_Li", "theta_K", "theta_Rb", "phi_V"]
    rows = np.arange(8.0).reshape(2, 4)
    assert np.array_equal(rows[:, lay.foreign_slice], rows[:, [1, 2]])


def test_thetas_put_back_the_native_offset():
    lay = _layout()
    # node rows [w, theta_K, theta_Rb, psi]
    flat = np.array([-0.25, 0.2, 0.05, 3.0,
                     0.0, 0.0, 0.0, 0.0])
    th = lay.thetas(flat)
    assert th.shape == (3, 2)
    assert np.array_equal(th[:, 0], [0.75, 0.2, 0.05])
    assert np.array_equal(th[:, 1], [1.0, 0.0, 0.0])
    assert np.array_equal(lay.concentrations(flat), th.T)
    assert np.array_equal(lay.potential(flat), [3.0, 0.0])
    # a copy: changing it leaves the state alone
    th[0, 0] = 9.0
    assert flat[0] == -0.25


def test_state_rows_invert_thetas_and_potential():
    lay = _layout()
    rng = np.random.default_rng(1)
    rows = rng.uniform(-1.0, 1.0, size=(7, 4))
    back = lay.state_rows(lay.thetas(rows), lay.potential(rows))
    assert np.allclose(back, rows, rtol=0, atol=1e-15)
    # the stored native value is theta - 1: a pristine node is all zeros
    assert np.array_equal(lay.state_rows(np.array([[1.0], [0.0], [0.0]]), [0.0]), np.zeros((1, 4)))


def test_fields_in_physical_units():
    lay = StateLayout(("Li", "K"), (1, 1))
    f = lay.fields(np.array([[-0.5, 0.4, 2.0]]), potential_V=0.025)
    assert list(f) == ["theta_Li", "theta_K", "phi_V"]
    assert f["theta_Li"][0] == 0.5 and f["theta_K"][0] == 0.4 and f["phi_V"][0] == approx(0.05)


@pytest.mark.parametrize("bad", [np.zeros(5), np.zeros((2, 3)), np.zeros((2, 2, 4))])
def test_wrong_shapes_are_refused(bad):
    with pytest.raises(ValueError, match="4"):
        _layout().rows(bad)


@pytest.mark.parametrize("names, charges, word", [
    ((), (), "at least the native"),
    (("Li", "Li"), (1, 1), "unique"),
    (("Li", "K"), (1,), "one charge number per species"),
    (("Li", "K"), (1, 0), "positive integers"),
    (("Li", "K"), (1, 1.5), "positive integers"),
])
def test_bad_layouts_name_the_field(names, charges, word):
    with pytest.raises(ConfigError, match=word):
        StateLayout(names, charges)


def _experiment(**kw):
    glass = cf.Glass.preset("Li3B7O12", temperature_K=300.0, thickness_m=1e-6)
    li = cf.Species("Li", "native", cf.ConstantD(D_m2_s=1e-17))
    k = cf.Species("K", "foreign", cf.ConstantD(D_m2_s=1e-19))
    ca = cf.Species("Ca", "foreign", cf.ConstantD(D_m2_s=1e-20), charge_number=2)
    return cf.Experiment(glass=glass, species=(k, ca, li), front=cf.Beam(1e-2, 10.0, 0.5),
                         run=cf.RunSettings(t_end_s=1.0), **kw)


def test_layout_of_a_case_puts_the_native_species_first():
    exp = _experiment()
    lay = StateLayout.of(exp.physics)
    assert lay.species_names == ("Li", "K", "Ca")
    assert lay.charge_numbers == (1, 1, 2)
    assert StateLayout.of(exp) == lay


def test_physics_is_the_case_without_run_mesh_or_geometry():
    exp = _experiment(flux="ideal")
    phys = exp.physics
    assert isinstance(phys, cf.Physics)
    assert (phys.glass, phys.species, phys.front, phys.back, phys.flux) == (
        exp.glass, exp.species, exp.front, exp.back, exp.flux)
    for absent in ("run", "solver", "mesh", "geometry"):
        assert not hasattr(phys, absent)
    assert phys.native.name == "Li" and [s.name for s in phys.foreign] == ["K", "Ca"]
    assert phys.front_species_index == 1


def test_physics_validates_like_the_experiment():
    exp = _experiment()
    with pytest.raises(ConfigError, match="flux"):
        cf.Physics(exp.glass, exp.species, exp.front, flux="fancy")
    with pytest.raises(ConfigError, match="native"):
        cf.Physics(exp.glass, exp.foreign, exp.front)
    with pytest.raises(ConfigError, match="front.species"):
        cf.Physics(exp.glass, exp.species, cf.Beam(1e-2, 10.0, 0.5, species="Na"))


def test_structure_check_between_physics_and_experiment():
    exp = _experiment()
    other_value = cf.Physics(exp.glass, exp.species, cf.Beam(2e-2, 12.0, 0.5))
    check_same_structure(exp.physics, other_value)  # values only: allowed
    check_same_structure(exp, other_value)
    with pytest.raises(ConfigError, match="back"):
        check_same_structure(exp.physics, cf.Physics(exp.glass, exp.species, exp.front,
                                                     cf.BackElectrode("discharge", 1e-9)))


def test_scales_take_a_length():
    exp = _experiment()
    default, micro = Scales.of(exp.physics), Scales.of(exp.physics, 1e-6)
    assert default == Scales.of(exp) and default.length_m == LENGTH_SCALE_M == 1e-9
    assert micro.length_m == 1e-6
    # t = L^2 / D_ref and (lambda_D / L)^2: a 1000x longer unit, 1e6x longer time, 1e-6x Debye^2
    assert micro.time_s == approx(1e6 * default.time_s, rel=1e-14)
    assert micro.debye_squared == approx(1e-6 * default.debye_squared, rel=1e-14)
    assert micro.flux_m2_s == approx(default.flux_m2_s * 1e-3, rel=1e-14)
    with pytest.raises(ConfigError, match="length scale"):
        Scales.of(exp, 0.0)
