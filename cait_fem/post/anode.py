"""The charge on a contact front (anode) and the current into it, per accepted step.

At a blocking anode no ion crosses the front, so the current that flows in the external
circuit at the front is the displacement current: the rate of the anode's surface charge
sigma_a = eps0 eps_r E(0) (docs/model.md section 4.6). It is read off the Poisson equation's
residual on the front nodes with a test function g that is 1 there and 0 elsewhere,

    sigma_a = e n_bg L [ lambda~^2 int grad psi . grad g  -  int rho g (lumped) ],

the variationally consistent boundary flux (the same construction as the back-electrode
current of :mod:`cait_fem.fem.observables`): it converges with the solution, not with its
gradient, and in 1D it equals e n_bg int (1 - theta) dx + eps0 eps_r E(d) to rounding.
The current follows by differencing the recorded charge. Collective; one small form
compiled on first use.
"""

from __future__ import annotations

from mpi4py import MPI

import numpy as np
import ufl
from dolfinx import fem
from scipy.constants import e as _ELEMENTARY_CHARGE


class AnodeCharge:
    """A run callback (``Simulation.run(callbacks=[AnodeCharge(sim)])``) recording the
    surface charge density on the front contact [C/m^2] after every accepted step;
    ``time_s`` [s] and ``charge_C_m2`` start with the initial state's. :meth:`current`
    gives the current density into the anode [A/m^2] between the recorded steps."""

    def __init__(self, sim):
        f = sim.forms
        self.forms, self.comm = f, sim.comm
        sc = sim.scales
        self.unit_C_m2 = _ELEMENTARY_CHARGE * sc.density_m3 * sc.length_m
        Q = fem.functionspace(sim.domain, ("Lagrange", 1))
        g = fem.Function(Q)
        fdim = sim.domain.topology.dim - 1
        g.x.array[fem.locate_dofs_topological(Q, fdim, f.facet_tags.find(f.front_tag))] = 1.0
        w, p = f.weights, f.layout.psi

        def residual(u):
            return (w["flux"] * f.debye2 * ufl.dot(ufl.grad(u[p]), ufl.grad(g)) * f.flux_measure
                    - w["storage"] * f.space_charge(u) * g * f.storage_measure)

        self._form = fem.form(residual(f.u))
        # the state before the step: at the first step, the initial state (t = 0)
        self._form_previous = fem.form(residual(f.u_n))
        self._area = sim.observables.spot_area()
        self.time_s, self.charge_C_m2 = [], []

    def _charge(self, form) -> float:
        local = fem.assemble_scalar(form)
        return self.unit_C_m2 * self.comm.allreduce(local, op=MPI.SUM) / self._area

    def charge(self) -> float:
        """Surface charge density on the front contact now [C/m^2] (per unit spot area)."""
        return self._charge(self._form)

    def on_step(self, step) -> None:
        if not self.time_s:
            self.time_s.append(step.t_s - step.dt_s)
            self.charge_C_m2.append(self._charge(self._form_previous))
        self.time_s.append(step.t_s)
        self.charge_C_m2.append(self.charge())

    def on_output(self, t_s, step) -> None:
        pass

    def on_end(self, error=None) -> None:
        pass

    def current(self) -> tuple[np.ndarray, np.ndarray]:
        """(step end times [s], current density into the anode [A/m^2]): the charge
        difference over each step divided by its length (the displacement current)."""
        t, q = np.asarray(self.time_s), np.asarray(self.charge_C_m2)
        return t[1:], np.diff(q) / np.diff(t)
