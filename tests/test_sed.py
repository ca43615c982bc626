"""cait_fem.physics.sed: Gaussian site energy distribution, populated part and ionic Fermi level."""

import math

import numpy as np
import pytest
from scipy import constants, integrate, special
from support.compare import approx

from cait_fem.physics import sed

FWHM = 0.25  # eV
SIGMA = FWHM / (2.0 * math.sqrt(2.0 * math.log(2.0)))
N_S = 1.41e28 / 0.9


def _kT(temperature_K):
    return constants.k * temperature_K / constants.e


def _fd_occupancy_by_quad(E_F, temperature_K):
    """p = int g(E)/N_s / (1 + exp((E - E_F)/kT)) dE by adaptive quadrature, split where
    the integrand changes character (the SED centre, the Fermi level)."""
    kT = _kT(temperature_K)

    def integrand(E):
        density = math.exp(-0.5 * (E / SIGMA) ** 2) / (SIGMA * math.sqrt(2 * math.pi))
        return density * special.expit((E_F - E) / kT)

    edges = sorted({-12 * SIGMA, min(E_F, 0.0), max(E_F, 0.0), 12 * SIGMA + max(E_F, 0.0)})
    return sum(integrate.quad(integrand, a, b, epsabs=0, epsrel=1e-13, limit=200)[0]
               for a, b in zip(edges, edges[1:]))


def test_sigma_from_fwhm_gives_half_maximum_at_half_width():
    E = np.array([0.0, FWHM / 2, -FWHM / 2])
    g = sed.sed_density(E, FWHM, N_S)
    assert sed.sigma_eV(FWHM) == approx(SIGMA, rel=1e-15)
    assert g[1] / g[0] == approx(0.5, rel=1e-13) and g[2] / g[0] == approx(0.5, rel=1e-13)


def test_sed_is_normalised_to_the_site_density():
    E = np.linspace(-2.0, 2.0, 40001)
    assert np.trapezoid(sed.sed_density(E, FWHM, N_S, E0_eV=0.1), E) == approx(N_S, rel=1e-10)
    assert sed.site_density_m3(1.41e28, 0.1) == approx(N_S)


def test_zero_temperature_fermi_level_holds_fraction_p_of_the_sites_below_it():
    for p in (1e-6, 0.05, 0.5, 0.9, 0.999):
        E_F = sed.fermi_level_eV(p, FWHM, E0_eV=-0.2)
        below = integrate.quad(lambda E: sed.sed_density(E, FWHM, 1.0, E0_eV=-0.2), -3.0, E_F,
                               epsabs=0, epsrel=1e-12)[0]
        assert below == approx(p, rel=1e-9)


@pytest.mark.parametrize("temperature_K", [300.0, 600.0, 1500.0])
def test_fermi_dirac_level_reproduces_the_occupancy_integral(temperature_K):
    for p in (1e-8, 0.02, 0.3, 0.5, 0.9, 1 - 1e-6):
        E_F = float(sed.fermi_level_eV(p, FWHM, "fermi-dirac", temperature_K))
        if p < 0.5:
            assert _fd_occupancy_by_quad(E_F, temperature_K) == approx(p, rel=1e-9)
        else:  # compare the empty fraction, where the precision is
            empty = 1.0 - _fd_occupancy_by_quad(E_F, temperature_K)
            assert empty == approx(1 - p, rel=1e-6, abs=1e-13)
        assert float(sed.occupancy(E_F, FWHM, "fermi-dirac", temperature_K)) == approx(p, rel=1e-12)


def test_fermi_dirac_approaches_zero_temperature_as_sommerfeld_predicts():
    """Sommerfeld: p(E_F) = Phi(mu) - (pi^2/6) tau^2 mu phi(mu) + O(tau^4), mu = E_F/sigma,
    tau = kT/sigma, so at fixed p E_F(FD) - E_F(T=0) = (pi^2/6) (kT)^2 E_F(T=0) / sigma^2."""
    p = np.array([0.05, 0.3, 0.7, 0.95])
    E0 = sed.fermi_level_eV(p, FWHM)
    previous = np.inf
    for temperature in (40.0, 20.0, 10.0):
        kT = _kT(temperature)
        shift = sed.fermi_level_eV(p, FWHM, "fermi-dirac", temperature) - E0
        assert np.allclose(shift, math.pi**2 / 6 * kT**2 * E0 / SIGMA**2, rtol=3e-3)
        assert np.max(np.abs(shift)) < previous
        previous = np.max(np.abs(shift))


@pytest.mark.parametrize("filling, temperature_K", [("zero-temperature", None), ("fermi-dirac", 300.0),
                                                    ("fermi-dirac", 50.0)])
def test_fermi_level_slope_is_the_exact_derivative(filling, temperature_K):
    p = np.array([1e-10, 1e-4, 0.05, 0.4, 0.6, 0.9, 0.999])
    h = 1e-6 * np.minimum(p, 1 - p)
    fd = (sed.fermi_level_eV(p + h, FWHM, filling, temperature_K)
          - sed.fermi_level_eV(p - h, FWHM, filling, temperature_K)) / (2 * h)
    assert np.allclose(sed.fermi_level_slope_eV(p, FWHM, filling, temperature_K), fd, rtol=1e-6)


@pytest.mark.parametrize("filling, temperature_K", [("zero-temperature", None), ("fermi-dirac", 300.0)])
def test_populated_sed_holds_p_n_s_ions(filling, temperature_K):
    E = np.linspace(-1.5, 1.5, 60001)
    for p in (0.15, 0.9):
        psed = sed.populated_sed(E, p, FWHM, N_S, filling, temperature_K)
        assert np.trapezoid(psed, E) == approx(p * N_S, rel=1e-3)  # a step: O(dE) error
        assert np.all(psed <= sed.sed_density(E, FWHM, N_S) * (1 + 1e-15))
    E_F = sed.fermi_level_eV(0.5, FWHM)
    above = sed.populated_sed(np.array([E_F + 1e-3, E_F + 0.3]), 0.5, FWHM, N_S)
    assert np.all(above == 0.0)


def test_activation_energy_is_E_DC_in_the_bulk_and_grows_as_the_glass_empties():
    theta = np.linspace(0.05, 1.0, 96)
    E_act = sed.activation_energy_eV(theta, FWHM, E_DC_eV=0.65)
    assert E_act[-1] == approx(0.65, abs=1e-15)
    assert np.all(np.diff(E_act) < 0)
    # docs/model.md section 8.1: E_act = E_DC - sigma (Phi^-1(theta (1 - v)) - Phi^-1(1 - v))
    assert np.allclose(E_act, 0.65 - SIGMA * (special.ndtri(0.9 * theta) - special.ndtri(0.9)), rtol=1e-13)
    # the paper (section 3.2): about 0.3 eV from the bulk value to a tenth of it
    rise = sed.activation_energy_eV(0.1, FWHM, 0.65) - 0.65
    assert 0.25 < rise < 0.35


def test_fermi_dirac_needs_a_temperature_and_fillings_are_checked():
    with pytest.raises(ValueError, match="temperature_K"):
        sed.fermi_level_eV(0.5, FWHM, "fermi-dirac")
    with pytest.raises(ValueError, match="filling"):
        sed.occupancy(0.0, FWHM, "boltzmann")
