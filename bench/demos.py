"""Run time of each demo: one line per demo with its wall time and key numbers.

Each demo runs as its own process (``python demos/<name>.py --output <tmp> --overwrite``),
so the time includes start-up and JIT compilation from the current cache. The key
numbers are read from the demo's JSON summary. Add a demo by adding a line to DEMOS.

Usage: python bench/demos.py [--only NAME ...] [--keep DIR]
"""

import argparse
import json
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def _double_cait(summary: dict) -> str:
    fit = summary.get("fit", {})
    D_Rb = fit.get("species.Rb.diffusion.D_m2_s", {}).get("value", float("nan"))
    D_Cs = fit.get("species.Cs.diffusion.D_m2_s", {}).get("value", float("nan"))
    return (f"Li+ plateau {summary['step1_plateau_Li']:.3f} -> {summary['step2_plateau_Li']:.3f}, front "
            f"{summary['step1_front_nm']:.0f} -> {summary['step2_front_nm']:.0f} nm; fit D_Rb {D_Rb:.3g}, "
            f"D_Cs {D_Cs:.3g} m^2/s in {summary.get('fit_wall_s', float('nan')):.0f} s")


def _temperature_series(summary: dict) -> str:
    E = summary["fit"]["species.Li.diffusion.E_DC_eV"]
    return (f"E_DC {E['value']:.3f} eV [{E['ci95'][0]:.3f}, {E['ci95'][1]:.3f}] (true {E['true']:.2f}); "
            f"E_act(0.2) {summary['E_act_eV']['theta_0.2']:.3f} eV; joint fit {summary['joint_fit_wall_s']:.0f} s, "
            f"{summary['forward_solves']} solves")


# name, script arguments beyond --output/--overwrite, summary file, formatter
DEMOS = [
    ("double_cait", [], "double_cait.json", _double_cait),
    ("temperature_series", [], "temperature_series.json", _temperature_series),
]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--only", nargs="+", choices=[d[0] for d in DEMOS], help="run only these demos")
    parser.add_argument("--keep", help="write the demos' outputs here (default: a temporary directory)")
    args = parser.parse_args()
    base = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="cait_demos_"))
    print(f"{'demo':20s} {'wall time':>10s}  key numbers")
    for name, extra, summary_file, describe in DEMOS:
        if args.only and name not in args.only:
            continue
        out = base / name
        t0 = time.perf_counter()
        proc = subprocess.run([sys.executable, str(ROOT / "demos" / f"{name}.py"), "--output", str(out),
                               "--overwrite", *extra], capture_output=True, text=True)
        wall = time.perf_counter() - t0
        if proc.returncode != 0:
            print(f"{name:20s} {wall:9.1f}s  FAILED (exit {proc.returncode}): {proc.stderr.strip()[-300:]}")
            continue
        summary = json.loads((out / summary_file).read_text(encoding="utf-8"))
        print(f"{name:20s} {wall:9.1f}s  {describe(summary)}", flush=True)


if __name__ == "__main__":
    main()
