"""Project commands: New/Open/Save/Save As, recent projects, autosave, relinking.

The core's :class:`~acseg_core.labelling.project.Project` is the file (and holds the
hand edits); :class:`~app.controllers.project_sync.ProjectSync` moves state between it
and the models. Saving syncs, then saves atomically; a failed save leaves the document
dirty and says why. Opening pushes the project into the models.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from acseg_core.errors import AcsegError
from acseg_core.inference.readout import MODEL_DEFAULT
from acseg_core.labelling.project import SUFFIX, Project
from app.controllers.model import ModelController
from app.controllers.project_sync import ProjectSync
from app.dialogs import ask_save_discard_cancel, show_error
from app.models import ClassesModel, DocumentModel, ImageListModel, SessionModel

RECENT_KEY = "recent/projects"
MAX_RECENT = 8
AUTOSAVE_MS = 120_000
FILTER = f"acseg projects (*{SUFFIX});;All files (*)"
IMAGE_FILTER = "Images (*.tif *.tiff *.png *.jpg *.jpeg);;All files (*)"


class ProjectController(QObject):
    recent_changed = Signal()
    about_to_save = Signal(object)  # Path: the file about to be written
    saved = Signal(object)  # Path
    save_failed = Signal(str)
    cleared = Signal()  # New project / Open: the previous project's state is gone
    message = Signal(str, int)  # status-bar text, milliseconds

    def __init__(
        self,
        sync: ProjectSync,
        images: ImageListModel,
        session: SessionModel,
        classes: ClassesModel,
        models: ModelController,
        document: DocumentModel,
        settings: QSettings,
        dialog_parent: Callable[[], QWidget | None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.sync, self.images, self.session, self.classes = sync, images, session, classes
        self.models, self.document, self.settings = models, document, settings
        self.dialog_parent = dialog_parent
        self.doc = Project()
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(AUTOSAVE_MS)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()

    # -- commands ----------------------------------------------------------------------
    def new(self) -> None:
        if self.confirm_discard():
            self.reset()

    def reset(self) -> None:
        """An empty, untitled project: no images, no model, no classes."""
        self.doc = Project()
        self.session.set_model(None, None)
        self.session.set_readout(MODEL_DEFAULT)
        self.classes.set_class_map(self.doc.class_map)
        self.images.set_images([])
        self.cleared.emit()
        self.document.set_path(None)
        self.document.mark_clean()

    def ask_open(self) -> None:
        if not self.confirm_discard():
            return
        path, _ = QFileDialog.getOpenFileName(self.dialog_parent(), "Open project", "", FILTER)
        if path:
            self.open_reporting(Path(path))

    def open_reporting(self, path: Path) -> bool:
        try:
            self.open(path)
        except AcsegError as exc:
            show_error(self.dialog_parent(), "Cannot open project", str(exc))
            self.forget_recent(path)
            return False
        return True

    def open(self, path: Path) -> list[str]:
        """Load ``path`` into the app; raises AcsegError (nothing changes then). Returns
        the problems found (also shown in a dialog, except ``quiet`` front-ends)."""
        doc = Project.load(path)
        self.doc = doc
        self.cleared.emit()
        problems = list(doc.warnings)
        self.session.set_readout(MODEL_DEFAULT)  # the project's own, if it has one, below
        if doc.model is None or not self.models.load_quietly(doc.model, problems):
            self.session.set_model(None, None)
        self.classes.set_class_map(doc.class_map)
        self.images.set_images([e.path for e in doc.images])
        self.sync.apply_display(doc.display)
        self.document.set_path(doc.path)
        self.document.mark_clean()
        self.add_recent(doc.path)
        for entry in doc.images:  # a damaged edits file is said now, not met later
            if entry.edits_file is not None:
                try:
                    doc.get_edits(entry)
                except AcsegError as exc:
                    problems.append(f"hand edits of {entry.path.name} cannot be used: {exc}")
        missing = doc.missing_images()
        if missing:
            problems.append(
                f"{len(missing)} image(s) not found (e.g. {missing[0].path}); "
                "select one in the list to relink it"
            )
        if problems:
            show_error(self.dialog_parent(), "Project opened with problems", "\n".join(problems))
        return problems

    def save(self) -> bool:
        if self.doc.path is None:
            return self.save_as()
        return self.save_to(self.doc.path)

    def save_as(self, path: Path | None = None) -> bool:
        if path is None:
            start = str(self.doc.path or Path.home() / f"untitled{SUFFIX}")
            chosen, _ = QFileDialog.getSaveFileName(
                self.dialog_parent(), "Save project as", start, FILTER
            )
            if not chosen:
                return False
            path = Path(chosen)
            if not path.suffix:
                path = path.with_suffix(SUFFIX)
        return self.save_to(path)

    def save_to(self, path: Path, quiet: bool = False) -> bool:
        """Save; on failure keep the document dirty and say why (a dialog unless ``quiet``)."""
        try:
            self.sync.push(self.doc)
            self.about_to_save.emit(path.resolve())
            saved = self.doc.save(path)
        except AcsegError as exc:
            message = f"Saving failed, your changes are kept: {exc}"
            self.message.emit(message, 10000)
            self.save_failed.emit(str(exc))
            if not quiet:
                show_error(self.dialog_parent(), "Save failed", message)
            self.document.mark_dirty()
            return False
        self.document.set_path(saved)
        self.document.mark_clean()
        self.add_recent(saved)
        self.message.emit(f"Saved {saved}", 5000)
        self.saved.emit(saved)
        return True

    def autosave(self) -> bool:
        """Save in place when there are changes and a file to save to (silently)."""
        if self.document.dirty and self.doc.path is not None:
            return self.save_to(self.doc.path, quiet=True)
        return False

    def confirm_discard(self) -> bool:
        """True when it is fine to drop the current state (saved, or the user agrees)."""
        if not self.document.dirty:
            return True
        answer = ask_save_discard_cancel(
            self.dialog_parent(), "Unsaved changes", "The project has unsaved changes. Save them?"
        )
        if answer == "save":
            return self.save()
        return answer == "discard"

    # -- what other controllers read ------------------------------------------------------
    def project(self) -> Project:
        return self.doc

    def edits_for(self, image: Path) -> Any:
        """The hand-edit layer of ``image`` (None when it has none or is not in the project)."""
        try:
            return self.doc.get_edits(image)
        except AcsegError:
            return None

    # -- missing images -------------------------------------------------------------------
    def offer_relink(self, missing: Path) -> None:
        chosen, _ = QFileDialog.getOpenFileName(
            self.dialog_parent(), f"Where is {missing.name}?", str(missing.parent), IMAGE_FILTER
        )
        if chosen:
            self.relink(missing, Path(chosen))

    def relink(self, missing: Path, new: Path) -> int:
        """Point ``missing`` at ``new``, and other missing images at the same folder."""
        self.sync.push(self.doc)
        try:
            self.doc.relink(missing, new)
            self.doc.relink_folder(new.parent)
        except AcsegError as exc:
            show_error(self.dialog_parent(), "Cannot relink", str(exc))
            return 0
        moved = 0
        for old, fresh in zip(self.images.images, [e.path for e in self.doc.images], strict=False):
            if old != fresh:
                self.images.replace(old, fresh)
                moved += 1
        self.document.mark_dirty()
        return moved

    # -- recent projects ------------------------------------------------------------------
    def recent(self) -> list[Path]:
        value = self.settings.value(RECENT_KEY) or []
        if isinstance(value, str):
            value = [value]
        return [Path(v) for v in value]

    def add_recent(self, path: Path | None) -> None:
        if path is None:
            return
        items = [str(path)] + [str(p) for p in self.recent() if p != path]
        self.settings.setValue(RECENT_KEY, items[:MAX_RECENT])
        self.recent_changed.emit()

    def forget_recent(self, path: Path) -> None:
        self.settings.setValue(RECENT_KEY, [str(p) for p in self.recent() if p != path])
        self.recent_changed.emit()

    def fill_recent_menu(self, menu: QMenu) -> None:
        menu.clear()
        recent = self.recent()
        for path in recent:
            action = menu.addAction(path.name)
            action.setToolTip(str(path))
            action.triggered.connect(lambda _c=False, p=path: self._open_recent(p))
        menu.setEnabled(bool(recent))

    def _open_recent(self, path: Path) -> None:
        if self.confirm_discard():
            self.open_reporting(path)
