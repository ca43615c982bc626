"""Running an experiment: ``Simulation`` (mesh -> forms -> solver -> Result), checkpoints and
restart, and progress reporting.
"""
