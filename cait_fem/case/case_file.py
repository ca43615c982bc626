"""TOML case files <-> :class:`~cait_fem.case.experiment.Experiment`.

A case file has the tables ``[glass]``, ``[[species]]`` (one per mobile ion), ``[front]``,
``[back]``, ``[run]``, ``[mesh]``, ``[solver]`` and a top-level ``name``; their keys are the
fields of the dataclasses in :mod:`cait_fem.case.experiment`, SI units in the key names. Everything
is validated here, before any mesh or solver exists: an unknown key, a missing required
key, a wrong type or a bad value raises :class:`~cait_fem.errors.ConfigError` whose message
starts with the file name and names the dotted field, the value and what is allowed, e.g.
``case.toml: front.E_kin_eV = -1 is not allowed: must be a finite number > 0``.

``[glass] preset = "Li3B7O12"`` supplies the glass values (explicit keys override them) and,
for a species without a ``diffusion`` table, the preset's law: the native ion's SED or a
foreign ion's constant D in that glass (:mod:`cait_fem.case.presets`). A species' charge number
defaults to its ion preset's; any other name needs an explicit ``charge_number``.

``experiment_to_dict`` writes every value explicitly (no presets), so
``experiment_from_dict(experiment_to_dict(e)) == e`` and :func:`dump_case` round-trips.
"""

from __future__ import annotations

import os
from dataclasses import fields
from pathlib import Path

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10: the same parser as the tomli package
    import tomli as tomllib

from cait_fem.errors import ConfigError
from cait_fem.physics.diffusion import DiffusionLaw, diffusion_law_from_dict

from .beam_history import read_history_csv
from .experiment import (
    AnodeFront,
    BackElectrode,
    Beam,
    CurrentFront,
    Experiment,
    Glass,
    MeshSettings,
    PotentialFront,
    RunSettings,
    SolverSettings,
    Species,
)
from .geometry import Geometry

FRONT_TYPES = {"beam": Beam, "potential": PotentialFront, "current": CurrentFront, "anode": AnodeFront}
BACK_TYPES = {"electrode": BackElectrode}
TOP_LEVEL_KEYS = ("name", "flux", "glass", "species", "front", "back", "run", "mesh", "solver", "geometry")
GLASS_KEYS = ("preset", "n_bg_m3", "eps_r", "temperature_K", "thickness_m", "name")
SPECIES_KEYS = ("name", "role", "charge_number", "diffusion")


# ----------------------------------------------------------------------------- helpers
def _init_fields(cls):
    return [f for f in fields(cls) if f.init]


def _required(cls) -> list[str]:
    from dataclasses import MISSING
    return [f.name for f in _init_fields(cls) if f.default is MISSING and f.default_factory is MISSING]


def _table(value, where: str) -> dict:
    if not isinstance(value, dict):
        raise ConfigError(f"{where} = {value!r} is not allowed: must be a table")
    return value


def _check_keys(d: dict, where: str, allowed, required=()) -> None:
    for key in d:
        if key not in allowed:
            raise ConfigError(f"{where}.{key} is not a known key (value {d[key]!r}); "
                              f"allowed keys in [{where}]: {', '.join(allowed)}")
    for key in required:
        if key not in d:
            raise ConfigError(f"{where}.{key} is missing: it is required in [{where}] "
                              f"(allowed keys: {', '.join(allowed)})")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool)


def _coerce(cls, kwargs: dict, where: str) -> dict:
    """ints -> floats for float fields (TOML ``8`` vs ``8.0``); arrays for tuple fields."""
    types = {f.name: str(f.type) for f in _init_fields(cls)}
    out = {}
    for key, value in kwargs.items():
        t = types[key]
        if t.startswith("tuple"):
            if not isinstance(value, (list, tuple)):
                raise ConfigError(f"{where}.{key} = {value!r} is not allowed: must be an array")
            if "float" in t:
                value = tuple(float(v) if _is_number(v) else v for v in value)
            else:
                value = tuple(value)
        elif "float" in t and "int" not in t and isinstance(value, int) and not isinstance(value, bool):
            value = float(value)
        out[key] = value
    return out


def _build(cls, d: dict, where: str, extra_allowed=(), required=None):
    allowed = tuple(extra_allowed) + tuple(f.name for f in _init_fields(cls))
    _check_keys(d, where, allowed, _required(cls) if required is None else required)
    kwargs = {k: v for k, v in d.items() if k not in extra_allowed}
    return cls(**_coerce(cls, kwargs, where))


# ----------------------------------------------------------------------------- sections
def _glass(d, where="glass"):
    d = _table(d, where)
    _check_keys(d, where, GLASS_KEYS)
    values, native_diffusion = {}, None
    if "preset" in d:
        from . import presets
        name = d["preset"]
        if not isinstance(name, str):
            raise ConfigError(f"{where}.preset = {name!r} is not allowed: must be a string")
        try:
            preset = dict(presets.glass_preset(name))
        except ConfigError:
            raise ConfigError(f"{where}.preset = {name!r} is not a known glass preset; known glass presets: "
                              f"{', '.join(sorted(presets.GLASSES))}") from None
        native_diffusion = preset.pop("native_diffusion", None)
        values = {k: v for k, v in preset.items() if k in GLASS_KEYS and k != "preset"}
        values.setdefault("name", name)
    values.update({k: v for k, v in d.items() if k != "preset"})
    if "name" in values and not isinstance(values["name"], str):
        raise ConfigError(f"{where}.name = {values['name']!r} is not allowed: must be a string")
    return _build(Glass, values, where), d.get("preset"), native_diffusion


def _diffusion(d, where) -> DiffusionLaw:
    if isinstance(d, DiffusionLaw):
        return d
    return diffusion_law_from_dict(_table(d, where), where)


def _charge_number_from_preset(name: str, where: str) -> int:
    from . import presets
    try:
        return int(presets.ion_preset(name)["charge_number"])
    except ConfigError:
        raise ConfigError(f"{where}.name = {name!r} is not a known ion and {where}.charge_number is "
                          f"not given; give charge_number explicitly to use any name, or use a "
                          f"known ion (known ions: {', '.join(sorted(presets.IONS))})") from None


def _default_diffusion(name: str, role: str, where: str, glass_preset: str | None, native_diffusion):
    """The law of a species without a diffusion table: from the glass preset, if it has one."""
    if glass_preset is not None and role == "native" and native_diffusion is not None:
        return native_diffusion
    if glass_preset is not None and role == "foreign":
        from . import presets
        try:
            return presets.foreign_diffusion_preset(glass_preset, name, where=f"{where}.name")
        except ConfigError as exc:
            hint = f"; glass preset {glass_preset!r} has none for it ({exc})"
    else:
        hint = "; only a glass preset ([glass] preset = ...) can supply a default"
    raise ConfigError(f"{where}.diffusion is missing: it is required (an inline table such as "
                      '{ model = "constant", D_m2_s = 1e-20 })' + hint)


def _species(entry, index: int, glass_preset: str | None, native_diffusion):
    where = f"species[{index}]"
    entry = _table(entry, where)
    if "name" not in entry:
        raise ConfigError(f"{where}.name is missing: every [[species]] needs a name "
                          f"(allowed keys: {', '.join(SPECIES_KEYS)})")
    name = entry["name"]
    if not isinstance(name, str) or not name.isidentifier():
        raise ConfigError(f"{where}.name = {name!r} is not allowed: a non-empty identifier "
                          "(letters, digits, underscore)")
    where = f"species.{name}"
    _check_keys(entry, where, SPECIES_KEYS, ("name", "role"))
    role = entry["role"]
    law_d = entry["diffusion"] if "diffusion" in entry else \
        _default_diffusion(name, role, where, glass_preset, native_diffusion)
    law = _diffusion(law_d, f"{where}.diffusion")
    if "charge_number" in entry:
        z = entry["charge_number"]
    else:
        z = _charge_number_from_preset(name, where)
    return Species(name=name, role=role, diffusion=law, charge_number=z)


def experiment_from_dict(d: dict, source: str = "<dict>", *, default_name: str | None = None,
                         base_dir=None) -> Experiment:
    """Validate a case dictionary (as read from TOML) and build the Experiment. Errors are
    ConfigError prefixed with ``source`` (the file name). ``base_dir``: the directory
    relative file paths (``front.current_history_csv``) are taken from (default: the
    working directory)."""
    try:
        return _experiment_from_dict(d, default_name, base_dir)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {exc}") from None


def _beam_history_from_csv(front_d: dict, base_dir) -> dict:
    """``[front] current_history_csv`` (a path relative to the case file) read into the
    Beam's ``current_times_s`` and ``current_density_history_A_m2``; ``spot_area_m2``
    [m^2] converts a ``current_A`` column (:func:`~cait_fem.case.beam_history.read_history_csv`)."""
    if "current_history_csv" not in front_d:
        if "spot_area_m2" in front_d:
            raise ConfigError(f"front.spot_area_m2 = {front_d['spot_area_m2']!r} is not allowed: only with "
                              "front.current_history_csv (a CSV whose current column is current_A)")
        return front_d
    csv = front_d.pop("current_history_csv")
    if not isinstance(csv, str) or not csv:
        raise ConfigError(f"front.current_history_csv = {csv!r} is not allowed: a CSV file path (relative to "
                          "the case file)")
    for key in ("current_times_s", "current_density_history_A_m2", "current_density_A_m2"):
        if key in front_d:
            raise ConfigError(f"front.{key} = {front_d[key]!r} is not allowed: not with front.current_history_csv "
                              f"= {csv!r} (give the current once)")
    path = Path(csv) if Path(csv).is_absolute() or base_dir is None else Path(base_dir) / csv
    spot_area = front_d.pop("spot_area_m2", None)
    if isinstance(spot_area, int) and not isinstance(spot_area, bool):
        spot_area = float(spot_area)
    times, values = read_history_csv(path, spot_area)
    source = str(path) + (f" (current_A / spot_area_m2 = {spot_area!r} m^2)" if spot_area is not None else "")
    front_d.update(current_times_s=list(times), current_density_history_A_m2=list(values),
                   current_history_source=source)
    return front_d


def _experiment_from_dict(d: dict, default_name: str | None, base_dir=None) -> Experiment:
    if not isinstance(d, dict):
        raise ConfigError(f"the case = {d!r} is not allowed: must be a table of tables")
    allowed = TOP_LEVEL_KEYS
    for key in d:
        if key not in allowed:
            raise ConfigError(f"{key} is not a known top-level key (value {d[key]!r}); "
                              f"allowed top-level keys: {', '.join(allowed)}")
    for key in ("glass", "species", "front", "run"):
        if key not in d:
            raise ConfigError(f"{key} is missing: the case needs [glass], [[species]], [front] and [run]")
    name = d.get("name", default_name if default_name is not None else "cait")
    if not isinstance(name, str) or not name:
        raise ConfigError(f"name = {name!r} is not allowed: must be a non-empty string")

    glass, glass_preset, native_diffusion = _glass(d["glass"])

    species_list = d["species"]
    if not isinstance(species_list, list) or not all(isinstance(s, dict) for s in species_list):
        raise ConfigError(f"species = {species_list!r} is not allowed: must be an array of tables "
                          "([[species]] blocks)")
    species = tuple(_species(s, i, glass_preset, native_diffusion) for i, s in enumerate(species_list))

    front_d = dict(_table(d["front"], "front"))
    ftype = front_d.get("type", "beam")
    if not isinstance(ftype, str) or ftype not in FRONT_TYPES:
        raise ConfigError(f"front.type = {ftype!r} is not allowed: one of "
                          f"{', '.join(repr(t) for t in FRONT_TYPES)}")
    extra, required = ("type",), None
    if ftype == "beam":
        front_d = _beam_history_from_csv(front_d, base_dir)
        extra += ("current_history_csv", "spot_area_m2")
        # the current: a constant or a history (read from the CSV above, or given inline)
        history = "current_times_s" in front_d or "current_density_history_A_m2" in front_d
        required = ("E_kin_eV", "sigma_E_eV") + (() if history else ("current_density_A_m2",))
    front = _build(FRONT_TYPES[ftype], front_d, "front", extra_allowed=extra, required=required)

    back_d = dict(_table(d.get("back", {}), "back"))
    btype = back_d.get("type", "electrode")
    if not isinstance(btype, str) or btype not in BACK_TYPES:
        raise ConfigError(f"back.type = {btype!r} is not allowed: one of "
                          f"{', '.join(repr(t) for t in BACK_TYPES)}")
    back = _build(BACK_TYPES[btype], back_d, "back", extra_allowed=("type",))

    run = _build(RunSettings, _table(d["run"], "run"), "run")
    mesh = _build(MeshSettings, _table(d.get("mesh", {}), "mesh"), "mesh")
    solver = _build(SolverSettings, _table(d.get("solver", {}), "solver"), "solver")
    geometry = _build(Geometry, _table(d.get("geometry", {}), "geometry"), "geometry")
    return Experiment(glass=glass, species=species, front=front, run=run, back=back, mesh=mesh,
                      solver=solver, name=name, flux=d.get("flux", "ideal"), geometry=geometry)


def load_case(path: str | os.PathLike) -> Experiment:
    """Read and validate a TOML case file (errors: ConfigError starting with the path)."""
    p = Path(path)
    try:
        # utf-8-sig: a byte-order mark (written by some Windows editors) is not TOML
        text = p.read_bytes().decode("utf-8-sig")
    except OSError as exc:
        raise ConfigError(f"{p}: cannot read the case file: {exc.strerror or exc}") from None
    except UnicodeDecodeError as exc:
        raise ConfigError(f"{p}: not a UTF-8 text file: {exc}") from None
    try:
        d = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{p}: not valid TOML: {exc}") from None
    mesh_file = d.get("geometry", {}).get("mesh_file") if isinstance(d.get("geometry"), dict) else None
    if isinstance(mesh_file, str) and mesh_file and not Path(mesh_file).is_absolute():
        # relative to the case file, like the data paths of a fit file
        d["geometry"]["mesh_file"] = str(p.parent / mesh_file)
    return experiment_from_dict(d, source=str(p), default_name=p.stem, base_dir=p.parent)


# ----------------------------------------------------------------------------- writing
def _drop_none(obj):
    if isinstance(obj, dict):
        return {k: _drop_none(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return [_drop_none(v) for v in obj]
    return obj


def _dataclass_dict(obj) -> dict:
    return _drop_none({f.name: getattr(obj, f.name) for f in _init_fields(type(obj))})


def experiment_to_dict(exp: Experiment) -> dict:
    """Every parameter explicitly (TOML-ready: no None, tuples as lists)."""
    return {
        "name": exp.name,
        "flux": exp.flux,
        "glass": _dataclass_dict(exp.glass),
        "species": [_drop_none({"name": s.name, "role": s.role, "charge_number": s.charge_number,
                                "diffusion": dict(s.diffusion.to_dict())}) for s in exp.species],
        "front": {"type": exp.front.type, **_dataclass_dict(exp.front)},
        "back": {"type": exp.back.type, **_dataclass_dict(exp.back)},
        "run": _dataclass_dict(exp.run),
        "mesh": _dataclass_dict(exp.mesh),
        "solver": _dataclass_dict(exp.solver),
        # a 1D slab is the default: its (unused) lateral mesh settings are not written
        **({"geometry": _dataclass_dict(exp.geometry)} if exp.geometry.kind != "slab" else {}),
    }


def _is_table_array(v) -> bool:
    return isinstance(v, list) and bool(v) and all(isinstance(x, dict) for x in v)


def _plain(obj):
    """``obj`` with numpy scalars and arrays as Python numbers and lists, tuples as lists
    and None values dropped: what a TOML writer accepts (TOML has no null)."""
    if isinstance(obj, dict):
        return {str(k): _plain(v) for k, v in obj.items() if v is not None}
    if isinstance(obj, (list, tuple)):
        return [_plain(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        return _plain(obj.item() if getattr(obj, "ndim", 0) == 0 else obj.tolist())
    return obj


def dumps_toml(d: dict, header: str | None = None) -> str:
    """``d`` as TOML text (:mod:`tomli_w`): top-level values, then ``[tables]`` and
    ``[[arrays of tables]]``; None values are skipped. ``header`` becomes leading comments."""
    import tomli_w

    comments = "".join(f"# {line}".rstrip() + "\n" for line in header.splitlines()) if header else ""
    return comments + tomli_w.dumps(_plain(d))


def dump_case(exp: Experiment, path: str | os.PathLike) -> Path:
    """Write ``exp`` as a complete TOML case file (atomically); ``load_case`` reads it back equal."""
    from cait_fem.fileio import write_text_atomic
    header = "cait_fem case file (all parameters explicit; SI units in the key names)"
    text = dumps_toml(experiment_to_dict(exp), header=header)
    return write_text_atomic(path, text)


# ----------------------------------------------------------------------------- units
_UNIT_SUFFIXES = (("_V_s", "V/s"), ("_A_m2", "A/m^2"), ("_m2_s", "m^2/s"), ("_m_s", "m/s"), ("_m3", "m^-3"),
                  ("_m2", "m^-2"),
                  ("_nm", "nm"), ("_m", "m"), ("_s", "s"), ("_K", "K"), ("_eV", "eV"), ("_V", "V"),
                  ("_C_m2", "C/m^2"), ("_u", "u"))
_SPECIAL_UNITS = {"potential_atol": "k_B T / e", "newton_atol": "1 (theta = n / n_bg)",
                  "time_tolerance": "1 (theta = n / n_bg)", "eps_r": "1", "charge_number": "1 (e)"}


def unit_of(key: str) -> str | None:
    """The unit encoded in a parameter name (``thickness_m`` -> ``m``), "1" if dimensionless."""
    if key in _SPECIAL_UNITS:
        return _SPECIAL_UNITS[key]
    for suffix, unit in _UNIT_SUFFIXES:
        if key.endswith(suffix):
            return unit
    return "1"


def parameters_with_units(d: dict, prefix: str = "") -> dict:
    """Flatten a case dictionary to ``{"glass.thickness_m": {"value": 1e-3, "unit": "m"}}``;
    species are keyed by name (``species.K.diffusion.D_m2_s``); strings carry no unit."""
    out = {}
    for key, value in d.items():
        path = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(parameters_with_units(value, path + "."))
        elif _is_table_array(value):
            for i, item in enumerate(value):
                label = item.get("name", i) if isinstance(item, dict) else i
                out.update(parameters_with_units(item, f"{path}.{label}."))
        elif isinstance(value, str) or (isinstance(value, (list, tuple)) and value and
                                        all(isinstance(x, str) for x in value)):
            out[path] = {"value": value}
        else:
            out[path] = {"value": value, "unit": unit_of(str(key))}
    return out
