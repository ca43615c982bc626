"""What a 2D/3D run writes besides the 1D files of its axis profile.

At every output time: the VTX time series of all fields (``fields.bp``, for ParaView) and
line profiles across the rim of the beam spot at a few depths and along the surface; at
the end: the CSV/PNG of those profiles and a PNG of the foreign fraction near the rim,
where the replaced zone bends. The depths and the window scale with ``mesh.fine_depth_m``,
the depth the case expects the front to reach.

Everything is collective (all ranks call it); sampling is parallel-correct
(:mod:`cait_fem.post.sampling`), and only rank 0 writes the CSV/PNG files, atomically.
"""

from __future__ import annotations

from pathlib import Path

from mpi4py import MPI

import numpy as np

from cait_fem.errors import ConfigError
from cait_fem.fileio import existing_files, write_csv_atomic
from cait_fem.output.result import EXPORT_FILES, on_root

from .fields import FieldWriter, plot_field_window
from .sampling import PointSampler, WindowSampler, lateral_line, state_fields

RIM_DEPTH_FRACTIONS = (0.1, 0.3, 0.6)  # of mesh.fine_depth_m
RIM_POINTS = 401
OUTPUT_FILES = EXPORT_FILES


class SpotExports:
    """Exports of a 2D/3D :class:`~cait_fem.run.simulation.Simulation` into ``directory``;
    pass it as ``run(callbacks=[...])`` (written at every output time, closed at the end) and
    call :meth:`save` after the run."""

    def __init__(self, sim, directory, *, overwrite: bool = False, rim_depths_nm=None,
                 rim_half_width_nm: float | None = None):
        exp, sc = sim.experiment, sim.scales
        geometry = exp.geometry
        if geometry.kind == "slab":
            raise ConfigError('SpotExports: geometry.kind = "slab" has no lateral extent (its profiles are '
                              "the Result's)")
        self.directory = Path(directory)
        self.directory.mkdir(parents=True, exist_ok=True)
        clash = existing_files(self.directory, OUTPUT_FILES)
        if clash and not overwrite:
            raise ConfigError(f"{self.directory}: {', '.join(clash)} exist; refusing to overwrite them "
                              "(use another directory or overwrite)")
        self.sim, self.comm = sim, sim.comm
        self.names = [s.name for s in exp.species]
        self.kT = sc.potential_V
        domain = sim.domain
        x = domain.geometry.x
        lateral_max = self.comm.allreduce(float(x[:, 0].max(initial=-np.inf)), op=MPI.MAX)
        fine_nm = exp.depth_resolution.fine_depth_m / sc.length_m
        rim = lateral_max if geometry.full_spot else geometry.spot_radius_m / sc.length_m
        self.rim_nm = rim
        half = 2.0 * fine_nm if rim_half_width_nm is None else float(rim_half_width_nm)
        lateral = np.linspace(max(0.0, rim - half), min(lateral_max, rim + half), RIM_POINTS)
        depths = [f * fine_nm for f in RIM_DEPTH_FRACTIONS] if rim_depths_nm is None else list(rim_depths_nm)
        self.rim_lateral_nm = lateral
        self.rim_depths_nm = depths
        self._rim = [PointSampler(domain, lateral_line(domain, d, lateral)) for d in depths]
        surface = np.linspace(0.0, lateral_max, RIM_POINTS)
        self.surface_lateral_nm = surface
        self._surface = PointSampler(domain, lateral_line(domain, 0.0, surface))
        self._window = WindowSampler(domain, (lateral[0], lateral[-1]), (0.0, fine_nm))
        self.fields = FieldWriter(self.directory / "fields.bp", sim.forms, self.names, self.kT,
                                  overwrite=overwrite)
        self.times_s: list[float] = []
        self.rim: list[list[dict]] = []  # [time][depth] -> fields
        self.surface: list[dict] = []

    def write(self, t_s: float) -> None:
        u = self.sim.forms.u
        self.fields.write(t_s)
        self.times_s.append(t_s)
        self.rim.append([state_fields(s.values(u), self.names, self.kT) for s in self._rim])
        self.surface.append(state_fields(self._surface.values(u), self.names, self.kT))

    def close(self) -> None:
        self.fields.close()

    # as a callback of Simulation.run (cait_fem.run.callbacks.Callback)
    def on_step(self, step) -> None:
        pass

    def on_output(self, t_s: float, step=None) -> None:
        self.write(t_s)

    def on_end(self, error=None) -> None:
        self.close()

    def save(self) -> list[Path]:
        """CSV and PNG of the line profiles, and the field near the rim at the last output
        time (the state the simulation holds now). Collective."""
        foreign = f"theta_{self.names[1]}"
        window = plot_field_window(self._window, self.sim.forms.u, foreign, None,
                                   self.directory / "field_near_rim.png", species_names=self.names,
                                   potential_V=self.kT, comm=self.comm, contour_levels=[0.5],
                                   title=f"{foreign} near the spot rim (r = {self.rim_nm:.0f} nm), "
                                         f"t = {self.times_s[-1]:.4g} s")
        keys = list(self.surface[0])

        def write_tables():
            rows = {"time_s": [], "depth_nm": [], "lateral_nm": [], **{k: [] for k in keys}}
            for t, per_depth in zip(self.times_s, self.rim):
                for d, fields in zip(self.rim_depths_nm, per_depth):
                    n = len(self.rim_lateral_nm)
                    rows["time_s"] += [t] * n
                    rows["depth_nm"] += [d] * n
                    rows["lateral_nm"] += list(self.rim_lateral_nm)
                    for k in keys:
                        rows[k] += list(fields[k])
            write_csv_atomic(self.directory / "rim_profiles.csv", list(rows), list(rows.values()))
            srows = {"time_s": [], "lateral_nm": [], **{k: [] for k in keys}}
            for t, fields in zip(self.times_s, self.surface):
                srows["time_s"] += [t] * len(self.surface_lateral_nm)
                srows["lateral_nm"] += list(self.surface_lateral_nm)
                for k in keys:
                    srows[k] += list(fields[k])
            write_csv_atomic(self.directory / "surface_profile.csv", list(srows), list(srows.values()))
            _plot_rim(self, foreign)

        on_root(self.comm, write_tables)
        return [self.directory / n for n in OUTPUT_FILES[1:5]] + [window]


def _plot_rim(exports: SpotExports, foreign: str) -> None:
    """Foreign fraction across the rim at each depth, and the surface potential across the
    whole front, at the last output time."""
    from matplotlib.figure import Figure

    from cait_fem.output.plots import save_figure

    fig = Figure(figsize=(7.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    x_um = (exports.rim_lateral_nm - exports.rim_nm) / 1e3
    for d, fields in zip(exports.rim_depths_nm, exports.rim[-1]):
        ax.plot(x_um, fields[foreign], label=f"depth {d:.0f} nm")
    ax.axvline(0.0, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("distance from the spot rim / µm (lateral)")
    ax.set_ylabel(foreign)
    ax.set_title(f"across the rim, t = {exports.times_s[-1]:.4g} s")
    ax.legend()
    save_figure(fig, exports.directory / "rim_profiles.png")

    fig = Figure(figsize=(7.0, 4.2), layout="constrained")
    ax = fig.add_subplot()
    for t, fields in zip(exports.times_s, exports.surface):
        ax.plot(exports.surface_lateral_nm / 1e3, fields["phi_V"], label=f"t = {t:.4g} s")
    ax.axvline(exports.rim_nm / 1e3, color="0.6", lw=0.8, ls=":")
    ax.set_xlabel("lateral position / µm")
    ax.set_ylabel("surface potential φ_s / V")
    ax.legend()
    save_figure(fig, exports.directory / "surface_profile.png")

