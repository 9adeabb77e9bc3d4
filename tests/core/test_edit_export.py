"""Hand edits reach the files written by `acseg-core export` (PNG and GeoTIFF), whether the
cluster maps come from the project's cache or are predicted on the spot."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from PIL import Image

from acseg_core.cli import main
from acseg_core.inference.cache import prediction_key
from acseg_core.labelling.classes import NO_EDIT, ClassMap
from acseg_core.labelling.edits import EditLayer
from acseg_core.labelling.project import Project
from acseg_core.model.checkpoint import load_model
from acseg_core.model.readouts import MODEL_DEFAULT
from tests.core.synthetic import make_regions_image, tiny_model_file

SIZE = 40


def cluster_file(path: Path, source: Path, clusters: np.ndarray) -> Path:
    with rasterio.open(source) as src:
        profile = {
            "driver": "GTiff",
            "width": SIZE,
            "height": SIZE,
            "count": 1,
            "dtype": "uint8",
            "crs": src.crs,
            "transform": src.transform,
        }
    with rasterio.open(path, "w", **profile) as dst:
        dst.write(clusters, 1)
    return path


def edits() -> EditLayer:
    layer = EditLayer(SIZE, SIZE, tile=16)  # several tiles, some partial at the edge
    values = np.full((SIZE, SIZE), NO_EDIT, np.uint8)
    values[5:12, 30:39] = 2  # class id 2 painted over cluster 0 (→ class 1)
    values[20, :] = 1
    layer.write(0, 0, values)
    return layer


def project_with_edits(tmp_path: Path, cached: bool, model: Path) -> Project:
    image = tmp_path / "scene.tif"
    make_regions_image(image, size=(SIZE, SIZE), bands=4, seed=3)
    project = Project()
    project.add_images([image])
    class_map = ClassMap.empty(4).add_class("water", (0, 0, 255)).add_class("roof", (255, 0, 0))
    class_map = class_map.assign_many({0: 1, 1: 1, 2: 2, 3: 2})
    project.set_model(model)
    project.set_class_map(class_map)
    if cached:  # a map cached for this model and its own read-out: export must use it
        clusters = np.zeros((SIZE, SIZE), np.uint8)
        clusters[:, 20:] = 2
        clusters[35:, :] = 255  # nodata stays background even where edited
        key = prediction_key(load_model(model, device="cpu"), MODEL_DEFAULT)
        project.set_prediction(image, key, cluster_file(tmp_path / "c.tif", image, clusters))
    project.set_edits(image, edits())
    project.save(tmp_path / "p.acseg")
    return project


def test_cli_export_includes_hand_edits(tmp_path: Path) -> None:
    project_with_edits(tmp_path, cached=True, model=tiny_model_file(tmp_path / "m.pt", bands=4))
    out = tmp_path / "out"
    assert main(["export", str(tmp_path / "p.acseg"), "--out", str(out)]) == 0
    expected = np.ones((SIZE, SIZE), np.uint8)  # cluster 0 → water (value 1)
    expected[:, 20:] = 2  # cluster 2 → roof (value 2)
    expected[5:12, 30:39] = 2
    expected[20, :] = 1
    expected[35:, :] = 0  # nodata
    png = np.asarray(Image.open(out / "scene.png"))
    assert np.array_equal(png, expected)
    with rasterio.open(out / "scene.tif") as tif, rasterio.open(tmp_path / "scene.tif") as src:
        assert np.array_equal(tif.read(1), expected)
        assert tif.crs == src.crs and tif.transform == src.transform


def test_cli_export_predicts_then_applies_edits(tmp_path: Path) -> None:
    model = tiny_model_file(tmp_path / "model.pt", bands=4, clusters=4)
    project_with_edits(tmp_path, cached=False, model=model)
    out = tmp_path / "out"
    assert main(["export", str(tmp_path / "p.acseg"), "--out", str(out), "--format", "png"]) == 0
    png = np.asarray(Image.open(out / "scene.png"))
    assert (png[5:12, 30:39] == 2).all() and (png[20, :] == 1).all()
    assert set(np.unique(png)) <= {0, 1, 2}
