"""Result sets written as a unit, and output places checked before any work.

A result set is everything one command writes into its output directory: a run's CSV,
JSON and PNG files (and for 2D/3D the VTX directory ``fields.bp`` and the rim/surface
files), or a fit's ``fit.json``, per-experiment CSVs and figures. Written file by file
into the target, an interruption would leave new files beside old ones. Instead:

1. :meth:`ResultSet.open` creates a staging directory inside the target directory (same
   file system, so the final moves are renames): ``<dir>/.cait_fem-staging-<pid>``.
   Everything is written there, at leisure.
2. :meth:`ResultSet.commit` moves the staged entries onto their final names and moves the
   entries of the previous set that the new one lacks (say, PNGs after ``--no-plots``)
   out of the way, all within :func:`deferred_signals`: a SIGINT or SIGTERM arriving
   meanwhile is delivered right after the commit. A failed rename undoes the earlier ones.
3. The staging directory (with the replaced entries) is removed after the commit, and by
   :meth:`ResultSet.discard` on an error or interruption. One left by a killed process
   (SIGKILL) is removed by the next :meth:`ResultSet.open` into that directory.

Which entries belong to the previous set is told by the caller (``owned``: names, or a
function of the directory, e.g. reading the previous ``fit.json`` for a fit's
per-experiment names); other files in the directory (a user's notes, a checkpoint) are
never touched.

Under MPI every rank calls the methods; rank 0 creates the staging directory and
broadcasts its path (ADIOS2 writes ``fields.bp`` collectively, so all ranks need it),
and rank 0 alone commits.
"""

from __future__ import annotations

import contextlib
import errno
import os
import shutil
import signal
import threading
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

from cait_fem.errors import ConfigError
from cait_fem.output.result import on_root

STAGING_PREFIX = ".cait_fem-staging-"
_REPLACED = ".replaced"  # inside the staging directory: the previous set's entries after the commit
DEFERRED_SIGNALS = (signal.SIGINT, signal.SIGTERM)


class OutputPlaceError(ConfigError):
    """An output place that cannot take the results (exit 2: bad input, nothing computed)."""


# ---------------------------------------------------------------------------- checks
def _existing_ancestor(path: Path) -> Path:
    """``path`` or its nearest ancestor that exists (lexically: ``..`` is not resolved)."""
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(os.sep)


def _check_place(directory: Path, what: str, target: Path | None = None) -> None:
    """``directory`` (to be, or that is) lies below directories only, and the first existing
    one is writable; messages name ``target`` (default: the directory) as ``what``."""
    shown = directory if target is None else target
    existing = _existing_ancestor(directory)
    if not existing.is_dir():
        if existing == shown:
            raise OutputPlaceError(f"{what} {str(shown)!r} exists and is not a directory; choose a directory")
        raise OutputPlaceError(f"{what} {str(shown)!r} cannot be created: {str(existing)!r} is a file, not a "
                               "directory; choose a path below a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        how = "is not writable" if existing == shown else f"cannot be created: {str(existing)!r} is not writable"
        raise OutputPlaceError(f"{what} {str(shown)!r} {how} for this user; choose a writable place")


def check_output_place(directory, names: Iterable[str] = (), *, overwrite: bool = False,
                       what: str = "output directory") -> Path:
    """Check before any work that ``directory`` can take a result set: it is a writable
    directory or can be created (nothing on its way is a regular file), and, unless
    ``overwrite``, holds none of ``names`` (the names the command will write). Raises
    :class:`OutputPlaceError` (a ConfigError) with one message naming the place and what
    to change; returns the path."""
    d = Path(directory)
    _check_place(Path(os.path.abspath(d)), what)
    if not overwrite and d.is_dir():
        found = [n for n in names if os.path.lexists(d / n)]
        if found:
            raise OutputPlaceError(f"{what} {str(d)!r} already holds results ({', '.join(found)}); choose another "
                                   "directory or pass --overwrite to replace them")
    return d


def check_output_file(path, *, overwrite: bool = False, what: str = "output file") -> Path:
    """The same for a single file (e.g. a mesh): its directory can take it, it is not a
    directory, and it does not exist unless ``overwrite``."""
    target = Path(path)
    _check_place(Path(os.path.abspath(target)).parent, what, target)
    if os.path.isdir(target):
        raise OutputPlaceError(f"{what} {str(target)!r} is a directory; give a file name")
    if os.path.lexists(target) and not overwrite:
        raise OutputPlaceError(f"{what} {str(target)!r} already exists: not overwritten (pass --overwrite)")
    return target


# ---------------------------------------------------------------------------- signals
@contextlib.contextmanager
def deferred_signals(signums=DEFERRED_SIGNALS) -> Iterator[None]:
    """Hold SIGINT/SIGTERM back while the block runs; deliver them after it.

    The signals are blocked for this thread (``pthread_sigmask``) so that neither Python's
    handler nor a default action can cut the block short; a signal the kernel hands to
    another thread while blocked here still runs its Python handler in the main thread,
    so in the main thread the Python handlers are replaced by a recorder for the duration
    and the recorded signals are raised again after the mask is restored."""
    pending: list[int] = []
    saved = {}
    if threading.current_thread() is threading.main_thread():
        for s in signums:
            old = signal.getsignal(s)
            if old is not None:  # None: installed outside Python, cannot be put back
                saved[s] = signal.signal(s, lambda n, _f: pending.append(n))
    mask = signal.pthread_sigmask(signal.SIG_BLOCK, signums) if hasattr(signal, "pthread_sigmask") else None
    try:
        yield
    finally:
        for s, old in saved.items():
            signal.signal(s, old)
        if mask is not None:
            signal.pthread_sigmask(signal.SIG_SETMASK, mask)  # a blocked signal is delivered now
        for s in dict.fromkeys(pending):
            signal.raise_signal(s)


# ---------------------------------------------------------------------------- staging
def _pid_of(staging_name: str) -> int | None:
    rest = staging_name[len(STAGING_PREFIX):].split("-", 1)[0]
    return int(rest) if rest.isdigit() else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # someone else's process
        return True
    return True


def remove_stale_staging(directory) -> list[Path]:
    """Remove staging directories in ``directory`` whose process no longer runs (killed
    with SIGKILL, or on a crash of the interpreter); returns what was removed."""
    d = Path(directory)
    removed = []
    if not d.is_dir():
        return removed
    for entry in d.iterdir():
        if not entry.name.startswith(STAGING_PREFIX):
            continue
        pid = _pid_of(entry.name)
        if pid is not None and pid != os.getpid() and _alive(pid):
            continue  # another run is writing into this directory right now
        if pid == os.getpid():
            continue  # ours: removed by its own ResultSet
        shutil.rmtree(entry, ignore_errors=True)
        removed.append(entry)
    return removed


def leftover_staging(directory) -> list[Path]:
    """Staging directories in ``directory`` (after a command has ended: should be none)."""
    d = Path(directory)
    return sorted(p for p in d.glob(STAGING_PREFIX + "*")) if d.is_dir() else []


def _root(comm) -> bool:
    return comm is None or comm.Get_rank() == 0



class ResultSet:
    """The result set of one command in ``directory``; use as a context manager:

    .. code-block:: python

        with ResultSet(outdir, owned=OUTPUT_FILES, comm=comm) as rs:
            result.save(rs.staging)          # write everything into rs.staging
            paths = rs.commit()              # final paths, in outdir

    Leaving the block by an exception (or a signal turned into one) discards the staging
    directory; leaving it normally without :meth:`commit` commits. ``owned``: the names a
    previous set of this kind may hold, or a function of the directory returning them;
    entries of the previous set that the new one lacks are removed by the commit. Only
    :meth:`commit` touches ``directory``'s results."""

    def __init__(self, directory, owned: Iterable[str] | Callable[[Path], Iterable[str]] = (), *, comm=None):
        self.directory = Path(directory)
        self.owned = owned if callable(owned) else tuple(owned)
        self.comm = comm
        self.staging: Path | None = None
        self.committed = False
        self._created: list[Path] = []
        self._removed = False

    # -- lifecycle -----------------------------------------------------------------------
    def open(self) -> Path:
        """Create the staging directory (and ``directory`` if needed); collective."""
        def make():
            missing = [p for p in (self.directory, *self.directory.parents) if not os.path.lexists(p)]
            self.directory.mkdir(parents=True, exist_ok=True)
            self._created = missing
            remove_stale_staging(self.directory)
            base = self.directory / f"{STAGING_PREFIX}{os.getpid()}"
            staging, n = base, 0
            while True:
                try:
                    staging.mkdir()
                    return staging
                except FileExistsError:
                    n += 1
                    staging = base.with_name(f"{base.name}-{n}")
        self.staging = Path(on_root(self.comm, make))
        return self.staging

    def __enter__(self) -> ResultSet:
        self.open()
        return self

    def __exit__(self, exc_type, exc, tb) -> bool:
        if exc_type is None and not self.committed:
            self.commit()
        else:
            self.discard()
        return False

    def discard(self) -> None:
        """Remove the staging directory (and ``directory`` if it was created for this set
        and is empty). Not collective: every rank may call it, rank 0 removes."""
        if self.staging is None or self._removed or not _root(self.comm):
            return
        shutil.rmtree(self.staging, ignore_errors=True)
        self._removed = True
        if not self.committed:
            for p in self._created:
                with contextlib.suppress(OSError):
                    p.rmdir()  # only if empty

    # -- commit --------------------------------------------------------------------------
    def _previous_names(self) -> set[str]:
        owned = self.owned(self.directory) if callable(self.owned) else self.owned
        # only plain names of this directory: a name read from a file must not point elsewhere
        return {n for n in owned if isinstance(n, str) and n == Path(n).name and n not in (".", "..")
                and os.path.lexists(self.directory / n)}

    def _commit(self) -> list[str]:
        staging, d = self.staging, self.directory
        if staging is None:
            raise RuntimeError("ResultSet.commit() before open()")
        new = sorted(n for n in os.listdir(staging) if n != _REPLACED)
        old = self._previous_names() - set(new)
        replaced = staging / _REPLACED
        replaced.mkdir()
        done: list[tuple[Path, Path]] = []

        def move(src: Path, dst: Path) -> None:
            os.replace(src, dst)
            done.append((src, dst))

        with deferred_signals():
            try:
                for n in sorted(old):
                    move(d / n, replaced / n)
                for n in new:
                    target = d / n
                    if os.path.lexists(target) and (target.is_dir() or (staging / n).is_dir()):
                        move(target, replaced / n)  # rename cannot put a directory over a non-empty one
                    move(staging / n, target)
            except BaseException:
                for src, dst in reversed(done):
                    with contextlib.suppress(OSError):
                        os.replace(dst, src)
                raise
            self.committed = True
        with contextlib.suppress(OSError):
            fd = os.open(d, os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        return new

    def commit(self) -> list[Path]:
        """Move the staged set into ``directory`` as one step (see the module docstring);
        returns the final paths. Collective; rank 0 moves, the others wait."""
        try:
            names = on_root(self.comm, self._commit)
        except OSError as exc:
            if exc.errno in (errno.ENOSPC, errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EROFS):
                raise OutputPlaceError(f"output directory {str(self.directory)!r}: the results could not be "
                                       f"moved into place ({exc.strerror}); the previous results are kept") from None
            raise
        finally:
            self.discard()
        self.committed = True
        return [self.directory / n for n in names]

    def final_path(self, path) -> Path:
        """Where a file written into the staging directory ends up after the commit."""
        p = Path(path)
        if self.staging is not None:
            with contextlib.suppress(ValueError):
                return self.directory / p.relative_to(self.staging)
        return p
