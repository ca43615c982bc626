"""Exponentially fitted Nernst-Planck fluxes as UFL expressions (docs/model.md section 2,
docs/numerics.md sections 3 and 7b).

Flux J_i = -D_i (grad theta_i + z_i theta_i grad psi + h^2 kappa(Pe) (b.grad theta_i) b),
b = z_i grad psi, Pe = h |b|, kappa = ((Pe/2) coth(Pe/2) - 1) / Pe^2: in 1D with one-point
quadrature the Scharfetter-Gummel box scheme (:func:`fitted_fluxes`); in 2D/3D the same
flux along every cell edge (:func:`edge_fluxes`). Everything is dimensionless, in the
:class:`~cait_fem.fem.scales.Scales` of the forms; :class:`~cait_fem.fem.forms.NPPForms`
calls these with its own pieces (domain, species, charges, law Constants).
"""

from __future__ import annotations

import ufl

from cait_fem.physics.ops import ufl_ops

_PE2_SERIES = 1e-2  # below this Pe^2, kappa from its Taylor series (no 0/0)
_B2_FLOOR = 1e-24  # |b|^2 added in the streamline length so that b = 0 gives 0/0 nowhere


def streamline_length_squared(domain, b):
    """h_b^2 for the drift direction b on a simplex: h_b = 2 |b| / sum_a |b . grad phi_a|,
    the cell's extent along b (Brooks & Hughes). The barycentric gradients are the rows of
    the inverse Jacobian K (and minus their sum), so sum_a |b . grad phi_a| = sum_i |(K b)_i|
    + |sum_i (K b)_i|. In 1D this is the cell length; on the anisotropic boundary-layer
    cells of a 2D/3D sample (0.2 nm deep, um wide) it is the depth spacing for a field
    normal to the surface, where the cell diameter would smear the front over a micrometre."""
    c = ufl.dot(ufl.JacobianInverse(domain), b)
    n = domain.topology.dim
    total = sum(abs(c[i]) for i in range(n)) + abs(sum(c[i] for i in range(n)))
    diameter = ufl.CellDiameter(domain)
    return 4.0 * (ufl.dot(b, b) + _B2_FLOOR) / (total**2 + 4.0 * _B2_FLOOR / diameter**2)


def _kappa(pe2):
    """((Pe/2) coth(Pe/2) - 1) / Pe^2 as a UFL expression of Pe^2, smooth at Pe = 0."""
    series = 1.0 / 12.0 - pe2 / 720.0 + pe2**2 / 30240.0
    pe = ufl.sqrt(ufl.max_value(pe2, _PE2_SERIES))
    e = ufl.exp(-pe)
    exact = (0.5 * pe * (1.0 + e) / (1.0 - e) - 1.0) / ufl.max_value(pe2, _PE2_SERIES)
    return ufl.conditional(ufl.lt(pe2, _PE2_SERIES), series, exact)


def fitted_fluxes(domain, species, charges, thetas, psi, diffusivities, law_constants, thermodynamic: bool):
    """Dimensionless particle fluxes J_i of the 1D scheme (exponentially fitted, see module
    doc), also the streamline form of 2D/3D. ``species``: the case's Species; ``charges``:
    their z_i; ``thetas``: the fractions theta_i (UFL); ``psi``: the potential (UFL);
    ``diffusivities``: D_i / D_ref (UFL, from the nodal ends in 1D: :func:`cell_ends`);
    ``law_constants``: per species the diffusion-law Constants. ``thermodynamic``: the
    diffusion term carries the factor Gamma_i and the fitting uses the drift-to-diffusion
    ratio b / Gamma_i."""
    one_d = domain.topology.dim == 1
    h2 = ufl.CellDiameter(domain) ** 2 if one_d else None
    ops = ufl_ops()
    fluxes = []
    for s, z, th, D, consts in zip(species, charges, thetas, diffusivities, law_constants):
        b = z * ufl.grad(psi)
        g = ufl.grad(th)
        hb2 = h2 if one_d else streamline_length_squared(domain, b)
        if thermodynamic:
            G = s.diffusion.thermodynamic_factor(th, consts, ops)
            pe2 = hb2 * ufl.dot(b, b) / G**2
            fluxes.append(-D * (G * g + th * b + hb2 * _kappa(pe2) * ufl.dot(b, g) * b / G))
        else:
            pe2 = hb2 * ufl.dot(b, b)
            fluxes.append(-D * (g + th * b + hb2 * _kappa(pe2) * ufl.dot(b, g) * b))
    return fluxes


def cell_ends(domain, thetas):
    """Per fraction the two nodal values of a 1D cell as seen from the one-point rule's
    midpoint, theta -+ h/2 dtheta/dx; None on a 2D/3D mesh."""
    if domain.topology.dim != 1:
        return None
    return [(th - 0.5 * ufl.CellDiameter(domain) * ufl.grad(th)[0],
             th + 0.5 * ufl.CellDiameter(domain) * ufl.grad(th)[0]) for th in thetas]


def edge_fluxes(domain, species, charges, thetas, psi, law_constants, thermodynamic: bool):
    """Edge-averaged exponential fitting (EAFE, Xu & Zikatanov 1999) on 2D/3D simplices:
    per species, a list of (omega_E, q_E, e_E) over the cell's edges E = (a, b), to be
    combined as sum_E omega_E q_E (grad v . e_E) at the cell's midpoint. Arguments as for
    :func:`fitted_fluxes` (the diffusivities come from the laws, at the edge midpoints).

    ``e_E`` = x_b - x_a; ``omega_E`` = -grad phi_a . grad phi_b (so that
    sum_E omega_E (grad f . e_E)(grad v . e_E) = grad f . grad v for P1 f, v);
    ``q_E`` = D(th_E) [(1 + Pe_E^2 kappa(Pe_E)) (th_b - th_a) + Pe_E th_E], the
    Scharfetter-Gummel flux along the edge (times its length), with Pe_E = b . e_E
    = z (psi_b - psi_a) and th_E the value at the edge midpoint. On an edge this is the
    1D scheme exactly, so on meshes layered in depth a laterally uniform state gives the
    1D fluxes in every cell, whatever the split of the layers into simplices (the
    centroid value that the one-point rule of :func:`fitted_fluxes` takes is (2 th_0 + th_1)/3
    on a triangle with two vertices on one layer: first order, docs/numerics.md
    section 7b). Thermodynamic flux: diffusion D Gamma and Pe_E / Gamma, Gamma at th_E."""
    n = domain.topology.dim
    Jac, Kinv = ufl.Jacobian(domain), ufl.JacobianInverse(domain)
    rows = [ufl.as_vector([Kinv[i, j] for j in range(n)]) for i in range(n)]
    grad_phi = [-sum(rows[1:], rows[0])] + rows
    offsets = [ufl.as_vector([0.0] * n)] + [ufl.as_vector([Jac[i, a] for i in range(n)]) for a in range(n)]
    centroid = sum(offsets[1:], offsets[0]) / (n + 1)
    edges = []
    for a in range(n + 1):
        for b in range(a + 1, n + 1):
            e = offsets[b] - offsets[a]
            mid = 0.5 * (offsets[a] + offsets[b]) - centroid
            edges.append((-ufl.dot(grad_phi[a], grad_phi[b]), e, mid))
    ops = ufl_ops()
    result = []
    for s, z, th, consts in zip(species, charges, thetas, law_constants):
        terms = []
        for omega, e, mid in edges:
            th_e = th + ufl.dot(ufl.grad(th), mid)  # exact for P1 at the midpoint quadrature point
            d_th = ufl.dot(ufl.grad(th), e)
            pe = z * ufl.dot(ufl.grad(psi), e)
            D = s.diffusion.relative_between(th_e, (th_e - 0.5 * d_th, th_e + 0.5 * d_th), consts, ops)
            if thermodynamic:
                G = s.diffusion.thermodynamic_factor(th_e, consts, ops)
                q = D * ((G + pe**2 * _kappa(pe**2 / G**2) / G) * d_th + pe * th_e)
            else:
                q = D * ((1.0 + pe**2 * _kappa(pe**2)) * d_th + pe * th_e)
            terms.append((omega, q, e))
        result.append(terms)
    return result
