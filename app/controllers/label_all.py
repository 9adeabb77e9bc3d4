""" "Label all images": predict every image of the project in the worker, caching to files.

Cluster maps are written by windows (the core's ``predict(out=...)``) into the
project's cache folder ``<project>.cache/`` beside a saved project, or into a
temporary folder for an untitled one, and recorded with ``Project.set_prediction``.
Images with a cached map of the current model are skipped, so running it again
resumes. Each finished image is recorded as soon as the job ends, whatever the
outcome: cancelling keeps what finished. Export then reads the cached files.

A map is only used with the read-out and window it was made with (the session's
``readout`` and ``smooth``): both are part of the file's name, and
:meth:`LabelAllController.cached_file` ignores files of another read-out or
window, just as ``ProjectController.prediction_file`` ignores maps of another
model. Switching back finds the maps again; the project file itself is not changed.

Names: ``<stem>-<digest>_clusters[_head|_km][_sN].<png|tif>``.

* ``_sN``: an N px majority window; no tag = none (plain argmax), as maps were
  before windows existed.
* ``_head`` / ``_km``: made with the AC head / the k-means read-out *where that is
  not the model's own default read-out* (``SessionModel.default_readout``); no
  tag = the model's default. Maps are only ever used with the model that made
  them, so "the model's default" names one read-out, and the rule keeps every
  older cache valid: maps from before read-outs existed were made with the head,
  which is the default of every model of that era (their configs have no
  ``readout``, i.e. ``"head"``); maps made since with the default read-out
  (k-means for a model with a fitted one) had no tag and keep meaning the default.
"""

from __future__ import annotations

import contextlib
import hashlib
import re
import shutil
import tempfile
import time
from collections.abc import Generator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from PySide6.QtCore import QObject, Signal

from acseg_core.errors import AcsegError, CancelledError
from acseg_core.jobs import CancelToken, Progress
from app.models import read_out_kind, read_out_window
from app.workers import JobRunner, JobWorker

if TYPE_CHECKING:
    from app.controllers.project import ProjectController
    from app.models import DocumentModel, ImageListModel, SessionModel

STEPS_PER_IMAGE = 1000  # progress resolution within one image


@dataclass
class LabelAllResult:
    """What a run did: maps written (image → file), images skipped with the reason."""

    done: list[tuple[Path, Path]] = field(default_factory=list)
    skipped: list[tuple[Path, str]] = field(default_factory=list)
    cancelled: bool = False


_READOUT_TAGS = {"head": "_head", "kmeans": "_km"}
_TAG = re.compile(r"_clusters(?:_(head|km))?(?:_s(\d+))?\.[^.]+$")


def cache_file(cache_dir: Path, image: Path, window: int = 0, readout: str | None = None) -> Path:
    """A stable, collision-free cache name per source image, read-out and window
    (GeoTIFFs stay GeoTIFFs). ``readout``: None = the model's default read-out (no
    tag), else ``"head"``/``"kmeans"`` (see the module's notes on names)."""
    from acseg_core.inference.collection import is_geotiff

    digest = hashlib.sha1(str(image).encode("utf-8")).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", image.stem)[:60] or "image"
    suffix = ".tif" if is_geotiff(image) else ".png"
    tag = _READOUT_TAGS[readout] if readout is not None else ""
    tag += f"_s{window}" if window > 1 else ""
    return cache_dir / f"{stem}-{digest}_clusters{tag}{suffix}"


def cache_window(file: Path) -> int:
    """The read-out window a cached map was made with, from its name (0 = plain argmax)."""
    found = _TAG.search(file.name)
    return int(found.group(2)) if found is not None and found.group(2) else 0


def cache_readout(file: Path) -> str | None:
    """The read-out a cached map was made with, from its name: ``"head"``/``"kmeans"``,
    or None = the model's default read-out (untagged, as every map before read-outs)."""
    found = _TAG.search(file.name)
    tag = found.group(1) if found is not None else None
    return {"head": "head", "km": "kmeans"}.get(tag) if tag else None


def label_all_job(
    loaded: Any,
    images: list[Path],
    cache_dir: Path,
    result: LabelAllResult,
    smooth: int | None = None,
    readout: str | None = None,
) -> Any:
    """A job factory: predict ``images`` into ``cache_dir``; fills ``result`` as it goes.

    ``smooth``: the read-out window (None = the model's, 0 = plain argmax, odd N = N×N).
    ``readout``: None = the model's, ``"head"`` = plain AC, ``"kmeans"`` = k-means.
    """
    window = read_out_window(loaded, smooth)
    kind = read_out_kind(loaded, readout)
    tag = None if kind == read_out_kind(loaded, None) else kind  # default: untagged

    def job(cancel: CancelToken) -> Generator[Progress, None, LabelAllResult]:
        from acseg_core.inference.predict import predict

        cache_dir.mkdir(parents=True, exist_ok=True)
        total = len(images) * STEPS_PER_IMAGE
        started = time.monotonic()
        for n, image in enumerate(images):
            if cancel.cancelled:
                break
            label = f"{image.name} ({n + 1}/{len(images)})"
            try:
                out = cache_file(cache_dir, image, window, tag)
                steps = predict(
                    loaded, image, out=out, cancel=cancel, smooth=smooth, readout=readout
                )
                while True:
                    try:
                        item = next(steps)
                    except StopIteration:
                        break
                    fraction = item.fraction or 0.0
                    done = int((n + fraction) * STEPS_PER_IMAGE)
                    yield Progress(
                        done, total, f"Labelling {label}", _eta(started, done, total), {}
                    )
            except CancelledError:
                break
            except AcsegError as exc:  # one bad image does not stop the others
                result.skipped.append((image, str(exc)))
                continue
            result.done.append((image, out))
            done = (n + 1) * STEPS_PER_IMAGE
            yield Progress(done, total, f"Labelled {label}", _eta(started, done, total), {})
        result.cancelled = cancel.cancelled
        return result

    return job


def _eta(started: float, done: int, total: int) -> float | None:
    if done <= 0:
        return None
    elapsed = time.monotonic() - started
    return elapsed * (total - done) / done


def format_eta(seconds: float | None) -> str:
    if seconds is None:
        return ""
    minutes, secs = divmod(round(seconds), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


class LabelAllController(QObject):
    running_changed = Signal(bool)
    progress = Signal(object)  # Progress
    finished = Signal(object)  # LabelAllResult (after any outcome)
    failed = Signal(str, str)

    def __init__(
        self,
        images: ImageListModel,
        session: SessionModel,
        project: ProjectController,
        document: DocumentModel,
        runner: JobRunner,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.images, self.session, self.project = images, session, project
        self.document, self.runner = document, runner
        self.worker: JobWorker | None = None
        self.result: LabelAllResult | None = None
        self._temp_cache: tempfile.TemporaryDirectory[str] | None = None
        project.before_save.append(self.adopt_cache)

    @property
    def running(self) -> bool:
        return self.worker is not None and self.worker.running

    def cache_dir(self) -> Path:
        """``<project>.cache/`` beside a saved project, else a folder for this session."""
        path = self.project.doc.path
        if path is not None:
            return path.with_name(path.stem + ".cache")
        if self._temp_cache is None:
            self._temp_cache = tempfile.TemporaryDirectory(prefix="acseg-cache-")
        return Path(self._temp_cache.name)

    def adopt_cache(self, target: Path) -> None:
        """Before a save: move maps cached in the session's temporary folder beside ``target``.

        An untitled project caches into a temporary folder that goes when the app
        closes; once the project has a file, its maps belong in ``<project>.cache/``.
        """
        if self._temp_cache is None:
            return
        temp = Path(self._temp_cache.name)
        cache = target.with_name(target.stem + ".cache")
        for entry in self.project.doc.images:
            file = entry.prediction
            if file is None or file.parent != temp or not file.is_file():
                continue
            with contextlib.suppress(OSError):
                cache.mkdir(parents=True, exist_ok=True)
                moved = Path(shutil.move(str(file), str(cache / file.name)))
                self.project.doc.set_prediction(entry.path, moved)

    def cached_file(self, image: Path) -> Path | None:
        """The cached map of ``image`` made with the loaded model and the session's
        read-out and window, if any (what predictions and export may read). An
        untagged read-out is the model's default (see the module's notes on names)."""
        session = self.session
        file = self.project.prediction_file(image)
        if file is None or cache_window(file) != session.effective_smooth:
            return None  # a map of another window is not what the user chose to see
        if (cache_readout(file) or session.default_readout) != session.effective_readout:
            return None  # nor one of another read-out
        return file

    def pending(self) -> list[Path]:
        """Images without a cached map of the current model, read-out and window."""
        return [p for p in self.images.images if p.exists() and self.cached_file(p) is None]

    def start(self) -> JobWorker | None:
        if self.running:
            return self.worker
        if self.session.loaded is None:
            self.failed.emit("No model", "Load or train a model before labelling all images")
            return None
        self.project.sync()  # the project now names the model these maps come from
        images = self.pending()
        result = LabelAllResult()
        self.result = result
        if not images:
            self.finished.emit(result)
            return None
        session = self.session
        job = label_all_job(
            session.loaded, images, self.cache_dir(), result, session.smooth, session.readout
        )
        worker = self.runner.start(job, "label-all")
        self.worker = worker
        worker.progress.connect(self.progress)
        worker.failed.connect(self.failed)
        worker.ended.connect(lambda: self._ended(worker, result))
        self.running_changed.emit(True)
        return worker

    def start_reporting(self) -> None:
        self.start()

    def cancel(self) -> None:
        if self.worker is not None:
            self.worker.cancel()

    def _ended(self, worker: JobWorker, result: LabelAllResult) -> None:
        doc = self.project.doc
        for image, out in result.done:
            try:
                doc.set_prediction(image, out)
            except AcsegError:
                continue  # the image left the project while the job ran
        if result.done:
            self.document.mark_dirty()
        result.cancelled = result.cancelled or worker.outcome == "cancelled"
        if self.worker is worker:
            self.worker = None
        self.running_changed.emit(False)
        self.finished.emit(result)
