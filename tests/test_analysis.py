"""cait_fem.analysis.transport: paper eq. (3), Onsager / tracer (eqs. 8, 9), immobile and mobile PSED."""

import json
import math

import numpy as np
import pytest
from scipy import constants, special
from support import compare

from cait_fem.analysis import transport as analysis
from cait_fem.physics.diffusion import ConstantD, GaussianSED

T = 300.0  # K
N_BG = 1.41e28  # m^-3
PLATEAU, FRONT, W = 0.15, 100e-9, 2e-9  # -, m, m (tanh half-width)
DEPTH = np.linspace(0.0, 200e-9, 20001)  # 0.01 nm spacing


def approx(expected, rel=1e-12, abs=0.0):
    """``support.compare.approx`` (no hidden abs = 1e-12, which would pass any D [m^2/s]),
    tighter by default: these are closed forms evaluated two ways."""
    return compare.approx(expected, rel=rel, abs=abs)


def _eps(field_V_m, z=1):
    """Field in units of k_B T/(z e) per metre [1/m]."""
    return z * constants.e * field_V_m / (constants.k * T)


def _tanh_front(depth=DEPTH):
    native = PLATEAU + (1 - PLATEAU) * 0.5 * (1 + np.tanh((depth - FRONT) / W))
    return native, 1.0 - native


# --- eq. (3) -----------------------------------------------------------------------------
@pytest.mark.parametrize("z", [1, 2])
def test_eq3_recovers_consistent_synthetic_state(z):
    """Choose the zone states and both fields, get D_f from current continuity (i) and the
    front gradient from (ii) + (iii); eq. (3) must invert that exactly."""
    n_B, n_D = N_BG, 0.15 * N_BG
    D_B, D_F, D_D = 1e-17, 2e-19, 1e-21
    field_B = 2.0e3  # V/m
    eps_B = _eps(field_B, z)
    eps_D = 300.0 * eps_B
    D_f = (D_B * n_B * eps_B / eps_D - D_D * n_D) / (n_B - n_D)          # (i)
    eps_F = 0.5 * (eps_B + eps_D)                                           # (iii)
    grad = 0.5 * (n_B + n_D) * eps_F - D_B * n_B * eps_B / D_F              # (ii)
    assert D_f > 0 and grad > 0  # a physical state: positive D_f, native rising into the bulk
    got = analysis.eq3_foreign_diffusivity_m2_s(n_B, n_D, D_B, D_F, D_D, grad, field_B, T, z)
    assert got == approx(D_f, rel=1e-12)


def test_eq3_matches_paper_print_with_potential_gradient():
    """The printed eq. (3) with E^B = (z e / k_B T) dphi/dx = -eps_B gives the same value."""
    n_B, n_D, D_B, D_F, D_D, grad, field = N_BG, 0.07 * N_BG, 3e-17, 1e-18, 1e-22, 1e36, 5e3
    E_paper = -_eps(field)
    printed = (D_B * (n_B + n_D) / (n_B - n_D)
               * n_B / (4 * D_B / D_F * n_B - 4 / E_paper * grad - (n_B + n_D))
               - D_D * n_D / (n_B - n_D))
    got = analysis.eq3_foreign_diffusivity_m2_s(n_B, n_D, D_B, D_F, D_D, grad, field, T)
    assert got == approx(printed, rel=1e-12)


def test_eq3_limit_complete_replacement_flat_front():
    """Limit: complete replacement (n_D = 0, so D_D must drop out), a flat front (dn/dx = 0)
    and the bulk D at the front (D_F = D_B). Independently of eq. (3): the front holds n_B/2
    native ions carrying the bulk current by migration with the bulk D, so eps_F = 2 eps_B;
    the mean-field rule (iii) gives eps_D = 3 eps_B; the zone holds n_B foreign ions only,
    so D_f n_B 3 eps_B = D_B n_B eps_B, i.e. D_f = D_B / 3."""
    D_B = 1e-17
    for D_D in (0.0, 1e-15):
        got = analysis.eq3_foreign_diffusivity_m2_s(N_BG, 0.0, D_B, D_B, D_D, 0.0, 1e3, T)
        assert got == approx(D_B / 3, rel=1e-12)


@pytest.mark.parametrize("n_zone", [N_BG, 1.2 * N_BG, -1.0])
def test_eq3_rejects_zone_not_depleted(n_zone):
    with pytest.raises(ValueError, match="n_zone < n_bulk"):
        analysis.eq3_foreign_diffusivity_m2_s(N_BG, n_zone, 1e-17, 1e-18, 1e-20, 1e35, 1e3, T)


def test_eq3_rejects_nonpositive_denominator():
    # 4 n_B + 4 g/eps_B - n_B < 0 for g = -n_B eps_B (D_F = D_B, n_D = 0)
    field = 1e3
    grad = -N_BG * _eps(field)
    with pytest.raises(ValueError, match="denominator"):
        analysis.eq3_foreign_diffusivity_m2_s(N_BG, 0.0, 1e-17, 1e-17, 0.0, grad, field, T)
    with pytest.raises(ValueError, match="bulk field"):
        analysis.eq3_foreign_diffusivity_m2_s(N_BG, 0.0, 1e-17, 1e-17, 0.0, 1e35, 0.0, T)


def test_eq3_from_profile_on_tanh_front():
    law = GaussianSED(fwhm_eV=0.25, vacancy_fraction=0.10, D_bulk_m2_s=1e-17)
    j = 1e-2  # A/m^2
    native, foreign = _tanh_front()
    out = analysis.eq3_from_profile(DEPTH, native, foreign, law, T, N_BG, j)

    width = 2 * W * math.atanh(0.8)  # 10-90 % of (1 + tanh u)/2: tanh u = -+0.8
    assert out["plateau"] == approx(PLATEAU, abs=1e-6)
    assert out["front_position_m"] == approx(FRONT, rel=1e-6)
    assert out["front_width_m"] == approx(width, rel=1e-4)
    central = 2 * W * math.atanh(0.2)  # 40-60 % of the rise
    assert out["grad_n_front_m4"] == approx(0.2 * (1 - PLATEAU) * N_BG / central, rel=1e-4)
    # ... which is within 2 % of the peak slope of the tanh, (1 - plateau) n_bg / (2 W)
    assert out["grad_n_front_m4"] == approx((1 - PLATEAU) * N_BG / (2 * W), rel=0.02)
    assert out["n_zone_m3"] == approx(PLATEAU * N_BG, rel=1e-5)

    # D(theta) = D_bulk exp(sigma (Phi^-1(p) - Phi^-1(p_b)) / kT) + floor (1e-12 D_bulk)
    sigma = 0.25 / (2 * math.sqrt(2 * math.log(2)))
    kT = constants.k * T / constants.e

    def D(theta):
        shift = sigma * (special.ndtri(0.9 * theta) - special.ndtri(0.9)) / kT
        return 1e-17 * math.exp(shift) + 1e-29

    assert out["D_bulk_m2_s"] == approx(D(1.0), rel=1e-10)
    assert out["D_front_m2_s"] == approx(D(0.5 * (PLATEAU + 1)), rel=1e-5)
    assert out["D_zone_m2_s"] == approx(D(PLATEAU), rel=1e-4)
    sigma_B = constants.e**2 * N_BG * D(1.0) / (constants.k * T)
    assert out["conductivity_bulk_S_m"] == approx(sigma_B, rel=1e-10)
    assert out["field_bulk_V_m"] == approx(j / sigma_B, rel=1e-10)
    out2 = analysis.eq3_from_profile(DEPTH, native, foreign, law, T, N_BG, j, charge_number=2)
    assert out2["field_bulk_V_m"] == approx(j / (4 * sigma_B), rel=1e-10)  # sigma ~ z^2
    direct = analysis.eq3_foreign_diffusivity_m2_s(
        N_BG, out["n_zone_m3"], out["D_bulk_m2_s"], out["D_front_m2_s"], out["D_zone_m2_s"],
        out["grad_n_front_m4"], out["field_bulk_V_m"], T)
    assert out["D_foreign_eq3_m2_s"] == approx(direct, rel=1e-14)
    assert out["D_foreign_eq3_m2_s"] > 0


def test_eq3_from_profile_without_front():
    flat = np.ones_like(DEPTH)
    with pytest.raises(ValueError, match="no replaced zone"):
        analysis.eq3_from_profile(DEPTH, flat, 0 * flat, ConstantD(D_m2_s=1e-17), T, N_BG, 1e-2)


# --- Onsager / tracer / Haven --------------------------------------------------------------
def test_onsager_tracer_haven():
    D, n = 1e-17, 1.41e28
    assert analysis.onsager_coefficient(D, n, T) == approx(D * n / (constants.k * T), rel=1e-14)
    assert analysis.onsager_coefficient(D, n, T) == approx(3.404e31, rel=1e-3)  # 1.41e11 / 4.142e-21
    assert analysis.tracer_diffusivity_m2_s(D) == 0.5e-17
    # D_CAIT = D_sigma = 2 D*  =>  H_R = 0.5
    assert analysis.haven_ratio(analysis.tracer_diffusivity_m2_s(D), D) == approx(0.5)


# --- immobile / mobile PSED ------------------------------------------------------------------
@pytest.mark.parametrize("filling", ["zero-temperature", "fermi-dirac"])
def test_psed_parts_integrals(filling):
    law = GaussianSED(fwhm_eV=0.25, vacancy_fraction=0.10, D_bulk_m2_s=1e-17, filling=filling)
    E = np.linspace(-2.0, 2.0, 400001)  # 1e-5 eV spacing
    parts = analysis.psed_parts(E, law, N_BG, PLATEAU, T)

    def integral(key):
        return np.trapezoid(parts[key], E)

    assert integral("sed_m3_eV") == approx(N_BG / 0.9, rel=1e-4)
    assert integral("populated_initial_m3_eV") == approx(N_BG, rel=1e-4)
    assert integral("mobile_m3_eV") / N_BG == approx(1 - PLATEAU, rel=1e-4)
    assert integral("immobile_m3_eV") / N_BG == approx(PLATEAU, rel=1e-4)
    np.testing.assert_allclose(parts["mobile_m3_eV"] + parts["immobile_m3_eV"],
                               parts["populated_initial_m3_eV"], rtol=1e-12, atol=0)
    assert np.all(parts["mobile_m3_eV"] >= -1e-12 * parts["sed_m3_eV"].max())
    assert parts["mobile_fraction"] == approx(0.85) and parts["immobile_fraction"] == PLATEAU
    assert parts["fermi_level_plateau_eV"] < parts["fermi_level_bulk_eV"]
    if filling == "zero-temperature":
        sigma = 0.25 / (2 * math.sqrt(2 * math.log(2)))
        assert parts["fermi_level_bulk_eV"] == approx(sigma * special.ndtri(0.9), rel=1e-12)
        assert parts["fermi_level_plateau_eV"] == approx(sigma * special.ndtri(0.135), rel=1e-12)
        outside = (E < parts["fermi_level_plateau_eV"]) | (E > parts["fermi_level_bulk_eV"])
        assert np.all(parts["mobile_m3_eV"][outside] == 0.0)


# --- summary -------------------------------------------------------------------------------------
def test_transport_summary():
    law = ConstantD(D_m2_s=1e-17)
    native, foreign = _tanh_front()
    D_used = 2e-20
    s = analysis.transport_summary(DEPTH, native, foreign, law, D_used, T, N_BG, 1e-2,
                                   tracer_D_m2_s=4e-18)
    json.dumps(s)  # JSON-ready
    D_B = 1e-17 * (1 + 1e-12)  # the law's default floor, 1e-12 D, is part of D
    eq3 = s["eq3"]["D_foreign_eq3_m2_s"]
    assert s["eq3_relative_deviation"] == approx(eq3 / D_used - 1, rel=1e-12)
    kT = constants.k * T
    assert s["onsager_native_bulk_per_J_m_s"] == approx(D_B * N_BG / kT)
    assert s["onsager_foreign_zone_per_J_m_s"] == approx(
        D_used * N_BG * (1 - PLATEAU) / kT, rel=1e-5)
    assert s["tracer_native_bulk_estimate_m2_s"] == approx(D_B / 2)
    assert s["tracer_foreign_estimate_m2_s"] == approx(1e-20)
    assert s["haven_ratio_native"] == approx(4e-18 / D_B)
    assert s["immobile_fraction"] == approx(PLATEAU, abs=1e-6)
    assert s["mobile_fraction"] == approx(1 - PLATEAU, abs=1e-6)
    assert analysis.transport_summary(DEPTH, native, foreign, law, D_used, T, N_BG,
                                      1e-2)["haven_ratio_native"] is None
