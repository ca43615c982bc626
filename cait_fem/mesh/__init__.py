"""Meshes of the sample: the graded depth nodes and lateral grading (pure), physical-group
tags (pure), the 1D interval mesh, gmsh meshes of 2D/3D samples read through DOLFINx, tag
validation and the lateral-column partitioner.
"""
