"""The layout of the state vector: the one place that knows which component is which.

The unknowns live in one blocked P1 space; each node carries one row of ``block_size``
values (docs/model.md section 8 gives the reasons for the variables):

    column 0            w = theta_native - 1   (deviation from the background, so that the
                                                space charge z_n w + sum_f z_f theta_f is
                                                formed without cancellation)
    columns 1 .. N-1    theta_f                (foreign species, in the order of the case)
    column N            psi = e phi / (k_B T)  (dimensionless potential)

:class:`StateLayout` names these columns and converts between nodal rows and physical
arrays (fractions theta with the +1 put back on the native component, potential). It is
plain numpy: no DOLFINx, so post-processing and tests can use it without a mesh.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from cait_fem.errors import ConfigError


@dataclass(frozen=True)
class StateLayout:
    """Columns of the state for the species ``species_names`` (native first, then the
    foreign species in state order) with charge numbers ``charge_numbers`` (z, > 0)."""

    species_names: tuple
    charge_numbers: tuple

    #: column of the native species; its stored value is w = theta_native - 1
    native = 0
    #: what is added to the stored native column to get theta_native [-]
    native_offset = 1.0

    def __post_init__(self):
        names, charges = tuple(self.species_names), tuple(self.charge_numbers)
        object.__setattr__(self, "species_names", names)
        object.__setattr__(self, "charge_numbers", charges)
        if not names:
            raise ConfigError("StateLayout.species_names = () is not allowed: at least the native species")
        if len(set(names)) != len(names) or not all(isinstance(n, str) and n for n in names):
            raise ConfigError(f"StateLayout.species_names = {names!r} is not allowed: unique non-empty names")
        if len(charges) != len(names):
            raise ConfigError(f"StateLayout.charge_numbers = {charges!r} is not allowed: one charge number "
                              f"per species ({len(names)})")
        for z in charges:
            if isinstance(z, bool) or not isinstance(z, (int, np.integer)) or z <= 0:
                raise ConfigError(f"StateLayout.charge_numbers = {charges!r} is not allowed: positive "
                                  "integers (cations)")

    @classmethod
    def of(cls, physics) -> StateLayout:
        """The layout of a :class:`~cait_fem.case.experiment.Physics` or an Experiment
        (anything with ``species`` in canonical order: native first)."""
        return cls(tuple(s.name for s in physics.species), tuple(int(s.charge_number) for s in physics.species))

    # -- indices --------------------------------------------------------------------------
    @property
    def n_species(self) -> int:
        return len(self.species_names)

    @property
    def foreign(self) -> tuple:
        """Columns of the foreign species (theta_f stored as is)."""
        return tuple(range(1, self.n_species))

    @property
    def foreign_slice(self) -> slice:
        """The foreign columns as a slice (a view, not a copy, of state rows)."""
        return slice(1, self.n_species)

    @property
    def psi(self) -> int:
        """Column of the dimensionless potential psi = e phi / (k_B T)."""
        return self.n_species

    @property
    def block_size(self) -> int:
        """Values per node: the species and the potential."""
        return self.n_species + 1

    @property
    def field_names(self) -> list:
        """Output names of the columns: ``theta_<species>`` in state order, then ``phi_V``."""
        return [f"theta_{s}" for s in self.species_names] + ["phi_V"]

    # -- numpy conversions --------------------------------------------------------------
    def rows(self, array) -> np.ndarray:
        """A flat state array (e.g. ``Function.x.array``) as a (nodes, block_size) view."""
        array = np.asarray(array)
        if array.ndim == 2 and array.shape[1] == self.block_size:
            return array
        if array.ndim != 1 or array.size % self.block_size:
            raise ValueError(f"a state of {self.n_species} species needs a flat array of a multiple of "
                             f"{self.block_size} values or rows of {self.block_size}, got shape {array.shape}")
        return array.reshape(-1, self.block_size)

    def thetas(self, rows) -> np.ndarray:
        """Fractions theta_i = n_i / n_bg [-], array (n_species, nodes), from state rows."""
        rows = self.rows(rows)
        th = rows[:, : self.n_species].T.copy()
        th[self.native] += self.native_offset
        return th

    def concentrations(self, rows) -> np.ndarray:
        """Fractions theta_i [-] as columns, array (nodes, n_species)."""
        return self.thetas(rows).T.copy()

    def potential(self, rows) -> np.ndarray:
        """The dimensionless potential psi of every node (a copy)."""
        return self.rows(rows)[:, self.psi].copy()

    def state_rows(self, thetas, psi) -> np.ndarray:
        """State rows (nodes, block_size) from fractions ``thetas`` (n_species, nodes) and
        the dimensionless potential ``psi`` (nodes): the inverse of :meth:`thetas` /
        :meth:`potential`."""
        thetas = np.asarray(thetas, dtype=float)
        if thetas.ndim != 2 or thetas.shape[0] != self.n_species:
            raise ValueError(f"thetas must have shape ({self.n_species}, nodes), got {thetas.shape}")
        out = np.empty((thetas.shape[1], self.block_size))
        out[:, : self.n_species] = thetas.T
        out[:, self.native] -= self.native_offset
        out[:, self.psi] = psi
        return out

    def fields(self, rows, potential_V: float) -> dict:
        """Physical fields by :attr:`field_names`: theta_<species> [-] and phi_V [V] =
        psi * ``potential_V`` (the potential scale k_B T / e [V])."""
        rows = self.rows(rows)
        th = self.thetas(rows)
        out = {name: th[i] for i, name in enumerate(self.field_names[:-1])}
        out["phi_V"] = float(potential_V) * rows[:, self.psi]
        return out
