"""Learn from edits: the hand edits of every image teach a read-out, in the worker.

The unsupervised model the user loaded stays the *base*: every fit starts from it
(:mod:`acseg_core.learning.fit`), so undoing a stroke and learning again gives the
earlier model exactly. What a learn is taught comes from the core
(:mod:`acseg_core.labelling.teaching`: strokes from the edits, the base's named
clusters for pseudo-samples). The learnt model is shown and kept by the project (it
is saved with it and comes back on reopen); its maps hold class positions, which the
classes model shows as the project's classes. Other images' cached maps belong to
the old model's key and are never shown again.

The visible image is refitted and repainted through its
:class:`~acseg_core.learning.live.LiveImage` (one network pass, kept across learns:
:func:`~acseg_core.learning.live_learn.learn_visible`), so its new map needs no tiled
prediction. In live mode a fit starts a moment after the last stroke, in the worker,
never blocking the canvas; it skips the strokes check so the repaint comes first, and
a check job follows. After each learn the strokes' leave-one-stroke-out quality and
its warnings are shown (:func:`~acseg_core.learning.job.quality_of`). Before/after
shows the unsupervised map under the same classes; Undo of a learn brings back the
model shown before it (:class:`~acseg_core.labelling.learn_history.LearnHistory`).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QTimer, Signal

from acseg_core.errors import AcsegError
from acseg_core.inference.cache import prediction_key
from acseg_core.io.raster import probe
from acseg_core.labelling.classes import ClassMap
from acseg_core.labelling.learn_history import LearnHistory
from acseg_core.labelling.teaching import (
    Lesson,
    check_lesson,
    class_map_for_learnt,
    edited_strokes,
    learnt_class_ids,
)
from acseg_core.learning.fit import stroked_pixels
from acseg_core.learning.job import learn, quality_of
from acseg_core.learning.live import LiveImage
from acseg_core.learning.live_learn import LIVE_MAX_PIXELS, learn_visible
from acseg_core.learning.quality import StrokeQuality
from acseg_core.learning.samples import Samples
from acseg_core.model.checkpoint import LoadedModel, load_model
from acseg_core.model.readouts import ReadOut
from app.models import ClassesModel, DocumentModel, ImageListModel, OverlayModel, SessionModel
from app.workers import JobRunner, JobWorker

LIVE_DELAY_MS = 1500  # after the last stroke, before a live refit starts
CHECK_DELAY_MS = 3000  # after a live refit is shown, with no stroke since: check it


class LearnController(QObject):
    running_changed = Signal(bool)
    message = Signal(str)  # the status line: what was learnt from how many pixels
    failed = Signal(str, object)  # title, exception
    state_changed = Signal()  # learnt model, before/after, undo or quality changed
    repainted = Signal(object)  # Path: a learn repainted this image without a tiled job

    def __init__(
        self,
        runner: JobRunner,
        session: SessionModel,
        classes: ClassesModel,
        overlay: OverlayModel,
        document: DocumentModel,
        parent: QObject | None = None,
        images: ImageListModel | None = None,
    ) -> None:
        super().__init__(parent)
        self.runner, self.session, self.classes = runner, session, classes
        self.overlay, self.document, self.images = overlay, document, images
        self.base: LoadedModel | None = None  # the unsupervised model every fit starts from
        self.base_path: Path | None = None
        self.base_ids: tuple[int, ...] | None = None  # a base that emits classes: their ids
        self.learnt: LoadedModel | None = None  # the model this controller put in the session
        self.before = False  # the base is shown for comparison; ``learnt`` stays the work
        self.history = LearnHistory()
        self.cache: dict[tuple[str, str], Samples] = {}  # gathered samples per image
        self.live_image: LiveImage | None = None  # the visible image's held pass
        self.worker: JobWorker | None = None
        self.live = False
        self._again = False  # an edit arrived during a fit: fit once more after it
        self._unchecked: LoadedModel | None = None  # a live refit shown, to check next
        self._switching = False  # this controller is changing the session's model
        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(LIVE_DELAY_MS)
        self._timer.timeout.connect(lambda: self.learn(check=False))
        self._check_timer = QTimer(self)  # a check holds the worker: not while painting
        self._check_timer.setSingleShot(True)
        self._check_timer.setInterval(CHECK_DELAY_MS)
        self._check_timer.timeout.connect(self._check_if_still_shown)
        session.model_changed.connect(self._model_changed)

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.running

    @property
    def quality(self) -> StrokeQuality | None:
        """The strokes' quality of the learnt model (None: none, or not checked yet)."""
        return quality_of(self.learnt) if self.learnt is not None else None

    def set_live(self, live: bool) -> None:
        self.live = live
        if live:
            self._timer.start()

    def edited(self, *_args: object) -> None:
        """A stroke ended: in live mode, refit shortly (once, however many strokes)."""
        if self.live:
            self._timer.start()
            self._check_timer.stop()

    def _model_changed(self) -> None:
        if self._switching:
            return
        self.base, self.base_path, self.learnt = None, None, None  # another model: start over
        self.base_ids = None
        self.before = False
        self.history.clear()
        self.cache.clear()
        self.live_image = None
        self.state_changed.emit()

    def _set_model(self, loaded: LoadedModel | None, path: Path | None) -> None:
        self._switching = True
        try:
            self.session.set_model(loaded, path)
        finally:
            self._switching = False

    # -- learning ---------------------------------------------------------------------
    def learn(self, check: bool = True) -> bool:
        """Fit on the edits of every image (in the worker); False when nothing to do.
        ``check``: check the strokes against each other before showing the model (live
        refits show first and check after)."""
        if self.running:
            self._again = True
            return False
        if self.session.loaded is None:
            self.message.emit("Learning from edits needs a model: load or train one first")
            return False
        if self.base is None:
            self.base, self.base_path = self.session.loaded, self.session.model_path
            self.base_ids = self.classes.learnt_ids if self.base.config.classes else None
        project = self.document.project
        lesson = Lesson.of(self._base_class_map())
        try:
            layers = [(entry.path, project.get_edits(entry)) for entry in project.images]
            strokes = edited_strokes(layers, project.class_map)
            check_lesson(lesson, strokes)
        except AcsegError as exc:
            self.message.emit(str(exc))
            return False
        base, cache, visible = self.base, self.cache, self._visible()
        features = project.features_dir()
        smooth = self.session.readout.smooth if self.session.readout.kind is None else None
        held = self.live_image
        seed = 0

        def job(cancel: Any) -> Any:
            live = held
            if visible is not None and (live is None or live.image != visible):
                live = LiveImage(base, visible, feature_cache=features)
            if visible is None or live is None:
                fitted = yield from learn(base, strokes, lesson.names, lesson.colours,
                                          cluster_classes=lesson.cluster_positions,
                                          class_ids=lesson.class_ids, cancel=cancel, cache=cache,
                                          seed=seed, check=check,
                                          feature_cache=features)  # fmt: skip
                return fitted, None, None
            fitted, ids = yield from learn_visible(
                base, live, strokes, lesson.names, lesson.colours,
                cluster_classes=lesson.cluster_positions, class_ids=lesson.class_ids,
                cancel=cancel, cache=cache, seed=seed, check=check, smooth=smooth,
                feature_cache=features,
            )  # fmt: skip
            return fitted, live, ids

        self.worker = self.runner.start(job, "learn")
        self.worker.succeeded.connect(lambda result: self._learnt(result, check))
        self.worker.failed.connect(self.failed)
        self.worker.ended.connect(self._ended)
        self.running_changed.emit(True)
        self.message.emit(f"Learning from the edits of {len(strokes)} image(s)…")
        return True

    def _base_class_map(self) -> ClassMap:
        """The base's cluster → class map (a learnt model opened as a file: its positions)."""
        project = self.document.project
        if self.base_ids is not None:
            return class_map_for_learnt(project.class_map, self.base_ids)
        return project.class_map

    def _visible(self) -> Path | None:
        """The image a learn repaints through its LiveImage (None: the tiled path)."""
        image = self.images.current if self.images is not None else None
        if image is None or self.base is None or not image.is_file():
            return None
        try:
            info = probe(image)
        except AcsegError:
            return None
        if info.pixels > LIVE_MAX_PIXELS or info.count != self.base.config.in_channels:
            return None
        return image

    def _learnt(self, result: tuple[LoadedModel, LiveImage | None, Any], checked: bool) -> None:
        fitted, live, ids = result
        if live is not None:
            self.live_image = live
        self.history.learnt(self.learnt)
        self.document.project.set_learnt(fitted)
        if live is not None and ids is not None:
            readout = self.session.readout if self.session.readout.kind is None else ReadOut()
            self.session.add_prediction(live.image, prediction_key(fitted, readout), ids)
        self.show(fitted)
        if live is not None and ids is not None:
            self.repainted.emit(live.image)
        self.document.changed()
        counts = ", ".join(f"{name} {count} px" for name, count in stroked_pixels(fitted).items())
        quality = quality_of(fitted)
        text = f"Learnt from strokes: {counts}"
        if quality is not None:
            text += f"; {quality.summary()}"
            if quality.warnings():
                text += f"; {len(quality.warnings())} warning(s) in the Learning panel"
        self.message.emit(text)
        self._unchecked = None if checked else fitted

    def _check_later(self, fitted: LoadedModel) -> None:
        """A live refit was shown unchecked: check its strokes in the worker now."""
        project = self.document.project
        lesson = Lesson.of(self._base_class_map())
        layers = [(entry.path, project.get_edits(entry)) for entry in project.images]
        strokes = edited_strokes(layers, project.class_map)
        base, cache, live = self.base, self.cache, self.live_image
        features = project.features_dir()

        def job(cancel: Any) -> Any:
            if live is not None:
                checked, _ids = yield from learn_visible(
                    base, live, strokes, lesson.names, lesson.colours,
                    cluster_classes=lesson.cluster_positions, class_ids=lesson.class_ids,
                    cancel=cancel, cache=cache, repaint=False, feature_cache=features,
                )  # fmt: skip
                return checked
            return (yield from learn(base, strokes, lesson.names, lesson.colours,
                                     cluster_classes=lesson.cluster_positions,
                                     class_ids=lesson.class_ids, cancel=cancel,
                                     cache=cache, feature_cache=features))  # fmt: skip

        worker = self.runner.start(job, "learn")
        self.worker = worker
        worker.succeeded.connect(lambda checked: self._checked(fitted, checked))
        worker.failed.connect(self.failed)
        worker.ended.connect(self._ended)
        self.running_changed.emit(True)

    def _checked(self, shown: LoadedModel, checked: LoadedModel) -> None:
        """The check of a live refit: its quality joins the model shown (same fit)."""
        if shown is not self.learnt or checked.digest != shown.digest:
            return  # the strokes changed meanwhile: the next learn checks them
        shown.meta["strokes"]["quality"] = checked.meta["strokes"].get("quality")
        quality = quality_of(shown)
        if quality is not None:
            self.message.emit(f"Strokes checked: {quality.summary()}")
        self.state_changed.emit()

    def show(self, fitted: LoadedModel) -> None:
        """Show a learnt model (its classes named by the project's class ids)."""
        self.learnt = fitted
        self.before = False
        self.classes.show_learnt(learnt_class_ids(fitted) or ())
        self.overlay.set_mode(OverlayModel.CLASSES)
        self._set_model(fitted, self.base_path)
        self.state_changed.emit()

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
        self.base, self.base_path, self.base_ids = base, self.session.model_path, None
        self.history.clear()
        self.show(fitted)
        return True

    def _ended(self) -> None:
        self.running_changed.emit(False)
        unchecked, self._unchecked = self._unchecked, None
        if self._again:
            self._again = False
            self.learn(check=not self.live)
        elif unchecked is not None and unchecked is self.learnt:
            self._unchecked = unchecked
            self._check_timer.start()

    def _check_if_still_shown(self) -> None:
        unchecked, self._unchecked = self._unchecked, None
        if unchecked is not None and unchecked is self.learnt and not self.running:
            self._check_later(unchecked)

    # -- comparing and undoing -----------------------------------------------------------
    def show_before(self, before: bool) -> None:
        """Before/after: the unsupervised map (the base's clusters through the project's
        cluster → class map) or the learnt one; nothing is dropped either way."""
        if self.learnt is None or self.base is None or before == self.before:
            return
        if not before:
            self.show(self.learnt)
            self.message.emit("After: the model learnt from the strokes")
            return
        self.before = True
        self.classes.show_learnt(self.base_ids)
        self.overlay.set_mode(OverlayModel.CLASSES)
        self._set_model(self.base, self.base_path)
        self.state_changed.emit()
        self.message.emit("Before: the unsupervised model and its cluster → class map")

    def undo_learn(self) -> bool:
        """Back to the model shown before the last learn (False: nothing to undo)."""
        if self.running:
            self.message.emit("A learn is running: undo it once it has finished")
            return False
        if not self.history.can_undo or self.base is None:
            self.message.emit("No learn to undo")
            return False
        previous = self.history.undo()
        self.document.project.set_learnt(previous)
        if previous is None:
            self._unsupervised()
            self.message.emit("Learn undone: back to the unsupervised model")
        else:
            self.show(previous)
            self.message.emit("Learn undone: back to the previous learnt model")
        self.document.changed()
        return True

    def _unsupervised(self) -> None:
        self.learnt, self.before = None, False
        self.classes.show_learnt(self.base_ids)
        self._set_model(self.base, self.base_path)
        self.state_changed.emit()

    def forget(self) -> None:
        """Back to the unsupervised model and its cluster → class map (Undo brings the
        learnt model back)."""
        if self.base is None or self.learnt is None:
            return
        self.history.learnt(self.learnt)
        self.document.project.set_learnt(None)
        self._unsupervised()
        self.document.changed()
        self.message.emit("Back to the unsupervised model")
