"""GUI tests run offscreen (set before Qt is imported); dialogs are captured, never shown."""

from __future__ import annotations

import os

os.environ["QT_QPA_PLATFORM"] = "offscreen"

from dataclasses import dataclass, field
from pathlib import Path

import pytest


@dataclass
class Dialogs:
    """Every QMessageBox the app tried to show: (kind, title, text)."""

    shown: list[tuple[str, str, str]] = field(default_factory=list)
    answer: str = "discard"  # what question() answers: "discard" | "yes" | "no" | "save"

    def titles(self) -> list[str]:
        return [title for _kind, title, _text in self.shown]

    def texts(self) -> str:
        return "\n".join(text for _kind, _title, text in self.shown)


@pytest.fixture
def dialogs(monkeypatch: pytest.MonkeyPatch) -> Dialogs:
    from PySide6.QtWidgets import QMessageBox

    record = Dialogs()
    button = QMessageBox.StandardButton

    def capture(kind: str):
        def show(_parent, title, text, *args, **kwargs):
            record.shown.append((kind, title, text))
            if kind == "question":
                return {
                    "discard": button.Discard,
                    "yes": button.Yes,
                    "no": button.No,
                    "save": button.Save,
                }[record.answer]
            return button.Ok

        return show

    for kind in ("warning", "information", "critical", "question"):
        monkeypatch.setattr(QMessageBox, kind, staticmethod(capture(kind)))
    monkeypatch.setattr(QMessageBox, "about", staticmethod(lambda *a, **k: None))
    return record


@pytest.fixture
def window(qtbot, tmp_path: Path, dialogs: Dialogs):
    """A main window with its own settings file; jobs are cancelled at teardown."""
    from PySide6.QtCore import QSettings

    from app.main_window import MainWindow

    settings = QSettings(str(tmp_path / "settings.ini"), QSettings.Format.IniFormat)
    win = MainWindow(settings)
    win.project.autosave_timer.stop()
    qtbot.addWidget(win)
    yield win
    win.runner.shutdown()
    win.document.mark_clean()
