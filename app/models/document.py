"""Where the project lives and whether it has unsaved changes."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal


class DocumentModel(QObject):
    """Where the project lives and whether it has unsaved changes."""

    dirty_changed = Signal(bool)
    path_changed = Signal(object)  # Path | None

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path: Path | None = None
        self.dirty = False

    def mark_dirty(self) -> None:
        if not self.dirty:
            self.dirty = True
            self.dirty_changed.emit(True)

    def mark_clean(self) -> None:
        if self.dirty:
            self.dirty = False
            self.dirty_changed.emit(False)

    def set_path(self, path: Path | None) -> None:
        if path != self.path:
            self.path = path
            self.path_changed.emit(path)
