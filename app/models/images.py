"""The images of the session and which one is current."""

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
        self._current = -1
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

    def remove(self, paths: list[Path]) -> None:
        """Drop images from the list; the image shown becomes the one after them."""
        gone = set(paths)
        if not gone & set(self._images):
            return
        current = self.current
        keep = [p for p in self._images if p not in gone]
        if current is not None and current not in gone:
            following = keep.index(current)
        else:
            before = self._images.index(current) if current is not None else 0
            following = sum(1 for p in self._images[:before] if p not in gone)
        self._images = keep
        self._current = -1
        self.images_changed.emit()
        self.set_current(min(following, len(keep) - 1) if keep else -1)

    def step(self, delta: int) -> None:
        """Next/previous image (clamped)."""
        if self._images:
            self.set_current(min(max(0, self._current + delta), len(self._images) - 1))

    def replace(self, old: Path, new: Path) -> None:
        """A relinked image: same place in the list, new path."""
        index = self._images.index(old)
        self._images[index] = new
        self.images_changed.emit()
        if index == self._current:
            self.current_changed.emit(index)

    def set_current(self, index: int) -> None:
        if index == self._current:
            return
        self._current = index
        self.current_changed.emit(index)
