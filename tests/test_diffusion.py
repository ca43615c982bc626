"""cait_fem.physics.diffusion: the laws of docs/model.md section 3, their nondimensional form and config."""

import math

import numpy as np
import pytest
from scipy import constants, special
from support.compare import approx

from cait_fem.errors import ConfigError
from cait_fem.physics.diffusion import ArrheniusD, ConstantD, GaussianSED, TabulatedD, diffusion_law_from_dict, kT_eV
from cait_fem.physics.ops import NUMPY, ufl_ops

T = 300.0
SED = GaussianSED(fwhm_eV=0.25, vacancy_fraction=0.10, D_bulk_m2_s=1e-17)
SED_FD = SED.replace(filling="fermi-dirac")
TABLE = TabulatedD(theta=(0.1, 0.4, 1.0), D_m2_s=(1e-21, 1e-19, 1e-17))
LAWS = {
    "constant": ConstantD(D_m2_s=5.6e-21),
    "arrhenius": ArrheniusD(D0_m2_s=1e-3, E_a_eV=0.6),
    "sed": SED,
    "sed-fermi-dirac": SED_FD,
    "sed-arrhenius": GaussianSED(fwhm_eV=0.3, vacancy_fraction=0.05, D0_m2_s=1e-5, E_DC_eV=0.7),
    "tabulated": TABLE,
    "sed-immobile": SED.replace(mobile_fraction=0.85),
    "sed-fermi-dirac-immobile": SED_FD.replace(mobile_fraction=0.93),
}
# never a knot of TABLE, so every law is differentiable there
THETA = np.concatenate((np.geomspace(1e-3, 0.09, 15), np.linspace(0.13, 0.97, 23), [1.03]))


def test_kT_eV_is_k_over_e():
    assert kT_eV(300.0) == approx(0.025852, rel=2e-5)  # k/e = 8.617333e-5 eV/K


def test_sed_check_value_of_model_md():
    """FWHM 250 meV, v = 0.1, 300 K: D(0.2)/D(1) ~ 1e-4 (four orders of magnitude)."""
    ratio = SED.diffusivity_m2_s(0.2, T) / SED.diffusivity_m2_s(1.0, T)
    assert 5e-5 <= ratio <= 2e-4
    # by hand: sigma = FWHM / 2.3548, p = 0.18 and 0.9, D ratio = exp(sigma/kT (x(0.18) - x(0.9)))
    sigma = 0.25 / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    kT = constants.k * T / constants.e
    expected = math.exp(sigma / kT * (special.ndtri(0.18) - special.ndtri(0.9)))
    floor = 1e-12  # the default floor, added to D, relative to D_bulk
    assert ratio == approx((expected + floor) / (1.0 + floor), rel=1e-9)


@pytest.mark.parametrize("law", [SED, SED_FD], ids=["zero-temperature", "fermi-dirac"])
def test_sed_increases_with_theta(law):
    D = law.diffusivity_m2_s(np.linspace(1e-3, 1.05, 400), T)
    assert np.all(np.diff(D) > 0)


@pytest.mark.parametrize("name", list(LAWS))
def test_analytic_derivative_equals_central_difference(name):
    law = LAWS[name]
    h = 1e-6 * THETA
    fd = (law.diffusivity_m2_s(THETA + h, T) - law.diffusivity_m2_s(THETA - h, T)) / (2 * h)
    exact = law.dD_dtheta_m2_s(THETA, T)
    scale = np.maximum(np.abs(fd), 1e-30 * law.reference_m2_s(T))
    assert np.max(np.abs(exact - fd) / scale) < 1e-6


def test_fermi_dirac_tends_to_zero_temperature_filling():
    """The Fermi-Dirac Fermi level differs from the T -> 0 one by O((kT)^2 / sigma), so
    ln D = Delta E_F / kT differs by O(kT / sigma): halving T must halve the gap."""
    theta = np.linspace(0.3, 1.0, 36)
    gaps = []
    for temperature in (300.0, 150.0, 75.0, 37.5):
        zero = SED.replace(D_min_m2_s=1e-300)  # no floor in the way of tiny D at low T
        fd = zero.replace(filling="fermi-dirac")
        gaps.append(np.max(np.abs(np.log(fd.diffusivity_m2_s(theta, temperature))
                                  - np.log(zero.diffusivity_m2_s(theta, temperature)))))
    assert all(0.4 < b / a < 0.6 for a, b in zip(gaps, gaps[1:]))
    assert gaps[-1] < 0.1


def test_tabulated_knots_extension_and_log_linearity():
    knots, values = np.array(TABLE.theta), np.array(TABLE.D_m2_s)
    floor = TABLE.floor_m2_s(T)
    assert np.allclose(TABLE.diffusivity_m2_s(knots, T) - floor, values, rtol=1e-13)
    assert np.allclose(TABLE.diffusivity_m2_s([-1.0, 0.0, 0.05], T) - floor, 1e-21, rtol=1e-13)
    assert np.allclose(TABLE.diffusivity_m2_s([1.0, 1.5, 7.0], T) - floor, 1e-17, rtol=1e-13)
    # halfway between knots in theta: the geometric mean of the two D values
    assert TABLE.diffusivity_m2_s(0.25, T) - floor == approx(1e-20, rel=1e-12)
    assert TABLE.diffusivity_m2_s(0.7, T) - floor == approx(1e-18, rel=1e-12)


def test_floor_is_additive_and_defaults_to_1e_12_of_the_reference():
    assert SED.floor_m2_s(T) == approx(1e-29)
    # theta = 1e-18 (occupancy clamped at 1e-20): the SED part is ~1e-35 m^2/s, D is the floor (at theta = 1e-9 the SED
    # part, 1e-30, still adds 10 %)
    assert SED.diffusivity_m2_s(1e-18, T) == approx(1e-29, rel=1e-5)
    assert SED.diffusivity_m2_s(1e-9, T) > 1.05e-29
    custom = ConstantD(D_m2_s=2e-20, D_min_m2_s=1e-25)
    assert custom.diffusivity_m2_s(0.5, T) == 2e-20 + 1e-25
    arrhenius = LAWS["arrhenius"]
    assert arrhenius.reference_m2_s(T) == approx(1e-3 * math.exp(-0.6 / (constants.k * T / constants.e)))
    assert TABLE.reference_m2_s(T) == 1e-17


@pytest.mark.parametrize("name", [n for n in LAWS if "fermi-dirac" not in n])
def test_relative_with_numpy_ops_equals_diffusivity_over_D_ref(name):
    law, D_ref = LAWS[name], 3e-18
    theta = np.concatenate((THETA, [0.1, 0.4, 1.0, 1.2]))
    relative = law.relative(theta, law.nondim_parameters(T, D_ref), NUMPY)
    assert np.allclose(relative * D_ref, law.diffusivity_m2_s(theta, T), rtol=1e-12, atol=0)


def test_fermi_dirac_table_follows_the_exact_law():
    """The UFL form of the Fermi-Dirac SED is a 120-knot log-linear table: ~1 % in D."""
    theta = np.concatenate((np.geomspace(1e-6, 0.05, 50), np.linspace(0.05, 1.08, 200)))
    table = SED_FD.relative(theta, SED_FD.nondim_parameters(T, 1e-17)) * 1e-17
    assert np.max(np.abs(np.log(table / SED_FD.diffusivity_m2_s(theta, T)))) < 0.015


@pytest.mark.parametrize("name", list(LAWS))
def test_relative_is_finite_and_positive_for_any_theta(name):
    law = LAWS[name]
    theta = np.array([-1e3, -1.0, -1e-3, 0.0, 1e-30, 0.5, 1.0, 1.1, 1.2, 5.0, 1e3])
    with np.errstate(all="raise"):
        values = law.relative(theta, law.nondim_parameters(T, law.reference_m2_s(T)), NUMPY)
    assert np.all(np.isfinite(values)) and np.all(values > 0)


def test_nondim_keys_are_fixed_per_instance():
    for law, changes in ((SED, {"fwhm_eV": 0.3, "D_bulk_m2_s": 3e-17}), (SED_FD, {"fwhm_eV": 0.2}),
                         (TABLE, {"D_m2_s": (1e-22, 1e-20, 1e-18)}), (LAWS["constant"], {"D_m2_s": 1e-19})):
        keys = set(law.nondim_parameters(T, 1e-17))
        assert set(law.nondim_parameters(350.0, 2e-17)) == keys
        assert set(law.replace(**changes).nondim_parameters(T, 1e-17)) == keys
    assert set(SED.nondim_parameters(T, 1e-17)) == {"log_D_bulk", "s", "p_bulk", "x_bulk", "D_floor"}
    assert len(SED_FD.nondim_parameters(T, 1e-17)) == 1 + 3 * 119 + 1


@pytest.mark.dolfinx
@pytest.mark.parametrize("name", list(LAWS))
def test_relative_builds_a_ufl_expression_with_the_exact_derivative(name):
    """Evaluated without DOLFINx: theta is the spatial coordinate of a UFL mesh, the
    parameters are UFL Constants given values through the evaluation mapping."""
    basix_ufl = pytest.importorskip("basix.ufl")
    import ufl
    from ufl.algorithms import expand_derivatives

    law, D_ref = LAWS[name], 1e-17
    mesh = ufl.Mesh(basix_ufl.element("Lagrange", "interval", 1, shape=(1,)))
    params = law.nondim_parameters(T, D_ref)
    consts = {key: ufl.Constant(mesh) for key in params}
    mapping = {consts[key]: value for key, value in params.items()}
    theta = ufl.variable(ufl.SpatialCoordinate(mesh)[0])
    expr = law.relative(theta, consts, ufl_ops())
    assert isinstance(expr, ufl.core.expr.Expr)
    slope = expand_derivatives(ufl.diff(expr, theta))
    # The forms use Acklam's Phi^-1 without refinement (1.15e-9 relative, cait_fem.physics.ops):
    # D agrees with the exact law to ~1e-8, its UFL derivative to ~1e-7.
    for value in (0.05, 0.3, 0.77, 1.0):
        assert expr((value,), mapping) == approx(law.relative(value, params), rel=5e-8)
        if "fermi-dirac" not in name:  # its UFL form is the table, checked above
            exact = law.dD_dtheta_m2_s(value, T) / D_ref
            assert slope((value,), mapping) == approx(exact, rel=1e-6, abs=1e-300)


@pytest.mark.parametrize("name", list(LAWS))
def test_to_dict_round_trips(name):
    law = LAWS[name]
    again = diffusion_law_from_dict(law.to_dict(), "species.X.diffusion")
    assert again == law and again.to_dict() == law.to_dict()


def test_to_dict_uses_toml_keys():
    assert SED.to_dict() == {"model": "sed", "fwhm_eV": 0.25, "vacancy_fraction": 0.10,
                             "D_bulk_m2_s": 1e-17, "filling": "zero-temperature"}
    assert TABLE.to_dict()["theta"] == [0.1, 0.4, 1.0]


def test_replace_validates_again_and_keeps_the_config_path():
    table = {"model": "sed", "fwhm_eV": 0.25, "D_bulk_m2_s": 1e-17}
    law = diffusion_law_from_dict(table, "species.Li.diffusion")
    with pytest.raises(ConfigError, match=r"species\.Li\.diffusion\.fwhm_eV = -0\.1 is not allowed"):
        law.replace(fwhm_eV=-0.1)


W = "species.Li.diffusion"
BAD = [
    (3, rf"^{W} = 3 is not allowed: a table"),
    ({"D_m2_s": 1e-20},
     rf"{W}\.model = None is not allowed: one of \"constant\", \"arrhenius\", \"sed\", \"tabulated\""),
    ({"model": "linear"}, rf"{W}\.model = 'linear' is not allowed: one of \"constant\", \"arrhenius\""),
    ({"model": "constant", "D_m2_s": 1e-20, "D": 1},
     rf"{W}\.D = 1 is not allowed: not a key of model \"constant\""),
    ({"model": "constant"}, rf"{W}\.D_m2_s = None is not allowed: required"),
    ({"model": "constant", "D_m2_s": 0.0}, rf"{W}\.D_m2_s = 0\.0 is not allowed: must be a finite number > 0"),
    ({"model": "constant", "D_m2_s": -1e-20}, rf"{W}\.D_m2_s = -1e-20 is not allowed"),
    ({"model": "constant", "D_m2_s": "1e-20"}, rf"{W}\.D_m2_s = '1e-20' is not allowed"),
    ({"model": "constant", "D_m2_s": True}, rf"{W}\.D_m2_s = True is not allowed"),
    ({"model": "constant", "D_m2_s": math.inf}, rf"{W}\.D_m2_s = inf is not allowed"),
    ({"model": "constant", "D_m2_s": 1e-20, "D_min_m2_s": 0}, rf"{W}\.D_min_m2_s = 0 is not allowed"),
    ({"model": "arrhenius", "D0_m2_s": 1e-3}, rf"{W}\.E_a_eV = None is not allowed: required"),
    ({"model": "arrhenius", "D0_m2_s": 0, "E_a_eV": 0.5}, rf"{W}\.D0_m2_s = 0 is not allowed"),
    ({"model": "arrhenius", "D0_m2_s": 1e-3, "E_a_eV": -0.1}, rf"{W}\.E_a_eV = -0\.1 is not allowed: .*>= 0"),
    ({"model": "sed", "D_bulk_m2_s": 1e-17}, rf"{W}\.fwhm_eV = None is not allowed: required"),
    ({"model": "sed", "fwhm_eV": 0.0, "D_bulk_m2_s": 1e-17}, rf"{W}\.fwhm_eV = 0\.0 is not allowed"),
    ({"model": "sed", "fwhm_eV": 0.25, "vacancy_fraction": 0.0, "D_bulk_m2_s": 1e-17},
     rf"{W}\.vacancy_fraction = 0\.0 is not allowed: must lie in \(0, 1\)"),
    ({"model": "sed", "fwhm_eV": 0.25, "vacancy_fraction": 1.0, "D_bulk_m2_s": 1e-17},
     rf"{W}\.vacancy_fraction = 1\.0 is not allowed"),
    ({"model": "sed", "fwhm_eV": 0.25, "vacancy_fraction": -0.1, "D_bulk_m2_s": 1e-17},
     rf"{W}\.vacancy_fraction = -0\.1 is not allowed"),
    ({"model": "sed", "fwhm_eV": 0.25, "D_bulk_m2_s": 1e-17, "filling": "boltzmann"},
     rf"{W}\.filling = 'boltzmann' is not allowed: \"zero-temperature\" or \"fermi-dirac\""),
    ({"model": "sed", "fwhm_eV": 0.25}, rf"{W}\.D0_m2_s = None is not allowed: .*D_bulk_m2_s"),
    ({"model": "sed", "fwhm_eV": 0.25, "D0_m2_s": 1e-5}, rf"{W}\.E_DC_eV = None is not allowed"),
    ({"model": "sed", "fwhm_eV": 0.25, "D_bulk_m2_s": 1e-17, "D0_m2_s": 1e-5, "E_DC_eV": 0.7},
     rf"{W}\.D0_m2_s = 1e-05 is not allowed: give either D_bulk_m2_s or both"),
    ({"model": "sed", "fwhm_eV": 0.25, "D_bulk_m2_s": -1e-17}, rf"{W}\.D_bulk_m2_s = -1e-17 is not allowed"),
    ({"model": "sed", "fwhm_eV": 0.25, "D_bulk_m2_s": 1e-17, "mobile_fraction": 0.0},
     rf"{W}\.mobile_fraction = 0\.0 is not allowed: a fraction in \(0, 1\]"),
    ({"model": "sed", "fwhm_eV": 0.25, "D_bulk_m2_s": 1e-17, "mobile_fraction": 1.2},
     rf"{W}\.mobile_fraction = 1\.2 is not allowed"),
    ({"model": "sed", "fwhm_eV": 0.25, "D_bulk_m2_s": 1e-17, "mobile_fraction": True},
     rf"{W}\.mobile_fraction = True is not allowed"),
    ({"model": "sed", "fwhm_eV": 0.25, "D_bulk_m2_s": 1e-17, "mobile_fraction": math.nan},
     rf"{W}\.mobile_fraction = nan is not allowed"),
    ({"model": "sed", "fwhm_eV": 0.25, "D_bulk_m2_s": 1e-17, "mobile_edge_width": 0.01},
     rf"{W}\.mobile_edge_width = 0\.01 is not allowed: only with mobile_fraction"),
    ({"model": "sed", "fwhm_eV": 0.25, "D_bulk_m2_s": 1e-17, "mobile_fraction": 0.9, "mobile_edge_width": 0.2},
     rf"{W}\.mobile_edge_width = 0\.2 is not allowed: a native fraction in \(0, 0\.1\]"),
    ({"model": "tabulated", "theta": 0.5, "D_m2_s": [1e-20, 1e-19]},
     rf"{W}\.theta = 0\.5 is not allowed: a list"),
    ({"model": "tabulated", "theta": [0.5], "D_m2_s": [1e-20]}, rf"{W}\.theta = \[0\.5\] is not allowed: .*two"),
    ({"model": "tabulated", "theta": [0.1, 0.5], "D_m2_s": [1e-20, 1e-19, 1e-18]},
     rf"{W}\.D_m2_s = \[1e-20, 1e-19, 1e-18\] is not allowed: one value per theta \(2\)"),
    ({"model": "tabulated", "theta": [0.5, 0.5], "D_m2_s": [1e-20, 1e-19]},
     rf"{W}\.theta = \[0\.5, 0\.5\] is not allowed: strictly increasing"),
    ({"model": "tabulated", "theta": [-0.1, 0.5], "D_m2_s": [1e-20, 1e-19]},
     rf"{W}\.theta = \[-0\.1, 0\.5\] is not"),
    ({"model": "tabulated", "theta": [0.1, 0.5], "D_m2_s": [0.0, 1e-19]},
     rf"{W}\.D_m2_s = \[0\.0, 1e-19\] is not"),
    ({"model": "tabulated", "theta": [0.1, "x"], "D_m2_s": [1e-20, 1e-19]},
     rf"{W}\.theta = \[0\.1, 'x'\] is not"),
]


@pytest.mark.parametrize("table, message", BAD, ids=[str(i) for i in range(len(BAD))])
def test_config_errors_name_field_and_value(table, message):
    with pytest.raises(ConfigError, match=message):
        diffusion_law_from_dict(table, W)


def test_sed_given_by_D0_and_E_DC_has_that_bulk_value():
    law = LAWS["sed-arrhenius"]
    expected = 1e-5 * math.exp(-0.7 / (constants.k * T / constants.e))
    assert law.reference_m2_s(T) == approx(expected, rel=1e-12)
    assert law.diffusivity_m2_s(1.0, T) == approx(expected * (1 + 1e-12), rel=1e-12)
