"""Naming a cluster by clicking a region of it, and each cluster's colour and share."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PySide6.QtCore import QPointF, Qt

from tests.gui.helpers import image_folder, show_map

SIZE = 64


def two_regions() -> np.ndarray:
    clusters = np.zeros((SIZE, SIZE), np.uint8)  # cluster 0: left three quarters
    clusters[:, 48:] = 1  # cluster 1: the right quarter
    return clusters


def test_clicking_a_region_names_its_cluster(qtbot, window, tmp_path: Path) -> None:
    images = image_folder(tmp_path / "tiles", count=1, size=SIZE)
    window.open_images(images)
    show_map(qtbot, window, tmp_path, images[0], two_regions())
    window.classes.set_clusters(2)
    water = window.classes.add_class("water")
    window.show()
    qtbot.waitExposed(window)
    window.actions_.tool_name.trigger()
    assert window.editing.tool_name == "name"
    view = window.canvas.viewport()
    with qtbot.waitSignal(window.editing.cluster_picked) as picked:
        qtbot.mouseClick(
            view, Qt.MouseButton.LeftButton, pos=window.canvas.mapFromScene(QPointF(56, 20))
        )
    assert picked.args == [1]
    panel = window.classes_panel
    assert panel.cluster_table.currentRow() == 1
    combo = panel.class_combo(1)
    combo.hidePopup()
    combo.activated.emit(combo.findData(water))  # the user picks "water" from the list
    assert window.classes.class_of(1).id == water
    assert window.classes.class_of(0) is None  # the other cluster is untouched
    window.editing.pick_cluster(10, 10)
    assert panel.cluster_table.currentRow() == 0


def test_cluster_rows_show_their_share_of_the_image(qtbot, window, tmp_path: Path) -> None:
    images = image_folder(tmp_path / "tiles", count=1, size=SIZE)
    window.open_images(images)
    show_map(qtbot, window, tmp_path, images[0], two_regions())
    window.classes.set_clusters(2)
    qtbot.waitUntil(lambda: window.classes.shares is not None, timeout=10_000)
    rows = [window.classes_panel.cluster_table.item(c, 0).text() for c in range(2)]
    assert rows == ["Cluster 0 · 75.0 %", "Cluster 1 · 25.0 %"]
