"""Property-based tests (Hypothesis) of the case-file and fit-file schemas: any mutation of
a valid case gives a valid experiment or a ConfigError, never another exception, and every
valid case survives the round trip Experiment -> dict -> TOML text -> Experiment. Fast
tier: no DOLFINx, no solve."""

import copy
import math

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.cases import CONTRACT_CASE_TOML

from cait_fem.analysis.measured import write_profile_csv
from cait_fem.case.case_file import dumps_toml, experiment_from_dict, experiment_to_dict
from cait_fem.case.experiment import Experiment
from cait_fem.errors import ConfigError
from cait_fem.fit.config import FitCase, fit_case_from_dict

CONTRACT = tomllib.loads(CONTRACT_CASE_TOML)


def _variant(**sections) -> dict:
    d = copy.deepcopy(CONTRACT)
    for key, value in sections.items():
        if value is None:
            d.pop(key, None)
        else:
            d[key] = value
    return d


def _with_laws(native_law, foreign_law) -> dict:
    d = copy.deepcopy(CONTRACT)
    d["species"][0]["diffusion"] = native_law
    d["species"][1]["diffusion"] = foreign_law
    return d


# Valid starting points covering every front, back, law and geometry kind of the schema.
BASES = [
    CONTRACT,
    _variant(front={"type": "potential", "U_V": 1.5, "surface_fraction": 0.9, "species": "K"}),
    _variant(front={"type": "current", "current_density_A_m2": 1e-3},
             back={"type": "electrode", "native": "discharge", "discharge_rate_m_s": 1e-6}),
    _with_laws({"model": "tabulated", "theta": [0.1, 0.5, 1.0], "D_m2_s": [1e-22, 1e-19, 1e-17]},
               {"model": "arrhenius", "D0_m2_s": 1e-8, "E_a_eV": 0.7}),
    _variant(glass={"n_bg_m3": 1.4e28, "eps_r": 8.0, "temperature_K": 300.0, "thickness_m": 1e-4},
             mesh={"front_spacing_m": 1e-9, "fine_depth_m": 200e-9, "growth_ratio": 1.2},
             solver={"linear_solver": "iterative", "preconditioner": "cpr", "ilu_levels": 0},
             geometry={"kind": "axisymmetric", "radius_m": 1e-3, "spot_radius_m": 5e-4}),
    _variant(geometry={"kind": "box", "mesh_file": "sample.msh", "mesh_unit_m": 1e-9},
             run={"t_end_s": 10.0, "scheme": "bdf1", "max_steps": 1000, "dt_max_s": 1.0}),
]


def _paths(node, prefix=()):
    """Every (path, value) in a nested dict/list, the root excluded."""
    items = node.items() if isinstance(node, dict) else enumerate(node) if isinstance(node, list) else ()
    for key, value in items:
        yield prefix + (key,), value
        yield from _paths(value, prefix + (key,))


# Replacement values: every TOML type (and None and non-finite floats for the Python API),
# the edge cases of numeric fields, and whole tables and arrays.
SCALARS = st.one_of(
    st.booleans(), st.none(), st.text(max_size=8),
    st.sampled_from([math.nan, math.inf, -math.inf, 0, 0.0, -1, -1e-30, 1e308, -1e308, 10**30, 1, 2,
                     0.5, 1.5, "beam", "native", "foreign", "constant", "sed", "slab", "disc"]),
    st.integers(min_value=-10**20, max_value=10**20),
    st.floats(allow_nan=True, allow_infinity=True),
)
VALUES = st.recursive(SCALARS, lambda inner: st.one_of(
    st.lists(inner, max_size=3), st.dictionaries(st.text(max_size=6), inner, max_size=3)), max_leaves=6)


def _all_keys(node) -> list[str]:
    return sorted({str(path[-1]) for path, _ in _paths(node) if isinstance(path[-1], str)})


# Keys of the schema (also where a base lacks them), so that "add" tries known keys with
# wrong values as well as unknown keys.
KNOWN_KEYS = sorted(set().union(*(_all_keys(b) for b in BASES)) | {
    "rim_spacing_m", "lateral_growth_ratio", "lateral_max_spacing_m", "electrode_radius_m", "dt_initial_s",
    "max_retries", "bulk_spacing_m", "surface_spacing_m", "jacobian_lag", "krylov_rtol",
    "krylov_max_iterations", "newton_atol", "potential_atol", "max_newton_iterations", "D_min_m2_s",
    "filling", "charge_number", "bulk_from_nm", "tracer_D_native_m2_s", "knots", "initial", "min", "max"})


@st.composite
def mutated(draw, bases):
    d = copy.deepcopy(draw(st.sampled_from(bases)))
    for _ in range(draw(st.integers(min_value=1, max_value=3))):
        paths = list(_paths(d))
        path, _ = draw(st.sampled_from(paths))
        parent = d
        for key in path[:-1]:
            parent = parent[key]
        key = path[-1]
        action = draw(st.sampled_from(["drop", "replace", "replace", "add"]))
        if action == "drop":
            del parent[key]
        elif action == "replace":
            parent[key] = draw(VALUES)
        elif isinstance(parent, dict):
            parent[draw(st.one_of(st.sampled_from(KNOWN_KEYS), st.text(min_size=1, max_size=8)))] = draw(VALUES)
        else:
            parent.append(draw(VALUES))
    return d


def _build_or_config_error(d):
    try:
        return experiment_from_dict(d, source="case")
    except ConfigError as exc:
        assert str(exc).startswith("case: ") and len(str(exc)) > 10
        return None


def _round_trip(exp: Experiment) -> None:
    text = dumps_toml(experiment_to_dict(exp))
    again = experiment_from_dict(tomllib.loads(text), source="round trip")
    assert again == exp, text


@pytest.mark.parametrize("base", range(len(BASES)))
def test_the_bases_are_valid_and_round_trip(base):
    exp = experiment_from_dict(copy.deepcopy(BASES[base]))
    _round_trip(exp)


@settings(max_examples=400, deadline=None)
@given(mutated(BASES))
def test_a_mutated_case_is_valid_or_a_config_error(d):
    exp = _build_or_config_error(d)
    if exp is not None:  # a mutation that kept the case valid must also survive TOML
        _round_trip(exp)


@settings(max_examples=150, deadline=None)
@given(mutated(BASES))
def test_a_mutated_case_is_judged_the_same_after_toml(d):
    """What TOML can express is judged the same from text as from the dict."""
    if any(value is None for _, value in _paths(d)):
        return  # TOML has no null: dumps_toml drops None values, so the text differs
    try:
        text = dumps_toml(d)
        parsed = tomllib.loads(text)
    except Exception:  # None, NaN keys and the like: not expressible as TOML text
        return
    first, second = _build_or_config_error(copy.deepcopy(d)), _build_or_config_error(parsed)
    assert (first is None) == (second is None)




@st.composite
def valid_cases(draw):
    d = copy.deepcopy(draw(st.sampled_from(BASES)))
    # 250-1000 K: the Arrhenius base law (0.7 eV) stays within 1e12 of the native D there
    d["glass"]["temperature_K"] = draw(st.floats(min_value=250.0, max_value=1000.0))
    d["glass"]["thickness_m"] = draw(st.floats(min_value=1e-6, max_value=1e-2))
    d["glass"]["eps_r"] = draw(st.floats(min_value=1.0, max_value=100.0))
    t_end = draw(st.floats(min_value=1e-3, max_value=1e7))
    times = sorted(set(draw(st.lists(st.floats(min_value=t_end * 1e-3, max_value=t_end), max_size=3))))
    d["run"].update(t_end_s=t_end, output_times_s=times,
                    time_tolerance=draw(st.floats(min_value=1e-8, max_value=1e-1)),
                    # at least the 54 doublings from dt_initial (1e-9 s) to t_end (<= 1e7 s)
                    max_steps=draw(st.integers(min_value=100, max_value=10**6)))
    d["run"].pop("dt_max_s", None)
    if d["front"].get("type", "beam") in ("beam", "current"):
        d["front"]["current_density_A_m2"] = draw(st.floats(min_value=0.0, max_value=1e3))
    else:
        d["front"]["surface_fraction"] = draw(st.floats(min_value=0.0, max_value=1.0))
        d["front"]["U_V"] = draw(st.floats(min_value=-100.0, max_value=100.0))
    law = d["species"][1]["diffusion"]
    if law["model"] == "constant":
        # within the representable factor 1e12 of the native D_ref (1e-17 m^2/s in every base)
        law["D_m2_s"] = 1e-17 * 10.0 ** draw(st.floats(min_value=-11.5, max_value=11.5))
    d["name"] = draw(st.text(min_size=1, max_size=12))
    return d


@settings(max_examples=150, deadline=None)
@given(valid_cases())
def test_generated_valid_cases_round_trip_through_toml(d):
    try:
        exp = experiment_from_dict(d)
    except ConfigError as exc:
        # valid values whose default depth rule would need more cells than mesh.max_cells
        # (e.g. 1e3 A/m^2 into a slow ion: fronts of 0.01 nm over 30 um) are refused by the
        # size guard before any mesh is built, naming the rule's key
        assert "mesh.max_cells" in str(exc) and "mesh.cells_per_front_width" in str(exc), str(exc)
        return
    assert exp.glass.temperature_K == d["glass"]["temperature_K"]
    _round_trip(exp)


# ----------------------------------------------------------------------------- fit files
@pytest.fixture(scope="module")
def fit_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fit_properties")
    depth_nm = np.arange(1.0, 61.0)
    li = 0.15 + 0.85 * 0.5 * (1.0 + np.tanh((depth_nm - 40.0) / 3.0))
    write_profile_csv(d / "k.csv", depth_nm * 1e-9, {"Li": li, "K": 1.0 - li})
    return d


FIT_BASE = {
    "name": "props",
    "experiment": [
        {"name": "K", "case": copy.deepcopy(CONTRACT), "data": "k.csv", "sims_resolution_nm": 2.0,
         "depth_offset_nm": 0.0, "theta_sigma": 0.02, "depth_range_nm": [0.0, 50.0], "weight": 1.0,
         "targets": {"plateau": 0.15}, "target_sigma": {"plateau": 0.01}, "max_data_points": 1000},
        {"name": "K2.b", "case": copy.deepcopy(CONTRACT), "targets": {"front_nm": 40.0}},
    ],
    "fit": {
        "max_evaluations": 10, "ftol": 1e-4, "xtol": 1e-5, "gtol": 1e-8, "fd_step": 1e-3,
        "absolute_sigma": False, "groups": 0, "smoothing": 1.0, "presolve": True, "refinement_factor": 2.0,
        "parameters": {
            "species.K.diffusion.D_m2_s": {"initial": 1e-20, "min": 1e-23, "max": 1e-18, "log": True},
            "species.Li.diffusion.fwhm_eV": {"min": 0.05, "max": 0.5, "shared": True},
            "sims_resolution_nm": {"initial": 2.0, "min": 0.0, "max": 10.0, "experiments": ["K"]},
            "front.E_kin_eV": {"initial": 10.0, "fixed": True},
        },
    },
}


def test_the_fit_base_is_valid(fit_dir):
    case = fit_case_from_dict(copy.deepcopy(FIT_BASE), fit_dir, "fit")
    assert [e.name for e in case.experiments] == ["K", "K2.b"]


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(d=mutated([FIT_BASE]))
def test_a_mutated_fit_file_is_valid_or_a_config_error(fit_dir, d):
    try:
        case = fit_case_from_dict(d, fit_dir, "fit")
    except ConfigError as exc:
        assert str(exc).startswith("fit: ")
        return
    assert isinstance(case, FitCase)
    for e in case.experiments:  # what was accepted is safe to use as a file name
        assert "/" not in e.name and "\\" not in e.name and ".." not in e.name and not e.name.startswith(".")
