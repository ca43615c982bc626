"""A 3D rectangular glass block with a circular beam spot and a circular back electrode.

The sample is a 2.5 mm x 2.5 mm block, 1 mm thick, cut from a larger plate; the beam
hits a spot of 0.5 mm diameter in the middle of the front, and the back electrode is a
1 mm diameter disc under it. The lateral coordinates run over [-1.25, 1.25] mm with the
spot centred at the origin; the four cut faces are tagged ``side`` (closed: no flux).

Run with ``python meshes/box3d.py -o box3d.msh [--overwrite]``.
"""

import argparse

from cait_fem.case.experiment import MeshSettings
from cait_fem.case.geometry import Geometry
from cait_fem.mesh.gmsh_sample import describe_msh, write_msh

# ## The sample
#
# Lengths in metres; ``radius_m`` is the half-width of the block. Laterally 25 um cells
# at the spot and electrode rims, growing by 40 % per cell up to 200 um at the sides.

thickness_m = 1e-3
geometry = Geometry(kind="box", radius_m=1.25e-3, spot_radius_m=0.25e-3, electrode_radius_m=0.5e-3,
                    rim_spacing_m=25e-6, lateral_growth_ratio=1.4, lateral_max_spacing_m=200e-6)

# ## The depth grading
#
# As in ``disc3d.py``: 5 nm layers over the first 100 nm, graded from 0.5 nm at the
# surface, then 40 % growth per layer up to 50 um (69 layers).

mesh_settings = MeshSettings(front_spacing_m=5e-9, surface_spacing_m=0.5e-9, fine_depth_m=100e-9,
                             growth_ratio=1.4, bulk_spacing_m=50e-6)

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("-o", "--output", default="box3d.msh", help="mesh file to write (.msh)")
    parser.add_argument("--overwrite", action="store_true", help="replace an existing file")
    args = parser.parse_args()
    path = write_msh(geometry, thickness_m, mesh_settings, args.output, overwrite=args.overwrite)
    print(f"wrote {path}: {describe_msh(path)}")
