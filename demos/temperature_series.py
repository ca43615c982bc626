"""Temperature series: K+ CAIT on Li3B7O12 at 300, 320 and 340 K, fitted together.

The same CAIT experiment at several temperatures probes the thermal activation of the
native ion. With a Gaussian site energy distribution (SED) and D_bulk(T) = D0
exp(-E_DC / k_B T), the native ion's diffusion coefficient at fraction theta is

    D(theta, T) = D0 exp(-E_act(theta) / k_B T),   E_act(theta) = E_DC - (E_F(theta) - E_F(1)),

so its activation energy grows as the SED empties (docs/model.md section 3.8). This demo

1. makes synthetic "measured" profiles at the three temperatures (a finer model than the
   fit's, with 1 % noise),
2. fits them together (``demos/temperature_series_fit.toml``): one D_bulk at 320 K, E_DC
   and SED width for all three (D0 follows), and writes E_act(theta) (``activation_energy.csv``) and the Arrhenius plot,
3. fits each temperature alone for its own D_bulk (E_DC and the width held at the joint
   values), the independent points of the Arrhenius plot.

D0 and E_DC themselves are a poor pair of fit parameters: over 300-340 K they correlate
to 1 - 1e-4 (the profiles fix D_bulk in the middle of the range), the finite-difference
Jacobian cannot resolve the ridge, and the fit stops early with intervals far too narrow
(seen with this demo: E_DC 0.769 +- 0.0003 eV against a true 0.80). The case therefore
gives D_bulk at T_ref = 320 K (``D_ref_m2_s``, ``T_ref_K``) with E_DC.

Run with ``python demos/temperature_series.py [--output DIR] [--overwrite]``.
"""

import argparse
import math
import time
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import numpy as np

import cait_fem as cf
from cait_fem.analysis.measured import write_profile_csv
from cait_fem.case.case_file import experiment_from_dict, experiment_to_dict
from cait_fem.fileio import write_json_atomic
from cait_fem.fit import fit_case_from_dict, run_fit
from cait_fem.fit.arrhenius import activation_energy, plot_arrhenius, series_summary
from cait_fem.output.result_set import check_output_place
from cait_fem.physics.sed import kT_eV

HERE = Path(__file__).resolve().parent
FIT_FILE = HERE / "temperature_series_fit.toml"
NOISE = 0.01


# ## Synthetic measurements
#
# The run case at each temperature of the fit file, on a 2x finer mesh with a 4x tighter
# time tolerance than the fit's model (no "inverse crime"), sampled every 2 nm to 300 nm.

def write_synthetic(fit_dict, directory: Path, seed=5):
    directory.mkdir(parents=True, exist_ok=True)
    base = experiment_to_dict(cf.load_case(HERE / fit_dict["experiment"][0]["case"]))
    rng = np.random.default_rng(seed)
    z = np.arange(2.0, 300.0, 2.0) * 1e-9
    for e in fit_dict["experiment"]:
        d = experiment_to_dict(experiment_from_dict(base))
        d["glass"]["temperature_K"] = e["temperature_K"]
        d["mesh"]["front_spacing_m"] = 0.1e-9
        d["run"]["time_tolerance"] = 2.5e-4
        r = cf.simulate(experiment_from_dict(d))
        theta = {s: np.interp(z, r.depth_m, r.theta[-1, i]) + rng.normal(0.0, NOISE, z.size)
                 for i, s in enumerate(r.species_names)}
        write_profile_csv(directory / Path(e["data"]).name, z, theta,
                          comments=[f"synthetic: demos/temperature_series.py, {e['temperature_K']} K, "
                                    f"noise {NOISE}, seed {seed}"])


def fit_dict_with_data(directory: Path) -> dict:
    d = tomllib.loads(FIT_FILE.read_text(encoding="utf-8"))
    for e in d["experiment"]:
        e["data"] = str((directory / Path(e["data"]).name).resolve())
    return d


# ## One temperature at a time
#
# The points of the Arrhenius plot: each experiment fitted alone for its own D_ref with
# E_DC and the SED width fixed at the joint fit's values, so that D_bulk(T) = D_ref,T
# exp(-(E_DC / k_B) (1/T - 1/T_ref)) is that temperature's own estimate.

def per_temperature_points(d: dict, joint) -> dict:
    E = joint.value("species.Li.diffusion.E_DC_eV")
    d = dict(d)
    d["fit"] = {"max_evaluations": 15, "parameters": {
        "species.Li.diffusion.D_ref_m2_s": {"initial": joint.value("species.Li.diffusion.D_ref_m2_s"),
                                            "min": 1e-20, "max": 1e-14, "log": True},
        "species.Li.diffusion.E_DC_eV": {"initial": E, "fixed": True},
        "species.Li.diffusion.fwhm_eV": {"initial": joint.value("species.Li.diffusion.fwhm_eV"), "fixed": True}}}
    alone = run_fit(fit_case_from_dict(d, HERE, str(FIT_FILE) + " (per temperature)"), quiet=True)
    points = {}
    for e in alone.estimates:
        name = e.parameter.targets[0]
        exp = alone.experiment(name)
        T = exp.glass.temperature_K
        law = exp.native.diffusion
        factor = math.exp(-E * (1.0 / float(kT_eV(T)) - 1.0 / float(kT_eV(law.T_ref_K))))  # D_bulk(T) / D_ref
        points[name] = (T, e.value * factor, e.ci95[0] * factor, e.ci95[1] * factor)
    return points


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="results/temperature_series", help="output directory")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier results there")
    args = parser.parse_args()
    out = Path(args.output)
    check_output_place(out, ["data", "fit", "temperature_series_arrhenius.png", "temperature_series.json"],
                       overwrite=args.overwrite)
    wall0 = time.perf_counter()
    fit_dict = tomllib.loads(FIT_FILE.read_text(encoding="utf-8"))
    write_synthetic(fit_dict, out / "data")
    d = fit_dict_with_data(out / "data")

    # ## The joint fit
    joint = run_fit(fit_case_from_dict(d, HERE, str(FIT_FILE)))
    joint.save(out / "fit", overwrite=True)  # with activation_energy.csv, fit_arrhenius.png
    base = cf.load_case(HERE / "temperature_series.toml").native.diffusion
    true = {"species.Li.diffusion.D_ref_m2_s": base.D_ref_m2_s, "species.Li.diffusion.E_DC_eV": base.E_DC_eV,
            "species.Li.diffusion.fwhm_eV": base.fwhm_eV}
    numbers = {"fit": {}}
    for e in joint.estimates:
        p = e.parameter.name
        numbers["fit"][p] = {"value": e.value, "ci95": list(e.ci95), "true": true[p]}
        print(f"  {p:32s} {e.value:.4g}  ci95 [{e.ci95[0]:.4g}, {e.ci95[1]:.4g}]  true {true[p]:.4g}")
    summary = series_summary(joint)
    numbers["D0_m2_s"] = {"value": summary["D0_m2_s"], "ci95": summary["D0_ci95_m2_s"], "true": base.prefactor_m2_s}
    print(f"  D0 = D_ref exp(E_DC / k_B T_ref)    {summary['D0_m2_s']:.4g}  ci95 [{summary['D0_ci95_m2_s'][0]:.4g}, "
          f"{summary['D0_ci95_m2_s'][1]:.4g}]  true {base.prefactor_m2_s:.4g}")
    act = activation_energy(joint, [1.0, 0.5, 0.2])
    numbers["E_act_eV"] = dict(zip(("theta_1", "theta_0.5", "theta_0.2"), act["E_act_eV"].tolist()))
    print("  E_act(theta = 1, 0.5, 0.2) = " + ", ".join(f"{v:.3f}" for v in act["E_act_eV"]) + " eV")

    # ## Per temperature, and the Arrhenius plot
    points = per_temperature_points(d, joint)
    for name, (_, D, lo, hi) in points.items():
        joint_D = summary["experiments"][name]["D_bulk_m2_s"]
        print(f"  {name}: D_bulk alone {D:.3e} [{lo:.3e}, {hi:.3e}] m^2/s, joint fit {joint_D:.3e}")
    numbers["per_temperature_D_bulk_m2_s"] = {n: list(v) for n, v in points.items()}
    plot_arrhenius(joint, out / "temperature_series_arrhenius.png",
                   # matplotlib leaves labels starting with "_" out of the legend
                   points={"one temperature at a time" if i == 0 else f"_{n}": v for i, (n, v) in
                           enumerate(points.items())})
    numbers.update(joint_fit_wall_s=joint.wall_time_s, reduced_chi2=joint.reduced_chi2,
                   evaluations=joint.evaluations, forward_solves=joint.forward_solves,
                   total_wall_s=time.perf_counter() - wall0)
    write_json_atomic(out / "temperature_series.json", numbers)
    print(f"joint fit: reduced chi2 {joint.reduced_chi2:.3f}, {joint.evaluations} evaluations, "
          f"{joint.forward_solves} forward solves, {joint.wall_time_s:.1f} s; total {numbers['total_wall_s']:.1f} s")
    return numbers


if __name__ == "__main__":
    main()
