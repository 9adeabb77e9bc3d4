"""Export in the worker, through the core's streamed export job.

Each image's map is the one on screen (the session's cache), a file "Label all" wrote,
or a prediction made during the export with the session's read-out; images that
cannot be exported are skipped and listed at the end. The dialog's scope and formats
are remembered; the folder is remembered per project (its file, or for an untitled
one its images' folder) and defaults to one named after it
(:func:`~acseg_core.labelling.export.default_export_dir`), never a folder shared by
every project. Existing files are only replaced after the user agreed; a folder that
holds another project's labels (other classes) is never mixed into: Yes replaces,
No exports nothing and says to choose another folder. Sources are never written.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, QSettings, Signal
from PySide6.QtWidgets import QProgressDialog, QWidget

from acseg_core.errors import AcsegError
from acseg_core.inference.predict import PredictOptions
from acseg_core.jobs import CancelToken, Progress
from acseg_core.labelling.export import (
    LABELMAP_NAME,
    ExportItem,
    default_export_dir,
    fresh_folder,
    labelmap_differs,
    output_paths,
)
from acseg_core.labelling.export_job import export_images, model_predictor
from app.dialogs import ask_yes_no, show_info
from app.export_dialog import ExportDialog, ExportRequest
from app.models import ClassesModel, DocumentModel, ImageListModel, SessionModel
from app.workers import JobRunner, JobWorker

SETTINGS_KEY = "export/last"  # scope and formats
FOLDERS_KEY = "export/folders"  # project → the folder its labels went to


def export_job(items: list[Any], class_map: Any, request: ExportRequest, overwrite: bool,
               predictor: Any) -> Any:  # fmt: skip
    def job(cancel: CancelToken) -> Any:
        return (
            yield from export_images(
                items,
                class_map,
                request.out_dir,
                formats=request.formats,
                overwrite=overwrite,
                predictor=predictor,
                cancel=cancel,
            )
        )

    return job


class ExportController(QObject):
    finished = Signal(object)  # ExportResult
    failed = Signal(str, object)  # title, exception

    def __init__(
        self,
        images: ImageListModel,
        session: SessionModel,
        classes: ClassesModel,
        runner: JobRunner,
        document: DocumentModel,
        settings: QSettings,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.images, self.session, self.classes, self.runner = images, session, classes, runner
        self.document, self.settings = document, settings
        self.worker: JobWorker | None = None

    def images_for(self, request: ExportRequest) -> list[Path]:
        if request.scope == "all":
            return self.images.images
        return [self.images.current] if self.images.current is not None else []

    def targets(self, request: ExportRequest) -> list[Path]:
        """Files this export would write (labelmap included)."""
        paths = []
        for image in self.images_for(request):
            paths.extend(output_paths(request.out_dir, image.stem, request.formats).values())
        if "png" in request.formats:
            paths.append(request.out_dir / LABELMAP_NAME)
        return paths

    def items(self, images: list[Path]) -> list[Any]:
        """One export item per image: its map (on screen, cached, or None to predict)
        and a snapshot of its hand edits (painting may go on meanwhile)."""
        key = self.session.key
        project = self.document.project
        items = []
        for image in images:
            ids: Any = self.session.prediction(image)
            if ids is None and key is not None:
                ids = project.prediction(image, key)
            try:
                layer = project.get_edits(image)
            except AcsegError:  # not an image of the project
                layer = None
            edits = layer.copy() if layer is not None else None
            items.append(ExportItem(image.stem, ids, source=image, edits=edits))
        return items

    def run(self, request: ExportRequest, overwrite: bool = False) -> JobWorker | None:
        images = self.images_for(request)
        if not images:
            self.failed.emit("Nothing to export", AcsegError("open an image first"))
            return None
        if not self.classes.classes:
            self.failed.emit(
                "Nothing to export", AcsegError("add classes and map clusters to them first")
            )
            return None
        predictor = None
        if self.session.loaded is not None:
            options = PredictOptions(readout=self.session.readout)
            predictor = model_predictor(self.session.loaded, options)
        job = export_job(self.items(images), self.classes.class_map, request, overwrite, predictor)
        worker = self.runner.start(job, "export")
        worker.succeeded.connect(self.finished)
        worker.failed.connect(self.failed)
        self.worker = worker
        return worker

    # -- the dialog ---------------------------------------------------------------------
    def project_key(self) -> str:
        """Which project the remembered folder belongs to: its file, or for an untitled
        project its images' folder."""
        path = self.document.path
        if path is not None:
            return str(path)
        images = self.images.images
        return "images:" + (str(images[0].parent) if images else "")

    def default_folder(self) -> Path:
        """Named after the project (or its images), and holding no other labels."""
        return fresh_folder(default_export_dir(self.document.path, self.images.images))

    def last_request(self) -> ExportRequest:
        """The previous export's scope and formats (or PNG + GeoTIFF of the current image),
        into this project's folder (:meth:`default_folder` the first time)."""
        stored = self.settings.value(SETTINGS_KEY)
        scope, formats = "current", ("png", "tif")
        if isinstance(stored, dict):
            scope = str(stored.get("scope", scope))
            raw = stored.get("formats", formats)
            formats = (raw,) if isinstance(raw, str) else tuple(str(f) for f in raw)
        folders = self.settings.value(FOLDERS_KEY)
        known = folders.get(self.project_key()) if isinstance(folders, dict) else None
        folder = Path(str(known)) if known else self.default_folder()
        return ExportRequest(scope, formats, folder)

    def remember(self, request: ExportRequest) -> None:
        choices = {"scope": request.scope, "formats": list(request.formats)}
        self.settings.setValue(SETTINGS_KEY, choices)
        folders = self.settings.value(FOLDERS_KEY)
        folders = dict(folders) if isinstance(folders, dict) else {}
        folders[self.project_key()] = str(request.out_dir)
        self.settings.setValue(FOLDERS_KEY, folders)

    def ask_and_run(self, parent: QWidget) -> JobWorker | None:
        dialog = ExportDialog(self.last_request(), len(self.images.images), parent)
        if not dialog.exec():
            return None
        request = dialog.request()
        self.remember(request)
        existing = [p for p in self.targets(request) if p.exists()]
        overwrite = False
        if "png" in request.formats and labelmap_differs(request.out_dir, self.classes.class_map):
            overwrite = ask_yes_no(
                parent,
                "Another project's labels",
                f"{request.out_dir} holds labels of other classes (another project's "
                "export). Replace them with this project's labels? (No exports nothing: "
                "choose another folder in the Export dialog.)",
            )
            if not overwrite:
                show_info(
                    parent,
                    "Nothing exported",
                    "Export again and choose another folder (or an empty one).",
                )
                return None
        elif existing:
            more = f" and {len(existing) - 1} more" if len(existing) > 1 else ""
            overwrite = ask_yes_no(
                parent,
                "Replace files?",
                f"{existing[0]}{more} already exist. Replace them? "
                "(No keeps them and exports only what is missing.)",
            )
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
            lambda result: show_info(parent, "Export finished", summary(result, request.out_dir))
        )
        return worker


def summary(result: Any, out_dir: Path) -> str:
    """What an export did, naming every skipped image and why."""
    lines = [f"Wrote {len(result.written)} image(s) to {out_dir}"]
    if getattr(result, "areas", None) is not None:
        lines.append(f"Class areas: {result.areas.name}")
    if result.done:
        lines.append(f"{len(result.done)} image(s) were already exported and kept")
    if result.skipped:
        lines.append(f"Skipped {len(result.skipped)}:")
        lines.extend(f"• {name}: {reason}" for name, reason in result.skipped)
    return "\n".join(lines)


def _show(dialog: QProgressDialog, item: Progress) -> None:
    if item.total:
        dialog.setMaximum(int(item.total))
        dialog.setValue(int(item.done))
    eta = item.eta_s
    left = f" — {int(eta // 60)}:{int(eta % 60):02d} left" if eta is not None else ""
    dialog.setLabelText(item.message + left)
