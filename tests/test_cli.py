"""cait-fem command line: check, version, and the paths of `run` that stop before any solve.
(A real solve through the CLI is tested with the solver.)"""

import subprocess
import sys

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import numpy as np
import pytest
from support.cases import CONTRACT_CASE_TOML

from cait_fem import cli
from cait_fem.case.case_file import experiment_from_dict, load_case
from cait_fem.output.result import Result

CASE = CONTRACT_CASE_TOML.replace("thickness_m = 1e-3", "thickness_m = 5e-4")  # overrides the preset


@pytest.fixture
def case_file(tmp_path):
    p = tmp_path / "k_cait.toml"
    p.write_text(CASE)
    return p


@pytest.fixture
def no_solve(monkeypatch):
    def forbidden():
        raise AssertionError("the solver must not be reached")
    monkeypatch.setattr(cli, "_simulate_function", forbidden)


def fake_result(exp) -> Result:
    depth = np.concatenate([np.linspace(0, 300e-9, 601), np.geomspace(301e-9, exp.glass.thickness_m, 100)])
    times = np.array(exp.run.all_output_times_s)
    foreign = np.array([0.85 * 0.5 * (1 - np.tanh((depth - 50e-9 * np.sqrt(t / 3600)) / 2e-9)) for t in times])
    t = np.concatenate([[0.0], np.geomspace(1e-9, 3600.0, 20)])
    ones = np.ones_like(t)
    return Result(experiment=exp, depth_m=depth, species_names=("Li", "K"), output_times_s=times,
                  theta=np.stack([1 - foreign, foreign], axis=1), potential_V=np.zeros((times.size, depth.size)),
                  time_s=t, current_density_A_m2=1e-2 * ones, surface_potential_V=ones, charge_C_m2=1e-2 * t,
                  foreign_inside_m2=6e16 * t, influx_integral_m2=6e16 * t, dt_s=np.r_[0.0, np.diff(t)],
                  newton_iterations=np.r_[0, 3 * ones[1:]].astype(int),
                  stats={"steps": 20, "newton_iterations": 60, "wall_time_s": 0.1, "cells": 700}, metadata={})


def test_check_prints_a_valid_complete_case(case_file, capsys, no_solve):
    assert cli.main(["check", str(case_file)]) == 0
    out = capsys.readouterr().out
    assert "OK" in out and "Li3B7O12" in out and "beam" in out
    parsed = tomllib.loads(out)  # the printout is itself a case file with every default filled in
    assert experiment_from_dict(parsed) == load_case(case_file)
    assert parsed["glass"]["thickness_m"] == 5e-4 and parsed["mesh"]["growth_ratio"] > 1


def test_check_reports_bad_input_with_exit_2(case_file, capsys):
    case_file.write_text(CASE.replace("E_kin_eV = 10.0", "E_kin_eV = -10.0"))
    assert cli.main(["check", str(case_file)]) == 2
    err = capsys.readouterr().err
    assert "k_cait.toml: front.E_kin_eV = -10.0 is not allowed" in err


def test_version(capsys):
    with pytest.raises(SystemExit) as info:
        cli.main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.startswith("cait-fem 0.")


def test_no_command_and_missing_output_are_usage_errors(case_file, capsys):
    assert cli.main([]) == 2
    with pytest.raises(SystemExit) as info:
        cli.main(["run", str(case_file)])
    assert info.value.code == 2
    assert "--output" in capsys.readouterr().err


@pytest.mark.parametrize("change, expected", [
    (("[run]", "[run]\nsteps = 3"), "run.steps is not a known key"),
    (('name = "K"', 'name = "Xq"'), "species.Xq.name = 'Xq' is not a known ion"),
    (("output_times_s = [600, 3600]", "output_times_s = [600, 7200]"), "run.output_times_s[1] = 7200.0"),
    (('type = "beam"', 'type = "laser"'), "front.type = 'laser'"),
])
def test_run_rejects_bad_case_before_solving(case_file, tmp_path, capsys, no_solve, change, expected):
    case_file.write_text(CASE.replace(*change))
    assert cli.main(["run", str(case_file), "-o", str(tmp_path / "out"), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "k_cait.toml: " in err and expected in err
    assert not (tmp_path / "out").exists()


def test_run_missing_case_file(tmp_path, capsys, no_solve):
    assert cli.main(["run", str(tmp_path / "nope.toml"), "-o", str(tmp_path / "out")]) == 2
    assert "nope.toml" in capsys.readouterr().err


def test_run_refuses_existing_results_before_solving(case_file, tmp_path, capsys, no_solve):
    out = tmp_path / "out"
    out.mkdir()
    (out / "summary.json").write_text("{}")
    assert cli.main(["run", str(case_file), "-o", str(out), "--quiet"]) == 2
    err = capsys.readouterr().err
    assert "--overwrite" in err and "summary.json" in err
    assert (out / "summary.json").read_text() == "{}"


@pytest.mark.dolfinx
def test_run_writes_results_with_a_stand_in_solver(case_file, tmp_path, capsys, monkeypatch):
    calls = []

    def simulate(exp, *, progress=None, comm=None):
        calls.append(comm)
        for t in (1e-9, 1.0, 3600.0):
            progress.update(t, t / 2, 3)
        progress.close()
        return fake_result(exp)

    monkeypatch.setattr(cli, "_simulate_function", lambda: simulate)
    out = tmp_path / "out"
    assert cli.main(["run", str(case_file), "-o", str(out), "--quiet", "--no-plots"]) == 0
    assert len(calls) == 1 and calls[0] is not None  # MPI.COMM_WORLD
    assert sorted(p.name for p in out.iterdir()) == ["metadata.json", "profiles.csv", "summary.json",
                                                     "timeseries.csv"]
    assert "wrote 4 files" in capsys.readouterr().out
    assert cli.main(["run", str(case_file), "-o", str(out), "--quiet"]) == 2  # refuses the second time
    assert cli.main(["run", str(case_file), "-o", str(out), "--quiet", "--overwrite"]) == 0
    assert len([p for p in out.iterdir() if p.suffix == ".png"]) == 4


def test_check_as_a_subprocess(case_file):
    proc = subprocess.run([sys.executable, "-m", "cait_fem.cli", "check", str(case_file)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert "OK" in proc.stdout
    case_file.write_text(CASE.replace("[glass]", "[glass]\ncolour = 1"))
    proc = subprocess.run([sys.executable, "-m", "cait_fem.cli", "check", str(case_file)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "glass.colour is not a known key" in proc.stderr


def test_progress_reporter_log_scale_rank_and_quiet():
    import io

    from cait_fem.run.progress import ProgressReporter, QuietReporter, make_reporter

    class Rank1:
        rank = 1

    stream = io.StringIO()
    rep = ProgressReporter(3600.0, file=stream, mininterval=0.0, desc="k")
    assert rep.fraction(0.0) == 0.0 and rep.fraction(3600.0) == 1.0
    assert 0.3 < rep.fraction(1.0) < 0.6  # log-ish: 1 s of 3600 s is well under way
    for t in (1e-9, 1.0, 3600.0):
        rep.update(t, t / 10, 2)
    rep.close()
    rep.close()  # idempotent: the solver and the CLI may both close it
    text = stream.getvalue()
    assert "100%" in text and "t=3.6e+03 s" in text and "newton=2" in text
    assert rep.steps == 3 and rep.total_newton_iterations == 6
    assert isinstance(make_reporter(10.0, quiet=True), QuietReporter)
    assert isinstance(make_reporter(10.0, comm=Rank1()), QuietReporter)
    silent = ProgressReporter(10.0, comm=Rank1())
    silent.update(1.0, 0.1, 3)
    assert not silent.active


# ------------------------------------------------------------------ output places, before any work
def _one_error_line(err: str) -> str:
    lines = [ln for ln in err.splitlines() if ln.strip()]
    assert len(lines) == 1, err
    assert "Traceback" not in err
    return lines[0]


def test_run_below_a_regular_file_is_refused_before_solving(case_file, tmp_path, capsys, no_solve):
    (tmp_path / "file").write_text("x")
    assert cli.main(["run", str(case_file), "-o", str(tmp_path / "file" / "out"), "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert "is a file, not a directory" in line and str(tmp_path / "file") in line
    assert cli.main(["run", str(case_file), "-o", str(tmp_path / "file"), "--quiet"]) == 2
    assert "exists and is not a directory" in _one_error_line(capsys.readouterr().err)


def test_run_into_an_unwritable_directory_is_refused_before_solving(case_file, tmp_path, capsys, no_solve,
                                                                     monkeypatch):
    import os

    from cait_fem.output import result_set
    real = os.access  # tests run as root, for whom every directory is writable
    monkeypatch.setattr(result_set.os, "access", lambda p, mode: False if str(p) == str(tmp_path) else real(p, mode))
    assert cli.main(["run", str(case_file), "-o", str(tmp_path / "out"), "--quiet"]) == 2
    assert "is not writable" in _one_error_line(capsys.readouterr().err)
    assert not (tmp_path / "out").exists()


def test_mesh_output_below_a_regular_file_is_refused_before_meshing(tmp_path, capsys, monkeypatch):
    from support.cases import CONTRACT_CASE_TOML as case
    p = tmp_path / "spot.toml"
    p.write_text(case + '\n[geometry]\nkind = "section"\nradius_m = 1e-6\nspot_radius_m = 0.3e-6\n')
    (tmp_path / "file").write_text("x")
    import cait_fem.mesh.gmsh_sample as gs
    monkeypatch.setattr(gs, "write_msh", lambda *a, **k: pytest.fail("meshed before checking the output"))
    assert cli.main(["mesh", str(p), "-o", str(tmp_path / "file" / "spot.msh")]) == 2
    assert "is a file, not a directory" in _one_error_line(capsys.readouterr().err)
    (tmp_path / "old.msh").write_text("earlier")
    assert cli.main(["mesh", str(p), "-o", str(tmp_path / "old.msh")]) == 2
    assert "already exists" in _one_error_line(capsys.readouterr().err)


FIT_CASE = """name = "two"
[[experiment]]
name = "K"
case = "k_cait.toml"
data = "k.csv"
[[experiment]]
name = "Kb"
case = "k_cait.toml"
data = "k.csv"
[fit.parameters]
"species.K.diffusion.D_m2_s" = { min = 1e-23, max = 1e-18, log = true }
"""


@pytest.fixture
def fit_file(tmp_path, case_file):
    from cait_fem.analysis.measured import write_profile_csv
    depth_nm = np.arange(1.0, 61.0)
    li = 0.15 + 0.85 * 0.5 * (1.0 + np.tanh((depth_nm - 40.0) / 3.0))
    write_profile_csv(tmp_path / "k.csv", depth_nm * 1e-9, {"Li": li, "K": 1.0 - li})
    p = tmp_path / "fit.toml"
    p.write_text(FIT_CASE)
    return p


@pytest.fixture
def no_fit(monkeypatch):
    import cait_fem.fit as fit
    monkeypatch.setattr(fit, "run_fit", lambda *a, **k: pytest.fail("fitted before checking the output"))


@pytest.mark.parametrize("existing", ["fit.json", "fit_profiles.png", "fit_sed.png", "K_model.csv",
                                      "Kb_profile.csv"])
def test_fit_refuses_every_name_it_would_write_before_fitting(fit_file, tmp_path, capsys, no_fit, existing):
    out = tmp_path / "out"
    out.mkdir()
    (out / existing).write_text("earlier")
    assert cli.main(["fit", str(fit_file), "-o", str(out), "--quiet"]) == 2
    line = _one_error_line(capsys.readouterr().err)
    assert existing in line and "--overwrite" in line
    assert (out / existing).read_text() == "earlier"


def test_fit_below_a_regular_file_is_refused_before_fitting(fit_file, tmp_path, capsys, no_fit):
    assert cli.main(["fit", str(fit_file), "-o", str(fit_file / "out"), "--quiet"]) == 2
    assert "is a file, not a directory" in _one_error_line(capsys.readouterr().err)


@pytest.mark.mpi
def test_output_place_error_is_printed_once_under_mpirun(case_file, tmp_path):
    from support.paths import run_cli
    (tmp_path / "file").write_text("x")
    proc = run_cli(["run", str(case_file), "-o", str(tmp_path / "file" / "out"), "--quiet"], mpi=2, timeout=300)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.count("cait-fem: error:") == 1, proc.stderr
    assert "is a file, not a directory" in proc.stderr and "Traceback" not in proc.stderr


def test_a_reader_closing_the_pipe_early_is_no_error(case_file):
    """`cait-fem check case | head -1`: the command ends normally (the report is not worth
    an error; for `run` the results are written before the report is printed)."""
    from support.paths import BIN
    proc = subprocess.Popen([str(BIN / "cait-fem"), "check", str(case_file)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)
    proc.stdout.close()  # before the child prints anything: its first print meets a closed pipe
    err = proc.stderr.read().decode()
    assert proc.wait(timeout=60) == 0, err
    assert "Traceback" not in err and "BrokenPipe" not in err and "Exception ignored" not in err


@pytest.mark.dolfinx
def test_overwrite_replaces_the_whole_set(case_file, tmp_path, capsys, monkeypatch):
    """--overwrite --no-plots after a run with plots: the old PNGs go with the old set; a
    file of the user's stays; nothing hidden is left."""
    def simulate(exp, *, progress=None, comm=None):
        progress.close()
        return fake_result(exp)

    monkeypatch.setattr(cli, "_simulate_function", lambda: simulate)
    out = tmp_path / "out"
    assert cli.main(["run", str(case_file), "-o", str(out), "--quiet"]) == 0
    assert len([p for p in out.iterdir() if p.suffix == ".png"]) == 4
    (out / "notes.txt").write_text("mine")
    assert cli.main(["run", str(case_file), "-o", str(out), "--quiet", "--no-plots", "--overwrite"]) == 0
    assert sorted(p.name for p in out.iterdir()) == ["metadata.json", "notes.txt", "profiles.csv", "summary.json",
                                                     "timeseries.csv"]
    assert "wrote 4 files" in capsys.readouterr().out


@pytest.mark.dolfinx
def test_a_failed_solve_leaves_the_previous_results(case_file, tmp_path, capsys, monkeypatch):
    from cait_fem.errors import SolverError

    def good(exp, *, progress=None, comm=None):
        return fake_result(exp)

    def failing(exp, *, progress=None, comm=None):
        raise SolverError("Newton diverged at t = 12 s")

    out = tmp_path / "out"
    monkeypatch.setattr(cli, "_simulate_function", lambda: good)
    assert cli.main(["run", str(case_file), "-o", str(out), "--quiet", "--no-plots"]) == 0
    before = {p.name: p.read_bytes() for p in out.iterdir()}
    monkeypatch.setattr(cli, "_simulate_function", lambda: failing)
    assert cli.main(["run", str(case_file), "-o", str(out), "--quiet", "--overwrite"]) == 1
    line = _one_error_line(capsys.readouterr().err)
    assert "the solver failed: Newton diverged" in line and "was changed" in line
    assert {p.name: p.read_bytes() for p in out.iterdir()} == before
