"""gmsh meshes of 2D/3D samples: lateral grading, tags, measures, the layered depth
columns, parallel distribution, mesh files and their errors.

Expected values are computed independently of the mesh: analytic lengths, areas and
volumes of the sample, and the 1D grading of cait_fem.mesh.depth_grading for the depth layers."""

import json
import math
import subprocess
import sys

import numpy as np
import pytest
from support.compare import approx
from support.meshes import ELECTRODE_M, MESH, NM, R_M, SPOT_M, T_M, measures, sample_geometry
from support.paths import BIN, ROOT, script_prelude

from cait_fem.case.experiment import MeshSettings
from cait_fem.case.geometry import Geometry
from cait_fem.cli import main as cli_main
from cait_fem.errors import ConfigError
from cait_fem.fileio import leftover_temp_files
from cait_fem.mesh import tags
from cait_fem.mesh.depth_grading import graded_nodes_m
from cait_fem.mesh.gmsh_sample import build_gmsh_model, create_mesh, gmsh_session, validate_facet_tags, write_msh
from cait_fem.mesh.lateral_grading import lateral_nodes_m

# DOLFINx is imported inside the tests that need it, so that collecting this module needs none.


@pytest.fixture(scope="module")
def meshes():
    """One mesh per kind (serial), the spot and electrode rims inside the sample."""
    from mpi4py import MPI
    return {kind: create_mesh(MPI.COMM_WORLD, sample_geometry(kind), T_M, MESH, NM)
            for kind in ("section", "axisymmetric", "disc", "box")}


# -- lateral grading ------------------------------------------------------------------

def test_lateral_nodes_hit_the_rims_and_grow_from_them():
    h0, g, h_max = 1e-7, 1.3, 5e-6
    x = lateral_nodes_m(1e-4, [3e-5, None, 6e-5], h0, g, h_max)
    d = np.diff(x)
    assert x[0] == 0.0 and x[-1] == 1e-4 and np.all(d > 0)
    for rim in (3e-5, 6e-5):
        i = int(np.flatnonzero(x == rim)[0])  # the rim is a node exactly
        assert d[i - 1] == approx(h0) and d[i] == approx(h0)
        # away from the rim: h0, h0 g, h0 g^2, ...
        assert d[i:i + 5] == approx(h0 * g ** np.arange(5), rel=1e-9)
        assert d[i - 5:i][::-1] == approx(h0 * g ** np.arange(5), rel=1e-9)
    assert d.max() <= 1.5 * h_max and np.sum(d > h_max * (1 + 1e-9)) <= 2  # capped (a merged last cell)
    ratio = d[1:] / d[:-1]
    assert ratio.min() >= 0.5 / g and ratio.max() <= 1.5 * g  # no sliver cells
    # symmetric between the two rims
    between = d[(x[:-1] >= 3e-5) & (x[1:] <= 6e-5)]
    assert between == approx(between[::-1], rel=1e-9)


def test_lateral_nodes_without_rims_are_uniform_and_coarse():
    for rims in ([], [None], [1e-4, 2e-4]):  # a spot or electrode at or beyond the side is no rim
        x = lateral_nodes_m(1e-4, rims, 1e-7, 1.3, 3e-5)
        assert len(x) == 5 and np.diff(x) == approx(np.full(4, 2.5e-5))
    assert lateral_nodes_m(1e-4, [], 1e-7, 1.3, 1e-3).tolist() == [0.0, 5e-5, 1e-4]  # at least 2 cells


def test_lateral_nodes_no_sliver_at_the_side():
    x = lateral_nodes_m(1e-4, [5e-5], 1e-6, 1.5, 1e-5)
    d = np.diff(x)
    assert d[-1] >= 0.5 * d[-2] and d[0] >= 0.5 * d[1]


# -- generated meshes -----------------------------------------------------------------

@pytest.mark.dolfinx
def test_section_measures(meshes):
    from dolfinx.mesh import CellType
    domain, cell_tags, facet_tags = meshes["section"]
    m = measures(domain, facet_tags)
    L, T = R_M / NM, T_M / NM
    expected = {"volume": L * T, "beam_spot": SPOT_M / NM, "front_unexposed": L - SPOT_M / NM,
                "back_electrode": ELECTRODE_M / NM, "back_free": L - ELECTRODE_M / NM, "side": T, "axis": T}
    for key, value in expected.items():
        assert m[key] == approx(value, rel=1e-12), key
    assert domain.topology.cell_type == CellType.triangle
    assert np.all(cell_tags.values == tags.GLASS)


@pytest.mark.dolfinx
def test_axisymmetric_measures(meshes):
    domain, _, facet_tags = meshes["axisymmetric"]
    m = measures(domain, facet_tags, weight_r=True)  # int r ds = (area of the disc) / (2 pi)
    R, T = R_M / NM, T_M / NM
    expected = {"volume": R**2 / 2 * T, "beam_spot": (SPOT_M / NM) ** 2 / 2,
                "back_electrode": (ELECTRODE_M / NM) ** 2 / 2, "side": R * T, "axis": 0.0,
                "front_unexposed": (R**2 - (SPOT_M / NM) ** 2) / 2}
    for key, value in expected.items():
        assert m[key] == approx(value, rel=1e-12, abs=1e-6), key


@pytest.mark.dolfinx
@pytest.mark.parametrize("kind", ["disc", "box"])
def test_3d_measures(meshes, kind):
    from dolfinx.mesh import CellType
    domain, cell_tags, facet_tags = meshes[kind]
    m = measures(domain, facet_tags)
    R, T, rs, re = R_M / NM, T_M / NM, SPOT_M / NM, ELECTRODE_M / NM
    face = math.pi * R**2 if kind == "disc" else 4 * R**2
    # Circles are polygons with vertices on the circle: inscribed, a little smaller.
    for key, area in (("beam_spot", math.pi * rs**2), ("back_electrode", math.pi * re**2)):
        assert 0.97 * area < m[key] < area, key
    assert m["beam_spot"] + m["front_unexposed"] == approx(m["back_electrode"] + m["back_free"], rel=1e-12)
    if kind == "box":  # straight outer faces: exact
        assert m["volume"] == approx(face * T, rel=1e-12)
        assert m["side"] == approx(8 * R * T, rel=1e-12)
        assert m["beam_spot"] + m["front_unexposed"] == approx(face, rel=1e-12)
    else:
        assert 0.98 * face * T < m["volume"] < face * T
        assert 0.98 * 2 * math.pi * R * T < m["side"] < 2 * math.pi * R * T
    assert m["axis"] == 0.0
    assert domain.topology.cell_type == CellType.tetrahedron
    assert np.all(cell_tags.values == tags.GLASS)


@pytest.mark.dolfinx
@pytest.mark.parametrize("kind", ["section", "axisymmetric", "disc", "box"])
def test_axis_column_is_the_1d_mesh(meshes, kind):
    domain = meshes[kind][0]
    x = domain.geometry.x
    lateral = np.max(np.abs(x[:, : domain.geometry.dim - 1]), axis=1)
    column = np.sort(x[lateral == 0.0, domain.geometry.dim - 1])
    assert column == approx(graded_nodes_m(T_M, MESH) / NM, rel=1e-12, abs=1e-9)


def test_fine_surface_layers_of_a_mm_sample_survive():
    """The 0.01 nm surface layers of the default grading under a 1 mm sample: gmsh's
    default geometric tolerance (1e-8 of the model size) would merge them."""
    settings = MeshSettings()
    geometry = Geometry(kind="axisymmetric", radius_m=2.5e-3, spot_radius_m=0.25e-3, rim_spacing_m=50e-6,
                        lateral_growth_ratio=2.0, lateral_max_spacing_m=1e-3)
    depth_nm = graded_nodes_m(1e-3, settings) / NM
    with gmsh_session() as gmsh:
        build_gmsh_model(geometry, 1e-3, settings)
        xyz = gmsh.model.mesh.getNodes()[1].reshape(-1, 3)
        n_cells = sum(len(t) for t in gmsh.model.mesh.getElements(2)[1])
    column = np.sort(xyz[xyz[:, 0] == 0.0, 1])
    assert len(column) == len(depth_nm) and np.max(np.abs(column - depth_nm)) < 1e-9
    n_lateral = len(lateral_nodes_m(2.5e-3, [0.25e-3], 50e-6, 2.0, 1e-3)) - 1
    assert n_cells == 2 * n_lateral * (len(depth_nm) - 1)  # every layer and column present


@pytest.mark.dolfinx
def test_whole_face_spot_and_electrode():
    from mpi4py import MPI
    domain, _, facet_tags = create_mesh(MPI.COMM_WORLD, sample_geometry("section", spot=None, electrode=R_M),
                                        T_M, MESH, NM)
    m = measures(domain, facet_tags)
    assert m["beam_spot"] == approx(R_M / NM, rel=1e-12)
    assert m["back_electrode"] == approx(R_M / NM, rel=1e-12)
    assert not {tags.FRONT_UNEXPOSED, tags.BACK_FREE} & set(np.unique(facet_tags.values).tolist())
    with gmsh_session() as gmsh:
        build_gmsh_model(sample_geometry("disc", spot=None, electrode=None), T_M, MESH)
        names = {gmsh.model.getPhysicalName(d, t) for d, t in gmsh.model.getPhysicalGroups()}
    assert names == {"glass", "beam_spot", "back_electrode", "side"}


@pytest.mark.dolfinx
def test_length_scale_rescales_coordinates(meshes):
    from mpi4py import MPI
    domain, _, _ = create_mesh(MPI.COMM_WORLD, sample_geometry("section"), T_M, MESH, 1e-6)  # um units
    assert domain.geometry.x[:, 1].max() == approx(T_M / 1e-6, rel=1e-12)
    assert domain.geometry.x[:, 0].max() == approx(R_M / 1e-6, rel=1e-12)


# -- mesh files -----------------------------------------------------------------------

@pytest.mark.dolfinx
def test_written_file_reads_back_the_same(meshes, tmp_path):
    from mpi4py import MPI
    path = write_msh(sample_geometry("disc"), T_M, MESH, tmp_path / "disc.msh")
    assert path.read_text()[:30].startswith("$MeshFormat\n4.1")
    domain, _, facet_tags = create_mesh(MPI.COMM_WORLD, sample_geometry("disc", mesh_file=str(path)), T_M, MESH,
                                        NM)
    ref_domain, _, ref_tags = meshes["disc"]
    assert domain.topology.index_map(3).size_global == ref_domain.topology.index_map(3).size_global
    got, ref = measures(domain, facet_tags), measures(ref_domain, ref_tags)
    assert got == approx(ref, rel=1e-12)


def test_write_msh_refuses_to_overwrite(tmp_path):
    path = tmp_path / "section.msh"
    path.write_text("earlier mesh")
    with pytest.raises(ConfigError, match="section.msh.*already exists"):
        write_msh(sample_geometry("section"), T_M, MESH, path)
    assert path.read_text() == "earlier mesh"
    write_msh(sample_geometry("section"), T_M, MESH, path, overwrite=True)
    assert path.read_text().startswith("$MeshFormat") and not leftover_temp_files(tmp_path)
    with pytest.raises(ConfigError, match=r"\.msh"):
        write_msh(sample_geometry("section"), T_M, MESH, tmp_path / "section.vtk")


def _hand_made_msh(path, groups, thickness=1e5, width=1e5, dim=2):
    """A square (x, depth) in [0, width] x [0, thickness] (3D: a cube) with the given
    physical groups {name: (number, [faces])}, faces among front/back/side/axis."""
    with gmsh_session() as gmsh:
        occ = gmsh.model.occ
        if dim == 2:
            occ.addRectangle(0, 0, 0, width, thickness)
        else:
            occ.addBox(0, 0, 0, width, width, thickness)
        occ.synchronize()
        k = dim - 1
        faces = {"front": [], "back": [], "side": [], "axis": []}
        for d, e in gmsh.model.getEntities(dim - 1):
            lo, hi = np.split(np.array(gmsh.model.getBoundingBox(d, e)), 2)
            key = ("front" if hi[k] < 0.5 * thickness else "back" if lo[k] > 0.5 * thickness
                   else "axis" if hi[0] < 0.5 * width else "side")
            faces[key].append(e)
        for name, (number, which) in groups.items():
            entities = [e for w in which for e in faces[w]] if which != "cells" else [1]
            gmsh.model.addPhysicalGroup(dim if which == "cells" else dim - 1, entities, number, name)
        gmsh.model.mesh.setSize(gmsh.model.getEntities(0), width / 4)
        gmsh.model.mesh.generate(dim)
        gmsh.write(str(path))
    return path


GOOD = {"glass": (1, "cells"), "beam_spot": (1, ["front"]), "back_electrode": (2, ["back"]),
        "side": (4, ["side"]), "axis": (6, ["axis"])}


def _read(path, kind="section", **kw):
    from mpi4py import MPI
    return create_mesh(MPI.COMM_WORLD, Geometry(kind=kind, mesh_file=str(path), **kw), T_M, MESH, NM)


@pytest.mark.dolfinx
def test_own_mesh_file_groups_are_numbered_by_name(tmp_path):
    groups = {name: (10 + number, faces) for name, (number, faces) in GOOD.items()}  # gmsh's own numbering
    domain, _, facet_tags = _read(_hand_made_msh(tmp_path / "own.msh", groups))
    m = measures(domain, facet_tags)
    assert m["beam_spot"] == approx(1e5, rel=1e-12) and m["back_electrode"] == approx(1e5, rel=1e-12)
    assert m["axis"] == approx(1e5, rel=1e-12) and m["side"] == approx(1e5, rel=1e-12)


@pytest.mark.dolfinx
def test_own_mesh_file_in_other_units(tmp_path):
    path = _hand_made_msh(tmp_path / "um.msh", GOOD, thickness=100.0, width=50.0)  # um
    domain, _, facet_tags = _read(path, mesh_unit_m=1e-6)
    assert domain.geometry.x[:, 1].max() == approx(1e5, rel=1e-12)
    assert measures(domain, facet_tags)["beam_spot"] == approx(5e4, rel=1e-12)
    with pytest.raises(ConfigError, match="glass.thickness_m"):  # read as nm: 100 nm thick, not 100 um
        _read(path)


@pytest.mark.dolfinx
def test_mesh_file_without_back_electrode(tmp_path):
    groups = {k: v for k, v in GOOD.items() if k != "back_electrode"}
    path = _hand_made_msh(tmp_path / "no_back.msh", groups)
    with pytest.raises(ConfigError, match="'back_electrode' \\(number 2\\) is missing") as info:
        _read(path)
    assert "no_back.msh" in str(info.value) and "beam_spot (1)" in str(info.value)


@pytest.mark.dolfinx
def test_mesh_file_with_a_facet_in_two_groups(tmp_path):
    groups = dict(GOOD, side=(4, ["side", "axis"]))
    with pytest.raises(ConfigError, match="'side' and 'axis'|'axis' and 'side'"):
        _read(_hand_made_msh(tmp_path / "overlap.msh", groups))


@pytest.mark.dolfinx
def test_mesh_file_dimension_and_existence(tmp_path):
    path = _hand_made_msh(tmp_path / "square.msh", GOOD)
    with pytest.raises(ConfigError, match="2D mesh.*'disc' needs a 3D"):
        _read(path, kind="disc")
    with pytest.raises(ConfigError, match="nowhere.msh.*does not exist"):
        _read(tmp_path / "nowhere.msh")
    with pytest.raises(ConfigError, match="no physical groups"):
        _read(_hand_made_msh(tmp_path / "bare.msh", {}))


@pytest.mark.dolfinx
def test_validate_facet_tags_errors():
    from mpi4py import MPI

    from dolfinx.mesh import create_unit_square, locate_entities, meshtags
    domain = create_unit_square(MPI.COMM_WORLD, 4, 4)
    fdim = 1
    domain.topology.create_connectivity(fdim, 2)
    front = locate_entities(domain, fdim, lambda x: np.isclose(x[1], 0.0))
    back = locate_entities(domain, fdim, lambda x: np.isclose(x[1], 1.0))
    middle = locate_entities(domain, fdim, lambda x: np.isclose(x[1], 0.5))

    def tagged(*pairs):
        idx = np.concatenate([p[0] for p in pairs]).astype(np.int32)
        val = np.concatenate([np.full(len(p[0]), p[1], dtype=np.int32) for p in pairs])
        order = np.argsort(idx, kind="stable")
        return meshtags(domain, fdim, idx[order], val[order])

    validate_facet_tags(domain, tagged((front, 1), (back, 2)), "unit square")  # complete: no error
    with pytest.raises(ConfigError, match="unit square.*'back_electrode' \\(number 2\\) is missing"):
        validate_facet_tags(domain, tagged((front, 1)), "unit square")
    with pytest.raises(ConfigError, match="values \\[9\\]"):
        validate_facet_tags(domain, tagged((front, 1), (back, 2), (middle, 9)), "unit square")
    with pytest.raises(ConfigError, match="tagged side are not on the boundary"):
        validate_facet_tags(domain, tagged((front, 1), (back, 2), (middle, 4)), "unit square")


# -- command line and scripts ---------------------------------------------------------

@pytest.mark.dolfinx
def test_cli_mesh(tmp_path, capsys):
    case = (ROOT / "demos" / "k_cait.toml").read_text().replace("thickness_m = 1e-3", "thickness_m = 1e-4")
    slab = tmp_path / "slab.toml"
    slab.write_text(case)
    assert cli_main(["mesh", str(slab), "-o", str(tmp_path / "slab.msh")]) == 2
    assert "a 1D slab needs no mesh file" in capsys.readouterr().err
    section = tmp_path / "section.toml"
    section.write_text(case + '\n[mesh]\nfront_spacing_m = 2e-9\nfine_depth_m = 50e-9\ngrowth_ratio = 1.3\n'
                       'bulk_spacing_m = 50e-6\n\n[geometry]\nkind = "section"\nradius_m = 1e-4\n'
                       'spot_radius_m = 3e-5\nrim_spacing_m = 2e-6\nlateral_max_spacing_m = 20e-6\n')
    out = tmp_path / "section.msh"
    assert cli_main(["mesh", str(section), "-o", str(out)]) == 0
    domain, _, facet_tags = _read(out)
    assert measures(domain, facet_tags)["beam_spot"] == approx(3e4, rel=1e-12)
    assert cli_main(["mesh", str(section), "-o", str(out)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert cli_main(["mesh", str(section), "-o", str(out), "--overwrite"]) == 0


# -- parallel -------------------------------------------------------------------------

MPI_SCRIPT = """
import json
from mpi4py import MPI
from cait_fem.mesh.gmsh_sample import create_mesh
from support.meshes import sample_geometry, measures, MESH, T_M, NM
out = {}
for kind in ("section", "axisymmetric", "disc"):
    domain, _, facet_tags = create_mesh(MPI.COMM_WORLD, sample_geometry(kind), T_M, MESH, NM)
    tdim = domain.topology.dim
    out[kind] = dict(measures(domain, facet_tags, weight_r=kind == "axisymmetric"),
                     cells=domain.topology.index_map(tdim).size_global,
                     local=domain.topology.index_map(tdim).size_local)
if MPI.COMM_WORLD.rank == 0:
    print(json.dumps(out))
"""


@pytest.mark.dolfinx
@pytest.mark.mpi
def test_two_ranks_give_the_same_mesh(meshes):
    proc = subprocess.run([str(BIN / "mpirun"), "-n", "2", sys.executable, "-c", script_prelude() + MPI_SCRIPT],
                          capture_output=True, text=True, timeout=300, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr
    parallel = json.loads(proc.stdout.strip().splitlines()[-1])
    for kind, got in parallel.items():
        domain, _, facet_tags = meshes[kind]
        serial = measures(domain, facet_tags, weight_r=kind == "axisymmetric")
        assert got["cells"] == domain.topology.index_map(domain.topology.dim).size_global
        assert 0 < got["local"] < got["cells"]  # really distributed
        for key, value in serial.items():
            assert got[key] == approx(value, rel=1e-10, abs=1e-6), (kind, key)
