"""Figures of a fit report, in the style of Gunawan et al. (PCCP 2024), Figs. 1, 2 and 4.

- :func:`plot_profile_fits`  measured (dashed, small markers) and model (solid) theta vs
  depth [nm], one panel per experiment, shared theta axis 0..1.1 (Fig. 1);
- :func:`plot_diffusivity_fit` log10 D [m^2/s] vs native fraction n_native/n_bulk with a
  95 % band, constant foreign D as horizontal lines, optional knots and per-experiment
  native curves (Fig. 2);
- :func:`plot_site_energy_distribution` SED, initial Fermi level and the mobile part of
  the PSED of each experiment vs site energy E - E0 [eV] (Fig. 4).

Inputs are plain numpy arrays / dicts (no fitter, no dolfinx). Colours: native species
blue, foreign species red, green, magenta in order of first appearance. Figures are
``matplotlib.figure.Figure`` objects on an Agg canvas (never registered with pyplot, so
nothing stays open) written atomically by :func:`cait_fem.output.plots.save_figure`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from matplotlib.figure import Figure

from cait_fem.output.plots import save_figure, shades

NATIVE_COLOR = "tab:blue"
FOREIGN_COLORS = ("red", "green", "magenta", "darkorange", "purple", "brown")
_LINESTYLES = ("--", ":", "-.", (0, (5, 1, 1, 1, 1, 1)))
SED_SCALE_M3_EV = 1e27  # SED plotted in units of 1e27 sites m^-3 eV^-1


@dataclass(frozen=True)
class ProfilePanel:
    """One experiment of Fig. 1: measured and model fractions theta = n_i/n_bulk."""
    title: str
    data_depth_nm: np.ndarray
    data_theta: dict[str, np.ndarray]
    model_depth_nm: np.ndarray
    model_theta: dict[str, np.ndarray]
    native: str
    residual_rms: float | None = None


def _vector(name: str, values, length: int | None = None) -> np.ndarray:
    """``values`` as a 1-D float array, of ``length`` if given; ValueError naming ``name``."""
    a = np.asarray(values, dtype=float)
    if a.ndim != 1:
        raise ValueError(f"{name} must be one-dimensional, got shape {a.shape}")
    if length is not None and a.size != length:
        raise ValueError(f"{name} has {a.size} values but {length} are expected")
    return a


def _foreign_color(index: int) -> str:
    return FOREIGN_COLORS[index % len(FOREIGN_COLORS)]


def _log10_positive(values: np.ndarray) -> np.ndarray:
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(np.isfinite(values) & (values > 0), np.log10(values), np.nan)


def _profile_xmax_nm(depth: np.ndarray, foreign: list[np.ndarray], model_depth: np.ndarray,
                     model_foreign: list[np.ndarray]) -> float:
    """1.5x the deepest depth where a foreign fraction exceeds 0.05 (data or model), never
    beyond the deepest data point (the model's without data); the whole range if there is
    no such point."""
    deepest = [float(np.max(x[y > 0.05])) for x, ys in ((depth, foreign), (model_depth, model_foreign))
               for y in ys if np.any(y > 0.05)]
    finite = depth[np.isfinite(depth)]
    if not finite.size:
        finite = model_depth[np.isfinite(model_depth)]
    limit = float(finite.max()) if finite.size else 1.0
    xmax = 1.5 * max(deepest) if deepest and max(deepest) > 0 else limit
    return min(xmax, limit) if limit > 0 else max(xmax, 1.0)


def plot_profile_fits(panels: Sequence[ProfilePanel], path) -> Path:
    """Fig. 1: one panel per experiment, data dashed with markers, model solid, same colour."""
    if not panels:
        raise ValueError("panels must contain at least one ProfilePanel")
    foreign_order: list[str] = []  # consistent colours over all panels (K red, Rb green, ...)
    for p in panels:
        for name in [*p.data_theta, *p.model_theta]:
            if name != p.native and name not in foreign_order:
                foreign_order.append(name)
    fig = Figure(figsize=(4.0 * len(panels) + 0.8, 4.2), layout="constrained")
    axes = fig.subplots(1, len(panels), sharey=True, squeeze=False)[0]
    for k, (ax, p) in enumerate(zip(axes, panels)):
        tag = f"panels[{k}]"
        depth = _vector(f"{tag}.data_depth_nm", p.data_depth_nm)
        model_depth = _vector(f"{tag}.model_depth_nm", p.model_depth_nm)
        data = {s: _vector(f"{tag}.data_theta[{s!r}]", y, depth.size) for s, y in p.data_theta.items()}
        model = {s: _vector(f"{tag}.model_theta[{s!r}]", y, model_depth.size) for s, y in p.model_theta.items()}
        if p.native not in data and p.native not in model:
            raise ValueError(f"{tag}.native {p.native!r} is in neither data_theta nor model_theta")
        species = [p.native] + [s for s in foreign_order if s in data or s in model]
        for s in species:
            color = NATIVE_COLOR if s == p.native else _foreign_color(foreign_order.index(s))
            if s in data:
                ax.plot(depth, data[s], ls="--", lw=1.0, marker="o", ms=2.5, color=color,
                        markevery=max(1, depth.size // 60), label=f"{s} measured")
            if s in model:
                ax.plot(model_depth, model[s], ls="-", lw=1.8, color=color, label=f"{s} model")
        xmax = _profile_xmax_nm(depth, [y for s, y in data.items() if s != p.native], model_depth,
                                [y for s, y in model.items() if s != p.native])
        ax.set_xlim(0.0, xmax)
        ax.set_ylim(0.0, 1.1)
        ax.set_xlabel("depth / nm")
        ax.set_title(p.title)
        ax.grid(alpha=0.3)
        rms = p.residual_rms
        ax.legend(fontsize=7, loc="center right",
                  title=None if rms is None else f"rms residual {rms:.3g}", title_fontsize=7)
    axes[0].set_ylabel(r"fraction $n_i / n_\mathrm{bulk}$")
    return save_figure(fig, Path(path))


def plot_diffusivity_fit(theta, D_native_m2_s, band_low_m2_s, band_high_m2_s, foreign: Mapping[str, float],
                         path, *, native: str = "Li", knots: tuple[np.ndarray, np.ndarray] | None = None,
                         per_experiment: Mapping[str, np.ndarray] | None = None) -> Path:
    """Fig. 2: log10 D_native(theta) with its 95 % band (drawn only if both band arrays are
    given), constant foreign D as horizontal lines, optional tabulated knots (markers) and
    per-experiment native curves (dashed, blue shades)."""
    theta = _vector("theta", theta)
    d_native = _vector("D_native_m2_s", D_native_m2_s, theta.size)
    low = None if band_low_m2_s is None else _vector("band_low_m2_s", band_low_m2_s, theta.size)
    high = None if band_high_m2_s is None else _vector("band_high_m2_s", band_high_m2_s, theta.size)
    fig = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    if low is not None and high is not None:
        ax.fill_between(theta, _log10_positive(low), _log10_positive(high), color=NATIVE_COLOR,
                        alpha=0.2, lw=0, label="95 % confidence band")
    ax.plot(theta, _log10_positive(d_native), color=NATIVE_COLOR, lw=2.0, label=f"{native}$^+$ (fit)")
    if per_experiment:
        blues = shades("Blues", len(per_experiment))
        for j, (name, d) in enumerate(per_experiment.items()):
            d = _vector(f"per_experiment[{name!r}]", d, theta.size)
            ax.plot(theta, _log10_positive(d), color=blues[j], lw=1.3, ls=_LINESTYLES[j % len(_LINESTYLES)],
                    label=f"{native}$^+$, {name}")
    if knots is not None:
        if len(knots) != 2:
            raise ValueError("knots must be a pair (theta_k, D_k)")
        theta_k = _vector("knots[0] (theta_k)", knots[0])
        d_k = _vector("knots[1] (D_k)", knots[1], theta_k.size)
        ax.plot(theta_k, _log10_positive(d_k), ls="none", marker="o", ms=5, mfc="white",
                mec=NATIVE_COLOR, mew=1.3, label="knots")
    for j, (name, d) in enumerate(foreign.items()):
        d = float(d)
        if not (np.isfinite(d) and d > 0):
            raise ValueError(f"foreign[{name!r}] must be a positive finite D, got {d!r}")
        ax.axhline(np.log10(d), color=_foreign_color(j), lw=1.8,
                   label=f"{name}$^+$: D = {d:.3g} m$^2$ s$^{{-1}}$")
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel(rf"native fraction $n_\mathrm{{{native}}} / n_\mathrm{{bulk}}$")
    ax.set_ylabel(r"$\log_{10}(D$ / m$^2$ s$^{-1})$")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return save_figure(fig, Path(path))


def plot_site_energy_distribution(E_eV, sed_m3_eV, populated_initial_m3_eV,
                                  mobile_by_experiment: Mapping[str, np.ndarray], fermi_level_bulk_eV: float,
                                  path, *, fermi_levels_plateau_eV: Mapping[str, float] | None = None) -> Path:
    """Fig. 4: full SED (black), initially populated part (thin blue), mobile PSED of the
    first experiment filled blue and of the others as blue dashed/dotted lines, initial
    Fermi level dashed and each experiment's plateau Fermi level dotted (foreign colours)."""
    energy = _vector("E_eV", E_eV)
    sed = _vector("sed_m3_eV", sed_m3_eV, energy.size) / SED_SCALE_M3_EV
    populated = _vector("populated_initial_m3_eV", populated_initial_m3_eV, energy.size) / SED_SCALE_M3_EV
    mobile = {name: _vector(f"mobile_by_experiment[{name!r}]", y, energy.size) / SED_SCALE_M3_EV
              for name, y in mobile_by_experiment.items()}
    fig = Figure(figsize=(6.5, 4.5), layout="constrained")
    ax = fig.add_subplot()
    ax.plot(energy, sed, color="black", lw=1.8, label="SED")
    ax.plot(energy, populated, color=NATIVE_COLOR, lw=0.8, alpha=0.6, label="populated, t = 0")
    for j, (name, y) in enumerate(mobile.items()):
        if j == 0:
            ax.fill_between(energy, 0.0, y, color=NATIVE_COLOR, alpha=0.45, lw=0, label=f"mobile PSED, {name}")
        else:
            ax.plot(energy, y, color=NATIVE_COLOR, lw=1.4, ls=_LINESTYLES[(j - 1) % len(_LINESTYLES)],
                    label=f"mobile PSED, {name}")
    ax.axvline(fermi_level_bulk_eV, color="black", ls="--", lw=1.0,
               label=rf"$E_\mathrm{{F}}(t = 0)$ = {fermi_level_bulk_eV:.3g} eV")
    for j, (name, e_f) in enumerate((fermi_levels_plateau_eV or {}).items()):
        ax.axvline(e_f, color=_foreign_color(j), ls=":", lw=1.2, label=rf"$E_\mathrm{{F}}$ plateau, {name}")
    ax.set_xlabel(r"site energy $E - E_0$ / eV")
    ax.set_ylabel(r"site density / $10^{27}$ m$^{-3}$ eV$^{-1}$")
    ax.set_ylim(bottom=0.0)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7, loc="best")
    return save_figure(fig, Path(path))
