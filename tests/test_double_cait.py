"""Double CAIT (issue 14 item 1; docs/model.md section 3.9, docs/fitting.md "Sequential
experiments"): Rb+ @ Li3B7O12, then Cs+ @ Rb+ @ Li3B7O12, with D(Rb+) depending on the Cs+
fraction in step 2 (LogLinearD); the hand-over of the state between the steps; a fit of
both steps together, step 2 starting from step 1's model state at every evaluation."""

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
from support.compare import approx
from support.fit_files import fails, load

import cait_fem as cf
from cait_fem.analysis.measured import write_profile_csv
from cait_fem.case.case_file import dump_case, load_case
from cait_fem.physics.ops import NUMPY

DEMOS = Path(__file__).resolve().parents[1] / "demos"
SED = cf.GaussianSED(fwhm_eV=0.25, vacancy_fraction=0.10, D_bulk_m2_s=1e-17)
LI = cf.Species("Li", "native", SED)
RB1 = cf.Species("Rb", "foreign", cf.ConstantD(D_m2_s=2e-21))
TRUE = {"D_Rb": 2e-21, "decades": 1.0, "D_Cs": 6e-22}
RB2 = cf.Species("Rb", "foreign", cf.LogLinearD(D_m2_s=TRUE["D_Rb"], fractions=("Cs",), decades=(TRUE["decades"],)))
CS = cf.Species("Cs", "foreign", cf.ConstantD(D_m2_s=TRUE["D_Cs"]))
GLASS = cf.Glass(n_bg_m3=1.41e28, eps_r=8.0, temperature_K=300.0, thickness_m=2e-6)
# a coarse explicit mesh: these tests are about the hand-over, not the profiles' accuracy
MESH = cf.MeshSettings(front_spacing_m=0.5e-9, fine_depth_m=60e-9, growth_ratio=1.2, bulk_spacing_m=0.5e-6,
                      estimate_spatial_error=False)
BEAM = dict(current_density_A_m2=1e-2, E_kin_eV=10.0, sigma_E_eV=0.5)


def step(species, beam_species, t_end_s, tol=3e-3, mesh=MESH, current=1e-2):
    return cf.Experiment(glass=GLASS, species=species, mesh=mesh,
                         front=cf.Beam(**{**BEAM, "current_density_A_m2": current}, species=beam_species),
                         run=cf.RunSettings(t_end_s=t_end_s, time_tolerance=tol), name=f"{beam_species}_step")


def amounts(depth_m, theta):
    """Per species: the content [nm] (native: the deficit 1 - theta), trapezoidal on the nodes."""
    return np.array([np.trapezoid(1.0 - t if i == 0 else t, depth_m) * 1e9 for i, t in enumerate(theta)])


# -- the law of several fractions ---------------------------------------------------------

def test_log_linear_law_against_hand_calculation():
    law = cf.LogLinearD(D_m2_s=2e-21, fractions=("Cs", "Li"), decades=(1.5, -0.5), D_min_m2_s=1e-40)
    # log10 D = log10 2e-21 + 1.5 * 0.4 - 0.5 * 0.2 = log10 2e-21 + 0.5
    D = law.diffusivity_m2_s(0.3, 300.0, {"Cs": 0.4, "Li": 0.2})
    assert float(D) == approx(2e-21 * 10**0.5 + 1e-40, rel=1e-13)
    # the dimensionless form the solver evaluates: D / D_ref with D_ref = 1e-17
    p = law.nondim_parameters(300.0, 1e-17)
    rel = law.relative_of(0.3, {"Cs": 0.4, "Li": 0.2, "Rb": 0.3}, p, NUMPY)
    assert float(rel) == approx((2e-21 * 10**0.5 + 1e-40) / 1e-17, rel=1e-13)
    # absent fractions are 0
    assert float(law.diffusivity_m2_s(0.9, 300.0)) == approx(2e-21 + 1e-40, rel=1e-13)


@pytest.mark.parametrize("changes, key, fragment", [
    ({"fractions": ()}, "fractions", "non-empty list"),
    ({"fractions": ("Cs", "Cs"), "decades": (1.0, 1.0)}, "fractions", "distinct"),
    ({"decades": (1.0, 2.0)}, "decades", "one finite number per name"),
    ({"decades": (11.0,)}, "decades", "[-10, 10]"),
    ({"decades": (math.nan,)}, "decades", "finite"),
    ({"D_m2_s": 0.0}, "D_m2_s", "> 0"),
])
def test_log_linear_law_validation(changes, key, fragment):
    values = {"D_m2_s": 2e-21, "fractions": ("Cs",), "decades": (1.0,), **changes}
    with pytest.raises(cf.ConfigError) as info:
        cf.LogLinearD(**values, where="species.Rb.diffusion")
    assert f"species.Rb.diffusion.{key}" in str(info.value) and fragment in str(info.value)


def test_log_linear_law_names_species_of_the_case():
    rb = cf.Species("Rb", "foreign", cf.LogLinearD(D_m2_s=2e-21, fractions=("Ag",), decades=(1.0,)))
    with pytest.raises(cf.ConfigError, match=r"species\.Rb\.diffusion\.fractions.*\['Li', 'Rb', 'Cs'\]"):
        step((LI, rb, CS), "Cs", 1.0)


def test_demo_cases_load_and_round_trip(tmp_path):
    e2 = load_case(DEMOS / "double_cait_step2.toml")
    assert [s.name for s in e2.species] == ["Li", "Rb", "Cs"] and e2.beam_species.name == "Cs"
    assert e2.species[1].diffusion == cf.LogLinearD(D_m2_s=2e-21, fractions=("Cs",), decades=(1.0,))
    assert load_case(dump_case(e2, tmp_path / "s2.toml")) == e2
    e1 = load_case(DEMOS / "double_cait_step1.toml")
    # step 1's constant D(Rb+) is step 2's law where no Cs+ is
    assert e1.species[1].diffusion.D_m2_s == e2.species[1].diffusion.D_m2_s


@pytest.mark.dolfinx
def test_jacobian_carries_the_dependence_on_the_other_fraction():
    """The assembled Jacobian (UFL's derivative of the residual) against central
    differences of the residual, along a perturbation of theta_Cs only: with D(Rb+) a
    function of theta_Cs the Rb+ rows respond, and the Jacobian has that response."""
    from mpi4py import MPI

    from dolfinx import fem
    from dolfinx import mesh as dmesh

    from cait_fem.fem.forms import NPPForms
    from cait_fem.mesh import tags

    domain = dmesh.create_interval(MPI.COMM_SELF, 12, [0.0, 60.0])
    fdim = 0
    front = dmesh.locate_entities_boundary(domain, fdim, lambda p: np.isclose(p[0], 0.0))
    back = dmesh.locate_entities_boundary(domain, fdim, lambda p: np.isclose(p[0], 60.0))
    facets = dmesh.meshtags(domain, fdim, np.concatenate([front, back]).astype(np.int32),
                            np.array([tags.BEAM_SPOT, tags.BACK_ELECTRODE], dtype=np.int32))
    # decades = 3: a strong coupling, so that the Rb+ rows clearly respond
    rb = cf.Species("Rb", "foreign", cf.LogLinearD(D_m2_s=2e-21, fractions=("Cs",), decades=(3.0,)))
    forms = NPPForms(domain, facets, step((LI, rb, CS), "Cs", 1.0).physics)
    forms.set_bdf(1.0, (0.0, 0.0, 0.0))  # no storage term: the spatial residual alone
    x = forms.V.tabulate_dof_coordinates()[:, 0]
    rows = np.zeros((x.size, 4))
    rows[:, 0] = -0.8 * np.exp(-x / 30.0)                # w = theta_Li - 1
    rows[:, 1] = 0.5 * np.exp(-((x - 25.0) / 10.0) ** 2)  # Rb+ band
    rows[:, 2] = 0.3 * np.exp(-x / 15.0)                  # Cs+ near the surface
    rows[:, 3] = 0.2 * x / 60.0                           # psi
    u0 = rows.ravel()
    F, J = fem.form(forms.F), fem.form(forms.J)

    def residual(u):
        forms.u.x.array[:] = u
        return fem.assemble_vector(F).array.copy()

    du = np.zeros_like(rows)
    du[:, 2] = 0.05 * np.sin(x / 7.0) + 0.02
    du = du.ravel()
    eps = 1e-4
    fd = (residual(u0 + eps * du) - residual(u0 - eps * du)) / (2 * eps)
    forms.u.x.array[:] = u0
    Jdu = fem.assemble_matrix(J).to_dense() @ du
    rb = np.arange(1, u0.size, 4)
    assert np.abs(fd[rb]).max() > 0.0  # Rb+ responds to theta_Cs ...
    # ... and the Jacobian has that response, to the differences' truncation and round-off
    assert np.allclose(Jdu[rb], fd[rb], rtol=0, atol=1e-4 * np.abs(fd[rb]).max())
    assert np.allclose(Jdu, fd, rtol=0, atol=1e-6 * np.abs(fd).max())
    # with decades = 0 the same perturbation leaves the Rb+ rows alone
    forms.set_parameters(step((LI, cf.Species("Rb", "foreign", cf.LogLinearD(D_m2_s=2e-21, fractions=("Cs",),
                                                                              decades=(0.0,))), CS), "Cs", 1.0))
    still = (residual(u0 + eps * du) - residual(u0 - eps * du)) / (2 * eps)
    assert np.abs(still[rb]).max() < 1e-6 * np.abs(fd[rb]).max()


# -- fit file: initial_from ------------------------------------------------------------------

@pytest.fixture
def fit_dir(tmp_path):
    for i in (1, 2):
        (tmp_path / f"s{i}.toml").write_text((DEMOS / f"double_cait_step{i}.toml").read_text())
    depth = np.arange(1.0, 60.0) * 1e-9
    li = 0.15 + 0.85 * 0.5 * (1.0 + np.tanh((depth * 1e9 - 40.0) / 3.0))
    write_profile_csv(tmp_path / "s1.csv", depth, {"Li": li, "Rb": 1.0 - li})
    write_profile_csv(tmp_path / "s2.csv", depth, {"Li": li, "Rb": 0.5 * (1 - li), "Cs": 0.5 * (1 - li)})
    thick = (DEMOS / "double_cait_step2.toml").read_text().replace("thickness_m = 1e-3", "thickness_m = 2e-3")
    (tmp_path / "thick.toml").write_text(thick)
    return tmp_path


def fit_text(second="s2", initial_from='"one"', first_extra=""):
    return ('[[experiment]]\nname = "one"\ncase = "s1.toml"\ndata = "s1.csv"\n' + first_extra
            + f'[[experiment]]\nname = "two"\ncase = "{second}.toml"\ndata = "s2.csv"\n'
            + (f"initial_from = {initial_from}\n" if initial_from else "")
            + '[fit.parameters]\n"species.Rb.diffusion.D_m2_s" = { min = 1e-23, max = 1e-18, log = true, '
              'shared = true }\n')


def test_initial_from_is_read(fit_dir):
    case = load(fit_dir, fit_text())
    assert case.experiment("two").initial_from == "one" and case.experiment("one").initial_from is None
    from cait_fem.fit.problem import FitProblem
    problem = FitProblem(case)
    assert problem.affects(0, "two") and problem.affects(0, "one")


def test_a_step_depends_on_its_predecessors_parameters(fit_dir):
    from cait_fem.fit.problem import FitProblem
    text = fit_text().replace("shared = true", 'experiments = ["one"]')
    problem = FitProblem(load(fit_dir, text))
    # D_Rb of step 1 only: step 2 starts from step 1's state, so it changes too
    assert problem.free[0].targets == ("one",) and problem.affects(0, "two")


@pytest.mark.parametrize("text, fragments", [
    (fit_text(initial_from='"three"'), ["experiment[1]", "initial_from = 'three'", "earlier", "['one']"]),
    (fit_text(initial_from='"two"'), ["initial_from = 'two'", "earlier"]),
    (fit_text(initial_from="1"), ["initial_from = 1"]),
    (fit_text(second="thick"), ["initial_from = 'one'", "glass.thickness_m = 0.001", "0.002"]),
])
def test_initial_from_refused(fit_dir, text, fragments):
    fails(fit_dir, text, *fragments)


def test_initial_from_refuses_a_step_that_drops_a_foreign_species(fit_dir):
    # step 1 after step 2: Cs would vanish at the hand-over
    text = ('[[experiment]]\nname = "two"\ncase = "s2.toml"\ndata = "s2.csv"\n'
            '[[experiment]]\nname = "one"\ncase = "s1.toml"\ndata = "s1.csv"\ninitial_from = "two"\n'
            '[fit.parameters]\n"species.Rb.diffusion.D_m2_s" = { min = 1e-23, max = 1e-18, log = true, '
            'shared = true }\n')
    fails(fit_dir, text, "experiment[1]", "['Cs'] would be lost")


def test_initial_from_refuses_another_mesh(fit_dir):
    text = (fit_dir / "s2.toml").read_text() + "\n[mesh]\nfront_spacing_m = 0.4e-9\n"
    (fit_dir / "finer.toml").write_text(text)
    fails(fit_dir, fit_text(second="finer"), "initial_from = 'one'", "same [mesh]")


# -- runs -------------------------------------------------------------------------------------

@pytest.mark.dolfinx
def test_hand_over_conserves_every_species():
    """The state handed to step 2 (as the fit hands it over, and as a Result) holds the
    amounts step 1 ended with; with no beam for 0.1 ns, and Newton converged to
    round-off, nothing else moves them."""
    from cait_fem.fit.problem import ForwardOutput
    from cait_fem.run.simulation import Simulation

    r1 = cf.simulate(step((LI, RB1), "Rb", 1800.0))
    before = amounts(r1.depth_m, r1.theta[-1])
    state = ForwardOutput(r1.depth_m, r1.species_names, r1.theta[-1], r1.time_s, 0.0, 0.0, 0.0, 0,
                          potential_V=r1.potential_V[-1])
    # 0.1 ns: the back electrode still passes the ~1e-2 A/m^2 step 1 ended with, which in
    # 1 us would already change the Li+ amount by 5e-10 of itself
    short = step((LI, RB2, CS), "Cs", 1e-10, current=0.0)
    short = dataclasses.replace(short, run=dataclasses.replace(short.run, dt_initial_s=1e-10),
                                solver=cf.SolverSettings(newton_atol=1e-12, potential_atol=1e-10))
    sim = Simulation(short)
    for initial in (state.as_initial(), r1):
        r2 = sim.run(initial=initial)
        after = amounts(r2.depth_m, r2.theta[-1])
        assert after[:2] == approx(before, rel=1e-12)
        assert after[2] == 0.0


def _max_difference(tol):
    t1 = 1800.0
    r1 = cf.simulate(step((LI, RB1), "Rb", t1, tol))
    r2 = cf.simulate(step((LI, RB1), "Rb", t1, tol), initial=r1)
    once = cf.simulate(step((LI, RB1), "Rb", 2 * t1, tol))
    return float(np.abs(r2.theta[-1] - once.theta[-1]).max())


@pytest.mark.dolfinx
def test_second_step_with_the_same_beam_continues_the_first():
    """M2 = M1: step 2 is step 1 run longer, to the solver's tolerance: the difference
    comes from the time integration (step 2 restarts BDF with small steps), so it falls
    with the time tolerance."""
    coarse, fine = _max_difference(3e-3), _max_difference(3e-4)
    assert coarse < 3e-3 and fine < 3e-4  # max |theta difference| within the time tolerance
    assert fine < coarse / 3


# -- the sequential fit ---------------------------------------------------------------------

NOISE = 0.02  # 1-sigma of the synthetic fractions


@pytest.fixture(scope="module")
def synthetic(tmp_path_factory):
    return write_synthetic(tmp_path_factory.mktemp("double"))


FIT_TEXT = ('[[experiment]]\nname = "one"\ncase = "s1.toml"\ndata = "s1.csv"\n'
            f'theta_sigma = {NOISE}\n'
            '[[experiment]]\nname = "two"\ncase = "s2.toml"\ndata = "s2.csv"\ninitial_from = "one"\n'
            f'theta_sigma = {NOISE}\n'
            '[fit]\nmax_evaluations = 30\npresolve = false\n[fit.parameters]\n'
            '"species.Rb.diffusion.D_m2_s" = { initial = 1.2e-21, min = 1e-23, max = 1e-18, log = true, '
            'shared = true }\n'
            '"species.Rb.diffusion.decades" = { initial = [0.5], min = -3.0, max = 3.0 }\n'
            '"species.Cs.diffusion.D_m2_s" = { initial = 3e-22, min = 1e-23, max = 1e-18, log = true }\n')


def write_synthetic(d):
    """Both steps' "measured" profiles from finer numerics than the fit's (0.125 nm and
    time tolerance 2.5e-4 against 0.25 nm and 1e-3) with noise. Fractions, not counts: the
    counts' normalisation (tested in test_measured.py) would add its own error to the
    foreign fractions, which trades off against D(Cs+)."""
    fine = dataclasses.replace(MESH, front_spacing_m=0.125e-9)
    e1, e2 = (step((LI, RB1), "Rb", 3600.0, mesh=fine, tol=2.5e-4),
              step((LI, RB2, CS), "Cs", 3600.0, mesh=fine, tol=2.5e-4))
    r1 = cf.simulate(e1)
    r2 = cf.simulate(e2, initial=r1)
    rng = np.random.default_rng(7)
    z = np.arange(1.0, 80.0, 1.0) * 1e-9
    noisy = lambda r, i: np.interp(z, r.depth_m, r.theta[-1, i]) + rng.normal(0.0, NOISE, z.size)  # noqa: E731
    write_profile_csv(d / "s1.csv", z, {"Li": noisy(r1, 0), "Rb": noisy(r1, 1)})
    write_profile_csv(d / "s2.csv", z, {s: noisy(r2, i) for i, s in enumerate(r2.species_names)})
    model = dataclasses.replace(MESH, front_spacing_m=0.25e-9)
    for name, e in (("s1", step((LI, RB1), "Rb", 3600.0, 1e-3, model)),
                    ("s2", step((LI, RB2, CS), "Cs", 3600.0, 1e-3, model))):
        dump_case(e, d / f"{name}.toml")
    return d


@pytest.mark.dolfinx
@pytest.mark.slow
def test_sequential_fit_recovers_both_steps_parameters(synthetic):
    from cait_fem.fit import run_fit

    case = load(synthetic, FIT_TEXT)
    result = run_fit(case, quiet=True)
    report = {p: (result.estimate(p).value, result.estimate(p).ci95) for p in
              ("species.Rb.diffusion.D_m2_s", "species.Rb.diffusion.decades[0]", "species.Cs.diffusion.D_m2_s")}
    for path, true in (("species.Rb.diffusion.D_m2_s", TRUE["D_Rb"]), ("species.Rb.diffusion.decades[0]",
                                                                      TRUE["decades"]),
                       ("species.Cs.diffusion.D_m2_s", TRUE["D_Cs"])):
        est = result.estimate(path)
        lo, hi = est.ci95
        assert lo <= true <= hi, (path, report)
        if "decades" not in path:  # the Cs+ dependence of D(Rb+) is weakly determined: its ci95 only
            assert est.value == approx(true, rel=0.1), report
    assert result.estimate("species.Rb.diffusion.D_m2_s").parameter.targets == ("one", "two")


def test_demo_fit_file_loads():
    from cait_fem.fit import load_fit_case
    case = load_fit_case(DEMOS / "double_cait_fit.toml")
    two = case.experiment("Cs_step2")
    assert two.initial_from == "Rb_step1" and two.data.layout == "counts"
    assert set(two.data.theta) == {"Li", "Rb", "Cs"}
    # the normalised counts give back the fractions: Li + Rb + Cs = 1 in the replaced zone
    zone = two.data.theta["Li"] < 0.5
    total = sum(two.data.theta[s][zone] for s in ("Li", "Rb", "Cs"))
    assert float(np.abs(total - 1.0).mean()) < 0.03


@pytest.mark.dolfinx
@pytest.mark.mpi
def test_sequential_fit_under_mpirun_equals_serial(synthetic, tmp_path):
    """Two ensemble groups: each batch of solves runs in waves (step 1, then step 2 from
    it) distributed over the groups; the optimiser's path and result are the serial ones."""
    import json

    from support.paths import run_cli

    path = synthetic / "fit_mpi.toml"
    path.write_text(FIT_TEXT.replace("max_evaluations = 30", "max_evaluations = 4"))
    results = {}
    for n in (0, 2):
        out = tmp_path / f"out{n}"
        proc = run_cli(["fit", str(path), "-o", str(out), "--quiet"], mpi=n)
        assert proc.returncode == 0, proc.stderr
        results[n] = json.loads((out / "fit.json").read_text())
    assert results[2]["parallel"]["groups"] == 2
    for key, entry in results[0]["parameters"].items():
        serial = entry.get("value", entry.get("per_experiment", {}).get("two", {}).get("value"))
        parallel = results[2]["parameters"][key].get("value", results[2]["parameters"][key]
                                                     .get("per_experiment", {}).get("two", {}).get("value"))
        assert parallel == approx(serial, rel=1e-10), key
    assert results[2]["cost"] == approx(results[0]["cost"], rel=1e-12)


def test_fitted_decades_of_three_fractions_get_no_table_smoothing(fit_dir):
    """The smoothing of fitted D(theta) tables applies to tabulated D_m2_s knots only: the
    decades of a log-linear law are not a table over theta."""
    from cait_fem.fit.problem import FitProblem
    text = (fit_dir / "s2.toml").read_text().replace('fractions = ["Cs"], decades = [1.0]',
                                                      'fractions = ["Cs", "Li", "Rb"], decades = [1.0, -0.5, 0.2]')
    (fit_dir / "three.toml").write_text(text)
    case = load(fit_dir, fit_text(second="three") + '"species.Rb.diffusion.decades" = { min = -3.0, max = 3.0, '
                'experiments = ["two"] }\n')
    problem = FitProblem(case)
    assert [p.label for p in problem.free][-3:] == [f"species.Rb.diffusion.decades[{k}]@two" for k in range(3)]
    assert problem.regularisation(problem.x0).size == 0
