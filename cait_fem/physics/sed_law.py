"""The Gaussian site energy distribution law of the native ions' D(theta) (docs/model.md
sections 3.3, 3.4, 3.7, 3.8 and 3.10): :class:`GaussianSED`, with its ionic Fermi level
(:mod:`cait_fem.physics.sed`) and an optional immobile fraction. Registered and
importable as ``model = "sed"`` in :mod:`cait_fem.physics.diffusion`."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
from scipy import special

from . import sed
from .diffusion_law import DiffusionLaw, is_number, table_log_relative, table_parameters
from .ops import NUMPY
from .sed import kT_eV

# SED occupancy clamp: keeps Phi^-1 finite when Newton steps theta below 0 or above 1/p_b
_P_MIN, _P_MAX = 1e-20, 1.0 - 1e-12
_FD_KNOTS = 120
#: default width w [-] (in native fraction) of the mobile edge of an SED with an immobile
#: fraction (``mobile_edge_width``): D reaches 99 % of the SED value 2.1 w above theta_imm.
#: The plateau comes out flat to about w / 10 (docs/model.md section 3.10); every node the
#: front passes stops within a time ~ w / (its drain rate), which the time steps resolve:
#: w = 0.002 took 1.9x the steps of 0.005 for a flat plateau only 3e-4 flatter
#: (docs/numerics.md section 3).
IMMOBILE_EDGE_WIDTH = 5e-3


@dataclass(frozen=True)
class GaussianSED(DiffusionLaw):
    """Native-ion D from a Gaussian site energy distribution (see :mod:`cait_fem.physics.sed`):
    D(theta) = D_bulk exp((E_F(p) - E_F(p_b)) / k_B T), p = theta (1 - v), p_b = 1 - v.

    Give either ``D_bulk_m2_s`` or both ``D0_m2_s`` and ``E_DC_eV`` (then D_bulk = D0
    exp(-E_DC/kT)), or ``D_ref_m2_s``, ``T_ref_K`` and ``E_DC_eV``: D_bulk = D_ref
    exp(-(E_DC/k_B) (1/T - 1/T_ref)), the same Arrhenius law with D_bulk at T_ref [K] as
    its prefactor. For a fit over a temperature series this is the better pair: D0 and
    E_DC are correlated to 1 - 1e-4 over a few tens of kelvin (the data fix D_bulk in
    the middle of the range), D_ref near the middle and E_DC hardly at all.
    The occupancy is clamped to [1e-20, 1 - 1e-12], where D is constant.
    ``filling = "fermi-dirac"`` is exact in ``diffusivity_m2_s``; for the forms
    (``relative``) it is a 120-knot table, linear in log D, with knots equally spaced in
    E_F from where D is 1e-3 of the floor to p = p_b + 0.9 v, constant beyond.

    ``mobile_fraction`` f_m (optional, in (0, 1]): only the top f_m of the populated SED
    is mobile; the ions in its deepest sites, below the cut-off site energy E_c, a
    fraction theta_imm = 1 - f_m of the bulk density, do not take part in long-range
    transport (docs/model.md section 3.10). D is then multiplied by the mobile edge

        m(theta) = 1 - exp(-(max(theta - theta_imm, 0) / w)^2),

    w = ``mobile_edge_width`` [-] (default :data:`IMMOBILE_EDGE_WIDTH`, 0.005), which is
    1 (to 1e-4) from theta_imm + 3 w up and 0 at and below theta_imm, where only
    the floor is left: the native ions are frozen once the SED has been emptied down to
    E_c. m is continuously differentiable, so the exact Jacobian stays continuous.
    Absent (default): no cut-off, every native ion is mobile.
    """

    model: ClassVar[str] = "sed"
    fwhm_eV: float
    vacancy_fraction: float = 0.10
    D_bulk_m2_s: float | None = None
    D0_m2_s: float | None = None
    E_DC_eV: float | None = None
    filling: str = "zero-temperature"
    D_min_m2_s: float | None = None
    D_ref_m2_s: float | None = None
    T_ref_K: float | None = None
    mobile_fraction: float | None = None
    mobile_edge_width: float | None = None

    def _validate(self):
        self._positive("fwhm_eV")
        f = self.mobile_fraction
        self._check("mobile_fraction", f is None or (is_number(f) and 0 < f <= 1),
                    "a fraction in (0, 1]: the mobile part of the populated SED (absent: all mobile)")
        w = self.mobile_edge_width
        if w is not None:
            self._check("mobile_edge_width", f is not None,
                        "only with mobile_fraction (the width of its mobile edge)")
            self._check("mobile_edge_width", is_number(w) and 0 < w <= 0.1,
                        "a native fraction in (0, 0.1]: the width of the mobile edge above theta_imm")
        v = self.vacancy_fraction
        self._check("vacancy_fraction", is_number(v) and 0 < v < 1,
                    "must lie in (0, 1) (v = 0 puts the bulk Fermi level at infinity)")
        self._check("filling", self.filling in sed.FILLINGS, " or ".join(f'"{f}"' for f in sed.FILLINGS))
        if self.D_bulk_m2_s is not None:
            for key in ("D0_m2_s", "E_DC_eV", "D_ref_m2_s", "T_ref_K"):
                self._check(key, getattr(self, key) is None,
                            "give either D_bulk_m2_s or both D0_m2_s and E_DC_eV, not both "
                            "(or D_ref_m2_s, T_ref_K and E_DC_eV)")
            self._positive("D_bulk_m2_s")
        elif self.D_ref_m2_s is not None or self.T_ref_K is not None:
            self._check("D0_m2_s", self.D0_m2_s is None,
                        "give either D0_m2_s or D_ref_m2_s with T_ref_K (the prefactor at T_ref), not both")
            for key in ("D_ref_m2_s", "T_ref_K"):
                self._check(key, self._is_positive(key), "a finite number > 0; D_ref_m2_s and T_ref_K go together")
            self._check("E_DC_eV", is_number(self.E_DC_eV) and self.E_DC_eV >= 0,
                        "a finite number >= 0, with D_ref_m2_s and T_ref_K")
        else:
            self._check("D0_m2_s", self._is_positive("D0_m2_s"),
                        "a finite number > 0, with E_DC_eV (or give D_bulk_m2_s instead)")
            self._check("E_DC_eV", is_number(self.E_DC_eV) and self.E_DC_eV >= 0,
                        "a finite number >= 0, with D0_m2_s (or give D_bulk_m2_s instead)")

    @property
    def reference_keys(self) -> tuple[str, ...]:
        if self.D_bulk_m2_s is not None:
            return ("D_bulk_m2_s",)
        return ("D_ref_m2_s", "T_ref_K", "E_DC_eV") if self.D_ref_m2_s is not None else ("D0_m2_s", "E_DC_eV")

    @property
    def prefactor_m2_s(self) -> float | None:
        """D0 [m^2/s] of D_bulk = D0 exp(-E_DC / k_B T); None for a fixed D_bulk_m2_s."""
        if self.D_ref_m2_s is not None:
            return float(self.D_ref_m2_s * np.exp(self.E_DC_eV / kT_eV(self.T_ref_K)))
        return None if self.D0_m2_s is None else float(self.D0_m2_s)

    def reference_m2_s(self, temperature_K):
        if self.D_bulk_m2_s is not None:
            return float(self.D_bulk_m2_s)
        if self.D_ref_m2_s is not None:
            # written from T_ref, not through D0: no overflow of exp(E_DC / k_B T_ref)
            return float(self.D_ref_m2_s * np.exp(-self.E_DC_eV * (1.0 / kT_eV(temperature_K)
                                                                   - 1.0 / kT_eV(self.T_ref_K))))
        return float(self.D0_m2_s * np.exp(-self.E_DC_eV / kT_eV(temperature_K)))

    @property
    def _p_bulk(self) -> float:
        return 1.0 - self.vacancy_fraction

    def _sed_args(self, temperature_K):
        return dict(fwhm_eV=self.fwhm_eV, filling=self.filling, temperature_K=temperature_K)

    @property
    def immobile_fraction(self) -> float:
        """theta_imm = 1 - mobile_fraction [-]: the native fraction frozen below E_c (0 without a cut-off)."""
        return 0.0 if self.mobile_fraction is None else 1.0 - float(self.mobile_fraction)

    def cutoff_energy_eV(self, temperature_K: float) -> float | None:
        """E_c - E_F(p_b) [eV] (< 0): the cut-off site energy below which the native ions
        are immobile, measured from the bulk Fermi level; None without a cut-off."""
        if self.mobile_fraction is None:
            return None
        if self.immobile_fraction == 0.0:
            return -math.inf
        return float(sed.fermi_shift_eV(self.immobile_fraction, vacancy_fraction=self.vacancy_fraction,
                                        **self._sed_args(temperature_K)))

    @property
    def edge_width(self) -> float:
        """w [-] of the mobile edge: ``mobile_edge_width`` or :data:`IMMOBILE_EDGE_WIDTH`."""
        return IMMOBILE_EDGE_WIDTH if self.mobile_edge_width is None else float(self.mobile_edge_width)

    @staticmethod
    def mobile_edge(theta, theta_immobile, width, ops=NUMPY):
        """m(theta) [-] (class docstring); ``theta_immobile`` and ``width`` numbers or UFL Constants."""
        # beyond u = 10, exp(-u^2) < 4e-44: m is 1 in double precision (no underflow)
        u = ops.min(ops.max(theta - theta_immobile, 0.0) / width, 10.0)
        return 1.0 - ops.exp(-u * u)

    def _cut_parameters(self) -> dict[str, float]:
        if self.mobile_fraction is None:
            return {}
        return {"theta_immobile": self.immobile_fraction, "edge_width": self.edge_width}

    def nondim_parameters(self, temperature_K, D_ref_m2_s):
        return {**self._sed_parameters(temperature_K, D_ref_m2_s), **self._cut_parameters()}

    def _sed_parameters(self, temperature_K, D_ref_m2_s):
        D_bulk, kT = self.reference_m2_s(temperature_K), float(kT_eV(temperature_K))
        floor = self.floor_m2_s(temperature_K)
        if self.filling == "zero-temperature":
            return {"log_D_bulk": math.log(D_bulk / D_ref_m2_s), "s": sed.sigma_eV(self.fwhm_eV) / kT,
                    "p_bulk": self._p_bulk, "x_bulk": float(special.ndtri(self._p_bulk)),
                    "D_floor": floor / D_ref_m2_s}
        args = self._sed_args(temperature_K)
        p_top = self._p_bulk + 0.9 * self.vacancy_fraction
        E_bulk, E_top, E_min = sed.fermi_level_eV(np.array([self._p_bulk, p_top, _P_MIN]), **args)
        log_low = min(math.log(floor / D_bulk) - math.log(1e3), -10.0)
        E_knots = np.linspace(max(E_bulk + kT * log_low, E_min), E_top, _FD_KNOTS)
        theta_knots = sed.occupancy(E_knots, **args) / self._p_bulk
        log_D = math.log(D_bulk / D_ref_m2_s) + (E_knots - E_bulk) / kT
        return {**table_parameters(theta_knots, log_D), "D_floor": floor / D_ref_m2_s}

    def _sed_relative(self, theta, params, ops):
        """D_SED(theta)/D_ref without the mobile edge and the floor."""
        if self.filling == "fermi-dirac":
            return ops.exp(table_log_relative(theta, params, _FD_KNOTS - 1, ops))
        p = ops.min(ops.max(theta * params["p_bulk"], _P_MIN), _P_MAX)
        return ops.exp(params["log_D_bulk"] + params["s"] * (ops.ndtri(p) - params["x_bulk"]))

    def relative(self, theta, params, ops=NUMPY):
        core = self._sed_relative(theta, params, ops)
        if "theta_immobile" in params:
            core = core * self.mobile_edge(theta, params["theta_immobile"], params["edge_width"], ops)
        return core + params["D_floor"]

    def relative_between(self, own, ends, params, ops=NUMPY):
        """With an immobile fraction, the mobile edge of the flux between nodes a and b is
        the harmonic mean 2 m_a m_b / (m_a + m_b) of its nodal values (docs/numerics.md
        section 2): 0 as soon as one node is frozen, so that a node at theta_imm is not
        drained through the mobility of its neighbour's midpoint value, and m + O(h^2)
        where theta is smooth. The SED part stays at the midpoint."""
        if "theta_immobile" not in params:
            return self.relative(own, params, ops)
        m_a, m_b = (self.mobile_edge(t, params["theta_immobile"], params["edge_width"], ops) for t in ends)
        # 1e-100: 0/0 where both nodes are frozen, yet its square stays a normal double
        edge = 2.0 * m_a * m_b / (m_a + m_b + 1e-100)
        return self._sed_relative(own, params, ops) * edge + params["D_floor"]

    def thermodynamic_factor(self, theta, params, ops=NUMPY):
        """The SED Fermi level is the chemical potential: mu = E0 + sigma Phi^-1(p), so
        Gamma = (theta / k_B T) d mu / d theta = (sigma / k_B T) p / phi(Phi^-1(p)), p = theta p_b.
        Zero-temperature filling only (Experiment refuses the combination otherwise)."""
        p = ops.min(ops.max(theta * params["p_bulk"], _P_MIN), _P_MAX)
        x = ops.ndtri(p)
        return params["s"] * p * math.sqrt(2.0 * math.pi) * ops.exp(0.5 * x * x)

    def _clamped(self, theta):
        p = theta * self._p_bulk
        return np.clip(p, _P_MIN, _P_MAX), (p >= _P_MIN) & (p <= _P_MAX)

    def _sed_core_m2_s(self, theta, temperature_K):
        p, _ = self._clamped(theta)
        shift = sed.fermi_shift_eV(p / self._p_bulk, vacancy_fraction=self.vacancy_fraction,
                                   **self._sed_args(temperature_K))
        return self.reference_m2_s(temperature_K) * np.exp(shift / kT_eV(temperature_K))

    def _core_m2_s(self, theta, temperature_K):
        core = self._sed_core_m2_s(theta, temperature_K)
        if self.mobile_fraction is None:
            return core
        return core * self.mobile_edge(np.asarray(theta, dtype=float), self.immobile_fraction, self.edge_width)

    def dD_dtheta_m2_s(self, theta, temperature_K):
        theta = np.asarray(theta, dtype=float)
        p, inside = self._clamped(theta)
        slope = sed.fermi_level_slope_eV(p, **self._sed_args(temperature_K))
        dlogD = np.where(inside, self._p_bulk * slope / kT_eV(temperature_K), 0.0)
        core = self._sed_core_m2_s(theta, temperature_K)
        if self.mobile_fraction is None:
            return core * dlogD
        w = self.edge_width
        u = np.minimum(np.maximum(theta - self.immobile_fraction, 0.0) / w, 10.0)
        tail = np.exp(-u * u)
        return core * (dlogD * (1.0 - tail) + np.where(u < 10.0, 2.0 * u / w * tail, 0.0))
