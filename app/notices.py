"""Non-modal notices in the status bar: problems worth knowing that must not stop work.

A prediction that fails while the user browses (a corrupt file, another band count
than the model's) is a notice, not a dialog: one per problem, so a folder of images
with the wrong band count says so once, not once per PgDown. Headless runs print
them to stderr and count them as problems (:data:`app.dialogs.HEADLESS`).
"""

from __future__ import annotations

from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QLabel, QStatusBar

from acseg_core.errors import BandMismatch
from app.dialogs import HEADLESS, show_error
from app.workers import message_of

MAX_KEPT = 50
LABEL_WIDTH = 420  # px: a notice is short in the bar, whole in its tooltip


class Notices(QObject):
    def __init__(self, status_bar: QStatusBar, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.status_bar = status_bar
        self.label = QLabel(status_bar)
        self.label.setStyleSheet("color: #b35c00")
        self.label.hide()
        status_bar.addWidget(self.label)
        self.shown: list[str] = []
        self._seen: set[str] = set()

    def add(self, text: str, key: str | None = None, short: str | None = None) -> bool:
        """Show ``text`` unless a notice of the same ``key`` was shown; True if shown.
        The bar shows ``short`` (or ``text`` elided to fit); the whole text of every
        notice is the label's tooltip."""
        key = key or text
        if key in self._seen:
            return False
        self._seen.add(key)
        self.shown = [*self.shown, text][-MAX_KEPT:]
        if HEADLESS.on:
            show_error(None, "Notice", text)
        metrics = self.label.fontMetrics()
        line = metrics.elidedText(f"⚠ {short or text}", Qt.TextElideMode.ElideRight, LABEL_WIDTH)
        self.label.setText(line)
        self.label.setToolTip("\n".join(self.shown))
        self.label.setMaximumWidth(LABEL_WIDTH + 16)
        self.label.show()
        self.status_bar.showMessage(short or text, 10000)
        return True

    def prediction_failed(self, _title: str, error: BaseException) -> None:
        """Another band count is one notice per folder and model; other failures one each."""
        if not isinstance(error, BandMismatch):
            self.add(message_of(error))
            return
        folder = error.path.parent
        self.add(
            f"images in {folder} have {error.bands} band(s) but the model was trained on "
            f"{error.expected}: they cannot be predicted with this model",
            key=f"bands:{folder}:{error.bands}:{error.expected}",
            short=f"{error.bands}-band images: the model needs {error.expected} "
            "(hover for details)",
        )

    def model_changed(self) -> None:
        """Another model: problems of the previous one may not apply any more."""
        self._seen = {k for k in self._seen if not k.startswith("bands:")}
        self.label.hide()

    def clear(self) -> None:
        self._seen.clear()
        self.shown.clear()
        self.label.hide()
