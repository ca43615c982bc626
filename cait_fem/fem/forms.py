"""Weak forms of the dimensionless Nernst-Planck-Poisson system (MODEL.md section 2).

Unknowns, one blocked P1 space with components

    0          w = theta_native - 1   (deviation from the background: the space charge
                                        z_n w + sum_f z_f theta_f is then formed without
                                        cancellation, MODEL.md section 8)
    1 .. N-1   theta_f               (foreign species, in the order of the experiment)
    N          psi = e phi / (k_B T)

Discretisation (docs/numerics.md has the derivation and the reasons):

* Flux J_i = -D_i (grad theta_i + z_i theta_i grad psi + h^2 kappa(Pe) (b.grad theta_i) b),
  b = z_i grad psi, Pe = h |b|, kappa = ((Pe/2) coth(Pe/2) - 1) / Pe^2. In 1D with
  one-point (midpoint) quadrature of the flux term and lumped (vertex-quadrature) storage
  and charge terms this is exactly the Scharfetter-Gummel / Il'in-Allen-Southwell
  exponentially fitted box scheme: an M-matrix for every step size, so profiles stay in
  [0, 1] however strong the drift. In 2D/3D it is streamline artificial diffusion with the
  same optimal coefficient.
* D_i(theta) is evaluated at the quadrature point from the same law the user gave; UFL
  differentiates it, so dD/dtheta enters the Jacobian exactly.
* Time: variable-step BDF1/BDF2, (a0 u + a1 u_n + a2 u_nm1) / dt with a0, a1, a2 and 1/dt
  held in Constants, so nothing is recompiled while stepping.

Every physical parameter that may change between runs (diffusion-law parameters, beam and
front values) is a ``dolfinx.fem.Constant``; :meth:`NPPForms.set_parameters` updates them.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from mpi4py import MPI  # noqa: F401  (MPI is initialised by mpi4py before PETSc/DOLFINx)

import ufl
from dolfinx import fem, mesh as dmesh

from cait_fem.case.experiment import Beam, CurrentFront, Experiment, PotentialFront, check_same_structure
from cait_fem.errors import ConfigError
from cait_fem.physics.boundary_laws import landing_fraction
from cait_fem.physics.ops import ufl_ops
from .scales import Scales
from cait_fem.mesh import tags
from scipy.constants import e as _ELEMENTARY_CHARGE

FRONT_TAG = tags.BEAM_SPOT
BACK_TAG = tags.BACK_ELECTRODE

LUMPED = {"quadrature_rule": "vertex", "quadrature_degree": 1}
_MIDPOINT = {"quadrature_degree": 1}
_PE2_SERIES = 1e-2  # below this Pe^2, kappa from its Taylor series (no 0/0)
_B2_FLOOR = 1e-24  # |b|^2 added in the streamline length so that b = 0 gives 0/0 nowhere


def streamline_length_squared(domain, b):
    """h_b^2 for the drift direction b on a simplex: h_b = 2 |b| / sum_a |b . grad phi_a|,
    the cell's extent along b (Brooks & Hughes). The barycentric gradients are the rows of
    the inverse Jacobian K (and minus their sum), so sum_a |b . grad phi_a| = sum_i |(K b)_i|
    + |sum_i (K b)_i|. In 1D this is the cell length; on the anisotropic boundary-layer
    cells of a 2D/3D sample (0.2 nm deep, um wide) it is the depth spacing for a field
    normal to the surface, where the cell diameter would smear the front over a micrometre."""
    c = ufl.dot(ufl.JacobianInverse(domain), b)
    n = domain.topology.dim
    total = sum(abs(c[i]) for i in range(n)) + abs(sum(c[i] for i in range(n)))
    diameter = ufl.CellDiameter(domain)
    return 4.0 * (ufl.dot(b, b) + _B2_FLOOR) / (total**2 + 4.0 * _B2_FLOOR / diameter**2)


def _kappa(pe2):
    """((Pe/2) coth(Pe/2) - 1) / Pe^2 as a UFL expression of Pe^2, smooth at Pe = 0."""
    series = 1.0 / 12.0 - pe2 / 720.0 + pe2**2 / 30240.0
    pe = ufl.sqrt(ufl.max_value(pe2, _PE2_SERIES))
    e = ufl.exp(-pe)
    exact = (0.5 * pe * (1.0 + e) / (1.0 - e) - 1.0) / ufl.max_value(pe2, _PE2_SERIES)
    return ufl.conditional(ufl.lt(pe2, _PE2_SERIES), series, exact)


@dataclass
class NPPForms:
    """The compiled-once UFL description of one experiment on one mesh."""

    experiment: Experiment
    scales: Scales
    domain: dmesh.Mesh
    facet_tags: dmesh.MeshTags
    #: optional callable(v) -> UFL form added to the residual as "- source"; used by the
    #: method-of-manufactured-solutions tests (a source per equation).
    source: object = None
    #: r-z section of a disc: every integral carries the weight r = x[0] (MODEL.md's
    #: equations in cylindrical coordinates without angular dependence)
    axisymmetric: bool = False
    V: fem.FunctionSpace = field(init=False)
    u: fem.Function = field(init=False)
    u_n: fem.Function = field(init=False)
    u_nm1: fem.Function = field(init=False)

    def __post_init__(self):
        exp = self.experiment
        self.n_species = len(exp.species)
        self.psi_index = self.n_species
        self.front_index = exp.front_species_index
        self.charges = [float(s.charge_number) for s in exp.species]
        self.V = fem.functionspace(self.domain, ("Lagrange", 1, (self.n_species + 1,)))
        self.u = fem.Function(self.V, name="state")
        self.u_n = fem.Function(self.V, name="state_n")
        self.u_nm1 = fem.Function(self.V, name="state_nm1")
        c = lambda value: fem.Constant(self.domain, np.float64(value))  # noqa: E731
        self.inv_dt = c(1.0)
        self.bdf = (c(1.0), c(-1.0), c(0.0))
        # A Constant, not a literal, so that another glass hits the same JIT cache entry.
        self.debye2 = c(self.scales.debye_squared)
        T = exp.glass.temperature_K
        self.law_constants = []
        for s in exp.species:
            nd = s.diffusion.nondim_parameters(T, self.scales.D_ref_m2_s)
            self.law_constants.append({k: c(v) for k, v in nd.items()})
        self.front_constants = {k: c(v) for k, v in self._front_values().items()}
        self.back_rate = c(self._back_rate())
        self._build()

    # -- parameters ---------------------------------------------------------------------
    def _front_values(self) -> dict:
        front, sc = self.experiment.front, self.scales
        z = self.charges[self.front_index]
        if isinstance(front, (Beam, CurrentFront)):
            flux = front.current_density_A_m2 / (z * _ELEMENTARY_CHARGE) / sc.flux_m2_s
            vals = {"flux": flux}
            if isinstance(front, Beam):
                vals["E_kin"] = front.E_kin_eV / sc.potential_V
                vals["sigma_E"] = front.sigma_E_eV / sc.potential_V
            return vals
        return {"U": front.U_V / sc.potential_V, "surface_fraction": front.surface_fraction}

    def _back_rate(self) -> float:
        back, sc = self.experiment.back, self.scales
        if back.native == "discharge":
            return back.discharge_rate_m_s * sc.time_s / sc.length_m
        return 0.0

    def set_parameters(self, experiment: Experiment) -> None:
        """Load the parameters of ``experiment`` into the Constants: no recompilation. Only
        values that enter through Constants may differ from the compiled experiment: the
        diffusion-law parameters, the front and back-electrode values (run and solver
        settings are the stepper's and Newton's business). Glass, mesh, species (names,
        roles, charges, law types), front and back types and the flux must be the same
        (ConfigError otherwise)."""
        check_same_structure(self.experiment, experiment)
        self.experiment = experiment
        T = experiment.glass.temperature_K
        for s, consts in zip(experiment.species, self.law_constants):
            for k, v in s.diffusion.nondim_parameters(T, self.scales.D_ref_m2_s).items():
                consts[k].value = v
        for k, v in self._front_values().items():
            self.front_constants[k].value = v
        self.back_rate.value = self._back_rate()

    def set_bdf(self, dt: float, a: tuple[float, float, float]) -> None:
        self.inv_dt.value = 1.0 / dt
        for const, value in zip(self.bdf, a):
            const.value = value

    # -- UFL ------------------------------------------------------------------------------
    def thetas(self, u):
        """Species fractions theta_i as UFL expressions of the state ``u``."""
        return [1.0 + u[0]] + [u[i] for i in range(1, self.n_species)]

    def diffusivities(self, thetas):
        ops = ufl_ops()
        return [s.diffusion.relative(th, consts, ops)
                for s, th, consts in zip(self.experiment.species, thetas, self.law_constants)]

    def fluxes(self, u):
        """Dimensionless particle fluxes J_i (exponentially fitted, see module doc). With
        ``flux = "thermodynamic"`` the diffusion term carries the factor Gamma_i and the
        fitting uses the drift-to-diffusion ratio b / Gamma_i."""
        psi = u[self.psi_index]
        one_d = self.domain.topology.dim == 1
        h2 = ufl.CellDiameter(self.domain) ** 2 if one_d else None
        thetas = self.thetas(u)
        ops = ufl_ops()
        thermodynamic = self.experiment.flux == "thermodynamic"
        fluxes = []
        for s, z, th, D, consts in zip(self.experiment.species, self.charges, thetas,
                                        self.diffusivities(thetas), self.law_constants):
            b = z * ufl.grad(psi)
            g = ufl.grad(th)
            hb2 = h2 if one_d else streamline_length_squared(self.domain, b)
            if thermodynamic:
                G = s.diffusion.thermodynamic_factor(th, consts, ops)
                pe2 = hb2 * ufl.dot(b, b) / G**2
                fluxes.append(-D * (G * g + th * b + hb2 * _kappa(pe2) * ufl.dot(b, g) * b / G))
            else:
                pe2 = hb2 * ufl.dot(b, b)
                fluxes.append(-D * (g + th * b + hb2 * _kappa(pe2) * ufl.dot(b, g) * b))
        return fluxes

    def space_charge(self, u):
        """sum_i z_i theta_i - z_native, without cancellation."""
        rho = self.charges[0] * u[0]
        for i in range(1, self.n_species):
            rho = rho + self.charges[i] * u[i]
        return rho

    def influx(self, u):
        """Foreign influx through the front [dimensionless flux], or None for a Dirichlet front."""
        front, fc = self.experiment.front, self.front_constants
        if isinstance(front, Beam):
            z = self.charges[self.front_index]
            return fc["flux"] * landing_fraction(u[self.psi_index], fc["E_kin"], fc["sigma_E"], z, ufl_ops())
        if isinstance(front, CurrentFront):
            return fc["flux"]
        return None

    def _measures(self):
        """Measures with their weights: storage and charge by the vertex rule (lumping),
        fluxes by the midpoint rule, the front by the vertex rule (a point in 1D), so that
        the influx is a weighted sum over front nodes (cait_fem.fem.observables).

        Axisymmetric (r = x[0]): every integral carries r. The vertex rule of r u v would
        give the axis nodes zero mass; the weights below make the lumped mass the row sum
        of the consistent r-weighted mass, m_a = int r phi_a, exact for linear r on a
        simplex of dimension m: int_K r phi_a = |K|/(m+1) (r_a + (m+1) r_K)/(m+2), r_K the
        centroid value (a DG0 function, set once from the mesh)."""
        d = self.domain.topology.dim
        dx_l = ufl.Measure("dx", domain=self.domain, metadata=LUMPED)
        dx_m = ufl.Measure("dx", domain=self.domain, metadata=_MIDPOINT)
        ds = ufl.Measure("ds", domain=self.domain, subdomain_data=self.facet_tags)
        front = ufl.Measure("ds", domain=self.domain, subdomain_data=self.facet_tags,
                            metadata=LUMPED if d > 1 else None)(FRONT_TAG)
        one = 1.0
        self.weights = {"storage": one, "flux": one, "front": one, "back": one}
        if self.axisymmetric:
            r = ufl.SpatialCoordinate(self.domain)[0]
            r_cell, r_front = _centroid_radii(self.domain, self.facet_tags.find(FRONT_TAG))
            self.weights = {"storage": (r + (d + 1) * r_cell) / (d + 2), "flux": r,
                            "front": (r + d * r_front) / (d + 1), "back": r}
        return dx_l, dx_m, front, ds(BACK_TAG)

    def _build(self):
        u, v = self.u, ufl.TestFunction(self.V)
        dx_l, dx_m, front, ds_back = self._measures()
        w = self.weights
        self.storage_measure = dx_l
        self.flux_measure = dx_m
        self.front_measure = front
        a0, a1, a2 = self.bdf
        F = 0
        for i, J in enumerate(self.fluxes(u)):
            rate = (a0 * u[i] + a1 * self.u_n[i] + a2 * self.u_nm1[i]) * self.inv_dt
            F += w["storage"] * rate * v[i] * dx_l - w["flux"] * ufl.dot(J, ufl.grad(v[i])) * dx_m
        g = self.influx(u)
        if g is not None:
            F += -w["front"] * g * v[self.front_index] * front
        if self.experiment.back.native == "discharge":
            F += w["back"] * self.back_rate * u[0] * v[0] * ds_back
        p = self.psi_index
        F += w["flux"] * self.debye2 * ufl.dot(ufl.grad(u[p]), ufl.grad(v[p])) * dx_m
        F += -w["storage"] * self.space_charge(u) * v[p] * dx_l
        if self.source is not None:
            F += -self.source(v)
        self.F = F
        self.J = ufl.derivative(F, u, ufl.TrialFunction(self.V))


    def dirichlet_components(self) -> list[tuple[int, int]]:
        """(component, facet tag) of every Dirichlet condition."""
        fixed = [(self.psi_index, BACK_TAG)]
        if self.experiment.back.native == "reversible":
            fixed.insert(0, (0, BACK_TAG))
        if isinstance(self.experiment.front, PotentialFront):
            fixed += [(self.psi_index, FRONT_TAG), (self.front_index, FRONT_TAG)]
        return fixed

    def dirichlet_bcs(self) -> list[fem.DirichletBC]:
        fdim = self.domain.topology.dim - 1
        values = {(self.psi_index, FRONT_TAG): self.front_constants.get("U"),
                  (self.front_index, FRONT_TAG): self.front_constants.get("surface_fraction")}
        bcs = []
        for component, tag in self.dirichlet_components():
            sub = self.V.sub(component)
            dofs = fem.locate_dofs_topological(sub, fdim, self.facet_tags.find(tag))
            value = values.get((component, tag))
            if value is None:
                value = fem.Constant(self.domain, 0.0)
            bcs.append(fem.dirichletbc(value, dofs, sub))
        return bcs


def _centroid_radii(domain, front_facets):
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
