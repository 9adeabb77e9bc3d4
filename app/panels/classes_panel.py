"""Classes panel: edit named, coloured classes; map each cluster to one (the legend too).

Top: the classes (double-click a name to rename; select one or several and pick a
colour from the palette button's menu, or "by name" for the land-cover colours; import
a class list from a file).
Bottom: one row per cluster — visibility, cluster colour, its share of the
current image, and the class it maps to. The name tool (click a region on the
canvas) selects the clicked cluster's row and opens its class list. Every edit
goes to :class:`ClassesModel`/:class:`OverlayModel`; the overlay follows through
their signals.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import qtawesome as qta
from PySide6.QtCore import Qt
from PySide6.QtGui import QColor, QIcon, QPixmap
from PySide6.QtWidgets import (
    QAbstractItemView,
    QColorDialog,
    QComboBox,
    QFileDialog,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QMenu,
    QTableWidget,
    QTableWidgetItem,
    QToolButton,
    QVBoxLayout,
    QWidget,
)

from acseg_core.errors import AcsegError
from acseg_core.gis.palettes import CLASS_COLOURS, LANDCOVER_COLOURS, Color
from acseg_core.labelling.class_lists import CLASS_LIST_FILTER, read_class_list
from app.dialogs import show_error
from app.file_dialogs import FileDialogs
from app.models import ClassesModel, OverlayModel

UNASSIGNED = "— none —"
MENU_LANDCOVER = (  # one colour per kind of land cover in the palette menu
    "water", "grass", "vegetation", "tree", "agriculture", "building", "road", "soil",
    "sand", "shadow", "car", "clutter", "snow",
)  # fmt: skip


def swatch(colour: tuple[int, int, int], size: int = 14) -> QIcon:
    pixmap = QPixmap(size, size)
    pixmap.fill(QColor(*colour))
    return QIcon(pixmap)


class ClassesPanel(QWidget):
    def __init__(
        self,
        classes: ClassesModel,
        overlay: OverlayModel,
        parent: QWidget | None = None,
        dialogs: FileDialogs | None = None,
    ) -> None:
        super().__init__(parent)
        self.classes, self.overlay, self.dialogs = classes, overlay, dialogs

        self.class_table = QTableWidget(0, 1, self)
        self.class_table.setHorizontalHeaderLabels(["Class"])
        self.class_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.class_table.verticalHeader().setVisible(False)
        self.class_table.itemChanged.connect(self._renamed)
        self.class_table.setSelectionBehavior(QAbstractItemView.SelectionBehavior.SelectRows)
        self.class_table.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)

        self.add_button = self._tool("fa5s.plus", "Add class (Ctrl+Shift+N)", self.ask_add_class)
        self.import_button = self._tool(
            "fa5s.file-import",
            "Import a class list (labelmap.txt, name:r,g,b lines, a label table .csv)",
            self.ask_import,
        )
        self.remove_button = self._tool(
            "fa5s.minus", "Remove the selected classes", self._remove_selected
        )
        self.colour_button = self._tool(
            "fa5s.palette", "Recolour the selected classes (one or several)", lambda: None
        )
        self.colour_menu = self._build_colour_menu()
        self.colour_button.setMenu(self.colour_menu)
        self.colour_button.setPopupMode(QToolButton.ToolButtonPopupMode.InstantPopup)
        buttons = QHBoxLayout()
        for button in (self.add_button, self.import_button, self.remove_button,
                       self.colour_button):  # fmt: skip
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

    def selected_classes(self) -> list[int]:
        """The ids of the selected classes (the current one when none is selected)."""
        rows = sorted({index.row() for index in self.class_table.selectedIndexes()})
        if not rows and self.class_table.currentRow() >= 0:
            rows = [self.class_table.currentRow()]
        classes = self.classes.classes
        return [classes[r].id for r in rows if 0 <= r < len(classes)]

    def _remove_selected(self) -> None:
        for class_id in self.selected_classes():
            self.classes.remove_class(class_id)

    # -- colours: one menu for any number of selected classes, no dialog per class
    def _build_colour_menu(self) -> QMenu:
        menu = QMenu(self)
        by_name = menu.addAction(qta.icon("fa5s.magic"), "Colours by name (water blue, …)")
        by_name.setToolTip("The land-cover colour of each selected class's name")
        by_name.triggered.connect(lambda: self.recolour_selected_by_name())
        menu.addSeparator()
        for name in MENU_LANDCOVER:
            colour = LANDCOVER_COLOURS[name]
            action = menu.addAction(swatch(colour), name)
            action.triggered.connect(lambda _c=False, rgb=colour: self.recolour_selected(rgb))
        more = menu.addMenu("More colours")
        for colour in CLASS_COLOURS:
            action = more.addAction(swatch(colour), ",".join(str(v) for v in colour))
            action.triggered.connect(lambda _c=False, rgb=colour: self.recolour_selected(rgb))
        menu.addSeparator()
        other = menu.addAction("Other colour…")
        other.triggered.connect(self._recolour_other)
        return menu

    def recolour_selected(self, colour: Color) -> None:
        """Give every selected class ``colour`` (one change, one dialog-free step)."""
        ids = self.selected_classes()
        if ids:
            self._apply(lambda: self.classes.recolour_classes({i: colour for i in ids}))

    def recolour_selected_by_name(self) -> None:
        """Each selected class takes the land-cover colour of its name (others keep
        theirs)."""
        ids = self.selected_classes()
        if ids:
            self._apply(lambda: self.classes.recolour_by_name(ids))

    def _recolour_other(self) -> None:
        ids = self.selected_classes()
        if not ids:
            return
        current = QColor(*self.classes.class_map.class_by_id(ids[0]).color)
        colour = QColorDialog.getColor(current, self, "Class colour")  # once for all
        if colour.isValid():
            self.recolour_selected((colour.red(), colour.green(), colour.blue()))

    # -- importing a class list
    def ask_import(self) -> None:
        if self.dialogs is not None:
            path = self.dialogs.open_file(self, "Import class list", CLASS_LIST_FILTER)
        else:
            chosen, _ = QFileDialog.getOpenFileName(self, "Import class list", "",
                                                    CLASS_LIST_FILTER)  # fmt: skip
            path = Path(chosen) if chosen else None
        if path is not None:
            self.import_classes(path)

    def import_classes(self, path: Path) -> int:
        """Add the classes listed in ``path`` (names already present keep their class);
        returns how many were added. A bad file is a dialog naming the problem."""
        try:
            entries = read_class_list(path)
        except AcsegError as exc:
            show_error(self, "Cannot import classes", str(exc))
            return 0
        before = len(self.classes.classes)
        if not self._apply(lambda: self.classes.import_classes(entries)):
            return 0
        added = len(self.classes.classes) - before
        window = self.window()
        if hasattr(window, "statusBar"):
            kept = len(entries) - added
            note = f" ({kept} already there)" if kept else ""
            window.statusBar().showMessage(
                f"Imported {added} class(es) from {Path(path).name}{note}", 8000
            )
        return added
