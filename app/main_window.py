"""Main window: composes models, controllers, canvas, panels and actions.

The work lives in one core :class:`~acseg_core.labelling.project.Project` (held by
the :class:`DocumentModel`); the small QObject models (``app.models``) are views over
it; long jobs go through the controllers (``app.controllers``, each given only the
collaborators it uses, in its constructor) and the shared :class:`JobRunner`; panels
are thin views. What is here is wiring, the few dialogs that only gather a choice,
and window-level reactions.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QIcon
from PySide6.QtWidgets import QApplication, QDockWidget, QMainWindow, QWidget

from acseg_core.errors import AcsegError, InputError, os_reason
from acseg_core.io.atomic import atomic_path
from acseg_core.io.raster import RasterInfo
from acseg_core.version import __version__
from app.actions import build_actions
from app.canvas import ImageCanvas
from app.controllers.editing import EditingController
from app.controllers.export import ExportController
from app.controllers.label_all import LabelAllController, LabelAllResult
from app.controllers.label_all import summary as label_all_summary
from app.controllers.learning import LearnController
from app.controllers.model import ModelController
from app.controllers.overlay import OverlayController
from app.controllers.predictions import PredictionController
from app.controllers.project import IMAGE_FILTER, ProjectController
from app.controllers.training import TrainingController
from app.controllers.viewer import ImageViewController
from app.dialogs import ask_yes_no, show_error
from app.file_dialogs import FileDialogs
from app.models import (
    ClassesModel,
    DisplayModel,
    DocumentModel,
    ImageListModel,
    OverlayModel,
    SessionModel,
    ViewState,
)
from app.notices import Notices
from app.opening import ImageOpener
from app.panels.classes_panel import ClassesPanel
from app.panels.display_panel import DisplayPanel
from app.panels.image_list import ImageListPanel
from app.panels.job_status import JobStatus
from app.panels.learning_panel import LearningPanel
from app.panels.statistics import StatisticsPanel
from app.panels.status import StatusReadout
from app.panels.tools_panel import ToolsBar
from app.panels.training_panel import TrainingPanel
from app.wizard import TrainWizard
from app.workers import JobRunner, describe_failure, message_of

SETTINGS_GEOMETRY = "window/geometry"
SETTINGS_STATE = "window/state"
ICON = Path(__file__).resolve().parents[1] / "resources" / "icons" / "acseg.svg"


TRAINING_DOCK_HEIGHT = 190  # px


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings()
        self.dialogs = FileDialogs(self.settings)  # open where the user last was
        self.setWindowIcon(QIcon(str(ICON)))
        self.resize(1360, 840)

        # state: the project (in the document) and the views over it
        self.document = DocumentModel(self)
        self.images = ImageListModel(self.document, self)
        self.display = DisplayModel(self)
        self.overlay = OverlayModel(self)
        self.classes = ClassesModel(self.document, self)
        self.session = SessionModel(self)
        self.view_state = ViewState(
            self.document, self.images, self.session, self.display, self.overlay, self
        )
        self.runner = JobRunner(self)

        # canvas and controllers
        self.canvas = ImageCanvas(self)
        self.setCentralWidget(self.canvas)
        self.viewer = ImageViewController(self.canvas, self.display, self, self.runner)
        self.models = ModelController(self.session, self.classes, self.overlay, self.document,
                                      self)  # fmt: skip
        self.learning = LearnController(
            self.runner, self.session, self.classes, self.overlay, self.document, self,
            images=self.images,
        )  # fmt: skip
        self.project = ProjectController(
            self.document, self.images, self.session, self.models, self.learning,
            self.view_state, self.settings, lambda: self, self,
        )  # fmt: skip
        self.label_all = LabelAllController(
            self.images, self.session, self.document, self.runner, self
        )
        self.predictions = PredictionController(self.session, self.runner, self.document, self)
        self.overlays = OverlayController(
            self.canvas, self.viewer, self.images, self.session, self.overlay, self.classes, self
        )
        self.training = TrainingController(self.runner, self)
        self.exporter = ExportController(
            self.images, self.session, self.classes, self.runner, self.document, self.settings,
            self,
        )  # fmt: skip
        self.editing = EditingController(
            self.canvas, self.viewer, self.images, self.session, self.classes, self.overlay,
            self.document, self,
        )  # fmt: skip
        self.notices = Notices(self.statusBar(), self)
        self.opener = ImageOpener(
            self.images, self.project, self.models, self.classes, self.document, self.notices
        )

        # panels
        self.image_list = ImageListPanel(self.images, self.project.offer_relink, self)
        self.display_panel = DisplayPanel(self.display, self.overlay, self.session, self)
        self.classes_panel = ClassesPanel(self.classes, self.overlay, self, self.dialogs)
        self.training_panel = TrainingPanel(self.training, self)
        left = Qt.DockWidgetArea.LeftDockWidgetArea
        self.images_dock = self._dock("Images", "images_dock", self.image_list, left)
        self.display_dock = self._dock("Display", "display_dock", self.display_panel, left)
        self.classes_dock = self._dock(
            "Classes", "classes_dock", self.classes_panel, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.training_dock = self._dock(
            "Training", "training_dock", self.training_panel, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.training_dock.hide()
        self.statistics = StatisticsPanel(
            self.images, self.session, self.classes, self._edits_of,
            self.label_all.cached_file, self.runner, self,
        )  # fmt: skip
        self.statistics_dock = self._dock(
            "Statistics", "statistics_dock", self.statistics, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.tabifyDockWidget(self.classes_dock, self.statistics_dock)  # a tab beside Classes
        self.learning_panel = LearningPanel(self.learning, self)
        self.learning_dock = self._dock(
            "Learning", "learning_dock", self.learning_panel, Qt.DockWidgetArea.RightDockWidgetArea
        )
        self.tabifyDockWidget(self.classes_dock, self.learning_dock)
        self.classes_dock.raise_()
        self.editing.edited.connect(self.statistics.edited)
        self.cursor_info = StatusReadout(
            self.statusBar(), self.viewer, self.images, self.session, self.classes,
            self.editing.edit_at,
        )  # fmt: skip
        self.actions_ = build_actions(self)
        self.jobs = JobStatus(self.statusBar(), self.actions_.cancel_label_all)
        tool_actions = [a for n, a in self.actions_.all.items() if n.startswith("tool_")]
        self.tools_bar = ToolsBar(self.editing, self.classes, tool_actions, self)
        self.addToolBar(self.tools_bar)

        self._connect()
        self._update_title()
        self.restore_layout()

    def _name_cluster(self, cluster: int) -> None:
        self.classes_dock.show()
        self.classes_dock.raise_()
        self.classes_panel.focus_cluster(cluster)

    def _edits_of(self, image: Path) -> Any:
        """``image``'s edit layer in the open project (None: none, or not in it)."""
        project = self.document.project
        if not any(entry.path == image for entry in project.images):
            return None
        return project.get_edits(image)

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _connect(self) -> None:
        show_current = lambda *_a: self.predictions.request(self.images.current)  # noqa: E731
        self.images.current_changed.connect(self._show_current)
        self.canvas.cursor_moved.connect(self.cursor_info.cursor_moved)
        for source in (self.viewer, self.models, self.training, self.exporter, self.label_all):
            source.failed.connect(self.report)
        self.predictions.failed.connect(self.notices.prediction_failed)
        self.predictions.started.connect(
            lambda p, how: self.jobs.started(
                f"{'Reading the cached map of' if how == 'cached' else 'Predicting'} {p.name}…"
            )
        )
        self.predictions.progress.connect(self.jobs.progress)
        self.predictions.finished.connect(lambda _p: self.jobs.ended())
        self.predictions.failed.connect(lambda *_a: self.jobs.ended())
        self.session.model_changed.connect(show_current)
        self.session.readout_changed.connect(show_current)
        self.session.model_changed.connect(self.notices.model_changed)
        self.training.state_changed.connect(self._training_state)
        self.training.model_ready.connect(self.load_model_reporting)
        self.editing.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.editing.cluster_picked.connect(self._name_cluster)
        self.editing.undo_changed.connect(self.learning.edited)
        self.learning.message.connect(lambda text: self.statusBar().showMessage(text, 10000))
        self.learning.failed.connect(self.report)
        self.learning.state_changed.connect(self._learning_state)
        self.models.dialog_parent = lambda: self
        self.models.message.connect(lambda text: self.statusBar().showMessage(text, 10000))
        self.label_all.running_changed.connect(self._label_all_running)
        self.label_all.progress.connect(lambda p: self.jobs.progress(p, with_message=True))
        self.label_all.finished.connect(self._label_all_finished)
        self.document.replaced.connect(self.session.clear_maps)
        self.project.cleared.connect(self.viewer.clear)
        self.project.cleared.connect(self.cursor_info.clear)  # no stale read-outs
        # a stroke, fill or undo changes what is under the cursor: say so at once
        self.editing.edited.connect(lambda _window: self.cursor_info.refresh())
        self.project.cleared.connect(self.notices.clear)
        self.project.message.connect(self.statusBar().showMessage)
        # unsaved changes: the project says (the document announces them)
        self.document.dirty_changed.connect(lambda _d: self._update_title())
        self.document.path_changed.connect(lambda _p: self._update_title())

    # -- public API (used by __main__, actions and tests) ------------------------------
    @property
    def current_info(self) -> RasterInfo | None:
        """What is known about the image on screen."""
        return self.viewer.info

    def open_images(self, paths: list[Path]) -> None:
        self.images.set_images(paths)

    def add_images(self, paths: list[Path]) -> None:
        self.images.add_images(paths)

    def open_paths_reporting(self, paths: list[Path]) -> bool:
        """Open files/folders chosen by the user (see :class:`app.opening.ImageOpener`)."""
        return self.opener.open(paths)

    def load_model(self, path: Path) -> None:
        """Load a model; raises AcsegError (for the command line)."""
        if not self.models.load(Path(path), report=False):
            raise AcsegError(self.models.last_error or f"{path}: cannot load model")

    def load_model_reporting(self, path: Path) -> bool:
        return self.models.load(Path(path))

    def open_project(self, path: Path) -> None:
        """Open a project; raises AcsegError (for the command line)."""
        self.project.open(Path(path))

    def offer_last_project(self) -> bool:
        """At a plain launch: offer to reopen the last project (if it is still there);
        True when it was opened."""
        last = next((p for p in self.project.recent() if p.is_file()), None)
        if last is None:
            return False
        if not ask_yes_no(
            self,
            "Reopen the last project?",
            f"Reopen {last.name} (in {last.parent})?\n\nNo shows the sample instead; "
            "File → Open recent has it too.",
        ):
            return False
        return self.project.open_reporting(last)

    def report(self, title: str, error: BaseException) -> None:
        """A failure from a controller or a job: its one line, in a dialog."""
        message = message_of(error)
        self.statusBar().showMessage(message, 8000)
        show_error(self, title or describe_failure(error)[0], message)

    def wait_for_predictions(self, timeout_ms: int = 120000) -> None:
        """Spin the event loop until the current image's prediction is done (screenshots)."""
        if not self.predictions.busy:
            return
        loop = QEventLoop()
        self.predictions.finished.connect(loop.quit)
        self.predictions.failed.connect(loop.quit)
        QTimer.singleShot(timeout_ms, loop.quit)
        loop.exec()

    def save_screenshot(self, path: Path) -> None:
        """Render the whole window to ``path`` (atomically), with the overlay once
        predicted; raises InputError naming the file when it cannot be written."""
        self.show()
        QApplication.processEvents()
        self.wait_for_predictions()
        QApplication.processEvents()
        self.canvas.fit()
        QApplication.processEvents()
        try:
            with atomic_path(path.resolve()) as tmp:
                if not self.grab().save(str(tmp), "PNG"):
                    raise InputError(path, "could not write the PNG (is the disk full?)")
        except OSError as exc:
            raise InputError(path, f"cannot write the screenshot ({os_reason(exc)})") from exc

    # -- layout ------------------------------------------------------------------------
    def restore_layout(self) -> None:
        geometry = self.settings.value(SETTINGS_GEOMETRY)
        state = self.settings.value(SETTINGS_STATE)
        if geometry is not None:
            self.restoreGeometry(geometry)
        if state is not None:
            self.restoreState(state)

    def save_layout(self) -> None:
        self.settings.setValue(SETTINGS_GEOMETRY, self.saveGeometry())
        self.settings.setValue(SETTINGS_STATE, self.saveState())

    def closeEvent(self, event: QCloseEvent) -> None:
        if self.training.running and not ask_yes_no(
            self, "Training is running", "Stop training and quit? The checkpoint is kept."
        ):
            event.ignore()
            return
        if not self.project.confirm_discard():
            event.ignore()
            return
        self.save_layout()
        self.runner.shutdown()
        self.viewer.close()
        self.document.project.close()
        event.accept()

    # -- reactions -------------------------------------------------------------------------
    def _update_title(self) -> None:
        path = self.document.path
        name = path.name if path is not None else "Untitled"
        image = self.images.current
        shown = f" — {image.name}" if image is not None else ""
        self.setWindowTitle(f"{name}[*]{shown} — acseg {__version__}")
        self.setWindowModified(self.document.dirty)

    def _show_current(self, _index: int) -> None:
        path = self.images.current
        self._update_title()
        if path is None:
            self.viewer.clear()
            return
        if not path.exists():
            self.viewer.clear()
            self.statusBar().showMessage(
                f"{path} is missing: double-click it in the list to find it", 10000
            )
            return
        if self.viewer.show(path):
            self.statusBar().showMessage(f"{path.name}: {self.viewer.info.describe()}", 8000)
            self.predictions.request(path)

    def _label_all_running(self, running: bool) -> None:
        if running:
            self.jobs.started("Labelling all images…", cancellable=True)
        else:
            self.jobs.ended()

    def _label_all_finished(self, result: LabelAllResult) -> None:
        self.statusBar().showMessage(label_all_summary(result), 10000)
        self.predictions.request(self.images.current)

    def _learning_state(self) -> None:
        """A learn whose strokes disagree: the Learning panel comes forward to say so."""
        quality = self.learning.quality
        if quality is not None and quality.warnings() and not self.learning.before:
            self.learning_dock.show()
            self.learning_dock.raise_()

    def _training_state(self, state: str) -> None:
        if state == TrainingController.RUNNING:
            self.training_dock.show()
            self.training_dock.raise_()
            # a strip for the progress and the loss plot, not a quarter of the window
            height = min(TRAINING_DOCK_HEIGHT, self.height() // 4)
            self.resizeDocks([self.training_dock], [height], Qt.Orientation.Vertical)

    # -- dialogs (thin: they only gather input) ----------------------------------------------
    def _here(self) -> Path | None:
        """The folder of the image on screen (where dialogs start before any was used)."""
        current = self.images.current
        return current.parent if current is not None else None

    def ask_open_files(self) -> None:
        files = self.dialogs.open_files(self, "Open images", IMAGE_FILTER, self._here())
        if files:
            self.open_paths_reporting(files)

    def ask_open_folder(self) -> None:
        folder = self.dialogs.folder(self, "Open folder", self._here())
        if folder is not None:
            self.open_paths_reporting([folder])

    def ask_load_model(self) -> None:
        path = self.dialogs.open_file(
            self, "Load model", "acseg models (*.pt);;All files (*)", self._here()
        )
        if path is not None:
            self.load_model_reporting(path)

    def start_training_wizard(self) -> None:
        if self.training.running:  # one run at a time: show the one under way
            self.training_dock.show()
            self.training_dock.raise_()
            self.statusBar().showMessage("Training is running: see the Training panel", 5000)
            return
        folder = self.images.current.parent if self.images.current is not None else None
        beside = self.document.path.parent if self.document.path is not None else None
        wizard = TrainWizard(self.runner, folder, self, runs_beside=beside, settings=self.settings)
        if wizard.exec():
            try:
                self.training.start(wizard.config(), wizard.settings_page.estimate)
            except (AcsegError, RuntimeError) as exc:
                self.report("Cannot train", str(exc))

    def start_export_dialog(self) -> None:
        self.exporter.ask_and_run(self)
