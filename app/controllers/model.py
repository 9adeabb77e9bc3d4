"""Loading a model (``model.pt`` from the wizard or ``acseg-core train``) into the session.

A cluster→class mapping belongs to the model it was made for: loading another model
keeps the classes (names, colours) but unassigns every cluster, unless the mapping
comes with it (a project's, the sample's). With nothing mapped, the overlay shows
the clusters (a Classes view of an unnamed model would show nothing). The project
records the model (and forgets a model learnt from the previous one).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from acseg_core.errors import AcsegError
from acseg_core.model.checkpoint import LoadedModel, load_model
from app.models import ClassesModel, DocumentModel, OverlayModel, SessionModel


class ModelController(QObject):
    loaded = Signal(object)  # Path
    failed = Signal(str, object)  # title, exception

    def __init__(
        self,
        session: SessionModel,
        classes: ClassesModel,
        overlay: OverlayModel,
        document: DocumentModel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.session, self.classes, self.overlay = session, classes, overlay
        self.document = document
        self.last_error: str | None = None

    def read(self, path: Path, device: str = "auto") -> LoadedModel | None:
        """The model file, or None with ``last_error`` set (one line)."""
        self.last_error = None
        try:
            return load_model(path, device=device)
        except AcsegError as exc:
            self.last_error = str(exc)
        except (RuntimeError, OSError, ValueError) as exc:  # a damaged file
            self.last_error = f"{path}: {exc}"
        return None

    def load(
        self, path: Path, device: str = "auto", report: bool = True, keep_mapping: bool = False
    ) -> bool:
        """Load ``path`` and make it the project's model; on failure keep the current
        model, set ``last_error`` and (with ``report``) emit ``failed`` for a dialog."""
        loaded = self.read(path, device)
        if loaded is None:
            if report:
                self.failed.emit("Cannot load model", AcsegError(self.last_error or ""))
            return False
        project = self.document.project
        previous = self.session.loaded
        same_model = previous is not None and previous.digest == loaded.digest
        class_map = project.class_map
        if not (keep_mapping or same_model):
            class_map = class_map.with_clusters(0)  # unassign: another model's clusters
        project.set_class_map(class_map)
        project.set_model(Path(path), loaded.config)  # K, normalisation; a learnt one goes
        self.show(loaded, Path(path))
        self.document.changed()
        return True

    def show(self, loaded: LoadedModel, path: Path) -> None:
        """Make ``loaded`` the session's model (its clusters, the project's mapping)."""
        self.classes.show_learnt(None)
        self.classes.set_clusters(int(loaded.config.clusters))
        self.classes.changed.emit()
        class_map = self.classes.class_map
        if all(class_map.class_of_cluster(c) is None for c in range(class_map.clusters)):
            self.overlay.set_mode(OverlayModel.CLUSTERS)
        self.session.set_model(loaded, path)
        self.loaded.emit(path)

    def load_quietly(self, path: Path, problems: list[str]) -> LoadedModel | None:
        """Read a project's model without a dialog and show it with the project's mapping;
        a failure's message is appended to ``problems``."""
        loaded = self.read(path)
        if loaded is None:
            problems.append(self.last_error or f"{path}: cannot load model")
            return None
        self.show(loaded, path)
        return loaded
