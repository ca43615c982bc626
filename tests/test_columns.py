"""Depth columns of layered meshes and their lateral aggregation (pure numpy/scipy)."""

import numpy as np
import pytest
import scipy.sparse as sp

from cait_fem.solver.columns import column_owners, find_columns


def _extruded(lateral_points, depths, jitter=0.0, seed=0):
    """Nodes of a lateral point set extruded at ``depths``, shuffled, with round-off jitter."""
    rng = np.random.default_rng(seed)
    lat = np.repeat(lateral_points, len(depths), axis=0)
    z = np.tile(depths, len(lateral_points))
    lat = lat + jitter * rng.uniform(-1, 1, lat.shape)
    order = rng.permutation(len(z))
    truth = np.repeat(np.arange(len(lateral_points)), len(depths))
    return lat[order], z[order], truth[order]


def _same_partition(a, b):
    """Two labelings describe the same grouping."""
    pairs = np.unique(np.stack([a, b]), axis=1)
    return pairs.shape[1] == len(np.unique(a)) == len(np.unique(b))


@pytest.mark.parametrize("dim", [2, 3])
def test_columns_of_an_extruded_point_set_are_found_exactly(dim):
    rng = np.random.default_rng(1)
    lateral = rng.uniform(0, 100.0, (200, dim - 1))
    depths = np.concatenate([[0.0], np.cumsum(0.05 * 1.3 ** np.arange(30))])
    lat, z, truth = _extruded(lateral, depths, jitter=1e-11)
    column, n_layers = find_columns(lat, z, tolerance=1e-6)
    assert n_layers == len(depths)
    assert _same_partition(column, truth)


def test_columns_sharing_one_lateral_coordinate_are_kept_apart():
    # a structured grid: many columns at the same x, many at the same y
    gx, gy = np.meshgrid(np.arange(5.0), np.arange(4.0))
    lat, z, truth = _extruded(np.column_stack([gx.ravel(), gy.ravel()]), np.linspace(0, 1, 7), jitter=1e-12)
    column, n_layers = find_columns(lat, z, tolerance=1e-6)
    assert n_layers == 7 and _same_partition(column, truth)


def test_a_one_dimensional_mesh_is_one_column():
    z = np.random.default_rng(2).permutation(np.linspace(0.0, 1.0, 11))
    column, n_layers = find_columns(np.zeros((11, 0)), z, tolerance=1e-9)
    assert n_layers == 11 and np.all(column == 0)


def test_nodes_that_do_not_stand_in_columns_are_refused():
    rng = np.random.default_rng(3)
    lateral = rng.uniform(0, 100.0, (50, 2))
    depths = np.linspace(0.0, 10.0, 6)
    lat, z, _ = _extruded(lateral, depths)
    # an unstructured mesh: every node at its own lateral position
    assert find_columns(lat + rng.uniform(-1, 1, lat.shape), z, tolerance=1e-6) is None
    # columns of unequal length (one node removed)
    assert find_columns(lat[1:], z[1:], tolerance=1e-6) is None
    # two nodes of one column at the same depth
    twin = np.flatnonzero(np.all(lat == lat[0], axis=1))
    z2 = z.copy()
    z2[twin[1]] = z2[twin[0]]
    assert find_columns(lat, z2, tolerance=1e-6) is None


def test_a_column_goes_to_the_rank_that_owns_most_of_it():
    column = np.array([0, 0, 0, 1, 1, 1, 2, 2])
    rank = np.array([0, 1, 1, 0, 0, 1, 1, 0])
    np.testing.assert_array_equal(column_owners(column, rank, 2), [1, 0, 0])  # tie: lowest rank


@pytest.mark.dolfinx
def test_aggregation_covers_the_graph_with_connected_aggregates():
    from cait_fem.solver.column_multigrid import aggregate

    n = 30  # a 30 x 30 grid graph (5-point)
    path = sp.diags([np.ones(n - 1), np.ones(n - 1)], [-1, 1])
    graph = (sp.kron(sp.eye(n), path) + sp.kron(path, sp.eye(n))).tocsr()
    agg, count = aggregate(graph)
    assert np.all((agg >= 0) & (agg < count))
    sizes = np.bincount(agg, minlength=count)
    assert np.all(sizes >= 1) and 4 * count <= n * n  # coarsens by at least 4
    for a in range(count):
        members = np.flatnonzero(agg == a)
        sub = graph[members][:, members]
        assert sp.csgraph.connected_components(sub, directed=False)[0] == 1
