"""Raw ToF-SIMS depth profiles: counts against sputter time for several masses, turned
into a :class:`~cait_fem.analysis.measured.MeasuredProfile` (fractions theta = n / n_bg).

File format
-----------
Comma-separated text, UTF-8 (a byte-order mark is allowed); blank lines and ``#`` lines
are ignored wherever they are; the first other line is the header, whitespace around
every cell is stripped (as in :mod:`cait_fem.analysis.measured`). Every later line is one
data point (one sputter cycle); at least 3 are needed.

- ``time_s`` (required): sputter time [s] at the data point, >= 0, strictly increasing.
- One column per mass, named as the instrument exports it (``7Li``, ``39K``, ``11B``,
  ``BO2``, ...): counts >= 0 (per cycle; count rates do for the fractions, where only
  ratios matter, but not for ``poisson_sigma``, which needs the counts). Every
  column must be named in the settings: mapped to a species (``masses``), the
  ``matrix`` signal, or listed in ``ignore``; an unnamed column is refused, so that a
  misspelt mass never drops out silently.

Example::

    # 39K+ into Li3B7O12, 2 h at 100 uA; 500 eV Cs+ sputter beam
    time_s, 7Li,  39K,   BO2
    2.0,    812,  19650, 50210
    4.0,    1460, 18890, 49880
    ...

Settings (TOML, the table ``[experiment.tofsims]`` of a fit file; dict keys as here)
--------------------------------------------------------------------------------------
- ``file`` (required): the CSV, relative to the fit file.
- ``masses`` (required): {column = species}, species of the case; the native species
  is required (its bulk fixes theta = 1). Several columns of one species (isotopes,
  ``6Li`` and ``7Li``) are added.
- Depth, exactly one of:

  * ``crater_depth_nm`` (> 0): the crater depth measured after the profile; a constant
    sputter rate crater_depth_nm / ``sputter_time_s`` gives depth = rate * time_s.
    ``sputter_time_s`` (default: the last row's ``time_s``) is when sputtering stopped;
    give it if the export's time stamps mark the start of a cycle or the profile was
    cut before the crater was finished. It must be >= the last row's time.
  * ``depth_table = { time_s = [...], depth_nm = [...] }``: sputter time -> depth, both
    strictly increasing, depth >= 0, at least 2 pairs, linearly interpolated; the table
    must span every row's time (no extrapolation). For a sputter rate that changes
    with depth (the CAIT-modified layer sputters differently from the bulk).

- ``normalisation``: ``"bulk"`` (default) or ``"matrix"``. The *signal* of a species is
  its counts (bulk) or its counts divided, row by row, by the ``matrix`` column's counts
  (matrix: a signal of the glass network, e.g. ``BO2`` or ``11B``, that the exchange
  leaves unchanged; this removes primary-current drift). The native signal is then
  divided by its mean over the bulk rows, so the bulk is theta = 1.
- ``matrix``: the matrix column; required with, and only allowed with, ``"matrix"``;
  not a mass of ``masses``; its counts must be > 0 in every row.
- ``rsf`` (optional): {foreign species = relative sensitivity factor > 0}; then
  theta_f = rsf_f * signal_f / (native bulk mean signal), i.e. rsf_f is the native ion's
  sensitivity over the foreign ion's. Foreign ions without an RSF get the factors of the
  1:1 replacement (theta_native + sum theta_f = 1 over the replaced zone, the rows with
  theta_native < 0.5; see :mod:`cait_fem.analysis.measured`), fitted after the RSF
  species are subtracted. The native ion has no RSF (it defines the scale).
- ``bulk_from_nm`` (optional, >= 0): bulk rows are those with depth >= this [nm];
  default the deepest 20 % of the rows, at least 3.
- ``poisson_sigma`` (default false): true gives every fraction its 1-sigma from counting
  statistics, sigma_theta = factor * sqrt(var signal) with var(counts) = max(counts, 1)
  (a zero count still has an uncertainty of about one count) and, with a matrix,
  var(c / m) = var(c) / m^2 + c^2 / m^3. The bulk mean's own noise (a common factor) is
  left out. The fit then weights every point by it instead of ``theta_sigma``; real
  profiles scatter more than Poisson (dead time, beam and topography), which the
  reduced chi^2 shows.
- ``ignore`` (optional): columns of the file that are not used; their cells are not
  read (they may hold anything but a comma), each row still needs one.

:attr:`MeasuredProfile.normalisation` records how the fractions were made: the column
mapping, the depth scale (``sputter_rate_nm_s``, ``crater_depth_nm``, ``sputter_time_s``
and where it came from, or the table), the ``normalisation`` and ``signal``, the matrix
counts' range and bulk mean, ``native_bulk_mean_signal`` and ``native_factor``, the bulk
rows, per foreign species ``foreign_factor`` (theta_f = factor * signal_f) and
``foreign_method`` ("rsf" or "replacement"), ``rsf``, ``replaced_zone_rows`` and
``sigma`` ("poisson" or "none").
Nothing is clipped or repaired: every problem is a :class:`~cait_fem.errors.ConfigError`
naming the file, line, column, value and what is allowed (settings: the key, value and
what is allowed).
"""

from __future__ import annotations

import math
import os
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from cait_fem.errors import ConfigError
from cait_fem.fileio import check_row_count

from .measured import MIN_ROWS, MeasuredProfile, bulk_mean, bulk_rows, data_lines, parse_table, replacement_factors

__all__ = ["ToFSIMSSettings", "settings_from_dict", "read_tofsims_csv", "KEYS", "NORMALISATIONS"]

KEYS = ("file", "masses", "crater_depth_nm", "sputter_time_s", "depth_table", "normalisation", "matrix",
        "rsf", "bulk_from_nm", "ignore", "poisson_sigma")
NORMALISATIONS = ("bulk", "matrix")
TIME = "time_s"


@dataclass(frozen=True)
class ToFSIMSSettings:
    """How a raw ToF-SIMS file becomes fractions (keys in the module docstring)."""

    file: str                                   # as given (relative to the fit file)
    masses: dict[str, str]                      # column -> species
    crater_depth_nm: float | None = None        # [nm]
    sputter_time_s: float | None = None         # [s]; None: the last row's time_s
    depth_table: tuple[tuple[float, ...], tuple[float, ...]] | None = None  # (time_s, depth_nm)
    normalisation: str = "bulk"
    matrix: str | None = None                   # column of the matrix signal
    rsf: dict[str, float] = field(default_factory=dict)  # foreign species -> RSF [-]
    bulk_from_nm: float | None = None           # [nm]
    ignore: tuple[str, ...] = ()
    poisson_sigma: bool = False                 # 1-sigma of theta from counting statistics


def _fail(where: str, key: str, value, allowed: str):
    raise ConfigError(f"{where}: {key} = {value!r} is not allowed: {allowed}")


def _number(where: str, key: str, value, *, positive: bool) -> float:
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not ok or not (value > 0 if positive else value >= 0):
        _fail(where, key, value, "a finite number " + ("> 0" if positive else ">= 0"))
    return float(value)


def _strings(where: str, key: str, value) -> tuple[str, ...]:
    if not (isinstance(value, list) and all(isinstance(v, str) and v.strip() == v and v for v in value)):
        _fail(where, key, value, "a list of column names (non-empty strings without surrounding blanks)")
    return tuple(value)


def settings_from_dict(d, where: str, native: str, foreign: Sequence[str]) -> ToFSIMSSettings:
    """Validate the settings table ``d`` (``where`` names it in messages, e.g.
    ``experiment[0].tofsims``) for a case with species ``native`` and ``foreign``."""
    if not isinstance(d, dict):
        _fail(where, "table", d, "a TOML table [experiment.tofsims] (see cait_fem.analysis.tofsims)")
    for k in d:
        if k not in KEYS:
            raise ConfigError(f"{where}: {k!r} is not a known key (value {d[k]!r}); allowed: {', '.join(KEYS)}")
    species = [native, *foreign]
    if not isinstance(d.get("file"), str) or not d.get("file"):
        _fail(where, "file", d.get("file"), "a path to the raw ToF-SIMS CSV (time_s and one counts column per mass)")
    masses = d.get("masses")
    if not isinstance(masses, dict) or not masses:
        _fail(where, "masses", masses, f'a table {{column = species}}, e.g. {{ "7Li" = "{native}" }}, with the '
              f"species of the case: {', '.join(species)}")
    for column, name in masses.items():
        if column == TIME or column.strip() != column or not column:
            _fail(where, f"masses.{column!r}", name, f"a mass column name other than {TIME!r}, without surrounding "
                  "blanks")
        if name not in species:
            _fail(where, f"masses.{column!r}", name, f"a species of the case: {', '.join(species)}")
    if native not in masses.values():
        _fail(where, "masses", masses, f"a table that maps a column to the native species {native!r} (its bulk "
              "fixes theta = 1)")
    kwargs: dict = {"file": d["file"], "masses": dict(masses)}
    has_crater, has_table = "crater_depth_nm" in d, "depth_table" in d
    if has_crater == has_table:
        raise ConfigError(f"{where}: give exactly one depth scale, crater_depth_nm (a constant sputter rate) or "
                          f"depth_table (time_s -> depth_nm); {'both are' if has_crater else 'neither is'} given")
    if has_crater:
        kwargs["crater_depth_nm"] = _number(where, "crater_depth_nm", d["crater_depth_nm"], positive=True)
        if "sputter_time_s" in d:
            kwargs["sputter_time_s"] = _number(where, "sputter_time_s", d["sputter_time_s"], positive=True)
    else:
        if "sputter_time_s" in d:
            _fail(where, "sputter_time_s", d["sputter_time_s"], "only with crater_depth_nm (the table gives the "
                  "depth at every time)")
        kwargs["depth_table"] = _depth_table(where, d["depth_table"])
    mode = d.get("normalisation", "bulk")
    if mode not in NORMALISATIONS:
        _fail(where, "normalisation", mode, " or ".join(repr(m) for m in NORMALISATIONS))
    kwargs["normalisation"] = mode
    matrix = d.get("matrix")
    if mode == "matrix":
        if not isinstance(matrix, str) or not matrix or matrix.strip() != matrix or matrix == TIME:
            _fail(where, "matrix", matrix, "required with normalisation = 'matrix': the name of the matrix "
                  "signal's column (e.g. 'BO2')")
        if matrix in masses:
            _fail(where, "matrix", matrix, f"a column that is not one of masses (it is mapped to {masses[matrix]!r}): "
                  "the matrix signal must not change with the exchange")
        kwargs["matrix"] = matrix
    elif matrix is not None:
        _fail(where, "matrix", matrix, "only with normalisation = 'matrix'")
    rsf = d.get("rsf", {})
    if not isinstance(rsf, dict):
        _fail(where, "rsf", rsf, "a table {foreign species = relative sensitivity factor}")
    for name, value in rsf.items():
        if name == native:
            _fail(where, f"rsf.{name}", value, f"no RSF for the native species {native!r}: its bulk signal "
                  "defines the scale; give RSFs of foreign species")
        if name not in foreign:
            _fail(where, f"rsf.{name}", value, f"a foreign species of the case: {', '.join(foreign) or 'none'}")
        if name not in masses.values():
            _fail(where, f"rsf.{name}", value, f"an RSF of a species with a column in masses ({name!r} has none)")
        _number(where, f"rsf.{name}", value, positive=True)
    kwargs["rsf"] = {k: float(v) for k, v in rsf.items()}
    if "bulk_from_nm" in d:
        kwargs["bulk_from_nm"] = _number(where, "bulk_from_nm", d["bulk_from_nm"], positive=False)
    if "ignore" in d:
        ignore = _strings(where, "ignore", d["ignore"])
        for column in ignore:
            if column == TIME or column in masses or column == kwargs.get("matrix") or ignore.count(column) > 1:
                _fail(where, "ignore", list(ignore), f"columns that are used nowhere else, each once "
                      f"({column!r} is {'listed twice' if ignore.count(column) > 1 else 'used'})")
        kwargs["ignore"] = ignore
    if "poisson_sigma" in d:
        if not isinstance(d["poisson_sigma"], bool):
            _fail(where, "poisson_sigma", d["poisson_sigma"], "true or false")
        kwargs["poisson_sigma"] = d["poisson_sigma"]
    return ToFSIMSSettings(**kwargs)


def _depth_table(where: str, table) -> tuple[tuple[float, ...], tuple[float, ...]]:
    key = "depth_table"
    if not isinstance(table, dict) or set(table) != {TIME, "depth_nm"}:
        _fail(where, key, table, "a table { time_s = [...], depth_nm = [...] } of sputter time [s] and depth [nm]")
    columns = []
    for name in (TIME, "depth_nm"):
        values = table[name]
        if not (isinstance(values, list) and all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                 and math.isfinite(v) for v in values)):
            _fail(where, f"{key}.{name}", values, "a list of finite numbers")
        columns.append(tuple(float(v) for v in values))
    times, depths = columns
    if len(times) != len(depths) or len(times) < 2:
        _fail(where, key, table, f"as many time_s as depth_nm values, at least 2 pairs (got {len(times)} and "
              f"{len(depths)})")
    for name, values in ((TIME, times), ("depth_nm", depths)):
        if values[0] < 0:
            _fail(where, f"{key}.{name}[0]", values[0], "a value >= 0")
        for i in range(1, len(values)):
            if not values[i] > values[i - 1]:
                _fail(where, f"{key}.{name}[{i}]", values[i], f"greater than {name}[{i - 1}] = {values[i - 1]!r}: "
                      "the table must be strictly increasing")
    return times, depths


def _where(path, line: int, column: str) -> str:
    return f"{path}, line {line}, column {column!r}"


def _check_cell(path, line: int, name: str, value: float) -> None:
    if name == TIME and value < 0.0:
        raise ConfigError(f"{_where(path, line, name)}: sputter time {value!r} is negative; must be >= 0")
    if name != TIME and value < 0.0:
        raise ConfigError(f"{_where(path, line, name)}: counts {value!r} must be >= 0 (no background "
                          "subtraction below zero)")


def _check_header(path, line: int, names: list[str], s: ToFSIMSSettings) -> None:
    used = [TIME, *s.masses, *([s.matrix] if s.matrix else []), *s.ignore]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"{_where(path, line, name)}: duplicated column name; each column may appear once")
        if name not in used:
            raise ConfigError(f"{_where(path, line, name)}: column not named in the settings; allowed: "
                              f"{', '.join(used)} (map it in masses, or list it in ignore)")
    for name, key in [(TIME, "the sputter time [s]"), *((m, f"masses maps it to {s.masses[m]!r}") for m in s.masses),
                      *([(s.matrix, "the matrix signal")] if s.matrix else []), *((c, "listed in ignore")
                                                                                   for c in s.ignore)]:
        if name not in names:
            raise ConfigError(f"{_where(path, line, name)}: required column missing ({key}); the header is "
                              f"{','.join(names)!r}")


def _depth_nm(path, rows, time_s: np.ndarray, s: ToFSIMSSettings) -> tuple[np.ndarray, dict]:
    last = rows[-1][0]
    if s.crater_depth_nm is not None:
        end = float(time_s[-1]) if s.sputter_time_s is None else s.sputter_time_s
        if end < time_s[-1]:
            raise ConfigError(f"{_where(path, last, TIME)}: time {float(time_s[-1])!r} s is after sputtering "
                              f"stopped at sputter_time_s = {end!r}; sputter_time_s must be >= the last row's time")
        rate = s.crater_depth_nm / end  # end > 0: >= 3 strictly increasing times >= 0
        info = {"depth_scale": "crater", "crater_depth_nm": s.crater_depth_nm, "sputter_time_s": end,
                "sputter_time_from": "last row" if s.sputter_time_s is None else "sputter_time_s",
                "sputter_rate_nm_s": rate}
        return rate * time_s, info
    times, depths = s.depth_table
    for i, line in ((0, rows[0][0]), (-1, last)):
        t = float(time_s[i])
        if not times[0] <= t <= times[-1]:
            raise ConfigError(f"{_where(path, line, TIME)}: time {t!r} s is outside depth_table.time_s "
                              f"[{times[0]!r}, {times[-1]!r}]; the table must span every row (no extrapolation)")
    info = {"depth_scale": "table", "depth_table": {TIME: list(times), "depth_nm": list(depths)}}
    return np.interp(time_s, times, depths), info


def read_tofsims_csv(path, settings: ToFSIMSSettings, native: str, foreign: Sequence[str], *,
                     max_rows: int | None = None, max_rows_key: str = "max_rows") -> MeasuredProfile:
    """Read a raw ToF-SIMS file (format in the module docstring) with ``settings`` made by
    :func:`settings_from_dict` for the same species; ``path`` is the file (``settings.file``
    resolved by the caller). More than ``max_rows`` data rows is a ConfigError naming
    ``max_rows_key``."""
    s = settings
    foreign = list(foreign)
    lines = data_lines(path)
    if not lines:
        raise ConfigError(f"{path}: no header line, the file is empty or all comments; expected a header "
                          f"such as '{TIME},{','.join(s.masses)}'")
    header_line, header = lines[0]
    names = [c.strip() for c in header.split(",")]
    _check_header(path, header_line, names, s)
    rows = lines[1:]
    check_row_count(path, header_line, names, rows, MIN_ROWS, max_rows, max_rows_key)
    table = parse_table(path, rows, names, check=_check_cell, increasing=TIME, unit="time", skip=s.ignore)
    col = {name: table[:, i] for i, name in enumerate(names)}
    depth_nm, info = _depth_nm(path, rows, col[TIME], s)
    info.update(masses=dict(s.masses), ignored_columns=list(s.ignore), normalisation=s.normalisation,
                matrix_column=s.matrix)
    present = [sp for sp in [native, *foreign] if sp in s.masses.values()]
    columns = {sp: [m for m in s.masses if s.masses[m] == sp] for sp in present}
    label = {sp: "+".join(cs) for sp, cs in columns.items()}  # the column(s) named in errors
    signal = {sp: sum(col[m] for m in cs) for sp, cs in columns.items()}
    if s.matrix is not None:
        matrix = col[s.matrix]
        bad = np.flatnonzero(matrix <= 0.0)
        if bad.size:
            i = int(bad[0])
            raise ConfigError(f"{_where(path, rows[i][0], s.matrix)}: matrix counts {float(matrix[i])!r}; must be "
                              "> 0 in every row (every signal is divided by them)")
        signal = {sp: v / matrix for sp, v in signal.items()}
        info["signal"] = f"counts / {s.matrix} counts"
        info["matrix_counts_range"] = [float(matrix.min()), float(matrix.max())]
    else:
        info["signal"] = "counts"
    bulk = bulk_rows(path, rows, depth_nm, s.bulk_from_nm, column=TIME)
    what = "counts" if s.matrix is None else f"counts relative to {s.matrix}"
    mean = bulk_mean(path, rows, signal[native], bulk, label[native], what=what)
    if s.matrix is not None:
        info["matrix_bulk_mean_counts"] = float(np.mean(matrix[bulk]))
    theta = {native: signal[native] / mean}
    info.update(native_bulk_mean_signal=mean, native_factor=1.0 / mean, bulk_rows=int(bulk.sum()),
                bulk_depth_nm=[float(depth_nm[bulk][0]), float(depth_nm[-1])], bulk_from_nm=s.bulk_from_nm,
                rsf=dict(s.rsf), foreign_factor={}, foreign_method={})
    known = np.zeros_like(depth_nm)
    for sp in present[1:]:
        if sp in s.rsf:
            factor = s.rsf[sp] / mean
            theta[sp] = factor * signal[sp]
            known = known + theta[sp]
            info["foreign_factor"][sp], info["foreign_method"][sp] = factor, "rsf"
    rest = {sp: signal[sp] for sp in present[1:] if sp not in s.rsf}
    if rest:
        factors, zone_rows = replacement_factors(path, rows, theta[native], rest, native, label, known=known,
                                                 advice="give its relative sensitivity factor in rsf")
        for sp, factor in factors.items():
            theta[sp] = factor * signal[sp]
            info["foreign_factor"][sp], info["foreign_method"][sp] = factor, "replacement"
        info["replaced_zone_rows"] = zone_rows
    theta = {sp: theta[sp] for sp in present}  # native first, then the case's order
    sigma = {}
    if s.poisson_sigma:
        factor = {native: 1.0 / mean, **info["foreign_factor"]}
        for sp in present:
            counts = sum(col[m] for m in columns[sp])
            var = np.maximum(counts, 1.0)  # a zero count: about one count uncertain
            if s.matrix is not None:
                var = var / matrix**2 + counts**2 / matrix**3
            sigma[sp] = factor[sp] * np.sqrt(var)
    info["sigma"] = "poisson" if s.poisson_sigma else "none"
    depth_m = depth_nm * 1e-9
    for array in (depth_m, *theta.values(), *sigma.values()):
        array.setflags(write=False)
    return MeasuredProfile(source=os.fspath(path), depth_m=depth_m, theta=theta, sigma=sigma, layout="tofsims",
                           normalisation=info)
