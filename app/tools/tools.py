"""Canvas tools: what a press, a drag, a release or a key does in scene coordinates.

The canvas forwards mouse events (already mapped to source pixels) to the active
tool; tools hold only gesture state and call the :class:`Painter` to
change pixels. The benchmark drives these same handlers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Protocol

import numpy as np
from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QImage, QPainterPath, QPen, QPixmap
from PySide6.QtWidgets import (
    QGraphicsEllipseItem,
    QGraphicsPathItem,
    QGraphicsPixmapItem,
    QGraphicsScene,
)


class Painter(Protocol):
    """What the tools call (the editing controller): strokes, fills and the brush."""

    brush_radius: int
    brush_radius_changed: Any  # Signal(int)

    def paint_value(self) -> int | None: ...
    def eraser_value(self) -> int: ...
    def begin_stroke(self) -> bool: ...
    def paint_segment(self, x0: float, y0: float, x1: float, y1: float, value: int) -> None: ...
    def end_stroke(self) -> Any: ...
    def fill_at(self, x: float, y: float) -> Any: ...
    def fill_preview(self, x: float, y: float) -> Any: ...
    def fill_polygon(self, points: Sequence[tuple[float, float]]) -> Any: ...
    def pick_cluster(self, x: float, y: float) -> int | None: ...


def _cosmetic_pen(colour: QColor, dashed: bool = False) -> QPen:
    pen = QPen(colour, 1.5)
    pen.setCosmetic(True)  # same width on screen at every zoom
    if dashed:
        pen.setStyle(Qt.PenStyle.DashLine)
    return pen


class Tool:
    """Base tool: does nothing (also the pan tool: the canvas pans on drag)."""

    name = "pan"
    paints = False  # False: a left drag pans the view

    def __init__(self, editing: Painter) -> None:
        self.editing = editing

    def activate(self, scene: QGraphicsScene) -> None:
        """Became the active tool (add cursor items to ``scene``)."""

    def deactivate(self) -> None:
        """Another tool takes over (remove cursor items, drop unfinished gestures)."""

    def press(self, pos: QPointF) -> None: ...

    def move(self, pos: QPointF) -> None: ...

    def release(self, pos: QPointF) -> None: ...

    def hover(self, pos: QPointF) -> None: ...

    def double_click(self, pos: QPointF) -> None: ...

    def key(self, key: int) -> bool:
        """A key while the canvas has focus; True when the tool used it."""
        return False


class BrushTool(Tool):
    """Paints the active class along the drag; one drag = one undo step."""

    name = "brush"
    paints = True
    erases = False

    def __init__(self, editing: Painter) -> None:
        super().__init__(editing)
        self._outline: QGraphicsEllipseItem | None = None
        self._last: QPointF | None = None
        self._hover: QPointF | None = None
        editing.brush_radius_changed.connect(self._radius_changed)

    def activate(self, scene: QGraphicsScene) -> None:
        self._outline = QGraphicsEllipseItem()
        self._outline.setPen(_cosmetic_pen(QColor(255, 255, 255)))
        self._outline.setZValue(10)
        self._outline.setVisible(False)
        scene.addItem(self._outline)

    def deactivate(self) -> None:
        if self._last is not None:
            self.release(self._last)
        if self._outline is not None and self._outline.scene() is not None:
            self._outline.scene().removeItem(self._outline)
        self._outline = None

    def _value(self) -> int | None:
        return self.editing.eraser_value() if self.erases else self.editing.paint_value()

    def press(self, pos: QPointF) -> None:
        value = self._value()
        if value is None or not self.editing.begin_stroke():
            return
        self._last = pos
        self.editing.paint_segment(pos.x(), pos.y(), pos.x(), pos.y(), value)

    def move(self, pos: QPointF) -> None:
        self.hover(pos)
        value = self._value()
        if self._last is None or value is None:
            return
        last, self._last = self._last, pos
        self.editing.paint_segment(last.x(), last.y(), pos.x(), pos.y(), value)

    def release(self, pos: QPointF) -> None:
        if self._last is None:
            return
        self._last = None
        self.editing.end_stroke()

    def _radius_changed(self, _radius: int) -> None:
        if self._hover is not None:
            self.hover(self._hover)

    def hover(self, pos: QPointF) -> None:
        self._hover = pos
        if self._outline is None:
            return
        r = self.editing.brush_radius
        self._outline.setRect(QRectF(pos.x() - r, pos.y() - r, 2 * r, 2 * r))
        self._outline.setVisible(True)


class EraserTool(BrushTool):
    """Removes hand edits along the drag: the cluster map shows through again."""

    name = "eraser"
    erases = True


class FillTool(Tool):
    """Fills the 4-connected region of equal displayed label under the click (with
    enclosed specks up to the fill tolerance; never outside the clicked cluster in the
    within-cluster mode); hovering shows that region in the
    active class's colour before the click commits."""

    name = "fill"
    paints = True
    PREVIEW_ALPHA = 150
    PREVIEW_MAX_SIDE = 2048  # px of the preview image (a larger region is shown coarser)

    def __init__(self, editing: Painter) -> None:
        super().__init__(editing)
        self.preview: QGraphicsPixmapItem | None = None
        self._shown: Any = None  # the footprint the preview shows
        self._hover: QPointF | None = None
        for signal in ("fill_tolerance_changed", "fill_within_cluster_changed", "edited",
                       "active_class_changed"):  # fmt: skip
            if hasattr(editing, signal):
                getattr(editing, signal).connect(lambda *_a: self.refresh())

    def activate(self, scene: QGraphicsScene) -> None:
        self.preview = QGraphicsPixmapItem()
        self.preview.setZValue(5)
        self.preview.setVisible(False)
        scene.addItem(self.preview)

    def deactivate(self) -> None:
        if self.preview is not None and self.preview.scene() is not None:
            self.preview.scene().removeItem(self.preview)
        self.preview, self._shown, self._hover = None, None, None

    def press(self, pos: QPointF) -> None:
        self.editing.fill_at(pos.x(), pos.y())
        self._shown = None
        self.hover(pos)

    def refresh(self) -> None:
        """The region under the cursor may have changed (a stroke, the tolerance)."""
        self._shown = None
        if self._hover is not None:
            self.hover(self._hover)

    def hover(self, pos: QPointF) -> None:
        self._hover = pos
        if self.preview is None:
            return
        found = self.editing.fill_preview(pos.x(), pos.y())
        if found is None:
            self.preview.setVisible(False)
            self._shown = None
            return
        footprint, colour = found
        if footprint is not self._shown:
            col, row, mask = footprint
            step = max(1, -(-max(mask.shape) // self.PREVIEW_MAX_SIDE))
            small = np.ascontiguousarray(mask[::step, ::step])
            rgba = np.zeros((*small.shape, 4), dtype=np.uint8)
            rgba[small] = (*colour, self.PREVIEW_ALPHA)
            image = QImage(rgba.data, small.shape[1], small.shape[0], 4 * small.shape[1],
                           QImage.Format.Format_RGBA8888).copy()  # fmt: skip
            self.preview.setPixmap(QPixmap.fromImage(image))
            self.preview.setScale(step)
            self.preview.setPos(col, row)
            self._shown = footprint
        self.preview.setVisible(True)


class NameClusterTool(Tool):
    """Click a region: its cluster is picked for naming (the Classes panel asks which
    class it is), the way a user reads the map, rather than guessing by colour."""

    name = "name"
    paints = True  # takes left clicks (it changes no pixels)

    def release(self, pos: QPointF) -> None:
        # on release, so the class list that opens is not closed by the button going up
        self.editing.pick_cluster(pos.x(), pos.y())


class PolygonTool(Tool):
    """Click vertices; double-click or Enter fills the polygon, Escape drops it."""

    name = "polygon"
    paints = True

    def __init__(self, editing: Painter) -> None:
        super().__init__(editing)
        self.points: list[tuple[float, float]] = []
        self._path: QGraphicsPathItem | None = None
        self._hover: QPointF | None = None

    def activate(self, scene: QGraphicsScene) -> None:
        self._path = QGraphicsPathItem()
        self._path.setPen(_cosmetic_pen(QColor(255, 255, 0), dashed=True))
        self._path.setZValue(10)
        scene.addItem(self._path)

    def deactivate(self) -> None:
        self.points.clear()
        if self._path is not None and self._path.scene() is not None:
            self._path.scene().removeItem(self._path)
        self._path = None

    def press(self, pos: QPointF) -> None:
        point = (pos.x(), pos.y())
        if not self.points or self.points[-1] != point:
            self.points.append(point)
        self._redraw()

    def double_click(self, pos: QPointF) -> None:
        self.close()

    def hover(self, pos: QPointF) -> None:
        self._hover = pos
        if self.points:
            self._redraw()

    def key(self, key: int) -> bool:
        if key in (Qt.Key.Key_Return, Qt.Key.Key_Enter):
            self.close()
            return True
        if key == Qt.Key.Key_Escape:
            self.points.clear()
            self._redraw()
            return True
        if key == Qt.Key.Key_Backspace and self.points:
            self.points.pop()
            self._redraw()
            return True
        return False

    def close(self) -> None:
        """Fill the polygon drawn so far (one undo step) and start a new one."""
        points, self.points = self.points, []
        self._redraw()
        if len(points) >= 3:
            self.editing.fill_polygon(points)

    def _redraw(self) -> None:
        if self._path is None:
            return
        path = QPainterPath()
        if self.points:
            path.moveTo(*self.points[0])
            for x, y in self.points[1:]:
                path.lineTo(x, y)
            if self._hover is not None:
                path.lineTo(self._hover)
        self._path.setPath(path)


TOOL_TYPES: dict[str, type[Tool]] = {
    t.name: t for t in (Tool, BrushTool, EraserTool, FillTool, PolygonTool, NameClusterTool)
}
