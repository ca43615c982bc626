"""cait_fem.analysis.sims_resolution: exact Gaussian depth-resolution broadening with the kernel cut at the surface."""

import math

import numpy as np
import pytest
from scipy.special import erfcx, ndtr

from cait_fem.analysis import sims_resolution as sims

NM = 1e-9


def graded_mesh(n=2000, h0=0.01 * NM, growth=1.0045):
    """0.01 nm at the surface growing geometrically to ~80 nm spacing, ~18 um deep."""
    return np.concatenate(([0.0], np.cumsum(h0 * growth ** np.arange(n - 1))))


def reference_quadrature(x, f, sigma, z):
    """Brute force: composite 8-point Gauss-Legendre on a grid of spacing sigma / 40 that
    contains every model node, over [max(0, z - 12 sigma), max(z, 0) + 12 sigma]."""
    gx, gw = np.polynomial.legendre.leggauss(8)
    lo, hi = max(0.0, z - 12 * sigma), max(z, 0.0) + 12 * sigma
    breaks = np.union1d(np.linspace(lo, hi, 24 * 40 + 1), x[(x > lo) & (x < hi)])
    a, b = breaks[:-1, None], breaks[1:, None]
    xq = (0.5 * (a + b) + 0.5 * (b - a) * gx).ravel()
    wq = (0.5 * (b - a) * gw).ravel()
    g = np.exp(-0.5 * ((xq - z) / sigma) ** 2)
    return np.sum(wq * g * np.interp(xq, x, f)) / np.sum(wq * g)


def test_zero_sigma_is_linear_interpolation():
    x = np.array([0.0, 1.0, 3.0, 7.0]) * NM
    f = np.array([0.2, 0.9, 0.4, 1.0])
    at = np.array([-5.0, 0.0, 0.5, 2.0, 3.0, 6.9, 7.0, 50.0]) * NM
    np.testing.assert_array_equal(sims.broaden(x, f, 0.0, at), np.interp(at, x, f))


def test_constant_profile_stays_constant_also_at_and_outside_the_surface():
    x = graded_mesh(300)
    at = np.concatenate((np.linspace(-30, 30, 61) * NM, [-1e-6, 1e-3]))
    for sigma in (0.1 * NM, 3 * NM, 1e-6):
        np.testing.assert_allclose(sims.broaden(x, np.full(x.size, 0.7), sigma, at), 0.7,
                                   rtol=0, atol=1e-14)


def test_linear_profile_far_from_surface_is_unchanged():
    x = np.concatenate(([0.0], np.sort(np.random.default_rng(1).uniform(0, 10e-6, 200)), [20e-6]))
    f = 0.1 + 4e4 * x  # 0.1 .. 0.9 over the model
    sigma = 5 * NM
    at = np.linspace(8 * sigma, 15e-6, 101)
    np.testing.assert_allclose(sims.broaden(x, f, sigma, at), 0.1 + 4e4 * at, rtol=0, atol=1e-13)


def test_linear_profile_near_and_outside_surface_gives_truncated_normal_mean():
    """For f = a + b x on a segment much longer than sigma, the result is a + b E[x | x >= 0]
    for x ~ N(z, sigma^2): E = z + sigma phi(t) / Q(t), t = -z / sigma; phi / Q written with
    erfcx so it stays exact far outside (z = -60 sigma)."""
    sigma = 2 * NM
    x, f = np.array([0.0, 1e-6]), np.array([0.3, 0.8])
    z = np.concatenate((np.linspace(-60, 20, 81) * sigma, [-1e-3]))
    t = -z / sigma
    mean = z + sigma * math.sqrt(2 / math.pi) / erfcx(t / math.sqrt(2))
    np.testing.assert_allclose(sims.broaden(x, f, sigma, z), 0.3 + 5e5 * mean, rtol=1e-11, atol=0)


def test_steep_ramp_matches_erf_step():
    """A ramp of width 1e-5 sigma centred on a is a step up to O((w / sigma)^2); with the
    surface cut the broadened step is Phi((z - a) / sigma) / Phi(z / sigma)."""
    sigma, a = 4 * NM, 20 * NM
    w = 1e-5 * sigma
    x = np.array([0.0, a - w / 2, a + w / 2, 1e-6])
    f = np.array([0.0, 0.0, 1.0, 1.0])
    z = np.linspace(-10, 60, 141) * NM
    exact = ndtr((z - a) / sigma) / ndtr(z / sigma)
    np.testing.assert_allclose(sims.broaden(x, f, sigma, z), exact, rtol=0, atol=1e-9)


def test_random_nonuniform_profile_matches_brute_force_quadrature():
    rng = np.random.default_rng(7)
    spacing = np.exp(rng.uniform(np.log(0.01), np.log(20.0), 80)) * NM  # 0.01 .. 20 nm
    x = np.concatenate(([0.0], np.cumsum(spacing)))
    f = rng.uniform(0.0, 1.2, x.size)
    sigma = 3 * NM
    z = np.concatenate((np.linspace(-10 * NM, x[-1] + 20 * NM, 37), x[:5], [x[-1]]))
    got = sims.broaden(x, f, sigma, z)
    ref = np.array([reference_quadrature(x, f, sigma, zi) for zi in z])
    np.testing.assert_allclose(got, ref, rtol=0, atol=1e-10)


def test_window_cut_at_8_sigma_is_below_rounding(monkeypatch):
    x = graded_mesh(2000)
    f = 0.2 + 0.8 * 0.5 * (1 + np.tanh((x - 300 * NM) / (20 * NM)))
    at = np.linspace(-5 * NM, 1.5e-6, 200)
    windowed = sims.broaden(x, f, 5 * NM, at)
    monkeypatch.setattr(sims, "KERNEL_HALF_WIDTH", 1e9)
    np.testing.assert_allclose(windowed, sims.broaden(x, f, 5 * NM, at), rtol=0, atol=1e-14)


def test_shape_of_evaluation_depths_is_kept():
    x, f = np.array([0.0, 10 * NM]), np.array([0.0, 1.0])
    assert sims.broaden(x, f, 1 * NM, np.zeros((3, 4))).shape == (3, 4)
    assert sims.broaden(x, f, 1 * NM, 5 * NM).shape == ()


def test_model_at_data_offset_shifts_exactly():
    x = graded_mesh(500)
    f = 1.0 - 0.8 * np.exp(-x / (30 * NM))
    data = np.linspace(0, 200, 41) * NM
    offset, sigma = 7 * NM, 2 * NM
    np.testing.assert_array_equal(sims.model_at_data(x, f, data, sigma, offset),
                                  sims.broaden(x, f, sigma, data - offset))
    # a feature at model depth d shows at data depth d + offset
    np.testing.assert_allclose(sims.model_at_data(x, f, data + offset, 0.0, offset),
                               np.interp(data, x, f), rtol=0, atol=1e-15)
    np.testing.assert_array_equal(sims.model_at_data(x, f, data), np.interp(data, x, f))


@pytest.mark.parametrize("sigma", [-1e-9, math.nan, math.inf])
def test_bad_sigma_is_rejected(sigma):
    with pytest.raises(ValueError, match="sigma_m"):
        sims.broaden([0.0, 1e-9], [0.0, 1.0], sigma, [0.0])


@pytest.mark.parametrize("depth, values, match", [
    ([1e-9, 2e-9], [0.0, 1.0], "depth 0"),
    ([0.0, 2e-9, 2e-9], [0.0, 1.0, 1.0], "strictly increasing"),
    ([0.0, 1e-9], [0.0], "one length"),
    ([0.0, 1e-9], [0.0, math.nan], "finite"),
])
def test_bad_model_profile_is_rejected(depth, values, match):
    with pytest.raises(ValueError, match=match):
        sims.broaden(depth, values, 1e-9, [0.0])
