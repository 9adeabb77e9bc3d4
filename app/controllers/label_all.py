""" "Label all images": the core's collection prediction, run in the worker, into the
project's prediction cache.

The job is :func:`acseg_core.inference.collection.predict_collection` (the same one
``acseg-core predict`` runs): maps are written by windows and atomically into the
project's cache folder (:attr:`Project.cache_dir`), named by their key (model file +
read-out, :func:`~acseg_core.inference.cache.cache_file`), with resume on, so images
whose map is there are skipped, a rerun after a cancel does only what is missing, and
a map is never used with another model or read-out. Each finished map is recorded in
the project as the job ends, whatever the outcome; previews and export then read
those files.
"""

from __future__ import annotations

import contextlib
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from acseg_core.errors import AcsegError
from acseg_core.inference.cache import cache_file
from acseg_core.inference.collection import Summary, predict_collection
from acseg_core.inference.files import FileResult
from acseg_core.inference.predict import PredictOptions
from acseg_core.jobs import CancelToken, Progress
from app.models import DocumentModel, ImageListModel, SessionModel
from app.workers import JobRunner, JobWorker


@dataclass
class LabelAllResult:
    """What a run did: maps written (image → file), images already labelled, images
    skipped with the reason."""

    done: list[tuple[Path, Path]] = field(default_factory=list)
    already: list[tuple[Path, Path]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    cancelled: bool = False

    def add(self, result: FileResult) -> None:
        if result.status == "ok" and result.output is not None:
            self.done.append((result.image, result.output))
        elif result.status == "skipped" and result.output is not None:
            self.already.append((result.image, result.output))
        elif result.status == "error":
            self.skipped.append((result.image, result.error))


def summary(result: LabelAllResult) -> str:
    """One line for the status bar that never reads as a failure: what was labelled
    now, what already was, what was skipped and why (the first reason)."""
    done, already, skipped = len(result.done), len(result.already), result.skipped
    if result.cancelled:
        text = f"Labelling cancelled: {done} image(s) labelled"
        if already:
            text += f", {already} already labelled"
    elif not done and already:
        text = (
            f"All {already} images already labelled"
            if already > 1
            else "The image was already labelled"
        )
    elif not done and not skipped:
        text = "Nothing to label: the project has no images"
    elif not done:
        text = "No image labelled"
    else:
        text = f"Labelled {done} image(s)"
        if already:
            text += f", {already} already labelled"
    if skipped:
        text += f"; {len(skipped)} skipped ({skipped[0][0].name}: {skipped[0][1]})"
    return text


class LabelAllController(QObject):
    running_changed = Signal(bool)
    progress = Signal(object)  # Progress
    finished = Signal(object)  # LabelAllResult (after any outcome)
    failed = Signal(str, object)  # title, exception

    def __init__(
        self,
        images: ImageListModel,
        session: SessionModel,
        document: DocumentModel,
        runner: JobRunner,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.images, self.session, self.document, self.runner = images, session, document, runner
        self.worker: JobWorker | None = None
        self.result: LabelAllResult | None = None

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.running

    def cached_file(self, image: Path, key: str | None = None) -> Path | None:
        """The map file of ``image`` cached as ``key`` (the session's by default)."""
        key = key or self.session.key
        return self.document.project.prediction(image, key) if key is not None else None

    def start(self) -> JobWorker | None:
        if self.running:
            return self.worker
        session, project = self.session, self.document.project
        if session.loaded is None or session.key is None:
            self.failed.emit("No model", AcsegError("load or train a model first"))
            return None
        key, loaded = session.key, session.loaded
        images = [p for p in self.images.images if p.exists()]
        cache_dir = project.cache_dir
        result = LabelAllResult()
        self.result = result
        options = PredictOptions(readout=session.readout)

        def job(cancel: CancelToken) -> Generator[Progress, None, Summary]:
            return (yield from predict_collection(
                None, images, cache_dir, options=options, resume=True, cancel=cancel,
                total=len(images), loaded=loaded, on_result=result.add,
                name_output=lambda image: cache_file(cache_dir, image, key),
            ))  # fmt: skip

        worker = self.runner.start(job, "label-all")
        self.worker = worker
        worker.progress.connect(self.progress)
        worker.failed.connect(self.failed)
        worker.ended.connect(lambda: self._ended(worker, key, result))
        self.running_changed.emit(True)
        return worker

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _ended(self, worker: JobWorker, key: str, result: LabelAllResult) -> None:
        project = self.document.project
        for image, out in (*result.done, *result.already):
            with contextlib.suppress(AcsegError):  # the image left the project meanwhile
                project.set_prediction(image, key, out)
        self.document.changed()
        summary: Any = worker.result
        result.cancelled = worker.outcome == "cancelled" or bool(
            summary is not None and summary.cancelled
        )
        if self.worker is worker:
            self.worker = None
        self.running_changed.emit(False)
        self.finished.emit(result)
