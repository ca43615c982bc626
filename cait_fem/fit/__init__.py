"""Fitting measured depth profiles: fit files, the least-squares problem, the ensemble of
forward solves, the report. ``load_fit_case`` + ``run_fit`` is the whole workflow; the CLI
is ``cait-fem fit fit.toml -o outdir``."""

from .config import FitCase, FitExperiment, FitSettings, fit_case_from_dict, load_fit_case
from .parameters import ParameterSpec

__all__ = ["FitCase", "FitExperiment", "FitSettings", "ParameterSpec", "fit_case_from_dict",
           "load_fit_case", "run_fit"]


def run_fit(case, comm=None, quiet: bool = False):
    """Fit ``case`` (collective over ``comm``, default COMM_WORLD); returns a FitResult."""
    from cait_fem.fem.backend import require_dolfinx

    require_dolfinx()
    from .fitter import run_fit as _run

    return _run(case, comm, quiet)
