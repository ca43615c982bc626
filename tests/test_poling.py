"""Thermal electro-poling: a blocking anode on the front (docs/model.md section 4.6).

Expected values come from electrostatics and the Poisson-Boltzmann equilibrium, never from
earlier runs: the full-depletion width sqrt(2 eps U / (e n_bg)), the linearised
Gouy-Chapman (Debye) layer at small bias, and the charge balance of the back electrode.
The glass is a thin (0.2-1 um) test glass of low ion density (1e25 m^-3: Debye length
1.07 nm at 300 K), so that a depletion layer of tens of nm needs only 10 V.
"""

import math

import numpy as np
import pytest
from scipy import constants as sc
from scipy.integrate import quad
from support.compare import approx

import cait_fem as cf
from cait_fem.case.case_file import experiment_from_dict
from cait_fem.errors import ConfigError
from cait_fem.solver.stepsize import Stepsize

N_BG, EPS_R, T, D = 1e25, 8.0, 300.0, 1e-16
DEBYE_M = math.sqrt(sc.epsilon_0 * EPS_R * sc.k * T / (sc.e**2 * N_BG))
NATIVE = cf.Species("Na", "native", cf.ConstantD(D_m2_s=D))


def _experiment(front, thickness_m=1e-6, **run):
    glass = cf.Glass(n_bg_m3=N_BG, eps_r=EPS_R, temperature_K=T, thickness_m=thickness_m, name="test")
    return cf.Experiment(glass=glass, species=(NATIVE,), front=front, run=cf.RunSettings(**run), name="poling")


def _half_depth(theta, x):
    """First depth [m] where theta rises through 1/2 (linear interpolation)."""
    i = int(np.argmax(theta >= 0.5))
    return float(np.interp(0.5, theta[i - 1:i + 1], x[i - 1:i + 1]))


# -- input -------------------------------------------------------------------------------

def _case(front):
    return {"glass": {"n_bg_m3": N_BG, "eps_r": EPS_R, "temperature_K": T, "thickness_m": 1e-6},
            "species": [{"name": "Na", "role": "native", "diffusion": {"model": "constant", "D_m2_s": D}}],
            "front": front, "run": {"t_end_s": 1.0}}


def test_anode_case_needs_no_foreign_species_and_reads_every_history():
    exp = experiment_from_dict(_case({"type": "anode", "U_V": 10}))
    assert isinstance(exp.front, cf.AnodeFront) and exp.foreign == ()
    ramp = experiment_from_dict(_case({"type": "anode", "voltage": "ramp", "U_V": 10, "ramp_rate_V_s": 4})).front
    assert [ramp.voltage_at(t) for t in (0.0, 1.0, 2.5, 9.0)] == [0.0, 4.0, 10.0, 10.0]
    steps = experiment_from_dict(_case({"type": "anode", "voltage": "steps", "step_times_s": [0, 1],
                                        "step_U_V": [2, 5]})).front
    # at the jump: the value after it, or before it for a step that ends there
    assert (steps.voltage_at(0.5), steps.voltage_at(1.0), steps.voltage_at(1.0, left=True)) == (2.0, 5.0, 2.0)
    table = experiment_from_dict(_case({"type": "anode", "voltage": "table", "table_times_s": [1, 3],
                                        "table_U_V": [0, 8]})).front
    assert [table.voltage_at(t) for t in (0.0, 2.0, 5.0)] == [0.0, 4.0, 8.0]
    assert table.voltage_breaks_s() == ((1.0, False), (3.0, False))


@pytest.mark.parametrize("front, message", [
    ({"type": "anode"}, "front.U_V = None is not allowed: required"),
    ({"type": "anode", "U_V": 5, "step_U_V": [1]}, "front.step_U_V"),
    ({"type": "anode", "voltage": "ramp", "U_V": 5}, "front.ramp_rate_V_s = None"),
    ({"type": "anode", "voltage": "ramp", "U_V": 5, "ramp_rate_V_s": -1}, "must have the sign of front.U_V"),
    ({"type": "anode", "voltage": "steps", "step_times_s": [0, 2, 1], "step_U_V": [1, 2, 3]},
     "strictly increasing"),
    ({"type": "anode", "voltage": "steps", "step_times_s": [1, 2], "step_U_V": [1, 2]}, "must be 0"),
    ({"type": "anode", "voltage": "table", "table_times_s": [0, 1], "table_U_V": [1]}, "one value per entry"),
    ({"type": "anode", "voltage": "table", "table_times_s": [0, "x"], "table_U_V": [1, 2]},
     "front.table_times_s[1]"),
    ({"type": "anode", "voltage": "sine", "U_V": 1}, "front.voltage = 'sine'"),
    ({"type": "anode", "U_V": 1, "surface_fraction": 1}, "front.surface_fraction is not a known key"),
])
def test_bad_voltage_histories_are_refused_by_name(front, message):
    with pytest.raises(ConfigError, match=message.replace("[", r"\[").replace("(", r"\(")):
        experiment_from_dict(_case(front))


def test_other_fronts_still_need_a_foreign_species():
    with pytest.raises(ConfigError, match='none only with front.type = "anode"'):
        experiment_from_dict(_case({"type": "potential", "U_V": 1, "surface_fraction": 1}))


def test_steps_land_on_break_times_and_restart_after_a_jump():
    c = Stepsize([10.0], dt_initial=1.0, max_order=2, tolerance=1e-3, max_retries=3,
                 breaks=[(2.5, False), (6.0, True)])
    ends, orders = [], []
    while not c.done:
        step = c.propose()
        ends.append(step.t_end)
        orders.append(step.order)
        c.accepted(step, None, 2)
    assert 2.5 in ends and 6.0 in ends and ends[-1] == 10.0
    after_jump = ends.index(6.0) + 1
    # restarted as at t = 0: order 1 and the initial step
    assert orders[after_jump] == 1 and ends[after_jump] == approx(7.0, rel=1e-12)


# -- physics -----------------------------------------------------------------------------

@pytest.mark.dolfinx
def test_steady_full_depletion_width():
    """10 V on 1 um: w = sqrt(2 eps U / (e n_bg)) = 29.7 nm. The steady profile is the
    Poisson-Boltzmann equilibrium; its theta = 1/2 point lies (in Debye lengths) at
    int_{ln 2}^{psi_U} dpsi / sqrt(2 (psi + exp(-psi) - 1)), 0.7 % inside w at psi_U = 387.
    Steady: the bulk relaxes with tau = (d / w) eps / sigma = 0.4 s; 6 s is 15 tau."""
    U = 10.0
    r = cf.simulate(_experiment(cf.AnodeFront(U_V=U), t_end_s=6.0))
    w = math.sqrt(2 * sc.epsilon_0 * EPS_R * U / (sc.e * N_BG))
    half = _half_depth(r.theta[-1, 0], r.depth_m)
    assert half == approx(w, rel=0.02)
    psi_u = U * sc.e / (sc.k * T)
    exact = DEBYE_M * quad(lambda p: 1 / math.sqrt(2 * (p + math.exp(-p) - 1)), math.log(2), psi_u, limit=200)[0]
    assert half == approx(exact, rel=2e-3)
    # blocking: the depleted layer is empty, the bulk untouched, the current has died out
    assert r.theta[-1, 0][r.depth_m < 0.5 * w].max() < 1e-6
    assert r.theta[-1, 0][r.depth_m > 3 * w] == approx(1.0, abs=1e-3)
    assert abs(r.current_density_A_m2[-1]) < 1e-3 * r.current_density_A_m2[1:].max()


@pytest.mark.dolfinx
def test_small_bias_gives_the_debye_layer():
    """U = 0.25 mV << k_B T / e: linearised Poisson-Boltzmann, phi = U exp(-x / lambda_D)
    (0.2 um = 187 Debye lengths: the back electrode is out of reach), and the anode carries
    the Gouy-Chapman charge eps U / lambda_D. RC time (d / lambda_D) lambda_D^2 / D = 2 s."""
    from cait_fem.post.anode import AnodeCharge

    U = 2.5e-4
    sim = cf.Simulation(_experiment(cf.AnodeFront(U_V=U), thickness_m=0.2e-6, t_end_s=20.0))
    anode = AnodeCharge(sim)
    r = sim.run(callbacks=[anode])
    x, phi = r.depth_m, r.potential_V[-1]
    near = x < 6 * DEBYE_M
    assert np.max(np.abs(phi[near] / U - np.exp(-x[near] / DEBYE_M))) < 5e-3
    assert anode.charge_C_m2[-1] == approx(sc.epsilon_0 * EPS_R * U / DEBYE_M, rel=5e-3)


@pytest.mark.dolfinx
@pytest.mark.parametrize("front", [
    cf.AnodeFront(U_V=10.0, voltage="ramp", ramp_rate_V_s=20.0),
    cf.AnodeFront(voltage="steps", step_times_s=(0.0, 0.3), step_U_V=(5.0, 10.0)),
], ids=["ramp", "steps"])
def test_current_integral_equals_depleted_charge(front):
    """Halfway through the transient and at its end: the time integral of the
    back-electrode current (trapezoid over the recorded steps) equals the charge of the
    depleted layer e n_bg int (1 - theta) dx of the stored profile, and (Gauss) the
    anode's charge is that plus eps E at the back, which the bulk field keeps small."""
    from cait_fem.post.anode import AnodeCharge

    sim = cf.Simulation(_experiment(front, t_end_s=0.8, output_times_s=(0.5,)))
    anode = AnodeCharge(sim)
    r = sim.run(callbacks=[anode])
    for k, tk in enumerate(r.output_times_s):
        depleted = sc.e * N_BG * np.trapezoid(1.0 - r.theta[k, 0], r.depth_m)
        upto = r.time_s <= tk * (1 + 1e-12)
        passed = np.trapezoid(r.current_density_A_m2[upto], r.time_s[upto])
        assert passed == approx(depleted, rel=2e-3)
        assert r.surface_potential_V[upto][-1] == approx(front.voltage_at(tk), rel=1e-9)
    # the anode's own charge at the end against the depleted charge (+ eps E(d), < 2 %)
    assert anode.charge_C_m2[-1] == approx(depleted, rel=0.02)


def test_a_jump_on_an_output_time_still_restarts_the_stepper():
    c = Stepsize([4.0, 10.0], dt_initial=1.0, max_order=2, tolerance=1e-3, max_retries=3, breaks=[(4.0, True)])
    while c.t < 4.0:
        step = c.propose()
        c.accepted(step, None, 2)
    assert step.hits and step.at_break
    assert c.order() == 1 and c.propose().h == 1.0


def test_anode_case_round_trips_through_toml(tmp_path):
    from cait_fem.case.case_file import dump_case, load_case

    exp = _experiment(cf.AnodeFront(voltage="steps", step_times_s=(0.0, 0.3), step_U_V=(5.0, 10.0)), t_end_s=1.0)
    assert load_case(dump_case(exp, tmp_path / "poling.toml")) == exp
