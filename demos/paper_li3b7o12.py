"""Reproducing Gunawan, Schaefer & Weitzel (PCCP 2024, 26, 14430) on Li3B7O12 glass.

Three CAIT experiments, with K+, Rb+ and Cs+ beams, on the same lithium borate glass. The
paper explains all three with ONE Li+ site energy distribution (SED; Gaussian, FWHM
250 meV, 10 % vacant sites), a constant diffusion coefficient per foreign ion, and a
fraction of the native ions that stays "effectively immobile": 15, 7 and 3 % of the bulk,
flat plateaus behind the diffusion fronts near 100 nm (its Fig. 1).

Here each experiment's run case (``demos/paper_li3b7o12_data/<ion>.toml``) carries the
shared SED, a beam log that fixes the exposure, and an immobile fraction in the transport
itself (the SED law's ``mobile_fraction``, docs/model.md section 3.10). The conditions the
paper leaves to its ESI are assumed, listed with reasons in
``demos/paper_li3b7o12_data/assumptions.toml``. Then:

1. the fitter finds D_foreign and the mobile fraction of each experiment from the plateau
   and front targets (``demos/paper_li3b7o12.toml``);
2. the three experiments are simulated at the fitted values, with profiles at a tenth, a
   third and the end of the exposure;
3. every claim of the paper that a simulation can be held to is printed with the paper's
   wording, the computed value and a verdict, the excess charge at the front as it is;
4. the assumed conditions are printed with, per assumption, how the fitted values move
   when it is 5 % higher (a linearised refit at the optimum);
5. the analogues of Figs. 1, 2 and 4 are drawn.

Run with ``python demos/paper_li3b7o12.py [--output DIR] [--overwrite] [--quiet]``;
``mpirun -n 2 python demos/paper_li3b7o12.py`` runs the fit's solves and the sensitivity
solves two at a time. About 30 minutes on one core, 18-26 on two (the fit 6 min, the
sensitivity solves 8 min on two).
"""

import argparse
import math
from dataclasses import replace
from pathlib import Path

from mpi4py import MPI

import numpy as np

import cait_fem as cf
from cait_fem.analysis.buckley_leverett import flat_plateau_bound_m2_s
from cait_fem.analysis.metrics import excess_charge
from cait_fem.analysis.transport import psed_parts, transport_summary
from cait_fem.fileio import write_csv_atomic, write_json_atomic
from cait_fem.fit import load_fit_case, run_fit
from cait_fem.fit.plots import ProfilePanel, plot_diffusivity_fit, plot_profile_fits, plot_site_energy_distribution
from cait_fem.output.result_set import OutputPlaceError, ResultSet, check_output_place
from cait_fem.physics.sed import sigma_eV

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

HERE = Path(__file__).resolve().parent
DATA = HERE / "paper_li3b7o12_data"
IONS = ("K", "Rb", "Cs")
#: the paper's Fig. 1 text: plateau levels; Fig. 4 text: mobile fractions
PAPER_PLATEAU = {"K": 0.15, "Rb": 0.07, "Cs": 0.03}
OUTPUTS = ("summary.csv", "claims.json", "assumptions.csv", "fig1_profiles.png", "fig2_diffusivity.png",
           "fig4_sed.png")
SENSITIVITY_STEP = 1.05  # the factor an assumption is raised by for the linearised refit


# ## Measuring what the paper states

def front_window(result, time_s=None):
    """Mask of the diffusion front: within 3 widths (at least 2 nm) of the front position."""
    m = result.metrics(time_s)
    return np.abs(result.depth_m - m["front_position_m"]) < max(3 * m["front_width_m"], 2e-9)


def excess_at_front(result) -> dict:
    """The local excess charge (sum z n - n_bg) / n_bg in the front window, as it is."""
    excess = excess_charge(result.theta[-1], result.charge_numbers)
    front = front_window(result)
    beyond = (result.depth_m > 1e-9) & ~front
    return {"front_min": float(excess[front].min()), "front_max": float(excess[front].max()),
            "outside_front_max_abs": float(np.abs(excess[beyond]).max())}


def plateau_shape(result) -> dict:
    """Flatness (max - min of theta_native over [0.05, 0.9] x_front at the end) and time
    independence (largest change, between a third of the exposure and its end, over the
    part of the plateau already there at a third)."""
    x = result.depth_m
    times = result.output_times_s
    k_third = int(np.argmin(np.abs(times - times[-1] / 3)))
    end = np.linspace(0.05, 0.9, 60) * result.metrics()["front_position_m"]
    level = np.interp(end, x, result.theta[-1, 0])
    early = np.linspace(0.05, 0.9, 60) * result.metrics(times[k_third])["front_position_m"]
    change = np.interp(early, x, result.theta[-1, 0]) - np.interp(early, x, result.theta[k_third, 0])
    return {"flatness": float(level.max() - level.min()), "time_change": float(np.abs(change).max()),
            "compared_times_s": [float(times[k_third]), float(times[-1])]}


def verdict(ok, partly=False):
    return "reproduced" if ok else ("partly reproduced" if partly else "NOT reproduced")


def claims(rows, laws, temperature_K, fit) -> list[dict]:
    """Each claim: the paper's words, what was computed, the value and a verdict."""
    out = []
    sed_only = laws["Cs"].replace(mobile_fraction=None)
    ratio = float(sed_only.diffusivity_m2_s(0.2, temperature_K) / sed_only.diffusivity_m2_s(1.0, temperature_K))
    out.append({"paper": "the diffusion coefficient of the native mobile lithium ions decreases by approximately "
                         "4 orders of magnitude as the molar fraction of the lithium is decreased from 1 to 0.2",
                "computed": "log10 D_SED(0.2) / D_SED(1)", "value": math.log10(ratio),
                "verdict": verdict(abs(math.log10(ratio) + 4.0) <= 0.5)})
    for r in rows:
        ion = r["ion"]
        out.append({"paper": f"a plateau of nearly constant Li+ concentration ... at about "
                             f"{PAPER_PLATEAU[ion]:.0%} of the bulk ion density for the {ion}+-CAIT",
                    "computed": f"{ion}: plateau level; its flatness (max - min over 0.05-0.9 x_front)",
                    "value": [r["plateau"], r["plateau_flatness"]],
                    "verdict": verdict(abs(r["plateau"] - PAPER_PLATEAU[ion]) <= 0.005
                                       and r["plateau_flatness"] <= 5e-3)})
        out.append({"paper": "in which case the concentration profiles exhibit a time-independent plateau",
                    "computed": f"{ion}: largest change of the plateau between a third of the exposure and its end",
                    "value": r["plateau_time_change"], "verdict": verdict(r["plateau_time_change"] <= 1e-3)})
        out.append({"paper": "97 % (Cs-CAIT), 93 % (Rb-CAIT) and 85 % (K-CAIT) of the Li+-ions are mobile",
                    "computed": f"{ion}: fitted mobile fraction of the populated SED (ci95)",
                    "value": [r["mobile_fraction"], r["mobile_fraction_ci95"]],
                    "verdict": verdict(abs(r["mobile_fraction"] - (1 - PAPER_PLATEAU[ion])) <= 0.005)})
        out.append({"paper": "The nearly constant Li+ concentration in these plateau regions is caused by an orders "
                             "of magnitude lower Li+ diffusion coefficient compared to that of the foreign ions",
                    "computed": f"{ion}: D_native(plateau) / D_foreign",
                    "value": r["D_native_plateau_over_D_foreign"],
                    "verdict": verdict(r["D_native_plateau_over_D_foreign"] <= 1e-2)})
        front = r["excess_front_min"]
        out.append({"paper": "electroneutrality is maintained in the sample, except in the spatial region of the "
                             "diffusion front, where a small negative excess charge of less than 1 per mille is "
                             "present",
                    "computed": f"{ion}: most negative excess charge in the front window; largest |excess| "
                                "elsewhere beyond 1 nm",
                    "value": [front, r["excess_outside_front_max_abs"]],
                    "verdict": verdict(-1e-3 < front < 0 and r["excess_outside_front_max_abs"] < 1e-3,
                                       partly=front < 0 and r["excess_outside_front_max_abs"] < 1e-3)})
        out.append({"paper": "we derive an analytical relation between the diffusion coefficient of the foreign "
                             "alkali ion, D_foreign, and the native lithium ion (eq. 3, ESI part 2.10)",
                    "computed": f"{ion}: eq. 3 from the simulated profile, relative to the D_foreign used",
                    "value": r["eq3_relative_deviation"], "verdict": verdict(abs(r["eq3_relative_deviation"]) <= 0.10)})
    theta = np.linspace(0.4, 1.0, 121)
    curves = np.array([np.log10(laws[ion].diffusivity_m2_s(theta, temperature_K)) for ion in IONS])
    spread = float((curves.max(axis=0) - curves.min(axis=0)).max())
    out.append({"paper": "For Li+ fractions n_Li/n_bulk >= 0.4, the three D_native functions are hardly discernible",
                "computed": "largest spread of log10 D_native between the three experiments for theta in [0.4, 1]",
                "value": spread, "verdict": verdict(spread <= 0.1)})
    fine = np.linspace(0.005, 1.0, 1991)
    curves = np.array([np.log10(laws[ion].diffusivity_m2_s(fine, temperature_K)) for ion in IONS])
    apart = fine[(curves.max(axis=0) - curves.min(axis=0)) > 0.1]
    diverge = float(apart.max()) if apart.size else 0.0
    out.append({"paper": "For n_Li/n_bulk <= 0.4 the three native D functions start to differ",
                "computed": "largest theta at which the three curves differ by more than 0.1 decade (one SED, "
                            "cut off at each experiment's immobile fraction: they part only at the highest cut-off; "
                            "a wider edge that parts them from 0.4 undoes the flat plateaus, "
                            "docs/model.md section 3.10)",
                "value": diverge, "verdict": verdict(diverge >= 0.3, partly=diverge > 0.0)})
    worst = float(np.abs(fit.residuals).max())
    out.append({"paper": "all three CAIT experiments can be described employing one and the same Li-SED",
                "computed": "largest |model - target| / sigma over the three experiments' plateau and front",
                "value": float(worst), "verdict": verdict(worst <= 2.0)})
    return out


# ## How the fitted values depend on the assumed conditions

def perturbed(exp, what: str, factor: float):
    """The experiment with one assumed condition raised by ``factor``."""
    front, glass, run = exp.front, exp.glass, exp.run
    if what == "current":
        return replace(exp, front=replace(front, current_density_history_A_m2=tuple(
            factor * j for j in front.current_density_history_A_m2)))
    if what == "exposure":
        return replace(exp, front=replace(front, current_times_s=tuple(factor * t for t in front.current_times_s)),
                       run=replace(run, t_end_s=factor * run.t_end_s,
                                   output_times_s=tuple(factor * t for t in run.output_times_s)))
    if what in ("E_kin", "sigma_E"):
        key = f"{what}_eV"
        return replace(exp, front=replace(front, **{key: factor * getattr(front, key)}))
    if what in ("thickness", "temperature"):
        key = {"thickness": "thickness_m", "temperature": "temperature_K"}[what]
        return replace(exp, glass=replace(glass, **{key: factor * getattr(glass, key)}))
    if what == "D_bulk":
        native = exp.native
        law = native.diffusion.replace(D_bulk_m2_s=factor * native.diffusion.D_bulk_m2_s)
        return replace(exp, species=tuple(replace(s, diffusion=law) if s is native else s for s in exp.species))
    raise ValueError(f"assumptions.toml: perturb = {what!r} is not one the demo knows")


def with_parameters(exp, ion, D_f=None, mobile=None):
    species = []
    for s in exp.species:
        if s.name == ion and D_f is not None:
            s = replace(s, diffusion=s.diffusion.replace(D_m2_s=D_f))
        if s.role == "native" and mobile is not None:
            s = replace(s, diffusion=s.diffusion.replace(mobile_fraction=mobile))
        species.append(s)
    return replace(exp, species=tuple(species))


def sensitivities(experiments, assumptions, comm) -> dict:
    """d ln D_foreign / d ln a and d mobile_fraction / d ln a for every assumption a and
    ion: the change of (front, plateau) that a 5 % rise of a causes, undone by a Newton
    step of the fitted pair (a linearised refit). The solves are spread over the MPI ranks
    (each on its own), with the spatial estimate off and time tolerance 1e-3 in all of
    them alike: differences of runs with the same numerics."""
    tasks = []
    for ion, exp in experiments.items():
        law = exp.native.diffusion
        exp = replace(exp, run=replace(exp.run, time_tolerance=1e-3, output_times_s=()),
                      mesh=replace(exp.mesh, estimate_spatial_error=False))
        D_f = exp.species[1].diffusion.D_m2_s
        tasks += [(ion, "base", exp), (ion, "ln D_f", with_parameters(exp, ion, D_f=D_f * SENSITIVITY_STEP)),
                  (ion, "mobile", with_parameters(exp, ion, mobile=law.mobile_fraction - 0.01))]
        tasks += [(ion, a["perturb"], perturbed(exp, a["perturb"], SENSITIVITY_STEP)) for a in assumptions]
    mine = {}
    for k, (ion, what, exp) in enumerate(tasks):
        if k % comm.size == comm.rank:
            m = cf.simulate(exp, comm=MPI.COMM_SELF).metrics()
            mine[(ion, what)] = (m["front_position_m"] * 1e9, m["plateau_native"])
    metrics = {}
    for part in comm.allgather(mine):
        metrics.update(part)
    out = {}
    h = math.log(SENSITIVITY_STEP)
    for ion in experiments:
        base = np.array(metrics[(ion, "base")])
        J = np.column_stack([(np.array(metrics[(ion, "ln D_f")]) - base) / h,
                             (np.array(metrics[(ion, "mobile")]) - base) / -0.01])
        for a in assumptions:
            shift = np.linalg.solve(J, -(np.array(metrics[(ion, a["perturb"])]) - base))
            out[(ion, a["perturb"])] = {"dlnD_foreign_dln_a": float(shift[0] / h),
                                        "dmobile_dln_a": float(shift[1] / h)}
    return out


# ## The run

def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="results/paper_li3b7o12", help="output directory")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier results there")
    parser.add_argument("--quiet", action="store_true", help="no progress output")
    args = parser.parse_args()
    comm = MPI.COMM_WORLD
    out = Path(args.output)
    # refuse before a 10-minute fit, not after it, if the place cannot take the results or
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
    if comm.rank == 0:
        print(f"\nWrote {out}/ (summary.csv, claims.json, assumptions.csv, fig1/2/4 PNGs, fit/, K/, Rb/, Cs/)")


def reproduce(out: Path, comm, quiet: bool) -> None:
    """Fit, simulate, judge and write every result into ``out`` (a fresh directory)."""
    root = comm.rank == 0
    assumptions = tomllib.loads((DATA / "assumptions.toml").read_text())["assumption"]

    # ## 1. Fit D_foreign and the mobile fraction of each experiment
    fit = run_fit(load_fit_case(HERE / "paper_li3b7o12.toml"), comm=comm, quiet=quiet)
    fit.save(out / "fit", comm=comm)

    # ## 2. The three experiments at the fitted values, with profiles along the way
    results, experiments = {}, {}
    for ion in IONS:
        exp = fit.experiment(ion)
        t_end = exp.run.t_end_s
        experiments[ion] = exp = replace(exp, run=replace(exp.run, output_times_s=(t_end / 10, t_end / 3, t_end)))
        results[ion] = cf.simulate(exp, comm=comm)
        results[ion].save(out / ion, comm=comm)
        results[ion].plot(out / ion, comm=comm)

    # ## 3. What a CAIT group reports, per experiment
    rows, laws = [], {}
    for ion, r in results.items():
        exp, m = r.experiment, r.metrics()
        law, T = exp.native.diffusion, exp.glass.temperature_K
        laws[ion] = law
        D_f = exp.species[1].diffusion.D_m2_s
        s = transport_summary(r.depth_m, r.theta[-1, 0], r.theta[-1, 1], law, D_f, T, exp.glass.n_bg_m3,
                              float(r.current_density_A_m2[-1]))
        d_est = fit.estimate(f"species.{ion}.diffusion.D_m2_s")
        m_est = fit.estimate("species.Li.diffusion.mobile_fraction", ion)
        shape, excess = plateau_shape(r), excess_at_front(r)
        sed_only = law.replace(mobile_fraction=None)
        bound = flat_plateau_bound_m2_s(lambda th, f=sed_only, T=T: f.diffusivity_m2_s(th, T), law.immobile_fraction)
        rows.append({
            "ion": ion, "D_foreign_m2_s": D_f, "D_foreign_ci95_m2_s": list(d_est.ci95),
            "mobile_fraction": law.mobile_fraction, "mobile_fraction_ci95": list(m_est.ci95),
            "cutoff_energy_below_bulk_fermi_level_eV": law.cutoff_energy_eV(T),
            "flat_plateau_bound_D_flat_m2_s": bound, "D_foreign_over_D_flat": D_f / bound,
            **r.exposure(),
            "plateau": m["plateau_native"], "plateau_flatness": shape["flatness"],
            "plateau_time_change": shape["time_change"],
            "front_nm": m["front_position_m"] * 1e9, "front_width_nm": m["front_width_m"] * 1e9,
            "surface_potential_V": float(r.surface_potential_V[-1]),
            "D_native_plateau_over_D_foreign": float(law.diffusivity_m2_s(m["plateau_native"], T)) / D_f,
            "excess_front_min": excess["front_min"], "excess_front_max": excess["front_max"],
            "excess_outside_front_max_abs": excess["outside_front_max_abs"],
            "eq3_D_foreign_m2_s": s["eq3"]["D_foreign_eq3_m2_s"], "eq3_relative_deviation": s["eq3_relative_deviation"],
            "onsager_L_foreign_per_J_m_s": s["onsager_foreign_zone_per_J_m_s"],
            "tracer_D_foreign_estimate_m2_s": s["tracer_foreign_estimate_m2_s"],
            "spatial_error_estimate": r.stats["spatial_error_estimate"], "time_tolerance": exp.run.time_tolerance,
        })
    T = results["K"].experiment.glass.temperature_K
    checks = claims(rows, laws, T, fit)

    # ## 4. The assumed conditions, and how the fitted values move with them
    sens = sensitivities(experiments, assumptions, comm)
    table = [{"quantity": a["quantity"], "value": a["value"], "why": a["why"],
              **{f"dlnD_{ion}_dln_a": sens[(ion, a["perturb"])]["dlnD_foreign_dln_a"] for ion in IONS},
              **{f"dmobile_{ion}_dln_a": sens[(ion, a["perturb"])]["dmobile_dln_a"] for ion in IONS}}
             for a in assumptions]

    # ## 5. Files, figures (the analogues of the paper's Figs. 1, 2 and 4) and the report,
    # written by rank 0; an error there ends every rank, rather than leaving the others
    # waiting at the commit of the result set
    failed = None
    if root:
        try:
            write_outputs(out, rows, checks, table, fit, results, laws, T)
        except Exception as exc:
            failed = exc
    if comm.bcast(failed is not None):
        if failed is not None:
            raise failed
        raise SystemExit("paper demo: rank 0 failed writing the results")


def write_outputs(out, rows, checks, table, fit, results, laws, T) -> None:
    """Tables, claims, figures and the printed report (rank 0)."""
    out.mkdir(parents=True, exist_ok=True)
    flat = [{k: (v if not isinstance(v, list) else " ".join(f"{x:.6g}" for x in v)) for k, v in row.items()}
            for row in rows]
    write_csv_atomic(out / "summary.csv", list(flat[0]), [[row[k] for row in flat] for k in flat[0]])
    write_csv_atomic(out / "assumptions.csv", list(table[0]), [[row[k] for row in table] for k in table[0]])
    write_json_atomic(out / "claims.json", {"claims": checks, "experiments": rows, "assumptions": table,
                                            "numerical_error_of_the_fit": fit.numerical_error,
                                            "fit": "fit/fit.json"})
    panels = [ProfilePanel(title=f"{ion}+ CAIT", data_depth_nm=np.zeros(0), data_theta={},
                           model_depth_nm=r.depth_m * 1e9,
                           model_theta={s: r.theta[-1, i] for i, s in enumerate(r.species_names)},
                           native="Li") for ion, r in results.items()]
    plot_profile_fits(panels, out / "fig1_profiles.png")
    theta = np.linspace(0.005, 1.0, 996)
    shared = laws["K"].replace(mobile_fraction=None)
    plot_diffusivity_fit(theta, shared.diffusivity_m2_s(theta, T), None, None,
                         {row["ion"]: row["D_foreign_m2_s"] for row in rows}, out / "fig2_diffusivity.png",
                         per_experiment={ion: laws[ion].diffusivity_m2_s(theta, T) for ion in IONS})
    E = np.linspace(-4.5, 4.5, 1200) * sigma_eV(shared.fwhm_eV)
    n_bg = results["K"].experiment.glass.n_bg_m3
    parts = {ion: psed_parts(E, laws[ion], n_bg, None, T) for ion in IONS}
    plot_site_energy_distribution(E, parts["K"]["sed_m3_eV"], parts["K"]["populated_initial_m3_eV"],
                                  {ion: p["mobile_m3_eV"] for ion, p in parts.items()},
                                  parts["K"]["fermi_level_bulk_eV"], out / "fig4_sed.png",
                                  fermi_levels_plateau_eV={ion: p["fermi_level_plateau_eV"]
                                                           for ion, p in parts.items()})
    report(rows, checks, table, fit, shared)


def report(rows, checks, table, fit, shared) -> None:
    print(f"\nLi3B7O12, one SED (FWHM {shared.fwhm_eV * 1e3:.0f} meV, {shared.vacancy_fraction:.0%} vacancies, "
          f"D_bulk {shared.D_bulk_m2_s:.3g} m^2/s); fit: {fit.evaluations} evaluations, {fit.wall_time_s:.0f} s")
    print(f"{'ion':4s} {'D_foreign m2/s':>15s} {'D_f/D_flat':>10s} {'mobile':>7s} {'E_c-E_F eV':>10s} "
          f"{'exposure s':>10s} {'landed C/m2':>11s} {'plateau':>8s} {'flatness':>8s} {'front nm':>8s} "
          f"{'phi_s V':>7s} {'excess@front':>12s} {'sp.err':>7s}")
    for r in rows:
        print(f"{r['ion']:4s} {r['D_foreign_m2_s']:15.3e} {r['D_foreign_over_D_flat']:10.2f} "
              f"{r['mobile_fraction']:7.4f} {r['cutoff_energy_below_bulk_fermi_level_eV']:10.3f} "
              f"{r['exposure_time_s']:10.4g} {r['landed_charge_C_m2']:11.4g} {r['plateau']:8.4f} "
              f"{r['plateau_flatness']:8.1e} {r['front_nm']:8.1f} {r['surface_potential_V']:7.2f} "
              f"{r['excess_front_min']:12.2e} {r['spatial_error_estimate']:7.1e}")
    print("\nAssumed conditions (the paper's ESI has them) and d ln D_foreign / d ln a, d mobile / d ln a:")
    for a in table:
        moves = "  ".join(f"{ion}: {a[f'dlnD_{ion}_dln_a']:+.2f}, {a[f'dmobile_{ion}_dln_a']:+.1e}" for ion in IONS)
        print(f"  {a['quantity']}: {a['value']}\n      {moves}\n      why: {a['why']}")
    print("\nClaims of the paper:")
    for c in checks:
        print(f"  [{c['verdict']}] \"{c['paper']}\"\n      {c['computed']}: {_short(c['value'])}")


def _short(value) -> str:
    """A claim's value for the terminal: numbers to 3 digits, nested lists in brackets."""
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_short(v) for v in value) + "]"
    return f"{value:.3g}" if isinstance(value, float) else str(value)


if __name__ == "__main__":
    main()
