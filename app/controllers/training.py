"""Runs the core's training loop in the worker and reports its state for the panel.

States: idle → running → (cancelling → cancelled) | finished | failed. A cancelled
run keeps its checkpoint (the core saves on cancel); a finished run's
``model.pt`` is loaded into the session so its clusters appear at once.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from PySide6.QtCore import QObject, Signal

from acseg_core.jobs import CancelToken, Progress
from acseg_core.training.config import TrainConfig
from acseg_core.training.estimate import Estimate
from acseg_core.training.loop import train
from acseg_core.training.state import MODEL_FILE
from app.workers import JobRunner, JobWorker


def train_job(config: TrainConfig) -> Any:
    def job(cancel: CancelToken) -> Generator[Any, Any, Any]:
        return (yield from train(config, cancel=cancel))

    return job


class TrainingController(QObject):
    IDLE, RUNNING, CANCELLING = "idle", "running", "cancelling"
    CANCELLED, FINISHED, FAILED = "cancelled", "finished", "failed"

    state_changed = Signal(str)
    progress = Signal(object)  # Progress
    warning = Signal(str)
    model_ready = Signal(object)  # Path of model.pt
    failed = Signal(str, object)  # title, exception

    def __init__(self, runner: JobRunner, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.runner = runner
        self.state = self.IDLE
        self.config: TrainConfig | None = None
        self.worker: JobWorker | None = None
        self.last_progress: Progress | None = None
        self.estimate: Estimate | None = None  # the wizard's, for what follows the steps

    @property
    def model_path(self) -> Path | None:
        return Path(self.config.out_dir) / MODEL_FILE if self.config is not None else None

    @property
    def running(self) -> bool:
        return self.state in (self.RUNNING, self.CANCELLING)

    def start(self, config: TrainConfig, estimate: Estimate | None = None) -> None:
        """Run ``config``; ``estimate`` (the wizard's measurement) lets the ETA count the
        read-out fit that follows the last step."""
        if self.running:
            raise RuntimeError("a training run is already in progress")
        self.config = config
        self.estimate = estimate
        self.last_progress = None
        worker = self.runner.start(train_job(config), "train")
        self.worker = worker
        worker.progress.connect(self._progress)
        worker.succeeded.connect(self._succeeded)
        worker.cancelled.connect(lambda _r: self._set_state(self.CANCELLED))
        worker.failed.connect(self._failed)
        self._set_state(self.RUNNING)

    def cancel(self) -> None:
        if self.state == self.RUNNING and self.worker is not None:
            self.worker.cancel()
            self._set_state(self.CANCELLING)

    def eta(self, item: Progress) -> float | None:
        """Seconds left: the steps' (the core's average over recent steps) plus the
        read-out fit after them, as measured by the wizard."""
        if item.eta_s is None:
            return None
        after = self.estimate.readout_s if self.estimate is not None else 0.0
        return item.eta_s + (after if item.metrics.get("phase", "train") == "train" else 0.0)

    def _set_state(self, state: str) -> None:
        self.state = state
        self.state_changed.emit(state)

    def _progress(self, item: Progress) -> None:
        self.last_progress = item
        warning = item.metrics.get("warning")
        if warning:
            self.warning.emit(str(warning))
        self.progress.emit(item)

    def _succeeded(self, _result: Any) -> None:
        self._set_state(self.FINISHED)
        path = self.model_path
        if path is not None and path.is_file():
            self.model_ready.emit(path)

    def _failed(self, title: str, error: BaseException) -> None:
        self._set_state(self.FAILED)
        self.failed.emit(title, error)
