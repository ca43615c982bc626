"""cait_fem.physics.ops: numpy/UFL math namespaces and the UFL-compatible inverse normal CDF."""

import math

import numpy as np
import pytest
from scipy import special
from support.compare import approx

from cait_fem.physics.ops import NUMPY, balanced_sum, ndtri_approx, ufl_ops


def _ufl_point_evaluator():
    """A UFL scalar x on an interval mesh, evaluated at a point without DOLFINx: x is the
    spatial coordinate, so expr((value,)) evaluates expr at x = value."""
    basix_ufl = pytest.importorskip("basix.ufl")
    import ufl

    mesh = ufl.Mesh(basix_ufl.element("Lagrange", "interval", 1, shape=(1,)))
    return ufl, mesh, ufl.variable(ufl.SpatialCoordinate(mesh)[0])


def test_numpy_namespace_is_elementwise():
    a, b = np.array([1.0, 4.0]), np.array([2.0, 3.0])
    assert np.array_equal(NUMPY.where(NUMPY.lt(a, b), a, b), [1.0, 3.0])
    assert np.array_equal(NUMPY.max(a, b), [2.0, 4.0]) and np.array_equal(NUMPY.min(a, b), [1.0, 3.0])
    assert np.array_equal(NUMPY.gt(a, b), [False, True])
    assert NUMPY.ndtr(0.0) == 0.5 and math.isclose(NUMPY.erf(1.0), math.erf(1.0))
    assert math.isclose(NUMPY.ndtri(0.975), 1.959963984540054, rel_tol=1e-14)


def test_balanced_sum_equals_plain_sum():
    for n in (1, 2, 3, 7, 64, 119):
        terms = [float(k) ** 1.5 for k in range(n)]
        assert math.isclose(balanced_sum(terms), sum(terms), rel_tol=1e-14)


def test_ndtri_approx_matches_scipy_on_dense_grid_with_both_tails():
    lower = np.logspace(-20, np.log10(0.5), 20001)
    upper = 1.0 - np.logspace(-12, np.log10(0.5), 20001)
    central = np.linspace(0.3, 0.7, 10001)
    p = np.concatenate((lower, upper, central))
    x, ref = ndtri_approx(p, NUMPY), special.ndtri(p)
    away = np.abs(ref) > 1e-2
    assert np.max(np.abs(x[away] - ref[away]) / np.abs(ref[away])) < 1e-14
    assert np.max(np.abs(x - ref)) < 1e-14  # near p = 1/2, where x -> 0


def test_ndtri_approx_stays_finite_without_floating_point_errors():
    p = np.array([0.0, 1e-300, 1e-20, 0.02425, 0.5, 1.0 - 1e-12, 1.0, -1.0, 2.0])
    with np.errstate(all="raise"):
        x = ndtri_approx(p, NUMPY)
    assert np.all(np.isfinite(x))
    assert x[4] == 0.0


@pytest.mark.dolfinx
def test_ufl_ops_have_the_numpy_methods():
    pytest.importorskip("ufl")
    ops = ufl_ops()
    for name in ("exp", "log", "sqrt", "erf", "abs", "where", "lt", "gt", "max", "min", "ndtr", "ndtri"):
        assert callable(getattr(ops, name)) and callable(getattr(NUMPY, name))


@pytest.mark.dolfinx
def test_ufl_ndtri_value_and_exact_derivative():
    """The forms' ndtri is Acklam's approximation without refinement (1.15e-9 relative);
    d ndtri/dp = 1/phi(ndtri(p)) must hold for its UFL derivative to ~1e-6."""
    ufl, _, p = _ufl_point_evaluator()
    from ufl.algorithms import expand_derivatives

    ops = ufl_ops()
    expr = ops.ndtri(p)
    assert isinstance(expr, ufl.core.expr.Expr)
    slope = expand_derivatives(ufl.diff(expr, p))
    for value in (1e-20, 1e-9, 3e-3, 0.1, 0.5, 0.7, 0.99, 1.0 - 1e-12):
        x = special.ndtri(value)
        assert abs(expr((value,)) - x) <= 1.2e-9 * max(1.0, abs(x))
        exact = math.sqrt(2.0 * math.pi) * math.exp(0.5 * x * x)
        assert slope((value,)) == approx(exact, rel=1e-6)


@pytest.mark.dolfinx
def test_ufl_ndtr_is_the_normal_cdf():
    _, _, x = _ufl_point_evaluator()
    expr = ufl_ops().ndtr(x)
    for value in (-3.0, -0.4, 0.0, 1.7):
        assert expr((value,)) == approx(special.ndtr(value), rel=1e-14)
