"""A 2D cross-section through a strip-shaped beam spot.

The sample is a 1 mm thick glass plate, 5 mm wide, with a 0.5 mm wide strip of beam
across its front and a grounded electrode covering its whole back. Along the strip
nothing changes, so a cross-section (x, depth) carries the whole problem, and the mirror
plane through the middle of the strip halves it: x runs from 0 (the mirror plane,
tagged ``axis``) to the side of the plate (``side``). Results are per metre of strip.

Run with ``python meshes/section2d.py -o section2d.msh [--overwrite]``; the case file
then points at it with ``[geometry] kind = "section"``, ``mesh_file = "section2d.msh"``
(or lets cait_fem build the same mesh from the same parameters, without a file).
"""

import argparse

from cait_fem.case.experiment import MeshSettings
from cait_fem.case.geometry import Geometry
from cait_fem.mesh.gmsh_sample import describe_msh, write_msh

# ## The sample
#
# Lengths in metres. ``radius_m`` is the half-width of the plate (from the mirror plane
# to the side), ``spot_radius_m`` the half-width of the strip. Without
# ``electrode_radius_m`` the back electrode covers the whole back face.

thickness_m = 1e-3
geometry = Geometry(kind="section", radius_m=2.5e-3, spot_radius_m=0.25e-3,
                    # Laterally the fields change fastest at the edge of the strip: 20 nm
                    # cells there, growing by 30 % per cell up to 50 um far from it.
                    rim_spacing_m=20e-9, lateral_growth_ratio=1.3, lateral_max_spacing_m=50e-6)

# ## The depth grading
#
# The same graded layers as the 1D solver (the defaults of a case's ``[mesh]`` table):
# 0.2 nm cells over the first 300 nm where the profiles live, growing to 20 um toward the
# back. The mesh is layered, so the column of nodes at x = 0 is exactly the 1D mesh.

mesh_settings = MeshSettings()

# ## Writing the mesh
#
# The .msh file is written atomically with coordinates in nm (cait_fem's length unit);
# an existing file is kept unless ``--overwrite`` is given.

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="section2d.msh", help="mesh file to write (.msh)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    args = parser.parse_args()
    path = write_msh(geometry, thickness_m, mesh_settings, args.output, overwrite=args.overwrite)
    print(f"wrote {path}: {describe_msh(path)}")
