"""Hand corrections: the active tool, class and brush size, turned into core strokes.

Edits go into the current image's :class:`~acseg_core.labelling.edits.EditLayer` (held by
the project, so they are saved with it and exported) — never into the cluster map, so
remapping clusters later keeps them. The rules (what a stroke may paint, the fill's
region, one undo stack per image) are the core's (:mod:`acseg_core.labelling.painting`);
this controller maps gestures onto them and repaints only the changed rectangle of
the edits item. One stroke, fill or polygon is one undo step.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from acseg_core.errors import AcsegError
from acseg_core.io.raster import NODATA
from acseg_core.labelling.classes import NO_EDIT
from acseg_core.labelling.edits import EditLayer
from acseg_core.labelling.painting import EditHistory, Stroke, displayed_values, fill_footprint
from acseg_core.labelling.shapes import Footprint, RegionTooLarge, polygon_mask, segment_mask
from acseg_core.labelling.undo import EditDiff, UndoStack
from app.canvas import ImageCanvas
from app.controllers.viewer import ImageViewController
from app.models import ClassesModel, DocumentModel, ImageListModel, OverlayModel, SessionModel
from app.tools.edits_item import EditsItem
from app.tools.tools import TOOL_TYPES, Tool

MIN_RADIUS, MAX_RADIUS, DEFAULT_RADIUS = 1, 500, 8
TOOLS = ("pan", "brush", "eraser", "fill", "polygon", "name")


class EditingController(QObject):
    tool_changed = Signal(str)
    active_class_changed = Signal(int)  # class id, 0 = none
    brush_radius_changed = Signal(int)
    fill_tolerance_changed = Signal(int)
    fill_within_cluster_changed = Signal(bool)
    undo_changed = Signal()
    edited = Signal(object)  # (col, row, w, h) of a change on the current image
    message = Signal(str)  # a hint for the status bar ("add a class first" ...)
    cluster_picked = Signal(int)  # the name tool clicked a region of this cluster

    def __init__(
        self,
        canvas: ImageCanvas,
        viewer: ImageViewController,
        images: ImageListModel,
        session: SessionModel,
        classes: ClassesModel,
        overlay: OverlayModel,
        document: DocumentModel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.canvas, self.viewer, self.images, self.session = canvas, viewer, images, session
        self.classes, self.overlay, self.document = classes, overlay, document
        self.item = EditsItem()
        canvas.scene().addItem(self.item)
        self.tools: dict[str, Tool] = {name: TOOL_TYPES[name](self) for name in TOOLS}
        self.tool_name = "pan"
        self.active_class = 0
        self.brush_radius = DEFAULT_RADIUS
        self.fill_tolerance = 0  # px: enclosed specks the fill takes in
        self.fill_within_cluster = False  # the fill never leaves the clicked cluster
        self._fill_cache: tuple[Any, ...] | None = None  # (key, the last fill region, ...)
        self.history = EditHistory()
        self._stroke: Stroke | None = None
        document.replaced.connect(self._project_replaced)

        viewer.image_shown.connect(lambda _info: self.refresh_layer())
        images.current_changed.connect(lambda _i: self.refresh_layer())
        images.images_changed.connect(self.refresh_layer)  # New/Open project: old layers go
        classes.changed.connect(self._classes_changed)
        overlay.changed.connect(self._overlay_changed)
        self._classes_changed()
        self._overlay_changed()

    # -- settings ------------------------------------------------------------------
    @property
    def tool(self) -> Tool:
        return self.tools[self.tool_name]

    def set_tool(self, name: str) -> None:
        if name not in self.tools:
            raise ValueError(f"unknown tool {name!r}")
        if name == self.tool_name and self.canvas.tool is self.tools[name]:
            return
        self.tool_name = name
        self.canvas.set_tool(self.tools[name])
        self.tool_changed.emit(name)

    def set_active_class(self, class_id: int) -> None:
        if class_id != self.active_class:
            self.active_class = class_id
            self.active_class_changed.emit(class_id)

    def pick_class(self, number: int) -> None:
        """Keys 1–9: the class at that position of the class list becomes active."""
        classes = self.classes.classes
        if 1 <= number <= len(classes):
            self.set_active_class(classes[number - 1].id)
            self.message.emit(f"Painting {classes[number - 1].name}")
        else:
            self.message.emit(f"There is no class {number}")

    def set_brush_radius(self, radius: int) -> None:
        radius = min(MAX_RADIUS, max(MIN_RADIUS, int(radius)))
        if radius != self.brush_radius:
            self.brush_radius = radius
            self.brush_radius_changed.emit(radius)

    def grow_brush(self) -> None:
        self.set_brush_radius(max(self.brush_radius + 1, round(self.brush_radius * 1.25)))

    def shrink_brush(self) -> None:
        self.set_brush_radius(min(self.brush_radius - 1, round(self.brush_radius / 1.25)))

    def set_fill_tolerance(self, pixels: int) -> None:
        pixels = max(0, int(pixels))
        if pixels != self.fill_tolerance:
            self.fill_tolerance = pixels
            self._fill_cache = None
            self.fill_tolerance_changed.emit(pixels)

    def set_fill_within_cluster(self, on: bool) -> None:
        on = bool(on)
        if on != self.fill_within_cluster:
            self.fill_within_cluster = on
            self._fill_cache = None
            self.fill_within_cluster_changed.emit(on)

    def paint_value(self) -> int | None:
        """The edit value the brush writes (the active class id), None when there is none."""
        if self.active_class and self.active_class in {c.id for c in self.classes.classes}:
            return self.active_class
        self.message.emit("Add a class (and pick it with 1–9) before painting")
        return None

    def eraser_value(self) -> int:
        return NO_EDIT

    # -- the layer of the current image -----------------------------------------------
    @property
    def image(self) -> Path | None:
        return self.images.current if self.viewer.info is not None else None

    def layer(self, create: bool = False) -> EditLayer | None:
        """The current image's edit layer (made on the first edit when ``create``)."""
        image = self.image
        if image is None:
            return None
        doc = self.document.project
        try:
            if not any(e.path == image for e in doc.images):
                if not create:
                    return None
                doc.add_images([image])
            return doc.get_edits(image, create=create)
        except AcsegError as exc:
            self.message.emit(str(exc))
            return None

    def refresh_layer(self) -> None:
        info = self.viewer.info
        if info is None:
            self.item.set_layer(None, 0, 0)
        else:
            self.item.set_layer(self.layer(), info.width, info.height)
        self.undo_changed.emit()

    def edit_at(self, col: int, row: int) -> int | None:
        """The hand-edit value of a pixel of the shown image, None where it is not edited."""
        layer = self.item.layer
        if layer is None or not (0 <= row < layer.height and 0 <= col < layer.width):
            return None
        value = int(layer.read((col, row, 1, 1))[0, 0])
        return None if value == NO_EDIT else value

    def stack(self) -> UndoStack | None:
        image = self.image
        return self.history.stack(image) if image is not None else None

    def _project_replaced(self) -> None:
        """New/Open: old steps point at old layers."""
        self.history.clear()
        self._stroke = None

    # -- strokes (called by the tools) -------------------------------------------------
    def begin_stroke(self) -> bool:
        layer = self.layer(create=True)
        if layer is None:
            return False
        if layer is not self.item.layer:
            self.item.set_layer(layer, layer.width, layer.height)
        self._stroke = Stroke(layer, self._clusters())
        return True

    def paint_segment(self, x0: float, y0: float, x1: float, y1: float, value: int) -> None:
        if self._stroke is None:
            return
        layer = self._stroke.layer
        footprint = segment_mask(x0, y0, x1, y1, self.brush_radius, layer.height, layer.width)
        self._apply(footprint, value)

    def end_stroke(self) -> EditDiff | None:
        stroke, self._stroke = self._stroke, None
        if stroke is None:
            return None
        diff = stroke.finish()
        if diff is not None:
            self._push(diff)
        return diff

    def pick_cluster(self, x: float, y: float) -> int | None:
        """The cluster under (x, y) of the current map, announced for naming."""
        clusters = self._clusters()
        if clusters is None:
            self.message.emit("Naming needs the cluster map of this image (load a model first)")
            return None
        col, row = int(x), int(y)
        if not (0 <= row < clusters.shape[0] and 0 <= col < clusters.shape[1]):
            return None
        cluster = int(clusters[row, col])
        if cluster == NODATA:
            self.message.emit("No data here: no cluster to name")
            return None
        mapped = self.classes.class_of(cluster)
        named = f"now {mapped.name}" if mapped is not None else "not named yet"
        self.message.emit(f"Cluster {cluster} ({named}): choose its class in the Classes panel")
        self.cluster_picked.emit(cluster)
        return cluster

    def fill_region(self, x: float, y: float) -> Footprint | None:
        """What a fill at (x, y) would paint (the core's rule, with the tolerance and the
        within-cluster mode), or
        None where there is nothing to fill (no map, off the image, nodata). Raises
        RegionTooLarge. The last region is kept, so hovering inside it costs nothing."""
        clusters = self._clusters()
        layer = self.item.layer if self.item.layer is not None else self.layer()
        info = self.viewer.info
        if clusters is None or info is None:
            return None
        col, row = int(x), int(y)
        if not (0 <= row < clusters.shape[0] and 0 <= col < clusters.shape[1]):
            return None
        if clusters[row, col] == NODATA:
            return None
        if layer is None:  # no edits yet: an empty layer of the image's size
            layer = EditLayer(info.height, info.width)
        by_class = self.overlay.mode == self.overlay.CLASSES
        # the cache holds the map and layer it was made from: their ids stay theirs
        within = self.fill_within_cluster
        key = (
            id(clusters),
            id(layer),
            by_class,
            self.fill_tolerance,
            within,
            self.classes.class_map,
        )
        cache = self._fill_cache
        if cache is not None and cache[0] == key:
            c0, r0, mask = cache[1]
            inside = 0 <= row - r0 < mask.shape[0] and 0 <= col - c0 < mask.shape[1]
            if inside and mask[row - r0, col - c0]:
                return cache[1]
        footprint = fill_footprint(
            clusters,
            layer,
            (col, row),
            self.classes.class_map,
            by_class,
            self.fill_tolerance,
            within_cluster=within,
        )
        self._fill_cache = (key, footprint, clusters, layer) if footprint is not None else None
        return footprint

    def fill_at(self, x: float, y: float) -> EditDiff | None:
        """Fill the connected region of the displayed labels under (x, y) (one step),
        with enclosed specks up to the fill tolerance."""
        value = self.paint_value()
        clusters = self._clusters()
        if value is None:
            return None
        if clusters is None:
            self.message.emit("Fill needs the cluster map of this image (load a model first)")
            return None
        col, row = int(x), int(y)
        if not (0 <= row < clusters.shape[0] and 0 <= col < clusters.shape[1]):
            return None
        if clusters[row, col] == NODATA:
            self.message.emit("No data here: nothing to fill")
            return None
        if not self.begin_stroke():
            return None
        try:
            footprint = self.fill_region(x, y)
        except RegionTooLarge as exc:
            self._stroke = None
            self.message.emit(f"Not filled: {exc}; use the polygon or the brush")
            return None
        self._apply(footprint, value)
        return self.end_stroke()

    def fill_preview(self, x: float, y: float) -> tuple[Footprint, tuple[int, int, int]] | None:
        """The region a click would fill and the colour it would take (the active
        class's), for the fill tool to show before the click commits."""
        if not self.active_class or self.active_class not in {c.id for c in self.classes.classes}:
            return None
        try:
            footprint = self.fill_region(x, y)
        except RegionTooLarge:
            return None
        if footprint is None:
            return None
        colour = self.classes.class_map.class_by_id(self.active_class).color
        return footprint, colour

    def fill_polygon(self, points: Sequence[tuple[float, float]]) -> EditDiff | None:
        value = self.paint_value()
        if value is None or not self.begin_stroke():
            return None
        assert self._stroke is not None
        layer = self._stroke.layer
        self._apply(polygon_mask(points, layer.height, layer.width), value)
        return self.end_stroke()

    def displayed_values(
        self, clusters: np.ndarray, layer: EditLayer, window: tuple[int, int, int, int]
    ) -> np.ndarray:
        """What the overlay shows in ``window`` (the core's rule)."""
        by_class = self.overlay.mode == self.overlay.CLASSES
        return displayed_values(clusters, layer, window, self.classes.class_map, by_class)

    def _clusters(self) -> np.ndarray | None:
        image = self.image
        return self.session.prediction(image) if image is not None else None

    def _apply(self, footprint: Footprint | None, value: int) -> None:
        """Paint ``value`` under the footprint (the stroke's rules) and repaint."""
        if self._stroke is None:
            return
        window = self._stroke.paint(footprint, value)
        if window is not None:
            self._fill_cache = None  # the displayed labels changed
            self.item.invalidate(window)
            self.edited.emit(window)

    # -- undo ---------------------------------------------------------------------------
    def _push(self, diff: EditDiff) -> None:
        stack = self.stack()
        if stack is not None:
            stack.push(diff)
        self.document.changed()
        self.undo_changed.emit()

    @property
    def can_undo(self) -> bool:
        stack = self.stack()
        return stack is not None and stack.can_undo

    @property
    def can_redo(self) -> bool:
        stack = self.stack()
        return stack is not None and stack.can_redo

    def undo(self) -> EditDiff | None:
        return self._step(undo=True)

    def redo(self) -> EditDiff | None:
        return self._step(undo=False)

    def _step(self, undo: bool) -> EditDiff | None:
        stack = self.stack()
        if stack is None or self._stroke is not None:
            return None
        diff = stack.undo() if undo else stack.redo()
        if diff is None:
            return None
        self._fill_cache = None
        if diff.layer is self.item.layer:
            self.item.invalidate(diff.window)
        self.edited.emit(diff.window)
        self.document.changed()
        self.undo_changed.emit()
        return diff

    # -- reactions ------------------------------------------------------------------------
    def _classes_changed(self) -> None:
        self.item.set_class_map(self.classes.class_map)
        ids = [c.id for c in self.classes.classes]
        if self.active_class not in ids:
            self.set_active_class(ids[0] if ids else 0)

    def _overlay_changed(self) -> None:
        self.item.setOpacity(self.overlay.opacity)
        self.item.setVisible(self.overlay.visible)
