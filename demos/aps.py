"""Alkali-proton substitution (APS): H+ from a hydrogen plasma or corona replaces Li+ in Li3B7O12 glass.

A hydrogen plasma or a corona discharge on the front of a 1 mm lithium borate glass
supplies protons; a field between the front and the grounded back electrode drives them
in, and the native Li+ ions leave at the back. Two models of the source:

* a potential front: the surface is kept protonated (H+ fraction 1) at 10 V; the current
  is what the glass lets through (docs/model.md section 4.8);
* a current front: a fixed H+ influx (here the mean current of the first run), the
  surface potential rising as needed.

Like K+ in CAIT (demos/k_cait.py), the slow protons push a sharp front into the glass
ahead of them, and behind it sits the plateau of Li+ ions that could not leave because
their diffusion coefficient collapsed (the Li+ site energy distribution emptied).

ASSUMED values: D(H+) = 1e-20 m^2/s in Li3B7O12 (the glass preset's, marked there as
assumed), the H+ surface fraction 1 and the 10 V of the source. Run with
``python demos/aps.py [--output DIR] [--overwrite]``.
"""

import argparse
import dataclasses
import time
from pathlib import Path

import numpy as np
from scipy import constants as sc

import cait_fem as cf

HERE = Path(__file__).resolve().parent

# ## The experiment
#
# The case file: Li3B7O12 (preset: n_bg = 1.41e28 m^-3, eps_r = 8, Li+ with its Gaussian
# SED law), 1 mm, 300 K; H+ with the preset's charge (1) and assumed D; the front held at
# 10 V with the H+ fraction 1; 10^4 s.

experiment = cf.load_case(HERE / "aps.toml")
glass, front = experiment.glass, experiment.front

# The ohmic current of the pristine glass, sigma U / d with the Nernst-Einstein
# conductivity sigma = e^2 n_bg D_Li / (k_B T) at theta_Li = 1: the current at the start,
# before the proton layer adds its resistance.

D_LI = experiment.native.diffusion.D_bulk_m2_s
SIGMA_S_M = sc.e**2 * glass.n_bg_m3 * D_LI / (sc.k * glass.temperature_K)
OHMIC_A_M2 = SIGMA_S_M * front.U_V / glass.thickness_m


def current_front_variant(mean_current_A_m2):
    """The same glass and protons under a constant H+ current instead of a held potential."""
    return dataclasses.replace(experiment, name="APS_Li3B7O12_current",
                               front=cf.CurrentFront(current_density_A_m2=mean_current_A_m2, species="H"))


def proton_front_nm(result, k=-1) -> float:
    """Depth [nm] where the H+ fraction falls through 1/2."""
    th, x = result.theta[k, 1], result.depth_m
    i = int(np.argmax(th < 0.5))
    return float(np.interp(0.5, th[[i, i - 1]], x[[i, i - 1]]) * 1e9)


def plot(potential, current, directory):
    from matplotlib.figure import Figure

    from cait_fem.output.plots import save_figure

    fig = Figure(figsize=(9.5, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    x1, x2 = potential.depth_m * 1e9, current.depth_m * 1e9
    reach = 1.5 * proton_front_nm(potential)
    a, b = x1 < reach, x2 < reach
    ax1.plot(x1[a], potential.theta[-1, 1][a], color="C3", label="H$^+$, potential front")
    ax1.plot(x1[a], potential.theta[-1, 0][a], color="C0", label="Li$^+$, potential front")
    ax1.plot(x2[b], current.theta[-1, 1][b], color="C3", ls="--", label="H$^+$, current front")
    ax1.plot(x2[b], current.theta[-1, 0][b], color="C0", ls="--", label="Li$^+$, current front")
    ax1.set(xlabel="depth [nm]", ylabel=r"$\theta$", title=f"profiles at t = {potential.output_times_s[-1]:g} s")
    ax1.legend(fontsize=8)
    ax2.semilogx(potential.time_s[1:], potential.current_density_A_m2[1:] * 1e3, label="potential front: current")
    ax2.axhline(OHMIC_A_M2 * 1e3, color="k", ls=":", lw=1, label=r"ohmic $\sigma U / d$ (pristine)")
    ax2.set(xlabel="time [s]", ylabel="current density [mA/m$^2$]", title="current and surface potential")
    volt = ax2.twinx()
    volt.semilogx(current.time_s[1:], current.surface_potential_V[1:], color="C1", label="current front: U")
    volt.set_ylabel("surface potential [V] (current front)", color="C1")
    ax2.legend(fontsize=8, loc="lower left")
    fig.tight_layout()
    return [save_figure(fig, Path(directory) / "aps_sources.png")]


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="results/aps", help="output directory")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier results there")
    args = parser.parse_args()
    from cait_fem.output.result import OUTPUT_FILES
    from cait_fem.output.result_set import ResultSet, check_output_place

    names = OUTPUT_FILES + ("aps_sources.png",)
    check_output_place(args.output, names, overwrite=args.overwrite)
    t0 = time.perf_counter()
    potential = cf.simulate(experiment)
    wall = time.perf_counter() - t0
    mean_current = potential.charge_C_m2[-1] / potential.time_s[-1]
    t0 = time.perf_counter()
    current = cf.simulate(current_front_variant(mean_current))
    wall_current = time.perf_counter() - t0
    with ResultSet(args.output, owned=names) as staged:
        potential.save(staged.staging, overwrite=True)
        potential.plot(staged.staging, overwrite=True)
        plot(potential, current, staged.staging)
        written = staged.commit()

    # ## Key numbers
    s, c = potential.summary(), current.summary()
    protons = potential.foreign_inside_m2[-1]
    print(f"\nAPS: H+ into {glass.name}, {glass.thickness_m * 1e3:g} mm, after {potential.time_s[-1]:g} s")
    print(f"  potential front ({front.U_V:g} V, H+ fraction {front.surface_fraction:g}):")
    print(f"    H+ front (theta_H = 1/2)       {proton_front_nm(potential):.1f} nm")
    print(f"    Li+ plateau behind it           {s['plateau_native']:.3f}")
    print(f"    current at start / end          {potential.current_density_A_m2[1]:.3e} / "
          f"{potential.current_density_A_m2[-1]:.3e} A/m^2 (ohmic sigma U / d = {OHMIC_A_M2:.3e})")
    print(f"    charge passed / e N_H           {potential.charge_C_m2[-1]:.2f} / {sc.e * protons:.2f} C/m^2")
    print(f"    {s['steps']} steps, {wall:.1f} s")
    print(f"  current front ({mean_current:.3e} A/m^2):")
    print(f"    H+ front (theta_H = 1/2)       {proton_front_nm(current):.1f} nm")
    print(f"    Li+ plateau behind it           {c['plateau_native']:.3f}")
    print(f"    surface potential at the end    {current.surface_potential_V[-1]:.2f} V")
    print(f"    {c['steps']} steps, {wall_current:.1f} s")
    print(f"\nWrote {len(written)} files to {args.output}/")


if __name__ == "__main__":
    main()
