"""The four standard figures of a run (matplotlib, Agg canvas; no pyplot global state).

- ``profiles.png``     theta of every species vs depth [nm] at every output time (linear),
  x range ~1.5x the deepest front (300 nm if no front is found); plateau and front marked
  for the last time, like Fig. 1 of Gunawan et al. (native and foreign fractions, sharp
  front, plateau);
- ``profiles_log.png`` the same with a logarithmic theta axis;
- ``diffusion.png``    D(theta) [m^2/s] of every species for theta in [0, 1], log axis;
- ``timeseries.png``   current density, surface potential, charge and foreign ions inside
  (with the integrated influx) vs time, log time axis.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.ticker import Formatter, FuncFormatter
from scipy.constants import e as _E_CHARGE

from cait_fem.fileio import atomic_path

# colormap of the j-th species (native first); its shades tell the output times apart
COLORMAPS = ("Blues", "Oranges", "Reds", "Greens", "Purples", "Greys")
DPI = 150


def save_figure(fig: Figure, path: Path) -> Path:
    """Write ``fig`` as a PNG at :data:`DPI` to ``path`` atomically; returns ``path``."""
    if not isinstance(fig.canvas, FigureCanvasAgg):
        FigureCanvasAgg(fig)  # else keep it: its renderer holds the text sizes place_axes measured
    with atomic_path(path) as tmp:
        # zlib level 1 instead of the default 6: the same pixels (PNG is lossless), files
        # about 14 % larger, 30 % less encoding time (35 ms for the four run figures)
        fig.savefig(tmp, format="png", dpi=DPI, pil_kwargs={"compress_level": 1})
    return path


def _adjust(fig: Figure, left: float, right: float, bottom: float, top: float, wspace: float,
            hspace: float) -> None:
    """subplots_adjust with margins and gaps in inches."""
    width, height = fig.get_size_inches()
    nrows, ncols = fig.axes[0].get_subplotspec().get_gridspec().get_geometry()
    axes_w = (width - left - right - (ncols - 1) * wspace) / ncols
    axes_h = (height - bottom - top - (nrows - 1) * hspace) / nrows
    fig.subplots_adjust(left=left / width, right=1.0 - right / width, bottom=bottom / height,
                        top=1.0 - top / height, wspace=wspace / axes_w, hspace=hspace / axes_h)


def place_axes(fig: Figure, *, right: float, bottom: float, top: float, hspace: float = 0.0,
               pad: float = 0.06) -> None:
    """Place the subplot grid of a finished ``fig``: ``right``, ``bottom``, ``top`` margins
    and the row gap ``hspace`` in inches as given; the left margin and the column gaps as
    wide as the y tick labels and y label of each column, plus ``pad``.

    Used instead of ``layout="constrained"``, which measures every label of the figure in
    two extra passes on each save, about half of the drawing time of the run figures. Here
    only the y axes are measured, once (their ticks and labels are then ready for the draw);
    the x labels and titles of these figures are one line, which the given margins hold."""
    fig.set_dpi(DPI)  # text is measured at the resolution it is drawn at
    _adjust(fig, 1.0, right, bottom, top, 1.0, hspace)  # the final heights: the y ticks depend on them
    renderer = FigureCanvasAgg(fig).get_renderer()
    ncols = fig.axes[0].get_subplotspec().get_gridspec().ncols
    room = [0.0] * ncols
    for ax in fig.axes:
        column = ax.get_subplotspec().colspan.start
        labels = ax.yaxis.get_tightbbox(renderer)
        if labels is not None:
            room[column] = max(room[column], (ax.get_window_extent(renderer).x0 - labels.x0) / fig.dpi)
    _adjust(fig, room[0] + pad, right, bottom, top, max(room[1:], default=0.0) + pad, hspace)


_SUPERSCRIPT = str.maketrans("-0123456789", "\u207b\u2070\u00b9\u00b2\u00b3\u2074\u2075\u2076\u2077\u2078\u2079")


def _decade(value: float, _position=None) -> str:
    """Tick label 10^k with a Unicode superscript exponent for decades, nothing between
    them: what matplotlib's default log labels show, without building a mathtext layout
    for every tick (a third of the plotting time of a run)."""
    if not value > 0:
        return ""
    exponent = math.log10(value)
    if abs(exponent - round(exponent)) > 1e-9:
        return ""
    k = int(round(exponent))
    return "1" if k == 0 else "10" if k == 1 else "10" + str(k).translate(_SUPERSCRIPT)


class _LabelsInsideADecade(Formatter):
    """Minor ticks of a log axis: labelled (``%g``) only when the view spans less than
    about one decade, where the decade labels alone would leave the axis unreadable."""

    def __call__(self, value, position=None):
        low, high = sorted(self.axis.get_view_interval())
        return f"{value:g}" if low > 0 and high / low < 20.0 else ""


def _decade_labels(axis) -> None:
    """Decade labels on a log-scaled ``axis`` (``ax.xaxis`` or ``ax.yaxis``; after
    ``set_xscale``/``set_yscale``, which reset the formatters)."""
    axis.set_major_formatter(FuncFormatter(_decade))
    axis.set_minor_formatter(_LabelsInsideADecade())


def _species_order(result) -> list[int]:
    """Native first, then the foreign species in the order of the theta axis."""
    native = result.experiment.native.name
    idx = list(range(len(result.species_names)))
    return sorted(idx, key=lambda i: result.species_names[i] != native)


def shades(cmap_name: str, count: int):
    """``count`` colours from light to dark of the matplotlib colormap ``cmap_name``."""
    from matplotlib import colormaps
    cmap = colormaps[cmap_name]
    return [cmap(v) for v in (np.linspace(0.45, 0.95, count) if count > 1 else [0.85])]


def _metrics_or_nan(result, t):
    try:
        return result.metrics(float(t))
    except Exception:  # noqa: BLE001 - a figure should not fail on a metric
        nan = float("nan")
        return {"plateau_native": nan, "front_position_m": nan, "x50_m": nan, "front_width_m": nan}


def depth_range_nm(result) -> float:
    """Upper x limit: 1.5x the deepest front (or x50) over all output times, at least three
    front widths beyond it; 300 nm if there is no front; never beyond the sample."""
    fronts = []
    for t in result.output_times_s:
        m = _metrics_or_nan(result, t)
        pos = m.get("front_position_m", float("nan"))
        if not math.isfinite(pos):
            pos = m.get("x50_m", float("nan"))
        width = m.get("front_width_m", float("nan"))
        if math.isfinite(pos) and pos > 0:
            fronts.append(max(1.5 * pos, pos + 3 * width) if math.isfinite(width) else 1.5 * pos)
    x = max(fronts) * 1e9 if fronts else 300.0
    depth_max = float(result.depth_m[-1]) * 1e9 if result.depth_m.size else x
    return float(min(max(x, 5.0), depth_max))


def _visible(depth_nm: np.ndarray, x_max_nm: float) -> slice:
    """The nodes up to the first one beyond ``x_max_nm`` [nm]: the rest of a profile lies
    outside the axes (a graded mesh puts many nodes deep in the sample), so drawing, and the
    legend's search for free space, skip it. The data files keep every node."""
    return slice(0, int(np.searchsorted(depth_nm, x_max_nm, side="right")) + 1)


def _profile_figures(result):
    """Yield ("profiles.png", figure), then ("profiles_log.png", the same figure with a log
    theta axis): lines, legend and depth axis are made once, only the theta axis changes."""
    fig = Figure(figsize=(7.5, 4.8))
    ax = fig.add_subplot()
    depth_nm = result.depth_m * 1e9
    x_max = depth_range_nm(result)
    shown = _visible(depth_nm, x_max)
    times = result.output_times_s
    many = len(times) * len(result.species_names) > 12
    profiles = []
    for j, i in enumerate(_species_order(result)):
        name = result.species_names[i]
        for k, (t, color) in enumerate(zip(times, shades(COLORMAPS[j % len(COLORMAPS)], len(times)))):
            show = not many or k == len(times) - 1
            profiles += ax.plot(depth_nm[shown], result.theta[k, i, shown], color=color, lw=1.6,
                                label=f"{name}, t = {t:.3g} s" if show else None)
    m = _metrics_or_nan(result, times[-1]) if len(times) else {}
    plateau, front = m.get("plateau_native", np.nan), m.get("front_position_m", np.nan)
    if math.isfinite(plateau):
        ax.axhline(plateau, color="0.4", ls="--", lw=0.8, label=f"plateau {plateau:.3g}")
    if math.isfinite(front):
        ax.axvline(front * 1e9, color="0.4", ls=":", lw=0.8, label=f"front {front * 1e9:.4g} nm")
    ax.set_xlim(0.0, x_max)
    ax.set_xlabel("depth / nm")
    ax.set_ylim(-0.02, 1.05)
    ax.set_ylabel(r"$\theta = n_i / n_\mathrm{bg}$")
    g = result.experiment.glass
    title = f"{result.experiment.name}: {', '.join(s.name for s in result.experiment.foreign)} into {g.name}"
    ax.set_title(f"{title}, T = {g.temperature_K:g} K" + ("  (lighter = earlier)" if len(times) > 1 else ""))
    ax.grid(alpha=0.3)
    # loc="best" is evaluated at each draw: the log figure gets its own free spot
    ax.legend(fontsize=7, ncol=2 if len(times) * len(result.species_names) > 6 else 1, loc="best")
    place_axes(fig, right=0.22, bottom=0.5, top=0.3)
    yield "profiles.png", fig

    for line in profiles:
        y = line.get_ydata()
        line.set_ydata(np.where(y > 0, y, np.nan))
    ax.set_yscale("log")
    _decade_labels(ax.yaxis)
    positive = result.theta[result.theta > 0]
    low = max(float(positive.min()) if positive.size else 1e-8, 1e-12)
    ax.set_ylim(max(low, 1e-10), 2.0)
    ax.set_ylabel(r"$\theta = n_i / n_\mathrm{bg}$ (log)")
    place_axes(fig, right=0.22, bottom=0.5, top=0.3)
    yield "profiles_log.png", fig


def _diffusion_figure(result) -> Figure:
    fig = Figure(figsize=(6.5, 4.5))
    ax = fig.add_subplot()
    exp = result.experiment
    theta = np.linspace(0.0, 1.0, 401)
    for j, sp in enumerate(sorted(exp.species, key=lambda s: s.role != "native")):
        # Species.diffusion is always a cait_fem.physics.diffusion law (checked when the
        # Species is made): D in numpy, vectorised, floor included, so > 0 on the log axis
        d = sp.diffusion.diffusivity_m2_s(theta, exp.glass.temperature_K)
        ax.plot(theta, d, lw=1.8, color=f"C{j}", label=f"{sp.name} ({sp.role}, {sp.diffusion.model})")
    ax.set_yscale("log")
    _decade_labels(ax.yaxis)
    ax.set_xlim(0.0, 1.0)
    ax.set_xlabel(r"$\theta = n_i / n_\mathrm{bg}$ of the species")
    ax.set_ylabel(r"$D$ / m$^2$ s$^{-1}$")
    ax.set_title(f"diffusion coefficients at T = {exp.glass.temperature_K:g} K")
    ax.grid(alpha=0.3, which="both")
    ax.legend(fontsize=8)
    place_axes(fig, right=0.22, bottom=0.5, top=0.3)
    return fig


def _timeseries_figure(result) -> Figure:
    fig = Figure(figsize=(9.0, 6.5))
    axes = fig.subplots(2, 2, sharex=True)
    t = result.time_s
    keep = t > 0
    panels = [(axes[0, 0], result.current_density_A_m2, r"current density / A m$^{-2}$"),
              (axes[0, 1], result.surface_potential_V, "surface potential / V"),
              (axes[1, 0], result.charge_C_m2, r"charge passed / C m$^{-2}$"),
              (axes[1, 1], result.foreign_inside_m2, r"foreign ions inside / m$^{-2}$")]
    for ax, y, label in panels:
        if keep.any():
            ax.plot(t[keep], y[keep], lw=1.6, color="C0", label="simulated")
        ax.set_ylabel(label)
        ax.grid(alpha=0.3, which="both")
        if label.startswith(("charge", "foreign")) and keep.any() and np.all(y[keep] > 0):
            ax.set_yscale("log")  # both grow ~linearly in t: straight lines on log-log axes
            _decade_labels(ax.yaxis)
    if keep.any():
        axes[1, 1].plot(t[keep], result.influx_integral_m2[keep], lw=1.0, ls="--", color="C3",
                        label="integrated influx")
        if result.has_influx_law:
            # the beam's ions, landed or not: the gap to the influx is the reflected part
            z = result.experiment.beam_species.charge_number
            axes[1, 1].plot(t[keep], result.delivered_charge_C_m2[keep] / (z * _E_CHARGE), lw=1.0, ls=":",
                            color="C2", label="delivered by the beam")
        axes[1, 1].legend(fontsize=8)
        for ax in axes.ravel():
            ax.set_xscale("log")
            _decade_labels(ax.xaxis)
    for ax in axes[1]:
        ax.set_xlabel("time / s")
    fig.suptitle(f"{result.experiment.name}: boundary quantities "
                 f"(conservation error {result.conservation_error:.2g})")
    place_axes(fig, right=0.15, bottom=0.52, top=0.45, hspace=0.16)
    return fig


def run_figures(result):
    """Yield (file name, Figure) of the four figures of ``result`` in the order of
    :data:`cait_fem.output.result.PLOT_FILES`. Use each figure before asking for the next:
    the log profiles are the linear profiles' figure, changed."""
    yield from _profile_figures(result)
    yield "diffusion.png", _diffusion_figure(result)
    yield "timeseries.png", _timeseries_figure(result)


def plot_all(result, directory) -> list[Path]:
    """Write the four PNGs into ``directory`` (atomically) and return their paths."""
    d = Path(directory)
    d.mkdir(parents=True, exist_ok=True)
    return [save_figure(fig, d / name) for name, fig in run_figures(result)]
