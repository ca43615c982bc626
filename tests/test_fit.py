"""Fitting against synthetic measurements, without an inverse crime: the "measured"
profiles come from a finer mesh (0.1 nm instead of 0.2 nm) and a 4x tighter time tolerance
than the fit's forward model (default settings), are broadened with a SIMS depth
resolution and carry Gaussian noise. The fit must recover the true parameters within the
tolerances asserted here, and the true values must lie inside the reported 95 % intervals."""

import json
import math

import numpy as np
import pytest
from support.compare import approx
from support.paths import ROOT, run_cli

from cait_fem.analysis.measured import write_profile_csv
from cait_fem.analysis.sims_resolution import model_at_data
from cait_fem.case.case_file import dump_case, experiment_from_dict, experiment_to_dict, load_case
from cait_fem.fit import load_fit_case, run_fit

# DOLFINx is imported inside the tests, so that collecting this module needs none.
pytestmark = pytest.mark.dolfinx

NOISE = 0.01  # 1-sigma of the synthetic SIMS fractions
SIMS_NM = 2.0
TRUE = {"K": 5.6e-21, "Rb": 2.0e-21, "fwhm_eV": 0.25}


def _case_dict(foreign: str, t_end_s: float) -> dict:
    d = experiment_to_dict(load_case(ROOT / "demos" / "k_cait.toml"))
    d["name"] = f"{foreign}_synthetic"
    d["species"][1]["name"] = foreign
    d["species"][1]["diffusion"] = {"model": "constant", "D_m2_s": TRUE[foreign]}
    d["run"].update(t_end_s=t_end_s, output_times_s=[])
    return d


def _write_experiment(directory, foreign: str, t_end_s: float, depth_nm, seed: int, native_law=None):
    """Case file (default numerics) and CSV (fine numerics, SIMS-broadened, noisy)."""
    from cait_fem.run.simulation import Simulation
    d = _case_dict(foreign, t_end_s)
    if native_law is not None:
        d["species"][0]["diffusion"] = native_law
    dump_case(experiment_from_dict(d), directory / f"{foreign}.toml")
    fine = experiment_to_dict(experiment_from_dict(d))
    fine["mesh"]["front_spacing_m"] = 0.1e-9
    fine["run"]["time_tolerance"] = 2.5e-4
    r = Simulation(experiment_from_dict(fine)).run()
    z = np.asarray(depth_nm) * 1e-9
    rng = np.random.default_rng(seed)
    theta = {s: model_at_data(r.depth_m, r.theta[-1, i], z, SIMS_NM * 1e-9) + rng.normal(0.0, NOISE, z.size)
             for i, s in enumerate(r.species_names)}
    write_profile_csv(directory / f"{foreign}.csv", z, theta, comments=[f"synthetic {foreign}, seed {seed}"])


def _inside(estimate, true_value):
    lo, hi = estimate.ci95
    return lo <= true_value <= hi


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    d = tmp_path_factory.mktemp("synthetic")
    _write_experiment(d, "K", 10000.0, np.arange(1.0, 80.0, 1.0), seed=1)
    _write_experiment(d, "Rb", 10000.0, np.arange(1.0, 70.0, 1.0), seed=2)
    return d


def _fit_file(directory, name, experiments, parameters, settings="") -> str:
    blocks = [f'name = "{name}"']
    for e in experiments:
        blocks.append(f'[[experiment]]\nname = "{e}"\ncase = "{e}.toml"\ndata = "{e}.csv"\n'
                      f'theta_sigma = {NOISE}\nsims_resolution_nm = {SIMS_NM}\n')
    blocks.append(f"[fit]\n{settings}\n[fit.parameters]\n" + "\n".join(parameters))
    path = directory / f"{name}.toml"
    path.write_text("\n".join(blocks))
    return path


def test_recovers_foreign_D_sed_width_and_sims_resolution(synthetic):
    path = _fit_file(synthetic, "single", ["K"], [
        '"species.K.diffusion.D_m2_s" = { initial = 2e-20, min = 1e-23, max = 1e-18, log = true }',
        '"species.Li.diffusion.fwhm_eV" = { initial = 0.20, min = 0.05, max = 0.50 }',
        '"sims_resolution_nm" = { initial = 1.0, min = 0.0, max = 10.0 }'])
    result = run_fit(load_fit_case(path), quiet=True)
    D, w, s = (result.estimate(p) for p in ("species.K.diffusion.D_m2_s", "species.Li.diffusion.fwhm_eV",
                                            "sims_resolution_nm"))
    assert D.value == approx(TRUE["K"], rel=0.05)        # from 2e-20: 3.6x off
    assert w.value == approx(TRUE["fwhm_eV"], rel=0.02)  # from 0.20
    assert s.value == approx(SIMS_NM, abs=0.3)
    assert _inside(D, TRUE["K"]) and _inside(w, TRUE["fwhm_eV"]) and _inside(s, SIMS_NM)
    # the residuals are the noise: reduced chi^2 near 1 for the known sigma
    assert 0.6 < result.reduced_chi2 < 1.5
    # a log-scale interval is asymmetric around the value
    assert D.ci95[1] / D.value == approx(D.value / D.ci95[0], rel=1e-9)


def test_global_fit_over_two_experiments_recovers_one_shared_sed(synthetic, tmp_path):
    path = _fit_file(synthetic, "global", ["K", "Rb"], [
        '"species.K.diffusion.D_m2_s" = { initial = 1e-20, min = 1e-23, max = 1e-18, log = true }',
        '"species.Rb.diffusion.D_m2_s" = { initial = 5e-21, min = 1e-23, max = 1e-18, log = true }',
        '"species.Li.diffusion.fwhm_eV" = { initial = 0.30, min = 0.05, max = 0.50, shared = true }'])
    case = load_fit_case(path)
    result = run_fit(case, quiet=True)
    fwhm = result.estimate("species.Li.diffusion.fwhm_eV")
    assert fwhm.parameter.targets == ("K", "Rb")  # one value for both experiments
    assert fwhm.value == approx(TRUE["fwhm_eV"], rel=0.02) and _inside(fwhm, TRUE["fwhm_eV"])
    for ion in ("K", "Rb"):
        est = result.estimate(f"species.{ion}.diffusion.D_m2_s")
        assert est.value == approx(TRUE[ion], rel=0.05) and _inside(est, TRUE[ion])
    # the report: the fit.json contract, CSVs and figures
    result.save(tmp_path / "out")
    report = json.loads((tmp_path / "out" / "fit.json").read_text())
    entry = report["parameters"]["species.Li.diffusion.fwhm_eV"]
    assert entry["shared"] and entry["unit"] == "eV" and entry["ci95"][0] < entry["value"] < entry["ci95"][1]
    assert {"cost", "evaluations", "wall_time_s", "correlation", "experiments"} <= set(report)
    assert report["parallel"]["simulations_built"] == 2  # one compiled Simulation per experiment
    corr = np.array(report["correlation"]["matrix"])
    assert np.allclose(np.diag(corr), 1.0) and np.allclose(corr, corr.T)
    for ion in ("K", "Rb"):
        assert (tmp_path / "out" / f"{ion}_profile.csv").stat().st_size > 0
        assert report["experiments"][ion]["points"] == 2 * (79 if ion == "K" else 69)
    for png in ("fit_profiles.png", "fit_diffusivity.png", "fit_sed.png"):
        assert (tmp_path / "out" / png).stat().st_size > 10000
    with pytest.raises(FileExistsError):
        result.save(tmp_path / "out")  # never overwrite without being asked


def test_free_form_tabulated_D_inversion(tmp_path):
    """D_native(theta) on 7 knots (bulk knot fixed, as from conductivity), from a profile
    made with the SED law, starting from a log-linear guess 1e-22..1e-17 and with the
    default curvature penalty: the fitted table follows the true D within a factor 2 from
    theta = 0.2 to 1 (measured: within a factor 1.3)."""
    sed = {"model": "sed", "fwhm_eV": 0.25, "vacancy_fraction": 0.10, "D_bulk_m2_s": 1e-17}
    _write_experiment(tmp_path, "K", 10000.0, np.arange(1.0, 80.0, 1.0), seed=3, native_law=sed)
    knots = [0.12, 0.25, 0.4, 0.55, 0.7, 0.85, 1.0]
    d = experiment_to_dict(load_case(tmp_path / "K.toml"))
    d["species"][0]["diffusion"] = {"model": "tabulated", "theta": knots, "D_m2_s": list(np.logspace(-22, -17, 7))}
    dump_case(experiment_from_dict(d), tmp_path / "K.toml")
    path = _fit_file(tmp_path, "table", ["K"], [
        '"species.Li.diffusion.D_m2_s" = { min = 1e-25, max = 1e-16, log = true, knots = [0, 1, 2, 3, 4, 5] }',
        '"sims_resolution_nm" = { initial = 2.0, fixed = true }  # as in the experiment block'])
    result = run_fit(load_fit_case(path), quiet=True)
    law = result.experiment("K").native.diffusion
    true_law = load_case(ROOT / "demos" / "k_cait.toml").native.diffusion
    theta = np.linspace(0.2, 1.0, 81)
    error_decades = np.abs(np.log10(law.diffusivity_m2_s(theta, 300.0) / true_law.diffusivity_m2_s(theta, 300.0)))
    assert error_decades.max() < math.log10(2.0), error_decades.max()
    assert result.reduced_chi2 < 1.5


def test_forward_solves_reuse_compiled_forms(monkeypatch):
    """After the first solve per experiment, new parameter values never reach the JIT."""
    import dolfinx.jit

    from cait_fem.fit.ensemble import Ensemble, Task

    exp = experiment_from_dict(_case_dict("K", 2000.0))
    ensemble = Ensemble({"K": exp})
    first = ensemble.run([Task(0, "K", exp)])[0]
    calls = []
    original = dolfinx.jit.ffcx_jit
    monkeypatch.setattr(dolfinx.jit, "ffcx_jit", lambda *a, **k: calls.append(1) or original(*a, **k))
    d = experiment_to_dict(exp)
    d["species"][1]["diffusion"]["D_m2_s"] = 2 * TRUE["K"]
    d["species"][0]["diffusion"]["fwhm_eV"] = 0.3
    second = ensemble.run([Task(1, "K", experiment_from_dict(d))])[0]
    assert calls == [] and ensemble.simulations_built == 1
    assert np.abs(second.theta - first.theta).max() > 0.05  # the new values did act


def test_replayed_steps_make_the_jacobian_smooth():
    """With the unperturbed run's steps replayed, the profile is a smooth function of the
    parameter: forward differences at h and h/2 agree to first order in h."""
    from cait_fem.run.simulation import Simulation
    exp = experiment_from_dict(_case_dict("K", 3000.0))
    sim = Simulation(exp)
    base = sim.run()
    schedule = base.time_s[1:]
    assert np.abs(sim.run(exp, schedule_s=schedule).theta - base.theta).max() < 1e-12

    def perturbed(factor):
        d = experiment_to_dict(exp)
        d["species"][1]["diffusion"]["D_m2_s"] = TRUE["K"] * factor
        return sim.run(experiment_from_dict(d), schedule_s=schedule).theta[-1, 0]

    h = 1e-3
    d1 = (perturbed(10 ** h) - base.theta[-1, 0]) / h
    d2 = (perturbed(10 ** (h / 2)) - base.theta[-1, 0]) / (h / 2)
    scale = np.abs(d1).max()
    assert scale > 0.1
    assert np.abs(d1 - d2).max() < 0.01 * scale


@pytest.mark.mpi
def test_fit_under_mpirun_equals_serial(synthetic, tmp_path):
    """Two ranks = two ensemble groups of one rank each: the same forward solves as serial,
    so the same optimiser path and result."""
    path = _fit_file(synthetic, "mpi", ["K"], [
        '"species.K.diffusion.D_m2_s" = { initial = 1e-20, min = 1e-23, max = 1e-18, log = true }',
        '"species.Li.diffusion.fwhm_eV" = { fixed = true, initial = 0.25 }',
        '"sims_resolution_nm" = { initial = 1.5, min = 0.0, max = 10.0 }'])
    results = {}
    for n in (0, 2):
        out = tmp_path / f"out{n}"
        proc = run_cli(["fit", str(path), "-o", str(out), "--quiet"], mpi=n)
        assert proc.returncode == 0, proc.stderr
        results[n] = json.loads((out / "fit.json").read_text())
    assert results[2]["parallel"]["groups"] == 2
    for key in ("species.K.diffusion.D_m2_s", "sims_resolution_nm"):
        assert results[2]["parameters"][key]["value"] == approx(results[0]["parameters"][key]["value"],
                                                                rel=1e-10)
    assert results[2]["evaluations"] == results[0]["evaluations"]


def test_failed_forward_solve_is_a_large_residual_not_a_crash():
    from cait_fem.fit import fit_case_from_dict
    from cait_fem.fit.ensemble import Ensemble, Task
    from cait_fem.fit.problem import FAILED_RESIDUAL, FitProblem

    d = _case_dict("K", 2000.0)
    parameters = {"species.K.diffusion.D_m2_s": {"log": True, "min": 1e-23, "max": 1e-18}}
    case = fit_case_from_dict({"experiment": [{"name": "K", "case": d, "targets": {"plateau": 0.15}}],
                               "fit": {"parameters": parameters}})
    exp = case.experiments[0].experiment
    # above the a-priori bound (41 steps at most doubling), below what the solve takes
    d["run"]["max_steps"] = 45
    out = Ensemble({"K": exp}).run([Task(0, "K", experiment_from_dict(d))])[0]
    assert out.error is not None and "max_steps" in out.error
    problem = FitProblem(case)
    assert np.all(problem.residuals("K", problem.x0, out) == FAILED_RESIDUAL)
