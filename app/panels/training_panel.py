"""Training panel: state, progress bar with ETA, metrics, a live loss plot, Cancel."""

from __future__ import annotations

import qtawesome as qta
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QPlainTextEdit,
    QProgressBar,
    QPushButton,
    QVBoxLayout,
    QWidget,
)

from acseg_core.jobs import Progress, format_eta
from app.controllers.training import TrainingController
from app.widgets.loss_plot import LossPlot
from app.workers import message_of

STATE_TEXT = {
    TrainingController.IDLE: "No training run",
    TrainingController.RUNNING: "Training…",
    TrainingController.CANCELLING: "Cancelling…",
    TrainingController.CANCELLED: "Cancelled — checkpoint kept",
    TrainingController.FINISHED: "Finished",
    TrainingController.FAILED: "Failed",
}


class TrainingPanel(QWidget):
    def __init__(self, controller: TrainingController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.controller = controller
        self.state_label = QLabel(STATE_TEXT[controller.state], self)
        self.bar = QProgressBar(self)
        self.bar.setRange(0, 1)
        self.bar.setValue(0)
        self.eta_label = QLabel("", self)
        self.metrics_label = QLabel("", self)
        self.cancel_button = QPushButton(qta.icon("fa5s.stop"), "Cancel", self)
        self.cancel_button.setEnabled(False)
        self.cancel_button.clicked.connect(controller.cancel)
        self.load_button = QPushButton(qta.icon("fa5s.cube"), "Load this model", self)
        self.load_button.hide()
        self.load_button.clicked.connect(self._load_partial)
        self.plot = LossPlot(self)
        self.log = QPlainTextEdit(self)
        self.log.setReadOnly(True)
        self.log.setMaximumBlockCount(500)
        self.log.setMaximumHeight(70)

        top = QHBoxLayout()
        top.addWidget(self.state_label)
        top.addWidget(self.bar, 1)
        top.addWidget(self.eta_label)
        top.addWidget(self.cancel_button)
        top.addWidget(self.load_button)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.metrics_label)
        layout.addWidget(self.plot, 1)
        layout.addWidget(self.log)
        controller.state_changed.connect(self._state)
        controller.progress.connect(self._progress)
        controller.warning.connect(self.log.appendPlainText)
        controller.failed.connect(lambda _t, exc: self.log.appendPlainText(message_of(exc)))

    def _state(self, state: str) -> None:
        text = STATE_TEXT.get(state, state)
        if state == TrainingController.CANCELLED and self.controller.model_path is not None:
            text += f" in {self.controller.model_path.parent}"
        self.state_label.setText(text)
        self.cancel_button.setEnabled(state == TrainingController.RUNNING)
        path = self.controller.model_path
        self.load_button.setVisible(
            state == TrainingController.CANCELLED and path is not None and path.is_file()
        )
        if state == TrainingController.RUNNING:
            self.plot.clear()
            self.bar.setRange(0, 0)
            self.eta_label.clear()
            config = self.controller.config
            if config is not None:
                self.log.appendPlainText(f"training → {config.out_dir}")
        elif state in (TrainingController.FINISHED, TrainingController.CANCELLED):
            self.eta_label.clear()
            if state == TrainingController.FINISHED:
                self.bar.setRange(0, 1)
                self.bar.setValue(1)
            self.log.appendPlainText(text)
        elif state == TrainingController.FAILED:
            self.bar.setRange(0, 1)
            self.bar.setValue(0)
            self.eta_label.clear()

    def _load_partial(self) -> None:
        """Use the model of a cancelled run as it stands (its last checkpoint)."""
        if self.controller.model_path is not None:
            self.controller.model_ready.emit(self.controller.model_path)
            self.load_button.hide()

    def _progress(self, item: Progress) -> None:
        if item.total:
            self.bar.setRange(0, int(item.total))
            self.bar.setValue(int(item.done))
        if self.controller.state == TrainingController.CANCELLING:
            self.eta_label.setText("stopping…")  # the remaining time no longer applies
        else:
            eta = format_eta(self.controller.eta(item))
            self.eta_label.setText(f"{eta} left" if eta else "")
        m = {k: v for k, v in item.metrics.items() if v is not None}
        parts = []
        if "epoch" in m:
            parts.append(f"epoch {m['epoch']}" + (f"/{m['epochs']}" if "epochs" in m else ""))
        if "step" in m:
            total = m.get("steps_total")
            parts.append(f"step {m['step']}" + (f"/{total}" if total else ""))
        if "loss" in m:
            parts.append(f"loss {float(m['loss']):.4f}")
        if "crops_per_s" in m:
            parts.append(f"{float(m['crops_per_s']):.1f} crops/s")
        if m.get("phase") == "prepare":
            parts = [item.message]
        self.metrics_label.setText("   ".join(parts) or item.message)
        if "loss" in m and m.get("phase", "train") == "train":
            self.plot.add_point(float(m.get("step", item.done)), float(m["loss"]))
