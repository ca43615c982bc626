"""Reproducing Gunawan, Schaefer & Weitzel (PCCP 2024, 26, 14430) on Li3B7O12 glass.

Three CAIT experiments, with K+, Rb+ and Cs+ beams, on the same lithium borate glass. The
paper explains all three with ONE Li+ site energy distribution (SED; Gaussian, FWHM
250 meV, 10 % vacant sites) and a constant diffusion coefficient per foreign ion, chosen
so that the native Li+ plateaus are 15 %, 7 % and 3 % of the bulk and the diffusion fronts
lie near 100 nm (its Fig. 1). Here the fitter finds those three D_foreign (and the beam
exposure, which the paper's text does not give) from the plateau and front targets in
``demos/paper_li3b7o12.toml``; then the demo simulates the three experiments at the fitted
values, draws the analogues of Figs. 1, 2 and 4, tabulates what a CAIT group reports, and
checks four claims of the paper against the simulation.

Run with ``python demos/paper_li3b7o12.py [--output DIR] [--overwrite] [--quiet]``;
``mpirun -n 2 python demos/paper_li3b7o12.py`` runs the fit's solves two at a time.
About 6 minutes on one core (the fit: 7 evaluations, 63 forward solves).
"""

import argparse
from dataclasses import replace
from pathlib import Path

from mpi4py import MPI

import numpy as np

import cait_fem as cf
from cait_fem.analysis.metrics import excess_charge
from cait_fem.analysis.transport import psed_parts, transport_summary
from cait_fem.fileio import write_csv_atomic, write_json_atomic
from cait_fem.fit import load_fit_case, run_fit
from cait_fem.fit.plots import ProfilePanel, plot_diffusivity_fit, plot_profile_fits, plot_site_energy_distribution
from cait_fem.output.result_set import OutputPlaceError, ResultSet, check_output_place
from cait_fem.physics.sed import sigma_eV

HERE = Path(__file__).resolve().parent
IONS = ("K", "Rb", "Cs")
OUTPUTS = ("summary.csv", "claims.json", "fig1_profiles.png", "fig2_diffusivity.png", "fig4_sed.png")


# ## Claims of the paper, as numbers a simulation can be held to
#
# (a) "D_native falls about 4 orders of magnitude from molar fraction 1 to 0.2"; (b) the
# plateau sits where D_native is about one order of magnitude below D_foreign; (c) the
# local excess charge is below 1e-3 everywhere except in the diffusion front; (d) eq. 3
# gives D_foreign within 10 % of the value used in the simulation.


def excess_outside_front(result) -> float:
    """max |excess charge| beyond the surface Debye layer (1 nm) and outside the front
    (within 3 widths, at least 2 nm, of the front position)."""
    m = result.metrics()
    excess = np.abs(excess_charge(result.theta[-1], result.charge_numbers))
    x = result.depth_m
    near_front = np.abs(x - m["front_position_m"]) < max(3 * m["front_width_m"], 2e-9)
    return float(excess[(x > 1e-9) & ~near_front].max())


def claims(law, temperature_K, rows) -> list[dict]:
    ratio = float(law.diffusivity_m2_s(0.2, temperature_K) / law.diffusivity_m2_s(1.0, temperature_K))
    out = [{"claim": "D_native(0.2) / D_native(1) is about 1e-4 (4 orders of magnitude)",
            "measured": ratio, "reproduced": bool(-4.5 <= np.log10(ratio) <= -3.5)}]
    for r in rows:
        ion = r["ion"]
        out += [
            {"claim": f"{ion}: plateau where D_native is about D_foreign / 10 (factor 3 allowed)",
             "measured": r["D_native_plateau_over_D_foreign"],
             "reproduced": bool(1 / 30 <= r["D_native_plateau_over_D_foreign"] <= 0.3)},
            {"claim": f"{ion}: excess charge below 1e-3 except at the front",
             "measured": r["max_excess_charge_outside_front"],
             "reproduced": bool(r["max_excess_charge_outside_front"] < 1e-3)},
            {"claim": f"{ion}: eq. 3 within 10 % of the D_foreign used",
             "measured": r["eq3_relative_deviation"], "reproduced": bool(abs(r["eq3_relative_deviation"]) <= 0.10)},
        ]
    return out


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="results/paper_li3b7o12", help="output directory")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier results there")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    root = comm.rank == 0
    out = Path(args.output)
    # refuse before a 5-minute fit, not after it, if the place cannot take the results or
    # results are already there
    names = OUTPUTS + ("fit",) + IONS
    try:
        check_output_place(out, names, overwrite=args.overwrite)
    except OutputPlaceError as exc:
        raise SystemExit(f"paper demo: {exc}") from None
    # the whole directory is one result set: written into a staging directory, moved into
    # place at the end (an interruption leaves the previous results as they were)
    with ResultSet(out, owned=names, comm=comm) as staged:
        reproduce(staged.staging, comm, args.quiet)
        staged.commit()
    if root:
        print(f"\nWrote {out}/ (summary.csv, claims.json, fig1/2/4 PNGs, fit/, K/, Rb/, Cs/)")


def reproduce(out: Path, comm, quiet: bool) -> None:
    """Fit, simulate and write every result into ``out`` (a fresh directory)."""
    root = comm.rank == 0
    # ## 1. Fit D_foreign (and the exposure) to the paper's plateaus and fronts
    fit = run_fit(load_fit_case(HERE / "paper_li3b7o12.toml"), comm=comm, quiet=quiet)
    fit.save(out / "fit", comm=comm)

    # ## 2. The three experiments at the fitted values, with profiles along the way
    results = {}
    for ion in IONS:
        exp = fit.experiment(ion)
        t_end = exp.run.t_end_s
        exp = replace(exp, run=replace(exp.run, output_times_s=(t_end / 10, t_end / 3, t_end)))
        results[ion] = cf.simulate(exp, comm=comm)
        results[ion].save(out / ion, comm=comm)
        results[ion].plot(out / ion, comm=comm)

    # ## 3. What a CAIT group reports, per experiment
    rows = []
    for ion, r in results.items():
        exp, m = r.experiment, r.metrics()
        law, T = exp.native.diffusion, exp.glass.temperature_K
        D_f = exp.species[1].diffusion.D_m2_s
        s = transport_summary(r.depth_m, r.theta[-1, 0], r.theta[-1, 1], law, D_f, T, exp.glass.n_bg_m3,
                              float(r.current_density_A_m2[-1]))
        rows.append({
            "ion": ion, "D_foreign_m2_s": D_f, "D_foreign_stderr_m2_s": fit.estimate(
                f"species.{ion}.diffusion.D_m2_s").stderr,
            "exposure_s": exp.run.t_end_s, "plateau": m["plateau_native"],
            "front_nm": m["front_position_m"] * 1e9, "front_width_nm": m["front_width_m"] * 1e9,
            "surface_potential_V": float(r.surface_potential_V[-1]), "charge_C_m2": float(r.charge_C_m2[-1]),
            "D_native_plateau_over_D_foreign": float(law.diffusivity_m2_s(m["plateau_native"], T)) / D_f,
            "max_excess_charge_outside_front": excess_outside_front(r),
            "max_excess_charge_beyond_1nm": m["max_excess_charge_beyond_1nm"],
            "eq3_D_foreign_m2_s": s["eq3"]["D_foreign_eq3_m2_s"], "eq3_relative_deviation": s["eq3_relative_deviation"],
            "onsager_L_foreign_per_J_m_s": s["onsager_foreign_zone_per_J_m_s"],
            "tracer_D_foreign_estimate_m2_s": s["tracer_foreign_estimate_m2_s"],
            "immobile_fraction": s["immobile_fraction"], "mobile_fraction": s["mobile_fraction"],
        })
    law = results["K"].experiment.native.diffusion
    T = results["K"].experiment.glass.temperature_K
    checks = claims(law, T, rows)

    # ## 4. Figures: the analogues of the paper's Figs. 1, 2 and 4
    if root:
        out.mkdir(parents=True, exist_ok=True)
        write_csv_atomic(out / "summary.csv", list(rows[0]), [[row[k] for row in rows] for k in rows[0]])
        write_json_atomic(out / "claims.json", {"claims": checks, "experiments": rows,
                                                "fit": "fit/fit.json"})
        panels = [ProfilePanel(title=f"{ion}+ CAIT", data_depth_nm=np.zeros(0), data_theta={},
                               model_depth_nm=r.depth_m * 1e9,
                               model_theta={s: r.theta[-1, i] for i, s in enumerate(r.species_names)},
                               native="Li") for ion, r in results.items()]
        plot_profile_fits(panels, out / "fig1_profiles.png")
        theta = np.linspace(0.01, 1.0, 300)
        plot_diffusivity_fit(theta, law.diffusivity_m2_s(theta, T), None, None,
                             {row["ion"]: row["D_foreign_m2_s"] for row in rows}, out / "fig2_diffusivity.png")
        E = np.linspace(-4.5, 4.5, 1200) * sigma_eV(law.fwhm_eV)
        parts = {row["ion"]: psed_parts(E, law, results["K"].experiment.glass.n_bg_m3, row["plateau"], T)
                 for row in rows}
        plot_site_energy_distribution(E, parts["K"]["sed_m3_eV"], parts["K"]["populated_initial_m3_eV"],
                                      {ion: p["mobile_m3_eV"] for ion, p in parts.items()},
                                      parts["K"]["fermi_level_bulk_eV"], out / "fig4_sed.png",
                                      fermi_levels_plateau_eV={ion: p["fermi_level_plateau_eV"]
                                                               for ion, p in parts.items()})

        # ## 5. The summary table and the claims
        print(f"\nLi3B7O12, one SED (FWHM {law.fwhm_eV * 1e3:.0f} meV, {law.vacancy_fraction:.0%} vacancies), "
              f"fit: {fit.evaluations} evaluations, {fit.wall_time_s:.0f} s")
        print(f"{'ion':4s} {'D_foreign m2/s':>15s} {'exposure s':>11s} {'plateau':>8s} {'front nm':>9s} "
              f"{'width nm':>9s} {'phi_s V':>8s} {'eq.3 m2/s':>10s} {'eq.3 dev':>9s}")
        for row in rows:
            print(f"{row['ion']:4s} {row['D_foreign_m2_s']:15.3e} {row['exposure_s']:11.4g} {row['plateau']:8.3f} "
                  f"{row['front_nm']:9.1f} {row['front_width_nm']:9.2f} {row['surface_potential_V']:8.2f} "
                  f"{row['eq3_D_foreign_m2_s']:10.3e} {row['eq3_relative_deviation']:+9.1%}")
        print("\nClaims of the paper:")
        for c in checks:
            print(f"  [{'reproduced' if c['reproduced'] else 'NOT reproduced'}] {c['claim']}: {c['measured']:.3g}")


if __name__ == "__main__":
    main()
