"""The open project: the one copy of the work (the core :class:`Project`), and whether
it has unsaved changes worth asking about.

Every other model is a view over this project: it reads the project and changes it
through its methods, then calls :meth:`DocumentModel.changed`, so the title bar, the
Save prompt and autosave follow the project itself. New/Open swap the project
(:meth:`replace`); views reload on :attr:`replaced`.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from acseg_core.labelling.project import Project


class DocumentModel(QObject):
    replaced = Signal()  # another project (New / Open): every view reloads
    dirty_changed = Signal(bool)
    path_changed = Signal(object)  # Path | None

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.project = Project()
        self._dirty = False
        self._path: Path | None = None
        self._wanted = False  # the user tried to save this one: always worth a prompt

    @property
    def path(self) -> Path | None:
        return self.project.path

    @property
    def dirty(self) -> bool:
        """Unsaved changes worth a prompt: a saved project's, or an untitled one that
        holds work (images alone can be opened again)."""
        project = self.project
        worth = project.path is not None or project.has_work or self._wanted
        return project.dirty and worth

    def replace(self, project: Project) -> None:
        """Show ``project`` instead (the old one's temporary cache goes)."""
        old, self.project = self.project, project
        self._wanted = False
        if old is not project:
            old.close()
        self.replaced.emit()
        self.changed()

    def changed(self) -> None:
        """The project changed (or was saved): announce what that changes here."""
        if self.path != self._path:
            self._path = self.path
            self.path_changed.emit(self._path)
        dirty = self.dirty
        if dirty != self._dirty:
            self._dirty = dirty
            self.dirty_changed.emit(dirty)

    def mark_dirty(self) -> None:
        """Unsaved, whatever it holds (a save the user asked for failed)."""
        self.project.mark_dirty()
        self._wanted = True
        self.changed()

    def mark_clean(self) -> None:
        """The current state is nothing the user made (a bundled sample just opened)."""
        self.project.mark_clean()
        self.changed()
