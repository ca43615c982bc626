"""The two files of a checkpoint are written as one: a signal while they are written is
delivered after both, so a checkpoint never pairs the state of one step with the metadata
of another. Pure (a one-rank stand-in communicator), fast tier."""

import json
import os
import signal

import numpy as np
import pytest
from support.experiments import SLAB_EXP

from cait_fem.run import checkpoint


class OneRank:
    rank, size = 0, 1

    def gather(self, value, root=0):
        return [value]

    def barrier(self):
        pass


class Interrupted(Exception):
    pass


def _write(directory, step):
    keys = np.arange(4)
    rows = np.full((4, 3), float(step))
    checkpoint.write_checkpoint(directory, OneRank(), experiment=SLAB_EXP, t_s=10.0 * step, step=step, keys=keys,
                                n_owned=4, coordinates=np.zeros((4, 1)), history_t_s=[10.0 * step],
                                history_rows=[rows], stepper={}, run_state={"arrays": {}})


def test_a_signal_between_the_two_files_comes_after_both(tmp_path, monkeypatch):
    _write(tmp_path, 1)
    real_savez = np.savez

    def savez_then_signal(*args, **kwargs):
        real_savez(*args, **kwargs)
        os.kill(os.getpid(), signal.SIGTERM)  # arrives between state.npz and checkpoint.json

    def handler(signum, frame):
        raise Interrupted(signum)

    old = signal.signal(signal.SIGTERM, handler)
    monkeypatch.setattr(np, "savez", savez_then_signal)
    try:
        with pytest.raises(Interrupted):
            _write(tmp_path, 2)
    finally:
        signal.signal(signal.SIGTERM, old)
    meta = json.loads((tmp_path / checkpoint.META_FILE).read_text())
    with np.load(tmp_path / checkpoint.STATE_FILE) as state:
        assert int(state["step"]) == meta["step"] == 2
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([checkpoint.META_FILE, checkpoint.STATE_FILE])
