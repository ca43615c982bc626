"""Measured ToF-SIMS depth profiles from CSV files, as fractions theta = n / n_bg.

File format
-----------
Comma-separated text, UTF-8 (a byte-order mark is allowed). Blank lines and lines whose
first non-blank character is ``#`` are ignored wherever they are. The first other line is
the header naming the columns; whitespace around every cell is stripped. Every later line
is one depth point; at least 3 are needed. ``<species>`` is a species name of the case
(the native ion or a foreign ion), spelled as in the case file, e.g. ``theta_Na``.

- ``depth_nm`` (required): depth below the front surface [nm], >= 0, strictly increasing.

Then exactly one of two layouts:

*fractions* -- the profile is already normalised:

- ``theta_<species>``: fraction n / n_bg [-] (1 = the native ion's bulk concentration).
  Allowed range [-0.1, 1.25] (:data:`THETA_RANGE`).
- ``sigma_<species>`` (optional): 1-sigma uncertainty of that fraction [-], > 0; only
  with the matching ``theta_<species>`` column.

*counts* -- raw ToF-SIMS counts, normalised on reading:

- ``counts_<native>`` (required) and any ``counts_<foreign>``: counts >= 0.
- The native counts are divided by their mean over the bulk rows, so the bulk is
  theta = 1. Bulk rows are those with depth_nm >= ``bulk_from_nm``; by default the
  deepest 20 % of the rows, at least 3.
- The foreign counts are multiplied by the factors c_f that best satisfy
  theta_native + sum_f c_f counts_f = 1 (least squares) over the replaced zone, the rows
  with theta_native < 0.5: there the foreign ions have replaced the native one 1:1
  (electroneutrality). With several foreign ions (a double CAIT profile) the factors are
  fitted together; this needs their counts to vary independently over the zone (e.g. Cs+
  at the surface, Rb+ deeper): a zone with fewer rows than foreign ions, counts that are
  proportional (no unique factors) or a factor <= 0 are refused.
- :attr:`MeasuredProfile.normalisation` keeps ``native_factor`` (1 / bulk mean),
  ``native_bulk_mean_counts``, ``bulk_rows``, ``bulk_depth_nm`` [first, last],
  ``bulk_from_nm`` (None = default), ``foreign_factor`` {species: c} and
  ``replaced_zone_rows``. The resulting fractions are not range-checked: they are the
  measured counts, scaled (a noisy bulk point may be 1.3).

Example (fractions)::

    # K+ into a sodium glass, 2 h at 100 uA
    depth_nm, theta_Na, sigma_Na, theta_K
    0.5,      0.08,     0.02,     0.95
    1.0,      0.10,     0.02,     0.91
    ...

Example (counts; the native column alone is also a valid file)::

    depth_nm,counts_Na,counts_K
    0.0,412,18050
    0.7,388,18233
    ...

Every problem is a :class:`~cait_fem.errors.ConfigError` naming the file, the line number
(counting comment and blank lines), the column, the value and what is allowed (an
unreadable or empty file has no line to name). Nothing is clipped or repaired.
"""

from __future__ import annotations

import math
import os
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cait_fem.errors import ConfigError
from cait_fem.fileio import check_row_count, csv_data_lines, csv_where, format_csv, parse_csv_table, write_text_atomic

__all__ = ["MeasuredProfile", "read_profile_csv", "write_profile_csv", "THETA_RANGE",
           "MIN_ROWS", "BULK_FRACTION", "data_lines", "parse_table", "bulk_rows", "bulk_mean",
           "replacement_factors"]

# Fractions beyond [0, 1] are real, within limits: SIMS noise scatters around both ends,
# and slow foreign ions pile up in the surface Debye layer ~10 % above n_bg. Values far
# outside mean a wrong column, unit or normalisation.
THETA_RANGE = (-0.1, 1.25)
MIN_ROWS = 3
# Default bulk for counts normalisation: the deepest fifth of the rows (at least MIN_ROWS).
BULK_FRACTION = 0.2

PREFIXES = ("theta_", "sigma_", "counts_")


@dataclass(frozen=True)
class MeasuredProfile:
    """One measured depth profile; arrays are read-only."""
    source: str                      # the path as given, for messages
    depth_m: np.ndarray              # strictly increasing, >= 0 [m]
    theta: dict[str, np.ndarray]     # species -> n / n_bg [-], species present in the file
    sigma: dict[str, np.ndarray]     # species -> 1-sigma uncertainty of theta [-]; may be empty
    layout: str                      # "fractions", "counts" or "tofsims" (cait_fem.analysis.tofsims)
    normalisation: dict              # counts/tofsims: factors, bulk rows, depth scale; {} otherwise


_where = csv_where


def data_lines(path) -> list[tuple[int, str]]:
    """(1-based line number, text) of every line that is not blank or a comment."""
    return csv_data_lines(path, "profile file")


def _check_header(path, line: int, names: list[str], native: str, foreign: Sequence[str]) -> str:
    """Validate the column names; return the layout."""
    species = [native, *foreign]
    allowed = ["depth_nm"] + [p + s for p in PREFIXES for s in species]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"{_where(path, line, name)}: duplicated column name; each "
                              "column may appear once")
        if name not in allowed:
            raise ConfigError(f"{_where(path, line, name)}: unknown column; allowed: "
                              + ", ".join(allowed))
    if "depth_nm" not in names:
        raise ConfigError(f"{_where(path, line, 'depth_nm')}: required column missing; the "
                          f"header is {','.join(names)!r}")
    for name in names:
        if name.startswith("sigma_") and "theta_" + name[6:] not in names:
            raise ConfigError(f"{_where(path, line, name)}: uncertainty without its fraction; "
                              f"allowed only together with column theta_{name[6:]}")
    theta = [n for n in names if n.startswith("theta_")]
    counts = [n for n in names if n.startswith("counts_")]
    if not theta and not counts:
        wanted = ", ".join(f"{p}{s}" for s in species for p in ("theta_", "counts_"))
        raise ConfigError(f"{_where(path, line, f'theta_{native}')}: no profile column; "
                          f"need at least one of {wanted}")
    if theta and counts:
        raise ConfigError(f"{_where(path, line, counts[0])}: theta_ and counts_ columns "
                          f"cannot be mixed ({theta[0]} is also present); use one layout")
    if counts:
        if f"counts_{native}" not in names:
            raise ConfigError(f"{_where(path, line, f'counts_{native}')}: required in the "
                              "counts layout (the native ion's counts fix the bulk, theta = 1)")
        return "counts"
    return "fractions"


def _check_value(path, line: int, name: str, value: float) -> None:
    lo, hi = THETA_RANGE
    if name == "depth_nm" and value < 0.0:
        raise ConfigError(f"{_where(path, line, name)}: depth {value!r} is negative; "
                          "must be >= 0 (0 = front surface)")
    if name.startswith("theta_") and not lo <= value <= hi:
        raise ConfigError(f"{_where(path, line, name)}: fraction {value!r} is far outside "
                          f"[0, 1]; allowed range [{lo}, {hi}]")
    if name.startswith("sigma_") and not value > 0.0:
        raise ConfigError(f"{_where(path, line, name)}: uncertainty {value!r} must be > 0")
    if name.startswith("counts_") and value < 0.0:
        raise ConfigError(f"{_where(path, line, name)}: counts {value!r} must be >= 0")


def parse_table(path, rows: list[tuple[int, str]], names: list[str], check=None,
                increasing: str = "depth_nm", unit: str = "depth", skip=()) -> np.ndarray:
    """The data as an array (row, column) (:func:`cait_fem.fileio.parse_csv_table`), every
    cell passed to ``check(path, line, column, value)`` (default: the checks of this
    layout); the column ``increasing`` strictly increasing."""
    return parse_csv_table(path, rows, names, _check_value if check is None else check, increasing, unit, skip)


def bulk_rows(path, rows, depth_nm: np.ndarray, bulk_from_nm: float | None,
              column: str = "depth_nm") -> np.ndarray:
    """Boolean mask of the bulk rows: depth_nm >= ``bulk_from_nm`` [nm], or by default the
    deepest BULK_FRACTION of the rows (at least MIN_ROWS). ``column`` is named in errors."""
    if bulk_from_nm is None:
        n_bulk = max(MIN_ROWS, math.ceil(BULK_FRACTION * depth_nm.size))
        return np.arange(depth_nm.size) >= depth_nm.size - n_bulk
    if not math.isfinite(bulk_from_nm):
        raise ConfigError(f"bulk_from_nm = {float(bulk_from_nm)!r} is not allowed: must "
                          "be finite")
    bulk = depth_nm >= bulk_from_nm
    if not bulk.any():
        raise ConfigError(f"{_where(path, rows[-1][0], column)}: no bulk rows, the "
                          f"deepest point {float(depth_nm[-1])!r} nm is above bulk_from_nm = "
                          f"{float(bulk_from_nm)!r}; must be <= the deepest depth")
    return bulk


def bulk_mean(path, rows, signal: np.ndarray, bulk: np.ndarray, column: str,
              what: str = "counts") -> float:
    """Mean of ``signal`` over the ``bulk`` rows; refused unless > 0."""
    first_bulk_line = rows[int(np.flatnonzero(bulk)[0])][0]
    mean = float(np.mean(signal[bulk]))
    if mean <= 0.0:
        raise ConfigError(f"{_where(path, first_bulk_line, column)}: the bulk rows (lines "
                          f"{first_bulk_line}-{rows[-1][0]}) have no {what}; cannot normalise")
    return mean


def replacement_factors(path, rows, theta_native: np.ndarray, signals: dict[str, np.ndarray],
                        native: str, columns: Mapping[str, str], known=None,
                        advice: str = "give fractions (theta_ columns)") -> tuple[dict[str, float], int]:
    """Factors c_f > 0 with theta_native + known + sum_f c_f signals_f = 1 (least squares)
    over the replaced zone, the rows with theta_native < 0.5 (1:1 replacement,
    electroneutrality). ``signals``: foreign species -> counts (or counts per matrix
    counts); ``columns``: species -> the column named in errors; ``known``: the summed
    fractions of foreign ions normalised otherwise (None: 0). Returns the factors and the
    number of zone rows."""
    foreign = list(signals)
    zone = theta_native < 0.5
    first = columns[foreign[0]]
    if not zone.any():
        i = int(np.argmin(theta_native))
        raise ConfigError(f"{_where(path, rows[i][0], first)}: cannot normalise the "
                          f"foreign ion: no replaced zone, the lowest native fraction is "
                          f"{theta_native[i]:.3g} (needs rows with theta_{native} < 0.5)")
    zone_lines = [rows[i][0] for i in np.flatnonzero(zone)]
    for name in foreign:
        if not np.any(signals[name][zone]):
            raise ConfigError(f"{_where(path, zone_lines[0], columns[name])}: cannot normalise the "
                              f"foreign ion: zero counts in the replaced zone (theta_{native} "
                              f"< 0.5, lines {zone_lines[0]}-{zone_lines[-1]})")
    if len(zone_lines) < len(foreign):
        raise ConfigError(f"{_where(path, zone_lines[0], first)}: cannot normalise {len(foreign)} "
                          f"foreign ions from {len(zone_lines)} row(s) of the replaced zone "
                          f"(theta_{native} < 0.5); needs at least one row per foreign ion")
    A = np.column_stack([signals[name][zone] for name in foreign])
    scale = np.linalg.norm(A, axis=0)
    singular = np.linalg.svd(A / scale, compute_uv=False)
    if singular[-1] < 1e-8 * singular[0]:
        raise ConfigError(f"{_where(path, zone_lines[0], first)}: cannot normalise the foreign ions "
                          f"{', '.join(foreign)} together: their counts are proportional over the "
                          f"replaced zone (lines {zone_lines[0]}-{zone_lines[-1]}), so no unique factors "
                          f"satisfy theta_native + sum_f c_f counts_f = 1; {advice}")
    rest = 1.0 - theta_native[zone] - (0.0 if known is None else np.asarray(known)[zone])
    factors = np.linalg.lstsq(A / scale, rest, rcond=None)[0] / scale
    out = {}
    for name, factor in zip(foreign, factors):
        if not factor > 0.0:
            raise ConfigError(f"{_where(path, zone_lines[0], columns[name])}: normalising the foreign "
                              f"ions over the replaced zone (lines {zone_lines[0]}-{zone_lines[-1]}) gives "
                              f"this one the factor {factor:.3g}, not > 0: its counts do not account for "
                              f"the missing native ions; {advice}")
        out[name] = float(factor)
    return out, int(zone.sum())


def _normalise_counts(path, rows, depth_nm, counts: dict[str, np.ndarray], native: str,
                      bulk_from_nm: float | None) -> tuple[dict[str, np.ndarray], dict]:
    bulk = bulk_rows(path, rows, depth_nm, bulk_from_nm)
    mean = bulk_mean(path, rows, counts[native], bulk, f"counts_{native}")
    theta = {native: counts[native] / mean}
    info = {"native_factor": 1.0 / mean, "native_bulk_mean_counts": mean,
            "bulk_rows": int(bulk.sum()),
            "bulk_depth_nm": [float(depth_nm[bulk][0]), float(depth_nm[-1])],
            "bulk_from_nm": bulk_from_nm, "foreign_factor": {}}
    foreign = {name: c for name, c in counts.items() if name != native}
    if not foreign:
        return theta, info
    factors, zone_rows = replacement_factors(path, rows, theta[native], foreign, native,
                                             {name: f"counts_{name}" for name in foreign})
    for name, factor in factors.items():
        theta[name] = factor * counts[name]
    info["foreign_factor"] = factors
    info["replaced_zone_rows"] = zone_rows
    return theta, info


def read_profile_csv(path, native: str, foreign: Sequence[str], *,
                     bulk_from_nm: float | None = None, max_rows: int | None = None,
                     max_rows_key: str = "max_rows") -> MeasuredProfile:
    """Read and validate a measured profile (format in the module docstring). ``native``
    and ``foreign`` are the case's species names; ``bulk_from_nm`` only matters for the
    counts layout. More than ``max_rows`` data rows (None: no limit) is a ConfigError
    naming ``max_rows_key``, the setting that raises the limit; it is raised before the
    rows are parsed."""
    foreign = list(foreign)
    if native in foreign or len(set(foreign)) != len(foreign):
        raise ValueError(f"species names must be distinct: native {native!r}, foreign {foreign}")
    lines = data_lines(path)
    if not lines:
        raise ConfigError(f"{path}: no header line, the file is empty or all comments; "
                          f"expected a header such as 'depth_nm,theta_{native}'")
    header_line, header = lines[0]
    names = [c.strip() for c in header.split(",")]
    layout = _check_header(path, header_line, names, native, foreign)
    rows = lines[1:]
    check_row_count(path, header_line, names, rows, MIN_ROWS, max_rows, max_rows_key)
    table = parse_table(path, rows, names)
    columns = {name: table[:, i] for i, name in enumerate(names)}
    depth_nm = columns["depth_nm"]
    sigma, info = {}, {}
    if layout == "counts":
        counts = {s: columns[f"counts_{s}"] for s in [native, *foreign] if f"counts_{s}" in columns}
        theta, info = _normalise_counts(path, rows, depth_nm, counts, native, bulk_from_nm)
    else:
        theta = {s: columns[f"theta_{s}"] for s in [native, *foreign] if f"theta_{s}" in columns}
        sigma = {s: columns[f"sigma_{s}"] for s in theta if f"sigma_{s}" in columns}
    depth_m = depth_nm * 1e-9
    for array in (depth_m, *theta.values(), *sigma.values()):
        array.setflags(write=False)
    return MeasuredProfile(source=os.fspath(path), depth_m=depth_m, theta=theta, sigma=sigma,
                           layout=layout, normalisation=info)


def write_profile_csv(path, depth_m, theta: Mapping[str, np.ndarray],
                      sigma: Mapping[str, np.ndarray] | None = None,
                      comments: Sequence[str] = ()) -> Path:
    """Write a profile in the fractions layout (atomically): ``comments`` as ``#`` lines,
    then depth_nm, and theta_<species> each followed by its sigma_<species> if given."""
    sigma = dict(sigma or {})
    extra = set(sigma) - set(theta)
    if extra:
        raise ValueError(f"sigma given for {sorted(extra)} without theta")
    header, cols = ["depth_nm"], [np.asarray(depth_m, dtype=float) * 1e9]
    for name, values in theta.items():
        header.append(f"theta_{name}")
        cols.append(np.asarray(values, dtype=float))
        if name in sigma:
            header.append(f"sigma_{name}")
            cols.append(np.asarray(sigma[name], dtype=float))
    comment_text = "".join(f"# {line}\n" for c in comments
                           for line in (str(c).splitlines() or [""]))
    return write_text_atomic(path, comment_text + format_csv(header, cols))
