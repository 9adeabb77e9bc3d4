"""Image canvas: the picture plus an overlay; wheel zooms at the cursor, drag pans.

Scene coordinates are source-image pixels, whatever resolution the shown
pixmap has (a large raster is shown from a downsampled preview, scaled up).

With a painting tool active (:attr:`ImageCanvas.tool`), a left drag goes to the
tool; the view still pans with a middle drag or with Space held down.
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QPoint, QPointF, QRectF, Qt, Signal
from PySide6.QtGui import (
    QBrush,
    QColor,
    QImage,
    QKeyEvent,
    QMouseEvent,
    QPainter,
    QPixmap,
    QWheelEvent,
)
from PySide6.QtWidgets import (
    QGraphicsPixmapItem,
    QGraphicsScene,
    QGraphicsView,
    QLabel,
    QWidget,
)

ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 1 / 64, 64.0
NODATA_HATCH = QColor(230, 230, 230, 110)  # lines under transparent nodata pixels
GUIDE = (
    "<h2>No image open</h2>"
    "<p><b>Add images</b> (Ctrl+I) or <b>a folder</b> (Ctrl+Shift+O),<br>"
    "or <b>open a project</b> (Ctrl+O).</p>"
    "<p>Then <b>train</b> on the folder (Ctrl+T) or <b>load a model</b> (Ctrl+L),<br>"
    "name its clusters with the name tool (N) and export (Ctrl+E).</p>"
    "<p>F1 lists every shortcut.</p>"
)


class ImageCanvas(QGraphicsView):
    """Shows one image and an optional overlay; reports the source pixel under the cursor."""

    cursor_moved = Signal(float, float)  # source-pixel x, y (NaN when off the image)

    def __init__(self, parent: QWidget | None = None) -> None:
        super().__init__(parent)
        self.setScene(QGraphicsScene(self))
        self.setTransformationAnchor(QGraphicsView.ViewportAnchor.AnchorUnderMouse)
        self.setResizeAnchor(QGraphicsView.ViewportAnchor.AnchorViewCenter)
        self.setDragMode(QGraphicsView.DragMode.ScrollHandDrag)
        self.setRenderHint(QPainter.RenderHint.SmoothPixmapTransform, False)
        self.setMouseTracking(True)
        self.setBackgroundBrush(Qt.GlobalColor.darkGray)
        self._image_item = QGraphicsPixmapItem()
        self._overlay_item = QGraphicsPixmapItem()
        self._overlay_item.setZValue(1)
        self.scene().addItem(self._image_item)
        self.scene().addItem(self._overlay_item)
        self._source_size = (0, 0)
        self._has_nodata = False
        self._fit_mode = True  # keep fitting on resize until the user zooms
        self.tool: Any = None  # app.tools.tools.Tool; None or a non-painting tool: drag pans
        self._tool_pressed = False
        self._space_pan = False
        self._middle_pan: QPoint | None = None
        self.setFocusPolicy(Qt.FocusPolicy.StrongFocus)
        # what to do first, on the empty canvas (hidden while an image is shown)
        self.guide = QLabel(GUIDE, self)
        self.guide.setObjectName("canvas_guide")
        self.guide.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.guide.setStyleSheet("color: #f0f0f0; background: transparent;")
        self.guide.setAttribute(Qt.WidgetAttribute.WA_TransparentForMouseEvents)
        self._place_guide()

    # -- content -------------------------------------------------------------
    def set_image(self, image: QImage, source_width: int, source_height: int) -> None:
        """Show ``image`` stretched over a source of ``source_width``×``source_height`` px."""
        self._source_size = (source_width, source_height)
        self._image_item.setPixmap(QPixmap.fromImage(image))
        self._image_item.setScale(source_width / max(1, image.width()))
        self._overlay_item.setPixmap(QPixmap())
        self.scene().setSceneRect(0, 0, source_width, source_height)
        self.guide.hide()
        self.fit()

    def clear(self) -> None:
        self._image_item.setPixmap(QPixmap())
        self._overlay_item.setPixmap(QPixmap())
        self._source_size = (0, 0)
        self._has_nodata = False
        self.guide.show()
        self.viewport().update()

    def set_has_nodata(self, has: bool) -> None:
        """The shown image has nodata pixels (transparent): hatch what lies under them."""
        if has != self._has_nodata:
            self._has_nodata = has
            self.viewport().update()

    def drawBackground(self, painter: QPainter, rect: QRectF) -> None:
        super().drawBackground(painter, rect)
        if not (self._has_nodata and self.has_image):
            return
        w, h = self._source_size
        area = self.mapFromScene(QRectF(0, 0, w, h)).boundingRect()
        painter.save()
        painter.resetTransform()  # the hatch keeps its spacing on screen at every zoom
        painter.fillRect(area, QBrush(NODATA_HATCH, Qt.BrushStyle.BDiagPattern))
        painter.restore()

    def _place_guide(self) -> None:
        self.guide.setGeometry(self.viewport().geometry())

    def replace_image(self, image: QImage) -> None:
        """New pixels for the same source (display change): keep zoom and overlay."""
        self._image_item.setPixmap(QPixmap.fromImage(image))
        self._image_item.setScale(self._source_size[0] / max(1, image.width()))

    def set_overlay(self, image: QImage | None, opacity: float = 0.5) -> None:
        if image is None or image.isNull():
            self._overlay_item.setPixmap(QPixmap())
            return
        self._overlay_item.setPixmap(QPixmap.fromImage(image))
        self._overlay_item.setScale(self._source_size[0] / max(1, image.width()))
        self._overlay_item.setOpacity(opacity)

    def set_overlay_visible(self, visible: bool) -> None:
        self._overlay_item.setVisible(visible)

    @property
    def has_overlay(self) -> bool:
        return not self._overlay_item.pixmap().isNull() and self._overlay_item.isVisible()

    @property
    def overlay_pixmap(self) -> QPixmap:
        return self._overlay_item.pixmap()

    @property
    def image_pixmap(self) -> QPixmap:
        return self._image_item.pixmap()

    @property
    def has_image(self) -> bool:
        return not self._image_item.pixmap().isNull()

    @property
    def zoom(self) -> float:
        """Screen pixels per source pixel."""
        return self.transform().m11()

    # -- navigation ------------------------------------------------------------
    def fit(self) -> None:
        self._fit_mode = True
        if self.has_image:
            self.fitInView(self.scene().sceneRect(), Qt.AspectRatioMode.KeepAspectRatio)

    def actual_size(self) -> None:
        self._fit_mode = False
        self.setTransform(self.transform().fromScale(1.0, 1.0))

    def zoom_by(self, factor: float) -> None:
        target = min(MAX_ZOOM, max(MIN_ZOOM, self.zoom * factor))
        factor = target / self.zoom
        self._fit_mode = False
        self.scale(factor, factor)

    def resizeEvent(self, event: object) -> None:
        super().resizeEvent(event)
        self._place_guide()
        if self._fit_mode:
            self.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(ZOOM_STEP**steps)
        event.accept()

    # -- tools ---------------------------------------------------------------------
    def set_tool(self, tool: Any) -> None:
        """Make ``tool`` the active one (None: plain panning)."""
        if self.tool is not None:
            self.tool.deactivate()
        self._tool_pressed = False
        self.tool = tool
        if tool is not None:
            tool.activate(self.scene())
        self._update_drag_mode()

    @property
    def _painting(self) -> bool:
        return self.tool is not None and self.tool.paints and not self._space_pan

    def _update_drag_mode(self) -> None:
        mode = QGraphicsView.DragMode
        self.setDragMode(mode.NoDrag if self._painting else mode.ScrollHandDrag)

    def scene_pos(self, event: QMouseEvent) -> QPointF:
        return self.mapToScene(event.position().toPoint())

    def mousePressEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton:
            self._middle_pan = event.position().toPoint()
            self.viewport().setCursor(Qt.CursorShape.ClosedHandCursor)
            event.accept()
            return
        if event.button() == Qt.MouseButton.LeftButton and self._painting and self.has_image:
            self._tool_pressed = True
            self.tool.press(self.scene_pos(event))
            event.accept()
            return
        super().mousePressEvent(event)

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos: QPointF = self.scene_pos(event)
        w, h = self._source_size
        if 0 <= pos.x() < w and 0 <= pos.y() < h:
            self.cursor_moved.emit(pos.x(), pos.y())
        else:
            self.cursor_moved.emit(float("nan"), float("nan"))
        if self._middle_pan is not None:
            delta = event.position().toPoint() - self._middle_pan
            self._middle_pan = event.position().toPoint()
            self.horizontalScrollBar().setValue(self.horizontalScrollBar().value() - delta.x())
            self.verticalScrollBar().setValue(self.verticalScrollBar().value() - delta.y())
            event.accept()
            return
        if self.tool is not None:
            if self._tool_pressed:
                self.tool.move(pos)
            else:
                self.tool.hover(pos)
        super().mouseMoveEvent(event)

    def mouseReleaseEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.MiddleButton and self._middle_pan is not None:
            self._middle_pan = None
            self.viewport().unsetCursor()
            event.accept()
            return
        if event.button() == Qt.MouseButton.LeftButton and self._tool_pressed:
            self._tool_pressed = False
            self.tool.release(self.scene_pos(event))
            event.accept()
            return
        super().mouseReleaseEvent(event)

    def mouseDoubleClickEvent(self, event: QMouseEvent) -> None:
        if event.button() == Qt.MouseButton.LeftButton and self._painting and self.has_image:
            self.tool.double_click(self.scene_pos(event))
            event.accept()
            return
        super().mouseDoubleClickEvent(event)

    def keyPressEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_pan = True
            self._update_drag_mode()
            event.accept()
            return
        if self.tool is not None and self.tool.key(event.key()):
            event.accept()
            return
        super().keyPressEvent(event)

    def keyReleaseEvent(self, event: QKeyEvent) -> None:
        if event.key() == Qt.Key.Key_Space and not event.isAutoRepeat():
            self._space_pan = False
            self._update_drag_mode()
            event.accept()
            return
        super().keyReleaseEvent(event)
