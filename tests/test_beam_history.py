"""A measured beam current history as the front condition (issue 15 item 3, docs/model.md
section 4.1): the CSV and case-file validation, the exact delivered charge, the times the
stepper lands on, and runs: a constant history is the constant beam, a beam switched off
halfway stops the influx, and the charge the model receives is the delivered charge."""

import dataclasses

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import numpy as np
import pytest
from scipy.constants import e
from scipy.integrate import quad
from support.cases import CONTRACT_CASE_TOML
from support.compare import approx
from support.experiments import SLAB_EXP

import cait_fem as cf
from cait_fem.case.beam_history import charge_at, history_breaks, read_history_csv
from cait_fem.case.case_file import experiment_from_dict, experiment_to_dict, load_case
from cait_fem.errors import ConfigError

J = 1e-2  # A/m^2, the K+ demo beam


def _write(tmp_path, text, name="beam.csv"):
    path = tmp_path / name
    path.write_text(text)
    return path


# -- the CSV ------------------------------------------------------------------------------

BAD_CSV = {
    "unknown column": ("time_s,current_mA\n0,1\n10,1\n", None, ["line 1", "'current_mA'", "unknown column",
                                                               "current_density_A_m2"]),
    "no time column": ("current_density_A_m2\n0.01\n0.01\n", None, ["line 1", "'time_s'", "required"]),
    "two currents": ("time_s,current_density_A_m2,current_A\n0,1,1\n1,1,1\n", None, ["exactly one of"]),
    "no current": ("time_s\n0\n1\n", None, ["exactly one of"]),
    "duplicated": ("time_s,time_s,current_A\n0,0,1\n", 1e-6, ["duplicated"]),
    "text cell": ("# log\ntime_s,current_density_A_m2\n0,0.01\n5,abc\n", None,
                  ["line 4", "'current_density_A_m2'", "'abc' is not a number"]),
    "nan": ("time_s,current_density_A_m2\n0,0.01\n5,nan\n", None, ["line 3", "finite"]),
    "negative current": ("time_s,current_density_A_m2\n0,0.01\n5,-1e-3\n", None,
                         ["line 3", "'current_density_A_m2'", "-0.001", ">= 0"]),
    "late start": ("time_s,current_density_A_m2\n1,0.01\n5,0.01\n", None, ["line 2", "'time_s'", "must be 0"]),
    "time not increasing": ("time_s,current_density_A_m2\n0,0.01\n5,0.01\n\n5,0.02\n", None,
                            ["line 5", "'time_s'", "5.0", "strictly increasing"]),
    "one row": ("time_s,current_density_A_m2\n0,0.01\n", None, ["1 data row", "at least 2"]),
    "short row": ("time_s,current_density_A_m2\n0,0.01\n5\n", None, ["line 3", "1 cell(s)",
                                                                     "no cell for column 'current_density_A_m2'"]),
    "current without area": ("time_s,current_A\n0,1e-8\n5,1e-8\n", None, ["front.spot_area_m2 = None",
                                                                           "required with the column current_A"]),
    "bad area": ("time_s,current_A\n0,1e-8\n5,1e-8\n", -1.0, ["front.spot_area_m2 = -1.0", "> 0"]),
    "area with density": ("time_s,current_density_A_m2\n0,0.01\n5,0.01\n", 1e-6,
                          ["front.spot_area_m2 = 1e-06", "only with a current_A column"]),
    "empty": ("# nothing\n\n", None, ["no header"]),
}


@pytest.mark.parametrize("label", sorted(BAD_CSV))
def test_bad_history_csv_names_file_line_column_and_value(tmp_path, label):
    text, area, expected = BAD_CSV[label]
    path = _write(tmp_path, text)
    with pytest.raises(ConfigError) as info:
        read_history_csv(path, area)
    message = str(info.value)
    assert str(path) in message, message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_unreadable_history_csv(tmp_path):
    with pytest.raises(ConfigError, match="cannot read the beam history file"):
        read_history_csv(tmp_path / "absent.csv")


def test_current_and_spot_area_equal_the_current_density(tmp_path):
    area = 2.5e-7  # m^2: a 0.56 mm spot
    t = [0.0, 60.0, 61.0, 3600.0]
    current = [2.5e-9, 2.5e-9, 1.0e-9, 0.0]  # A
    amps = _write(tmp_path, "# Faraday cup, A\ntime_s, current_A\n" + "".join(f"{a},{b}\n" for a, b in zip(t, current)))
    dens = _write(tmp_path, "time_s,current_density_A_m2\n" + "".join(f"{a},{b / area}\n" for a, b in zip(t, current)),
                  "density.csv")
    t_a, j_a = read_history_csv(amps, area)
    t_d, j_d = read_history_csv(dens)
    assert t_a == t_d == tuple(t)
    assert j_a == approx(j_d, rel=1e-15)
    assert j_a[0] == approx(1e-2, rel=1e-15)


# -- the delivered charge and the breaks ---------------------------------------------------

def test_delivered_charge_is_the_exact_integral_of_the_linear_interpolant():
    rng = np.random.default_rng(3)
    t = np.concatenate([[0.0], np.cumsum(rng.uniform(0.5, 3.0, 40))])
    j = rng.uniform(0.0, 2e-2, t.size)
    for end in (0.0, 0.3, t[7], 0.5 * (t[10] + t[11]), t[-1]):
        # scipy's adaptive quadrature of np.interp, told where the kinks are
        expected = quad(lambda s: np.interp(s, t, j), 0.0, end, points=t[t < end], limit=200)[0] if end > 0 else 0.0
        assert charge_at(end, t, j) == approx(expected, rel=1e-12, abs=1e-18)
    # a ramp 0 -> 1 A/m^2 over 10 s and held: Q = t^2/20 on the ramp, then 5 + (t - 10)
    ramp = ([0.0, 10.0, 20.0], [0.0, 1.0, 1.0])
    assert charge_at(np.array([4.0, 10.0, 13.0]), *ramp) == approx([0.8, 5.0, 8.0], rel=1e-15)


def test_breaks_land_on_switches_and_level_changes_not_on_noise():
    rng = np.random.default_rng(0)
    t = np.linspace(0.0, 4000.0, 40001)
    j = J * (1.0 + 0.05 * rng.standard_normal(t.size))
    assert history_breaks(t, j) == ()  # 40001 noisy samples: no forced step
    j_off = np.where(t < 2000.0, j, 0.0)
    breaks = dict(history_breaks(t, j_off))
    # the last sample on, and the first one off, where the stepper restarts
    assert breaks == {float(t[19999]): False, 2000.0: True}
    # a level change to a tenth: landed on (no restart: the beam stays on)
    j_step = np.where(t < 1000.0, j, 0.1 * j)
    times = [b for b, _ in history_breaks(t, j_step)]
    assert 1 <= len(times) <= 6 and any(abs(b - 1000.0) <= 0.2 for b in times)
    # a noise dip to 0 for one sample misses no charge worth a restart
    j_dip = j.copy()
    j_dip[5000] = 0.0
    assert history_breaks(t, j_dip) == ()


# -- the case file ---------------------------------------------------------------------------

def _case(**front):
    d = tomllib.loads(CONTRACT_CASE_TOML)
    del d["front"]["current_density_A_m2"]
    d["front"].update(front)
    return d


def test_case_file_reads_the_history_relative_to_itself(tmp_path):
    (tmp_path / "logs").mkdir()
    _write(tmp_path / "logs", "time_s,current_A\n0,1e-9\n1800,2e-9\n4000,0\n")
    text = CONTRACT_CASE_TOML.replace("current_density_A_m2 = 1e-2",
                                      'current_history_csv = "logs/beam.csv"\nspot_area_m2 = 1e-7')
    case = tmp_path / "case.toml"
    case.write_text(text)
    exp = load_case(case)
    assert exp.front.has_history and exp.front.current_density_A_m2 is None
    assert exp.front.current_times_s == (0.0, 1800.0, 4000.0)
    assert exp.front.current_density_history_A_m2 == approx((1e-2, 2e-2, 0.0), rel=1e-15)
    assert "logs/beam.csv" in exp.front.current_history_source and "1e-07" in exp.front.current_history_source
    assert exp.front.charge_C_m2(3600.0) == approx(0.5 * (1e-2 + 2e-2) * 1800 + 1800 * 2e-2 * (1 - 900 / 2200),
                                                   rel=1e-14)
    # the experiment holds the samples: it round-trips without the file
    (tmp_path / "logs" / "beam.csv").unlink()
    assert experiment_from_dict(experiment_to_dict(exp)) == exp


BAD_CASES = {
    "history too short": (dict(current_times_s=[0, 1000], current_density_history_A_m2=[J, J]),
                          ["front.current_times_s", "1000", "run.t_end_s = 3600"]),
    "constant and history": (dict(current_density_A_m2=J, current_times_s=[0, 4000],
                                  current_density_history_A_m2=[J, J]),
                             ["front.current_density_A_m2 = 0.01", "not with a current history"]),
    "times without values": (dict(current_times_s=[0, 4000]), ["front.current_density_history_A_m2 = None",
                                                               "required"]),
    "unequal lengths": (dict(current_times_s=[0, 10, 4000], current_density_history_A_m2=[J, J]),
                        ["front.current_density_history_A_m2", "one value per entry"]),
    "negative value": (dict(current_times_s=[0, 4000], current_density_history_A_m2=[J, -J]),
                       ["front.current_density_history_A_m2[1] = -0.01", ">= 0"]),
    "unsorted": (dict(current_times_s=[0, 4000, 3000], current_density_history_A_m2=[J, J, J]),
                 ["front.current_times_s[2] = 3000", "strictly increasing"]),
    "area without csv": (dict(current_density_A_m2=J, spot_area_m2=1e-7),
                         ["front.spot_area_m2 = 1e-07", "only with front.current_history_csv"]),
    "csv and arrays": (dict(current_history_csv="beam.csv", current_times_s=[0, 4000]),
                       ["front.current_times_s", "not with front.current_history_csv"]),
    "no current": ({}, ["front.current_density_A_m2 is missing"]),
    "unknown key": (dict(current_density_A_m2=J, beam_log="x.csv"),
                    ["front.beam_log", "not a known key", "current_history_csv", "spot_area_m2"]),
}


@pytest.mark.parametrize("label", sorted(BAD_CASES))
def test_bad_history_keys_name_key_value_and_rule(label):
    front, expected = BAD_CASES[label]
    with pytest.raises(ConfigError) as info:
        experiment_from_dict(_case(**front), source="case.toml")
    message = str(info.value)
    assert message.startswith("case.toml: "), message
    for part in expected:
        assert part in message, f"{part!r} not in {message!r}"


def test_missing_csv_names_the_path(tmp_path):
    with pytest.raises(ConfigError, match=r"case.toml: .*absent\.csv: cannot read the beam history file"):
        experiment_from_dict(_case(current_history_csv="absent.csv"), source="case.toml", base_dir=tmp_path)


# -- runs ----------------------------------------------------------------------------------

T_END = 1800.0
BASE = dataclasses.replace(SLAB_EXP, run=dataclasses.replace(SLAB_EXP.run, t_end_s=T_END,
                                                             output_times_s=(900.0, T_END)))


def _history(times, values, E_kin_eV=10.0):
    return cf.Beam(E_kin_eV=E_kin_eV, sigma_E_eV=0.5, current_times_s=list(times),
                   current_density_history_A_m2=list(values))


def _run(front):
    from cait_fem.run.simulation import Simulation
    return Simulation(dataclasses.replace(BASE, front=front)).run(spatial_estimate=False)


@pytest.mark.dolfinx
def test_constant_history_is_the_constant_beam():
    constant = _run(cf.Beam(J, 10.0, 0.5))
    history = _run(_history([0.0, 1000.0, 2500.0], [J, J, J]))
    assert history.time_s.size == constant.time_s.size
    assert history.time_s == approx(constant.time_s, rel=1e-12)
    assert history.theta[-1] == approx(constant.theta[-1], rel=1e-9, abs=1e-12)
    assert history.delivered_charge_C_m2[-1] == approx(J * T_END, rel=1e-15)
    assert history.summary()["delivered_charge_C_m2"] == approx(J * T_END, rel=1e-15)
    assert history.summary()["beam_current"] == "measured history"
    assert constant.summary()["beam_current"] == "constant"


@pytest.mark.dolfinx
def test_beam_switched_off_halfway():
    t_off, ramp = 900.0, 0.5  # s: the log's last sample on, and the time to the first one off
    r = _run(_history([0.0, t_off, t_off + ramp, 2000.0], [J, J, 0.0, 0.0], E_kin_eV=1000.0))
    expected = J * t_off + 0.5 * J * ramp  # C/m^2, by hand
    delivered, landed = r.delivered_charge_C_m2, r.landed_charge_C_m2
    assert delivered[-1] == approx(expected, rel=1e-14)
    # the stepper landed on the switch (and restarted there)
    assert np.any(np.abs(r.time_s - t_off) < 1e-9 * t_off) and np.any(np.abs(r.time_s - t_off - ramp) < 1e-9 * t_off)
    # E_kin far above the surface potential: everything lands, and the model received
    # the delivered charge at every step
    assert landed == approx(delivered, rel=1e-13, abs=1e-14 * expected)
    inside = r.foreign_inside_m2 * e  # C/m^2 (z = 1)
    after = r.time_s >= t_off + ramp
    assert after.sum() > 10
    assert inside[after] == approx(np.full(after.sum(), expected), rel=1e-9)
    assert r.conservation_error < 1e-9
    exposure = r.exposure()
    assert exposure["exposure_time_s"] == T_END
    assert exposure["delivered_ions_m2"] == approx(expected / e, rel=1e-14)
    assert exposure["landed_fraction"] == approx(1.0, rel=1e-13)


@pytest.mark.dolfinx
def test_noisy_log_delivers_its_charge_without_a_step_per_sample():
    rng = np.random.default_rng(7)
    t = np.linspace(0.0, 2000.0, 20001)
    j = J * (1.0 + 0.3 * np.sin(t / 150.0)) * (1.0 + 0.05 * rng.standard_normal(t.size))
    r = _run(_history(t, j, E_kin_eV=1000.0))
    assert r.stats["steps"] < 1000  # 18001 samples up to t_end
    exact = quad(lambda s: np.interp(s, t, j), 0.0, T_END, points=t[t < T_END], limit=20000)[0]
    assert r.delivered_charge_C_m2[-1] == approx(exact, rel=1e-10)
    assert r.landed_charge_C_m2 == approx(r.delivered_charge_C_m2, rel=1e-13, abs=1e-14 * exact)


@pytest.mark.dolfinx
def test_reflected_part_of_the_beam_is_delivered_but_not_landed():
    # E_kin near the surface potential (~0.13 V): part of the beam is turned back
    r = _run(_history([0.0, 600.0, 2000.0], [J, 2 * J, 2 * J], E_kin_eV=0.3))
    delivered, landed = r.delivered_charge_C_m2[-1], r.landed_charge_C_m2[-1]
    assert delivered == approx(J * 300 + 2 * J * 1500, rel=1e-14)
    assert 0.05 * delivered < landed < 0.99 * delivered
    assert r.foreign_inside_m2[-1] * e == approx(landed, rel=1e-9)


@pytest.mark.dolfinx
def test_case_file_with_a_logged_beam_runs_and_reports_its_exposure(tmp_path):
    import csv
    import json

    area = 1e-6  # m^2
    rows = [(0.0, 1e-8), (300.0, 1e-8), (300.001, 0.0), (400.0, 0.0), (400.001, 2e-8), (700.0, 2e-8)]
    _write(tmp_path, "# Faraday cup log\ntime_s,current_A\n" + "".join(f"{t},{i}\n" for t, i in rows))
    text = (CONTRACT_CASE_TOML.replace("current_density_A_m2 = 1e-2",
                                       f'current_history_csv = "beam.csv"\nspot_area_m2 = {area}')
            .replace("thickness_m = 1e-3", "thickness_m = 2e-6")
            .replace("t_end_s = 3600", "t_end_s = 600")
            .replace("output_times_s = [600, 3600]", "output_times_s = [600]"))
    case = tmp_path / "logged.toml"
    case.write_text(text)
    result = cf.simulate(load_case(case))
    expected = (1e-8 * 300 + 0.5e-8 * 0.001 + 1e-8 * 0.001 + 2e-8 * (600 - 400.001)) / area  # C/m^2 by hand
    summary = result.summary()
    assert summary["delivered_charge_C_m2"] == approx(expected, rel=1e-12)
    assert 0.5 * expected < summary["landed_charge_C_m2"] <= expected * (1 + 1e-12)
    assert summary["exposure_time_s"] == 600.0 and summary["beam_history_samples"] == len(rows)
    assert "spatial_error_estimate" in result.stats  # the replay on the coarse mesh ran the history too
    out = tmp_path / "out"
    result.save(out)
    with open(out / "timeseries.csv", newline="") as fh:
        table = list(csv.reader(fh))
    header, data = table[0], np.array(table[1:], dtype=float)
    assert header[-3:] == ["beam_current_density_A_m2", "delivered_charge_C_m2", "landed_charge_C_m2"]
    off = (data[:, 0] > 300.001) & (data[:, 0] < 400.0)
    assert off.any() and np.all(data[off, -3] == 0.0)
    assert np.ptp(data[off, -1]) <= 1e-12 * expected  # nothing lands while the beam is off
    meta = json.loads((out / "metadata.json").read_text())
    assert meta["columns"]["timeseries.csv"]["delivered_charge_C_m2"]["unit"] == "C/m^2"
    assert meta["parameters"]["front.current_density_history_A_m2"]["unit"] == "A/m^2"


@pytest.mark.dolfinx
def test_run_resumed_from_a_checkpoint_continues_the_history(tmp_path):
    from cait_fem.run.checkpoint import read_checkpoint
    from cait_fem.run.simulation import Simulation

    exp = dataclasses.replace(BASE, front=_history([0.0, 600.0, 900.0, 900.5, 1200.0, 1200.5, 2000.0],
                                                   [J, 2 * J, 2 * J, 0.0, 0.0, J, J]))
    whole = Simulation(exp).run(spatial_estimate=False)
    first = dataclasses.replace(exp, run=dataclasses.replace(exp.run, t_end_s=900.0, output_times_s=()))
    Simulation(first).run(checkpoint_dir=tmp_path / "ckpt", spatial_estimate=False)
    resumed = Simulation(exp).run(resume=read_checkpoint(tmp_path / "ckpt"), spatial_estimate=False)
    assert resumed.time_s.shape == whole.time_s.shape
    for name in ("time_s", "foreign_inside_m2", "influx_integral_m2", "delivered_charge_C_m2", "landed_charge_C_m2"):
        assert getattr(resumed, name) == approx(getattr(whole, name), rel=1e-12, abs=1e-12 * J * T_END), name
    assert resumed.theta[-1] == approx(whole.theta[-1], rel=1e-10, abs=1e-14)


def test_default_mesh_rule_follows_the_peak_of_the_history():
    glass = cf.Glass(n_bg_m3=1.41e28, eps_r=8.0, temperature_K=300.0, thickness_m=1e-3)
    run = cf.RunSettings(t_end_s=3600.0)

    def rule(front):
        return cf.Experiment(glass=glass, species=SLAB_EXP.species, front=front, run=run).depth_resolution

    peak = rule(cf.Beam(2 * J, 10.0, 0.5))
    logged = rule(_history([0.0, 1800.0, 1800.5, 4000.0], [2 * J, 2 * J, 0.5 * J, 0.5 * J]))
    assert logged.front_spacing_m == peak.front_spacing_m and logged.fine_depth_m == peak.fine_depth_m
    assert logged.front_spacing_m < rule(cf.Beam(0.5 * J, 10.0, 0.5)).front_spacing_m


def test_cli_check_describes_the_logged_beam(tmp_path):
    from support.paths import run_cli

    _write(tmp_path, "time_s,current_A\n0,1e-8\n3000,1e-8\n3000.5,0\n4000,0\n")
    case = tmp_path / "logged.toml"
    case.write_text(CONTRACT_CASE_TOML.replace("current_density_A_m2 = 1e-2",
                                               'current_history_csv = "beam.csv"\nspot_area_m2 = 1e-6'))
    proc = run_cli(["check", str(case)])
    assert proc.returncode == 0, proc.stderr
    assert "front: beam (measured current history, 4 samples)" in proc.stdout
    (tmp_path / "beam.csv").write_text("time_s,current_A\n0,1e-8\n3000,1e-8\n")  # ends before t_end = 3600 s
    proc = run_cli(["check", str(case)])
    assert proc.returncode != 0
    assert "front.current_times_s" in proc.stderr + proc.stdout and "run.t_end_s = 3600" in proc.stderr + proc.stdout
