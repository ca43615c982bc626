"""Thermal electro-poling of a thin sodium glass film: the depletion layer under a blocking anode.

A metal anode on the front of a 1 um glass film is raised to 10 V at 100 V/s and held;
the back electrode is grounded and takes up the Na+ ions that arrive (the cathode). The
anode lets no ion through, so the Na+ ions are driven away from it and leave behind a
layer of bare anionic background: the depletion layer. It grows until the whole voltage
drops across it, at the width w = sqrt(2 eps0 eps_r U / (e n_bg)) (docs/model.md section
4.6). The current in the external circuit rises with the voltage ramp and dies away as the
layer takes over the voltage; its time integral is the charge of the depleted layer.

A second run adds a slow second carrier, H+, supplied by the anode (a contact that holds
the H+ fraction at 1 and the same voltage history), as in two-carrier poling models: the
H+ ions follow the Na+ ions into the depleted zone, so the layer of bare background is
narrower and moves inward.

The glass values are ASSUMED round numbers for a demonstration (demos/poling.toml), not
data of a real glass. Run with ``python demos/poling.py [--output DIR] [--overwrite]``.
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
# The case file holds the glass (1e25 Na+ per m^3, eps_r = 8, 500 K, 1 um), the native
# Na+ ion (constant D = 1e-16 m^2/s, assumed) and the anode with its ramp-and-hold voltage.

experiment = cf.load_case(HERE / "poling.toml")
glass, front = experiment.glass, experiment.front

# The steady depletion width of the held voltage, and the Debye length of the glass, the
# width of the depletion layer's edge.

U_HOLD = front.U_V
W_DEPLETION_M = np.sqrt(2 * sc.epsilon_0 * glass.eps_r * U_HOLD / (sc.e * glass.n_bg_m3))
DEBYE_M = np.sqrt(sc.epsilon_0 * glass.eps_r * sc.k * glass.temperature_K / (sc.e**2 * glass.n_bg_m3))

# The two-carrier variant: H+ enters from the anode, which now holds the H+ fraction at 1
# (a potential front with the same voltage history); D(H+) = 1e-18 m^2/s, a hundred times
# slower than Na+, is assumed.

hydrogen = cf.Species("H", "foreign", cf.ConstantD(D_m2_s=1e-18))
two_carrier = dataclasses.replace(
    experiment, name="poling_Na_glass_H_injection", species=(experiment.native, hydrogen),
    front=cf.PotentialFront(surface_fraction=1.0, voltage="ramp", U_V=front.U_V, ramp_rate_V_s=front.ramp_rate_V_s))


def half_depth_nm(theta, depth_m) -> float:
    """Depth [nm] where theta first rises through 1/2: the depletion edge."""
    i = int(np.argmax(theta >= 0.5))
    return float(np.interp(0.5, theta[i - 1:i + 1], depth_m[i - 1:i + 1]) * 1e9)


def run(exp):
    """Simulate ``exp``, recording the charge on the anode at every step."""
    from cait_fem.post.anode import AnodeCharge

    sim = cf.Simulation(exp)
    anode = AnodeCharge(sim)
    t0 = time.perf_counter()
    result = sim.run(callbacks=[anode])
    return result, anode, time.perf_counter() - t0


# ## Figures


def plot(result, anode, two, directory):
    from matplotlib.figure import Figure

    from cait_fem.output.plots import save_figure, shades

    x_nm = result.depth_m * 1e9
    near = x_nm < 3 * W_DEPLETION_M * 1e9
    colors = shades("Blues", len(result.output_times_s))
    paths = []

    fig = Figure(figsize=(9.5, 3.6))
    ax1, ax2 = fig.subplots(1, 2)
    for k, t in enumerate(result.output_times_s):
        ax1.plot(x_nm[near], result.theta[k, 0][near], color=colors[k], label=f"{t * 1e3:g} ms")
        # the field E = -d phi / dx [V/m], on the cell midpoints
        mid = 0.5 * (x_nm[1:] + x_nm[:-1])
        field = -np.diff(result.potential_V[k]) / np.diff(result.depth_m)
        ax2.plot(mid[near[1:]], field[near[1:]] / 1e9, color=colors[k])
    ax1.axvline(W_DEPLETION_M * 1e9, color="k", ls=":", lw=1, label="w (full depletion)")
    ax1.set(xlabel="depth [nm]", ylabel=r"$\theta_{Na}$", title="Na$^+$ under the anode")
    ax1.legend(fontsize=8)
    ax2.set(xlabel="depth [nm]", ylabel="field E [GV/m]", title="electric field")
    fig.tight_layout()
    paths.append(save_figure(fig, Path(directory) / "poling_profiles.png"))

    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.subplots()
    t_anode, j_anode = anode.current()
    ax.loglog(result.time_s[1:], np.abs(result.current_density_A_m2[1:]), label="back electrode (ionic)")
    ax.loglog(t_anode, np.abs(j_anode), ls="--", label="anode (displacement)")
    ax.set(xlabel="time [s]", ylabel="|current density| [A/m$^2$]", title="current transient", xlim=(1e-4, None))
    ax.legend(fontsize=8, loc="lower left")
    volt = ax.twinx()
    volt.semilogx(result.time_s[1:], [front.voltage_at(t) for t in result.time_s[1:]], color="grey", lw=1)
    volt.set_ylabel("anode voltage [V]", color="grey")
    fig.tight_layout()
    paths.append(save_figure(fig, Path(directory) / "poling_current.png"))

    fig = Figure(figsize=(6.0, 4.0))
    ax = fig.subplots()
    x2 = two.depth_m * 1e9
    sel = x2 < 3 * W_DEPLETION_M * 1e9
    ax.plot(x_nm[near], result.theta[-1, 0][near], color="C0", ls=":", label="Na$^+$, blocking anode")
    ax.plot(x2[sel], two.theta[-1, 0][sel], color="C0", label="Na$^+$, H$^+$-supplying anode")
    ax.plot(x2[sel], two.theta[-1, 1][sel], color="C3", label="H$^+$")
    ax.set(xlabel="depth [nm]", ylabel=r"$\theta$", title=f"two carriers at t = {two.output_times_s[-1]:g} s")
    ax.legend(fontsize=8)
    fig.tight_layout()
    paths.append(save_figure(fig, Path(directory) / "poling_two_carriers.png"))
    return paths


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="results/poling", help="output directory")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier results there")
    args = parser.parse_args()
    from cait_fem.output.result import OUTPUT_FILES
    from cait_fem.output.result_set import ResultSet, check_output_place

    names = OUTPUT_FILES + ("poling_profiles.png", "poling_current.png", "poling_two_carriers.png")
    check_output_place(args.output, names, overwrite=args.overwrite)
    result, anode, wall = run(experiment)
    two, _, wall_two = run(two_carrier)
    with ResultSet(args.output, owned=names) as staged:
        result.save(staged.staging, overwrite=True)
        result.plot(staged.staging, overwrite=True)
        plot(result, anode, two, staged.staging)
        written = staged.commit()

    # ## Key numbers
    depleted = sc.e * glass.n_bg_m3 * np.trapezoid(1 - result.theta[-1, 0], result.depth_m)
    passed = np.trapezoid(result.current_density_A_m2, result.time_s)
    peak = int(np.argmax(result.current_density_A_m2))
    print(f"\nPoling {glass.name}, {glass.thickness_m * 1e6:g} um, {U_HOLD:g} V "
          f"(ramp {front.ramp_rate_V_s:g} V/s), t = {result.time_s[-1]:g} s:")
    print(f"  depletion edge (theta = 1/2)   {half_depth_nm(result.theta[-1, 0], result.depth_m):.2f} nm")
    print(f"  sqrt(2 eps U / (e n_bg))       {W_DEPLETION_M * 1e9:.2f} nm (Debye length {DEBYE_M * 1e9:.2f} nm)")
    print(f"  peak current                   {result.current_density_A_m2[peak]:.3g} A/m^2 "
          f"at {result.time_s[peak] * 1e3:.3g} ms")
    print(f"  final current                  {result.current_density_A_m2[-1]:.2e} A/m^2")
    print(f"  int J dt (back electrode)      {passed:.5g} C/m^2")
    print(f"  depleted charge e n int(1-th)  {depleted:.5g} C/m^2")
    print(f"  anode charge                   {anode.charge_C_m2[-1]:.5g} C/m^2")
    field = -np.diff(result.potential_V[-1]) / np.diff(result.depth_m)
    print(f"  maximum field                  {field.max():.3g} V/m")
    print(f"  {result.stats['steps']} steps, {wall:.1f} s")
    print(f"Two carriers (H+ from the anode, D_H = {hydrogen.diffusion.D_m2_s:g} m^2/s):")
    print(f"  H+ layer (theta_H = 1/2)       {half_depth_nm(1 - two.theta[-1, 1], two.depth_m):.2f} nm")
    print(f"  Na+ edge (theta_Na = 1/2)      {half_depth_nm(two.theta[-1, 0], two.depth_m):.2f} nm")
    print(f"  final current                  {two.current_density_A_m2[-1]:.2e} A/m^2")
    print(f"  {two.stats['steps']} steps, {wall_two:.1f} s")
    print(f"\nWrote {len(written)} files to {args.output}/")


if __name__ == "__main__":
    main()
