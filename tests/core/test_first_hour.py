"""Issue 27's core parts: classes that set themselves up (land-cover colours, class-list
import), the training-time estimate and the live ETA's rate, the fill's tolerance, the
CRS's name and latitude/longitude, export folders per project, the training survey."""

from __future__ import annotations

import itertools
import statistics
from pathlib import Path

import numpy as np
import pytest

from acseg_core.errors import AcsegError, InputError
from acseg_core.gis.crs import crs_name, format_lonlat, map_to_lonlat
from acseg_core.gis.palettes import CLASS_COLOURS, landcover_colour
from acseg_core.io.display import pixel_to_map
from acseg_core.io.raster import probe
from acseg_core.jobs import run_to_end
from acseg_core.labelling.class_lists import read_class_list
from acseg_core.labelling.classes import ClassMap
from acseg_core.labelling.edits import EditLayer
from acseg_core.labelling.export import (
    default_export_dir,
    fresh_folder,
    labelmap_differs,
    labelmap_text,
)
from acseg_core.labelling.painting import fill_footprint
from acseg_core.presets import preset
from acseg_core.training.config import TrainConfig
from acseg_core.training.dataset import preferred_selection, survey_inputs
from acseg_core.training.estimate import Estimate, StepRate, estimate_run
from tests.core.synthetic import make_regions_image

REPO = Path(__file__).resolve().parents[2]

# -- classes that set themselves up ------------------------------------------------------


def test_a_class_named_like_a_land_cover_class_gets_its_colour() -> None:
    cmap = ClassMap.empty(4)
    for name in ("Water", "trees", "Buildings", "road", "bare soil", "sand", "shadow", "car"):
        cmap = cmap.add_class(name)
    colours = {c.name: c.color for c in cmap.classes}
    r, g, b = colours["Water"]
    assert b > 180 and b > r + 100  # blue
    r, g, b = colours["trees"]
    assert g > r + 50 and g > b + 50  # green
    assert colours["road"][0] == colours["road"][1] == colours["road"][2]  # grey
    assert colours["car"] == landcover_colour("cars")
    assert len(set(colours.values())) == len(colours)  # all distinct (CVAT tells by colour)
    assert cmap.add_class("flux capacitor").classes[-1].color == CLASS_COLOURS[0]  # unknown


def test_a_second_class_of_the_same_kind_gets_another_shade() -> None:
    cmap = ClassMap.empty(2).add_class("water").add_class("sea water")
    first, second = (c.color for c in cmap.classes)
    assert first != second and second[2] > 150  # still blue, another shade
    assert not cmap.export_problems()
    lake = cmap.add_class("lake").classes[-1].color  # its own blue is close to water's
    for other in (first, second):  # one a user tells apart (≥ 40 in some channel)
        assert max(abs(a - b) for a, b in zip(lake, other, strict=True)) >= 40


def test_colours_by_name_recolour_several_classes_at_once() -> None:
    cmap = ClassMap.empty(2).add_class("water", (255, 0, 0)).add_class("grass", (255, 0, 0))
    cmap = cmap.add_class("thing", (1, 2, 3))
    ids = [c.id for c in cmap.classes]
    new = cmap.recolor_many(cmap.colours_by_name(ids))
    colours = [c.color for c in new.classes]
    assert colours[0] == landcover_colour("water") and colours[1] == landcover_colour("grass")
    assert colours[2] == (1, 2, 3)  # an unknown name keeps its colour


def test_class_lists_in_every_format(tmp_path: Path) -> None:
    labelmap = tmp_path / "labelmap.txt"
    cmap = ClassMap.empty(2).add_class("water", (0, 0, 255)).add_class("field", (0, 200, 0))
    labelmap.write_text(labelmap_text(cmap))  # an export of this app (CVAT's format)
    assert read_class_list(labelmap) == [("water", (0, 0, 255)), ("field", (0, 200, 0))]
    lines = tmp_path / "classes.txt"
    lines.write_text("# comment\nroof:200,10,10\ngrass\n\n")
    assert read_class_list(lines) == [("roof", (200, 10, 10)), ("grass", None)]
    assert read_class_list(REPO / "resources/labels/dubai.csv")[0] == ("building", (60, 16, 152))
    assert [n for n, _ in read_class_list(REPO / "resources/labels/loveda.csv")] == [
        "building", "road", "water", "barren", "forest", "agriculture"
    ]  # fmt: skip
    assert [n for n, _ in read_class_list(REPO / "resources/labels/potsdam3.csv")] == [
        "roads and cars", "vegetation", "buildings and clutter"
    ]  # fmt: skip
    isprs = dict(read_class_list(REPO / "resources/labels/isprs.csv"))
    assert "ignore" not in isprs and isprs["building"] == (0, 0, 255)
    names = tmp_path / "names.json"
    names.write_text('["a", "b"]')
    assert read_class_list(names) == [("a", None), ("b", None)]
    bad = tmp_path / "bad.txt"
    bad.write_text("roof:200,10\n")
    with pytest.raises(InputError, match="bad colour"):
        read_class_list(bad)
    with pytest.raises(InputError, match="not found"):
        read_class_list(tmp_path / "missing.txt")


def test_imported_classes_keep_existing_ones() -> None:
    cmap = ClassMap.empty(3).add_class("water", (1, 1, 1))
    new = cmap.add_classes([("water", None), ("road", None), ("car", (9, 9, 9))])
    assert [c.name for c in new.classes] == ["water", "road", "car"]
    assert new.classes[0] == cmap.classes[0]  # same id, its colour kept
    assert new.classes[1].color == landcover_colour("road") and new.classes[2].color == (9, 9, 9)


# -- the estimate and the live rate --------------------------------------------------------


@pytest.fixture
def tiles(tmp_path: Path) -> list[Path]:
    paths = []
    for i in range(2):
        path = tmp_path / "tiles" / f"t{i}.tif"
        path.parent.mkdir(exist_ok=True)
        make_regions_image(path, size=(64, 64), bands=3, seed=i)
        paths.append(path)
    return paths


def test_the_estimate_measures_every_part_of_the_run(tiles: list[Path], tmp_path: Path) -> None:
    cfg = TrainConfig(
        inputs=tuple(map(str, tiles)), out_dir=str(tmp_path / "run"),
        model=preset("cpu-small", clusters=3, base_width=8), crop=32, batch=2, epochs=3,
        steps_per_epoch=5, device="cpu", workers=0,
    )  # fmt: skip
    estimate = run_to_end(estimate_run(cfg, probe_steps=3))
    assert isinstance(estimate, Estimate) and estimate.device == "cpu"
    assert estimate.step_s > 0 and estimate.prepare_s > 0 and estimate.startup_s >= 0
    assert estimate.readout_s > estimate.save_s > 0  # the k-means read-out fit is counted
    assert estimate.steps_per_epoch == 5
    fixed = estimate.prepare_s + estimate.startup_s + estimate.readout_s
    assert estimate.total_s(3) == pytest.approx(fixed + 3 * (5 * estimate.step_s + estimate.save_s))
    assert estimate.total_s(4) - estimate.total_s(3) == pytest.approx(estimate.epoch_s())
    assert "for 4 epoch(s)" in estimate.describe(4)
    assert not (tmp_path / "run").exists()  # measuring writes nothing


def test_the_live_rate_leaves_the_warm_up_out_and_converges() -> None:
    truth = 1.0
    steps = [9.0] + [truth * (1.3 if i % 2 else 0.7) for i in range(40)]  # noisy
    rate = StepRate(window=20)
    remaining = 300
    etas = []
    for seconds in steps:
        rate.add(seconds)
        remaining -= 1
        etas.append(rate.eta(remaining))
    # after a handful of steps within 15 % of the truth, and steady from there on
    for done, eta in enumerate(etas[5:], start=6):
        assert abs(eta - (300 - done) * truth) <= 0.15 * (300 - done) * truth
    late = etas[20:]
    drops = [a - b for a, b in itertools.pairwise(late)]
    assert statistics.pstdev(drops) < 0.2  # no swings: about one step per step


# -- the fill's tolerance ------------------------------------------------------------------


def test_the_fill_takes_in_enclosed_specks_up_to_the_tolerance() -> None:
    clusters = np.zeros((40, 40), np.uint8)
    clusters[20:, :] = 1  # another region
    clusters[5, 5] = 2  # a one-pixel speck inside region 0
    clusters[8:11, 8:11] = 2  # a 9-pixel speck inside region 0
    clusters[0, 30] = 255  # nodata at the edge stays out
    layer, cmap = EditLayer(40, 40), ClassMap.empty(3)

    def filled(tolerance: int) -> np.ndarray:
        col, row, mask = fill_footprint(clusters, layer, (2, 2), cmap, False, tolerance)
        out = np.zeros_like(clusters, bool)
        out[row : row + mask.shape[0], col : col + mask.shape[1]] = mask
        return out

    exact, some, more = filled(0), filled(1), filled(9)
    assert not exact[5, 5] and not exact[9, 9]
    assert some[5, 5] and not some[9, 9]
    assert more[5, 5] and more[9, 9] and not more[25, 5]  # never across into region 1


def footprint_image(footprint, shape: tuple[int, int]) -> np.ndarray:
    col, row, mask = footprint
    out = np.zeros(shape, bool)
    out[row : row + mask.shape[0], col : col + mask.shape[1]] = mask
    return out


def test_the_within_cluster_fill_never_leaves_the_cluster() -> None:
    # clusters 0, 1 and 3 are all "water": 1 beside 0 and as a 3-pixel speck in it, 3 as
    # an island in 0; 2 is an unnamed 15-pixel patch in 0; (0, 0) is nodata
    clusters = np.zeros((30, 40), np.uint8)
    clusters[:, 20:] = 1
    clusters[12, 3:6] = 1
    clusters[5:10, 5:8] = 2
    clusters[20:24, 10:14] = 3
    clusters[0, 0] = 255
    cmap = ClassMap.empty(4).add_class("water", (30, 110, 220)).add_class("road", (128,) * 3)
    water, road = (c.id for c in cmap.classes)
    cmap = cmap.assign_many({0: water, 1: water, 3: water})
    layer = EditLayer(30, 40)
    seed = (2, 25)
    plain = footprint_image(fill_footprint(clusters, layer, seed, cmap, True, 20), clusters.shape)
    assert plain[:, 20:].all()  # the class view's region runs over every "water" cluster
    for tolerance in (0, 5, 20, 1000):
        found = fill_footprint(clusters, layer, seed, cmap, True, tolerance, within_cluster=True)
        inside = footprint_image(found, clusters.shape)
        assert not inside[clusters != 0].any(), tolerance  # never another cluster
        assert inside[15:30, :10].all() and inside[0, 1:20].all()
    # in the cluster view too, with a tolerance that would take in the island and the patch
    found = fill_footprint(clusters, layer, seed, cmap, False, 1000, within_cluster=True)
    assert not footprint_image(found, clusters.shape)[clusters != 0].any()
    # a hand edit of another class inside cluster 0 is a speck the tolerance may take in
    layer.write(15, 2, np.full((2, 2), road, np.uint8))
    exact = fill_footprint(clusters, layer, seed, cmap, True, 0, within_cluster=True)
    taken = fill_footprint(clusters, layer, seed, cmap, True, 4, within_cluster=True)
    assert not footprint_image(exact, clusters.shape)[2, 15]
    assert footprint_image(taken, clusters.shape)[2:4, 15:17].all()
    assert fill_footprint(clusters, layer, (0, 0), cmap, True, 0, within_cluster=True) is None


# -- status bar: CRS and latitude/longitude ------------------------------------------------


def test_crs_name_and_latitude_longitude(tmp_path: Path) -> None:
    path = tmp_path / "geo.tif"
    make_regions_image(path, size=(32, 32), bands=3)
    info = probe(path)
    assert crs_name(info.crs).startswith("EPSG:")
    lonlat = map_to_lonlat(info.crs, *pixel_to_map(info.transform, 1, 1))
    # UTM 32N, easting 500000 m: zone 32's central meridian, 9° E; northing 5600 km ≈ 50.5° N
    assert lonlat is not None and lonlat[0] == pytest.approx(9.0, abs=1e-3)
    assert 50.0 < lonlat[1] < 51.0
    assert crs_name(None) == "" and map_to_lonlat(None, 0, 0) is None
    assert format_lonlat(-78.95865, 25.50609) == "25.50609° N  78.95865° W"


def test_the_landsat_sample_reads_as_utm_18n_in_the_bahamas(shared_data: Path) -> None:
    landsat = probe(shared_data / "geotiff" / "RGB.byte.tif")
    assert crs_name(landsat.crs) == "EPSG:32618"
    lon, lat = map_to_lonlat(landsat.crs, *pixel_to_map(landsat.transform, 0, 0))
    assert lon == pytest.approx(-78.96, abs=0.01) and lat == pytest.approx(25.51, abs=0.01)


# -- export folders ---------------------------------------------------------------------------


def test_export_folders_are_named_after_the_project_or_its_images(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert default_export_dir(tmp_path / "p" / "roofs.acseg", []) == tmp_path / "p/roofs_labels"
    a = default_export_dir(None, [tmp_path / "dubai/images/x.jpg"], home)
    b = default_export_dir(None, [tmp_path / "vaihingen/images/y.tif"], home)
    assert a != b and a.name == "dubai-images" and a.parent == home / "acseg-labels"
    assert fresh_folder(a) == a
    a.mkdir(parents=True)
    assert fresh_folder(a) == a  # empty: usable
    (a / "labelmap.txt").write_text("x")
    assert fresh_folder(a) == a.with_name("dubai-images-2")
    cmap = ClassMap.empty(1).add_class("water")
    assert labelmap_differs(a, cmap) and not labelmap_differs(tmp_path / "none", cmap)
    (a / "labelmap.txt").write_text(labelmap_text(cmap))
    assert not labelmap_differs(a, cmap)


# -- what the wizard lists ------------------------------------------------------------------


def test_a_mixed_folder_is_listed_with_the_common_band_count_ticked(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    folder.mkdir()
    for i in range(3):
        make_regions_image(folder / f"rgb{i}.tif", size=(32, 32), bands=3, seed=i)
    make_regions_image(folder / "nir.tif", size=(32, 32), bands=4)
    (folder / "broken.tif").write_bytes(b"not a tiff")
    found = survey_inputs([folder])
    names = [c.path.name for c in found]
    assert sorted(names) == ["broken.tif", "nir.tif", "rgb0.tif", "rgb1.tif", "rgb2.tif"]
    chosen, note = preferred_selection(found)
    ticked = {c.path.name for c, on in zip(found, chosen, strict=True) if on}
    assert ticked == {"rgb0.tif", "rgb1.tif", "rgb2.tif"}
    assert note is not None and "another band count" in note
    broken = next(c for c in found if c.path.name == "broken.tif")
    assert not broken.usable and broken.problem
    (tmp_path / "empty").mkdir()
    with pytest.raises(AcsegError, match="no images"):
        survey_inputs([tmp_path / "empty"])


def test_the_training_eta_converges_after_a_slow_first_step(
    tiles: list[Path], tmp_path: Path, monkeypatch
) -> None:
    """The loop's ETA: a 9 s warm-up step, then 1 s steps; within a few steps the
    remaining time is the steps left × 1 s (an average of the last steps, not a decaying
    memory of the first)."""
    import time as real_time

    from acseg_core.training import loop

    class Clock:  # the loop's step clock: 9 s for the first step, 1 s for each after
        ticks = iter([0.0, 9.0, *[9.0 + i for i in range(1, 100)]])

        @staticmethod
        def perf_counter() -> float:
            return next(Clock.ticks)

        monotonic = staticmethod(real_time.monotonic)

    monkeypatch.setattr(loop, "time", Clock)
    cfg = TrainConfig(
        inputs=tuple(map(str, tiles)), out_dir=str(tmp_path / "run"),
        model=preset("cpu-small", clusters=3, base_width=8), crop=32, batch=2,
        steps=12, steps_per_epoch=12, device="cpu", workers=0,
    )  # fmt: skip
    etas = {}
    job = loop.train(cfg)
    while True:
        try:
            item = next(job)
        except StopIteration:
            break
        if item.metrics.get("phase") == "train" and item.eta_s is not None:
            etas[item.done] = item.eta_s
    for step in range(3, 12):
        assert etas[step] == pytest.approx(12 - step, rel=0.1), (step, etas[step])


def test_the_estimate_bench_prints_estimated_and_real_time_per_folder(
    tmp_path: Path, monkeypatch, capsys
) -> None:
    import argparse
    import functools

    from acseg_core.benchmarks import estimate as bench
    from acseg_core.training import estimate as core
    from tests.core.test_accuracy_bench import write_folder

    root = write_folder(tmp_path / "set", images=2, size=64)
    spec = f"name=tiny,images={root / 'images'},labels={root / 'labels'}"
    monkeypatch.setattr(bench, "estimate_run",
                        functools.partial(core.estimate_run, probe_steps=2))  # fmt: skip
    args = argparse.Namespace(
        estimate=[spec], estimate_epochs=1, estimate_steps=2, preset="cpu-small", device="cpu"
    )
    result = bench.run(args)
    row = result["folders"]["tiny"]
    assert row["images"] == 2 and row["steps"] == 2
    assert row["estimated_s"] > 0 and row["real_s"] > 0
    # the seconds are printed to 0.1 s, the ratio from the unrounded times
    real, est = row["real_s"], row["estimated_s"]
    assert (real - 0.05) / (est + 0.05) - 1e-3 <= row["ratio"] <= (real + 0.05) / max(
        est - 0.05, 1e-9
    ) + 1e-3
    assert {"prepare", "startup", "step", "save", "readout"} <= set(row["parts_s"])
    assert "tiny: estimated" in capsys.readouterr().err
