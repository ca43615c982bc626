"""cait_fem.analysis.measured: measured depth profiles from CSV, both layouts, and every rejection."""

import math

import numpy as np
import pytest
from scipy.special import erfc
from support.compare import approx

from cait_fem.analysis import measured
from cait_fem.errors import ConfigError

NATIVE, FOREIGN = "Na", ["K", "Ag"]

# Header on line 3; data on lines 4, 6, 7, 8 (line 5 is a comment).
LINES = ["# measured 2024-05-01", "", "depth_nm, theta_Na, sigma_Na, theta_K",
         "0.5, 0.10, 0.02, 0.90", "   # a comment between data rows", "1.0, 0.20, 0.02, 0.80",
         "2.0, 0.90, 0.03, 0.10", "3.0, 1.00, 0.03, 0.00"]


def write(tmp_path, lines, name="profile.csv"):
    path = tmp_path / name
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def edited(line_no, text):
    """LINES with 1-based line ``line_no`` replaced by ``text``."""
    lines = list(LINES)
    lines[line_no - 1] = text
    return lines


def read(path, **kw):
    return measured.read_profile_csv(path, NATIVE, FOREIGN, **kw)


# -- reading good files ------------------------------------------------------------------

def test_fractions_with_comments_blank_lines_and_whitespace(tmp_path):
    p = read(write(tmp_path, LINES + ["", "  ", "# trailing comment"]))
    assert p.layout == "fractions" and p.normalisation == {}
    assert p.source == str(tmp_path / "profile.csv")
    np.testing.assert_allclose(p.depth_m, [0.5e-9, 1e-9, 2e-9, 3e-9], rtol=1e-15)
    assert set(p.theta) == {"Na", "K"} and set(p.sigma) == {"Na"}
    np.testing.assert_array_equal(p.theta["K"], [0.9, 0.8, 0.1, 0.0])
    np.testing.assert_array_equal(p.sigma["Na"], [0.02, 0.02, 0.03, 0.03])
    with pytest.raises(ValueError):
        p.theta["Na"][0] = 0.5  # read-only


def test_crlf_and_byte_order_mark(tmp_path):
    path = tmp_path / "excel.csv"
    path.write_bytes(b"\xef\xbb\xbf" + "\r\n".join(LINES).encode())
    np.testing.assert_array_equal(read(path).theta["Na"], [0.1, 0.2, 0.9, 1.0])
    path.write_bytes("\r\n".join(edited(7, "2.0, 0.90, 0.03, x")).encode())
    with pytest.raises(ConfigError, match="line 7, column 'theta_K'"):
        read(path)


def test_a_foreign_ion_alone_is_enough(tmp_path):
    p = read(write(tmp_path, ["depth_nm,theta_Ag", "0,1", "1,0.5", "2,0"]))
    assert list(p.theta) == ["Ag"] and p.sigma == {}


def test_fraction_range_ends_are_allowed(tmp_path):
    lo, hi = measured.THETA_RANGE
    p = read(write(tmp_path, ["depth_nm,theta_K", f"0,{hi}", f"1,{lo}", "2,0"]))
    np.testing.assert_array_equal(p.theta["K"], [hi, lo, 0.0])


@pytest.mark.parametrize("with_sigma", [True, False])
def test_round_trip(tmp_path, with_sigma):
    rng = np.random.default_rng(3)
    depth_m = np.cumsum(rng.uniform(0.1e-9, 5e-9, 50)) - 0.05e-9
    theta = {"Na": rng.uniform(0, 1, 50), "K": rng.uniform(0, 1, 50)}
    sigma = {"K": rng.uniform(0.01, 0.1, 50)} if with_sigma else None
    path = measured.write_profile_csv(tmp_path / "out" / "p.csv", depth_m, theta, sigma,
                                      comments=["case demo", "two\nlines"])
    text = path.read_text()
    assert text.startswith("# case demo\n# two\n# lines\ndepth_nm,")
    p = read(path)
    np.testing.assert_allclose(p.depth_m, depth_m, rtol=1e-15)
    for name, values in theta.items():
        np.testing.assert_array_equal(p.theta[name], values)
    assert set(p.sigma) == ({"K"} if with_sigma else set())
    if with_sigma:
        np.testing.assert_array_equal(p.sigma["K"], sigma["K"])


def test_writer_rejects_sigma_without_theta(tmp_path):
    with pytest.raises(ValueError, match="Ag"):
        measured.write_profile_csv(tmp_path / "p.csv", [0.0, 1e-9], {"K": [1, 0]}, {"Ag": [1, 1]})


def counts_file(tmp_path, n=60, native_scale=5000.0, foreign_scale=1234.5, extra_lines=()):
    """Exact 1:1 replacement: plateau 0.2 behind an erfc front at 60 nm, bulk theta = 1
    to 1e-16 in the deepest rows."""
    depth_nm = np.linspace(0.0, 300.0, n)
    native = 0.2 + 0.8 * (1 - 0.5 * erfc((depth_nm - 60.0) / 10.0))
    lines = ["# raw counts", "depth_nm,counts_Na,counts_K", *extra_lines]
    lines += [f"{d!r},{native_scale * t!r},{foreign_scale * (1 - t)!r}"
              for d, t in zip(depth_nm.tolist(), native.tolist())]
    return write(tmp_path, lines, "counts.csv"), depth_nm, native


@pytest.mark.parametrize("bulk_from_nm", [None, 250.0])
def test_counts_layout_recovers_fractions(tmp_path, bulk_from_nm):
    path, depth_nm, native = counts_file(tmp_path)
    p = read(path, bulk_from_nm=bulk_from_nm)
    assert p.layout == "counts" and p.sigma == {}
    np.testing.assert_allclose(p.depth_m, depth_nm * 1e-9, rtol=1e-15)
    np.testing.assert_allclose(p.theta["Na"], native, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p.theta["K"], 1 - native, rtol=0, atol=1e-12)
    info = p.normalisation
    assert info["native_bulk_mean_counts"] == approx(5000.0, rel=1e-12)
    assert info["native_factor"] == approx(1 / 5000.0, rel=1e-12)
    assert info["foreign_factor"]["K"] == approx(1 / 1234.5, rel=1e-12)
    assert info["bulk_rows"] == (12 if bulk_from_nm is None else int(np.sum(depth_nm >= 250.0)))
    assert info["bulk_depth_nm"][1] == 300.0
    assert info["replaced_zone_rows"] == int(np.sum(native < 0.5))


def double_cait_counts(tmp_path, lines_extra=(), cs_scale=800.0, rb_scale=2500.0):
    """Exact 1:1 replacement by two foreign ions: K+ (standing in for Cs+) at the surface,
    Ag+ (for Rb+) in a band behind it, each with its own counts-per-fraction factor."""
    depth_nm = np.linspace(0.0, 300.0, 80)
    native = 0.1 + 0.9 * (1 - 0.5 * erfc((depth_nm - 100.0) / 10.0))
    k = (1 - native) * 0.5 * erfc((depth_nm - 40.0) / 8.0)
    ag = 1 - native - k
    lines = ["depth_nm,counts_Na,counts_K,counts_Ag", *lines_extra]
    lines += [f"{d!r},{4000.0 * t!r},{cs_scale * a!r},{rb_scale * b!r}"
              for d, t, a, b in zip(depth_nm.tolist(), native.tolist(), k.tolist(), ag.tolist())]
    return write(tmp_path, lines, "double.csv"), native, k, ag


def test_counts_of_two_foreign_ions_are_normalised_together(tmp_path):
    path, native, k, ag = double_cait_counts(tmp_path)
    p = read(path)
    np.testing.assert_allclose(p.theta["Na"], native, rtol=0, atol=1e-12)
    np.testing.assert_allclose(p.theta["K"], k, rtol=0, atol=1e-9)
    np.testing.assert_allclose(p.theta["Ag"], ag, rtol=0, atol=1e-9)
    assert p.normalisation["foreign_factor"]["K"] == approx(1 / 800.0, rel=1e-9)
    assert p.normalisation["foreign_factor"]["Ag"] == approx(1 / 2500.0, rel=1e-9)


def test_counts_of_a_foreign_ion_that_does_not_replace_are_refused(tmp_path):
    # Ag counts rising where the native ion is missing least: a negative factor
    lines = ["depth_nm,counts_Na,counts_K,counts_Ag", "0,100,1000,10", "1,200,800,5", "2,300,600,1",
             "3,1000,0,0", "4,1000,0,0", "5,1000,0,0"]
    assert_rejected(write(tmp_path, lines), 2, "'counts_Ag'", "not > 0")


def test_counts_default_bulk_is_at_least_three_rows(tmp_path):
    lines = ["depth_nm,counts_Na", "0,10", "1,50", "2,90", "3,110", "4,100"]
    p = read(write(tmp_path, lines))
    assert p.normalisation["bulk_rows"] == 3
    np.testing.assert_allclose(p.theta["Na"], np.array([10, 50, 90, 110, 100]) / 100.0)


def test_counts_bulk_mean_is_one_without_fixing_noise(tmp_path):
    lines = ["depth_nm,counts_Na", "0,0", "1,130", "2,70", "3,140", "4,90"]
    p = read(write(tmp_path, lines))
    np.testing.assert_allclose(p.theta["Na"], [0.0, 1.3, 0.7, 1.4, 0.9])  # 1.4 is kept


# -- rejections: file, line and column in every message ---------------------------------

def assert_rejected(path, line, column, *more, **kw):
    with pytest.raises(ConfigError) as info:
        read(path, **kw)
    msg = str(info.value)
    assert str(path) in msg
    if line is not None:
        assert f"line {line}" in msg, msg
    for text in ([column] if column else []) + list(more):
        assert text in msg, msg


def test_unreadable_file(tmp_path):
    assert_rejected(tmp_path / "missing.csv", None, None, "cannot read")
    (tmp_path / "latin1.csv").write_bytes(b"depth_nm,theta_Na\n0,0.5\xe9\n")
    assert_rejected(tmp_path / "latin1.csv", None, None, "UTF-8")


@pytest.mark.parametrize("lines", [[], ["# only", "", "  # comments"]])
def test_empty_file_has_no_header(tmp_path, lines):
    assert_rejected(write(tmp_path, lines), None, "depth_nm", "no header")


@pytest.mark.parametrize("n_rows", [0, 2])
def test_fewer_than_three_data_rows(tmp_path, n_rows):
    lines = LINES[:3] + ["0.5, 0.1, 0.02, 0.9", "1.0, 0.2, 0.02, 0.8"][:n_rows]
    assert_rejected(write(tmp_path, lines), 3 + n_rows, "theta_K", f"{n_rows} data rows",
                    "at least 3")


@pytest.mark.parametrize("header, column, more", [
    ("theta_Na, sigma_Na, theta_K, depth", "depth", "allowed: depth_nm, theta_Na"),
    ("depth_nm, theta_Li, sigma_Na, theta_K", "theta_Li", "allowed: depth_nm, theta_Na"),
    ("depth_nm, theta_Na, sigma_Na, theta_Na", "theta_Na", "duplicated"),
    ("theta_Na, sigma_Na, theta_K, sigma_K", "depth_nm", "required column missing"),
    ("depth_nm, counts_Na, theta_Na, theta_K", "counts_Na", "cannot be mixed"),
    ("depth_nm, theta_Na, sigma_K, theta_Ag", "sigma_K", "theta_K"),
])
def test_bad_header(tmp_path, header, column, more):
    assert_rejected(write(tmp_path, edited(3, header)), 3, repr(column), more)


def test_no_profile_column(tmp_path):
    lines = ["depth_nm", "0", "1", "2"]
    assert_rejected(write(tmp_path, lines), 1, "theta_Na", "counts_Ag")


def test_counts_layout_header_errors(tmp_path):
    assert_rejected(write(tmp_path, ["depth_nm,counts_K", "0,1", "1,2", "2,3"]), 1,
                    "'counts_Na'", "required in the counts layout")
    # two foreign ions whose counts are proportional over the replaced zone (lines 2-3):
    # no unique pair of factors
    assert_rejected(write(tmp_path, ["depth_nm,counts_Na,counts_K,counts_Ag", "0,1,4,2",
                                     "1,2,2,1", "2,8,0,0", "3,8,0,0", "4,8,0,0"]), 2, "'counts_K'",
                    "proportional")
    assert_rejected(write(tmp_path, ["depth_nm,counts_Na,sigma_Na", "0,1,1", "1,2,1", "2,3,1"]),
                    1, "'sigma_Na'", "theta_Na")


@pytest.mark.parametrize("text, column, more", [
    ("2.0, 0.90, 0.03", "theta_K", "no cell for column"),
    ("2.0, 0.90, 0.03, 0.1, 7", "theta_K", "beyond the last column"),
])
def test_wrong_number_of_cells(tmp_path, text, column, more):
    assert_rejected(write(tmp_path, edited(7, text)), 7, column, more, "header names 4 columns")


@pytest.mark.parametrize("text, column, more", [
    ("2.0, 0.9O, 0.03, 0.1", "'theta_Na'", "'0.9O' is not a number"),
    ("2.0, 0.90, , 0.1", "'sigma_Na'", "'' is not a number"),
    ("2.0, nan, 0.03, 0.1", "'theta_Na'", "'nan'"),
    ("inf, 0.90, 0.03, 0.1", "'depth_nm'", "finite"),
    ("2.0, 0.90, 0.03, -inf", "'theta_K'", "finite"),
    ("2.0, 1.26, 0.03, 0.1", "'theta_Na'", "1.26"),
    ("2.0, 0.90, 0.03, -0.11", "'theta_K'", "allowed range [-0.1, 1.25]"),
    ("2.0, 0.90, 0.0, 0.1", "'sigma_Na'", "must be > 0"),
    ("2.0, 0.90, -0.03, 0.1", "'sigma_Na'", "-0.03"),
    ("0.7, 0.90, 0.03, 0.1", "'depth_nm'", "not greater than 1.0 on line 6"),
    ("1.0, 0.90, 0.03, 0.1", "'depth_nm'", "strictly increasing"),
])
def test_bad_cell(tmp_path, text, column, more):
    assert_rejected(write(tmp_path, edited(7, text)), 7, column, more)


def test_negative_depth(tmp_path):
    assert_rejected(write(tmp_path, edited(4, "-0.5, 0.10, 0.02, 0.90")), 4, "'depth_nm'",
                    "-0.5", ">= 0")


def test_negative_counts(tmp_path):
    path, _, _ = counts_file(tmp_path)
    lines = path.read_text().splitlines()
    lines[5] = "15.0,-1.0,20.0"  # line 6, depth between rows 3 and 4 (10.17 and 15.25 nm)
    assert_rejected(write(tmp_path, lines), 6, "'counts_Na'", "-1.0", ">= 0")


def test_counts_without_replaced_zone(tmp_path):
    lines = ["depth_nm,counts_Na,counts_K", "0,80,20", "1,70,30", "2,100,0", "3,100,0"]
    assert_rejected(write(tmp_path, lines), 3, "'counts_K'", "no replaced zone", "0.7")


def test_counts_zero_foreign_in_replaced_zone(tmp_path):
    lines = ["depth_nm,counts_Na,counts_K", "0,20,0", "1,30,0", "2,100,0", "3,100,0"]
    assert_rejected(write(tmp_path, lines), 2, "'counts_K'", "zero counts")


def test_counts_bulk_errors(tmp_path):
    path, _, _ = counts_file(tmp_path)
    assert_rejected(path, 62, "'depth_nm'", "bulk_from_nm = 400.0", bulk_from_nm=400.0)
    lines = ["depth_nm,counts_Na", "0,5", "1,0", "2,0", "3,0"]
    assert_rejected(write(tmp_path, lines), 3, "'counts_Na'", "no counts")
    with pytest.raises(ConfigError, match="bulk_from_nm"):
        read(path, bulk_from_nm=math.nan)
