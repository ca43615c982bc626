"""Comparisons with explicit tolerances.

``pytest.approx`` adds an absolute tolerance of 1e-12 to the relative one, so
``D == pytest.approx(5.6e-21, rel=0.05)`` would accept any D below 1e-12 m^2/s: a test of
diffusion coefficients (m^2/s), densities per m^2 or currents that could never fail. Tests
compare through ``approx`` below, whose absolute tolerance is zero unless a test asks for
one (``abs=...``, e.g. for values that should vanish)."""

import pytest

DEFAULT_REL = 1e-6  # pytest's own default relative tolerance


def approx(expected, rel=None, abs=None, nan_ok=False):  # noqa: A002 - pytest's own keyword
    """``pytest.approx`` with ``abs=0`` by default. ``rel`` defaults to 1e-6 when neither
    tolerance is given; with only ``abs`` given the comparison is absolute only (as in
    pytest). Tolerances are in the units of ``expected``."""
    if rel is None and abs is None:
        rel = DEFAULT_REL
    return pytest.approx(expected, rel=rel, abs=0.0 if abs is None else abs, nan_ok=nan_ok)
