"""Callbacks of a run and its record: the pure parts (dispatch, refusal of objects that are
no callbacks, the influx integral, the checkpoint round trip of the record) and what a
Simulation tells its callbacks (every step, every output time, the end, also on failure)."""

import numpy as np
import pytest
from support.compare import approx
from support.experiments import k_demo_1mm

import cait_fem as cf
from cait_fem.errors import ConfigError, SolverError
from cait_fem.run.callbacks import Callback, CallbackList, ExportAdapter, ProgressAdapter, StepInfo
from cait_fem.run.record import SERIES, RunRecord
from cait_fem.solver import bdf


class Log(Callback):
    def __init__(self, name, log):
        self.name, self.log = name, log

    def on_step(self, step):
        self.log.append((self.name, "step", step.t_s))

    def on_output(self, t_s, step):
        self.log.append((self.name, "output", t_s))

    def on_end(self, error=None):
        self.log.append((self.name, "end", error))


def _info(t_s=1.0, output=False):
    record = RunRecord.at_start(content0=0.0, surface_potential_V=0.0, foreign_m2=0.0)
    return StepInfo(t_s=t_s, dt_s=0.5, newton_iterations=3, reached_output=output, record=record)


def test_callback_list_calls_each_callback_in_order():
    log = []
    events = CallbackList([Log("a", log), Log("b", log)])
    info = _info(2.0, output=True)
    events.on_step(info)
    events.on_output(2.0, info)
    events.on_end(None)
    assert log == [("a", "step", 2.0), ("b", "step", 2.0), ("a", "output", 2.0), ("b", "output", 2.0),
                   ("a", "end", None), ("b", "end", None)]


def test_an_object_without_the_callback_methods_is_refused_by_name():
    class WriteOnly:
        def write(self, t_s):
            pass

    with pytest.raises(ConfigError, match=r"callbacks\[1\].*on_step, on_output, on_end"):
        CallbackList([Callback(), WriteOnly()])
    with pytest.raises(ConfigError, match="exports: .*write"):
        ExportAdapter(object())
    with pytest.raises(ConfigError, match="progress: .*update, close"):
        ProgressAdapter(object())


def test_adapters_call_the_old_hooks():
    calls = []

    class Export:
        def write(self, t_s):
            calls.append(("write", t_s))

        def close(self):
            calls.append("close")  # not the run's to call for exports=[...]

    class Reporter:
        def update(self, t_s, dt_s, its):
            calls.append(("update", t_s, dt_s, its))

        def close(self):
            calls.append("closed")

    events = CallbackList([ProgressAdapter(Reporter()), ExportAdapter(Export())])
    info = _info(4.0, output=True)
    events.on_step(info)
    events.on_output(4.0, info)
    events.on_end(None)
    assert calls == [("update", 4.0, 0.5, 3), ("write", 4.0), "closed"]


def test_record_starts_with_the_state_at_t0():
    r = RunRecord.at_start(content0=0.25, surface_potential_V=1.5, foreign_m2=2e18, record_series=False)
    assert set(r.series) == set(SERIES)
    assert r.series["psi_s"] == [1.5] and r.series["foreign"] == [2e18] and r.series["t"] == [0.0]
    assert r.influx == [0.0, 0.0, 0.0] and r.content0 == 0.25 and not r.record_series


def test_influx_integral_is_exact_for_a_constant_rate_with_variable_steps():
    """dI/dt = r discretised by BDF1, variable-step BDF2, then BDF3: exact for I = r t."""
    r = RunRecord.at_start(content0=0.0, surface_potential_V=0.0, foreign_m2=0.0)
    rate = 3.0
    assert r.integrate_influx(1.0, bdf.coefficients(1, 1.0, []), rate) == approx(3.0, rel=1e-15)
    # second step h = 2 after h1 = 1: a = (5/3, -3, 4/3), I = (2 r + 3 I1 - 4/3 I0) / (5/3) = 9
    assert r.integrate_influx(2.0, bdf.coefficients(2, 2.0, [1.0]), rate) == approx(9.0, rel=1e-14)
    assert r.influx == approx([9.0, 3.0, 0.0], rel=1e-14)
    assert r.integrate_influx(0.5, bdf.coefficients(3, 0.5, [2.0, 1.0]), rate) == approx(10.5, rel=1e-14)
    assert r.influx == approx([10.5, 9.0, 3.0], rel=1e-14)


def test_record_round_trips_through_the_checkpoint_state():
    r = RunRecord.at_start(content0=0.5, surface_potential_V=1.0, foreign_m2=0.0)
    r.series["t"].append(10.0)
    r.influx[:] = [2.0, 1.0, 0.5]
    r.add_output(np.ones((2, 4)), np.full(4, 0.1))
    state = r.run_state(np.linspace(0, 1, 4))
    assert state["arrays"]["theta"].shape == (1, 2, 4)
    again = RunRecord.at_start(content0=0.0, surface_potential_V=0.0, foreign_m2=0.0)
    again.restore(state)
    assert again.series["t"] == [0.0, 10.0] and again.influx == [2.0, 1.0, 0.5] and again.content0 == 0.5
    np.testing.assert_array_equal(again.theta[0], np.ones((2, 4)))
    np.testing.assert_array_equal(again.potential_V[0], np.full(4, 0.1))


# -- what a Simulation tells its callbacks ----------------------------------------------------
_experiment = k_demo_1mm


class Recorder(Callback):
    def __init__(self):
        self.steps, self.outputs, self.ends = [], [], []

    def on_step(self, step):
        self.steps.append((step.t_s, step.dt_s, step.newton_iterations, step.reached_output))

    def on_output(self, t_s, step):
        assert step.reached_output and t_s == step.t_s
        self.outputs.append((t_s, len(step.record.theta), step.record.stepper_state.stats["steps"]))

    def on_end(self, error=None):
        self.ends.append(error)


@pytest.fixture(scope="module")
def sim():
    return cf.Simulation(_experiment(t_end_s=1.0))


@pytest.mark.dolfinx
def test_simulation_tells_callbacks_every_step_output_and_the_end(sim):
    rec, calls = Recorder(), []

    class Reporter:  # the old duck-typed progress interface still works
        def update(self, t_s, dt_s, its):
            calls.append(t_s)

        def close(self):
            calls.append("closed")

    result = sim.run(_experiment(t_end_s=300.0, output_times_s=(30.0, 100.0)), callbacks=[rec],
                     progress=Reporter())
    n = result.stats["steps"]
    assert len(rec.steps) == n and n > 10
    assert [s[0] for s in rec.steps] == list(result.time_s[1:])
    assert [s[1] for s in rec.steps] == list(result.dt_s[1:])
    assert [s[2] for s in rec.steps] == list(result.newton_iterations[1:])
    assert sum(s[3] for s in rec.steps) == 3
    # at each output time the record already holds its profile and counts its step
    assert [o[:2] for o in rec.outputs] == [(approx(30.0, rel=1e-12), 1),
                                            (approx(100.0, rel=1e-12), 2),
                                            (approx(300.0, rel=1e-12), 3)]
    assert [o[2] for o in rec.outputs] == [list(result.time_s).index(o[0]) for o in rec.outputs]
    assert rec.ends == [None]
    assert calls[:-1] == list(result.time_s[1:]) and calls[-1] == "closed"


@pytest.mark.dolfinx
def test_callbacks_hear_of_a_failed_run(sim):
    rec = Recorder()
    with pytest.raises(SolverError, match="max_steps") as info:
        # (from 100 s: from the default 1e-9 s, 5 steps are refused before the run)
        sim.run(_experiment(t_end_s=1000.0, dt_initial_s=100.0, max_steps=5), callbacks=[rec])
    assert len(rec.steps) == 5
    assert rec.ends == [info.value]


@pytest.mark.dolfinx
def test_a_non_callback_is_refused_before_the_run(sim):
    with pytest.raises(ConfigError, match=r"callbacks\[0\]"):
        sim.run(callbacks=[object()])
