"""Interrupted `cait-fem run --overwrite`: whenever SIGINT or SIGTERM arrives (loading,
meshing, mid-solve, writing), the output directory holds exactly the complete previous
result set or the complete new one, and no staging or temporary file; the command ends
with one line and exit 130 / 143. (A signal during the final move is tested in-process in
test_result_set.py, where the move can be slowed down.)"""

import json
import os
import shutil
import signal
import subprocess
import time

import pytest
from support.cases import section_case_toml
from support.paths import BIN, ROOT

pytestmark = pytest.mark.dolfinx

K_CASE = (ROOT / "demos" / "k_cait.toml").read_text()
OLD_CASE = K_CASE.replace("t_end_s = 30000", "t_end_s = 3000").replace(
    "output_times_s = [1000, 3000, 10000, 30000]", "output_times_s = [1000, 3000]")
# the new run: other profiles (that old PNGs go when the new run has --no-plots is tested
# in test_result_set.py and test_cli.py; here the new run draws, so that "while writing"
# is a window of about a second)
NEW_CASE = K_CASE
DETERMINISTIC = ("profiles.csv", "timeseries.csv")


def cait_fem(args, cwd):
    return subprocess.Popen([str(BIN / "cait-fem"), *args], cwd=cwd, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


def snapshot(directory) -> dict:
    """Every entry (hidden ones too) -> what identifies its content: the bytes of the CSVs,
    the physics of the JSONs (not the wall time, date or command line)."""
    out = {}
    for p in sorted(directory.iterdir()):
        if p.name in DETERMINISTIC:
            out[p.name] = p.read_bytes()
        elif p.name == "summary.json":
            s = json.loads(p.read_text())
            out[p.name] = (s["time_s"], s["steps"], s["front_position_nm"])
        elif p.name == "metadata.json":
            out[p.name] = json.dumps(json.loads(p.read_text())["experiment"], sort_keys=True)
        else:
            out[p.name] = p.stat().st_size if p.is_file() else "dir"
    return out


@pytest.fixture(scope="module")
def sets(tmp_path_factory):
    """The old set (written by a complete run) and the new set as a complete run writes it,
    and how long that run takes."""
    d = tmp_path_factory.mktemp("interrupt")
    (d / "old.toml").write_text(OLD_CASE)
    (d / "new.toml").write_text(NEW_CASE)
    p = cait_fem(["run", "old.toml", "-o", "old", "--quiet"], d)
    assert p.wait(timeout=300) == 0, p.stderr.read()
    durations = []
    for _ in range(2):  # the second on warm caches, as the interrupted runs will be
        shutil.rmtree(d / "new", ignore_errors=True)
        start = time.perf_counter()
        p = cait_fem(["run", "new.toml", "-o", "new", "--quiet"], d)
        assert p.wait(timeout=300) == 0, p.stderr.read()
        durations.append(time.perf_counter() - start)
    old, new = snapshot(d / "old"), snapshot(d / "new")
    assert set(old) == set(new) and old["profiles.csv"] != new["profiles.csv"]
    duration = durations[-1]
    return d, old, new, duration


def interrupted_run(d, name, signum, delay_s):
    work = d / name
    shutil.copytree(d / "old", work)
    p = cait_fem(["run", "new.toml", "-o", name, "--quiet", "--overwrite"], d)
    time.sleep(delay_s)
    p.send_signal(signum)
    out, err = p.communicate(timeout=300)
    return p.returncode, err, snapshot(work)


FRACTIONS = (0.03, 0.12, 0.25, 0.35, 0.5, 0.6, 0.7, 0.78, 0.85, 0.92)


def test_interrupted_overwrite_leaves_the_old_or_the_new_set(sets):
    d, old, new, duration = sets
    outcomes = []
    for i, fraction in enumerate(FRACTIONS):
        signum = (signal.SIGINT, signal.SIGTERM)[i % 2]
        code, err, found = interrupted_run(d, f"w{i}", signum, fraction * duration)
        where = f"signal {signum.name} at {fraction:.2f} of {duration:.2f} s: exit {code}, stderr {err!r}"
        assert not [n for n in found if n.startswith(".")], where  # no staging, no temporary file
        if code == 0:  # the signal came after the command had finished
            assert found == new, where
            outcomes.append("finished")
            continue
        assert code == 128 + signum, where
        lines = err.strip().splitlines()
        assert len(lines) == 1 and lines[0].startswith(f"cait-fem: interrupted by {signum.name}"), where
        assert "Traceback" not in err and "PETSC" not in err.upper(), where
        if "the new results were written" in err:
            assert found == new, where
        else:
            assert "previous results are kept" in err and found == old, where
        outcomes.append(lines[0])
    # the spread of moments reached the solve and the writing: the line says where the run was
    assert any("during the run at t = " in o for o in outcomes), outcomes
    print("\n".join(outcomes))
    assert sum(o != "finished" for o in outcomes) >= len(FRACTIONS) // 2, outcomes


def test_staging_left_by_a_killed_run_is_removed_by_the_next_run(sets):
    d, old, new, duration = sets
    work = d / "killed"
    shutil.copytree(d / "old", work)
    p = cait_fem(["run", "new.toml", "-o", "killed", "--quiet", "--overwrite"], d)
    # wait for the staging directory (made when the run starts), then kill without warning
    deadline = time.monotonic() + 120
    while not any(n.startswith(".cait_fem-staging-") for n in os.listdir(work)):
        assert p.poll() is None and time.monotonic() < deadline, "no staging directory appeared"
        time.sleep(0.01)
    p.kill()
    p.wait(timeout=60)
    assert snapshot(work) != old  # the staging directory is still there ...
    assert {n for n in snapshot(work) if not n.startswith(".")} == set(old)  # ... beside the old set
    p = cait_fem(["run", "new.toml", "-o", "killed", "--quiet", "--overwrite"], d)
    assert p.wait(timeout=300) == 0
    assert snapshot(work) == new  # ... and gone after the next run


def wait_for_staged(p, work, name, timeout_s=120):
    """Wait until the run's staging directory holds ``name`` (the run has reached that
    point); False if the run ended first."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline and p.poll() is None:
        for staging in work.glob(".cait_fem-staging-*"):
            if (staging / name).exists():
                return True
        time.sleep(0.005)
    return False


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_interrupted_while_writing_the_new_set(sets, signum):
    """The moment is found, not guessed: the signal goes out once the new profiles.csv is
    staged, while the PNGs are being drawn."""
    d, old, new, duration = sets
    work = d / f"writing-{signum.name}"
    shutil.copytree(d / "old", work)
    p = cait_fem(["run", "new.toml", "-o", work.name, "--quiet", "--overwrite"], d)
    reached = wait_for_staged(p, work, "profiles.csv")
    p.send_signal(signum)
    _, err = p.communicate(timeout=300)
    # the case runs for seconds after the moment the signal is sent: finishing first
    # would mean this test checked nothing
    assert reached and p.returncode != 0, "the run finished before the signal: lengthen the case"
    assert p.returncode == 128 + signum, err
    assert err.strip() == err.strip().splitlines()[0], err
    assert "during the writing of the results" in err and "previous results are kept" in err, err
    assert snapshot(work) == old


def tree_bytes(directory) -> dict:
    return {str(p.relative_to(directory)): p.read_bytes() for p in sorted(directory.rglob("*")) if p.is_file()}


def test_interrupted_2d_overwrite_keeps_the_previous_fields(tmp_path):
    """`--overwrite` of a 2D run no longer empties the previous fields.bp when it starts:
    the new VTX series is written into the staging directory."""
    outputs = [10, 20, 30, 40, 50, 60, 70, 80, 90]
    (tmp_path / "old.toml").write_text(section_case_toml("section_interrupt", 1e-6, 100.0, outputs, 5e-3))
    # the new run takes seconds beyond the moment its VTX series appears
    (tmp_path / "new.toml").write_text(section_case_toml("section_interrupt", 1e-6, 1000.0, outputs, 1e-3))
    p = cait_fem(["run", "old.toml", "-o", "out", "--quiet"], tmp_path)
    assert p.wait(timeout=600) == 0, p.stderr.read()
    out = tmp_path / "out"
    before = tree_bytes(out)
    assert any(k.startswith("fields.bp/") for k in before)
    p = cait_fem(["run", "new.toml", "-o", "out", "--quiet", "--overwrite"], tmp_path)
    reached = wait_for_staged(p, out, "fields.bp")  # the new series has started
    time.sleep(0.1)  # ... and holds some output times
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=300)
    # the case runs for seconds after the moment the signal is sent: finishing first
    # would mean this test checked nothing
    assert reached and p.returncode != 0, "the run finished before the signal: lengthen the case"
    assert p.returncode == 143, err
    assert "interrupted by SIGTERM" in err and "Traceback" not in err
    assert tree_bytes(out) == before
    assert not [q for q in out.iterdir() if q.name.startswith(".")]


def test_interrupted_run_with_checkpoints_leaves_no_temporary_file(sets):
    d, old, new, duration = sets
    work = d / "with-checkpoint"
    p = cait_fem(["run", "new.toml", "-o", work.name, "--quiet", "--checkpoint"], d)
    deadline = time.monotonic() + 120
    while not (work / "checkpoint" / "checkpoint.json").exists():
        assert p.poll() is None and time.monotonic() < deadline, "no checkpoint was written"
        time.sleep(0.005)
    p.send_signal(signal.SIGINT)  # while the next checkpoints are being written
    _, err = p.communicate(timeout=300)
    # the case runs for seconds after the moment the signal is sent: finishing first
    # would mean this test checked nothing
    assert p.returncode != 0, "the run finished before the signal: lengthen the case"
    assert p.returncode == 130, err
    assert sorted(q.name for q in work.iterdir()) == ["checkpoint"]  # no result set, no staging
    assert not [q.name for q in (work / "checkpoint").iterdir() if q.name.startswith(".")]


def test_interrupted_fit_keeps_the_previous_fit(tmp_path):
    import numpy as np

    from cait_fem.analysis.measured import write_profile_csv
    (tmp_path / "k_cait.toml").write_text(K_CASE)
    depth_nm = np.arange(1.0, 61.0)
    li = 0.15 + 0.85 * 0.5 * (1.0 + np.tanh((depth_nm - 40.0) / 3.0))
    write_profile_csv(tmp_path / "k.csv", depth_nm * 1e-9, {"Li": li, "K": 1.0 - li})
    (tmp_path / "fit.toml").write_text('name = "k"\n[[experiment]]\nname = "K"\ncase = "k_cait.toml"\n'
                                       'data = "k.csv"\n[fit.parameters]\n'
                                       '"species.K.diffusion.D_m2_s" = { min = 1e-23, max = 1e-18, log = true }\n')
    out = tmp_path / "out"
    out.mkdir()
    old = {"fit.json": b'{"experiments": {"Old": {}}}', "Old_profile.csv": b"old", "fit_profiles.png": b"old"}
    for name, content in old.items():
        (out / name).write_bytes(content)
    p = cait_fem(["fit", "fit.toml", "-o", "out", "--quiet", "--overwrite"], tmp_path)
    deadline = time.monotonic() + 120
    while not list(out.glob(".cait_fem-staging-*")):
        assert p.poll() is None and time.monotonic() < deadline, p.stderr.read()
        time.sleep(0.005)
    time.sleep(1.0)  # into the forward solves
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=300)
    # the case runs for seconds after the moment the signal is sent: finishing first
    # would mean this test checked nothing
    assert p.returncode != 0, "the fit finished before the signal: lengthen the case"
    assert p.returncode == 130, err
    assert err.strip().startswith("cait-fem: interrupted by SIGINT during the fit;") and "\n" not in err.strip(), err
    assert {q.name: q.read_bytes() for q in out.iterdir()} == old


@pytest.mark.mpi
def test_interrupted_run_under_mpirun_prints_one_line(sets):
    d, old, new, duration = sets
    work = d / "mpi"
    shutil.copytree(d / "old", work)
    p = subprocess.Popen([str(BIN / "mpirun"), "-n", "2", str(BIN / "cait-fem"), "run", "new.toml", "-o", "mpi",
                          "--quiet", "--overwrite"], cwd=d, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 120
    while not list(work.glob(".cait_fem-staging-*")):
        assert p.poll() is None and time.monotonic() < deadline, "no staging directory appeared"
        time.sleep(0.005)
    p.send_signal(signal.SIGTERM)  # mpirun passes it on to every rank
    _, err = p.communicate(timeout=300)
    # the case runs for seconds after the moment the signal is sent: finishing first
    # would mean this test checked nothing
    assert p.returncode != 0, "the run finished before the signal: lengthen the case"
    ours = [line for line in err.splitlines() if line.startswith("cait-fem")]
    assert len(ours) == 1 and ours[0].startswith("cait-fem: interrupted by SIGTERM"), err
    assert "Traceback" not in err and "PETSC" not in err.upper(), err
    assert snapshot(work) == old


def test_run_piped_into_a_reader_that_stops_early(tmp_path):
    """`cait-fem run ... | head -1`: no PETSc SIGPIPE crash banner, no MPI_Abort; the run
    goes on and writes its results (see the README: When things go wrong)."""
    (tmp_path / "case.toml").write_text(OLD_CASE)
    p = subprocess.Popen([str(BIN / "cait-fem"), "run", "case.toml", "-o", "out", "--quiet"], cwd=tmp_path,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    p.stdout.close()  # the reader is gone before the first line
    err = p.stderr.read()
    assert p.wait(timeout=300) == 0, err
    assert "PETSC" not in err.upper() and "Traceback" not in err and "MPI_Abort" not in err, err
    assert (tmp_path / "out" / "summary.json").is_file() and (tmp_path / "out" / "profiles.png").is_file()
