"""Project commands: New/Open/Save/Save As, recent projects, autosave, relinking.

The core's :class:`~acseg_core.labelling.project.Project` (held by the
:class:`DocumentModel`) is the file and the one copy of the state: saving is the
core's atomic save, nothing to copy first. A failed save leaves the document dirty
and says why. Opening swaps the project in, then loads its model (and the model
learnt from its edits) and its view settings.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from PySide6.QtCore import QObject, QSettings, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMenu, QWidget

from acseg_core.errors import AcsegError
from acseg_core.labelling.project import SUFFIX, Project
from acseg_core.model.readouts import MODEL_DEFAULT
from app.controllers.learning import LearnController
from app.controllers.model import ModelController
from app.dialogs import ask_save_discard_cancel, show_error
from app.file_dialogs import FileDialogs
from app.models import DocumentModel, ImageListModel, SessionModel, ViewState

RECENT_KEY = "recent/projects"
MAX_RECENT = 8
AUTOSAVE_MS = 120_000
FILTER = f"acseg projects (*{SUFFIX});;All files (*)"
IMAGE_FILTER = "Images (*.tif *.tiff *.png *.jpg *.jpeg);;All files (*)"


class ProjectController(QObject):
    recent_changed = Signal()
    saved = Signal(object)  # Path
    save_failed = Signal(str)
    cleared = Signal()  # New project / Open: the previous project's state is gone
    message = Signal(str, int)  # status-bar text, milliseconds

    def __init__(
        self,
        document: DocumentModel,
        images: ImageListModel,
        session: SessionModel,
        models: ModelController,
        learning: LearnController,
        view: ViewState,
        settings: QSettings,
        dialog_parent: Callable[[], QWidget | None],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.document, self.images, self.session = document, images, session
        self.models, self.learning, self.view, self.settings = models, learning, view, settings
        self.dialog_parent = dialog_parent
        self.dialogs = FileDialogs(settings)  # open where the user last was
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(AUTOSAVE_MS)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()

    @property
    def doc(self) -> Project:
        """The open project."""
        return self.document.project

    # -- commands ----------------------------------------------------------------------
    def new(self) -> None:
        if self.confirm_discard():
            self.reset()

    def reset(self) -> None:
        """An empty, untitled project: no images, no model, no classes."""
        self.session.set_model(None, None)
        self.session.set_readout(MODEL_DEFAULT)
        self.document.replace(Project())
        self.cleared.emit()

    def ask_open(self) -> None:
        if not self.confirm_discard():
            return
        path = self.dialogs.open_file(self.dialog_parent(), "Open project", FILTER)
        if path is not None:
            self.open_reporting(path)

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
        the problems found (also shown in a dialog)."""
        project = Project.load(path)
        display = project.display  # before the views' first write-through
        self.session.set_model(None, None)
        self.session.set_readout(MODEL_DEFAULT)  # the project's own, if it has one, below
        self.cleared.emit()  # before the swap: the new project's first image is shown by it
        self.document.replace(project)
        problems = project.warnings
        base = self.models.load_quietly(project.model, problems) if project.model else None
        if base is not None and isinstance(project.learnt, Path):
            self.learning.restore(project.learnt, problems)
        self.view.apply(display)
        self.document.changed()
        self.add_recent(project.path)
        for entry in project.images:  # a damaged edits file is said now, not met later
            if entry.edits_file is not None:
                try:
                    project.get_edits(entry)
                except AcsegError as exc:
                    problems.append(f"hand edits of {entry.path.name} cannot be used: {exc}")
        missing = project.missing_images()
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
            start = self.doc.path or Path(f"{self.suggested_name()}{SUFFIX}")
            chosen = self.dialogs.save_file(self.dialog_parent(), "Save project as", start,
                                            FILTER)  # fmt: skip
            if chosen is None:
                return False
            path = chosen
            if not path.suffix:
                path = path.with_suffix(SUFFIX)
        return self.save_to(path)

    def suggested_name(self) -> str:
        """A name for an untitled project: its images' folder ("untitled" without)."""
        images = self.doc.image_paths
        return images[0].parent.name if images and images[0].parent.name else "untitled"

    def save_to(self, path: Path, quiet: bool = False) -> bool:
        """Save; on failure keep the document dirty and say why (a dialog unless ``quiet``)."""
        try:
            saved = self.doc.save(path)
        except AcsegError as exc:
            message = f"Saving failed, your changes are kept: {exc}"
            self.message.emit(message, 10000)
            self.save_failed.emit(str(exc))
            if not quiet:
                show_error(self.dialog_parent(), "Save failed", message)
            self.document.mark_dirty()
            return False
        self.document.changed()
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

    # -- missing images -------------------------------------------------------------------
    def offer_relink(self, missing: Path) -> None:
        chosen, _ = QFileDialog.getOpenFileName(
            self.dialog_parent(), f"Where is {missing.name}?",
            self.dialogs.start(missing.parent), IMAGE_FILTER,
        )  # fmt: skip
        if chosen:
            self.dialogs.remember(chosen)
            self.relink(missing, Path(chosen))

    def relink(self, missing: Path, new: Path) -> int:
        """Point ``missing`` at ``new``, and other missing images at the same folder."""
        before = self.doc.image_paths
        try:
            self.doc.relink(missing, new)
            self.doc.relink_folder(new.parent)
        except AcsegError as exc:
            show_error(self.dialog_parent(), "Cannot relink", str(exc))
            return 0
        moved = [i for i, (old, now) in enumerate(zip(before, self.doc.image_paths,
                                                      strict=True)) if old != now]  # fmt: skip
        for index in moved:
            self.images.relinked(index)
        self.document.changed()
        return len(moved)

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
