"""What a run accumulates as it steps (pure numpy): the time series, the influx integral,
the content at t = 0, the depth profiles at the output times, and the stepper state to
resume from. One :class:`RunRecord` per :meth:`Simulation.run
<cait_fem.run.simulation.Simulation.run>`; a checkpoint stores it (:meth:`RunRecord.run_state`)
and a resumed run reloads it (:meth:`RunRecord.restore`).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from cait_fem.solver.stepsize import StepperState

#: keys of the time series: t [s], current density [A/m^2], surface potential [V], charge
#: passed [C/m^2], foreign ions inside [m^-2], influx integral [m^-2], step dt [s],
#: Newton iterations of the step
SERIES = ("t", "current", "psi_s", "charge", "foreign", "influx", "dt", "its")
#: influx integrals kept: BDF3 needs the last three
INFLUX_HISTORY = 3


@dataclass
class RunRecord:
    """``series``: lists under :data:`SERIES`, one entry per accepted step after the one at
    t = 0; ``content0``: the native deviation content at t = 0 (dimensionless; the reference
    of the charge passed); ``influx``: [I_n, I_{n-1}, I_{n-2}], the dimensionless influx
    integral at the last three steps (integrated with the steps' BDF formula); ``theta``, ``potential_V``:
    the depth profiles at the output times reached (species x depth; V); ``record_series``:
    False if only the profiles are wanted; ``stepper_state``: where the stepper resumes
    (the checkpoint's, or the last accepted step's)."""

    series: dict
    content0: float
    influx: list = field(default_factory=lambda: [0.0] * INFLUX_HISTORY)
    theta: list = field(default_factory=list)
    potential_V: list = field(default_factory=list)
    record_series: bool = True
    stepper_state: StepperState | None = None

    @classmethod
    def at_start(cls, *, content0: float, surface_potential_V: float, foreign_m2: float,
                 record_series: bool = True) -> RunRecord:
        """The record at t = 0: every series starts with 0 except the surface potential [V]
        and the foreign ions inside [m^-2]."""
        series = {k: [0.0] for k in SERIES}
        series["psi_s"][0] = surface_potential_V
        series["foreign"][0] = foreign_m2
        return cls(series=series, content0=content0, record_series=record_series)

    def integrate_influx(self, h: float, coefficients, rate: float) -> float:
        """Advance the influx integral by a step of size ``h`` with BDF ``coefficients``
        (a0, a1, ...) and the influx ``rate`` at its end (dimensionless): the integral obeys
        dI/dt = rate, discretised like the state so that conservation checks are exact."""
        a = coefficients
        # in differences from I_n (sum a_j = 0): a zero rate then keeps I exactly, where
        # the plain sum would add rounding * I at every step (a beam switched off)
        last = self.influx[0]
        new = last + (h * rate - sum(aj * (ij - last) for aj, ij in zip(a[2:], self.influx[1:]))) / a[0]
        self.influx[:] = [new] + self.influx[:-1]
        return new

    def add_output(self, theta: np.ndarray, potential_V: np.ndarray) -> None:
        self.theta.append(theta)
        self.potential_V.append(potential_V)

    def run_state(self, depth_m: np.ndarray) -> dict:
        """The record as a checkpoint stores it (:func:`cait_fem.run.checkpoint.write_checkpoint`'s
        ``run_state``); ``depth_m``: the depths of the profiles [m], to check on resuming."""
        return {"series": self.series, "scalars": {"influx": list(self.influx), "content0": self.content0},
                "arrays": {"theta": np.array(self.theta), "potential_V": np.array(self.potential_V),
                           "depth_m": depth_m}}

    def restore(self, run_state: dict) -> None:
        """Continue the record of a checkpoint (its ``run_state``, as :meth:`run_state` made it)."""
        self.series.update({k: list(v) for k, v in run_state["series"].items()})
        saved = list(run_state["scalars"]["influx"])  # 2 values in checkpoints of BDF2 versions
        self.influx[:] = (saved + saved[-1:] * INFLUX_HISTORY)[:INFLUX_HISTORY]
        self.content0 = run_state["scalars"]["content0"]
        self.theta.extend(run_state["arrays"]["theta"])
        self.potential_V.extend(run_state["arrays"]["potential_V"])
