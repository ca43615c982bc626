"""Field output of 2D/3D runs (cait_fem.post.sampling, cait_fem.post.fields): point sampling that is exact
for P1-representable fields and identical in serial and under `mpirun -n 2`, line profiles
(CSV/PNG), the VTX time series and the window PNG."""

import csv
import glob
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from support.fields import (
    POTENTIAL_V,
    SPECIES,
    box,
    expected,
    interval,
    linear_state,
    square,
    state_on,
    structured_points,
)
from support.paths import BIN, script_prelude

TOL = 1e-12

# DOLFINx is imported inside the tests, so that collecting this module needs none.
pytestmark = pytest.mark.dolfinx


@pytest.mark.parametrize("make", [interval, square, lambda: square(cell="quadrilateral"), box],
                         ids=["interval", "triangles", "quadrilaterals", "tetrahedra"])
def test_sampler_reproduces_p1_fields_exactly(make):
    from mpi4py import MPI

    from cait_fem.post.sampling import PointSampler
    domain = make()
    forms = state_on(domain)
    pts = structured_points(domain, np.random.default_rng(7))
    sampler = PointSampler(domain, pts)
    got = sampler.values(forms.u)
    assert got.shape == (len(pts), 3)
    assert np.max(np.abs(got - expected(pts))) < TOL
    assert MPI.COMM_WORLD.allreduce(sampler.n_local) == len(pts)
    # reusable: a changed function is re-evaluated with the same ownership
    forms.u.x.array[:] *= -2.0
    assert np.max(np.abs(sampler.values(forms.u) - expected(pts, -2.0))) < TOL


def test_points_outside_the_mesh_are_named():
    from cait_fem.post.sampling import PointSampler
    domain = square()
    inside, above_front, beyond_side = [50.0, 100.0], [20.0, -1.0], [450.0, 10.0]
    with pytest.raises(ValueError, match=r"2 of 3 sample points lie outside") as info:
        PointSampler(domain, [inside, above_front, beyond_side])
    assert "(20.0, -1.0)" in str(info.value) and "(450.0, 10.0)" in str(info.value)
    assert "(50.0, 100.0)" not in str(info.value)
    with pytest.raises(ValueError, match="shape"):
        PointSampler(domain, [[1.0, 2.0, 3.0]])


def test_sampler_refuses_a_function_on_another_mesh():
    from cait_fem.post.sampling import PointSampler

    domain, other = square(), square()
    sampler = PointSampler(domain, [[50.0, 100.0]])
    assert sampler.values(state_on(domain).u).shape == (1, 3)
    with pytest.raises(ValueError, match="another mesh"):
        sampler.values(state_on(other).u)


def test_line_helpers():
    from cait_fem.post.sampling import depth_line, lateral_line
    sq, bx = square(), box()
    assert np.array_equal(depth_line(sq, [0, 5]), [[0, 0], [0, 5]])
    assert np.array_equal(depth_line(sq, [0, 5], [100]), [[100, 0], [100, 5]])
    assert np.array_equal(depth_line(bx, [7]), [[0, 0, 7]])
    assert np.array_equal(lateral_line(sq, 30, [0, 10]), [[0, 30], [10, 30]])
    assert np.array_equal(lateral_line(bx, 30, [-10, 10]), [[-10, 0, 30], [10, 0, 30]])
    with pytest.raises(ValueError, match="lateral_nm needs 2"):
        depth_line(bx, [1.0], [5.0])
    with pytest.raises(ValueError, match="no lateral extent"):
        lateral_line(interval(), 10, [0.0])
    assert np.array_equal(depth_line(interval(), [3.0]), [[3.0]])


def _read_csv(path):
    with open(path, newline="") as fh:
        rows = list(csv.reader(fh))
    return rows[0], np.array(rows[1:], dtype=float)


@pytest.mark.parametrize("along", ["depth", "lateral"])
def test_line_profile_csv_and_png(tmp_path, along):
    from cait_fem.post.fields import write_line_profile
    from cait_fem.post.sampling import PointSampler, depth_line, lateral_line, sample_line_profile
    domain = square()
    forms = state_on(domain)
    if along == "depth":
        pts = depth_line(domain, np.linspace(0, 300, 31), [100.0])
    else:
        pts = lateral_line(domain, 50.0, np.linspace(0, 400, 41))
    profile = sample_line_profile(PointSampler(domain, pts), forms.u, SPECIES, POTENTIAL_V, along)
    paths = write_line_profile(profile, tmp_path / "p.csv", tmp_path / "p.png")
    assert paths == [tmp_path / "p.csv", tmp_path / "p.png"]
    header, rows = _read_csv(tmp_path / "p.csv")
    assert header == [f"{along}_nm", "theta_Li", "theta_K", "phi_V"]
    exact = expected(pts)
    assert np.array_equal(rows[:, 0], pts[:, -1] if along == "depth" else pts[:, 0])
    assert np.max(np.abs(rows[:, 1] - (1.0 + exact[:, 0]))) < TOL  # native theta = 1 + w
    assert np.max(np.abs(rows[:, 2] - exact[:, 1])) < TOL
    assert np.max(np.abs(rows[:, 3] - POTENTIAL_V * exact[:, 2])) < TOL
    assert (tmp_path / "p.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    wrong = "lateral" if along == "depth" else "depth"
    with pytest.raises(ValueError, match="not a line"):
        sample_line_profile(PointSampler(domain, pts), forms.u, SPECIES, POTENTIAL_V, wrong)


def read_bp(path):
    """{"time": [...], "blocks": [(geometry (n, 3), {name: [values per step]})...]} via the
    adios2 module, or None if it is not importable."""
    try:
        import adios2
    except ImportError:
        return None
    with adios2.FileReader(str(path)) as f:
        n_steps = f.num_steps()
        n_blocks = len(f.read("NumberOfNodes"))
        names = [n for n in f.available_variables() if n.startswith(("theta_", "phi_"))]
        blocks = []
        for b in range(n_blocks):
            geom = f.read("geometry", block_id=b, step_selection=[0, 1])
            fields = {n: [f.read(n, block_id=b, step_selection=[s, 1]).reshape(-1) for s in range(n_steps)]
                      for n in names}
            blocks.append((geom, fields))
        return {"time": f.read("step", step_selection=[0, n_steps]).reshape(-1), "blocks": blocks}


def check_bp(path, times, scales):
    """What can be checked of a written .bp: one directory; with adios2, every block's values
    against the analytic fields at its node coordinates (nm) at every step."""
    assert path.is_dir() and (path / "md.idx").is_file()
    data = read_bp(path)
    if data is None:
        return 0
    assert np.array_equal(data["time"], times)
    for geom, fields in data["blocks"]:
        assert sorted(fields) == ["phi_V", "theta_K", "theta_Li"]
        for s, scale in enumerate(scales):
            exact = expected(geom[:, :2], scale)
            assert np.max(np.abs(fields["theta_Li"][s] - (1.0 + exact[:, 0]))) < TOL
            assert np.max(np.abs(fields["theta_K"][s] - exact[:, 1])) < TOL
            assert np.max(np.abs(fields["phi_V"][s] - POTENTIAL_V * exact[:, 2])) < TOL
    return len(data["blocks"])


def bp_holds(path, arrays) -> bool:
    """Raw check without adios2: the bytes of each written array occur in the data files
    (BP stores uncompressed local blocks)."""
    blob = b"".join(Path(p).read_bytes() for p in glob.glob(str(path / "data.*")))
    return all(np.ascontiguousarray(a).tobytes() in blob for a in arrays)


def test_field_writer_serial(tmp_path):
    from mpi4py import MPI

    from cait_fem.post.fields import FieldWriter
    domain = square(MPI.COMM_SELF)
    forms = state_on(domain)
    path = tmp_path / "fields.bp"
    written = []
    with FieldWriter(path, forms, SPECIES, POTENTIAL_V) as writer:
        functions = dict(writer.functions)
        for t_s, scale in ((0.0, 1.0), (2.5, -3.0)):
            forms.u.interpolate(lambda x, c=scale: c * linear_state(x, 2))
            writer.write(t_s)
            assert all(writer.functions[k] is functions[k] for k in functions)  # made once
            x = writer.functions["phi_V"].function_space.tabulate_dof_coordinates()
            exact = expected(x[:, :2], scale)
            f = writer.functions
            assert np.max(np.abs(f["theta_Li"].x.array - (1.0 + exact[:, 0]))) < TOL
            assert np.max(np.abs(f["theta_K"].x.array - exact[:, 1])) < TOL
            assert np.max(np.abs(f["phi_V"].x.array - POTENTIAL_V * exact[:, 2])) < TOL
            written += [g.x.array.copy() for g in f.values()]
        with pytest.raises(ValueError, match="after the last"):
            writer.write(2.5)
    assert [p.name for p in tmp_path.iterdir()] == ["fields.bp"]
    assert bp_holds(path, written)
    assert check_bp(path, [0.0, 2.5], [1.0, -3.0]) in (0, 1)
    with pytest.raises(FileExistsError, match="overwrite"):
        FieldWriter(path, forms, SPECIES, POTENTIAL_V)
    with pytest.raises(ValueError, match=".bp"):
        FieldWriter(tmp_path / "f.vtx", forms, SPECIES, POTENTIAL_V)


def _png_rows(path):
    from PIL import Image
    return np.asarray(Image.open(path).convert("L"), dtype=float)


def test_window_png_depth_points_down(tmp_path):
    from cait_fem.post.fields import plot_field_window
    from cait_fem.post.sampling import WindowSampler
    domain = square()
    forms = state_on(domain)
    window = ((0.0, 200.0), (0.0, 300.0))
    sampler = WindowSampler(domain, *window, shape=(21, 31))
    values = sampler.values(forms.u)
    lat, dep = np.meshgrid(sampler.lateral_nm, sampler.depth_nm)
    assert np.max(np.abs(sampler.grid(values[:, 1]) - (0.2 + 1e-3 * dep))) < TOL
    assert np.max(np.abs(sampler.grid(values[:, 0]) - (-0.3 + 1e-3 * lat - 5e-4 * dep))) < TOL
    # theta_K grows with depth; on a white-to-black map the top (front) must be the lighter
    out = plot_field_window(sampler, forms.u, "theta_K", None, tmp_path / "w.png",
                            species_names=SPECIES, cmap="Greys", contour_levels=[0.3])
    img = _png_rows(out)
    column = img[:, int(0.4 * img.shape[1])]
    h = len(column)
    assert column[int(0.2 * h)] > column[int(0.8 * h)] + 60
    with pytest.raises(ValueError, match="outside the mesh"):
        plot_field_window(domain, forms.u, "theta_K", ((-50.0, 100.0), (0.0, 100.0)), tmp_path / "x.png",
                          species_names=SPECIES)
    with pytest.raises(ValueError, match="potential_V"):
        plot_field_window(sampler, forms.u, "phi_V", None, tmp_path / "x.png", species_names=SPECIES)
    assert not (tmp_path / "x.png").exists()


def test_window_in_3d_is_the_plane_y0(tmp_path):
    from cait_fem.post.fields import plot_field_window
    from cait_fem.post.sampling import WindowSampler
    domain = box()
    forms = state_on(domain)
    sampler = WindowSampler(domain, (-100.0, 100.0), (0.0, 200.0), shape=(9, 7))
    assert np.all(sampler.points_nm[:, 1] == 0.0)
    assert np.max(np.abs(sampler.values(forms.u) - expected(sampler.points_nm))) < TOL
    path = plot_field_window(domain, forms.u, 0, ((-100.0, 100.0), (0.0, 200.0)), tmp_path / "b.png",
                             shape=(41, 41))
    assert path.stat().st_size > 0


MPI_SCRIPT = textwrap.dedent("""
    from pathlib import Path
    from mpi4py import MPI
    import numpy as np
    from support.fields import POTENTIAL_V, SPECIES, linear_state, square, state_on, structured_points
    import cait_fem.post.fields as fields_module
    from cait_fem.post.fields import FieldWriter, write_line_profile
    from cait_fem.post.sampling import PointSampler, depth_line, sample_line_profile

    out = Path(sys.argv[1])
    comm = MPI.COMM_WORLD
    domain = square(comm)
    forms = state_on(domain)
    pts = structured_points(domain, np.random.default_rng(3))
    sampler = PointSampler(domain, pts)
    values = sampler.values(forms.u)
    same = comm.allreduce(float(np.max(np.abs(values - comm.bcast(values)))), op=MPI.MAX)
    ghost_cells = comm.allreduce(domain.topology.index_map(2).num_ghosts)
    n_owned = forms.V.dofmap.index_map.size_local * forms.V.dofmap.index_map_bs

    def stale_ghosts():  # what a solver that forgot scatter_forward would leave
        forms.u.x.array[n_owned:] = 1e3

    stale_ghosts()
    ghost_error = float(np.max(np.abs(sampler.values(forms.u) - values)))
    info = [comm.allreduce(sampler.n_local), int(sampler.claims.max()), ghost_cells, same, ghost_error]
    prof = sample_line_profile(PointSampler(domain, depth_line(domain, np.linspace(0, 300, 13), [150.0])),
                               forms.u, SPECIES, POTENTIAL_V)
    calls = []  # which ranks write the CSV
    fields_module.write_csv_atomic = lambda *a, w=fields_module.write_csv_atomic: calls.append(1) or w(*a)
    write_line_profile(prof, out / "profile.csv")
    info.append(comm.allreduce(len(calls)))
    arrays = []
    with FieldWriter(out / "fields.bp", forms, SPECIES, POTENTIAL_V, comm) as w:
        for t_s, scale in ((1.0, 1.0), (4.0, -3.0)):
            forms.u.interpolate(lambda x, c=scale: c * linear_state(x, 2))
            stale_ghosts()
            w.write(t_s)
            arrays += [f.x.array.copy() for f in w.functions.values()]
            exact = scale * linear_state(w.functions["phi_V"].function_space.tabulate_dof_coordinates().T, 2)
            written = np.vstack([f.x.array for f in w.functions.values()])
            converted = np.vstack([1.0 + exact[0], exact[1], POTENTIAL_V * exact[2]])
            info.append(comm.allreduce(float(np.max(np.abs(written - converted))), op=MPI.MAX))
    np.savez(out / "raw" / f"rank{comm.rank}.npz", *arrays)
    if comm.rank == 0:
        np.save(out / "values.npy", values)
        np.save(out / "info.npy", np.array(info, dtype=float))
        print("done")
""")


def _run_script(tmp_path, name, ranks):
    out = tmp_path / name
    (out / "raw").mkdir(parents=True)
    script = tmp_path / "fields_script.py"
    script.write_text(script_prelude() + MPI_SCRIPT)
    cmd = [sys.executable, str(script), str(out)]
    if ranks:
        cmd = [str(BIN / "mpirun"), "-n", str(ranks), *cmd]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.count("done") == 1
    return out


@pytest.mark.mpi
def test_mpirun_two_ranks_equals_serial(tmp_path):
    from mpi4py import MPI
    serial, par = _run_script(tmp_path, "serial", 0), _run_script(tmp_path, "mpi", 2)
    n_points = len(np.load(serial / "values.npy"))
    for out, ranks in ((serial, 1), (par, 2)):
        n_evaluated, max_claims, ghost_cells, rank_spread, ghost_error, csv_writes, *written_error = \
            np.load(out / "info.npy")
        assert csv_writes == 1  # rank 0 only
        assert n_evaluated == n_points and rank_spread == 0.0  # each point once, same on all ranks
        assert ghost_error < TOL and max(written_error) < TOL  # stale ghosts of the state are refreshed
        assert max_claims == ranks  # in parallel some points lie on the partition boundary...
        assert (ghost_cells > 0) == (ranks > 1)  # ...and the mesh has ghost cells
        assert sorted(p.name for p in out.iterdir()) == ["fields.bp", "info.npy", "profile.csv", "raw",
                                                         "values.npy"]
        raw = [a for f in sorted((out / "raw").iterdir()) for a in np.load(f).values()]
        assert len(raw) == 6 * ranks and bp_holds(out / "fields.bp", raw)
        assert check_bp(out / "fields.bp", [1.0, 4.0], [1.0, -3.0]) in (0, ranks)
    v_serial, v_par = np.load(serial / "values.npy"), np.load(par / "values.npy")
    pts = structured_points(square(MPI.COMM_SELF), np.random.default_rng(3))
    assert np.max(np.abs(v_serial - expected(pts))) < TOL
    assert np.max(np.abs(v_par - v_serial)) < TOL
    assert (serial / "profile.csv").read_text() == (par / "profile.csv").read_text() or \
        np.max(np.abs(_read_csv(serial / "profile.csv")[1] - _read_csv(par / "profile.csv")[1])) < TOL
