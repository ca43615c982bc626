"""Weak forms of the dimensionless Nernst-Planck-Poisson system (docs/model.md section 2).

Unknowns, one blocked P1 space whose columns :class:`cait_fem.fem.state.StateLayout` names

    0          w = theta_native - 1   (deviation from the background: the space charge
                                        z_n w + sum_f z_f theta_f is then formed without
                                        cancellation, docs/model.md section 8)
    1 .. N-1   theta_f               (foreign species, in the order of the case)
    N          psi = e phi / (k_B T)

The semi-discrete system is M d(u)/dt + G(u) = 0 with, per test function v,

* storage M: int theta_i' v_i, lumped (vertex quadrature), for the species only: the
  potential has no time derivative (Poisson is a constraint at every instant);
* spatial residual G: -int J_i . grad v_i (fluxes), the front influx and back-electrode
  exchange (boundary terms), lambda~^2 int grad psi . grad v_psi - int rho v_psi (Poisson),
  independent of the time discretisation;
* Dirichlet conditions: psi = 0 (and, reversible, w = 0) at the back electrode; psi = U and
  theta_f = surface fraction at a potential front; psi = U at a blocking anode, whose
  zero ion flux is the natural condition (no boundary term). U may follow a voltage
  history: :meth:`NPPForms.set_time` sets it per step.

:class:`NPPForms` exposes the three separately (``storage``, ``spatial_residual``,
``dirichlet_bcs``), so that other code can put its own time discretisation around them, and
builds from them the variable-step BDF1-BDF3 residual ``F`` that cait_fem's stepper uses:
(a0 u + a1 u_n + a2 u_nm1 + a3 u_nm2) / dt (BDF1 to BDF3) with a0 and 1/dt held in
Constants and the history part a1 u_n + a2 u_nm1 + a3 u_nm2 in one Function (set per step,
one coefficient to pack instead of three), so nothing is
recompiled while stepping.

Space discretisation (docs/numerics.md has the derivation and the reasons):

* Flux J_i = -D_i (grad theta_i + z_i theta_i grad psi + h^2 kappa(Pe) (b.grad theta_i) b),
  b = z_i grad psi, Pe = h |b|, kappa = ((Pe/2) coth(Pe/2) - 1) / Pe^2. In 1D with
  one-point (midpoint) quadrature of the flux term and lumped (vertex-quadrature) storage
  and charge terms this is exactly the Scharfetter-Gummel / Il'in-Allen-Southwell
  exponentially fitted box scheme: for frozen coefficients an M-matrix at any Peclet
  number, and a backward Euler step's matrix too (a discrete maximum principle for BDF1,
  not guaranteed for BDF2/BDF3; docs/numerics.md section 3). In 2D/3D the same flux is applied along every cell
  edge (edge-averaged exponential fitting, :mod:`cait_fem.fem.fluxes`) and the storage
  is lumped layer by layer on meshes layered in depth (:mod:`cait_fem.fem.lumping`): a
  laterally uniform state then satisfies the 1D equations node by node.
* D_i(theta) is evaluated at the quadrature point (2D/3D: at the edge midpoints) from the
  same law the user gave; UFL differentiates it, so dD/dtheta enters the Jacobian exactly.

Every physical parameter that may change between runs (diffusion-law parameters, beam and
front values) is a ``dolfinx.fem.Constant``; :meth:`NPPForms.set_parameters` updates them.
"""

from __future__ import annotations

from mpi4py import MPI  # noqa: F401  (MPI is initialised by mpi4py before PETSc/DOLFINx)

import numpy as np
import ufl
from dolfinx import fem
from dolfinx import mesh as dmesh

from cait_fem.case.experiment import AnodeFront, Beam, CurrentFront, Experiment, Physics, PotentialFront
from cait_fem.case.structure import check_same_structure
from cait_fem.errors import ConfigError
from cait_fem.mesh import tags
from cait_fem.physics.boundary_laws import landing_fraction
from cait_fem.physics.ops import ufl_ops

from . import boundary_values, fluxes
from .fluxes import streamline_length_squared  # noqa: F401  (importable from here as before the split)
from .lumping import integrand_weights
from .scales import LENGTH_SCALE_M, Scales
from .state import StateLayout

FRONT_TAG = tags.BEAM_SPOT
BACK_TAG = tags.BACK_ELECTRODE

LUMPED = {"quadrature_rule": "vertex", "quadrature_degree": 1}
_MIDPOINT = {"quadrature_degree": 1}


def _physics_of(case, what: str) -> Physics:
    if isinstance(case, Experiment):
        return case.physics
    if isinstance(case, Physics):
        return case
    raise ConfigError(f"{what} = {type(case).__name__} is not allowed: a cait_fem Physics or Experiment")


class NPPForms:
    """The Nernst-Planck-Poisson weak form of one case on one mesh, compiled once.

    Takes:

    ``domain``
        a DOLFINx simplex mesh (interval, triangles or tetrahedra); the depth is its last
        coordinate, 0 at the front. Coordinates in units of ``length_scale_m``.
    ``facet_tags``
        its facet ``MeshTags``; ``front_tag`` marks the beam spot (influx, or the
        Dirichlet front of a potential front), ``back_tag`` the grounded back electrode.
        Every other boundary is closed (zero normal flux and field).
    ``physics``
        a :class:`~cait_fem.case.experiment.Physics` (glass, species, front, back, flux),
        or an Experiment, of which only its ``physics`` is used.
    ``length_scale_m``
        the mesh coordinate unit [m] (default 1e-9: nm); the forms are dimensionless in the
        :class:`~cait_fem.fem.scales.Scales` of the physics with this length.
    ``axisymmetric``
        the mesh is the r-z section of a disc, r = x[0]: every integral carries the weight r.
    ``source``
        optional callable(v) -> UFL form subtracted from ``F`` (method-of-manufactured-
        solutions tests).

    Gives (all public attributes; the forms are dimensionless, see module doc):

    ``layout``: :class:`~cait_fem.fem.state.StateLayout` of the state; ``V``: the blocked P1
    space; ``u``: the state Function (unknown); ``v``: the test function;
    ``spatial_residual``: G(u; v), the UFL form of fluxes, boundary terms and Poisson;
    :meth:`storage`: the lumped storage form of given time derivatives;
    ``storage_measure``, ``flux_measure``, ``front_measure``, ``back_measure``: the
    measures the terms use, and ``weights``: their integrand weights (1, or the r-weights
    of an axisymmetric mesh; the storage weight of a 2D/3D mesh layered in depth also
    carries the layer-lumping factor); :meth:`dirichlet_bcs`: the Dirichlet conditions. For the
    residual ``F = storage(BDF rate) + spatial_residual (- source)`` used by cait_fem's
    stepper: ``u_n``, ``u_nm1``, ``u_nm2`` (previous states), ``inv_dt`` and ``a0``
    (Constants 1/dt and a0) and ``u_history`` (the previous states' part of the BDF
    rate), all set by :meth:`set_bdf`, ``F`` and its Jacobian ``J``.
    ``charges``: the charge numbers z_i as floats, ``front_index``: the component of the
    species entering at the front (None for a blocking anode). Parameter Constants: ``debye2`` ((lambda_D / L)^2),
    ``law_constants`` (per species, the dimensionless diffusion-law parameters),
    ``front_constants``, ``back_rate``; updated by :meth:`set_parameters`.
    """

    physics: Physics
    scales: Scales
    domain: dmesh.Mesh
    facet_tags: dmesh.MeshTags
    front_tag: int
    back_tag: int
    axisymmetric: bool
    layout: StateLayout
    charges: list
    front_index: int
    source: object
    V: fem.FunctionSpace
    u: fem.Function
    u_n: fem.Function
    u_nm1: fem.Function
    u_nm2: fem.Function
    u_history: fem.Function
    v: object
    inv_dt: fem.Constant
    a0: fem.Constant
    debye2: fem.Constant
    law_constants: list
    front_constants: dict
    back_rate: fem.Constant
    weights: dict
    storage_measure: ufl.Measure
    flux_measure: ufl.Measure
    front_measure: ufl.Measure
    back_measure: ufl.Measure
    spatial_residual: ufl.Form
    F: ufl.Form
    J: ufl.Form

    def __init__(self, domain: dmesh.Mesh, facet_tags: dmesh.MeshTags, physics, *,
                 length_scale_m: float = LENGTH_SCALE_M, front_tag: int = tags.BEAM_SPOT,
                 back_tag: int = tags.BACK_ELECTRODE, axisymmetric: bool = False, source=None):
        self.physics = _physics_of(physics, "physics")
        if not isinstance(axisymmetric, bool):
            raise ConfigError(f"axisymmetric = {axisymmetric!r} is not allowed: True or False")
        if axisymmetric and domain.topology.dim != 2:
            raise ConfigError(f"axisymmetric = True needs a 2D (r, depth) mesh, this one is "
                              f"{domain.topology.dim}D")
        if domain.topology.dim > 1 and domain.geometry.dim != domain.topology.dim:
            # the edge fluxes build edge vectors and barycentric gradients in d x d
            raise ConfigError(f"domain: geometric dimension {domain.geometry.dim} differs from its topological "
                              f"dimension {domain.topology.dim}; a 2D/3D mesh needs as many coordinates as "
                              "dimensions (the depth last)")
        for name, tag in (("front_tag", front_tag), ("back_tag", back_tag)):
            if isinstance(tag, bool) or not isinstance(tag, (int, np.integer)):
                raise ConfigError(f"{name} = {tag!r} is not allowed: an integer facet tag value")
        if front_tag == back_tag:
            raise ConfigError(f"front_tag = back_tag = {front_tag!r} is not allowed: the beam spot and the "
                              "back electrode need different tags")
        self.scales = Scales.of(self.physics, length_scale_m)
        self.domain, self.facet_tags = domain, facet_tags
        self.front_tag, self.back_tag = int(front_tag), int(back_tag)
        self.axisymmetric = axisymmetric
        self.source = source
        self.time_s = 0.0  # the time [s] the front's voltage history is evaluated at
        self.layout = StateLayout.of(self.physics)
        self.front_index = self.physics.front_species_index
        self.charges = [float(z) for z in self.layout.charge_numbers]
        # Creation order of the Functions and Constants fixes their numbering in the
        # generated code, and so the JIT cache entry: keep it when changing this.
        self.V = fem.functionspace(self.domain, ("Lagrange", 1, (self.layout.block_size,)))
        self.u = fem.Function(self.V, name="state")
        self.u_n = fem.Function(self.V, name="state_n")
        self.u_nm1 = fem.Function(self.V, name="state_nm1")
        self.u_nm2 = fem.Function(self.V, name="state_nm2")
        self.u_history = fem.Function(self.V, name="bdf_history")
        c = lambda value: fem.Constant(self.domain, np.float64(value))  # noqa: E731
        self.inv_dt = c(1.0)
        self.a0 = c(1.0)
        # A Constant, not a literal, so that another glass hits the same JIT cache entry.
        self.debye2 = c(self.scales.debye_squared)
        T = self.physics.glass.temperature_K
        self.law_constants = []
        for s in self.physics.species:
            nd = s.diffusion.nondim_parameters(T, self.scales.D_ref_m2_s)
            self.law_constants.append({k: c(v) for k, v in nd.items()})
        self.front_constants = {k: c(v) for k, v in self._front_values().items()}
        self.back_rate = c(boundary_values.back_rate(self.physics, self.scales))
        self.v = ufl.TestFunction(self.V)
        self._measures()
        species_terms, field_terms = self._spatial_terms()
        self.spatial_residual = sum(species_terms, 0) + field_terms
        u = self.u
        rates = [(self.a0 * u[i] + self.u_history[i]) * self.inv_dt
                 for i in range(self.layout.n_species)]
        # F = storage(rates) + spatial_residual, summed species by species: the order of
        # the integrals is part of the form's signature, and this one is that of the JIT
        # cache entries (and kernels) of earlier versions.
        F = 0
        for i, rate in enumerate(rates):
            F += self._storage_term(i, rate) + species_terms[i]
        F += field_terms
        if self.source is not None:
            F += -self.source(self.v)
        self.F = F
        self.J = ufl.derivative(F, u, ufl.TrialFunction(self.V))

    # -- the state layout, for code that reads these names -------------------------------
    @property
    def n_species(self) -> int:
        """Number of species (``layout.n_species``)."""
        return self.layout.n_species

    @property
    def psi_index(self) -> int:
        """Component of the potential (``layout.psi``)."""
        return self.layout.psi

    # -- parameters ---------------------------------------------------------------------
    def _front_values(self, left: bool = False) -> dict:
        z = None if self.front_index is None else self.charges[self.front_index]
        return boundary_values.front_values(self.physics, self.scales, z, self.time_s, left)

    def set_parameters(self, case) -> None:
        """Load the parameters of ``case`` (a Physics or an Experiment) into the Constants:
        no recompilation. Only values that enter through Constants may differ from the
        compiled physics: the diffusion-law parameters, the front and back-electrode values.
        Glass, species (names, roles, charges, law types), front and back types and the
        flux must be the same (ConfigError otherwise). The scales stay those of the
        compiled physics."""
        physics = _physics_of(case, "set_parameters(case)")
        check_same_structure(self.physics, physics)
        self.physics = physics
        T = physics.glass.temperature_K
        for s, consts in zip(physics.species, self.law_constants):
            for k, v in s.diffusion.nondim_parameters(T, self.scales.D_ref_m2_s).items():
                consts[k].value = v
        for k, v in self._front_values().items():
            self.front_constants[k].value = v
        self.back_rate.value = boundary_values.back_rate(physics, self.scales)

    def set_time(self, t: float, left: bool = False, previous_times=None) -> None:
        """Boundary values at the dimensionless time ``t`` (in ``scales.time_s``): the
        front potential of a voltage history, the current of a beam history. ``left``: at a
        jump of the history, the value before it. Constants only: nothing is recompiled.

        ``previous_times``: the times of the previous states of a BDF step ending at ``t``
        (newest first, one per coefficient after a0 of the last :meth:`set_bdf`). A beam
        history then enters as the BDF derivative of its exact delivered charge
        (:func:`~cait_fem.fem.boundary_values.beam_step_flux`), so the charge the model
        receives equals the delivered charge at every step to round-off."""
        front = self.physics.front
        if isinstance(front, (PotentialFront, AnodeFront)):
            self.time_s = float(t) * self.scales.time_s
            self.front_constants["U"].value = self._front_values(left)["U"]
        elif isinstance(front, Beam) and front.has_history:
            self.time_s = float(t) * self.scales.time_s
            if previous_times is None:
                self.front_constants["flux"].value = self._front_values()["flux"]
            else:
                dt, a = self._bdf
                times = [float(t)] + [float(tk) for tk in previous_times]
                self.front_constants["flux"].value = boundary_values.beam_step_flux(
                    front, self.scales, self.charges[self.front_index], times, dt, a)

    def set_bdf(self, dt: float, a) -> None:
        """Step ``dt`` (dimensionless, in ``scales.time_s``) and BDF coefficients
        ``a`` = (a0, a1[, a2[, a3]]) of ``F``: the rate is (a0 u + a1 u_n + a2 u_nm1 +
        a3 u_nm2) / dt, from the previous states as they are in ``u_n``, ``u_nm1``,
        ``u_nm2`` now (set them first)."""
        if not 2 <= len(a) <= 4:
            raise ValueError(f"BDF coefficients {tuple(a)!r}: 2 to 4 values (BDF1 to BDF3)")
        self.inv_dt.value = 1.0 / dt
        self.a0.value = a[0]
        self._bdf = (float(dt), tuple(float(c) for c in a))
        history = self.u_history.x.array
        history[:] = 0.0
        for coefficient, previous in zip(a[1:], (self.u_n, self.u_nm1, self.u_nm2)):
            history += coefficient * previous.x.array

    # -- UFL ------------------------------------------------------------------------------
    def thetas(self, u):
        """Species fractions theta_i as UFL expressions of the state ``u``."""
        lay = self.layout
        return [lay.native_offset + u[lay.native]] + [u[i] for i in lay.foreign]

    def diffusivities(self, thetas, ends=None):
        """D_i / D_ref as UFL expressions: of theta_i, or of the fractions a law names
        (:class:`~cait_fem.physics.diffusion.LogLinearD`), so UFL differentiates along them too.
        ``ends``: per species the two nodal values of the edge whose flux D is for (a law
        with an immobile fraction uses them, ``DiffusionLaw.relative_between``)."""
        ops = ufl_ops()
        by_name = dict(zip(self.layout.species_names, thetas))
        ends = ends or [None] * len(thetas)
        return [s.diffusion.relative_of(th, by_name, consts, ops) if e is None or s.diffusion.fraction_names
                else s.diffusion.relative_between(th, e, consts, ops)
                for s, th, e, consts in zip(self.physics.species, thetas, ends, self.law_constants)]

    def fluxes(self, u):
        """Dimensionless particle fluxes J_i of the 1D scheme (exponentially fitted, see
        module doc and :func:`cait_fem.fem.fluxes.fitted_fluxes`), also the streamline form
        of 2D/3D; the 2D/3D residual uses the edge fluxes of :meth:`edge_fluxes` instead."""
        thetas = self.thetas(u)
        ends = fluxes.cell_ends(self.domain, thetas)
        return fluxes.fitted_fluxes(self.domain, self.physics.species, self.charges, thetas,
                                    u[self.layout.psi], self.diffusivities(thetas, ends), self.law_constants,
                                    self.physics.flux == "thermodynamic")

    def edge_fluxes(self, u):
        """Edge-averaged exponential fitting on 2D/3D simplices, per species a list of
        (omega_E, q_E, e_E) over the cell's edges: :func:`cait_fem.fem.fluxes.edge_fluxes`."""
        return fluxes.edge_fluxes(self.domain, self.physics.species, self.charges, self.thetas(u),
                                  u[self.layout.psi], self.law_constants, self.physics.flux == "thermodynamic")

    def space_charge(self, u):
        """sum_i z_i theta_i - z_native, without cancellation."""
        lay = self.layout
        rho = self.charges[lay.native] * u[lay.native]
        for i in lay.foreign:
            rho = rho + self.charges[i] * u[i]
        return rho

    def influx(self, u):
        """Foreign influx through the front [dimensionless flux], or None for a Dirichlet front."""
        front, fc = self.physics.front, self.front_constants
        if isinstance(front, Beam):
            z = self.charges[self.front_index]
            return fc["flux"] * landing_fraction(u[self.layout.psi], fc["E_kin"], fc["sigma_E"], z, ufl_ops())
        if isinstance(front, CurrentFront):
            return fc["flux"]
        return None

    def _measures(self):
        """Measures with their weights: storage and charge by the vertex rule (lumping),
        fluxes by the midpoint rule, the front by the vertex rule (a point in 1D), so that
        the influx is a weighted sum over front nodes (cait_fem.fem.observables). The weights:
        :func:`~cait_fem.fem.lumping.integrand_weights` (axisymmetric r-weights, layer
        lumping)."""
        d = self.domain.topology.dim
        ds = ufl.Measure("ds", domain=self.domain, subdomain_data=self.facet_tags)
        self.storage_measure = ufl.Measure("dx", domain=self.domain, metadata=LUMPED)
        self.flux_measure = ufl.Measure("dx", domain=self.domain, metadata=_MIDPOINT)
        self.front_measure = ufl.Measure("ds", domain=self.domain, subdomain_data=self.facet_tags,
                                         metadata=LUMPED if d > 1 else None)(self.front_tag)
        self.back_measure = ds(self.back_tag)
        self.weights = integrand_weights(self.domain, self.facet_tags.find(self.front_tag), self.axisymmetric)

    def _storage_term(self, i: int, rate) -> ufl.Form:
        return self.weights["storage"] * rate * self.v[i] * self.storage_measure

    def storage(self, rates) -> ufl.Form:
        """The lumped storage form sum_i int w_s rates[i] v_i (vertex quadrature), one rate
        (a UFL expression: the time derivative of state component i, dimensionless) per
        species, in state order (component 0 is w, so its rate is d(theta_native)/dt). The
        potential has no storage. Backward Euler, e.g.:
        ``storage([(u[i] - u_old[i]) / dt for i in range(layout.n_species)])``."""
        if len(rates) != self.layout.n_species:
            raise ValueError(f"storage needs {self.layout.n_species} rates (one per species), got {len(rates)}")
        M = 0
        for i, rate in enumerate(rates):
            M += self._storage_term(i, rate)
        return M

    def _spatial_terms(self):
        """The spatial residual as (per-species flux terms, the rest: boundary terms and
        Poisson), see ``spatial_residual``."""
        u, v, w, p = self.u, self.v, self.weights, self.layout.psi
        dx_l, dx_m = self.storage_measure, self.flux_measure
        if self.domain.topology.dim == 1:
            species = [-(w["flux"] * ufl.dot(J, ufl.grad(v[i])) * dx_m) for i, J in enumerate(self.fluxes(u))]
        else:
            species = [w["flux"] * sum(omega * q * ufl.dot(ufl.grad(v[i]), e) for omega, q, e in terms) * dx_m
                       for i, terms in enumerate(self.edge_fluxes(u))]
        G = 0
        g = self.influx(u)
        if g is not None:
            G += -w["front"] * g * v[self.front_index] * self.front_measure
        if self.physics.back.native == "discharge":
            G += w["back"] * self.back_rate * u[self.layout.native] * v[self.layout.native] * self.back_measure
        G += w["flux"] * self.debye2 * ufl.dot(ufl.grad(u[p]), ufl.grad(v[p])) * dx_m
        G += -w["storage"] * self.space_charge(u) * v[p] * dx_l
        return species, G

    def dirichlet_components(self) -> list[tuple[int, int]]:
        """(component, facet tag) of every Dirichlet condition."""
        lay = self.layout
        fixed = [(lay.psi, self.back_tag)]
        if self.physics.back.native == "reversible":
            fixed.insert(0, (lay.native, self.back_tag))
        if isinstance(self.physics.front, PotentialFront):
            fixed += [(lay.psi, self.front_tag), (self.front_index, self.front_tag)]
        elif isinstance(self.physics.front, AnodeFront):
            fixed.append((lay.psi, self.front_tag))
        return fixed

    def dirichlet_bcs(self) -> list[fem.DirichletBC]:
        """The Dirichlet conditions on ``V`` (values are Constants: :meth:`set_parameters`
        updates them): psi = 0 and, reversible, w = 0 on the back electrode; psi = U and
        theta_f = surface fraction on a potential front; psi = U on an anode."""
        fdim = self.domain.topology.dim - 1
        values = {(self.layout.psi, self.front_tag): self.front_constants.get("U"),
                  (self.front_index, self.front_tag): self.front_constants.get("surface_fraction")}
        bcs = []
        for component, tag in self.dirichlet_components():
            sub = self.V.sub(component)
            dofs = fem.locate_dofs_topological(sub, fdim, self.facet_tags.find(tag))
            value = values.get((component, tag))
            if value is None:
                value = fem.Constant(self.domain, 0.0)
            bcs.append(fem.dirichletbc(value, dofs, sub))
        return bcs

