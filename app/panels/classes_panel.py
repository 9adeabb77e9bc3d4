"""Classes panel: edit named, coloured classes; map each cluster to one (the legend too).

Top: the classes (double-click a name to rename, the swatch to recolour).
Bottom: one row per cluster — visibility, cluster colour, its share of the
current image, and the class it maps to. The name tool (click a region on the
canvas) selects the clicked cluster's row and opens its class list. Every edit
goes to :class:`ClassesModel`/:class:`OverlayModel`; the overlay follows through
their signals.
"""

from __future__ import annotations

from collections.abc import Callable

import qtawesome as qta
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QColorDialog,
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from acseg_core.errors import AcsegError
from app.dialogs import show_error
from app.models import ClassesModel, OverlayModel

UNASSIGNED = "— none —"


def swatch(colour: tuple[int, int, int], size: int = 14) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(*colour))
    return QIcon(pixmap)


class ClassesPanel(QWidget):
    def __init__(
        self, classes: ClassesModel, overlay: OverlayModel, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.classes, self.overlay = classes, overlay

        self.class_table = QTableWidget(0, 1, self)
        self.class_table.setHorizontalHeaderLabels(["Class"])
        self.class_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.class_table.verticalHeader().setVisible(False)
        self.class_table.itemChanged.connect(self._renamed)

        self.add_button = self._tool("fa5s.plus", "Add class", self.ask_add_class)
        self.remove_button = self._tool("fa5s.minus", "Remove class", self._remove_selected)
        self.colour_button = self._tool("fa5s.palette", "Recolour class", self._recolour_selected)
        buttons = QHBoxLayout()
        for button in (self.add_button, self.remove_button, self.colour_button):
            buttons.addWidget(button)
        buttons.addStretch(1)

        self.cluster_table = QTableWidget(0, 2, self)
        self.cluster_table.setHorizontalHeaderLabels(["Cluster", "→ Class"])
        header = self.cluster_table.horizontalHeader()
        header.setSectionResizeMode(0, QHeaderView.ResizeMode.ResizeToContents)
        header.setSectionResizeMode(1, QHeaderView.ResizeMode.Stretch)
        self.cluster_table.verticalHeader().setVisible(False)
        self.cluster_table.itemChanged.connect(self._visibility_changed)
        self.empty_hint = QLabel("Load or train a model to see its clusters.", self)
        self.empty_hint.setWordWrap(True)

        layout = QVBoxLayout(self)
        layout.addWidget(QLabel("<b>Classes</b>", self))
        layout.addWidget(self.class_table, 2)
        layout.addLayout(buttons)
        layout.addWidget(QLabel("<b>Clusters</b> (tick = shown)", self))
        layout.addWidget(self.empty_hint)
        layout.addWidget(self.cluster_table, 3)
        classes.changed.connect(self.refresh)
        classes.shares_changed.connect(self._refresh_labels)
        overlay.changed.connect(self._refresh_visibility)
        self.refresh()

    def _tool(self, icon: str, tip: str, slot: object) -> QToolButton:
        button = QToolButton(self)
        button.setIcon(qta.icon(icon))
        button.setToolTip(tip)
        button.clicked.connect(slot)
        return button

    # -- model → view
    def refresh(self) -> None:
        self.class_table.blockSignals(True)
        self.class_table.setRowCount(len(self.classes.classes))
        for row, cls in enumerate(self.classes.classes):
            item = QTableWidgetItem(swatch(cls.color), cls.name)
            item.setData(Qt.ItemDataRole.UserRole, cls.id)
            item.setFlags(item.flags() | Qt.ItemFlag.ItemIsEditable)
            self.class_table.setItem(row, 0, item)
        self.class_table.blockSignals(False)

        self.cluster_table.blockSignals(True)
        self.cluster_table.setRowCount(self.classes.clusters)
        colours = self.classes.cluster_colours()
        for cluster in range(self.classes.clusters):
            item = QTableWidgetItem(swatch(colours[cluster]), self._cluster_label(cluster))
            item.setFlags(Qt.ItemFlag.ItemIsEnabled | Qt.ItemFlag.ItemIsUserCheckable)
            shown = cluster not in self.overlay.hidden
            item.setCheckState(Qt.CheckState.Checked if shown else Qt.CheckState.Unchecked)
            self.cluster_table.setItem(cluster, 0, item)
            combo = QComboBox()  # no parent: setCellWidget places it in the viewport
            combo.addItem(QIcon(), UNASSIGNED, 0)
            for cls in self.classes.classes:
                combo.addItem(swatch(cls.color), cls.name, cls.id)
            mapped = self.classes.class_of(cluster)
            combo.setCurrentIndex(combo.findData(mapped.id) if mapped is not None else 0)
            combo.activated.connect(
                lambda index, c=cluster, box=combo: self._assign(c, box.itemData(index))
            )
            self.cluster_table.setCellWidget(cluster, 1, combo)
        self.cluster_table.blockSignals(False)
        self.empty_hint.setVisible(self.classes.clusters == 0)

    def _cluster_label(self, cluster: int) -> str:
        shares = self.classes.shares
        if shares is None or cluster >= len(shares):
            return f"Cluster {cluster}"
        return f"Cluster {cluster} · {100 * shares[cluster]:.1f} %"

    def _refresh_labels(self) -> None:
        for cluster in range(self.cluster_table.rowCount()):
            item = self.cluster_table.item(cluster, 0)
            if item is not None:
                item.setText(self._cluster_label(cluster))

    def focus_cluster(self, cluster: int) -> None:
        """Select ``cluster``'s row and open its class list (the name tool's click)."""
        if not 0 <= cluster < self.cluster_table.rowCount():
            return
        self.cluster_table.selectRow(cluster)
        self.cluster_table.scrollToItem(self.cluster_table.item(cluster, 0))
        combo = self.class_combo(cluster)
        if combo is not None and combo.isVisible():
            combo.showPopup()

    def _refresh_visibility(self) -> None:
        self.cluster_table.blockSignals(True)
        for cluster in range(self.cluster_table.rowCount()):
            item = self.cluster_table.item(cluster, 0)
            shown = cluster not in self.overlay.hidden
            item.setCheckState(Qt.CheckState.Checked if shown else Qt.CheckState.Unchecked)
        self.cluster_table.blockSignals(False)

    def class_combo(self, cluster: int) -> QComboBox:
        return self.cluster_table.cellWidget(cluster, 1)  # type: ignore[return-value]

    # -- view → model
    def _visibility_changed(self, item: QTableWidgetItem) -> None:
        if item.column() == 0:
            shown = item.checkState() == Qt.CheckState.Checked
            self.overlay.set_cluster_visible(item.row(), shown)

    def _renamed(self, item: QTableWidgetItem) -> None:
        class_id = item.data(Qt.ItemDataRole.UserRole)
        if not self._apply(lambda: self.classes.rename_class(class_id, item.text())):
            self.refresh()  # show the old name again

    def _assign(self, cluster: int, class_id: int) -> None:
        self._apply(lambda: self.classes.assign(cluster, class_id or None))

    def _apply(self, edit: Callable[[], object]) -> bool:
        """Run a model edit; the core's refusal (duplicate name...) becomes a dialog."""
        try:
            edit()
        except AcsegError as exc:
            show_error(self, "Classes", str(exc))
            return False
        return True

    def ask_add_class(self) -> None:
        name, ok = QInputDialog.getText(self, "Add class", "Class name:")
        if ok and name.strip():
            self._apply(lambda: self.classes.add_class(name))

    def _selected_class(self) -> int | None:
        """The id of the selected class."""
        row = self.class_table.currentRow()
        if 0 <= row < len(self.classes.classes):
            return self.classes.classes[row].id
        return None

    def _remove_selected(self) -> None:
        row = self._selected_class()
        if row is not None:
            self.classes.remove_class(row)

    def _recolour_selected(self) -> None:
        class_id = self._selected_class()
        if class_id is None:
            return
        current = QColor(*self.classes.class_map.class_by_id(class_id).color)
        colour = QColorDialog.getColor(current, self, "Class colour")
        if colour.isValid():
            rgb = (colour.red(), colour.green(), colour.blue())
            self._apply(lambda: self.classes.recolour_class(class_id, rgb))
