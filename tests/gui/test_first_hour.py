"""Issue 27: the first hour in the app. Guidance on the empty canvas, classes that set
themselves up, the wizard's estimate and file list, no stale or truncated state."""

from __future__ import annotations

import time
from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QColorDialog, QDialog, QFileDialog

from acseg_core.errors import BandMismatch
from acseg_core.io.raster import open_raster
from acseg_core.jobs import Progress
from acseg_core.labelling.classes import NO_EDIT
from app.export_dialog import ExportRequest
from app.panels.display_panel import SMOOTH_CUSTOM
from app.wizard import TrainWizard
from tests.core.synthetic import make_regions_image, tiny_model_file
from tests.gui.helpers import image_folder, show_map
from tests.gui.test_flow import tiny_config


def choose(combo, data) -> None:
    index = combo.findData(data)
    combo.setCurrentIndex(index)
    combo.activated.emit(index)


# -- 1. the wizard's estimate ---------------------------------------------------------------


def test_the_estimate_total_follows_the_epochs_without_measuring_again(
    qtbot, window, tmp_path: Path
) -> None:
    image_folder(tmp_path / "tiles", count=1)
    wizard = TrainWizard(window.runner, tmp_path / "tiles", window)
    page = wizard.settings_page
    page.crop.setValue(32)
    page.batch.setValue(1)
    page.device.setCurrentIndex(page.device.findData("cpu"))
    worker = page.start_estimate()
    qtbot.waitUntil(lambda: not worker.running, timeout=120_000)
    assert worker.outcome == "succeeded", worker.error
    estimate = worker.result
    assert estimate.readout_s > 0  # the read-out fit is part of the run (and the estimate)
    assert "for 10 epoch(s)" in page.estimate_label.text()
    page.epochs.setValue(4)
    text = page.estimate_label.text()
    assert "for 4 epoch(s)" in text and page.estimate_worker is worker  # no new measurement
    assert estimate.describe(4, page.steps_per_epoch.value() or None) == text
    page.crop.setValue(48)  # a step costs something else now: the figures are dropped
    assert page.estimate is None and "epoch" not in page.estimate_label.text()


def test_the_training_eta_counts_the_read_out_fit_the_wizard_measured(window) -> None:
    from acseg_core.training.estimate import Estimate

    window.training.estimate = Estimate("cpu", 1.0, 1.0, 0.5, 0.1, 20.0, 30)
    window.training.state = window.training.RUNNING
    window.training.progress.emit(
        Progress(10, 300, "step", eta_s=100.0, metrics={"phase": "train", "step": 10})
    )
    assert window.training_panel.eta_label.text() == "2:00 left"  # 100 s of steps + 20 s


# -- 2. one training run at a time ----------------------------------------------------------


def test_train_is_off_while_a_run_is_under_way(qtbot, window, tmp_path, monkeypatch) -> None:
    from app import main_window as main_window_module
    from app.controllers import training as train_module

    def waiting(config, cancel=None):
        while not cancel.cancelled:
            yield Progress(1, 10, "step", metrics={"step": 1})
            time.sleep(0.02)

    monkeypatch.setattr(train_module, "train", waiting)
    assert window.actions_.train.isEnabled()
    image_folder(tmp_path / "tiles", count=1)
    wizard = TrainWizard(window.runner, tmp_path / "tiles", window)
    window.training.start(tiny_config(wizard, tmp_path / "run"))
    assert not window.actions_.train.isEnabled()
    assert "Training is running" in window.actions_.train.toolTip()
    opened = []
    monkeypatch.setattr(main_window_module, "TrainWizard", lambda *a, **k: opened.append(a))
    window.start_training_wizard()  # Ctrl+T while training: the running job, no wizard
    assert opened == [] and window.training_dock.isVisibleTo(window)
    window.training.cancel()
    qtbot.waitUntil(lambda: not window.training.running, timeout=30_000)
    assert window.actions_.train.isEnabled()
    assert window.actions_.train.toolTip() == "Train on a folder (Ctrl+T)"


# -- 3. no stale status bar -----------------------------------------------------------------


def test_new_project_clears_the_status_bar(qtbot, window, tmp_path: Path, dialogs) -> None:
    images = image_folder(tmp_path / "tiles", count=1)
    window.open_images(images)
    show_map(qtbot, window, tmp_path, images[0], np.zeros((64, 64), np.uint8))
    info = window.cursor_info
    info.cursor_moved(10.5, 10.5)
    assert info.position.text() and info.value.text() and info.cluster.text()
    labels = [info.position, info.map_xy, info.value, info.cluster]
    labels.append(info.lonlat)
    window.project.new()
    for label in labels:
        assert label.text() == "", label.text()


def test_the_class_under_the_cursor_follows_a_stroke_at_once(qtbot, window, tmp_path: Path) -> None:
    images = image_folder(tmp_path / "tiles", count=1)
    window.open_images(images)
    show_map(qtbot, window, tmp_path, images[0], np.zeros((64, 64), np.uint8))
    roof = window.classes.add_class("roof")
    window.editing.set_active_class(roof)
    window.editing.set_tool("brush")
    window.cursor_info.cursor_moved(20.5, 20.5)  # the canvas reads the pixel, then paints
    assert window.cursor_info.cluster.text() == "cluster 0 → no class"
    tool = window.editing.tool
    tool.press(QPointF(20.5, 20.5))
    tool.release(QPointF(20.5, 20.5))
    assert window.cursor_info.cluster.text() == "cluster 0 → roof (hand edit)"  # no move
    window.editing.undo()
    assert window.cursor_info.cluster.text() == "cluster 0 → no class"


# -- 4. every project exports to its own folder --------------------------------------------


def test_each_untitled_project_exports_to_its_own_folder(
    qtbot, window, tmp_path: Path, dialogs, monkeypatch
) -> None:
    from app import export_dialog

    monkeypatch.setattr(Path, "home", classmethod(lambda cls: tmp_path / "home"))
    first_images = image_folder(tmp_path / "dubai" / "images", count=1)
    window.open_images(first_images)
    show_map(qtbot, window, tmp_path, first_images[0], np.zeros((64, 64), np.uint8))
    window.classes.assign(0, window.classes.add_class("water"))
    first = window.exporter.last_request().out_dir
    assert first == tmp_path / "home" / "acseg-labels" / "dubai-images"
    monkeypatch.setattr(export_dialog.ExportDialog, "exec", lambda self: 1)
    monkeypatch.setattr(export_dialog.ExportDialog, "request",
                        lambda self: window.exporter.last_request())  # fmt: skip
    worker = window.exporter.ask_and_run(window)
    qtbot.waitUntil(lambda: not worker.running, timeout=60_000)
    assert worker.outcome == "succeeded" and (first / "labelmap.txt").is_file()
    assert "Replace files?" not in dialogs.titles()

    # a second project (other images, other classes) gets a folder of its own
    window.project.reset()
    other = image_folder(tmp_path / "elsewhere" / "tiles", count=1)
    window.open_images(other)
    show_map(qtbot, window, tmp_path, other[0], np.zeros((64, 64), np.uint8))
    window.classes.assign(0, window.classes.add_class("field"))
    second = window.exporter.last_request().out_dir
    assert second != first and second.parent == first.parent
    worker = window.exporter.ask_and_run(window)
    qtbot.waitUntil(lambda: not worker.running, timeout=60_000)
    assert worker.outcome == "succeeded", dialogs.texts()
    assert "Replace files?" not in dialogs.titles()

    # pointed at the first project's labels, it asks, and No says what to do
    monkeypatch.setattr(export_dialog.ExportDialog, "request",
                        lambda self: ExportRequest("current", ("png",), first))  # fmt: skip
    dialogs.answer = "no"
    assert window.exporter.ask_and_run(window) is None
    assert dialogs.shown[-2][1] == "Another project's labels"
    assert "choose another folder" in dialogs.shown[-1][2]
    assert "water" in (first / "labelmap.txt").read_text()  # untouched


# -- 5. short texts, whole in the tooltip ----------------------------------------------------


def test_a_long_notice_is_short_in_the_bar_and_whole_in_its_tooltip(window, tmp_path: Path) -> None:
    from app.notices import LABEL_WIDTH

    folder = tmp_path / ("a-rather-long-folder-name-of-landsat-scenes-" * 3)
    error = BandMismatch(folder / "scene.tif", 10, 3)
    window.notices.prediction_failed("Cannot predict", error)
    label = window.notices.label
    assert label.fontMetrics().horizontalAdvance(label.text()) <= LABEL_WIDTH
    assert "10-band images" in label.text()
    assert f"images in {folder} have 10 band(s) but the model was trained on 3" in (label.toolTip())


# -- 6. messages that read as what happened -------------------------------------------------


def test_label_all_summaries_never_read_as_a_failure(tmp_path: Path) -> None:
    from app.controllers.label_all import LabelAllResult, summary

    images = [tmp_path / f"tile{i}.jpg" for i in range(18)]
    all_cached = LabelAllResult(already=[(p, p) for p in images])
    assert summary(all_cached) == "All 18 images already labelled"
    some = LabelAllResult(done=[(images[0], images[0])], already=[(p, p) for p in images[1:]])
    assert summary(some) == "Labelled 1 image(s), 17 already labelled"
    assert "0 image" not in summary(LabelAllResult(skipped=[(images[0], "corrupt")]))


def test_the_brush_shows_its_width(window) -> None:
    bar = window.tools_bar
    window.editing.set_brush_radius(15)
    assert bar.width_spin.value() == 30 and "width" in bar.width_spin.toolTip().lower()
    bar.width_spin.setValue(10)
    assert window.editing.brush_radius == 5


# -- 7. nodata ------------------------------------------------------------------------------


def test_nodata_is_transparent_over_a_hatch_not_black(qtbot, window, tmp_path: Path) -> None:
    path = tmp_path / "nodata.tif"
    make_regions_image(path, size=(64, 64), bands=3, nodata=0)  # top rows nodata
    window.open_images([path])
    window.resize(900, 700)
    window.show()
    qtbot.waitExposed(window)
    canvas = window.canvas
    view = canvas.viewport().grab().toImage()
    dark = canvas.backgroundBrush().color()
    top = canvas.mapFromScene(QPointF(0, 0))
    colours = {
        view.pixelColor(top.x() + dx, top.y() + 2 + dy).rgb() for dx in range(40) for dy in range(8)
    }
    assert 0xFF000000 not in colours  # never black
    assert len(colours) > 1 and dark.rgb() in colours  # hatch lines over the background
    image = canvas.image_pixmap.toImage()
    with open_raster(path) as raster:
        valid = raster.valid_mask(raster.read())
    assert not valid[2, 30] and valid[60, 30]
    assert image.pixelColor(30, 2).alpha() == 0 and image.pixelColor(30, 60).alpha() == 255


# -- 8. the prediction box does not contradict itself ---------------------------------------


def test_the_window_width_shows_only_for_a_custom_window(qtbot, window, tmp_path: Path) -> None:
    images = image_folder(tmp_path / "tiles", count=1)
    window.open_images(images)
    window.load_model_reporting(tiny_model_file(tmp_path / "m.pt", bands=4, clusters=3))
    panel = window.display_panel
    assert window.session.model_readout.smooth == 25
    assert "25 px" in panel.smoothing.currentText()
    assert not panel.smooth_size.isVisibleTo(panel)  # no greyed "9 px" beside "25 px"
    choose(panel.smoothing, SMOOTH_CUSTOM)
    assert panel.smooth_size.isVisibleTo(panel)
    assert panel.smooth_size.value() == 25 and panel.smooth_size.isEnabled()


def test_the_sample_opens_with_its_strokes_and_water_named_water(qtbot, window) -> None:
    from acseg_core.io.labels import parse_label_format
    from app.sample import SAMPLE_LEARNT, SAMPLE_MODEL
    from resources import RESOURCES, SAMPLE_LABELS, sample_image_path

    window.opener.open_sample()
    learnt = window.project.learning.learnt
    assert learnt is not None and window.session.loaded is learnt  # the learnt model shows
    assert window.session.model_path == SAMPLE_MODEL  # over the unsupervised sample model
    assert window.document.project.learnt is learnt and SAMPLE_LEARNT.stat().st_size < 2e6
    strokes = window.document.project.get_edits(sample_image_path())
    assert strokes is not None and not strokes.is_empty  # the strokes it was taught with
    assert not window.document.dirty
    qtbot.waitUntil(lambda: window.canvas.has_overlay, timeout=60_000)
    shown = window.classes.class_map.labels_from_clusters(
        window.session.prediction(sample_image_path())
    )  # class ids
    table = RESOURCES / "labels" / "dubai.csv"
    truth = parse_label_format(f"colors:{table}").read(SAMPLE_LABELS)  # 4 = water
    water = next(c.id for c in window.classes.classes if c.name == "water")
    assert (shown[truth == 4] == water).mean() > 0.8  # the water body reads as water
    assert (shown[(truth >= 0) & (truth != 4)] == water).mean() < 0.05
    window.project.learning.forget()  # back to the clusters: one undo away
    assert window.session.loaded is not learnt


# -- getting started ------------------------------------------------------------------------


def test_the_empty_canvas_says_what_to_do_and_tooltips_name_their_keys(
    window, tmp_path: Path, dialogs
) -> None:
    guide = window.canvas.guide
    assert guide.isVisibleTo(window.canvas)
    assert "Ctrl+I" in guide.text() and "Ctrl+Shift+O" in guide.text()
    window.open_images(image_folder(tmp_path / "tiles", count=1))
    assert not guide.isVisibleTo(window.canvas)
    window.project.new()
    assert guide.isVisibleTo(window.canvas)
    assert window.actions_.train.toolTip() == "Train on a folder (Ctrl+T)"
    assert window.actions_.tool_brush.toolTip() == "Brush (B)"
    assert window.actions_.open_folder.toolTip() == "Add folder (Ctrl+Shift+O)"


def test_the_wizard_takes_files_and_a_mixed_folder_by_unticking(window, tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    rgb = image_folder(folder, count=3, bands=3)
    nir = folder / "nir.tif"
    make_regions_image(nir, size=(64, 64), bands=4)
    wizard = TrainWizard(window.runner, folder, window)
    page = wizard.folder_page
    assert page.images.topLevelItemCount() == 4  # everything listed, with tick boxes
    assert page.isComplete() and sorted(page.checked_paths()) == sorted(rgb)
    assert "another band count" in page.notes.toPlainText()
    assert set(wizard.config().inputs) == {str(p) for p in rgb}
    page.set_checked(rgb[0], False)
    assert set(wizard.config().inputs) == {str(p) for p in rgb[1:]}
    page.set_checked(nir, True)  # a mixed choice is refused, with the reason
    assert not page.isComplete() and "band count" in page.summary.text()
    wizard.set_inputs([rgb[1], rgb[2]])  # files, not a folder
    assert page.images.topLevelItemCount() == 2 and wizard.config().model.in_channels == 3


def test_classes_set_themselves_up(window, tmp_path: Path, monkeypatch) -> None:
    from acseg_core.gis.palettes import landcover_colour

    def no_dialog(*_a, **_k):
        raise AssertionError("no modal colour dialog per class")

    monkeypatch.setattr(QColorDialog, "getColor", staticmethod(no_dialog))
    labelmap = tmp_path / "labelmap.txt"
    labelmap.write_text(
        "# label:color_rgb:parts:actions\nbackground:0,0,0::\nwater:0,0,255::\nroad:90,90,90::\n"
    )
    panel = window.classes_panel
    assert panel.import_classes(labelmap) == 2
    assert [(c.name, c.color) for c in window.classes.classes] == [
        ("water", (0, 0, 255)), ("road", (90, 90, 90))
    ]  # fmt: skip
    assert panel.import_classes(Path("resources/labels/loveda.csv")) == 4  # + new names only
    names = [c.name for c in window.classes.classes]
    assert names == ["water", "road", "building", "barren", "forest", "agriculture"]
    forest = window.classes.classes[4]
    assert forest.color == landcover_colour("forest")  # a sensible default, not a palette slot
    vegetation = window.classes.add_class("vegetation")
    r, g, b = window.classes.class_map.class_by_id(vegetation).color
    assert g > r and g > b  # green
    # several classes recoloured at once, without a dialog
    panel.class_table.selectRow(0)
    panel.class_table.selectRow(1)
    panel.class_table.setCurrentCell(0, 0)
    for row in (0, 1):
        panel.class_table.item(row, 0).setSelected(True)
    assert len(panel.selected_classes()) == 2
    panel.recolour_selected((10, 20, 30))
    assert [c.color for c in window.classes.classes[:2]] == [(10, 20, 30)] * 2
    panel.recolour_selected_by_name()
    assert window.classes.classes[0].color == landcover_colour("water")
    assert window.classes.classes[1].color == landcover_colour("road")


def test_the_fill_shows_what_it_fills_and_takes_in_specks(qtbot, window, tmp_path: Path) -> None:
    images = image_folder(tmp_path / "tiles", count=1)
    window.open_images(images)
    ids = np.zeros((64, 64), np.uint8)
    ids[32:, :] = 1
    ids[10, 10] = 1  # a speck of cluster 1 inside cluster 0's region
    show_map(qtbot, window, tmp_path, images[0], ids)
    roof = window.classes.add_class("roof", (200, 30, 30))
    window.editing.set_active_class(roof)
    window.editing.set_tool("fill")
    tool = window.editing.tool
    tool.hover(QPointF(5.5, 5.5))
    assert tool.preview.isVisible() and window.editing.layer() is None  # nothing painted yet
    region = tool.preview.pixmap().toImage()
    assert (region.width(), region.height()) == (64, 32)
    assert region.pixelColor(10, 10).alpha() == 0 and abs(region.pixelColor(5, 5).red() - 200) <= 2
    window.tools_bar.tolerance.setValue(4)  # specks up to 4 px are taken in
    region = tool.preview.pixmap().toImage()
    assert region.pixelColor(10, 10).alpha() > 0
    tool.press(QPointF(5.5, 5.5))
    painted = window.editing.layer().to_array()
    assert painted[10, 10] == roof and (painted[:32] == roof).all()
    assert (painted[32:] == NO_EDIT).all()


def test_the_within_cluster_fill_stays_in_the_clicked_cluster(
    qtbot, window, tmp_path: Path
) -> None:
    images = image_folder(tmp_path / "tiles", count=1)
    window.open_images(images)
    ids = np.zeros((64, 64), np.uint8)
    ids[:, 32:] = 1  # two clusters side by side, both named "water"
    ids[10:13, 10:13] = 2  # a 9-pixel speck of an unnamed cluster inside cluster 0
    show_map(qtbot, window, tmp_path, images[0], ids)
    water = window.classes.add_class("water")
    for cluster in (0, 1):
        window.classes.assign(cluster, water)
    window.overlay.set_mode(window.overlay.CLASSES)
    lake = window.classes.add_class("lake")
    window.editing.set_active_class(lake)
    window.editing.set_tool("fill")
    window.tools_bar.tolerance.setValue(20)
    tool = window.editing.tool
    tool.hover(QPointF(5.5, 5.5))
    assert tool.preview.pixmap().width() == 64  # the class region: both clusters
    window.tools_bar.within.setChecked(True)
    assert window.editing.fill_within_cluster
    preview = tool.preview.pixmap().toImage()
    assert (preview.width(), preview.height()) == (32, 64)  # cluster 0 only
    assert preview.pixelColor(11, 11).alpha() == 0  # the speck of cluster 2 stays out
    tool.press(QPointF(5.5, 5.5))
    painted = window.editing.layer().to_array()
    assert (painted[ids == 0] == lake).all()
    assert (painted[ids != 0] == NO_EDIT).all()


def test_dialogs_open_in_the_last_folder_used(window, tmp_path: Path, monkeypatch) -> None:
    images = image_folder(tmp_path / "somewhere" / "tiles", count=1)
    starts: list[str] = []

    def open_files(_parent, _title, start, _filters):
        starts.append(start)
        return [str(images[0])], ""

    def open_file(_parent, _title, start, _filters):
        starts.append(start)
        return "", ""

    monkeypatch.setattr(QFileDialog, "getOpenFileNames", staticmethod(open_files))
    monkeypatch.setattr(QFileDialog, "getOpenFileName", staticmethod(open_file))
    window.ask_open_files()
    window.ask_load_model()
    window.project.ask_open()
    window.classes_panel.ask_import()
    assert starts[0] == "" and starts[1:] == [str(images[0].parent)] * 3


def test_relaunch_offers_the_last_project(qtbot, window, tmp_path: Path, dialogs) -> None:
    from app.main_window import MainWindow

    images = image_folder(tmp_path / "tiles", count=1)
    window.open_images(images)
    saved = tmp_path / "work.acseg"
    assert window.project.save_to(saved)
    again = MainWindow(window.settings)  # a relaunch: the same settings
    qtbot.addWidget(again)
    again.project.autosave_timer.stop()
    dialogs.answer = "yes"
    assert again.offer_last_project()
    assert dialogs.shown[-1][1] == "Reopen the last project?"
    assert again.document.path == saved and again.images.images == images
    again.runner.shutdown()


def test_the_wizard_keeps_its_last_settings(window, tmp_path: Path) -> None:
    image_folder(tmp_path / "tiles", count=1)
    wizard = TrainWizard(window.runner, tmp_path / "tiles", window, settings=window.settings)
    page = wizard.settings_page
    page.clusters.setValue(7)
    page.epochs.setValue(3)
    page.crop.setValue(64)
    page.batch.setValue(4)
    wizard.done(QDialog.DialogCode.Accepted)
    again = TrainWizard(window.runner, None, window, settings=window.settings)
    page = again.settings_page
    assert (page.clusters.value(), page.epochs.value(), page.crop.value()) == (7, 3, 64)
    assert page.batch.value() == 4
    assert again.folder_page.inputs == [tmp_path / "tiles"] and again.folder_page.isComplete()


def test_the_status_bar_shows_the_crs_and_latitude_longitude(
    qtbot, window, tmp_path: Path, shared_data: Path
) -> None:
    path = tmp_path / "geo.tif"
    make_regions_image(path, size=(32, 32), bands=3)
    window.open_images([path])
    info = window.cursor_info
    info.cursor_moved(3.5, 3.5)
    assert info.map_xy.text().startswith("E ") and info.map_xy.text().endswith("EPSG:32632")
    assert "°" in info.lonlat.text()
    window.open_images([shared_data / "geotiff" / "RGB.byte.tif"])
    info.cursor_moved(1.0, 1.0)
    assert info.map_xy.text().endswith("EPSG:32618")
    assert info.lonlat.text().startswith("25.5") and info.lonlat.text().endswith("° W")
