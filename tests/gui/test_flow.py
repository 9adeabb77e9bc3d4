"""The whole flow through the app: folder → wizard → training → overlay → classes → export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from PIL import Image

from app.controllers.training import TrainingController
from app.export_dialog import ExportRequest
from app.models import OverlayModel
from app.wizard import TrainWizard
from tests.gui.helpers import image_folder, show_map


def tiny_config(wizard: TrainWizard, out_dir: Path, epochs: int = 1, steps: int = 2):
    page = wizard.settings_page
    page.preset.setCurrentIndex(page.preset.findData("cpu-small"))
    page.clusters.setValue(3)
    page.epochs.setValue(epochs)
    page.steps_per_epoch.setValue(steps)
    page.crop.setValue(32)
    page.batch.setValue(2)
    page.device.setCurrentIndex(page.device.findData("cpu"))
    page.out_dir.setText(str(out_dir))
    return wizard.config()


def overlay_rgba(window) -> np.ndarray:
    image = window.canvas.overlay_pixmap.toImage()
    return np.asarray(Image.fromqimage(image).convert("RGBA"))


def test_folder_to_export(qtbot, window, tmp_path: Path, dialogs) -> None:
    images = image_folder(tmp_path / "tiles")
    assert window.open_paths_reporting([tmp_path / "tiles"])
    assert window.images.images == images and window.canvas.has_image

    # the wizard shows the scan and produces the run's config
    wizard = TrainWizard(window.runner, tmp_path / "tiles", window)
    assert wizard.folder_page.images.topLevelItemCount() == 2
    assert wizard.folder_page.isComplete()
    config = tiny_config(wizard, tmp_path / "run")
    assert config.model.in_channels == 4 and config.model.clusters == 3
    assert set(config.inputs) == {str(p) for p in images}

    states: list[str] = []
    window.training.state_changed.connect(states.append)
    with qtbot.waitSignal(window.session.model_changed, timeout=90_000):
        window.training.start(config)
    assert states[0] == TrainingController.RUNNING and states[-1] == TrainingController.FINISHED
    assert window.training_panel.plot.points, "the loss plot got points"
    assert window.session.model_path == tmp_path / "run" / "model.pt"
    assert window.classes.clusters == 3

    # the current image is predicted in the worker and the overlay appears
    current = window.images.current
    qtbot.waitUntil(lambda: window.session.has_prediction(current), timeout=60_000)
    clusters = window.session.prediction(current)
    assert clusters.shape == (64, 64)
    assert window.canvas.has_overlay
    assert overlay_rgba(window)[..., 3].max() == 255

    # name classes and map clusters; the class overlay follows at once
    water = window.classes.add_class("water", (0, 0, 255))
    land = window.classes.add_class("land", (0, 255, 0))
    window.classes.assign(0, water)
    for k in range(1, 3):
        window.classes.assign(k, land)
    window.overlay.set_mode(OverlayModel.CLASSES)
    rgba = overlay_rgba(window)
    expected = np.where(clusters == 0, 255, 0)
    assert np.array_equal(rgba[..., 2], expected.astype(np.uint8))
    assert window.isWindowModified()

    # per-cluster visibility hides exactly that cluster
    window.overlay.set_cluster_visible(0, False)
    assert (overlay_rgba(window)[..., 3][clusters == 0] == 0).all()
    window.overlay.set_cluster_visible(0, True)

    # export every image (the second one is predicted inside the export job)
    out = tmp_path / "labels"
    request = ExportRequest("all", ("png", "tif"), out)
    worker = window.exporter.run(request)
    with qtbot.waitSignal(worker.ended, timeout=60_000):
        pass
    assert worker.outcome == "succeeded", dialogs.texts()
    values = np.asarray(Image.open(out / "tile_0.png"))
    assert np.array_equal(values, np.where(clusters == 0, 1, 2))
    assert (out / "labelmap.txt").read_text().splitlines()[1:] == [
        "background:0,0,0::",
        "water:0,0,255::",
        "land:0,255,0::",
    ]
    with rasterio.open(out / "tile_1.tif") as dst, rasterio.open(images[1]) as src:
        assert dst.crs == src.crs and dst.transform == src.transform
        assert set(np.unique(dst.read(1))) <= {1, 2}

    # exporting again keeps what is written (nothing is redone) unless told to overwrite
    stamp = (out / "tile_0.png").stat().st_mtime_ns
    again = window.exporter.run(request)
    with qtbot.waitSignal(again.ended, timeout=30_000):
        pass
    assert again.outcome == "succeeded" and again.result.written == {}
    assert again.result.done == ["tile_0", "tile_1"]
    assert (out / "tile_0.png").stat().st_mtime_ns == stamp


def test_cancel_mid_training_keeps_checkpoint(qtbot, window, tmp_path: Path) -> None:
    image_folder(tmp_path / "tiles", count=1)
    wizard = TrainWizard(window.runner, tmp_path / "tiles", window)
    config = tiny_config(wizard, tmp_path / "run", epochs=50, steps=50)
    states: list[str] = []
    window.training.state_changed.connect(states.append)
    window.training.start(config)
    qtbot.waitUntil(
        lambda: (
            (window.training.last_progress is not None)
            and window.training.last_progress.metrics.get("step", 0) >= 1
        ),
        timeout=60_000,
    )
    assert window.training_panel.cancel_button.isEnabled()
    window.training_panel.cancel_button.click()
    assert window.training_panel.state_label.text() == "Cancelling…"
    qtbot.waitUntil(lambda: window.training.state == TrainingController.CANCELLED, timeout=60_000)
    assert states == ["running", "cancelling", "cancelled"]
    assert window.training_panel.state_label.text().startswith("Cancelled")
    assert (tmp_path / "run" / "checkpoint.pt").is_file()
    assert window.session.loaded is None  # a cancelled run is not loaded behind the user's back
    assert window.training_panel.load_button.isVisibleTo(window.training_panel)
    with qtbot.waitSignal(window.session.model_changed, timeout=30_000):
        window.training_panel.load_button.click()
    assert window.session.model_path == tmp_path / "run" / "model.pt"
    # a second run from the same folder gets a fresh output folder (the core refuses to
    # clobber), beside the project, never inside the image folder
    beside = tmp_path / "project"
    (beside / "tiles-run").mkdir(parents=True)
    again = TrainWizard(window.runner, tmp_path / "tiles", window, runs_beside=beside)
    assert again.settings_page.out_dir.text() == str(beside / "tiles-run-2")


def test_the_wizard_output_folder_follows_the_training_folder(window, tmp_path: Path) -> None:
    for name in ("first", "second"):
        image_folder(tmp_path / name, count=1)
    wizard = TrainWizard(window.runner, tmp_path / "first", window, runs_beside=tmp_path)
    out = wizard.settings_page.out_dir
    assert out.text() == str(tmp_path / "first-run")
    wizard.set_folder(tmp_path / "second")
    assert out.text() == str(tmp_path / "second-run")  # followed
    out.setText(str(tmp_path / "mine"))
    wizard.set_folder(tmp_path / "first")
    assert out.text() == str(tmp_path / "mine")  # typed by the user: kept
    untitled = TrainWizard(window.runner, tmp_path / "first", window)
    assert Path(untitled.settings_page.out_dir.text()).parent == Path.home() / "acseg-runs"
    assert not untitled.settings_page.out_dir.text().startswith(str(tmp_path / "first"))


def test_export_asks_before_overwriting(
    qtbot, window, tmp_path: Path, dialogs, monkeypatch
) -> None:
    from app import export_dialog

    images = image_folder(tmp_path / "tiles", count=1)
    window.open_images(images)
    show_map(qtbot, window, tmp_path, images[0], np.ones((64, 64), np.uint8))
    window.classes.set_clusters(2)
    window.classes.assign(1, window.classes.add_class("thing"))
    out = tmp_path / "labels"
    out.mkdir()
    existing = out / "tile_0.png"
    existing.write_bytes(b"keep me")
    monkeypatch.setattr(export_dialog.ExportDialog, "exec", lambda self: 1)
    monkeypatch.setattr(
        export_dialog.ExportDialog,
        "request",
        lambda self: ExportRequest("current", ("png",), out),
    )
    dialogs.answer = "no"  # keep what exists, export only what is missing
    kept = window.exporter.ask_and_run(window)
    qtbot.waitUntil(lambda: not kept.running, timeout=30_000)
    assert dialogs.shown[-2][1] == "Replace files?" and existing.read_bytes() == b"keep me"
    assert kept.result.done == ["tile_0"] and dialogs.shown[-1][1] == "Export finished"
    dialogs.answer = "yes"
    worker = window.exporter.ask_and_run(window)
    qtbot.waitUntil(lambda: not worker.running, timeout=30_000)
    assert worker.outcome == "succeeded"
    assert (np.asarray(Image.open(existing)) == 1).all()
    assert images[0].is_file()


def test_wizard_estimates_time_per_epoch(qtbot, window, tmp_path: Path) -> None:
    image_folder(tmp_path / "tiles", count=1)
    wizard = TrainWizard(window.runner, tmp_path / "tiles", window)
    page = wizard.settings_page
    page.crop.setValue(32)
    page.batch.setValue(1)
    worker = page.start_estimate()
    qtbot.waitUntil(lambda: not worker.running, timeout=60_000)
    assert worker.outcome == "succeeded", worker.error
    estimate = worker.result
    assert estimate.step_s > 0 and estimate.device == "cpu"
    assert "per epoch on cpu" in page.estimate_label.text()


def test_out_of_memory_during_training_is_a_dialog(
    qtbot, window, tmp_path, dialogs, monkeypatch
) -> None:
    from acseg_core.jobs import Progress
    from app.controllers import training as train_module

    def exploding(config, cancel=None):
        yield Progress(1, 10, "step", metrics={"step": 1, "loss": -0.1})
        raise MemoryError

    monkeypatch.setattr(train_module, "train", exploding)
    image_folder(tmp_path / "tiles", count=1)
    wizard = TrainWizard(window.runner, tmp_path / "tiles", window)
    window.training.start(tiny_config(wizard, tmp_path / "run"))
    qtbot.waitUntil(lambda: window.training.state == TrainingController.FAILED, timeout=30_000)
    assert dialogs.shown[-1][1] == "Out of memory"
    assert "smaller preset" in dialogs.shown[-1][2]
    assert window.training_panel.state_label.text() == "Failed"
    assert window.actions_.train.isEnabled()  # usable: a new run can start
    assert not window.training.running
