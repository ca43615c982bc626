"""The experiment as data: glass, species, and the :class:`Physics` and :class:`Experiment`
that combine them with the front and back boundaries (:mod:`cait_fem.case.boundaries`) and
the mesh, run and solver settings (:mod:`cait_fem.case.settings`); those names are
importable from here too.

Everything here is plain, validated data with SI units in the field names. Nothing here
imports DOLFINx. An :class:`Experiment` is what :func:`cait_fem.simulate` runs and what a
TOML case file (:mod:`cait_fem.case.case_file`) turns into.

Validation happens in ``__post_init__`` so that a bad value is reported, with its field
name, the value and what is allowed, before any mesh or form is built.
"""

from __future__ import annotations

from dataclasses import dataclass

from cait_fem.physics.diffusion import DiffusionLaw, check_diffusivity_range

from .boundaries import (
    VOLTAGE_HISTORIES,
    AnodeFront,
    BackElectrode,
    Beam,
    CurrentFront,
    Front,
    PotentialFront,
)
from .checks import positive, require
from .estimates import check_size
from .geometry import Geometry
from .resolution import DepthResolution, depth_resolution
from .settings import (
    LINEAR_SOLVERS,
    MESH_CHECK_FIELDS,
    PRECONDITIONERS,
    SCHEMES,
    MeshSettings,
    RunSettings,
    SolverSettings,
)

# the boundaries and settings live in their own modules; importing them from here keeps working
__all__ = ["Glass", "Species", "Physics", "Experiment", "Beam", "PotentialFront", "AnodeFront", "CurrentFront",
           "Front", "BackElectrode", "VOLTAGE_HISTORIES", "MeshSettings", "RunSettings", "SolverSettings",
           "MESH_CHECK_FIELDS", "SCHEMES", "LINEAR_SOLVERS", "PRECONDITIONERS"]


@dataclass(frozen=True)
class Glass:
    """The solid electrolyte sample (1D: a slab of thickness ``thickness_m``).

    n_bg_m3: density of the immobile anionic background = initial native cation density [m^-3].
    eps_r: relative permittivity [-]. temperature_K: sample temperature [K].
    thickness_m: distance from the front (beam) surface to the back electrode [m].
    """

    n_bg_m3: float
    eps_r: float
    temperature_K: float
    thickness_m: float
    name: str = "glass"

    @classmethod
    def preset(cls, name: str, **overrides) -> Glass:
        """A glass from :mod:`cait_fem.case.presets` (e.g. "Li3B7O12"); keyword arguments
        override preset values (typically temperature_K and thickness_m)."""
        from .presets import glass_preset

        values = {k: v for k, v in glass_preset(name).items() if k in _GLASS_FIELDS}
        values.update(overrides)
        values.setdefault("name", name)
        return cls(**values)

    def __post_init__(self):
        positive("glass.n_bg_m3", self.n_bg_m3)
        positive("glass.eps_r", self.eps_r)
        positive("glass.temperature_K", self.temperature_K)
        positive("glass.thickness_m", self.thickness_m)


_GLASS_FIELDS = ("n_bg_m3", "eps_r", "temperature_K", "thickness_m", "name")


@dataclass(frozen=True)
class Species:
    """A mobile cation. ``role`` is "native" (fills the glass at t = 0) or "foreign" (enters
    at the front). ``charge_number`` is z (default +1); ``diffusion`` a law of
    :mod:`cait_fem.physics.diffusion` giving D(theta) in m^2/s."""

    name: str
    role: str
    diffusion: DiffusionLaw
    charge_number: int = 1

    def __post_init__(self):
        require(isinstance(self.name, str) and self.name.isidentifier(), "species.name", self.name,
                 "a non-empty identifier (letters, digits, underscore)")
        require(self.role in ("native", "foreign"), f"species.{self.name}.role", self.role,
                 'one of "native", "foreign"')
        require(isinstance(self.charge_number, int) and not isinstance(self.charge_number, bool)
                 and self.charge_number > 0, f"species.{self.name}.charge_number", self.charge_number,
                 "a positive integer (cations)")
        require(isinstance(self.diffusion, DiffusionLaw), f"species.{self.name}.diffusion",
                 self.diffusion, "a cait_fem.physics.diffusion law")


@dataclass(frozen=True)
class Physics:
    """The physics of a case, without run, solver, mesh or geometry settings: what the weak
    form (:class:`cait_fem.fem.forms.NPPForms`) needs. ``species`` is stored native first,
    then the foreign species in the order given; ``flux`` as in :class:`Experiment`."""

    glass: Glass
    species: tuple[Species, ...]
    front: Front
    back: BackElectrode = BackElectrode()
    flux: str = "ideal"

    def __post_init__(self):
        species = tuple(self.species)
        object.__setattr__(self, "species", species)
        names = [s.name for s in species]
        dupes = sorted({n for n in names if names.count(n) > 1})
        require(not dupes, "species.name", dupes, "species names must be unique")
        natives = [s.name for s in species if s.role == "native"]
        require(len(natives) == 1, "species.role", natives, 'exactly one species with role = "native"')
        foreign = [s.name for s in species if s.role == "foreign"]
        # an anode lets no ion in: a poling case may have the native ions only
        if not isinstance(self.front, AnodeFront):
            require(len(foreign) >= 1, "species.role", foreign, 'at least one species with role = "foreign" '
                     '(none only with front.type = "anode")')
        # Canonical order, relied on by the forms and results: native first, then the
        # foreign species as given (the first one enters at the front).
        native = next(s for s in species if s.role == "native")
        object.__setattr__(self, "species", (native,) + tuple(s for s in species if s.role == "foreign"))
        require(isinstance(self.glass, Glass), "glass", self.glass, "a cait_fem Glass")
        require(isinstance(self.front, (Beam, PotentialFront, CurrentFront, AnodeFront)), "front", self.front,
                 "a Beam, PotentialFront, CurrentFront or AnodeFront")
        require(isinstance(self.back, BackElectrode), "back", self.back, "a cait_fem BackElectrode")
        require(self.flux in ("ideal", "thermodynamic"), "flux", self.flux,
                 'one of "ideal", "thermodynamic"')
        if self.flux == "thermodynamic":
            for s in species:
                require(getattr(s.diffusion, "filling", "zero-temperature") == "zero-temperature",
                         "flux", self.flux, f"only with zero-temperature SED filling (species.{s.name} "
                         "uses fermi-dirac, whose tabulated Fermi level has no usable derivative)")
        for s in species:
            for other in s.diffusion.fraction_names:
                require(other in names, f"species.{s.name}.diffusion.fractions", list(s.diffusion.fraction_names),
                         f"names of species of this case: {names}")
        if self.front.species is not None:
            require(self.front.species in foreign, "front.species", self.front.species,
                     f"the name of a foreign species: one of {foreign}")
        # D(T) of every law finite, representable and within range of the native D_ref
        # (the time scale): e.g. Arrhenius E_a_eV = 100 underflows to D = 0 at 300 K
        check_diffusivity_range({s.name: s.diffusion for s in species}, natives[0], self.glass.temperature_K)

    @property
    def native(self) -> Species:
        return self.species[0]

    @property
    def foreign(self) -> tuple[Species, ...]:
        return self.species[1:]

    @property
    def front_species_index(self) -> int:
        """Index in ``species`` of the foreign species that enters at the front
        (``front.species``, default the first foreign species)."""
        names = [s.name for s in self.species]
        if isinstance(self.front, AnodeFront):
            return None  # nothing enters
        return names.index(self.front.species) if self.front.species is not None else 1

    @property
    def beam_species(self) -> Species:
        """The foreign species that enters at the front."""
        return self.species[self.front_species_index]


@dataclass(frozen=True)
class Experiment:
    """A complete CAIT run: what :func:`cait_fem.simulate` takes. ``species`` is stored
    native first, then the foreign species in the order given."""

    glass: Glass
    species: tuple[Species, ...]
    front: Front
    run: RunSettings
    back: BackElectrode = BackElectrode()
    mesh: MeshSettings = MeshSettings()
    solver: SolverSettings = SolverSettings()
    name: str = "cait"
    #: the sample's shape, beam spot and back electrode (default: a 1D slab)
    geometry: Geometry = Geometry()
    #: "ideal": J_i = -D_i (grad n_i + z_i n_i grad psi) (docs/model.md section 2, the paper's
    #: form); "thermodynamic": J_i = -(D_i n_i / k_B T) grad(mu_i + z_i e phi), with mu_i
    #: the site-energy-distribution Fermi level for an SED law (ideal mu for the others).
    flux: str = "ideal"

    def __post_init__(self):
        # The physics checks (species, front, flux) and the canonical species order are
        # Physics's; building it here validates them.
        physics = Physics(self.glass, tuple(self.species), self.front, self.back, self.flux)
        object.__setattr__(self, "species", physics.species)
        object.__setattr__(self, "_physics", physics)  # validated once; not a field
        require(isinstance(self.geometry, Geometry), "geometry", self.geometry, "a cait_fem.case.geometry.Geometry")
        if isinstance(self.front, Beam) and self.front.has_history:
            end = self.front.current_times_s[-1]
            require(end >= self.run.t_end_s, "front.current_times_s", f"[..., {end!r}]",
                     f"the beam history must reach run.t_end_s = {self.run.t_end_s!r} s (its last time is {end!r} s)")
        if self.mesh.front_spacing_m is not None:
            require(self.mesh.front_spacing_m < self.glass.thickness_m, "mesh.front_spacing_m",
                     self.mesh.front_spacing_m, f"must be < glass.thickness_m = {self.glass.thickness_m!r}")
        # resolved once: the mesh a Simulation builds for this case (pure, microseconds)
        object.__setattr__(self, "_depth_resolution", depth_resolution(self))
        # Before any mesh or step: a mesh beyond mesh.max_cells, or a run that cannot
        # finish in run.max_steps, is refused here, in microseconds.
        check_size(self)

    @property
    def physics(self) -> Physics:
        """The physics part of this experiment (no run, solver, mesh or geometry settings)."""
        return self._physics

    @property
    def depth_resolution(self) -> DepthResolution:
        """The depth rule this case's mesh is built with (:mod:`cait_fem.case.resolution`)."""
        return self._depth_resolution

    @property
    def native(self) -> Species:
        return self.physics.native

    @property
    def foreign(self) -> tuple[Species, ...]:
        return self.physics.foreign

    @property
    def front_species_index(self) -> int:
        """Index in ``species`` of the foreign species that enters at the front."""
        return self.physics.front_species_index

    @property
    def beam_species(self) -> Species:
        """The foreign species that enters at the front."""
        return self.physics.beam_species
