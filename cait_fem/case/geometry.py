"""Sample geometry: a 1D slab, or a 2D/3D sample with a beam spot and a backside electrode.

Plain validated data (no DOLFINx, no gmsh). Coordinates, in every dimension: the depth is
the *last* coordinate, 0 at the front (beam) surface and ``glass.thickness_m`` at the back
electrode; the lateral coordinates are centred on the beam spot.

kinds
    ``slab``          1D depth profile (the default; the sample is laterally uniform).
    ``section``       2D cross-section (x, depth) of a strip-shaped spot, x in [0, radius_m]
                      with a mirror plane at x = 0; quantities per metre out of plane.
    ``axisymmetric``  r-z half-section (r, depth) of a disc of radius ``radius_m`` with a
                      circular spot, r in [0, radius_m]; the forms carry the weight r, so
                      a disc costs a 2D mesh.
    ``disc``          3D cylinder of radius ``radius_m`` with a circular spot.
    ``box``           3D block [-radius_m, radius_m]^2 x [0, thickness] with a circular spot.

The depth grading of every kind is the 1D grading of :class:`cait_fem.case.experiment.MeshSettings`
(the mesh is layered in depth), so a beam covering the whole front reproduces the 1D
problem. Laterally the spacing is ``rim_spacing_m`` at the rim of the spot (and of a
smaller back electrode), growing by ``lateral_growth_ratio`` per cell up to
``lateral_max_spacing_m``.

``mesh_file``: a gmsh ``.msh`` file to use instead of the generated mesh; it must carry
the physical groups of :mod:`cait_fem.mesh.tags` (named as there), follow the coordinate
convention above, and its coordinates are in units of ``mesh_unit_m`` (default 1e-9: nm,
the unit of the generated meshes; gmsh's geometric tolerance would merge nm-spaced points
of a model built in metres).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from cait_fem.errors import ConfigError

KINDS = ("slab", "section", "axisymmetric", "disc", "box")
DIMENSION = {"slab": 1, "section": 2, "axisymmetric": 2, "disc": 3, "box": 3}


def _positive_or_none(name: str, value, optional: bool = True) -> None:
    if value is None and optional:
        return
    ok = isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)
    if not (ok and value > 0):
        raise ConfigError(f"geometry.{name} = {value!r} is not allowed: must be a finite number > 0")


@dataclass(frozen=True)
class Geometry:
    """Shape of the sample, beam spot and back electrode (lengths in m); see module doc."""

    kind: str = "slab"
    radius_m: float | None = None
    spot_radius_m: float | None = None
    electrode_radius_m: float | None = None
    rim_spacing_m: float = 20e-9
    lateral_growth_ratio: float = 1.3
    lateral_max_spacing_m: float = 50e-6
    mesh_file: str | None = None
    mesh_unit_m: float = 1e-9

    def __post_init__(self):
        if self.kind not in KINDS:
            raise ConfigError(f"geometry.kind = {self.kind!r} is not allowed: one of "
                              f"{', '.join(repr(k) for k in KINDS)}")
        for name in ("radius_m", "spot_radius_m", "electrode_radius_m"):
            _positive_or_none(name, getattr(self, name))
        for name in ("rim_spacing_m", "lateral_max_spacing_m", "mesh_unit_m"):  # not optional
            _positive_or_none(name, getattr(self, name), optional=False)
        g = self.lateral_growth_ratio
        if not (isinstance(g, (int, float)) and not isinstance(g, bool) and 1.0 <= g <= 2.0):
            raise ConfigError(f"geometry.lateral_growth_ratio = {g!r} is not allowed: must lie in [1, 2]")
        if self.kind == "slab":
            for name in ("radius_m", "spot_radius_m", "electrode_radius_m", "mesh_file"):
                if getattr(self, name) is not None:
                    raise ConfigError(f"geometry.{name} = {getattr(self, name)!r} is not allowed with "
                                      'geometry.kind = "slab" (a 1D depth problem has no lateral extent); '
                                      'choose kind "section", "axisymmetric", "disc" or "box"')
            return
        if self.mesh_file is not None and not (isinstance(self.mesh_file, str) and self.mesh_file):
            raise ConfigError(f"geometry.mesh_file = {self.mesh_file!r} is not allowed: must be a path string")
        if self.mesh_file is None and self.radius_m is None:
            raise ConfigError(f'geometry.radius_m is missing: required with geometry.kind = "{self.kind}" '
                              "(the lateral half-width or radius of the sample, m)")
        for name in ("spot_radius_m", "electrode_radius_m"):
            value = getattr(self, name)
            if value is not None and self.radius_m is not None and value > self.radius_m:
                raise ConfigError(f"geometry.{name} = {value!r} is not allowed: must be <= "
                                  f"geometry.radius_m = {self.radius_m!r} (omit it for the whole face)")
        if self.rim_spacing_m > self.lateral_max_spacing_m:
            raise ConfigError(f"geometry.rim_spacing_m = {self.rim_spacing_m!r} is not allowed: must be <= "
                              f"geometry.lateral_max_spacing_m = {self.lateral_max_spacing_m!r}")

    def check_mesh_file(self) -> None:
        """ConfigError unless ``mesh_file`` (if set) names an existing regular file; the
        path as stored (a case file's relative path is already made relative to it)."""
        if self.mesh_file is None:
            return
        path = Path(self.mesh_file)
        if path.is_dir():
            problem = "is a directory"
        elif not path.exists():
            problem = "does not exist"
        elif not path.is_file():
            problem = "is not a regular file"
        else:
            return
        raise ConfigError(f"geometry.mesh_file = {self.mesh_file!r} is not allowed: {path} {problem}; "
                          "must name a gmsh .msh file (relative paths are relative to the case file)")

    @property
    def dimension(self) -> int:
        return DIMENSION[self.kind]

    @property
    def axisymmetric(self) -> bool:
        return self.kind == "axisymmetric"

    @property
    def full_spot(self) -> bool:
        """The beam covers the whole front."""
        return self.spot_radius_m is None or (self.radius_m is not None and self.spot_radius_m >= self.radius_m)
