"""Checkpoint and restart: the complete state of a run, written at its output times.

A checkpoint directory holds ``checkpoint.json`` (the experiment as a case dictionary, the
time, the step-size controller's state, the time series and metadata) and ``state.npz``
(the last accepted states, up to four, which BDF3 and its predictor need, the node coordinates,
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
import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from cait_fem.case.case_file import experiment_from_dict, experiment_to_dict, parameters_with_units
from cait_fem.case.structure import check_same_structure
from cait_fem.errors import ConfigError
from cait_fem.fileio import atomic_path, to_jsonable, write_json_atomic
from cait_fem.output.result_set import deferred_signals
from cait_fem.solver.stepsize import HISTORY_LENGTH

from .record import INFLUX_HISTORY, SERIES

FORMAT_VERSION = 1
META_FILE = "checkpoint.json"
STATE_FILE = "state.npz"
#: keys of the stepper statistics (cait_fem.solver.timestepping.StepperStats)
_STATS_KEYS = ("steps", "rejected_steps", "newton_failures", "newton_iterations", "krylov_iterations",
               "replay_abandoned")


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
    # The two files are one checkpoint: a signal between them would leave a state of one
    # step beside the metadata of another, which cannot be resumed. So both are written
    # with SIGINT/SIGTERM held back (delivered right after).
    with deferred_signals():
        with atomic_path(directory / STATE_FILE) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, keys=sorted_keys, coordinates=coords, step=np.array(step), **arrays)
        write_json_atomic(directory / META_FILE, to_jsonable(meta))
    comm.barrier()


def _bad(path, what: str) -> ConfigError:
    return ConfigError(f"checkpoint {path}: {what}; the file is damaged or not a cait_fem checkpoint "
                       "(write a new one with `cait-fem run --checkpoint`)")


def _is_number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def _numbers(v, finite: bool = True) -> bool:
    if finite:
        return isinstance(v, list) and all(_is_number(x) for x in v)
    return isinstance(v, list) and all(isinstance(x, (int, float)) and not isinstance(x, bool) for x in v)


def _check_meta(meta, path) -> None:
    """The shape of ``checkpoint.json`` (what :func:`write_checkpoint` writes)."""
    if not isinstance(meta, dict):
        raise _bad(path, f"holds a {type(meta).__name__}, not an object")
    if meta.get("format_version") != FORMAT_VERSION:
        raise ConfigError(f"checkpoint {path}: format_version = {meta.get('format_version')!r} "
                          f"is not supported (this cait_fem reads {FORMAT_VERSION})")
    expected = {"step": "an integer >= 0", "t_s": "a finite number >= 0",
                "history_t_s": f"a list of 1 to {HISTORY_LENGTH} times [s]", "stepper": "an object",
                "series": "an object", "scalars": "an object", "experiment": "an object (the case)"}
    for key, allowed in expected.items():
        if key not in meta:
            raise _bad(path, f"{key} is missing ({allowed})")
    checks = {
        "step": isinstance(meta["step"], int) and not isinstance(meta["step"], bool) and meta["step"] >= 0,
        "t_s": _is_number(meta["t_s"]) and meta["t_s"] >= 0,
        "history_t_s": _numbers(meta["history_t_s"]) and 1 <= len(meta["history_t_s"]) <= HISTORY_LENGTH,
        "stepper": isinstance(meta["stepper"], dict),
        "series": isinstance(meta["series"], dict),
        "scalars": isinstance(meta["scalars"], dict),
        "experiment": isinstance(meta["experiment"], dict),
    }
    for key, ok in checks.items():
        if not ok:
            raise _bad(path, f"{key} = {_short(meta[key])} is not {expected[key]}")
    n_history = len(meta["history_t_s"])
    st = meta["stepper"]
    for key, ok in (("h_next_s", _is_number(st.get("h_next_s")) and st.get("h_next_s", 0) > 0),
                    ("steps_s", _numbers(st.get("steps_s")) and len(st["steps_s"]) <= HISTORY_LENGTH - 1
                     and all(h > 0 for h in st["steps_s"])),
                    ("stats", isinstance(st.get("stats"), dict) and all(
                        isinstance(v, (int, bool)) for v in st["stats"].values()))):
        if not ok:
            raise _bad(path, f"stepper.{key} = {_short(st.get(key))} is not valid")
    unknown = set(st["stats"]) - set(_STATS_KEYS)
    if unknown or "steps" not in st["stats"]:
        raise _bad(path, f"stepper.stats has keys {sorted(st['stats'])}, expected {list(_STATS_KEYS)}")
    if "time_scale_s" in st:  # the exact dimensionless state (optional: only used at the same scale)
        ok = (_is_number(st.get("time_scale_s")) and _is_number(st.get("t")) and _is_number(st.get("h_next"))
              and _numbers(st.get("steps")) and len(st["steps"]) == len(st["steps_s"])
              and _numbers(st.get("history_t")) and len(st["history_t"]) == n_history)
        if not ok:
            raise _bad(path, "stepper's dimensionless state (time_scale_s, t, h_next, steps, history_t) is incomplete")
    series = meta["series"]
    if set(series) != set(SERIES) or not all(_numbers(v, finite=False) for v in series.values()):
        raise _bad(path, f"series must hold lists of numbers under {list(SERIES)} (has {sorted(series)})")
    lengths = {len(v) for v in series.values()}
    if len(lengths) != 1:
        raise _bad(path, f"series have different lengths {sorted(lengths)}")
    sc = meta["scalars"]
    # two influx values in checkpoints of the BDF2 versions, three since BDF3
    if not (_numbers(sc.get("influx")) and len(sc["influx"]) in (2, INFLUX_HISTORY) and _is_number(sc.get("content0"))):
        raise _bad(path, f"scalars = {_short(sc)} is not {{influx: [{INFLUX_HISTORY} numbers], content0: number}}")


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _load_state(state_path, meta_path, n_history: int) -> dict:
    """The arrays of ``state.npz``, checked against each other and ``checkpoint.json``."""
    try:
        with np.load(state_path, allow_pickle=False) as npz:
            data = {k: npz[k] for k in npz.files}
    except Exception as exc:  # noqa: BLE001 -- zip, zlib, header and pickle errors alike
        raise _bad(state_path, f"not a readable .npz archive ({type(exc).__name__}: {exc})") from None
    required = ["keys", "coordinates", "step"] + [f"history_{i}" for i in range(n_history)] + \
        [f"run_{k}" for k in ("theta", "potential_V", "depth_m")]
    missing = [k for k in required if k not in data]
    if missing:
        raise _bad(state_path, f"arrays {missing} are missing ({META_FILE} has {n_history} states)")
    keys, coords = data["keys"], data["coordinates"]
    if data["step"].shape != () or data["step"].dtype.kind not in "iu":
        raise _bad(state_path, f"step is an array of shape {data['step'].shape}, not an integer")
    if keys.ndim != 1 or keys.dtype.kind not in "iu" or len(keys) < 2 or np.any(np.diff(keys) <= 0):
        raise _bad(state_path, "keys must be the increasing integer node indices")
    n = len(keys)
    if coords.ndim != 2 or coords.shape[0] != n or not 1 <= coords.shape[1] <= 3 or coords.dtype.kind != "f":
        raise _bad(state_path, f"coordinates have shape {coords.shape}, expected ({n}, 1..3)")
    for i in range(n_history):
        h = data[f"history_{i}"]
        if h.ndim != 2 or h.shape[0] != n or h.dtype.kind != "f" or not np.isfinite(h).all():
            raise _bad(state_path, f"history_{i} has shape {h.shape}, expected ({n}, components), finite numbers")
    depth, theta, pot = data["run_depth_m"], data["run_theta"], data["run_potential_V"]
    if depth.ndim != 1 or theta.ndim != 3 or pot.ndim != 2 or theta.shape[0] != pot.shape[0] \
            or theta.shape[2] != len(depth) or pot.shape[1] != len(depth):
        raise _bad(state_path, f"stored profiles have inconsistent shapes: depth {depth.shape}, theta "
                               f"{theta.shape}, potential {pot.shape}")
    return data


def read_checkpoint(path) -> Checkpoint:
    """Read a checkpoint directory (every rank reads it). Errors (ConfigError) name the file
    and what is wrong: a missing, truncated or foreign file, a ``checkpoint.json`` of another
    shape, arrays of the wrong length."""
    directory = Path(path)
    meta_path, state_path = directory / META_FILE, directory / STATE_FILE
    for p in (meta_path, state_path):
        if not p.is_file():
            raise ConfigError(f"checkpoint {directory}: {p.name} is missing (a checkpoint directory "
                              f"holds {META_FILE} and {STATE_FILE}, written by run(checkpoint_dir=...) "
                              "or `cait-fem run --checkpoint`)")
    try:
        meta = json.loads(meta_path.read_bytes().decode("utf-8"))
    except (OSError, ValueError) as exc:  # UnicodeDecodeError is a ValueError
        raise ConfigError(f"checkpoint {meta_path}: not readable JSON: {exc}") from None
    _check_meta(meta, meta_path)
    n_history = len(meta["history_t_s"])
    data = _load_state(state_path, meta_path, n_history)
    if int(data["step"]) != meta["step"]:
        raise ConfigError(f"checkpoint {directory}: {STATE_FILE} is from step {int(data['step'])} but "
                          f"{META_FILE} from step {meta['step']}: the run stopped while writing it")
    experiment = experiment_from_dict(meta["experiment"], source=str(meta_path))
    block = len(experiment.species) + 1  # theta per species and the potential
    components = {data[f"history_{i}"].shape[1] for i in range(n_history)}
    if components != {block}:
        raise _bad(state_path, f"states have {sorted(components)} components, but the experiment of "
                               f"{META_FILE} has {len(experiment.species)} species (expected {block})")
    if data["run_theta"].shape[1] != len(experiment.species):
        raise _bad(state_path, f"stored profiles have {data['run_theta'].shape[1]} species, expected "
                               f"{len(experiment.species)}")
    run_arrays = {k[4:]: v for k, v in data.items() if k.startswith("run_")}
    return Checkpoint(
        experiment=experiment, t_s=meta["t_s"], step=meta["step"], keys=data["keys"],
        coordinates=data["coordinates"], history_t_s=meta["history_t_s"],
        history=[data[f"history_{i}"] for i in range(n_history)], stepper=meta["stepper"],
        run_state={"series": meta["series"], "scalars": meta["scalars"], "arrays": run_arrays},
        path=directory,
    )


def resume_changes(ckpt: Checkpoint, experiment) -> dict:
    """What resuming ``ckpt`` with ``experiment`` changes: ``{dotted case-file key: [old,
    new]}`` (e.g. ``run.t_end_s``, ``species.K.diffusion.D_m2_s``). ConfigError, naming the
    key, for a change of structure (:func:`~cait_fem.case.experiment.check_same_structure`):
    a checkpoint resumes only the same mesh, species, laws and boundary types."""
    try:
        check_same_structure(ckpt.experiment, experiment)
    except ConfigError as exc:
        raise ConfigError(f"checkpoint {ckpt.path}: cannot resume this run from it: {exc}") from None
    old = parameters_with_units(experiment_to_dict(ckpt.experiment))
    new = parameters_with_units(experiment_to_dict(experiment))
    return {key: [old[key]["value"] if key in old else None, new[key]["value"] if key in new else None]
            for key in list(old) + [k for k in new if k not in old]
            if old.get(key, {}).get("value") != new.get(key, {}).get("value")}
