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
