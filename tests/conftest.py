"""Test-suite wide settings.

``pytest.approx`` defaults to an absolute tolerance of 1e-12 on top of the relative one, so
``D == approx(5.6e-21, rel=0.05)`` would accept any D below 1e-12 m^2/s: a test of
diffusion coefficients, densities per m^2 or currents that could never fail. Here the
absolute tolerance is zero unless a test asks for one (``abs=...``, e.g. for values that
should vanish)."""

import pytest

_pytest_approx = pytest.approx


def _approx(expected, rel=None, abs=None, nan_ok=False):  # noqa: A002 - pytest's own keyword
    if rel is None and abs is None:
        rel = 1e-6  # pytest's default relative tolerance
    return _pytest_approx(expected, rel=rel, abs=0.0 if abs is None else abs, nan_ok=nan_ok)


pytest.approx = _approx
