"""Field output of 2D/3D runs: VTX time series, line-profile CSV/PNG and a PNG of a field near
the rim of the beam spot. Sampling is done by :mod:`cait_fem.post.sampling` (parallel-correct).

Units: mesh coordinates are dimensionless in nm (:data:`cait_fem.fem.scales.LENGTH_SCALE_M`), and
are written as they are, so **the coordinates in the VTX file are in nm**; theta is the
fraction n_i / n_bg (native theta = 1 + w), phi is in volts (psi * k_B T / e).

Every writer is collective over the mesh's communicator: all ranks call it, the sampled data
reach all ranks, and only rank 0 writes the CSV/PNG files (atomically, :mod:`cait_fem.fileio`).
The VTX file is written jointly by all ranks through ADIOS2: one ``.bp`` directory, not one
per rank; it is not atomic (ADIOS2 appends step by step).
"""

from __future__ import annotations

import math
from pathlib import Path

from mpi4py import MPI  # noqa: F401  (MPI is initialised by mpi4py before DOLFINx)

import numpy as np
from dolfinx import fem
from dolfinx.io import VTXMeshPolicy, VTXWriter
from matplotlib import colormaps
from matplotlib.figure import Figure

from cait_fem.fileio import write_csv_atomic
from cait_fem.output.plots import COLORMAPS, save_figure
from cait_fem.output.result import on_root

from .sampling import LineProfile, PointSampler, WindowSampler, field_names, state_fields


class FieldWriter:
    """VTX (ADIOS2 ``.bp``) time series of the scalar P1 fields ``theta_<species>`` and
    ``phi_V`` of the state ``forms.u``; coordinates in nm, times in seconds.

    The scalar output Functions and the dof maps from the blocked state are made once here;
    :meth:`write` only copies strided components (no form compilation, no interpolation).
    The mesh is written once (``VTXMeshPolicy.reuse``: it does not move). Refuses to replace
    an existing ``path`` unless ``overwrite``. Use as a context manager or call :meth:`close`;
    construction, :meth:`write` and :meth:`close` are collective over the mesh's ranks.

    ``forms``: a :class:`cait_fem.fem.forms.NPPForms` (only ``.domain``, ``.V``, ``.u`` and
    ``.layout`` are used); ``species_names`` in state order (native first); ``potential_V``
    = k_B T / e [V] (``Scales.potential_V``). Works on 1D, 2D and 3D meshes.
    """

    def __init__(self, path, forms, species_names, potential_V: float, comm=None, *,
                 overwrite: bool = False):
        self.path = Path(path)
        if self.path.suffix != ".bp":
            raise ValueError(f"VTX output {self.path} must end in .bp (ParaView recognises it by that)")
        domain = forms.domain
        self.comm = domain.comm if comm is None else comm
        if self.comm.Get_size() != domain.comm.Get_size():
            raise ValueError("FieldWriter: comm must be the mesh's communicator (or None)")
        V, self.layout = forms.V, forms.layout
        n = self.layout.n_species
        self.species_names = list(species_names)
        if len(self.species_names) != n or V.value_size != self.layout.block_size:
            raise ValueError(f"{len(self.species_names)} species names for a state of {n} species "
                             f"and {V.value_size} components")
        if not (math.isfinite(potential_V) and potential_V > 0):
            raise ValueError(f"potential_V = {potential_V!r}: must be a finite number > 0 (kT/e in V)")
        self.potential_V = float(potential_V)
        self.u = forms.u

        def check():
            if self.path.exists() and not overwrite:
                raise FileExistsError(f"{self.path} exists; pass overwrite=True to replace it")
        # Rank 0 checks and the others wait: a rank that looked after rank 0 had opened the
        # file would see it and fail alone, leaving the others hanging in ADIOS2.
        on_root(self.comm, check)

        # One scalar P1 space for all outputs (VTX needs a common element and mesh); the
        # collapsed dofmaps of the components are identical, so component k's values are
        # u.x.array[dofs_k] in that space's order (checked, not assumed).
        Q, dofs0 = V.sub(0).collapse()
        self._dofs = []
        for k in range(self.layout.block_size):
            Vk, dofs = (Q, dofs0) if k == 0 else V.sub(k).collapse()
            if not np.array_equal(Vk.dofmap.list, Q.dofmap.list):
                raise RuntimeError(f"collapsed dofmap of component {k} differs from component 0")
            # 0.11 returns the map as a list of arrays; flatten and check its length
            dofs = np.asarray(dofs, dtype=np.int64).reshape(-1)
            if dofs.size != Q.dofmap.index_map.size_local + Q.dofmap.index_map.num_ghosts:
                raise RuntimeError(f"collapsed dof map of component {k} has {dofs.size} entries")
            self._dofs.append(dofs)
        self.functions = {name: fem.Function(Q, name=name) for name in field_names(self.species_names)}
        self._last_t = -math.inf
        self._closed = False
        self._writer = VTXWriter(self.comm, str(self.path), list(self.functions.values()),
                                 engine="BPFile", mesh_policy=VTXMeshPolicy.reuse)

    def update(self) -> None:
        """Copy the current state into the output Functions (done by :meth:`write`)."""
        u, lay = self.u.x.array, self.layout
        outputs = list(self.functions.values())  # in layout column order
        outputs[lay.native].x.array[:] = lay.native_offset + u[self._dofs[lay.native]]
        for k in lay.foreign:
            outputs[k].x.array[:] = u[self._dofs[k]]
        outputs[lay.psi].x.array[:] = self.potential_V * u[self._dofs[lay.psi]]
        for f in outputs:
            f.x.scatter_forward()  # ghosts from their owners, whatever the state's ghosts were

    def write(self, t_s: float) -> None:
        """Append the fields of the current state at time ``t_s`` [s] (strictly increasing)."""
        if self._closed:
            raise RuntimeError(f"FieldWriter for {self.path} is closed")
        t = float(t_s)
        if not (math.isfinite(t) and t > self._last_t):
            raise ValueError(f"time {t_s!r} s must be finite and after the last one written ({self._last_t} s)")
        self.update()
        self._writer.write(t)
        self._last_t = t

    def close(self) -> None:
        if not self._closed:
            self._writer.close()
            self._closed = True

    # as a callback of Simulation.run (cait_fem.run.callbacks.Callback): written at the
    # output times, closed at the end of the run
    def on_step(self, step) -> None:
        pass

    def on_output(self, t_s: float, step=None) -> None:
        self.write(t_s)

    def on_end(self, error=None) -> None:
        self.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def _species_of(name: str) -> str:
    return name[len("theta_"):]


def _plot_line_profile(profile: LineProfile, path: Path, title: str | None) -> Path:
    fig = Figure(figsize=(7.5, 4.8), layout="constrained")
    ax = fig.add_subplot()
    x = profile.coordinate_nm
    order = np.argsort(x, kind="stable")
    thetas = [k for k in profile.fields if k.startswith("theta_")]
    for j, name in enumerate(thetas):
        color = colormaps[COLORMAPS[j % len(COLORMAPS)]](0.8)
        ax.plot(x[order], profile.fields[name][order], color=color, lw=1.6, label=_species_of(name))
    ax.set_xlabel(f"{profile.along} / nm")
    ax.set_ylabel(r"$\theta = n_i / n_\mathrm{bg}$")
    theta = np.concatenate([profile.fields[k] for k in thetas] + [np.zeros(0)])
    theta = theta[np.isfinite(theta)]
    # the usual theta range, widened to the data: nothing is cut off
    ax.set_ylim(min(-0.02, theta.min(initial=0.0)), max(1.05, theta.max(initial=1.0)))
    ax.grid(alpha=0.3)
    ax2 = ax.twinx()
    ax2.plot(x[order], profile.fields["phi_V"][order], color="0.3", ls="--", lw=1.2, label=r"$\varphi$")
    ax2.set_ylabel(r"$\varphi$ / V")
    lines = ax.get_legend_handles_labels()
    lines2 = ax2.get_legend_handles_labels()
    ax.legend(lines[0] + lines2[0], lines[1] + lines2[1], fontsize=8, loc="best")
    ax.set_title(title or f"profile along the {profile.along}")
    return save_figure(fig, path)


def write_line_profile(profile: LineProfile, csv_path, png_path=None, *, comm=None,
                       title: str | None = None) -> list[Path]:
    """Write ``profile`` (from :func:`cait_fem.post.sampling.sample_line_profile`) as CSV (columns
    ``depth_nm`` or ``lateral_nm``, ``theta_<species>``..., ``phi_V``) and optionally a PNG.
    Only rank 0 of ``comm`` (default: the sampler's, ``profile.comm``) writes; every rank
    returns the paths (or raises rank 0's error)."""
    def write():
        header, columns = profile.table()
        paths = [write_csv_atomic(csv_path, header, columns)]
        if png_path is not None:
            paths.append(_plot_line_profile(profile, Path(png_path), title))
        return [Path(p) for p in paths]
    return on_root(profile.comm if comm is None else comm, write)


def plot_field_window(source, function, component, window, path, *, species_names=None,
                      potential_V: float | None = None, shape=(161, 121), comm=None,
                      title: str | None = None, cmap: str = "viridis", vmin=None, vmax=None,
                      contour_levels=None, lateral_label: str = "lateral / nm") -> Path:
    """PNG of one field over a (lateral, depth) window: e.g. the foreign theta near the rim
    of the beam spot, where the replaced zone bends. Depth increases downward, axes in nm.

    ``source``: a mesh (a :class:`~cait_fem.post.sampling.WindowSampler` of ``shape`` is built for
    ``window``) or a WindowSampler (reuse it for many plots; ``window`` may then be None).
    ``window``: ((lateral_min, lateral_max), (depth_min, depth_max)) in nm; 3D: plane y = 0.
    ``component``: a name of :func:`~cait_fem.post.sampling.field_names` (``theta_<species>``,
    ``phi_V``; needs ``species_names`` and, for phi, ``potential_V``) of the blocked state
    ``function``, or an int: that raw component of ``function``, unconverted.
    Collective (sampling); rank 0 draws. Returns the path on every rank.
    """
    if isinstance(source, PointSampler) and not isinstance(source, WindowSampler):
        raise TypeError("plot_field_window needs a WindowSampler or a mesh, not a PointSampler of arbitrary points")
    if isinstance(source, WindowSampler):
        sampler = source
        if window is not None:
            (l0, l1), (d0, d1) = window
            if not np.allclose([l0, l1, d0, d1], [*sampler.lateral_range_nm, *sampler.depth_range_nm]):
                raise ValueError(f"window {window!r} differs from the sampler's "
                                 f"{(sampler.lateral_range_nm, sampler.depth_range_nm)!r}")
    else:
        if window is None:
            raise ValueError("window is required when source is a mesh")
        sampler = WindowSampler(source, window[0], window[1], shape)
    values = sampler.values(function)
    if isinstance(component, (int, np.integer)):
        if not 0 <= component < values.shape[1]:
            raise ValueError(f"component {component} out of range for {values.shape[1]} components")
        column, label = values[:, int(component)], f"component {int(component)}"
    else:
        if species_names is None:
            raise ValueError(f"component {component!r} needs species_names")
        names = field_names(species_names)
        if component not in names:
            raise ValueError(f"component {component!r} is not one of {names}")
        if component == "phi_V" and potential_V is None:
            raise ValueError("component 'phi_V' needs potential_V (k_B T / e in V)")
        fields = state_fields(values, species_names, 1.0 if potential_V is None else potential_V)
        column = fields[component]
        label = r"$\varphi$ / V" if component == "phi_V" else rf"$\theta_\mathrm{{{_species_of(component)}}}$"
    image = sampler.grid(column)
    domain = sampler.domain
    comm = domain.comm if comm is None else comm

    def draw():
        fig = Figure(figsize=(7.5, 4.8), layout="constrained")
        ax = fig.add_subplot()
        lat, dep = np.meshgrid(sampler.lateral_nm, sampler.depth_nm)
        mesh = ax.pcolormesh(lat, dep, image, shading="gouraud", cmap=cmap, vmin=vmin, vmax=vmax)
        if contour_levels is not None:
            cs = ax.contour(lat, dep, image, levels=list(contour_levels), colors="w", linewidths=0.8)
            ax.clabel(cs, fontsize=7)
        ax.set_xlim(*sampler.lateral_range_nm)
        ax.set_ylim(sampler.depth_range_nm[1], sampler.depth_range_nm[0])  # depth downward
        ax.set_xlabel(lateral_label)
        ax.set_ylabel("depth / nm")
        fig.colorbar(mesh, ax=ax, label=label)
        plane = "  (plane y = 0)" if domain.geometry.dim == 3 else ""
        ax.set_title((title or (component if isinstance(component, str) else label)) + plane)
        return save_figure(fig, Path(path))
    return on_root(comm, draw)
