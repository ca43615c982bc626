"""cait_fem: finite-element Nernst-Planck-Poisson simulation of charge attachment induced
transport (CAIT) in solid electrolytes, on FEniCSx/DOLFINx.

    import cait_fem as cf
    glass = cf.Glass.preset("Li3B7O12", temperature_K=300, thickness_m=1e-3)
    li = cf.Species("Li", "native", cf.GaussianSED(fwhm_eV=0.25, vacancy_fraction=0.10,
                                                   D_bulk_m2_s=1e-17))
    k = cf.Species("K", "foreign", cf.ConstantD(D_m2_s=5.6e-21))
    beam = cf.Beam(current_density_A_m2=1e-2, E_kin_eV=10.0, sigma_E_eV=0.5)
    result = cf.simulate(cf.Experiment(glass, (li, k), beam, cf.RunSettings(t_end_s=3600)))
    result.save("out"); result.plot("out")

The experiment description, diffusion laws, analysis and I/O are pure Python; DOLFINx is
imported (and its version checked) only when a solver object is first used.
"""

from cait_fem.case.case_file import load_case
from cait_fem.case.experiment import (
    BackElectrode,
    Beam,
    CurrentFront,
    Experiment,
    Glass,
    MeshSettings,
    Physics,
    PotentialFront,
    RunSettings,
    SolverSettings,
    Species,
)
from cait_fem.case.geometry import Geometry
from cait_fem.output.result import Result
from cait_fem.physics.diffusion import ArrheniusD, ConstantD, DiffusionLaw, GaussianSED, TabulatedD

from .errors import ConfigError, SolverError

__version__ = "0.1.0"

_SOLVER_NAMES = {"simulate": "run.simulation", "Simulation": "run.simulation",
                 "SpotExports": "post.spot_exports", "read_checkpoint": "run.checkpoint",
                 "NPPForms": "fem.forms"}


def __getattr__(name):
    if name in _SOLVER_NAMES:
        import importlib

        from cait_fem.fem.backend import require_dolfinx

        require_dolfinx()
        return getattr(importlib.import_module(f".{_SOLVER_NAMES[name]}", __name__), name)
    raise AttributeError(f"module 'cait_fem' has no attribute {name!r}")


__all__ = [
    "ArrheniusD", "BackElectrode", "Beam", "ConfigError", "ConstantD", "CurrentFront",
    "DiffusionLaw", "Experiment", "GaussianSED", "Geometry", "Glass", "MeshSettings", "NPPForms", "Physics",
    "PotentialFront",
    "Result", "RunSettings", "Simulation", "SolverError", "SolverSettings", "Species", "SpotExports",
    "TabulatedD", "load_case", "read_checkpoint", "simulate",
]
