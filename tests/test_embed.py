"""The weak form as a building block: NPPForms on a user's mesh, its public parts (spatial
residual, storage, Dirichlet conditions), Simulation on a user's mesh, and the
demos/embed_forms.py script."""

import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from support.compare import approx

import cait_fem as cf
from cait_fem.errors import ConfigError
from cait_fem.fem.scales import Scales
from cait_fem.mesh import tags
from cait_fem.mesh.depth_grading import graded_nodes_m

# DOLFINx is imported inside the tests, so that collecting this module needs none.
pytestmark = pytest.mark.dolfinx

ROOT = Path(__file__).resolve().parents[1]
SED = cf.GaussianSED(fwhm_eV=0.25, vacancy_fraction=0.10, D_bulk_m2_s=1e-17)


def _experiment(**kw):
    kw.setdefault("run", cf.RunSettings(t_end_s=600.0, output_times_s=(100.0,)))
    return cf.Experiment(
        glass=cf.Glass(n_bg_m3=1.41e28, eps_r=8.0, temperature_K=300.0, thickness_m=1e-5),
        species=(cf.Species("Li", "native", SED), cf.Species("K", "foreign", cf.ConstantD(D_m2_s=5.6e-21))),
        front=cf.Beam(current_density_A_m2=1e-2, E_kin_eV=10.0, sigma_E_eV=0.5),
        mesh=cf.MeshSettings(fine_depth_m=100e-9), **kw)


def _tag(domain, front_value=tags.BEAM_SPOT, back_value=tags.BACK_ELECTRODE, back_at=None):
    from mpi4py import MPI

    from dolfinx import mesh as dmesh
    fdim = domain.topology.dim - 1
    depth = domain.topology.dim - 1
    x = domain.geometry.x[:, depth]
    hi = domain.comm.allreduce(x.max(), op=MPI.MAX) if back_at is None else back_at
    front = dmesh.locate_entities_boundary(domain, fdim, lambda p: np.isclose(p[depth], 0.0))
    back = dmesh.locate_entities_boundary(domain, fdim, lambda p: np.isclose(p[depth], hi))
    idx = np.concatenate([front, back]).astype(np.int32)
    vals = np.concatenate([np.full(front.size, front_value), np.full(back.size, back_value)]).astype(np.int32)
    order = np.argsort(idx)
    return dmesh.meshtags(domain, fdim, idx[order], vals[order])


def test_user_mesh_equal_to_the_default_one_gives_the_same_result():
    from mpi4py import MPI

    from cait_fem.mesh.interval import create_interval_mesh
    exp = _experiment()
    default = cf.Simulation(exp).run()
    depths_nm = graded_nodes_m(exp.glass.thickness_m, exp.mesh, exp.depth_resolution) / 1e-9
    domain = create_interval_mesh(MPI.COMM_WORLD, depths_nm)
    mine = cf.Simulation(exp, mesh=(domain, _tag(domain)), mesh_unit_m=1e-9).run()
    assert mine.theta.shape == default.theta.shape
    assert np.array_equal(mine.depth_m, default.depth_m)
    for name in ("theta", "potential_V", "time_s", "foreign_inside_m2", "current_density_A_m2"):
        a, b = getattr(mine, name), getattr(default, name)
        assert np.allclose(a, b, rtol=1e-12, atol=1e-14 * np.abs(b).max()), name
    # and the run did something: K+ entered
    assert default.foreign_inside_m2[-1] > 1e15


def test_user_mesh_in_micrometres_gives_the_same_profiles():
    """The mesh unit only rescales the dimensionless problem: the same mesh in um must give
    the profiles of the nm mesh up to the solver tolerances (not bit for bit)."""
    from mpi4py import MPI

    from cait_fem.mesh.interval import create_interval_mesh
    exp = _experiment(run=cf.RunSettings(t_end_s=100.0))
    depths_m = graded_nodes_m(exp.glass.thickness_m, exp.mesh)
    runs = []
    for unit in (1e-9, 1e-6):
        domain = create_interval_mesh(MPI.COMM_WORLD, depths_m / unit)
        runs.append(cf.Simulation(exp, mesh=(domain, _tag(domain)), mesh_unit_m=unit).run())
    nm, um = runs
    assert np.allclose(um.depth_m, nm.depth_m, rtol=1e-12)
    assert np.abs(um.theta[-1] - nm.theta[-1]).max() < 1e-3
    assert um.foreign_inside_m2[-1] == approx(nm.foreign_inside_m2[-1], rel=1e-3)


@pytest.mark.parametrize("what, match", [
    ("no back tag", "back_electrode"),
    ("unknown tag", "not allowed"),
    ("2D mesh", "needs a 1D mesh"),
    ("too thick", "spans depths"),
    ("not a pair", "mesh = Mesh"),
])
def test_bad_user_meshes_are_refused(what, match):
    from mpi4py import MPI

    from dolfinx import mesh as dmesh
    exp = _experiment()
    comm = MPI.COMM_WORLD
    if what == "2D mesh":
        domain = dmesh.create_rectangle(comm, [[0.0, 0.0], [10.0, 1e4]], [2, 4])
        mesh = (domain, _tag(domain))
    else:
        domain = dmesh.create_interval(comm, 20, [0.0, 2e4 if what == "too thick" else 1e4])
        if what == "no back tag":
            mesh = (domain, _tag(domain, back_value=tags.SIDE))
        elif what == "unknown tag":
            mesh = (domain, _tag(domain, back_value=42))
        elif what == "not a pair":
            mesh = domain
        else:
            mesh = (domain, _tag(domain))
    with pytest.raises(ConfigError, match=match):
        cf.Simulation(exp, mesh=mesh)


def _node_sums(form, V, bs):
    from dolfinx import fem, la
    vec = fem.assemble_vector(fem.form(form))
    vec.scatter_reverse(la.InsertMode.add)
    n = V.dofmap.index_map.size_local
    return vec.array.reshape(-1, bs)[:n]


def test_parts_of_the_form_on_a_2d_mesh_with_other_tags():
    """On a 100 x 50 nm rectangle with the beam spot tagged 7 and the back electrode 9:
    the storage of a unit rate is the area, the spatial residual of the pristine state
    is the influx (only at the front, only in the beam species' equation), and the
    Dirichlet conditions sit on the back electrode."""
    from mpi4py import MPI

    from dolfinx import fem
    from dolfinx import mesh as dmesh

    from cait_fem.fem.forms import NPPForms
    exp = _experiment()
    domain = dmesh.create_rectangle(MPI.COMM_WORLD, [[0.0, 0.0], [100.0, 50.0]], [10, 5])
    facet_tags = _tag(domain, front_value=7, back_value=9)
    forms = NPPForms(domain, facet_tags, exp.physics, front_tag=7, back_tag=9)
    lay, bs = forms.layout, forms.layout.block_size
    assert (lay.n_species, lay.psi, forms.psi_index, forms.n_species) == (2, 2, 2, 2)
    assert forms.scales == Scales.of(exp)

    one = fem.Constant(domain, 1.0)
    storage = _node_sums(forms.storage([one, 2.0 * one]), forms.V, bs)
    total = domain.comm.allreduce(storage.sum(axis=0), op=MPI.SUM)
    assert total == approx([100.0 * 50.0, 2.0 * 100.0 * 50.0, 0.0], rel=1e-12)

    forms.u.x.array[:] = 0.0
    G = _node_sums(forms.spatial_residual, forms.V, bs)
    G_total = domain.comm.allreduce(G.sum(axis=0), op=MPI.SUM)
    flux = float(forms.front_constants["flux"].value)
    # pristine: psi = 0 everywhere, all ions land (E_kin >> 0): influx = flux over the 100 nm front
    assert G_total[1] == approx(-flux * 100.0, rel=1e-9)
    assert abs(G_total[0]) < 1e-12 and abs(G_total[2]) < 1e-12

    bcs = forms.dirichlet_bcs()
    assert [c for c, _ in forms.dirichlet_components()] == [lay.native, lay.psi]
    assert all(tag == 9 for _, tag in forms.dirichlet_components())
    x = forms.V.tabulate_dof_coordinates()
    for bc in bcs:
        dofs = bc.dof_indices()[0]
        nodes = np.unique(dofs // bs) if forms.V.dofmap.index_map_bs == bs else dofs
        assert np.allclose(x[nodes, 1], 50.0)

    with pytest.raises(ValueError, match="2 rates"):
        forms.storage([one])
    with pytest.raises(ConfigError, match="front_tag"):
        NPPForms(domain, facet_tags, exp.physics, front_tag=9, back_tag=9)


def test_set_parameters_takes_physics_and_refuses_another_structure():
    from mpi4py import MPI

    from dolfinx import mesh as dmesh

    from cait_fem.fem.forms import NPPForms
    exp = _experiment()
    domain = dmesh.create_interval(MPI.COMM_WORLD, 10, [0.0, 1e4])
    forms = NPPForms(domain, _tag(domain), exp)
    F_before = forms.F
    stronger = cf.Physics(exp.glass, exp.species, cf.Beam(2e-2, 10.0, 0.5))
    flux0 = float(forms.front_constants["flux"].value)
    forms.set_parameters(stronger)
    assert forms.front_constants["flux"].value == approx(2.0 * flux0, rel=1e-14)
    assert forms.F is F_before  # Constants updated, nothing rebuilt
    with pytest.raises(ConfigError, match="front"):
        forms.set_parameters(cf.Physics(exp.glass, exp.species, cf.CurrentFront(1e-2)))
    with pytest.raises(ConfigError, match="physics"):
        NPPForms(domain, _tag(domain), "Li3B7O12")


def test_embed_demo_agrees_with_simulation_and_conserves_ions():
    proc = subprocess.run([sys.executable, str(ROOT / "demos" / "embed_forms.py")], check=False, capture_output=True,
                          text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    conservation = float(re.search(r"content / influx - 1 = (\S+)", out).group(1))
    difference = float(re.search(r"max \|theta - theta_cait_fem\| = (\S+)", out).group(1))
    content = float(re.search(r"Na\+ in the glass (\S+) m\^-2", out).group(1))
    assert abs(conservation) < 1e-9
    assert difference < 1e-8
    # at 0.1 V surface potential every 10 eV ion lands: 1 A/m^2 for 100 s, / e
    assert content == approx(1.0 * 100.0 / 1.602176634e-19, rel=1e-6)
