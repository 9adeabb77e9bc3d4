"""The hand-edit layer on the canvas, drawn from the sparse EditLayer tile by tile.

The base overlay is one pixmap at preview resolution; edits are drawn above it at
source resolution, straight from the layer's 256×256 tiles. Each tile is coloured
once (through the class colour table) into a cached QImage, at a power-of-two step
when zoomed out, and only tiles inside the exposed rectangle are drawn. A brush dab
invalidates the tiles it touched and asks Qt to repaint only its rectangle
(:meth:`EditsItem.invalidate`), so painting on a 10000×10000 image costs the dab.
"""

from __future__ import annotations

import math

import numpy as np
from PySide6.QtCore import QRectF
from PySide6.QtGui import QImage, QPainter
from PySide6.QtWidgets import QGraphicsItem, QStyleOptionGraphicsItem, QWidget

from acseg_core.labelling.classes import NO_EDIT, UNASSIGNED, ClassMap
from acseg_core.labelling.edits import EditLayer

UNASSIGNED_RGBA = (40, 40, 40, 200)  # an edit that forces "no class"
MAX_STEP = 64  # coarsest sampling of a tile when zoomed far out (256 / 64 = 4 px)


def edit_lut(class_map: ClassMap) -> np.ndarray:
    """Edit value → RGBA: class colours, "no class" dark, NO_EDIT transparent."""
    lut = class_map.label_rgba_lut()
    lut[UNASSIGNED] = UNASSIGNED_RGBA
    lut[NO_EDIT] = 0
    return lut


class EditsItem(QGraphicsItem):
    """Draws one :class:`EditLayer` in source-pixel scene coordinates."""

    def __init__(self) -> None:
        super().__init__()
        self.setFlag(QGraphicsItem.GraphicsItemFlag.ItemUsesExtendedStyleOption, True)
        self.setZValue(2)  # above the image (0) and the base overlay (1)
        self.layer: EditLayer | None = None
        self._size = (0, 0)  # (width, height) in source pixels
        self._lut = np.zeros((256, 4), dtype=np.uint8)
        self._cache: dict[tuple[int, int, int], QImage | None] = {}  # (tr, tc, step)

    # -- content ------------------------------------------------------------------
    def set_layer(self, layer: EditLayer | None, width: int, height: int) -> None:
        if layer is not self.layer or (width, height) != self._size:
            self.prepareGeometryChange()
            self.layer = layer
            self._size = (width, height)
            self._cache.clear()
            self.update()

    def set_class_map(self, class_map: ClassMap) -> None:
        lut = edit_lut(class_map)
        if not np.array_equal(lut, self._lut):
            self._lut = lut
            self._cache.clear()
            self.update()

    def invalidate(self, window: tuple[int, int, int, int]) -> None:
        """The layer changed inside ``window`` (col, row, w, h): recolour and repaint it."""
        if self.layer is None:
            return
        col, row, w, h = window
        t = self.layer.tile
        tiles = {
            (tr, tc)
            for tr in range(max(row, 0) // t, (row + h - 1) // t + 1)
            for tc in range(max(col, 0) // t, (col + w - 1) // t + 1)
        }
        for key in [k for k in self._cache if (k[0], k[1]) in tiles]:
            del self._cache[key]
        self.update(QRectF(col, row, w, h))

    # -- QGraphicsItem --------------------------------------------------------------
    def boundingRect(self) -> QRectF:
        return QRectF(0, 0, *self._size)

    def paint(
        self,
        painter: QPainter,
        option: QStyleOptionGraphicsItem,
        widget: QWidget | None = None,
    ) -> None:
        layer = self.layer
        if layer is None or layer.is_empty:
            return
        exposed = option.exposedRect.intersected(self.boundingRect())
        if exposed.isEmpty():
            return
        lod = option.levelOfDetailFromTransform(painter.worldTransform())
        step = 1
        if lod < 0.5:
            step = min(MAX_STEP, 1 << math.floor(math.log2(1.0 / lod)))
        t = layer.tile
        tr0, tr1 = int(exposed.top()) // t, int(math.ceil(exposed.bottom()) - 1) // t
        tc0, tc1 = int(exposed.left()) // t, int(math.ceil(exposed.right()) - 1) // t
        for tr in range(tr0, tr1 + 1):
            for tc in range(tc0, tc1 + 1):
                image = self._tile_image(tr, tc, step)
                if image is not None:
                    painter.drawImage(QRectF(tc * t, tr * t, t, t), image)

    def _tile_image(self, tr: int, tc: int, step: int) -> QImage | None:
        key = (tr, tc, step)
        if key in self._cache:
            return self._cache[key]
        assert self.layer is not None
        t = self.layer.tile
        values = self.layer.read((tc * t, tr * t, t, t))
        image = None
        if (values != NO_EDIT).any():
            rgba = np.ascontiguousarray(self._lut[values[::step, ::step]])
            h, w, _ = rgba.shape
            image = QImage(rgba.data, w, h, 4 * w, QImage.Format.Format_RGBA8888).copy()
        self._cache[key] = image
        return image
