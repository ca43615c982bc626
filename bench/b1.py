"""Benchmark B1: K+ CAIT on Li3B7O12, paper-like (front near 100 nm).

T 300 K; n_bg 1.41e28 m^-3; eps_r 8; thickness 1 mm; native Li+ with a Gaussian SED
(FWHM 0.25 eV, vacancy fraction 0.10, D_bulk 1e-17 m^2/s, floor 1e-12 D_bulk); foreign K+
with constant D 5.6e-21 m^2/s; beam 1e-2 A/m^2, E_kin 10 eV, sigma_E 0.5 eV; t_end 30000 s.

Prints: cells, steps, Newton iterations (total and per step), wall time cold (JIT
compilation included, in a fresh cache) and warm, plateau, front position and width,
surface potential, the estimated spatial error, the Newton update history of one step
(quadratic convergence), and a convergence table (the default run refined 2x and 4x in
space and time with ``refined_numerics``; RMS and max change of theta over 0-300 nm against
the 4x refined run). Usage: python bench/b1.py [--quick]
"""

import dataclasses
import os
import sys
import tempfile

# A fresh JIT cache, so that "cold" really includes form compilation.
os.environ["XDG_CACHE_HOME"] = tempfile.mkdtemp(prefix="cait_b1_cache_")

import time  # noqa: E402

import numpy as np  # noqa: E402

import cait_fem as cf  # noqa: E402
from cait_fem.case.refinement import refined_numerics  # noqa: E402

T_END = 30000.0
def experiment(**solver):
    glass = cf.Glass(n_bg_m3=1.41e28, eps_r=8.0, temperature_K=300.0, thickness_m=1e-3, name="Li3B7O12")
    li = cf.Species("Li", "native", cf.GaussianSED(fwhm_eV=0.25, vacancy_fraction=0.10, D_bulk_m2_s=1e-17))
    k = cf.Species("K", "foreign", cf.ConstantD(D_m2_s=5.6e-21))
    beam = cf.Beam(current_density_A_m2=1e-2, E_kin_eV=10.0, sigma_E_eV=0.5)
    return cf.Experiment(glass=glass, species=(li, k), front=beam,
                         run=cf.RunSettings(t_end_s=T_END), solver=cf.SolverSettings(**solver), name="B1")


def timed(sim):
    t0 = time.perf_counter()
    result = sim.run()
    return result, time.perf_counter() - t0


def headline():
    t0 = time.perf_counter()
    sim = cf.Simulation(experiment())
    result, _ = timed(sim)
    cold = time.perf_counter() - t0
    result, warm = timed(sim)
    s, m = result.stats, result.metrics()
    its = result.newton_iterations[1:]
    print("B1 (default settings: the depth rule of docs/numerics.md section 4, time tolerance 2e-4)")
    print(f"  cells                 {s['cells']}")
    print(f"  time steps            {s['steps']} (rejected {s['rejected_steps']}, "
          f"Newton failures {s['newton_failures']})")
    counts = {int(k): int(v) for k, v in zip(*np.unique(its, return_counts=True))}
    print(f"  Newton iterations     {s['newton_iterations']} ({np.mean(its):.2f} per step; "
          f"steps by iteration count {counts})")
    print(f"  wall time cold        {cold:.2f} s (mesh, JIT compilation, run)")
    print(f"  wall time warm        {warm:.2f} s")
    print(f"  plateau (native)      {m['plateau_native']:.4f}")
    print(f"  front position        {m['front_position_m'] * 1e9:.2f} nm")
    print(f"  front width (10-90%)  {m['front_width_m'] * 1e9:.2f} nm")
    print(f"  surface potential     {result.surface_potential_V[-1]:.4f} V")
    print(f"  current density       {result.current_density_A_m2[-1]:.4e} A/m^2")
    print(f"  theta range           [{result.theta.min():.2e}, {result.theta.max():.6f}]")
    print(f"  conservation error    {result.conservation_error:.2e} (relative)")
    print(f"  spatial error (est.)  {s['spatial_error_estimate']:.2e} RMS, {s['spatial_error_estimate_max']:.2e} max "
          f"({s['spatial_estimate_wall_s']:.2f} s of the run)")


def newton_history():
    """The last step to t = 3000 s solved to round-off: the update norms fall quadratically."""
    tight = cf.SolverSettings(newton_atol=1e-15, potential_atol=1e-13, max_newton_iterations=8)
    exp = dataclasses.replace(experiment(), run=cf.RunSettings(t_end_s=3000.0), solver=tight)
    sim = cf.Simulation(exp)
    history = []
    sim.newton.monitors.append(lambda it, update: history.append((it, update.norm(3))))
    sim.run()
    last = history[max(i for i, row in enumerate(history) if row[0] == 1):]
    print("\nNewton on the last step to t = 3000 s (max |update| in theta / k_B T/e units):")
    for it, upd in last:
        print(f"  it {it}: |du|_inf = {upd:.3e}")


def table():
    """The default run and the same refined 2x and 4x in space and time (refined_numerics)."""
    runs = []
    for k in range(3):
        sim = cf.Simulation(refined_numerics(experiment(), 2.0**k))
        result, wall = timed(sim)
        runs.append((result, wall))
    ref = runs[-1][0]
    x = np.linspace(0.0, 300e-9, 3001)

    def on_grid(r):
        return np.array([np.interp(x, r.depth_m, th) for th in r.theta[-1]])

    ref_grid = on_grid(ref)
    print("\nConvergence of the default run (theta over 0-300 nm against the 4x refined run):")
    print(f"  {'refined':>10} {'tol':>8} {'cells':>6} {'steps':>6} {'Newton':>7} {'warm s':>7} "
          f"{'RMS':>9} {'max':>9} {'front nm':>9}")
    for (r, wall), k in zip(runs, range(3)):
        d = np.abs(on_grid(r) - ref_grid)
        rms = np.sqrt(np.mean(d**2)) if k < 2 else 0.0
        print(f"  {2**k:9d}x {r.experiment.run.time_tolerance:8.1e} {r.stats['cells']:6d} {r.stats['steps']:6d} "
              f"{r.stats['newton_iterations']:7d} {wall:7.2f} {rms:9.2e} {d.max():9.2e} "
              f"{r.metrics()['front_position_m'] * 1e9:9.3f}")


if __name__ == "__main__":
    headline()
    newton_history()
    if "--quick" not in sys.argv:
        table()
