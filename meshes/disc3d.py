"""A 3D glass disc with a circular beam spot and a smaller circular back electrode.

The sample is a disc 5 mm across and 1 mm thick; the beam hits a spot of 0.5 mm
diameter in the middle of the front, and the grounded back electrode is a 2 mm
diameter disc in the middle of the back, so part of the back is free glass
(``back_free``). Spot and electrode are concentric here, so the axisymmetric mesh
would do the same job for a fraction of the cost: this mesh is the starting point for
what is not symmetric (move or reshape the spot in your own gmsh script, keeping the
tags).

Run with ``python meshes/disc3d.py -o disc3d.msh [--overwrite]``.
"""

import argparse

from cait_fem.case.experiment import MeshSettings
from cait_fem.case.geometry import Geometry
from cait_fem.mesh.gmsh_sample import describe_msh, write_msh

# ## The sample
#
# Lengths in metres. In 3D every lateral cell is repeated in every depth layer, so the
# lateral spacing is far coarser than in 2D: 40 um at the spot and electrode rims,
# growing by 40 % per cell up to 300 um (about 2900 triangles on the front).

thickness_m = 1e-3
geometry = Geometry(kind="disc", radius_m=2.5e-3, spot_radius_m=0.25e-3, electrode_radius_m=1e-3,
                    rim_spacing_m=40e-6, lateral_growth_ratio=1.4, lateral_max_spacing_m=300e-6)

# ## The depth grading
#
# Coarser than the 1D default, for the same reason: 5 nm layers over the first 100 nm
# (graded from 0.5 nm at the surface), growing by 40 % per layer to 50 um: 69 layers,
# 3 tetrahedra per front triangle and layer. That resolves a front of some tens of nm;
# refine where the case needs it and watch the cell count.

mesh_settings = MeshSettings(front_spacing_m=5e-9, surface_spacing_m=0.5e-9, fine_depth_m=100e-9,
                             growth_ratio=1.4, bulk_spacing_m=50e-6)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="disc3d.msh", help="mesh file to write (.msh)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    args = parser.parse_args()
    path = write_msh(geometry, thickness_m, mesh_settings, args.output, overwrite=args.overwrite)
    print(f"wrote {path}: {describe_msh(path)}")
