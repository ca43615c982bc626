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
physical standard error is |dx/dz| sigma_z. The 95 % interval is z +- t_0.975(m - n)
sigma_z mapped back to x, so it is asymmetric (and positive) for log-scale parameters.
"""

from __future__ import annotations

import math
import sys
import time
from dataclasses import replace

from mpi4py import MPI

import numpy as np
from scipy import optimize, stats

from cait_fem.errors import SolverError

from .ensemble import Ensemble, Task
from .problem import FitProblem, ForwardOutput
from .result import FitResult, ParameterEstimate

PRESOLVE_EVALUATIONS = 10
PRESOLVE_TOLERANCE_FACTOR = 4.0
PRESOLVE_RMS = 1.0  # stage 1 ends below this RMS metric residual (1.5 cost FIT3 one more Jacobian)


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
        self.ensemble = Ensemble({e.name: e.experiment for e in case.experiments}, self.comm,
                                 case.settings.groups)
        self.progress = FitProgress(self.comm, quiet)
        self._cache: dict[bytes, list[ForwardOutput]] = {}
        self.evaluations = 0
        self.jacobian_evaluations = 0
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
        """Forward differences; all perturbed solves of this Jacobian in one ensemble batch."""
        self.jacobian_evaluations += 1
        z = np.asarray(z, float)
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
        estimates, cov = self._uncertainties(sol)
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
        )
        self.progress.message(f"done: cost {result.cost:.6g}, {result.evaluations} evaluations, "
                              f"{result.forward_solves} forward solves, {result.wall_time_s:.1f} s ({sol.message})")
        return result

    def _uncertainties(self, sol):
        J, m, n = sol.jac, sol.fun.size, sol.x.size
        dof = m - n
        s2 = 1.0 if self.case.settings.absolute_sigma or dof <= 0 else float(sol.fun @ sol.fun) / dof
        _, sv, Vt = np.linalg.svd(J, full_matrices=False)
        keep = sv > sv[0] * 1e-10 if sv.size and sv[0] > 0 else np.zeros_like(sv, bool)
        cov = (Vt[keep].T / sv[keep] ** 2) @ Vt[keep] * s2
        identifiable = np.ones(n, bool)
        if not keep.all():  # directions of a zero singular value have no finite error
            null = Vt[~keep]
            identifiable = np.abs(null).max(axis=0) < 1e-6
        sigma_z = np.where(identifiable, np.sqrt(np.clip(np.diag(cov), 0, None)), np.inf)
        tq = quantile95(dof)
        estimates = []
        lo_b, hi_b = self.problem.bounds
        for j, p in enumerate(self.problem.free):
            z = sol.x[j]
            x = p.from_z(z)
            at_bound = bool(sol.active_mask[j] != 0) or not (lo_b[j] < z < hi_b[j])
            half = tq * sigma_z[j]
            ci = (p.from_z(z - half), p.from_z(z + half)) if math.isfinite(half) else (-math.inf, math.inf)
            if p.spec.log and not math.isfinite(half):
                ci = (0.0, math.inf)
            estimates.append(ParameterEstimate(parameter=p, value=x, stderr=abs(p.dx_dz(x)) * sigma_z[j],
                                               ci95=(min(ci), max(ci)), initial=p.x0, at_bound=at_bound))
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
