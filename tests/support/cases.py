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
