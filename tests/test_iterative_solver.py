"""The Newton-Krylov option (solver.linear_solver = "iterative", docs/numerics.md "Linear
solvers at scale") on a small graded 2D section: same solution as the direct solver to the
Newton tolerance, Krylov iterations counted, a Krylov failure is a Newton failure, the
preconditioner options reach PETSc, and the settings are validated."""

import numpy as np
import pytest

import cait_fem as cf
from cait_fem.case.experiment import SolverSettings
from cait_fem.errors import ConfigError, SolverError

THICKNESS_NM = 1e4
WIDTH_NM = 2e3
SPOT_NM = 1e3  # the beam spot covers half of the front: a genuinely 2D field

SED = cf.GaussianSED(fwhm_eV=0.25, vacancy_fraction=0.10, D_bulk_m2_s=1e-17)


def _experiment(solver=SolverSettings(), **run):
    return cf.Experiment(
        glass=cf.Glass(n_bg_m3=1.41e28, eps_r=8.0, temperature_K=300.0, thickness_m=THICKNESS_NM * 1e-9),
        species=(cf.Species("Li", "native", SED), cf.Species("K", "foreign", cf.ConstantD(D_m2_s=5.6e-21))),
        front=cf.Beam(current_density_A_m2=1e-2, E_kin_eV=10.0, sigma_E_eV=0.5),
        run=cf.RunSettings(**{"t_end_s": 1.0, "scheme": "bdf2", "dt_initial_s": 1e-5, **run}),
        solver=solver,
    )


def _graded(h0, growth, h_max, length):
    x, h = [0.0], h0
    while x[-1] + h < length:
        x.append(x[-1] + h)
        h = min(h * growth, h_max)
    return np.array(x[:-1] + [length]) if length - x[-1] < 0.5 * h else np.array(x + [length])


def _sample_mesh(lateral_jitter_nm=0.0):
    """Triangles, 0.5 nm deep at the front growing to 1 um (aspect ratios up to 1e3),
    laterally 100-500 nm; depth is the last coordinate, in nm. With ``lateral_jitter_nm``
    the interior nodes move laterally at random: the mesh no longer has depth columns."""
    from mpi4py import MPI

    from dolfinx import mesh as dmesh

    from cait_fem.fem.forms import BACK_TAG, FRONT_TAG

    depth = _graded(0.5, 1.35, 1e3, THICKNESS_NM)
    lateral = _graded(100.0, 1.5, 500.0, WIDTH_NM)
    domain = dmesh.create_rectangle(MPI.COMM_WORLD, [[0.0, 0.0], [1.0, 1.0]],
                                    [len(lateral) - 1, len(depth) - 1], dmesh.CellType.triangle)
    x = domain.geometry.x
    x[:, 0] = np.interp(x[:, 0], np.linspace(0.0, 1.0, len(lateral)), lateral)
    x[:, 1] = np.interp(x[:, 1], np.linspace(0.0, 1.0, len(depth)), depth)
    if lateral_jitter_nm:
        interior = (x[:, 0] > 1e-9) & (x[:, 0] < WIDTH_NM - 1e-9)
        x[interior, 0] += np.random.default_rng(4).uniform(-lateral_jitter_nm, lateral_jitter_nm, int(interior.sum()))
    fdim = 1
    front = dmesh.locate_entities_boundary(domain, fdim, lambda p: np.isclose(p[1], 0.0) & (p[0] <= SPOT_NM))
    back = dmesh.locate_entities_boundary(domain, fdim, lambda p: np.isclose(p[1], THICKNESS_NM))
    idx = np.concatenate([front, back]).astype(np.int32)
    vals = np.concatenate([np.full(len(front), FRONT_TAG), np.full(len(back), BACK_TAG)]).astype(np.int32)
    order = np.argsort(idx)
    return domain, dmesh.meshtags(domain, fdim, idx[order], vals[order])


@pytest.fixture(scope="module")
def mesh():
    return _sample_mesh()


@pytest.fixture(scope="module")
def unlayered_forms():
    from cait_fem.fem.forms import NPPForms
    domain, facet_tags = _sample_mesh(lateral_jitter_nm=30.0)  # under a third of the spacing
    exp = _experiment()
    return NPPForms(domain, facet_tags, exp.physics)


@pytest.fixture(scope="module")
def forms(mesh):
    from cait_fem.fem.forms import NPPForms
    domain, facet_tags = mesh
    exp = _experiment()
    return NPPForms(domain, facet_tags, exp.physics)


def _run(forms, settings, targets_s, schedule=None, **run):
    """Adaptive BDF from the pristine glass (replaying ``schedule`` if given); returns the
    final state, the accepted step ends and the stepper."""
    from mpi4py import MPI

    from cait_fem.solver.newton import NewtonSolver
    from cait_fem.solver.timestepping import AdaptiveBDF
    exp = _experiment(settings, **run)
    forms.u.x.array[:] = 0.0
    newton = NewtonSolver(forms, forms.dirichlet_bcs(), settings, MPI.COMM_WORLD)
    sc = forms.scales
    stepper = AdaptiveBDF(forms, newton, exp.run, sc.time_s, forms.V.dofmap.index_map.size_local, MPI.COMM_WORLD)
    ends, its = [], []

    def on_step(step):
        ends.append(step.t)
        its.append(step.newton_iterations)

    stepper.integrate([t / sc.time_s for t in targets_s], on_step, schedule)
    return forms.u.x.array.copy(), ends, its, stepper, newton


def _split(state, forms):
    rows = state.reshape(-1, forms.psi_index + 1)
    return rows[:, : forms.psi_index], rows[:, forms.psi_index]


@pytest.mark.dolfinx
def test_iterative_gives_the_direct_solution(forms):
    """Through the charging of the surface (1e-5 s .. 1 s, psi_s ~ 2 k_B T/e): on the same
    steps, the Krylov solution equals the LU one to the Newton tolerances, and Newton takes
    the same iterations (inexact Newton with krylov_rtol = 1e-8 is as good as exact)."""
    direct, ends, its_direct, st_direct, _ = _run(forms, SolverSettings(), [1.0])
    assert len(ends) > 5
    iterative, ends_it, its_it, st_it, newton = _run(
        forms, SolverSettings(linear_solver="iterative"), [1.0], schedule=ends)
    assert np.allclose(ends_it, ends, rtol=1e-14)
    c_d, psi_d = _split(direct, forms)
    c_i, psi_i = _split(iterative, forms)
    assert np.max(np.abs(psi_d)) > 1.0  # the surface has charged: a nontrivial test
    assert np.max(np.abs(c_i - c_d)) < 1e-7
    assert np.max(np.abs(psi_i - psi_d)) < 1e-5
    assert sum(its_it) <= sum(its_direct) + 1 and st_it.stats.newton_failures == 0
    # Krylov iterations are counted: many per Newton iteration, unlike a direct solve (1 each)
    assert st_it.stats.krylov_iterations == newton.linear_iterations
    assert st_it.stats.krylov_iterations > 5 * st_it.stats.newton_iterations
    assert st_direct.stats.krylov_iterations == st_direct.stats.newton_iterations


@pytest.mark.dolfinx
def test_krylov_failure_is_a_newton_failure(forms):
    """One GMRES iteration cannot reach krylov_rtol = 1e-12: SNES must stop with
    DIVERGED_LINEAR_SOLVE and the solve count as failed, and the stepper must give up
    (after shrinking the step) instead of accepting the unconverged update."""
    from mpi4py import MPI

    from petsc4py import PETSc

    from cait_fem.solver.newton import NewtonSolver
    settings = SolverSettings(linear_solver="iterative", krylov_rtol=1e-12, krylov_max_iterations=1)
    forms.u.x.array[:] = 0.0
    forms.u_n.x.array[:] = 0.0
    forms.u_nm1.x.array[:] = 0.0
    forms.set_bdf(1e-3 / forms.scales.time_s, (1.0, -1.0, 0.0))
    newton = NewtonSolver(forms, forms.dirichlet_bcs(), settings, MPI.COMM_WORLD)
    converged, _its, reason = newton.solve()
    assert not converged
    assert reason == PETSc.SNES.ConvergedReason.DIVERGED_LINEAR_SOLVE
    assert newton.ksp.getConvergedReason() == PETSc.KSP.ConvergedReason.DIVERGED_MAX_IT
    with pytest.raises(SolverError, match="Newton did not converge"):
        _run(forms, settings, [1e-3], max_retries=2)


@pytest.mark.dolfinx
def test_ilu_levels_reach_petsc(forms):
    """solver.ilu_levels reaches the sub-solvers, which read their options only at the
    first PC set-up inside the solve: ILU(2) factorises with more fill than ILU(0)."""
    from mpi4py import MPI

    from cait_fem.solver.newton import NewtonSolver
    nnz = []
    for levels in (0, 2):
        settings = SolverSettings(linear_solver="iterative", ilu_levels=levels)
        forms.u.x.array[:] = 0.0
        forms.set_bdf(1e-3 / forms.scales.time_s, (1.0, -1.0, 0.0))
        newton = NewtonSolver(forms, forms.dirichlet_bcs(), settings, MPI.COMM_WORLD)
        assert newton.solve()[0]
        (sub,) = newton.ksp.getPC().getBJacobiSubKSP()
        assert sub.getPC().getType() == "ilu"
        nnz.append(sub.getPC().getFactorMatrix().getInfo()["nz_used"])
    assert nnz[1] > 1.2 * nnz[0]


@pytest.mark.parametrize("key, value, words", [
    ("linear_solver", "krylov", ["solver.linear_solver = 'krylov'", '"iterative"', '"mumps"']),
    ("preconditioner", "gamg", ["solver.preconditioner = 'gamg'", '"ilu"', '"asm"']),
    ("preconditioner", "hypre", ["solver.preconditioner = 'hypre'", '"ilu"']),
    ("ilu_levels", -1, ["solver.ilu_levels = -1", "0 to 4"]),
    ("ilu_levels", 1.5, ["solver.ilu_levels = 1.5", "integer"]),
    ("krylov_rtol", 0.0, ["solver.krylov_rtol = 0.0", "(0, 1)"]),
    ("krylov_rtol", 1.0, ["solver.krylov_rtol = 1.0", "(0, 1)"]),
    ("krylov_max_iterations", 0, ["solver.krylov_max_iterations = 0", "positive integer"]),
])
def test_settings_are_validated(key, value, words):
    with pytest.raises(ConfigError) as err:
        SolverSettings(**{key: value})
    for word in words:
        assert word in str(err.value)


def test_case_file_solver_table():
    """The [solver] table of a case file takes the new keys (ints for floats, too) and
    rejects unknown preconditioners by name."""
    from support.cases import CONTRACT_CASE_TOML

    from cait_fem.case import case_file as config
    try:
        import tomllib
    except ModuleNotFoundError:  # Python 3.10
        import tomli as tomllib

    d = tomllib.loads(CONTRACT_CASE_TOML)
    d["solver"] = {"linear_solver": "iterative", "preconditioner": "asm", "krylov_max_iterations": 300,
                   "ilu_levels": 2}
    s = config.experiment_from_dict(d).solver
    assert (s.linear_solver, s.preconditioner, s.krylov_max_iterations, s.ilu_levels) == ("iterative", "asm", 300, 2)
    d["solver"] = {"linear_solver": "iterative", "preconditioner": "fieldsplit"}
    with pytest.raises(ConfigError, match="solver.preconditioner = 'fieldsplit'"):
        config.experiment_from_dict(d)


# -- CPR (solver.preconditioner = "cpr", cait_fem.solver.cpr) ------------------------------------

def _dense(mat):
    """A dense copy (petsc4py's convert without a target converts in place)."""
    from petsc4py import PETSc
    return mat.convert("dense", PETSc.Mat()).getDenseArray().copy()


def _combined_potential_rows(forms, J):
    """sum_i z_i (species row i) + (a0/dt) (Poisson row) of every node, as a dense
    matrix (nodes x all dofs): the decoupled potential equation of cait_fem.solver.cpr."""
    nc = forms.psi_index + 1
    A = _dense(J).reshape(-1, nc, J.getSize()[1])
    weights = np.array(forms.charges + [forms.a0.value * forms.inv_dt.value])
    return np.einsum("c,ncj->nj", weights, A)


@pytest.mark.dolfinx
def test_cpr_potential_operator_is_the_decoupled_potential_block(forms):
    """The derivation of the CPR first stage, checked on the assembled Jacobian at the
    pristine glass (no drift, so the exponential fitting drops out of the derivative):
    the combined potential rows restricted to the potential columns are A_p (the
    conductivity-weighted Laplacian plus the Robin term of the beam) to round-off, and
    their species columns carry no storage term (they do not change with dt)."""
    from dolfinx import fem
    from dolfinx.fem.petsc import assemble_matrix

    from cait_fem.solver.cpr import CPRPreconditioner

    forms.u.x.array[:] = 0.0
    cpr = CPRPreconditioner(forms, ilu_levels=0, prefix="test_cpr_block_")
    J_form = fem.form(forms.J)
    combined = []
    for dt in (1e-3, 1.0):
        forms.set_bdf(dt / forms.scales.time_s, (1.0, -1.0, 0.0))
        J = assemble_matrix(J_form)  # no Dirichlet rows: every row is a physical equation
        J.assemble()
        combined.append(_combined_potential_rows(forms, J))
        bs, p = forms.layout.block_size, forms.layout.psi
        poisson_species = _dense(J).reshape(-1, bs, J.getSize()[1])[:, p, :]
        poisson_species = poisson_species.reshape(poisson_species.shape[0], -1, bs)[:, :, :p]
        A = _dense(cpr.assemble_potential())  # rows/columns: the nodes cpr.nodes
        free = np.setdiff1d(np.arange(len(A)), cpr.fixed)  # Dirichlet rows are identity rows in A_p
        p, nc = forms.psi_index, forms.psi_index + 1
        block = combined[-1][:, p::nc][cpr.nodes][:, cpr.nodes]
        assert np.abs(A).max() > 0 and len(free) > 0.9 * len(A)
        np.testing.assert_allclose(block[np.ix_(free, free)], A[np.ix_(free, free)], rtol=0,
                                   atol=1e-10 * np.abs(A).max())
    # the storage each combined row would carry without the cancellation: (a0/dt) M
    # (the Poisson row's species entries are -z_j M), largest at the shorter step
    nc = forms.psi_index + 1
    storage = (1.0 / (1e-3 / forms.scales.time_s)) * np.abs(poisson_species).max()
    species_columns = [c.reshape(c.shape[0], -1, nc)[:, :, :forms.psi_index] for c in combined]
    difference = np.abs(species_columns[0] - species_columns[1]).max()
    assert np.abs(species_columns[0]).max() > 0
    assert difference < 1e-13 * storage  # round-off of the cancelled storage, no storage left
    cpr.destroy()


@pytest.mark.dolfinx
def test_cpr_gives_the_direct_solution_in_a_few_iterations(forms):
    """Through the charging of the surface: the CPR-preconditioned Krylov solution equals
    the LU one to the Newton tolerances on the same steps, with a few Krylov iterations
    per Newton iteration where block ILU needs tens."""
    direct, ends, its_direct, _, _ = _run(forms, SolverSettings(), [1.0])
    ilu = _run(forms, SolverSettings(linear_solver="iterative"), [1.0], schedule=ends)[3]
    cpr_state, ends_c, its_c, st_c, newton = _run(
        forms, SolverSettings(linear_solver="iterative", preconditioner="cpr", ilu_levels=0), [1.0], schedule=ends)
    assert np.allclose(ends_c, ends, rtol=1e-14)
    c_d, psi_d = _split(direct, forms)
    c_c, psi_c = _split(cpr_state, forms)
    assert np.max(np.abs(psi_d)) > 1.0
    assert np.max(np.abs(c_c - c_d)) < 1e-7
    assert np.max(np.abs(psi_c - psi_d)) < 1e-5
    assert sum(its_c) <= sum(its_direct) + 1 and st_c.stats.newton_failures == 0
    assert newton.ksp.getPC().getType() == "python"
    per_newton = st_c.stats.krylov_iterations / st_c.stats.newton_iterations
    assert per_newton < 5
    assert st_c.stats.krylov_iterations < 0.25 * ilu.stats.krylov_iterations


@pytest.mark.dolfinx
def test_cpr_on_a_mesh_without_depth_columns_uses_algebraic_multigrid(forms, unlayered_forms):
    """The column multigrid needs depth columns; on any other mesh the potential stage
    falls back to GAMG, and CPR still gives the direct solution in a few iterations."""
    from cait_fem.solver.cpr import CPRPreconditioner

    layered = CPRPreconditioner(forms, ilu_levels=0, prefix="test_layered_")
    assert layered.n_layers == len(np.unique(forms.domain.geometry.x[:, 1]))
    layered.destroy()
    direct, ends, _, _, _ = _run(unlayered_forms, SolverSettings(), [1.0])
    state, _, _, stepper, newton = _run(unlayered_forms, SolverSettings(
        linear_solver="iterative", preconditioner="cpr", ilu_levels=0), [1.0], schedule=ends)
    assert newton.cpr.n_layers is None
    assert newton.cpr.potential.getPC().getType() == "gamg"
    c_d, psi_d = _split(direct, unlayered_forms)
    c_c, psi_c = _split(state, unlayered_forms)
    assert np.max(np.abs(psi_d)) > 1.0
    assert np.max(np.abs(c_c - c_d)) < 1e-7 and np.max(np.abs(psi_c - psi_d)) < 1e-5
    assert stepper.stats.krylov_iterations < 5 * stepper.stats.newton_iterations
