"""Shared test input: the case file of the stable file contract (the K+ demo case,
demos/k_cait.toml, with every key the README's case-file table documents), as TOML
text. Tests that need a variant change a copy of it."""

CONTRACT_CASE_TOML = """
[glass]
preset = "Li3B7O12"
n_bg_m3 = 1.41e28
eps_r = 8
temperature_K = 300
thickness_m = 1e-3

[[species]]
name = "Li"
role = "native"
diffusion = { model = "sed", fwhm_eV = 0.25, vacancy_fraction = 0.10, D_bulk_m2_s = 1e-17 }

[[species]]
name = "K"
role = "foreign"
diffusion = { model = "constant", D_m2_s = 5.6e-21 }

[front]
type = "beam"
current_density_A_m2 = 1e-2
E_kin_eV = 10.0
sigma_E_eV = 0.5

[back]
type = "electrode"

[run]
t_end_s = 3600
output_times_s = [600, 3600]
"""


def section_case_toml(name: str, thickness_m: float, t_end_s: float, output_times_s, time_tolerance: float) -> str:
    """A small 2D section (2 um wide, a 0.6 um spot) under the K+ demo beam, the glass and
    laws of the Li3B7O12 preset: the case of the 2D CLI tests, as TOML text."""
    return f"""name = "{name}"
[glass]
preset = "Li3B7O12"
thickness_m = {thickness_m!r}
[[species]]
name = "Li"
role = "native"
[[species]]
name = "K"
role = "foreign"
[front]
type = "beam"
current_density_A_m2 = 1e-2
E_kin_eV = 10.0
sigma_E_eV = 0.5
[run]
t_end_s = {t_end_s!r}
output_times_s = {list(output_times_s)!r}
time_tolerance = {time_tolerance!r}
[mesh]
front_spacing_m = 1e-9
fine_depth_m = 30e-9
growth_ratio = 1.3
bulk_spacing_m = 0.2e-6
[geometry]
kind = "section"
radius_m = 1e-6
spot_radius_m = 0.3e-6
rim_spacing_m = 10e-9
lateral_growth_ratio = 1.5
lateral_max_spacing_m = 0.5e-6
"""
