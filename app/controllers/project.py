"""Project New/Open/Save/Save As, recent projects, autosave, relinking missing images.

The core's :class:`~acseg_core.labelling.project.Project` is the file format (and holds hand
edits); the app's models hold what is on screen. Saving copies the models into
the project (``sync``), then saves it atomically; a failed save leaves the
document dirty and says why. Opening pushes the project into the models.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, QSettings, QTimer, Signal
from PySide6.QtWidgets import QFileDialog, QMenu

from acseg_core.errors import AcsegError
from acseg_core.labelling.project import SUFFIX, Project
from app.dialogs import ask_save_discard_cancel, show_error

if TYPE_CHECKING:
    from app.main_window import MainWindow

RECENT_KEY = "recent/projects"
MAX_RECENT = 8
AUTOSAVE_MS = 120_000
FILTER = f"acseg projects (*{SUFFIX});;All files (*)"


class ProjectController(QObject):
    recent_changed = Signal()
    saved = Signal(object)  # Path
    save_failed = Signal(str)

    def __init__(self, window: MainWindow, settings: QSettings) -> None:
        super().__init__(window)
        self.window = window
        self.settings = settings
        self.doc = Project()
        self.before_save: list[Callable[[Path], None]] = []  # called with the target path
        self.autosave_timer = QTimer(self)
        self.autosave_timer.setInterval(AUTOSAVE_MS)
        self.autosave_timer.timeout.connect(self.autosave)
        self.autosave_timer.start()

    # -- state <-> project ------------------------------------------------------------
    def sync(self) -> None:
        """Copy what the app shows into the project (before saving or exporting)."""
        w = self.window
        wanted = w.images.images
        for entry in list(self.doc.images):
            if entry.path not in wanted:
                self.doc.remove_image(entry)
        self.doc.add_images(wanted)
        model_path = w.session.model_path
        if model_path != self.doc.model:
            config = w.session.loaded.config if w.session.loaded is not None else None
            self.doc.set_model(model_path, config)
        self.doc.set_class_map(w.classes.class_map)
        self.doc.set_display(self.display_settings())

    def display_settings(self) -> dict[str, Any]:
        w = self.window
        return {
            "bands": list(w.display.bands),
            "stretch": [w.display.low_percent, w.display.high_percent],
            "overlay": {
                "visible": w.overlay.visible,
                "opacity": w.overlay.opacity,
                "mode": w.overlay.mode,
                "hidden": sorted(w.overlay.hidden),
            },
            "current": w.images.current_index,
        }

    def apply_display_settings(self, settings: dict[str, Any]) -> None:
        w = self.window
        overlay = settings.get("overlay", {})
        try:
            w.overlay.set_opacity(float(overlay.get("opacity", w.overlay.opacity)))
            w.overlay.set_mode(str(overlay.get("mode", w.overlay.mode)))
            w.overlay.set_visible(bool(overlay.get("visible", True)))
            for cluster in overlay.get("hidden", []):
                w.overlay.set_cluster_visible(int(cluster), False)
            low, high = settings.get("stretch", [2.0, 98.0])
            w.display.set_percentiles(float(low), float(high))
            bands = settings.get("bands")
            if bands and len(bands) == 3:
                w.display.set_bands(tuple(int(b) for b in bands))  # type: ignore[arg-type]
            current = int(settings.get("current", 0))
            if 0 <= current < len(w.images.images):
                w.images.set_current(current)
        except (TypeError, ValueError):
            pass  # display settings are a convenience: a bad value is ignored

    # -- commands ----------------------------------------------------------------------------
    def new(self) -> None:
        if not self.confirm_discard():
            return
        w = self.window
        self.doc = Project()
        w.session.set_model(None, None)
        w.classes.set_class_map(self.doc.class_map)
        w.images.set_images([])
        w.viewer.clear()
        w.document.set_path(None)
        w.document.mark_clean()

    def ask_open(self) -> None:
        if not self.confirm_discard():
            return
        path, _ = QFileDialog.getOpenFileName(self.window, "Open project", "", FILTER)
        if path:
            self.open_reporting(Path(path))

    def open_reporting(self, path: Path) -> bool:
        try:
            self.open(path)
        except AcsegError as exc:
            show_error(self.window, "Cannot open project", str(exc))
            self.forget_recent(path)
            return False
        return True

    def open(self, path: Path) -> None:
        """Load ``path`` into the app; raises AcsegError (nothing changes then)."""
        doc = Project.load(path)
        w = self.window
        self.doc = doc
        problems = list(doc.warnings)
        if doc.model is not None:
            if not w.models.load_quietly(doc.model, problems):
                w.session.set_model(None, None)
        else:
            w.session.set_model(None, None)
        w.classes.set_class_map(doc.class_map)
        w.images.set_images([e.path for e in doc.images])
        self.apply_display_settings(doc.display)
        w.document.set_path(doc.path)
        w.document.mark_clean()
        self.add_recent(doc.path)
        missing = doc.missing_images()
        if missing:
            problems.append(
                f"{len(missing)} image(s) not found (e.g. {missing[0].path}); "
                "select one in the list to relink it"
            )
        if problems:
            show_error(w, "Project opened with problems", "\n".join(problems))

    def save(self) -> bool:
        if self.doc.path is None:
            return self.save_as()
        return self.save_to(self.doc.path)

    def save_as(self, path: Path | None = None) -> bool:
        if path is None:
            start = str(self.doc.path or Path.cwd() / f"untitled{SUFFIX}")
            chosen, _ = QFileDialog.getSaveFileName(self.window, "Save project as", start, FILTER)
            if not chosen:
                return False
            path = Path(chosen)
            if not path.suffix:
                path = path.with_suffix(SUFFIX)
        return self.save_to(path)

    def save_to(self, path: Path, quiet: bool = False) -> bool:
        """Save; on failure keep the document dirty and say why (a dialog unless ``quiet``)."""
        w = self.window
        try:
            self.sync()
            for hook in self.before_save:
                hook(path.resolve())
            saved = self.doc.save(path)
        except AcsegError as exc:
            message = f"Saving failed, your changes are kept: {exc}"
            w.statusBar().showMessage(message, 10000)
            self.save_failed.emit(str(exc))
            if not quiet:
                show_error(w, "Save failed", message)
            w.document.mark_dirty()
            return False
        w.document.set_path(saved)
        w.document.mark_clean()
        self.add_recent(saved)
        w.statusBar().showMessage(f"Saved {saved}", 5000)
        self.saved.emit(saved)
        return True

    def autosave(self) -> bool:
        """Save in place when there are changes and a file to save to (silently)."""
        if self.window.document.dirty and self.doc.path is not None:
            return self.save_to(self.doc.path, quiet=True)
        return False

    def confirm_discard(self) -> bool:
        """True when it is fine to drop the current state (saved, or the user agrees)."""
        if not self.window.document.dirty:
            return True
        answer = ask_save_discard_cancel(
            self.window, "Unsaved changes", "The project has unsaved changes. Save them?"
        )
        if answer == "save":
            return self.save()
        return answer == "discard"

    def edits_for(self, image: Path) -> Any:
        """The hand-edit layer of ``image`` (None when it has none or is not in the project)."""
        try:
            return self.doc.get_edits(image)
        except AcsegError:
            return None

    def prediction_file(self, image: Path) -> Path | None:
        """The cached cluster-map file of ``image`` made with the loaded model, if any."""
        model = self.window.session.model_path
        if model is None or self.doc.model != model:
            return None  # maps of another model (or of none) are not this model's clusters
        try:
            file = self.doc.image(image).prediction
        except AcsegError:
            return None
        return file if file is not None and file.is_file() else None

    # -- missing images -----------------------------------------------------------------------
    def offer_relink(self, missing: Path) -> None:
        w = self.window
        chosen, _ = QFileDialog.getOpenFileName(
            w,
            f"Where is {missing.name}?",
            str(missing.parent),
            "Images (*.tif *.tiff *.png *.jpg *.jpeg);;All files (*)",
        )
        if chosen:
            self.relink(missing, Path(chosen))

    def relink(self, missing: Path, new: Path) -> int:
        """Point ``missing`` at ``new``, and other missing images at the same folder."""
        w = self.window
        self.sync()
        try:
            self.doc.relink(missing, new)
            self.doc.relink_folder(new.parent)
        except AcsegError as exc:
            show_error(w, "Cannot relink", str(exc))
            return 0
        old_paths = w.images.images
        new_paths = [e.path for e in self.doc.images]
        moved = 0
        for old, fresh in zip(old_paths, new_paths, strict=False):
            if old != fresh:
                w.images.replace(old, fresh)
                moved += 1
        w.document.mark_dirty()
        return moved

    # -- recent projects ---------------------------------------------------------------------
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
        items = [str(p) for p in self.recent() if p != path]
        self.settings.setValue(RECENT_KEY, items)
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
