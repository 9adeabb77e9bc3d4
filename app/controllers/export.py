"""Export in the worker: cluster maps (cached, or predicted on the spot) → label files.

Before anything runs the targets are checked: existing files are only replaced
after the user agreed. Source images are never written (the core refuses too).
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

from acseg_core.errors import AcsegError
from acseg_core.jobs import CancelToken, Progress
from app.dialogs import ask_yes_no, show_info
from app.export_dialog import ExportDialog, ExportRequest
from app.models import ClassesModel, ImageListModel, SessionModel
from app.workers import JobRunner, JobWorker


def export_job(
    images: list[Path],
    cached: dict[Path, Any],
    loaded: Any,
    class_map: Any,
    request: ExportRequest,
    edits: dict[Path, Any],
    overwrite: bool,
    smooth: int | None = None,
    readout: str | None = None,
) -> Any:
    """Predict what is not cached, then export everything (one generator job).

    ``smooth``: the read-out window of those predictions (None = the model's, 0 = plain
    argmax, odd N = N×N) and ``readout`` their read-out (None = the model's, ``"head"``
    = plain AC, ``"kmeans"`` = k-means): the ones the cached maps were made with.
    """

    def job(cancel: CancelToken) -> Generator[Progress, None, Any]:
        from acseg_core.inference.predict import predict
        from acseg_core.labelling.export import ExportItem, export_labels

        items = []
        for n, image in enumerate(images):
            clusters = cached.get(image)
            if clusters is None:
                if loaded is None:
                    raise AcsegError("load or train a model first: there are no clusters to export")
                prediction = yield from _relabel(
                    predict(loaded, image, cancel=cancel, smooth=smooth, readout=readout),
                    f"{image.name} ({n + 1}/{len(images)})",
                )
                clusters = prediction.clusters
            items.append(ExportItem(image.stem, clusters, source=image, edits=edits.get(image)))
        return (
            yield from export_labels(
                items,
                class_map,
                request.out_dir,
                formats=request.formats,
                overwrite=overwrite,
                cancel=cancel,
            )
        )

    return job


def _relabel(gen: Generator[Progress, None, Any], label: str) -> Generator[Progress, None, Any]:
    while True:
        try:
            item = next(gen)
        except StopIteration as stop:
            return stop.value
        yield Progress(item.done, item.total, f"Predicting {label}", item.eta_s, item.metrics)


class ExportController(QObject):
    finished = Signal(object)  # ExportResult
    failed = Signal(str, str)

    def __init__(
        self,
        images: ImageListModel,
        session: SessionModel,
        classes: ClassesModel,
        runner: JobRunner,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.images, self.session, self.classes, self.runner = images, session, classes, runner
        self.worker: JobWorker | None = None
        self.edits_for: Any = None  # callable Path -> EditLayer | None (the project's)
        self.prediction_file_for: Any = None  # callable Path -> cached cluster-map file | None

    def targets(self, request: ExportRequest) -> list[Path]:
        """Files this export would write (labelmap included)."""
        from acseg_core.labelling.export import LABELMAP_NAME, output_paths

        paths = []
        for image in self.images_for(request):
            paths.extend(output_paths(request.out_dir, image.stem, request.formats).values())
        if "png" in request.formats:
            paths.append(request.out_dir / LABELMAP_NAME)
        return paths

    def images_for(self, request: ExportRequest) -> list[Path]:
        if request.scope == "all":
            return self.images.images
        return [self.images.current] if self.images.current is not None else []

    def run(self, request: ExportRequest, overwrite: bool = False) -> JobWorker | None:
        images = self.images_for(request)
        if not images:
            self.failed.emit("Nothing to export", "open an image first")
            return None
        if not self.classes.classes:
            self.failed.emit("Nothing to export", "add classes and map clusters to them first")
            return None
        cached: dict[Path, Any] = {
            p: self.session.prediction(p) for p in images if self.session.has_prediction(p)
        }
        if self.prediction_file_for is not None:  # maps cached to files by "Label all"
            for image in images:
                if image not in cached:
                    file = self.prediction_file_for(image)
                    if file is not None:
                        cached[image] = file
        edits = {}
        if self.edits_for is not None:
            for image in images:
                layer = self.edits_for(image)
                if layer is not None:
                    edits[image] = layer.copy()  # a snapshot: painting goes on meanwhile
        job = export_job(
            images,
            cached,
            self.session.loaded,
            self.classes.class_map,
            request,
            edits,
            overwrite,
            self.session.smooth,
            self.session.readout,
        )
        worker = self.runner.start(job, "export")
        worker.succeeded.connect(self.finished)
        worker.failed.connect(self.failed)
        self.worker = worker
        return worker

    def ask_and_run(self, parent: QWidget) -> JobWorker | None:
        current = self.images.current
        default = (current.parent if current is not None else Path.cwd()) / "labels"
        dialog = ExportDialog(default, len(self.images.images), parent)
        if not dialog.exec():
            return None
        request = dialog.request()
        existing = [p for p in self.targets(request) if p.exists()]
        overwrite = False
        if existing:
            more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
            if not ask_yes_no(
                parent, "Replace files?", f"{existing[0]}{more} already exist. Replace them?"
            ):
                return None
            overwrite = True
        worker = self.run(request, overwrite)
        if worker is None:
            return None
        progress = QProgressDialog("Exporting…", "Cancel", 0, 0, parent)
        progress.setWindowTitle("Export")
        progress.setMinimumDuration(300)
        progress.canceled.connect(worker.cancel)
        worker.progress.connect(lambda p: _show(progress, p))
        worker.ended.connect(progress.close)
        worker.succeeded.connect(
            lambda result: show_info(
                parent,
                "Export finished",
                f"Wrote {len(result.written)} image(s) to {request.out_dir}",
            )
        )
        return worker


def _show(dialog: QProgressDialog, item: Progress) -> None:
    if item.total:
        dialog.setMaximum(int(item.total))
        dialog.setValue(int(item.done))
    dialog.setLabelText(item.message)
