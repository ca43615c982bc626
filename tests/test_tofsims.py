"""cait_fem.analysis.tofsims: raw ToF-SIMS files (counts against sputter time for several
masses) -> fractions; the depth scale both ways, both normalisations, RSFs, every
rejection; [experiment.tofsims] in fit files. With DOLFINx: a synthetic raw file made
from a model run (sputter rate, RSFs, a drifting primary current seen by a matrix
signal, Poisson noise) read back, and a fit from it that recovers D_foreign."""

import json
import math

import numpy as np
import pytest
from scipy.special import erfc
from support.compare import approx
from support.fit_files import fails, load
from support.paths import ROOT

from cait_fem.analysis import tofsims
from cait_fem.errors import ConfigError

NATIVE, FOREIGN = "Na", ["K", "Ag"]
S = {"Na": 20000.0, "K": 50000.0, "Ag": 8000.0, "BO2": 80000.0}  # counts per cycle at theta = 1, current 1


def settings(**kw):
    d = {"file": "raw.csv", "masses": {"23Na": "Na", "39K": "K"}, "crater_depth_nm": 150.0}
    d.update(kw)
    return {k: v for k, v in d.items() if v is not None}


def parse(d, native=NATIVE, foreign=FOREIGN):
    return tofsims.settings_from_dict(d, "tofsims", native, foreign)


def write(tmp_path, lines, name="raw.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def read(path, **kw):
    return tofsims.read_tofsims_csv(path, parse(settings(**kw)), NATIVE, FOREIGN)


def profile(depth_nm):
    """Exact 1:1 replacement: plateau 0.2 behind an erfc front at 60 nm."""
    return 0.2 + 0.8 * (1 - 0.5 * erfc((depth_nm - 60.0) / 10.0))


def raw_lines(time_s, depth_nm, current=None, extra=()):
    """Noise-free counts of Na and K (and the BO2 matrix) for the erfc profile at the given
    depths; ``current``: relative primary current per row (default 1)."""
    na = profile(depth_nm)
    current = np.ones_like(time_s) if current is None else current
    rows = [f"{t!r},{c * S['Na'] * a!r},{c * S['K'] * (1 - a)!r},{c * S['BO2']!r}"
            for t, c, a in zip(time_s.tolist(), current.tolist(), na.tolist())]
    return ["# synthetic raw profile", "time_s, 23Na, 39K, BO2", *extra, *rows], na


def crater_file(tmp_path, current=None, n=61, dt=5.0):
    """Rows every ``dt`` s from dt to n*dt; with crater_depth_nm = 150 at the last row
    the rate is 150 / (n dt) nm/s."""
    time_s = dt * np.arange(1, n + 1)
    depth_nm = 150.0 * time_s / time_s[-1]
    lines, na = raw_lines(time_s, depth_nm, current)
    return write(tmp_path, lines), depth_nm, na


# -- reading -------------------------------------------------------------------------------

def test_crater_depth_and_bulk_normalisation(tmp_path):
    path, depth_nm, na = crater_file(tmp_path)
    p = read(path, ignore=["BO2"])
    assert p.layout == "tofsims" and p.sigma == {} and list(p.theta) == ["Na", "K"]
    np.testing.assert_allclose(p.depth_m * 1e9, depth_nm, rtol=1e-14)
    np.testing.assert_allclose(p.theta["Na"], na, atol=1e-12)
    np.testing.assert_allclose(p.theta["K"], 1 - na, atol=1e-9)
    info = p.normalisation
    assert info["sputter_rate_nm_s"] == approx(150.0 / 305.0, rel=1e-14)
    assert info["sputter_time_s"] == 305.0 and info["sputter_time_from"] == "last row"
    assert info["depth_scale"] == "crater" and info["normalisation"] == "bulk" and info["signal"] == "counts"
    assert info["native_bulk_mean_signal"] == approx(S["Na"], rel=1e-9)
    assert info["foreign_factor"]["K"] == approx(1 / S["K"], rel=1e-9)
    assert info["foreign_method"] == {"K": "replacement"} and info["replaced_zone_rows"] > 0
    assert info["bulk_rows"] == 13 and info["ignored_columns"] == ["BO2"]
    json.dumps(info)  # goes into fit.json as it is


def test_explicit_sputter_time_stretches_the_rate(tmp_path):
    path, depth_nm, _ = crater_file(tmp_path)
    p = read(path, ignore=["BO2"], sputter_time_s=610.0)  # sputtering went on for twice the profile
    np.testing.assert_allclose(p.depth_m * 1e9, depth_nm / 2, rtol=1e-14)
    assert p.normalisation["sputter_time_from"] == "sputter_time_s"


def test_depth_table_is_interpolated(tmp_path):
    # rate 0.1 nm/s for 100 s, then 0.3 nm/s
    lines = ["time_s,23Na,39K", "0,10,90", "50,20,80", "100,60,40", "150,100,0", "200,100,0", "250,100,0"]
    table = {"time_s": [0.0, 100.0, 300.0], "depth_nm": [0.0, 10.0, 70.0]}
    p = read(write(tmp_path, lines), crater_depth_nm=None, depth_table=table)
    np.testing.assert_allclose(p.depth_m * 1e9, [0.0, 5.0, 10.0, 25.0, 40.0, 55.0], rtol=1e-14)
    assert p.normalisation["depth_scale"] == "table"
    assert p.normalisation["depth_table"] == table


def test_matrix_normalisation_removes_primary_current_drift(tmp_path):
    time_s = 5.0 * np.arange(1, 62)
    current = 1.0 - 0.35 * time_s / time_s[-1] + 0.05 * np.sin(time_s / 20.0)
    path, _, na = crater_file(tmp_path, current=current)
    p = read(path, normalisation="matrix", matrix="BO2")
    np.testing.assert_allclose(p.theta["Na"], na, atol=1e-12)
    np.testing.assert_allclose(p.theta["K"], 1 - na, atol=1e-9)
    info = p.normalisation
    assert info["signal"] == "counts / BO2 counts" and info["matrix_column"] == "BO2"
    assert info["native_bulk_mean_signal"] == approx(S["Na"] / S["BO2"], rel=1e-9)
    assert info["matrix_counts_range"][0] == approx(S["BO2"] * current.min(), rel=1e-12)
    # the same file normalised to the bulk alone carries the drift: 35 % at the surface
    drifting = read(path, ignore=["BO2"])
    assert np.abs(drifting.theta["Na"] - na).max() > 0.1


def test_relative_sensitivity_factors(tmp_path):
    path, _, na = crater_file(tmp_path)
    rsf = S["Na"] / S["K"]  # the native ion's sensitivity over the foreign ion's
    p = read(path, ignore=["BO2"], rsf={"K": rsf})
    np.testing.assert_allclose(p.theta["K"], 1 - na, atol=1e-12)
    assert p.normalisation["foreign_method"] == {"K": "rsf"}
    assert p.normalisation["foreign_factor"]["K"] == approx(rsf / S["Na"], rel=1e-12)
    assert "replaced_zone_rows" not in p.normalisation
    # a wrong RSF is taken as given, not corrected by the replacement
    q = read(path, ignore=["BO2"], rsf={"K": 2 * rsf})
    np.testing.assert_allclose(q.theta["K"], 2 * (1 - na), atol=1e-12)


def test_rsf_for_one_foreign_ion_and_replacement_for_the_other(tmp_path):
    """Double CAIT: K+ at the surface with a known RSF, Ag+ behind it from the 1:1
    replacement of what the native ion and K+ leave."""
    depth_nm = np.linspace(0.0, 300.0, 80)
    na = 0.1 + 0.9 * (1 - 0.5 * erfc((depth_nm - 100.0) / 10.0))
    k = (1 - na) * 0.5 * erfc((depth_nm - 40.0) / 8.0)
    ag = 1 - na - k
    time_s = depth_nm / 0.5
    lines = ["time_s,23Na,39K,107Ag"] + [f"{t!r},{S['Na'] * a!r},{S['K'] * b!r},{S['Ag'] * c!r}"
                                         for t, a, b, c in zip(time_s.tolist(), na.tolist(), k.tolist(), ag.tolist())]
    p = read(write(tmp_path, lines), masses={"23Na": "Na", "39K": "K", "107Ag": "Ag"}, crater_depth_nm=300.0,
             rsf={"K": S["Na"] / S["K"]})
    np.testing.assert_allclose(p.theta["K"], k, atol=1e-12)
    np.testing.assert_allclose(p.theta["Ag"], ag, atol=1e-9)
    assert p.normalisation["foreign_method"] == {"K": "rsf", "Ag": "replacement"}
    assert p.normalisation["foreign_factor"]["Ag"] == approx(1 / S["Ag"], rel=1e-9)


def test_isotopes_of_one_species_are_added_and_columns_may_stand_anywhere(tmp_path):
    # an ignored column is not read: text, blanks and negative values pass
    lines = ["7Li, time_s, 6Li, 28Si", "9.25,1,0.75,5", "37,2,3,n/a", "92.5,3,7.5,", "92.5,4,7.5,-3",
             "92.5,5,7.5,5"]
    p = tofsims.read_tofsims_csv(write(tmp_path, lines), parse(
        {"file": "raw.csv", "masses": {"6Li": "Li", "7Li": "Li"}, "crater_depth_nm": 10.0, "ignore": ["28Si"]},
        "Li", ["K"]), "Li", ["K"])
    np.testing.assert_allclose(p.theta["Li"], [0.1, 0.4, 1.0, 1.0, 1.0], rtol=1e-14)
    np.testing.assert_allclose(p.depth_m * 1e9, [2.0, 4.0, 6.0, 8.0, 10.0], rtol=1e-14)


# -- settings refused ----------------------------------------------------------------------

@pytest.mark.parametrize("change, fragments", [
    ({"sputter_rate": 1.0}, ["'sputter_rate' is not a known key", "allowed: file, masses"]),
    ({"file": None}, ["file = None", "raw ToF-SIMS CSV"]),
    ({"masses": {"23Na": "Na", "39K": "Rb"}}, ["masses.'39K' = 'Rb'", "a species of the case: Na, K, Ag"]),
    ({"masses": {"39K": "K"}}, ["masses = {'39K': 'K'}", "native species 'Na'"]),
    ({"masses": {"23Na": "Na", "time_s": "K"}}, ["masses.'time_s'"]),
    ({"masses": {}}, ["masses = {}"]),
    ({"crater_depth_nm": 0.0}, ["crater_depth_nm = 0.0", "> 0"]),
    ({"crater_depth_nm": -5}, ["crater_depth_nm = -5", "> 0"]),
    ({"crater_depth_nm": True}, ["crater_depth_nm = True"]),
    ({"crater_depth_nm": None}, ["exactly one depth scale", "neither is"]),
    ({"depth_table": {"time_s": [0, 1], "depth_nm": [0, 1]}}, ["exactly one depth scale", "both are"]),
    ({"sputter_time_s": 0}, ["sputter_time_s = 0", "> 0"]),
    ({"crater_depth_nm": None, "sputter_time_s": 10.0, "depth_table": {"time_s": [0, 1], "depth_nm": [0, 1]}},
     ["sputter_time_s = 10.0", "only with crater_depth_nm"]),
    ({"crater_depth_nm": None, "depth_table": {"time_s": [0, 10, 10], "depth_nm": [0, 1, 2]}},
     ["depth_table.time_s[2] = 10.0", "strictly increasing"]),
    ({"crater_depth_nm": None, "depth_table": {"time_s": [0, 10, 20], "depth_nm": [0, 5, 4]}},
     ["depth_table.depth_nm[2] = 4.0", "greater than depth_nm[1] = 5.0"]),
    ({"crater_depth_nm": None, "depth_table": {"time_s": [0, 10], "depth_nm": [-1, 5]}},
     ["depth_table.depth_nm[0] = -1.0", ">= 0"]),
    ({"crater_depth_nm": None, "depth_table": {"time_s": [0, 10, 20], "depth_nm": [0, 5]}},
     ["as many time_s as depth_nm values"]),
    ({"crater_depth_nm": None, "depth_table": {"time_s": [0], "depth_nm": [0]}}, ["at least 2 pairs"]),
    ({"crater_depth_nm": None, "depth_table": {"t": [0, 1], "depth_nm": [0, 1]}}, ["time_s = [...]"]),
    ({"crater_depth_nm": None, "depth_table": {"time_s": [0, "1"], "depth_nm": [0, 1]}},
     ["depth_table.time_s", "finite numbers"]),
    ({"normalisation": "total"}, ["normalisation = 'total'", "'bulk' or 'matrix'"]),
    ({"normalisation": "matrix"}, ["matrix = None", "required with normalisation = 'matrix'"]),
    ({"matrix": "BO2"}, ["matrix = 'BO2'", "only with normalisation = 'matrix'"]),
    ({"normalisation": "matrix", "matrix": "23Na"}, ["matrix = '23Na'", "mapped to 'Na'"]),
    ({"rsf": {"Na": 1.0}}, ["rsf.Na = 1.0", "no RSF for the native species"]),
    ({"rsf": {"Rb": 1.0}}, ["rsf.Rb = 1.0", "a foreign species of the case: K, Ag"]),
    ({"rsf": {"Ag": 1.0}}, ["rsf.Ag = 1.0", "has none"]),
    ({"rsf": {"K": 0.0}}, ["rsf.K = 0.0", "> 0"]),
    ({"rsf": {"K": math.inf}}, ["rsf.K = inf", "finite"]),
    ({"rsf": 0.4}, ["rsf = 0.4", "a table"]),
    ({"bulk_from_nm": -1.0}, ["bulk_from_nm = -1.0", ">= 0"]),
    ({"ignore": ["39K"]}, ["ignore = ['39K']", "'39K' is used"]),
    ({"ignore": ["BO2", "BO2"]}, ["listed twice"]),
    ({"ignore": "BO2"}, ["ignore = 'BO2'", "a list of column names"]),
    ({"poisson_sigma": 1}, ["poisson_sigma = 1", "true or false"]),
])
def test_bad_settings(change, fragments):
    with pytest.raises(ConfigError) as info:
        parse(settings(**change))
    message = str(info.value)
    assert message.startswith("tofsims: ")
    for fragment in fragments:
        assert fragment in message, message


def test_settings_must_be_a_table():
    with pytest.raises(ConfigError, match="a TOML table"):
        parse("raw.csv")


# -- files refused: file, line, column, value ----------------------------------------------

GOOD = ["# export", "time_s,23Na,39K,BO2", "1,10,90,1000", "2,20,80,1000", "3,100,0,1000", "4,100,0,1000",
        "5,100,0,1000"]


def edited(line_no, text):
    lines = list(GOOD)
    lines[line_no - 1] = text
    return lines


def rejected(path, line, column, *more, **kw):
    with pytest.raises(ConfigError) as info:
        read(path, **kw)
    message = str(info.value)
    assert str(path) in message, message
    if line is not None:
        assert f"line {line}" in message, message
    for text in ([repr(column)] if column else []) + list(more):
        assert text in message, message
    return message


def test_good_file_reads(tmp_path):
    p = read(write(tmp_path, GOOD), ignore=["BO2"], crater_depth_nm=10.0)
    np.testing.assert_allclose(p.theta["Na"], [0.1, 0.2, 1, 1, 1])
    assert p.sigma == {} and p.normalisation["sigma"] == "none"


def test_poisson_sigma(tmp_path):
    # Na: bulk mean 100 counts, so sigma = sqrt(counts) / 100; K: factor 1/100 from the
    # replaced zone (90 and 80 counts for 0.9 and 0.8), a zero count weighs as one count
    p = read(write(tmp_path, GOOD), ignore=["BO2"], poisson_sigma=True)
    np.testing.assert_allclose(p.sigma["Na"], np.sqrt([10, 20, 100, 100, 100]) / 100, rtol=1e-12)
    np.testing.assert_allclose(p.sigma["K"], np.sqrt([90, 80, 1, 1, 1]) / 100, rtol=1e-9)
    assert p.normalisation["sigma"] == "poisson"
    # over a matrix of m counts: var(c / m) = c / m^2 + c^2 / m^3, theta = 10 c / m
    q = read(write(tmp_path, GOOD), normalisation="matrix", matrix="BO2", poisson_sigma=True)
    np.testing.assert_allclose(q.sigma["Na"][0], 10 * math.sqrt(10 / 1000**2 + 10**2 / 1000**3), rtol=1e-12)


@pytest.mark.parametrize("line_no, text, column, fragments", [
    (2, "time_s,23Na,39K,BO2,30Si", "30Si", ["column not named in the settings", "ignore"]),
    (2, "time_s,23Na,39K,23Na", "23Na", ["duplicated"]),
    (2, "time,23Na,39K,BO2", "time", ["column not named"]),
    (2, "time_s,23Na,BO2", "39K", ["required column missing", "masses maps it to 'K'"]),
    (2, "time_s,23Na,39K", "BO2", ["required column missing", "listed in ignore"]),
    (4, "2,-20,80,1000", "23Na", ["counts -20.0 must be >= 0"]),
    (4, "2,20,x,1000", "39K", ["'x' is not a number"]),
    (4, "2,20,nan,1000", "39K", ["finite"]),
    (4, "2,20,80", None, ["no cell for column 'BO2'"]),
    (3, "-1,10,90,1000", "time_s", ["sputter time -1.0 is negative"]),
    (4, "1,20,80,1000", "time_s", ["time 1.0 is not greater than 1.0 on line 3", "strictly increasing"]),
])
def test_bad_file(tmp_path, line_no, text, column, fragments):
    rejected(write(tmp_path, edited(line_no, text)), line_no, column, *fragments, ignore=["BO2"])


def test_matrix_zero_somewhere(tmp_path):
    rejected(write(tmp_path, edited(5, "3,100,0,0")), 5, "BO2", "matrix counts 0.0", "> 0 in every row",
             normalisation="matrix", matrix="BO2")


def test_sputter_time_before_the_last_row(tmp_path):
    rejected(write(tmp_path, GOOD), 7, "time_s", "time 5.0 s is after sputtering stopped",
             "sputter_time_s = 4.5", ignore=["BO2"], sputter_time_s=4.5)


@pytest.mark.parametrize("table, line, value", [
    ({"time_s": [1.5, 10.0], "depth_nm": [0.0, 5.0]}, 3, "time 1.0 s"),
    ({"time_s": [0.0, 4.9], "depth_nm": [0.0, 5.0]}, 7, "time 5.0 s"),
])
def test_depth_table_must_span_every_row(tmp_path, table, line, value):
    rejected(write(tmp_path, GOOD), line, "time_s", value, "no extrapolation", ignore=["BO2"],
             crater_depth_nm=None, depth_table=table)


def test_too_few_rows_and_empty_file(tmp_path):
    rejected(write(tmp_path, GOOD[:4]), 4, None, "2 data rows", "at least 3", ignore=["BO2"])
    rejected(write(tmp_path, ["# nothing"]), None, None, "no header", "time_s,23Na,39K", ignore=["BO2"])
    rejected(tmp_path / "missing.csv", None, None, "cannot read", ignore=["BO2"])


def test_too_many_rows(tmp_path):
    with pytest.raises(ConfigError, match="5 data rows, more than limit = 4"):
        tofsims.read_tofsims_csv(write(tmp_path, GOOD), parse(settings(ignore=["BO2"])), NATIVE, FOREIGN,
                                 max_rows=4, max_rows_key="limit")


def test_bulk_and_replacement_errors_name_the_mass_columns(tmp_path):
    path = write(tmp_path, GOOD)
    rejected(path, 7, "time_s", "no bulk rows", "deepest point 150.0 nm", "bulk_from_nm = 200.0", ignore=["BO2"],
             bulk_from_nm=200.0)
    rejected(write(tmp_path, ["time_s,23Na,39K", "1,5,1", "2,0,1", "3,0,1", "4,0,1"]), 3, "23Na",
             "have no counts")
    rejected(write(tmp_path, ["time_s,23Na,39K", "1,20,0", "2,30,0", "3,100,0", "4,100,0"]), 2, "39K",
             "zero counts in the replaced zone")
    rejected(write(tmp_path, ["time_s,23Na,39K", "1,80,20", "2,70,30", "3,100,0", "4,100,0"]), 3, "39K",
             "no replaced zone")
    # an RSF of K+ far too large leaves a negative remainder for Ag+
    message = rejected(write(tmp_path, ["time_s,23Na,39K,107Ag", "1,10,90,5", "2,20,80,5", "3,40,60,5",
                                        "4,100,0,0", "5,100,0,0", "6,100,0,0"]), 2, "107Ag", "not > 0",
                       masses={"23Na": "Na", "39K": "K", "107Ag": "Ag"}, rsf={"K": 5.0})
    assert "give its relative sensitivity factor in rsf" in message


# -- fit files -------------------------------------------------------------------------------

K_CASE = (ROOT / "demos" / "k_cait.toml").read_text()
RAW_K = "time_s,7Li,39K,BO2\n" + "\n".join(f"{t},{1000 * a:.1f},{2000 * (1 - a):.1f},5000"
                                          for t, a in zip(range(1, 61), profile(np.arange(1, 61) * 2.0)))
BLOCK = ('[[experiment]]\nname = "K"\ncase = "k_cait.toml"\ntheta_sigma = 0.01\n'
         '[experiment.tofsims]\nfile = "raw.csv"\nmasses = { 7Li = "Li", 39K = "K" }\ncrater_depth_nm = 120.0\n'
         'normalisation = "matrix"\nmatrix = "BO2"\n')
PARAMS = '[fit.parameters]\n"species.K.diffusion.D_m2_s" = { min = 1e-23, max = 1e-18, log = true }\n'


@pytest.fixture
def d(tmp_path):
    (tmp_path / "k_cait.toml").write_text(K_CASE)
    (tmp_path / "raw.csv").write_text(RAW_K)
    return tmp_path


def test_fit_file_with_a_raw_tofsims_file(d):
    case = load(d, BLOCK + PARAMS)
    data = case.experiments[0].data
    assert data.layout == "tofsims" and data.source == str(d / "raw.csv")
    np.testing.assert_allclose(data.depth_m * 1e9, np.arange(1, 61) * 2.0, rtol=1e-14)
    np.testing.assert_allclose(data.theta["Li"], profile(np.arange(1, 61) * 2.0), atol=1e-3)
    assert data.normalisation["matrix_column"] == "BO2"


@pytest.mark.parametrize("extra, fragments", [
    ('data = "k.csv"\n', ["experiment[0]: tofsims = ", "not both", "data = 'k.csv'"]),
    ("bulk_from_nm = 50.0\n", ["experiment[0]: bulk_from_nm = 50.0", "inside [experiment.tofsims]"]),
])
def test_fit_file_refuses_data_and_tofsims_mixed(d, extra, fragments):
    text = BLOCK.replace('theta_sigma = 0.01\n', f"theta_sigma = 0.01\n{extra}")
    fails(d, text + PARAMS, *fragments)


def test_fit_file_tofsims_errors_name_the_table_and_the_file(d):
    fails(d, BLOCK + "rate_nm_s = 1.0\n" + PARAMS, "experiment[0].tofsims: 'rate_nm_s' is not a known key")
    fails(d, BLOCK.replace('39K = "K"', '39K = "Cs"') + PARAMS, "experiment[0].tofsims: masses.'39K' = 'Cs'",
          "Li, K")
    (d / "raw.csv").write_text(RAW_K.replace("\n5,", "\n5,-"))
    fails(d, BLOCK + PARAMS, str(d / "raw.csv"), "line 6", "'7Li'", "must be >= 0")
    (d / "raw.csv").write_text(RAW_K)
    fails(d, BLOCK.replace("crater_depth_nm = 120.0", "crater_depth_nm = 2e6") + PARAMS,
          "tofsims.file = 'raw.csv'", "glass.thickness_m")
    fails(d, BLOCK.replace('theta_sigma = 0.01\n', 'theta_sigma = 0.01\ndepth_range_nm = [500.0, 600.0]\n')
          + PARAMS, "depth_range_nm", "the data 'raw.csv'")


# -- from a model run ------------------------------------------------------------------------

TRUE_D_K = 5.6e-21
SIMS_NM = 2.0
RATE_NM_S = 0.25
CYCLE_S = 4.0
SENS = {"Li": 2.0e4, "K": 5.0e4, "BO2": 8.0e4}  # counts per cycle at theta = 1 and the nominal current
RSF_K = SENS["Li"] / SENS["K"]


def _current(time_s):
    """Relative primary current: 30 % drift over the profile and a ripple."""
    return 1.0 - 0.3 * time_s / 400.0 + 0.04 * np.sin(time_s / 15.0)


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    """The K+ demo case (D_K = 5.6e-21 m^2/s, 1e4 s), solved with half the front spacing
    and a quarter of the time tolerance of the fit's forward model, seen through a 2 nm
    SIMS resolution and written as raw counts: depth = 0.25 nm/s * time, one cycle per
    4 s to 100 nm, Li+ and K+ counts with their sensitivities times a drifting current,
    a BO2 matrix signal seen by the same current, a 28Si column to ignore, Poisson noise."""
    from cait_fem.analysis.sims_resolution import model_at_data
    from cait_fem.case.case_file import dump_case, experiment_from_dict, experiment_to_dict, load_case
    from cait_fem.run.simulation import Simulation

    directory = tmp_path_factory.mktemp("tofsims")
    d = experiment_to_dict(load_case(ROOT / "demos" / "k_cait.toml"))
    d["species"][1]["diffusion"] = {"model": "constant", "D_m2_s": TRUE_D_K}
    d["run"].update(t_end_s=10000.0, output_times_s=[])
    dump_case(experiment_from_dict(d), directory / "k.toml")
    fine = experiment_to_dict(experiment_from_dict(d))
    fine["mesh"]["max_front_spacing_m"] = fine["mesh"]["max_front_spacing_m"] / 2
    fine["run"]["time_tolerance"] = fine["run"]["time_tolerance"] / 4
    r = Simulation(experiment_from_dict(fine)).run()
    time_s = CYCLE_S * np.arange(1, 101)
    depth_m = RATE_NM_S * time_s * 1e-9
    truth = {s: model_at_data(r.depth_m, r.theta[-1, i], depth_m, SIMS_NM * 1e-9)
             for i, s in enumerate(r.species_names)}
    rng = np.random.default_rng(15)
    current = _current(time_s)
    counts = {"7Li": rng.poisson(SENS["Li"] * current * np.clip(truth["Li"], 0, None)),
              "39K": rng.poisson(SENS["K"] * current * np.clip(truth["K"], 0, None)),
              "BO2": rng.poisson(SENS["BO2"] * current), "28Si": rng.poisson(3000.0 * current)}
    lines = ["# synthetic ToF-SIMS export of the K+ demo case, seed 15", "time_s," + ",".join(counts)]
    lines += [f"{t:g}," + ",".join(str(int(c[i])) for c in counts.values()) for i, t in enumerate(time_s)]
    (directory / "k_raw.csv").write_text("\n".join(lines) + "\n")
    return directory, depth_m, truth


RAW_SETTINGS = {"file": "k_raw.csv", "masses": {"7Li": "Li", "39K": "K"}, "crater_depth_nm": 100.0,
                "normalisation": "matrix", "matrix": "BO2", "rsf": {"K": RSF_K}, "ignore": ["28Si"]}


@pytest.mark.dolfinx
def test_raw_file_from_a_model_run_reads_back_within_the_noise(synthetic):
    directory, depth_m, truth = synthetic

    def read_raw(**change):
        s = tofsims.settings_from_dict({**RAW_SETTINGS, **change}, "tofsims", "Li", ["K"])
        return tofsims.read_tofsims_csv(directory / "k_raw.csv", s, "Li", ["K"])

    p = read_raw()
    np.testing.assert_allclose(p.depth_m, depth_m, rtol=1e-12)
    # Poisson counts c = S I theta over a matrix m = S_m I: var(theta) = (theta / S +
    # theta^2 / S_m) / I (the bulk mean adds ~0.1 % of theta). Every point within 4.5
    # sigma; where the species is present the scatter is as large as Poisson says.
    current = _current(depth_m * 1e9 / RATE_NM_S)
    for s in ("Li", "K"):
        t = np.clip(truth[s], 0, None)
        sigma = np.sqrt((t / SENS[s] + t**2 / SENS["BO2"]) / current) + 1e-4
        z = (p.theta[s] - truth[s]) / sigma
        assert np.abs(z).max() < 4.5, (s, np.abs(z).max())
        present = t > 0.02
        assert present.sum() > 15 and 0.7 < np.std(z[present]) < 1.3, (s, np.std(z[present]))
    # the K+ factors from the 1:1 replacement instead of the RSF: the same within the noise
    # the reader's own Poisson sigma describes that scatter
    w = read_raw(poisson_sigma=True)
    for s in ("Li", "K"):
        present = truth[s] > 0.02
        z = (w.theta[s] - truth[s])[present] / w.sigma[s][present]
        assert 0.7 < np.std(z) < 1.3, (s, np.std(z))
    q = read_raw(rsf={})
    assert q.normalisation["foreign_factor"]["K"] == approx(RSF_K / q.normalisation["native_bulk_mean_signal"],
                                                            rel=0.02)
    assert np.abs(q.theta["K"] - truth["K"]).max() < 0.03
    # without the matrix signal the drifting current shows: 30 % over the profile
    b = read_raw(normalisation="bulk", matrix=None, ignore=["28Si", "BO2"])
    assert np.abs(b.theta["Li"] - truth["Li"]).max() > 0.15


@pytest.mark.dolfinx
def test_fit_from_the_raw_file_recovers_D_foreign(synthetic, tmp_path):
    from cait_fem.fit import load_fit_case, run_fit

    directory, _, _ = synthetic
    rsf = ", ".join(f"{k} = {v!r}" for k, v in RAW_SETTINGS["rsf"].items())
    text = (f'name = "raw"\n[[experiment]]\nname = "K"\ncase = "k.toml"\nsims_resolution_nm = {SIMS_NM}\n'
            '[experiment.tofsims]\nfile = "k_raw.csv"\nmasses = { 7Li = "Li", 39K = "K" }\n'
            'crater_depth_nm = 100.0\nnormalisation = "matrix"\nmatrix = "BO2"\n'
            f'rsf = {{ {rsf} }}\nignore = ["28Si"]\npoisson_sigma = true\n'
            '[fit]\nabsolute_sigma = true\n[fit.parameters]\n'
            '"species.K.diffusion.D_m2_s" = { initial = 2e-20, min = 1e-23, max = 1e-18, log = true }\n')
    path = directory / "fit_raw.toml"
    path.write_text(text)
    result = run_fit(load_fit_case(path), quiet=True)
    D = result.estimate("species.K.diffusion.D_m2_s")
    # measured: 5.582e-21, ci95 [5.560, 5.605]e-21 from the counting statistics alone,
    # reduced chi^2 0.80; without poisson_sigma (one unknown sigma) 5.590e-21, and the
    # same file normalised to the bulk alone (the current drift left in) 4.50e-21, the
    # truth outside its ci95
    assert D.value == approx(TRUE_D_K, rel=0.05)  # from 2e-20: 3.6x off
    assert D.ci95[0] <= TRUE_D_K <= D.ci95[1], D.ci95
    assert 0.5 < result.reduced_chi2 < 1.5  # the Poisson weights are the noise
    result.save(tmp_path / "out")
    report = json.loads((tmp_path / "out" / "fit.json").read_text())["experiments"]["K"]
    assert report["data_layout"] == "tofsims"
    info = report["data_normalisation"]
    assert info["matrix_column"] == "BO2" and info["rsf"] == {"K": RSF_K} and info["sigma"] == "poisson"
    assert info["sputter_rate_nm_s"] == approx(RATE_NM_S, rel=1e-12)
