"""Atomic file writers: text, JSON (numpy-aware, NaN -> null), CSV and anything that can
write to a path (matplotlib figures).

Every writer puts the content in a temporary file in the target's directory, flushes and
fsyncs it, then ``os.replace``s it over the target, so a reader never sees a half-written
file and an interrupted run leaves the previous file (or nothing) in place. The file gets
the mode ``open()`` would give it, 0666 minus the umask (not mkstemp's private 0600).
A result set of several files is written as a unit by :mod:`cait_fem.output.result_set`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import io
import json
import math
import os
import tempfile
from collections.abc import Iterable, Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np

from cait_fem.errors import ConfigError

TEMP_PREFIX = ".cait_fem-"
TEMP_SUFFIX = ".tmp"


def current_umask() -> int:
    """The process's umask. Read from /proc where available: ``os.umask`` can only be read
    by setting it, which races with other threads creating files."""
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError, IndexError):
        pass
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def file_mode() -> int:
    """Mode of a new regular file as ``open()`` would create it: 0666 minus the umask."""
    return 0o666 & ~current_umask()


def _fsync_directory(directory: Path) -> None:
    """Make the rename durable where the platform allows it (POSIX)."""
    try:
        fd = os.open(directory, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path next to ``path``; on normal exit it is fsynced and moved onto
    ``path``; on an exception it is removed and ``path`` is left untouched."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=TEMP_PREFIX + target.name + ".", suffix=TEMP_SUFFIX,
                                    dir=target.parent)
    try:
        # mkstemp creates 0600; the result is a user's file like any other: follow the umask
        os.fchmod(fd, file_mode())
    finally:
        os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as fh:
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp.unlink()
        raise
    _fsync_directory(target.parent)


def write_bytes_atomic(path: str | os.PathLike, data: bytes) -> Path:
    with atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            fh.write(data)
    return Path(path)


def write_text_atomic(path: str | os.PathLike, text: str) -> Path:
    return write_bytes_atomic(path, text.encode("utf-8"))


def to_jsonable(obj):
    """Plain-Python copy of ``obj`` for JSON: numpy scalars and arrays become numbers and
    lists, NaN and +-inf become None (JSON null), tuples/sets become lists, paths strings,
    dataclasses dicts; anything else unknown becomes its ``str``."""
    if obj is None or isinstance(obj, (bool, str)):
        return obj
    if isinstance(obj, (np.bool_,)):
        return bool(obj)
    if isinstance(obj, (int, np.integer)):
        return int(obj)
    if isinstance(obj, (float, np.floating)):
        value = float(obj)
        return value if math.isfinite(value) else None
    if isinstance(obj, np.ndarray):
        return to_jsonable(obj.tolist())
    if isinstance(obj, Mapping):
        return {str(k): to_jsonable(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple, set, frozenset)):
        items = sorted(obj, key=str) if isinstance(obj, (set, frozenset)) else obj
        return [to_jsonable(v) for v in items]
    if isinstance(obj, os.PathLike):
        return os.fspath(obj)
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        return to_jsonable(dataclasses.asdict(obj))
    if isinstance(obj, np.generic):
        return to_jsonable(obj.item())
    return str(obj)


def dumps_json(obj, *, indent: int = 2) -> str:
    return json.dumps(to_jsonable(obj), indent=indent, allow_nan=False, ensure_ascii=False) + "\n"


def write_json_atomic(path: str | os.PathLike, obj, *, indent: int = 2) -> Path:
    return write_text_atomic(path, dumps_json(obj, indent=indent))


def _format_cell(value) -> str:
    if isinstance(value, (bool, np.bool_)):
        return "1" if value else "0"
    if isinstance(value, (int, np.integer)):
        return str(int(value))
    if isinstance(value, (float, np.floating)):
        value = float(value)
        return repr(value) if math.isfinite(value) else ("nan" if math.isnan(value) else
                                                          ("inf" if value > 0 else "-inf"))
    return str(value)


def format_csv(header: Sequence[str], columns: Sequence[Sequence]) -> str:
    """CSV text with one header row and the given columns (equal lengths). Floats are written
    with the shortest representation that reads back exactly; NaN as ``nan``."""
    if len(header) != len(columns):
        raise ValueError(f"{len(header)} column names for {len(columns)} columns")
    lengths = {len(c) for c in columns}
    if len(lengths) > 1:
        raise ValueError(f"CSV columns of unequal lengths {sorted(lengths)}")
    for name in header:
        if "," in name or "\n" in name:
            raise ValueError(f"CSV column name {name!r} contains a comma or newline")
    out = io.StringIO()
    out.write(",".join(header) + "\n")
    cols = [c.tolist() if isinstance(c, np.ndarray) else list(c) for c in columns]
    for row in zip(*cols):
        out.write(",".join(_format_cell(v) for v in row) + "\n")
    return out.getvalue()


def write_csv_atomic(path: str | os.PathLike, header: Sequence[str], columns: Sequence[Sequence]) -> Path:
    return write_text_atomic(path, format_csv(header, columns))


def existing_files(directory: str | os.PathLike, names: Iterable[str]) -> list[str]:
    """Which of ``names`` already exist in ``directory`` (empty if it does not exist)."""
    d = Path(directory)
    if not d.exists():
        return []
    return [n for n in names if (d / n).exists()]


def leftover_temp_files(directory: str | os.PathLike) -> list[Path]:
    """Temporary files of the atomic writers left in ``directory`` (should be none)."""
    d = Path(directory)
    return sorted(p for p in d.glob(TEMP_PREFIX + "*" + TEMP_SUFFIX)) if d.is_dir() else []


# -- reading comma-separated data tables (measured profiles, ToF-SIMS, beam logs) ----------
def csv_where(path, line: int, column: str) -> str:
    """How an error names a cell: file, 1-based line and column."""
    return f"{path}, line {line}, column {column!r}"


def csv_data_lines(path, what: str = "data file") -> list[tuple[int, str]]:
    """(1-based line number, text) of every line of a UTF-8 CSV file (a byte-order mark is
    allowed) that is not blank or a ``#`` comment; ``what`` names the file in errors."""
    try:
        text = Path(path).read_bytes().decode("utf-8-sig")
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read the {what} ({exc}); expected a UTF-8 CSV file") from exc
    lines = text.replace("\r\n", "\n").replace("\r", "\n").split("\n")
    return [(i, s) for i, s in enumerate(lines, start=1) if s.strip() and not s.strip().startswith("#")]


def parse_csv_table(path, rows: list[tuple[int, str]], names: list[str], check, increasing: str,
                    unit: str, skip=()) -> np.ndarray:
    """The data ``rows`` as an array (row, column): one cell per column of ``names``, every
    cell a finite number passed to ``check(path, line, column, value)``; the column
    ``increasing`` strictly increasing (``unit`` names its values in the message). Cells of
    the columns in ``skip`` are not read (NaN), only counted. Every problem is a
    ConfigError naming file, line, column and value."""
    k = names.index(increasing)  # not necessarily the first column
    table = np.empty((len(rows), len(names)))
    for r, (line, text) in enumerate(rows):
        cells = [c.strip() for c in text.split(",")]
        if len(cells) != len(names):
            missing = (f"no cell for column {names[len(cells)]!r}" if len(cells) < len(names)
                       else f"cells beyond the last column {names[-1]!r}")
            raise ConfigError(f"{path}, line {line}: {len(cells)} cell(s), {missing}; the "
                              f"header names {len(names)} columns: {', '.join(names)}")
        for c, (name, cell) in enumerate(zip(names, cells)):
            if name in skip:
                table[r, c] = math.nan
                continue
            try:
                value = float(cell)
            except ValueError:
                raise ConfigError(f"{csv_where(path, line, name)}: {cell!r} is not a number") from None
            if not math.isfinite(value):
                raise ConfigError(f"{csv_where(path, line, name)}: {cell!r} is not allowed; "
                                  "values must be finite numbers")
            check(path, line, name, value)
            table[r, c] = value
        if r > 0 and table[r, k] <= table[r - 1, k]:
            here, before = float(table[r, k]), float(table[r - 1, k])
            raise ConfigError(f"{csv_where(path, line, increasing)}: {unit} {here!r} is not greater "
                              f"than {before!r} on line {rows[r - 1][0]}; {unit}s must be "
                              "strictly increasing")
    return table


def check_row_count(path, header_line: int, names: list[str], rows: list, minimum: int,
                    maximum: int | None = None, maximum_key: str = "") -> None:
    """ConfigError unless a table has at least ``minimum`` data rows and at most ``maximum``
    (None: no limit; ``maximum_key`` is the setting that raises it)."""
    if maximum is not None and len(rows) > maximum:
        raise ConfigError(f"{path}: {len(rows)} data rows, more than {maximum_key} = {maximum}; "
                          f"thin the profile or raise {maximum_key}")
    if len(rows) < minimum:
        last = rows[-1][0] if rows else header_line
        raise ConfigError(f"{path}, line {last}: {len(rows)} data rows after the header "
                          f"(line {header_line}, columns {', '.join(names)}); at least "
                          f"{minimum} are needed")
