"""The image list: a view over :class:`~app.models.ImageListModel`. Missing files show
in red; Delete (or the context menu) removes the selected images from the session."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QPoint, Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import QAbstractItemView, QListWidget, QMenu, QWidget

from app.models import ImageListModel


class ImageListPanel(QListWidget):
    def __init__(
        self,
        images: ImageListModel,
        relink: Callable[[Path], None],
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.images, self.relink = images, relink
        self.setSelectionMode(QAbstractItemView.SelectionMode.ExtendedSelection)
        self.setContextMenuPolicy(Qt.ContextMenuPolicy.CustomContextMenu)
        self.customContextMenuRequested.connect(self._menu)
        self.remove_action = QAction("Remove from the list", self)
        self.remove_action.setShortcut(QKeySequence(QKeySequence.StandardKey.Delete))
        self.remove_action.setShortcutContext(Qt.ShortcutContext.WidgetShortcut)
        self.remove_action.triggered.connect(self.remove_selected)
        self.addAction(self.remove_action)
        images.images_changed.connect(self.refresh)
        images.current_changed.connect(self._current_changed)
        self.currentRowChanged.connect(self._row_chosen)
        self.itemActivated.connect(lambda _item: self._activated())
        self.refresh()

    def refresh(self) -> None:
        self.blockSignals(True)
        self.clear()
        for path in self.images.images:
            self.addItem(path.name)
            item = self.item(self.count() - 1)
            item.setToolTip(str(path))
            if not path.exists():
                item.setForeground(Qt.GlobalColor.red)
                item.setText(f"{path.name} (missing)")
        self.setCurrentRow(self.images.current_index)
        self.blockSignals(False)

    def selected_paths(self) -> list[Path]:
        rows = sorted({self.row(item) for item in self.selectedItems()})
        if not rows and self.currentRow() >= 0:
            rows = [self.currentRow()]
        paths = self.images.images
        return [paths[r] for r in rows if 0 <= r < len(paths)]

    def remove_selected(self) -> None:
        self.images.remove(self.selected_paths())

    def _menu(self, at: QPoint) -> None:
        if self.itemAt(at) is None:
            return
        menu = QMenu(self)
        menu.addAction(self.remove_action)
        menu.exec(self.mapToGlobal(at))

    def _current_changed(self, index: int) -> None:
        self.blockSignals(True)
        self.setCurrentRow(index)
        self.blockSignals(False)

    def _row_chosen(self, row: int) -> None:
        self.images.set_current(row)

    def _activated(self) -> None:
        path = self.images.current
        if path is not None and not path.exists():
            self.relink(path)
