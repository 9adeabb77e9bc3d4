"""Loading a model (``model.pt`` from the wizard or ``acseg-core train``) into the session.

A cluster→class mapping belongs to the model it was made for. Loading another model
keeps the classes (names, colours); when clusters are named, or a model learnt from
the edits would go, it asks first, then carries each name over to the new clusters
that match the old ones on the images both models labelled
(:func:`~acseg_core.labelling.cluster_match.carry_names`, as soon as the new model's
map of such an image arrives); the others are left for the user to name. With
nothing mapped, the overlay shows the clusters (a Classes view of an unnamed model
would show nothing). A model learnt from strokes (``acseg-core learn``) shows its own
classes and colours (:func:`~acseg_core.labelling.teaching.classes_for_learnt`). The
project records the model (and forgets a model learnt from the previous one).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QWidget

from acseg_core.errors import AcsegError
from acseg_core.labelling.classes import ClassMap
from acseg_core.labelling.cluster_match import carry_names
from acseg_core.labelling.teaching import classes_for_learnt, learnt_class_ids
from acseg_core.model.checkpoint import LoadedModel, load_model
from app.dialogs import ask_yes_no
from app.models import ClassesModel, DocumentModel, OverlayModel, SessionModel


@dataclass(frozen=True)
class CarryOver:
    """The old model's key and cluster → class map, until the new model's map of an
    image the old one labelled arrives."""

    old_key: str
    class_map: ClassMap


class ModelController(QObject):
    loaded = Signal(object)  # Path
    failed = Signal(str, object)  # title, exception
    message = Signal(str)  # status line (names carried over, a model kept)

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
        self.dialog_parent: Callable[[], QWidget | None] = lambda: None
        self.carry: CarryOver | None = None
        session.prediction_ready.connect(self._prediction_ready)

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
        model, set ``last_error`` and (with ``report``) emit ``failed`` for a dialog.
        False too when the user keeps the current model rather than lose its names."""
        loaded = self.read(path, device)
        if loaded is None:
            if report:
                self.failed.emit("Cannot load model", AcsegError(self.last_error or ""))
            return False
        project = self.document.project
        previous = self.session.loaded
        same_model = previous is not None and previous.digest == loaded.digest
        class_map = project.class_map
        carry = None
        if not (keep_mapping or same_model):
            named = any(a for a in class_map.assignment)
            if (named or project.learnt is not None) and not self._replace_ok(
                Path(path), named, project.learnt is not None
            ):
                self.message.emit(f"Kept the current model; {path} was not loaded "
                                  "(Model → Load model… loads it later)")  # fmt: skip
                return False
            if named and previous is not None and self.session.key is not None:
                carry = CarryOver(self.session.key, class_map)
            class_map = class_map.with_clusters(0)  # unassign: another model's clusters
        project.set_class_map(class_map)
        project.set_model(Path(path), loaded.config)  # K, normalisation; a learnt one goes
        self.carry = carry if not loaded.config.classes else None
        self.show(loaded, Path(path))
        self.document.changed()
        return True

    def _replace_ok(self, path: Path, named: bool, learnt: bool) -> bool:
        lines = [f"Load {path.name} in place of the current model?"]
        if named:
            lines.append(
                "Its clusters are numbered afresh: each class name is carried over to the "
                "new clusters that match the old ones on the images both models label; the "
                "others are left for you to name."
            )
        if learnt:
            lines.append("The model learnt from your edits is dropped (Learn again to refit).")
        lines.append("No keeps the current model.")
        return ask_yes_no(self.dialog_parent(), "Replace the model", "\n\n".join(lines))

    def show(self, loaded: LoadedModel, path: Path) -> None:
        """Make ``loaded`` the session's model (its clusters, the project's mapping; a
        learnt model's own classes)."""
        self.classes.show_learnt(None)
        if loaded.config.classes:
            base, ids = classes_for_learnt(self.classes.class_map, loaded.config,
                                           learnt_class_ids(loaded))  # fmt: skip
            self.classes.set_class_map(base)
            self.classes.show_learnt(ids)
            self.overlay.set_mode(OverlayModel.CLASSES)
        else:
            self.classes.set_clusters(int(loaded.config.clusters))
            self.classes.changed.emit()
            class_map = self.classes.class_map
            if all(class_map.class_of_cluster(c) is None for c in range(class_map.clusters)):
                self.overlay.set_mode(OverlayModel.CLUSTERS)
        self.session.set_model(loaded, path)
        self.loaded.emit(path)

    def _prediction_ready(self, image: Path) -> None:
        """The new model's map of ``image``: with the old model's map of it, carry the
        names over (once, on the first image both labelled)."""
        carry = self.carry
        new = self.session.prediction(image)
        if carry is None or new is None or self.session.loaded is None:
            return
        old = self.session.prediction_for(image, carry.old_key)
        if old is None:
            return
        self.carry = None
        carried, matches = carry_names(carry.class_map, [(old, new)], self.session.clusters)
        self.classes.set_class_map(carried)
        if any(a for a in carried.assignment):
            self.overlay.set_mode(OverlayModel.CLASSES)
        self.message.emit(
            f"Names carried over to {len(matches)} of {self.session.clusters} clusters "
            f"(matched on {image.name}); name the others in the Classes panel"
        )

    def load_quietly(self, path: Path, problems: list[str]) -> LoadedModel | None:
        """Read a project's model without a dialog and show it with the project's mapping;
        a failure's message is appended to ``problems``."""
        self.carry = None
        loaded = self.read(path)
        if loaded is None:
            problems.append(self.last_error or f"{path}: cannot load model")
            return None
        self.show(loaded, path)
        return loaded
