"""The read-out in the Display panel's Prediction box: the model's own by default, the
AC head (plain AC) or the k-means read-out on features + colour (only for a model
with a fitted one); the choice reaches every prediction (current image, "Label all",
export), drops maps made with another read-out and re-predicts the current image;
hand edits stay. Cached "Label all" maps carry the read-out in their names."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from acseg_core.errors import AcsegError
from acseg_core.inference.predict import Prediction
from acseg_core.inference.predict import predict as core_predict  # bound before any test patches it
from acseg_core.jobs import Progress
from app.controllers.label_all import cache_file, cache_readout, cache_window
from app.export_dialog import ExportRequest
from app.panels.display_panel import (
    READOUT_DEFAULT,
    READOUT_HEAD,
    READOUT_KMEANS,
    SMOOTH_DEFAULT,
    SMOOTH_OFF,
)
from tests.gui.helpers import HeldPredict, assert_hand_edits_survive, image_folder, model_file

SIZE = 64
KMEANS_TEXT = "features + colour k-means"


def fitted_model_file(path: Path, images: list[Path], bands: int = 4, clusters: int = 4) -> Path:
    """A tiny cpu-small model (random weights) whose k-means read-out is fitted on
    ``images`` (its own window: 25 px, like the preset)."""
    import torch

    from acseg_core.io.normalise import Normalisation, apply_normalisation
    from acseg_core.io.raster import open_raster
    from acseg_core.model.checkpoint import save_checkpoint
    from acseg_core.model.nn import build_model
    from acseg_core.model.readouts.kmeans import fit_readout
    from acseg_core.presets import preset

    norm = Normalisation(low=(0.0,) * bands, high=(255.0,) * bands)
    config = preset(
        "cpu-small", in_channels=bands, clusters=clusters, base_width=8, normalisation=norm
    )
    assert config.readout == "kmeans" and config.smooth == 25
    torch.manual_seed(0)
    model = build_model(config)
    crops = []
    for image in images:
        with open_raster(image) as raster:
            data = raster.read()
        x = torch.from_numpy(apply_normalisation(data, norm))
        crops.append((x, torch.ones(x.shape[-2:], dtype=torch.bool)))
    fit_readout(model, crops, seed=0)
    assert model.has_fitted_readout
    save_checkpoint(path, model, config)
    return path


def choose(window, choice: str) -> None:
    """Pick an entry of the Read-out combo box as a user does (``activated``)."""
    combo = window.display_panel.readout_choice
    index = combo.findData(choice)
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def choose_smoothing(window, choice: str) -> None:
    combo = window.display_panel.smoothing
    index = combo.findData(choice)
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


def run_predict(loaded, image: Path, **kwargs) -> np.ndarray:
    """The core's prediction, run here (the reference the app's maps must equal)."""
    steps = core_predict(loaded, image, **kwargs)
    while True:
        try:
            next(steps)
        except StopIteration as stop:
            return stop.value.clusters


def kmeans_enabled(window) -> bool:
    combo = window.display_panel.readout_choice
    return combo.model().item(combo.findData(READOUT_KMEANS)).isEnabled()


@pytest.fixture
def calls(monkeypatch) -> list[tuple[str | None, int | None]]:
    """Every (``readout``, ``smooth``) the app passes to the core's predict (which still runs)."""
    import acseg_core.inference.predict

    real = acseg_core.inference.predict.predict
    seen: list[tuple[str | None, int | None]] = []

    def recording(loaded, image, **kwargs):
        assert "readout" in kwargs, "the app must always say which read-out it wants"
        assert "smooth" in kwargs, "the app must always say which window it wants"
        seen.append((kwargs["readout"], kwargs["smooth"]))
        return real(loaded, image, **kwargs)

    monkeypatch.setattr(acseg_core.inference.predict, "predict", recording)
    return seen


@pytest.fixture
def predicted(qtbot, window, tmp_path: Path):
    """Two tiles, a tiny model with a fitted k-means read-out, the first tile predicted."""
    images = image_folder(tmp_path / "tiles", count=2, size=SIZE)
    window.open_images(images)
    model = fitted_model_file(tmp_path / "model.pt", images)
    with qtbot.waitSignal(window.session.prediction_ready, timeout=60_000):
        window.load_model_reporting(model)
    qtbot.waitUntil(lambda: not window.predictions.busy, timeout=60_000)
    window.tiles = images
    return window


def test_the_control_shows_the_models_own_readout(qtbot, window, tmp_path: Path) -> None:
    panel, session = window.display_panel, window.session
    combo = panel.readout_choice
    assert combo.currentData() == READOUT_DEFAULT
    assert combo.currentText() == "Model default"  # no model yet
    assert not kmeans_enabled(window)
    entries = [combo.itemText(i) for i in range(combo.count())]
    assert entries[1:] == ["AC head (plain AC)", KMEANS_TEXT]

    images = image_folder(tmp_path / "tiles", count=1, size=SIZE)
    window.load_model_reporting(fitted_model_file(tmp_path / "fitted.pt", images))
    assert combo.currentText() == f"Model default ({KMEANS_TEXT})"
    assert combo.currentData() == READOUT_DEFAULT and kmeans_enabled(window)
    assert session.readout is None and session.effective_readout == "kmeans"

    # k-means chosen, then a model without a fitted read-out: back to its default
    choose(window, READOUT_KMEANS)
    assert session.readout == "kmeans" and combo.currentData() == READOUT_KMEANS
    window.load_model_reporting(model_file(tmp_path / "plain.pt"))
    assert not session.loaded.model.has_fitted_readout
    assert session.loaded.config.readout == "kmeans"  # asked for, never fitted: the head
    assert combo.currentText() == "Model default (AC head)"
    assert combo.currentData() == READOUT_DEFAULT and session.readout is None
    assert session.effective_readout == "head" and not kmeans_enabled(window)

    # the disabled entry cannot be chosen, neither in the panel nor in the session
    with qtbot.assertNotEmitted(session.readout_changed):
        choose(window, READOUT_KMEANS)
    assert session.readout is None and combo.currentData() == READOUT_DEFAULT
    with pytest.raises(AcsegError, match="no fitted k-means"):
        session.set_readout("kmeans")
    with pytest.raises(AcsegError, match="unknown read-out"):
        session.set_readout("median")
    assert session.readout is None


def test_head_and_kmeans_reach_the_prediction_of_the_current_image(qtbot, predicted, calls) -> None:
    w, image = predicted, predicted.tiles[0]
    loaded = w.session.loaded
    kmeans = run_predict(loaded, image, readout="kmeans")
    head = run_predict(loaded, image, readout="head")
    assert np.array_equal(w.session.prediction(image), kmeans)  # the model's default
    assert np.array_equal(run_predict(loaded, image), kmeans)
    assert not np.array_equal(head, kmeans)  # two different read-outs

    with qtbot.waitSignal(w.session.prediction_ready, timeout=60_000) as ready:
        choose(w, READOUT_HEAD)
    assert ready.args == [image]
    assert calls == [("head", None)] and w.session.readout == "head"
    assert np.array_equal(w.session.prediction(image), head)

    # with smoothing off too: the head's own argmax, plain AC
    with qtbot.waitSignal(w.session.prediction_ready, timeout=60_000):
        choose_smoothing(w, SMOOTH_OFF)
    assert calls[-1] == ("head", 0)
    assert np.array_equal(
        w.session.prediction(image), run_predict(loaded, image, readout="head", smooth=0)
    )
    choose_smoothing(w, SMOOTH_DEFAULT)
    qtbot.waitUntil(lambda: w.session.has_prediction(image), timeout=60_000)
    assert calls[-1] == ("head", None)

    with qtbot.waitSignal(w.session.prediction_ready, timeout=60_000):
        choose(w, READOUT_KMEANS)
    assert calls[-1] == ("kmeans", None) and w.session.readout == "kmeans"
    assert np.array_equal(w.session.prediction(image), kmeans)

    # the model's default is k-means too: the maps stay, nothing is predicted
    before = len(calls)
    choose(w, READOUT_DEFAULT)
    assert w.session.readout is None and w.session.has_prediction(image)
    assert not w.predictions.busy and len(calls) == before


def test_switching_drops_cached_maps_and_predicts_the_current_image_again(
    qtbot, predicted, calls
) -> None:
    w = predicted
    first, second = w.tiles
    with qtbot.waitSignal(w.session.prediction_ready, timeout=60_000):
        w.images.set_current(1)
    w.images.set_current(0)  # still cached: shown without predicting
    assert calls == [(None, None)]
    assert w.session.has_prediction(first) and w.session.has_prediction(second)
    qtbot.waitUntil(lambda: w.canvas.has_overlay)
    shown_before = w.overlays._labels.copy()
    w.document.mark_clean()  # (loading the model was a change)

    with qtbot.waitSignal(w.predictions.finished, timeout=60_000) as done:
        choose(w, READOUT_HEAD)
        assert not w.session.has_prediction(first) and not w.session.has_prediction(second)
        assert w.predictions.busy  # the current image is predicted again at once
    assert done.args == [first] and calls == [(None, None), ("head", None)]
    assert w.session.has_prediction(first) and not w.session.has_prediction(second)
    qtbot.waitUntil(lambda: not np.array_equal(w.overlays._labels, shown_before))
    assert not w.document.dirty  # a session setting: the project is unchanged
    assert w.display_panel.readout_choice.currentData() == READOUT_HEAD


def test_a_prediction_running_with_the_old_readout_is_dropped(
    qtbot, predicted, monkeypatch
) -> None:
    import acseg_core.inference.predict

    w = predicted
    second = w.tiles[1]
    held = HeldPredict("readout", SIZE, lambda readout: 2 if readout == "head" else 1)
    started, release, seen = held.started, held.release, held.seen

    monkeypatch.setattr(acseg_core.inference.predict, "predict", held)
    w.images.set_current(1)
    qtbot.waitUntil(started.is_set, timeout=10_000)
    assert w.predictions.busy and seen == [None]
    with qtbot.waitSignal(w.predictions.finished, timeout=30_000):
        choose(w, READOUT_HEAD)  # cancels the running job; the new one is queued
        release.set()
    assert seen == [None, "head"]
    assert np.array_equal(w.session.prediction(second), np.full((SIZE, SIZE), 2, np.uint8))


def test_hand_edits_survive_switching(qtbot, predicted) -> None:
    assert_hand_edits_survive(
        qtbot,
        predicted,
        [lambda: choose(predicted, READOUT_HEAD), lambda: choose(predicted, READOUT_KMEANS)],
    )


def fake_predict(seen: list[tuple[str | None, int | None]]):
    """A stand-in for predict that writes ``out`` (map value = image number)."""

    def predict(loaded, image, *, out=None, cancel=None, smooth=None, readout=None, **_kw):
        seen.append((readout, smooth))
        yield Progress(1, 1, f"predicting {image.name}")
        value = int(Path(image).stem.split("_")[-1])
        clusters = np.full((SIZE, SIZE), value, np.uint8)
        if out is not None:
            Image.fromarray(clusters).save(out)
        return Prediction(clusters if out is None else None, None, out)

    return predict


def export_all(qtbot, w, out: Path, dialogs) -> None:
    worker = w.exporter.run(ExportRequest("all", ("png",), out))
    with qtbot.waitSignal(worker.ended, timeout=60_000):
        pass
    assert worker.outcome == "succeeded", dialogs.texts()


def test_label_all_and_export_use_the_readout_and_its_own_cached_maps(
    qtbot, predicted, tmp_path: Path, monkeypatch, dialogs
) -> None:
    import acseg_core.inference.predict

    w = predicted
    second = w.tiles[1]
    seen: list[tuple[str | None, int | None]] = []
    monkeypatch.setattr(acseg_core.inference.predict, "predict", fake_predict(seen))
    roof = w.classes.add_class("roof", (200, 0, 0))
    for k in range(w.classes.clusters):
        w.classes.assign(k, roof)

    # the model's default (k-means, 25 px): untagged read-out, as before read-outs
    with qtbot.waitSignal(w.label_all.finished, timeout=60_000) as finished:
        w.label_all.start()
    assert seen == [(None, None), (None, None)]
    default_files = [out for _image, out in finished.args[0].done]
    assert [cache_readout(f) for f in default_files] == [None, None]
    assert "_clusters_s25." in default_files[0].name
    assert [w.label_all.cached_file(image) for image in w.tiles] == default_files

    # the head: the default's maps are not used (the project still names them)
    seen.clear()
    with qtbot.waitSignal(w.session.prediction_ready, timeout=60_000):
        choose(w, READOUT_HEAD)
    assert seen == [("head", None)]  # predicted, not read from the k-means file
    assert [w.label_all.cached_file(image) for image in w.tiles] == [None, None]
    assert w.project.prediction_file(second) == default_files[1]
    assert w.label_all.pending() == w.tiles

    # export predicts what has no map of this read-out, with this read-out
    w.session._predictions.clear()
    seen.clear()
    export_all(qtbot, w, tmp_path / "out_head", dialogs)
    assert seen == [("head", None), ("head", None)]

    # back to the default (and k-means by name, the same read-out): its maps again
    seen.clear()
    with qtbot.waitSignal(w.session.prediction_ready, timeout=60_000):
        choose(w, READOUT_DEFAULT)
    assert seen == []  # read from the cached file
    assert [w.label_all.cached_file(image) for image in w.tiles] == default_files
    choose(w, READOUT_KMEANS)
    assert [w.label_all.cached_file(image) for image in w.tiles] == default_files
    assert w.label_all.pending() == []
    export_all(qtbot, w, tmp_path / "out_default", dialogs)
    assert seen == []

    # "Label all" with the head writes tagged maps, which are then used
    with qtbot.waitSignal(w.session.prediction_ready, timeout=60_000):
        choose(w, READOUT_HEAD)
    seen.clear()
    with qtbot.waitSignal(w.label_all.finished, timeout=60_000) as finished:
        w.label_all.start()
    assert seen == [("head", None), ("head", None)]
    head_files = [out for _image, out in finished.args[0].done]
    assert [cache_readout(f) for f in head_files] == ["head", "head"]
    assert [cache_window(f) for f in head_files] == [25, 25]
    assert "_clusters_head_s25." in head_files[0].name
    assert [w.label_all.cached_file(image) for image in w.tiles] == head_files
    assert w.label_all.pending() == []
    assert all(f.is_file() for f in default_files)  # beside them, not over them


def test_untagged_maps_are_the_models_default_readout(qtbot, window, tmp_path: Path) -> None:
    """Back compatibility: maps cached before read-outs (untagged) were made with the
    head, the default of every model of that era, and maps made since with the
    default had no tag either; so untagged = the model's default read-out."""
    images = image_folder(tmp_path / "tiles", count=1, size=SIZE)
    image = images[0]
    window.open_images(images)
    old = cache_file(tmp_path / "cache", image, 25)
    old.parent.mkdir()
    Image.fromarray(np.zeros((SIZE, SIZE), np.uint8)).save(old)
    assert cache_readout(old) is None and cache_window(old) == 25
    session, label_all = window.session, window.label_all

    def remember_map() -> None:
        window.project.sync()  # the project names the loaded model
        window.project.doc.set_prediction(image, old)

    # a model without a fitted read-out: its default is the head
    window.load_model_reporting(model_file(tmp_path / "plain.pt"))
    qtbot.waitUntil(lambda: not window.predictions.busy, timeout=60_000)
    remember_map()
    assert session.default_readout == "head" and label_all.cached_file(image) == old
    session.set_readout("head")
    assert label_all.cached_file(image) == old  # the same read-out by name
    qtbot.waitUntil(lambda: not window.predictions.busy, timeout=60_000)

    # a model with a fitted read-out: untagged = k-means, not the head
    window.load_model_reporting(fitted_model_file(tmp_path / "fitted.pt", images))
    qtbot.waitUntil(lambda: not window.predictions.busy, timeout=60_000)
    remember_map()
    assert session.readout == "head" and label_all.cached_file(image) is None
    session.set_readout(None)
    assert session.effective_readout == "kmeans" and label_all.cached_file(image) == old
    qtbot.waitUntil(lambda: not window.predictions.busy, timeout=60_000)


def test_cache_names_carry_the_readout(tmp_path: Path) -> None:
    image = tmp_path / "a_clusters_head.png"
    default = cache_file(tmp_path, image, 25)
    head = cache_file(tmp_path, image, 25, "head")
    kmeans = cache_file(tmp_path, image, 0, "kmeans")
    assert len({default, head, kmeans, cache_file(tmp_path, image, 0, "head")}) == 4
    assert head.name.endswith("_clusters_head_s25.png") and kmeans.name.endswith("_clusters_km.png")
    assert [cache_readout(f) for f in (default, head, kmeans)] == [None, "head", "kmeans"]
    assert [cache_window(f) for f in (default, head, kmeans)] == [25, 25, 0]
    assert cache_readout(Path("older-0123456789_clusters.tif")) is None  # the model's default
