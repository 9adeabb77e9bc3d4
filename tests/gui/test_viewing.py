"""Viewing: display mapping and stretch, status bar read-outs, layout memory, shortcuts."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import rasterio
from PIL import Image
from PySide6.QtCore import QSettings

from app.actions import shortcut_rows
from app.main_window import MainWindow
from resources import sample_image_path, synthetic_image_path
from tests.gui.helpers import show_map


def canvas_rgb(window) -> np.ndarray:
    return np.asarray(Image.fromqimage(window.canvas.grab().toImage()).convert("RGB"))


def test_display_presets_change_the_picture_not_the_file(qtbot, window) -> None:
    source = synthetic_image_path()
    before = source.read_bytes()
    window.open_images([source])
    window.show()
    qtbot.waitExposed(window)
    assert window.display.presets() == ["Natural colour", "NIR false colour"]
    natural = canvas_rgb(window)
    window.display_panel.preset.setCurrentText("NIR false colour")
    window.display_panel.preset.activated.emit(window.display_panel.preset.currentIndex())
    assert window.display.bands == (4, 1, 2)
    assert [s.value() for s in window.display_panel.band_spins] == [4, 1, 2]
    false_colour = canvas_rgb(window)
    # vegetation is bright in NIR: the red channel of the picture gains on average
    assert false_colour[..., 0].mean() > natural[..., 0].mean() + 10
    window.display.set_percentiles(0.0, 100.0)
    assert not np.array_equal(canvas_rgb(window), false_colour)
    assert source.read_bytes() == before


def test_status_bar_reads_position_map_xy_value_and_cluster(qtbot, window, tmp_path) -> None:
    source = synthetic_image_path()
    window.open_images([source])
    readout = window.cursor_info
    readout.cursor_moved(10.7, 4.2)
    with rasterio.open(source) as ds:
        pixel = ds.read(window=((4, 5), (10, 11)))[:, 0, 0]
        east, north = ds.xy(4, 10)
    assert readout.position.text() == "x 10  y 4"
    assert readout.map_xy.text() == f"E {east:.2f}  N {north:.2f}  EPSG:32632"
    assert readout.value.text() == "value " + " ".join(str(int(v)) for v in pixel)
    clusters = np.zeros((384, 384), np.uint8)
    clusters[4, 10] = 3
    show_map(qtbot, window, tmp_path, source, clusters)  # a model with 4 clusters
    grass = window.classes.add_class("grass")
    window.classes.assign(3, grass)
    readout.cursor_moved(10.7, 4.2)
    assert readout.cluster.text() == "cluster 3 → grass"
    readout.cursor_moved(float("nan"), float("nan"))
    assert readout.position.text() == "" and readout.cluster.text() == ""


def test_window_layout_is_remembered(qtbot, tmp_path: Path) -> None:
    settings = QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat)
    first = MainWindow(settings)
    qtbot.addWidget(first)
    first.classes_dock.hide()
    first.save_layout()
    settings.sync()
    second = MainWindow(QSettings(str(tmp_path / "layout.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(second)
    second.show()
    assert not second.classes_dock.isVisible()
    assert second.display_dock.isVisible()


def test_common_actions_have_shortcuts_listed_in_help(window) -> None:
    rows = dict(shortcut_rows(window.actions_))
    for name in (
        "Save project",
        "Train on a folder",
        "Toggle overlay",
        "Export labels",
        "Fit to window",
    ):
        assert name in rows, name
    assert rows["Toggle overlay"] == "O"
    before = window.overlay.visible
    window.actions_.toggle_overlay.trigger()
    assert window.overlay.visible is not before


def test_large_image_opens_from_a_preview(window, tmp_path: Path) -> None:
    from tests.core.synthetic import write_image

    wide = write_image(tmp_path / "wide.tif", np.zeros((1, 40, 5000), np.uint8))
    window.open_images([wide])
    assert max(window.viewer.preview_shape) <= 2048
    rect = window.canvas.scene().sceneRect()
    assert (rect.width(), rect.height()) == (5000, 40)  # scene = source pixels


def test_first_start_shows_the_sample_with_clusters_and_classes(qtbot, window) -> None:
    from app.sample import SAMPLE_MODEL

    assert SAMPLE_MODEL.is_file() and SAMPLE_MODEL.stat().st_size < 2_000_000
    window.opener.open_sample()
    assert window.session.model_path == SAMPLE_MODEL and window.classes.clusters == 5
    names = {"building", "land", "road", "vegetation", "water"}
    assert {c.name for c in window.classes.classes} == names
    assert window.session.loaded.config.in_channels == 3  # the real RGB photo's model
    qtbot.waitUntil(lambda: window.canvas.has_overlay, timeout=60_000)
    clusters = window.session.prediction(sample_image_path())
    assert len(np.unique(clusters)) >= 3  # a trained model, not one flat cluster
    # the class map was made from the sample's real labels: most pixels are right
    from acseg_core.io.labels import parse_label_format
    from resources import RESOURCES, SAMPLE_LABELS

    truth = parse_label_format(f"colors:{RESOURCES / 'labels' / 'dubai.csv'}").read(SAMPLE_LABELS)
    named = window.classes.class_map.labels_from_clusters(clusters)  # class ids, 0 = none
    order = [c.name for c in window.classes.classes]
    ids = {c.name: c.id for c in window.classes.classes}
    expected = np.array([ids[n] for n in sorted(order, key=["building", "land", "road",
                         "vegetation", "water"].index)])[np.clip(truth, 0, None)]  # fmt: skip
    labelled = truth >= 0
    assert (named[labelled] == expected[labelled]).mean() > 0.5
    assert not window.document.dirty


def test_prediction_cache_is_bounded_and_keeps_recent_images(window, monkeypatch) -> None:
    from tests.core.synthetic import tiny_model

    session = window.session
    session.set_model(tiny_model(), None)
    key = session.key
    monkeypatch.setattr(session, "MAX_CACHED_BYTES", 250)
    for i in range(4):
        session.add_prediction(Path(f"/img{i}.tif"), key, np.zeros((10, 10), np.uint8))
    assert [session.has_prediction(Path(f"/img{i}.tif")) for i in range(4)] == [
        False,
        False,
        True,
        True,
    ]
    session.prediction(Path("/img2.tif"))  # touching an image keeps it
    session.add_prediction(Path("/img4.tif"), key, np.zeros((10, 10), np.uint8))
    assert session.has_prediction(Path("/img2.tif")) and not session.has_prediction(
        Path("/img3.tif")
    )
