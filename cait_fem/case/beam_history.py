"""A measured beam current history j(t) (docs/model.md section 4.1): the samples, their
interpolation, the delivered charge and the times the time stepper lands on. Pure.

Interpolation
-------------
The samples (t_i, j_i) of a beam current log are joined by straight lines: j(t) is
piecewise linear, continuous, and the delivered charge Q(t) = int_0^t j dt [C/m^2] is its
exact (piecewise quadratic) integral. A beam switched on or off appears in the log as two
consecutive samples, one of them 0; give them close together (e.g. 1 ms apart) for an
abrupt switch. Beyond the last sample j is not defined: the history must reach
``run.t_end_s``.

Breaks (times the time stepper lands on, :func:`history_breaks`)
-----------------------------------------------------------------
Not every sample: a log of thousands of samples would force thousands of steps. The model
receives the beam as the BDF derivative of the exact Q(t) at each step (see
:meth:`cait_fem.fem.forms.NPPForms.set_time`), so the charge it receives equals Q at every
step to round-off whatever the samples between steps do. The steps land only on

* the two samples around every switch of the beam on or off (a zero sample next to a
  non-zero one), unless the beam is off too briefly to miss :data:`CHARGE_TOLERANCE` of
  the log's charge (a noise dip to 0); after a switch-off the stepper restarts at order 1 (as after a voltage
  jump), so that no BDF formula reaches back across it and the model's current after it
  is exactly 0;
* the corners of the piecewise-linear approximation of Q(t) to within
  :data:`CHARGE_TOLERANCE` of the log's total charge (Douglas-Peucker): the level
  changes of the current, not its sample-to-sample noise, which integrates to a
  vanishing wiggle of Q.

Between breaks a step may span many samples; its BDF derivative is then that of the
charge the samples deliver. A multi-step formula's derivative of a current that falls
steeply between two steps not landed on can be transiently negative (by a fraction of
the current before the fall); its integral is still exactly Q. A noisy log needs no
smoothing: noise does not force steps.
"""

from __future__ import annotations

import math

import numpy as np

from cait_fem.errors import ConfigError
from cait_fem.fileio import csv_data_lines, csv_where, parse_csv_table

#: the breaks approximate Q(t) piecewise linearly to this fraction of the log's total charge
CHARGE_TOLERANCE = 0.01
#: relative distance below a sample time within which a time counts as on the sample
SNAP_RTOL = 1e-12
#: the columns of a beam history CSV: time, then one of the two current columns
TIME_COLUMN = "time_s"
CURRENT_COLUMNS = ("current_density_A_m2", "current_A")


def check_history(times, values, times_key: str, values_key: str) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Validate a history given as arrays (case-file keys ``times_key``, ``values_key``):
    at least 2 samples, finite numbers, times strictly increasing from 0, currents >= 0.
    Returns them as tuples of floats."""
    for key, arr in ((times_key, times), (values_key, values)):
        if not isinstance(arr, (list, tuple, np.ndarray)) or len(arr) < 2:
            raise ConfigError(f"front.{key} = {arr!r} is not allowed: an array of at least 2 finite numbers")
        for i, v in enumerate(arr):
            ok = isinstance(v, (int, float, np.floating, np.integer)) and not isinstance(v, bool)
            if not (ok and math.isfinite(v)):
                raise ConfigError(f"front.{key}[{i}] = {v!r} is not allowed: must be a finite number")
    if len(times) != len(values):
        raise ConfigError(f"front.{values_key} = {list(values)!r} is not allowed: one value per entry of "
                          f"front.{times_key} ({len(times)})")
    t = tuple(float(v) for v in times)
    j = tuple(float(v) for v in values)
    if t[0] != 0:
        raise ConfigError(f"front.{times_key}[0] = {times[0]!r} is not allowed: must be 0 (the history starts "
                          "at t = 0)")
    for i in range(1, len(t)):
        if not t[i] > t[i - 1]:
            raise ConfigError(f"front.{times_key}[{i}] = {times[i]!r} is not allowed: must be greater than "
                              f"front.{times_key}[{i - 1}] = {times[i - 1]!r} (strictly increasing)")
    for i, v in enumerate(j):
        if v < 0:
            raise ConfigError(f"front.{values_key}[{i}] = {values[i]!r} is not allowed: must be >= 0")
    return t, j


def current_at(t_s, times, values):
    """j(t) [A/m^2] at ``t_s`` [s] (scalar or array): linear between samples, the end
    values outside them."""
    out = np.interp(t_s, times, values)
    return float(out) if np.ndim(out) == 0 else out


def charge_at(t_s, times, values):
    """Q(t) = int_0^t j dt [C/m^2] of the linear interpolant at ``t_s`` [s] (scalar or
    array; t <= 0 gives 0, beyond the last sample j is held at its last value)."""
    t_arr = np.asarray(times, dtype=float)
    j_arr = np.asarray(values, dtype=float)
    cumulative = np.concatenate(([0.0], np.cumsum(0.5 * (j_arr[1:] + j_arr[:-1]) * np.diff(t_arr))))
    t = np.clip(np.asarray(t_s, dtype=float), 0.0, None)
    # a time within SNAP_RTOL below a sample counts as on it: step times reach the
    # samples through a round trip to the solver's time scale, and Q evaluated a rounding
    # before a switch-off on the ramp's quadratic would differ in the last digits from Q
    # after it, which the BDF derivative over 1e-9 s steps would turn into a current
    i = np.clip(np.searchsorted(t_arr, t * (1.0 + SNAP_RTOL), side="right") - 1, 0, len(t_arr) - 1)
    last = i == len(t_arr) - 1
    i_next = np.where(last, i, i + 1)
    span = np.where(last, 1.0, t_arr[i_next] - t_arr[i])
    slope = np.where(last, 0.0, (j_arr[i_next] - j_arr[i]) / span)
    dt = np.maximum(t - t_arr[i], 0.0)
    out = cumulative[i] + dt * (j_arr[i] + 0.5 * slope * dt)
    return float(out) if np.ndim(out) == 0 else out


def history_breaks(times, values) -> tuple[tuple[float, bool], ...]:
    """(time [s], restart) of the samples the time stepper lands on (module doc): both
    samples around every switch of the beam on or off that misses more than
    CHARGE_TOLERANCE of the log's charge (restart: True at the first zero sample after a
    non-zero one), and the corners of the piecewise-linear approximation of Q(t) within
    CHARGE_TOLERANCE of it (Douglas-Peucker): the level changes of j, not its
    sample-to-sample noise. t = 0 is not listed."""
    t = np.asarray(times, dtype=float)
    j = np.asarray(values, dtype=float)
    found: dict[float, bool] = {}
    q = charge_at(t, times, values)
    tolerance = CHARGE_TOLERANCE * float(q[-1])
    on = j > 0
    off = np.flatnonzero(~on)
    # runs of zero samples [first, last]; one too short to miss a tolerance's worth of
    # charge (a noise dip to 0) is left to the BDF derivative like any other sample
    for run in np.split(off, np.flatnonzero(np.diff(off) > 1) + 1) if off.size else ():
        before, after = run[0] - 1, run[-1] + 1
        lo, hi = max(before, 0), min(after, len(t) - 1)
        missed = (t[hi] - t[lo]) * max(j[lo], j[hi])
        if missed <= tolerance:
            continue
        if before >= 0:  # switched off: restart at the first zero sample
            found.setdefault(float(t[before]), False)
            found[float(t[run[0]])] = True
        if after < len(t):  # switched on
            found.setdefault(float(t[run[-1]]), False)
            found.setdefault(float(t[after]), False)
    stack = [(0, len(t) - 1)]
    while stack and tolerance > 0:
        a, b = stack.pop()
        if b - a < 2:
            continue
        line = q[a] + (q[b] - q[a]) * (t[a + 1:b] - t[a]) / (t[b] - t[a])
        deviation = np.abs(q[a + 1:b] - line)
        k = int(np.argmax(deviation))
        if deviation[k] > tolerance:
            m = a + 1 + k
            found.setdefault(float(t[m]), False)
            stack += [(a, m), (m, b)]
    found.pop(0.0, None)
    return tuple(sorted(found.items()))


def read_history_csv(path, spot_area_m2: float | None = None) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Read a beam current history CSV: (times [s], current densities [A/m^2]).

    Comma-separated UTF-8 text; blank lines and lines starting with ``#`` are skipped. The
    first other line is the header: ``time_s`` and one of ``current_density_A_m2``
    [A/m^2] or ``current_A`` [A] (then divided by ``spot_area_m2`` [m^2], which is required
    with it and refused without it). At least 2 rows; every cell a finite number; time
    strictly increasing from 0; currents >= 0. Every problem is a ConfigError naming the
    file, line, column, value and what is allowed."""
    rows = csv_data_lines(path, "beam history file")
    if not rows:
        raise ConfigError(f"{path}: no header and no data; expected a header line "
                          f"'{TIME_COLUMN},{CURRENT_COLUMNS[0]}' (or '{TIME_COLUMN},{CURRENT_COLUMNS[1]}') and rows")
    header_line, header = rows[0]
    names = [c.strip() for c in header.split(",")]
    allowed = (TIME_COLUMN,) + CURRENT_COLUMNS
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"{csv_where(path, header_line, name)}: duplicated column name; "
                              "each column may appear once")
        if name not in allowed:
            raise ConfigError(f"{csv_where(path, header_line, name)}: unknown column; allowed: {', '.join(allowed)}")
    if TIME_COLUMN not in names:
        raise ConfigError(f"{csv_where(path, header_line, TIME_COLUMN)}: required column missing; the header is "
                          f"{','.join(names)!r}")
    currents = [n for n in names if n in CURRENT_COLUMNS]
    if len(currents) != 1:
        raise ConfigError(f"{path}, line {header_line}: the header {','.join(names)!r} needs exactly one of the "
                          f"columns {', '.join(CURRENT_COLUMNS)}")
    column = currents[0]
    if column == "current_A":
        ok = isinstance(spot_area_m2, (int, float)) and not isinstance(spot_area_m2, bool)
        if not (ok and math.isfinite(spot_area_m2) and spot_area_m2 > 0):
            raise ConfigError(f"front.spot_area_m2 = {spot_area_m2!r} is not allowed: a finite number > 0 [m^2] is "
                              f"required with the column current_A of {path} (current density = current_A / "
                              "spot_area_m2)")
    elif spot_area_m2 is not None:
        raise ConfigError(f"front.spot_area_m2 = {spot_area_m2!r} is not allowed: only with a current_A column "
                          f"({path} gives {column})")
    data = rows[1:]
    if len(data) < 2:
        raise ConfigError(f"{path}: {len(data)} data row(s); a beam history needs at least 2 (from t = 0 to "
                          "run.t_end_s or beyond)")

    def check(path, line, name, value):
        if name == column and value < 0:
            raise ConfigError(f"{csv_where(path, line, column)}: current {value!r} is negative; must be >= 0 (a beam "
                              "delivers ions)")

    table = parse_csv_table(path, data, names, check, increasing=TIME_COLUMN, unit="time")
    times, currents = table[:, names.index(TIME_COLUMN)], table[:, names.index(column)]
    if times[0] != 0:
        raise ConfigError(f"{csv_where(path, data[0][0], TIME_COLUMN)}: the first time {float(times[0])!r} is not "
                          "allowed; must be 0 (the history starts at t = 0)")
    if column == "current_A":
        currents = currents / spot_area_m2
    times, values = tuple(float(t) for t in times), tuple(float(j) for j in currents)
    return tuple(times), tuple(values)
