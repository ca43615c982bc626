"""K+ charge attachment induced transport (CAIT) into Li3B7O12 glass.

A potassium ion beam lands on the front of a 1 mm thick lithium borate glass whose back
is a grounded metal electrode. The landed K+ ions are pushed into the glass by the field
they build up, and replace the native Li+ ions, which are discharged at the back. After
some hours the near-surface region (~100 nm) holds K+ in front of a sharp diffusion
front, and behind it a slowly rising "plateau" of Li+ ions that could not leave because
their diffusion coefficient collapsed when the Li+ site energy distribution emptied
(Gunawan, Schaefer, Weitzel, PCCP 2024, 26, 14430).

Run with ``python demos/k_cait.py [--output DIR] [--overwrite]`` (``make demo`` does).
"""

import argparse

import cait_fem as cf

# ## The experiment
#
# The glass: Li3B7O12 with its anionic background density from density and composition
# (see ``cait_fem.case.presets``), at room temperature, 1 mm thick.

glass = cf.Glass.preset("Li3B7O12", temperature_K=300.0, thickness_m=1e-3)

# The native ion's diffusion coefficient follows from a Gaussian site energy distribution
# of 250 meV FWHM with 10 % vacant sites: as Li+ leaves, its Fermi level drops through the
# SED and D falls by ~4 orders of magnitude between theta = 1 and theta = 0.2.
# K+ moves with a constant diffusion coefficient.

lithium = cf.Species("Li", "native", cf.GaussianSED(fwhm_eV=0.25, vacancy_fraction=0.10,
                                                    D_bulk_m2_s=1e-17))
potassium = cf.Species("K", "foreign", cf.ConstantD(D_m2_s=5.6e-21))

# The beam: 1e-2 A/m^2 of K+ at 10 eV with 0.5 eV spread. Ions land only while the
# surface potential is below their kinetic energy, so the surface charges up to just
# under 10 V and the landing current adjusts to what the glass can carry.

beam = cf.Beam(current_density_A_m2=1e-2, E_kin_eV=10.0, sigma_E_eV=0.5)

# Eight hours and twenty minutes of bombardment, with profiles along the way.

run = cf.RunSettings(t_end_s=30000.0, output_times_s=(1000.0, 3000.0, 10000.0, 30000.0))

experiment = cf.Experiment(glass=glass, species=(lithium, potassium), front=beam, run=run,
                           name="K_CAIT_Li3B7O12")

# ## Simulate and look at the result


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", default="results/k_cait", help="output directory")
    parser.add_argument("--overwrite", action="store_true", help="replace earlier results there")
    args = parser.parse_args()

    from cait_fem.output.result import OUTPUT_FILES
    from cait_fem.output.result_set import ResultSet, check_output_place
    from cait_fem.run.progress import ProgressReporter

    # A place that cannot take the results is refused before the solve, not after it.
    check_output_place(args.output, OUTPUT_FILES, overwrite=args.overwrite)
    # Written as a unit: staged beside the results, then moved into place together, so an
    # interruption leaves the previous results as they were.
    with ResultSet(args.output, owned=OUTPUT_FILES) as staged:
        with ProgressReporter(run.t_end_s) as progress:
            result = cf.simulate(experiment, progress=progress)
        result.save(staged.staging, overwrite=True)
        result.plot(staged.staging, overwrite=True)
        written = staged.commit()

    s = result.summary()
    print(f"\nK+ CAIT on Li3B7O12 after {run.t_end_s:.0f} s:")
    print(f"  native (Li+) plateau        {s['plateau_native']:.3f}")
    print(f"  diffusion front at          {s['front_position_nm']:.1f} nm "
          f"(10-90 % width {s['front_width_nm']:.1f} nm)")
    print(f"  surface potential           {s['final_surface_potential_V']:.3f} V")
    print(f"  back-electrode current      {s['final_current_density_A_m2']:.3e} A/m^2")
    print(f"  charge passed               {s['charge_C_m2']:.1f} C/m^2")
    print(f"  max excess charge > 1 nm    {s['max_excess_charge_beyond_1nm']:.1e} (of e n_bg)")
    print(f"  foreign-ion conservation    {s['conservation_error']:.1e} (relative)")
    print(f"  {s['steps']} time steps, {s['newton_iterations']} Newton iterations, "
          f"{s['wall_time_s']:.1f} s")
    print(f"\nWrote {len(written)} files to {args.output}/:")
    for path in written:
        print(f"  {path}")


if __name__ == "__main__":
    main()
