"""The spatial error estimate (cait_fem.analysis.spatial_error, docs/numerics.md section 4):
the Richardson formula on profiles with a known error; on real runs, the estimate against
the true error of a run refined 4x in space taking the same time steps (within a factor
3, K+ and Cs+); the warning and the automatic refinement."""

import dataclasses

import numpy as np
import pytest
from support.compare import approx
from support.experiments import k_demo_1mm

import cait_fem as cf
from cait_fem.analysis import spatial_error

X = np.linspace(0.0, 200e-9, 401)


def _profiles(error_scale):
    """Two species (native, foreign) with a front at 100 nm, plus error_scale * g(x)."""
    foreign = 0.5 * (1 - np.tanh((X - 100e-9) / 3e-9))
    g = np.exp(-(((X - 100e-9) / 5e-9) ** 2))
    return np.array([[1 - foreign + error_scale * g, foreign - error_scale * g]])


def test_richardson_recovers_a_second_order_error():
    """u_h = u + C h^2 g, u_2h = u + 4 C h^2 g: the estimate is C h^2 g exactly, at the
    coarse nodes (every other node), both in RMS over the profile range and pointwise."""
    c = 1e-3
    fine, coarse = _profiles(c), _profiles(4 * c)[:, :, ::2]
    est = spatial_error.richardson_estimate(X, fine, X[::2], coarse)
    end = spatial_error.profile_range_m(X, fine[0])
    assert end == approx(1.5 * 100e-9, rel=1e-3)
    assert est["max"][0] == approx(c, rel=1e-9)
    keep = X[::2] <= end
    g = np.exp(-(((X[::2][keep] - 100e-9) / 5e-9) ** 2))
    rms = np.sqrt(np.trapezoid(g**2, X[::2][keep]) / X[::2][keep][-1]) * c
    assert est["rms"][0] == approx(rms, rel=1e-9)


def test_no_difference_no_error_and_the_range_without_a_front():
    p = _profiles(0.0)
    assert spatial_error.richardson_estimate(X, p, X[::2], p[:, :, ::2])["rms"] == [0.0]
    flat = np.array([np.ones_like(X), np.zeros_like(X)])
    assert spatial_error.profile_range_m(X, flat) == X[-1]


def _case(D_m2_s, t_end_s):
    exp = k_demo_1mm(t_end_s=t_end_s, output_times_s=(t_end_s / 10, t_end_s / 3))
    foreign = dataclasses.replace(exp.species[1], diffusion=cf.ConstantD(D_m2_s=D_m2_s))
    return dataclasses.replace(exp, species=(exp.species[0], foreign))


@pytest.mark.dolfinx
@pytest.mark.slow
@pytest.mark.parametrize("ion,D,t_end", [("K", 5.6e-21, 3000.0), ("Cs", 1.9e-22, 3000.0)])
def test_the_estimate_follows_the_true_spatial_error(ion, D, t_end):
    """Default numerics; the truth is the same case on a mesh 4x finer everywhere, replaying
    the default run's time steps (so that only the spatial error differs). Per output time
    the estimated RMS error lies within a factor 3 of the true one. The estimate is
    computed on every other node; the true error on all nodes of the default run.
    Measured (this size): K 0.9-1.1x, Cs 1.0-1.4x of the true error."""
    from cait_fem import Simulation
    from cait_fem.case.refinement import refined_mesh

    exp = _case(D, t_end)
    run = Simulation(exp).run()
    steps = list(run.time_s[1:])
    truth = Simulation(refined_mesh(exp, 4.0)).run(schedule_s=steps, record_series=False)
    by_output = run.stats["spatial_error_by_output"]
    for k in range(len(run.output_times_s)):
        end = spatial_error.profile_range_m(run.depth_m, run.theta[k])
        true_rms, true_max = spatial_error.profile_difference(run.depth_m, run.theta[k], truth.depth_m,
                                                              truth.theta[k], end)
        ratio = by_output["rms"][k] / true_rms
        assert 1 / 3 <= ratio <= 3, (ion, k, by_output["rms"][k], true_rms)
        assert 1 / 3 <= by_output["max"][k] / true_max <= 3
    assert run.stats["spatial_error_estimate"] == max(by_output["rms"])


@pytest.mark.dolfinx
def test_an_estimate_above_the_tolerance_warns_and_refines():
    """A short K+ run with a tolerance below what its mesh gives (the default mesh gives
    about 4e-4): the estimate exceeds it, a warning names mesh.spatial_tolerance, and
    simulate() refines the mesh and runs again until the estimate is within it (or
    max_refinements is used up)."""
    exp = _case(5.6e-21, 3000.0)
    coarse = dataclasses.replace(exp.mesh, spatial_tolerance=1e-4)
    with pytest.warns(UserWarning, match="mesh.spatial_tolerance"):
        once = cf.simulate(dataclasses.replace(exp, mesh=dataclasses.replace(coarse, max_refinements=0)))
    assert once.stats["spatial_error_estimate"] > 1e-4
    assert any("mesh.spatial_tolerance" in w for w in once.stats["warnings"])
    assert "mesh_refinements" not in once.stats
    refined = cf.simulate(dataclasses.replace(exp, mesh=dataclasses.replace(coarse, max_refinements=3)))
    attempts = refined.stats["mesh_refinements"]
    assert 1 <= len(attempts) <= 3 and attempts[0]["cells"] == once.stats["cells"]
    assert refined.stats["cells"] > once.stats["cells"]
    assert refined.stats["spatial_error_estimate"] <= 1e-4
    assert refined.stats["spatial_error_estimate"] < once.stats["spatial_error_estimate"] / 2
