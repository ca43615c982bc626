"""The run a user asks for: :func:`simulate` runs an Experiment on the depth mesh of its
rule and, while the estimated spatial error exceeds ``mesh.spatial_tolerance``, on a finer
one (docs/numerics.md section 4.2), so that a result leaves with its error under control;
for a 2D/3D sample it stages the field exports and moves them into place as a unit.
One run on one mesh is :class:`~cait_fem.run.simulation.Simulation`.
"""

from __future__ import annotations

from pathlib import Path

from mpi4py import MPI  # (MPI is initialised by mpi4py before PETSc/DOLFINx)

from cait_fem.case.experiment import Experiment
from cait_fem.case.refinement import refined_mesh
from cait_fem.output.result import Result

from . import checkpoint
from .simulation import Simulation
from .spatial_check import exceeds_tolerance, refinement_factor


def converged_run(experiment: Experiment, comm, resolution, progress=None, **options) -> Result:
    """Run ``experiment``; while its estimated spatial error exceeds ``mesh.spatial_tolerance``,
    refine the depth mesh (:func:`refinement_factor`) and run again, at most
    ``mesh.max_refinements`` times. The discarded attempts are listed in
    ``result.stats["mesh_refinements"]``."""
    attempts = []
    exp = experiment
    while True:
        result = Simulation(exp, comm=comm, depth_resolution=resolution).run(progress=progress, **options)
        s, tolerance = result.stats, exp.mesh.spatial_tolerance
        if not exceeds_tolerance(s, tolerance) or len(attempts) >= experiment.mesh.max_refinements:
            break
        estimate = s["spatial_error_estimate"]
        factor = refinement_factor(s, tolerance)
        attempts.append({"cells": s["cells"], "steps": s["steps"], "spatial_error_estimate": estimate,
                         "spatial_error_estimate_max": s["spatial_error_estimate_max"],
                         "wall_time_s": s["wall_time_s"], "refined_by": factor})
        if (comm or MPI.COMM_WORLD).rank == 0:
            print(f"cait-fem: estimated spatial error {estimate:.2g} (pointwise {s['spatial_error_estimate_max']:.2g})"
                  f" above mesh.spatial_tolerance = {tolerance:g}: the depth mesh is refined {factor:.2g}x and the "
                  "run repeated", flush=True)
        exp = refined_mesh(exp, factor, everywhere=False)
        resolution, progress = None, None  # a reporter is closed by the run it reported
    if attempts:
        result.stats["mesh_refinements"] = attempts
        result.stats["wall_time_s"] += sum(a["wall_time_s"] for a in attempts)
    return result


def simulate(experiment: Experiment, *, progress=None, comm=None, initial=None, resume=None,
             checkpoint_dir=None, exports_dir=None, overwrite: bool = False) -> Result:
    """Run ``experiment`` and return its :class:`~cait_fem.output.result.Result`. ``initial``: a
    previous Result or Checkpoint whose final state this experiment starts from;
    ``resume``: a Checkpoint of this run to continue; ``checkpoint_dir``: where to write
    checkpoints; ``exports_dir``: for a 2D/3D geometry, write the fields (VTX), rim
    profiles and field plots of :class:`~cait_fem.post.spot_exports.SpotExports` there (refusing
    to replace earlier ones unless ``overwrite``); their paths are listed in
    ``result.metadata["exported_files"]``. The exports are staged and moved into
    ``exports_dir`` as a unit after the run (:mod:`cait_fem.output.result_set`): an
    interrupted or failed run leaves the earlier exports there as they were."""
    # a checkpoint's state lives on the mesh it was written on: build that one
    ckpt = resume if resume is not None else initial if isinstance(initial, checkpoint.Checkpoint) else None
    resolution = ckpt.experiment.depth_resolution if ckpt is not None else None
    if exports_dir is None or experiment.geometry.kind == "slab":
        return converged_run(experiment, comm, resolution, progress=progress, initial=initial, resume=resume,
                              checkpoint_dir=checkpoint_dir)
    from cait_fem.output.result_set import ResultSet, check_output_place
    from cait_fem.post.spot_exports import OUTPUT_FILES as SPOT_FILES
    from cait_fem.post.spot_exports import SpotExports

    check_output_place(exports_dir, SPOT_FILES, overwrite=overwrite)  # before the mesh is built
    sim = Simulation(experiment, comm=comm, depth_resolution=resolution)
    with ResultSet(exports_dir, owned=SPOT_FILES, comm=sim.comm) as staged:
        exports = SpotExports(sim, staged.staging)
        result = sim.run(progress=progress, initial=initial, resume=resume, checkpoint_dir=checkpoint_dir,
                         callbacks=[exports])  # closed by the run, also when it fails
        written = exports.save()
        paths = staged.commit()
    committed = {p.name for p in paths}
    result.metadata["exported_files"] = [str(staged.final_path(p)) for p in written if Path(p).name in committed]
    return result
