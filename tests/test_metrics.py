"""cait_fem.analysis.metrics: plateau, front and width of docs/model.md section 8.3, excess charge, integrals."""

import math

import numpy as np
import pytest
from support.compare import approx

from cait_fem.analysis import metrics

DEPTH = np.linspace(0.0, 200e-9, 2001)  # 0.1 nm spacing
PLATEAU, FRONT, W = 0.15, 100e-9, 2e-9


def tanh_front(depth=DEPTH):
    """Native fraction: PLATEAU behind a tanh front at FRONT of half-width W, 1 ahead."""
    native = PLATEAU + (1 - PLATEAU) * 0.5 * (1 + np.tanh((depth - FRONT) / W))
    return native, 1.0 - native


def test_tanh_front():
    """theta_n = a + (1 - a)(1 + tanh(u))/2, u = (x - x_f)/w. Foreign = 1/2 where
    tanh u = (0.5 - a)/((1 - a)/2) - 1; the midpoint (a + 1)/2 is at u = 0; the 10 % and
    90 % levels at tanh u = -+0.8, so the width is 2 w atanh(0.8)."""
    native, foreign = tanh_front()
    m = metrics.profile_metrics(DEPTH, native, foreign)
    x50 = FRONT + W * math.atanh(0.35 / 0.425 - 1)
    assert m["x50_m"] == approx(x50, rel=1e-4)
    assert m["plateau_native"] == approx(PLATEAU, abs=1e-6)
    assert m["front_position_m"] == approx(FRONT, rel=1e-5)
    assert m["front_width_m"] == approx(2 * W * math.atanh(0.8), rel=5e-3)


def test_linear_interpolation_between_nodes():
    depth = np.array([0.0, 1.0, 2.0, 3.0, 4.0])
    foreign = np.array([1.0, 0.9, 0.7, 0.1, 0.0])
    native = 1.0 - foreign
    # 0.7 -> 0.1 between 2 and 3: 0.5 is reached a third of the way
    assert metrics.x50(depth, foreign) == approx(2 + 1 / 3)
    plateau = metrics.plateau_level(depth, native, foreign)
    # over [0, 0.9 x50 = 2.1] the profile is 0 -> 0.1 on [0, 1], 0.1 -> 0.3 on [1, 2],
    # 0.3 -> 0.36 on [2, 2.1]; half of 2.1 is 1.05, and theta < m on 1 + (m - 0.1)/0.2
    # of it for m in [0.1, 0.3]: m = 0.1 + 0.05 * 0.2 = 0.11
    assert plateau == approx(0.11, rel=1e-12)
    # (0.11 + 1)/2 = 0.555 between 0.3 (x = 2) and 0.9 (x = 3)
    assert metrics.front_position(depth, native, plateau, 2 + 1 / 3) == approx(2 + 0.255 / 0.6)


def test_ramp_plateau_is_the_median_over_the_first_nine_tenths():
    native = np.where(DEPTH < FRONT, 0.05 + 0.1 * DEPTH / FRONT, 1.0)
    m = metrics.profile_metrics(DEPTH, native, 1.0 - native)
    # x50 = FRONT (the step), median of a linear ramp over [0, 0.9 FRONT] is its middle value
    assert m["x50_m"] == approx(FRONT, rel=1e-3)
    assert m["plateau_native"] == approx(0.05 + 0.1 * 0.45, abs=1e-4)


def test_depth_median_of_a_linear_profile_is_its_middle_value():
    # values 2x on [0, 3]: half of the length lies below the value at 1.5
    assert metrics.depth_median([0.0, 3.0], [0.0, 6.0], 0.0, 3.0) == approx(3.0, rel=1e-12)
    assert metrics.depth_median([0.0, 1.0, 3.0], [0.0, 2.0, 6.0], 0.0, 3.0) == approx(3.0, rel=1e-12)
    assert metrics.depth_median([0.0, 1.0], [0.4, 0.4], 0.0, 1.0) == 0.4
    assert math.isnan(metrics.depth_median([0.0, 1.0], [0.0, 1.0], 0.5, 0.5))


def _graded(end, first, ratio):
    """Nodes from 0 to ``end`` growing geometrically from ``first`` by ``ratio``."""
    x, h = [0.0], first
    while x[-1] < end:
        x.append(min(x[-1] + h, end))
        h *= ratio
    return np.array(x)


@pytest.mark.parametrize("profile", ["ramp", "surface_dip"])
def test_metrics_do_not_depend_on_the_grading(profile):
    """The same profile sampled on a uniform mesh and on one graded from 0.01 nm at the
    surface (dozens of nodes in the first nanometres, where theta_native is lowest) gives
    the same metrics: they are taken over depth, not over nodes."""
    def native_of(x):
        ramp = 0.05 + 0.1 * x / FRONT
        if profile == "surface_dip":  # a low surface layer a few nm thick, as in a CAIT run
            ramp = ramp - 0.04 * np.exp(-x / 3e-9)
        return ramp + (1 - ramp) * 0.5 * (1 + np.tanh((x - FRONT) / W))

    uniform = np.linspace(0.0, 200e-9, 20001)
    graded = np.unique(np.concatenate([_graded(5e-9, 0.01e-9, 1.08), np.arange(5e-9, 200e-9, 0.2e-9), [200e-9]]))
    a = metrics.profile_metrics(uniform, native_of(uniform), 1 - native_of(uniform))
    b = metrics.profile_metrics(graded, native_of(graded), 1 - native_of(graded))
    assert graded.size < uniform.size / 10 and np.sum(graded < 5e-9) > 40
    for key in a:  # the width's 10/90 % points carry the 0.2 nm sampling's interpolation error
        assert b[key] == approx(a[key], rel=3e-3 if key == "front_width_m" else 2e-4), key
    # a median over nodes would not pass: it is pulled towards the dense surface nodes
    inside = graded <= 0.9 * b["x50_m"]
    assert abs(np.median(native_of(graded)[inside]) - a["plateau_native"]) > 2e-3


def test_no_front_gives_nan():
    native = np.full(DEPTH.size, 0.7)
    m = metrics.profile_metrics(DEPTH, native, 1.0 - native)  # foreign never exceeds 0.5
    assert all(math.isnan(v) for v in m.values())
    everywhere = metrics.profile_metrics(DEPTH, np.zeros(DEPTH.size), np.ones(DEPTH.size))
    assert all(math.isnan(v) for v in everywhere.values())  # never drops below 0.5


def test_front_not_yet_risen_gives_nan_position_and_width():
    native = np.where(DEPTH < FRONT, 0.1, 0.52)  # foreign-rich layer, native never back to the midpoint 0.55
    m = metrics.profile_metrics(DEPTH, native, 1.0 - native)
    assert m["x50_m"] == approx(FRONT, rel=1e-3)
    assert math.isnan(m["front_position_m"]) and math.isnan(m["front_width_m"])


def test_excess_charge_relative_to_the_background():
    theta = {"Li": np.array([0.3, 1.0]), "K": np.array([0.7, 0.0])}
    assert np.allclose(metrics.excess_charge(theta, {"Li": 1, "K": 1}, "Li"), 0.0)
    assert np.allclose(metrics.excess_charge(theta, {"Li": 1, "K": 2}, "Li"), [0.7, 0.0])
    # background -z_native n_bg: a divalent native ion at n_bg is neutral
    assert np.allclose(metrics.excess_charge({"Mg": np.array([1.0])}, {"Mg": 2}, "Mg"), 0.0)
    stacked = np.array([[0.3, 1.0], [0.7, 0.01]])  # species on axis 0, native first
    assert np.allclose(metrics.excess_charge(stacked, [1, 1]), [0.0, 0.01])
    with pytest.raises(ValueError):
        metrics.excess_charge(theta, {"Li": 1, "K": 1})


def test_integrate_lumped_is_exact_for_p1_functions():
    depth = np.array([0.0, 1e-9, 3e-9, 10e-9])
    values = 2.0 + 5e8 * depth  # linear: exact
    assert metrics.integrate_lumped(depth, values) == approx(2.0 * 10e-9 + 2.5e8 * (10e-9) ** 2)
    stacked = np.vstack((values, np.ones(4)))
    expected = [metrics.integrate_lumped(depth, values), 10e-9]
    assert np.allclose(metrics.integrate_lumped(depth, stacked), expected)
