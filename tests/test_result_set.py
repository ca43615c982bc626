"""Result sets written as a unit (cait_fem.output.result_set), output places checked before
any work, and file modes that follow the umask. Pure: no DOLFINx, no solve."""

import os
import signal
import stat
import threading
import time
from pathlib import Path

import pytest

from cait_fem.fileio import leftover_temp_files, write_json_atomic, write_text_atomic
from cait_fem.output import result_set
from cait_fem.output.result_set import (
    OutputPlaceError,
    ResultSet,
    check_output_file,
    check_output_place,
    deferred_signals,
    leftover_staging,
)

OLD = {"profiles.csv": "old profiles\n", "summary.json": "{\"old\": 1}\n", "profiles.png": "old png",
       "fields.bp": {"data.0": "old field data", "md.idx": "old index"}}
NEW = {"profiles.csv": "new profiles\n", "summary.json": "{\"new\": 2}\n",
       "fields.bp": {"data.0": "new field data"}}
OWNED = ("profiles.csv", "summary.json", "profiles.png", "timeseries.png", "fields.bp")


def write_tree(directory: Path, tree: dict) -> None:
    directory.mkdir(parents=True, exist_ok=True)
    for name, content in tree.items():
        if isinstance(content, dict):
            write_tree(directory / name, content)
        else:
            (directory / name).write_text(content)


def read_tree(directory: Path) -> dict:
    return {p.name: read_tree(p) if p.is_dir() else p.read_text() for p in sorted(directory.iterdir())}


def user_files(directory: Path) -> dict:
    """Everything in the directory; hidden entries (staging, temporary files) included."""
    return read_tree(directory)


@pytest.fixture
def outdir(tmp_path):
    d = tmp_path / "out"
    write_tree(d, OLD)
    (d / "notes.txt").write_text("the user's own file")
    return d


def stage_new(rs: ResultSet) -> None:
    write_tree(rs.staging, NEW)


def test_commit_replaces_the_whole_set_and_keeps_other_files(outdir):
    with ResultSet(outdir, owned=OWNED) as rs:
        assert rs.staging.parent == outdir and rs.staging.name.startswith(".cait_fem-staging-")
        stage_new(rs)
        paths = rs.commit()
    assert sorted(p.name for p in paths) == sorted(NEW)
    # the old PNG and the old fields.bp's extra file are gone; the user's file stays
    assert user_files(outdir) == {**NEW, "notes.txt": "the user's own file"}


def test_error_before_the_commit_leaves_the_old_set_and_no_staging(outdir):
    with pytest.raises(RuntimeError, match="solver"):
        with ResultSet(outdir, owned=OWNED) as rs:
            stage_new(rs)
            raise RuntimeError("the solver failed")
    assert user_files(outdir) == {**OLD, "notes.txt": "the user's own file"}


def test_a_new_directory_is_removed_again_when_nothing_was_committed(tmp_path):
    target = tmp_path / "a" / "b"
    with pytest.raises(KeyboardInterrupt):
        with ResultSet(target, owned=OWNED) as rs:
            stage_new(rs)
            raise KeyboardInterrupt
    assert not (tmp_path / "a").exists()


def test_leaving_the_block_normally_commits(tmp_path):
    with ResultSet(tmp_path / "out") as rs:
        stage_new(rs)
    assert user_files(tmp_path / "out") == NEW


def test_a_failed_rename_undoes_the_commit(outdir, monkeypatch):
    real = os.replace
    calls = []

    def flaky(src, dst):
        calls.append(dst)
        if len(calls) == 4:
            raise OSError(28, "No space left on device")
        real(src, dst)

    monkeypatch.setattr(result_set.os, "replace", flaky)
    with pytest.raises(OutputPlaceError, match="previous results are kept"):
        with ResultSet(outdir, owned=OWNED) as rs:
            stage_new(rs)
            rs.commit()
    monkeypatch.undo()
    assert len(calls) > 4  # the failed rename, then the renames that undo the first three
    assert user_files(outdir) == {**OLD, "notes.txt": "the user's own file"}


def test_stale_staging_of_a_killed_process_is_removed_by_the_next_set(outdir):
    # a pid that cannot be running: above the kernel's pid_max
    dead = outdir / ".cait_fem-staging-99999999"
    write_tree(dead, {"profiles.csv": "half written"})
    alive = outdir / f".cait_fem-staging-{os.getppid()}"  # another running process: not ours to remove
    alive.mkdir()
    with ResultSet(outdir, owned=OWNED) as rs:
        stage_new(rs)
    assert not dead.exists() and alive.exists()
    alive.rmdir()
    assert user_files(outdir) == {**NEW, "notes.txt": "the user's own file"}


def test_owned_names_may_come_from_the_previous_set(outdir):
    (outdir / "a_profile.csv").write_text("old experiment a")
    with ResultSet(outdir, owned=lambda d: ["a_profile.csv", "../notes.txt", "profiles.png"]) as rs:
        stage_new(rs)
    assert not (outdir / "a_profile.csv").exists() and not (outdir / "profiles.png").exists()
    assert (outdir / "notes.txt").exists() and (outdir.parent / "out").is_dir()


class SlowReplace:
    """os.replace that sleeps before every rename: the commit takes long enough for a
    signal to arrive in the middle of it."""

    def __init__(self, pause_s: float):
        self.pause_s, self.calls, self.real = pause_s, 0, os.replace

    def __call__(self, src, dst):
        self.calls += 1
        time.sleep(self.pause_s)
        self.real(src, dst)


@pytest.mark.parametrize("how", ["process", "main-thread"])
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_during_the_commit_is_delivered_after_it(outdir, monkeypatch, how, signum):
    class Stop(BaseException):
        pass

    def handler(n, _frame):
        raise Stop(n)

    old_handlers = {s: signal.signal(s, handler) for s in (signal.SIGINT, signal.SIGTERM)}
    slow = SlowReplace(0.05)
    monkeypatch.setattr(result_set.os, "replace", slow)
    main = threading.main_thread().ident
    # "process": kill() may be handled by any thread (the timer's); "main-thread": the
    # signal is aimed at the committing thread, whose mask holds it back
    send = (lambda: os.kill(os.getpid(), signum)) if how == "process" else \
        (lambda: signal.pthread_kill(main, signum))
    timer = threading.Timer(0.12, send)  # after the second of 6 renames
    try:
        with pytest.raises(Stop) as info:
            with ResultSet(outdir, owned=OWNED) as rs:
                stage_new(rs)
                timer.start()
                rs.commit()
                pytest.fail("the signal was not delivered right after the commit")
    finally:
        timer.join()
        for s, h in old_handlers.items():
            signal.signal(s, h)
    assert info.value.args == (signum,)
    assert slow.calls >= 4  # the commit ran to its end: every rename of the new set
    assert user_files(outdir) == {**NEW, "notes.txt": "the user's own file"}


def test_deferred_signals_outside_the_main_thread_only_masks():
    errors = []

    def body():
        try:
            with deferred_signals():
                pass
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    assert not errors


# ------------------------------------------------------------------------ output places
def test_output_place_below_a_regular_file(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPlaceError, match="is a file, not a directory"):
        check_output_place(tmp_path / "file" / "out")
    with pytest.raises(OutputPlaceError, match="exists and is not a directory"):
        check_output_place(tmp_path / "file")


def test_output_place_not_writable(tmp_path, monkeypatch):
    # tests run as root, for whom every directory is writable: os.access says what a user sees
    real = os.access
    monkeypatch.setattr(result_set.os, "access",
                        lambda p, mode: False if Path(p) == tmp_path else real(p, mode))
    with pytest.raises(OutputPlaceError, match="is not writable"):
        check_output_place(tmp_path)
    with pytest.raises(OutputPlaceError, match=f"'{tmp_path}' is not writable"):
        check_output_place(tmp_path / "new" / "deeper")


@pytest.mark.skipif(os.geteuid() == 0, reason="root may write into a read-only directory")
def test_output_place_in_a_read_only_directory(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir(mode=0o555)
    with pytest.raises(OutputPlaceError, match="not writable"):
        check_output_place(ro / "out")


def test_output_place_clashes_unless_overwrite(tmp_path):
    (tmp_path / "fit.json").write_text("{}")
    with pytest.raises(OutputPlaceError, match="fit.json.*--overwrite"):
        check_output_place(tmp_path, ["fit.json", "a_profile.csv"])
    assert check_output_place(tmp_path, ["fit.json"], overwrite=True) == tmp_path
    assert check_output_place(tmp_path / "new" / "dir", ["fit.json"]) == tmp_path / "new" / "dir"
    assert not (tmp_path / "new").exists()  # checked, not created


def test_output_file_checks(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(OutputPlaceError, match="is a file, not a directory"):
        check_output_file(tmp_path / "file" / "spot.msh")
    with pytest.raises(OutputPlaceError, match="already exists"):
        check_output_file(tmp_path / "file")
    with pytest.raises(OutputPlaceError, match="is a directory"):
        check_output_file(tmp_path, overwrite=True)
    assert check_output_file(tmp_path / "file", overwrite=True) == tmp_path / "file"


def test_fit_output_names_stay_in_the_directory():
    from cait_fem.errors import ConfigError
    from cait_fem.fit.result import output_names
    assert "K_1_profile.csv" in output_names(["K_1"])
    for bad in ("../../x", "sub/dir", "..", ".hidden", ""):
        with pytest.raises(ConfigError, match="cannot name an output file"):
            output_names([bad])


def test_previous_fit_names_come_from_its_fit_json(tmp_path):
    from cait_fem.fit.result import previous_fit_names
    write_json_atomic(tmp_path / "fit.json", {"experiments": {"K": {}, "../x": {}}})
    names = previous_fit_names(tmp_path)
    assert "K_profile.csv" in names and "K_model.csv" in names and "fit.json" in names
    assert not any(".." in n for n in names)


# ------------------------------------------------------------------------ modes
@pytest.mark.parametrize("umask, mode", [(0o022, 0o644), (0o077, 0o600), (0o002, 0o664)])
def test_written_files_follow_the_umask(tmp_path, umask, mode):
    old = os.umask(umask)
    try:
        path = write_text_atomic(tmp_path / "a.txt", "x")
        with ResultSet(tmp_path / "set") as rs:
            write_text_atomic(rs.staging / "b.txt", "y")
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "set" / "b.txt").stat().st_mode) == mode
    assert stat.S_IMODE((tmp_path / "set").stat().st_mode) == 0o777 & ~umask
    assert not leftover_temp_files(tmp_path) and not leftover_staging(tmp_path / "set")


def test_an_interrupted_atomic_write_leaves_the_old_file_and_no_temp(tmp_path):
    """The single-file writer (checkpoints, mesh files) under a KeyboardInterrupt (what a
    SIGINT raises; the CLI turns SIGTERM into the same kind of exception)."""
    from cait_fem.fileio import atomic_path
    target = tmp_path / "state.npz"
    target.write_bytes(b"old")
    with pytest.raises(KeyboardInterrupt):
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"half")
            raise KeyboardInterrupt
    assert target.read_bytes() == b"old" and not leftover_temp_files(tmp_path)
