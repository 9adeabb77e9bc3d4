"""Main window: composes models, controllers, canvas, panels, actions. No logic of its own.

State lives in the small QObject models (``app.models``); long jobs go through
the controllers (``app.controllers``) and the shared :class:`JobRunner`; panels
are thin views. Everything the tests drive is reachable as an attribute here.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QEventLoop, QSettings, Qt, QTimer
from PySide6.QtGui import QCloseEvent, QIcon
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QListWidget,
    QMainWindow,
    QProgressBar,
    QToolButton,
    QWidget,
)

from acseg_core import __version__
from acseg_core.errors import AcsegError
from acseg_core.io.atomic import atomic_path
from acseg_core.io.raster import RasterInfo, list_images
from app.actions import build_actions
from app.canvas import ImageCanvas
from app.controllers.editing import EditingController
from app.controllers.export import ExportController
from app.controllers.label_all import LabelAllController, format_eta
from app.controllers.model import ModelController
from app.controllers.overlay import OverlayController
from app.controllers.predictions import PredictionController
from app.controllers.project import ProjectController
from app.controllers.training import TrainingController
from app.controllers.viewer import ImageViewController
from app.dialogs import ask_yes_no, show_error
from app.models import (
    ClassesModel,
    DisplayModel,
    DocumentModel,
    ImageListModel,
    OverlayModel,
    SessionModel,
)
from app.panels.classes_panel import ClassesPanel
from app.panels.display_panel import DisplayPanel
from app.panels.status import StatusReadout
from app.panels.tools_panel import ToolsBar
from app.panels.training_panel import TrainingPanel
from app.workers import JobRunner
from resources import sample_image_path

SETTINGS_GEOMETRY, SETTINGS_STATE = "window/geometry", "window/state"


class MainWindow(QMainWindow):
    def __init__(self, settings: QSettings | None = None) -> None:
        super().__init__()
        self.settings = settings or QSettings()
        self.setWindowIcon(
            QIcon(str(Path(__file__).resolve().parents[1] / "resources" / "icons" / "acseg.svg"))
        )
        self.resize(1360, 840)

        # state
        self.images = ImageListModel(self)
        self.display = DisplayModel(self)
        self.overlay = OverlayModel(self)
        self.classes = ClassesModel(self)
        self.session = SessionModel(self)
        self.document = DocumentModel(self)
        self.runner = JobRunner(self)

        # canvas and controllers
        self.canvas = ImageCanvas(self)
        self.setCentralWidget(self.canvas)
        self.viewer = ImageViewController(self.canvas, self.display, self)
        self.models = ModelController(self.session, self.classes, self)
        self.predictions = PredictionController(self.session, self.runner, self)
        self.overlays = OverlayController(
            self.canvas, self.viewer, self.images, self.session, self.overlay, self.classes, self
        )
        self.training = TrainingController(self.runner, self)
        self.project = ProjectController(self, self.settings)
        self.exporter = ExportController(self.images, self.session, self.classes, self.runner, self)
        self.editing = EditingController(
            self.canvas,
            self.viewer,
            self.images,
            self.session,
            self.classes,
            self.overlay,
            self.project,
            self.document,
            self,
        )
        self.label_all = LabelAllController(
            self.images, self.session, self.project, self.document, self.runner, self
        )

        # panels
        self.image_list = QListWidget(self)
        self.display_panel = DisplayPanel(self.display, self.overlay, self.session, self)
        self.classes_panel = ClassesPanel(self.classes, self.overlay, self)
        self.training_panel = TrainingPanel(self.training, self)
        left = Qt.DockWidgetArea.LeftDockWidgetArea
        right = Qt.DockWidgetArea.RightDockWidgetArea
        self.images_dock = self._dock("Images", "images_dock", self.image_list, left)
        self.display_dock = self._dock("Display", "display_dock", self.display_panel, left)
        self.classes_dock = self._dock("Classes", "classes_dock", self.classes_panel, right)
        self.training_dock = self._dock(
            "Training", "training_dock", self.training_panel, Qt.DockWidgetArea.BottomDockWidgetArea
        )
        self.training_dock.hide()
        self.job_bar = QProgressBar(self)
        self.job_bar.setMaximumWidth(160)
        self.job_bar.setTextVisible(False)
        self.job_bar.hide()
        self.statusBar().addWidget(self.job_bar)
        self.readout = StatusReadout(
            self.statusBar(), self.viewer, self.images, self.session, self.classes
        )
        self.actions_ = build_actions(self)
        self.tools_bar = ToolsBar(
            self.editing,
            self.classes,
            [a for n, a in self.actions_.all.items() if n.startswith("tool_")],
            self,
        )
        self.addToolBar(self.tools_bar)
        self.label_all_cancel = QToolButton(self)
        self.label_all_cancel.setDefaultAction(self.actions_.cancel_label_all)
        self.label_all_cancel.hide()
        self.statusBar().addWidget(self.label_all_cancel)
        self.exporter.edits_for = self.project.edits_for
        self.exporter.prediction_file_for = self.label_all.cached_file
        self.predictions.cached_file_for = self.label_all.cached_file
        self.readout.edit_at = self.editing.edit_at

        self._connect()
        self._update_title()
        self.restore_layout()

    def _dock(self, title: str, name: str, widget: QWidget, area: Qt.DockWidgetArea) -> QDockWidget:
        dock = QDockWidget(title, self)
        dock.setObjectName(name)
        dock.setWidget(widget)
        self.addDockWidget(area, dock)
        return dock

    def _connect(self) -> None:
        self.images.images_changed.connect(self._refresh_list)
        self.images.current_changed.connect(self._show_current)
        self.image_list.currentRowChanged.connect(self.images.set_current)
        self.image_list.itemActivated.connect(self._image_activated)
        self.canvas.cursor_moved.connect(self.readout.cursor_moved)
        self.viewer.failed.connect(self.report)
        self.models.failed.connect(self.report)
        self.predictions.failed.connect(self.report)
        self.predictions.started.connect(lambda p: self._job_started(f"Predicting {p.name}…"))
        self.predictions.progress.connect(self._job_progress)
        self.predictions.finished.connect(lambda _p: self._job_ended())
        self.predictions.failed.connect(lambda *_a: self._job_ended())
        self.session.model_changed.connect(lambda: self.predictions.request(self.images.current))
        self.session.smooth_changed.connect(lambda: self.predictions.request(self.images.current))
        self.session.readout_changed.connect(lambda: self.predictions.request(self.images.current))
        self.training.state_changed.connect(self._training_state)
        self.training.failed.connect(self.report)
        self.training.model_ready.connect(self.load_model_reporting)
        self.exporter.failed.connect(self.report)
        self.editing.message.connect(lambda text: self.statusBar().showMessage(text, 5000))
        self.label_all.failed.connect(self.report)
        self.label_all.running_changed.connect(self._label_all_running)
        self.label_all.progress.connect(self._label_all_progress)
        self.label_all.finished.connect(self._label_all_finished)
        # unsaved changes
        self.images.images_changed.connect(self._images_changed)
        self.classes.changed.connect(self.document.mark_dirty)
        self.session.model_changed.connect(self.document.mark_dirty)
        self.document.dirty_changed.connect(lambda _d: self._update_title())
        self.document.path_changed.connect(lambda _p: self._update_title())

    # -- public API (used by __main__, actions and tests) ------------------------------
    @property
    def current_info(self) -> RasterInfo | None:
        """What is known about the image on screen."""
        return self.viewer.info

    def default_images(self) -> list[Path]:
        return [sample_image_path()]

    def open_images(self, paths: list[Path]) -> None:
        self.images.set_images(paths)

    def add_images(self, paths: list[Path]) -> None:
        self.images.add_images(paths)

    def open_paths_reporting(self, paths: list[Path]) -> bool:
        """Open files/folders chosen by the user; a bad choice is a dialog, not a crash."""
        try:
            images = list_images(paths)
        except AcsegError as exc:
            self.report("Cannot open", str(exc))
            return False
        if not images:
            self.report("Cannot open", f"{', '.join(map(str, paths))}: no images found")
            return False
        self.images.add_images(images)
        return True

    def load_model(self, path: Path) -> None:
        """Load a model; raises AcsegError (for the command line)."""
        if not self.models.load(Path(path), report=False):
            raise AcsegError(self.models.last_error or f"{path}: cannot load model")

    def load_model_reporting(self, path: Path) -> bool:
        return self.models.load(Path(path))

    def open_project(self, path: Path) -> None:
        """Open a project; raises AcsegError (for the command line)."""
        self.project.open(Path(path))

    def report(self, title: str, message: str) -> None:
        self.statusBar().showMessage(message, 8000)
        show_error(self, title, message)

    def wait_for_predictions(self, timeout_ms: int = 120000) -> None:
        """Spin the event loop until the current image's prediction is done (screenshots)."""
        if not self.predictions.busy:
            return
        loop = QEventLoop()
        self.predictions.finished.connect(loop.quit)
        self.predictions.failed.connect(loop.quit)
        QTimer.singleShot(timeout_ms, loop.quit)
        loop.exec()

    def save_screenshot(self, path: Path) -> bool:
        """Render the whole window to ``path`` (atomically), with the overlay once predicted."""
        self.show()
        QApplication.processEvents()
        self.wait_for_predictions()
        QApplication.processEvents()
        self.canvas.fit()
        QApplication.processEvents()
        try:
            with atomic_path(path.resolve()) as tmp:
                if not self.grab().save(str(tmp), "PNG"):
                    raise OSError(f"{path}: could not write the PNG")
        except OSError:
            return False
        return True

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
        event.accept()

    # -- reactions -------------------------------------------------------------------------
    def _update_title(self) -> None:
        path = self.document.path
        name = path.name if path is not None else "Untitled"
        image = self.images.current
        shown = f" — {image.name}" if image is not None else ""
        self.setWindowTitle(f"{name}[*]{shown} — acseg {__version__}")
        self.setWindowModified(self.document.dirty)

    def _images_changed(self) -> None:
        # Images opened in an untitled session are not work to lose; in a project they are.
        if self.document.path is not None:
            self.document.mark_dirty()

    def _refresh_list(self) -> None:
        self.image_list.blockSignals(True)
        self.image_list.clear()
        for path in self.images.images:
            self.image_list.addItem(path.name)
            item = self.image_list.item(self.image_list.count() - 1)
            item.setToolTip(str(path))
            if not path.exists():
                item.setForeground(Qt.GlobalColor.red)
                item.setText(f"{path.name} (missing)")
        self.image_list.setCurrentRow(self.images.current_index)
        self.image_list.blockSignals(False)

    def _show_current(self, index: int) -> None:
        self.image_list.blockSignals(True)
        self.image_list.setCurrentRow(index)
        self.image_list.blockSignals(False)
        path = self.images.current
        if path is None:
            return
        if not path.exists():
            self.viewer.clear()
            self.statusBar().showMessage(
                f"{path} is missing: double-click it in the list to find it", 10000
            )
            return
        self._update_title()
        if self.viewer.show(path):
            info = self.viewer.info
            self.statusBar().showMessage(f"{path.name}: {info.describe()}", 8000)
            self.predictions.request(path)

    def _image_activated(self) -> None:
        path = self.images.current
        if path is not None and not path.exists():
            self.project.offer_relink(path)

    def _job_started(self, message: str) -> None:
        self.job_bar.setRange(0, 0)
        self.job_bar.show()
        self.statusBar().showMessage(message)

    def _job_progress(self, item: object) -> None:
        total = getattr(item, "total", None)
        if total:
            self.job_bar.setRange(0, int(total))
            self.job_bar.setValue(int(item.done))  # type: ignore[attr-defined]

    def _job_ended(self) -> None:
        self.job_bar.hide()
        self.statusBar().clearMessage()

    def _label_all_running(self, running: bool) -> None:
        self.label_all_cancel.setVisible(running)
        if running:
            self._job_started("Labelling all images…")
        else:
            self._job_ended()

    def _label_all_progress(self, item: object) -> None:
        self._job_progress(item)
        eta = format_eta(getattr(item, "eta_s", None))
        message = getattr(item, "message", "")
        self.statusBar().showMessage(f"{message} — {eta} left" if eta else message)

    def _label_all_finished(self, result: object) -> None:
        done = len(getattr(result, "done", []))
        skipped = getattr(result, "skipped", [])
        how = "cancelled" if getattr(result, "cancelled", False) else "finished"
        text = f"Labelling {how}: {done} image(s) labelled"
        if skipped:
            text += f", {len(skipped)} skipped ({skipped[0][0].name}: {skipped[0][1]})"
        self.statusBar().showMessage(text, 10000)
        self.predictions.request(self.images.current)

    def _training_state(self, state: str) -> None:
        if state == TrainingController.RUNNING:
            self.training_dock.show()
            self.training_dock.raise_()

    # -- dialogs (thin: they only gather input) ----------------------------------------------
    def ask_open_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open images", "", "Images (*.tif *.tiff *.png *.jpg *.jpeg);;All files (*)"
        )
        if files:
            self.open_paths_reporting([Path(f) for f in files])

    def ask_open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder")
        if folder:
            self.open_paths_reporting([Path(folder)])

    def ask_load_model(self) -> None:
        path, _ = QFileDialog.getOpenFileName(
            self, "Load model", "", "acseg models (*.pt);;All files (*)"
        )
        if path:
            self.load_model_reporting(Path(path))

    def start_training_wizard(self) -> None:
        from app.wizard import TrainWizard

        folder = self.images.current.parent if self.images.current is not None else None
        wizard = TrainWizard(self.runner, folder, self)
        if wizard.exec():
            try:
                self.training.start(wizard.config())
            except (AcsegError, RuntimeError) as exc:
                self.report("Cannot train", str(exc))

    def start_export_dialog(self) -> None:
        self.exporter.ask_and_run(self)
