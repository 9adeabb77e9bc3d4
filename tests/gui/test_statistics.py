"""The Statistics panel follows the map, remaps and strokes; the export dialog offers the
GIS formats; the status bar names the CRS."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF
from PySide6.QtWidgets import QApplication

from acseg_core.labelling.classes import composite
from app.export_dialog import ExportDialog, ExportRequest
from app.panels.statistics import PROJECT
from tests.gui.helpers import image_folder, show_map


def table(window) -> dict[str, tuple[int, str]]:
    panel = window.statistics
    return {
        panel.table.item(r, 0).text(): (
            int(panel.table.item(r, 1).text().replace(",", "")),
            panel.table.item(r, 2).text(),
        )
        for r in range(panel.table.rowCount())
    }


def test_statistics_follow_the_map_the_mapping_and_strokes(qtbot, window, tmp_path: Path) -> None:
    images = image_folder(tmp_path / "tiles", count=2)  # EPSG:32632, 0.5 m pixels
    window.open_images(images)
    ids = np.zeros((64, 64), np.uint8)
    ids[:, 40:] = 1
    ids[:4] = 255  # nodata: not counted
    show_map(qtbot, window, tmp_path, images[0], ids)
    water = window.classes.add_class("water", (0, 0, 255))
    window.classes.assign(0, water)
    qtbot.waitUntil(lambda: table(window).get("water", (0,))[0] == 60 * 40, timeout=5000)
    rows = table(window)
    assert rows["background"][0] == 60 * 24  # cluster 1 is not mapped yet
    assert rows["water"][1] == f"{60 * 40 * 0.25:,.2f}"  # m²
    assert "pixels" not in window.statistics.note.text()

    roof = window.classes.add_class("roof", (200, 0, 0))
    window.editing.set_tool("brush")
    window.editing.set_active_class(roof)
    window.editing.set_brush_radius(3)
    tool = window.editing.tool
    tool.press(QPointF(10.0, 20.0))
    tool.move(QPointF(30.0, 20.0))
    tool.release(QPointF(30.0, 20.0))
    painted = window.editing.layer().to_array()
    labels = composite(window.classes.class_map.labels_from_clusters(ids), painted)
    expected = int((labels == roof).sum())
    assert expected > 50
    qtbot.waitUntil(lambda: table(window).get("roof", (0,))[0] == expected, timeout=5000)
    assert table(window)["water"][0] == 60 * 40 - expected

    window.statistics.scope.setCurrentText(PROJECT)
    qtbot.waitUntil(lambda: "1 of 2" in window.statistics.note.text(), timeout=5000)
    assert table(window)["roof"][0] == expected
    window.statistics.copy_csv()
    text = QApplication.clipboard().text().splitlines()
    assert text[0].startswith("image,class_id,class_name,pixels,area_m2")
    assert any(line.startswith(f"tile_0.tif,2,roof,{expected},") for line in text)


def test_export_dialog_offers_the_gis_formats(qtbot, tmp_path: Path) -> None:
    last = ExportRequest("all", ("png", "gpkg", "csv"), tmp_path)
    dialog = ExportDialog(last, 3)
    qtbot.addWidget(dialog)
    assert list(dialog.boxes) == ["png", "tif", "gpkg", "csv", "color"]
    assert dialog.request().formats == ("png", "gpkg", "csv")
    dialog.tif.setChecked(True)
    dialog.png.setChecked(False)
    assert dialog.request().formats == ("tif", "gpkg", "csv")
