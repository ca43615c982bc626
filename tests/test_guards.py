"""Input that cannot run is refused up front (issue 13, items 5, 7, 8), in well under a
second and with exit 2: a mesh beyond ``mesh.max_cells``, a run that cannot finish in
``run.max_steps``, a diffusion coefficient that the scaled system cannot represent, a
damaged or foreign checkpoint, a resume that changes the structure. No DOLFINx: the
checkpoints here are written by :func:`write_checkpoint` with a one-process stand-in
communicator."""

import dataclasses
import json
import math
import time

import numpy as np
import pytest
from support.cases import CONTRACT_CASE_TOML
from support.compare import approx
from support.experiments import DISC_SPOT, LI, SECTION_SPOT, SLAB_MESH, K

import cait_fem as cf
from cait_fem import cli
from cait_fem.case import estimates
from cait_fem.case.case_file import experiment_from_dict, load_case
from cait_fem.case.geometry import Geometry
from cait_fem.case.structure import check_same_structure
from cait_fem.errors import ConfigError, SolverError
from cait_fem.mesh.depth_grading import graded_nodes_m
from cait_fem.mesh.lateral_grading import lateral_nodes_m
from cait_fem.run.checkpoint import META_FILE, STATE_FILE, read_checkpoint, resume_changes, write_checkpoint
from cait_fem.solver import bdf
from cait_fem.solver.stepsize import Stepsize

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

CASE = tomllib.loads(CONTRACT_CASE_TOML)


def _case(**changes) -> dict:
    """The contract case with ``{"table.key": value}`` changes (species by name)."""
    d = json.loads(json.dumps(CASE))
    for dotted, value in changes.items():
        *path, key = dotted.split(".")
        node = d
        for part in path:
            if isinstance(node, list):
                node = next(s for s in node if s["name"] == part)
            else:
                node = node.setdefault(part, {})
        node[key] = value
    return d


# ----------------------------------------------------------------------------- mesh size
@pytest.mark.parametrize("thickness, mesh", [
    (1e-3, cf.MeshSettings()),
    (1e-6, SLAB_MESH),
    (50e-6, cf.MeshSettings(front_spacing_m=1e-9, surface_spacing_m=0.05e-9, fine_depth_m=40e-9,
                            growth_ratio=1.3, bulk_spacing_m=5e-6)),
    (100e-9, cf.MeshSettings()),  # the fine region reaches the back
    (1e-6, cf.MeshSettings(fine_depth_m=0.0)),
    (2e-3, cf.MeshSettings(growth_ratio=1.01, bulk_spacing_m=1e-6)),
])
def test_depth_estimate_counts_the_graded_mesh(thickness, mesh):
    built = len(graded_nodes_m(thickness, mesh)) - 1
    assert abs(estimates.depth_cells(thickness, mesh)["total"] - built) <= 2


@pytest.mark.parametrize("changes", [{}, {"rim_spacing_m": 1e-11}, {"rim_spacing_m": 1e-7},
                                     {"electrode_radius_m": 1.2e-6}, {"lateral_growth_ratio": 1.0},
                                     {"spot_radius_m": None}])
def test_lateral_estimate_counts_the_lateral_grading(changes):
    g = dataclasses.replace(SECTION_SPOT, **changes)
    built = len(lateral_nodes_m(g.radius_m, [g.spot_radius_m, g.electrode_radius_m], g.rim_spacing_m,
                                g.lateral_growth_ratio, g.lateral_max_spacing_m)) - 1
    assert abs(estimates.lateral_cells(g) - built) <= 0.1 * built + 2


def test_front_face_estimate_grows_as_the_rim_spacing_shrinks():
    """Near a rim the triangles of size h0 + (g - 1) d fill a band: about
    2 pi r_rim / ((g - 1) h0) triangles, inversely proportional to h0."""
    area = 0.8 * math.sqrt(3) / 4  # mean triangle area in units of h^2
    fine = estimates.front_triangles(dataclasses.replace(DISC_SPOT, rim_spacing_m=1e-11))
    # both sides of the rim at 0.3 um, g = 1.5: int_0^inf 2 pi r dd / (area (h0 + 0.5 d)^2) each
    band = 2 * 2 * math.pi * 0.3e-6 / (0.5 * 1e-11 * area)
    assert fine == approx(band, rel=0.01)
    # a uniform mesh without rims: area / (mean triangle area of h^2), h = min(h_max, R / 2)
    whole = dataclasses.replace(DISC_SPOT, spot_radius_m=None, rim_spacing_m=0.05e-6, lateral_max_spacing_m=0.05e-6)
    area_per_triangle = area * 0.05e-6**2
    assert estimates.front_triangles(whole) == approx(math.pi * 1e-6**2 / area_per_triangle, rel=1e-12)


def test_tiny_front_spacing_is_refused_at_once():
    start = time.perf_counter()
    with pytest.raises(ConfigError) as err:
        experiment_from_dict(_case(**{"mesh.front_spacing_m": 1e-15}), source="case.toml")
    assert time.perf_counter() - start < 1.0
    message = str(err.value)
    assert message.startswith("case.toml: mesh.max_cells = 5000000 is exceeded")
    assert "mesh.front_spacing_m = 1e-15" in message and "3e+08" in message
    # the mesh itself refuses, too (a caller of the mesh API without an Experiment)
    start = time.perf_counter()
    with pytest.raises(ConfigError, match="mesh.max_cells"):
        graded_nodes_m(1e-3, cf.MeshSettings(front_spacing_m=1e-15))
    assert time.perf_counter() - start < 1.0


def test_the_limit_is_a_key():
    # 300 nm / 1.5e-14 m = 2e7 cells in the fine region
    d = _case(**{"mesh.front_spacing_m": 1.5e-14, "mesh.max_cells": 40_000_000})
    assert experiment_from_dict(d).mesh.max_cells == 40_000_000
    with pytest.raises(ConfigError, match="mesh.max_cells = 10000000"):
        experiment_from_dict(_case(**{"mesh.front_spacing_m": 1.5e-14, "mesh.max_cells": 10_000_000}))
    for bad in (0, 2.5, True, "many"):
        with pytest.raises(ConfigError, match=f"mesh.max_cells = {bad!r} is not allowed"):
            experiment_from_dict(_case(**{"mesh.max_cells": bad}))


def test_small_rim_spacing_of_a_3d_sample_is_refused_before_gmsh():
    geometry = {"kind": "disc", "radius_m": 1e-3, "spot_radius_m": 2.5e-4, "rim_spacing_m": 1e-11,
                "lateral_growth_ratio": 1.2, "lateral_max_spacing_m": 1e-4}
    with pytest.raises(ConfigError, match=r"geometry.rim_spacing_m = 1e-11 .*front-face triangles"):
        experiment_from_dict(_case(geometry=geometry))
    from cait_fem.mesh.gmsh_sample import write_msh
    with pytest.raises(ConfigError, match="mesh.max_cells"):
        write_msh(Geometry(**geometry), 1e-3, cf.MeshSettings(), "never.msh")


def test_small_rim_spacing_in_2d_is_refused_when_the_lateral_grading_is_uniform():
    """In 2D the lateral spacing grows geometrically away from the rim, so 1e-11 m there
    adds only ~100 columns and is accepted; with lateral_growth_ratio = 1 it is uniform."""
    geometry = {"kind": "axisymmetric", "radius_m": 1e-3, "spot_radius_m": 2.5e-4, "rim_spacing_m": 1e-11,
                "lateral_growth_ratio": 1.2, "lateral_max_spacing_m": 1e-4}
    exp = experiment_from_dict(_case(geometry=geometry))
    assert estimates.mesh_estimate(exp)["lateral"] < 300
    geometry["lateral_growth_ratio"] = 1.0
    with pytest.raises(ConfigError, match=r"geometry.rim_spacing_m = 1e-11 .* lateral cells"):
        experiment_from_dict(_case(geometry=geometry))


def test_benchmark_meshes_pass_the_default_limit():
    """bench/scale3d.py's largest mesh (2.1e6 tets, measured) is estimated within 15 %."""
    geometry = Geometry(kind="disc", radius_m=20e-6, spot_radius_m=10e-6, lateral_growth_ratio=1.3,
                        rim_spacing_m=0.2e-6, lateral_max_spacing_m=0.8e-6)
    mesh = cf.MeshSettings(front_spacing_m=1e-9, surface_spacing_m=0.05e-9, fine_depth_m=40e-9,
                           growth_ratio=1.3, bulk_spacing_m=5e-6)
    cells = estimates.check_mesh_size(geometry, 50e-6, mesh)["cells"]
    assert cells == approx(2.1e6, rel=0.15) and cells < mesh.max_cells


# ----------------------------------------------------------------------------- steps
def _controller_steps(run) -> int:
    """Steps of the real controller when every step is accepted and grows the most."""
    control = Stepsize([run.t_end_s], dt_initial=run.dt_initial_s, dt_max=run.dt_max_s or np.inf,
                       max_order=2, tolerance=1.0, max_retries=0)
    n = 0
    while not control.done:
        control.accepted(control.propose(), None, 1)
        n += 1
    return n


@pytest.mark.parametrize("t_end, dt0, dt_max", [(3600.0, 1e-9, None), (3600.0, 1e-9, 10.0), (1.0, 1e-3, 1e-3),
                                                (1e30, 1e-9, None), (100.0, 5.0, 1.0), (3600.0, 1e-9, 1e-3)])
def test_minimum_steps_is_a_lower_bound_of_the_controller(t_end, dt0, dt_max):
    run = cf.RunSettings(t_end_s=t_end, dt_initial_s=dt0, dt_max_s=dt_max, max_steps=10_000_000)
    fewest = _controller_steps(run)
    assert estimates.minimum_steps(run) <= fewest <= estimates.minimum_steps(run) + 2


def test_dt_max_that_needs_more_than_max_steps_is_refused():
    with pytest.raises(ConfigError) as err:
        experiment_from_dict(_case(**{"run.dt_max_s": 0.01, "run.max_steps": 1000}), source="case.toml")
    message = str(err.value)
    assert message.startswith("case.toml: run.max_steps = 1000 is too small")
    assert "run.dt_max_s = 0.01" in message and "at least 3.6" in message
    # 3600 s / 3.7 s = 973 steps, and 31 while the steps double from 1e-9 s to 3.7 s
    assert estimates.minimum_steps(experiment_from_dict(_case(**{"run.dt_max_s": 3.7})).run) == 973 + 31
    # without dt_max, the steps may double: t_end = 1e30 s is reachable in 130 steps
    exp = experiment_from_dict(_case(**{"run.t_end_s": 1e30, "run.output_times_s": []}))
    assert estimates.minimum_steps(exp.run) == 130
    with pytest.raises(ConfigError, match="run.max_steps = 100 is too small"):
        experiment_from_dict(_case(**{"run.t_end_s": 1e30, "run.output_times_s": [], "run.max_steps": 100}))


def test_check_prints_the_estimates(tmp_path, capsys):
    case = tmp_path / "case.toml"
    case.write_text(CONTRACT_CASE_TOML)
    assert cli.main(["check", str(case)]) == 0
    out = capsys.readouterr().out.splitlines()
    line = out[1]
    exp = load_case(case)
    cells = estimates.depth_cells(exp.glass.thickness_m, exp.mesh, exp.depth_resolution)["total"]
    assert f"~{cells:.3g} cells" in line and "mesh.max_cells = 5000000" in line and "run.max_steps = 200000" in line
    # and the depth rule the mesh follows, in nm
    res = exp.depth_resolution
    assert out[2].startswith("# depth mesh: ") and f"fine to {res.fine_depth_m * 1e9:.3g} nm" in out[2]


def test_cli_refuses_a_huge_mesh_with_exit_2(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_simulate_function", lambda: pytest.fail("the solver must not be reached"))
    case = tmp_path / "case.toml"
    case.write_text(CONTRACT_CASE_TOML + "\n[mesh]\nfront_spacing_m = 1e-15\n")
    assert cli.main(["run", str(case), "-o", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert err.count("cait-fem: error:") == 1 and "mesh.front_spacing_m = 1e-15" in err


# ----------------------------------------------------------------------------- diffusion range
def test_arrhenius_law_that_underflows_is_refused():
    law = {"model": "arrhenius", "D0_m2_s": 1e-5, "E_a_eV": 100}
    with pytest.raises(ConfigError) as err:
        experiment_from_dict(_case(**{"species.K.diffusion": law}), source="case.toml")
    message = str(err.value)
    assert "species.K.diffusion.E_a_eV = 100" in message and "D = 0 m^2/s" in message
    assert "smallest representable D, 2.23e-296 m^2/s" in message
    # one that does not underflow: D0 exp(-0.6 eV / kT) = 8.3e-16 m^2/s at 300 K
    law["E_a_eV"] = 0.6
    exp = experiment_from_dict(_case(**{"species.K.diffusion": law}))
    assert exp.species[1].diffusion.reference_m2_s(300.0) == approx(1e-5 * math.exp(-0.6 / (8.617333e-5 * 300)),
                                                                    rel=1e-5)


@pytest.mark.parametrize("D, ok", [(1e10, False), (1e-17 * 1.01e12, False), (1e-17 * 0.99e12, True),
                                   (1e-17 * 1.01e-12, True), (1e-17 * 0.99e-12, False)])
def test_diffusion_coefficients_within_twelve_decades_of_the_native_one(D, ok):
    d = _case(**{"species.K.diffusion.D_m2_s": D})
    if ok:
        experiment_from_dict(d)
        return
    with pytest.raises(ConfigError, match=r"species.K.diffusion.D_m2_s = .*native species' D_ref = 1e-17"):
        experiment_from_dict(d)


def test_native_arrhenius_sed_names_its_activation_energy():
    sed = {"model": "sed", "fwhm_eV": 0.25, "D0_m2_s": 1e-3, "E_DC_eV": 50.0}
    with pytest.raises(ConfigError, match=r"species.Li.diffusion.E_DC_eV = 50.0 \(with D0_m2_s = 0.001\) gives D = 0"):
        experiment_from_dict(_case(**{"species.Li.diffusion": sed}))


# ----------------------------------------------------------------------------- stepper guards
def test_bdf_refuses_collapsed_steps_with_a_solver_error():
    u = np.zeros(3)
    with pytest.raises(SolverError, match="not distinct"):
        bdf.predict(1, 1e-20, [(1.0, u), (1.0, u)])
    for h, h1 in ((0.0, 1.0), (1.0, 0.0), (math.nan, 1.0), (math.inf, 1.0)):
        with pytest.raises(SolverError, match="not a finite number > 0"):
            bdf.coefficients(2, h, [h1])
    with pytest.raises(SolverError, match="NaN"):
        bdf.step_factor(math.nan, 1e-3, 2)
    assert bdf.step_factor(math.inf, 1e-3, 2) == 0.2
    assert bdf.coefficients(2, 1.0, [1.0]) == approx((1.5, -2.0, 0.5), rel=1e-15)


# ----------------------------------------------------------------------------- checkpoints
class _OneProcess:
    """The part of an MPI communicator write_checkpoint uses, for one process."""

    rank, size = 0, 1

    def gather(self, value, root=0):
        return [value]

    def barrier(self):
        pass


def _exp(**changes):
    return experiment_from_dict(_case(**changes))


def _write(directory, exp, n=6):
    keys = np.arange(n, dtype=np.int64)
    coords = np.linspace(0.0, 1e6, n).reshape(-1, 1)
    rows = [np.full((n, 3), float(i)) for i in range(3)]
    series = {k: [0.0, 1.0, 2.0] for k in ("t", "current", "psi_s", "charge", "foreign", "influx", "dt", "its")}
    stats = {"steps": 2, "rejected_steps": 0, "newton_failures": 0, "newton_iterations": 6,
             "krylov_iterations": 6, "replay_abandoned": False}
    write_checkpoint(directory, _OneProcess(), experiment=exp, t_s=600.0, step=2, keys=keys, n_owned=n,
                     coordinates=coords, history_t_s=[0.0, 300.0, 600.0], history_rows=rows,
                     stepper={"h_next_s": 600.0, "steps_s": [300.0, 300.0], "stats": stats},
                     run_state={"series": series, "scalars": {"influx": [1.0, 0.5], "content0": 0.0},
                                "arrays": {"theta": np.zeros((1, 2, 4)), "potential_V": np.zeros((1, 4)),
                                           "depth_m": np.linspace(0, 1e-3, 4)}})
    return directory


@pytest.fixture
def good_checkpoint(tmp_path):
    return _write(tmp_path / "checkpoint", _exp(**{"run.t_end_s": 600.0, "run.output_times_s": [600.0]}))


def test_stand_in_checkpoint_reads(good_checkpoint):
    ckpt = read_checkpoint(good_checkpoint)
    assert ckpt.step == 2 and len(ckpt.history) == 3 and ckpt.history[2][0, 0] == 2.0


def _damage_json(directory, change):
    meta = json.loads((directory / META_FILE).read_text())
    meta = change(meta)
    (directory / META_FILE).write_text(json.dumps(meta))


def _npz_without(directory, name):
    with np.load(directory / STATE_FILE) as npz:
        data = {k: npz[k] for k in npz.files if k != name}
    return data


@pytest.mark.parametrize("damage, expected", [
    (lambda d: (d / STATE_FILE).write_bytes((d / STATE_FILE).read_bytes()[:200]), "state.npz: not a readable"),
    (lambda d: (d / STATE_FILE).write_bytes(b"garbage" * 100), "state.npz: not a readable"),
    (lambda d: (d / META_FILE).write_text("[1, 2, 3]"), "holds a list, not an object"),
    (lambda d: (d / META_FILE).write_bytes(b"\xff\xfe{"), "not readable JSON"),
    (lambda d: _damage_json(d, lambda m: {k: v for k, v in m.items() if k != "stepper"}), "stepper is missing"),
    (lambda d: _damage_json(d, lambda m: {**m, "t_s": "600"}), "t_s = '600' is not a finite number"),
    (lambda d: _damage_json(d, lambda m: {**m, "history_t_s": [0.0, 1.0, 2.0, 3.0, 4.0]}), "not a list of 1 to 4"),
    (lambda d: np.savez(d / STATE_FILE, **_npz_without(d, "history_2")), r"arrays \['history_2'\] are missing"),
    (lambda d: _damage_json(d, lambda m: {**m, "stepper": {**m["stepper"], "stats": {"steps": "2"}}}),
     "stepper.stats"),
    (lambda d: _damage_json(d, lambda m: {**m, "series": {**m["series"], "t": [0.0]}}), "different lengths"),
    (lambda d: _damage_json(d, lambda m: {**m, "scalars": {}}), "scalars = {}"),
    (lambda d: np.savez(d / STATE_FILE, **{**_npz_without(d, "history_1"), "history_1": np.zeros((5, 3))}),
     r"history_1 has shape \(5, 3\), expected \(6, components\)"),
    (lambda d: np.savez(d / STATE_FILE, **{**_npz_without(d, "history_1"), "history_1": np.zeros((6, 4))}),
     r"states have \[3, 4\] components"),
    (lambda d: np.savez(d / STATE_FILE, **_npz_without(d, "keys")), r"arrays \['keys'\] are missing"),
])
def test_damaged_checkpoint_is_refused_naming_file_and_fault(good_checkpoint, damage, expected):
    damage(good_checkpoint)
    with pytest.raises(ConfigError, match=expected):
        read_checkpoint(good_checkpoint)


def test_damaged_checkpoint_gives_exit_2_through_the_cli(good_checkpoint, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "_simulate_function", lambda: pytest.fail("the solver must not be reached"))
    case = tmp_path / "case.toml"
    case.write_text(CONTRACT_CASE_TOML)
    (good_checkpoint / STATE_FILE).write_bytes((good_checkpoint / STATE_FILE).read_bytes()[:300])
    code = cli.main(["run", str(case), "-o", str(tmp_path / "out"), "--quiet", "--resume", str(good_checkpoint)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("cait-fem: error:") == 1 and f"{good_checkpoint / STATE_FILE}" in err
    assert "Traceback" not in err


@pytest.mark.mpi
def test_damaged_checkpoint_is_reported_once_under_mpirun(good_checkpoint, tmp_path):
    from support.paths import run_cli
    case = tmp_path / "case.toml"
    case.write_text(CONTRACT_CASE_TOML)
    (good_checkpoint / META_FILE).write_text('{"format_version": 1, "step": 2}')
    done = run_cli(["run", str(case), "-o", str(tmp_path / "out"), "--quiet", "--resume", str(good_checkpoint)],
                   mpi=2, timeout=120)
    assert done.returncode == 2
    assert done.stderr.count("cait-fem: error:") == 1 and "t_s is missing" in done.stderr
    assert "Traceback" not in done.stderr


def test_resume_records_changed_parameters(good_checkpoint):
    ckpt = read_checkpoint(good_checkpoint)
    later = _exp(**{"run.t_end_s": 3600.0, "run.output_times_s": [600.0, 3600.0],
                    "species.K.diffusion.D_m2_s": 6e-21})
    changed = resume_changes(ckpt, later)
    assert changed == {"run.t_end_s": [600.0, 3600.0], "run.output_times_s": [[600.0], [600.0, 3600.0]],
                       "species.K.diffusion.D_m2_s": [5.6e-21, 6e-21]}
    assert resume_changes(ckpt, ckpt.experiment) == {}


def test_resume_with_another_structure_is_refused_in_case_file_keys(good_checkpoint):
    ckpt = read_checkpoint(good_checkpoint)
    sed = {"model": "sed", "fwhm_eV": 0.25, "D_bulk_m2_s": 1e-20}
    with pytest.raises(ConfigError, match=f"checkpoint {good_checkpoint}: cannot resume this run from it: "
                                          "species.K.diffusion.model changed from 'constant' to 'sed'"):
        resume_changes(ckpt, _exp(**{"species.K.diffusion": sed}))
    with pytest.raises(ConfigError, match="mesh.front_spacing_m changed from None to 3e-10"):
        resume_changes(ckpt, _exp(**{"mesh.front_spacing_m": 3e-10}))
    # the size limit is not structure
    resume_changes(ckpt, _exp(**{"mesh.max_cells": 10_000_000}))


def test_structure_messages_name_dotted_keys():
    exp = cf.Experiment(glass=cf.Glass(1.41e28, 8.0, 300.0, 1e-6), species=(LI, K), front=cf.Beam(1e-2, 10.0, 0.5),
                        run=cf.RunSettings(t_end_s=10.0), mesh=SLAB_MESH)
    other = dataclasses.replace(exp, back=cf.BackElectrode("discharge", 1e-9))
    with pytest.raises(ConfigError, match="back.native changed from 'reversible' to 'discharge'"):
        check_same_structure(exp, other)
    hotter = dataclasses.replace(exp, glass=dataclasses.replace(exp.glass, temperature_K=310.0))
    with pytest.raises(ConfigError, match="glass.temperature_K changed from 300.0 to 310.0"):
        check_same_structure(exp, hotter)


@pytest.mark.dolfinx  # cmd_run loads mpi4py before the (stand-in) solver
def test_cli_resume_prints_what_changed(good_checkpoint, tmp_path, capsys, monkeypatch):
    def stand_in(*args, **kwargs):
        raise SolverError("stand-in: stop here")
    monkeypatch.setattr(cli, "_simulate_function", lambda: stand_in)
    case = tmp_path / "case.toml"
    case.write_text(CONTRACT_CASE_TOML)  # t_end 3600 s: the checkpoint's run ended at 600 s
    code = cli.main(["run", str(case), "-o", str(tmp_path / "out"), "--quiet", "--resume", str(good_checkpoint)])
    out = capsys.readouterr().out
    assert code == 1
    assert f"resuming from {good_checkpoint} at t = 600 s" in out and "run.t_end_s: 600.0 -> 3600" in out
    changed = CONTRACT_CASE_TOML.replace('diffusion = { model = "constant", D_m2_s = 5.6e-21 }',
                                         'diffusion = { model = "sed", fwhm_eV = 0.25, D_bulk_m2_s = 1e-20 }')
    case.write_text(changed)
    code = cli.main(["run", str(case), "-o", str(tmp_path / "out"), "--quiet", "--resume", str(good_checkpoint)])
    err = capsys.readouterr().err
    assert code == 2 and "species.K.diffusion.model changed from 'constant' to 'sed'" in err
