"""Temperature series: the native ion's Arrhenius parameters from a fit of experiments at
several temperatures, its activation energy E_act(theta) and the Arrhenius plot.

docs/model.md section 3.8: with D_bulk(T) = D0 exp(-E_DC / k_B T) the Gaussian-SED law is

    D(theta, T) = D0 exp(-E_act(theta) / k_B T),   E_act(theta) = E_DC - (E_F(p) - E_F(p_b)),

p = theta (1 - v), p_b = 1 - v: emptying the SED from the top lowers the Fermi level of
the remaining ions, and the barrier they must climb to the conduction level grows by as
much. For ``model = "arrhenius"`` E_act = E_a at every theta. A fit applies when at
least two experiments have different temperatures and the native law has an activation
energy (``sed`` with ``E_DC_eV`` and ``D0_m2_s`` or ``D_ref_m2_s`` at ``T_ref_K``, or
``arrhenius``).

Uncertainties: delta method with the fit's covariance of the transformed parameters
(what :meth:`FitResult.native_diffusivity` does for D(theta)), 95 % with the Student t
quantile of the fit's degrees of freedom. Pure (numpy/scipy); matplotlib only in
:func:`plot_arrhenius`.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
from scipy import stats

from cait_fem.fileio import write_csv_atomic, write_json_atomic
from cait_fem.physics.diffusion import ArrheniusD, GaussianSED
from cait_fem.physics.sed import activation_energy_eV, kT_eV

__all__ = ["ARRHENIUS_FILES", "applies", "activation_energy", "arrhenius_line", "series_summary",
           "plot_arrhenius", "write_series"]

ARRHENIUS_FILES = ("activation_energy.csv", "temperature_series.json", "fit_arrhenius.png")
THETA_GRID = np.round(np.linspace(0.05, 1.0, 96), 10)
PLOT_THETAS = (1.0, 0.5, 0.2)


def _estimate_z(result) -> np.ndarray:
    """The fitted parameters in the optimiser's coordinates: the estimates as reported
    (corrected by the numerical shift, docs/fitting.md), not the default-numerics optimum."""
    return np.array([e.parameter.to_z(e.value) for e in result.estimates], dtype=float)


def _law(result, name: str, z=None):
    exp = result.problem.experiment_at(name, _estimate_z(result) if z is None else z)
    return exp.native.diffusion


def _has_activation_energy(law) -> bool:
    return isinstance(law, ArrheniusD) or (isinstance(law, GaussianSED) and law.E_DC_eV is not None)


def applies(result) -> bool:
    """Two or more experiments at different temperatures, native law with an activation energy."""
    names = result.problem.names
    temperatures = {result.problem.experiment_at(n, result.z).glass.temperature_K for n in names}
    return len(temperatures) >= 2 and all(_has_activation_energy(_law(result, n)) for n in names)


def _E_act(law, theta, temperature_K) -> np.ndarray:
    if isinstance(law, ArrheniusD):
        return np.full_like(theta, law.E_a_eV)
    return activation_energy_eV(theta, law.fwhm_eV, law.E_DC_eV, law.vacancy_fraction, law.filling, temperature_K)


def _D0(law) -> float:
    return float(law.D0_m2_s) if isinstance(law, ArrheniusD) else law.prefactor_m2_s


def _band(result, name: str, f) -> tuple[np.ndarray, np.ndarray]:
    """f(law) at the optimum and its 95 % half-width (delta method over the native-law
    parameters of experiment ``name``)."""
    native = result.problem.experiment_at(name, result.z).native.name
    value = np.asarray(f(_law(result, name)), dtype=float)
    z0 = _estimate_z(result)
    grads = np.zeros((value.size, z0.size))
    for j, p in enumerate(result.problem.free):
        if name not in p.targets or p.is_measurement or not p.path.startswith(f"species.{native}."):
            continue
        h = 1e-6 * max(1.0, abs(z0[j]))
        zj = z0.copy()
        zj[j] += h
        grads[:, j] = (np.asarray(f(_law(result, name, zj)), dtype=float).ravel() - value.ravel()) / h
    cov = np.nan_to_num(result.covariance_z, nan=np.inf)
    var = np.einsum("ij,jk,ik->i", grads, cov, grads, optimize=True) if grads.any() else np.zeros(value.size)
    dof = result.dof
    t = float(stats.t.ppf(0.975, dof)) if dof > 0 else float(stats.norm.ppf(0.975))
    return value.reshape(value.shape), (t * np.sqrt(np.clip(var, 0, None))).reshape(value.shape)


def activation_energy(result, theta=THETA_GRID) -> dict:
    """E_act(theta) [eV] of the native ion at the optimum with its 95 % band, from the
    first experiment's law (the experiments share it in a temperature-series fit;
    ``shared`` says whether they do). Fermi-Dirac filling makes E_F depend on T: then
    the first experiment's temperature is used."""
    theta = np.asarray(theta, dtype=float)
    first = result.problem.names[0]
    T = result.problem.experiment_at(first, result.z).glass.temperature_K
    E, half = _band(result, first, lambda law: _E_act(law, theta, T))
    laws = [_law(result, n) for n in result.problem.names]
    shared = all(_same_activation(laws[0], other) for other in laws[1:])
    return {"theta": theta, "E_act_eV": E, "E_act_low_eV": E - half, "E_act_high_eV": E + half,
            "shared": shared, "temperature_K": T}


def _same_activation(a, b) -> bool:
    keys = ("E_a_eV",) if isinstance(a, ArrheniusD) else ("E_DC_eV", "fwhm_eV", "vacancy_fraction")
    return type(a) is type(b) and math.isclose(_D0(a), _D0(b), rel_tol=1e-9) \
        and all(math.isclose(getattr(a, k), getattr(b, k), rel_tol=1e-12) for k in keys)


def arrhenius_line(result, temperatures_K, theta: float = 1.0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """D(theta, T) [m^2/s] = D0 exp(-E_act(theta) / k_B T) of the fitted law at
    ``temperatures_K`` with its 95 % band (low, high)."""
    T = np.asarray(temperatures_K, dtype=float)
    first = result.problem.names[0]

    def log_D(law):
        E = np.array([_E_act(law, np.array([theta]), t)[0] for t in T])
        return math.log(_D0(law)) - E / kT_eV(T)

    value, half = _band(result, first, log_D)
    return np.exp(value), np.exp(value - half), np.exp(value + half)


def series_summary(result) -> dict:
    """What ``temperature_series.json`` holds: the fitted D0 and E_DC (or E_a), per
    experiment its temperature and D_bulk(T) = D(theta = 1, T) with the 95 % band, and
    E_act(theta)."""
    first = result.problem.names[0]
    law = _law(result, first)
    key = "E_a_eV" if isinstance(law, ArrheniusD) else "E_DC_eV"
    D0, D0_half = _band(result, first, lambda L: math.log(_D0(L)))
    E, E_half = _band(result, first, lambda L: getattr(L, key))
    experiments = {}
    for name in result.problem.names:
        T = result.problem.experiment_at(name, result.z).glass.temperature_K
        D, lo, hi = arrhenius_line(result, [T])
        experiments[name] = {"temperature_K": T, "D_bulk_m2_s": float(D[0]), "D_bulk_ci95_m2_s": [float(lo[0]),
                                                                                                float(hi[0])]}
    act = activation_energy(result)
    return {
        "D0_m2_s": float(np.exp(D0)), "D0_ci95_m2_s": [float(np.exp(D0 - D0_half)), float(np.exp(D0 + D0_half))],
        key: float(E), f"{key.removesuffix('_eV')}_ci95_eV": [float(E - E_half), float(E + E_half)],
        "experiments": experiments,
        "activation_energy": {"theta": act["theta"].tolist(), "E_act_eV": act["E_act_eV"].tolist(),
                              "E_act_ci95_eV": [act["E_act_low_eV"].tolist(), act["E_act_high_eV"].tolist()],
                              "shared_by_all_experiments": act["shared"],
                              "fermi_level_temperature_K": act["temperature_K"]},
    }


def plot_arrhenius(result, path, points: dict | None = None) -> Path:
    """log10 D against 1000 / T: the fitted D(theta, T) for theta = 1 (D_bulk), 0.5 and
    0.2 with 95 % bands, the experiments' temperatures marked; ``points`` {label: (T [K],
    D, D_low, D_high) [m^2/s]} adds independent values (e.g. one fit per temperature)
    with error bars."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    temps = sorted({result.problem.experiment_at(n, result.z).glass.temperature_K for n in result.problem.names})
    span = temps[-1] - temps[0]
    T = np.linspace(temps[0] - 0.1 * span, temps[-1] + 0.1 * span, 60)
    fig = Figure(figsize=(5.2, 4.2), layout="constrained")
    ax = fig.subplots()
    for theta, color in zip(PLOT_THETAS, ("black", "tab:blue", "tab:cyan")):
        D, lo, hi = arrhenius_line(result, T, theta)
        E = activation_energy(result, [theta])["E_act_eV"][0]
        ax.plot(1000.0 / T, np.log10(D), color=color, label=f"fit, theta = {theta:g}: E_act = {E:.3f} eV")
        ax.fill_between(1000.0 / T, np.log10(lo), np.log10(hi), color=color, alpha=0.15, lw=0)
        Dm = arrhenius_line(result, temps, theta)[0]
        ax.plot(1000.0 / np.array(temps), np.log10(Dm), "o", color=color, ms=4, mfc="white")
    for label, (t, D, lo, hi) in (points or {}).items():
        ax.errorbar([1000.0 / t], [math.log10(D)], yerr=[[math.log10(D) - math.log10(lo)],
                                                           [math.log10(hi) - math.log10(D)]],
                    fmt="s", color="tab:red", ms=5, capsize=3, label=label)
    ax.set_xlabel("1000 / T [1/K]")
    ax.set_ylabel("log10 D_native [m^2/s]")
    ax.set_title("Arrhenius plot of the native ion", fontsize=10)
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    FigureCanvasAgg(fig).print_png(str(path))
    return Path(path)


def write_series(result, directory, points: dict | None = None) -> list[Path]:
    """``activation_energy.csv`` (theta, E_act_eV and its 95 % band), ``temperature_series.json``
    (:func:`series_summary`) and ``fit_arrhenius.png`` in ``directory``; nothing if the
    fit is not a temperature series (:func:`applies`)."""
    if not applies(result):
        return []
    d = Path(directory)
    act = activation_energy(result)
    return [write_csv_atomic(d / "activation_energy.csv", ["theta", "E_act_eV", "E_act_low_eV", "E_act_high_eV"],
                             [act["theta"], act["E_act_eV"], act["E_act_low_eV"], act["E_act_high_eV"]]),
            write_json_atomic(d / "temperature_series.json", series_summary(result)),
            plot_arrhenius(result, d / "fit_arrhenius.png", points)]
