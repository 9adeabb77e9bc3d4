""" "Label all images": predict every image of the project in the worker, into files.

Maps are written by windows (the core's ``predict(out=...)``) into the project's cache
folder ``<project>.cache/`` beside a saved project, or a temporary folder for an
untitled one, named and recorded by their key (model file + read-out,
:mod:`acseg_core.inference.cache`): images with a map of the current key are skipped,
so running it again resumes, and a map is never used with another model or read-out.
Each finished image is recorded as the job ends, whatever the outcome (a cancel keeps
what finished); previews and export then read those files.
"""

from __future__ import annotations

import contextlib
import shutil
import tempfile
import time
from collections.abc import Callable, Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from acseg_core.errors import AcsegError, CancelledError
from acseg_core.inference.readout import ReadOut
from acseg_core.jobs import CancelToken, Progress, relabel
from acseg_core.labelling.project import Project
from app.models import DocumentModel, ImageListModel, SessionModel
from app.workers import JobRunner, JobWorker

STEPS_PER_IMAGE = 1000  # progress resolution within one image


@dataclass
class LabelAllResult:
    """What a run did: maps written (image → file), images skipped with the reason."""

    done: list[tuple[Path, Path]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    cancelled: bool = False


def label_all_job(
    loaded: Any,
    readout: ReadOut,
    key: str,
    images: list[Path],
    cache_dir: Path,
    result: LabelAllResult,
) -> Any:
    """A job factory: predict ``images`` into ``cache_dir``; fills ``result`` as it goes."""

    def job(cancel: CancelToken) -> Generator[Progress, None, LabelAllResult]:
        from acseg_core.inference.cache import cache_file
        from acseg_core.inference.predict import predict

        cache_dir.mkdir(parents=True, exist_ok=True)
        total = len(images) * STEPS_PER_IMAGE
        started = time.monotonic()
        for n, image in enumerate(images):
            if cancel.cancelled:
                break
            label = f"{image.name} ({n + 1}/{len(images)})"
            try:
                out = cache_file(cache_dir, image, key)
                steps = predict(loaded, image, out=out, readout=readout, cancel=cancel)
                for item in relabel(steps, lambda _item, label=label: f"Labelling {label}"):
                    done = int((n + (item.fraction or 0.0)) * STEPS_PER_IMAGE)
                    yield Progress(done, total, item.message, _eta(started, done, total))
            except CancelledError:
                break
            except AcsegError as exc:  # one bad image does not stop the others
                result.skipped.append((image, str(exc)))
                continue
            result.done.append((image, out))
            done = (n + 1) * STEPS_PER_IMAGE
            yield Progress(done, total, f"Labelled {label}", _eta(started, done, total))
        result.cancelled = cancel.cancelled
        return result

    return job


def _eta(started: float, done: int, total: int) -> float | None:
    if done <= 0:
        return None
    return (time.monotonic() - started) * (total - done) / done


class LabelAllController(QObject):
    running_changed = Signal(bool)
    progress = Signal(object)  # Progress
    finished = Signal(object)  # LabelAllResult (after any outcome)
    failed = Signal(str, str)

    def __init__(
        self,
        images: ImageListModel,
        session: SessionModel,
        document: DocumentModel,
        project_of: Callable[[], Project],
        runner: JobRunner,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.images, self.session, self.document, self.runner = images, session, document, runner
        self.project_of = project_of  # the open project (it changes on New/Open)
        self.worker: JobWorker | None = None
        self.result: LabelAllResult | None = None
        self._temp_cache: tempfile.TemporaryDirectory[str] | None = None

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.running

    def cache_dir(self) -> Path:
        """``<project>.cache/`` beside a saved project, else a folder for this session."""
        path = self.project_of().path
        if path is not None:
            return path.with_name(path.stem + ".cache")
        if self._temp_cache is None:
            self._temp_cache = tempfile.TemporaryDirectory(prefix="acseg-cache-")
        return Path(self._temp_cache.name)

    def adopt_cache(self, target: Path) -> None:
        """Before a save: move maps cached in the session's temporary folder beside
        ``target`` (a temporary folder goes when the app closes)."""
        if self._temp_cache is None:
            return
        temp = Path(self._temp_cache.name)
        cache = target.with_name(target.stem + ".cache")
        project = self.project_of()
        for entry in project.images:
            for key, file in list(entry.predictions.items()):
                if file.parent != temp or not file.is_file():
                    continue
                with contextlib.suppress(OSError):
                    cache.mkdir(parents=True, exist_ok=True)
                    moved = Path(shutil.move(str(file), str(cache / file.name)))
                    project.set_prediction(entry.path, key, moved)

    def cached_file(self, image: Path, key: str | None = None) -> Path | None:
        """The map file of ``image`` cached as ``key`` (the session's by default)."""
        key = key or self.session.key
        return self.project_of().prediction(image, key) if key is not None else None

    def pending(self) -> list[Path]:
        """Images without a cached map of the session's key."""
        return [p for p in self.images.images if p.exists() and self.cached_file(p) is None]

    def start(self) -> JobWorker | None:
        if self.running:
            return self.worker
        session = self.session
        if session.loaded is None or session.key is None:
            self.failed.emit("No model", "Load or train a model before labelling all images")
            return None
        project = self.project_of()
        project.add_images(self.images.images)
        images = self.pending()
        result = LabelAllResult()
        self.result = result
        if not images:
            self.finished.emit(result)
            return None
        job = label_all_job(
            session.loaded, session.readout, session.key, images, self.cache_dir(), result
        )
        key = session.key
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
        project = self.project_of()
        for image, out in result.done:
            with contextlib.suppress(AcsegError):  # the image left the project meanwhile
                project.set_prediction(image, key, out)
        if result.done:
            self.document.mark_dirty()
        result.cancelled = result.cancelled or worker.outcome == "cancelled"
        if self.worker is worker:
            self.worker = None
        self.running_changed.emit(False)
        self.finished.emit(result)
