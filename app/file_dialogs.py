"""File dialogs that open where the user last was: one remembered folder (QSettings),
shared by every Open/Save/Import/Browse of the app, so picking a file next to the last
one never starts from the home folder again. Before any dialog was used, a dialog
opens at its ``fallback`` (the folder of the image on screen)."""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QSettings
from PySide6.QtWidgets import QFileDialog, QWidget

LAST_DIR_KEY = "dialogs/last_dir"


class FileDialogs:
    def __init__(self, settings: QSettings) -> None:
        self.settings = settings

    @property
    def last_dir(self) -> Path | None:
        value = self.settings.value(LAST_DIR_KEY)
        if value and Path(str(value)).is_dir():
            return Path(str(value))
        return None

    def start(self, fallback: str | Path | None = None) -> str:
        """Where a dialog opens: the last folder used, else ``fallback``."""
        last = self.last_dir
        if last is not None:
            return str(last)
        return str(fallback) if fallback else ""

    def start_file(self, name: str | Path) -> str:
        """A file called ``name`` in the last folder used (Save As suggestions)."""
        name = Path(name)
        if name.is_absolute():
            return str(name)
        return str(Path(self.start(Path.home())) / name)

    def remember(self, path: str | Path) -> None:
        path = Path(path)
        folder = path if path.is_dir() else path.parent
        self.settings.setValue(LAST_DIR_KEY, str(folder))

    def open_files(
        self, parent: QWidget | None, title: str, filters: str, fallback: Path | None = None
    ) -> list[Path]:
        files, _ = QFileDialog.getOpenFileNames(parent, title, self.start(fallback), filters)
        if files:
            self.remember(files[0])
        return [Path(f) for f in files]

    def open_file(
        self, parent: QWidget | None, title: str, filters: str, fallback: Path | None = None
    ) -> Path | None:
        path, _ = QFileDialog.getOpenFileName(parent, title, self.start(fallback), filters)
        if path:
            self.remember(path)
        return Path(path) if path else None

    def folder(
        self, parent: QWidget | None, title: str, fallback: Path | None = None
    ) -> Path | None:
        chosen = QFileDialog.getExistingDirectory(parent, title, self.start(fallback))
        if chosen:
            self.remember(chosen)
        return Path(chosen) if chosen else None

    def save_file(
        self, parent: QWidget | None, title: str, suggested: str | Path, filters: str
    ) -> Path | None:
        path, _ = QFileDialog.getSaveFileName(parent, title, self.start_file(suggested), filters)
        if path:
            self.remember(path)
        return Path(path) if path else None
