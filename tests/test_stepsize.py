"""The step-size rules of :class:`cait_fem.solver.stepsize.Stepsize`, each with numbers worked
out by hand (pure numpy: no DOLFINx, no solve)."""

import itertools
import math

import numpy as np
import pytest
from support.compare import approx

from cait_fem.solver.stepsize import StepperState, Stepsize

TOL = 1e-3


def control(targets=(100.0,), *, dt_initial=1.0, max_order=2, max_retries=3, **kw):
    return Stepsize(list(targets), dt_initial=dt_initial, max_order=max_order, tolerance=TOL,
                    max_retries=max_retries, **kw)


def accept(c, err=None, its=2):
    """Propose, accept, return the step."""
    step = c.propose()
    c.accepted(step, err, its)
    return step


def test_first_step_is_dt_initial_at_order_1_without_error_test():
    c = control(dt_initial=0.5)
    step = c.propose()
    assert (step.t, step.h, step.order, step.predictor_order) == (0.0, 0.5, 1, 0)
    assert not step.hits and not step.truncated
    assert not c.wants_error_estimate(step)


def test_error_test_starts_once_the_predictor_has_order_plus_one_states():
    bdf2 = control(max_order=2)
    accept(bdf2)  # states at t = 0, 1: order 2 needs three
    step = bdf2.propose()
    assert (step.order, step.predictor_order) == (2, 1)
    assert not bdf2.wants_error_estimate(step)
    accept(bdf2)
    step = bdf2.propose()
    assert (step.order, step.predictor_order) == (2, 2)
    assert bdf2.wants_error_estimate(step)

    bdf1 = control(max_order=1)
    accept(bdf1)
    step = bdf1.propose()
    assert (step.order, step.predictor_order) == (1, 1)
    assert bdf1.wants_error_estimate(step)


def test_newton_failure_retries_with_a_quarter_of_the_step():
    c = control(dt_initial=2.0)
    step = c.propose()
    assert c.newton_failed(step)
    assert c.propose().h == 0.5
    assert c.newton_failed(c.propose())
    assert c.propose().h == 0.125
    assert c.propose().t == 0.0  # nothing moved on


def test_retries_count_failures_and_rejections_together_and_reset_on_acceptance():
    c = control(max_retries=2)
    assert c.newton_failed(c.propose())
    assert c.rejected(c.propose(), 2 * TOL)
    assert not c.newton_failed(c.propose())  # the third failed attempt in a row
    assert c.retries == 3

    c = control(max_retries=2)
    assert c.newton_failed(c.propose())
    assert c.rejected(c.propose(), 2 * TOL)
    accept(c)
    assert c.retries == 0
    assert c.rejected(c.propose(), 2 * TOL)


def test_rejection_shrinks_by_0_7_at_least():
    c = control(max_order=1)
    accept(c)
    step = c.propose()  # h = 2 (grown by 2 without an error estimate), order 1
    assert (step.h, step.order) == (2.0, 1)
    # just above the tolerance the controller alone would take 0.9 (1/1.01)^(1/2) = 0.896
    assert c.rejected(step, 1.01 * TOL)
    assert c.propose().h == approx(2.0 * 0.7, rel=1e-15)
    # far above it: 0.9 (1/100)^(1/2) = 0.09, floored at 0.2
    c.h_next = 2.0
    assert c.rejected(c.propose(), 100 * TOL)
    assert c.propose().h == approx(2.0 * 0.2, rel=1e-15)
    # at order 2 the exponent is 1/3: 0.9 (1/8)^(1/3) = 0.45
    c2 = control(max_order=2)
    accept(c2)
    accept(c2)
    step = c2.propose()
    assert step.order == 2
    assert c2.rejected(step, 8 * TOL)
    assert c2.propose().h == approx(step.h * 0.45, rel=1e-14)


def test_the_error_test_accepts_up_to_the_tolerance():
    c = control()
    assert c.accepts(None)
    assert c.accepts(TOL)
    assert not c.accepts(TOL * (1 + 1e-12))


def test_growth_from_the_error_estimate():
    c = control(max_order=1)
    step = accept(c, err=TOL / 4)  # 0.9 * 4^(1/2) = 1.8
    assert c.h_next == approx(1.8 * step.h, rel=1e-15)
    c = control(max_order=1)
    accept(c, err=0.0)  # no measurable error: the largest growth, 2
    assert c.h_next == 2.0
    c = control(max_order=1)
    accept(c, err=TOL / 1e6)  # 0.9 * 1000 capped at 2
    assert c.h_next == 2.0


@pytest.mark.parametrize("its, factor", [(4, 2.0), (5, 1.0), (6, 1.0), (7, 0.5), (20, 0.5)])
def test_growth_is_capped_by_the_newton_iterations(its, factor):
    c = control(dt_initial=1.0)
    accept(c, err=None, its=its)
    assert c.h_next == factor


def test_newton_cap_and_error_growth_take_the_smaller():
    c = control(max_order=1)
    accept(c, err=TOL / 4, its=5)  # error: 1.8, Newton: 1
    assert c.h_next == 1.0
    c = control(max_order=1)
    accept(c, err=TOL, its=5)  # error: 0.9, Newton: 1
    assert c.h_next == approx(0.9, rel=1e-15)


def test_dt_max_caps_the_step():
    c = control(dt_initial=10.0, dt_max=3.0)
    assert c.propose().h == 3.0


def test_step_ratio_cap_applies_from_order_2():
    for max_order, expected in ((2, 2.4), (1, 10.0)):
        c = control(max_order=max_order, targets=(1000.0,))
        accept(c)  # h = 1
        c.h_next = 10.0
        step = c.propose()
        assert step.order == max_order
        assert step.h == approx(expected, rel=1e-15)
    c = control(max_order=3, targets=(1000.0,))
    accept(c)
    accept(c)  # h = 1, then 2 (grown without an error estimate)
    c.h_next = 10.0
    step = c.propose()
    assert step.order == 3 and step.h == approx(4.0, rel=1e-15)  # BDF3: ratio 2 on h1 = 2


def test_bdf3_order_rises_step_by_step_and_tests_from_the_fourth_step():
    c = control(max_order=3, targets=(1000.0,))
    seen = []
    for _ in range(4):
        step = c.propose()
        seen.append((step.order, step.predictor_order, c.wants_error_estimate(step)))
        c.accepted(step, 1e-9 if seen[-1][2] else None, 2)
    assert seen == [(1, 0, False), (2, 1, False), (3, 2, False), (3, 3, True)]
    assert len(c.steps) == 3  # the cubic predictor's error constant needs h1, h2, h3


def test_a_step_overshooting_the_output_time_lands_on_it():
    c = control(targets=(8.0, 100.0), dt_initial=10.0)
    step = c.propose()
    assert step.h == 8.0 and step.hits and step.truncated
    c.accepted(step, None, 2)
    assert c.k == 1 and c.t == 8.0
    # the proposal beyond the output time is not shrunk by the landing: max(8 * 2, 10)
    assert c.h_next == 16.0


def test_a_step_within_rounding_of_the_output_time_lands_on_it():
    c = control(targets=(1.0,), dt_initial=1.0 - 1e-12)
    step = c.propose()
    assert step.hits and step.h == 1.0


def test_no_sliver_two_equal_steps_reach_the_output_time():
    c = control(targets=(15.0, 100.0), dt_initial=10.0)
    first = c.propose()  # 10 would leave 5 < 10: two steps of 7.5 instead
    assert first.h == 7.5 and first.truncated and not first.hits
    c.accepted(first, None, 2)
    assert c.h_next == 15.0  # max(7.5 * 2, the 10 carried on)
    second = c.propose()
    assert second.h == 7.5 and second.hits
    c.accepted(second, None, 2)
    assert c.t == 15.0 and c.k == 1

    c = control(targets=(25.0,), dt_initial=10.0)  # 10 leaves 15 >= 10: a full step
    step = c.propose()
    assert step.h == 10.0 and not step.truncated


def test_done_after_the_last_output_time():
    c = control(targets=(1.0, 2.0), dt_initial=1.0)
    accept(c)
    assert not c.done
    accept(c)
    assert c.done and c.t == 2.0


def test_replay_takes_the_given_steps_without_error_test_and_lands_on_the_targets():
    c = control(targets=(1.0, 3.0), dt_initial=1e-3, schedule=[0.25, 1.0, 3.0 - 1e-13])
    step = c.propose()
    assert step.h == 0.25 and not step.hits and c.replaying
    assert not c.wants_error_estimate(step)
    c.accepted(step, None, 2)
    step = c.propose()
    assert step.h == 0.75 and step.hits
    c.accepted(step, None, 7)  # many Newton iterations: 0.5 h, but not below the replayed h
    assert c.h_next == 0.75
    step = c.propose()
    assert step.h == 2.0 and step.hits  # lands on 3, not 3 - 1e-13


def test_a_newton_failure_abandons_the_replay():
    c = control(targets=(10.0,), dt_initial=1e-3, schedule=[4.0, 10.0])
    step = c.propose()
    assert step.h == 4.0
    assert c.newton_failed(step)
    assert not c.replaying
    step = c.propose()
    assert step.h == 1.0  # 4 / 4, adaptive from here
    assert c.wants_error_estimate(step) is False  # still one state: nothing to test against
    c.accepted(step, None, 2)
    assert c.wants_error_estimate(c.propose()) is False  # order 2, two states
    c.accepted(c.propose(), None, 2)
    assert c.wants_error_estimate(c.propose())


def test_resume_continues_with_the_saved_controller_state():
    history = [(3.0, None), (4.0, None), (5.0, None)]
    state = StepperState(t=5.0, h_next=3.0, history=history, steps=[1.0, 1.0], stats={})
    c = control(targets=(2.0, 5.0, 20.0), dt_initial=1e-3)
    c.resume(state)
    assert c.k == 2 and not c.done
    step = c.propose()
    assert (step.t, step.h, step.order, step.predictor_order) == (5.0, 2.4, 2, 2)  # ratio cap on h1 = 1

    c = control(targets=(2.0, 5.0, 20.0), schedule=[1.0, 2.0, 5.0, 7.0, 20.0])
    c.resume(state)
    assert c.propose().h == 2.0  # the replay goes on with the step ending at 7


def test_only_bdf1_to_bdf3():
    for order in (0, 4):
        with pytest.raises(ValueError, match="max_order"):
            control(max_order=order)


def test_a_long_run_reaches_every_output_time_exactly_once():
    """With a made-up error that grows with h, the controller takes every output time as
    a step end, never steps past one and never leaves a step shorter than a quarter of
    its predecessor before one (two equal steps instead of a sliver)."""
    targets = [1.0, 3.0, 10.0, 30.0, 100.0]
    c = control(targets=targets, dt_initial=1e-3, dt_max=7.0)
    ends, sizes = [], []
    while not c.done:
        step = c.propose()
        err = TOL * (step.h / 2.0) ** 2 if c.wants_error_estimate(step) else None
        if not c.accepts(err):
            assert c.rejected(step, err)
            continue
        c.accepted(step, err, 3)
        ends.append(c.t)
        sizes.append(step.h)
    assert all(t in ends for t in targets)
    assert ends == sorted(ends) and ends[-1] == 100.0
    assert max(sizes) <= 7.0
    assert all(b >= a / 4 for a, b in itertools.pairwise(sizes))
    assert math.isclose(sum(sizes), 100.0, rel_tol=1e-12)
    assert np.all(np.array(sizes) > 0)
