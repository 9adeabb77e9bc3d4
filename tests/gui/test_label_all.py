""" "Label all images": every image predicted in the worker (a real tiny model, the
core's collection job) and cached to files keyed by model and read-out; cancelling
keeps what finished; maps made before the first save move beside the project."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from acseg_core.inference.predict import predict_array
from acseg_core.jobs import Progress
from acseg_core.labelling.project import Project
from app.controllers.label_all import LabelAllResult
from tests.gui.helpers import image_folder, model_file


@pytest.fixture
def labelled(qtbot, window, tmp_path: Path, request):
    size = getattr(request, "param", 32)
    images = image_folder(tmp_path / "tiles", count=3, size=size)
    window.open_images(images)
    window.load_model_reporting(model_file(tmp_path / "model.pt"))
    qtbot.waitUntil(lambda: not window.predictions.busy, timeout=60_000)
    window.tiles = images
    return window


def cached(window, image: Path) -> Path | None:
    return window.document.project.prediction(image, window.session.key)


def test_labels_every_image_into_the_cache_beside_the_project(qtbot, labelled, tmp_path) -> None:
    w = labelled
    assert w.project.save_as(tmp_path / "p.acseg")
    progress: list[Progress] = []
    w.label_all.progress.connect(progress.append)
    with qtbot.waitSignal(w.label_all.finished, timeout=120_000) as finished:
        w.actions_.label_all.trigger()
        assert w.label_all.running and w.actions_.cancel_label_all.isEnabled()
    result: LabelAllResult = finished.args[0]
    assert [image for image, _ in result.done] == w.tiles and not result.cancelled
    for image in w.tiles:
        file = cached(w, image)
        assert file is not None and file.parent == tmp_path / "p.cache"
        expected = predict_array(w.session.loaded, image).clusters
        assert np.array_equal(np.asarray(Image.open(file)), expected)
    assert progress and progress[-1].done == progress[-1].total
    assert w.isWindowModified()
    # running again has nothing left to do, and says so
    with qtbot.waitSignal(w.label_all.finished, timeout=10_000) as again:
        w.label_all.start()
    assert again.args[0].done == [] and len(again.args[0].already) == 3
    assert "All 3 images already labelled" in w.statusBar().currentMessage()


@pytest.mark.parametrize("labelled", [384], indirect=True)  # images that take a while
def test_cancelling_keeps_what_finished_and_previews_read_the_cache(
    qtbot, labelled, tmp_path: Path, monkeypatch
) -> None:
    w = labelled
    heard = LabelAllResult.add

    def add_then_cancel(result: LabelAllResult, file_result) -> None:  # in the worker
        heard(result, file_result)
        w.label_all.cancel()  # as soon as the first map is written

    monkeypatch.setattr(LabelAllResult, "add", add_then_cancel)
    with qtbot.waitSignal(w.label_all.finished, timeout=60_000) as finished:
        w.label_all.start()
    result = finished.args[0]
    kept = [image for image, _ in result.done]
    assert result.cancelled and kept == w.tiles[:1]
    for image in w.tiles:
        assert (cached(w, image) is not None) == (image in kept)
    assert not w.label_all.running and w.actions_.label_all.isEnabled()
    # reopened, a map that is cached to a file is read back, not predicted
    assert w.project.save_as(tmp_path / "cut.acseg")
    sources = []
    w.predictions.started.connect(lambda image, how: sources.append((image, how)))
    w.project.open(tmp_path / "cut.acseg")
    qtbot.waitUntil(lambda: w.session.has_prediction(w.tiles[0]), timeout=30_000)
    assert sources[0] == (w.tiles[0], "cached")


def test_maps_cached_before_the_first_save_move_beside_the_project(
    qtbot, labelled, tmp_path: Path
) -> None:
    w = labelled
    with qtbot.waitSignal(w.label_all.finished, timeout=60_000):
        w.label_all.start()
    temp = w.document.project.cache_dir
    assert cached(w, w.tiles[0]).parent == temp
    assert w.project.save_as(tmp_path / "later.acseg")
    for image in w.tiles:
        file = cached(w, image)
        assert file is not None and file.parent == tmp_path / "later.cache"
    reopened = Project.load(tmp_path / "later.acseg")
    key = w.session.key
    assert all(reopened.prediction(e.path, key) is not None for e in reopened.images)
