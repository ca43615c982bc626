"""Fit files: validation (ConfigError naming the key/path and value) and the expansion of
parameter entries into FreeParameters. No solve: nothing here builds a Simulation."""

import math

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib
from pathlib import Path

import numpy as np
import pytest
from support.compare import approx
from support.fit_files import fails, load

from cait_fem.analysis.measured import write_profile_csv
from cait_fem.fit.config import fit_case_from_dict
from cait_fem.fit.problem import FitProblem

DEMOS = Path(__file__).resolve().parents[1] / "demos"
K_TEXT = (DEMOS / "k_cait.toml").read_text()
RB_TEXT = (DEMOS / "rb_cait.toml").read_text()
LI_SED = 'diffusion = { model = "sed", fwhm_eV = 0.25, vacancy_fraction = 0.10, D_bulk_m2_s = 1e-17 }'
LI_TAB = 'diffusion = { model = "tabulated", theta = [0.1, 0.5, 1.0], D_m2_s = [1e-22, 1e-19, 1e-17] }'

K_EXP = '[[experiment]]\nname = "K"\ncase = "k_cait.toml"\ndata = "k.csv"\n'
RB_EXP = '[[experiment]]\nname = "Rb"\ncase = "rb_cait.toml"\ndata = "rb.csv"\n'
TAB_EXP = '[[experiment]]\nname = "T"\ncase = "tab_cait.toml"\ndata = "k.csv"\n'
D_K = '"species.K.diffusion.D_m2_s" = { min = 1e-23, max = 1e-18, log = true }\n'
PARAMS = "[fit.parameters]\n"


@pytest.fixture
def d(tmp_path):
    """tmp_path with the K and Rb run cases, a tabulated-law variant, and fraction CSVs."""
    assert LI_SED in K_TEXT and LI_SED in RB_TEXT
    (tmp_path / "k_cait.toml").write_text(K_TEXT)
    (tmp_path / "rb_cait.toml").write_text(RB_TEXT)
    (tmp_path / "tab_cait.toml").write_text(K_TEXT.replace(LI_SED, LI_TAB))
    (tmp_path / "rb_wide.toml").write_text(RB_TEXT.replace("fwhm_eV = 0.25", "fwhm_eV = 0.30"))
    depth_nm = np.arange(1.0, 61.0)
    li = 0.15 + 0.85 * 0.5 * (1.0 + np.tanh((depth_nm - 40.0) / 3.0))
    write_profile_csv(tmp_path / "k.csv", depth_nm * 1e-9, {"Li": li, "K": 1.0 - li})
    write_profile_csv(tmp_path / "rb.csv", depth_nm * 1e-9, {"Li": li, "Rb": 1.0 - li})
    return tmp_path




def param_fails(d, entry, *fragments, experiments=K_EXP):
    path = entry.split(" = ")[0].strip('"')
    return fails(d, experiments + PARAMS + entry + "\n", f"fit.parameters.{path!r}", *fragments)


def problem(d, text):
    return FitProblem(load(d, text))


# -- a valid file -----------------------------------------------------------------------------
def test_relative_paths_follow_the_fit_file_not_the_cwd(d, monkeypatch):
    elsewhere = d / "elsewhere"
    elsewhere.mkdir()
    monkeypatch.chdir(elsewhere)
    case = load(d, 'name = "Li3B7O12"\n' + K_EXP + PARAMS + D_K)
    (e,) = case.experiments
    assert case.name == "Li3B7O12" and case.source == str(d / "fit.toml")
    assert e.name == "K" and e.experiment.name == "K_CAIT_Li3B7O12"
    assert e.data.source == str(d / "k.csv") and set(e.data.theta) == {"Li", "K"}
    assert e.data.depth_m.size == 60
    assert case.parameters[0].path == "species.K.diffusion.D_m2_s" and case.parameters[0].log


def test_output_times_are_forced_to_t_end_only(d):
    e = load(d, K_EXP + PARAMS + D_K).experiments[0]
    assert e.experiment.run.output_times_s == ()
    assert e.experiment.run.all_output_times_s == (30000.0,)


def test_inline_case_table(d):
    raw = {"experiment": [{"name": "K", "case": tomllib.loads(K_TEXT), "targets": {"plateau": 0.15}}],
           "fit": {"parameters": {"species.K.diffusion.D_m2_s": {"min": 1e-23, "max": 1e-18, "log": True}}}}
    e = fit_case_from_dict(raw, base=d).experiments[0]
    assert e.data is None and e.targets == {"plateau": 0.15} and e.target_sigma == {"plateau": 0.01}
    assert e.experiment.species[1].diffusion.D_m2_s == 5.6e-21
    assert e.experiment.run.all_output_times_s == (30000.0,)


# -- file and experiment errors ---------------------------------------------------------------
def test_unknown_top_level_key(d):
    fails(d, 'colour = "red"\n' + K_EXP + PARAMS + D_K, "fit file", "'colour'", "'red'")


def test_unknown_experiment_key(d):
    fails(d, K_EXP + 'dat = "x.csv"\n' + PARAMS + D_K, "experiment[0]", "'dat'", "'x.csv'")


def test_unknown_parameter_key(d):
    param_fails(d, '"species.K.diffusion.D_m2_s" = { minimum = 0.0 }', "'minimum'", "0.0")


def test_missing_case(d):
    fails(d, '[[experiment]]\nname = "K"\ndata = "k.csv"\n' + PARAMS + D_K, "experiment[0]", "case is missing")


def test_case_file_that_does_not_exist(d):
    fails(d, K_EXP.replace("k_cait.toml", "nope.toml") + PARAMS + D_K,
          "experiment[0]", "case = 'nope.toml'", str(d / "nope.toml"), "does not exist")


def test_duplicate_experiment_names(d):
    fails(d, K_EXP + K_EXP + PARAMS + D_K, "experiment names = ['K', 'K']", "unique")


def test_experiment_with_neither_data_nor_targets(d):
    fails(d, '[[experiment]]\nname = "K"\ncase = "k_cait.toml"\n' + PARAMS + D_K,
          "experiment[0]", "'K'", "neither data nor targets")


def test_bad_target_key(d):
    fails(d, K_EXP + "targets = { depth_nm = 100.0 }\n" + PARAMS + D_K,
          "experiment[0].targets", "'depth_nm'", "100.0", "plateau, front_nm")


@pytest.mark.parametrize("sigma", ["0.0", "-1.0"])
def test_non_positive_target_sigma(d, sigma):
    fails(d, K_EXP + f"targets = {{ plateau = 0.15 }}\ntarget_sigma = {{ plateau = {sigma} }}\n" + PARAMS + D_K,
          "experiment[0].target_sigma", f"plateau = {sigma}", "> 0.0")


@pytest.mark.parametrize("value", ["[50.0, 10.0]", "[-1.0, 10.0]", "[10.0]"])
def test_bad_depth_range(d, value):
    fails(d, K_EXP + f"depth_range_nm = {value}\n" + PARAMS + D_K, "experiment[0]", f"depth_range_nm = {value}")


@pytest.mark.parametrize("value", ["0.0", "-2.0"])
def test_bad_weight(d, value):
    fails(d, K_EXP + f"weight = {value}\n" + PARAMS + D_K, "experiment[0]", f"weight = {value}")


# -- parameter errors -------------------------------------------------------------------------
def test_species_not_in_the_case(d):
    param_fails(d, '"species.Na.diffusion.D_m2_s" = { min = 1e-23, max = 1e-18 }', "species 'Na'", "species: Li, K")


def test_species_not_in_the_chosen_experiment(d):
    # the K experiment has the path, but only Rb is chosen: the message is Rb's
    param_fails(d, '"species.K.diffusion.D_m2_s" = { experiments = ["Rb"] }', "species 'K'", "species: Li, Rb",
                experiments=K_EXP + RB_EXP)


def test_glass_is_not_fittable(d):
    param_fails(d, '"glass.eps_r" = { min = 1.0, max = 20.0 }', "'glass.eps_r' cannot be fitted")


def test_diffusion_key_the_law_does_not_have(d):
    param_fails(d, '"species.K.diffusion.D_bulk_m2_s" = { min = 1e-23, max = 1e-18 }',
                "'D_bulk_m2_s' is not a value", "available: D_m2_s")


def test_min_not_below_max(d):
    param_fails(d, '"species.K.diffusion.D_m2_s" = { min = 1e-18, max = 1e-18 }', "max = 1e-18", "min = 1e-18")


@pytest.mark.parametrize("bounds, shown", [("min = 0.0, max = 1e-18", "min = 0.0"), ("max = 1e-18", "min = None")])
def test_log_needs_a_positive_min(d, bounds, shown):
    param_fails(d, f'"species.K.diffusion.D_m2_s" = {{ {bounds}, log = true }}', shown, "log = true")


def test_initial_outside_bounds(d):
    param_fails(d, '"species.K.diffusion.D_m2_s" = { initial = 1e-17, min = 1e-23, max = 1e-18 }',
                "initial = 1e-17", "1e-18")


def test_case_value_outside_bounds_needs_initial(d):
    param_fails(d, '"species.K.diffusion.D_m2_s" = { min = 1e-20, max = 1e-18 }', "5.6e-21", "give initial")


def test_shared_without_initial_when_the_cases_disagree(d):
    rb = RB_EXP.replace("rb_cait.toml", "rb_wide.toml")
    param_fails(d, '"species.Li.diffusion.fwhm_eV" = { min = 0.05, max = 0.5, shared = true }',
                "initial = None", "disagree", "0.25", "0.3", experiments=K_EXP + rb)


def test_shared_measurement_without_initial_when_the_experiments_disagree(d):
    param_fails(d, '"sims_resolution_nm" = { min = 0.0, max = 10.0, shared = true }', "initial = None", "disagree",
                "2.0", "3.0", experiments=K_EXP + "sims_resolution_nm = 2.0\n" + RB_EXP + "sims_resolution_nm = 3.0\n")


def test_shared_agreeing_cases_need_no_initial(d):
    p = problem(d, K_EXP + RB_EXP + PARAMS
                + '"species.Li.diffusion.fwhm_eV" = { min = 0.05, max = 0.5, shared = true }')
    assert [(f.x0, f.targets) for f in p.free] == [(0.25, ("K", "Rb"))]


def test_initial_table_refused_for_a_shared_parameter(d):
    param_fails(d, '"species.Li.diffusion.fwhm_eV" = { initial = { K = 0.2, Rb = 0.3 }, shared = true }',
                "initial = {'K': 0.2, 'Rb': 0.3}", "not shared", experiments=K_EXP + RB_EXP)


def test_initial_table_with_an_unknown_experiment(d):
    param_fails(d, '"species.Li.diffusion.fwhm_eV" = { initial = { Cs = 0.2 } }', "initial = {'Cs': 0.2}", "['K']")


def test_knots_on_a_scalar_path(d):
    param_fails(d, '"species.K.diffusion.D_m2_s" = { knots = [0] }', "knots = [0]", "not a table")


def test_knots_with_initial_on_a_scalar_path_names_the_knots(d):
    param_fails(d, '"species.K.diffusion.D_m2_s" = { initial = [1e-20], knots = [0] }', "knots = [0]", "not a table")


@pytest.mark.parametrize("initial", ["[]", "[1e-20, 2e-20]"])
def test_initial_list_on_a_scalar_path(d, initial):
    shown = str(tomllib.loads(f"x = {initial}")["x"])
    param_fails(d, f'"species.K.diffusion.D_m2_s" = {{ initial = {initial} }}', f"initial = {shown}", "not a table")


def test_knot_index_beyond_the_table(d):
    param_fails(d, '"species.Li.diffusion.D_m2_s" = { knots = [0, 3] }', "knots = [0, 3]", "below 3",
                experiments=TAB_EXP)


def test_initial_list_length_must_match_the_knots(d):
    param_fails(d, '"species.Li.diffusion.D_m2_s" = { initial = [1e-22, 1e-19], min = 1e-25, max = 1e-15 }',
                "initial = [1e-22, 1e-19]", "3 values", experiments=TAB_EXP)


def test_no_parameters(d):
    fails(d, K_EXP, "fit: parameters = {}", "at least one parameter")
    fails(d, K_EXP + "[fit]\nmax_evaluations = 5\n", "fit: parameters = {}")


def test_every_parameter_fixed(d):
    fails(d, K_EXP + PARAMS + '"species.K.diffusion.D_m2_s" = { initial = 1e-20, fixed = true }',
          "fit.parameters", "every parameter is fixed")


@pytest.mark.parametrize("setting, shown", [
    ("max_evaluations = 0", "max_evaluations = 0"),
    ("max_evaluations = 2.5", "max_evaluations = 2.5"),
    ("fd_step = 0.9", "fd_step = 0.9"),
    ("ftol = 0.0", "ftol = 0.0"),
    ("absolute_sigma = 1", "absolute_sigma = 1"),
    ("max_iterations = 10", "'max_iterations'"),
    ("refinement_factor = 0.5", "refinement_factor = 0.5"),
    ("refinement_factor = 16", "<= 8.0"),
    ("refinement_factor = true", "refinement_factor = True"),
])
def test_bad_fit_settings(d, setting, shown):
    fails(d, K_EXP + f"[fit]\n{setting}\n" + PARAMS + D_K, "fit", shown)


def test_fit_settings_are_read(d):
    s = load(d, K_EXP + "[fit]\nmax_evaluations = 7\nfd_step = 0.01\nabsolute_sigma = true\n"
             "refinement_factor = 1\n" + PARAMS + D_K).settings
    assert (s.max_evaluations, s.fd_step, s.absolute_sigma, s.ftol, s.refinement_factor) == (7, 0.01, True, 1e-4, 1.0)
    assert load(d, K_EXP + PARAMS + D_K).settings.refinement_factor == 2.0  # the check is on by default


# -- expansion ---------------------------------------------------------------------------------
def test_non_shared_gives_one_parameter_per_experiment(d):
    p = problem(d, K_EXP + RB_EXP + PARAMS + '"species.Li.diffusion.fwhm_eV" = { min = 0.05, max = 0.5 }')
    assert [f.targets for f in p.free] == [("K",), ("Rb",)]
    assert [f.label for f in p.free] == ["species.Li.diffusion.fwhm_eV@K", "species.Li.diffusion.fwhm_eV@Rb"]
    assert p.affects(0, "K") and not p.affects(0, "Rb")


def test_shared_gives_one_parameter_for_both(d):
    p = problem(d, K_EXP + RB_EXP + PARAMS
                + '"species.Li.diffusion.fwhm_eV" = { initial = 0.2, min = 0.05, max = 0.5, shared = true }')
    (f,) = p.free
    assert f.targets == ("K", "Rb") and f.x0 == 0.2 and f.label == "species.Li.diffusion.fwhm_eV"


def test_foreign_path_applies_only_where_the_species_is(d):
    p = problem(d, K_EXP + RB_EXP + PARAMS + D_K)
    assert [f.targets for f in p.free] == [("K",)]


def test_tabulated_path_gives_one_parameter_per_knot(d):
    p = problem(d, TAB_EXP + PARAMS + '"species.Li.diffusion.D_m2_s" = { min = 1e-25, max = 1e-15, log = true }')
    assert [(f.index, f.x0) for f in p.free] == [(0, 1e-22), (1, 1e-19), (2, 1e-17)]
    assert [f.name for f in p.free] == [f"species.Li.diffusion.D_m2_s[{k}]" for k in range(3)]


def test_tabulated_knots_subset(d):
    p = problem(d, TAB_EXP + PARAMS
                + '"species.Li.diffusion.D_m2_s" = '
                  '{ knots = [0, 1], initial = [2e-22, 3e-19], min = 1e-25, max = 1e-15 }')
    assert [(f.index, f.x0) for f in p.free] == [(0, 2e-22), (1, 3e-19)]


def test_single_indexed_knot(d):
    p = problem(d, TAB_EXP + PARAMS + '"species.Li.diffusion.D_m2_s[2]" = { min = 1e-25, max = 1e-15 }')
    assert [(f.path, f.index, f.x0) for f in p.free] == [("species.Li.diffusion.D_m2_s", 2, 1e-17)]


def test_t_end_with_per_experiment_initial(d):
    p = problem(d, K_EXP + RB_EXP + PARAMS
                + '"run.t_end_s" = { initial = { K = 2e4, Rb = 4e4 }, min = 1e3, max = 1e5 }')
    assert [(f.targets, f.x0) for f in p.free] == [(("K",), 2e4), (("Rb",), 4e4)]
    run = p.experiment_at("Rb", p.x0).run
    assert run.t_end_s == 4e4 and run.all_output_times_s == (4e4,)


def test_sims_resolution_is_a_measurement_parameter(d):
    p = problem(d, K_EXP + PARAMS + D_K + '"sims_resolution_nm" = { initial = 2.0, min = 0.0, max = 10.0 }')
    assert [p.needs_solve(j) for j in range(2)] == [True, False]
    assert p.free[1].is_measurement and p.free[1].targets == ("K",)
    z = p.x0.copy()
    z[1] = 1.5  # z = x / |x0|
    sigma_m, offset_m = p.measurement_at("K", z)
    assert sigma_m == approx(3e-9) and offset_m == 0.0


def test_log_parameters_move_in_log10(d):
    p = problem(d, K_EXP + PARAMS + D_K + '"species.Li.diffusion.fwhm_eV" = { min = 0.05, max = 0.5 }')
    assert p.x0 == approx([math.log10(5.6e-21), 1.0])
    assert p.bounds[0] == approx([-23.0, 0.05 / 0.25]) and p.bounds[1] == approx([-18.0, 0.5 / 0.25])
    assert p.physical([-20.0, 1.2]) == approx([1e-20, 0.3])


def test_experiment_at_writes_values_and_fixed_parameters(d):
    p = problem(d, K_EXP + PARAMS + D_K
                + '"species.Li.diffusion.fwhm_eV" = { initial = 0.3, fixed = true }\n'
                + '"front.E_kin_eV" = { min = 1.0, max = 100.0 }\n')
    assert [f.name for f in p.free] == ["species.K.diffusion.D_m2_s", "front.E_kin_eV"]
    exp = p.experiment_at("K", [-20.0, 2.0])
    assert exp.species[1].diffusion.D_m2_s == approx(1e-20)
    assert exp.native.diffusion.fwhm_eV == 0.3 and exp.native.diffusion.D_bulk_m2_s == 1e-17
    assert exp.front.E_kin_eV == approx(20.0)
    original = p.case.experiments[0].experiment
    assert original.native.diffusion.fwhm_eV == 0.25 and original.species[1].diffusion.D_m2_s == 5.6e-21


def test_experiment_at_writes_tabulated_knots(d):
    p = problem(d, TAB_EXP + PARAMS
                + '"species.Li.diffusion.D_m2_s" = { knots = [0, 2], min = 1e-25, max = 1e-15, log = true }')
    law = p.experiment_at("T", [-21.0, -16.0]).native.diffusion
    assert law.D_m2_s == approx((1e-21, 1e-19, 1e-16)) and law.theta == (0.1, 0.5, 1.0)


def test_experiment_at_leaves_other_experiments_alone(d):
    p = problem(d, K_EXP + RB_EXP + PARAMS + '"species.Li.diffusion.fwhm_eV" = { min = 0.05, max = 0.5 }')
    assert p.experiment_at("K", [1.6, 1.2]).native.diffusion.fwhm_eV == approx(0.4)
    assert p.experiment_at("Rb", [1.6, 1.2]).native.diffusion.fwhm_eV == approx(0.3)


def test_cli_fit_reports_bad_input_before_any_solve(d):
    """Exit code 2 and the fit file, key and value in the message; an output directory
    holding results is refused without --overwrite."""
    import subprocess
    import sys

    cli = Path(sys.executable).parent / "cait-fem"
    bad = d / "bad.toml"
    bad.write_text(K_EXP + PARAMS + '"glass.n_bg_m3" = { min = 1e27, max = 1e29 }\n')
    proc = subprocess.run([str(cli), "fit", str(bad), "-o", str(d / "out")], capture_output=True, text=True)
    assert proc.returncode == 2 and "bad.toml" in proc.stderr and "glass.n_bg_m3" in proc.stderr
    good = d / "good.toml"
    good.write_text(K_EXP + PARAMS + D_K)
    (d / "out").mkdir()
    (d / "out" / "fit.json").write_text("{}")
    proc = subprocess.run([str(cli), "fit", str(good), "-o", str(d / "out")], capture_output=True, text=True)
    assert proc.returncode == 2 and "--overwrite" in proc.stderr
    assert (d / "out" / "fit.json").read_text() == "{}"


def test_tracer_D_enters_the_experiment(d):
    case = load(d, K_EXP + "tracer_D_native_m2_s = 5e-18\n" + PARAMS + D_K)
    assert case.experiments[0].tracer_D_native_m2_s == 5e-18
    fails(d, K_EXP + "tracer_D_native_m2_s = -1.0\n" + PARAMS + D_K, "tracer_D_native_m2_s", "-1.0")
