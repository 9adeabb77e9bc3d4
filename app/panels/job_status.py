"""The status bar's job area: a progress bar, a cancel button and the job's message."""

from __future__ import annotations

from typing import Any

from PySide6.QtGui import QAction
from PySide6.QtWidgets import QProgressBar, QStatusBar, QToolButton

from acseg_core.jobs import format_eta


class JobStatus:
    def __init__(self, status_bar: QStatusBar, cancel: QAction) -> None:
        self.status_bar = status_bar
        self.bar = QProgressBar(status_bar)
        self.bar.setMaximumWidth(160)
        self.bar.setTextVisible(False)
        self.bar.hide()
        status_bar.addWidget(self.bar)
        self.cancel_button = QToolButton(status_bar)
        self.cancel_button.setDefaultAction(cancel)
        self.cancel_button.hide()
        status_bar.addWidget(self.cancel_button)

    def started(self, message: str, cancellable: bool = False) -> None:
        self.bar.setRange(0, 0)
        self.bar.show()
        self.cancel_button.setVisible(cancellable)
        self.status_bar.showMessage(message)

    def progress(self, item: Any, with_message: bool = False) -> None:
        total = getattr(item, "total", None)
        if total:
            self.bar.setRange(0, int(total))
            self.bar.setValue(int(item.done))
        if with_message:
            eta = format_eta(getattr(item, "eta_s", None))
            message = getattr(item, "message", "")
            self.status_bar.showMessage(f"{message} — {eta} left" if eta else message)

    def ended(self, message: str = "", timeout_ms: int = 0) -> None:
        self.bar.hide()
        self.cancel_button.hide()
        if message:
            self.status_bar.showMessage(message, timeout_ms)
        else:
            self.status_bar.clearMessage()
