"""Post-processing of DOLFINx fields for 2D/3D runs: parallel point sampling, the axis depth
profile, VTX field output and line/field plots, and the set of files a beam-spot run writes.
"""
