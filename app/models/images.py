"""The project's images (a view over the core project) and which one is current."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from app.models.document import DocumentModel


class ImageListModel(QObject):
    """The images of the open project, in order, and the current one (view state)."""

    images_changed = Signal()
    current_changed = Signal(int)

    def __init__(self, document: DocumentModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self._current = -1
        document.replaced.connect(self._reload)

    @property
    def images(self) -> list[Path]:
        return self.document.project.image_paths

    @property
    def current_index(self) -> int:
        return self._current

    @property
    def current(self) -> Path | None:
        images = self.images
        return images[self._current] if 0 <= self._current < len(images) else None

    def set_images(self, images: list[Path]) -> None:
        self.document.project.set_images(images)
        self._announce(0 if images else -1)

    def add_images(self, images: list[Path]) -> None:
        known = set(self.images)
        new = [p for p in images if p not in known]
        if not new:
            return
        first_new = len(known)
        self.document.project.add_images(new)
        self._current = -1
        self.images_changed.emit()
        self.document.changed()
        self.set_current(first_new)

    def remove(self, paths: list[Path]) -> None:
        """Drop images; the image shown becomes the one after them."""
        images = self.images
        gone = set(paths) & set(images)
        if not gone:
            return
        current = self.current
        keep = [p for p in images if p not in gone]
        if current is not None and current not in gone:
            following = keep.index(current)
        else:
            before = images.index(current) if current is not None else 0
            following = sum(1 for p in images[:before] if p not in gone)
        for path in gone:
            self.document.project.remove_image(path)
        self._announce(min(following, len(keep) - 1) if keep else -1)

    def step(self, delta: int) -> None:
        """Next/previous image (clamped)."""
        images = self.images
        if images:
            self.set_current(min(max(0, self._current + delta), len(images) - 1))

    def relinked(self, index: int) -> None:
        """Images were relinked in the project: same places in the list, new paths."""
        self.images_changed.emit()
        if index == self._current:
            self.current_changed.emit(index)

    def set_current(self, index: int) -> None:
        if index == self._current:
            return
        self._current = index
        self.current_changed.emit(index)

    def _announce(self, current: int) -> None:
        self._current = -1
        self.images_changed.emit()
        self.document.changed()
        self.set_current(current)

    def _reload(self) -> None:
        """Another project: always announced, also when both have no image (what showed
        the old project's current image must clear)."""
        self._current = -1
        self.images_changed.emit()
        if self.images:
            self.set_current(0)
        else:
            self.current_changed.emit(-1)
