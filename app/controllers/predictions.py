"""Cluster maps for images, computed in the worker on demand and cached in the session.

One prediction runs at a time; asking for another image while one runs queues it
(only the latest request waits — flicking through images does not pile up jobs).
An image whose map was cached to a file ("Label all images") is read from that
file in the worker instead of being predicted again. Maps are made with the
session's read-out (``SessionModel.readout``) and window (``SessionModel.smooth``);
changing either, like changing the model, drops what runs and re-predicts on the
next request.
"""

from __future__ import annotations

from collections.abc import Callable, Generator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from acseg_core.jobs import CancelToken
from app.models import SessionModel
from app.workers import JobRunner, JobWorker


def predict_job(
    loaded: Any, image: Path, smooth: int | None = None, readout: str | None = None
) -> Any:
    """A job factory: the core's tiled prediction of ``image`` (returns a Prediction).

    ``smooth``: the read-out window (None = the model's, 0 = plain argmax, odd N = N×N).
    ``readout``: None = the model's, ``"head"`` = plain AC, ``"kmeans"`` = k-means.
    """

    def job(cancel: CancelToken) -> Generator[Any, Any, Any]:
        from acseg_core.inference.predict import predict  # torch loads here, not at app start

        return (yield from predict(loaded, image, cancel=cancel, smooth=smooth, readout=readout))

    return job


def load_job(path: Path) -> Any:
    """A job factory: read a cached cluster map file (uint8 H×W)."""

    def job(cancel: CancelToken) -> Generator[Any, Any, Any]:
        from acseg_core.io.raster import open_raster

        with open_raster(path) as raster:
            return raster.read()[0]
        yield  # a generator, like every job

    return job


class PredictionController(QObject):
    started = Signal(object)  # Path
    progress = Signal(object)  # Progress
    finished = Signal(object)  # Path
    failed = Signal(str, str)

    def __init__(self, session: SessionModel, runner: JobRunner, parent: QObject | None = None):
        super().__init__(parent)
        self.session = session
        self.runner = runner
        self.worker: JobWorker | None = None
        self.current: Path | None = None
        self._window: int | None = None  # the read-out window of the running job
        self._readout: str | None = None  # the read-out ("head"/"kmeans") of the running job
        self._queued: Path | None = None
        self._failed: set[Path] = set()
        self.cached_file_for: Callable[[Path], Path | None] | None = None
        session.model_changed.connect(self._model_changed)
        session.smooth_changed.connect(self._smooth_changed)
        session.readout_changed.connect(self._readout_changed)

    @property
    def busy(self) -> bool:
        return self.worker is not None and self.worker.running

    def request(self, image: Path | None) -> None:
        """Make sure ``image`` gets a cluster map (no-op when cached or already running)."""
        if image is None or self.session.loaded is None:
            return
        if self.session.has_prediction(image) or image in self._failed:
            return
        if self.busy:
            if image != self.current:
                self._queued = image
            return
        self._start(image)

    def _start(self, image: Path) -> None:
        self.current = image
        cached = self.cached_file_for(image) if self.cached_file_for is not None else None
        loaded, smooth, readout = self.session.loaded, self.session.smooth, self.session.readout
        window, kind = self.session.effective_smooth, self.session.effective_readout
        if cached is not None:
            job = load_job(cached)
        else:
            job = predict_job(loaded, image, smooth, readout)
        worker = self.runner.start(job, "predict")
        self.worker = worker
        self._window, self._readout = window, kind
        worker.progress.connect(self.progress)
        worker.succeeded.connect(lambda result: self._done(image, loaded, window, kind, result))
        worker.failed.connect(lambda title, msg: self._fail(image, title, msg))
        worker.ended.connect(self._next)
        self.started.emit(image)

    def _done(self, image: Path, loaded: Any, window: int, kind: str, result: Any) -> None:
        if (
            loaded is not self.session.loaded
            or window != self.session.effective_smooth
            or kind != self.session.effective_readout
        ):
            return  # the model, the read-out or its window changed while this ran
        clusters = getattr(result, "clusters", result)
        if clusters is not None:
            self.session.add_prediction(image, clusters)
        self.finished.emit(image)

    def _fail(self, image: Path, title: str, message: str) -> None:
        self._failed.add(image)  # do not retry (and re-show the dialog) on every visit
        self.failed.emit(title, message)

    def _next(self) -> None:
        self.worker = None
        self.current = None
        self._window = self._readout = None
        queued, self._queued = self._queued, None
        if queued is not None:
            self.request(queued)

    def _model_changed(self) -> None:
        self._failed.clear()
        self._queued = None
        if self.worker is not None:
            self.worker.cancel()  # its result is dropped (see _done); re-requests queue up
        self.current = None

    def _smooth_changed(self) -> None:
        """Another read-out window: like another model (the session dropped its maps)."""
        if self.busy and self._window == self.session.effective_smooth:
            return  # the same window under another name ("default" = N px): keep it
        self._model_changed()

    def _readout_changed(self) -> None:
        """Another read-out: like another model (the session dropped its maps)."""
        if self.busy and self._readout == self.session.effective_readout:
            return  # the same read-out under another name ("default" = k-means): keep it
        self._model_changed()
