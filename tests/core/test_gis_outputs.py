"""GIS outputs: COG layout and overviews, class names beside it, polygons, sieve, areas,
and what a failed write leaves (nothing)."""

from __future__ import annotations

import ctypes
import glob
import os
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
import shapely
from affine import Affine

import acseg_core.gis.polygons as polygons_mod
import acseg_core.labelling.export as export_mod
from acseg_core.errors import InputError
from acseg_core.gis.areas import (
    HEADER_PIXELS,
    TOTAL_IMAGE,
    ImageAreas,
    areas_csv_text,
    read_areas_csv,
    value_counts,
)
from acseg_core.gis.cog import aux_path, cog_output, pam_names, write_cog
from acseg_core.gis.crs import crs_name, pixel_area_m2
from acseg_core.gis.legend import Legend, legend_for_model
from acseg_core.gis.polygons import LAYER, write_polygons
from acseg_core.gis.qgis import qml_labels, qml_path
from acseg_core.jobs import run_to_end
from acseg_core.labelling.classes import NO_EDIT, ClassMap, composite
from acseg_core.labelling.edits import EditLayer
from acseg_core.labelling.export import ExportItem
from acseg_core.labelling.export_job import export_images
from acseg_core.labelling.tally import MapTally
from acseg_core.model.config import ModelConfig
from acseg_core.model.readouts import ReadOut

CRS = "EPSG:32632"
PIXEL = 0.5  # m: 0.25 m² per pixel
TRANSFORM = Affine(PIXEL, 0.0, 500000.0, 0.0, -PIXEL, 4000000.0)
LEGEND = Legend.from_names(
    ["water", "field", "roof", "road", "tree"],
    [(0, 0, 255), (250, 220, 0), (200, 0, 0), (90, 90, 90), (0, 128, 0)],
)


def write_map(path: Path, values: np.ndarray, crs: str | None = CRS, nodata: int = 255) -> Path:
    profile = dict(
        driver="GTiff",
        width=values.shape[1],
        height=values.shape[0],
        count=1,
        dtype="uint8",
        nodata=nodata,
        tiled=True,
        blockxsize=256,
        blockysize=256,
    )
    if crs is not None:
        profile.update(crs=crs, transform=TRANSFORM)
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(values, 1)
    return path


def read_layer(path: Path) -> tuple[dict, np.ndarray, list[np.ndarray]]:
    meta, _, geometries, fields = pyogrio.raw.read(path, layer=LAYER)
    return meta, shapely.from_wkb(geometries), fields


# -- COG ----------------------------------------------------------------------------------


def test_cog_layout_overviews_and_mode_resampling(tmp_path: Path) -> None:
    """4096²: LAYOUT=COG, 512² tiles, ≥ 3 overview levels; every overview pixel is an id
    the full map has (a checkerboard of 0 and 4 averages to 2, which MODE never gives)."""
    size = 4096
    rows, cols = np.indices((size, size))
    values = np.where((rows + cols) % 2 == 0, 0, 4).astype(np.uint8)
    values[:1000, 2000:] = 2
    values[3000:, :500] = 255  # nodata
    source = write_map(tmp_path / "stage.tif", values)
    target = tmp_path / "map.tif"
    with cog_output(target, LEGEND) as tmp:
        write_cog(source, tmp, LEGEND)
    with rasterio.open(target) as ds:
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.compression is not None and ds.compression.name.upper() == "DEFLATE"
        assert ds.block_shapes == [(512, 512)]
        assert len(ds.overviews(1)) >= 3
        assert ds.nodata == 255 and ds.crs == rasterio.crs.CRS.from_string(CRS)
        assert ds.colormap(1)[2] == (200, 0, 0, 255) and ds.colormap(1)[255][3] == 0
        np.testing.assert_array_equal(ds.read(1), values)
        for factor in ds.overviews(1):
            overview = ds.read(1, out_shape=(size // factor, size // factor))
            assert set(np.unique(overview).tolist()) <= {0, 2, 4, 255}
    assert sorted(p.name for p in tmp_path.iterdir()) == [
        "map.qml",
        "map.tif",
        "map.tif.aux.xml",
        "stage.tif",
    ]


def gdal_names(path: Path) -> tuple[list[str], list[str]]:
    """(category names, attribute-table class column) as GDAL itself reads them, through
    the libgdal inside rasterio's wheel."""
    libs = glob.glob(os.path.join(os.path.dirname(rasterio.__file__), "..", "rasterio.libs",
                                  "libgdal*.so*"))  # fmt: skip
    if not libs:
        pytest.skip("rasterio's libgdal is not a separate library here")
    gdal = ctypes.CDLL(libs[0])
    gdal.GDALOpen.restype = ctypes.c_void_p
    gdal.GDALOpen.argtypes = [ctypes.c_char_p, ctypes.c_int]
    gdal.GDALGetRasterBand.restype = ctypes.c_void_p
    gdal.GDALGetRasterBand.argtypes = [ctypes.c_void_p, ctypes.c_int]
    gdal.GDALGetDefaultRAT.restype = ctypes.c_void_p
    gdal.GDALGetDefaultRAT.argtypes = [ctypes.c_void_p]
    gdal.GDALGetRasterCategoryNames.restype = ctypes.POINTER(ctypes.c_char_p)
    gdal.GDALGetRasterCategoryNames.argtypes = [ctypes.c_void_p]
    gdal.GDALRATGetRowCount.argtypes = [ctypes.c_void_p]
    gdal.GDALRATGetValueAsString.restype = ctypes.c_char_p
    gdal.GDALRATGetValueAsString.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_int]
    gdal.GDALClose.argtypes = [ctypes.c_void_p]
    dataset = gdal.GDALOpen(str(path).encode(), 0)
    try:
        band = gdal.GDALGetRasterBand(dataset, 1)
        rat = gdal.GDALGetDefaultRAT(band)  # also loads the .aux.xml
        table = [gdal.GDALRATGetValueAsString(rat, r, 1).decode()
                 for r in range(gdal.GDALRATGetRowCount(rat))] if rat else []  # fmt: skip
        names, raw, i = [], gdal.GDALGetRasterCategoryNames(band), 0
        while raw and raw[i] is not None:
            names.append(raw[i].decode())
            i += 1
        return names, table
    finally:
        gdal.GDALClose(dataset)


def test_exported_names_in_qml_and_aux_xml_equal_the_projects_classes(tmp_path: Path) -> None:
    names = ["road", "tree & hedge", 'Bâtiment "A"', "water<1>"]  # escaping too
    class_map = ClassMap.empty(4)
    for i, name in enumerate(names):
        class_map = class_map.add_class(name, (10 * i, 200, 30 * i)).assign(i, i + 1)
    clusters = (np.arange(60 * 80).reshape(60, 80) % 4).astype(np.uint8)
    source = write_map(tmp_path / "scene.tif", np.zeros((60, 80), np.uint8))
    out = tmp_path / "out"
    run_to_end(export_images([ExportItem("scene", clusters, source=source)], class_map, out,
                             formats="tif"))  # fmt: skip
    expected = ["background", *names]
    categories, table = pam_names(aux_path(out / "scene.tif").read_text())
    assert categories == expected and list(table.values()) == expected
    assert list(qml_labels(qml_path(out / "scene.tif").read_text()).values()) == names
    assert qml_labels(qml_path(out / "scene.tif").read_text()) == {
        1: names[0],
        2: names[1],
        3: names[2],
        4: names[3],
    }
    assert gdal_names(out / "scene.tif") == (expected, expected)


# -- polygons -------------------------------------------------------------------------


def squares_map(size: int = 600) -> tuple[np.ndarray, dict[int, list[int]]]:
    """Known squares (value → sides in px) on value 1; one crosses many stripe lines."""
    values = np.ones((size, size), np.uint8)
    sides = {0: [10, 37], 2: [200], 3: [1]}
    values[20:30, 20:30] = 0
    values[100:137, 400:437] = 0
    values[250:450, 50:250] = 2  # crosses the stripes of the test below
    values[500, 500] = 3
    return values, sides


@pytest.mark.parametrize("rows", [256, 7])  # one stripe per 256 rows; many tiny stripes
def test_polygons_of_known_squares_have_known_areas(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, rows: int
) -> None:
    monkeypatch.setattr(polygons_mod, "stripe_rows", lambda width: rows)
    values, sides = squares_map()
    raster = write_map(tmp_path / "map.tif", values)
    count = write_polygons(raster, tmp_path / "p.gpkg", LEGEND, "map.tif", min_area=0)
    meta, geometries, (ids, names, areas, images) = read_layer(tmp_path / "p.gpkg")
    assert count == len(ids) == 5  # 4 squares + the background with 4 holes
    assert meta["crs"] == CRS and meta["geometry_type"] == "Polygon"
    assert list(meta["fields"]) == ["class_id", "class_name", "area", "image"]
    assert set(images) == {"map.tif"}
    px = PIXEL * PIXEL
    for value, expected in sides.items():
        got = sorted(areas[ids == value].tolist())
        assert got == sorted(s * s * px for s in expected)
        assert set(names[ids == value]) == {LEGEND.name_of(value)}
    assert areas[ids == 1].tolist() == [(600 * 600 - sum(s * s for v in sides.values()
                                                         for s in v)) * px]  # fmt: skip
    np.testing.assert_allclose(shapely.area(geometries), areas)
    big = geometries[ids == 2][0]  # in map coordinates, exactly where the pixels are
    assert big.bounds == (500000.0 + 50 * PIXEL, 4000000.0 - 450 * PIXEL,
                          500000.0 + 250 * PIXEL, 4000000.0 - 250 * PIXEL)  # fmt: skip


def test_sieve_removes_specks_below_min_area_and_keeps_nodata(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    values = np.ones((300, 300), np.uint8)
    values[100:200, 100:200] = 2  # a big region: stays
    specks = rng.integers(0, 300, (200, 2))
    values[specks[:, 0], specks[:, 1]] = 4  # one-pixel specks of "tree"
    values[10:13, 250:253] = 3  # a 9-pixel region
    values[:, :5] = 255  # nodata stays nodata (never becomes a class)
    raster = write_map(tmp_path / "m.tif", values)
    write_polygons(raster, tmp_path / "all.gpkg", LEGEND, "m", min_area=0)
    write_polygons(raster, tmp_path / "sieved.gpkg", LEGEND, "m", min_area=10)
    _, _, (ids_all, _, areas_all, _) = read_layer(tmp_path / "all.gpkg")
    _, geometries, (ids, _, areas, _) = read_layer(tmp_path / "sieved.gpkg")
    px = PIXEL * PIXEL
    assert (ids_all == 4).sum() > 100 and (areas_all < 10 * px).any()
    assert 4 not in ids and 3 not in ids  # specks and the 9-px region are gone
    assert areas.min() >= 10 * px
    assert sorted(set(ids.tolist())) == [1, 2]
    assert np.isclose(areas.sum(), 300 * 295 * px)  # nodata is no polygon, nothing lost
    assert shapely.union_all(geometries).bounds[0] == 500000.0 + 5 * PIXEL


def test_sieve_leaves_no_speck_even_where_all_neighbours_are_specks(tmp_path: Path) -> None:
    """One GDAL sieve pass keeps specks whose neighbours are all specks (noise);
    passes repeated until stable leave none."""
    values = np.ones((400, 300), np.uint8)
    values[100:300, 50:250] = np.random.default_rng(1).integers(0, 5, (200, 200))
    raster = write_map(tmp_path / "noise.tif", values)
    for passes, ok in ((1, False), (polygons_mod.SIEVE_PASSES, True)):
        polygons_mod.SIEVE_PASSES, saved = passes, polygons_mod.SIEVE_PASSES
        try:
            write_polygons(raster, tmp_path / f"{passes}.gpkg", LEGEND, "n", min_area=16)
        finally:
            polygons_mod.SIEVE_PASSES = saved
        areas = read_layer(tmp_path / f"{passes}.gpkg")[2][2]
        assert (areas.min() >= 16 * PIXEL * PIXEL) == ok
        assert np.isclose(areas.sum(), 400 * 300 * PIXEL * PIXEL)


def test_geopackages_acseg_wrote_are_told_from_a_users(tmp_path: Path) -> None:
    raster = write_map(tmp_path / "m.tif", np.ones((20, 20), np.uint8))
    write_polygons(raster, tmp_path / "ours.gpkg", LEGEND, "m")
    geometry = shapely.to_wkb(np.array([shapely.box(0, 0, 1, 1)], dtype=object))
    pyogrio.raw.write(str(tmp_path / "theirs.gpkg"), geometry, [np.array([1])], ["id"],
                      layer=LAYER, driver="GPKG", geometry_type="Polygon", crs=CRS)  # fmt: skip
    assert polygons_mod.is_acseg_gpkg(tmp_path / "ours.gpkg")
    assert not polygons_mod.is_acseg_gpkg(tmp_path / "theirs.gpkg")
    assert not polygons_mod.is_acseg_gpkg(tmp_path / "missing.gpkg")


def test_default_min_area_is_the_documented_one() -> None:
    assert polygons_mod.DEFAULT_MIN_AREA == 64
    assert polygons_mod.polygon_count_bound(10000 * 10000, 64) < 2_000_000


# -- areas ----------------------------------------------------------------------------


def test_csv_areas_projected_sum_to_the_valid_area(tmp_path: Path) -> None:
    class_map = ClassMap.empty(3).add_class("road", (1, 1, 1)).add_class("tree", (2, 2, 2))
    class_map = class_map.assign_many({0: 1, 1: 2})  # cluster 2 unassigned
    clusters = (np.arange(40 * 50).reshape(40, 50) % 3).astype(np.uint8)
    clusters[:4] = 255  # nodata: not valid, not counted
    edits = EditLayer(40, 50)
    edits.write(10, 10, np.full((5, 5), 2, np.uint8))  # 25 px painted "tree"
    source = write_map(tmp_path / "scene.tif", np.zeros((40, 50), np.uint8))
    plain = write_map(tmp_path / "photo.tif", np.zeros((40, 50), np.uint8), crs=None)
    out = tmp_path / "out"
    items = [ExportItem("scene", clusters, source=source, edits=edits),
             ExportItem("photo", clusters, source=plain)]  # fmt: skip
    result = run_to_end(export_images(items, class_map, out, formats="csv", block=16))
    assert result.areas == out / "areas.csv"
    rows = list(read_areas_csv(out / "areas.csv"))
    assert list(rows[0]) == ["image", "class_id", "class_name", "pixels", "area_m2", "area_ha",
                             "share_pct"]  # fmt: skip
    scene = [r for r in rows if r["image"] == "scene"]
    labels = composite(class_map.labels_from_clusters(clusters), edits.to_array())
    valid = labels != 255
    assert [r["class_name"] for r in scene] == ["background", "road", "tree"]
    expected_px = [int(((class_map.export_lut()[labels] == v) & valid).sum()) for v in range(3)]
    assert [int(r["pixels"]) for r in scene] == expected_px
    assert sum(float(r["area_m2"]) for r in scene) == pytest.approx(valid.sum() * 0.25)
    assert [float(r["area_ha"]) for r in scene] == pytest.approx(
        [p * 0.25 / 1e4 for p in expected_px], abs=1e-6
    )
    assert sum(float(r["share_pct"]) for r in scene) == pytest.approx(100.0, abs=1e-3)
    photo = [r for r in rows if r["image"] == "photo"]  # no CRS: pixels only, areas empty
    assert [r["area_m2"] for r in photo] == ["", "", ""]
    total = [r for r in rows if r["image"] == TOTAL_IMAGE]
    assert [int(r["pixels"]) for r in total] == [
        int(s["pixels"]) + int(p["pixels"]) for s, p in zip(scene, photo, strict=True)
    ]
    assert [r["area_m2"] for r in total] == ["", "", ""]  # not every image has m²


def test_csv_of_unprojected_images_says_pixels_in_its_header(tmp_path: Path) -> None:
    legend = Legend.from_names(["a", "b"], [(1, 1, 1), (2, 2, 2)])
    counts = value_counts(np.array([[0, 0, 1, 255]], np.uint8))
    counts[255] = 0
    text = areas_csv_text([ImageAreas("x.png", counts, None)], legend)
    lines = text.splitlines()
    assert lines[0] == ",".join(HEADER_PIXELS)
    assert lines[1:] == [
        "x.png,0,a,2,66.6667",
        "x.png,1,b,1,33.3333",
        f"{TOTAL_IMAGE},0,a,2,66.6667",
        f"{TOTAL_IMAGE},1,b,1,33.3333",
    ]


def test_units_come_from_the_crs() -> None:
    utm = rasterio.crs.CRS.from_epsg(32618).to_wkt()
    feet = rasterio.crs.CRS.from_epsg(2263).to_wkt()
    geographic = rasterio.crs.CRS.from_epsg(4326).to_wkt()
    assert pixel_area_m2(utm, (30.0, 0, 0, 0, -30.0, 0)) == pytest.approx(900.0)
    assert pixel_area_m2(feet, (1.0, 0, 0, 0, -1.0, 0)) == pytest.approx(0.3048006096**2)
    assert pixel_area_m2(geographic, (0.001, 0, 0, 0, -0.001, 0)) is None
    assert pixel_area_m2(None, None) is None
    assert crs_name(utm) == "EPSG:32618" and crs_name(None) == ""


def test_map_tally_follows_remapping_and_edits_without_rereading(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    clusters = rng.integers(0, 4, (300, 280)).astype(np.uint8)
    clusters[:7] = 255
    edits = EditLayer(300, 280)
    edits.write(250, 250, np.full((40, 40), 1, np.uint8))  # partly past the edge
    edits.write(3, 0, np.full((20, 20), 0, np.uint8))  # forced "no class", partly nodata
    tally = MapTally.of(clusters, edits)
    from_file = MapTally.of_file(write_map(tmp_path / "c.tif", clusters), edits, block=64)
    cm = ClassMap.empty(4).add_class("a").add_class("b")
    for mapping in ({0: 1, 1: 2}, {0: 2, 1: 2, 3: 1}):
        cm = cm.assign_many(mapping)
        labels = composite(cm.labels_from_clusters(clusters), edits.to_array())
        np.testing.assert_array_equal(tally.label_counts(cm), value_counts(labels))
        np.testing.assert_array_equal(from_file.label_counts(cm), value_counts(labels))
    assert NO_EDIT == 255


def test_legend_of_a_learnt_model_is_its_classes_else_clusters() -> None:
    learnt = ModelConfig(
        readout=ReadOut("strokes", 0), classes=("a", "b"), class_colours=((1, 2, 3),) * 2
    )
    legend = legend_for_model(learnt)
    assert [(e.value, e.name) for e in legend.entries] == [(0, "a"), (1, "b")]
    assert legend.nodata == 255
    clusters = legend_for_model(ModelConfig(clusters=3))
    assert [e.name for e in clusters.entries] == ["cluster 0", "cluster 1", "cluster 2"]


# -- failures -------------------------------------------------------------------------


def test_a_failing_gis_write_leaves_none_of_the_images_files(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    class_map = ClassMap.empty(2).add_class("road", (9, 9, 9)).assign(0, 1)
    source = write_map(tmp_path / "scene.tif", np.zeros((30, 40), np.uint8))
    clusters = np.zeros((30, 40), np.uint8)
    out = tmp_path / "out"

    def broken(*_args: object, **_kwargs: object) -> None:
        raise InputError(out / "scene.tif", "cannot write the Cloud-Optimised GeoTIFF (boom)")

    monkeypatch.setattr(export_mod, "write_cog", broken)  # as export calls it
    result = run_to_end(export_images([ExportItem("scene", clusters, source=source)], class_map,
                                      out, formats="tif,gpkg,csv"))  # fmt: skip
    assert result.skipped and "boom" in result.skipped[0][1]
    assert sorted(p.name for p in out.iterdir()) == ["areas.csv"]  # no tif, qml, aux, gpkg
