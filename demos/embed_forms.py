# # The cait_fem weak form in your own DOLFINx code
#
# cait_fem's :func:`~cait_fem.simulate` builds its own mesh, its own adaptive BDF time
# stepping and its own Newton solver around the Nernst-Planck-Poisson weak form. This
# demo uses only the weak form, :class:`cait_fem.fem.forms.NPPForms`, as a building block:
#
# 1. we make our own mesh and tag its front (beam spot) and back electrode,
# 2. build the cait_fem residual on it from the physics of a case,
# 3. write our own backward-Euler time discretisation from its public storage and
#    spatial parts,
# 4. solve each step with our own `dolfinx.fem.petsc.NonlinearProblem`, in our own loop,
# 5. and check the outcome: the foreign ions in the glass against the integrated influx
#    (conservation), and the profiles against cait_fem's own `Simulation` taking the same
#    backward-Euler steps on the same mesh.
#
# Run with ``python demos/embed_forms.py`` (serial; a few seconds).

# +
from mpi4py import MPI  # before dolfinx/petsc4py: MPI must be initialised first

import numpy as np
from dolfinx import fem, mesh
from dolfinx.fem.petsc import NonlinearProblem

import cait_fem as cf
from cait_fem.fem.forms import NPPForms
from cait_fem.mesh import tags

# -

# ## The physics
#
# A 500 nm thick Li3B7O12 glass film on a grounded back electrode, its native Li+ ions
# replaced by Na+ from a 1 A/m^2, 10 eV beam. Both ions move with constant diffusion
# coefficients here, to keep the demo short. The weak form needs only the *physics* of
# a case: glass, species, front (the beam) and back electrode; no mesh, run or solver
# settings.

# +
THICKNESS_NM = 500.0
glass = cf.Glass.preset("Li3B7O12", temperature_K=300.0, thickness_m=THICKNESS_NM * 1e-9)
lithium = cf.Species("Li", "native", cf.ConstantD(D_m2_s=1e-16))
sodium = cf.Species("Na", "foreign", cf.ConstantD(D_m2_s=1e-17))
beam = cf.Beam(current_density_A_m2=1.0, E_kin_eV=10.0, sigma_E_eV=0.5)
physics = cf.Physics(glass=glass, species=(lithium, sodium), front=beam)
# -

# ## Our own mesh
#
# Any DOLFINx simplex mesh will do, as long as the depth is its last coordinate (0 at the
# front) and the front and back facets are tagged. Here: 250 equal cells over the depth,
# coordinates in nm. The tags are those of :mod:`cait_fem.mesh.tags` (`BEAM_SPOT` = 1,
# `BACK_ELECTRODE` = 2), which are also the defaults of `NPPForms` (other values can be
# passed as `front_tag` / `back_tag`).

# +
comm = MPI.COMM_WORLD
domain = mesh.create_interval(comm, 250, [0.0, THICKNESS_NM])
fdim = domain.topology.dim - 1
front = mesh.locate_entities_boundary(domain, fdim, lambda x: np.isclose(x[0], 0.0))
back = mesh.locate_entities_boundary(domain, fdim, lambda x: np.isclose(x[0], THICKNESS_NM))
facets = np.concatenate([front, back]).astype(np.int32)
values = np.concatenate([np.full(front.size, tags.BEAM_SPOT), np.full(back.size, tags.BACK_ELECTRODE)])
order = np.argsort(facets)
facet_tags = mesh.meshtags(domain, fdim, facets[order], values[order].astype(np.int32))
# -

# ## The cait_fem weak form on it
#
# `length_scale_m` tells the forms the unit of the mesh coordinates (1e-9: nm). Everything
# in the forms is dimensionless in the scales that follow from it (`forms.scales`):
# lengths in nm, concentrations as fractions theta of the background density, the
# potential psi in units of k_B T / e, and time in t_ref = L^2 / D_native.
#
# The state `forms.u` lives in one blocked P1 space; `forms.layout` says which column is
# which: column 0 holds w = theta_Li - 1 (so a pristine glass is all zeros), then the
# foreign species, then psi.

# +
forms = NPPForms(domain, facet_tags, physics, length_scale_m=1e-9)
layout, scales = forms.layout, forms.scales
print(f"state columns: {layout.field_names} (column {layout.native} stores theta_Li - 1); "
      f"t_ref = {scales.time_s:.3g} s, kT/e = {scales.potential_V:.4f} V")
# -

# ## Our own time discretisation
#
# The forms give the semi-discrete system M du/dt + G(u) = 0 in parts:
#
# * `forms.spatial_residual`: G(u; v), fluxes, the beam influx at the front and Poisson's
#   equation; nothing in it depends on how time is discretised;
# * `forms.storage(rates)`: the lumped storage form sum_i int rate_i v_i, for one time
#   derivative per species (the potential has none: Poisson holds at every instant);
# * `forms.dirichlet_bcs()`: psi = 0 and theta_Li = 1 at the back electrode.
#
# Backward Euler from the previous state `u_old` with step `dt` (dimensionless; a
# Constant, so that a new step size does not recompile anything):

# +
u = forms.u
u_old = fem.Function(forms.V, name="u_old")
dt = fem.Constant(domain, 1.0)
rates = [(u[i] - u_old[i]) / dt for i in range(layout.n_species)]
F = forms.storage(rates) + forms.spatial_residual
# -

# ## Our own Newton solver
#
# A plain DOLFINx `NonlinearProblem` (PETSc SNES, Newton with a direct solve). The
# Jacobian is derived from F by UFL.

# +
problem = NonlinearProblem(
    F, u, bcs=forms.dirichlet_bcs(), petsc_options_prefix="embed_cait_",
    petsc_options={"snes_type": "newtonls", "snes_linesearch_type": "basic",
                   "snes_atol": 1e-12, "snes_rtol": 1e-12, "snes_stol": 0.0, "snes_max_it": 20,
                   "snes_error_if_not_converged": True,
                   "ksp_type": "preonly", "pc_type": "lu"})
# -

# ## Our own time loop
#
# 40 equal steps of 2.5 s: a 100 s exposure. After each step we add the influx through
# the front, integrated with the same backward-Euler rule, dt * int_front g(u) ds, with
# `forms.influx` (the landing law of the beam) and `forms.front_measure`.

# +
T_END_S, N_STEPS = 100.0, 40
dt.value = T_END_S / N_STEPS / scales.time_s
influx_form = fem.form(forms.influx(u) * forms.front_measure)
foreign_form = fem.form(sum(u[i] for i in layout.foreign) * forms.storage_measure)
u.x.array[:] = 0.0  # pristine glass: theta_Li = 1, no Na, no field
influx_integral = 0.0
for _ in range(N_STEPS):
    u_old.x.array[:] = u.x.array
    problem.solve()
    influx_integral += dt.value * comm.allreduce(fem.assemble_scalar(influx_form), op=MPI.SUM)
foreign = comm.allreduce(fem.assemble_scalar(foreign_form), op=MPI.SUM)
# -

# ## Check 1: conservation
#
# The Na+ ions can enter only through the front. The storage term is lumped with the same
# (vertex) rule as our content integral, and the flux terms vanish for a constant test
# function, so the content equals the integrated influx up to the Newton tolerance.
# Both are per unit front area, in n_bg * 1 nm; converted to ions per m^2 for the print.

# +
amount = scales.density_m3 * scales.length_m
conservation = foreign / influx_integral - 1.0
print(f"Na+ in the glass {foreign * amount:.6e} m^-2, integrated influx {influx_integral * amount:.6e} m^-2")
print(f"conservation: content / influx - 1 = {conservation:.3e}")
# -

# ## Check 2: the same steps with cait_fem's Simulation
#
# `Simulation` accepts our mesh too. With `scheme = "bdf1"` and our step times replayed
# (`schedule_s`), it takes exactly our backward-Euler steps, so its profiles must equal
# ours up to the Newton tolerances.

# +
experiment = cf.Experiment(
    glass=glass, species=(lithium, sodium), front=beam, name="embed_forms",
    run=cf.RunSettings(t_end_s=T_END_S, scheme="bdf1", dt_initial_s=T_END_S / N_STEPS),
    mesh=cf.MeshSettings(fine_depth_m=glass.thickness_m),
    solver=cf.SolverSettings(newton_atol=1e-11, potential_atol=1e-9))
sim = cf.Simulation(experiment, mesh=(domain, facet_tags), mesh_unit_m=1e-9)
result = sim.run(schedule_s=[T_END_S * (k + 1) / N_STEPS for k in range(N_STEPS)])

# our profiles, in the depth order of the Result (serial: the owned nodes of this rank)
n_owned = forms.V.dofmap.index_map.size_local
depth_nm = forms.V.tabulate_dof_coordinates()[:n_owned, 0]
ours = layout.thetas(layout.rows(u.x.array)[:n_owned])[:, np.argsort(depth_nm, kind="stable")]
if comm.size == 1:
    profile_difference = np.abs(ours - result.theta[-1]).max()
    print(f"profiles: max |theta - theta_cait_fem| = {profile_difference:.3e}")
print(f"Na+ in the glass, cait_fem: {result.foreign_inside_m2[-1]:.6e} m^-2; "
      f"surface potential {result.surface_potential_V[-1]:.4f} V; "
      f"front theta_Na = {ours[1, 0]:.4f}")
# -
