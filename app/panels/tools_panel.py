"""The tool bar of the correction tools: tool buttons, brush size, the class to paint."""

from __future__ import annotations

from PySide6.QtWidgets import QComboBox, QLabel, QSpinBox, QToolBar, QWidget

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
        self.addWidget(QLabel(" Size ", self))
        self.radius = QSpinBox(self)
        self.radius.setRange(MIN_RADIUS, MAX_RADIUS)
        self.radius.setSuffix(" px")
        self.radius.setToolTip("Brush radius in image pixels ([ and ])")
        self.radius.setValue(editing.brush_radius)
        self.radius.valueChanged.connect(editing.set_brush_radius)
        self.addWidget(self.radius)
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
        if self.radius.value() != radius:
            self.radius.blockSignals(True)
            self.radius.setValue(radius)
            self.radius.blockSignals(False)

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
