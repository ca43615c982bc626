"""Fit-report figures: each writes a readable PNG atomically; shape mismatches are refused."""

import matplotlib.image as mpimg
import numpy as np
import pytest
from support.compare import approx

from cait_fem.fileio import leftover_temp_files
from cait_fem.fit.plots import (
    ProfilePanel,
    _profile_xmax_nm,
    plot_diffusivity_fit,
    plot_profile_fits,
    plot_site_energy_distribution,
)


def _front(depth_nm, front_nm, plateau):
    foreign = (1 - plateau) * 0.5 * (1 - np.tanh((depth_nm - front_nm) / 5.0))
    return {"Li": 1 - foreign, "foreign": foreign}


def _panel(foreign, front_nm, plateau, rms=0.02):
    data_depth = np.linspace(0.0, 400.0, 201)
    model_depth = np.linspace(0.0, 400.0, 2001)
    d, m = _front(data_depth, front_nm, plateau), _front(model_depth, front_nm + 3.0, plateau)
    rng = np.random.default_rng(0)
    return ProfilePanel(title=f"{foreign}$^+$ CAIT", data_depth_nm=data_depth,
                        data_theta={"Li": d["Li"] + 0.01 * rng.standard_normal(data_depth.size),
                                    foreign: d["foreign"]},
                        model_depth_nm=model_depth, model_theta={"Li": m["Li"], foreign: m["foreign"]},
                        native="Li", residual_rms=rms)


def _check_png(path, min_width=600, min_height=400):
    assert path.is_file() and path.stat().st_size > 1000
    image = mpimg.imread(path)
    assert image.ndim == 3 and image.shape[1] >= min_width and image.shape[0] >= min_height
    assert np.ptp(image[..., :3]) > 0  # not a blank canvas
    assert leftover_temp_files(path.parent) == []


def test_profile_fits_three_panels(tmp_path):
    panels = [_panel("K", 100.0, 0.15), _panel("Rb", 90.0, 0.07, rms=None), _panel("Cs", 80.0, 0.03)]
    out = plot_profile_fits(panels, tmp_path / "profiles_fit.png")
    assert out == tmp_path / "profiles_fit.png"
    _check_png(out, min_width=1500)


def test_profile_x_range_follows_the_front_and_stays_inside_the_data():
    depth = np.linspace(0.0, 400.0, 401)
    shallow = _front(depth, 100.0, 0.1)["foreign"]
    deepest = float(depth[shallow > 0.05].max())
    assert _profile_xmax_nm(depth, [shallow], depth, [shallow]) == approx(1.5 * deepest)
    deep = _front(depth, 350.0, 0.1)["foreign"]
    assert _profile_xmax_nm(depth, [deep], depth, [shallow]) == approx(400.0)
    assert _profile_xmax_nm(depth, [np.zeros_like(depth)], depth, []) == approx(400.0)


def test_profile_fits_refuses_mismatched_lengths(tmp_path):
    p = _panel("K", 100.0, 0.15)
    bad_data = ProfilePanel(p.title, p.data_depth_nm, {"Li": p.data_theta["Li"][:-1]}, p.model_depth_nm,
                            p.model_theta, "Li")
    with pytest.raises(ValueError, match="data_theta"):
        plot_profile_fits([bad_data], tmp_path / "x.png")
    bad_model = ProfilePanel(p.title, p.data_depth_nm, p.data_theta, p.model_depth_nm,
                             {"K": p.model_theta["K"][::2]}, "Li")
    with pytest.raises(ValueError, match="model_theta"):
        plot_profile_fits([p, bad_model], tmp_path / "x.png")
    with pytest.raises(ValueError, match="native"):
        plot_profile_fits([ProfilePanel("t", p.data_depth_nm, {"K": p.data_theta["K"]}, p.model_depth_nm,
                                        {"K": p.model_theta["K"]}, "Li")], tmp_path / "x.png")
    with pytest.raises(ValueError, match="panels"):
        plot_profile_fits([], tmp_path / "x.png")
    assert not (tmp_path / "x.png").exists()


THETA = np.linspace(0.0, 1.0, 101)
D_LI = 1e-21 * 10 ** (4 * THETA)


def test_diffusivity_fit_full(tmp_path):
    out = plot_diffusivity_fit(THETA, D_LI, 0.5 * D_LI, 2 * D_LI, {"K": 3e-18, "Rb": 2e-18, "Cs": 1e-18},
                               tmp_path / "D_fit.png", native="Li",
                               knots=(np.linspace(0, 1, 6), 1e-21 * 10 ** (4 * np.linspace(0, 1, 6))),
                               per_experiment={"K CAIT": D_LI * 1.5, "Cs CAIT": D_LI / 1.5})
    _check_png(out)


def test_diffusivity_fit_without_band(tmp_path):
    out = plot_diffusivity_fit(THETA, D_LI, None, None, {"K": 3e-18}, tmp_path / "D_fit.png")
    _check_png(out)
    out = plot_diffusivity_fit(THETA, D_LI, 0.5 * D_LI, None, {}, tmp_path / "D_fit2.png")
    _check_png(out)


@pytest.mark.parametrize("kwargs, name", [
    ({"D_native_m2_s": D_LI[:-1]}, "D_native_m2_s"),
    ({"band_low_m2_s": D_LI[:-1]}, "band_low_m2_s"),
    ({"band_high_m2_s": D_LI[:-2]}, "band_high_m2_s"),
    ({"knots": (np.linspace(0, 1, 5), np.ones(4))}, "knots"),
    ({"per_experiment": {"K CAIT": D_LI[:10]}}, "per_experiment"),
    ({"foreign": {"K": -1.0}}, "foreign"),
])
def test_diffusivity_fit_refuses_bad_input(tmp_path, kwargs, name):
    args = {"theta": THETA, "D_native_m2_s": D_LI, "band_low_m2_s": None, "band_high_m2_s": None,
            "foreign": {"K": 3e-18}, "path": tmp_path / "x.png"} | kwargs
    with pytest.raises(ValueError, match=name):
        plot_diffusivity_fit(**args)
    assert not (tmp_path / "x.png").exists()


E = np.linspace(-1.0, 0.5, 301)
SED = 3e27 * np.exp(-0.5 * ((E + 0.2) / 0.25) ** 2)


def _mobile(e_f_plateau):
    return np.where((E <= 0.0) & (E > e_f_plateau), SED, 0.0)


def test_site_energy_distribution(tmp_path):
    populated = np.where(E <= 0.0, SED, 0.0)
    out = plot_site_energy_distribution(
        E, SED, populated, {"K CAIT": _mobile(-0.45), "Rb CAIT": _mobile(-0.55), "Cs CAIT": _mobile(-0.65)},
        0.0, tmp_path / "sed.png",
        fermi_levels_plateau_eV={"K CAIT": -0.45, "Rb CAIT": -0.55, "Cs CAIT": -0.65})
    _check_png(out)
    out = plot_site_energy_distribution(E, SED, populated, {}, 0.0, tmp_path / "sed_min.png")
    _check_png(out)


@pytest.mark.parametrize("which", ["sed_m3_eV", "populated_initial_m3_eV", "mobile_by_experiment"])
def test_site_energy_distribution_refuses_mismatch(tmp_path, which):
    args = {"E_eV": E, "sed_m3_eV": SED, "populated_initial_m3_eV": SED, "mobile_by_experiment": {"K": SED},
            "fermi_level_bulk_eV": 0.0, "path": tmp_path / "x.png"}
    args[which] = {"K": SED[:-1]} if which == "mobile_by_experiment" else SED[:-1]
    with pytest.raises(ValueError, match=which):
        plot_site_energy_distribution(**args)
    assert not (tmp_path / "x.png").exists()


def test_x_range_without_data_follows_the_model():
    """A model-only panel (e.g. the paper demo's Fig. 1) zooms on the replaced zone."""
    model_depth = np.concatenate((np.arange(0.0, 200.0, 0.5), [1e6]))  # nm, a 1 mm sample
    foreign = np.where(model_depth < 100.0, 0.9, 0.0)
    assert _profile_xmax_nm(np.zeros(0), [], model_depth, [foreign]) == approx(150.0, rel=0.01)
