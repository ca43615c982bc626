"""The beam landing law against the normal distribution it is defined by."""

import numpy as np
from scipy import stats

from cait_fem.physics.boundary_laws import landing_fraction


def test_landing_fraction_is_the_normal_tail_above_the_barrier():
    phi = np.linspace(0.0, 20.0, 41)
    expected = stats.norm(loc=10.0, scale=0.5).sf(phi)  # P(E > e phi), E ~ N(10, 0.5)
    # written with erf (UFL has no erfc): absolute accuracy, the deep tail rounds to 0
    assert np.allclose(landing_fraction(phi, 10.0, 0.5), expected, rtol=1e-12, atol=1e-15)
    assert landing_fraction(10.0, 10.0, 0.5) == 0.5
    # a doubly charged ion sees twice the barrier
    assert np.isclose(landing_fraction(5.0, 10.0, 0.5, charge_number=2), 0.5)
