"""The default depth resolution (cait_fem.case.resolution, docs/numerics.md section 4) and
the graded mesh it makes: numbers against hand calculations, the count estimate against
the nodes, refinement, validation. Pure (no DOLFINx)."""

import dataclasses
import math

import numpy as np
import pytest
from scipy import constants as sc
from support.compare import approx
from support.experiments import k_demo_1mm

import cait_fem as cf
from cait_fem.case.estimates import depth_cells
from cait_fem.case.refinement import refined_numerics
from cait_fem.case.resolution import depth_resolution
from cait_fem.errors import ConfigError
from cait_fem.mesh.depth_grading import graded_nodes_m

KT_E = sc.k * 300.0 / sc.e


def with_foreign_D(exp, D_m2_s, t_end_s=None):
    foreign = dataclasses.replace(exp.species[1], diffusion=cf.ConstantD(D_m2_s=D_m2_s))
    run = exp.run if t_end_s is None else dataclasses.replace(exp.run, t_end_s=t_end_s, output_times_s=())
    return dataclasses.replace(exp, species=(exp.species[0], foreign), run=run)


def test_the_rule_against_a_hand_calculation():
    """Cs+-like ion under the 10 eV beam: h(0) = 3.3 l_j / N with l_j = D_f / v, v =
    j / (e n_bg), N = 12 cells per front width; the slope 6 k_B T / (e U N) with U = E_kin
    + 3 sigma_E = 11.5 V; the fine region 1.5 times the
    potential-limited reach sqrt(2 D_f (e U / k_B T) t), which is below the charge-limited
    one here."""
    exp = with_foreign_D(k_demo_1mm(t_end_s=1e5), 1.9e-22)
    res = exp.depth_resolution
    n = exp.mesh.cells_per_front_width
    assert n == 12.0
    v = 1e-2 / (sc.e * 1.41e28)
    assert res.front_spacing_m == approx(3.3 * 1.9e-22 / v / n, rel=1e-10)
    assert res.spacing_slope == approx(6.0 * KT_E / 11.5 / n, rel=1e-12)
    reach_u = math.sqrt(2 * 1.9e-22 * (11.5 / KT_E) * 1e5)
    assert reach_u < v * 1e5 / 0.7
    assert res.fine_depth_m == approx(1.5 * reach_u, rel=1e-12)


def test_a_fast_ion_gets_the_capped_spacing_and_a_charge_limited_reach():
    exp = with_foreign_D(k_demo_1mm(t_end_s=3e4), 5.6e-21)
    res = exp.depth_resolution
    assert res.front_spacing_m == exp.mesh.max_front_spacing_m
    v = 1e-2 / (sc.e * 1.41e28)
    assert res.fine_depth_m == approx(1.5 * v * 3e4 / 0.7, rel=1e-12)


def test_slower_ions_and_longer_runs_get_finer_and_deeper_meshes():
    fast, slow = (with_foreign_D(k_demo_1mm(t_end_s=1e5), D).depth_resolution for D in (1e-21, 1e-22))
    assert slow.front_spacing_m < fast.front_spacing_m
    short, long = (with_foreign_D(k_demo_1mm(t_end_s=t), 1e-21).depth_resolution for t in (1e3, 1e5))
    assert long.fine_depth_m > short.fine_depth_m


@pytest.mark.parametrize("D,t_end", [(5.6e-21, 3e4), (1.9e-22, 1e5), (1e-23, 1e5), (1e-19, 1e5), (1e-22, 10.0)])
def test_the_nodes_follow_the_rule_and_the_estimate_counts_them(D, t_end):
    exp = with_foreign_D(k_demo_1mm(t_end_s=t_end), D)
    res = exp.depth_resolution
    x = graded_nodes_m(exp.glass.thickness_m, exp.mesh, res)
    assert x[0] == 0.0 and x[-1] == exp.glass.thickness_m and np.all(np.diff(x) > 0)
    assert depth_cells(exp.glass.thickness_m, exp.mesh, res)["total"] == approx(len(x) - 1, abs=1)
    h = np.diff(x)
    # beyond the surface grading (0.01 nm growing by 1.08 to the rule's spacing, < 5 nm)
    # each cell of the fine region is the rule's spacing at its left node
    fine = (x[:-1] > 5e-9) & (x[1:] < res.fine_depth_m)
    assert np.allclose(h[fine], res.spacing_m(x[:-1][fine]), rtol=1e-9, atol=1e-3 * res.front_spacing_m)
    # and nowhere does a cell grow by much more than growth_ratio over its neighbour (the
    # last cell, into which a sliver at the back electrode is merged, aside)
    assert np.all(h[1:-1] / h[:-2] <= exp.mesh.growth_ratio * 1.01)


def test_explicit_spacings_give_the_uniform_mesh_of_before():
    exp = k_demo_1mm(t_end_s=3e4)
    explicit = dataclasses.replace(exp, mesh=cf.MeshSettings(front_spacing_m=0.2e-9, fine_depth_m=300e-9))
    res = explicit.depth_resolution
    assert (res.front_spacing_m, res.spacing_slope, res.fine_depth_m) == (0.2e-9, 0.0, 300e-9)
    x = graded_nodes_m(1e-3, explicit.mesh, res)
    h = np.diff(x)
    uniform = (x[:-1] > 1e-9) & (x[1:] < 300e-9)
    assert np.allclose(h[uniform], 0.2e-9, rtol=1e-6)
    assert len(x) - 1 == 1713  # the count the earlier default mesh had on 1 mm


def test_refined_numerics_halves_every_spacing_and_tightens_the_time_tolerance():
    exp = with_foreign_D(k_demo_1mm(t_end_s=1e5), 1.9e-22)
    fine = refined_numerics(exp, 2.0)
    a, b = exp.depth_resolution, fine.depth_resolution
    assert b.front_spacing_m == approx(a.front_spacing_m / 2, rel=1e-12)
    assert b.spacing_slope == approx(a.spacing_slope / 2, rel=1e-12)
    assert b.max_front_spacing_m == approx(a.max_front_spacing_m / 2, rel=1e-12)
    assert b.fine_depth_m == a.fine_depth_m
    assert exp.run.scheme == "bdf3"
    assert fine.run.time_tolerance == approx(exp.run.time_tolerance / 16, rel=1e-12)  # BDF3: h^4
    bdf2 = dataclasses.replace(exp, run=dataclasses.replace(exp.run, scheme="bdf2"))
    assert refined_numerics(bdf2, 2.0).run.time_tolerance == approx(exp.run.time_tolerance / 8, rel=1e-12)
    n_a = depth_cells(1e-3, exp.mesh, a)["fine"]
    n_b = depth_cells(1e-3, fine.mesh, b)["fine"]
    assert n_b == approx(2 * n_a, rel=0.02)
    with pytest.raises(ValueError, match="factor"):
        refined_numerics(exp, 0.5)


@pytest.mark.parametrize("key,value,allowed", [
    ("cells_per_front_width", 0.0, "[0.1, 1000]"), ("cells_per_front_width", True, "[0.1, 1000]"),
    ("max_front_spacing_m", -1e-9, "> 0"), ("spatial_tolerance", 0.0, "> 0"),
    ("estimate_spatial_error", 1, "true or false"), ("front_spacing_m", float("nan"), "> 0"),
])
def test_bad_mesh_accuracy_settings_are_refused(key, value, allowed):
    with pytest.raises(ConfigError, match=rf"mesh\.{key} = .* is not allowed: .*{'' if allowed[0] == '[' else ''}"):
        cf.MeshSettings(**{key: value})


def test_the_size_guard_names_the_rule():
    exp = with_foreign_D(k_demo_1mm(t_end_s=1e5), 1.9e-22)
    with pytest.raises(ConfigError, match="cells_per_front_width"):
        dataclasses.replace(exp, mesh=cf.MeshSettings(cells_per_front_width=50.0, max_cells=10_000))


def test_the_rule_is_pure_physics_of_the_case():
    """The resolution depends on the physics and the run, not on parameters the forms take."""
    exp = with_foreign_D(k_demo_1mm(t_end_s=1e5), 1.9e-22)
    assert depth_resolution(exp) == exp.depth_resolution
    hotter = dataclasses.replace(exp, glass=dataclasses.replace(exp.glass, temperature_K=600.0))
    # the field length k_B T / e E doubles with T at the same potential ceiling
    assert hotter.depth_resolution.spacing_slope == approx(2 * exp.depth_resolution.spacing_slope, rel=1e-12)
