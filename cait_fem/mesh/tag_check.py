"""Checks that a 2D/3D mesh carries the tags the forms rely on, in gmsh and in DOLFINx.

A mesh with a missing, doubled or misplaced tag does not fail loudly in the solver: an
untagged back electrode just leaves the potential floating, and a facet in two gmsh
groups is silently kept with one of them by ``dolfinx.io.gmsh.model_to_mesh``. So the
checks run before any form is built and raise a :class:`ConfigError` that names the tag,
the mesh and what is wrong. The gmsh-side checks (:func:`check_gmsh_model`) see the file
as written; :func:`validate_facet_tags` checks the distributed DOLFINx tags, reducing
over all ranks so that every rank raises the same error.
"""

from __future__ import annotations

import numpy as np

from cait_fem.errors import ConfigError

from . import tags

_SIMPLEX_TYPES = {2: (2, 9, 21), 3: (4, 11, 29)}  # gmsh element types: triangles, tetrahedra (orders 1-3)


def check_facet_groups(gmsh, dim: int, source: str) -> None:
    """ConfigError if a facet element of the current gmsh model lies in two physical
    groups of dimension ``dim - 1`` (the error names both groups)."""
    keys, owners, names = [], [], []
    for d, group in gmsh.model.getPhysicalGroups(dim - 1):
        names.append(gmsh.model.getPhysicalName(d, group) or tags.facet_tag_name(group))
        for entity in gmsh.model.getEntitiesForPhysicalGroup(d, group):
            etypes, _, enodes = gmsh.model.mesh.getElements(d, entity)
            for etype, nodes in zip(etypes, enodes):
                n = gmsh.model.mesh.getElementProperties(etype)[3]
                # corner nodes come first in gmsh's ordering; a facet of a simplex has dim of them
                keys.append(np.sort(np.asarray(nodes).reshape(-1, n)[:, :dim], axis=1))
                owners.append(np.full(len(keys[-1]), len(names) - 1))
    if not keys:
        return
    _, facet = np.unique(np.concatenate(keys), axis=0, return_inverse=True)
    pairs = np.unique(np.stack([facet.ravel(), np.concatenate(owners)], axis=1), axis=0)
    doubled = pairs[1:, 0][np.diff(pairs[:, 0]) == 0]
    if len(doubled):
        first, second = (names[g] for g in pairs[pairs[:, 0] == doubled[0], 1][:2])
        raise ConfigError(f"{source}: {np.unique(doubled).size} boundary facets lie in two physical groups, "
                          f"{first!r} and {second!r}: a facet may carry one tag only")


def _renumber_by_name(gmsh, dim: int, source: str) -> None:
    """Give the groups named as in :mod:`cait_fem.mesh.tags` the numbers of that module (a gmsh
    script numbers its groups as it likes); unnamed groups keep their numbers."""
    known = {dim - 1: tags.FACET_TAGS, dim: tags.CELL_TAGS}
    groups = []  # (dim, old number, new number, name, entities)
    for d, number in gmsh.model.getPhysicalGroups():
        name = gmsh.model.getPhysicalName(d, number)
        groups.append((d, number, known.get(d, {}).get(name, number), name,
                       list(gmsh.model.getEntitiesForPhysicalGroup(d, number))))
    if all(old == new for _, old, new, _, _ in groups):
        return
    seen: dict[tuple[int, int], str] = {}
    for d, _, number, name, _ in groups:
        if (d, number) in seen:
            raise ConfigError(f"{source}: physical groups {seen[(d, number)]!r} and {name or number!r} (dimension "
                              f"{d}) both stand for tag {number}: rename or renumber one of them")
        seen[(d, number)] = name or str(number)
    gmsh.model.removePhysicalGroups()
    for d, _, number, name, entities in groups:
        gmsh.model.addPhysicalGroup(d, entities, number, name)


def check_gmsh_model(gmsh, geometry, thickness_m: float, source: str) -> None:
    """Check a mesh read into the current gmsh model against ``geometry`` and the glass
    thickness: physical groups present (renumbered by name), dimension, simplex cells,
    every cell tagged, depth range [0, thickness] in units of ``geometry.mesh_unit_m``,
    no facet in two groups."""
    dim = geometry.dimension
    if not gmsh.model.getPhysicalGroups():
        raise ConfigError(f"{source} has no physical groups: a cait_fem mesh needs at least the facet groups "
                          f"{', '.join(repr(n) for n in tags.REQUIRED_FACET_TAGS)} and the cell group 'glass' "
                          "(see meshes/README.md)")
    mesh_dim = gmsh.model.getDimension()
    if mesh_dim != dim:
        raise ConfigError(f"{source} is a {mesh_dim}D mesh, but geometry.kind = {geometry.kind!r} needs a "
                          f"{dim}D mesh")
    _renumber_by_name(gmsh, dim, source)
    cell_groups = gmsh.model.getPhysicalGroups(dim)
    if not cell_groups:
        raise ConfigError(f"{source} has no physical group of dimension {dim} (the cells, named 'glass')")
    tagged = {e for _, g in cell_groups for e in gmsh.model.getEntitiesForPhysicalGroup(dim, g)}
    untagged = [e for _, e in gmsh.model.getEntities(dim) if e not in tagged]
    if untagged:
        raise ConfigError(f"{source}: {dim}D entities {untagged} are in no physical group; every cell must be "
                          "in the group 'glass'")
    other = [t for t in gmsh.model.mesh.getElementTypes(dim) if t not in _SIMPLEX_TYPES[dim]]
    if other:
        names = [gmsh.model.mesh.getElementProperties(t)[0] for t in other]
        raise ConfigError(f"{source} has cells of type {names}: only simplices are allowed "
                          f"({'triangles' if dim == 2 else 'tetrahedra'}; no recombination)")
    box = gmsh.model.getBoundingBox(-1, -1)
    depth_m = np.array([box[dim - 1], box[dim + 2]]) * geometry.mesh_unit_m
    if not np.allclose(depth_m, [0.0, thickness_m], rtol=1e-6, atol=1e-6 * thickness_m):
        raise ConfigError(f"{source} spans depths {depth_m[0]:g} .. {depth_m[1]:g} m (its last coordinate, "
                          f"in units of geometry.mesh_unit_m = {geometry.mesh_unit_m!r} m), but the sample "
                          f"spans 0 .. glass.thickness_m = {thickness_m!r} m")
    check_facet_groups(gmsh, dim, source)


def validate_facet_tags(domain, facet_tags, source: str) -> None:
    """Check distributed facet tags (collective: call on every rank): every required tag
    of :mod:`cait_fem.mesh.tags` present, only known tag values, no facet tagged twice, tagged
    facets on the boundary only. Raises the same ConfigError on every rank."""
    from mpi4py import MPI

    from dolfinx.mesh import exterior_facet_indices

    comm = domain.comm
    if comm.allreduce(facet_tags is None, op=MPI.LOR):
        raise ConfigError(f"{source} has no facet tags: the physical groups "
                          f"{', '.join(repr(n) for n in tags.REQUIRED_FACET_TAGS)} are required")
    fdim = domain.topology.dim - 1
    domain.topology.create_connectivity(fdim, fdim + 1)
    n_owned = domain.topology.index_map(fdim).size_local
    owned = facet_tags.indices < n_owned
    indices, values = facet_tags.indices[owned], facet_tags.values[owned]

    unknown = sorted(set().union(*comm.allgather(set(np.unique(values).tolist())
                                                 - set(tags.FACET_TAGS.values()))))
    if unknown:
        raise ConfigError(f"{source}: facet tag values {unknown} are not allowed: the facet tags are "
                          f"{tags.FACET_TAGS}")
    uniq, counts = np.unique(indices, return_counts=True)
    doubled = [int(v) for v in np.unique(values[np.isin(indices, uniq[counts > 1])])]
    doubled = sorted(set().union(*comm.allgather(set(doubled))))
    if doubled:
        raise ConfigError(f"{source}: facets carry two tags ({', '.join(tags.facet_tag_name(v) for v in doubled)}): "
                          "a facet may carry one tag only")
    counts = {name: comm.allreduce(int(np.count_nonzero(values == number)), op=MPI.SUM)
              for name, number in tags.FACET_TAGS.items()}
    found = [f"{name} ({tags.FACET_TAGS[name]})" for name, c in counts.items() if c > 0]
    for name in tags.REQUIRED_FACET_TAGS:
        if counts[name] == 0:
            raise ConfigError(f"{source}: the facet tag {name!r} (number {tags.FACET_TAGS[name]}) is missing; "
                              f"found {', '.join(found) or 'none'}; required: "
                              f"{', '.join(repr(n) for n in tags.REQUIRED_FACET_TAGS)}")
    interior = np.setdiff1d(indices, exterior_facet_indices(domain.topology))
    n_interior = comm.allreduce(int(interior.size), op=MPI.SUM)
    if n_interior:
        names = sorted(set().union(*comm.allgather({tags.facet_tag_name(int(v))
                                                    for v in values[np.isin(indices, interior)]})))
        raise ConfigError(f"{source}: {n_interior} facets tagged {', '.join(names)} are not on the boundary: "
                          "facet tags must mark boundary facets only")


def check_user_mesh(mesh, comm, experiment, unit_m: float):
    """Check a user's ``(domain, facet_tags)`` against the experiment (ConfigError naming
    what is wrong): a pair, the geometry's dimension, a simplex mesh, its communicator,
    the facet tags of :mod:`cait_fem.mesh.tags`, depths 0 .. glass.thickness_m."""
    from mpi4py import MPI

    from dolfinx import mesh as dmesh

    if not (isinstance(mesh, (tuple, list)) and len(mesh) == 2 and isinstance(mesh[0], dmesh.Mesh)):
        raise ConfigError(f"mesh = {type(mesh).__name__} is not allowed: a pair (domain, facet_tags) of a "
                          "dolfinx.mesh.Mesh and its facet MeshTags")
    domain, facet_tags = mesh
    geometry, thickness = experiment.geometry, experiment.glass.thickness_m
    tdim = domain.topology.dim
    if tdim != geometry.dimension:
        raise ConfigError(f"mesh: a {tdim}D mesh, but geometry.kind = {geometry.kind!r} needs a "
                          f"{geometry.dimension}D mesh")
    if domain.geometry.dim != tdim:
        raise ConfigError(f"mesh: geometric dimension {domain.geometry.dim} differs from its topological "
                          f"dimension {tdim}; the depth must be the last of {tdim} coordinates")
    simplex = {1: dmesh.CellType.interval, 2: dmesh.CellType.triangle, 3: dmesh.CellType.tetrahedron}[tdim]
    if domain.topology.cell_type != simplex:
        raise ConfigError(f"mesh: cells of type {domain.topology.cell_type.name} are not allowed: only "
                          f"simplices ({simplex.name})")
    if comm is not None and MPI.Comm.Compare(comm, domain.comm) not in (MPI.IDENT, MPI.CONGRUENT):
        raise ConfigError("comm: differs from the mesh's communicator; pass the mesh's (or none)")
    if facet_tags is not None and (not isinstance(facet_tags, dmesh.MeshTags) or facet_tags.dim != tdim - 1):
        raise ConfigError(f"mesh: facet_tags = {facet_tags!r} is not allowed: MeshTags of dimension {tdim - 1} "
                          "(the facets)")
    validate_facet_tags(domain, facet_tags, "mesh")
    x = domain.geometry.x[:, tdim - 1]
    lo = domain.comm.allreduce(float(x.min()) if x.size else np.inf, op=MPI.MIN) * unit_m
    hi = domain.comm.allreduce(float(x.max()) if x.size else -np.inf, op=MPI.MAX) * unit_m
    if not np.allclose([lo, hi], [0.0, thickness], rtol=1e-6, atol=1e-6 * thickness):
        raise ConfigError(f"mesh spans depths {lo:g} .. {hi:g} m (its last coordinate, in units of mesh_unit_m = "
                          f"{unit_m!r} m), but the sample spans 0 .. glass.thickness_m = {thickness!r} m")
    return domain, facet_tags
