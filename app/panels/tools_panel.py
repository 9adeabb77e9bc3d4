"""The tool bar of the correction tools: tool buttons, brush size, the class to paint."""

from __future__ import annotations

from PySide6.QtWidgets import QCheckBox, QComboBox, QLabel, QSpinBox, QToolBar, QWidget

from app.controllers.editing import MAX_RADIUS, MIN_RADIUS, EditingController
from app.models import ClassesModel
from app.panels.classes_panel import swatch


class ToolsBar(QToolBar):
    """Thin view over :class:`EditingController` (the tool actions come from ``actions``)."""

    def __init__(
        self,
        editing: EditingController,
        classes: ClassesModel,
        tool_actions: list,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__("Tools", parent)
        self.setObjectName("tools_toolbar")
        self.editing, self.classes = editing, classes
        self.addActions(tool_actions)
        self.addSeparator()
        self.addWidget(QLabel(" Width ", self))
        # the width a user reads (the brush's diameter); the editing controller keeps
        # the radius
        self.width_spin = QSpinBox(self)
        self.width_spin.setRange(2 * MIN_RADIUS, 2 * MAX_RADIUS)
        self.width_spin.setSingleStep(2)
        self.width_spin.setSuffix(" px")
        self.width_spin.setToolTip("Brush width (its diameter) in image pixels ([ and ])")
        self.width_spin.setValue(2 * editing.brush_radius)
        self.width_spin.valueChanged.connect(lambda w: editing.set_brush_radius(round(w / 2)))
        self.addWidget(self.width_spin)
        self.addWidget(QLabel(" Fill tolerance ", self))
        self.tolerance = QSpinBox(self)
        self.tolerance.setRange(0, 100_000)
        self.tolerance.setSingleStep(10)
        self.tolerance.setSuffix(" px")
        self.tolerance.setToolTip(
            "Fill (G): specks of other clusters up to this size inside the region are "
            "filled too (0: exactly the region). Hover to see what a click fills."
        )
        self.tolerance.setValue(editing.fill_tolerance)
        self.tolerance.valueChanged.connect(editing.set_fill_tolerance)
        self.addWidget(self.tolerance)
        self.within = QCheckBox("Within cluster", self)
        self.within.setToolTip(
            "Fill (G): stay inside the clicked cluster, so one click never spreads over "
            "other clusters of the same class or over neighbours the tolerance would take in"
        )
        self.within.setChecked(editing.fill_within_cluster)
        self.within.toggled.connect(editing.set_fill_within_cluster)
        editing.fill_within_cluster_changed.connect(self._within_changed)
        self.addWidget(self.within)
        self.addWidget(QLabel(" Class ", self))
        self.class_box = QComboBox(self)
        self.class_box.setToolTip("Class the brush, fill and polygon paint (keys 1–9)")
        self.class_box.setMinimumContentsLength(10)
        self.class_box.activated.connect(self._class_chosen)
        self.addWidget(self.class_box)

        editing.brush_radius_changed.connect(self._radius_changed)
        editing.active_class_changed.connect(lambda _id: self._fill_classes())
        classes.changed.connect(self._fill_classes)
        self._fill_classes()

    def _radius_changed(self, radius: int) -> None:
        if round(self.width_spin.value() / 2) != radius:
            self.width_spin.blockSignals(True)
            self.width_spin.setValue(2 * radius)
            self.width_spin.blockSignals(False)

    def _within_changed(self, on: bool) -> None:
        if self.within.isChecked() != on:
            self.within.blockSignals(True)
            self.within.setChecked(on)
            self.within.blockSignals(False)

    def _fill_classes(self) -> None:
        self.class_box.blockSignals(True)
        self.class_box.clear()
        for n, c in enumerate(self.classes.classes, start=1):
            label = f"{n}  {c.name}" if n <= 9 else c.name
            self.class_box.addItem(swatch(c.color), label, c.id)
        index = self.class_box.findData(self.editing.active_class)
        self.class_box.setCurrentIndex(index)
        self.class_box.setEnabled(self.class_box.count() > 0)
        self.class_box.blockSignals(False)

    def _class_chosen(self, index: int) -> None:
        class_id = self.class_box.itemData(index)
        if class_id is not None:
            self.editing.set_active_class(int(class_id))
