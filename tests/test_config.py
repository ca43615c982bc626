"""Case files: dict <-> Experiment <-> TOML round trips and every class of bad input."""

import copy

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import pytest
from support.cases import CONTRACT_CASE_TOML

from cait_fem.case.case_file import (
    dump_case,
    dumps_toml,
    experiment_from_dict,
    experiment_to_dict,
    load_case,
    parameters_with_units,
)
from cait_fem.case.experiment import Beam, Experiment, PotentialFront
from cait_fem.errors import ConfigError

EXAMPLE = CONTRACT_CASE_TOML

BASE = tomllib.loads(EXAMPLE)


def case(changes=(), deletions=()):
    """BASE with dotted-path changes; species addressed by index ("species.1.name")."""
    d = copy.deepcopy(BASE)
    for path, value in dict(changes).items():
        *parents, leaf = path.split(".")
        node = d
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node.setdefault(p, {})
        node[leaf] = value
    for path in deletions:
        *parents, leaf = path.split(".")
        node = d
        for p in parents:
            node = node[int(p)] if isinstance(node, list) else node[p]
        del node[leaf]
    return d


def full_experiment() -> Experiment:
    d = case({"name": "full", "glass.name": "LBO", "back.native": "discharge", "back.discharge_rate_m_s": 1e-3,
              "run.scheme": "bdf1", "run.dt_max_s": 100.0, "run.max_steps": 5000, "run.time_tolerance": 1e-4,
              "mesh": {"front_spacing_m": 0.1e-9, "growth_ratio": 1.05},
              "solver": {"newton_atol": 1e-10, "linear_solver": "mumps"}})
    d["species"].append({"name": "Rb", "role": "foreign", "charge_number": 1,
                         "diffusion": {"model": "constant", "D_m2_s": 1e-21}})
    return experiment_from_dict(d)


def test_example_parses():
    exp = experiment_from_dict(BASE, "case.toml")
    assert exp.glass.n_bg_m3 == 1.41e28 and exp.glass.eps_r == 8.0 and isinstance(exp.glass.eps_r, float)
    assert exp.glass.name == "Li3B7O12"
    assert [s.name for s in exp.species] == ["Li", "K"]
    assert exp.native.name == "Li" and exp.species[1].charge_number == 1  # from the ion preset
    assert isinstance(exp.front, Beam) and exp.front.E_kin_eV == 10.0
    assert exp.run.output_times_s == (600.0, 3600.0)
    assert exp.name == "cait"


@pytest.mark.parametrize("make", [lambda: experiment_from_dict(BASE), full_experiment,
                                  lambda: experiment_from_dict(case({"front": {"type": "potential", "U_V": 2.5,
                                                                             "surface_fraction": 0.3}}))])
def test_round_trip_dict_and_toml(make, tmp_path):
    exp = make()
    d = experiment_to_dict(exp)
    assert experiment_from_dict(d) == exp
    assert tomllib.loads(dumps_toml(d)) == d  # the writer is faithful
    path = dump_case(exp, tmp_path / "out.toml")
    assert load_case(path) == exp
    assert experiment_to_dict(load_case(path)) == d
    assert not [p for p in tmp_path.iterdir() if p.name != "out.toml"]


def test_full_options_map_to_fields():
    exp = full_experiment()
    assert exp.name == "full" and exp.glass.name == "LBO"
    assert exp.back.native == "discharge" and exp.back.discharge_rate_m_s == 1e-3
    assert exp.run.scheme == "bdf1" and exp.run.dt_max_s == 100.0 and exp.run.max_steps == 5000
    assert exp.mesh.front_spacing_m == 0.1e-9 and exp.mesh.growth_ratio == 1.05
    assert exp.solver.linear_solver == "mumps" and exp.solver.newton_atol == 1e-10
    assert [s.name for s in exp.foreign] == ["K", "Rb"]


def test_potential_front_and_defaults():
    exp = experiment_from_dict(case({"front": {"type": "potential", "U_V": 1, "surface_fraction": 0.5}},
                                    deletions=["back"]))
    assert isinstance(exp.front, PotentialFront) and exp.front.U_V == 1.0
    assert exp.back.native == "reversible"


def test_preset_values_and_explicit_override():
    d = case(deletions=["glass.n_bg_m3", "glass.eps_r", "glass.temperature_K"])
    d["glass"]["thickness_m"] = 5e-4
    exp = experiment_from_dict(d)
    assert exp.glass.thickness_m == 5e-4
    assert exp.glass.n_bg_m3 > 0 and exp.glass.eps_r > 0 and exp.glass.temperature_K > 0


def test_diffusion_laws_from_the_glass_preset():
    exp = experiment_from_dict(case(deletions=["species.0.diffusion", "species.1.diffusion"]))
    assert exp.native.diffusion == experiment_from_dict(BASE).native.diffusion
    assert exp.species[1].diffusion.to_dict() == {"model": "constant", "D_m2_s": 5.6e-21}


def test_any_species_name_with_explicit_charge_number():
    d = case({"species.1.name": "Xq", "species.1.charge_number": 2})
    assert experiment_from_dict(d).species[1].charge_number == 2


def test_load_case_uses_file_stem_as_default_name(tmp_path):
    p = tmp_path / "k_cait.toml"
    p.write_text(EXAMPLE)
    assert load_case(p).name == "k_cait"


def test_units_of_parameters():
    units = parameters_with_units(experiment_to_dict(experiment_from_dict(BASE)))
    assert units["glass.thickness_m"] == {"value": 1e-3, "unit": "m"}
    assert units["glass.n_bg_m3"]["unit"] == "m^-3"
    assert units["species.K.diffusion.D_m2_s"]["unit"] == "m^2/s"
    assert units["front.current_density_A_m2"]["unit"] == "A/m^2"
    assert units["front.E_kin_eV"]["unit"] == "eV"
    assert units["run.output_times_s"]["unit"] == "s"
    assert units["glass.temperature_K"]["unit"] == "K"
    assert "unit" not in units["front.type"]


BAD = {
    # unknown keys at every level
    "unknown top-level": (case({"colour": "red"}), ["colour", "allowed", "glass"]),
    "unknown glass key": (case({"glass.density": 1}), ["glass.density", "allowed", "thickness_m"]),
    "unknown species key": (case({"species.1.mass": 39}), ["species.K.mass", "allowed", "charge_number"]),
    "unknown diffusion key": (case({"species.1.diffusion.D0": 1}), ["species.K.diffusion.D0"]),
    "unknown front key": (case({"front.energy": 3}), ["front.energy", "allowed", "E_kin_eV"]),
    "key of another front type": (case({"front.type": "current"}), ["front.E_kin_eV", "allowed"]),
    "unknown back key": (case({"back.anode": 1}), ["back.anode", "allowed", "native"]),
    "unknown run key": (case({"run.t_start_s": 0}), ["run.t_start_s", "allowed", "t_end_s"]),
    "unknown mesh key": (case({"mesh.cells": 10}), ["mesh.cells", "allowed", "front_spacing_m"]),
    "unknown solver key": (case({"solver.rtol": 1e-3}), ["solver.rtol", "allowed", "newton_atol"]),
    # missing required keys
    "missing glass value": (case(deletions=["glass.preset", "glass.thickness_m"]), ["glass.thickness_m", "missing"]),
    "missing t_end": (case(deletions=["run.t_end_s"]), ["run.t_end_s", "missing"]),
    "missing beam energy": (case(deletions=["front.E_kin_eV"]), ["front.E_kin_eV", "missing"]),
    "missing role": (case(deletions=["species.1.role"]), ["species.K.role", "missing"]),
    "missing species name": (case(deletions=["species.1.name"]), ["species[1].name", "missing"]),
    "missing diffusion": (case(deletions=["glass.preset", "species.1.diffusion"]), ["species.K.diffusion", "missing"]),
    "no preset diffusion": (case({"species.1.name": "Na"}, deletions=["species.1.diffusion"]),
                            ["species.Na.diffusion", "missing", "Li3B7O12"]),
    "missing run table": (case(deletions=["run"]), ["run", "missing"]),
    # non-positive values
    "zero thickness": (case({"glass.thickness_m": 0}), ["glass.thickness_m = 0", "> 0"]),
    "negative temperature": (case({"glass.temperature_K": -3}), ["glass.temperature_K = -3", "> 0"]),
    "zero density": (case({"glass.n_bg_m3": 0.0}), ["glass.n_bg_m3 = 0", "> 0"]),
    "negative D": (case({"species.1.diffusion.D_m2_s": -1e-20}), ["species.K.diffusion.D_m2_s", "-1e-20"]),
    "zero D_bulk": (case({"species.0.diffusion.D_bulk_m2_s": 0}), ["species.Li.diffusion.D_bulk_m2_s", "0"]),
    "negative beam energy": (case({"front.E_kin_eV": -1}), ["front.E_kin_eV = -1", "> 0"]),
    "negative current": (case({"front.current_density_A_m2": -0.1}), ["front.current_density_A_m2 = -0.1"]),
    # fractions outside [0, 1]
    "surface fraction > 1": (case({"front": {"type": "potential", "U_V": 1.0, "surface_fraction": 1.5}}),
                             ["front.surface_fraction = 1.5", "[0, 1]"]),
    "vacancy fraction > 1": (case({"species.0.diffusion.vacancy_fraction": 1.2}),
                             ["species.Li.diffusion.vacancy_fraction", "1.2"]),
    # species sets and names
    "no native species": (case({"species.0.role": "foreign"}), ["species.role", "native"]),
    "bad role": (case({"species.1.role": "guest"}), ["species.K.role = 'guest'", "native"]),
    "duplicate species": (case({"species.1.name": "Li"}), ["species.name", "Li", "unique"]),
    "unknown ion": (case({"species.1.name": "Xq"}), ["species.Xq", "'Xq'", "charge_number", "K"]),
    "unknown glass preset": (case({"glass.preset": "Window"}), ["glass.preset = 'Window'", "Li3B7O12"]),
    "non-identifier name": (case({"species.1.name": "K+"}), ["species[1].name = 'K+'"]),
    # times
    "output time beyond t_end": (case({"run.output_times_s": [600, 7200]}), ["run.output_times_s[1] = 7200",
                                                                              "t_end_s"]),
    "output times not increasing": (case({"run.output_times_s": [3600, 600]}), ["run.output_times_s", "increasing"]),
    # wrong types
    "string number": (case({"glass.eps_r": "8"}), ["glass.eps_r = '8'"]),
    "bool number": (case({"glass.eps_r": True}), ["glass.eps_r = True"]),
    "times not an array": (case({"run.output_times_s": "600"}), ["run.output_times_s = '600'", "array"]),
    "time not a number": (case({"run.output_times_s": [600, "late"]}), ["run.output_times_s[1] = 'late'"]),
    "float count": (case({"run.max_steps": 1.5}), ["run.max_steps = 1.5", "integer"]),
    "species a table": (case({"species": {"name": "K"}}), ["species", "array of tables"]),
    "front not a table": (case({"front": 3}), ["front = 3", "table"]),
    "diffusion not a table": (case({"species.1.diffusion": 5.6e-21}), ["species.K.diffusion = 5.6e-21", "table"]),
    "charge number float": (case({"species.1.charge_number": 1.5}), ["species.K.charge_number = 1.5"]),
    "unknown front type": (case({"front.type": "laser"}), ["front.type = 'laser'", "beam", "potential", "current"]),
    "unknown back type": (case({"back.type": "anode"}), ["back.type = 'anode'", "electrode"]),
    "name not a string": (case({"name": 5}), ["name = 5", "string"]),
    "bad linear solver": (case({"solver.linear_solver": "gauss"}), ["solver.linear_solver = 'gauss'", "mumps"]),
}


@pytest.mark.parametrize("label", list(BAD))
def test_bad_input_names_field_and_value(label):
    d, expected = BAD[label]
    with pytest.raises(ConfigError) as info:
        experiment_from_dict(d, source="case.toml")
    message = str(info.value)
    assert message.startswith("case.toml: "), message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_bad_value_in_file_names_file(tmp_path):
    p = tmp_path / "case.toml"
    p.write_text(EXAMPLE.replace("E_kin_eV = 10.0", "E_kin_eV = -1.0"))
    with pytest.raises(ConfigError, match=r"case\.toml: front\.E_kin_eV = -1\.0 is not allowed"):
        load_case(p)


def test_unreadable_and_invalid_files(tmp_path):
    with pytest.raises(ConfigError, match="nothere.toml"):
        load_case(tmp_path / "nothere.toml")
    p = tmp_path / "broken.toml"
    p.write_text("[glass\nn_bg_m3 = 1")
    with pytest.raises(ConfigError, match="broken.toml: not valid TOML"):
        load_case(p)


def test_flux_option_round_trips_and_is_validated():
    d = copy.deepcopy(BASE)
    d["flux"] = "thermodynamic"
    exp = experiment_from_dict(d)
    assert exp.flux == "thermodynamic"
    assert experiment_from_dict(experiment_to_dict(exp)) == exp
    d["flux"] = "onsager"
    with pytest.raises(ConfigError, match=r"flux = 'onsager'.*ideal.*thermodynamic"):
        experiment_from_dict(d)
    d["flux"] = "thermodynamic"
    d["species"][0]["diffusion"]["filling"] = "fermi-dirac"
    with pytest.raises(ConfigError, match=r"flux.*fermi-dirac"):
        experiment_from_dict(d)
