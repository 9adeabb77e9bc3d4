"""Classes panel: add/rename/recolour/remove, map clusters (several to one), legend visibility."""

from __future__ import annotations

import numpy as np
import pytest
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor

from acseg_core.errors import AcsegError


def test_panel_edits_go_to_the_model_and_back(window, dialogs, monkeypatch) -> None:
    panel = window.classes_panel
    window.classes.set_clusters(4)
    assert panel.cluster_table.rowCount() == 4 and not panel.empty_hint.isVisibleTo(panel)

    monkeypatch.setattr(
        "app.panels.classes_panel.QInputDialog.getText", lambda *a, **k: ("forest", True)
    )
    panel.ask_add_class()
    water = window.classes.add_class("water", (0, 0, 255))
    assert [c.name for c in window.classes.classes] == ["forest", "water"]
    assert panel.class_table.rowCount() == 2

    # several clusters map to one class through the combo boxes
    forest = window.classes.classes[0].id
    for cluster in (0, 2):
        combo = panel.class_combo(cluster)
        index = combo.findData(forest)
        combo.setCurrentIndex(index)
        combo.activated.emit(index)
    assert window.classes.class_map.clusters_of(forest) == (0, 2)
    assert window.classes.class_of(1) is None

    # rename in place; a duplicate name is refused with a dialog and reverted
    panel.class_table.item(0, 0).setText("woodland")
    assert window.classes.classes[0].name == "woodland"
    panel.class_table.item(1, 0).setText("woodland")
    assert dialogs.shown[-1][1] == "Classes"
    assert [c.name for c in window.classes.classes] == ["woodland", "water"]
    assert panel.class_table.item(1, 0).text() == "water"

    # recolour the selected class
    panel.class_table.setCurrentCell(1, 0)
    monkeypatch.setattr(
        "app.panels.classes_panel.QColorDialog.getColor", lambda *a, **k: QColor(10, 20, 30)
    )
    panel._recolour_other()  # the palette menu's "Other colour…": one dialog for all
    assert window.classes.class_map.class_by_id(water).color == (10, 20, 30)

    # remove: its clusters become unassigned, the others keep their class
    window.classes.assign(3, water)
    panel.class_table.setCurrentCell(0, 0)
    panel._remove_selected()
    assert [c.name for c in window.classes.classes] == ["water"]
    assert window.classes.class_of(0) is None and window.classes.class_of(3).name == "water"
    assert panel.class_combo(3).currentText() == "water"

    # legend tick boxes drive per-cluster visibility
    panel.cluster_table.item(1, 0).setCheckState(Qt.CheckState.Unchecked)
    assert window.overlay.hidden == frozenset({1})
    lut = window.classes.cluster_lut(window.overlay.hidden)
    assert lut[1, 3] == 0 and lut[0, 3] == 255


def test_class_lut_follows_the_mapping(window) -> None:
    window.classes.set_clusters(3)
    red = window.classes.add_class("red", (255, 0, 0))
    window.classes.assign(0, red)
    window.classes.assign(2, red)
    lut = window.classes.class_lut()
    labels = np.array([[0, 1, 2, 255]], np.uint8)
    rgba = lut[labels]
    assert rgba[0, :, 3].tolist() == [255, 0, 255, 0]
    assert rgba[0, 0, :3].tolist() == [255, 0, 0]
    with pytest.raises(AcsegError):  # an unknown class id is refused, nothing changes
        window.classes.assign(1, 99)
    assert window.classes.class_of(1) is None
