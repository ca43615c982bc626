"""Column partition (cait_fem.mesh.partition): balanced, and lateral -- every part is a slab
through the depth, so that each MPI rank owns a piece of the back electrode."""

import numpy as np

from cait_fem.mesh.partition import lateral_bisection


def test_two_parts_are_two_lateral_halves():
    rng = np.random.default_rng(1)
    x = rng.uniform(-1.0, 1.0, size=(1001, 1)) ** 3  # clustered near 0, like a graded mesh
    dest = lateral_bisection(x, 2)
    assert sorted(np.bincount(dest)) == [500, 501]
    assert x[dest == 0].max() <= x[dest == 1].min()


def test_parts_are_balanced_and_cut_along_the_longest_extent():
    rng = np.random.default_rng(2)
    x = rng.uniform(0.0, 1.0, size=(1200, 2)) * [4.0, 1.0]  # 4x wider in the first coordinate
    for nparts in (2, 3, 4, 7):
        counts = np.bincount(lateral_bisection(x, nparts), minlength=nparts)
        assert counts.max() - counts.min() <= 1
    dest = lateral_bisection(x, 2)
    assert x[dest == 0, 0].max() <= x[dest == 1, 0].min()  # cut across the long side


def test_one_part_and_empty_input():
    assert np.all(lateral_bisection(np.zeros((5, 2)), 1) == 0)
    assert lateral_bisection(np.zeros((0, 2)), 4).shape == (0,)
