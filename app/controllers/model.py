"""Loading a model (``model.pt`` from the wizard or ``acseg-core train``) into the session.

A cluster→class mapping belongs to the model it was made for: loading another model
keeps the classes (names, colours) but unassigns every cluster, unless the mapping
comes with it (a project's, the sample's). With nothing mapped, the overlay shows
the clusters (a Classes view of an unnamed model would show nothing).
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject, Signal

from acseg_core.errors import AcsegError
from app.models import ClassesModel, OverlayModel, SessionModel


class ModelController(QObject):
    loaded = Signal(object)  # Path
    failed = Signal(str, str)

    def __init__(
        self,
        session: SessionModel,
        classes: ClassesModel,
        overlay: OverlayModel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.session, self.classes, self.overlay = session, classes, overlay
        self.last_error: str | None = None

    def load(
        self, path: Path, device: str = "auto", report: bool = True, keep_mapping: bool = False
    ) -> bool:
        """Load ``path``; on failure keep the current model, set ``last_error`` and (with
        ``report``) emit ``failed`` for a dialog."""
        from acseg_core.model.checkpoint import load_model  # torch loads here, not at start

        self.last_error = None
        try:
            loaded = load_model(path, device=device)
        except AcsegError as exc:
            self.last_error = str(exc)
        except (RuntimeError, OSError, ValueError) as exc:  # a damaged file
            self.last_error = f"{path}: {exc}"
        if self.last_error is not None:
            if report:
                self.failed.emit("Cannot load model", self.last_error)
            return False
        previous = self.session.loaded
        same_model = previous is not None and previous.digest == loaded.digest
        class_map = self.classes.class_map
        if not (keep_mapping or same_model):
            class_map = class_map.with_clusters(0)  # unassign: another model's clusters
        class_map = class_map.with_clusters(int(loaded.config.clusters))
        self.classes.set_class_map(class_map)
        if all(class_map.class_of_cluster(c) is None for c in range(class_map.clusters)):
            self.overlay.set_mode(OverlayModel.CLUSTERS)
        self.session.set_model(loaded, Path(path))
        self.loaded.emit(Path(path))
        return True

    def load_quietly(self, path: Path, problems: list[str]) -> bool:
        """Load with the mapping that comes with it, without a dialog; a failure's
        message is appended to ``problems``."""
        ok = self.load(path, report=False, keep_mapping=True)
        if not ok and self.last_error:
            problems.append(self.last_error)
        return ok
