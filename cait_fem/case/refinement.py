"""Refined numerics of an experiment: the same physics on finer space and time
resolution. What a convergence check, a spatial error estimate and a fit's numerical
error (docs/fitting.md) compare against. Pure."""

from __future__ import annotations

import dataclasses

from .experiment import Experiment


def refined_mesh(exp: Experiment, factor: float, everywhere: bool = True) -> Experiment:
    """``exp`` with the depth spacings divided by ``factor`` (explicit ones and those of
    the depth rule, :mod:`cait_fem.case.resolution`; the fine depth stays), the time
    settings unchanged; ``mesh.max_cells`` grows with the cells. ``everywhere = False``:
    only where profiles live (surface and fine region), the bulk grading as it was."""
    if not factor >= 1.0:
        raise ValueError(f"refinement factor = {factor!r}: must be >= 1")
    m = exp.mesh
    mesh = dataclasses.replace(m, front_spacing_m=None if m.front_spacing_m is None else m.front_spacing_m / factor,
                               cells_per_front_width=m.cells_per_front_width * factor,
                               max_front_spacing_m=m.max_front_spacing_m / factor,
                               surface_spacing_m=m.surface_spacing_m / factor,
                               max_cells=int(m.max_cells * factor ** exp.geometry.dimension))
    if everywhere:
        mesh = dataclasses.replace(mesh, bulk_spacing_m=m.bulk_spacing_m / factor,
                                   growth_ratio=1.0 + (m.growth_ratio - 1.0) / factor)
    return dataclasses.replace(exp, mesh=mesh)


def refined_numerics(exp: Experiment, factor: float = 2.0) -> Experiment:
    """``exp`` with every mesh spacing divided by ``factor`` (explicit ones and those of the
    depth rule, :mod:`cait_fem.case.resolution`; the fine depth stays) and the time tolerance
    tightened so that the steps shrink by about ``factor`` too: the BDF local error per
    step scales as h^(p+1) (p the BDF order, ``run.order``), so the tolerance is divided by
    ``factor**(p+1)``. ``mesh.max_cells`` and ``run.max_steps`` grow with the work."""
    r = exp.run
    run = dataclasses.replace(r, time_tolerance=r.time_tolerance / factor ** (r.order + 1),
                              max_steps=int(r.max_steps * factor))
    return dataclasses.replace(refined_mesh(exp, factor), run=run)
