"""Double CAIT: Rb+ @ Li3B7O12, then Cs+ @ Rb+ @ Li3B7O12, and a sequential fit of both.

The Marburg group's double-CAIT study (Cs+@Rb+@Li3B7O12, PCCP 2026) bombards a lithium
borate glass first with Rb+, then with Cs+. In the second step three mobile species share
the glass: native Li+, the Rb+ of step 1 and the entering Cs+. The study reports that
D(Rb+) is constant in step 1 but depends on concentration in step 2, that Cs+ pushes Rb+
and Li+ deeper, and that step 1 does not reach equilibrium. Here:

1. step 1 (``demos/double_cait_step1.toml``) runs from the pristine glass, step 2
   (``demos/double_cait_step2.toml``) from step 1's final state; D(Rb+) in step 2 depends
   on the Cs+ fraction (``model = "log_linear"``, docs/model.md section 3.9);
2. synthetic "measured" profiles of both steps (step 2 as raw ToF-SIMS counts of three
   ions) are fitted together (``demos/double_cait_fit.toml``): step 2 starts from step 1's
   model state at every evaluation of the fit.

The D values are demo values, not fitted to the study. Run with
``python demos/double_cait.py [--output DIR] [--overwrite] [--no-fit]``.
"""

import argparse
import time
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import numpy as np

import cait_fem as cf
from cait_fem.analysis.measured import write_profile_csv
from cait_fem.fileio import write_json_atomic
from cait_fem.fit import fit_case_from_dict, run_fit
from cait_fem.output.result_set import check_output_place

HERE = Path(__file__).resolve().parent
NOISE = 0.01
COUNTS_PER_FRACTION = {"Li": 5000.0, "Rb": 3000.0, "Cs": 1200.0}  # detection efficiencies differ


# ## Two steps, one sample
#
# Step 2 names all three species; Rb+ is foreign in both steps. Its law in step 2,
# log10 D = log10 D_m2_s + decades * theta_Cs, equals step 1's constant D wherever no Cs+
# has arrived, so step 1 is the same physics at theta_Cs = 0.

step1 = cf.load_case(HERE / "double_cait_step1.toml")
step2 = cf.load_case(HERE / "double_cait_step2.toml")


def amounts_nm(result):
    """Per species: content [nm of the bulk density] (native: the deficit 1 - theta)."""
    return {s: float(np.trapezoid(1.0 - result.theta[-1, i] if i == 0 else result.theta[-1, i], result.depth_m) * 1e9)
            for i, s in enumerate(result.species_names)}


def centroid_nm(result, species):
    i = result.species_names.index(species)
    th, x = result.theta[-1, i], result.depth_m
    return float(np.trapezoid(x * th, x) / np.trapezoid(th, x) * 1e9)


def plot_steps(r1, r2, path):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    colors = {"Li": "tab:blue", "Rb": "tab:green", "Cs": "tab:purple"}
    fig = Figure(figsize=(9.0, 3.8), layout="constrained")
    axes = fig.subplots(1, 2, sharey=True)
    for ax, r, title in ((axes[0], r1, "step 1: Rb+ @ Li3B7O12"), (axes[1], r2, "step 2: Cs+ @ Rb+ @ Li3B7O12")):
        for i, s in enumerate(r.species_names):
            ax.plot(r.depth_m * 1e9, r.theta[-1, i], color=colors.get(s), label=s)
        if r is r2:  # step 1's end, where step 2 started
            for i, s in enumerate(r1.species_names):
                ax.plot(r1.depth_m * 1e9, r1.theta[-1, i], color=colors.get(s), ls=":", lw=1.0)
        ax.set_xlim(0, 250)
        ax.set_xlabel("depth [nm]")
        ax.set_title(title, fontsize=10)
        ax.legend(fontsize=8)
    axes[0].set_ylabel("theta = n / n_bg")
    FigureCanvasAgg(fig).print_png(str(path))
    return path


# ## Synthetic measurements
#
# The model at the cases' values, sampled every nm down to 300 nm with 1 % noise: step 1 as
# fractions, step 2 as raw counts (each ion with its own counts per fraction), which the
# reader normalises (native bulk = 1, foreign factors by 1:1 replacement over the replaced
# zone, fitted jointly for Rb+ and Cs+). The same numerics make and fit the data here (an
# "inverse crime"); tests/test_double_cait.py fits data from finer numerics.

def write_synthetic(r1, r2, directory: Path, seed=3):
    rng = np.random.default_rng(seed)
    z = np.arange(1.0, 300.0, 1.0) * 1e-9
    noisy = lambda r, i: np.interp(z, r.depth_m, r.theta[-1, i]) + rng.normal(0.0, NOISE, z.size)  # noqa: E731
    directory.mkdir(parents=True, exist_ok=True)
    write_profile_csv(directory / "step1.csv", z, {s: noisy(r1, i) for i, s in enumerate(r1.species_names)},
                      comments=[f"synthetic: demos/double_cait.py, step 1, noise {NOISE}, seed {seed}"])
    counts = {s: np.round(np.clip(noisy(r2, i), 0.0, None) * COUNTS_PER_FRACTION[s])
              for i, s in enumerate(r2.species_names)}
    lines = [f"# synthetic: demos/double_cait.py, step 2 as raw counts, noise {NOISE}, seed {seed}",
             "depth_nm," + ",".join(f"counts_{s}" for s in counts)]
    lines += [",".join([f"{zi * 1e9:g}"] + [f"{c[k]:.0f}" for c in counts.values()]) for k, zi in enumerate(z)]
    (directory / "step2_counts.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="results/double_cait", help="output directory")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier results there")
    parser.add_argument("--no-fit", action="store_true", help="the two steps only")
    args = parser.parse_args()
    out = Path(args.output)
    files = ["double_cait_profiles.png", "double_cait.json", "data", "fit"]
    check_output_place(out, files, overwrite=args.overwrite)
    out.mkdir(parents=True, exist_ok=True)

    # ## Step 1, then step 2 from its final state
    wall0 = time.perf_counter()
    r1 = cf.simulate(step1)
    r2 = cf.simulate(step2, initial=r1)
    run_s = time.perf_counter() - wall0
    plot_steps(r1, r2, out / "double_cait_profiles.png")
    a1, a2 = amounts_nm(r1), amounts_nm(r2)
    m1, m2 = r1.metrics(), r2.metrics()
    numbers = {
        "step1_plateau_Li": m1["plateau_native"], "step2_plateau_Li": m2["plateau_native"],
        "step1_front_nm": m1["front_position_m"] * 1e9, "step2_front_nm": m2["front_position_m"] * 1e9,
        "step1_Rb_centroid_nm": centroid_nm(r1, "Rb"), "step2_Rb_centroid_nm": centroid_nm(r2, "Rb"),
        "step2_Cs_centroid_nm": centroid_nm(r2, "Cs"),
        "Rb_content_nm": [a1["Rb"], a2["Rb"]], "Cs_content_nm": a2["Cs"], "Li_deficit_nm": [a1["Li"], a2["Li"]],
        # step 1 ends far from equilibrium: the beam still lands and the front still moves
        "step1_front_nm_at_2000s": r1.metrics(2000.0)["front_position_m"] * 1e9,
        "step1_final_current_A_m2": float(r1.current_density_A_m2[-1]),
        "runs_wall_s": run_s,
    }
    print(f"step 1 (Rb+, {step1.run.t_end_s:.0f} s): Li+ plateau {numbers['step1_plateau_Li']:.3f}, front "
          f"{numbers['step1_front_nm']:.1f} nm, Rb+ centroid {numbers['step1_Rb_centroid_nm']:.1f} nm")
    print(f"  not in equilibrium: front {numbers['step1_front_nm_at_2000s']:.1f} nm at 2000 s, still "
          f"{numbers['step1_final_current_A_m2']:.2e} A/m^2 landing at the end")
    print(f"step 2 (Cs+, {step2.run.t_end_s:.0f} s): Li+ plateau {numbers['step2_plateau_Li']:.3f}, front "
          f"{numbers['step2_front_nm']:.1f} nm, Rb+ centroid {numbers['step2_Rb_centroid_nm']:.1f} nm "
          f"(pushed deeper), Cs+ centroid {numbers['step2_Cs_centroid_nm']:.1f} nm")
    print(f"Rb+ content {a1['Rb']:.4f} -> {a2['Rb']:.4f} nm (conserved), Cs+ {a2['Cs']:.3f} nm, "
          f"Li+ deficit {a1['Li']:.3f} -> {a2['Li']:.3f} nm; both runs {run_s:.1f} s")

    # ## The sequential fit
    if not args.no_fit:
        write_synthetic(r1, r2, out / "data")
        d = tomllib.loads((HERE / "double_cait_fit.toml").read_text(encoding="utf-8"))
        for e, name in zip(d["experiment"], ("step1.csv", "step2_counts.csv")):
            e["data"] = str((out / "data" / name).resolve())
        case = fit_case_from_dict(d, HERE, str(HERE / "double_cait_fit.toml"))
        result = run_fit(case)
        result.save(out / "fit", overwrite=True)
        true = {"species.Rb.diffusion.D_m2_s": step2.species[1].diffusion.D_m2_s,
                "species.Rb.diffusion.decades[0]": step2.species[1].diffusion.decades[0],
                "species.Cs.diffusion.D_m2_s": step2.species[2].diffusion.D_m2_s}
        numbers["fit"] = {}
        for e in result.estimates:
            path = e.parameter.path + ("" if e.parameter.index is None else f"[{e.parameter.index}]")
            numbers["fit"][path] = {"value": e.value, "ci95": list(e.ci95), "true": true[path]}
            print(f"  {path:34s} {e.value:.4g}  ci95 [{e.ci95[0]:.4g}, {e.ci95[1]:.4g}]  true {true[path]:.4g}")
        numbers["fit_wall_s"] = result.wall_time_s
        numbers["fit_reduced_chi2"] = result.reduced_chi2
        print(f"fit: reduced chi2 {result.reduced_chi2:.3f}, {result.evaluations} evaluations, "
              f"{result.forward_solves} forward solves, {result.wall_time_s:.1f} s")
    write_json_atomic(out / "double_cait.json", numbers)
    return numbers


if __name__ == "__main__":
    main()
