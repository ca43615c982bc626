"""Result: a synthetic run (analytic tanh fronts) saved, read back, refused, overwritten, plotted."""

import json
import math

try:
    import tomllib
except ModuleNotFoundError:  # Python 3.10
    import tomli as tomllib

import numpy as np
import pytest
from support.cases import CONTRACT_CASE_TOML
from support.compare import approx

from cait_fem.case.case_file import experiment_from_dict
from cait_fem.fileio import atomic_path, format_csv, leftover_temp_files, to_jsonable, write_text_atomic
from cait_fem.output.result import DATA_FILES, OUTPUT_FILES, PLOT_FILES, Result, check_output_directory

CASE = tomllib.loads(CONTRACT_CASE_TOML)
CASE["name"] = "synthetic"
CASE["run"]["output_times_s"] = [600, 1800]
PLATEAU, WIDTH_M = 0.15, 2e-9


def front_m(t):
    return 60e-9 * math.sqrt(t / 3600.0)


def synthetic_result(stats=None) -> Result:
    exp = experiment_from_dict(CASE)
    depth = np.concatenate([np.linspace(0, 300e-9, 1501), np.geomspace(301e-9, 1e-3, 200)])
    times = np.array(exp.run.all_output_times_s)
    theta = np.empty((times.size, 2, depth.size))
    for k, t in enumerate(times):
        foreign = (1 - PLATEAU) * 0.5 * (1 - np.tanh((depth - front_m(t)) / WIDTH_M))
        theta[k, 1] = foreign
        theta[k, 0] = 1 - foreign + 1e-7 * np.exp(-depth / 1e-9)  # a little excess charge at the surface
    potential = np.array([2.0 * (1 - depth / depth[-1]) * k for k in range(1, times.size + 1)])
    t = np.concatenate([[0.0], np.geomspace(1e-9, 3600.0, 60)])
    influx = 1e-2 / 1.602176634e-19 * t
    return Result(experiment=exp, depth_m=depth, species_names=("Li", "K"), output_times_s=times, theta=theta,
                  potential_V=potential, time_s=t, current_density_A_m2=np.full(t.size, 1e-2),
                  surface_potential_V=np.log1p(t), charge_C_m2=1e-2 * t,
                  foreign_inside_m2=influx * (1 - 1e-6 * np.sin(t)), influx_integral_m2=influx,
                  dt_s=np.concatenate([[0.0], np.diff(t)]), newton_iterations=np.r_[0, np.full(60, 3)],
                  stats=stats if stats is not None else {"steps": 60, "rejected_steps": 2, "newton_iterations": 180,
                                                         "wall_time_s": 1.5, "cells": 1700, "dofs": 5103,
                                                         "odd": np.nan, "count": np.int64(7)},
                  metadata={"scales": {"length_m": 1e-9}, "diffusion_floor_m2_s": {"Li": 1e-29, "K": 5.6e-33}})


@pytest.fixture(scope="module")
def result():
    return synthetic_result()


def read_csv(path):
    header = path.read_text().splitlines()[0].split(",")
    data = np.loadtxt(path, delimiter=",", skiprows=1, ndmin=2)
    return header, data


def test_profile_metrics_and_summary(result):
    prof = result.profile(600.0)
    assert set(prof) == {"Li", "K"} and np.array_equal(prof["K"], result.theta[0, 1])
    assert result.profile(600.0 * (1 + 1e-12)) is not None
    with pytest.raises(ValueError, match="600"):
        result.profile(601.0)
    m = result.metrics()
    assert m["time_s"] == 3600.0
    assert m["plateau_native"] == approx(PLATEAU, abs=1e-3)
    assert m["front_position_m"] == approx(front_m(3600.0), abs=0.5e-9)
    assert 2e-9 < m["front_width_m"] < 8e-9  # 10-90 % of a tanh: 2.2 * WIDTH_M
    assert m["max_excess_charge"] == approx(1e-7, rel=1e-2)
    assert m["max_excess_charge_beyond_1nm"] < 0.5e-7
    assert result.excess_charge.shape == result.potential_V.shape
    s = result.summary()
    for key in ("plateau_native", "front_position_nm", "front_width_nm", "x50_nm", "conservation_error",
                "max_excess_charge", "max_excess_charge_beyond_1nm", "final_current_density_A_m2",
                "final_surface_potential_V", "charge_C_m2", "foreign_inside_m2", "wall_time_s", "steps",
                "rejected_steps", "newton_iterations", "cells", "dofs"):
        assert key in s, key
    assert s["front_position_nm"] == approx(front_m(3600.0) * 1e9, abs=0.5)
    assert s["steps"] == 60 and s["rejected_steps"] == 2 and s["cells"] == 1700
    assert [o["time_s"] for o in s["outputs"]] == [600.0, 1800.0, 3600.0]
    expected = np.max(np.abs(result.foreign_inside_m2 - result.influx_integral_m2)) / result.influx_integral_m2[-1]
    assert s["conservation_error"] == approx(expected) and 0 < s["conservation_error"] < 1.1e-6


def test_save_and_read_back(result, tmp_path):
    out = tmp_path / "run"
    paths = result.save(out)
    assert sorted(p.name for p in paths) == sorted(DATA_FILES)
    header, data = read_csv(out / "profiles.csv")
    assert header == ["time_s", "depth_nm", "theta_Li", "theta_K", "excess_charge", "potential_V"]
    n = result.depth_m.size
    assert data.shape == (3 * n, 6)
    assert np.array_equal(data[:, 0], np.repeat(result.output_times_s, n))
    assert np.array_equal(data[:n, 1], result.depth_m * 1e9)
    assert np.array_equal(data[n:2 * n, 3], result.theta[1, 1])  # exact: shortest round-trip repr
    assert np.array_equal(data[2 * n:, 2], result.theta[2, 0])
    assert np.array_equal(data[:, 4], result.excess_charge.ravel())
    assert np.array_equal(data[2 * n:, 5], result.potential_V[2])
    header, data = read_csv(out / "timeseries.csv")
    assert header == ["time_s", "current_density_A_m2", "surface_potential_V", "charge_C_m2", "foreign_inside_m2",
                      "influx_integral_m2", "dt_s", "newton_iterations", "beam_current_density_A_m2",
                      "delivered_charge_C_m2", "landed_charge_C_m2"]
    # the beam's 1e-2 A/m^2 for t; the synthetic influx lands all of it
    assert np.array_equal(data[:, 8], np.full(result.time_s.size, 1e-2))
    assert data[:, 9] == approx(1e-2 * result.time_s, rel=1e-15)
    assert data[:, 10] == approx(1e-2 * result.time_s, rel=1e-14)
    assert np.array_equal(data[:, 0], result.time_s) and np.array_equal(data[:, 4], result.foreign_inside_m2)
    assert np.array_equal(data[:, 7], result.newton_iterations)
    names = np.genfromtxt(out / "timeseries.csv", delimiter=",", names=True).dtype.names
    assert names[:2] == ("time_s", "current_density_A_m2")  # readable by name, as pandas would

    summary = json.loads((out / "summary.json").read_text())
    assert summary["plateau_native"] == approx(result.summary()["plateau_native"])
    assert summary["odd"] is None and summary["count"] == 7  # NaN -> null, numpy int -> int
    meta = json.loads((out / "metadata.json").read_text())
    assert experiment_from_dict(meta["experiment"]) == result.experiment
    assert meta["parameters"]["glass.thickness_m"] == {"value": 1e-3, "unit": "m"}
    assert meta["columns"]["profiles.csv"]["theta_K"]["unit"] == "1"
    assert meta["columns"]["timeseries.csv"]["charge_C_m2"]["unit"] == "C/m^2"
    assert meta["solver_metadata"]["scales"] == {"length_m": 1e-9}
    assert meta["versions"]["numpy"] == np.__version__ and "python" in meta["versions"]
    assert meta["created_utc"] and isinstance(meta["command_line"], list)
    assert not leftover_temp_files(out)


def test_refuses_to_overwrite_unless_asked(result, tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    result.save(out)  # unrelated files do not count as results
    before = (out / "summary.json").read_text()
    with pytest.raises(FileExistsError, match="--overwrite"):
        result.save(out)
    with pytest.raises(FileExistsError, match="summary.json"):
        check_output_directory(out)
    assert (out / "summary.json").read_text() == before
    (out / "profiles.png").write_bytes(b"stale")
    result.save(out, overwrite=True)
    assert not (out / "profiles.png").exists()  # plots of an older run are not left behind
    assert (out / "notes.txt").read_text() == "mine"
    check_output_directory(out, overwrite=True)
    (tmp_path / "file").write_text("x")
    with pytest.raises(FileExistsError, match="not a directory"):
        check_output_directory(tmp_path / "file")


def test_plot_writes_four_pngs(result, tmp_path):
    out = tmp_path / "plots"
    paths = result.plot(out)
    assert sorted(p.name for p in paths) == sorted(PLOT_FILES)
    for p in paths:
        assert p.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and p.stat().st_size > 5000
    with pytest.raises(FileExistsError, match="--overwrite"):
        result.plot(out)
    assert len(result.plot(out, overwrite=True)) == 4
    assert not leftover_temp_files(out)
    assert set(p.name for p in out.iterdir()) <= set(OUTPUT_FILES)


def test_run_figures_keep_every_label_inside_the_page():
    """The figures have fixed margins (no layout engine): the widest labels they can get
    (linear ticks such as 0.00012, negative potentials, 10^-n ticks) must not be cut off,
    and the suptitle must not run into a panel."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    from cait_fem.output.plots import DPI, run_figures

    hard = synthetic_result()
    hard.current_density_A_m2 = 1.2e-4 * (1 + 0.5 * np.sin(hard.time_s))
    hard.surface_potential_V = -12.5 * np.log1p(hard.time_s) / np.log1p(hard.time_s[-1])
    for res in (synthetic_result(), hard):
        names = []
        for name, fig in run_figures(res):
            names.append(name)
            fig.set_dpi(DPI)
            canvas = FigureCanvasAgg(fig)
            canvas.draw()
            renderer = canvas.get_renderer()
            page = fig.bbox
            boxes = [ax.get_tightbbox(renderer) for ax in fig.axes]
            for box in boxes:
                assert page.x0 - 0.5 <= box.x0 and box.x1 <= page.x1 + 0.5, (name, box, page)
                assert page.y0 - 0.5 <= box.y0 and box.y1 <= page.y1 + 0.5, (name, box, page)
            for text in fig.texts:  # the suptitle
                title = text.get_window_extent(renderer)
                assert title.y1 <= page.y1 + 0.5 and all(title.y0 >= box.y1 for box in boxes), name
        assert names == list(PLOT_FILES)


def test_atomic_write_failure_leaves_old_file_and_no_temp(tmp_path):
    target = tmp_path / "a.txt"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("interrupted")
    assert target.read_text() == "old"
    assert not leftover_temp_files(tmp_path) and [p.name for p in tmp_path.iterdir()] == ["a.txt"]


def test_json_and_csv_helpers():
    assert to_jsonable({"a": np.float32(1.5), "b": [np.nan, np.inf], "c": (np.int8(2),), "d": np.arange(2)}) == \
        {"a": 1.5, "b": [None, None], "c": [2], "d": [0, 1]}
    assert format_csv(["x", "n"], [np.array([0.1, np.nan]), [1, 2]]) == "x,n\n0.1,1\nnan,2\n"
    with pytest.raises(ValueError):
        format_csv(["x"], [[1], [2]])


class FakeComm:
    def __init__(self, rank, root_value=None):
        self.rank, self.root_value, self.barriers = rank, root_value, 0

    def Get_rank(self):
        return self.rank

    def Get_size(self):
        return 2

    def bcast(self, obj, root=0):
        return obj if self.rank == root else self.root_value


def test_save_under_mpi_only_rank_zero_writes(result, tmp_path):
    out = tmp_path / "mpi"
    assert result.save(out, comm=FakeComm(1, root_value=(["from rank 0"], None))) == ["from rank 0"]
    assert not out.exists()
    assert len(result.save(out, comm=FakeComm(0))) == len(DATA_FILES)
    with pytest.raises(FileExistsError, match="--overwrite"):  # rank 0's refusal reaches the others
        result.save(out, comm=FakeComm(1, root_value=(None, (FileExistsError, "refused: pass --overwrite"))))


def test_inconsistent_shapes_are_rejected(result):
    with pytest.raises(ValueError, match="theta"):
        Result(**{**{f: getattr(result, f) for f in result.__dataclass_fields__}, "theta": result.theta[:, :1]})


def test_log_axes_label_decades_with_superscripts():
    from cait_fem.output.plots import _decade

    assert [_decade(v) for v in (1e-3, 1e-12, 1.0, 10.0, 1e5)] == ["10⁻³", "10⁻¹²", "1", "10", "10⁵"]
    assert _decade(3e-3) == "" and _decade(0.0) == "" and _decade(-1.0) == ""
