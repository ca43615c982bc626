"""The depth resolution a case needs: how fine the mesh must be where fronts will pass.

A CAIT front is held together by the field behind it. Its width is a few field lengths
l = (k_B T / e) / E, E the field in the replaced zone (docs/numerics.md section 4):

* while the beam lands in full, E = j / sigma_f, sigma_f = z^2 e^2 n_bg D_f / (k_B T), so
  l_j = D_f / v with v = j / (z e n_bg) the speed the beam current drives: the foreign
  ion's diffusion length over its drift;
* once the surface potential nears its ceiling U (the beam's kinetic energy; a contact's
  potential), E <= U / x, so l <= x k_B T / (e U): the front sharpens in proportion to its
  depth.

Measured 10-90 % widths of the native rise follow w(x) = 3.3 l_j + 6 x k_B T / (e U)
within about 20 % (K+: 4.1-7.7 nm; Cs+: 0.33 nm at 10 nm to 1.3 nm at 107 nm). The rule is
h(x) = min(h_cap, w(x) / N) with N = ``mesh.cells_per_front_width`` and h_cap =
``mesh.max_front_spacing_m``: geometric growth from the surface, which a static mesh can
afford over the whole path of the front (a slow ion's front moves ~100 nm, and it is
sharpest near the surface). The region it covers ends at 1.5 times
the deepest the front can reach by ``run.t_end_s``: the charge the front condition can
deliver fills at most j t / (z e n_bg (1 - 0.3)) (plateau below 0.3), and a
potential-limited front travels x^2 = 2 D_f (e U / k_B T) t.

Explicit ``mesh.front_spacing_m`` / ``mesh.fine_depth_m`` override the rule (uniform
spacing there, as before). Pure: no DOLFINx.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import constants as sc

#: beam-ion kinetic energy spread counted into the surface-potential ceiling: ions of
#: E_kin + 3 sigma_E still land, so the surface can charge that far
BEAM_SPREAD_SIGMAS = 3.0
#: the plateau fraction of the native ion below which the replaced zone is assumed to
#: lie when its depth is estimated from the delivered charge
PLATEAU_BOUND = 0.3
#: the fine region reaches this multiple of the estimated deepest front
REACH_MARGIN = 1.5
#: the front width in field lengths, w = WIDTH_PER_LJ l_j + WIDTH_PER_LU x k_B T / (e U)
#: (measured on the K+ and Cs+ cases, docs/numerics.md section 4.1)
WIDTH_PER_LJ = 3.3
WIDTH_PER_LU = 6.0
#: the fine region never ends shallower than this [m] (early outputs, slow ions)
MIN_FINE_DEPTH_M = 30e-9
#: beyond this depth the spacing cap grows in proportion to depth: a front that deep has
#: travelled far and is wide (without it, a fast ion's deep fine region would be meshed at
#: the cap all the way)
CAP_DEPTH_M = 300e-9
#: without a front estimate (explicit spacing, a front type the rule does not know)
DEFAULT_FINE_DEPTH_M = 300e-9


@dataclass(frozen=True)
class DepthResolution:
    """A resolved depth rule: spacing ``front_spacing_m + spacing_slope * x`` [m] from the
    end of the surface grading to ``fine_depth_m``, capped at ``max_front_spacing_m``;
    ``basis`` says where the numbers came from (for the run's metadata)."""

    front_spacing_m: float
    spacing_slope: float
    max_front_spacing_m: float
    fine_depth_m: float
    basis: str

    def spacing_m(self, depth_m):
        """Target spacing [m] at ``depth_m`` [m] in the fine region: the rule, capped at
        ``max_front_spacing_m`` (times depth / CAP_DEPTH_M beyond CAP_DEPTH_M)."""
        x = np.asarray(depth_m, dtype=float)
        cap = self.max_front_spacing_m * np.maximum(1.0, x / CAP_DEPTH_M)
        return np.minimum(self.front_spacing_m + self.spacing_slope * x, cap)

    def _pieces(self, start: float, end: float) -> list[tuple[float, float, float, float]]:
        """:meth:`spacing_m` on [start, end] as linear pieces (x0, x1, a, b), h = a + b x."""
        h0, s, c = self.front_spacing_m, self.spacing_slope, self.max_front_spacing_m
        k = c / CAP_DEPTH_M
        breaks = [CAP_DEPTH_M] + ([(c - h0) / s] if s > 0 else []) + ([h0 / (k - s)] if k > s else [])
        xs = sorted({start, end} | {x for x in breaks if start < x < end})
        out = []
        for x0, x1 in zip(xs[:-1], xs[1:]):
            xm = 0.5 * (x0 + x1)
            if h0 + s * xm <= max(c, k * xm):
                out.append((x0, x1, h0, s))
            elif c >= k * xm:
                out.append((x0, x1, c, 0.0))
            else:
                out.append((x0, x1, 0.0, k))
        return out

    def fine_nodes(self, start: float, end: float, count_only: bool = False):
        """Nodes from ``start`` with x_{i+1} - x_i = spacing_m(x_i) until ``end`` is
        reached or passed (their number of cells with ``count_only``), in closed form
        piece by piece: on h = a + b x the shifted depth x + a/b grows by (1 + b) per cell."""
        x, count, nodes = start, 0, [np.array([start])]
        for _, x1, a, b in self._pieces(start, end):
            if x >= x1:
                continue
            if b == 0.0:
                n = math.ceil((x1 - x) / a)
                new = x + a * np.arange(1, n + 1) if not count_only else None
            else:
                shift = a / b
                n = max(math.ceil(math.log((x1 + shift) / (x + shift)) / math.log1p(b)), 1)
                new = (x + shift) * np.exp(np.arange(1, n + 1) * math.log1p(b)) - shift if not count_only else None
            count += n
            if count_only:
                x = (x + a * n) if b == 0.0 else (x + shift) * math.exp(n * math.log1p(b)) - shift
            else:
                nodes.append(new)
                x = float(new[-1])
        return count if count_only else np.concatenate(nodes)

    def to_dict(self) -> dict:
        return {"front_spacing_m": self.front_spacing_m, "spacing_slope": self.spacing_slope,
                "max_front_spacing_m": self.max_front_spacing_m, "fine_depth_m": self.fine_depth_m,
                "basis": self.basis}


def _slowest_foreign_D_m2_s(exp) -> float:
    """The smallest D [m^2/s] of any foreign species over theta in [0, 1] at the case's T."""
    theta = np.linspace(0.0, 1.0, 21)
    T = exp.glass.temperature_K
    return float(min(np.min(s.diffusion.diffusivity_m2_s(theta, T)) for s in exp.foreign))


def _peak_voltage_V(front) -> float:
    """The largest |U| [V] of a contact front's voltage history."""
    values = [front.U_V] + list(front.step_U_V or ()) + list(front.table_U_V or ())
    return max(abs(v) for v in values if v is not None)


def _front_drive(exp) -> tuple[float | None, float | None]:
    """(j [A/m^2] or None, surface potential ceiling U [V] or None) of the front condition
    that drives foreign ions in; (None, None) for a front that lets none in (a blocking
    anode) or that the rule does not know."""
    front = exp.front
    kind = getattr(front, "type", None)
    if not exp.foreign:
        return None, None
    if kind == "beam":
        # a measured history: its peak, the sharpest front and (conservatively) the deepest reach
        j = max(front.current_density_history_A_m2) if front.has_history else front.current_density_A_m2
        return j, front.E_kin_eV + BEAM_SPREAD_SIGMAS * front.sigma_E_eV
    if kind == "current":
        return front.current_density_A_m2, None
    if kind == "potential":
        return None, _peak_voltage_V(front) or None
    return None, None


def depth_resolution(exp) -> DepthResolution:
    """The depth rule of an :class:`~cait_fem.case.experiment.Experiment` (module doc)."""
    mesh, glass = exp.mesh, exp.glass
    cap = mesh.max_front_spacing_m
    if mesh.front_spacing_m is not None:
        fine = mesh.fine_depth_m if mesh.fine_depth_m is not None else DEFAULT_FINE_DEPTH_M
        return DepthResolution(mesh.front_spacing_m, 0.0, mesh.front_spacing_m, fine,
                               "mesh.front_spacing_m (uniform)")
    c = 1.0 / mesh.cells_per_front_width
    kT_e = sc.k * glass.temperature_K / sc.e
    j, U = _front_drive(exp)
    D_f = _slowest_foreign_D_m2_s(exp) if (j or U) else 0.0
    n_bg, t_end = glass.n_bg_m3, exp.run.t_end_s
    v = j / (exp.beam_species.charge_number * sc.e * n_bg) if j else 0.0
    l_j = D_f / v if v > 0 else math.inf
    slope = c * WIDTH_PER_LU * kT_e / U if U else 0.0
    D_native = float(exp.native.diffusion.diffusivity_m2_s(1.0, glass.temperature_K))
    if D_f >= D_native:
        # a foreign ion as fast as the native one forms no self-sharpening front
        h0, slope, basis = cap, 0.0, "no self-sharpening front (D_foreign >= D_native): mesh.max_front_spacing_m"
    elif not math.isfinite(l_j) and slope == 0.0:
        h0, basis = cap, "no front drive known: mesh.max_front_spacing_m"
    else:
        h0 = min(c * WIDTH_PER_LJ * l_j, cap) if math.isfinite(l_j) else 0.0
        basis = "field length of the front (docs/numerics.md section 4)"
    reach = []
    if j is not None:  # a beam or current front: no more ions than its charge brings
        reach.append(v * t_end / (1.0 - PLATEAU_BOUND))
    if U:
        # the potential drops over the foreign layer at most (x^2 = 2 D_f (e U / k_B T) t);
        # a contact's front moves no faster than the native glass in series lets the
        # current pass (v <= D_n e U / (k_B T d); a beam's charge bounds it already)
        reach.append(math.sqrt(2.0 * D_f * (U / kT_e) * t_end))
        if j is None:
            reach.append(D_native * (U / kT_e) * t_end / glass.thickness_m)
    if mesh.fine_depth_m is not None:
        fine = mesh.fine_depth_m
    elif reach:
        fine = max(REACH_MARGIN * min(reach), MIN_FINE_DEPTH_M)
    else:
        fine = DEFAULT_FINE_DEPTH_M
    if h0 == 0.0:  # a potential front has no l_j: the rule starts at the surface grading
        h0 = mesh.surface_spacing_m
    return DepthResolution(min(h0, cap), slope, cap, min(fine, glass.thickness_m), basis)


def explicit_resolution(mesh) -> DepthResolution:
    """The rule of a bare :class:`~cait_fem.case.experiment.MeshSettings` without a case:
    uniform ``front_spacing_m`` (``max_front_spacing_m`` when not given) to ``fine_depth_m``
    (300 nm when not given)."""
    h = mesh.front_spacing_m if mesh.front_spacing_m is not None else mesh.max_front_spacing_m
    fine = mesh.fine_depth_m if mesh.fine_depth_m is not None else DEFAULT_FINE_DEPTH_M
    return DepthResolution(h, 0.0, h, fine, "explicit mesh settings (uniform)")


def finest(resolutions) -> DepthResolution:
    """One rule at least as fine as each of ``resolutions`` everywhere, reaching as deep as
    the deepest: for experiments that hand their state over node by node (a sequential
    experiment: every step on the same mesh, fine enough for each step's fronts)."""
    rs = list(resolutions)
    if len(rs) == 1:
        return rs[0]
    return DepthResolution(min(r.front_spacing_m for r in rs), max(r.spacing_slope for r in rs),
                           min(r.max_front_spacing_m for r in rs), max(r.fine_depth_m for r in rs),
                           "the finest of the sequence's rules: " + "; ".join(sorted({r.basis for r in rs})))
