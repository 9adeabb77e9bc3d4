"""Every message box goes through here, so tests can capture them by patching
QMessageBox, and a headless run (``acseg --screenshot``) never blocks on one: it prints
the message to stderr, answers questions with the safe choice and remembers that
something went wrong (:data:`HEADLESS`)."""

from __future__ import annotations

import sys
from dataclasses import dataclass, field

from PySide6.QtWidgets import QMessageBox, QWidget


@dataclass
class Headless:
    """Set ``on`` for runs nobody can answer; ``problems`` collects what was reported."""

    on: bool = False
    problems: list[str] = field(default_factory=list)


HEADLESS = Headless()


def _printed(title: str, message: str) -> bool:
    if not HEADLESS.on:
        return False
    line = f"acseg: {title}: {' '.join(message.split())}"
    HEADLESS.problems.append(line)
    print(line, file=sys.stderr)
    return True


def show_error(parent: QWidget | None, title: str, message: str) -> None:
    """A one-line problem the user can act on; the app carries on afterwards."""
    if not _printed(title, message):
        QMessageBox.warning(parent, title, message)


def show_info(parent: QWidget | None, title: str, message: str) -> None:
    if not HEADLESS.on:
        QMessageBox.information(parent, title, message)


def ask_yes_no(parent: QWidget | None, title: str, question: str) -> bool:
    if _printed(title, question + " (no one to answer: no)"):
        return False
    answer = QMessageBox.question(
        parent,
        title,
        question,
        QMessageBox.StandardButton.Yes | QMessageBox.StandardButton.No,
        QMessageBox.StandardButton.No,
    )
    return answer == QMessageBox.StandardButton.Yes


def ask_save_discard_cancel(parent: QWidget | None, title: str, question: str) -> str:
    """ "save" | "discard" | "cancel" (closing with unsaved changes)."""
    if _printed(title, question + " (no one to answer: cancel)"):
        return "cancel"
    buttons = (
        QMessageBox.StandardButton.Save
        | QMessageBox.StandardButton.Discard
        | QMessageBox.StandardButton.Cancel
    )
    answer = QMessageBox.question(parent, title, question, buttons, QMessageBox.StandardButton.Save)
    if answer == QMessageBox.StandardButton.Save:
        return "save"
    if answer == QMessageBox.StandardButton.Discard:
        return "discard"
    return "cancel"
