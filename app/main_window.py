"""Main window: composes the canvas, panels, actions and status bar. No logic of its own."""

from __future__ import annotations

import math
import os
import tempfile
from pathlib import Path

import qtawesome as qta
from PySide6.QtCore import Qt
from PySide6.QtGui import QAction, QKeySequence
from PySide6.QtWidgets import (
    QApplication,
    QDockWidget,
    QFileDialog,
    QLabel,
    QListWidget,
    QMainWindow,
    QMessageBox,
)

from acseg_core import __version__
from acseg_core.errors import AcsegError
from acseg_core.raster import RasterInfo, list_images, open_raster, percentile_stretch
from app.canvas import ImageCanvas
from app.imaging import rgb_to_qimage
from app.models import ImageListModel
from resources import sample_image_path

PREVIEW_MAX_SIDE = 2048


class MainWindow(QMainWindow):
    def __init__(self) -> None:
        super().__init__()
        self.setWindowTitle(f"acseg {__version__}")
        self.resize(1280, 800)
        self.images = ImageListModel(self)
        self.current_info: RasterInfo | None = None

        self.canvas = ImageCanvas(self)
        self.setCentralWidget(self.canvas)
        self.image_list = QListWidget(self)
        dock = QDockWidget("Images", self)
        dock.setObjectName("images_dock")
        dock.setWidget(self.image_list)
        self.addDockWidget(Qt.DockWidgetArea.LeftDockWidgetArea, dock)
        self.position_label = QLabel(self)
        self.statusBar().addPermanentWidget(self.position_label)

        self._build_actions()
        self.images.images_changed.connect(self._refresh_list)
        self.images.current_changed.connect(self._show_current)
        self.image_list.currentRowChanged.connect(self.images.set_current)
        self.canvas.cursor_moved.connect(self._show_cursor)

    # -- actions ---------------------------------------------------------------
    def _build_actions(self) -> None:
        def action(text: str, icon: str, shortcut: QKeySequence | str, slot: object) -> QAction:
            act = QAction(qta.icon(icon), text, self)
            act.setShortcut(QKeySequence(shortcut))
            act.triggered.connect(slot)
            return act

        self.act_open = action(
            "&Open images…", "fa5s.folder-open", QKeySequence.Open, self._ask_open_files
        )
        self.act_open_folder = action(
            "Open &folder…", "fa5s.folder", "Ctrl+Shift+O", self._ask_open_folder
        )
        self.act_fit = action("&Fit", "fa5s.expand", "F", self.canvas.fit)
        self.act_actual = action("&1:1", "fa5s.search", "1", self.canvas.actual_size)
        self.act_quit = action("&Quit", "fa5s.power-off", QKeySequence.Quit, self.close)
        file_menu = self.menuBar().addMenu("&File")
        file_menu.addActions([self.act_open, self.act_open_folder])
        file_menu.addSeparator()
        file_menu.addAction(self.act_quit)
        view_menu = self.menuBar().addMenu("&View")
        view_menu.addActions([self.act_fit, self.act_actual])
        toolbar = self.addToolBar("Main")
        toolbar.setObjectName("main_toolbar")
        toolbar.addActions([self.act_open, self.act_open_folder, self.act_fit, self.act_actual])

    def _ask_open_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Open images", "", "Images (*.tif *.tiff *.png *.jpg *.jpeg);;All files (*)"
        )
        if files:
            self._open_reporting_errors([Path(f) for f in files])

    def _ask_open_folder(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Open folder")
        if folder:
            self._open_reporting_errors([Path(folder)])

    def _open_reporting_errors(self, paths: list[Path]) -> None:
        try:
            self.open_images(list_images(paths))
        except AcsegError as exc:
            QMessageBox.warning(self, "Cannot open", str(exc))

    # -- public API (used by __main__ and tests) -------------------------------
    def default_images(self) -> list[Path]:
        return [sample_image_path()]

    def open_images(self, paths: list[Path]) -> None:
        self.images.set_images(paths)

    def open_project(self, path: Path) -> None:
        raise AcsegError(f"{path}: projects are not supported yet")

    def load_model(self, path: Path) -> None:
        raise AcsegError(f"{path}: loading models is not supported yet")

    def save_screenshot(self, path: Path) -> bool:
        """Render the whole window to ``path`` (atomically)."""
        self.show()
        QApplication.processEvents()
        self.canvas.fit()
        QApplication.processEvents()
        path = path.resolve()
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(suffix=".png", dir=path.parent)
        os.close(fd)
        ok = self.grab().save(tmp, "PNG")
        if ok:
            os.replace(tmp, path)
        else:
            os.unlink(tmp)
        return ok

    # -- reactions ----------------------------------------------------------------
    def _refresh_list(self) -> None:
        self.image_list.blockSignals(True)
        self.image_list.clear()
        self.image_list.addItems([p.name for p in self.images.images])
        self.image_list.blockSignals(False)

    def _show_current(self, index: int) -> None:
        self.image_list.blockSignals(True)
        self.image_list.setCurrentRow(index)
        self.image_list.blockSignals(False)
        path = self.images.current
        if path is None:
            return
        try:
            with open_raster(path) as raster:
                data, _scale = raster.read_preview(PREVIEW_MAX_SIDE)
                valid = raster.valid_mask(data)
                info = raster.info
        except AcsegError as exc:
            QMessageBox.warning(self, "Cannot open", str(exc))
            return
        rgb = percentile_stretch(data[:3] if info.count >= 3 else data[:1], valid=valid)
        self.current_info = info
        self.canvas.set_image(rgb_to_qimage(rgb), info.width, info.height)
        self.setWindowTitle(f"{path.name} — acseg {__version__}")
        self.statusBar().showMessage(f"{path.name}: {info.describe()}")

    def _show_cursor(self, x: float, y: float) -> None:
        if math.isnan(x):
            self.position_label.setText("")
        else:
            self.position_label.setText(f"x {int(x)}  y {int(y)}")
