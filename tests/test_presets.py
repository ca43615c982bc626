"""cait_fem.case.presets: glass and ion data."""

import pytest
from scipy import constants
from support.compare import approx

from cait_fem.case import presets
from cait_fem.case.experiment import Glass
from cait_fem.errors import ConfigError
from cait_fem.physics.diffusion import GaussianSED, diffusion_law_from_dict


def test_li3b7o12_composition_molar_mass_and_background_density():
    g = presets.GLASSES["Li3B7O12"]
    # 1.5 Li2O . 3.5 B2O3 = Li3 B7 O12
    assert g.composition == {"Li2O": 1.5, "B2O3": 3.5}
    assert g.elements == {"Li": 2 * 1.5, "B": 2 * 3.5, "O": 1.5 + 3 * 3.5}
    molar_mass = (3 * 6.94 + 7 * 10.81 + 12 * 15.999) * 1e-3
    assert g.molar_mass_kg_mol == approx(molar_mass, rel=1e-12)
    assert g.n_bg_m3 == approx(3 * constants.N_A * g.density_kg_m3 / molar_mass, rel=1e-12)
    assert g.n_bg_m3 == approx(1.41e28, rel=5e-3)  # docs/model.md section 8.1
    assert 2200 <= g.density_kg_m3 <= 2300


def test_glass_preset_builds_a_glass_and_the_paper_sed():
    d = presets.glass_preset("Li3B7O12")
    native = d.pop("native_diffusion")
    glass = Glass(**d)
    assert glass.eps_r == 8.0 and glass.temperature_K == 300.0 and glass.thickness_m == 1e-3
    law = diffusion_law_from_dict(native, "species.Li.diffusion")
    assert law == GaussianSED(fwhm_eV=0.25, vacancy_fraction=0.10, D_bulk_m2_s=1e-17)
    native["fwhm_eV"] = 1.0  # a copy: the preset itself is unchanged
    assert presets.glass_preset("Li3B7O12")["native_diffusion"]["fwhm_eV"] == 0.25


def test_ion_presets():
    masses = {"H": 1.008, "Li": 6.94, "Na": 22.990, "K": 39.098, "Rb": 85.468, "Cs": 132.91}
    for name, mass in masses.items():
        ion = presets.ion_preset(name)
        assert (ion.name, ion.charge_number, ion.mass_u) == (name, 1, mass)
        assert ion["charge_number"] == 1


def test_foreign_diffusion_presets():
    assert presets.foreign_diffusion_preset("Li3B7O12", "K") == {"model": "constant", "D_m2_s": 5.6e-21}
    D = {ion: presets.foreign_diffusion_preset("Li3B7O12", ion)["D_m2_s"] for ion in ("K", "Rb", "Cs")}
    assert D["K"] > D["Rb"] > D["Cs"] > 0  # the paper's plateaus: 15 %, 7 %, 3 %


@pytest.mark.parametrize("call, message", [
    (lambda: presets.glass_preset("Li2O"), r"glass\.preset = 'Li2O' is not allowed: one of \"Li3B7O12\""),
    (lambda: presets.glass_preset("x", where="case.glass.preset"), r"^case\.glass\.preset = 'x'"),
    (lambda: presets.ion_preset("Fr"), r"species\.name = 'Fr' is not allowed: one of .*\"K\", \"Rb\", \"Cs\""),
    (lambda: presets.foreign_diffusion_preset("Li3B7O12", "Na"),
     r"species\.name = 'Na' is not allowed: one of \"K\""),
    (lambda: presets.foreign_diffusion_preset("B2O3", "K"), r"glass\.preset = 'B2O3' is not allowed"),
])
def test_unknown_names_raise_config_errors(call, message):
    with pytest.raises(ConfigError, match=message):
        call()
