"""Method of manufactured solutions for the coupled, concentration-dependent NPP system.

Exact smooth fields (native deviation w, foreign theta_f, potential psi) are chosen on the
dimensionless interval [0, 1]; UFL derives the source terms from the *continuous*
equations (no stabilisation term), the discrete problem (exponentially fitted fluxes,
lumped storage, SED diffusivity with its exact Jacobian) is solved by Newton on four
uniform meshes, and the L2 errors must fall at second order, the H1 error of the
potential at first order.
"""

import math

import numpy as np
import pytest
from scipy import constants as sc

import cait_fem as cf
from cait_fem.fem.scales import LENGTH_SCALE_M, Scales

# DOLFINx is imported inside the tests, so that collecting this module needs none.
pytestmark = pytest.mark.dolfinx

LAMBDA2 = 0.05  # dimensionless (lambda_D / L)^2: space charge and drift both matter


def _experiment(z_foreign: int, flux: str = "ideal"):
    T, eps_r = 300.0, 8.0
    n_bg = sc.epsilon_0 * eps_r * sc.k * T / (sc.e**2 * LENGTH_SCALE_M**2 * LAMBDA2)
    glass = cf.Glass(n_bg_m3=n_bg, eps_r=eps_r, temperature_K=T, thickness_m=LENGTH_SCALE_M)
    native = cf.Species("Li", "native", cf.GaussianSED(fwhm_eV=0.15, vacancy_fraction=0.1,
                                                        D_bulk_m2_s=1e-17))
    foreign = cf.Species("M", "foreign", cf.ConstantD(D_m2_s=4e-18), charge_number=z_foreign)
    return cf.Experiment(glass=glass, species=(native, foreign),
                         front=cf.CurrentFront(current_density_A_m2=0.0),
                         run=cf.RunSettings(t_end_s=1.0), flux=flux)


# Exact fields and their first two x-derivatives, in numpy (dimensionless).
def _fields(x):
    w = -0.5 + 0.35 * np.cos(np.pi * x)               # theta_native in [0.15, 0.85]
    dw = -0.35 * np.pi * np.sin(np.pi * x)
    d2w = -0.35 * np.pi**2 * np.cos(np.pi * x)
    f = 0.4 + 0.3 * np.sin(2.0 * x)
    df = 0.6 * np.cos(2.0 * x)
    d2f = -1.2 * np.sin(2.0 * x)
    psi = 3.0 * np.sin(1.5 * x) + x**2
    dpsi = 4.5 * np.cos(1.5 * x) + 2.0 * x
    d2psi = -6.75 * np.sin(1.5 * x) + 2.0
    return (w, dw, d2w), (f, df, d2f), (psi, dpsi, d2psi)


def _sources(exp, scales, x):
    """f_i = div J_i (continuous flux), f_psi = -lambda^2 psi'' - rho, with D and dD/dtheta
    from the laws' exact numpy implementations: an independent check of the UFL path."""
    (w, dw, d2w), (f, df, d2f), (psi, dpsi, d2psi) = _fields(x)
    T, D_ref = exp.glass.temperature_K, scales.D_ref_m2_s
    out = []
    for s, (th, dth, d2th) in zip(exp.species, [(1.0 + w, dw, d2w), (f, df, d2f)]):
        z = s.charge_number
        D = s.diffusion.diffusivity_m2_s(th, T) / D_ref
        dD = s.diffusion.dD_dtheta_m2_s(th, T) / D_ref
        G, dG = 1.0, 0.0
        if exp.flux == "thermodynamic":
            params, eps = s.diffusion.nondim_parameters(T, D_ref), 1e-6
            G = s.diffusion.thermodynamic_factor(th, params)
            dG = (s.diffusion.thermodynamic_factor(th + eps, params)
                  - s.diffusion.thermodynamic_factor(th - eps, params)) / (2 * eps)
        # J = -D (G theta' + z theta psi'), so div J = -(d(D G)/dtheta theta'^2 + D G theta''
        #      + z [dD/dtheta theta' theta psi' + D (theta' psi' + theta psi'')])
        out.append(-((dD * G + D * dG) * dth**2 + D * G * d2th
                     + z * (dD * dth * th * dpsi + D * (dth * dpsi + th * d2psi))))
    z_n, z_f = (sp.charge_number for sp in exp.species)
    out.append(-LAMBDA2 * d2psi - (z_n * w + z_f * f))
    return out


def _solve(n_cells: int, z_foreign: int, flux: str):
    from mpi4py import MPI

    import ufl
    from dolfinx import fem
    from dolfinx import mesh as dmesh

    from cait_fem.fem.forms import BACK_TAG, FRONT_TAG, NPPForms
    from cait_fem.solver.newton import NewtonSolver
    exp = _experiment(z_foreign, flux)
    scales = Scales.of(exp)
    assert abs(scales.debye_squared - LAMBDA2) < 1e-12
    domain = dmesh.create_interval(MPI.COMM_WORLD, n_cells, [0.0, 1.0])
    fdim = 0
    ends = [dmesh.locate_entities_boundary(domain, fdim, lambda x, v=v: np.isclose(x[0], v)) for v in (0, 1)]
    idx = np.concatenate(ends).astype(np.int32)
    vals = np.concatenate([np.full(len(ends[0]), FRONT_TAG), np.full(len(ends[1]), BACK_TAG)]).astype(np.int32)
    order = np.argsort(idx)
    tags = dmesh.meshtags(domain, fdim, idx[order], vals[order])

    high = fem.functionspace(domain, ("Lagrange", 6, (3,)))
    src, exact = fem.Function(high), fem.Function(high)
    src.interpolate(lambda x: np.array(_sources(exp, scales, x[0])))
    exact.interpolate(lambda x: np.array([c[0] for c in _fields(x[0])]))
    dx_src = ufl.Measure("dx", domain=domain, metadata={"quadrature_degree": 8})

    def source(v):
        return ufl.inner(src, v) * dx_src

    forms = NPPForms(domain, tags, exp.physics, source=source)
    forms.inv_dt.value = 0.0  # stationary problem: no storage term
    bcs = []
    for comp in range(3):
        sub = forms.V.sub(comp)
        Vc, _ = sub.collapse()
        g = fem.Function(Vc)
        g.interpolate(lambda x, c=comp: _fields(x[0])[c][0])
        dofs = fem.locate_dofs_topological((sub, Vc), fdim, tags.indices)
        bcs.append(fem.dirichletbc(g, dofs, sub))
    newton = NewtonSolver(forms, bcs, cf.SolverSettings(newton_atol=1e-12, potential_atol=1e-12,
                                                         max_newton_iterations=30), domain.comm)
    forms.u.interpolate(lambda x: np.array([0.9 * c[0] for c in _fields(x[0])]))  # 10 % off
    converged, its, reason = newton.solve()
    assert converged, f"Newton failed on {n_cells} cells (reason {reason})"

    def norm2(expr):
        return math.sqrt(domain.comm.allreduce(fem.assemble_scalar(fem.form(expr * dx_src)), op=MPI.SUM))

    l2 = np.array([norm2((forms.u[c] - exact[c]) ** 2) for c in range(3)])
    g = ufl.grad(forms.u[2] - exact[2])
    return l2, norm2(ufl.dot(g, g))


@pytest.mark.parametrize("z_foreign, flux", [(1, "ideal"), (2, "ideal"), (1, "thermodynamic")])
def test_mms_second_order_in_L2_first_in_H1(z_foreign, flux):
    ns = [16, 32, 64, 128]
    results = [_solve(n, z_foreign, flux) for n in ns]
    l2 = np.array([r[0] for r in results])
    h1 = np.array([r[1] for r in results])
    rates = np.log2(l2[:-1] / l2[1:])
    h1_rates = np.log2(h1[:-1] / h1[1:])
    print("L2 errors (w, theta_f, psi):\n", l2, "\nrates\n", rates, "\nH1(psi) rates", h1_rates)
    assert np.all(l2[-1] < 1e-3)
    assert np.all(rates[-1] > 1.85), rates
    assert np.all(rates[-1] < 2.3), rates
    assert h1_rates[-1] > 0.9
