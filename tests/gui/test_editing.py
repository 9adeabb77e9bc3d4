"""Correction tools: brush, eraser, fill, polygon change exactly the expected edit pixels;
undo/redo restore exactly; one stroke is one step; edits survive remaps, save/reopen and
reach the export."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from PySide6.QtCore import QPointF, QRectF, QSettings, Qt

from acseg_core.labelling.classes import NO_EDIT
from acseg_core.labelling.painting import EditHistory
from acseg_core.labelling.shapes import RegionTooLarge, flood_region, polygon_mask, segment_mask
from app.export_dialog import ExportRequest
from app.main_window import MainWindow
from tests.gui.helpers import image_folder, show_map

SIZE = 64


def disc(x: float, y: float, r: float, shape=(SIZE, SIZE)) -> np.ndarray:
    rows, cols = np.mgrid[0 : shape[0], 0 : shape[1]]
    return (cols + 0.5 - x) ** 2 + (rows + 0.5 - y) ** 2 <= r * r


def block_clusters() -> np.ndarray:
    """Cluster 0 everywhere, a 16×16 block of cluster 1, a diagonal-touching block of 1."""
    clusters = np.zeros((SIZE, SIZE), np.uint8)
    clusters[8:24, 8:24] = 1
    clusters[24:32, 24:32] = 1  # touches the first block only at a corner
    clusters[:, 60:] = 255  # a nodata strip
    return clusters


@pytest.fixture
def editing_window(qtbot, window, tmp_path: Path):
    images = image_folder(tmp_path / "tiles", count=2, size=SIZE)
    window.open_images(images)
    show_map(qtbot, window, tmp_path, images[0], block_clusters())
    window.classes.set_clusters(2)
    window.roof = window.classes.add_class("roof", (200, 30, 30))
    window.field = window.classes.add_class("field", (30, 200, 30))
    window.classes.assign(0, window.field)
    window.classes.assign(1, window.roof)
    return window


def layer(window) -> np.ndarray:
    found = window.editing.layer()
    return found.to_array() if found is not None else np.full((SIZE, SIZE), NO_EDIT, np.uint8)


def stroke(window, points: list[tuple[float, float]]) -> None:
    tool = window.editing.tool
    tool.press(QPointF(*points[0]))
    for p in points[1:]:
        tool.move(QPointF(*p))
    tool.release(QPointF(*points[-1]))


def test_brush_paints_the_active_class_exactly_under_the_disc(editing_window) -> None:
    w = editing_window
    w.actions_.tool_brush.trigger()
    assert w.editing.tool_name == "brush" and w.canvas.tool is w.editing.tools["brush"]
    w.editing.pick_class(1)  # key 1: roof
    w.editing.set_brush_radius(5)
    stroke(w, [(20.0, 30.0)])
    expected = np.where(disc(20, 30, 5), w.roof, NO_EDIT)
    assert np.array_equal(layer(w), expected)
    assert w.isWindowModified()


def test_a_drag_paints_the_whole_capsule_and_skips_nodata(editing_window) -> None:
    w = editing_window
    w.editing.set_tool("brush")
    w.editing.set_active_class(w.field)
    w.editing.set_brush_radius(3)
    stroke(w, [(40.0, 10.0), (62.0, 10.0)])
    rows, cols = np.mgrid[0:SIZE, 0:SIZE]
    cy, cx = rows + 0.5, cols + 0.5
    t = np.clip((cx - 40.0) / 22.0, 0, 1)
    capsule = (cx - (40 + 22 * t)) ** 2 + (cy - 10) ** 2 <= 9
    capsule[:, 60:] = False  # nodata: nothing is labelled there
    assert np.array_equal(layer(w) == w.field, capsule)


def test_real_mouse_events_reach_the_tool(qtbot, editing_window) -> None:
    w = editing_window
    w.show()
    qtbot.waitExposed(w)
    w.editing.set_tool("brush")
    w.editing.set_brush_radius(4)
    view = w.canvas.viewport()
    start = w.canvas.mapFromScene(QPointF(30, 40))
    end = w.canvas.mapFromScene(QPointF(40, 40))
    qtbot.mousePress(view, Qt.MouseButton.LeftButton, pos=start)
    qtbot.mouseMove(view, end)
    qtbot.mouseRelease(view, Qt.MouseButton.LeftButton, pos=end)
    painted = layer(w) == w.roof
    assert painted[40, 30] and painted[40, 36]
    assert len(w.editing.stack()) == 1


def test_eraser_returns_pixels_to_the_cluster_map(editing_window) -> None:
    w = editing_window
    w.editing.set_tool("brush")
    w.editing.set_brush_radius(6)
    stroke(w, [(30.0, 30.0)])
    w.actions_.tool_eraser.trigger()
    w.editing.set_brush_radius(3)
    stroke(w, [(30.0, 30.0)])
    expected = np.where(disc(30, 30, 6) & ~disc(30, 30, 3), w.roof, NO_EDIT)
    assert np.array_equal(layer(w), expected)


def test_fill_takes_the_4_connected_region_of_the_displayed_labels(editing_window) -> None:
    w = editing_window
    w.overlay.set_mode("classes")
    w.editing.set_tool("fill")
    w.editing.set_active_class(w.field)
    w.editing.tools["fill"].press(QPointF(10.5, 10.5))
    expected = np.zeros((SIZE, SIZE), bool)
    expected[8:24, 8:24] = True  # the corner-touching block is not 4-connected
    assert np.array_equal(layer(w) != NO_EDIT, expected)
    assert (layer(w)[expected] == w.field).all()
    # the region is now "field" like its surroundings: filling again takes everything
    # connected (but not nodata, and only pixels that change)
    w.editing.set_active_class(w.roof)
    w.editing.fill_at(2.0, 2.0)
    region = block_clusters() != 255
    region[24:32, 24:32] = False  # a separate region (roof, unedited)
    assert np.array_equal(layer(w) == w.roof, region)


def test_fill_in_cluster_mode_follows_clusters(editing_window) -> None:
    w = editing_window
    w.classes.assign(1, w.field)  # both clusters are "field": classes would merge them
    w.overlay.set_mode("clusters")
    w.editing.set_active_class(w.roof)
    w.editing.fill_at(30.0, 30.0)
    expected = np.zeros((SIZE, SIZE), bool)
    expected[24:32, 24:32] = True
    assert np.array_equal(layer(w) == w.roof, expected)


def test_polygon_fills_inside_closed_by_enter_or_double_click(editing_window) -> None:
    w = editing_window
    w.editing.set_tool("polygon")
    tool = w.editing.tools["polygon"]
    for x, y in [(10, 10), (20, 10), (20, 20), (10, 20)]:
        tool.press(QPointF(x, y))
    assert tool.key(Qt.Key.Key_Return)
    expected = np.zeros((SIZE, SIZE), bool)
    expected[10:20, 10:20] = True
    assert np.array_equal(layer(w) == w.roof, expected)
    assert len(w.editing.stack()) == 1
    for x, y in [(40, 40), (50, 40), (45, 50)]:
        tool.press(QPointF(x, y))
    tool.double_click(QPointF(45, 50))  # the second click of a double-click closes it
    assert not tool.points
    triangle = (layer(w) == w.roof) & ~expected
    assert triangle[41, 45] and not triangle[49, 41] and triangle.sum() > 20


def test_one_stroke_is_one_undo_step_and_undo_redo_are_exact(editing_window) -> None:
    w = editing_window
    w.editing.set_tool("brush")
    w.editing.set_brush_radius(4)
    stroke(w, [(10.0, 40.0)])
    first = layer(w)
    stroke(w, [(10.0 + 2 * i, 40.0 + i) for i in range(12)])
    second = layer(w)
    stack = w.editing.stack()
    assert len(stack) == 2
    diff = stack._undo[-1]
    changed = int((first != second).sum())
    assert diff.pixels == changed and diff.nbytes == 6 * changed
    assert w.actions_.undo.isEnabled()
    w.actions_.undo.trigger()
    assert np.array_equal(layer(w), first)
    w.actions_.undo.trigger()
    assert (layer(w) == NO_EDIT).all()
    assert not w.actions_.undo.isEnabled() and w.actions_.redo.isEnabled()
    w.editing.redo()
    assert np.array_equal(layer(w), first)
    w.editing.redo()
    assert np.array_equal(layer(w), second)
    # a new step after an undo drops what could be redone
    w.editing.undo()
    w.editing.set_tool("eraser")
    stroke(w, [(10.0, 40.0)])
    assert not w.editing.can_redo


def test_undo_stack_keeps_to_its_byte_budget(editing_window) -> None:
    w = editing_window
    w.editing.set_tool("brush")
    w.editing.history = EditHistory(budget=2000)
    w.editing.set_brush_radius(6)  # ~113 px × 6 bytes per dab
    for i in range(6):
        stroke(w, [(8.0 + 8 * i, 50.0)])
    stack = w.editing.stack()
    assert stack.nbytes <= 2000 and 1 <= len(stack) < 6


def test_repaint_is_limited_to_the_changed_rectangle(editing_window, monkeypatch) -> None:
    w = editing_window
    w.editing.set_tool("brush")
    w.editing.set_brush_radius(3)
    stroke(w, [(5.0, 5.0)])  # the first edit makes the layer (one full update)
    rects: list[QRectF] = []
    item = w.editing.item
    monkeypatch.setattr(item, "update", lambda rect=None: rects.append(rect))
    stroke(w, [(30.0, 30.0)])
    assert rects and all(r is not None for r in rects)
    united = rects[0]
    for r in rects[1:]:
        united = united.united(r)
    assert united.width() <= 8 and united.height() <= 8


def test_edits_survive_a_cluster_remap_save_reopen_and_reach_export(
    qtbot, editing_window, tmp_path: Path, dialogs
) -> None:
    w = editing_window
    w.editing.set_tool("brush")
    w.editing.set_active_class(w.roof)
    w.editing.set_brush_radius(4)
    stroke(w, [(40.0, 40.0)])
    painted = layer(w)
    w.classes.assign(1, w.field)  # remap: the hand edits are untouched
    assert np.array_equal(layer(w), painted)
    assert w.cursor_info.cluster_text(40, 40) == "cluster 0 → roof (hand edit)"
    assert w.cursor_info.cluster_text(2, 2) == "cluster 0 → field"

    target = tmp_path / "edits.acseg"
    assert w.project.save_as(target)
    other = MainWindow(QSettings(str(tmp_path / "o.ini"), QSettings.Format.IniFormat))
    qtbot.addWidget(other)
    other.project.autosave_timer.stop()
    other.open_project(target)
    assert np.array_equal(other.project.doc.get_edits(w.images.images[0]).to_array(), painted)
    other.runner.shutdown()

    out = tmp_path / "labels"
    worker = w.exporter.run(ExportRequest("current", ("png",), out))
    with qtbot.waitSignal(worker.ended, timeout=30_000):
        pass
    assert worker.outcome == "succeeded", dialogs.texts()
    values = np.asarray(Image.open(out / "tile_0.png"))
    roof_value = w.classes.class_map.export_value(w.roof)
    field_value = w.classes.class_map.export_value(w.field)
    expected = np.where(block_clusters() == 255, 0, field_value)  # all clusters → field now
    expected[painted == w.roof] = roof_value
    assert np.array_equal(values, expected)


def test_keys_pick_classes_and_resize_the_brush(editing_window) -> None:
    w = editing_window
    w.editing.pick_class(2)
    assert w.editing.active_class == w.field
    assert w.tools_bar.class_box.currentData() == w.field
    w.editing.set_brush_radius(8)
    w.actions_.brush_larger.trigger()
    # the bar shows the brush's width (what users read "size" as), the radius doubled
    assert w.editing.brush_radius == 10 and w.tools_bar.width_spin.value() == 20
    w.actions_.brush_smaller.trigger()
    w.actions_.brush_smaller.trigger()
    assert w.editing.brush_radius < 10
    from app.actions import shortcut_rows, shortcuts_html

    rows = dict(shortcut_rows(w.actions_))
    assert rows["Undo"] == "Ctrl+Z" and rows["Redo"] == "Ctrl+Shift+Z"
    assert rows["Brush"] == "B" and rows["Smaller brush"] == "[" and rows["Larger brush"] == "]"
    assert "1 … 9" in shortcuts_html(w.actions_)


def test_painting_without_a_class_says_so_and_changes_nothing(window, tmp_path: Path) -> None:
    window.open_images(image_folder(tmp_path / "tiles", count=1, size=SIZE))
    messages: list[str] = []
    window.editing.message.connect(messages.append)
    window.editing.set_tool("brush")
    stroke(window, [(10.0, 10.0)])
    assert messages and "class" in messages[-1]
    assert window.editing.layer() is None or window.editing.layer().is_empty


# -- footprints (no window) ---------------------------------------------------------------
def test_segment_and_polygon_masks_are_clipped_to_the_image() -> None:
    col, row, mask = segment_mask(1.0, 1.0, 1.0, 1.0, 3, 10, 10)
    assert (col, row) == (0, 0)
    assert np.array_equal(mask, disc(1, 1, 3, (10, 10))[: mask.shape[0], : mask.shape[1]])
    assert segment_mask(-50, -50, -40, -40, 3, 10, 10) is None
    col, row, mask = polygon_mask([(-5, -5), (4, -5), (4, 4), (-5, 4)], 10, 10)
    assert (col, row) == (0, 0) and mask.shape == (5, 5) and mask[:4, :4].all()


def test_flood_fill_grows_its_window_only_as_far_as_the_region() -> None:
    values = np.zeros((300, 300), np.uint8)
    values[100:200, 5:295] = 1  # wider than the first window
    values[150, 5:295] = 2  # splits it in two 4-connected halves
    windows: list[tuple[int, int, int, int]] = []

    def read(window):
        windows.append(window)
        c, r, w, h = window
        return values[r : r + h, c : c + w]

    col, row, mask = flood_region(read, (150, 120), 300, 300, start_side=32)
    assert (col, row, mask.shape) == (5, 100, (50, 290)) and mask.all()
    assert len(windows) > 1 and windows[0][2] == 32
    with pytest.raises(RegionTooLarge):
        flood_region(read, (0, 0), 300, 300, start_side=32, max_pixels=10_000)
