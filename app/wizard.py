"""Train-on-folder wizard: folder → scan → preset/K/epochs/device/output → a ``TrainConfig``.

The wizard only *produces* a config (``wizard.config()``); the training
controller runs it. Pages can be driven programmatically (``set_folder``,
the public widgets), so tests never need a modal loop.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import qtawesome as qta
from PySide6.QtCore import QSettings, Qt, QTimer, Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
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
from acseg_core.jobs import Progress
from acseg_core.model.config import field_default
from acseg_core.presets import PRESETS, default_preset, preset, training_defaults
from acseg_core.training.config import TrainConfig
from acseg_core.training.dataset import (
    Candidate,
    DatasetScan,
    preferred_selection,
    scan_inputs,
    steps_per_epoch_for,
    survey_inputs,
)
from acseg_core.training.estimate import Estimate, estimate_run
from app.controllers.project import IMAGE_FILTER
from app.file_dialogs import FileDialogs
from app.workers import JobRunner, JobWorker, message_of

SETTINGS_KEY = "wizard/last"

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
    """Choose files and/or a folder; every image found is listed with a tick box (the
    usable ones of the most common band count ticked), so a mixed folder is a matter
    of unticking, not a refusal. Shows size and bands, and why a file cannot be used."""

    folder_changed = Signal(str)

    COLUMNS = ("Image", "Size", "Bands", "Type", "Note")

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Training images")
        self.setSubTitle(
            "Choose a folder or files. Untick the images not to train on; one model "
            "needs one band count."
        )
        self.scan: DatasetScan | None = None
        self.inputs: list[Path] = []
        self.candidates: tuple[Candidate, ...] = ()
        self.folder_edit = QLineEdit(self)
        self.folder_edit.setPlaceholderText("a folder of images, or files (Folder… / Files…)")
        self.folder_edit.editingFinished.connect(self._typed)
        browse = QPushButton(qta.icon("fa5s.folder-open"), "Folder…", self)
        browse.clicked.connect(self._browse)
        files = QPushButton(qta.icon("fa5s.images"), "Files…", self)
        files.clicked.connect(self._browse_files)
        row = QHBoxLayout()
        row.addWidget(self.folder_edit, 1)
        row.addWidget(browse)
        row.addWidget(files)
        self.images = QTreeWidget(self)
        self.images.setHeaderLabels(list(self.COLUMNS))
        self.images.header().setSectionResizeMode(0, QHeaderView.ResizeMode.Stretch)
        self.images.setRootIsDecorated(False)
        self.images.itemChanged.connect(lambda _item, column: column == 0 and self.rescan())
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
        self._crop: int | None = None
        self._selection_note: str | None = None

    def _dialogs(self) -> FileDialogs | None:
        wizard = self.wizard()
        settings = wizard.settings if isinstance(wizard, TrainWizard) else None
        return FileDialogs(settings) if settings is not None else None

    def _start_dir(self) -> str:
        """The images chosen now, else the last folder any dialog used."""
        if self.inputs:
            first = self.inputs[0]
            return str(first if first.is_dir() else first.parent)
        dialogs = self._dialogs()
        return dialogs.start() if dialogs is not None else ""

    def _remember(self, path: str) -> None:
        dialogs = self._dialogs()
        if dialogs is not None:
            dialogs.remember(path)

    def _browse(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Training folder", self._start_dir())
        if folder:
            self._remember(folder)
            self.set_folder(folder)

    def _browse_files(self) -> None:
        files, _ = QFileDialog.getOpenFileNames(
            self, "Training images", self._start_dir(), IMAGE_FILTER
        )
        if files:
            self._remember(files[0])
            self.set_inputs([Path(f) for f in files])

    def _typed(self) -> None:
        text = self.folder_edit.text().strip()
        paths = [Path(p.strip()) for p in text.split(";") if p.strip()]
        if paths and paths != self.inputs:
            self.set_inputs(paths)

    def set_folder(self, folder: str | Path, crop: int | None = None) -> None:
        """Scan ``folder`` (see :meth:`set_inputs`)."""
        self.set_inputs([Path(folder)], crop)

    def set_inputs(self, paths: list[Path], crop: int | None = None) -> None:
        """List the images among ``paths`` (files and folders), tick the usable ones of
        the most common band count and scan them (``crop``: the run's crop size, which
        decides which images are padded; the settings page's by default)."""
        self.inputs = [Path(p) for p in paths]
        if crop is not None:
            self._crop = crop
        self.folder_edit.setText("; ".join(str(p) for p in self.inputs))
        first = self.inputs[0] if self.inputs else Path()
        self.folder_changed.emit(str(first if first.is_dir() or not first.suffix else first.parent))
        self.images.blockSignals(True)
        self.images.clear()
        note = None
        try:
            self.candidates = survey_inputs(self.inputs)
        except AcsegError as exc:
            self.candidates = ()
            self.images.blockSignals(False)
            self.scan = None
            self.summary.setText(f"<span style='color:#c0392b'>{exc}</span>")
            self.notes.clear()
            self.completeChanged.emit()
            return
        chosen, note = preferred_selection(self.candidates)
        for candidate, ticked in zip(self.candidates, chosen, strict=True):
            info = candidate.info
            size = f"{info.width}×{info.height}" if info is not None else ""
            bands = str(info.count) if info is not None else ""
            kind = info.dtype if info is not None else ""
            why = candidate.problem or ("" if ticked else "another band count")
            item = QTreeWidgetItem(self.images, [candidate.path.name, size, bands, kind, why])
            item.setToolTip(0, str(candidate.path))
            item.setToolTip(4, why)
            item.setData(0, Qt.ItemDataRole.UserRole, str(candidate.path))
            flags = item.flags() | Qt.ItemFlag.ItemIsUserCheckable
            if not candidate.usable:
                flags &= ~Qt.ItemFlag.ItemIsEnabled
            item.setFlags(flags)
            item.setCheckState(0, Qt.CheckState.Checked if ticked else Qt.CheckState.Unchecked)
        self.images.blockSignals(False)
        self._selection_note = note
        self.rescan()

    def checked_paths(self) -> list[Path]:
        """The ticked images, in listing order."""
        out = []
        for row in range(self.images.topLevelItemCount()):
            item = self.images.topLevelItem(row)
            if item.checkState(0) == Qt.CheckState.Checked:
                out.append(Path(item.data(0, Qt.ItemDataRole.UserRole)))
        return out

    def set_checked(self, path: Path, checked: bool) -> None:
        """Tick or untick one listed image (and scan the selection again)."""
        for row in range(self.images.topLevelItemCount()):
            item = self.images.topLevelItem(row)
            if Path(item.data(0, Qt.ItemDataRole.UserRole)) == Path(path):
                item.setCheckState(0, Qt.CheckState.Checked if checked else Qt.CheckState.Unchecked)

    def rescan(self, crop: int | None = None) -> None:
        """Scan the ticked images as training will (padding, band counts)."""
        if crop is not None:
            self._crop = crop
        self.scan = None
        self.notes.clear()
        checked = self.checked_paths()
        total = sum(1 for c in self.candidates if c.usable)
        if not checked:
            reason = "tick the images to train on" if total else "no usable images"
            problems = [f"{c.path.name}: {c.problem}" for c in self.candidates if c.problem]
            detail = f" ({'; '.join(problems[:3])})" if problems else ""
            self.summary.setText(f"<span style='color:#c0392b'>{reason}{detail}</span>")
        else:
            try:
                self.scan = scan_inputs(checked, crop=self._crop or self._settings_crop())
            except AcsegError as exc:
                self.summary.setText(f"<span style='color:#c0392b'>{exc}</span>")
            else:
                scan = self.scan
                padded = f", {len(scan.padded)} padded" if scan.padded else ""
                self.summary.setText(
                    f"Training on {len(checked)} of {len(self.candidates)} image(s): "
                    f"{scan.bands} band(s), {scan.total_pixels / 1e6:.1f} Mpx{padded}"
                )
                notes = list(self.scan.warnings)
                notes += [f"cannot use {c.path.name}: {c.problem}" for c in self.candidates
                          if c.problem]  # fmt: skip
                if self._selection_note:
                    notes.insert(0, self._selection_note)
                self.notes.setPlainText("\n".join(notes) or "none")
        self.completeChanged.emit()

    def isComplete(self) -> bool:
        return self.scan is not None

    def _settings_crop(self) -> int:
        wizard = self.wizard()
        if isinstance(wizard, TrainWizard):
            return wizard.settings_page.crop.value()
        return int(training_defaults(default_preset("auto"))["crop"])


class SettingsPage(QWizardPage):
    """Preset, K, epochs, device, output folder, and how long the run will take: measured
    on the run's own first steps (:func:`estimate_run`) when the page opens and again
    after a change that alters a step; the total follows the epochs at once."""

    RESTART_MS = 1200  # after the last change of a setting that alters a step

    def __init__(self, runner: JobRunner, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setTitle("Training settings")
        self.runner = runner
        self.estimate_worker: JobWorker | None = None
        self.estimate: Estimate | None = None
        self.preset = QComboBox(self)
        for name, record in PRESETS.items():
            self.preset.addItem(f"{name} — {record.description}", name)
        # as the CLI and the Python API choose it: by the device the run will use
        self.preset.setCurrentIndex(self.preset.findData(default_preset("auto")))
        self.estimate_label = QLabel("", self)
        self.estimate_label.setWordWrap(True)
        self.estimate_button = QPushButton(qta.icon("fa5s.stopwatch"), "Measure again", self)
        self.estimate_button.setToolTip(
            "Time the first steps of this very run (its images, model, crop and batch, "
            "the read-out fit) on this machine"
        )
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
        form.addRow("Time", estimate_row)
        form.addRow("Clusters (K)", self.clusters)
        form.addRow("Epochs", self.epochs)
        form.addRow("Steps per epoch", self.steps_per_epoch)
        form.addRow("Crop (px)", self.crop)
        form.addRow("Batch", self.batch)
        form.addRow("Device", self.device)
        form.addRow("Output folder", out_row)
        self._restart = QTimer(self)
        self._restart.setSingleShot(True)
        self._restart.setInterval(self.RESTART_MS)
        self._restart.timeout.connect(self._restart_if_shown)
        for widget in (self.preset, self.device):
            widget.currentIndexChanged.connect(self._estimate_stale)
        for spin in (self.crop, self.batch, self.clusters):
            spin.valueChanged.connect(self._estimate_stale)
        for spin in (self.epochs, self.steps_per_epoch):  # a step costs the same: recompute
            spin.valueChanged.connect(self._show_estimate)
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
        """Entering the page: time the run's first steps right away (in the worker)."""
        self.start_estimate()

    def cleanupPage(self) -> None:  # Back: the images may change
        self.cancel_estimate()

    def _browse_out(self) -> None:
        folder = QFileDialog.getExistingDirectory(self, "Output folder", self.out_dir.text())
        if folder:
            self.out_dir.setText(folder)

    def _estimate_stale(self) -> None:
        """A change that alters a step: the old figures no longer apply; measure again
        once the user stops changing things (while the page is shown)."""
        self.estimate = None
        self.estimate_label.setText("measuring again once the settings stay put…")
        self._restart.start()

    def _restart_if_shown(self) -> None:
        wizard = self.wizard()
        if isinstance(wizard, TrainWizard) and wizard.currentPage() is self:
            self.start_estimate()
        elif self.estimate is None:
            self.estimate_label.setText("press Measure again to time this run")

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
        """Time the first steps of the very run the wizard will start, in the worker (a
        measurement under way for older settings is cancelled)."""
        self._restart.stop()
        wizard = self.wizard()
        scan = wizard.folder_page.scan if isinstance(wizard, TrainWizard) else None
        if scan is None:
            self.estimate_label.setText("choose the training images first")
            return None
        try:
            cfg = self.train_config(tuple(str(p) for p in scan.paths), scan.bands)
        except AcsegError as exc:
            self.estimate_label.setText(str(exc))
            return None
        self.cancel_estimate()
        self.estimate = None
        self.estimate_label.setText("measuring the first steps of this run…")

        def job(cancel: Any) -> Any:
            return (yield from estimate_run(cfg, scan, cancel))

        worker = self.runner.start(job, "estimate")
        worker.progress.connect(lambda p, w=worker: self._measuring(w, p))
        worker.succeeded.connect(lambda result, w=worker: self._estimated(w, result))
        worker.failed.connect(lambda _t, exc, w=worker: self._no_estimate(w, exc))
        self.estimate_worker = worker
        return worker

    def cancel_estimate(self) -> None:
        if self.estimate_worker is not None and self.estimate_worker.running:
            self.estimate_worker.cancel()
        self.estimate_worker = None

    def _measuring(self, worker: JobWorker, item: Progress) -> None:
        if worker is self.estimate_worker:
            done = f" ({item.done}/{item.total})" if item.total else ""
            self.estimate_label.setText(f"measuring: {item.message}{done}…")

    def _estimated(self, worker: JobWorker, result: Estimate) -> None:
        if worker is not self.estimate_worker or worker.token.cancelled:
            return
        self.estimate = result
        self._show_estimate()

    def _no_estimate(self, worker: JobWorker, error: BaseException) -> None:
        if worker is self.estimate_worker:
            self.estimate_label.setText(f"no estimate: {message_of(error)}")

    def _show_estimate(self) -> None:
        """The measured run for the epochs and steps per epoch set now."""
        if self.estimate is None:
            return
        steps = self.steps_per_epoch.value() or None
        self.estimate_label.setText(self.estimate.describe(self.epochs.value(), steps))
        self.estimate_label.setToolTip(
            f"measured: {self.estimate.step_s:.2f} s per step, "
            f"{self.estimate.steps(self.epochs.value(), steps)} steps; preparing the "
            f"images {self.estimate.prepare_s:.1f} s, warm-up {self.estimate.startup_s:.1f} s, "
            f"read-out fit and saving {self.estimate.readout_s:.1f} s"
            + (f"; load average {self.estimate.load}" if self.estimate.load is not None else "")
        )

    def isComplete(self) -> bool:
        return bool(self.out_dir.text().strip())

    # -- remembered settings -------------------------------------------------------------
    def remembered(self) -> dict[str, Any]:
        return {
            "preset": self.preset.currentData(),
            "clusters": self.clusters.value(),
            "epochs": self.epochs.value(),
            "steps_per_epoch": self.steps_per_epoch.value(),
            "crop": self.crop.value(),
            "batch": self.batch.value(),
            "device": self.device.currentData(),
        }

    def restore(self, values: dict[str, Any]) -> None:
        """The settings of the last run started from the wizard (unknown values skipped)."""
        index = self.preset.findData(values.get("preset"))
        if index >= 0:
            self.preset.setCurrentIndex(index)  # its training defaults first
        index = self.device.findData(values.get("device"))
        if index >= 0:
            self.device.setCurrentIndex(index)
        for name in ("clusters", "epochs", "steps_per_epoch", "crop", "batch"):
            try:
                getattr(self, name).setValue(int(values[name]))
            except (KeyError, TypeError, ValueError):
                continue


class TrainWizard(QWizard):
    """``runs_beside``: the folder run outputs go into by default (the project file's);
    None = ``~/acseg-runs``. The output folder follows the training folder until the
    user types one. ``settings``: where the last run's settings and images are kept
    (a run started from the wizard is remembered; None: nothing is)."""

    def __init__(
        self,
        runner: JobRunner,
        folder: Path | list[Path] | None = None,
        parent: QWidget | None = None,
        *,
        runs_beside: Path | None = None,
        settings: QSettings | None = None,
    ) -> None:
        super().__init__(parent)
        self.setWindowTitle("Train on a folder")
        self.setWindowIcon(qta.icon("fa5s.brain"))
        self.setOption(QWizard.WizardOption.NoBackButtonOnStartPage)
        self.setMinimumSize(720, 520)
        self.runs_beside = runs_beside
        self.settings = settings
        self.folder_page = FolderPage(self)
        self.settings_page = SettingsPage(runner, self)
        self.addPage(self.folder_page)
        self.addPage(self.settings_page)
        self.setWindowModality(Qt.WindowModality.WindowModal)
        self._suggested = ""  # the output folder last filled in for the user
        self.folder_page.folder_changed.connect(self._suggest_output)
        stored = settings.value(SETTINGS_KEY) if settings is not None else None
        if isinstance(stored, dict):
            self.settings_page.restore(stored)
            if folder is None and stored.get("inputs"):
                inputs = stored["inputs"]
                inputs = [inputs] if isinstance(inputs, str) else list(inputs)
                folder = [Path(p) for p in inputs if Path(p).exists()] or None
        if folder is not None:
            self.set_inputs(folder if isinstance(folder, list) else [folder])

    def set_folder(self, folder: str | Path) -> None:
        self.set_inputs([Path(folder)])

    def set_inputs(self, paths: list[Path]) -> None:
        self.folder_page.set_inputs(paths, crop=self.settings_page.crop.value())

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
        """The run these pages describe. Raises AcsegError when no image is usable."""
        scan = self.folder_page.scan
        if scan is None:
            raise AcsegError("choose a folder or files with usable images first")
        inputs = tuple(str(p) for p in scan.paths)
        return self.settings_page.train_config(inputs, scan.bands)

    def remember(self) -> None:
        """Keep these settings and images for the next time the wizard opens."""
        if self.settings is not None:
            values = self.settings_page.remembered()
            values["inputs"] = [str(p) for p in self.folder_page.inputs]
            self.settings.setValue(SETTINGS_KEY, values)

    def done(self, result: int) -> None:
        self.settings_page.cancel_estimate()  # never compete with the run for the cores
        if result == QDialog.DialogCode.Accepted:
            self.remember()
        super().done(result)
