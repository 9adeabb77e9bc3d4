"""Maps for images, made in the worker on demand and cached in the session by key.

One prediction runs at a time; asking for another image while one runs queues it
(only the latest request waits: flicking through images does not pile up jobs). A
map cached to a file ("Label all") is read from that file instead. A job's map is
stored under the key it was made with, so a read-out switched mid-prediction costs
nothing when the user switches back; a job whose key is no longer wanted is
cancelled when the next one is asked for.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from acseg_core.errors import InputError
from acseg_core.inference.predict import predict
from acseg_core.io.raster import open_raster, probe
from acseg_core.jobs import CancelToken
from acseg_core.model.checkpoint import LoadedModel
from acseg_core.model.readouts import ReadOut
from app.models import DocumentModel, SessionModel
from app.workers import JobRunner, JobWorker

MAX_PIXELS = 2**30  # largest image the app predicts: its map (1 byte/px) stays in memory


def precision_for(loaded: LoadedModel) -> str:
    """A learnt model's maps in float32: a learn repaints the visible image from its
    LiveImage (float32), so the map a reopened project predicts for it is that same map
    (reduced precision may flip near ties between classes)."""
    return "fp32" if loaded.config.classes else "auto"


def predict_job(
    loaded: LoadedModel, image: Path, readout: ReadOut, feature_cache: Path | None = None
) -> Any:
    """A job factory: the core's tiled prediction of ``image`` (returns a Prediction);
    ``feature_cache``: the project's bank features, for a model that reads the bank."""

    def job(cancel: CancelToken) -> Generator[Any, Any, Any]:
        info = probe(image)
        if info.pixels > MAX_PIXELS:  # the app keeps whole maps in memory
            raise InputError(
                image,
                f"{info.width}×{info.height} is too large to label in the app (more than "
                f"{MAX_PIXELS / 1e6:.0f} Mpx): use acseg-core predict, which writes by windows",
            )
        return (yield from predict(loaded, image, readout=readout, cancel=cancel,
                                   precision=precision_for(loaded),
                                   feature_cache=feature_cache))  # fmt: skip

    return job


def load_job(path: Path) -> Any:
    """A job factory: read a cached map file (uint8 H×W)."""

    def job(cancel: CancelToken) -> Generator[Any, Any, Any]:
        with open_raster(path) as raster:
            return raster.read()[0]
        yield  # a generator, like every job

    return job


class PredictionController(QObject):
    started = Signal(object, str)  # Path, "cached" (a file read back) | "predict"
    progress = Signal(object)  # Progress
    finished = Signal(object)  # Path
    failed = Signal(str, object)  # title, exception

    def __init__(
        self,
        session: SessionModel,
        runner: JobRunner,
        document: DocumentModel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.session, self.runner, self.document = session, runner, document
        self.worker: JobWorker | None = None
        self.current: tuple[Path, str] | None = None  # (image, key) of the running job
        self._queued: Path | None = None
        self._failed: set[tuple[Path, str]] = set()
        session.model_changed.connect(self._failed.clear)

    @property
    def busy(self) -> bool:
        return self.worker is not None and self.worker.running

    def request(self, image: Path | None) -> None:
        """Make sure ``image`` gets a map of the session's key (no-op when cached/running)."""
        key = self.session.key
        if image is None or key is None:
            return
        if self.session.has_prediction(image) or (image, key) in self._failed:
            return
        if self.busy:
            if self.current != (image, key):
                self._queued = image
                if self.current is not None and self.current[1] != key:
                    self.worker.cancel()  # type: ignore[union-attr]  # made for another key
            return
        self._start(image, key)

    def _start(self, image: Path, key: str) -> None:
        session = self.session
        cached = self.document.project.prediction(image, key)
        features = self.document.project.features_dir()
        job = (
            load_job(cached)
            if cached is not None
            else predict_job(session.loaded, image, session.readout, features)
        )
        worker = self.runner.start(job, "predict")
        self.worker, self.current = worker, (image, key)
        worker.progress.connect(self.progress)
        worker.succeeded.connect(lambda result: self._done(image, key, result))
        worker.failed.connect(lambda title, exc: self._fail(image, key, title, exc))
        worker.ended.connect(self._next)
        self.started.emit(image, "cached" if cached is not None else "predict")

    def _done(self, image: Path, key: str, result: Any) -> None:
        ids = getattr(result, "clusters", result)
        if ids is not None:
            self.session.add_prediction(image, key, ids)
        self.finished.emit(image)

    def _fail(self, image: Path, key: str, title: str, error: BaseException) -> None:
        self._failed.add((image, key))  # do not retry (and re-show it) on every visit
        self.failed.emit(title, error)

    def _next(self) -> None:
        self.worker, self.current = None, None
        queued, self._queued = self._queued, None
        if queued is not None:
            self.request(queued)
