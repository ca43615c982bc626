"""Derived transport quantities of one CAIT experiment (docs/model.md section 6), pure numpy.

- the analytical foreign diffusion coefficient of the paper's eq. (3) (section 3.2), from
  bulk, front and replaced-zone quantities, and its extraction from a depth profile;
- Onsager coefficients and tracer estimates, eqs. (8), (9) (section 3.4);
- the immobile and mobile parts of the native populated SED (section 3.3, Fig. 4).

Paper: Gunawan, Schaefer, Weitzel, Phys. Chem. Chem. Phys. 2024, 26, 14430. Sign convention: x is
the depth [m], the field E > 0 points into the sample, the native density rises through
the front (dn/dx > 0); eps = z e E / (k_B T) [1/m] is the field in units of k_B T/(z e).
"""

from __future__ import annotations

import math

from scipy import constants

from cait_fem.physics import sed
from cait_fem.physics.diffusion import DiffusionLaw, GaussianSED

from . import metrics

__all__ = ["eq3_foreign_diffusivity_m2_s", "eq3_from_profile", "onsager_coefficient",
           "tracer_diffusivity_m2_s", "haven_ratio", "psed_parts", "transport_summary"]


def eq3_foreign_diffusivity_m2_s(n_bulk_m3, n_zone_m3, D_bulk_m2_s, D_front_m2_s, D_zone_m2_s,
                                 grad_n_front_m4, field_bulk_V_m, temperature_K,
                                 charge_number=1) -> float:
    """Foreign diffusion coefficient D_f [m^2/s] in the replaced zone, paper eq. (3):

        D_f = D_B (n_B + n_D)/(n_B - n_D) n_B / (4 (D_B/D_F) n_B + 4 (dn/dx)/eps_B - (n_B + n_D))
              - D_D n_D / (n_B - n_D),            eps_B = z e E_B / (k_B T) [1/m].

    Superscripts: B bulk, F front, D replaced (diffusion) zone; n, D are the native ion's
    density [m^-3] and diffusivity [m^2/s], dn/dx [m^-4] its gradient at the front, E_B [V/m]
    the bulk field. Derivation (ESI part 2.10), with the native ions pulling the foreign ones:
      (i)   current continuity, bulk vs replaced zone (migration only, both electroneutral):
            D_B n_B eps_B = (D_D n_D + D_f (n_B - n_D)) eps_D;
      (ii)  at the front the current is carried by the native ion (Nernst-Planck, eq. 1):
            D_B n_B eps_B = D_F (n_F eps_F - dn/dx),  n_F = (n_B + n_D)/2;
      (iii) the front field is the mean eps_F = (eps_B + eps_D)/2; eliminating eps_F and
            eps_D from (i)-(iii) gives the expression above.
    The paper prints "- (4/E^B) grad n_Li": it holds with E^B read as the potential gradient
    d(phi)/dx < 0 in units of k_B T/(z e) per metre, i.e. E^B_paper = -eps_B.

    Raises ValueError unless 0 <= n_zone < n_bulk, E_B > 0 and the denominator is > 0 (a
    front gradient too steep for the bulk current to sustain has no replaced-zone solution).
    """
    n_B, n_D = float(n_bulk_m3), float(n_zone_m3)
    if not 0.0 <= n_D < n_B:
        raise ValueError(f"eq. (3) needs 0 <= n_zone < n_bulk (a depleted replaced zone); "
                         f"got n_zone = {n_D:g} m^-3, n_bulk = {n_B:g} m^-3")
    if not field_bulk_V_m > 0.0:
        raise ValueError(f"eq. (3) needs a bulk field > 0 (into the sample); got {field_bulk_V_m!r} V/m")
    eps_B = charge_number * constants.e * field_bulk_V_m / (constants.k * temperature_K)  # 1/m
    denominator = 4.0 * (D_bulk_m2_s / D_front_m2_s) * n_B + 4.0 * grad_n_front_m4 / eps_B - (n_B + n_D)
    if not denominator > 0.0:
        raise ValueError(f"eq. (3): denominator 4 (D_B/D_F) n_B + 4 (dn/dx)/eps_B - (n_B + n_D) = "
                         f"{denominator:g} m^-3 is not > 0; no replaced-zone field solves (i)-(iii)")
    return float(D_bulk_m2_s * (n_B + n_D) / (n_B - n_D) * n_B / denominator
                 - D_zone_m2_s * n_D / (n_B - n_D))


def eq3_from_profile(depth_m, theta_native, theta_foreign, native_law: DiffusionLaw, temperature_K,
                     n_bg_m3, current_density_A_m2, charge_number=1) -> dict:
    """Eq. (3) with its inputs read off a depth profile (simulated or measured).

    theta_* = n / n_bg on ascending depths [m]; ``theta_foreign`` is the total foreign fraction.
    n_B = n_bg, n_D = plateau n_bg (plateau, front position and 10-90 % width as in
    :mod:`cait_fem.analysis.metrics`). The front gradient is the slope at the front point, where
    relation (ii) takes it, measured as the mean slope of the central 40-60 % of the rise,
    0.2 (1 - plateau) n_bg / (x60 - x40): within 2 % of the peak slope of a tanh front and
    robust for noisy measured profiles, where a pointwise derivative is not. (The 10-90 %
    mean slope would be 27 % below the peak slope of a tanh front.)
    D_B = D(1), D_F = D((plateau + 1)/2), D_D = D(plateau) from
    ``native_law``. The bulk field follows from Ohm's law with the Nernst-Einstein bulk
    conductivity: E_B = j / sigma_B, sigma_B = z^2 e^2 n_bg D_B / (k_B T) [S/m].
    Returns the inputs (unit-suffixed keys) and ``D_foreign_eq3_m2_s``.
    """
    plateau = metrics.plateau_level(depth_m, theta_native, theta_foreign)
    x50 = metrics.x50(depth_m, theta_foreign)
    position = metrics.front_position(depth_m, theta_native, plateau, x50)
    width = metrics.front_width(depth_m, theta_native, plateau, x50)
    central = metrics.rise_width(depth_m, theta_native, plateau, x50, 0.4, 0.6)
    if not all(math.isfinite(v) and v > 0 for v in (x50, position, width, central)) or not math.isfinite(plateau):
        raise ValueError(f"profile has no replaced zone and front to analyse: plateau = {plateau}, "
                         f"x50 = {x50} m, front position = {position} m, width = {width} m")
    D_bulk, D_front, D_zone = (float(native_law.diffusivity_m2_s(theta, temperature_K))
                               for theta in (1.0, 0.5 * (plateau + 1.0), plateau))
    kT_J = constants.k * temperature_K
    conductivity = charge_number**2 * constants.e**2 * n_bg_m3 * D_bulk / kT_J
    out = {"n_bulk_m3": float(n_bg_m3), "n_zone_m3": plateau * n_bg_m3, "plateau": plateau,
           "x50_m": x50, "front_position_m": position, "front_width_m": width,
           "grad_n_front_m4": 0.2 * (1.0 - plateau) * n_bg_m3 / central,
           "D_bulk_m2_s": D_bulk, "D_front_m2_s": D_front, "D_zone_m2_s": D_zone,
           "conductivity_bulk_S_m": conductivity,
           "field_bulk_V_m": current_density_A_m2 / conductivity,
           "temperature_K": float(temperature_K), "charge_number": charge_number}
    out["D_foreign_eq3_m2_s"] = eq3_foreign_diffusivity_m2_s(
        out["n_bulk_m3"], out["n_zone_m3"], D_bulk, D_front, D_zone, out["grad_n_front_m4"],
        out["field_bulk_V_m"], temperature_K, charge_number)
    return out


def onsager_coefficient(D_eff_m2_s, n_m3, temperature_K):
    """Diagonal Onsager coefficient L_ii = D_eff n_i / (k_B T) [1/(J m s)], paper eqs. (8),
    (9), valid where the off-diagonal coefficients are negligible."""
    return D_eff_m2_s * n_m3 / (constants.k * temperature_K)


def tracer_diffusivity_m2_s(D_eff_m2_s):
    """Tracer estimate D* = D_eff / 2 [m^2/s] (paper eqs. 8, 9): the CAIT replacement adds
    the up-hill native flux to the down-hill foreign one, so D_CAIT = D_sigma = 2 D*."""
    return 0.5 * D_eff_m2_s


def haven_ratio(D_tracer_m2_s, D_sigma_m2_s):
    """Haven ratio H_R = D* / D_sigma [-] (0.5 in the paper's picture D_sigma = 2 D*)."""
    return D_tracer_m2_s / D_sigma_m2_s


def psed_parts(E_eV, law: GaussianSED, n_bg_m3, plateau, temperature_K) -> dict:
    """Native SED split into its immobile and mobile populated parts (paper section 3.3, Fig. 4).

    Energies ``E_eV`` relative to the SED centre (E0 = 0). The PSED is emptied top-down
    from the bulk Fermi level E_F(p_b), p_b = 1 - v, down to E_F(p_imm), p = theta (1 - v):

    - with an immobile fraction in the law (``mobile_fraction``, docs/model.md section
      3.10), down to its cut-off site energy E_c: the transport itself freezes the ions
      below it, and theta_imm = 1 - mobile_fraction (``split_from`` = "cut-off");
    - otherwise down to the native ``plateau`` fraction of a simulated profile, read after
      the run as the immobile fraction (``split_from`` = "plateau").

    Arrays [m^-3 eV^-1] over E_eV: ``sed_m3_eV`` (full SED, N_s = n_bg/(1 - v) sites),
    ``populated_initial_m3_eV`` (PSED at p_b, integral n_bg), ``mobile_m3_eV`` (populated at
    p_b but not at p_imm, integral (1 - theta_imm) n_bg), ``immobile_m3_eV`` (PSED at
    p_imm); plus the two Fermi levels [eV] and the mobile / immobile fractions [-].
    Follows ``law.filling`` (zero-temperature step or Fermi-Dirac at ``temperature_K``).
    """
    v = law.vacancy_fraction
    from_cutoff = getattr(law, "mobile_fraction", None) is not None
    immobile_fraction = law.immobile_fraction if from_cutoff else float(plateau)
    p_bulk, p_immobile = 1.0 - v, immobile_fraction * (1.0 - v)
    N_s = sed.site_density_m3(n_bg_m3, v)
    args = dict(fwhm_eV=law.fwhm_eV, filling=law.filling, temperature_K=temperature_K)
    initial = sed.populated_sed(E_eV, p_bulk, N_s_m3=N_s, **args)
    immobile = sed.populated_sed(E_eV, p_immobile, N_s_m3=N_s, **args) if p_immobile > 0 else 0.0 * initial
    return {"sed_m3_eV": sed.sed_density(E_eV, law.fwhm_eV, N_s),
            "populated_initial_m3_eV": initial, "mobile_m3_eV": initial - immobile,
            "immobile_m3_eV": immobile,
            "fermi_level_bulk_eV": float(sed.fermi_level_eV(p_bulk, **args)),
            "fermi_level_plateau_eV": float(sed.fermi_level_eV(p_immobile, **args)) if p_immobile > 0 else -math.inf,
            "mobile_fraction": 1.0 - immobile_fraction, "immobile_fraction": immobile_fraction,
            "split_from": "cut-off" if from_cutoff else "plateau"}


def transport_summary(depth_m, theta_native, theta_foreign, native_law: DiffusionLaw,
                      foreign_D_m2_s, temperature_K, n_bg_m3, current_density_A_m2,
                      tracer_D_m2_s=None, charge_number=1) -> dict:
    """All derived transport quantities of one experiment, JSON-ready (floats, None).

    ``eq3``: :func:`eq3_from_profile`; ``D_foreign_used_m2_s`` the foreign D of the model and
    ``eq3_relative_deviation`` = eq3 / used - 1 (the paper finds agreement within 10 %).
    Onsager coefficients [1/(J m s)]: native at bulk (D_B, n_bg), foreign in the replaced
    zone (D_f, n_bg (1 - plateau)); tracer estimates D_eff/2; the native Haven ratio
    D*/D_B if a measured tracer ``tracer_D_m2_s`` is given (else None).
    """
    eq3 = eq3_from_profile(depth_m, theta_native, theta_foreign, native_law, temperature_K,
                           n_bg_m3, current_density_A_m2, charge_number)
    D_f, D_B, plateau = float(foreign_D_m2_s), eq3["D_bulk_m2_s"], eq3["plateau"]
    return {
        "eq3": eq3, "D_foreign_used_m2_s": D_f,
        "eq3_relative_deviation": eq3["D_foreign_eq3_m2_s"] / D_f - 1.0,
        "onsager_native_bulk_per_J_m_s": float(onsager_coefficient(D_B, n_bg_m3, temperature_K)),
        "onsager_foreign_zone_per_J_m_s": float(onsager_coefficient(
            D_f, n_bg_m3 * (1.0 - plateau), temperature_K)),
        "tracer_native_bulk_estimate_m2_s": tracer_diffusivity_m2_s(D_B),
        "tracer_foreign_estimate_m2_s": tracer_diffusivity_m2_s(D_f),
        "haven_ratio_native": None if tracer_D_m2_s is None else float(haven_ratio(tracer_D_m2_s, D_B)),
        "immobile_fraction": plateau, "mobile_fraction": 1.0 - plateau,
    }
