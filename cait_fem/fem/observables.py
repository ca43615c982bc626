"""Boundary and content observables of a run, from node weights assembled once.

The storage terms are lumped and the front influx is integrated with the vertex rule, so
every integral the residual sees is a weighted sum over nodes: contents are
sum_i m_i u_i with the lumped mass m_i = int phi_i dx, front quantities sum_i a_i f(psi_i)
with a_i = int_front phi_i ds. Assembling m and a once replaces several form assemblies
per step by dot products, and one reduction serves all of them.
"""

from __future__ import annotations

from mpi4py import MPI

import numpy as np
import ufl
from dolfinx import fem, la

from cait_fem.case.experiment import Beam, CurrentFront
from cait_fem.physics.boundary_laws import landing_fraction

from .forms import NPPForms


class Observables:
    """Dimensionless integrals of the current state of ``forms``."""

    def __init__(self, forms: NPPForms, n_owned: int, comm):
        self.forms, self.n_owned, self.comm = forms, n_owned, comm
        self.layout = forms.layout
        self.bs = self.layout.block_size
        # node weights int phi_a (lumped mass, front area), read off the native column
        v, n = ufl.TestFunction(forms.V), self.layout.native
        w = forms.weights
        self.mass = self._node_weights(w["storage"] * v[n] * forms.storage_measure)
        self.front = self._node_weights(w["front"] * v[n] * forms.front_measure)
        # only the front's nodes carry front weight: the influx law is evaluated there only
        self._front_nodes = np.flatnonzero(self.front)
        self._front_weights = self.front[self._front_nodes]

    def _node_weights(self, integrand) -> np.ndarray:
        vec = fem.assemble_vector(fem.form(integrand))
        vec.scatter_reverse(la.InsertMode.add)
        return self.layout.rows(vec.array)[: self.n_owned, self.layout.native].copy()

    def _rows(self, function: fem.Function) -> np.ndarray:
        return self.layout.rows(function.x.array)[: self.n_owned]

    def influx_density(self, psi: np.ndarray) -> np.ndarray:
        """Foreign influx per front area at potentials ``psi`` (same law as the forms)."""
        f = self.forms
        front, c = f.physics.front, f.front_constants
        if isinstance(front, Beam):
            z = f.charges[f.front_index]
            return c["flux"].value * landing_fraction(psi, c["E_kin"].value, c["sigma_E"].value, z)
        if isinstance(front, CurrentFront):
            return np.full_like(psi, c["flux"].value)
        return np.zeros_like(psi)

    def integrals(self, with_rate: bool = True) -> dict:
        """Per unit area of the beam spot (the 1D quantities, exactly so in 1D and for a
        beam covering the whole front): native_deviation = int w, foreign = int sum theta_f,
        surface_potential (spot average of psi), influx (spot integral of the influx),
        native_deviation_rate (its BDF time derivative, from the forms' coefficients).

        The native content changes only through the back electrode (every other boundary
        is closed to the native ions), so -native_deviation_rate is the back-electrode
        outflow. It is the variationally consistent boundary flux: the sum of the native
        equation's residual rows on the electrode nodes, which is what int J.n ds over the
        electrode converges to, at the accuracy of the solution rather than of its
        gradient."""
        f, lay = self.forms, self.layout
        u = self._rows(f.u)
        p, n = lay.psi, lay.native
        rate = 0.0
        if with_rate:
            w_rate = (f.a0.value * u[:, n] + self._rows(f.u_history)[:, n]) * f.inv_dt.value
            rate = self.mass @ w_rate
        psi_front = u[self._front_nodes, p]
        local = np.array([
            self.mass @ u[:, n],
            self.mass @ u[:, lay.foreign_slice].sum(axis=1),
            self._front_weights @ psi_front,
            self._front_weights.sum(),
            self._front_weights @ self.influx_density(psi_front),
            rate,
        ], dtype=float)
        total = local
        if self.comm.size > 1:
            total = np.empty_like(local)
            self.comm.Allreduce(local, total, op=MPI.SUM)
        area = total[3]
        return {
            "native_deviation": total[0] / area,
            "foreign": total[1] / area,
            "surface_potential": total[2] / area,
            "influx": total[4] / area,
            "native_deviation_rate": total[5] / area,
        }

    def spot_area(self) -> float:
        """The dimensionless measure of the beam spot (1 in 1D; with the weight r in an r-z
        section, so that 2 pi times it is the area)."""
        return self.comm.allreduce(float(self.front.sum()), op=MPI.SUM)
