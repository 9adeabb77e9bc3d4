"""Learn from edits: the hand edits of every image teach a strokes read-out.

The unsupervised model the user loaded stays the *base*: every fit starts from it
(``acseg_core.inference.learn``), so undoing a stroke and learning again gives the
earlier model exactly. The learnt model replaces the session's model; its maps hold
class positions, so the class map becomes "position i → class i" and the overlay
shows classes. Other images' cached maps belong to the old model's key and are never
shown again ("Label all" predicts them anew). In live mode a fit starts a moment
after the last stroke, in the worker, never blocking the canvas.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from app.models import ClassesModel, ImageListModel, OverlayModel, SessionModel
from app.workers import JobRunner

LIVE_DELAY_MS = 1500  # after the last stroke, before a live refit starts


class LearnController(QObject):
    running_changed = Signal(bool)
    message = Signal(str)  # the status line: what was learnt from how many pixels
    failed = Signal(str, str)

    def __init__(
        self,
        runner: JobRunner,
        session: SessionModel,
        images: ImageListModel,
        classes: ClassesModel,
        overlay: OverlayModel,
        edits_for: Callable[[Path], Any],
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.runner, self.session, self.images = runner, session, images
        self.classes, self.overlay, self.edits_for = classes, overlay, edits_for
        self.base: Any = None  # the unsupervised model every fit starts from
        self.base_path: Path | None = None
        self.base_class_map: Any = None  # its cluster → class map, for pseudo-samples
        self.learnt: Any = None  # the model this controller put in the session
        self.cache: dict[tuple[str, str], Any] = {}  # gathered samples per image
        self.worker: Any = None
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
        self.base_class_map = None
        self.cache.clear()

    def learn(self) -> bool:
        """Fit on the edits of every image (in the worker); False when nothing to do."""
        from acseg_core.inference.learn import learn
        from acseg_core.labelling.strokes import from_edits

        if self.running:
            self._again = True
            return False
        if self.session.loaded is None:
            self.message.emit("Learning from edits needs a model: load or train one first")
            return False
        if self.base is None:
            self.base, self.base_path = self.session.loaded, self.session.model_path
            self.base_class_map = self.classes.class_map
        class_map = self.classes.class_map
        if not class_map.classes:
            self.message.emit("Add classes and paint with them first")
            return False
        strokes = {}
        for image in self.images.images:
            layer = self.edits_for(image)
            if layer is not None:
                stroke_set = from_edits(layer, class_map)
                if len(stroke_set):
                    strokes[image] = stroke_set
        if not strokes:
            self.message.emit("No hand edits with a class yet: paint a few strokes per class")
            return False
        names = [c.name for c in class_map.classes]
        colours = [c.color for c in class_map.classes]
        ids = [c.id for c in class_map.classes]
        cluster_classes = self._base_cluster_classes(ids)
        base, cache = self.base, self.cache

        def job(cancel: Any) -> Any:
            return learn(base, strokes, names, colours, cluster_classes=cluster_classes,
                         class_ids=ids, cancel=cancel, cache=cache)  # fmt: skip

        self.worker = self.runner.start(job, "learn")
        self.worker.succeeded.connect(self._learnt)
        self.worker.failed.connect(self.failed)
        self.worker.ended.connect(self._ended)
        self.running_changed.emit(True)
        self.message.emit(f"Learning from the edits of {len(strokes)} image(s)…")
        return True

    def _base_cluster_classes(self, ids: list[int]) -> list[int]:
        """The base model's cluster → class position (−1 = unnamed)."""
        positions = {class_id: i for i, class_id in enumerate(ids)}
        base_map = self.base_class_map
        if base_map is None:
            return []
        out = []
        for cluster in range(base_map.clusters):
            mapped = base_map.class_of_cluster(cluster)
            out.append(positions.get(mapped.id, -1) if mapped is not None else -1)
        return out

    def _learnt(self, fitted: Any) -> None:
        from acseg_core.inference.learn import stroked_pixels

        self.learnt = fitted
        ids = fitted.meta["strokes"]["class_ids"]
        class_map = self.classes.class_map.with_clusters(0).with_clusters(len(ids))
        class_map = class_map.assign_many({i: class_id for i, class_id in enumerate(ids)})
        self.classes.set_class_map(class_map)
        self.overlay.set_mode(OverlayModel.CLASSES)
        self.session.set_model(fitted, self.base_path)
        counts = ", ".join(f"{name} {count} px" for name, count in stroked_pixels(fitted).items())
        self.message.emit(f"Learnt from strokes: {counts}")

    def _ended(self) -> None:
        self.running_changed.emit(False)
        if self._again:
            self._again = False
            self.learn()

    def project_model(self) -> tuple[Path | None, Any, Any] | None:
        """What a project file keeps while a learnt model is shown: the base model, and
        today's classes with the base's cluster → class map (None: nothing learnt)."""
        loaded = self.session.loaded
        if self.learnt is None or loaded is not self.learnt or self.base_class_map is None:
            return None
        current, base_map = self.classes.class_map, self.base_class_map
        kept = {c.id for c in current.classes}
        assignment = {}
        for cluster in range(base_map.clusters):
            mapped = base_map.class_of_cluster(cluster)
            assignment[cluster] = mapped.id if mapped is not None and mapped.id in kept else None
        class_map = current.with_clusters(0).with_clusters(base_map.clusters)
        return self.base_path, self.base.config, class_map.assign_many(assignment)

    def forget(self) -> None:
        """Back to the unsupervised model and its cluster → class map."""
        if self.base is None or self.learnt is None:
            return
        base, path, class_map = self.base, self.base_path, self.base_class_map
        self.learnt = None
        self.session.set_model(base, path)  # resets this controller's state
        if class_map is not None:
            self.classes.set_class_map(class_map)
        self.message.emit("Back to the unsupervised model")
