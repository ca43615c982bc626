"""Sample geometries and mesh measures for the gmsh mesh tests and their MPI child script.
Lengths in m, mesh coordinates in nm. DOLFINx and UFL are imported inside ``measures``, so
importing this module needs none."""

from cait_fem.case.experiment import MeshSettings
from cait_fem.case.geometry import Geometry
from cait_fem.mesh import tags

MESH = MeshSettings(front_spacing_m=2e-9, fine_depth_m=50e-9, growth_ratio=1.3, bulk_spacing_m=50e-6,
                    estimate_spatial_error=False)
T_M, R_M, SPOT_M, ELECTRODE_M = 1e-4, 1e-4, 0.3e-4, 0.6e-4
NM = 1e-9  # the solver's length scale: mesh coordinates in nm
LATERAL = {"2": dict(rim_spacing_m=2e-6, lateral_max_spacing_m=20e-6),
           "3": dict(rim_spacing_m=10e-6, lateral_max_spacing_m=40e-6)}


def sample_geometry(kind, spot=SPOT_M, electrode=ELECTRODE_M, **kw):
    """A sample of radius R_M with the spot and electrode rims inside (radii in m)."""
    lateral = LATERAL[str(Geometry(kind=kind, radius_m=R_M).dimension)]
    return Geometry(kind=kind, radius_m=R_M, spot_radius_m=spot, electrode_radius_m=electrode, **lateral, **kw)


def measures(domain, facet_tags, weight_r=False):
    """Volume and the measure of every facet tag (weighted by x[0] for axisymmetric
    measures), in nm units, summed over ranks."""
    from mpi4py import MPI

    import ufl
    from dolfinx import fem

    ds = ufl.Measure("ds", domain, subdomain_data=facet_tags)
    w = ufl.SpatialCoordinate(domain)[0] if weight_r else fem.Constant(domain, 1.0)

    def total(form):
        return domain.comm.allreduce(fem.assemble_scalar(fem.form(form)), op=MPI.SUM)

    out = {"volume": total(w * ufl.dx(domain=domain))}
    out.update({name: total(w * ds(number)) for name, number in tags.FACET_TAGS.items()})
    return out
