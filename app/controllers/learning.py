"""Learn from edits: the hand edits of every image teach a read-out, in the worker.

The unsupervised model the user loaded stays the *base*: every fit starts from it
(:mod:`acseg_core.learning.fit`), so undoing a stroke and learning again gives the
earlier model exactly. What a learn is taught comes from the core
(:mod:`acseg_core.labelling.teaching`: strokes from the edits, the base's named
clusters for pseudo-samples). The learnt model is shown and kept by the project (it
is saved with it and comes back on reopen); its maps hold class positions, which the
classes model shows as the project's classes. Other images' cached maps belong to
the old model's key and are never shown again. In live mode a fit starts a moment
after the last stroke, in the worker, never blocking the canvas.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from acseg_core.errors import AcsegError
from acseg_core.labelling.teaching import (
    Lesson,
    check_lesson,
    edited_strokes,
    learnt_class_ids,
)
from acseg_core.learning.fit import stroked_pixels
from acseg_core.learning.job import learn
from acseg_core.learning.samples import Samples
from acseg_core.model.checkpoint import LoadedModel, load_model
from app.models import ClassesModel, DocumentModel, OverlayModel, SessionModel
from app.workers import JobRunner, JobWorker

LIVE_DELAY_MS = 1500  # after the last stroke, before a live refit starts


class LearnController(QObject):
    running_changed = Signal(bool)
    message = Signal(str)  # the status line: what was learnt from how many pixels
    failed = Signal(str, object)  # title, exception

    def __init__(
        self,
        runner: JobRunner,
        session: SessionModel,
        classes: ClassesModel,
        overlay: OverlayModel,
        document: DocumentModel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.runner, self.session, self.classes = runner, session, classes
        self.overlay, self.document = overlay, document
        self.base: LoadedModel | None = None  # the unsupervised model every fit starts from
        self.base_path: Path | None = None
        self.learnt: LoadedModel | None = None  # the model this controller put in the session
        self.cache: dict[tuple[str, str], Samples] = {}  # gathered samples per image
        self.worker: JobWorker | None = None
        self.live = False
        self._again = False  # an edit arrived during a fit: fit once more after it
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(LIVE_DELAY_MS)
        self._timer.timeout.connect(self.learn)
        session.model_changed.connect(self._model_changed)

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.running

    def set_live(self, live: bool) -> None:
        self.live = live
        if live:
            self._timer.start()

    def edited(self, *_args: object) -> None:
        """A stroke ended: in live mode, refit shortly (once, however many strokes)."""
        if self.live:
            self._timer.start()

    def _model_changed(self) -> None:
        loaded = self.session.loaded
        if loaded is not None and loaded is self.learnt:
            return
        self.base, self.base_path, self.learnt = None, None, None  # another model: start over
        self.cache.clear()

    def learn(self) -> bool:
        """Fit on the edits of every image (in the worker); False when nothing to do."""
        if self.running:
            self._again = True
            return False
        if self.session.loaded is None:
            self.message.emit("Learning from edits needs a model: load or train one first")
            return False
        if self.base is None:
            self.base, self.base_path = self.session.loaded, self.session.model_path
        project = self.document.project
        lesson = Lesson.of(project.class_map)
        try:
            layers = [(entry.path, project.get_edits(entry)) for entry in project.images]
            strokes = edited_strokes(layers, project.class_map)
            check_lesson(lesson, strokes)
        except AcsegError as exc:
            self.message.emit(str(exc))
            return False
        base, cache, features = self.base, self.cache, project.features_dir()

        def job(cancel: Any) -> Any:
            return learn(base, strokes, lesson.names, lesson.colours,
                         cluster_classes=lesson.cluster_positions, class_ids=lesson.class_ids,
                         cancel=cancel, cache=cache, feature_cache=features)  # fmt: skip

        self.worker = self.runner.start(job, "learn")
        self.worker.succeeded.connect(self._learnt)
        self.worker.failed.connect(self.failed)
        self.worker.ended.connect(self._ended)
        self.running_changed.emit(True)
        self.message.emit(f"Learning from the edits of {len(strokes)} image(s)…")
        return True

    def _learnt(self, fitted: LoadedModel) -> None:
        self.document.project.set_learnt(fitted)
        self.show(fitted)
        self.document.changed()
        counts = ", ".join(f"{name} {count} px" for name, count in stroked_pixels(fitted).items())
        self.message.emit(f"Learnt from strokes: {counts}")

    def show(self, fitted: LoadedModel) -> None:
        """Show a learnt model (its classes named by the project's class ids)."""
        self.learnt = fitted
        self.classes.show_learnt(learnt_class_ids(fitted) or ())
        self.overlay.set_mode(OverlayModel.CLASSES)
        self.session.set_model(fitted, self.base_path)

    def restore(self, path: Path, problems: list[str]) -> bool:
        """An opened project's learnt model over the base model the session shows."""
        base = self.session.loaded
        try:
            fitted = load_model(path, device="cpu")
        except AcsegError as exc:
            problems.append(f"{exc}; the unsupervised model is used")
            return False
        made_from = (fitted.meta.get("strokes") or {}).get("base_digest")
        if base is None or made_from != base.digest or learnt_class_ids(fitted) is None:
            problems.append(f"{path.name} was learnt from another model; it is not used")
            return False
        self.base, self.base_path = base, self.session.model_path
        self.show(fitted)
        return True

    def _ended(self) -> None:
        self.running_changed.emit(False)
        if self._again:
            self._again = False
            self.learn()

    def forget(self) -> None:
        """Back to the unsupervised model and its cluster → class map."""
        if self.base is None or self.learnt is None:
            return
        base, path = self.base, self.base_path
        self.document.project.set_learnt(None)
        self.learnt = None
        self.classes.show_learnt(None)
        self.session.set_model(base, path)  # resets this controller's state
        self.document.changed()
        self.message.emit("Back to the unsupervised model")
