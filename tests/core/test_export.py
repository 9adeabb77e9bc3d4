"""Export: indexed PNG + labelmap, GeoTIFF, colour preview, safety rules, windows."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
from affine import Affine
from PIL import Image

import acseg_core.labelling.export as export_mod
from acseg_core.errors import AcsegError, CancelledError, InputError
from acseg_core.io.raster import NODATA
from acseg_core.jobs import CancelToken, run_to_end
from acseg_core.labelling.classes import ClassMap
from acseg_core.labelling.edits import EditLayer
from acseg_core.labelling.export import LABELMAP_HEADER, ExportItem, labelmap_text
from acseg_core.labelling.export_job import export_images

CRS = "EPSG:32632"
TRANSFORM = Affine(0.5, 0.0, 500000.0, 0.0, -0.5, 4000000.0)


def make_geotiff(path: Path, width: int = 40, height: int = 30, bands: int = 3) -> Path:
    data = np.random.default_rng(0).integers(0, 255, (bands, height, width), dtype=np.uint8)
    profile = dict(driver="GTiff", width=width, height=height, count=bands, dtype="uint8")
    with rasterio.open(path, "w", crs=CRS, transform=TRANSFORM, **profile) as dst:
        dst.write(data)
    return path


def export_all(*args, **kwargs):
    return run_to_end(export_images(*args, **kwargs))


def cluster_map(width: int = 40, height: int = 30) -> np.ndarray:
    clusters = (np.arange(width * height).reshape(height, width) % 4).astype(np.uint8)
    clusters[0, :] = NODATA
    return clusters


def class_map() -> ClassMap:
    cm = ClassMap.empty(4).add_class("road", (200, 200, 200)).add_class("tree", (0, 160, 0))
    return cm.assign_many({0: 1, 1: 2, 2: 2})  # cluster 3 unassigned


def expected_values(clusters: np.ndarray) -> np.ndarray:
    return np.array([1, 2, 2, 0] + [0] * 252, dtype=np.uint8)[clusters]


def test_indexed_png_has_class_palette_and_values(tmp_path: Path) -> None:
    clusters = cluster_map()
    result = export_all([ExportItem("a", clusters)], class_map(), tmp_path / "out", formats="png")
    png = tmp_path / "out" / "a.png"
    assert result.written == {"a": {"png": png}}
    image = Image.open(png)
    assert image.mode == "P"
    np.testing.assert_array_equal(np.asarray(image), expected_values(clusters))
    assert image.getpalette()[:9] == [0, 0, 0, 200, 200, 200, 0, 160, 0]
    assert not (tmp_path / "out" / "a.tif").exists()  # not georeferenced: no GeoTIFF


def test_labelmap_is_cvat_segmentation_mask_layout(tmp_path: Path) -> None:
    export_all([ExportItem("a", cluster_map())], class_map(), tmp_path, formats="png")
    lines = (tmp_path / "labelmap.txt").read_text().splitlines()
    assert lines == [LABELMAP_HEADER, "background:0,0,0::", "road:200,200,200::", "tree:0,160,0::"]
    assert LABELMAP_HEADER == "# label:color_rgb:parts:actions"


def test_geotiff_keeps_crs_transform_size_with_colour_table_and_nodata(tmp_path: Path) -> None:
    source = make_geotiff(tmp_path / "scene.tif")
    clusters = cluster_map()
    edits = EditLayer(30, 40)
    edits.write(5, 5, np.full((4, 6), 2, dtype=np.uint8))
    export_all(
        [ExportItem("scene", clusters, source=source, edits=edits)],
        class_map(),
        tmp_path / "out",
        formats="png,tif,color",
        block=16,  # several windows, some partial
    )
    expected = expected_values(clusters)
    expected[5:9, 5:11] = 2
    with rasterio.open(tmp_path / "out" / "scene.tif") as ds:
        assert (ds.width, ds.height, ds.count, ds.dtypes[0]) == (40, 30, 1, "uint8")
        assert ds.crs == rasterio.crs.CRS.from_string(CRS)
        assert ds.transform == TRANSFORM
        assert ds.nodata == 0
        assert ds.colormap(1)[1] == (200, 200, 200, 255)
        assert ds.colormap(1)[2] == (0, 160, 0, 255)
        np.testing.assert_array_equal(ds.read(1), expected)
    np.testing.assert_array_equal(np.asarray(Image.open(tmp_path / "out" / "scene.png")), expected)
    colour = np.asarray(Image.open(tmp_path / "out" / "scene_color.png"))
    assert colour.shape == (30, 40, 3)
    assert colour[6, 6].tolist() == [0, 160, 0] and colour[0, 0].tolist() == [0, 0, 0]
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == [
        "labelmap.txt",
        "scene.png",
        "scene.qml",  # the COG's class names for QGIS (test_gis_outputs.py)
        "scene.tif",
        "scene.tif.aux.xml",
        "scene_color.png",
    ]


def test_cluster_map_file_is_read_by_windows(tmp_path: Path) -> None:
    clusters = cluster_map()
    cluster_file = tmp_path / "scene_clusters.tif"
    profile = dict(driver="GTiff", width=40, height=30, count=1, dtype="uint8", nodata=255)
    with rasterio.open(cluster_file, "w", crs=CRS, transform=TRANSFORM, **profile) as dst:
        dst.write(clusters, 1)
    export_all([ExportItem("scene", cluster_file)], class_map(), tmp_path / "o", formats="tif")
    with rasterio.open(tmp_path / "o" / "scene.tif") as ds:  # georeference from the cluster map
        assert ds.crs is not None and ds.transform == TRANSFORM
        np.testing.assert_array_equal(ds.read(1), expected_values(clusters))


def test_never_writes_over_a_source(tmp_path: Path) -> None:
    source = make_geotiff(tmp_path / "scene.tif")
    before = source.read_bytes()
    item = ExportItem("scene", cluster_map(), source=source)
    result = export_all([item], class_map(), tmp_path, formats="tif", overwrite=True)
    assert result.written == {}
    assert "refusing to write over a source" in result.skipped[0][1]
    assert source.read_bytes() == before


def test_existing_outputs_are_kept_unless_overwrite(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    (out / "a.png").write_bytes(b"keep me")
    result = export_all(
        [ExportItem("a", cluster_map()), ExportItem("b", cluster_map())],
        class_map(),
        out,
        formats="png",
    )
    assert result.done == ["a"] and set(result.written) == {"b"}  # a rerun redoes nothing
    assert (out / "a.png").read_bytes() == b"keep me"
    export_all([ExportItem("a", cluster_map())], class_map(), out, formats="png", overwrite=True)
    assert Image.open(out / "a.png").mode == "P"


def test_same_labelmap_again_is_not_a_conflict_but_another_is(tmp_path: Path) -> None:
    export_all([ExportItem("a", cluster_map())], class_map(), tmp_path, formats="png")
    export_all([ExportItem("b", cluster_map())], class_map(), tmp_path, formats="png")
    other = class_map().rename_class(1, "asphalt")
    with pytest.raises(InputError, match=r"labelmap\.txt: lists other classes.*another folder"):
        export_all([ExportItem("c", cluster_map())], other, tmp_path, formats="png")


def test_a_failed_image_is_skipped_and_leaves_no_partial_file(tmp_path: Path, monkeypatch) -> None:
    source = make_geotiff(tmp_path / "scene.tif")
    out = tmp_path / "out"
    calls = []
    real_to_png = export_mod._to_png

    def broken_png(tif: Path, png: Path) -> None:
        calls.append(png)
        if len(calls) == 1:
            png.write_bytes(b"half")  # a half-written file under the temp name
            raise OSError("cannot encode")
        real_to_png(tif, png)

    monkeypatch.setattr(export_mod, "_to_png", broken_png)
    items = [ExportItem("scene", cluster_map(), source=source), ExportItem("b", cluster_map())]
    result = export_all(items, class_map(), out, formats="tif,png")
    assert result.skipped == [("scene", "cannot encode")] and set(result.written) == {"b"}
    assert sorted(p.name for p in out.iterdir()) == ["b.png", "labelmap.txt"]


def test_a_full_disk_stops_the_export_with_one_line(tmp_path: Path, monkeypatch) -> None:
    import errno

    def full(tif: Path, png: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(export_mod, "_to_png", full)
    items = [ExportItem("a", cluster_map()), ExportItem("b", cluster_map())]
    with pytest.raises(InputError, match="export stopped: no space left on device"):
        export_all(items, class_map(), tmp_path / "out", formats="png")
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["labelmap.txt"]


def test_stale_temps_of_a_killed_export_are_removed(tmp_path: Path) -> None:
    out = tmp_path / "out"
    out.mkdir()
    stale = [out / ".a.png.k3j4h5g6.png", out / ".a.png.x9y8z7w6.scratch.tif"]
    stale.append(out / ".scene.acseg-scratch.abcdefgh.tif")
    for path in stale:
        path.write_bytes(b"left by a killed run")
    unrelated = out / ".notes.png.bak"
    unrelated.write_bytes(b"the user's")
    items = [ExportItem("a", cluster_map(), source=tmp_path / "scene.tif")]
    export_all(items, class_map(), out, formats="png")
    assert not any(p.exists() for p in stale)
    assert unrelated.read_bytes() == b"the user's"


def test_cancel_between_windows_keeps_finished_images_only(tmp_path: Path) -> None:
    cancel = CancelToken()
    items = [ExportItem("a", cluster_map()), ExportItem("b", cluster_map())]
    job = export_images(items, class_map(), tmp_path, formats="png", cancel=cancel, block=8)
    seen = []
    with pytest.raises(CancelledError):
        for progress in job:
            seen.append(progress.message)
            if seen.count("Writing b") == 2:
                cancel.cancel()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.png", "labelmap.txt"]


def test_progress_is_over_the_whole_export_with_an_eta(tmp_path: Path) -> None:
    items = [ExportItem(name, cluster_map()) for name in "abc"]
    reports = []
    run_to_end(export_images(items, class_map(), tmp_path, formats="png", block=8), reports.append)
    done = [r.done for r in reports]
    assert done == sorted(done) and reports[-1].done == reports[-1].total == 3000
    assert reports[-1].eta_s == 0.0 and all(r.total == 3000 for r in reports)


def test_duplicate_names_are_made_unique(tmp_path: Path) -> None:
    items = [ExportItem("a", cluster_map()), ExportItem("a", cluster_map())]
    result = export_all(items, class_map(), tmp_path, formats="png")
    assert set(result.written) == {"a", "a-2"}
    assert (tmp_path / "a-2.png").is_file()


def test_bad_inputs(tmp_path: Path) -> None:
    with pytest.raises(AcsegError, match="unknown export format"):
        export_all([ExportItem("a", cluster_map())], class_map(), tmp_path, formats="jpeg")
    same_colour = class_map().recolor_class(2, (200, 200, 200))
    with pytest.raises(AcsegError, match="share colour"):
        export_all([ExportItem("a", cluster_map())], same_colour, tmp_path, formats="png")
    source = make_geotiff(tmp_path / "scene.tif", width=20)
    result = export_all(
        [ExportItem("s", cluster_map(), source=source), ExportItem("t", cluster_map())],
        class_map(),
        tmp_path / "o",
    )
    assert "cluster map is 40×30 but the image is 20×30" in result.skipped[0][1]
    assert set(result.written) == {"t"}
    assert labelmap_text(class_map()).count("\n") == 4


def test_missing_maps_are_predicted_beside_the_outputs_and_corrupt_images_skipped(
    tmp_path: Path,
) -> None:
    from acseg_core.labelling.export_job import model_predictor
    from tests.core.synthetic import make_regions_image, tiny_model

    good = tmp_path / "good.tif"
    make_regions_image(good, size=(40, 48), bands=3)
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"II*\x00 not a tiff")
    loaded = tiny_model(bands=3, clusters=4)
    seen_scratch = []

    def predictor(image, out, cancel):
        seen_scratch.append(out)
        return model_predictor(loaded)(image, out, cancel)

    items = [ExportItem("good", None, source=good), ExportItem("corrupt", None, source=corrupt)]
    result = export_all(items, class_map(), tmp_path / "out", formats="png", predictor=predictor)
    assert set(result.written) == {"good"}
    assert [name for name, _ in result.skipped] == ["corrupt"]
    assert all(p.parent == tmp_path / "out" for p in seen_scratch)  # scratch beside outputs
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["good.png", "labelmap.txt"]
    assert np.asarray(Image.open(tmp_path / "out" / "good.png")).shape == (40, 48)
