"""End to end: the CLI on a case file (serial and under `mpirun -n 2`) against the Python
API, and the demo case files."""

import csv
import json

import numpy as np
import pytest
from support.compare import approx
from support.experiments import k_demo_1mm
from support.paths import ROOT, run_cli

import cait_fem as cf
from cait_fem.case.case_file import load_case

# The K+ demo case, shortened to 3000 s.
CASE = (ROOT / "demos" / "k_cait.toml").read_text() \
    .replace("t_end_s = 30000", "t_end_s = 3000") \
    .replace("output_times_s = [1000, 3000, 10000, 30000]", "output_times_s = [300, 3000]")


def _read_csv(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], np.array(rows[1:], dtype=float)


@pytest.fixture(scope="module")
def case_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("case") / "k_short.toml"
    assert "t_end_s = 3000\n" in CASE and "[300, 3000]" in CASE
    path.write_text(CASE)
    return path


@pytest.fixture(scope="module")
def serial_dir(case_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("serial") / "out"
    proc = run_cli(["run", str(case_file), "-o", str(out), "--quiet"])
    assert proc.returncode == 0, proc.stderr
    return out


@pytest.mark.dolfinx
def test_cli_writes_the_file_contract(serial_dir):
    names = {p.name for p in serial_dir.iterdir()}
    assert {"profiles.csv", "timeseries.csv", "summary.json", "metadata.json", "profiles.png",
            "profiles_log.png", "diffusion.png", "timeseries.png"} <= names
    header, _ = _read_csv(serial_dir / "profiles.csv")
    assert header[:4] == ["time_s", "depth_nm", "theta_Li", "theta_K"] and "excess_charge" in header
    header, _ = _read_csv(serial_dir / "timeseries.csv")
    assert header[:5] == ["time_s", "current_density_A_m2", "surface_potential_V", "charge_C_m2",
                          "foreign_inside_m2"]
    summary = json.loads((serial_dir / "summary.json").read_text())
    for key in ("plateau_native", "front_position_nm", "front_width_nm", "conservation_error",
                "max_excess_charge", "wall_time_s", "steps", "newton_iterations", "cells"):
        assert key in summary
    meta = json.loads((serial_dir / "metadata.json").read_text())
    assert "versions" in meta and "dolfinx" in json.dumps(meta["versions"]).lower()


@pytest.mark.dolfinx
def test_cli_equals_api(case_file, serial_dir):
    result = cf.simulate(load_case(case_file))
    header, rows = _read_csv(serial_dir / "profiles.csv")
    last = rows[rows[:, 0] == 3000.0]
    col = header.index("theta_K")
    assert np.allclose(last[:, 1] * 1e-9, result.depth_m, rtol=1e-12, atol=1e-21)
    assert np.max(np.abs(last[:, col] - result.profile(3000.0)["K"])) < 1e-12


@pytest.mark.dolfinx
@pytest.mark.mpi
def test_mpirun_two_ranks_equals_serial(case_file, serial_dir, tmp_path):
    out = tmp_path / "mpi"
    proc = run_cli(["run", str(case_file), "-o", str(out), "--quiet"], mpi=2)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("wrote") == 1  # one report, files written once
    assert sorted(p.name for p in out.iterdir()) == sorted(p.name for p in serial_dir.iterdir())
    h_s, serial = _read_csv(serial_dir / "profiles.csv")
    h_p, parallel = _read_csv(out / "profiles.csv")
    assert h_s == h_p and serial.shape == parallel.shape
    theta_cols = [i for i, h in enumerate(h_s) if h.startswith("theta_")]
    assert np.max(np.abs(serial[:, theta_cols] - parallel[:, theta_cols])) < 1e-6
    _, ts_s = _read_csv(serial_dir / "timeseries.csv")
    _, ts_p = _read_csv(out / "timeseries.csv")
    assert ts_s[-1, 2] == approx(ts_p[-1, 2], rel=1e-6)  # surface potential


@pytest.mark.dolfinx
def test_cli_refuses_to_overwrite_real_results(case_file, serial_dir):
    before = (serial_dir / "summary.json").read_bytes()
    proc = run_cli(["run", str(case_file), "-o", str(serial_dir), "--quiet"])
    assert proc.returncode == 2 and "--overwrite" in proc.stderr
    assert (serial_dir / "summary.json").read_bytes() == before


@pytest.mark.parametrize("name", ["k_cait", "rb_cait", "cs_cait"])
def test_demo_cases_are_valid(name):
    exp = load_case(ROOT / "demos" / f"{name}.toml")
    assert exp.native.name == "Li" and exp.foreign[0].name == name.split("_")[0].capitalize()
    assert exp.run.t_end_s == 30000


@pytest.mark.dolfinx
def test_a_simulation_is_freed_by_reference_counting():
    """No reference cycle keeps a Simulation (with its spatial check and companion) for the
    cyclic garbage collector: that collector runs at different moments on different MPI
    ranks, and the collective destruction of PETSc objects (MUMPS) then deadlocks."""
    import gc
    import weakref

    sim = cf.Simulation(k_demo_1mm(t_end_s=100.0))
    sim.run()
    companion = sim.spatial_check.companion()
    alive = [weakref.ref(obj) for obj in (sim, sim.newton, sim.newton.problem, companion, companion.newton)]
    gc.disable()
    try:
        del sim, companion
        assert [ref() is None for ref in alive] == [True] * len(alive)
    finally:
        gc.enable()


@pytest.mark.dolfinx
def test_a_nan_state_fails_the_newton_solve_cleanly():
    """A NaN in the iterate (a step far too long can produce one) ends the solve with
    PETSc's NaN reason, not an exception, so that the stepper can shrink the step."""
    from petsc4py import PETSc

    sim = cf.Simulation(k_demo_1mm(t_end_s=100.0))
    sim.forms.set_bdf(1e-3, (1.0, -1.0))
    sim.forms.u.x.array[5] = np.nan
    converged, iterations, reason = sim.newton.solve()
    assert not converged and iterations == 0
    assert reason == PETSc.SNES.ConvergedReason.DIVERGED_FUNCTION_NANORINF
