"""Material and ion data with their sources.

Glass presets give the :class:`~cait_fem.case.experiment.Glass` fields plus the native ion's default
diffusion law (a TOML table under ``native_diffusion``); ion presets give charge number and
mass. Diffusion coefficients of foreign ions are properties of the ion *in a glass*, so
they live with the glass (:func:`foreign_diffusion_preset`).

Standard atomic weights (IUPAC, abridged values, in u): H 1.008, Li 6.94, B 10.81,
O 15.999, Na 22.990, K 39.098, Rb 85.468, Cs 132.91.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy import constants

from cait_fem.errors import ConfigError

__all__ = ["GlassPreset", "IonPreset", "GLASSES", "IONS", "glass_preset", "ion_preset",
           "foreign_diffusion_preset"]

ATOMIC_WEIGHT_U = {"H": 1.008, "Li": 6.94, "B": 10.81, "O": 15.999, "Na": 22.990, "K": 39.098,
                   "Rb": 85.468, "Cs": 132.91}


def _unknown(where: str, name, known) -> ConfigError:
    return ConfigError(f"{where} = {name!r} is not allowed: one of " + ", ".join(f'"{k}"' for k in known))


@dataclass(frozen=True)
class IonPreset:
    """A mobile ion: ``charge_number`` z, ``mass_u`` the standard atomic weight [u] (the
    cation is lighter by one electron mass, 0.00055 u, which is ignored). Readable as a
    mapping too (``preset["charge_number"]``), like a TOML table."""

    name: str
    charge_number: int
    mass_u: float

    def __getitem__(self, key: str):
        return getattr(self, key)


IONS = {name: IonPreset(name, 1, ATOMIC_WEIGHT_U[name]) for name in ("H", "Li", "Na", "K", "Rb", "Cs")}


def ion_preset(name: str, where: str = "species.name") -> IonPreset:
    """The preset of ion ``name`` ("H", "Li", "Na", "K", "Rb", "Cs")."""
    if name not in IONS:
        raise _unknown(where, name, IONS)
    return IONS[name]


@dataclass(frozen=True)
class GlassPreset:
    """A glass: oxide composition (moles of each oxide per formula unit), the formula unit's
    molar mass [kg/mol] from the standard atomic weights, density [kg/m^3], mobile ions per
    formula unit, relative permittivity, native ion and its default diffusion law (TOML
    table), and constant diffusion coefficients [m^2/s] of foreign ions in this glass."""

    name: str
    composition: dict[str, float]
    elements: dict[str, int]
    density_kg_m3: float
    mobile_per_formula_unit: int
    eps_r: float
    native_ion: str
    native_diffusion: dict
    foreign_D_m2_s: dict[str, float]

    @property
    def molar_mass_kg_mol(self) -> float:
        return 1e-3 * sum(count * ATOMIC_WEIGHT_U[el] for el, count in self.elements.items())

    @property
    def n_bg_m3(self) -> float:
        """Mobile (native) ion density = background density [m^-3]: (ions per formula unit) N_A rho / M."""
        return self.mobile_per_formula_unit * constants.N_A * self.density_kg_m3 / self.molar_mass_kg_mol


# Li3B7O12 = 1.5 Li2O . 3.5 B2O3 (30 mol % Li2O), the glass of Gunawan, Schaefer, Weitzel,
# PCCP 2024, 26, 14430.
# - density 2250 kg/m^3: the value that reproduces the project benchmark n_bg = 1.41e28 m^-3
#   (docs/model.md section 8.1); lithium borate glasses near 30 mol % Li2O have densities around
#   2.2-2.3 g/cm^3, so it is plausible, but it is not taken from a measurement of this glass.
# - eps_r = 8: the benchmark value of docs/model.md section 8.1.
# - native Li+: the paper's Gaussian SED, FWHM 0.25 eV, 10 % vacancies (its sections 3.2,
#   3.3); D_bulk = 1e-17 m^2/s is the project's benchmark value, not a measured one.
# - foreign ions: K+ 5.6e-21 m^2/s is the benchmark value; Rb+ and Cs+ are DEMO VALUES,
#   NOT FITTED, chosen only to be slower than K+ in the paper's order (K > Rb > Cs).
# - H+ (alkali-proton substitution, docs/model.md section 4.8): 1e-20 m^2/s is ASSUMED, not
#   measured or fitted: protons that replace alkali ions in oxide glasses are reported to
#   move far more slowly than the alkali ions they replace, so the value is set three
#   orders of magnitude below the native D_bulk, of the order of the heavy foreign ions.
GLASSES = {
    "Li3B7O12": GlassPreset(
        name="Li3B7O12", composition={"Li2O": 1.5, "B2O3": 3.5}, elements={"Li": 3, "B": 7, "O": 12},
        density_kg_m3=2250.0, mobile_per_formula_unit=3, eps_r=8.0, native_ion="Li",
        native_diffusion={"model": "sed", "fwhm_eV": 0.25, "vacancy_fraction": 0.10, "D_bulk_m2_s": 1e-17},
        foreign_D_m2_s={"K": 5.6e-21, "Rb": 2.0e-21, "Cs": 6.0e-22, "H": 1.0e-20},
    ),
}

# Experiment conditions, not glass properties: a glass preset supplies them as defaults only.
DEFAULT_TEMPERATURE_K = 300.0
DEFAULT_THICKNESS_M = 1e-3


def glass_preset(name: str, where: str = "glass.preset") -> dict:
    """The :class:`~cait_fem.case.experiment.Glass` fields of glass ``name`` (name, n_bg_m3, eps_r and
    the experiment defaults temperature_K = 300 K, thickness_m = 1 mm) plus
    ``native_diffusion``, the native ion's diffusion law as a TOML table (pop it before
    ``Glass(**d)``)."""
    if name not in GLASSES:
        raise _unknown(where, name, GLASSES)
    g = GLASSES[name]
    return {"name": g.name, "n_bg_m3": g.n_bg_m3, "eps_r": g.eps_r, "temperature_K": DEFAULT_TEMPERATURE_K,
            "thickness_m": DEFAULT_THICKNESS_M, "native_diffusion": dict(g.native_diffusion)}


def foreign_diffusion_preset(glass: str, ion: str, where: str = "species.name") -> dict:
    """Constant-D law (TOML table) of foreign ion ``ion`` in glass ``glass``."""
    if glass not in GLASSES:
        raise _unknown("glass.preset", glass, GLASSES)
    known = GLASSES[glass].foreign_D_m2_s
    if ion not in known:
        raise _unknown(where, ion, known)
    return {"model": "constant", "D_m2_s": known[ion]}
