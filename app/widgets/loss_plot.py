"""A small live line plot of the training loss (QPainter; no plotting library)."""

from __future__ import annotations

import math

from PySide6.QtCore import QPointF, QRectF, Qt
from PySide6.QtGui import QColor, QPainter, QPainterPath, QPen
from PySide6.QtWidgets import QSizePolicy, QWidget

MAX_POINTS = 2000  # older points are thinned so painting stays cheap


class LossPlot(QWidget):
    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.points: list[tuple[float, float]] = []  # (step, loss)
        self.setMinimumHeight(90)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def clear(self) -> None:
        self.points.clear()
        self.update()

    def add_point(self, step: float, loss: float) -> None:
        if not math.isfinite(loss):
            return
        self.points.append((float(step), float(loss)))
        if len(self.points) > MAX_POINTS:
            self.points = self.points[::2]
        self.update()

    def paintEvent(self, _event: object) -> None:
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        area = QRectF(self.rect()).adjusted(44, 8, -8, -18)
        painter.fillRect(self.rect(), self.palette().base())
        painter.setPen(QPen(self.palette().mid().color()))
        painter.drawRect(area)
        if len(self.points) < 2:
            painter.drawText(area, Qt.AlignmentFlag.AlignCenter, "loss appears here")
            return
        xs = [p[0] for p in self.points]
        ys = [p[1] for p in self.points]
        x0, x1 = min(xs), max(xs)
        y0, y1 = min(ys), max(ys)
        if y1 - y0 < 1e-9:
            y0, y1 = y0 - 0.5, y1 + 0.5
        if x1 - x0 < 1e-9:
            x1 = x0 + 1

        def to_screen(x: float, y: float) -> QPointF:
            return QPointF(
                area.left() + (x - x0) / (x1 - x0) * area.width(),
                area.bottom() - (y - y0) / (y1 - y0) * area.height(),
            )

        path = QPainterPath(to_screen(*self.points[0]))
        for x, y in self.points[1:]:
            path.lineTo(to_screen(x, y))
        painter.setPen(QPen(QColor(0, 130, 200), 1.6))
        painter.drawPath(path)
        painter.setPen(QPen(self.palette().text().color()))
        font = painter.font()
        font.setPointSizeF(max(6.0, font.pointSizeF() * 0.8))
        painter.setFont(font)
        painter.drawText(QPointF(2, area.top() + 10), f"{y1:.3g}")
        painter.drawText(QPointF(2, area.bottom()), f"{y0:.3g}")
        painter.drawText(QPointF(area.left(), self.height() - 4), f"step {int(x0)}")
        right = f"{int(x1)}"
        painter.drawText(
            QPointF(
                area.right() - painter.fontMetrics().horizontalAdvance(right), self.height() - 4
            ),
            right,
        )
