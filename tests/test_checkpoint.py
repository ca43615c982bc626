"""Checkpoint / restart: a resumed run equals the uninterrupted one (serial, under
`mpirun -n 2`, and across process counts), a checkpoint seeds a sequential experiment,
and broken or foreign checkpoints are refused with a message."""

import dataclasses
import json
import subprocess
import sys
import textwrap

import numpy as np
import pytest
from support.compare import approx
from support.experiments import LI, RB, K
from support.experiments import SLAB_EXP as EXP
from support.experiments import SLAB_GLASS as GLASS
from support.experiments import SLAB_MESH as MESH
from support.experiments import stopped_at as _stopped_at
from support.paths import BIN, script_prelude

import cait_fem as cf
from cait_fem.errors import ConfigError
from cait_fem.run.checkpoint import META_FILE, STATE_FILE, read_checkpoint

pytestmark = pytest.mark.dolfinx


@pytest.fixture(scope="module")
def uninterrupted():
    from cait_fem.run.simulation import Simulation
    return Simulation(EXP).run()


@pytest.fixture(scope="module")
def checkpoint_1800(tmp_path_factory):
    from cait_fem.run.simulation import Simulation
    directory = tmp_path_factory.mktemp("ckpt") / "checkpoint"
    Simulation(_stopped_at(EXP, 1800.0)).run(checkpoint_dir=directory)
    return directory


def _assert_same_run(a, b, rtol=0.0, atol=0.0, current_rtol=None):
    assert a.time_s.shape == b.time_s.shape
    np.testing.assert_allclose(a.current_density_A_m2, b.current_density_A_m2,
                               rtol=rtol if current_rtol is None else current_rtol, atol=atol)
    for name in ("time_s", "theta", "potential_V", "charge_C_m2", "foreign_inside_m2", "influx_integral_m2",
                 "surface_potential_V"):
        np.testing.assert_allclose(getattr(a, name), getattr(b, name), rtol=rtol, atol=atol, err_msg=name)


def test_checkpoint_holds_the_state_at_the_last_output(checkpoint_1800):
    ckpt = read_checkpoint(checkpoint_1800)
    assert ckpt.t_s == approx(1800.0, rel=1e-12)
    assert ckpt.experiment.run.t_end_s == 1800.0
    assert len(ckpt.history) == 4 and ckpt.history_t_s[-1] == approx(1800.0, rel=1e-12)
    assert ckpt.run_state["arrays"]["theta"].shape[0] == 2  # profiles at 600 s and 1800 s
    assert ckpt.history[-1].shape == (len(ckpt.keys), 3)


def test_resumed_run_equals_the_uninterrupted_run(uninterrupted, checkpoint_1800):
    """Same steps, same arithmetic: equal to the last bit."""
    from cait_fem.run.simulation import Simulation
    resumed = Simulation(EXP).run(resume=read_checkpoint(checkpoint_1800), experiment=EXP)
    assert resumed.stats["steps"] == uninterrupted.stats["steps"]
    _assert_same_run(resumed, uninterrupted)


def test_checkpoint_seeds_a_sequential_experiment_like_a_result(uninterrupted, tmp_path):
    """Double CAIT: Rb+ after K+, from the K+ run's final state. On the 1D mesh the
    Result's profiles are the nodal values, so both ways of seeding must agree exactly."""
    from cait_fem.run.simulation import Simulation
    directory = tmp_path / "k_final"
    Simulation(EXP).run(checkpoint_dir=directory)
    second = cf.Experiment(glass=GLASS, species=(LI, K, RB), front=cf.Beam(1e-2, 10.0, 0.5, species="Rb"),
                           run=cf.RunSettings(t_end_s=600.0), mesh=MESH)
    from_checkpoint = Simulation(second).run(initial=read_checkpoint(directory))
    from_result = Simulation(second).run(initial=uninterrupted)
    assert from_checkpoint.foreign_inside_m2[0] == approx(uninterrupted.foreign_inside_m2[-1], rel=1e-12)
    # theta -> w = theta - 1 -> theta in the Result route: round-off only, which the
    # current (a content difference over steps of 1e-9 s) amplifies, and which can change
    # a Newton iterate within its tolerance (surface potential 2e-9 relative with BDF3)
    _assert_same_run(from_checkpoint, from_result, rtol=1e-8, atol=1e-12, current_rtol=1e-5)


def test_checkpoint_from_another_mesh_is_refused(checkpoint_1800):
    from cait_fem.run.simulation import Simulation
    finer = dataclasses.replace(EXP, mesh=dataclasses.replace(MESH, front_spacing_m=0.4e-9))
    with pytest.raises(ConfigError, match="another mesh"):
        Simulation(finer).run(initial=read_checkpoint(checkpoint_1800))


def test_half_written_checkpoint_is_detected(checkpoint_1800, tmp_path):
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / STATE_FILE).write_bytes((checkpoint_1800 / STATE_FILE).read_bytes())
    meta = json.loads((checkpoint_1800 / META_FILE).read_text())
    meta["step"] += 1  # the json of a later step, the state of an earlier one
    (broken / META_FILE).write_text(json.dumps(meta))
    with pytest.raises(ConfigError, match="stopped while writing"):
        read_checkpoint(broken)
    (broken / STATE_FILE).unlink()
    with pytest.raises(ConfigError, match=f"{STATE_FILE} is missing"):
        read_checkpoint(broken)


MPI_SCRIPT = textwrap.dedent("""
    from mpi4py import MPI
    import numpy as np
    from support.experiments import SLAB_EXP as EXP, stopped_at as _stopped_at
    from cait_fem.run.checkpoint import read_checkpoint
    from cait_fem.run.simulation import Simulation
    Simulation(_stopped_at(EXP, 1800.0)).run(checkpoint_dir={written!r})
    resumed = Simulation(EXP).run(resume=read_checkpoint({written!r}), experiment=EXP)
    full = Simulation(EXP).run()
    if MPI.COMM_WORLD.rank == 0:
        np.savez({out!r}, resumed=resumed.theta, full=full.theta, steps=[resumed.stats["steps"],
                 full.stats["steps"]])
""")


@pytest.mark.mpi
def test_restart_under_mpirun_and_across_process_counts(uninterrupted, tmp_path):
    """Written and resumed by 2 ranks: equal to the 2-rank uninterrupted run. The 2-rank
    checkpoint resumed serially: equal to the serial run to the solver tolerances."""
    from cait_fem.run.simulation import Simulation
    written, out = tmp_path / "ckpt2", tmp_path / "out.npz"
    script = tmp_path / "run.py"
    script.write_text(script_prelude() + MPI_SCRIPT.format(written=str(written), out=str(out)))
    proc = subprocess.run([str(BIN / "mpirun"), "-n", "2", sys.executable, str(script)],
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr
    data = np.load(out)
    assert data["steps"][0] == data["steps"][1]
    np.testing.assert_array_equal(data["resumed"], data["full"])
    assert read_checkpoint(written).experiment == _stopped_at(EXP, 1800.0)
    serial = Simulation(EXP).run(resume=read_checkpoint(written), experiment=EXP)
    np.testing.assert_allclose(serial.theta, uninterrupted.theta, rtol=0, atol=1e-5)


def test_resume_records_the_checkpoint_and_the_changed_parameters(checkpoint_1800, uninterrupted):
    from cait_fem.run.simulation import Simulation
    resumed = Simulation(EXP).run(resume=read_checkpoint(checkpoint_1800), experiment=EXP)
    assert resumed.metadata["resumed_from"] == str(checkpoint_1800)
    assert resumed.metadata["resumed_at_s"] == 1800.0
    # the checkpoint's run stopped at 1800 s; this one goes on to EXP's t_end
    assert resumed.metadata["changed_parameters"]["run.t_end_s"] == [1800.0, EXP.run.t_end_s]
    assert "resumed_from" not in uninterrupted.metadata


def test_resume_with_another_law_is_refused_in_case_file_keys(checkpoint_1800):
    from cait_fem.run.simulation import Simulation
    other = dataclasses.replace(EXP, species=(LI, cf.Species("K", "foreign", cf.ArrheniusD(1e-5, 0.6))))
    with pytest.raises(ConfigError, match="species.K.diffusion.model changed from 'constant' to 'arrhenius'"):
        Simulation(other).run(resume=read_checkpoint(checkpoint_1800))
