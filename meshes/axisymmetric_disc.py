"""An axisymmetric r-z section of a glass disc under a circular beam spot.

The sample is a disc 5 mm across and 1 mm thick; the beam hits a spot of 0.5 mm
diameter in the middle of its front, and a grounded electrode covers its whole back.
Everything is symmetric about the beam axis, so a half-section (r, depth) carries the
problem: the forms carry the weight r (``[geometry] kind = "axisymmetric"``), and a
3D disc costs a 2D mesh. r = 0 is the axis (tagged ``axis``), r = 2.5 mm the rim of
the disc (``side``).

Run with ``python meshes/axisymmetric_disc.py -o axisymmetric_disc.msh [--overwrite]``.
"""

import argparse

from cait_fem.case.experiment import MeshSettings
from cait_fem.case.geometry import Geometry
from cait_fem.mesh.gmsh_sample import describe_msh, write_msh

# ## The sample
#
# Lengths in metres: disc radius 2.5 mm, spot radius 0.25 mm (0.5 mm diameter), 1 mm
# thick. The back electrode covers the whole back (no ``electrode_radius_m``); give
# one smaller than ``radius_m`` for a ring of free back surface around it.

thickness_m = 1e-3
geometry = Geometry(kind="axisymmetric", radius_m=2.5e-3, spot_radius_m=0.25e-3,
                    # 20 nm cells at the spot rim, where the influx stops and the field
                    # bends; 30 % growth per cell away from it, at most 50 um.
                    rim_spacing_m=20e-9, lateral_growth_ratio=1.3, lateral_max_spacing_m=50e-6)

# ## The depth grading
#
# The 1D solver's grading (a case's ``[mesh]`` defaults): the axis column of the mesh
# reproduces the 1D mesh node for node, so the depth profile on the axis is directly
# comparable with a 1D run and with a SIMS profile from the spot centre.

mesh_settings = MeshSettings()

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="axisymmetric_disc.msh", help="mesh file to write (.msh)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    args = parser.parse_args()
    path = write_msh(geometry, thickness_m, mesh_settings, args.output, overwrite=args.overwrite)
    print(f"wrote {path}: {describe_msh(path)}")
