"""Project file: relative paths, validation, missing images, dirty flag, edits, CLI export."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from affine import Affine
from PIL import Image

import acseg_core.labelling.project as project_mod
from acseg_core.cli import main as cli_main
from acseg_core.errors import InputError
from acseg_core.io.normalise import Normalisation
from acseg_core.labelling.classes import ClassMap
from acseg_core.labelling.edits import EditLayer
from acseg_core.labelling.project import SCHEMA_VERSION, Project
from acseg_core.model.config import ModelConfig

TRANSFORM = Affine(2.0, 0.0, 300000.0, 0.0, -2.0, 5000000.0)


def make_geotiff(path: Path, width: int = 24, height: int = 16, bands: int = 3) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    data = np.random.default_rng(1).integers(0, 255, (bands, height, width), dtype=np.uint8)
    profile = dict(driver="GTiff", width=width, height=height, count=bands, dtype="uint8")
    with rasterio.open(path, "w", crs="EPSG:3857", transform=TRANSFORM, **profile) as dst:
        dst.write(data)
    return path


def make_clusters(path: Path, width: int = 24, height: int = 16) -> np.ndarray:
    clusters = (np.arange(width * height).reshape(height, width) % 3).astype(np.uint8)
    profile = dict(driver="GTiff", width=width, height=height, count=1, dtype="uint8")
    with rasterio.open(path, "w", crs="EPSG:3857", transform=TRANSFORM, nodata=255, **profile) as d:
        d.write(clusters, 1)
    return clusters


def sample_project(root: Path) -> Project:
    images = [make_geotiff(root / "images" / f"tile{i}.tif") for i in range(2)]
    project = Project()
    project.add_images(images)
    project.set_model(root / "run" / "model.pt", ModelConfig(clusters=3))
    cm = project.class_map.add_class("road", (10, 20, 30)).add_class("tree", (0, 200, 0))
    project.set_class_map(cm.assign_many({0: 1, 1: 2}))
    project.set_display({"opacity": 0.6, "bands": [3, 2, 1]})
    return project


def test_round_trip_with_relative_paths_survives_moving_the_folder(tmp_path: Path) -> None:
    root = tmp_path / "survey"
    project = sample_project(root)
    project.set_prediction(0, "model1-kmeans-s25", root / "pred" / "tile0_clusters.tif")
    (root / "pred").mkdir()
    make_clusters(root / "pred" / "tile0_clusters.tif")
    layer = project.get_edits(1, create=True)
    layer.write(3, 4, np.full((2, 5), 2, dtype=np.uint8))
    saved = project.save(root / "survey.acseg")
    data = json.loads(saved.read_text())
    assert data["schema_version"] == SCHEMA_VERSION
    assert data["images"][0]["path"] == "images/tile0.tif"
    assert data["images"][0]["predictions"] == {"model1-kmeans-s25": "pred/tile0_clusters.tif"}
    assert data["model"] == "run/model.pt"
    assert data["images"][1]["edits"].startswith("survey.edits/tile1-")

    shutil.move(root, tmp_path / "moved")
    moved = tmp_path / "moved"
    back = Project.load(moved / "survey.acseg")
    assert [e.path for e in back.images] == [moved / "images/tile0.tif", moved / "images/tile1.tif"]
    assert back.missing_images() == [] and back.warnings == []
    assert back.prediction(0, "model1-kmeans-s25") == moved / "pred" / "tile0_clusters.tif"
    assert back.model == moved / "run" / "model.pt"
    assert back.class_map == project.class_map
    assert back.display == {"opacity": 0.6, "bands": [3, 2, 1]}
    np.testing.assert_array_equal(back.get_edits(1).to_array(), layer.to_array())
    assert back.get_edits(0) is None
    assert not back.dirty


def test_validation_names_the_file_and_the_problem(tmp_path: Path) -> None:
    project = sample_project(tmp_path)
    path = project.save(tmp_path / "p.acseg")
    good = json.loads(path.read_text())

    def load_with(change) -> str:
        data = json.loads(json.dumps(good))
        change(data)
        path.write_text(json.dumps(data))
        with pytest.raises(InputError) as info:
            Project.load(path)
        message = str(info.value)
        assert message.startswith(str(path) + ": ") and "\n" not in message
        return message

    assert "schema_version 9 is newer than this acseg (3)" in load_with(
        lambda d: d.update(schema_version=9)
    )
    assert "images[1].path must be a string" in load_with(lambda d: d["images"][1].update(path=5))
    assert "class_map: classes[0].color" in load_with(
        lambda d: d["class_map"]["classes"][0].update(color="red")
    )
    assert "not an acseg project file" in load_with(lambda d: d.pop("format"))
    path.write_text("{ not json")
    with pytest.raises(InputError, match="not valid JSON"):
        Project.load(path)
    with pytest.raises(InputError, match="project file not found"):
        Project.load(tmp_path / "nope.acseg")


def test_missing_images_are_reported_and_relinked(tmp_path: Path) -> None:
    project = sample_project(tmp_path)
    layer = project.get_edits(0, create=True)
    layer.write(0, 0, np.ones((2, 2), np.uint8))
    path = project.save(tmp_path / "p.acseg")
    (tmp_path / "images").rename(tmp_path / "elsewhere")

    back = Project.load(path)  # not fatal
    assert [e.path.name for e in back.missing_images()] == ["tile0.tif", "tile1.tif"]
    back.relink(back.images[0], tmp_path / "elsewhere" / "tile0.tif")
    assert back.dirty and [e.path.name for e in back.missing_images()] == ["tile1.tif"]
    assert back.relink_folder(tmp_path / "elsewhere") == 1
    assert back.missing_images() == []
    assert back.get_edits(tmp_path / "elsewhere" / "tile0.tif").edited_pixels() == 4
    with pytest.raises(InputError, match="file not found"):
        back.relink(0, tmp_path / "nope.tif")
    back.save()
    assert Project.load(path).images[0].path == tmp_path / "elsewhere" / "tile0.tif"


def test_failed_save_raises_and_stays_dirty(tmp_path: Path, monkeypatch) -> None:
    project = sample_project(tmp_path)
    project.get_edits(0, create=True).write(0, 0, np.ones((3, 3), np.uint8))
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be")
    with pytest.raises(InputError, match="cannot save the project"):
        project.save(blocker / "p.acseg")
    assert project.dirty and project.path is None

    def failing_write(target: Path, text: str) -> None:
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(project_mod, "write_text_atomic", failing_write)
    with pytest.raises(InputError, match=r"p\.acseg: cannot save the project \(no space left"):
        project.save(tmp_path / "p.acseg")
    assert project.dirty and project.path is None
    assert list((tmp_path / "p.edits").iterdir()) == []  # edit files it wrote are gone
    assert not (tmp_path / "p.acseg").exists()
    monkeypatch.undo()
    project.save(tmp_path / "p.acseg")
    assert not project.dirty


def test_dirty_follows_changes_and_painting(tmp_path: Path) -> None:
    project = sample_project(tmp_path)
    path = project.save(tmp_path / "p.acseg")
    assert not project.dirty
    layer = project.get_edits(0, create=True)
    assert not project.dirty  # an empty new layer is nothing to save
    layer.write(1, 1, np.full((1, 1), 1, np.uint8))
    assert project.dirty
    project.save()
    assert not project.dirty
    project.set_class_map(project.class_map.rename_class(1, "asphalt"))
    assert project.dirty
    project.save()
    project.set_display({"opacity": 0.6, "bands": [3, 2, 1]})  # unchanged
    assert not project.dirty
    assert Project.load(path).class_map.class_by_id(1).name == "asphalt"


def test_resaving_edits_replaces_the_old_file_and_clearing_removes_it(tmp_path: Path) -> None:
    project = sample_project(tmp_path)
    project.get_edits(0, create=True).write(0, 0, np.ones((2, 2), np.uint8))
    project.save(tmp_path / "p.acseg")
    edits_dir = tmp_path / "p.edits"
    first = list(edits_dir.iterdir())
    project.get_edits(0).write(5, 5, np.full((2, 2), 2, np.uint8))
    project.save()
    second = list(edits_dir.iterdir())
    assert len(first) == len(second) == 1 and first != second
    assert Project.load(tmp_path / "p.acseg").get_edits(0).edited_pixels() == 8
    project.set_edits(0, None)
    project.save()
    assert list(edits_dir.iterdir()) == []
    assert Project.load(tmp_path / "p.acseg").get_edits(0) is None


def test_save_as_carries_edits_to_the_new_place(tmp_path: Path) -> None:
    project = sample_project(tmp_path)
    project.get_edits(1, create=True).write(2, 2, np.full((3, 3), 2, np.uint8))
    project.save(tmp_path / "a.acseg")
    reopened = Project.load(tmp_path / "a.acseg")  # edits not loaded yet
    reopened.save(tmp_path / "copy" / "b.acseg")
    assert len(list((tmp_path / "a.edits").iterdir())) == 1  # the original keeps its own
    b = Project.load(tmp_path / "copy" / "b.acseg")
    assert b.images[1].path == tmp_path / "images" / "tile1.tif"
    assert b.get_edits(1).edited_pixels() == 9


def test_set_model_resizes_class_map_and_keeps_maps_keyed_by_their_model(tmp_path: Path) -> None:
    project = sample_project(tmp_path)
    make_clusters(tmp_path / "x.tif")
    project.set_prediction(0, "old-head-s0", tmp_path / "x.tif")
    norm = Normalisation((0.0,) * 3, (255.0,) * 3, None)
    project.set_model(tmp_path / "other.pt", ModelConfig(clusters=5, normalisation=norm))
    assert project.class_map.assignment == (1, 2, 0, 0, 0)
    assert project.prediction(0, "old-head-s0") == tmp_path / "x.tif"  # keyed: never mixed up
    assert project.prediction(0, "new-head-s0") is None
    assert project.normalisation == norm
    project.save(tmp_path / "p.acseg")
    assert Project.load(tmp_path / "p.acseg").normalisation == norm


def test_schema_1_files_load_and_drop_their_unkeyed_maps(tmp_path: Path) -> None:
    make_geotiff(tmp_path / "a.tif")
    make_clusters(tmp_path / "a_clusters.tif")
    old = {
        "format": "acseg-project",
        "schema_version": 1,
        "model": "model.pt",
        "class_map": ClassMap.empty(3).add_class("road", (1, 2, 3)).to_dict(),
        "images": [{"path": "a.tif", "prediction": "a_clusters.tif", "edits": None}],
        "display": {},
    }
    (tmp_path / "old.acseg").write_text(json.dumps(old))
    project = Project.load(tmp_path / "old.acseg")
    assert [e.path.name for e in project.images] == ["a.tif"]
    assert project.images[0].predictions == {}  # which model and read-out made it? unknown
    assert project.class_map.classes[0].name == "road"
    project.save(tmp_path / "old.acseg")
    assert json.loads((tmp_path / "old.acseg").read_text())["schema_version"] == SCHEMA_VERSION


def test_set_images_keeps_the_order_the_app_shows_and_the_edits(tmp_path: Path) -> None:
    project = sample_project(tmp_path)
    first, second = (e.path for e in project.images)
    layer = project.get_edits(first, create=True)
    layer.write(0, 0, np.full((2, 2), 1, np.uint8))
    third = make_geotiff(tmp_path / "images" / "tile9.tif")
    project.set_images([third, second, first])
    assert [e.path for e in project.images] == [third, second, first]
    assert project.get_edits(first) is layer
    project.set_images([third, first])
    assert [e.path for e in project.images] == [third, first]
    project.set_images([third, second, first])
    project.save(tmp_path / "p.acseg")
    assert [e.path for e in Project.load(tmp_path / "p.acseg").images] == [third, second, first]


def test_cli_export_uses_cached_predictions_class_map_and_edits(tmp_path: Path, capsys) -> None:
    from acseg_core.inference.cache import prediction_key
    from acseg_core.model.checkpoint import load_model
    from acseg_core.model.readouts import MODEL_DEFAULT
    from tests.core.synthetic import tiny_model_file

    root = tmp_path / "survey"
    project = sample_project(root)
    model = tiny_model_file(root / "run" / "model.pt", bands=3, clusters=3)
    key = prediction_key(load_model(model, device="cpu"), MODEL_DEFAULT)
    predictions = []
    for i in range(2):
        pred = root / "pred" / f"tile{i}_clusters.tif"
        pred.parent.mkdir(exist_ok=True)
        predictions.append(make_clusters(pred))
        project.set_prediction(i, key, pred)
    project.get_edits(1, create=True).write(0, 0, np.full((4, 4), 1, np.uint8))
    project.save(root / "survey.acseg")

    out = tmp_path / "out"
    code = cli_main(
        ["export", str(root / "survey.acseg"), "--out", str(out), "--format", "png,tif"]
    )
    assert code == 0, capsys.readouterr().err
    values = np.array([1, 2, 0] + [0] * 253, dtype=np.uint8)
    expected1 = values[predictions[1]]
    expected1[:4, :4] = 1  # hand edits win
    np.testing.assert_array_equal(np.asarray(Image.open(out / "tile1.png")), expected1)
    with rasterio.open(out / "tile0.tif") as ds:
        assert ds.transform == TRANSFORM and ds.crs is not None
        np.testing.assert_array_equal(ds.read(1), values[predictions[0]])
    assert (out / "labelmap.txt").read_text().splitlines()[2] == "road:10,20,30::"
    capsys.readouterr()

    stamp = (out / "tile1.png").stat().st_mtime_ns
    code = cli_main(["export", str(root / "survey.acseg"), "--out", str(out)])
    assert code == 0 and "2 image(s) already exported" in capsys.readouterr().out
    assert (out / "tile1.png").stat().st_mtime_ns == stamp  # a rerun redoes nothing


def test_cli_export_without_model_or_prediction_names_each_image(tmp_path: Path, capsys) -> None:
    project = Project()
    project.add_images([make_geotiff(tmp_path / "a.tif")])
    project.set_class_map(ClassMap.empty(3))
    project.save(tmp_path / "p.acseg")
    code = cli_main(["export", str(tmp_path / "p.acseg"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and "Traceback" not in "\n".join(err)
    assert err == [
        "acseg-core export: skipped a: a: no cluster map (load or train a model first)",
        "acseg-core export: 1 of 1 image(s) skipped",
    ]


def test_edits_layer_must_match_image_size_at_export(tmp_path: Path) -> None:
    from acseg_core.jobs import run_to_end
    from acseg_core.labelling.export import ExportItem
    from acseg_core.labelling.export_job import export_images

    result = run_to_end(
        export_images(
            [ExportItem("a", np.zeros((16, 24), np.uint8), edits=EditLayer(5, 5))],
            ClassMap.empty(3),
            tmp_path,
        )
    )
    assert result.skipped == [("a", "a: hand edits are 5×5 but the image is 24×16")]


def test_cli_export_predicts_images_without_a_cached_prediction(tmp_path: Path, capsys) -> None:
    import torch

    from acseg_core.inference.predict import predict_array
    from acseg_core.model.checkpoint import load_model, save_checkpoint
    from acseg_core.model.nn import build_model

    torch.manual_seed(0)
    config = ModelConfig(in_channels=3, clusters=3, blocks=1, base_width=8, stride=4)
    save_checkpoint(tmp_path / "model.pt", build_model(config), config)
    project = Project()
    project.add_images([make_geotiff(tmp_path / "a.tif", width=40, height=32)])
    project.set_model(tmp_path / "model.pt", config)
    cm = project.class_map.add_class("x", (1, 2, 3)).add_class("y", (4, 5, 6))
    project.set_class_map(cm.assign_many({0: 1, 1: 2, 2: 2}))
    project.save(tmp_path / "p.acseg")

    out = tmp_path / "out"
    code = cli_main(["export", str(tmp_path / "p.acseg"), "--out", str(out), "--device", "cpu"])
    assert code == 0, capsys.readouterr().err
    clusters = predict_array(load_model(tmp_path / "model.pt", device="cpu"), tmp_path / "a.tif")
    expected = np.array([1, 2, 2] + [0] * 253, dtype=np.uint8)[clusters.clusters]
    with rasterio.open(out / "a.tif") as ds:
        np.testing.assert_array_equal(ds.read(1), expected)
    assert sorted(p.name for p in out.iterdir()) == [
        "a.png", "a.qml", "a.tif", "a.tif.aux.xml", "labelmap.txt"
    ]  # the COG's class names beside it


def test_the_cache_folder_is_temporary_until_the_first_save_then_beside_the_file(
    tmp_path: Path,
) -> None:
    project = sample_project(tmp_path / "survey")
    temp = project.cache_dir
    assert temp.is_dir() and temp.parent != tmp_path / "survey"
    map_file = temp / "tile0-map.tif"
    make_clusters(map_file)
    project.set_prediction(0, "k1", map_file)
    saved = project.save(tmp_path / "survey" / "s.acseg")
    assert project.cache_dir == tmp_path / "survey" / "s.cache"
    moved = project.prediction(0, "k1")
    assert moved == tmp_path / "survey" / "s.cache" / "tile0-map.tif" and moved.is_file()
    assert not temp.exists()
    assert Project.load(saved).prediction(0, "k1") == moved


def test_a_learnt_model_is_saved_with_the_project_and_comes_back(tmp_path: Path) -> None:
    from acseg_core.model.checkpoint import load_model
    from tests.core.synthetic import tiny_model

    root = tmp_path / "survey"
    project = sample_project(root)
    fitted = tiny_model(seed=3)
    project.set_learnt(fitted)
    assert project.learnt is fitted and project.dirty
    saved = project.save(root / "p.acseg")
    stored = project.learnt
    assert isinstance(stored, Path) and stored.parent == root / "p.models"
    back = load_model(Project.load(saved).learnt, device="cpu")
    for name, tensor in fitted.model.state_dict().items():
        assert torch.equal(back.model.state_dict()[name], tensor), name
    # replaced by another learn: the new file is written, the old one removed on save
    project.set_learnt(tiny_model(seed=4))
    project.save()
    assert project.learnt != stored and not stored.exists() and project.learnt.exists()
    # back to the unsupervised model: the file goes with the next save
    latest = project.learnt
    project.set_learnt(None)
    project.save()
    assert project.learnt is None and not latest.exists()
    assert Project.load(saved).learnt is None


def test_a_learnt_path_outside_the_models_folder_is_refused(tmp_path: Path) -> None:
    project = sample_project(tmp_path)
    saved = project.save(tmp_path / "p.acseg")
    data = json.loads(saved.read_text())
    elsewhere = tmp_path / "elsewhere.pt"
    elsewhere.write_bytes(b"x")
    data["learnt"] = "elsewhere.pt"
    saved.write_text(json.dumps(data))
    with pytest.raises(InputError, match=r"learnt must be a file in the project's p\.models"):
        Project.load(saved)
    assert elsewhere.read_bytes() == b"x"
