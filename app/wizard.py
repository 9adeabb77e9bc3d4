"""Train-on-folder wizard: folder → scan → preset/K/epochs/device/output → a ``TrainConfig``.

The wizard only *produces* a config (``wizard.config()``); the training
controller runs it. Pages can be driven programmatically (``set_folder``,
the public widgets), so tests never need a modal loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import qtawesome as qta
from PySide6.QtCore import Qt, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QLineEdit,
    QPlainTextEdit,
    QPushButton,
    QSpinBox,
    QTreeWidget,
    QTreeWidgetItem,
    QVBoxLayout,
    QWidget,
    QWizard,
    QWizardPage,
)

from acseg_core.device import available_devices
from acseg_core.errors import AcsegError
from acseg_core.model.config import field_default
from acseg_core.presets import PRESETS, default_preset, preset, training_defaults
from acseg_core.training.config import TrainConfig
from acseg_core.training.dataset import scan_inputs
from acseg_core.training.estimate import estimate_epoch_seconds, format_duration
from acseg_core.training.loop import steps_per_epoch_for
from app.workers import JobRunner, JobWorker

RUNS_HOME = Path.home() / "acseg-runs"  # where runs go for an untitled project


def fresh_run_dir(images: Path, beside: Path | None = None) -> Path:
    """``<beside>/<images folder name>-run`` (``-run-2``… when taken): runs go beside the
    project file (or under ``~/acseg-runs``), never into the image folder."""
    base = beside if beside is not None else RUNS_HOME
    name = f"{images.name or 'images'}-run"
    candidate, n = base / name, 2
    while candidate.exists():
        candidate, n = base / f"{name}-{n}", n + 1
    return candidate


class FolderPage(QWizardPage):
    """Choose the folder; show usable images (size, bands) and what was skipped and why."""

    folder_changed = Signal(str)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Training images")
        self.setSubTitle("Choose a folder of images of one kind (same bands).")
        self.scan = None
        self.folder_edit = QLineEdit(self)
        self.folder_edit.editingFinished.connect(lambda: self.set_folder(self.folder_edit.text()))
        browse = QPushButton(qta.icon("fa5s.folder-open"), "Browse…", self)
        browse.clicked.connect(self._browse)
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(browse)
        self.images = QTreeWidget(self)
        self.images.setHeaderLabels(["Image", "Size", "Bands", "Type"])
        self.images.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.images.setRootIsDecorated(False)
        self.summary = QLabel("", self)
        self.summary.setWordWrap(True)
        self.notes = QPlainTextEdit(self)
        self.notes.setReadOnly(True)
        self.notes.setMaximumHeight(90)
        layout = QVBoxLayout(self)
        layout.addLayout(row)
        layout.addWidget(self.images, 1)
        layout.addWidget(self.summary)
        layout.addWidget(QLabel("Warnings:", self))
        layout.addWidget(self.notes)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Training folder", self.folder_edit.text())
        if folder:
            self.set_folder(folder)

    def set_folder(self, folder: str | Path, crop: int | None = None) -> None:
        """Scan ``folder`` for training images (``crop``: the run's crop size, which
        decides which images are padded; the settings page's by default)."""
        self.folder_edit.setText(str(folder))
        self.folder_changed.emit(str(folder))
        self.images.clear()
        self.notes.clear()
        self.scan = None
        try:
            self.scan = scan_inputs([Path(folder)], crop=crop or self._crop())
        except AcsegError as exc:
            self.summary.setText(f"<span style='color:#c0392b'>{exc}</span>")
        else:
            for info in self.scan.images:
                QTreeWidgetItem(
                    self.images,
                    [info.path.name, f"{info.width}×{info.height}", str(info.count), info.dtype],
                )
            self.summary.setText(f"Usable: {self.scan.summary()}")
            self.notes.setPlainText("\n".join(self.scan.warnings) or "none")
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.scan is not None

    def _crop(self) -> int:
        wizard = self.wizard()
        if isinstance(wizard, TrainWizard):
            return wizard.settings_page.crop.value()
        return int(training_defaults(default_preset("auto"))["crop"])


class SettingsPage(QWizardPage):
    """Preset (with a measured time per epoch), K, epochs, device, output folder."""

    def __init__(self, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Training settings")
        self.runner = runner
        self.estimate_worker: JobWorker | None = None
        self.preset = QComboBox(self)
        for name, record in PRESETS.items():
            self.preset.addItem(f"{name} — {record.description}", name)
        # as the CLI and the Python API choose it: by the device the run will use
        self.preset.setCurrentIndex(self.preset.findData(default_preset("auto")))
        self.estimate_label = QLabel("", self)
        self.estimate_label.setWordWrap(True)
        self.estimate_button = QPushButton(qta.icon("fa5s.stopwatch"), "Estimate", self)
        self.estimate_button.clicked.connect(self.start_estimate)
        estimate_row = QHBoxLayout()
        estimate_row.addWidget(self.estimate_label, 1)
        estimate_row.addWidget(self.estimate_button)
        self.clusters = QSpinBox(self)
        self.clusters.setRange(2, 64)
        self.clusters.setValue(preset(self.preset.currentData()).clusters)  # as the CLI
        self.epochs = QSpinBox(self)
        self.epochs.setRange(1, 1000)
        self.steps_per_epoch = QSpinBox(self)
        self.steps_per_epoch.setRange(0, 100000)
        self.steps_per_epoch.setSpecialValueText("auto (one pass over the images)")
        self.steps_per_epoch.setValue(0)
        self.crop = QSpinBox(self)
        self.crop.setRange(16, 1024)
        self.crop.setSingleStep(8)
        self.batch = QSpinBox(self)
        self.batch.setRange(1, 256)
        self.batch.setValue(field_default(TrainConfig, "batch"))
        self.device = QComboBox(self)
        self.device.addItem("Auto", "auto")
        for name in available_devices():
            self.device.addItem(name.upper(), name)
        self.out_dir = QLineEdit(self)
        browse = QPushButton(qta.icon("fa5s.folder-open"), "…", self)
        browse.clicked.connect(self._browse_out)
        out_row = QHBoxLayout()
        out_row.addWidget(self.out_dir, 1)
        out_row.addWidget(browse)
        form = QFormLayout(self)
        form.addRow("Preset", self.preset)
        form.addRow("Time per epoch", estimate_row)
        form.addRow("Clusters (K)", self.clusters)
        form.addRow("Epochs", self.epochs)
        form.addRow("Steps per epoch", self.steps_per_epoch)
        form.addRow("Crop (px)", self.crop)
        form.addRow("Batch", self.batch)
        form.addRow("Device", self.device)
        form.addRow("Output folder", out_row)
        for widget in (self.preset, self.device):
            widget.currentIndexChanged.connect(self._estimate_stale)
        for spin in (self.crop, self.batch, self.steps_per_epoch):
            spin.valueChanged.connect(self._estimate_stale)
        self.out_dir.textChanged.connect(self.completeChanged)
        self.preset.currentIndexChanged.connect(self._apply_preset_training)
        self._apply_preset_training()
        self._estimate_stale()

    def _apply_preset_training(self) -> None:
        """Show the preset's training defaults (cpu-small: 128 px crops, 10 × 30 steps,
        as chosen by ``acseg-core bench --accuracy``); the user may still change them."""
        defaults = training_defaults(self.preset.currentData())
        self.crop.setValue(defaults["crop"])
        self.epochs.setValue(defaults["epochs"])
        self.steps_per_epoch.setValue(defaults["steps_per_epoch"] or 0)

    def initializePage(self) -> None:
        """Entering the page: time a few steps right away (in the worker)."""
        self.start_estimate()

    def _browse_out(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.out_dir.text())
        if folder:
            self.out_dir.setText(folder)

    def _estimate_stale(self) -> None:
        self.estimate_label.setText("press Estimate to time a few steps on this machine")

    def train_config(self, inputs: tuple[str, ...] = (), bands: int = 3) -> TrainConfig:
        """The run these widgets describe (the preset's record for everything else)."""
        model = preset(self.preset.currentData(), in_channels=bands, clusters=self.clusters.value())
        return TrainConfig(
            inputs=inputs,
            out_dir=self.out_dir.text().strip() or "run",
            model=model,
            epochs=self.epochs.value(),
            steps_per_epoch=self.steps_per_epoch.value() or None,
            crop=self.crop.value(),
            batch=self.batch.value(),
            device=self.device.currentData(),
        )

    def start_estimate(self) -> JobWorker | None:
        """Time a few steps of the very run the wizard will start, in the worker."""
        wizard = self.wizard()
        bands = wizard.bands() if isinstance(wizard, TrainWizard) else 3
        steps = self.steps_per_epoch.value()
        if not steps and isinstance(wizard, TrainWizard) and wizard.folder_page.scan is not None:
            steps = wizard.auto_steps_per_epoch()
        try:
            cfg = self.train_config(bands=bands)
        except AcsegError as exc:
            self.estimate_label.setText(str(exc))
            return None
        if self.estimate_worker is not None and self.estimate_worker.running:
            return self.estimate_worker
        self.estimate_label.setText("measuring…")

        def job(cancel: Any) -> Any:
            return (yield from estimate_epoch_seconds(cfg, bands, max(1, steps), cancel))

        worker = self.runner.start(job, "estimate")
        worker.succeeded.connect(self._estimated)
        worker.failed.connect(lambda _t, m: self.estimate_label.setText(f"no estimate: {m}"))
        self.estimate_worker = worker
        return worker

    def _estimated(self, result: tuple[float, str]) -> None:
        seconds, device = result
        total = seconds * self.epochs.value()
        self.estimate_label.setText(
            f"≈ {format_duration(seconds)} per epoch on {device} "
            f"({format_duration(total)} for {self.epochs.value()} epochs)"
        )

    def isComplete(self) -> bool:
        return bool(self.out_dir.text().strip())


class TrainWizard(QWizard):
    """``runs_beside``: the folder run outputs go into by default (the project file's);
    None = ``~/acseg-runs``. The output folder follows the training folder until the
    user types one."""

    def __init__(
        self,
        runner: JobRunner,
        folder: Path | None = None,
        parent: QWidget | None = None,
        *,
        runs_beside: Path | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train on a folder")
        self.setWindowIcon(qta.icon("fa5s.brain"))
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage)
        self.setMinimumSize(640, 480)
        self.runs_beside = runs_beside
        self.folder_page = FolderPage(self)
        self.settings_page = SettingsPage(runner, self)
        self.addPage(self.folder_page)
        self.addPage(self.settings_page)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self._suggested = ""  # the output folder last filled in for the user
        self.folder_page.folder_changed.connect(self._suggest_output)
        if folder is not None:
            self.set_folder(folder)

    def set_folder(self, folder: str | Path) -> None:
        self.folder_page.set_folder(folder, crop=self.settings_page.crop.value())

    def _suggest_output(self, folder: str) -> None:
        out = self.settings_page.out_dir
        if out.text().strip() in ("", self._suggested):  # not typed by the user: follow
            self._suggested = str(fresh_run_dir(Path(folder), self.runs_beside))
            out.setText(self._suggested)

    def bands(self) -> int:
        scan = self.folder_page.scan
        return scan.bands if scan is not None else 3

    def auto_steps_per_epoch(self) -> int:
        """What the core will use when steps per epoch is "auto"."""
        return steps_per_epoch_for(self.folder_page.scan, self.settings_page.train_config())

    def config(self) -> TrainConfig:
        """The run these pages describe. Raises AcsegError when the folder is unusable."""
        scan = self.folder_page.scan
        if scan is None:
            raise AcsegError("choose a folder with usable images first")
        inputs = tuple(str(p) for p in scan.paths)
        return self.settings_page.train_config(inputs, scan.bands)
