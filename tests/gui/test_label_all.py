""" "Label all images": every image predicted in the worker and cached to files; export
uses the cache; cancelling keeps what finished."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from acseg_core.errors import CancelledError
from acseg_core.inference.predict import Prediction
from acseg_core.jobs import CancelToken, Progress
from acseg_core.labelling.project import Project
from app.controllers.label_all import STEPS_PER_IMAGE, LabelAllResult, format_eta, label_all_job
from app.export_dialog import ExportRequest
from tests.gui.helpers import image_folder, model_file


def fake_predict(delay: float = 0.0):
    """A stand-in for ``acseg_core.inference.predict.predict``: cluster = image index, a few steps."""

    def predict(loaded, image, *, out=None, cancel=None, **_kw):
        value = int(Path(image).stem.split("_")[-1])
        for step in range(4):
            if cancel is not None and cancel.cancelled:
                raise CancelledError(f"{image}: prediction cancelled")
            time.sleep(delay)
            yield Progress(step + 1, 4, f"predicting {image.name}")
        Image.fromarray(np.full((32, 32), value, np.uint8)).save(out)
        return Prediction(None, None, Path(out))

    return predict


def test_labels_every_image_into_the_cache_and_export_uses_it(
    qtbot, window, tmp_path: Path, dialogs
) -> None:
    images = image_folder(tmp_path / "tiles", count=3, size=32)
    window.open_images(images)
    window.load_model_reporting(model_file(tmp_path / "model.pt"))
    qtbot.waitUntil(lambda: not window.predictions.busy, timeout=60_000)
    assert window.project.save_as(tmp_path / "p.acseg")
    progress: list[Progress] = []
    window.label_all.progress.connect(progress.append)
    with qtbot.waitSignal(window.label_all.finished, timeout=120_000) as finished:
        window.actions_.label_all.trigger()
        assert window.label_all.running and window.actions_.cancel_label_all.isEnabled()
    result: LabelAllResult = finished.args[0]
    assert [image for image, _ in result.done] == images and not result.cancelled
    cache = tmp_path / "p.cache"
    for image in images:
        file = window.project.prediction_file(image)
        assert file is not None and file.parent == cache and file.is_file()
    assert progress and progress[-1].done == progress[-1].total
    assert window.isWindowModified()

    # running again has nothing left to do
    with qtbot.waitSignal(window.label_all.finished, timeout=10_000) as again:
        assert window.label_all.start() is None
    assert again.args[0].done == []

    # export all reads the cached maps (prediction is not called again)
    import acseg_core.inference.predict

    def refuse(*_a, **_k):
        raise AssertionError("export predicted although a cached map exists")

    window.session._predictions.clear()
    original = acseg_core.inference.predict.predict
    acseg_core.inference.predict.predict = refuse
    try:
        classes = window.classes
        roof = classes.add_class("roof", (200, 0, 0))
        for k in range(classes.clusters):
            classes.assign(k, roof)
        worker = window.exporter.run(ExportRequest("all", ("png",), tmp_path / "out"))
        with qtbot.waitSignal(worker.ended, timeout=60_000):
            pass
    finally:
        acseg_core.inference.predict.predict = original
    assert worker.outcome == "succeeded", dialogs.texts()
    for image in images:
        values = np.asarray(Image.open(tmp_path / "out" / f"{image.stem}.png"))
        assert values.shape == (32, 32) and set(np.unique(values)) <= {0, 1}


def test_cancelling_keeps_what_finished(qtbot, window, tmp_path: Path, monkeypatch) -> None:
    import acseg_core.inference.predict

    images = image_folder(tmp_path / "tiles", count=4, size=32)
    window.open_images(images)
    window.load_model_reporting(model_file(tmp_path / "model.pt"))
    qtbot.waitUntil(lambda: not window.predictions.busy, timeout=60_000)
    monkeypatch.setattr(acseg_core.inference.predict, "predict", fake_predict(delay=0.05))

    def cancel_after_first(item: Progress) -> None:
        if item.done >= STEPS_PER_IMAGE:  # the first image is done
            window.label_all.cancel()

    window.label_all.progress.connect(cancel_after_first)
    with qtbot.waitSignal(window.label_all.finished, timeout=60_000) as finished:
        window.label_all.start()
    result = finished.args[0]
    assert result.cancelled
    assert 1 <= len(result.done) < len(images)
    kept = [image for image, _ in result.done]
    assert kept == images[: len(kept)]
    for image in images:
        file = window.project.prediction_file(image)
        if image in kept:
            assert file is not None and np.asarray(Image.open(file)).max() == int(image.stem[-1])
        else:
            assert file is None
    assert not window.label_all.running and window.actions_.label_all.isEnabled()
    # the current image's map now comes from the cache file, not from a prediction
    window.session._predictions.clear()
    window.images.set_current(1)
    window.images.set_current(0)
    qtbot.waitUntil(lambda: window.session.has_prediction(images[0]), timeout=30_000)
    assert window.session.prediction(images[0]).max() == 0


def test_the_job_skips_bad_images_and_stops_at_cancel(tmp_path: Path, monkeypatch) -> None:
    import acseg_core.inference.predict

    monkeypatch.setattr(acseg_core.inference.predict, "predict", fake_predict())
    images = image_folder(tmp_path / "tiles", count=3, size=32)
    bad = tmp_path / "tiles" / "broken_9.tif"
    bad.write_bytes(b"not a tiff")
    result = LabelAllResult()
    token = CancelToken()
    job = label_all_job(None, [images[0], bad, images[1], images[2]], tmp_path / "c", result)(token)
    items = []
    for item in job:
        items.append(item)
        if len(result.done) == 2:
            token.cancel()
    assert [i for i, _ in result.done] == [images[0], images[1]]
    assert result.skipped and result.skipped[0][0] == bad
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
    qtbot, window, tmp_path: Path, monkeypatch
) -> None:
    import acseg_core.inference.predict

    images = image_folder(tmp_path / "tiles", count=2, size=32)
    window.open_images(images)
    window.load_model_reporting(model_file(tmp_path / "model.pt"))
    qtbot.waitUntil(lambda: not window.predictions.busy, timeout=60_000)
    monkeypatch.setattr(acseg_core.inference.predict, "predict", fake_predict())
    with qtbot.waitSignal(window.label_all.finished, timeout=60_000):
        window.label_all.start()
    temp = window.label_all.cache_dir()
    assert window.project.prediction_file(images[0]).parent == temp
    assert window.project.save_as(tmp_path / "later.acseg")
    for image in images:
        file = window.project.prediction_file(image)
        assert file is not None and file.parent == tmp_path / "later.cache"
    reopened = Project.load(tmp_path / "later.acseg")
    assert all(e.prediction is not None and e.prediction.is_file() for e in reopened.images)
