"""Validation helpers of fit files: each raises a ConfigError naming where in the file,
the key, the value and what is allowed."""

from __future__ import annotations

import math

from cait_fem.errors import ConfigError


def fail(where: str, key: str, value, allowed: str):
    """Raise the ConfigError "``where``: ``key`` = ``value`` is not allowed: ``allowed``"."""
    raise ConfigError(f"{where}: {key} = {value!r} is not allowed: {allowed}")


def number(where, key, value, *, low=-math.inf, high=math.inf, open_low=False) -> float:
    """``value`` as a float if it is a finite number in [low, high] (or (low, high]), else ConfigError."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    ok = ok and (value > low if open_low else value >= low) and value <= high
    if not ok:
        bound = f"> {low}" if open_low else (f">= {low}" if math.isfinite(low) else "")
        fail(where, key, value, f"a finite number {bound}".strip() + (f", <= {high}" if math.isfinite(high) else ""))
    return float(value)


def known_keys(where: str, d, allowed) -> dict:
    """``d`` if it is a table with keys from ``allowed`` only, else ConfigError."""
    if not isinstance(d, dict):
        fail(where, "table", d, "must be a TOML table")
    for k in d:
        if k not in allowed:
            raise ConfigError(f"{where}: {k!r} is not a known key (value {d[k]!r}); allowed: {', '.join(allowed)}")
    return d
