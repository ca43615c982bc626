"""Parallel-correct point sampling of (blocked) Functions on 1D/2D/3D meshes.

Coordinates follow :mod:`cait_fem.case.geometry`: dimensionless, in units of 1 nm
(:data:`cait_fem.fem.scales.LENGTH_SCALE_M`), so a point given here in "nm" is the mesh
coordinate itself; the depth is the *last* coordinate (0 at the beam-facing front), the
lateral coordinates come first and are centred on the beam spot.

Why not just ``Function.eval`` on every rank: under MPI each rank holds only its part of the
mesh plus a layer of ghost cells. A point on a partition boundary (or in a ghost cell) is
found by several ranks, a point elsewhere by one, and a plain gather would double-count or
drop it. :class:`PointSampler` decides once, at construction, which single rank evaluates
each point (the lowest rank that owns a cell containing it; ghost cells are left out of the
search because they are another rank's owned cells), so that :meth:`PointSampler.values`
costs one ``Function.eval`` on the local points and one ``Allreduce``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from mpi4py import MPI

import numpy as np
from dolfinx import geometry as dgeom

from cait_fem.fem.state import StateLayout

_MAX_LISTED = 5  # missing points named in the error message


def _fmt_point(p) -> str:
    # repr, not %g: a point 1e-8 nm beyond a boundary at 4e5 nm must not print as on it
    return "(" + ", ".join(repr(float(v)) for v in p) + ")"


class PointSampler:
    """Evaluate Functions on ``domain`` at fixed points; every rank gets every value.

    ``points_nm``: array (n_points, gdim) of mesh coordinates (nm; depth last), the same on
    every rank of ``domain.comm`` (checked; construction and :meth:`values` are collective).
    For a 1D mesh a flat array of depths is accepted. A point outside the mesh raises a
    ValueError naming the first few such points: nothing is clipped or extrapolated. The
    boundary is as sharp as dolfinx's collision test (a point 1e-8 nm beyond the edge of a
    4e5 nm mesh is outside), so put points on a boundary by its exact coordinate.
    """

    def __init__(self, domain, points_nm):
        self.domain = domain
        self.comm = domain.comm
        gdim = domain.geometry.dim
        pts = np.array(points_nm, dtype=np.float64)
        if pts.ndim == 1 and gdim == 1:
            pts = pts.reshape(-1, 1)
        if pts.ndim != 2 or pts.shape[1] != gdim:
            raise ValueError(f"points must have shape (n_points, {gdim}) for this {gdim}D mesh, "
                             f"got {np.shape(points_nm)}")
        if not np.all(np.isfinite(pts)):
            raise ValueError("points contain NaN or inf")
        pts.setflags(write=False)
        self.points_nm = pts
        rank, size = self.comm.Get_rank(), self.comm.Get_size()
        # Differing points per rank would make the Allreduce of values() mix unrelated data.
        digest = hashlib.sha1(pts.tobytes()).hexdigest()
        if len(set(self.comm.allgather(digest))) != 1:
            raise ValueError("PointSampler: every rank must pass the same points")

        # dolfinx expects points with 3 coordinates whatever the geometric dimension.
        x3 = np.zeros((len(pts), 3), dtype=domain.geometry.x.dtype)
        x3[:, :gdim] = pts
        tdim = domain.topology.dim
        n_owned = domain.topology.index_map(tdim).size_local
        found = np.zeros(len(pts), dtype=bool)
        first_cell = np.full(len(pts), -1, dtype=np.int32)
        if n_owned > 0 and len(pts) > 0:
            # Owned cells only: a ghost cell is some other rank's owned cell, so every point of
            # the mesh is still found somewhere, and "lowest claiming rank" is well defined.
            tree = dgeom.bb_tree(domain, tdim, entities=np.arange(n_owned, dtype=np.int32))
            candidates = dgeom.compute_collisions_points(tree, x3)
            colliding = dgeom.compute_colliding_cells(domain, candidates, x3)
            offsets = np.asarray(colliding.offsets)
            found = np.diff(offsets) > 0
            first_cell[found] = np.asarray(colliding.array)[offsets[:-1][found]]
        claim = np.where(found, rank, size).astype(np.int32)
        owner = np.empty_like(claim)
        self.comm.Allreduce(claim, owner, op=MPI.MIN)
        #: how many ranks hold each point in an owned cell (> 1 on partition boundaries)
        self.claims = np.empty(len(pts), dtype=np.int32)
        self.comm.Allreduce(found.astype(np.int32), self.claims, op=MPI.SUM)
        missing = np.flatnonzero(owner == size)
        if missing.size:
            raise ValueError(self._missing_message(missing))
        self._local = np.flatnonzero(owner == rank)
        self._cells = np.ascontiguousarray(first_cell[self._local])
        self._x3 = np.ascontiguousarray(x3[self._local])

    def _missing_message(self, missing) -> str:
        """Collective (all ranks know ``missing``): adds the mesh's global extent."""
        gdim = self.domain.geometry.dim
        x = self.domain.geometry.x[:, :gdim]
        lo = np.full(gdim, np.inf) if x.size == 0 else x.min(axis=0)
        hi = np.full(gdim, -np.inf) if x.size == 0 else x.max(axis=0)
        lo = self.comm.allreduce(lo, op=MPI.MIN) if self.comm.Get_size() > 1 else lo
        hi = self.comm.allreduce(hi, op=MPI.MAX) if self.comm.Get_size() > 1 else hi
        listed = ", ".join(_fmt_point(self.points_nm[i]) for i in missing[:_MAX_LISTED])
        more = f" and {missing.size - _MAX_LISTED} more" if missing.size > _MAX_LISTED else ""
        extent = " x ".join(f"[{float(a)!r}, {float(b)!r}]" for a, b in zip(lo, hi))
        return (f"{missing.size} of {len(self.points_nm)} sample points lie outside the mesh "
                f"(coordinates in nm, depth last): {listed}{more}; the mesh spans {extent} nm")

    @property
    def n_points(self) -> int:
        return len(self.points_nm)

    @property
    def n_local(self) -> int:
        """Number of points this rank evaluates (sums to ``n_points`` over the ranks)."""
        return len(self._local)

    def values(self, function, *, update_ghosts: bool = True) -> np.ndarray:
        """Values of ``function`` at the points, array (n_points, value_size), on every rank.

        Collective. ``update_ghosts`` first refreshes the function's ghost entries from their
        owners (a cell on a partition boundary reads ghost dofs; stale ghosts would give
        rank-dependent values).
        """
        mesh = function.function_space.mesh
        # another Python wrapper of the same mesh shares its coordinate storage
        if mesh is not self.domain and not np.may_share_memory(mesh.geometry.x, self.domain.geometry.x):
            raise ValueError("the function lives on another mesh than this PointSampler")
        if update_ghosts:
            function.x.scatter_forward()
        value_size = function.function_space.value_size
        out = np.zeros((self.n_points, value_size), dtype=function.x.array.dtype)
        if self.n_local:
            local = np.empty((self.n_local, value_size), dtype=out.dtype)
            function.eval(self._x3, self._cells, u=local)  # fills ``local`` in place
            out[self._local] = local
        # Each point is non-zero on exactly one rank, so the sum is exact (x + 0.0 == x).
        if self.comm.Get_size() > 1:
            self.comm.Allreduce(MPI.IN_PLACE, out, op=MPI.SUM)
        return out


class WindowSampler(PointSampler):
    """A :class:`PointSampler` on a regular (lateral, depth) grid: the rectangle
    ``lateral_range_nm x depth_range_nm`` of a 2D mesh, or of the plane y = 0 of a 3D mesh,
    with ``shape = (n_lateral, n_depth)`` points including the corners."""

    def __init__(self, domain, lateral_range_nm, depth_range_nm, shape=(161, 121)):
        gdim = domain.geometry.dim
        if gdim not in (2, 3):
            raise ValueError(f"a (lateral, depth) window needs a 2D or 3D mesh, this one is {gdim}D")
        ranges = []
        for name, r in (("lateral_range_nm", lateral_range_nm), ("depth_range_nm", depth_range_nm)):
            lo, hi = (float(v) for v in r)
            if not (np.isfinite(lo) and np.isfinite(hi) and lo < hi):
                raise ValueError(f"{name} = {r!r}: need finite (min, max) with min < max")
            ranges.append((lo, hi))
        n_lat, n_depth = (int(n) for n in shape)
        if n_lat < 2 or n_depth < 2:
            raise ValueError(f"shape = {shape!r}: need at least 2 points per direction")
        self.lateral_range_nm, self.depth_range_nm = ranges
        self.lateral_nm = np.linspace(*ranges[0], n_lat)
        self.depth_nm = np.linspace(*ranges[1], n_depth)
        lat, dep = np.meshgrid(self.lateral_nm, self.depth_nm)  # (n_depth, n_lateral)
        pts = np.zeros((lat.size, gdim))
        pts[:, 0], pts[:, -1] = lat.ravel(), dep.ravel()  # 3D: y = 0 (through the spot centre)
        super().__init__(domain, pts)

    def grid(self, column: np.ndarray) -> np.ndarray:
        """One column of :meth:`values` as an (n_depth, n_lateral) image."""
        return np.asarray(column).reshape(len(self.depth_nm), len(self.lateral_nm))


def depth_line(domain, depths_nm, lateral_nm=None) -> np.ndarray:
    """Points (n, gdim) along the depth at fixed lateral coordinates (default: the spot
    centre, all lateral coordinates 0)."""
    gdim = domain.geometry.dim
    depths = np.asarray(depths_nm, dtype=np.float64).reshape(-1)
    lateral = np.zeros(gdim - 1) if lateral_nm is None else np.asarray(lateral_nm, dtype=np.float64).reshape(-1)
    if lateral.size != gdim - 1:
        raise ValueError(f"lateral_nm needs {gdim - 1} coordinate(s) on a {gdim}D mesh, got {lateral.size}")
    pts = np.empty((depths.size, gdim))
    pts[:, :-1] = lateral
    pts[:, -1] = depths
    return pts


def lateral_line(domain, depth_nm: float, lateral_positions_nm) -> np.ndarray:
    """Points (n, gdim) along the first lateral coordinate (x, or r) at a fixed depth, the
    other lateral coordinate (3D: y) 0: a line through the spot centre across its rim."""
    gdim = domain.geometry.dim
    if gdim < 2:
        raise ValueError("a lateral line needs a 2D or 3D mesh; the 1D slab has no lateral extent")
    lateral = np.asarray(lateral_positions_nm, dtype=np.float64).reshape(-1)
    pts = np.zeros((lateral.size, gdim))
    pts[:, 0] = lateral
    pts[:, -1] = float(depth_nm)
    return pts


def _layout(species_names) -> StateLayout:
    # only the column layout matters here, not the charges
    return StateLayout(tuple(species_names), (1,) * len(species_names))


def field_names(species_names) -> list[str]:
    """Output names of the state components: ``theta_<species>`` in state order, ``phi_V``
    (:attr:`cait_fem.fem.state.StateLayout.field_names`)."""
    return _layout(species_names).field_names


def state_fields(values: np.ndarray, species_names, potential_V: float) -> dict[str, np.ndarray]:
    """Physical fields from sampled state values (n, n_species + 1) = [w, theta_2.., psi]:
    native theta = 1 + w (w is stored for accuracy near theta = 1), phi [V] = psi * kT/e
    (:meth:`cait_fem.fem.state.StateLayout.fields`)."""
    values = np.asarray(values)
    layout = _layout(species_names)
    if values.ndim != 2 or values.shape[1] != layout.block_size:
        raise ValueError(f"state values must have {layout.block_size} columns for {layout.n_species} species, "
                         f"got shape {values.shape}")
    return layout.fields(values, potential_V)


@dataclass(frozen=True)
class LineProfile:
    """Fields along a line: ``along`` is "depth" or "lateral", ``coordinate_nm`` the varying
    coordinate, ``fields`` maps ``theta_<species>`` / ``phi_V`` to arrays; ``comm`` is the
    sampler's communicator (whose rank 0 writes the files)."""

    along: str
    coordinate_nm: np.ndarray
    fields: dict
    points_nm: np.ndarray
    comm: object = field(default=None, repr=False, compare=False)

    @property
    def coordinate_name(self) -> str:
        return f"{self.along}_nm"

    def table(self) -> tuple[list[str], list[np.ndarray]]:
        """CSV header and columns: coordinate first, then the fields."""
        return [self.coordinate_name, *self.fields], [self.coordinate_nm, *self.fields.values()]


def sample_line_profile(sampler: PointSampler, u, species_names, potential_V: float,
                        along: str = "depth") -> LineProfile:
    """Sample the state ``u`` on a line built by :func:`depth_line` (``along="depth"``) or
    :func:`lateral_line` (``along="lateral"``). Collective; the result is on every rank."""
    pts = sampler.points_nm
    if along == "depth":
        coord, fixed = pts[:, -1], pts[:, :-1]
    elif along == "lateral":
        coord, fixed = pts[:, 0], np.delete(pts, 0, axis=1)
    else:
        raise ValueError(f"along = {along!r}: must be 'depth' or 'lateral'")
    # A profile "along depth" whose lateral position wanders would be mislabelled.
    if fixed.size and np.ptp(fixed, axis=0).max() > 0:
        raise ValueError(f"the sampler's points are not a line along the {along}: other coordinates vary")
    fields = state_fields(sampler.values(u), species_names, potential_V)
    return LineProfile(along, coord.copy(), fields, pts, sampler.comm)
