"""Non-modal notices in the status bar: problems worth knowing that must not stop work.

A prediction that fails while the user browses (a corrupt file, another band count
than the model's) is a notice, not a dialog: one per problem, so a folder of images
with the wrong band count says so once, not once per PgDown. Headless runs print
them to stderr and count them as problems (:data:`app.dialogs.HEADLESS`).
"""

from __future__ import annotations

import re

from PySide6.QtCore import QObject
from PySide6.QtWidgets import QLabel, QStatusBar

from app.dialogs import HEADLESS, show_error

_BANDS = re.compile(r"has (\d+) band\(s\) but the model was trained on (\d+)")
MAX_KEPT = 50


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

    def add(self, text: str, key: str | None = None) -> bool:
        """Show ``text`` unless a notice of the same ``key`` was shown; True if shown."""
        key = key or text
        if key in self._seen:
            return False
        self._seen.add(key)
        self.shown = [*self.shown, text][-MAX_KEPT:]
        if HEADLESS.on:
            show_error(None, "Notice", text)
        self.label.setText(f"⚠ {text}")
        self.label.setToolTip("\n".join(self.shown))
        self.label.show()
        self.status_bar.showMessage(text, 10000)
        return True

    def prediction_failed(self, _title: str, message: str) -> None:
        """Another band count is one notice per folder and model; other failures one each."""
        found = _BANDS.search(message)
        if found is None:
            self.add(message)
            return
        image = message.split(": ", 1)[0]
        folder = image.rsplit("/", 1)[0] if "/" in image else "."
        self.add(
            f"images in {folder} have {found.group(1)} band(s) but the model was trained on "
            f"{found.group(2)}: they cannot be predicted with this model",
            key=f"bands:{folder}:{found.group(1)}:{found.group(2)}",
        )

    def model_changed(self) -> None:
        """Another model: problems of the previous one may not apply any more."""
        self._seen = {k for k in self._seen if not k.startswith("bands:")}
        self.label.hide()

    def clear(self) -> None:
        self._seen.clear()
        self.shown.clear()
        self.label.hide()
