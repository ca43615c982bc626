"""Checkpoint and restart: the complete state of a run, written at its output times.

A checkpoint directory holds ``checkpoint.json`` (the experiment as a case dictionary, the
time, the step-size controller's state, the time series and metadata) and ``state.npz``
(the last three accepted states, which BDF2 and its predictor need, the node coordinates,
and the depth profiles stored so far). Nodal values are keyed by the mesh's *input* node
index (``geometry.input_global_indices``: the node order of the 1D generator or of the
gmsh model), which does not depend on how the mesh was distributed, so a checkpoint
written by N processes resumes on M. Times are stored in seconds, so a resumed run may
change parameters that change the time scale.

Uses: :meth:`Simulation.run(resume=...) <cait_fem.run.simulation.Simulation.run>` continues
the interrupted run and takes exactly the steps it would have taken;
``run(initial=checkpoint)`` starts a new experiment (double CAIT, a second beam) from a
previous run's final state on the same mesh.

Each file is written atomically; ``state.npz`` first, ``checkpoint.json`` last, both
carrying the step number, so a crash between the two is detected on reading.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cait_fem.case.case_file import experiment_from_dict, experiment_to_dict
from cait_fem.errors import ConfigError
from cait_fem.fileio import atomic_path, to_jsonable, write_json_atomic

FORMAT_VERSION = 1
META_FILE = "checkpoint.json"
STATE_FILE = "state.npz"


def node_keys(forms) -> np.ndarray:
    """The input node index of every local dof node (owned and ghost) of the P1 space."""
    V, geometry = forms.V, forms.domain.geometry
    imap = V.dofmap.index_map
    node = np.empty(imap.size_local + imap.num_ghosts, dtype=np.int64)
    node[V.dofmap.list.ravel()] = geometry.dofmaps[0].ravel()  # P1 on a P1 mesh: same local order
    return np.asarray(geometry.input_global_indices, dtype=np.int64)[node]


@dataclass
class Checkpoint:
    """A run's state at ``t_s`` (see module doc). ``history``: states (nodes x components),
    oldest first, rows in ``keys`` order; ``stepper``: times in s; ``run_state``: the time
    series and the stored profiles of the run so far."""

    experiment: object
    t_s: float
    step: int
    keys: np.ndarray
    coordinates: np.ndarray
    history_t_s: list
    history: list
    stepper: dict
    run_state: dict
    path: Path | None = None

    def local_rows(self, local_keys: np.ndarray, state: np.ndarray, coordinates=None) -> np.ndarray:
        """Rows of ``state`` for the local nodes ``local_keys``; with ``coordinates``
        (local node coordinates, the same unit) checks that the mesh is the same."""
        pos = np.searchsorted(self.keys, local_keys)
        pos = np.minimum(pos, len(self.keys) - 1)
        if len(local_keys) and not np.array_equal(self.keys[pos], local_keys):
            raise ConfigError(f"checkpoint {self.path}: the mesh has nodes the checkpoint does not "
                              f"({len(self.keys)} nodes stored): it was written on another mesh")
        if coordinates is not None and len(local_keys):
            stored = self.coordinates[pos]
            err = np.abs(stored - coordinates[:, : stored.shape[1]]).max()
            if err > 1e-9 * max(1.0, np.abs(stored).max()):
                raise ConfigError(f"checkpoint {self.path}: node coordinates differ from this mesh's by "
                                  f"up to {err:.3g} nm: it was written on another mesh")
        return state[pos]


def gather_rows(comm, keys: np.ndarray, rows: np.ndarray, n_owned: int):
    """Owned rows of all ranks on rank 0, sorted by key (None elsewhere)."""
    pieces = comm.gather((keys[:n_owned], rows[:n_owned]), root=0)
    if comm.rank != 0:
        return None, None
    k = np.concatenate([p[0] for p in pieces])
    r = np.concatenate([p[1] for p in pieces], axis=0)
    order = np.argsort(k, kind="stable")
    return k[order], r[order]


def write_checkpoint(directory, comm, *, experiment, t_s: float, step: int, keys, n_owned: int,
                     coordinates, history_t_s, history_rows, stepper: dict, run_state: dict) -> None:
    """Collective: gather the states (local rows incl. ghosts, ``keys`` per row) on rank 0
    and write the checkpoint files there. ``run_state``: JSON-able series plus numpy arrays
    under ``arrays``."""
    sorted_keys, coords = gather_rows(comm, keys, coordinates, n_owned)
    states = [gather_rows(comm, keys, rows, n_owned)[1] for rows in history_rows]
    if comm.rank != 0:
        comm.barrier()
        return
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    arrays = {f"history_{i}": s for i, s in enumerate(states)}
    arrays.update({f"run_{k}": np.asarray(v) for k, v in run_state.get("arrays", {}).items()})
    with atomic_path(directory / STATE_FILE) as tmp:
        with open(tmp, "wb") as fh:
            np.savez(fh, keys=sorted_keys, coordinates=coords, step=np.array(step), **arrays)
    meta = {
        "format_version": FORMAT_VERSION,
        "step": step,
        "t_s": t_s,
        "history_t_s": list(history_t_s),
        "stepper": stepper,
        "series": run_state.get("series", {}),
        "scalars": run_state.get("scalars", {}),
        "mpi_size": comm.size,
        "experiment": experiment_to_dict(experiment),
    }
    write_json_atomic(directory / META_FILE, to_jsonable(meta))
    comm.barrier()


def read_checkpoint(path) -> Checkpoint:
    """Read a checkpoint directory (every rank reads it). Errors name the file and what is wrong."""
    directory = Path(path)
    meta_path, state_path = directory / META_FILE, directory / STATE_FILE
    for p in (meta_path, state_path):
        if not p.is_file():
            raise ConfigError(f"checkpoint {directory}: {p.name} is missing (a checkpoint directory "
                              f"holds {META_FILE} and {STATE_FILE}, written by run(checkpoint_dir=...) "
                              "or `cait-fem run --checkpoint`)")
    try:
        meta = json.loads(meta_path.read_text())
    except (OSError, ValueError) as exc:
        raise ConfigError(f"checkpoint {meta_path}: not readable JSON: {exc}") from None
    if meta.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"checkpoint {meta_path}: format_version = {meta.get('format_version')!r} "
                          f"is not supported (this cait_fem reads {FORMAT_VERSION})")
    with np.load(state_path) as npz:
        data = {k: npz[k] for k in npz.files}
    if int(data["step"]) != meta["step"]:
        raise ConfigError(f"checkpoint {directory}: {STATE_FILE} is from step {int(data['step'])} but "
                          f"{META_FILE} from step {meta['step']}: the run stopped while writing it")
    experiment = experiment_from_dict(meta["experiment"], source=str(meta_path))
    n_history = len(meta["history_t_s"])
    run_arrays = {k[4:]: v for k, v in data.items() if k.startswith("run_")}
    return Checkpoint(
        experiment=experiment, t_s=meta["t_s"], step=meta["step"], keys=data["keys"],
        coordinates=data["coordinates"], history_t_s=meta["history_t_s"],
        history=[data[f"history_{i}"] for i in range(n_history)], stepper=meta["stepper"],
        run_state={"series": meta["series"], "scalars": meta["scalars"], "arrays": run_arrays},
        path=directory,
    )
