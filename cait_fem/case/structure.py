"""The structure of a case: what compiled forms fix (glass, mesh grading, species and
their laws, front and back types, flux, geometry), as opposed to the parameter values
their Constants take. A Simulation runs again, a fit evaluates and a checkpoint resumes
only with the same structure; the differences are named in case-file keys. Pure."""

from __future__ import annotations

from dataclasses import fields

from cait_fem.errors import ConfigError

from .experiment import MESH_CHECK_FIELDS, Experiment


def structure_of(exp) -> dict:
    """What must not change between runs of one compiled Simulation (or between a
    checkpoint and its resumed run), as ``{dotted case-file key: value}``: glass, mesh
    grading (not the ``mesh.max_cells`` guard), flux, species (names, roles, charges,
    diffusion models and their parameter sets), front and back types and geometry.
    ``exp``: an Experiment or a Physics (which has no mesh and geometry)."""
    out = {f"glass.{f.name}": getattr(exp.glass, f.name) for f in fields(exp.glass)}
    if isinstance(exp, Experiment):
        out.update({f"mesh.{f}": getattr(exp.mesh, f) for f in exp.mesh.__dataclass_fields__
                    if f not in MESH_CHECK_FIELDS})
    out["flux"] = exp.flux
    out["species"] = [f"{s.name} ({s.role})" for s in exp.species]
    for s in exp.species:
        where = f"species.{s.name}"
        out[f"{where}.charge_number"] = s.charge_number
        out[f"{where}.diffusion.model"] = type(s.diffusion).model
        out[f"{where}.diffusion.filling"] = getattr(s.diffusion, "filling", None)
        # the Constants of the compiled law: e.g. a tabulated law's number of knots
        out[f"{where}.diffusion (its parameters)"] = tuple(
            s.diffusion.nondim_parameters(exp.glass.temperature_K, 1.0))
    out["front.type"] = exp.front.type
    out["front.species"] = exp.front.species
    out["back.native"] = exp.back.native
    if isinstance(exp, Experiment):
        out.update({f"geometry.{f}": getattr(exp.geometry, f) for f in exp.geometry.__dataclass_fields__})
    return out


def structure_changes(compiled, new) -> list[tuple[str, object, object]]:
    """The keys of :func:`structure_of` that differ: [(dotted key, old, new)]; mesh and
    geometry are compared only between two Experiments."""
    old, cur = structure_of(compiled), structure_of(new)
    return [(key, old[key], cur[key]) for key in old if key in cur and old[key] != cur[key]]


def check_same_structure(compiled, new) -> None:
    """Raise ConfigError unless ``new`` differs from ``compiled`` in parameter values only
    (what the Constants of compiled forms can take): same glass, mesh, species, laws,
    front and back types, flux and geometry. Either may be an :class:`Experiment` or a
    :class:`Physics`; mesh and geometry are compared only between two Experiments. The
    message names the first differing key in case-file terms, e.g. ``species.K.diffusion.model
    changed from 'constant' to 'sed'``."""
    changes = structure_changes(compiled, new)
    if changes:
        key, old, cur = changes[0]
        more = f" (and {', '.join(k for k, _, _ in changes[1:])})" if len(changes) > 1 else ""
        raise ConfigError(f"{key} changed from {old!r} to {cur!r}{more}: only parameter values may change "
                          "between runs of one compiled Simulation (a fit's, too), and a checkpoint can only be "
                          "resumed with the same structure; start a new run for another structure")
