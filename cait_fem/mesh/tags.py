"""Physical-group tags of every cait_fem mesh (generated or read from a gmsh file).

Facet tags (dimension d-1), name -> number. The forms use only ``beam_spot`` (the beam
influx, or the Dirichlet front of a potential front) and ``back_electrode`` (phi = 0 and
the native exchange); every other boundary is closed (zero normal flux, zero normal
field), so the remaining tags exist for output and for checking that a mesh is complete.
In 1D the front point is ``beam_spot`` and the back point ``back_electrode``.
"""

BEAM_SPOT = 1
BACK_ELECTRODE = 2
FRONT_UNEXPOSED = 3
SIDE = 4
BACK_FREE = 5
AXIS = 6  # the symmetry axis / mirror plane at lateral coordinate 0 (section, axisymmetric)

GLASS = 1  # cell tag

FACET_TAGS = {
    "beam_spot": BEAM_SPOT,
    "back_electrode": BACK_ELECTRODE,
    "front_unexposed": FRONT_UNEXPOSED,
    "side": SIDE,
    "back_free": BACK_FREE,
    "axis": AXIS,
}
CELL_TAGS = {"glass": GLASS}
REQUIRED_FACET_TAGS = ("beam_spot", "back_electrode")


def facet_tag_name(value: int) -> str:
    for name, number in FACET_TAGS.items():
        if number == value:
            return name
    return f"<unknown tag {value}>"
