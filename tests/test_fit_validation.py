"""Input holes of issue 13 closed: safe experiment names, fits refused before they start
when their result could mean nothing, booleans never numbers, byte-order marks, the
mesh_file check of ``cait-fem check``, and many data rows. No solve, no DOLFINx."""

import math
from pathlib import Path
from types import SimpleNamespace

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import numpy as np
import pytest
from support.cases import CONTRACT_CASE_TOML
from support.compare import approx
from support.fit_files import fails, load

from cait_fem import cli
from cait_fem.analysis.measured import read_profile_csv, write_profile_csv
from cait_fem.analysis.sims_resolution import INTERPOLATE_ABOVE, broaden, model_at_data
from cait_fem.case.case_file import experiment_from_dict, load_case
from cait_fem.case.experiment import Beam, CurrentFront, MeshSettings, PotentialFront, RunSettings, SolverSettings
from cait_fem.errors import ConfigError
from cait_fem.fit.config import MAX_DATA_POINTS
from cait_fem.fit.problem import uninformative

DEMOS = Path(__file__).resolve().parents[1] / "demos"
K_TEXT = (DEMOS / "k_cait.toml").read_text()
PARAMS = "[fit.parameters]\n"
D_K = '"species.K.diffusion.D_m2_s" = { min = 1e-23, max = 1e-18, log = true }\n'


def experiment_block(name='"K"', extra=""):
    return f'[[experiment]]\nname = {name}\ncase = "k_cait.toml"\ndata = "k.csv"\n{extra}'


@pytest.fixture
def d(tmp_path):
    (tmp_path / "k_cait.toml").write_text(K_TEXT)
    depth_nm = np.arange(1.0, 61.0)
    li = 0.15 + 0.85 * 0.5 * (1.0 + np.tanh((depth_nm - 40.0) / 3.0))
    write_profile_csv(tmp_path / "k.csv", depth_nm * 1e-9, {"Li": li, "K": 1.0 - li})
    return tmp_path




# ----------------------------------------------------------------------------- item 3
@pytest.mark.parametrize("name", ["../../x", "sub/dir", "a\\\\b", ".hidden", "a..b", "", "K\\n", "x y"])
def test_an_experiment_name_must_be_a_plain_file_name_part(d, name):
    shown = repr(tomllib.loads(f'n = "{name}"')["n"])
    fails(d, experiment_block(f'"{name}"') + PARAMS + D_K, "experiment[0].name", shown, "'..'")


@pytest.mark.parametrize("name", ["K", "K-1.b_2", "2024.run"])
def test_plain_experiment_names_are_accepted(d, name):
    assert load(d, experiment_block(f'"{name}"') + PARAMS + D_K).experiments[0].name == name


# ----------------------------------------------------------------------------- item 4
def test_a_depth_range_without_data_is_refused(d):
    fails(d, experiment_block(extra="depth_range_nm = [100.0, 200.0]\n") + PARAMS + D_K,
          "experiment[0]", "depth_range_nm = [100.0, 200.0]", "1.0", "60.0")


def test_fewer_compared_values_than_parameters_is_refused(d):
    text = ('[[experiment]]\nname = "K"\ncase = "k_cait.toml"\ntargets = { plateau = 0.15 }\n' + PARAMS + D_K
            + '"species.Li.diffusion.fwhm_eV" = { min = 0.05, max = 0.5 }\n')
    fails(d, text, "2 free parameters", "only 1 compared values")


@pytest.mark.parametrize("entry, fragments", [
    ('"species.Li.diffusion.vacancy_fraction" = { min = 0.05, max = 5.0 }', ["max = 5.0", "vacancy_fraction"]),
    ('"sims_resolution_nm" = { initial = -1.0, min = -5.0, max = 5.0 }', ["min = -5.0", ">= 0"]),
    ('"species.K.diffusion.D_m2_s" = { min = -1e-20, max = 1e-18 }', ["min = -1e-20", "D_m2_s"]),
    ('"species.Li.diffusion.fwhm_eV" = { min = 0.0, max = 0.5 }', ["min = 0.0", "fwhm_eV"]),
    ('"run.t_end_s" = { initial = 1e3, min = -10.0, max = 1e5 }', ["min = -10.0", "run.t_end_s"]),
    ('"species.Li.diffusion.vacancy_fraction" = { initial = 0.1 }', ["min is not given", "-1e+300", "(0, 1)"]),
])
def test_bounds_the_case_refuses_are_refused(d, entry, fragments):
    fails(d, experiment_block() + PARAMS + entry + "\n", "fit.parameters.", *fragments)


def test_bounds_inside_the_valid_range_are_accepted(d):
    case = load(d, experiment_block() + PARAMS + '"species.Li.diffusion.vacancy_fraction" = { min = 0.01, max = 0.9 }\n'
                + '"sims_resolution_nm" = { initial = 1.0, min = 0.0, max = 5.0 }\n')
    assert [p.path for p in case.parameters] == ["species.Li.diffusion.vacancy_fraction", "sims_resolution_nm"]


@pytest.mark.parametrize("value", [1.5, -0.1])
def test_a_plateau_target_must_be_a_fraction(d, value):
    text = f'[[experiment]]\nname = "K"\ncase = "k_cait.toml"\ntargets = {{ plateau = {value} }}\n' + PARAMS + D_K
    fails(d, text, "experiment[0].targets", f"plateau = {value}", "<= 1.0")


def test_data_deeper_than_the_sample_are_refused(d):
    depth_nm = np.array([1.0, 10.0, 2e6])  # the demo sample is 1 mm = 1e6 nm thick
    write_profile_csv(d / "k.csv", depth_nm * 1e-9, {"Li": np.array([0.2, 0.5, 1.0])})
    fails(d, experiment_block() + PARAMS + D_K, "experiment[0]", "data = 'k.csv'", "2000000.0",
          "glass.thickness_m")


def fake_estimate(label, value, stderr):
    return SimpleNamespace(parameter=SimpleNamespace(label=label), value=value, stderr=stderr)


def test_an_unidentified_parameter_makes_the_fit_meaningless():
    estimates = [fake_estimate("species.K.diffusion.D_m2_s", 1e-20, 1e-22),
                 fake_estimate("sims_resolution_nm", -1.0, math.inf)]
    reasons = uninformative(estimates, cost=3.0, dof=10)
    assert len(reasons) == 1 and "sims_resolution_nm" in reasons[0] and "inf" in reasons[0]
    assert "nan" in uninformative([fake_estimate("x", 1.0, math.nan)], 1.0, 5)[0]


def test_a_zero_cost_without_degrees_of_freedom_is_meaningless():
    estimates = [fake_estimate("species.K.diffusion.D_m2_s", 1e-20, 1e-22)]
    assert uninformative(estimates, cost=0.0, dof=10) == []
    assert uninformative(estimates, cost=1e-3, dof=0) == []
    assert "0 degrees of freedom" in uninformative(estimates, cost=0.0, dof=0)[0]


# ----------------------------------------------------------------------------- item 6
@pytest.mark.parametrize("section, key", [
    ("front", "current_density_A_m2"), ("front", "E_kin_eV"), ("mesh", "fine_depth_m"),
    ("mesh", "growth_ratio"), ("mesh", "front_spacing_m"), ("run", "max_steps"), ("run", "max_retries"),
    ("run", "t_end_s"), ("solver", "max_newton_iterations"), ("solver", "jacobian_lag"),
    ("glass", "thickness_m"),
])
def test_a_boolean_is_not_a_number_in_a_case_file(section, key):
    d = tomllib.loads(CONTRACT_CASE_TOML)
    d.setdefault(section, {})[key] = True
    with pytest.raises(ConfigError, match=rf"{section}\.{key} = True is not allowed"):
        experiment_from_dict(d)


def test_a_boolean_is_not_a_number_in_the_python_api():
    with pytest.raises(ConfigError, match="front.current_density_A_m2 = True"):
        Beam(current_density_A_m2=True, E_kin_eV=10.0, sigma_E_eV=0.5)
    with pytest.raises(ConfigError, match="front.current_density_A_m2 = True"):
        CurrentFront(current_density_A_m2=True)
    with pytest.raises(ConfigError, match="front.U_V = False"):
        PotentialFront(U_V=False, surface_fraction=0.5)
    with pytest.raises(ConfigError, match="mesh.fine_depth_m = True"):
        MeshSettings(fine_depth_m=True)
    with pytest.raises(ConfigError, match="run.max_steps = True"):
        RunSettings(t_end_s=1.0, max_steps=True)
    with pytest.raises(ConfigError, match=r"run.output_times_s\[0\] = True"):
        RunSettings(t_end_s=1.0, output_times_s=(True,))
    with pytest.raises(ConfigError, match="solver.max_newton_iterations = True"):
        SolverSettings(max_newton_iterations=True)


@pytest.mark.parametrize("extra, fragment", [
    ("depth_range_nm = [true, 50.0]", "depth_range_nm = [True, 50.0]"),
    ("weight = true", "weight = True"),
    ("sims_resolution_nm = false", "sims_resolution_nm = False"),
    ("max_data_points = true", "max_data_points = True"),
])
def test_a_boolean_is_not_a_number_in_a_fit_file(d, extra, fragment):
    fails(d, experiment_block(extra=extra + "\n") + PARAMS + D_K, "experiment[0]", fragment)


def test_a_boolean_is_not_a_fit_setting_number(d):
    fails(d, experiment_block() + "[fit]\nmax_evaluations = true\n" + PARAMS + D_K, "max_evaluations = True")
    fails(d, experiment_block() + PARAMS + '"species.K.diffusion.D_m2_s" = { min = true, max = 1e-18 }\n',
          "min = True")


# ----------------------------------------------------------------------------- item 11
def test_a_byte_order_mark_is_accepted_in_case_fit_and_csv_files(d):
    (d / "bom_case.toml").write_bytes(K_TEXT.encode("utf-8-sig"))
    assert load_case(d / "bom_case.toml") == load_case(d / "k_cait.toml")
    csv = (d / "k.csv").read_text()
    (d / "k.csv").write_bytes(csv.encode("utf-8-sig"))
    assert read_profile_csv(d / "k.csv", "Li", ["K"]).depth_m.size == 60
    case = load(d, experiment_block() + PARAMS + D_K, encoding="utf-8-sig")
    assert case.experiments[0].name == "K"


MESH_CASE = CONTRACT_CASE_TOML + '\n[geometry]\nkind = "disc"\nmesh_file = "sample.msh"\n'


def test_check_reports_a_missing_mesh_file(tmp_path, capsys):
    (tmp_path / "c.toml").write_text(MESH_CASE)
    assert cli.main(["check", str(tmp_path / "c.toml")]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "geometry.mesh_file = " in err and "sample.msh" in err and "does not exist" in err
    assert err.count("error") == 1


def test_check_reports_a_directory_given_as_mesh_file(tmp_path, capsys):
    (tmp_path / "c.toml").write_text(MESH_CASE)
    (tmp_path / "sample.msh").mkdir()
    assert cli.main(["check", str(tmp_path / "c.toml")]) == cli.EXIT_USAGE
    err = capsys.readouterr().err
    assert "is a directory" in err and "does not exist" not in err


def test_check_accepts_an_existing_mesh_file(tmp_path, capsys):
    (tmp_path / "c.toml").write_text(MESH_CASE)
    (tmp_path / "sample.msh").write_text("$MeshFormat\n")  # check does not read it
    assert cli.main(["check", str(tmp_path / "c.toml")]) == cli.EXIT_OK
    assert "OK" in capsys.readouterr().out


# ----------------------------------------------------------------------------- item 12
def test_more_data_rows_than_allowed_are_refused_before_parsing(d):
    assert MAX_DATA_POINTS == 100_000
    depth_nm = np.arange(1.0, 201.0)
    write_profile_csv(d / "k.csv", depth_nm * 1e-9, {"Li": np.clip(depth_nm / 100.0, 0.0, 1.0)})
    fails(d, experiment_block(extra="max_data_points = 100\n") + PARAMS + D_K,
          "200 data rows", "experiment[0].max_data_points = 100")
    case = load(d, experiment_block(extra="max_data_points = 200\n") + PARAMS + D_K)
    assert case.experiments[0].data.depth_m.size == 200


def sample_profile():
    x = np.concatenate([[0.0], np.cumsum(np.geomspace(1e-11, 2e-7, 2000))])
    x = x[x < 1e-4]
    return x, 0.15 + 0.85 * 0.5 * (1.0 + np.tanh((x - 41e-9) / 3e-9))


def test_many_data_depths_match_the_exact_broadening():
    x, f = sample_profile()
    at = np.sort(np.random.default_rng(1).uniform(0.0, 200e-9, 3 * INTERPOLATE_ABOVE))
    for sigma in (0.5e-9, 2e-9, 10e-9):
        fast = model_at_data(x, f, at, sigma, offset_m=1e-9)[::37]
        exact = broaden(x, f, sigma, at[::37] - 1e-9)  # pointwise exact: a subset suffices
        assert np.max(np.abs(fast - exact)) < 1e-7


def test_few_data_depths_are_broadened_exactly():
    x, f = sample_profile()
    at = np.linspace(0.5e-9, 200e-9, 500)
    assert np.array_equal(model_at_data(x, f, at, 2e-9), broaden(x, f, 2e-9, at))
    assert model_at_data(x, f, at, 0.0) == approx(np.interp(at, x, f), rel=0, abs=0)


def fake_fit_result(stderr: float, cost: float, dof: int):
    def save(directory, overwrite=False, comm=None):
        Path(directory).mkdir(parents=True, exist_ok=True)
        (Path(directory) / "fit.json").write_text("{}")
        return [Path(directory) / "fit.json"]
    estimate = SimpleNamespace(parameter=SimpleNamespace(label="sims_resolution_nm"), value=-1.0, stderr=stderr,
                               ci95=(-math.inf, math.inf), at_bound=False, numerical_shift=None)
    return SimpleNamespace(estimates=[estimate], cost=cost, dof=dof, reduced_chi2=1.0, evaluations=3,
                           forward_solves=3, wall_time_s=1.0, message="stand-in", save=save)


@pytest.mark.dolfinx  # cmd_fit loads mpi4py
@pytest.mark.parametrize("stderr, cost, dof, code", [(0.1, 2.0, 5, 0), (math.inf, 2.0, 5, 1), (0.1, 0.0, 0, 1)])
def test_a_meaningless_fit_never_exits_0(d, capsys, monkeypatch, stderr, cost, dof, code):
    import cait_fem.fit

    (d / "fit.toml").write_text(experiment_block() + PARAMS + D_K)
    monkeypatch.setattr(cait_fem.fit, "run_fit", lambda case, comm=None, quiet=False:
                        fake_fit_result(stderr, cost, dof))
    assert cli.main(["fit", str(d / "fit.toml"), "-o", str(d / "out"), "--quiet"]) == code
    err = capsys.readouterr().err
    assert ("meaningless" in err) == (code == 1)
    assert (d / "out" / "fit.json").exists()  # written for inspection either way
