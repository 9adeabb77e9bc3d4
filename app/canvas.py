"""Image canvas: the picture plus an overlay; wheel zooms at the cursor, drag pans.

Scene coordinates are source-image pixels, whatever resolution the shown
pixmap has (a large raster is shown from a downsampled preview, scaled up).
"""

from __future__ import annotations

from PySide6.QtCore import QPointF, Qt, Signal
from PySide6.QtGui import QImage, QMouseEvent, QPainter, QPixmap, QWheelEvent
from PySide6.QtWidgets import QGraphicsPixmapItem, QGraphicsScene, QGraphicsView, QWidget

ZOOM_STEP = 1.25
MIN_ZOOM, MAX_ZOOM = 1 / 64, 64.0


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
        self._fit_mode = True  # keep fitting on resize until the user zooms

    # -- content -------------------------------------------------------------
    def set_image(self, image: QImage, source_width: int, source_height: int) -> None:
        """Show ``image`` stretched over a source of ``source_width``×``source_height`` px."""
        self._source_size = (source_width, source_height)
        self._image_item.setPixmap(QPixmap.fromImage(image))
        self._image_item.setScale(source_width / max(1, image.width()))
        self._overlay_item.setPixmap(QPixmap())
        self.scene().setSceneRect(0, 0, source_width, source_height)
        self.fit()

    def clear(self) -> None:
        self._image_item.setPixmap(QPixmap())
        self._overlay_item.setPixmap(QPixmap())
        self._source_size = (0, 0)

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

    def set_overlay_opacity(self, opacity: float) -> None:
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
        if self._fit_mode:
            self.fit()

    def wheelEvent(self, event: QWheelEvent) -> None:
        steps = event.angleDelta().y() / 120.0
        if steps:
            self.zoom_by(ZOOM_STEP**steps)
        event.accept()

    def mouseMoveEvent(self, event: QMouseEvent) -> None:
        pos: QPointF = self.mapToScene(event.position().toPoint())
        w, h = self._source_size
        if 0 <= pos.x() < w and 0 <= pos.y() < h:
            self.cursor_moved.emit(pos.x(), pos.y())
        else:
            self.cursor_moved.emit(float("nan"), float("nan"))
        super().mouseMoveEvent(event)
