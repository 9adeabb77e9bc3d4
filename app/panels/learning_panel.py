"""The Learning panel: how far the strokes can be trusted, before/after, undo a learn.

A thin view over the :class:`~app.controllers.learning.LearnController`: after each
learn it lists every class's leave-one-stroke-out accuracy (the share of its strokes
the other strokes label right) and the warnings (a stroke that looks like another
class, naming the image and place; a class its own strokes do not support), so a
loose polygon over the wrong thing is seen before the whole folder is relabelled.
"""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QHBoxLayout,
    QLabel,
    QListWidget,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from acseg_core.learning.quality import WEAK
from app.controllers.learning import LearnController

WARNING_COLOUR = "#b00020"


class LearningPanel(QWidget):
    def __init__(self, learning: LearnController, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.learning = learning
        self.state = QLabel()
        self.state.setWordWrap(True)
        self.table = QTableWidget(0, 2)
        self.table.setHorizontalHeaderLabels(["Class", "Strokes agree"])
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setStretchLastSection(True)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.table.setToolTip(
            "Leave-one-stroke-out accuracy: each stroke held out in turn, the share of its "
            "pixels the read-out fitted on the other strokes labels as its class"
        )
        self.warnings = QListWidget()
        self.warnings.setWordWrap(True)
        self.warnings.setStyleSheet(f"color: {WARNING_COLOUR}")
        self.learn_button = QPushButton("Learn from edits")
        self.before_button = QPushButton("Before")
        self.before_button.setCheckable(True)
        self.before_button.setToolTip("Show the unsupervised map (before learning)")
        self.undo_button = QPushButton("Undo learn")
        buttons = QHBoxLayout()
        for button in (self.learn_button, self.before_button, self.undo_button):
            buttons.addWidget(button)
        layout = QVBoxLayout(self)
        layout.addWidget(self.state)
        layout.addLayout(buttons)
        layout.addWidget(self.table, 2)
        layout.addWidget(QLabel("Warnings"))
        layout.addWidget(self.warnings, 1)
        self.learn_button.clicked.connect(lambda: learning.learn())
        self.before_button.toggled.connect(learning.show_before)
        self.undo_button.clicked.connect(learning.undo_learn)
        learning.state_changed.connect(self.refresh)
        learning.running_changed.connect(lambda _r: self.refresh())
        self.refresh()

    def refresh(self) -> None:
        learning = self.learning
        learnt = learning.learnt
        if learning.running:
            self.state.setText("Learning…")
        elif learnt is None:
            self.state.setText("No model learnt from the edits: paint a few strokes per "
                               "class, then Learn from edits")  # fmt: skip
        elif learning.before:
            self.state.setText("Before: the unsupervised model (Before again shows the "
                               "learnt one)")  # fmt: skip
        else:
            checking = " (checking the strokes…)" if learning.quality is None else ""
            self.state.setText(f"Learnt from strokes: {len(learnt.config.classes)} "
                               f"classes{checking}")  # fmt: skip
        self.learn_button.setEnabled(not learning.running)
        self.before_button.setEnabled(learnt is not None)
        self.before_button.blockSignals(True)
        self.before_button.setChecked(learning.before)
        self.before_button.blockSignals(False)
        self.undo_button.setEnabled(learning.history.can_undo and not learning.running)
        quality = learning.quality
        rows = list(quality.accuracy.items()) if quality is not None else []
        self.table.setRowCount(len(rows))
        for row, (name, value) in enumerate(rows):
            self.table.setItem(row, 0, QTableWidgetItem(name))
            text = "– (fewer than 2 strokes)" if value is None else f"{100 * value:.0f} %"
            item = QTableWidgetItem(text)
            item.setTextAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
            if value is not None and value < WEAK:
                item.setForeground(Qt.GlobalColor.red)
            self.table.setItem(row, 1, item)
        self.warnings.clear()
        if quality is not None:
            self.warnings.addItems(quality.warnings())

    def summary(self) -> str:
        """What the panel says, as text (its state line, rows and warnings)."""
        rows = [
            f"{self.table.item(r, 0).text()}: {self.table.item(r, 1).text()}"
            for r in range(self.table.rowCount())
        ]
        warnings = [self.warnings.item(i).text() for i in range(self.warnings.count())]
        return "\n".join([self.state.text(), *rows, *warnings])
