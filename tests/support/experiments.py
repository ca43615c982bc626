"""Experiments shared by test modules and the MPI child scripts they write. Pure: building
them needs no DOLFINx."""

import dataclasses

import cait_fem as cf
from cait_fem.case.geometry import Geometry

SED = cf.GaussianSED(fwhm_eV=0.25, vacancy_fraction=0.10, D_bulk_m2_s=1e-17)
LI = cf.Species("Li", "native", SED)
K = cf.Species("K", "foreign", cf.ConstantD(D_m2_s=5.6e-21))
RB = cf.Species("Rb", "foreign", cf.ConstantD(D_m2_s=2e-21))
BEAM = cf.Beam(current_density_A_m2=1e-2, E_kin_eV=10.0, sigma_E_eV=0.5)

# -- the 1D slab of the checkpoint tests: 2 um, three output times ------------------------
SLAB_GLASS = cf.Glass(n_bg_m3=1.41e28, eps_r=8.0, temperature_K=300.0, thickness_m=2e-6)
# coarse explicit meshes of tests about other things than accuracy: no spatial estimate
SLAB_MESH = cf.MeshSettings(front_spacing_m=0.5e-9, fine_depth_m=60e-9, growth_ratio=1.2, bulk_spacing_m=0.5e-6,
                            estimate_spatial_error=False)
SLAB_RUN = cf.RunSettings(t_end_s=3600.0, output_times_s=(600.0, 1800.0, 3600.0), time_tolerance=3e-3)
SLAB_EXP = cf.Experiment(glass=SLAB_GLASS, species=(LI, K), front=cf.Beam(1e-2, 10.0, 0.5), run=SLAB_RUN,
                         mesh=SLAB_MESH)


def k_demo_1mm(**run):
    """The K+ demo physics on a 1 mm slab with the default mesh; ``run``: RunSettings
    keywords (times in s)."""
    glass = cf.Glass(n_bg_m3=1.41e28, eps_r=8.0, temperature_K=300.0, thickness_m=1e-3)
    return cf.Experiment(glass=glass, species=(LI, K), front=BEAM, run=cf.RunSettings(**run))


def stopped_at(exp, t_s):
    """The same experiment, interrupted at output time ``t_s`` (s)."""
    times = tuple(t for t in exp.run.output_times_s if t <= t_s)
    return dataclasses.replace(exp, run=dataclasses.replace(exp.run, t_end_s=t_s, output_times_s=times))


# -- 2D/3D runs ------------------------------------------------------------------------------

def experiment(front_spacing_m=0.5e-9, t_end_s=2000.0, thickness_m=1e-6, geometry=Geometry(), outputs=()):
    """Li/K under the beam; spacings and thickness in m, times in s."""
    mesh = cf.MeshSettings(front_spacing_m=front_spacing_m, fine_depth_m=40e-9, growth_ratio=1.3,
                           bulk_spacing_m=0.2e-6, estimate_spatial_error=False)
    glass = cf.Glass(n_bg_m3=1.41e28, eps_r=8.0, temperature_K=300.0, thickness_m=thickness_m)
    run = cf.RunSettings(t_end_s=t_end_s, output_times_s=outputs, time_tolerance=5e-3)
    return cf.Experiment(glass=glass, species=(LI, K), front=BEAM, run=run, mesh=mesh, geometry=geometry)


SECTION_SPOT = Geometry(kind="section", radius_m=2e-6, spot_radius_m=0.5e-6, rim_spacing_m=5e-9,
                        lateral_growth_ratio=1.4, lateral_max_spacing_m=0.5e-6)
DISC_SPOT = Geometry(kind="disc", radius_m=1e-6, spot_radius_m=0.3e-6, rim_spacing_m=100e-9,
                     lateral_growth_ratio=1.5, lateral_max_spacing_m=0.4e-6)
CPR = cf.SolverSettings(linear_solver="iterative", preconditioner="cpr", ilu_levels=0)


def disc_cpr_experiment():
    """A 3D disc with a partial spot, first 10 ms of the beam, Newton-Krylov with CPR."""
    exp = experiment(t_end_s=1e-2, thickness_m=2e-6, geometry=DISC_SPOT)
    run = dataclasses.replace(exp.run, dt_initial_s=1e-6)
    return dataclasses.replace(exp, solver=CPR, run=run)
