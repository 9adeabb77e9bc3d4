"""`predict --format tif,gpkg,csv` and `export --format png,tif,gpkg,csv,color` end to end,
and an unwritable output folder: one line, nothing written."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyogrio
import pytest
import rasterio
from PIL import Image

from acseg_core.cli import main
from acseg_core.gis.areas import TOTAL_IMAGE, read_areas_csv
from acseg_core.gis.cog import aux_path, pam_names
from acseg_core.gis.polygons import LAYER
from acseg_core.gis.qgis import qml_labels, qml_path
from acseg_core.labelling.classes import ClassMap
from acseg_core.labelling.project import Project
from tests.core.synthetic import make_regions_image, tiny_model_file

CLASSES = ["water", "roof", "grass"]
OPTIONS = ["--precision", "fp32", "--device", "cpu"]


@pytest.fixture(scope="module")
def learnt(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path, Path]:
    """A learnt (strokes) model made by `acseg-core learn`, a georeferenced scene and a PNG."""
    folder = tmp_path_factory.mktemp("learnt")
    scene, photo = folder / "scene.tif", folder / "photo.png"
    labels = make_regions_image(scene, size=(96, 128), bands=3, classes=3, seed=1)
    make_regions_image(photo, size=(40, 50), bands=3, classes=3, seed=2, crs=False)
    strokes = folder / "strokes"
    strokes.mkdir()
    marks = np.full(labels.shape, 255, np.uint8)
    rng = np.random.default_rng(0)
    for c in range(3):
        rows, cols = np.nonzero(labels == c)
        pick = rng.choice(len(rows), 40, replace=False)
        marks[rows[pick], cols[pick]] = c
    Image.fromarray(marks).save(strokes / "scene.png")
    (folder / "classes.txt").write_text("\n".join(CLASSES) + "\n")
    base = tiny_model_file(folder / "base.pt", bands=3, clusters=4)
    model = folder / "learnt.pt"
    assert main(["learn", str(base), str(scene), "--strokes", str(strokes), "--classes",
                 str(folder / "classes.txt"), "--out", str(model)]) == 0  # fmt: skip
    return model, scene, photo


def test_predict_formats_tif_gpkg_csv_name_the_learnt_classes(
    learnt: tuple[Path, Path, Path], tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model, scene, photo = learnt
    out = tmp_path / "out"
    code = main(["predict", str(model), str(scene), str(photo), "--out", str(out),
                 "--format", "tif,gpkg,csv", "--min-area", "4", *OPTIONS])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert "photo.png: not georeferenced, no GeoPackage" in captured.err
    assert sorted(p.name for p in out.iterdir()) == [
        "areas.csv", "photo_clusters.png", "scene_clusters.gpkg", "scene_clusters.qml",
        "scene_clusters.tif", "scene_clusters.tif.aux.xml",
    ]  # fmt: skip
    tif = out / "scene_clusters.tif"
    with rasterio.open(tif) as ds, rasterio.open(scene) as src:
        assert ds.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"
        assert ds.crs == src.crs and ds.transform == src.transform and ds.nodata == 255
        ids = ds.read(1)
    assert set(np.unique(ids).tolist()) <= {0, 1, 2}
    assert list(qml_labels(qml_path(tif).read_text()).values()) == CLASSES
    assert pam_names(aux_path(tif).read_text())[0] == CLASSES
    meta, _, _, (class_id, class_name, area, image) = pyogrio.raw.read(
        out / "scene_clusters.gpkg", layer=LAYER
    )
    assert meta["crs"] == "EPSG:32632"
    assert set(class_name) <= set(CLASSES) and set(image) == {"scene.tif"}
    assert all(CLASSES[i] == n for i, n in zip(class_id, class_name, strict=True))
    assert area.sum() == pytest.approx(96 * 128 * 0.25)  # every pixel in exactly one polygon
    rows = list(read_areas_csv(out / "areas.csv"))
    by_image = {(r["image"], r["class_name"]): r for r in rows}
    for c, name in enumerate(CLASSES):
        assert int(by_image[("scene.tif", name)]["pixels"]) == int((ids == c).sum())
    assert sum(float(r["area_m2"]) for r in rows if r["image"] == "scene.tif") == pytest.approx(
        96 * 128 * 0.25
    )
    assert {r["area_m2"] for r in rows if r["image"] == "photo.png"} == {""}
    assert [int(r["pixels"]) for r in rows if r["image"] == TOTAL_IMAGE] == [
        sum(int(r["pixels"]) for r in rows if r["class_name"] == n and r["image"] != TOTAL_IMAGE)
        for n in CLASSES
    ]
    assert f"areas: {out / 'areas.csv'}" in captured.out


def test_predict_gpkg_alone_writes_no_map_and_names_clusters(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tiny_model_file(tmp_path / "m.pt", bands=3, clusters=4)
    scene = tmp_path / "scene.tif"
    make_regions_image(scene, size=(64, 64), bands=3)
    out = tmp_path / "out"
    assert main(["predict", str(model), str(scene), "--out", str(out), "--format", "gpkg",
                 *OPTIONS]) == 0  # fmt: skip
    assert sorted(p.name for p in out.iterdir()) == ["scene_clusters.gpkg"]
    names = pyogrio.raw.read(out / "scene_clusters.gpkg", layer=LAYER)[3][1]
    assert set(names) <= {f"cluster {k}" for k in range(4)}
    # a rerun with --resume knows the image is done from its GeoPackage
    capsys.readouterr()
    assert main(["predict", str(model), str(scene), "--out", str(out), "--format", "gpkg",
                 "--resume", *OPTIONS]) == 0  # fmt: skip
    assert "1 input(s) already done, skipped" in capsys.readouterr().out
    both = tmp_path / "both"
    assert main(["predict", str(model), str(scene), "--out", str(both), "--format", "tif,gpkg",
                 "--confidence", *OPTIONS]) == 0  # fmt: skip
    assert sorted(p.name for p in both.iterdir()) == [
        "scene_clusters.gpkg", "scene_clusters.qml", "scene_clusters.tif",
        "scene_clusters.tif.aux.xml", "scene_clusters_confidence.tif",
    ]  # fmt: skip


def test_predict_refuses_unknown_formats_in_one_line(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model = tiny_model_file(tmp_path / "m.pt", bands=3, clusters=4)
    code = main(["predict", str(model), str(tmp_path), "--out", str(tmp_path / "o"),
                 "--format", "tif,shp"])  # fmt: skip
    err = capsys.readouterr().err.strip().splitlines()
    assert code != 0 and len(err) == 1 and "shp" in err[0]
    assert not (tmp_path / "o").exists()


def project(tmp_path: Path) -> Path:
    image = tmp_path / "scene.tif"
    make_regions_image(image, size=(48, 64), bands=4, seed=3)
    proj = Project()
    proj.add_images([image])
    class_map = ClassMap.empty(4).add_class("water", (0, 0, 255)).add_class("roof", (255, 0, 0))
    proj.set_model(tiny_model_file(tmp_path / "m.pt", bands=4, clusters=4))
    proj.set_class_map(class_map.assign_many({0: 1, 1: 1, 2: 2}))  # cluster 3 unassigned
    return proj.save(tmp_path / "p.acseg")


def test_export_every_format(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "out"
    code = main(["export", str(project(tmp_path)), "--out", str(out), "--format",
                 "png,tif,gpkg,csv,color", "--min-area", "0"])  # fmt: skip
    assert code == 0, capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == [
        "areas.csv", "labelmap.txt", "scene.gpkg", "scene.png", "scene.qml", "scene.tif",
        "scene.tif.aux.xml", "scene_color.png",
    ]  # fmt: skip
    values = np.asarray(Image.open(out / "scene.png"))
    meta, _, _, (class_id, class_name, area, _) = pyogrio.raw.read(out / "scene.gpkg")
    assert meta["crs"] == "EPSG:32632"
    for value, name in ((1, "water"), (2, "roof")):
        assert area[class_id == value].sum() == pytest.approx((values == value).sum() * 0.25)
        assert set(class_name[class_id == value]) == {name}
    assert 0 not in class_id  # background (unassigned) is no polygon
    rows = [r for r in read_areas_csv(out / "areas.csv") if r["image"] == "scene"]
    assert [int(r["pixels"]) for r in rows] == [int((values == v).sum()) for v in range(3)]
    assert pam_names(aux_path(out / "scene.tif").read_text())[0] == ["background", "water", "roof"]


@pytest.mark.skipif(hasattr(os, "geteuid") and os.geteuid() == 0, reason="root writes anywhere")
def test_unwritable_output_is_one_line_and_writes_nothing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    _check_unwritable(tmp_path, capsys)


def test_unwritable_output_as_root_too(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Where the tests run as root (CI containers), a folder that is a file stands in."""
    _check_unwritable(tmp_path, capsys, blocked_by_file=True)


def _check_unwritable(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], blocked_by_file: bool = False
) -> None:
    proj = project(tmp_path)
    scene = tmp_path / "scene.tif"
    model = tmp_path / "m.pt"
    if blocked_by_file:
        blocker = tmp_path / "blocker"
        blocker.write_text("a file, not a folder")
        out = blocker / "out"
    else:
        out = tmp_path / "locked"
        out.mkdir()
        out.chmod(0o500)
    try:
        for command in (
            ["predict", str(model), str(scene), "--out", str(out), "--format", "tif,gpkg,csv"],
            ["export", str(proj), "--out", str(out), "--format", "tif,gpkg,csv"],
        ):
            code = main(command)
            err = capsys.readouterr().err.strip().splitlines()
            assert code != 0 and len(err) == 1, err
            assert str(out) in err[0] and "Traceback" not in err[0]
            assert not out.exists() or not list(out.iterdir())
    finally:
        if not blocked_by_file:
            out.chmod(0o700)
