"""Validation of case data: each check raises a ConfigError naming the field, the value
and what is allowed, so that a bad value is reported before any mesh or form is built."""

from __future__ import annotations

import math

from cait_fem.errors import ConfigError


def require(condition: bool, field_name: str, value, allowed: str) -> None:
    """ConfigError "``field_name`` = ``value`` is not allowed: ``allowed``" unless ``condition``."""
    if not condition:
        raise ConfigError(f"{field_name} = {value!r} is not allowed: {allowed}")


def is_real(value) -> bool:
    """A real number (int or float), not a bool."""
    # bool is an int subclass: true would silently mean 1 (1 A/m^2, 1 m, one step)
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def is_count(value) -> bool:
    """An int, not a bool."""
    return isinstance(value, int) and not isinstance(value, bool)


def positive(field_name: str, value) -> None:
    """``value`` is a finite real number > 0."""
    ok = is_real(value)
    require(ok and math.isfinite(value) and value > 0, field_name, value, "must be a finite number > 0")


def fraction(field_name: str, value, *, open_low=False, open_high=False) -> None:
    """``value`` is a finite real number in [0, 1] (open at either end on request)."""
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    lo_ok = ok and (value > 0 if open_low else value >= 0)
    hi_ok = ok and (value < 1 if open_high else value <= 1)
    interval = ("(" if open_low else "[") + "0, 1" + (")" if open_high else "]")
    require(lo_ok and hi_ok, field_name, value, f"must lie in {interval}")
