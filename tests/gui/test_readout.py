"""The read-out in the Display panel: one core value (which read-out, which majority
window) held once in the session. The choice reaches every prediction (current image,
"Label all", export), maps are cached by the model file and the read-out that made
them (switching back is free, a retrained model never shows a stale map), and hand
edits stay."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from acseg_core.inference.predict import predict_array
from acseg_core.model.readouts import MODEL_DEFAULT, ReadOut
from acseg_core.model.refine import majority_filter
from app.export_dialog import ExportRequest
from app.panels.display_panel import READOUT_DEFAULT, SMOOTH_CUSTOM, SMOOTH_DEFAULT, SMOOTH_OFF
from tests.core.synthetic import tiny_model_file
from tests.gui.helpers import assert_hand_edits_survive, image_folder

SIZE = 64


def choose(combo, data: str) -> None:
    """Pick an entry of a combo box as a user does (``activated``)."""
    index = combo.findData(data)
    assert index >= 0, f"{data!r} is not offered"
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


@pytest.fixture
def app_window(qtbot, window, tmp_path: Path):
    """Two 4-band tiles and a tiny cpu-small model whose k-means read-out is fitted on
    them (own read-out: k-means + 25 px); the first tile predicted. ``jobs`` records
    every map the app made (image, "predict" | "cached")."""
    images = image_folder(tmp_path / "tiles", count=2, size=SIZE)
    model = tiny_model_file(tmp_path / "model.pt", bands=4, clusters=4, fit_on=images)
    window.jobs_seen = []
    window.predictions.started.connect(lambda image, how: window.jobs_seen.append((image, how)))
    window.open_images(images)
    with qtbot.waitSignal(window.session.prediction_ready, timeout=60_000):
        window.load_model_reporting(model)
    qtbot.waitUntil(lambda: not window.predictions.busy, timeout=60_000)
    window.tiles, window.model_path = images, model
    return window


def shown_after(qtbot, w, change) -> np.ndarray:
    """Run ``change`` (which re-predicts the current image) and return the new map."""
    with qtbot.waitSignal(w.session.prediction_ready, timeout=60_000):
        change()
    qtbot.waitUntil(lambda: not w.predictions.busy, timeout=60_000)
    return w.session.prediction(w.images.current)


def test_the_panel_lists_what_the_model_can_apply(qtbot, window, tmp_path: Path) -> None:
    panel = window.display_panel
    assert [panel.readout_choice.itemText(i) for i in range(panel.readout_choice.count())] == [
        "Model default"
    ]
    assert panel.smoothing.currentText() == "Model default"
    images = image_folder(tmp_path / "tiles", count=1, size=SIZE)
    window.load_model_reporting(tiny_model_file(tmp_path / "f.pt", bands=4, fit_on=images))
    entries = [panel.readout_choice.itemText(i) for i in range(panel.readout_choice.count())]
    assert entries == [
        "Model default (features + colour k-means)",
        "AC head (plain AC)",
        "features + colour k-means",
    ]
    assert panel.smoothing.currentText() == "Model default (25 px)"
    # a model with only its head offers only the head; its own window is off
    window.load_model_reporting(tiny_model_file(tmp_path / "h.pt", bands=4, smooth=0))
    entries = [panel.readout_choice.itemText(i) for i in range(panel.readout_choice.count())]
    assert entries == ["Model default (AC head (plain AC))", "AC head (plain AC)"]
    assert panel.smoothing.currentText() == "Model default (off)"


def test_each_choice_reaches_the_prediction_with_one_signal(qtbot, app_window) -> None:
    w, image = app_window, app_window.tiles[0]
    loaded = w.session.loaded
    reference = {  # the core's own predictions, the maps the app must show
        readout: predict_array(loaded, image, readout=readout).clusters
        for readout in (MODEL_DEFAULT, ReadOut("head", 0), ReadOut("head", None))
    }
    assert np.array_equal(w.session.prediction(image), reference[MODEL_DEFAULT])
    changes = []
    w.session.readout_changed.connect(lambda: changes.append(w.session.readout))

    panel = w.display_panel
    shown = shown_after(qtbot, w, lambda: choose(panel.readout_choice, "head"))
    assert np.array_equal(shown, reference[ReadOut("head", None)])
    shown = shown_after(qtbot, w, lambda: choose(panel.smoothing, SMOOTH_OFF))
    plain = reference[ReadOut("head", 0)]
    assert np.array_equal(shown, plain)
    # a custom window starts from the one the model uses (25 px): its map is cached
    choose(panel.smoothing, SMOOTH_CUSTOM)
    assert panel.smooth_size.isEnabled() and panel.smooth_size.value() == 25
    assert np.array_equal(w.session.prediction(image), reference[ReadOut("head", None)])
    shown = shown_after(qtbot, w, lambda: panel.smooth_size.setValue(9))
    assert np.array_equal(shown, majority_filter(plain, 4, 9))
    assert not np.array_equal(shown, plain)  # the window did something
    assert changes == [
        ReadOut("head", None),
        ReadOut("head", 0),
        ReadOut("head", 25),
        ReadOut("head", 9),
    ]


def test_switching_back_is_free_and_edits_survive(qtbot, app_window) -> None:
    w = app_window
    panel = w.display_panel
    first = w.session.prediction(w.tiles[0])
    shown_after(qtbot, w, lambda: choose(panel.readout_choice, "head"))
    predicted = len(w.jobs_seen)
    choose(panel.readout_choice, READOUT_DEFAULT)  # made before: no job at all
    assert len(w.jobs_seen) == predicted and not w.predictions.busy
    assert np.array_equal(w.session.prediction(w.tiles[0]), first)
    assert_hand_edits_survive(
        qtbot,
        w,
        [
            lambda: choose(panel.smoothing, SMOOTH_OFF),
            lambda: choose(panel.readout_choice, "head"),
        ],
    )
    choose(panel.smoothing, SMOOTH_DEFAULT)
    choose(panel.readout_choice, READOUT_DEFAULT)


def test_label_all_and_export_use_the_chosen_readout_and_reuse_maps(
    qtbot, app_window, tmp_path: Path
) -> None:
    w = app_window
    choose(w.display_panel.smoothing, SMOOTH_OFF)
    qtbot.waitUntil(lambda: not w.predictions.busy, timeout=60_000)
    with qtbot.waitSignal(w.label_all.finished, timeout=60_000):
        w.label_all.start()
    key = w.session.key
    assert key.endswith("kmeans-s0")
    for image in w.tiles:
        file = w.project.doc.prediction(image, key)
        assert file is not None and key in file.name
        expected = predict_array(w.session.loaded, image, readout=ReadOut(None, 0)).clusters
        assert np.array_equal(np.asarray(Image.open(file)), expected)

    roof = w.classes.add_class("roof", (200, 30, 30))
    for cluster in range(4):
        w.classes.assign(cluster, roof if cluster % 2 else None)
    before = len(w.jobs_seen)
    request = ExportRequest("all", ("png",), tmp_path / "labels")
    worker = w.exporter.run(request)
    with qtbot.waitSignal(worker.ended, timeout=60_000):
        pass
    assert worker.outcome == "succeeded" and set(worker.result.written) == {"tile_0", "tile_1"}
    assert len(w.jobs_seen) == before  # every map came from the caches, none re-predicted
    expected = predict_array(w.session.loaded, w.tiles[1], readout=ReadOut(None, 0)).clusters
    exported = np.asarray(Image.open(tmp_path / "labels" / "tile_1.png"))
    assert np.array_equal(exported, np.where(expected % 2 == 1, 1, 0))


def test_a_retrained_model_never_shows_a_stale_map(qtbot, app_window, tmp_path: Path) -> None:
    w = app_window
    with qtbot.waitSignal(w.label_all.finished, timeout=60_000):
        w.label_all.start()
    old_key = w.session.key
    assert all(w.project.doc.prediction(image, old_key) for image in w.tiles)
    # retrained in place: the same path, other weights
    tiny_model_file(w.model_path, bands=4, clusters=4, seed=7, fit_on=w.tiles)
    jobs = len(w.jobs_seen)
    shown = shown_after(qtbot, w, lambda: w.load_model_reporting(w.model_path))
    assert w.session.key != old_key
    assert w.jobs_seen[jobs:] == [(w.tiles[0], "predict")]  # not the old file
    fresh = predict_array(w.session.loaded, w.tiles[0]).clusters
    assert np.array_equal(shown, fresh)


def test_the_project_keeps_the_readout(qtbot, app_window, tmp_path: Path) -> None:
    w = app_window
    shown_after(qtbot, w, lambda: choose(w.display_panel.smoothing, SMOOTH_OFF))
    assert w.project.save_as(tmp_path / "p.acseg")
    w.project.reset()
    assert w.session.readout == MODEL_DEFAULT
    w.project.open(tmp_path / "p.acseg")
    assert w.session.readout == ReadOut(None, 0)
    assert w.display_panel.smoothing.currentData() == SMOOTH_OFF
