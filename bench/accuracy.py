"""Benchmark ACCURACY: are the default numerics converged? (docs/numerics.md section 4)

For each case, the default run (``cait_fem.simulate``: the depth rule, the spatial error
estimate and, if that asks for it, automatic refinement) against a reference refined 4x in
space and in time (``refined_numerics(exp, 4)``: every spacing / 4, the BDF3 tolerance /
256, steps about / 4). Per case it prints cells, steps, CPU time of the default run (one core), the
estimated spatial error, and the worst over the output times of: RMS and max of theta
over the profile range (surface to 1.5 x_50), the plateau's relative error and the front
position's error. The standard (issue 12): RMS 1e-3, max 1e-2, plateau 1 %, front 0.5 nm.

Cases: the three demo cases (K+, Rb+, Cs+ on Li3B7O12, 3e4 s), the Cs+ case of the
paper's range (D = 1.9e-22 m^2/s, 1e5 s) and the ends of the supported range, D_f = 1e-19,
1e-22 and 1e-23 m^2/s at 1e5 s. The references take minutes (--quick: the demo cases).

Usage: python bench/accuracy.py [--quick] [--cases K,Rb,...]
"""

import argparse
import dataclasses
import time
from pathlib import Path

from mpi4py import MPI  # noqa: F401  (before DOLFINx)

import numpy as np

import cait_fem as cf
from cait_fem.analysis.metrics import profile_metrics
from cait_fem.analysis.spatial_error import profile_difference, profile_range_m
from cait_fem.case.case_file import load_case
from cait_fem.case.refinement import refined_numerics

DEMOS = Path(__file__).resolve().parents[1] / "demos"


def _with_foreign(exp, D_m2_s, t_end_s):
    foreign = dataclasses.replace(exp.species[1], diffusion=cf.ConstantD(D_m2_s=D_m2_s))
    run = dataclasses.replace(exp.run, t_end_s=t_end_s, output_times_s=(t_end_s / 30, t_end_s / 10, t_end_s / 3))
    return dataclasses.replace(exp, species=(exp.species[0], foreign), run=run, name=f"D{D_m2_s:g}")


def cases():
    k = load_case(DEMOS / "k_cait.toml")
    return {
        "K": k,
        "Rb": load_case(DEMOS / "rb_cait.toml"),
        "Cs": load_case(DEMOS / "cs_cait.toml"),
        "Cs 1.9e-22, 1e5 s": _with_foreign(k, 1.9e-22, 1e5),
        "D 1e-19, 1e5 s": _with_foreign(k, 1e-19, 1e5),
        "D 1e-22, 1e5 s": _with_foreign(k, 1e-22, 1e5),
        "D 1e-23, 1e5 s": _with_foreign(k, 1e-23, 1e5),
    }


def compare(run, ref) -> dict:
    """Worst over the output times of the differences the standard names."""
    worst = {"rms": 0.0, "max": 0.0, "plateau_rel": 0.0, "front_nm": 0.0}
    for k in range(len(run.output_times_s)):
        end = profile_range_m(ref.depth_m, ref.theta[k])
        rms, peak = profile_difference(ref.depth_m, ref.theta[k], run.depth_m, run.theta[k], end)
        a = profile_metrics(run.depth_m, run.theta[k, 0], run.theta[k, 1:].sum(axis=0))
        b = profile_metrics(ref.depth_m, ref.theta[k, 0], ref.theta[k, 1:].sum(axis=0))
        worst["rms"] = max(worst["rms"], rms)
        worst["max"] = max(worst["max"], peak)
        if np.isfinite(b["plateau_native"]):
            worst["plateau_rel"] = max(worst["plateau_rel"], abs(a["plateau_native"] / b["plateau_native"] - 1))
        if np.isfinite(b["front_position_m"]):
            worst["front_nm"] = max(worst["front_nm"], abs(a["front_position_m"] - b["front_position_m"]) * 1e9)
    return worst


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the three demo cases only")
    parser.add_argument("--cases", help="comma-separated case names (see the module doc)")
    args = parser.parse_args()
    table = cases()
    names = list(table)[:3] if args.quick else list(table)
    if args.cases:
        names = [n.strip() for n in args.cases.split(",")]
    rows = []
    for name in names:
        exp = table[name]
        cf.simulate(dataclasses.replace(exp, run=dataclasses.replace(exp.run, t_end_s=exp.run.t_end_s / 1e3,
                                                                     output_times_s=())))  # warm (JIT, imports)
        c0, w0 = time.process_time(), time.perf_counter()
        run = cf.simulate(exp)
        cpu, wall = time.process_time() - c0, time.perf_counter() - w0
        ref = cf.Simulation(refined_numerics(run.experiment, 4.0)).run(record_series=False, spatial_estimate=False)
        w = compare(run, ref)
        s = run.stats
        rows.append((name, s["cells"], s["steps"], cpu, wall, s.get("spatial_error_estimate"),
                     len(s.get("mesh_refinements", [])), w, ref.stats["cells"], ref.stats["steps"]))
        print(f"{name}: cells {s['cells']}, steps {s['steps']}, cpu {cpu:.2f} s, wall {wall:.2f} s, "
              f"estimate {s.get('spatial_error_estimate')}, refinements {len(s.get('mesh_refinements', []))}, "
              f"vs 4x: {w}", flush=True)
    print("\n| case | cells | steps | CPU [s] | est. spatial RMS | refinements | RMS | max | plateau | front [nm] |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for name, cells, steps, cpu, _, est, nref, w, _, _ in rows:
        print(f"| {name} | {cells} | {steps} | {cpu:.2f} | {est:.1e} | {nref} | {w['rms']:.1e} | {w['max']:.1e} | "
              f"{100 * w['plateau_rel']:.2f} % | {w['front_nm']:.3f} |")


if __name__ == "__main__":
    main()
