"""Benchmark SCALE3D: a 3D disc with a beam spot, more than 10^6 unknowns, on 1 and 2 MPI
processes.

The sample: a Li3B7O12 disc 50 um thick and 20 um in radius, K+ beam (1e-2 A/m^2, 10 eV)
on a spot of 10 um radius, back electrode over the whole back. The mesh (gmsh, layered in
depth: 86 layers from 0.05 nm at the surface, 1 nm over the first 40 nm, growing to 5 um;
laterally 0.2 um at the spot rim growing to 0.8 um) has 366k nodes, 2.1M tetrahedra and
1.1M unknowns (Li, K, phi). The linear systems are solved with the Newton-Krylov option
and the CPR preconditioner (``solver.linear_solver = "iterative"``, ``preconditioner =
"cpr"``, ``ilu_levels = 0``: GMRES, column multigrid for the decoupled potential, block
ILU(0); docs/numerics.md section 9): a direct factorisation of this size does not fit the machine.

The run covers the first millisecond of beam exposure (the surface charging, where Newton
works hardest) with steps doubling from 1 us: the same steps on every process count. Each
process count runs in its own ``mpirun -n N`` (a fresh process, so memory is this run's).
Printed per process count: mesh + form build time, run time, steps, Newton and Krylov
iterations, peak memory (sum over ranks), and the parallel efficiency T1 / (N T_N) of the
run. Target: efficiency >= 0.8 at 2 processes.

For comparison: ``--solver ilu`` (GMRES + block ILU(1): does not converge at this size,
nor on 2 ranks at any size) and ``--size direct --solver mumps`` (the direct solver at the
size it handles in minutes). A failed run is reported as such.

Usage: python bench/scale3d.py [--procs 1 2] [--size large|small|direct] [--solver cpr|ilu|mumps]
"""

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

BIN = Path(sys.executable).parent

SIZES = {
    "large": {"rim_spacing_m": 0.2e-6, "lateral_max_spacing_m": 0.8e-6},   # 1.1e6 unknowns
    "small": {"rim_spacing_m": 1e-6, "lateral_max_spacing_m": 3e-6},       # 1.3e5
    "direct": {"rim_spacing_m": 2e-6, "lateral_max_spacing_m": 5e-6},      # ~5e4: what MUMPS does in minutes
}


SOLVERS = {
    "cpr": {"linear_solver": "iterative", "preconditioner": "cpr", "ilu_levels": 0},
    "ilu": {"linear_solver": "iterative", "preconditioner": "ilu", "ilu_levels": 1},
    "mumps": {"linear_solver": "mumps"},
}
METHODS = {"cpr": "GMRES + CPR (column multigrid for the potential, block ILU(0))", "ilu": "GMRES + block ILU(1)",
           "mumps": "MUMPS LU"}


def experiment(size: dict, solver_name: str):
    import cait_fem as cf
    from cait_fem.case.geometry import Geometry

    glass = cf.Glass.preset("Li3B7O12", temperature_K=300.0, thickness_m=50e-6)
    sed = cf.GaussianSED(fwhm_eV=0.25, vacancy_fraction=0.10, D_bulk_m2_s=1e-17)
    species = (cf.Species("Li", "native", sed), cf.Species("K", "foreign", cf.ConstantD(D_m2_s=5.6e-21)))
    mesh = cf.MeshSettings(front_spacing_m=1e-9, surface_spacing_m=0.05e-9, fine_depth_m=40e-9,
                           growth_ratio=1.3, bulk_spacing_m=5e-6)
    geometry = Geometry(kind="disc", radius_m=20e-6, spot_radius_m=10e-6, lateral_growth_ratio=1.3, **size)
    # time_tolerance large: the steps double from dt_initial_s regardless of the error
    # estimate, so every process count takes the same 10 steps
    run = cf.RunSettings(t_end_s=1.023e-3, dt_initial_s=1e-6, time_tolerance=1e3, max_retries=2)
    solver = cf.SolverSettings(**SOLVERS[solver_name])
    return cf.Experiment(glass=glass, species=species, front=cf.Beam(1e-2, 10.0, 0.5), run=run, mesh=mesh,
                         geometry=geometry, solver=solver, name="scale3d")


def worker(size: dict, solver_name: str, out: Path) -> None:
    from mpi4py import MPI

    from cait_fem.errors import SolverError
    from cait_fem.run.simulation import Simulation

    comm = MPI.COMM_WORLD
    t0 = time.perf_counter()
    sim = Simulation(experiment(size, solver_name), comm=comm)
    comm.barrier()
    build = time.perf_counter() - t0
    try:
        result = sim.run(record_series=True)
    except SolverError as exc:  # reported, not hidden: e.g. GMRES + block ILU on 2 ranks
        if comm.rank == 0:
            out.write_text(json.dumps({"procs": comm.size, "failed": str(exc)[:300],
                                       "build_s": time.perf_counter() - t0}))
        return
    comm.barrier()
    run = time.perf_counter() - t0 - build
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB
    peaks = comm.gather(peak_mb, root=0)
    if comm.rank == 0:
        s = result.stats
        c = sim.newton.cpr
        cpr = {**c.timings, "potential_solves": c.potential_solves,
               "potential_iterations": c.potential_iterations} if c is not None else {}
        out.write_text(json.dumps({"cpr": cpr,
            "procs": comm.size, "dofs": s["dofs"], "cells": s["cells"], "build_s": build, "run_s": run,
            "steps": s["steps"], "newton": s["newton_iterations"], "krylov": s.get("krylov_iterations"),
            "rejected": s["rejected_steps"], "newton_failures": s["newton_failures"],
            "memory_gb": sum(peaks) / 1024.0, "memory_max_rank_gb": max(peaks) / 1024.0,
            "plateau_potential_V": float(result.surface_potential_V[-1]),
        }))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--procs", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--size", choices=list(SIZES), default="large")
    parser.add_argument("--solver", choices=list(SOLVERS), default="cpr",
                        help="linear solver: Newton-Krylov with the CPR or the block-ILU preconditioner, or MUMPS")
    parser.add_argument("--worker", metavar="JSON", help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = SIZES[args.size]
    if args.worker:
        worker(size, args.solver, Path(args.worker))
        return
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        for n in args.procs:
            out = Path(tmp) / f"n{n}.json"
            cmd = [str(BIN / "mpirun"), "-n", str(n), sys.executable, __file__, "--worker", str(out),
                   "--size", args.size, "--solver", args.solver]
            print(f"running {' '.join(cmd[:3])} ...", flush=True)
            proc = subprocess.run(cmd, capture_output=True, text=True)
            if proc.returncode != 0:
                sys.exit(f"mpirun -n {n} failed:\n{proc.stderr[-3000:]}")
            rows.append(json.loads(out.read_text()))
    for r in rows:
        if "failed" in r:
            print(f"\nmpirun -n {r['procs']}: the run FAILED: {r['failed']}")
    rows = [r for r in rows if "failed" not in r]
    if not rows:
        return
    t1 = next((r["run_s"] for r in rows if r["procs"] == 1), None)
    method = METHODS[args.solver]
    print(f"\nSCALE3D ({args.size}): {rows[0]['dofs']:,} unknowns, {rows[0]['cells']:,} tetrahedra, {method}")
    print("| procs | build s | run s | steps | Newton | Krylov | Krylov/Newton | memory GB (sum / max rank) "
          "| efficiency |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        eff = t1 / (r["procs"] * r["run_s"]) if t1 else float("nan")
        kry = r["krylov"] if r["krylov"] is not None else float("nan")
        print(f"| {r['procs']} | {r['build_s']:.1f} | {r['run_s']:.1f} | {r['steps']} | {r['newton']} | {kry} | "
              f"{kry / max(r['newton'], 1):.1f} | {r['memory_gb']:.2f} / {r['memory_max_rank_gb']:.2f} | {eff:.2f} |")
    for r in rows:
        if r["cpr"]:
            stages = ", ".join(f"{k} {v:.1f}" for k, v in r["cpr"].items() if k.endswith("_s"))
            print(f"CPR on {r['procs']} process(es), rank 0: {stages} [s]; {r['cpr']['potential_solves']} "
                  f"potential solves, {r['cpr']['potential_iterations']} multigrid-preconditioned iterations")
    print("\nTarget: efficiency >= 0.8 at 2 processes.")


if __name__ == "__main__":
    main()
