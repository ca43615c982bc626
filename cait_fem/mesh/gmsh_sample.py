"""gmsh meshes of the 2D/3D samples of :mod:`cait_fem.case.geometry`, layered in depth.

Every mesh is built from its front (beam) face: a line (section, axisymmetric) with the
lateral grading of :mod:`cait_fem.mesh.lateral_grading`, or a plane face (disc, box) triangulated with a
size field fine at the spot and electrode rims. That face is extruded in depth with
layers exactly at the 1D grading of :func:`cait_fem.mesh.depth_grading.graded_nodes_m`, so the column
of nodes on the axis reproduces the 1D mesh and a beam covering the whole front gives
the 1D solution. Cells are simplices only (extruded quads and prisms are split), because
the forms are written for triangles and tetrahedra.

Coordinates in gmsh are in units of ``unit_m`` (default nm): a model built in metres
would have its nm-spaced points merged by gmsh's geometric tolerance, which is relative
to the model size (and even in nm the 0.01 nm surface layers of a mm-sized sample need
a tighter tolerance, set here). Physical groups carry the numbers and names of
:mod:`cait_fem.mesh.tags`; the checks of a mesh and its tags are in :mod:`cait_fem.mesh.tag_check`.
"""

from __future__ import annotations

import contextlib
import math
import os
from pathlib import Path

import numpy as np

from cait_fem.case.estimates import check_mesh_size
from cait_fem.case.geometry import Geometry
from cait_fem.errors import ConfigError
from cait_fem.fileio import atomic_path

from . import tags
from .depth_grading import graded_nodes_m
from .lateral_grading import lateral_nodes_m, rims_inside
from .partition import column_partitioner
from .tag_check import check_facet_groups, check_gmsh_model, validate_facet_tags

__all__ = ["build_gmsh_model", "create_mesh", "describe_msh", "gmsh_session", "validate_facet_tags", "write_msh"]

MSH_FORMAT_VERSION = 4.1


@contextlib.contextmanager
def gmsh_session(verbose: bool = False):
    """Yield the ``gmsh`` module with a fresh current model; gmsh is initialised here
    unless the caller already did, and then finalised again (the model is removed in
    any case; a caller's gmsh keeps the mesh options set while building). Terminal
    output is silenced unless ``verbose``."""
    import gmsh

    started = not gmsh.isInitialized()
    if started:
        # interruptible=False: gmsh would otherwise reset SIGINT to its default action, which
        # kills the process without removing its staged and temporary files
        gmsh.initialize(readConfigFiles=False, interruptible=False)  # (and no user gmsh config)
    terminal = gmsh.option.getNumber("General.Terminal")
    gmsh.option.setNumber("General.Terminal", 1 if verbose else 0)
    gmsh.model.add("cait_fem")
    try:
        yield gmsh
    finally:
        gmsh.model.remove()
        if started:
            gmsh.finalize()
        else:
            gmsh.option.setNumber("General.Terminal", terminal)


def _rims_m(geometry: Geometry) -> list[float]:
    """Spot and electrode rims strictly inside the sample (the only lateral breaks)."""
    return rims_inside(geometry.radius_m, [geometry.spot_radius_m, geometry.electrode_radius_m])


def _covers(radius_m: float | None, geometry: Geometry) -> float:
    """The radius [m] of a spot/electrode, infinite when it covers the whole face."""
    return math.inf if radius_m is None or radius_m >= geometry.radius_m else radius_m


def _extrude_depth(gmsh, entities, depth_nodes_m: np.ndarray, unit_m: float, dim: int) -> None:
    """Extrude ``entities`` along the depth axis (the last coordinate) with one layer per
    cell of the 1D grading, so that the layer interfaces are exactly its nodes."""
    thickness_m = depth_nodes_m[-1]
    heights = list(depth_nodes_m[1:] / thickness_m)
    heights[-1] = 1.0
    shift = [0.0, 0.0, 0.0]
    shift[dim - 1] = thickness_m / unit_m
    gmsh.model.geo.extrude(entities, *shift, numElements=[1] * len(heights), heights=heights)


def _build_section(gmsh, geometry: Geometry, depth_m: np.ndarray, unit_m: float) -> None:
    """Front line x in [0, radius] (one line per stretch between rims, its nodes at the
    lateral grading via a layered point extrusion), extruded in depth."""
    geo = gmsh.model.geo
    x_m = lateral_nodes_m(geometry.radius_m, [geometry.spot_radius_m, geometry.electrode_radius_m],
                          geometry.rim_spacing_m, geometry.lateral_growth_ratio, geometry.lateral_max_spacing_m)
    breaks = [0.0] + _rims_m(geometry) + [geometry.radius_m]
    point, lines = geo.addPoint(0.0, 0.0, 0.0), []
    for a, b in zip(breaks[:-1], breaks[1:]):
        inside = x_m[(x_m > a) & (x_m <= b)]
        heights = list((inside - a) / (b - a))
        heights[-1] = 1.0
        out = geo.extrude([(0, point)], (b - a) / unit_m, 0.0, 0.0, numElements=[1] * len(heights),
                          heights=heights)
        point = out[0][1]
        lines.append((1, out[1][1]))
    _extrude_depth(gmsh, lines, depth_m, unit_m, 2)


def _build_front_face(gmsh, geometry: Geometry, depth_m: np.ndarray, unit_m: float) -> None:
    """Front face of a disc or box: a centre disc and annuli bounded by the rim circles,
    inside a circle (disc) or square (box) of half-width ``radius``; triangulated with a
    size field fine at the rims, then extruded in depth."""
    geo = gmsh.model.geo
    R = geometry.radius_m / unit_m
    rims = [r / unit_m for r in _rims_m(geometry)]
    centre = geo.addPoint(0.0, 0.0, 0.0)

    def circle(r: float) -> int:  # quarter arcs: a geo circle arc must span less than pi
        pts = [geo.addPoint(r * c, r * s, 0.0) for c, s in ((1, 0), (0, 1), (-1, 0), (0, -1))]
        return geo.addCurveLoop([geo.addCircleArc(pts[i], centre, pts[(i + 1) % 4]) for i in range(4)])

    loops = [circle(r) for r in rims]
    if geometry.kind == "disc":
        loops.append(circle(R))
    else:
        corners = [geo.addPoint(x, y, 0.0) for x, y in ((R, -R), (R, R), (-R, R), (-R, -R))]
        loops.append(geo.addCurveLoop([geo.addLine(corners[i], corners[(i + 1) % 4]) for i in range(4)]))
    surfaces = [geo.addPlaneSurface([loop] + loops[i - 1:i]) for i, loop in enumerate(loops)]
    geo.synchronize()
    # A node on the axis in every depth layer: where the depth profile is read.
    gmsh.model.mesh.embed(0, [centre], 2, surfaces[0])

    h0 = geometry.rim_spacing_m / unit_m
    h_max = geometry.lateral_max_spacing_m / unit_m
    if rims:
        # Spacing grows by the ratio g per cell away from a rim: h(d) = h0 + (g - 1) d.
        distance = f"Fabs(Sqrt(x^2 + y^2) - {rims[0]!r})"
        for r in rims[1:]:
            distance = f"Min({distance}, Fabs(Sqrt(x^2 + y^2) - {r!r}))"
        size = f"Min({h_max!r}, {h0!r} + {geometry.lateral_growth_ratio - 1.0!r} * {distance})"
    else:
        size = repr(min(h_max, R / 2.0))
    field = gmsh.model.mesh.field.add("MathEval")
    gmsh.model.mesh.field.setString(field, "F", size)
    gmsh.model.mesh.field.setAsBackgroundMesh(field)
    for option in ("Mesh.MeshSizeExtendFromBoundary", "Mesh.MeshSizeFromPoints", "Mesh.MeshSizeFromCurvature"):
        gmsh.option.setNumber(option, 0)
    _extrude_depth(gmsh, [(2, s) for s in surfaces], depth_m, unit_m, 3)


def _classify_boundary(gmsh, geometry: Geometry, unit_m: float) -> dict[str, list[int]]:
    """Boundary entities by tag name, from their bounding boxes: flat at depth 0 -> front,
    at the thickness -> back, otherwise lateral (axis at x = 0 in 2D, side elsewhere).
    A front/back piece lies inside the spot/electrode when its lateral extent is (closest
    to) a rim radius not larger than the spot/electrode radius."""
    dim = geometry.dimension
    k = dim - 1  # the depth coordinate
    cells = gmsh.model.getEntities(dim)
    boundary = gmsh.model.getBoundary(cells, combined=True, oriented=False)
    radii_m = _rims_m(geometry) + [geometry.radius_m]
    spot_m, electrode_m = _covers(geometry.spot_radius_m, geometry), _covers(geometry.electrode_radius_m, geometry)
    model_box = gmsh.model.getBoundingBox(-1, -1)
    x_hi, thickness = model_box[3], model_box[3 + k]  # in units of unit_m
    groups: dict[str, list[int]] = {name: [] for name in tags.FACET_TAGS}
    for d, entity in boundary:
        box = gmsh.model.getBoundingBox(d, abs(entity))
        lo, hi = np.array(box[:3]), np.array(box[3:])
        if hi[k] < 0.5 * thickness or lo[k] > 0.5 * thickness:
            extent_m = unit_m * float(np.max(np.abs(np.concatenate([lo[:k], hi[:k]]))))
            rim_m = min(radii_m, key=lambda r: abs(r - extent_m))
            if hi[k] < 0.5 * thickness:
                groups["beam_spot" if rim_m <= spot_m else "front_unexposed"].append(abs(entity))
            else:
                groups["back_electrode" if rim_m <= electrode_m else "back_free"].append(abs(entity))
        elif dim == 2 and hi[0] < 0.5 * x_hi:
            groups["axis"].append(abs(entity))
        else:
            groups["side"].append(abs(entity))
    return groups


def build_gmsh_model(geometry: Geometry, thickness_m: float, mesh_settings, unit_m: float = 1e-9,
                     resolution=None) -> None:
    """Build and mesh the sample of ``geometry`` (thickness ``thickness_m``, depth grading
    ``mesh_settings`` with the rule ``resolution``: ``Experiment.depth_resolution``) in the
    current gmsh model, coordinates in units of ``unit_m``, with the physical groups of
    :mod:`cait_fem.mesh.tags`. The caller initialises gmsh."""
    import gmsh

    if geometry.kind == "slab":
        raise ConfigError('geometry.kind = "slab" needs no gmsh model: a 1D slab is meshed by cait_fem.mesh.interval')
    if geometry.radius_m is None:
        raise ConfigError(f'geometry.radius_m is missing: required to build a mesh of kind "{geometry.kind}"')
    # before gmsh: a rim spacing that would make a mesh of hundreds of MB is refused here
    check_mesh_size(geometry, thickness_m, mesh_settings, resolution)
    depth_m = graded_nodes_m(thickness_m, mesh_settings, resolution)
    extent_m = math.hypot(2.0 * geometry.radius_m, thickness_m)
    finest_m = min(float(np.min(np.diff(depth_m))), 0.5 * geometry.rim_spacing_m)
    # gmsh merges mesh nodes closer than Geometry.Tolerance times the model size.
    tolerance = min(1e-8, 1e-3 * finest_m / extent_m)
    if tolerance < 1e-15:
        raise ConfigError(f"the finest spacing {finest_m:g} m is too small for a sample of size {extent_m:g} m "
                          "in double precision: coarsen mesh.surface_spacing_m or geometry.rim_spacing_m")
    gmsh.option.setNumber("Geometry.Tolerance", tolerance)
    gmsh.option.setNumber("Mesh.RecombineAll", 0)  # simplices: the forms need them
    gmsh.option.setNumber("Mesh.ElementOrder", 1)
    builder = _build_section if geometry.dimension == 2 else _build_front_face
    builder(gmsh, geometry, depth_m, unit_m)
    gmsh.model.geo.synchronize()
    dim = geometry.dimension
    gmsh.model.addPhysicalGroup(dim, [t for _, t in gmsh.model.getEntities(dim)], tags.GLASS, "glass")
    for name, entities in _classify_boundary(gmsh, geometry, unit_m).items():
        if entities:
            gmsh.model.addPhysicalGroup(dim - 1, entities, tags.FACET_TAGS[name], name)
    gmsh.model.mesh.generate(dim)
    check_facet_groups(gmsh, dim, f"the {geometry.kind} mesh")


def write_msh(geometry: Geometry, thickness_m: float, mesh_settings, path, overwrite: bool = False,
              verbose: bool = False, resolution=None) -> Path:
    """Build the mesh of ``geometry`` and write it to ``path`` (gmsh MSH 4.1, coordinates
    in nm), atomically: a reader never sees a half-written file. An existing file is
    replaced only with ``overwrite=True``."""
    target = Path(path)
    if target.suffix != ".msh":
        raise ConfigError(f"mesh output {str(target)!r} is not allowed: the file name must end in .msh")
    if target.exists() and not overwrite:
        raise ConfigError(f"mesh output {str(target)!r} already exists: not overwritten (use overwrite=True "
                          "or --overwrite)")
    with gmsh_session(verbose) as gmsh:
        build_gmsh_model(geometry, thickness_m, mesh_settings, unit_m=1e-9, resolution=resolution)
        gmsh.option.setNumber("Mesh.MshFileVersion", MSH_FORMAT_VERSION)
        gmsh.option.setNumber("Mesh.SaveAll", 0)  # only the tagged entities: no internal interfaces
        with atomic_path(target) as tmp:
            # gmsh picks the format from the extension: write to a .msh name, then move.
            tmp_msh = tmp.with_name(tmp.name + ".msh")
            try:
                gmsh.write(str(tmp_msh))
                os.replace(tmp_msh, tmp)
            finally:
                with contextlib.suppress(OSError):
                    tmp_msh.unlink()
    return target


def create_mesh(comm, geometry: Geometry, thickness_m: float, mesh_settings, length_scale_m: float,
                resolution=None):
    """The DOLFINx mesh of ``geometry``, distributed over ``comm``, with coordinates in
    units of ``length_scale_m`` (the solver's length scale): built with gmsh on rank 0,
    or read there from ``geometry.mesh_file``. Returns (domain, cell_tags, facet_tags),
    the tags checked by :func:`validate_facet_tags`. Collective."""
    from dolfinx.io import gmsh as dolfinx_gmsh

    if geometry.mesh_file is not None:
        source, unit_m = f"geometry.mesh_file = {geometry.mesh_file!r}", geometry.mesh_unit_m
    else:
        source, unit_m = f"the generated {geometry.kind} mesh", 1e-9
    with contextlib.ExitStack() as stack:
        error, model = None, None
        if comm.rank == 0:
            gmsh = stack.enter_context(gmsh_session())
            model = gmsh.model
            try:
                if geometry.mesh_file is None:
                    build_gmsh_model(geometry, thickness_m, mesh_settings, unit_m=unit_m, resolution=resolution)
                else:
                    geometry.check_mesh_file()  # a directory "is a directory", not "does not exist"
                    gmsh.merge(str(geometry.mesh_file))
                    check_gmsh_model(gmsh, geometry, thickness_m, source)
            except ConfigError as exc:
                error = str(exc)
            except Exception as exc:  # gmsh reports unreadable files as plain Exceptions
                error = f"{source}: gmsh failed: {exc}"
        # Every rank must learn of an error on rank 0, or they would wait in model_to_mesh.
        error = comm.bcast(error, root=0)
        if error is not None:
            raise ConfigError(error)
        partitioner = None
        if comm.size > 1:
            x = dolfinx_gmsh.extract_geometry(model) if comm.rank == 0 else np.zeros((0, 3))
            partitioner = column_partitioner(x, geometry.dimension)
        try:
            data = dolfinx_gmsh.model_to_mesh(model, comm, 0, gdim=geometry.dimension, partitioner=partitioner)
        except RuntimeError as exc:  # raised on every rank alike (model_to_mesh broadcasts its checks)
            raise ConfigError(f"{source}: {exc}") from None
    domain = data.mesh
    scale = unit_m / length_scale_m
    if scale != 1.0:  # nm meshes with the nm length scale stay bit-identical
        domain.geometry.x[:, : geometry.dimension] *= scale
    validate_facet_tags(domain, data.facet_tags, source)
    return domain, data.cell_tags, data.facet_tags


def describe_msh(path) -> dict:
    """What a .msh file holds: ``nodes``, ``cells`` (elements of the highest dimension)
    and the element count of every named physical group (for scripts and reports)."""
    with gmsh_session() as gmsh:
        gmsh.merge(str(path))
        dim = gmsh.model.getDimension()
        summary = {"dimension": dim, "nodes": len(gmsh.model.mesh.getNodes()[0]),
                   "cells": sum(len(t) for t in gmsh.model.mesh.getElements(dim)[1])}
        for d, group in gmsh.model.getPhysicalGroups():
            name = gmsh.model.getPhysicalName(d, group) or str(group)
            summary[name] = sum(len(t) for e in gmsh.model.getEntitiesForPhysicalGroup(d, group)
                                for t in gmsh.model.mesh.getElements(d, e)[1])
    return summary
