"""Fit parameters: what may be adjusted, addressed by its dotted path in a run case.

A path names a value in the case dictionary (``experiment_to_dict``):

* ``species.<name>.diffusion.<key>``: a diffusion-law value, e.g.
  ``species.K.diffusion.D_m2_s`` or ``species.Li.diffusion.fwhm_eV``; a list value (the
  ``D_m2_s`` knots of a tabulated law) is fitted knot by knot, ``...D_m2_s[3]`` names one;
* ``front.<key>`` and ``back.<key>``: a boundary value, e.g. ``front.E_kin_eV``;
* ``run.t_end_s``: the duration of the beam exposure, when the record does not give it;
* ``sims_resolution_nm`` and ``depth_offset_nm``: how the experiment is measured (ToF-SIMS
  depth resolution sigma and depth offset); they need no new solve.

Only values that enter the compiled forms as constants can be fitted (the glass, mesh and
species set are structure: a Simulation is built once per experiment and reused).

The optimiser works on a transformed value z: z = log10(x) for ``log = true``, else
z = x / |x0| (x0 the initial value), so that every z moves on a scale of one.
"""

from __future__ import annotations

import copy
import math
import re
from dataclasses import dataclass

from cait_fem.errors import ConfigError

MEASUREMENT_PATHS = ("sims_resolution_nm", "depth_offset_nm")
FITTABLE_ROOTS = ("species", "front", "back", "run.t_end_s")
_INDEXED = re.compile(r"^(?P<path>.+)\[(?P<index>\d+)\]$")


@dataclass(frozen=True)
class ParameterSpec:
    """One ``[fit.parameters]`` entry as written. ``initial``: None (the case's value), a
    number, a tuple (one per fitted knot) or a dict {experiment: number}."""

    path: str
    initial: float | tuple[float, ...] | dict | None = None
    min: float = -math.inf
    max: float = math.inf
    log: bool = False
    shared: bool = False
    fixed: bool = False
    experiments: tuple[str, ...] | None = None  # None: every experiment that has the path
    knots: tuple[int, ...] | None = None  # of a table value: which knots (None: all)

    @property
    def is_measurement(self) -> bool:
        return self.path in MEASUREMENT_PATHS


@dataclass(frozen=True)
class FreeParameter:
    """One adjusted scalar: ``spec`` applied at ``path`` (with knot ``index``) in the
    experiments ``targets``; ``x0`` its start value in the path's unit."""

    spec: ParameterSpec
    path: str
    index: int | None
    targets: tuple[str, ...]
    x0: float

    @property
    def label(self) -> str:
        name = self.path if self.index is None else f"{self.path}[{self.index}]"
        return name if self.spec.shared or len(self.targets) != 1 else f"{name}@{self.targets[0]}"

    @property
    def name(self) -> str:
        return self.path if self.index is None else f"{self.path}[{self.index}]"

    @property
    def is_measurement(self) -> bool:
        return self.spec.is_measurement

    # -- the optimiser's variable -----------------------------------------------------------
    def _scale(self) -> float:
        return abs(self.x0) if self.x0 != 0 else 1.0

    def to_z(self, x: float) -> float:
        return math.log10(x) if self.spec.log else x / self._scale()

    def from_z(self, z: float) -> float:
        return 10.0 ** z if self.spec.log else z * self._scale()

    def dx_dz(self, x: float) -> float:
        return x * math.log(10.0) if self.spec.log else self._scale()

    @property
    def z_bounds(self) -> tuple[float, float]:
        lo, hi = self.spec.min, self.spec.max
        if self.spec.log:
            return (math.log10(lo) if lo > 0 else -math.inf, math.log10(hi) if math.isfinite(hi) else math.inf)
        return (self.to_z(lo) if math.isfinite(lo) else -math.inf, self.to_z(hi) if math.isfinite(hi) else math.inf)


def split_path(path: str) -> tuple[str, int | None]:
    m = _INDEXED.match(path)
    return (m["path"], int(m["index"])) if m else (path, None)


def _locate(case: dict, path: str, where: str) -> tuple[dict | list, str | int]:
    """The container and key of ``path`` in a case dictionary (ConfigError if absent)."""
    parts = path.split(".")
    if parts[0] not in FITTABLE_ROOTS and path not in FITTABLE_ROOTS:
        raise ConfigError(f"{where}: {path!r} cannot be fitted: a path starts with one of "
                          f"{', '.join(FITTABLE_ROOTS)} (values that enter the forms as constants) or is "
                          f"one of {', '.join(MEASUREMENT_PATHS)}")
    node: object = case
    if parts[0] == "species":
        if len(parts) < 3:
            raise ConfigError(f"{where}: {path!r} is not a species value: use species.<name>.diffusion.<key>")
        names = [s["name"] for s in case["species"]]
        if parts[1] not in names:
            raise ConfigError(f"{where}: species {parts[1]!r} of {path!r} is not in the case; species: "
                              f"{', '.join(names)}")
        node = case["species"][names.index(parts[1])]
        parts = parts[2:]
        if parts[0] != "diffusion":
            raise ConfigError(f"{where}: {path!r} cannot be fitted: of a species only the diffusion law's "
                              "values can (species.<name>.diffusion.<key>)")
    for i, part in enumerate(parts):
        if not isinstance(node, dict) or part not in node:
            keys = sorted(k for k in node if k not in ("model", "type", "name")) if isinstance(node, dict) else []
            raise ConfigError(f"{where}: {path!r}: {part!r} is not a value of this case here; "
                              f"available: {', '.join(keys) or 'none'}")
        if i == len(parts) - 1:
            return node, part
        node = node[part]
    raise AssertionError("unreachable")


def read_value(case: dict, path: str, where: str):
    base, index = split_path(path)
    node, key = _locate(case, base, where)
    value = node[key]
    if index is None:
        if isinstance(value, (list, tuple)):
            return [float(v) for v in value]
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where}: {path!r} = {value!r} is not a number and cannot be fitted")
        return float(value)
    if not isinstance(value, (list, tuple)) or index >= len(value):
        raise ConfigError(f"{where}: {path!r}: index {index} is not allowed: {base} has "
                          f"{len(value) if isinstance(value, (list, tuple)) else 'no'} entries")
    return float(value[index])


def with_values(case: dict, values: dict[tuple[str, int | None], float]) -> dict:
    """A copy of ``case`` with ``values[(path, index)]`` written in."""
    out = copy.deepcopy(case)
    for (path, index), v in values.items():
        node, key = _locate(out, path, "fit")
        if index is None:
            node[key] = float(v)
        else:
            seq = list(node[key])
            seq[index] = float(v)
            node[key] = seq
    return out
