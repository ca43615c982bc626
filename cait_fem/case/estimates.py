"""A-priori size of a run: mesh cells and nodes, and the fewest time steps it can take.

Pure arithmetic on the validated settings (no arrays, no gmsh, no DOLFINx), so that an
experiment whose mesh would not fit in memory, or whose run cannot finish within
``run.max_steps``, is refused when the case is read, in well under a second -- before
:func:`cait_fem.mesh.depth_grading.graded_nodes_m` would build a 3e8-node array or gmsh a
mesh of hundreds of MB.

Mesh. The 1D count follows the rules of :mod:`cait_fem.mesh.depth_grading` (surface
grading, uniform fine region, geometric growth to the bulk spacing), each geometric
stretch counted from its series in closed form; it is exact up to one or two cells (a
sliver cell merged at the back). The 2D meshes are the depth layers times the lateral
cells of :mod:`cait_fem.mesh.lateral_grading` (counted the same way), two triangles per
quadrilateral. The 3D front face is triangulated by gmsh with the size field
``h(d) = min(h_max, h_rim + (g - 1) d)`` (d: distance to the nearest rim); its triangle
count is estimated as the integral of dA / (0.8 sqrt(3)/4 h^2) (gmsh's triangles of
size h are a little smaller than equilateral ones of edge h), within 10 % of gmsh's for
meshes of 1e5 cells and more (small ones, where the rim circles' discretisation
dominates, have up to 3 times more), and every prism of the extrusion is three
tetrahedra. A mesh from ``geometry.mesh_file`` is not estimated (its size is the file's);
only its depth axis, which the run samples, is.

Steps. Every proposal of the step-size controller (:mod:`cait_fem.solver.stepsize`) is at
most twice the previous step and never above ``run.dt_max_s``, so after n steps
t <= dt_initial (2^n - 1) while the steps grow, then dt_max per step: a lower bound on
the number of steps, whatever the physics. A run that needs more than ``run.max_steps``
cannot finish and is refused. Without ``dt_max_s`` the bound is only logarithmic: even
``t_end_s = 1e30`` from ``dt_initial_s = 1e-9`` needs just 130 steps, so a long run is
not refused -- whether the solution lets the steps grow that fast is known only by
running it (the run then stops at ``run.max_steps`` with a SolverError).
"""

from __future__ import annotations

import math

from cait_fem.errors import ConfigError

from .resolution import explicit_resolution

#: default of ``mesh.max_cells``: the SCALE3D benchmark's largest mesh (2.1e6 tets,
#: bench/scale3d.py) passes; a 1D mesh never comes near it.
DEFAULT_MAX_CELLS = 5_000_000
#: mean area of gmsh's triangles for the size field h, in units of h^2: 0.8 of the
#: equilateral triangle's sqrt(3)/4 (measured on the SCALE3D meshes: 2.1e6 tets estimated
#: as 2.3e6, 2.5e5 as 2.4e5, 9.8e4 as 9.1e4)
_TRIANGLE_AREA = 0.8 * math.sqrt(3.0) / 4.0


def _ceil(x: float) -> int | float:
    """ceil(x), or math.inf when x is beyond floating point (a spacing of 1e-320 m)."""
    return math.ceil(x) if math.isfinite(x) else math.inf


def _round(x: float) -> int | float:
    return round(x) if math.isfinite(x) else math.inf


def geometric_cells(length_m: float, first_m: float, ratio: float, max_m: float) -> int:
    """Cells filling ``length_m`` [m] when the first is ``first_m`` [m] and each next one
    ``ratio`` (>= 1) times larger, up to ``max_m`` [m]: the count of
    :func:`cait_fem.mesh.lateral_grading` and of the bulk grading of the depth mesh, in
    closed form (within one cell of the loop's count)."""
    if length_m <= 0.0:
        return 0
    first = min(first_m, max_m)
    if ratio <= 1.0 or first >= max_m:
        return _ceil(length_m / first)
    log_ratio = math.log(ratio)
    # growing cells first * ratio^j below max_m, and the length they cover
    growing = max(_ceil(math.log(max_m / first) / log_ratio), 0)
    covered = first * math.expm1(growing * log_ratio) / (ratio - 1.0)
    if covered >= length_m:
        return max(_ceil(math.log1p(length_m * (ratio - 1.0) / first) / log_ratio), 1)
    return growing + _ceil((length_m - covered) / max_m)


def depth_cells(thickness_m: float, mesh, resolution=None) -> dict:
    """Cells of the 1D depth grading of ``mesh`` (:class:`~cait_fem.case.experiment.MeshSettings`)
    with the rule ``resolution`` (:class:`~cait_fem.case.resolution.DepthResolution`;
    default the explicit settings) over ``thickness_m`` [m], by region: ``surface`` (graded
    from surface_spacing_m), ``fine`` (the rule's spacing up to its fine depth), ``bulk``
    (growing to bulk_spacing_m) and ``total``."""
    res = resolution if resolution is not None else explicit_resolution(mesh)
    h0, g = res.front_spacing_m, mesh.growth_ratio
    s = min(mesh.surface_spacing_m, h0)
    surface = max(_ceil(math.log(h0 / s) / math.log(g)), 0) if s < h0 else 0
    start = s * math.expm1(surface * math.log(g)) / (g - 1.0)
    fine_end = min(res.fine_depth_m, thickness_m)
    slope = res.spacing_slope
    if slope == 0.0:
        fine = max(_round((fine_end - start) / h0), 1)
        reached, h_end = start + fine * h0, h0
    else:
        fine = res.fine_nodes(start, fine_end, count_only=True)
        reached = fine_end
        h_end = float(res.spacing_m(fine_end))
    if reached >= thickness_m:  # the fine region reaches the back (its overshoot is dropped)
        fine = max(_ceil((thickness_m - start) / h0), 1) if slope == 0.0 else fine
        bulk = 0
    else:
        bulk = geometric_cells(thickness_m - reached, h_end * g, g, mesh.bulk_spacing_m)
    return {"surface": surface, "fine": fine, "bulk": bulk, "total": surface + fine + bulk}


def _rims(geometry) -> list[float]:
    """Spot and electrode rims strictly inside (0, radius_m), as in
    :func:`cait_fem.mesh.lateral_grading.rims_inside`."""
    R = geometry.radius_m
    rims: list[float] = []
    for r in sorted(float(r) for r in (geometry.spot_radius_m, geometry.electrode_radius_m) if r is not None):
        if 0.0 < r < R * (1.0 - 1e-12) and (not rims or r - rims[-1] > 1e-12 * R):
            rims.append(r)
    return rims


def lateral_cells(geometry) -> int:
    """Cells of the lateral grading of a 2D section or axisymmetric section."""
    g, h_max = geometry.lateral_growth_ratio, geometry.lateral_max_spacing_m
    rims = _rims(geometry)
    if not rims:
        return max(2, _ceil(geometry.radius_m / h_max - 1e-9))
    h = min(geometry.rim_spacing_m, h_max)
    breaks = [0.0] + rims + [geometry.radius_m]
    total = 0
    for i, (a, b) in enumerate(zip(breaks[:-1], breaks[1:])):
        if 0 < i < len(breaks) - 2:  # between two rims: graded from both ends
            total += 2 * geometric_cells(0.5 * (b - a), h, g, h_max)
        else:
            total += geometric_cells(b - a, h, g, h_max)
    return total


def _triangles_graded(length_m: float, rim_m: float, outward: bool, h0: float, g: float, h_max: float) -> float:
    """Triangles of the annulus between the circle of radius ``rim_m`` and the one
    ``length_m`` away from it (outward or inward), for the size field h0 + (g - 1) d
    capped at h_max: the integral of 2 pi r dd / (sqrt(3)/4 h(d)^2), in closed form."""
    k = g - 1.0
    d_cap = min((h_max - h0) / k, length_m) if k > 0 else length_m
    sign = 1.0 if outward else -1.0
    # graded part: int_0^dc (r0 + s d) / (h0 + k d)^2 dd
    if k > 0:
        a, b = rim_m - sign * h0 / k, sign / k  # r0 + s d = a + b (h0 + k d)
        u0, u1 = h0, h0 + k * d_cap
        graded = (a * (1.0 / u0 - 1.0 / u1) + b * math.log(u1 / u0)) / k
    else:
        graded = (rim_m * d_cap + sign * 0.5 * d_cap**2) / h0**2
    rest = max(length_m - d_cap, 0.0)
    r_cap = rim_m + sign * d_cap
    uniform = (r_cap * rest + sign * 0.5 * rest**2) / h_max**2
    return 2.0 * math.pi * (graded + uniform) / _TRIANGLE_AREA


def front_triangles(geometry) -> float:
    """Triangles of the front face of a disc or box (see module doc)."""
    R, h_max = geometry.radius_m, geometry.lateral_max_spacing_m
    rims = _rims(geometry)
    # a box [-R, R]^2 counted as the disc of the same area: the rims are circles inside
    outer = R if geometry.kind == "disc" else 2.0 * R / math.sqrt(math.pi)
    if not rims:
        h = min(h_max, R / 2.0)
        return math.pi * outer**2 / (_TRIANGLE_AREA * h * h)
    h0, g = min(geometry.rim_spacing_m, h_max), geometry.lateral_growth_ratio
    total, breaks = 0.0, [0.0] + rims + [outer]
    for i, (a, b) in enumerate(zip(breaks[:-1], breaks[1:])):
        if i == 0:
            total += _triangles_graded(b - a, b, False, h0, g, h_max)
        elif i == len(breaks) - 2:
            total += _triangles_graded(b - a, a, True, h0, g, h_max)
        else:
            half = 0.5 * (b - a)
            total += _triangles_graded(half, a, True, h0, g, h_max) + _triangles_graded(half, b, False, h0, g, h_max)
    return total


def mesh_size(geometry, thickness_m: float, mesh, resolution=None) -> dict:
    """The estimated mesh of ``geometry`` (:class:`~cait_fem.case.geometry.Geometry`) over
    ``thickness_m`` [m] with the depth grading ``mesh`` (MeshSettings): ``dimension``,
    ``depth_cells`` (1D grading; ``depth_regions`` by region), ``lateral`` (lateral cells
    in 2D, front-face triangles in 3D, None in 1D), ``cells`` and ``nodes`` (None for a
    mesh from ``geometry.mesh_file``)."""
    depth = depth_cells(thickness_m, mesh, resolution)
    n_d = depth["total"]
    out = {"dimension": geometry.dimension, "depth_cells": n_d, "depth_regions": depth, "lateral": None}
    if geometry.kind == "slab":
        out.update(cells=n_d, nodes=n_d + 1)
    elif geometry.mesh_file is not None:
        out.update(cells=None, nodes=None)
    elif geometry.dimension == 2:
        n_l = lateral_cells(geometry)
        # float products: inf rather than an integer too large to print
        out.update(lateral=n_l, cells=_round(2.0 * n_l * n_d), nodes=_round((n_l + 1.0) * (n_d + 1.0)))
    else:
        tri = front_triangles(geometry)
        out.update(lateral=_round(tri), cells=_round(3.0 * tri * n_d), nodes=_round((0.5 * tri + 1.0) * (n_d + 1.0)))
    return out


def mesh_estimate(experiment) -> dict:
    """:func:`mesh_size` of an Experiment's geometry, thickness and mesh settings."""
    return mesh_size(experiment.geometry, experiment.glass.thickness_m, experiment.mesh,
                     experiment.depth_resolution)


def minimum_steps(run) -> int | float:
    """The fewest steps in which the controller can reach ``run.t_end_s`` (see module doc):
    steps at most doubling from ``run.dt_initial_s``, never above ``run.dt_max_s``.
    Computed in logarithms, so that no ratio of extreme settings overflows; ``math.inf``
    when even the count is beyond floating point."""
    T, h = run.t_end_s, run.dt_initial_s
    h_max = run.dt_max_s if run.dt_max_s is not None else math.inf
    h = min(h, h_max)
    ratio = T / h
    # the smallest k with h (2^k - 1) >= T: steps doubling all the way
    if math.isfinite(ratio) and ratio < 2.0**52:
        free = max(_ceil(math.log2(ratio + 1.0)), 1)
    else:
        free = _ceil(math.log2(T) - math.log2(h))
    if not math.isfinite(h_max):
        return free
    ramp = max(_ceil(math.log2(h_max) - math.log2(h)), 0)  # doublings before the cap binds
    if ramp >= free:
        return free
    ramp_time = math.ldexp(h, ramp) - h  # < T: finite
    rest = (T - ramp_time) / h_max
    return ramp + _ceil(rest) if math.isfinite(rest) else math.inf


def _mesh_culprit(geometry, mesh, estimate, resolution=None) -> str:
    """The setting that makes the mesh large, as advice in case-file keys."""
    regions = estimate["depth_regions"]
    lateral = estimate["lateral"] or 1
    depth_key = max(("surface", "fine", "bulk"), key=lambda r: regions[r])
    depth_advice = {
        "surface": f"mesh.surface_spacing_m = {mesh.surface_spacing_m!r} (with mesh.growth_ratio = "
                   f"{mesh.growth_ratio!r}) gives {regions['surface']:.3g} surface cells",
        "fine": _fine_advice(mesh, resolution, regions["fine"]),
        "bulk": f"mesh.bulk_spacing_m = {mesh.bulk_spacing_m!r} (with mesh.growth_ratio = "
                f"{mesh.growth_ratio!r}) gives {regions['bulk']:.3g} bulk cells",
    }[depth_key]
    if estimate["dimension"] == 1 or lateral <= estimate["depth_cells"]:
        others = regions["total"] - regions[depth_key]
        return depth_advice + f": coarsen it (the other depth regions have {others} cells)"
    what = "lateral cells" if estimate["dimension"] == 2 else "front-face triangles"
    return (f"geometry.rim_spacing_m = {geometry.rim_spacing_m!r} (with geometry.lateral_growth_ratio = "
            f"{geometry.lateral_growth_ratio!r}, geometry.lateral_max_spacing_m = "
            f"{geometry.lateral_max_spacing_m!r}) gives {lateral:.3g} {what} times {estimate['depth_cells']} "
            "depth cells: coarsen them")


def _fine_advice(mesh, resolution, cells) -> str:
    res = resolution if resolution is not None else explicit_resolution(mesh)
    if mesh.front_spacing_m is not None:
        return (f"mesh.front_spacing_m = {mesh.front_spacing_m!r} over {res.fine_depth_m:.3g} m (mesh.fine_depth_m) "
                f"gives {cells:.3g} depth cells")
    return (f"the depth rule (mesh.cells_per_front_width = {mesh.cells_per_front_width!r}: "
            f"{res.front_spacing_m:.3g} m at the surface growing by {res.spacing_slope:.3g} per metre of depth to "
            f"{res.fine_depth_m:.3g} m) gives "
            f"{cells:.3g} depth cells; lower mesh.cells_per_front_width or set mesh.front_spacing_m")


def check_mesh_size(geometry, thickness_m: float, mesh, resolution=None) -> dict:
    """Refuse (ConfigError) a mesh whose estimate (:func:`mesh_size`) exceeds
    ``mesh.max_cells``; for a ``geometry.mesh_file``, the depth axis only. Returns the estimate."""
    try:
        estimate = mesh_size(geometry, thickness_m, mesh, resolution)
    except ArithmeticError:  # lengths so far apart that their ratios leave floating point
        raise ConfigError(f"the mesh of glass.thickness_m = {thickness_m!r} with geometry.radius_m = "
                          f"{geometry.radius_m!r} and the spacings of [mesh] and [geometry] cannot be counted "
                          "in floating point: give lengths of a physical sample and its mesh") from None
    limit = getattr(mesh, "max_cells", DEFAULT_MAX_CELLS)
    cells = estimate["cells"] if estimate["cells"] is not None else estimate["depth_cells"]
    if cells > limit:
        raise ConfigError(f"mesh.max_cells = {limit!r} is exceeded: the {estimate['dimension']}D mesh would have "
                          f"about {cells:.3g} cells; {_mesh_culprit(geometry, mesh, estimate, resolution)}, or raise "
                          "mesh.max_cells if the machine can hold such a mesh")
    return estimate


def check_steps(run) -> int:
    """Refuse (ConfigError) a run that needs more than ``run.max_steps`` steps
    (:func:`minimum_steps`); returns that minimum."""
    try:
        steps = minimum_steps(run)
    except ArithmeticError:
        steps = math.inf
    if steps > run.max_steps:
        if run.dt_max_s is not None:
            advice = (f"run.t_end_s = {run.t_end_s!r} at no more than run.dt_max_s = {run.dt_max_s!r} per step "
                      f"needs at least {steps:.4g} steps: raise run.dt_max_s to at least "
                      f"{run.t_end_s / run.max_steps:.3g} s or run.max_steps to at least {steps}")
        else:
            advice = (f"run.t_end_s = {run.t_end_s!r} from run.dt_initial_s = {run.dt_initial_s!r}, the step at most "
                      f"doubling, needs at least {steps} steps: raise run.max_steps to at least {steps}")
        raise ConfigError(f"run.max_steps = {run.max_steps!r} is too small: {advice}")
    return steps


def check_size(experiment) -> dict:
    """Both checks for an Experiment; returns ``{"mesh": mesh_size(...), "min_steps": n}``."""
    mesh = check_mesh_size(experiment.geometry, experiment.glass.thickness_m, experiment.mesh,
                           experiment.depth_resolution)
    return {"mesh": mesh, "min_steps": check_steps(experiment.run)}
