"""Benchmark POLING/APS: run times of the thermal electro-poling and alkali-proton
substitution demos (demos/poling.py, demos/aps.py), without writing their files.

Each experiment of the two demos is run twice on one Simulation: cold (mesh, form
compilation -- from the JIT cache if it holds the forms -- and run) and warm (the run
alone). Prints one line per experiment: cells, steps, Newton iterations, cold and warm wall
time, and the demo's key number. Usage: python bench/poling_aps.py
"""

import importlib.util
import time
from pathlib import Path

import numpy as np

import cait_fem as cf

DEMOS = Path(__file__).resolve().parents[1] / "demos"


def load_demo(name):
    """The demo module (its experiments are built at import; its main() is not run)."""
    spec = importlib.util.spec_from_file_location(f"demo_{name}", DEMOS / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def timed(experiment):
    t0 = time.perf_counter()
    sim = cf.Simulation(experiment)
    result = sim.run()
    cold = time.perf_counter() - t0
    t0 = time.perf_counter()
    result = sim.run()
    return result, cold, time.perf_counter() - t0


def line(label, result, cold, warm, key):
    s = result.stats
    print(f"  {label:<34} {s['cells']:>6} {s['steps']:>6} {s['newton_iterations']:>7} "
          f"{cold:>8.2f} {warm:>8.2f}   {key}")


def main():
    poling, aps = load_demo("poling"), load_demo("aps")
    print("POLING/APS demos (1D)                 cells  steps  Newton  cold [s] warm [s]   key number")
    r, cold, warm = timed(poling.experiment)
    edge = poling.half_depth_nm(r.theta[-1, 0], r.depth_m)
    line("poling: 10 V ramp-and-hold, 5 s", r, cold, warm,
         f"depletion edge {edge:.2f} nm (sqrt(2 eps U / e n) = {poling.W_DEPLETION_M * 1e9:.2f} nm)")
    r, cold, warm = timed(poling.two_carrier)
    line("poling, H+ from the anode", r, cold, warm,
         f"H+ layer {poling.half_depth_nm(1 - r.theta[-1, 1], r.depth_m):.2f} nm")
    r, cold, warm = timed(aps.experiment)
    line("APS: potential front 10 V, 1e4 s", r, cold, warm,
         f"H+ front {aps.proton_front_nm(r):.1f} nm, plateau {r.summary()['plateau_native']:.3f}")
    mean = r.charge_C_m2[-1] / r.time_s[-1]
    r, cold, warm = timed(aps.current_front_variant(mean))
    line("APS: current front, 1e4 s", r, cold, warm,
         f"H+ front {aps.proton_front_nm(r):.1f} nm, final U {r.surface_potential_V[-1]:.2f} V")
    assert np.isfinite(r.theta).all()


if __name__ == "__main__":
    main()
