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

from .errors import ConfigError, SolverError

__version__ = "0.1.0"

# Loaded on first use (PEP 562), not on import: `cait-fem` installs its SIGINT/SIGTERM
# handlers as its first act, and importing these (NumPy, SciPy) took 0.5-0.9 s in which an
# interruption ended in a KeyboardInterrupt traceback.
_PURE_NAMES = {"load_case": "case.case_file", "Geometry": "case.geometry", "Result": "output.result",
               **dict.fromkeys(("AnodeFront", "BackElectrode", "Beam", "CurrentFront", "Experiment", "Glass",
                                "MeshSettings", "Physics", "PotentialFront", "RunSettings", "SolverSettings",
                                "Species"),
                               "case.experiment"),
               **dict.fromkeys(("ArrheniusD", "ConstantD", "DiffusionLaw", "GaussianSED", "LogLinearD", "TabulatedD"),
                               "physics.diffusion")}
_SOLVER_NAMES = {"simulate": "run.converged", "Simulation": "run.simulation",
                 "SpotExports": "post.spot_exports", "read_checkpoint": "run.checkpoint",
                 "NPPForms": "fem.forms"}
_SUBPACKAGES = ("analysis", "case", "fem", "fit", "mesh", "output", "physics", "post", "run", "solver",
                "fileio", "cli")


def __getattr__(name):
    import importlib

    if name in _PURE_NAMES:
        value = getattr(importlib.import_module(f".{_PURE_NAMES[name]}", __name__), name)
        globals()[name] = value
        return value
    if name in _SOLVER_NAMES:
        from cait_fem.fem.backend import require_dolfinx

        require_dolfinx()
        return getattr(importlib.import_module(f".{_SOLVER_NAMES[name]}", __name__), name)
    if name in _SUBPACKAGES:
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module 'cait_fem' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))


__all__ = [
    "AnodeFront", "ArrheniusD", "BackElectrode", "Beam", "ConfigError", "ConstantD", "CurrentFront",
    "DiffusionLaw", "Experiment", "GaussianSED", "Geometry", "Glass", "MeshSettings", "NPPForms", "Physics",
    "PotentialFront",
    "Result", "RunSettings", "Simulation", "SolverError", "SolverSettings", "Species", "SpotExports",
    "LogLinearD", "TabulatedD", "load_case", "read_checkpoint", "simulate",
]
