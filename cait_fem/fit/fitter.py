"""Run a fit: scipy ``least_squares`` (trust-region reflective) over forward NPP solves.

Residuals come from :class:`~cait_fem.fit.problem.FitProblem`, forward solves from
:class:`~cait_fem.fit.ensemble.Ensemble`. The Jacobian is a forward difference in the
transformed parameters z (log10 or scaled, step ``fd_step``): every perturbed solve replays
the time steps of the unperturbed one, so the difference measures the model's parameter
dependence and not the step controller's decisions (see :mod:`cait_fem.solver.timestepping`).
A perturbation only re-solves the experiments its parameter belongs to, and a measurement
parameter (SIMS resolution, depth offset) re-solves nothing. The perturbed solves of one
Jacobian are independent and run concurrently over the ensemble's groups.

From a poor start a sharp front sits in the wrong place and the point residuals saturate,
so by default (``presolve``) a first stage matches only the plateau and front position of
each measured profile, which move smoothly with the parameters; the second stage fits
every point from there.

Uncertainties: with J the Jacobian of the weighted residuals at the optimum,
Cov(z) = s^2 (J^T J)^+, s^2 = chi^2 / (m - n) (1 with ``absolute_sigma`` or m = n), and the
physical standard error is |dx/dz| sigma_z.

Numerical error (``refinement_factor`` f, default 2; docs/fitting.md, "Numerical error"):
at the optimum z_h every experiment is solved once more with refined numerics
(:func:`~cait_fem.case.refinement.refined_numerics`), and the residual change dr moves the
optimum by the Gauss-Newton step dz = -(J^T J)^+ J^T dr. The reported estimate is
z_h + dz (the refined numerics' optimum, linearised), and the 95 % interval is
z_h + dz +- (t_0.975(m - n) sigma_z + |dz|) mapped back to x, so it is asymmetric (and
positive) for log-scale parameters.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import replace

from mpi4py import MPI

import numpy as np
from scipy import optimize, stats

from cait_fem.case.refinement import refined_numerics
from cait_fem.case.resolution import finest
from cait_fem.errors import SolverError

from .ensemble import Ensemble, Task
from .problem import FitProblem, ForwardOutput
from .result import FitResult, ParameterEstimate

PRESOLVE_EVALUATIONS = 10
PRESOLVE_TOLERANCE_FACTOR = 4.0
PRESOLVE_RMS = 1.0  # stage 1 ends below this RMS metric residual (1.5 cost FIT3 one more Jacobian)
# A Jacobian is reused while the step from where it was computed changes the weighted
# residuals by less than 0.1 in norm (||J dz||^2 < 0.01: a tenth of a standard error along
# any direction): the Jacobian and the covariance are then the same to far better than
# their own accuracy. It saves the Jacobian least_squares asks for after its last, tiny
# step (on FIT3 one of five, 6 forward solves), which is what pays for the refined
# evaluation of the numerical error check.
JACOBIAN_REUSE_CHI2 = 0.01


class _PresolveDone(Exception):
    """Stage 1 reached RMS metric residual < 1 (plateau within 0.01, front within 1 nm)."""

    def __init__(self, z):
        super().__init__()
        self.z = z


class FitProgress:
    """One line per residual evaluation on rank 0: count, cost, solves, wall time."""

    def __init__(self, comm, quiet: bool = False, stream=None):
        self.show = not quiet and comm.rank == 0
        self.stream = stream or sys.stderr
        self.t0 = time.perf_counter()

    def evaluation(self, n: int, cost: float, solves: int, failed: int) -> None:
        if self.show:
            note = f", {failed} failed solve(s)" if failed else ""
            print(f"fit: evaluation {n:3d}  cost {cost:.6g}  forward solves {solves}  "
                  f"{time.perf_counter() - self.t0:7.1f} s{note}", file=self.stream, flush=True)

    def message(self, text: str) -> None:
        if self.show:
            print(f"fit: {text}", file=self.stream, flush=True)


class Fitter:
    def __init__(self, case, comm=None, quiet: bool = False):
        self.case = case
        self.comm = comm if comm is not None else MPI.COMM_WORLD
        self.problem = FitProblem(case)
        experiments = {e.name: e.experiment for e in case.experiments}
        self.ensemble = Ensemble(experiments, self.comm, case.settings.groups,
                                 depth_resolutions=self._shared_meshes(experiments))
        self.progress = FitProgress(self.comm, quiet)
        self._cache: dict[bytes, list[ForwardOutput]] = {}
        self.evaluations = 0
        self.jacobian_evaluations = 0
        self.jacobians_reused = 0
        self._last_jacobian = None  # (presolving, z, J) of the last computed Jacobian
        self.failed_solves = 0
        self.presolving = False

    # -- forward model --------------------------------------------------------------------
    def _experiment_at(self, name: str, z):
        """The run case at z; in stage 1 with a looser time tolerance (metrics to 0.01 and
        1 nm need less than profiles compared point by point)."""
        exp = self.problem.experiment_at(name, z)
        if self.presolving:
            run = replace(exp.run, time_tolerance=exp.run.time_tolerance * PRESOLVE_TOLERANCE_FACTOR)
            exp = replace(exp, run=run)
        return exp

    def forward(self, z) -> list[ForwardOutput]:
        key = np.asarray(z, float).tobytes() + bytes([self.presolving])
        if key not in self._cache:
            exps = {name: self._experiment_at(name, z) for name in self.problem.names}
            outs = self.ensemble.run([Task(n, n, exps[n], initial_from=self.problem.initial_from(n))
                                      for n in self.problem.names])
            self.failed_solves += sum(o.error is not None for o in outs)
            self._cache = {key: outs}  # least_squares asks for jac at the last evaluated point
        return self._cache[key]

    def _residuals(self, z, outs) -> np.ndarray:
        per_experiment = self.problem.presolve_residuals if self.presolving else self.problem.residuals
        parts = [per_experiment(n, z, o) for n, o in zip(self.problem.names, outs)]
        return np.concatenate(parts + [self.problem.regularisation(z)])

    def fun(self, z) -> np.ndarray:
        outs = self.forward(z)
        r = self._residuals(z, outs)
        self.evaluations += 1
        self.progress.evaluation(self.evaluations, 0.5 * float(r @ r), self.ensemble.solves,
                                 sum(o.error is not None for o in outs))
        if self.presolving and float(r @ r) < PRESOLVE_RMS**2 * r.size:
            raise _PresolveDone(np.array(z, float))  # metrics within their scales: on to the points
        return r

    def _step(self, z, j) -> float:
        h = self.case.settings.fd_step
        return -h if z[j] + h > self.problem.bounds[1][j] else h

    def jac(self, z) -> np.ndarray:
        """Forward differences; all perturbed solves of this Jacobian in one ensemble batch.
        The last computed Jacobian is reused if ``z`` is within a tenth of a standard error
        of where it was computed (see JACOBIAN_REUSE_CHI2)."""
        z = np.asarray(z, float)
        last = self._last_jacobian
        if last is not None and last[0] == self.presolving:
            step = last[2] @ (z - last[1])
            if float(step @ step) < JACOBIAN_REUSE_CHI2:
                self.jacobians_reused += 1
                return last[2]
        J = self._finite_differences(z)
        self._last_jacobian = (self.presolving, z.copy(), J)
        return J

    def _finite_differences(self, z) -> np.ndarray:
        self.jacobian_evaluations += 1
        base = dict(zip(self.problem.names, self.forward(z)))
        r0 = self._residuals(z, list(base.values()))
        perturbed = []  # (step h, z + h e_j) per parameter
        for j in range(z.size):
            h = self._step(z, j)
            zj = z.copy()
            zj[j] += h
            perturbed.append((h, zj))
        tasks = []
        for j, (_, zj) in enumerate(perturbed):
            if not self.problem.needs_solve(j):
                continue
            for n in self.problem.names:
                if self.problem.affects(j, n):
                    exp = self._experiment_at(n, zj)
                    # a new duration stretches the replayed steps with it
                    stretch = exp.run.t_end_s / base[n].time_s[-1]
                    # a sequential experiment starts from its predecessor's perturbed state
                    # (a task of this batch) or, if j leaves that alone, its base state
                    src = self.problem.initial_from(n)
                    after = (j, src) if src is not None and self.problem.affects(j, src) else None
                    tasks.append(Task((j, n), n, exp, base[n].time_s[1:] * stretch, initial_from=after,
                                      initial=base[src] if src is not None and after is None else None))
        solved = {t.key: out for t, out in zip(tasks, self.ensemble.run(tasks))}
        failed = [k for k, o in solved.items() if o.error is not None]
        if failed:
            j, n = failed[0]
            raise SolverError(f"fit: the finite-difference solve of {self.problem.free[j].label} for experiment "
                              f"{n!r} failed: {solved[failed[0]].error}")
        J = np.zeros((r0.size, z.size))
        for j, (h, zj) in enumerate(perturbed):
            outs = [solved.get((j, n), base[n]) for n in self.problem.names]
            J[:, j] = (self._residuals(zj, outs) - r0) / h
        return J

    # -- the fit ----------------------------------------------------------------------------
    def run(self) -> FitResult:
        s = self.case.settings
        wall0 = time.perf_counter()
        z0 = np.clip(self.problem.x0, *self.problem.bounds)
        self.progress.message(f"{len(z0)} parameters, {len(self.problem.names)} experiment(s), "
                              f"{self.comm.size} process(es) in {self.ensemble.groups} group(s)")
        if s.presolve and any(self.problem.measured_metrics(n) for n in self.problem.names):
            self.progress.message("stage 1: plateau and front position of each measured profile")
            self.presolving = True
            try:
                z0 = optimize.least_squares(self.fun, z0, jac=self.jac, bounds=self.problem.bounds, method="trf",
                                            x_scale=1.0, ftol=1e-3, xtol=1e-4, gtol=s.gtol,
                                            max_nfev=max(1, min(PRESOLVE_EVALUATIONS, s.max_evaluations // 2))).x
            except _PresolveDone as done:
                z0 = done.z
            self.presolving = False
            self.progress.message("stage 2: every data point")
        sol = optimize.least_squares(self.fun, z0, jac=self.jac, bounds=self.problem.bounds, method="trf",
                                     x_scale=1.0, ftol=s.ftol, xtol=s.xtol, gtol=s.gtol,
                                     max_nfev=max(1, s.max_evaluations - self.evaluations))
        outs = self.forward(sol.x)
        numerical, dr = self.numerical_error(sol.x, outs)
        estimates, cov = self._uncertainties(sol, dr, checked=numerical is not None)
        m, n = sol.fun.size, sol.x.size
        chi2 = float(sol.fun @ sol.fun)
        result = FitResult(
            case=self.case, problem=self.problem, z=sol.x, estimates=estimates, covariance_z=cov,
            outputs=dict(zip(self.problem.names, outs)), cost=float(sol.cost), chi2=chi2, dof=m - n,
            residuals=sol.fun, evaluations=self.evaluations, jacobian_evaluations=self.jacobian_evaluations,
            forward_solves=self.ensemble.solves, failed_solves=self.failed_solves,
            wall_time_s=time.perf_counter() - wall0, success=bool(sol.success), status=int(sol.status),
            message=str(sol.message), mpi_size=self.comm.size, groups=self.ensemble.groups,
            simulations_built=self.comm.allreduce(self.ensemble.simulations_built * (self.ensemble.sub.rank == 0)),
            compile_wall_s=self.comm.allreduce(self.ensemble.compile_wall_s, op=MPI.MAX),
            numerical_error=numerical, jacobians_reused=self.jacobians_reused,
        )
        self.progress.message(f"done: cost {result.cost:.6g}, {result.evaluations} evaluations, "
                              f"{result.forward_solves} forward solves, {result.wall_time_s:.1f} s ({sol.message})")
        return result

    def _sequences(self) -> dict[str, str]:
        """Each experiment's sequence: the first experiment of its chain of ``initial_from``."""
        root = {}
        for name in self.problem.names:
            first = name
            while self.problem.initial_from(first) is not None:
                first = self.problem.initial_from(first)
            root[name] = first
        return root

    def _shared_meshes(self, experiments: dict) -> dict:
        """The depth rule of the experiments of a sequence (double CAIT): one mesh for all
        of them, the finest of their rules, so that a state is handed over node by node."""
        root = self._sequences()
        out = {}
        for first in set(root.values()):
            members = [n for n in root if root[n] == first]
            if len(members) > 1:
                shared = finest(experiments[n].depth_resolution for n in members)
                out.update(dict.fromkeys(members, shared))
        return out

    def numerical_error(self, z, outs) -> tuple[dict | None, np.ndarray | None]:
        """Solve every experiment at ``z`` once more with refined numerics (spacings and
        steps / ``refinement_factor``), as one ensemble batch. Returns the report for
        ``fit.json`` and the change of the residual vector, refined minus default (None,
        None when the check is off; a report with ``error`` and None if a refined solve
        failed)."""
        factor = self.case.settings.refinement_factor
        if factor <= 1.0:
            return None, None
        self.progress.message(f"numerical error: every experiment once more at {factor:g}x refined numerics")
        t0 = time.perf_counter()
        tasks = []
        refined_exps = {name: refined_numerics(self.problem.experiment_at(name, z), factor)
                        for name in self.problem.names}
        shared = self._shared_meshes(refined_exps)

        def key_of(name):
            return f"{name} (refined x{factor:g})"
        for name, exp in refined_exps.items():
            key = key_of(name)
            # cells and steps both grow by the factor (cells by factor^dim)
            self.ensemble.add(key, exp, self.ensemble.cost_s[name] * factor ** (exp.geometry.dimension + 1),
                              depth_resolution=shared.get(name))
            src = self.problem.initial_from(name)
            tasks.append(Task(key, key, exp, initial_from=None if src is None else key_of(src)))
        try:
            refined = self.ensemble.run(tasks)
        finally:
            for t in tasks:
                self.ensemble.discard(t.name)
        report = {"refinement_factor": factor,
                  "method": "refined_numerics: mesh spacings / factor, time tolerance / factor^(p+1); "
                            "shift dz = -(J^T J)^+ J^T (r_refined - r_default); value = default optimum + shift; "
                            "ci95 half-width (in z) = t * sigma_z + |dz|",
                  "wall_time_s": time.perf_counter() - t0, "experiments": {}}
        failed = []
        for name, t, out, base in zip(self.problem.names, tasks, refined, outs):
            m, r = t.experiment.mesh, t.experiment.run
            res = self.ensemble.depth_resolutions.get(t.name, t.experiment.depth_resolution)
            entry = {"front_spacing_nm": res.front_spacing_m * 1e9, "spacing_slope": res.spacing_slope,
                     "max_front_spacing_nm": res.max_front_spacing_m * 1e9,
                     "surface_spacing_nm": m.surface_spacing_m * 1e9,
                     "bulk_spacing_nm": m.bulk_spacing_m * 1e9, "growth_ratio": m.growth_ratio,
                     "time_tolerance": r.time_tolerance, "nodes": int(out.depth_m.size), "steps": out.steps,
                     "wall_s": out.wall_s, "default_nodes": int(base.depth_m.size), "default_steps": base.steps}
            if out.error is not None:
                entry["error"] = out.error
                failed.append(name)
            else:
                keep, species = self.problem.data_rows(name)
                if keep is not None and species:
                    change = np.concatenate([self.problem.model_at_data(name, z, out, s)
                                             - self.problem.model_at_data(name, z, base, s) for s in species])
                    entry["rms_model_change_theta"] = float(np.sqrt(np.mean(change**2)))
                    entry["max_model_change_theta"] = float(np.abs(change).max())
            report["experiments"][name] = entry
        if failed:
            report["error"] = (f"the refined solve of {', '.join(map(repr, failed))} failed: the numerical shift "
                               "is unknown and ci95 is the statistical interval only")
            self.progress.message(report["error"])
            return report, None
        dr = self._residuals(z, refined) - self._residuals(z, outs)
        self.progress.message(f"numerical error: refined solves in {report['wall_time_s']:.1f} s")
        return report, dr

    def _uncertainties(self, sol, dr=None, checked: bool = False):
        """Estimates with 95 % intervals and Cov(z); ``dr`` (refined minus default
        residuals at the optimum) adds the numerical shift; ``checked`` without ``dr``:
        the check failed, the shift is unknown (NaN)."""
        J, m, n = sol.jac, sol.fun.size, sol.x.size
        dof = m - n
        s2 = 1.0 if self.case.settings.absolute_sigma or dof <= 0 else float(sol.fun @ sol.fun) / dof
        U, sv, Vt = np.linalg.svd(J, full_matrices=False)
        keep = sv > sv[0] * 1e-10 if sv.size and sv[0] > 0 else np.zeros_like(sv, bool)
        cov = (Vt[keep].T / sv[keep] ** 2) @ Vt[keep] * s2
        identifiable = np.ones(n, bool)
        if not keep.all():  # directions of a zero singular value have no finite error
            null = Vt[~keep]
            identifiable = np.abs(null).max(axis=0) < 1e-6
        sigma_z = np.where(identifiable, np.sqrt(np.clip(np.diag(cov), 0, None)), np.inf)
        shift_z = np.zeros(n)
        if dr is not None:  # Gauss-Newton step of the residual change: the refined model's optimum
            shift_z = -(Vt[keep].T / sv[keep]) @ (U[:, keep].T @ dr)
            shift_z[~identifiable] = np.nan
        tq = quantile95(dof)
        estimates = []
        lo_b, hi_b = self.problem.bounds
        for j, p in enumerate(self.problem.free):
            z0 = sol.x[j]
            z = float(np.clip(z0 + shift_z[j], lo_b[j], hi_b[j])) if np.isfinite(shift_z[j]) else z0
            x = p.from_z(z)
            at_bound = bool(sol.active_mask[j] != 0) or not (lo_b[j] < z0 < hi_b[j])
            # linear sum: the numerical error is a bias, not a random error independent of the noise
            half = tq * sigma_z[j] + (abs(shift_z[j]) if np.isfinite(shift_z[j]) else 0.0)
            ci = (p.from_z(z - half), p.from_z(z + half)) if math.isfinite(half) else (-math.inf, math.inf)
            if p.spec.log and not math.isfinite(half):
                ci = (0.0, math.inf)
            if dr is None:
                shift = math.nan if checked else None
            else:
                shift = x - p.from_z(z0) if np.isfinite(shift_z[j]) else math.nan
            estimates.append(ParameterEstimate(parameter=p, value=x, stderr=abs(p.dx_dz(x)) * sigma_z[j],
                                               ci95=(min(ci), max(ci)), initial=p.x0, at_bound=at_bound,
                                               value_default_numerics=p.from_z(z0), numerical_shift=shift))
        cov[~identifiable, :] = np.nan
        cov[:, ~identifiable] = np.nan
        return estimates, cov


def quantile95(dof: int) -> float:
    """Two-sided 95 % quantile: Student t with ``dof`` degrees of freedom; with none left
    (as many parameters as residuals, e.g. a target fit) the sigmas are taken as absolute
    and the normal quantile applies."""
    return float(stats.t.ppf(0.975, dof)) if dof > 0 else float(stats.norm.ppf(0.975))


def run_fit(case, comm=None, quiet: bool = False) -> FitResult:
    """Fit ``case`` (a :class:`~cait_fem.fit.config.FitCase`); collective over ``comm``."""
    fitter = Fitter(case, comm, quiet)
    try:
        return fitter.run()
    finally:
        fitter.ensemble.close()
