"""Time integration: measured orders of BDF1/BDF2/BDF3, quadratic Newton convergence, step
control (output times hit exactly, failures handled), and the pure BDF helpers."""

import numpy as np
import pytest
from support.compare import approx
from support.experiments import k_demo_1mm

import cait_fem as cf
from cait_fem.solver import bdf

_experiment = k_demo_1mm


@pytest.fixture(scope="module")
def sim():
    return cf.Simulation(_experiment(t_end_s=1.0))


def _fixed_step(sim, scheme, dt, t_end=4000.0):
    """Steps capped at dt and an error tolerance that never binds: after the start-up
    (Newton failures shrink the first steps) the step is constant = dt."""
    exp = _experiment(t_end_s=t_end, scheme=scheme, dt_initial_s=dt, dt_max_s=dt, time_tolerance=1e9)
    return sim.run(exp)


@pytest.mark.dolfinx
@pytest.mark.parametrize("scheme, order", [("bdf1", 1.0), ("bdf2", 2.0), ("bdf3", 3.0)])
def test_temporal_order(sim, scheme, order):
    dts = [200.0, 100.0, 50.0]
    runs = [_fixed_step(sim, scheme, dt) for dt in dts]
    ref = _fixed_step(sim, scheme, 6.25)
    err = np.array([np.max(np.abs(r.theta[-1] - ref.theta[-1])) for r in runs])
    rates = np.log2(err[:-1] / err[1:])
    print(scheme, err, rates)
    assert abs(rates[-1] - order) < 0.35, rates


@pytest.mark.dolfinx
def test_higher_order_takes_fewer_steps_at_the_same_tolerance(sim):
    exp = dict(t_end_s=3000.0, time_tolerance=1e-3)
    steps = [sim.run(_experiment(scheme=f"bdf{k}", **exp)).stats["steps"] for k in (1, 2, 3)]
    assert steps[2] < steps[1] < steps[0], steps


@pytest.mark.dolfinx
def test_output_times_hit_exactly(sim):
    times = (1.234, 77.7, 500.0)
    r = sim.run(_experiment(t_end_s=600.0, output_times_s=times))
    assert tuple(r.output_times_s) == times + (600.0,)
    for t in times + (600.0,):
        assert np.any(np.abs(r.time_s - t) <= 1e-9 * t)
    assert r.theta.shape[0] == 4


@pytest.mark.dolfinx
def test_newton_converges_quadratically(sim):
    """Solve one step to round-off and check |du_{k+1}| <= C |du_k|^2 with C modest."""
    exp = _experiment(t_end_s=100.0)
    sim.run(exp)
    updates = []
    f = sim.forms
    f.u_nm1.x.array[:] = f.u_n.x.array
    f.u_n.x.array[:] = f.u.x.array
    f.set_bdf(100.0 / sim.scales.time_s, (1.0, -1.0, 0.0))  # a 100 s BDF1 step from u_n: no predictor
    monitor = lambda it, update: updates.append(update.norm(3))  # noqa: E731
    sim.newton.monitors.append(monitor)
    tight = cf.SolverSettings(newton_atol=1e-13, potential_atol=1e-10, max_newton_iterations=20)
    old = sim.newton.settings
    sim.newton.update_settings(tight)
    try:
        converged, its, _ = sim.newton.solve()
    finally:
        sim.newton.update_settings(old)
        sim.newton.monitors.remove(monitor)
    u = np.array(updates)
    print(u)
    assert converged and its >= 3
    # quadratic phase: the ratio |du_k+1| / |du_k|^2 stays bounded while |du| falls fast
    big = u[:-1] > 1e-10
    ratios = u[1:][big] / u[:-1][big] ** 2
    assert np.all(ratios < 1e3), ratios
    assert u[-1] < 1e-10


@pytest.mark.dolfinx
def test_newton_failure_reports_time(sim):
    bad = _experiment(t_end_s=10.0, dt_initial_s=1.0, max_retries=0)
    bad = cf.Experiment(glass=bad.glass, species=bad.species, front=bad.front, run=bad.run,
                        solver=cf.SolverSettings(max_newton_iterations=1))
    with pytest.raises(cf.SolverError, match=r"t = 0 s"):
        cf.simulate(bad)


def test_bdf2_coefficients_exact_for_quadratics():
    rng = np.random.default_rng(1)
    for _ in range(20):
        h1, h = rng.uniform(0.1, 2.0, 2)
        t = np.array([-h1, 0.0, h])
        a0, a1, a2 = bdf.coefficients(2, h, [h1])
        y = 3.0 + 2.0 * t - 1.5 * t**2  # y' (t = h) = 2 - 3 h
        assert (a0 * y[2] + a1 * y[1] + a2 * y[0]) / h == approx(2.0 - 3.0 * h, rel=1e-12)
        # the closed form of variable-step BDF2 (w = h / h1)
        w = h / h1
        assert (a0, a1, a2) == approx(((1 + 2 * w) / (1 + w), -(1 + w), w * w / (1 + w)), rel=1e-13)


def test_bdf3_coefficients_exact_for_cubics_and_classical_at_constant_step():
    rng = np.random.default_rng(2)
    for _ in range(20):
        h2, h1, h = rng.uniform(0.1, 2.0, 3)
        t = np.array([-h1 - h2, -h1, 0.0, h])
        a = bdf.coefficients(3, h, [h1, h2])
        y = 1.0 - 2.0 * t + 0.5 * t**2 + 0.75 * t**3  # y'(h) = -2 + h + 2.25 h^2
        assert sum(aj * yj for aj, yj in zip(a, y[::-1])) / h == approx(-2.0 + h + 2.25 * h * h, rel=1e-11)
        assert sum(a) == approx(0.0, abs=1e-12)
    assert bdf.coefficients(3, 0.4, [0.4, 0.4]) == approx((11 / 6, -3.0, 1.5, -1 / 3), rel=1e-14)


def test_predictor_and_error_factor_constant_step_values():
    hist = [(0.0, np.array([1.0])), (1.0, np.array([2.0])), (2.0, np.array([5.0]))]
    # quadratic through (0,1),(1,2),(2,5): y = 1 + t^2 - 0*t ... y(3) = 10
    assert bdf.predict(2, 1.0, hist)[0] == approx(10.0)
    assert bdf.error_factor(2, 1.0, [1.0, 1.0]) == approx(2.0 / 11.0)
    assert bdf.error_factor(1, 1.0, [1.0]) == approx(1.0 / 3.0)
    assert bdf.error_factor(3, 1.0, [1.0, 1.0, 1.0]) == approx(3.0 / 25.0)


@pytest.mark.dolfinx
def test_max_steps_is_enforced(sim):
    # from 1e-9 s the steps need at least log2(1e12) = 40 doublings: refused up front
    with pytest.raises(cf.ConfigError, match="run.max_steps = 5 is too small"):
        _experiment(t_end_s=1000.0, max_steps=5)
    # reachable in 4 doubling steps from 100 s, but the error control takes more
    with pytest.raises(cf.SolverError, match="run.max_steps = 5"):
        sim.run(_experiment(t_end_s=1000.0, dt_initial_s=100.0, max_steps=5))


@pytest.mark.dolfinx
def test_rerun_with_new_parameter_values_but_not_a_new_structure(sim):
    base = _experiment(t_end_s=100.0)
    faster = cf.Experiment(glass=base.glass, front=base.front, run=base.run, species=(
        base.species[0], cf.Species("K", "foreign", cf.ConstantD(D_m2_s=5.6e-20))))
    slow_r, fast_r = sim.run(base), sim.run(faster)
    assert fast_r.surface_potential_V[-1] < slow_r.surface_potential_V[-1]  # lower resistance
    thicker = cf.Glass(n_bg_m3=1.41e28, eps_r=8.0, temperature_K=300.0, thickness_m=2e-3)
    with pytest.raises(cf.ConfigError, match="glass"):
        sim.run(cf.Experiment(glass=thicker, species=base.species, front=base.front, run=base.run))
    with pytest.raises(cf.ConfigError, match="species"):
        sim.run(cf.Experiment(glass=base.glass, front=base.front, run=base.run, species=(
            base.species[0], cf.Species("K", "foreign", cf.TabulatedD(theta=(0, 1), D_m2_s=(1e-21, 1e-20))))))


@pytest.mark.dolfinx
def test_lagged_jacobian_gives_the_exact_newton_solution():
    """solver.jacobian_lag = 3 reuses the factorised Jacobian within a step: the same
    solution to the Newton tolerance, in fewer assemblies. It is fixed per Simulation."""
    from dataclasses import replace

    from cait_fem.errors import ConfigError

    exact = _experiment(t_end_s=3000.0)
    lagged = replace(exact, solver=cf.SolverSettings(jacobian_lag=3))
    r1 = cf.simulate(exact)
    sim = cf.Simulation(lagged)
    r3 = sim.run()
    assert sim.newton.ksp.getOptionsPrefix() and r3.stats["steps"] > 50
    assert np.abs(r3.theta - r1.theta).max() < 1e-5
    assert r3.metrics()["front_position_m"] == approx(r1.metrics()["front_position_m"], rel=1e-5)
    with pytest.raises(ConfigError, match="jacobian_lag"):
        sim.run(exact)
    with pytest.raises(ConfigError, match="jacobian_lag"):
        cf.SolverSettings(jacobian_lag=0)
