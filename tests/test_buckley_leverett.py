"""cait_fem.analysis.buckley_leverett: the electroneutral, diffusion-free limit of docs/model.md section 8.4."""

import numpy as np
from support.compare import approx

from cait_fem.analysis import buckley_leverett as bl
from cait_fem.physics.diffusion import GaussianSED

D_BULK, D_FOREIGN, LANDED = 1e-17, 3e-19, 50e-9


def power_law(m):
    return (lambda theta: D_BULK * np.asarray(theta) ** m,
            lambda theta: m * D_BULK * np.asarray(theta) ** (m - 1))


def test_welge_state_of_a_power_law():
    """D_n = D_b theta^m: G(theta) = D_f (1 - theta) + D_b theta^(m+1) has
    G' = -D_f + (m + 1) D_b theta^m = 0 at theta* = (D_f / ((m + 1) D_b))^(1/m), a minimum
    (G'' > 0). m = 2, D_f / D_b = 0.03: theta* = 0.01^(1/2) = 0.1, and the front sits at
    x = q / (1 - 0.1 + 0.1 * D_b 0.1^2 / D_f) = q / (0.9 + 1/30)."""
    D_n, _ = power_law(2)
    theta_star = bl.welge_state(D_n, D_FOREIGN)
    assert theta_star == approx(0.1, rel=1e-7)
    front = bl.welge_front(D_n, D_FOREIGN, LANDED)
    assert front.theta_star == theta_star
    assert front.D_native_at_star_m2_s == approx(D_BULK * 0.01, rel=1e-6)
    assert front.front_position_m == approx(LANDED / (0.9 + 1 / 30), rel=1e-10)
    assert bl.front_position_m(0.1, D_BULK * 0.01, D_FOREIGN, LANDED) == approx(LANDED / (0.9 + 1 / 30))


def test_no_interior_minimum():
    # native everywhere slower than foreign: G decreases to theta = 1, no displacement front
    assert bl.welge_state(lambda th: np.full_like(np.asarray(th, float), 1e-21), D_FOREIGN) == 1.0
    # native everywhere faster: G increases from theta = 0, piston-like full replacement
    assert bl.welge_state(lambda th: np.full_like(np.asarray(th, float), 1e-17), D_FOREIGN) == 0.0
    assert bl.front_position_m(0.0, 1e-17, D_FOREIGN, LANDED) == LANDED


def test_profile_meets_the_front_and_conserves_the_landed_amount():
    """Behind the front x(theta) = q F'(s); Welge's tangency makes x(theta*) the front
    position, and the foreign inventory int s dx = x_f s* + int_{s*}^1 x ds = q F(1) = q."""
    D_n, dD_n = power_law(2)
    front = bl.welge_front(D_n, D_FOREIGN, LANDED)
    theta = np.linspace(0.0, front.theta_star, 200001)
    x = bl.profile(theta, D_n, dD_n, D_FOREIGN, LANDED, front.theta_star)
    assert x[-1] == approx(front.front_position_m, rel=1e-6)
    assert np.all(np.diff(x) > 0)
    s = 1.0 - theta
    inventory = front.front_position_m * (1 - front.theta_star) + np.trapezoid(x[::-1], s[::-1])
    assert inventory == approx(LANDED, rel=1e-6)
    assert np.isnan(bl.profile([0.5], D_n, dD_n, D_FOREIGN, LANDED, front.theta_star)[0])


def test_welge_state_of_the_paper_sed_satisfies_the_tangent_condition():
    """For the benchmark SED and K+: d(theta D_n)/dtheta = D_f at theta*, with a plateau
    of order the paper's 15 %."""
    law = GaussianSED(fwhm_eV=0.25, vacancy_fraction=0.10, D_bulk_m2_s=1e-17)
    D_f = 5.6e-21
    theta_star = bl.welge_state(lambda th: law.diffusivity_m2_s(th, 300.0), D_f)
    slope = law.diffusivity_m2_s(theta_star, 300.0) + theta_star * law.dD_dtheta_m2_s(theta_star, 300.0)
    assert slope == approx(D_f, rel=1e-5)
    assert 0.05 < theta_star < 0.4


def test_concave_envelope_profile_equals_the_welge_fan_for_an_sed():
    """Without an immobile fraction the envelope is Welge's chord plus the fan x = q F'(s)."""
    law = GaussianSED(fwhm_eV=0.25, vacancy_fraction=0.10, D_bulk_m2_s=1e-17)
    D_n = lambda th: law.diffusivity_m2_s(th, 300.0)  # noqa: E731
    dD_n = lambda th: law.dD_dtheta_m2_s(th, 300.0)  # noqa: E731
    D_f, q = 4.3e-21, 1e-7
    wf = bl.welge_front(D_n, D_f, q)
    theta = np.linspace(0.02, wf.theta_star, 300)
    x = bl.profile(theta, D_n, dD_n, D_f, q, wf.theta_star)
    depths = np.linspace(0.05, 0.95, 10) * wf.front_position_m
    envelope = bl.displacement_profile(depths, D_n, D_f, q, points=200001)
    assert np.allclose(envelope, np.interp(depths, x, theta), atol=2e-4)
    beyond = bl.displacement_profile([1.01 * wf.front_position_m], D_n, D_f, q)
    assert beyond[0] == 1.0
