"""The axisymmetric beam-spot demo: its case file is valid and what the demo says it is, and
the demo script runs end to end on a short exposure (the full run takes minutes)."""

import json
import math
import subprocess
import sys
from pathlib import Path

import pytest
from support.compare import approx

from cait_fem.case.case_file import load_case

ROOT = Path(__file__).resolve().parents[1]
DEMO = ROOT / "demos" / "beam_spot_axisymmetric.py"
CASE = ROOT / "demos" / "beam_spot_axisymmetric.toml"


def test_demo_case_is_a_half_millimetre_spot_on_a_one_millimetre_disc():
    exp = load_case(CASE)
    g = exp.geometry
    assert g.kind == "axisymmetric" and g.axisymmetric and g.dimension == 2
    assert 2 * g.spot_radius_m == approx(0.5e-3)        # the 0.5 mm beam spot
    assert 0.5e-3 <= g.radius_m <= 1e-3 and not g.full_spot    # on a disc of 0.5-1 mm radius
    assert g.electrode_radius_m is None                         # electrode over the whole back
    assert exp.glass.thickness_m == approx(1e-3)         # the "1 mm disc"
    assert exp.glass.name == "Li3B7O12"
    assert (exp.native.name, exp.foreign[0].name) == ("Li", "K")
    assert exp.front.type == "beam" and exp.front.current_density_A_m2 == approx(1e-2)
    assert exp.front.E_kin_eV == approx(10.0)
    # the front (every landed K+ replaces a Li+: ~52 nm after t_end with ~85 % K+ behind
    # it) stays inside the finely meshed layer, below the 90 % where the solver warns
    front_m = exp.front.current_density_A_m2 * exp.run.t_end_s / 1.602176634e-19 / (0.85 * exp.glass.n_bg_m3)
    assert 40e-9 < front_m < 0.9 * exp.mesh.fine_depth_m
    assert exp.mesh.front_spacing_m <= 1e-9 and g.rim_spacing_m <= 2e-9
    assert exp.run.t_end_s in exp.run.all_output_times_s


def test_demo_case_matches_the_1d_k_demo():
    """Glass, ions and beam are those of demos/k_cait.toml: only the geometry differs."""
    spot, slab = load_case(CASE), load_case(ROOT / "demos" / "k_cait.toml")
    assert spot.glass == slab.glass and spot.species == slab.species and spot.front == slab.front
    assert spot.back == slab.back


@pytest.mark.dolfinx
@pytest.mark.slow
def test_demo_script_runs_a_short_exposure_and_refuses_to_overwrite(tmp_path):
    """1 ms of beam on the demo's mesh (~20 s): the pipeline, not the physics."""
    out = tmp_path / "spot"
    cmd = [sys.executable, str(DEMO), "--output", str(out), "--t-end", "1e-3"]
    proc = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "cells" in proc.stdout and "back-electrode current" in proc.stdout
    for name in ("profiles.csv", "timeseries.csv", "summary.json", "profiles.png", "rim_profiles.csv",
                 "surface_profile.csv", "rim_profiles.png", "surface_profile.png", "field_near_rim.png",
                 "spot_summary.json"):
        assert (out / name).is_file(), name
    assert (out / "fields.bp").is_dir()
    s = json.loads((out / "spot_summary.json").read_text())
    assert s["t_end_s"] == 1e-3 and s["conservation_error"] < 1e-9
    assert s["beam_current_A"] == approx(1e-2 * math.pi * (2.5e-4) ** 2)
    # the surface has charged up within the first millisecond and the whole beam lands
    assert s["back_electrode_current_A"] == approx(s["beam_current_A"], rel=0.1)
    assert s["surface_potential_V"]["centre"] > s["surface_potential_V"]["side"] > 0

    before = (out / "summary.json").read_bytes()
    again = subprocess.run(cmd, check=False, capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert again.returncode != 0 and "--overwrite" in again.stderr
    assert (out / "summary.json").read_bytes() == before
