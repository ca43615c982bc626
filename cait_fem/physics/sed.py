"""Gaussian site energy distribution (SED) of the native ion, and its ionic Fermi level.

docs/model.md section 3.3. The SED has FWHM ``fwhm_eV`` (sigma = FWHM / (2 sqrt(2 ln 2))) and
centre ``E0_eV``; its site density is N_s = n_bg / (1 - v) with v the vacancy fraction, so
the bulk occupancy is p_b = 1 - v. The occupancy at native fraction theta = n / n_bg is
p = theta (1 - v). Energies are in eV, densities in m^-3.

Two fillings give the Fermi level E_F(p):

- ``"zero-temperature"`` (default): sites filled from the bottom, E_F = E0 + sigma Phi^-1(p).
- ``"fermi-dirac"``: p = int g(E) / N_s / (1 + exp((E - E_F)/kT)) dE at temperature T,
  computed by quadrature (below) and inverted by a safeguarded Newton iteration.

In the standardised variables z = (E - E0)/sigma, mu = (E_F - E0)/sigma, tau = kT/sigma,
the Fermi-Dirac occupancy is split at z = mu, where the occupation jumps as tau -> 0:

    p(mu) = Phi(mu) + tau int_0^inf expit(-w) [phi(mu + tau w) - phi(mu - tau w)] dw,

whose integrand is smooth for every tau (poles only at w = +-i pi), so Gauss-Legendre on
the interval that holds the integrand to exp(-42) of its peak is accurate to ~1e-15 from
tau -> 0 (the zero-temperature limit) to tau >> 1. p(-mu) = 1 - p(mu) gives mu > 0.
"""

from __future__ import annotations

import math

import numpy as np
from scipy import constants, special

__all__ = [
    "FILLINGS", "SIGMA_PER_FWHM", "kT_eV", "sigma_eV", "site_density_m3", "sed_density",
    "occupancy", "fermi_level_eV", "fermi_level_slope_eV", "fermi_shift_eV",
    "populated_sed", "activation_energy_eV",
]

FILLINGS = ("zero-temperature", "fermi-dirac")
SIGMA_PER_FWHM = 1.0 / (2.0 * math.sqrt(2.0 * math.log(2.0)))


def kT_eV(temperature_K):
    """Thermal energy k_B T in eV."""
    return constants.k / constants.e * np.asarray(temperature_K, dtype=float)


def sigma_eV(fwhm_eV: float) -> float:
    """Standard deviation [eV] of a Gaussian with full width at half maximum ``fwhm_eV``."""
    return fwhm_eV * SIGMA_PER_FWHM


def site_density_m3(n_bg_m3: float, vacancy_fraction: float) -> float:
    """Site density N_s = n_bg / (1 - v) [m^-3]: the bulk fills all but a fraction v."""
    return n_bg_m3 / (1.0 - vacancy_fraction)


def sed_density(E_eV, fwhm_eV: float, N_s_m3: float, E0_eV: float = 0.0) -> np.ndarray:
    """Gaussian SED g(E) [m^-3 eV^-1], normalised to ``N_s_m3`` sites."""
    sigma = sigma_eV(fwhm_eV)
    z = (np.asarray(E_eV, dtype=float) - E0_eV) / sigma
    return N_s_m3 * np.exp(-0.5 * z * z) / (sigma * math.sqrt(2.0 * math.pi))


# --- Fermi-Dirac filling in standardised variables ------------------------------------
_GL_NODES, _GL_WEIGHTS = np.polynomial.legendre.leggauss(128)
_LOG_SPAN = 42.0  # keep the integrand down to exp(-42) ~ 6e-19 of its peak
_SQRT_2PI = math.sqrt(2.0 * math.pi)


def _phi(z):
    return np.exp(-0.5 * z * z) / _SQRT_2PI


def _fd_occupancy_nonpositive(mu, tau):
    """p(mu) and dp/dmu for mu <= 0 (arrays of the same shape)."""
    mu = np.asarray(mu, dtype=float)[..., None]
    # Up to the factor 1/(1 + e^-w) in [1/2, 1], the larger integrand is exp(h(w)) with
    # h(w) = -w - (mu + tau w)^2 / 2: a Gaussian in w centred at w_star, width 1/tau.
    # With mu <= 0 it bounds the phi(mu - tau w) term too, so [a, b] below holds both.
    w_star = -(1.0 + mu * tau) / tau**2
    span = 2.0 * _LOG_SPAN / tau**2
    peak_inside = w_star > 0.0
    a = np.where(peak_inside, np.maximum(w_star - np.sqrt(span), 0.0), 0.0)
    # h decreasing on w >= 0: b solves h(0) - h(b) = 42, written without cancellation
    b = np.where(peak_inside, w_star + np.sqrt(span),
                 span / (np.sqrt(w_star**2 + span) - np.minimum(w_star, 0.0)))
    half = 0.5 * (b - a)
    w = a + half * (_GL_NODES + 1.0)
    weights = half * _GL_WEIGHTS
    up, down = _phi(mu + tau * w), _phi(mu - tau * w)
    expit_minus = special.expit(-w)
    p = special.ndtr(mu[..., 0]) + tau * np.sum(weights * expit_minus * (up - down), axis=-1)
    dp = np.sum(weights * expit_minus * (1.0 - expit_minus) * (up + down), axis=-1)
    return p, dp


def _fd_occupancy(mu, tau):
    """Fermi-Dirac p(mu) and dp/dmu for any real mu (standardised)."""
    mu = np.asarray(mu, dtype=float)
    q, dq = _fd_occupancy_nonpositive(-np.abs(mu), tau)
    return np.where(mu > 0.0, 1.0 - q, q), dq


def _fd_level(p, tau, max_iterations=100):
    """mu with Fermi-Dirac p(mu) = p, for p in (0, 1) (standardised)."""
    p = np.asarray(p, dtype=float)
    t = np.minimum(p, 1.0 - p).ravel()  # 1 - p is exact; solve on the side mu <= 0
    log_t = np.log(t)
    # Bracket: for mu <= 0 the occupation smeared above E_F outweighs the holes below it,
    # so p_FD(mu) >= Phi(mu); and expit(x) <= e^x gives p_FD(mu) <= exp(mu/tau + 1/(2 tau^2)).
    hi = np.minimum(special.ndtri(t), 0.0)
    lo = np.minimum(tau * log_t - 0.5 / tau, hi)
    mu = hi.copy()
    # ln p is concave in mu (a convolution of log-concave functions): Newton on ln p = ln t
    # from the right lands left of the root, and from there climbs to it monotonically.
    # Bisection only replaces a step that underflowed.
    active = np.arange(t.size)
    for _ in range(max_iterations):
        if active.size == 0:
            break
        m = mu[active]
        q, dq = _fd_occupancy_nonpositive(m, tau)
        with np.errstate(divide="ignore", invalid="ignore"):
            g = np.log(q) - log_t[active]
            newton = m - g * q / dq
        lo[active] = np.where(g < 0.0, m, lo[active])
        hi[active] = np.where(g > 0.0, m, hi[active])
        new = np.where(np.isfinite(newton), np.clip(newton, lo[active], hi[active]),
                       0.5 * (lo[active] + hi[active]))
        mu[active] = new
        active = active[np.abs(new - m) > 1e-14 * np.maximum(1.0, np.abs(m))]
    mu = mu.reshape(p.shape)
    return np.where(p > 0.5, -mu, mu)


def _check_filling(filling, temperature_K):
    if filling not in FILLINGS:
        raise ValueError(f"filling = {filling!r}: expected one of {FILLINGS}")
    if filling == "fermi-dirac" and temperature_K is None:
        raise ValueError('filling = "fermi-dirac" needs temperature_K')


# --- public, in eV ---------------------------------------------------------------------
def occupancy(E_F_eV, fwhm_eV: float, filling: str = "zero-temperature",
              temperature_K: float | None = None, E0_eV: float = 0.0) -> np.ndarray:
    """Fraction p of the SED's sites occupied when the Fermi level is ``E_F_eV``."""
    _check_filling(filling, temperature_K)
    sigma = sigma_eV(fwhm_eV)
    mu = (np.asarray(E_F_eV, dtype=float) - E0_eV) / sigma
    if filling == "zero-temperature":
        return special.ndtr(mu)
    return _fd_occupancy(mu, float(kT_eV(temperature_K)) / sigma)[0]


def fermi_level_eV(p, fwhm_eV: float, filling: str = "zero-temperature",
                   temperature_K: float | None = None, E0_eV: float = 0.0) -> np.ndarray:
    """Ionic Fermi level E_F(p) [eV] at site occupancy p in (0, 1)."""
    _check_filling(filling, temperature_K)
    sigma = sigma_eV(fwhm_eV)
    if filling == "zero-temperature":
        mu = special.ndtri(np.asarray(p, dtype=float))
    else:
        mu = _fd_level(p, float(kT_eV(temperature_K)) / sigma)
    return E0_eV + sigma * mu


def fermi_level_slope_eV(p, fwhm_eV: float, filling: str = "zero-temperature",
                         temperature_K: float | None = None) -> np.ndarray:
    """dE_F/dp [eV] at occupancy p: 1 / (dp/dE_F), exact (implicit differentiation)."""
    _check_filling(filling, temperature_K)
    sigma = sigma_eV(fwhm_eV)
    if filling == "zero-temperature":
        mu = special.ndtri(np.asarray(p, dtype=float))
        return sigma * _SQRT_2PI * np.exp(0.5 * mu * mu)
    tau = float(kT_eV(temperature_K)) / sigma
    return sigma / _fd_occupancy(_fd_level(p, tau), tau)[1]


def fermi_shift_eV(theta, fwhm_eV: float, vacancy_fraction: float = 0.10,
                   filling: str = "zero-temperature", temperature_K: float | None = None) -> np.ndarray:
    """E_F(p) - E_F(p_b) [eV] at native fraction theta = n / n_bg (p = theta (1 - v))."""
    p_bulk = 1.0 - vacancy_fraction
    levels = fermi_level_eV(np.append(np.asarray(theta, dtype=float) * p_bulk, p_bulk), fwhm_eV,
                            filling, temperature_K)
    return levels[:-1].reshape(np.shape(theta)) - levels[-1]


def populated_sed(E_eV, p: float, fwhm_eV: float, N_s_m3: float, filling: str = "zero-temperature",
                  temperature_K: float | None = None, E0_eV: float = 0.0) -> np.ndarray:
    """Populated part of the SED (PSED) [m^-3 eV^-1] at occupancy p: g(E) times the
    occupation of a site at E (a step at E_F, or Fermi-Dirac at T)."""
    E = np.asarray(E_eV, dtype=float)
    E_F = fermi_level_eV(p, fwhm_eV, filling, temperature_K, E0_eV)
    if filling == "zero-temperature":
        occupied = np.where(E <= E_F, 1.0, 0.0)
    else:
        occupied = special.expit((E_F - E) / kT_eV(temperature_K))
    return sed_density(E, fwhm_eV, N_s_m3, E0_eV) * occupied


def activation_energy_eV(theta, fwhm_eV: float, E_DC_eV: float, vacancy_fraction: float = 0.10,
                         filling: str = "zero-temperature", temperature_K: float | None = None) -> np.ndarray:
    """E_act(theta) = E_DC - (E_F(p) - E_F(p_b)) [eV]: the native ions' activation energy
    once the populated SED has been emptied from the top down to native fraction theta."""
    return E_DC_eV - fermi_shift_eV(theta, fwhm_eV, vacancy_fraction, filling, temperature_K)
