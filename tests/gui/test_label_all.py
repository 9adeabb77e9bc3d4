""" "Label all images": every image predicted in the worker (a real tiny model) and
cached to files keyed by model and read-out; cancelling keeps what finished; maps
made before the first save move beside the project."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from acseg_core.inference.predict import predict_array
from acseg_core.jobs import CancelToken, Progress, format_eta
from acseg_core.labelling.project import Project
from app.controllers.label_all import (
    STEPS_PER_IMAGE,
    LabelAllResult,
    label_all_job,
)
from tests.core.synthetic import tiny_model
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
    return window.project.doc.prediction(image, window.session.key)


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
    # running again has nothing left to do
    with qtbot.waitSignal(w.label_all.finished, timeout=10_000) as again:
        assert w.label_all.start() is None
    assert again.args[0].done == []


@pytest.mark.parametrize("labelled", [384], indirect=True)  # images that take a while
def test_cancelling_keeps_what_finished_and_previews_read_the_cache(qtbot, labelled) -> None:
    w = labelled
    w.label_all.progress.connect(  # reports are coalesced: cancel once the first is done
        lambda item: w.label_all.cancel() if item.done >= STEPS_PER_IMAGE else None
    )
    with qtbot.waitSignal(w.label_all.finished, timeout=60_000) as finished:
        w.label_all.start()
    result = finished.args[0]
    kept = [image for image, _ in result.done]
    assert result.cancelled and 1 <= len(kept) < 3 and kept == w.tiles[: len(kept)]
    for image in w.tiles:
        assert (cached(w, image) is not None) == (image in kept)
    assert not w.label_all.running and w.actions_.label_all.isEnabled()
    # a map that is cached to a file is read back, not predicted
    sources = []
    w.predictions.started.connect(lambda image, how: sources.append((image, how)))
    w.session.drop_predictions()
    qtbot.waitUntil(lambda: w.session.has_prediction(w.tiles[0]), timeout=30_000)
    assert sources == [(w.tiles[0], "cached")]


def test_the_job_skips_bad_images_and_stops_at_cancel(tmp_path: Path) -> None:
    images = image_folder(tmp_path / "tiles", count=3, size=32)
    bad = tmp_path / "tiles" / "broken_9.tif"
    bad.write_bytes(b"not a tiff")
    loaded = tiny_model(bands=4)
    from acseg_core.inference.cache import prediction_key
    from acseg_core.inference.readout import MODEL_DEFAULT

    result = LabelAllResult()
    token = CancelToken()
    key = prediction_key(loaded, MODEL_DEFAULT)
    order = [images[0], bad, images[1], images[2]]
    job = label_all_job(loaded, MODEL_DEFAULT, key, order, tmp_path / "c", result)(token)
    items = []
    for item in job:
        items.append(item)
        if len(result.done) == 2:
            token.cancel()
    assert [i for i, _ in result.done] == [images[0], images[1]]
    assert result.skipped and result.skipped[0][0] == bad
    assert "broken_9.tif" in result.skipped[0][1]
    assert result.cancelled
    assert all(item.eta_s is None or item.eta_s >= 0 for item in items)
    assert format_eta(75) == "1:15" and format_eta(3725) == "1:02:05" and format_eta(None) == ""


@pytest.mark.parametrize("saved", [False, True])
def test_cache_folder_is_beside_the_project_or_temporary(window, tmp_path: Path, saved) -> None:
    if saved:
        window.project.doc.save(tmp_path / "x.acseg")
        assert window.label_all.cache_dir() == tmp_path / "x.cache"
    else:
        assert window.label_all.cache_dir().is_dir()


def test_maps_cached_before_the_first_save_move_beside_the_project(
    qtbot, labelled, tmp_path: Path
) -> None:
    w = labelled
    with qtbot.waitSignal(w.label_all.finished, timeout=60_000):
        w.label_all.start()
    temp = w.label_all.cache_dir()
    assert cached(w, w.tiles[0]).parent == temp
    assert w.project.save_as(tmp_path / "later.acseg")
    for image in w.tiles:
        file = cached(w, image)
        assert file is not None and file.parent == tmp_path / "later.cache"
    reopened = Project.load(tmp_path / "later.acseg")
    key = w.session.key
    assert all(reopened.prediction(e.path, key) is not None for e in reopened.images)
