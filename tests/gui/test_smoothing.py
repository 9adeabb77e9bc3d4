"""The read-out's smoothing window in the Display panel: the model's own window by
default, off or a custom odd window; the choice reaches every prediction
(current image, "Label all", export), drops maps made with another window and
re-predicts the current image; hand edits stay."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from acseg_core.errors import AcsegError
from acseg_core.inference.predict import Prediction
from acseg_core.inference.predict import predict as core_predict  # bound before any test patches it
from acseg_core.jobs import Progress
from acseg_core.model.refine import majority_filter
from app.controllers.label_all import cache_file, cache_window
from app.export_dialog import ExportRequest
from app.panels.display_panel import SMOOTH_CUSTOM, SMOOTH_DEFAULT, SMOOTH_OFF
from tests.gui.helpers import HeldPredict, assert_hand_edits_survive, image_folder, model_file

SIZE = 64


def choose(window, choice: str) -> None:
    """Pick an entry of the Smoothing combo box as a user does (``activated``)."""
    combo = window.display_panel.smoothing
    index = combo.findData(choice)
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def run_predict(loaded, image: Path, smooth: int | None) -> np.ndarray:
    """The core's prediction, run here (the reference the app's maps must equal)."""
    steps = core_predict(loaded, image, smooth=smooth)
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value.clusters


@pytest.fixture
def calls(monkeypatch) -> list[int | None]:
    """Every ``smooth`` the app passes to the core's predict (which still runs)."""
    import acseg_core.inference.predict

    real = acseg_core.inference.predict.predict
    seen: list[int | None] = []

    def recording(loaded, image, **kwargs):
        assert "smooth" in kwargs, "the app must always say which read-out it wants"
        seen.append(kwargs["smooth"])
        return real(loaded, image, **kwargs)

    monkeypatch.setattr(acseg_core.inference.predict, "predict", recording)
    return seen


@pytest.fixture
def predicted(qtbot, window, tmp_path: Path):
    """Two tiles, a tiny cpu-small model (its own window: 25 px), the first one predicted."""
    images = image_folder(tmp_path / "tiles", count=2, size=SIZE)
    window.open_images(images)
    with qtbot.waitSignal(window.session.prediction_ready, timeout=60_000):
        window.load_model_reporting(model_file(tmp_path / "model.pt"))
    qtbot.waitUntil(lambda: not window.predictions.busy, timeout=60_000)
    window.tiles = images
    return window


def test_the_control_shows_the_models_own_window(qtbot, window, tmp_path: Path) -> None:
    panel = window.display_panel
    assert panel.smoothing.currentData() == SMOOTH_DEFAULT
    assert panel.smoothing.currentText() == "Model default"  # no model yet
    assert not panel.smooth_size.isEnabled()

    window.load_model_reporting(model_file(tmp_path / "model.pt"))
    default = window.session.loaded.config.smooth
    assert default == 25  # what cpu-small ships with
    assert panel.smoothing.currentText() == "Model default (25 px)"
    assert panel.smoothing.currentData() == SMOOTH_DEFAULT and not panel.smooth_size.isEnabled()
    assert window.session.smooth is None and window.session.effective_smooth == 25
    entries = [panel.smoothing.itemText(i) for i in range(panel.smoothing.count())]
    assert entries[1:] == ["Off", "Custom window"]

    # a model shipped without a window says "off"
    import torch

    from acseg_core.model.checkpoint import load_model, save_checkpoint
    from acseg_core.model.nn import build_model

    config = replace(window.session.loaded.config, smooth=0)
    torch.manual_seed(0)
    plain = tmp_path / "plain.pt"
    save_checkpoint(plain, build_model(config), config)
    assert load_model(plain, device="cpu").config.smooth == 0
    window.load_model_reporting(plain)
    assert panel.smoothing.currentText() == "Model default (off)"
    assert window.session.effective_smooth == 0


def test_off_and_custom_reach_the_prediction_of_the_current_image(qtbot, predicted, calls) -> None:
    w, image = predicted, predicted.tiles[0]
    loaded = w.session.loaded
    plain = run_predict(loaded, image, 0)
    assert np.array_equal(w.session.prediction(image), run_predict(loaded, image, None))

    with qtbot.waitSignal(w.session.prediction_ready, timeout=60_000) as ready:
        choose(w, SMOOTH_OFF)
    assert ready.args == [image]
    assert calls == [0] and w.session.smooth == 0
    assert np.array_equal(w.session.prediction(image), plain)  # the network's own argmax
    assert not w.display_panel.smooth_size.isEnabled()

    with qtbot.waitSignal(w.session.prediction_ready, timeout=60_000):
        choose(w, SMOOTH_CUSTOM)
    assert w.display_panel.smooth_size.isEnabled() and w.display_panel.smooth_size.value() == 9
    assert calls == [0, 9] and w.session.smooth == 9
    clusters = w.session.prediction(image)
    assert np.array_equal(clusters, majority_filter(plain, loaded.config.clusters, 9))
    assert not np.array_equal(clusters, plain)  # the window did something

    with qtbot.waitSignal(w.session.prediction_ready, timeout=60_000):
        w.display_panel.smooth_size.setValue(11)
    assert calls == [0, 9, 11]
    assert np.array_equal(
        w.session.prediction(image), majority_filter(plain, loaded.config.clusters, 11)
    )

    with qtbot.waitSignal(w.session.prediction_ready, timeout=60_000):
        choose(w, SMOOTH_DEFAULT)
    assert calls == [0, 9, 11, None] and w.session.smooth is None


def test_switching_drops_cached_maps_and_predicts_the_current_image_again(
    qtbot, predicted, calls
) -> None:
    w = predicted
    first, second = w.tiles
    with qtbot.waitSignal(w.session.prediction_ready, timeout=60_000):
        w.images.set_current(1)
    w.images.set_current(0)  # still cached: shown without predicting
    assert calls == [None]
    assert w.session.has_prediction(first) and w.session.has_prediction(second)
    shown_before = w.overlays._labels.copy()
    w.document.mark_clean()  # (loading the model was a change)

    with qtbot.waitSignal(w.predictions.finished, timeout=60_000) as done:
        choose(w, SMOOTH_OFF)
        assert not w.session.has_prediction(first) and not w.session.has_prediction(second)
        assert w.predictions.busy  # the current image is predicted again at once
    assert done.args == [first] and calls == [None, 0]
    assert w.session.has_prediction(first) and not w.session.has_prediction(second)
    qtbot.waitUntil(lambda: w.canvas.has_overlay)
    assert not np.array_equal(w.overlays._labels, shown_before)  # the overlay follows
    assert not w.document.dirty  # a session setting: the project is unchanged

    # the same window under another name keeps the maps
    with qtbot.waitSignal(w.session.prediction_ready, timeout=60_000):
        w.display_panel.smooth_size.setValue(25)
        choose(w, SMOOTH_CUSTOM)
    assert calls == [None, 0, 25]
    choose(w, SMOOTH_DEFAULT)  # also 25 px: nothing to predict
    assert w.session.has_prediction(first) and not w.predictions.busy and calls == [None, 0, 25]

    with pytest.raises(AcsegError):
        w.session.set_smooth(8)  # even windows have no centre
    assert w.session.smooth is None


def test_a_prediction_running_with_the_old_window_is_dropped(qtbot, predicted, monkeypatch) -> None:
    import acseg_core.inference.predict

    w = predicted
    second = w.tiles[1]
    held = HeldPredict("smooth", SIZE, lambda smooth: 1 if smooth is None else 2)
    started, release, seen = held.started, held.release, held.seen

    monkeypatch.setattr(acseg_core.inference.predict, "predict", held)
    w.images.set_current(1)
    qtbot.waitUntil(started.is_set, timeout=10_000)
    assert w.predictions.busy and seen == [None]
    with qtbot.waitSignal(w.predictions.finished, timeout=30_000):
        choose(w, SMOOTH_OFF)  # cancels the running job; the new one is queued
        release.set()
    assert seen == [None, 0]
    assert np.array_equal(w.session.prediction(second), np.full((SIZE, SIZE), 2, np.uint8))


def test_a_result_arriving_after_the_switch_is_dropped(qtbot, predicted, monkeypatch) -> None:
    import acseg_core.inference.predict

    w = predicted
    second = w.tiles[1]
    seen: list[int | None] = []

    def quick(loaded, image, *, cancel=None, smooth=None, **_kw):
        seen.append(smooth)
        yield Progress(1, 1, "predicting")
        return Prediction(np.full((SIZE, SIZE), 1 if smooth is None else 2, np.uint8), None, None)

    monkeypatch.setattr(acseg_core.inference.predict, "predict", quick)
    w.images.set_current(1)
    worker = w.predictions.worker
    assert worker._thread.wait(10_000)  # done; its result waits in the GUI thread's queue
    with qtbot.waitSignal(w.predictions.finished, timeout=30_000):
        choose(w, SMOOTH_OFF)
    assert worker.outcome == "succeeded" and seen == [None, 0]
    assert np.array_equal(w.session.prediction(second), np.full((SIZE, SIZE), 2, np.uint8))


def test_hand_edits_survive_switching(qtbot, predicted) -> None:
    assert_hand_edits_survive(
        qtbot,
        predicted,
        [lambda: choose(predicted, SMOOTH_OFF), lambda: choose(predicted, SMOOTH_CUSTOM)],
    )


def fake_predict(seen: list[int | None]):
    """A stand-in for predict that writes ``out`` (map value = image number)."""

    def predict(loaded, image, *, out=None, cancel=None, smooth=None, **_kw):
        seen.append(smooth)
        yield Progress(1, 1, f"predicting {image.name}")
        value = int(Path(image).stem.split("_")[-1])
        clusters = np.full((SIZE, SIZE), value, np.uint8)
        if out is not None:
            Image.fromarray(clusters).save(out)
        return Prediction(clusters if out is None else None, None, out)

    return predict


def test_label_all_and_export_use_the_window_and_its_own_cached_maps(
    qtbot, predicted, tmp_path: Path, monkeypatch, dialogs
) -> None:
    import acseg_core.inference.predict

    w = predicted
    second = w.tiles[1]
    seen: list[int | None] = []
    monkeypatch.setattr(acseg_core.inference.predict, "predict", fake_predict(seen))
    with qtbot.waitSignal(w.session.prediction_ready, timeout=60_000):
        choose(w, SMOOTH_CUSTOM)  # 9 px
    seen.clear()

    with qtbot.waitSignal(w.label_all.finished, timeout=60_000) as finished:
        w.label_all.start()
    assert seen == [9, 9]
    files = [out for _image, out in finished.args[0].done]
    assert [cache_window(f) for f in files] == [9, 9] and "_clusters_s9." in files[0].name
    assert [w.label_all.cached_file(image) for image in w.tiles] == files

    # off: the 9 px maps are not used (the project still names them)
    choose(w, SMOOTH_OFF)
    qtbot.waitUntil(lambda: not w.predictions.busy, timeout=30_000)
    assert [w.label_all.cached_file(image) for image in w.tiles] == [None, None]
    assert w.project.prediction_file(second) == files[1]
    assert w.label_all.pending() == w.tiles
    assert seen[-1] == 0  # the current image was predicted, not read from the 9 px file

    # export predicts what has no map of this window, with this window
    w.session._predictions.clear()
    seen.clear()
    roof = w.classes.add_class("roof", (200, 0, 0))
    for k in range(w.classes.clusters):
        w.classes.assign(k, roof)
    worker = w.exporter.run(ExportRequest("all", ("png",), tmp_path / "out"))
    with qtbot.waitSignal(worker.ended, timeout=60_000):
        pass
    assert worker.outcome == "succeeded", dialogs.texts()
    assert seen == [0, 0]

    # back to 9 px: its maps are found again, nothing is predicted
    with qtbot.waitSignal(w.session.prediction_ready, timeout=60_000):
        choose(w, SMOOTH_CUSTOM)
    assert seen == [0, 0]  # read from the cached file
    assert w.label_all.pending() == []
    seen.clear()
    worker = w.exporter.run(ExportRequest("all", ("png",), tmp_path / "out9"))
    with qtbot.waitSignal(worker.ended, timeout=60_000):
        pass
    assert worker.outcome == "succeeded", dialogs.texts()
    assert seen == []


def test_cache_names_carry_the_window(tmp_path: Path) -> None:
    image = tmp_path / "a_clusters.png"
    plain, smoothed = cache_file(tmp_path, image), cache_file(tmp_path, image, 25)
    assert plain != smoothed and plain.parent == smoothed.parent == tmp_path
    assert cache_window(plain) == 0 and cache_window(smoothed) == 25
    assert cache_window(Path("older-0123456789_clusters.tif")) == 0  # before windows: argmax
