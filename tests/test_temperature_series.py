"""Temperature series (issue 14 item 4; docs/model.md section 3.8, docs/fitting.md
"Temperature series"): experiments at several temperatures share the native ion's D0 and
E_DC (fitted as D_bulk at T_ref = 320 K and E_DC); the fit recovers them, and
E_act(theta) = E_DC - (E_F(theta) - E_F(1)) is reported."""

import math
from pathlib import Path

import numpy as np
import pytest
from scipy import special
from support.compare import approx
from support.fit_files import fails, load

import cait_fem as cf
from cait_fem.analysis.measured import write_profile_csv
from cait_fem.case.case_file import dump_case

DEMOS = Path(__file__).resolve().parents[1] / "demos"
TRUE = {"D0": 2.7e-4, "E_DC": 0.80}
K_B_EV = 8.617333262e-5
T_REF = 320.0
D_REF = TRUE["D0"] * math.exp(-TRUE["E_DC"] / (K_B_EV * T_REF))  # D_bulk at T_REF, the fitted pair
FWHM, VACANCY = 0.25, 0.10
TEMPERATURES = (300.0, 320.0, 340.0)
NOISE = 0.01


def case(T, front_spacing_m=0.5e-9, tol=1e-3):
    li = cf.Species("Li", "native", cf.GaussianSED(fwhm_eV=FWHM, vacancy_fraction=VACANCY, D_ref_m2_s=D_REF,
                                                   T_ref_K=T_REF, E_DC_eV=TRUE["E_DC"]))
    k = cf.Species("K", "foreign", cf.ArrheniusD(D0_m2_s=7.3e-6, E_a_eV=0.90))
    mesh = cf.MeshSettings(front_spacing_m=front_spacing_m, fine_depth_m=150e-9, growth_ratio=1.2,
                           bulk_spacing_m=0.5e-6)
    glass = cf.Glass(n_bg_m3=1.41e28, eps_r=8.0, temperature_K=T, thickness_m=2e-6)
    return cf.Experiment(glass=glass, species=(li, k), mesh=mesh, name=f"T{T:.0f}",
                         front=cf.Beam(current_density_A_m2=1e-2, E_kin_eV=10.0, sigma_E_eV=0.5),
                         run=cf.RunSettings(t_end_s=3000.0, time_tolerance=tol))


def fit_text(parameters, temperatures=TEMPERATURES):
    blocks = [f'[[experiment]]\nname = "T{T:.0f}"\ncase = "case.toml"\ntemperature_K = {T}\n'
              f'data = "T{T:.0f}.csv"\ntheta_sigma = {NOISE}\n' for T in temperatures]
    return "\n".join(blocks) + "[fit]\nmax_evaluations = 20\n[fit.parameters]\n" + parameters


D0_E = ('"species.Li.diffusion.D_ref_m2_s" = { initial = 3e-17, min = 1e-20, max = 1e-14, log = true, '
        'shared = true }\n'
        '"species.Li.diffusion.E_DC_eV" = { initial = 0.76, min = 0.5, max = 1.1, shared = true }\n')


def hand_E_act(theta, E_DC):
    """E_DC minus the zero-temperature Fermi-level shift of a Gaussian SED emptied to theta."""
    sigma = FWHM / (2.0 * math.sqrt(2.0 * math.log(2.0)))
    p_b = 1.0 - VACANCY
    return E_DC - sigma * (special.ndtri(theta * p_b) - special.ndtri(p_b))


@pytest.fixture
def files(tmp_path):
    dump_case(case(300.0), tmp_path / "case.toml")
    depth = np.arange(1.0, 100.0) * 1e-9
    li = 0.2 + 0.8 * 0.5 * (1.0 + np.tanh((depth * 1e9 - 40.0) / 5.0))
    for T in TEMPERATURES:
        write_profile_csv(tmp_path / f"T{T:.0f}.csv", depth, {"Li": li, "K": 1.0 - li})
    return tmp_path


def test_experiment_temperature_replaces_the_case_temperature(files):
    fit = load(files, fit_text(D0_E))
    assert [e.experiment.glass.temperature_K for e in fit.experiments] == list(TEMPERATURES)
    law = fit.experiments[2].experiment.native.diffusion
    assert law.reference_m2_s(340.0) == approx(TRUE["D0"] * math.exp(-TRUE["E_DC"] / (K_B_EV * 340.0)), rel=1e-8)
    assert law.prefactor_m2_s == approx(TRUE["D0"], rel=1e-8)


@pytest.mark.parametrize("value, fragment", [(0, "> 0"), (-5.0, "> 0"), ("hot", "'hot'"), (True, "True")])
def test_experiment_temperature_refused(files, value, fragment):
    text = fit_text(D0_E).replace("temperature_K = 320.0", f"temperature_K = {value!r}".replace("'", '"')
                                  .replace("True", "true"))
    fails(files, text, "experiment[1]", "temperature_K", fragment)


def test_E_act_hand_calculation():
    from cait_fem.physics.sed import activation_energy_eV
    # theta = 0.5: p = 0.45, p_b = 0.9; sigma = 0.25 / 2.3548 = 0.10617 eV;
    # Phi^-1(0.45) = -0.12566, Phi^-1(0.9) = 1.28155: E_act = 0.80 + 0.10617 * 1.40721 = 0.94940 eV
    assert float(activation_energy_eV(0.5, FWHM, 0.80, VACANCY)) == approx(0.94940, abs=1e-5)
    assert float(hand_E_act(0.5, 0.80)) == approx(0.94940, abs=1e-5)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """Profiles at three temperatures from finer numerics (0.25 nm, tolerance 2.5e-4),
    with 1 % noise."""
    d = tmp_path_factory.mktemp("series")
    rng = np.random.default_rng(11)
    z = np.arange(1.0, 150.0, 1.0) * 1e-9
    for T in TEMPERATURES:
        r = cf.simulate(case(T, 0.25e-9, 2.5e-4))
        write_profile_csv(d / f"T{T:.0f}.csv", z, {s: np.interp(z, r.depth_m, r.theta[-1, i])
                                                    + rng.normal(0.0, NOISE, z.size)
                                                    for i, s in enumerate(r.species_names)})
    dump_case(case(300.0), d / "case.toml")
    return d


@pytest.mark.dolfinx
@pytest.mark.slow
def test_fit_recovers_D0_and_E_DC_and_reports_E_act(synthetic, tmp_path):
    import json

    from cait_fem.fit import run_fit
    from cait_fem.fit.arrhenius import activation_energy, series_summary

    result = run_fit(load(synthetic, fit_text(D0_E)), quiet=True)
    D_ref, E = result.estimate("species.Li.diffusion.D_ref_m2_s"), result.estimate("species.Li.diffusion.E_DC_eV")
    assert E.ci95[0] <= TRUE["E_DC"] <= E.ci95[1], (E.value, E.ci95)
    assert D_ref.ci95[0] <= D_REF <= D_ref.ci95[1], (D_ref.value, D_ref.ci95)
    # D0 = D_ref exp(E_DC / k_B T_ref), with its interval from both (delta method)
    summary = series_summary(result)
    assert summary["D0_ci95_m2_s"][0] <= TRUE["D0"] <= summary["D0_ci95_m2_s"][1], summary["D0_ci95_m2_s"]
    assert summary["D0_m2_s"] == approx(D_ref.value * math.exp(E.value / (K_B_EV * T_REF)), rel=1e-6)
    # this small case (2 um, 3000 s, 1 % noise) fixes E_DC to about +-0.15 eV over 300-340 K
    assert E.ci95[1] - E.ci95[0] < 0.4 and E.value == approx(TRUE["E_DC"], abs=0.1)
    # E_act(theta) at the fitted E_DC against the hand calculation
    act = activation_energy(result, [0.5, 1.0])
    assert act["E_act_eV"][0] == approx(hand_E_act(0.5, E.value), abs=1e-9)
    assert act["E_act_eV"][1] == approx(E.value, abs=1e-12)
    assert act["shared"]
    assert np.all(act["E_act_low_eV"] < act["E_act_eV"]) and np.all(act["E_act_eV"] < act["E_act_high_eV"])
    files = result.save(tmp_path / "out")
    names = {Path(f).name for f in files}
    assert {"activation_energy.csv", "temperature_series.json", "fit_arrhenius.png"} <= names
    written = json.loads((tmp_path / "out" / "temperature_series.json").read_text())
    assert written["E_DC_eV"] == approx(E.value, rel=1e-12)
    assert written["experiments"]["T340"]["D_bulk_m2_s"] == approx(
        summary["D0_m2_s"] * math.exp(-E.value / (K_B_EV * 340.0)), rel=1e-6)


def test_demo_fit_file_loads():
    from cait_fem.fit import load_fit_case
    fit = load_fit_case(DEMOS / "temperature_series_fit.toml")
    assert [e.experiment.glass.temperature_K for e in fit.experiments] == [300.0, 320.0, 340.0]
    assert all(p.shared for p in fit.parameters)
