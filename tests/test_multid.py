"""2D, axisymmetric and 3D samples: a beam over the whole front reproduces the 1D profile
(to round-off, at every spacing), a partial spot conserves the ions
and draws the beam current through the back electrode, `mpirun -n 2` equals serial, a
restart equals an uninterrupted run, and a mesh file gives the run of the generated mesh."""

import dataclasses
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from support.cases import section_case_toml
from support.compare import approx
from support.experiments import BEAM, SECTION_SPOT, disc_cpr_experiment, experiment
from support.paths import BIN, script_prelude

from cait_fem.case.geometry import Geometry
from cait_fem.errors import ConfigError
from cait_fem.run.checkpoint import read_checkpoint

# DOLFINx is imported inside the tests, so that collecting this module needs none.
pytestmark = pytest.mark.dolfinx

FULL_FRONT = {
    "section": Geometry(kind="section", radius_m=50e-9, rim_spacing_m=50e-9, lateral_max_spacing_m=50e-9),
    "axisymmetric": Geometry(kind="axisymmetric", radius_m=50e-9, rim_spacing_m=50e-9, lateral_max_spacing_m=50e-9),
    "disc": Geometry(kind="disc", radius_m=50e-9, rim_spacing_m=50e-9, lateral_max_spacing_m=50e-9),
    "box": Geometry(kind="box", radius_m=50e-9, rim_spacing_m=50e-9, lateral_max_spacing_m=50e-9),
}


def axis_difference(result, reference) -> float:
    """max |theta_K(axis) - theta_K(1D)| at the last output time."""
    k = result.species_names.index("K")
    return float(np.abs(result.theta[-1, k] - np.interp(result.depth_m, reference.depth_m,
                                                           reference.theta[-1, k])).max())


@pytest.fixture(scope="module")
def slab():
    from cait_fem.run.simulation import Simulation
    return {h: Simulation(experiment(h)).run() for h in (0.5e-9, 0.25e-9)}


@pytest.mark.parametrize("kind", list(FULL_FRONT))
def test_full_front_reproduces_the_1d_profile_on_the_axis(kind, slab):
    """The depth layers of the mesh are the 1D nodes, and the multi-D scheme restricted to
    a laterally uniform state is the 1D scheme (docs/numerics.md section 7b): the axis
    profile is the 1D one to round-off, the metrics and per-area totals with it."""
    from cait_fem.run.simulation import Simulation
    ref = slab[0.5e-9]
    result = Simulation(experiment(0.5e-9, geometry=FULL_FRONT[kind])).run()
    m, m1 = result.metrics(), ref.metrics()
    assert m["front_position_m"] == approx(m1["front_position_m"], rel=1e-6)
    assert m["plateau_native"] == approx(m1["plateau_native"], rel=1e-6)
    assert axis_difference(result, ref) < 1e-8
    # the same totals per spot area as in 1D
    assert result.foreign_inside_m2[-1] == approx(ref.foreign_inside_m2[-1], rel=1e-3)
    assert result.charge_C_m2[-1] == approx(ref.charge_C_m2[-1], rel=1e-3)


def test_2d_minus_1d_difference_is_round_off_at_every_spacing(slab):
    """The edge fluxes and the layer lumping make the layered scheme the 1D one row by
    row: no first-order remainder to refine away (before: 0.027 at 0.5 nm, 0.013 at
    0.25 nm, tests/test_multid_accuracy.py)."""
    from cait_fem.run.simulation import Simulation
    for h in (0.5e-9, 0.25e-9):
        assert axis_difference(Simulation(experiment(h, geometry=FULL_FRONT["section"])).run(), slab[h]) < 1e-10


SPOT = Geometry(kind="axisymmetric", radius_m=2e-6, spot_radius_m=0.5e-6, rim_spacing_m=5e-9,
                lateral_growth_ratio=1.4, lateral_max_spacing_m=0.5e-6)


@pytest.fixture(scope="module")
def spot_run(tmp_path_factory):
    from cait_fem.run.simulation import Simulation
    directory = tmp_path_factory.mktemp("spot") / "checkpoint"
    exp = experiment(t_end_s=2000.0, thickness_m=20e-6, geometry=SPOT, outputs=(500.0, 2000.0))
    sim = Simulation(exp)
    return sim, sim.run(checkpoint_dir=directory), directory


def test_partial_spot_conserves_ions_and_draws_the_beam_current(spot_run):
    sim, result, _ = spot_run
    spot_area = result.metadata["spot_area_m2"]
    assert spot_area == approx(np.pi * SPOT.spot_radius_m**2, rel=1e-12)
    # every K+ that landed on the spot is inside (per spot area, then in total)
    assert result.conservation_error < 1e-9
    landed = result.influx_integral_m2[-1] * spot_area
    assert result.foreign_inside_m2[-1] * spot_area == approx(landed, rel=1e-9)
    # all ions land (phi_s < E_kin), so the back electrode carries the beam current
    beam_current_A = BEAM.current_density_A_m2 * spot_area
    assert result.current_density_A_m2[-1] * spot_area == approx(beam_current_A, rel=1e-3)
    # and K+ stays under the spot: beyond 1 um of the rim there is none at the surface
    from cait_fem.post.sampling import PointSampler, lateral_line
    r_nm = np.array([0.0, 1500.0])
    values = PointSampler(sim.domain, lateral_line(sim.domain, 1.0, r_nm)).values(sim.forms.u)
    assert values[0, 1] > 0.5 and abs(values[1, 1]) < 1e-6


def test_partial_spot_front_bends_at_the_rim(spot_run):
    """At the rim the replaced zone is shallower than on the axis and reaches laterally
    beyond the spot by about its depth, not by micrometres."""
    sim, result, _ = spot_run
    from cait_fem.post.sampling import PointSampler, depth_line, lateral_line
    depths = result.depth_m / 1e-9
    rim = SPOT.spot_radius_m / 1e-9
    axis_front = result.metrics()["x50_m"] / 1e-9
    at_rim = PointSampler(sim.domain, depth_line(sim.domain, depths, [rim])).values(sim.forms.u)[:, 1]
    rim_front = depths[np.argmax(at_rim < 0.5 * at_rim[0])]
    assert 0.1 * axis_front < rim_front < 0.95 * axis_front
    lateral = np.linspace(rim, rim + 200.0, 201)
    surface = PointSampler(sim.domain, lateral_line(sim.domain, 0.5 * axis_front, lateral)).values(sim.forms.u)[:, 1]
    spread = lateral[np.argmax(surface < 0.05)] - rim
    assert 0.0 <= spread < 2.0 * axis_front  # measured: 10 nm for a 10 nm deep front


def test_restart_of_a_2d_run_equals_the_uninterrupted_run(spot_run):
    from cait_fem.run.simulation import Simulation
    sim, full, directory = spot_run
    short = experiment(t_end_s=500.0, thickness_m=20e-6, geometry=SPOT, outputs=(500.0,))
    stopped = directory.parent / "stopped"
    Simulation(short).run(checkpoint_dir=stopped)
    resumed = Simulation(short).run(resume=read_checkpoint(stopped), experiment=sim.experiment)
    assert resumed.stats["steps"] == full.stats["steps"]
    np.testing.assert_array_equal(resumed.theta, full.theta)
    np.testing.assert_array_equal(resumed.current_density_A_m2, full.current_density_A_m2)


def test_mesh_file_gives_the_run_of_the_generated_mesh(tmp_path):
    from cait_fem.mesh.gmsh_sample import write_msh
    from cait_fem.run.simulation import Simulation
    geometry = FULL_FRONT["section"]
    exp = experiment(t_end_s=300.0, geometry=geometry)
    path = write_msh(geometry, exp.glass.thickness_m, exp.mesh, tmp_path / "section.msh")
    from_file = dataclasses.replace(exp, geometry=dataclasses.replace(geometry, mesh_file=str(path)))
    np.testing.assert_allclose(Simulation(from_file).run().theta, Simulation(exp).run().theta, rtol=0, atol=1e-12)


def test_mesh_file_without_back_electrode_is_refused_before_any_solve(tmp_path):
    import gmsh

    from cait_fem.run.simulation import Simulation
    path = tmp_path / "no_back.msh"
    gmsh.initialize()
    try:
        gmsh.option.setNumber("General.Terminal", 0)
        gmsh.model.add("broken")
        rect = gmsh.model.occ.addRectangle(0, 0, 0, 50, 1000)
        gmsh.model.occ.synchronize()
        front = [c[1] for c in gmsh.model.getBoundary([(2, rect)], oriented=False)
                 if abs(gmsh.model.occ.getCenterOfMass(1, c[1])[1]) < 1e-9]
        gmsh.model.addPhysicalGroup(1, front, 1, name="beam_spot")
        gmsh.model.addPhysicalGroup(2, [rect], 1, name="glass")
        gmsh.model.mesh.generate(2)
        gmsh.write(str(path))
    finally:
        gmsh.finalize()
    geometry = Geometry(kind="section", mesh_file=str(path))
    with pytest.raises(ConfigError, match="back_electrode"):
        Simulation(experiment(geometry=geometry))


MPI_SCRIPT = textwrap.dedent("""
    from mpi4py import MPI
    import numpy as np
    from support.experiments import experiment, SECTION_SPOT
    from cait_fem.run.simulation import Simulation
    r = Simulation(experiment(t_end_s=300.0, thickness_m=20e-6, geometry=SECTION_SPOT)).run()
    if MPI.COMM_WORLD.rank == 0:
        np.savez({out!r}, theta=r.theta, current=r.current_density_A_m2, t=r.time_s,
                 psi=r.surface_potential_V)
""")


@pytest.mark.mpi
def test_mpirun_two_ranks_equals_serial_2d(tmp_path):
    from cait_fem.run.simulation import Simulation
    out, script = tmp_path / "mpi.npz", tmp_path / "run.py"
    script.write_text(script_prelude() + MPI_SCRIPT.format(out=str(out)))
    proc = subprocess.run([str(BIN / "mpirun"), "-n", "2", sys.executable, str(script)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    serial = Simulation(experiment(t_end_s=300.0, thickness_m=20e-6, geometry=SECTION_SPOT)).run()
    mpi = np.load(out)
    assert mpi["t"].shape == serial.time_s.shape  # the same steps
    np.testing.assert_allclose(mpi["theta"], serial.theta, rtol=0, atol=1e-6)
    np.testing.assert_allclose(mpi["current"], serial.current_density_A_m2, rtol=1e-6)
    np.testing.assert_allclose(mpi["psi"], serial.surface_potential_V, rtol=1e-8)


CPR_MPI_SCRIPT = textwrap.dedent("""
    from mpi4py import MPI
    import numpy as np
    from support.experiments import disc_cpr_experiment
    from cait_fem.mesh import tags
    from cait_fem.run.simulation import Simulation
    comm = MPI.COMM_WORLD
    sim = Simulation(disc_cpr_experiment())
    d = sim.forms.domain
    tdim = d.topology.dim
    owned = np.arange(d.topology.index_map(tdim).size_local, dtype=np.int32)
    from dolfinx.mesh import compute_midpoints
    depth = compute_midpoints(d, tdim, owned)[:, tdim - 1]
    back = len(sim.forms.facet_tags.find(tags.BACK_ELECTRODE))
    span = comm.gather((float(depth.min()), float(depth.max()), back), root=0)
    r = sim.run()
    if comm.rank == 0:
        np.savez({out!r}, theta=r.theta, current=r.current_density_A_m2, t=r.time_s,
                 psi=r.surface_potential_V, krylov=r.stats["krylov_iterations"],
                 newton=r.stats["newton_iterations"], span=np.array(span),
                 thickness=sim.forms.domain.geometry.x[:, tdim - 1].max(),
                 potential=[sim.newton.cpr.potential_solves, sim.newton.cpr.potential_iterations],
                 n_layers=sim.newton.cpr.n_layers)
""")


@pytest.mark.mpi
def test_cpr_on_two_ranks_equals_serial_3d(tmp_path):
    """The scalable path (docs/numerics.md section 9): a 3D disc with a partial spot under
    `mpirun -n 2` with the CPR preconditioner. The mesh is cut into lateral columns (each
    rank's cells span the whole depth and own part of the back electrode), the run equals
    the serial one, and the solver does not depend on the partition: the column multigrid
    of the potential and the block ILU work on whole depth columns, so the Krylov
    iterations are those of the serial run (measured: 63 outer, 426 potential against 62
    and 421; with DOLFINx's layout for the block ILU it was 317 outer on 2 ranks)."""
    from cait_fem.run.simulation import Simulation
    out, script = tmp_path / "cpr.npz", tmp_path / "run.py"
    script.write_text(script_prelude() + CPR_MPI_SCRIPT.format(out=str(out)))
    proc = subprocess.run([str(BIN / "mpirun"), "-n", "2", sys.executable, str(script)],
                          capture_output=True, text=True, timeout=900)
    assert proc.returncode == 0, proc.stderr
    mpi = np.load(out)
    for top, bottom, back_facets in mpi["span"]:
        assert top < 0.01 * mpi["thickness"] and bottom > 0.9 * mpi["thickness"] and back_facets > 0
    serial_sim = Simulation(disc_cpr_experiment())
    serial = serial_sim.run()
    assert mpi["t"].shape == serial.time_s.shape
    np.testing.assert_allclose(mpi["theta"], serial.theta, rtol=0, atol=1e-6)
    np.testing.assert_allclose(mpi["psi"], serial.surface_potential_V, rtol=1e-6)
    np.testing.assert_allclose(mpi["current"], serial.current_density_A_m2, rtol=1e-5)
    assert int(mpi["n_layers"]) > 10  # the layered mesh's columns were found
    assert serial.stats["krylov_iterations"] < 4 * serial.stats["newton_iterations"]
    assert int(mpi["krylov"]) <= 1.2 * serial.stats["krylov_iterations"]
    solves, its = mpi["potential"]
    cpr = serial_sim.newton.cpr
    assert its / solves <= 1.2 * cpr.potential_iterations / cpr.potential_solves


def test_cli_runs_a_2d_case_with_checkpoints_and_resumes_it(tmp_path):
    from cait_fem import cli
    short, longer = tmp_path / "short.toml", tmp_path / "longer.toml"
    short.write_text(section_case_toml("spot2d", 2e-6, 100.0, [100], 5e-3))
    longer.write_text(section_case_toml("spot2d", 2e-6, 300.0, [100], 5e-3))
    out = tmp_path / "out"
    assert cli.main(["run", str(short), "-o", str(out), "--quiet", "--checkpoint"]) == 0
    names = {p.name for p in out.iterdir()}
    assert {"fields.bp", "rim_profiles.csv", "surface_profile.csv", "field_near_rim.png", "profiles.csv",
            "checkpoint"} <= names
    header = (out / "rim_profiles.csv").read_text().splitlines()[0].split(",")
    assert header == ["time_s", "depth_nm", "lateral_nm", "theta_Li", "theta_K", "phi_V"]
    # the finished run cannot be "resumed" to the same end time
    assert cli.main(["run", str(short), "-o", str(tmp_path / "again"), "--quiet",
                     "--resume", str(out / "checkpoint")]) == 2
    resumed = tmp_path / "resumed"
    assert cli.main(["run", str(longer), "-o", str(resumed), "--quiet", "--resume", str(out / "checkpoint")]) == 0
    direct = tmp_path / "direct"
    assert cli.main(["run", str(longer), "-o", str(direct), "--quiet", "--no-plots"]) == 0
    a = np.loadtxt(resumed / "profiles.csv", delimiter=",", skiprows=1)
    b = np.loadtxt(direct / "profiles.csv", delimiter=",", skiprows=1)
    np.testing.assert_array_equal(a, b)
    # and the mesh command writes the case's mesh
    assert cli.main(["mesh", str(short), "-o", str(tmp_path / "spot.msh")]) == 0
    assert (tmp_path / "spot.msh").stat().st_size > 0
