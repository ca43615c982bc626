"""Node weights of the lumped storage on simplex meshes (docs/numerics.md section 7b):
the axisymmetric centroid radii and the layer-by-layer lumping of meshes layered in
depth, both DOLFINx Functions that :class:`~cait_fem.fem.forms.NPPForms` multiplies into
its storage weight, and the integrand weights of all terms (:func:`integrand_weights`)."""

from __future__ import annotations

import math

from mpi4py import MPI  # (MPI is initialised by mpi4py before PETSc/DOLFINx)

import numpy as np
import ufl
from dolfinx import fem, la
from dolfinx import mesh as dmesh


def centroid_radii(domain, front_facets):
    """DG0 functions: r at each cell's centroid, and r at the midpoint of each front
    facet on the cell that owns it (0 elsewhere; exterior facets have one cell)."""
    d = domain.topology.dim
    V0 = fem.functionspace(domain, ("DG", 0))
    n_cells = domain.topology.index_map(d).size_local + domain.topology.index_map(d).num_ghosts
    cells = np.arange(n_cells, dtype=np.int32)
    dofs = V0.dofmap.list[:, 0]
    r_cell, r_front = fem.Function(V0), fem.Function(V0)
    r_cell.x.array[dofs] = dmesh.compute_midpoints(domain, d, cells)[:, 0]
    domain.topology.create_connectivity(d - 1, d)
    f2c = domain.topology.connectivity(d - 1, d)
    if len(front_facets):
        owner = np.array([f2c.links(f)[0] for f in front_facets], dtype=np.int32)
        r_front.x.array[dofs[owner]] = dmesh.compute_midpoints(domain, d - 1, front_facets)[:, 0]
    r_front.x.scatter_forward()
    return r_cell, r_front


def layer_lumping(domain, axisymmetric: bool):
    """A P1 function W such that W times the lumped storage weight gives every node the
    mass of the 1D scheme on a mesh layered in depth, or None where that does not apply.

    A cell K whose vertices lie on two depths z_lo < z_hi (a piece of one layer of an
    extruded mesh) gives vertex i the mass m_i^K = -(z_mid - z_i) int_K w grad_z phi_i,
    z_mid = (z_lo + z_hi)/2, w = r (axisymmetric) or 1. Summed over the cells of a layer
    this is (h/2) times int w phi_i over the layer interface (the trace of phi_i there is
    the same from both sides): the lateral weight that the edge fluxes carry, times the
    1D lumped mass h/2. The row-sum lumping int_K w phi_i that the vertex rule gives
    distributes a layer's mass differently between its two faces (by the split of the
    layer into simplices and by r), which is first order in the depth spacing where the
    spacing changes and by half a layer at the surface. Cells with more than two depths
    keep the row-sum mass (a user's mesh need not be layered); the total mass of every cell
    is int_K w in both cases, so contents and conservation are unchanged. None (no
    scaling) when no cell is layered or a node mass would not be positive."""
    d = domain.topology.dim
    n_local = domain.topology.index_map(d).size_local
    V1 = fem.functionspace(domain, ("Lagrange", 1))
    dofs = V1.dofmap.list[:n_local]
    x = domain.geometry.x[domain.geometry.dofmaps[0][:n_local], :d]  # (cells, d+1, d)
    jac = np.transpose(x[:, 1:, :] - x[:, :1, :], (0, 2, 1))  # columns: x_a - x_0
    volume = np.abs(np.linalg.det(jac)) / math.factorial(d)
    kinv = np.linalg.inv(jac)
    grad_phi = np.concatenate([-kinv.sum(axis=1, keepdims=True), kinv], axis=1)  # (cells, d+1, d)
    r = x[..., 0] if axisymmetric else np.ones(x.shape[:2])
    r_c = r.mean(axis=1)
    # the row-sum lumping of NPPForms: int_K w phi_a = |K|/(d+1) (r_a + (d+1) r_K)/(d+2)
    if axisymmetric:
        row_sum = volume[:, None] / (d + 1) * (r + (d + 1) * r_c[:, None]) / (d + 2)
    else:
        row_sum = np.repeat(volume[:, None] / (d + 1), d + 1, axis=1)
    z = x[..., d - 1]
    z_lo, z_hi = z.min(axis=1), z.max(axis=1)
    tol = 1e-6 * (z_hi - z_lo)[:, None]
    layered = np.all((np.abs(z - z_lo[:, None]) <= tol) | (np.abs(z - z_hi[:, None]) <= tol), axis=1)
    layer_mass = -(0.5 * (z_lo + z_hi)[:, None] - z) * (r_c * volume)[:, None] * grad_phi[..., d - 1]
    mass = np.where(layered[:, None], layer_mass, row_sum)
    comm = domain.comm
    if comm.allreduce(int(layered.sum()), op=MPI.SUM) == 0:
        return None
    target, current = fem.Function(V1), fem.Function(V1)
    for f, m in ((target, mass), (current, row_sum)):
        f.x.array[:] = 0.0
        np.add.at(f.x.array, dofs.ravel(), m.ravel())
        f.x.scatter_reverse(la.InsertMode.add)
        f.x.scatter_forward()
    n_owned = V1.dofmap.index_map.size_local
    ok = bool(np.all(target.x.array[:n_owned] > 1e-12 * current.x.array[:n_owned]))
    if not comm.allreduce(ok, op=MPI.LAND):
        return None
    scaling = fem.Function(V1, name="layer_lumping")
    scaling.x.array[:] = target.x.array / current.x.array
    return scaling


def integrand_weights(domain, front_facets, axisymmetric: bool) -> dict:
    """The integrand weights of the forms' terms, keyed "storage", "flux", "front", "back":
    1 on a plain mesh.

    Axisymmetric (r = x[0]): every integral carries r. The vertex rule of r u v would give
    the axis nodes zero mass; the storage and front weights make the lumped mass the row
    sum of the consistent r-weighted mass, m_a = int r phi_a, exact for linear r on a
    simplex of dimension m: int_K r phi_a = |K|/(m+1) (r_a + (m+1) r_K)/(m+2), r_K the
    centroid value (:func:`centroid_radii`, set once from the mesh).

    2D/3D meshes layered in depth: the storage weight is scaled node by node
    (:func:`layer_lumping`) so that each layer gives its nodes the 1D lumped mass, half the
    layer thickness times the node's lateral weight: with the edge fluxes, a laterally
    uniform state then satisfies the 1D equations row by row."""
    d = domain.topology.dim
    weights = {"storage": 1.0, "flux": 1.0, "front": 1.0, "back": 1.0}
    if axisymmetric:
        r = ufl.SpatialCoordinate(domain)[0]
        r_cell, r_front = centroid_radii(domain, front_facets)
        weights = {"storage": (r + (d + 1) * r_cell) / (d + 2), "flux": r,
                   "front": (r + d * r_front) / (d + 1), "back": r}
    if d > 1:
        scaling = layer_lumping(domain, axisymmetric)
        if scaling is not None:
            weights["storage"] = scaling * weights["storage"]
    return weights
