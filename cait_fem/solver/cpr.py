"""Two-stage CPR preconditioner for the NPP Newton systems (``solver.preconditioner = "cpr"``).

Why two stages (docs/numerics.md section 9 has the measurements): the Jacobian couples, at
every node, the species rows (storage M/dt, drift-diffusion) and the Poisson row
(debye2 K psi - M rho). Point-block ILU resolves that local coupling, but nothing in it
carries the potential across the sample: its iteration count grows with the mesh, and on
several MPI ranks a subdomain that does not reach the back electrode has a floating
potential and block ILU breaks down. The potential is the one global, elliptic unknown,
so it gets a multigrid solve of its own, as the pressure does in reservoir simulation's
constrained-pressure-residual (CPR) method (Wallis 1983; Lacroix, Vassilevski, Wheeler 2001):

1. Decoupling. Combine the rows of each node as  sum_i z_i (species row i)
   + (a0 / dt) (Poisson row). The storage terms cancel exactly (the charge term of the
   Poisson row is the same lumped mass as the storage), and what is left for the
   potential is charge conservation:  (a0 debye2 / dt) K + K_sigma, with K_sigma the
   Laplacian weighted by the conductivity sigma = sum_i z_i^2 D_i theta_i (plus, with a
   beam front, the Robin term of the potential-dependent landing). It is a symmetric
   positive definite, conductivity-weighted Laplacian with a Dirichlet condition at the
   back electrode: what multigrid solves in O(n).
2. ``apply(r)``:  x1 = P A_p^{-1} (W r)  (a multigrid-preconditioned solve, prolonged into the
   potential components),  x = x1 + B^{-1} (r - J x1)  (B: point-block ILU(k) of the whole
   Jacobian, one block per rank).

The layout of both stages is the potential's rows, not DOLFINx's: on the layered meshes of
:mod:`cait_fem.mesh.gmsh_sample` every depth column of nodes goes whole to one rank (DOLFINx gives
each vertex on a partition boundary one owner, which splits columns there), and A_p is
solved by the column multigrid of :mod:`cait_fem.solver.column_multigrid` (line smoothing along
the depth, lateral coarsening), whose iterations do not depend on the number of ranks. The
second stage factors the Jacobian re-laid out the same way, so it never cuts the
thin-layer couplings either. On meshes without depth columns, A_p is solved by GAMG on
the rank's own nodes (:data:`GAMG_OPTIONS`).

A_p is assembled from its own UFL form (compiled once, like the residual) at every
Jacobian, from the current iterate. The exactly combined potential block would also carry
the derivative of the exponential-fitting term; the symmetric A_p drops it, which only
affects how good the first stage is, never the solution (GMRES solves with the exact
Jacobian).
"""

from __future__ import annotations

import time

from mpi4py import MPI  # noqa: F401  (MPI is initialised by mpi4py before PETSc/DOLFINx)

import numpy as np
import ufl
from dolfinx import fem
from dolfinx.fem.petsc import assemble_matrix, create_matrix
from petsc4py import PETSc

from .columns import column_owners, find_columns

#: The potential stage: GMRES on A_p to a relative 1e-4 (1e-2 let the Newton iterations
#: grow: the preconditioner is then too far from linear; docs/numerics.md section 9)
POTENTIAL_OPTIONS = {
    "ksp_type": "gmres",
    "ksp_rtol": 1e-4,
    "ksp_max_it": 200,
}

#: ... preconditioned, on a mesh that is not layered (no depth columns), by aggregation
#: multigrid. The cells are strongly anisotropic, so the aggregates are unsmoothed
#: (smoothed ones give dense coarse operators) with a threshold that makes them follow the
#: strong couplings, and the smoother is one ILU(0) sweep per level on depth-major rows (a
#: line solve along the depth), overlapping (ASM(1)) across ranks so that it is not cut at
#: rank boundaries. The measurements behind each choice: docs/numerics.md section 9.
GAMG_OPTIONS = {
    **POTENTIAL_OPTIONS,
    "pc_type": "gamg",
    "pc_gamg_type": "agg",
    "pc_gamg_threshold": 0.02,
    "pc_gamg_agg_nsmooths": 0,
    "pc_gamg_aggressive_coarsening": 0,
    "mg_levels_ksp_type": "richardson",
    "mg_levels_ksp_max_it": 1,
    "mg_levels_pc_type": "asm",
    "mg_levels_pc_asm_overlap": 1,
    "mg_levels_sub_pc_type": "ilu",
}


def _potential_rows(comm, Q, node_global, gdim, fixed, weight):
    """Rows of A_p on this rank: dict of ``q`` (global potential dofs, the rows of A_q),
    ``node`` (their global node), ``fixed``, ``weight`` (per row) and ``n_layers``.

    Rank 0 gathers the owned nodes' coordinates once. If they stand in depth columns
    (:func:`cait_fem.solver.columns.find_columns`), each column goes whole to the rank owning most
    of its nodes, rows column-major (front to back within a column): the layout of the
    column multigrid. Otherwise each rank keeps its owned nodes in depth-major order
    (layer by layer from the front): the ILU smoother of GAMG then sweeps the strong depth
    couplings in order, which halved its iterations against DOLFINx's numbering (3D,
    3.7e5 potential nodes: 7 against 13). Gathering on one rank costs O(nodes) memory
    there, once per run (7 numbers per node: 20 MB at the 3.7e5 nodes of SCALE3D); a
    distributed column search would be needed beyond ~1e8 nodes."""
    n_owned = len(fixed)
    coords = Q.tabulate_dof_coordinates()[:n_owned, :gdim]
    q_global = Q.dofmap.index_map.local_range[0] + np.arange(n_owned, dtype=np.int64)
    mine = (q_global, np.asarray(node_global, dtype=np.int64), coords, fixed, weight)
    gathered = comm.gather(mine, root=0)
    parts = None
    n_layers = None
    if comm.rank == 0:
        q, node, x, fx, w = (np.concatenate(field) for field in zip(*gathered))
        rank = np.repeat(np.arange(comm.size), [len(g[0]) for g in gathered])
        depth, lateral = x[:, gdim - 1], x[:, : gdim - 1]
        extent = float(np.ptp(x, axis=0).max()) if len(x) else 0.0
        found = find_columns(lateral, depth, 1e-8 * extent) if len(x) else None
        if found is not None:
            column, n_layers = found
            owner = column_owners(column, rank, comm.size)[column]
            order = np.lexsort((depth, column))
        else:
            owner = rank
            order = np.lexsort([lateral[:, i] for i in range(gdim - 1)] + [depth])
        order = order[np.argsort(owner[order], kind="stable")]
        bounds = np.searchsorted(owner[order], np.arange(comm.size + 1))
        parts = [tuple(f[order[bounds[r]:bounds[r + 1]]] for f in (q, node, fx, w)) for r in range(comm.size)]
    q, node, fx, w = comm.scatter(parts, root=0)
    return {"q": q, "node": node, "fixed": fx, "weight": w, "n_layers": comm.bcast(n_layers, root=0)}


class CPRPreconditioner:
    """petsc4py Python-PC context; see the module docstring. ``forms``: the
    :class:`cait_fem.fem.forms.NPPForms`; ``ilu_levels``: fill level of the second stage."""

    def __init__(self, forms, ilu_levels: int, prefix: str, potential_options: dict | None = None):
        self.forms = forms
        self.ilu_levels = ilu_levels
        comm = forms.domain.comm
        p = forms.layout.psi
        self.nc = forms.layout.block_size
        Q, qmap = forms.V.sub(p).collapse()
        self.Q = Q
        n_owned = Q.dofmap.index_map.size_local
        qmap = np.ravel(np.asarray(qmap, dtype=np.int64))[:n_owned]
        if np.any(qmap % self.nc != p):
            raise RuntimeError("CPR: unexpected dof layout of the blocked state space")
        self.a_form = fem.form(self._potential_form(Q))
        dirichlet = self._dirichlet_nodes(Q, forms)
        self.bcs = [fem.dirichletbc(0.0, dofs, Q) for component, dofs in dirichlet if component == p]
        fixed = np.zeros(n_owned, dtype=bool)
        weight = np.tile(np.asarray(forms.charges, dtype=float), (n_owned, 1))
        for component, dofs in dirichlet:
            owned = dofs[dofs < n_owned]
            if component == p:
                fixed[owned] = True
            else:
                weight[owned, component] = 0.0
        rows = _potential_rows(comm, Q, qmap // self.nc + forms.V.dofmap.index_map.local_range[0],
                               forms.domain.geometry.dim, fixed, weight)
        #: layered mesh: nodes per depth column (rows of A_p column-major, whole columns per
        #: rank; the column multigrid solves A_p); None: GAMG on depth-major rows
        self.n_layers = rows["n_layers"]
        self.rows = PETSc.IS().createGeneral(rows["q"].astype(PETSc.IntType), comm=comm)
        #: global node (state-vector block) of each row of A_p
        self.nodes = rows["node"]
        #: rows of A_p that are Dirichlet rows of the potential
        self.fixed = np.flatnonzero(rows["fixed"])
        self.species_weight = rows["weight"]
        self.A_q = create_matrix(self.a_form)
        self.A_p = None
        self.r_p = self.y_p = None
        self.gather = self.w = self.w2 = self.layout = self.J_c = None

        self.potential = PETSc.KSP().create(comm)
        self.potential.setOptionsPrefix(prefix + "cpr_potential_")
        # the multigrid reads the options of its levels at its first set-up: they stay in
        # the database until then (removed in setUp, or in destroy if it never came)
        if self.n_layers:
            from . import column_multigrid  # scipy.sparse: only layered 2D/3D meshes need it
            defaults = {**POTENTIAL_OPTIONS, **column_multigrid.OPTIONS}
        else:
            defaults = GAMG_OPTIONS
        opts = PETSc.Options()
        options = {prefix + "cpr_potential_" + key: value
                   for key, value in {**defaults, **(potential_options or {})}.items()}
        for key, value in options.items():
            opts[key] = value
        self._options = list(options)
        self._configured = False
        self.local = PETSc.PC().create(comm)
        self.local.setType("bjacobi")
        self._local_configured = False
        self.J = None
        #: accumulated wall time of the stages [s] (bench/scale3d.py prints them)
        self.timings = dict.fromkeys(("assemble_s", "multigrid_setup_s", "ilu_setup_s", "multigrid_apply_s"), 0.0)
        #: solves of A_p and their Krylov iterations so far
        self.potential_solves = self.potential_iterations = 0
        self.x1 = None
        self.t = None

    # -- the potential operator ----------------------------------------------------------
    def _potential_form(self, Q):
        f = self.forms
        u = f.u
        p_trial, q = ufl.TrialFunction(Q), ufl.TestFunction(Q)
        thetas = f.thetas(u)
        sigma = sum(z * z * D * th for z, D, th in zip(f.charges, f.diffusivities(thetas), thetas))
        w = f.weights
        a0 = f.a0
        a = w["flux"] * (a0 * f.inv_dt * f.debye2 + sigma) * ufl.inner(ufl.grad(p_trial), ufl.grad(q)) * f.flux_measure
        influx = f.influx(u)
        if influx is not None:
            # -z_f d(influx)/d psi >= 0 (fewer ions land on a more positive surface): the
            # combined row's Robin term; zero for a constant-current front
            e_psi = ufl.as_vector([1.0 if i == f.layout.psi else 0.0 for i in range(self.nc)])
            z = f.charges[f.front_index]
            a += -w["front"] * z * ufl.derivative(influx, u, e_psi) * p_trial * q * f.front_measure
        return a

    @staticmethod
    def _dirichlet_nodes(Q, forms):
        """(component, potential dofs) of every Dirichlet condition: rows of A_p that are
        identity rows (potential), or species rows left out of the combination there
        (their storage term is gone)."""
        fdim = forms.domain.topology.dim - 1
        return [(component, fem.locate_dofs_topological(Q, fdim, forms.facet_tags.find(tag)))
                for component, tag in forms.dirichlet_components()]

    def assemble_potential(self):
        """A_p at the current iterate and step, rows and columns in depth-major order."""
        self.A_q.zeroEntries()
        assemble_matrix(self.A_q, self.a_form, bcs=self.bcs)
        self.A_q.assemble()
        self.A_p = self.A_q.createSubMatrix(self.rows, self.rows, submat=self.A_p)
        if self.r_p is None:
            self.r_p, self.y_p = self.A_p.createVecs()
        return self.A_p

    # -- petsc4py Python-PC interface ------------------------------------------------------
    def setUp(self, pc):
        J, P = pc.getOperators()
        self.J = J
        t0 = time.perf_counter()
        self.assemble_potential()
        t1 = time.perf_counter()
        self.potential.setOperators(self.A_p)
        if not self._configured:
            if self.n_layers:
                from . import column_multigrid
                column_multigrid.configure(self.potential.getPC(), self.A_p, self.n_layers)
            self.potential.setFromOptions()
            self._configured = True
        self.potential.setUp()
        self._remove_options()
        t2 = time.perf_counter()
        self.timings["assemble_s"] += t1 - t0
        self.timings["multigrid_setup_s"] += t2 - t1
        if self.x1 is None:
            self.x1, self.t = J.createVecRight(), J.createVecRight()
            # the Jacobian in A_p's row layout: the same nodes, all components. A column
            # cut by the mesh partition (DOLFINx gives each shared vertex one owner) is
            # whole here, so the block ILU keeps its thin-layer couplings: with DOLFINx's
            # layout it lost them, 11 outer iterations per Newton iteration against 2
            # serial (3D disc, 2 ranks)
            self.layout = PETSc.IS().createBlock(self.nc, self.nodes.astype(PETSc.IntType), comm=J.getComm())
            self.w = PETSc.Vec().createMPI((len(self.nodes) * self.nc, PETSc.DETERMINE), bsize=self.nc,
                                           comm=J.getComm())
            self.w2 = self.w.duplicate()
            self.gather = PETSc.Scatter().create(self.x1, self.layout, self.w, None)
        # built anew each time: PETSc's reuse path for MPIBAIJ refuses a non-local layout
        if self.J_c is not None:
            self.J_c.destroy()
        self.J_c = J.createSubMatrix(self.layout, self.layout)
        self.local.setOperators(self.J_c, self.J_c)
        self.local.setUp()
        if not self._local_configured:
            for ksp in self.local.getBJacobiSubKSP():
                ksp.setType("preonly")
                sub = ksp.getPC()
                sub.setType("ilu")
                sub.setFactorLevels(self.ilu_levels)
            self._local_configured = True
        self.local.setUpOnBlocks()
        self.timings["ilu_setup_s"] += time.perf_counter() - t2

    def apply(self, pc, r, x):
        f = self.forms
        nc, p = self.nc, f.layout.psi
        self.gather.scatter(r, self.w, PETSc.InsertMode.INSERT_VALUES, PETSc.ScatterMode.FORWARD)
        r_nodes = self.w.array_r.reshape(-1, nc)
        r_p = f.a0.value * f.inv_dt.value * r_nodes[:, p]
        r_p += np.einsum("ij,ij->i", r_nodes[:, :p], self.species_weight)
        r_p[self.fixed] = r_nodes[self.fixed, p]
        self.r_p.array[:] = r_p
        t0 = time.perf_counter()
        self.potential.solve(self.r_p, self.y_p)
        self.timings["multigrid_apply_s"] += time.perf_counter() - t0
        self.potential_solves += 1
        self.potential_iterations += self.potential.getIterationNumber()
        self.w.zeroEntries()
        self.w.array.reshape(-1, nc)[:, p] = self.y_p.array_r
        # every node is the row of exactly one rank: the reverse scatter sets all of x1
        self.gather.scatter(self.w, self.x1, PETSc.InsertMode.INSERT_VALUES, PETSc.ScatterMode.REVERSE)
        self.J.mult(self.x1, self.t)
        self.t.aypx(-1.0, r)
        self.gather.scatter(self.t, self.w, PETSc.InsertMode.INSERT_VALUES, PETSc.ScatterMode.FORWARD)
        self.local.apply(self.w, self.w2)
        self.gather.scatter(self.w2, x, PETSc.InsertMode.INSERT_VALUES, PETSc.ScatterMode.REVERSE)
        x.axpy(1.0, self.x1)

    def _remove_options(self):
        opts = PETSc.Options()
        for key in self._options:
            opts.delValue(key)
        self._options = []

    def destroy(self, pc=None):
        self._remove_options()
        for obj in (self.potential, self.local, self.A_q, self.A_p, self.rows, self.r_p, self.y_p, self.x1, self.t,
                    self.w, self.w2, self.gather, self.layout, self.J_c):
            if obj is not None:
                obj.destroy()
