"""Observable application state (QObjects with signals); views only listen."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal


class ImageListModel(QObject):
    """The images of the session and which one is current."""

    images_changed = Signal()
    current_changed = Signal(int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._images: list[Path] = []
        self._current = -1

    @property
    def images(self) -> list[Path]:
        return list(self._images)

    @property
    def current_index(self) -> int:
        return self._current

    @property
    def current(self) -> Path | None:
        return self._images[self._current] if 0 <= self._current < len(self._images) else None

    def set_images(self, images: list[Path]) -> None:
        self._images = list(images)
        self.images_changed.emit()
        self.set_current(0 if self._images else -1)

    def add_images(self, images: list[Path]) -> None:
        new = [p for p in images if p not in self._images]
        if not new:
            return
        first_new = len(self._images)
        self._images.extend(new)
        self.images_changed.emit()
        self.set_current(first_new)

    def set_current(self, index: int) -> None:
        if index == self._current:
            return
        self._current = index
        self.current_changed.emit(index)
