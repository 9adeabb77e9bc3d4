"""Painting hand edits: the rules a brush, a fill and a polygon follow, and their history.

A :class:`Stroke` is one undoable step on one image's edit layer: every piece written
through :meth:`Stroke.paint` records the old values first, then writes the class
(or ``NO_EDIT``, the eraser) under its footprint — but never a class onto a pixel the
source has no data for (the cluster map says NODATA there). :meth:`Stroke.finish`
turns the pieces into one :class:`~acseg_core.labelling.undo.EditDiff`.

:func:`displayed_values` is what the overlay shows in a window (classes, or clusters
with hand edits on top, coded ``256 + class id`` so an edit never reads as a
cluster): the fill grows its region over these values. :class:`EditHistory` keeps
one undo stack per image, so undo on one image never touches another.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np

from acseg_core.io.raster import NODATA
from acseg_core.labelling.classes import NO_EDIT, ClassMap, composite
from acseg_core.labelling.edits import EditLayer
from acseg_core.labelling.shapes import Footprint, flood_region
from acseg_core.labelling.undo import DEFAULT_BUDGET, EditDiff, StrokeRecorder, UndoStack, Window

EDIT_CODE = 256  # displayed value of a hand edit of class id c over clusters: 256 + c
OUTSIDE_CLUSTER = -1  # a within-cluster fill's value for pixels of other clusters


class Stroke:
    """One undoable step on ``layer``; ``clusters`` (the image's map, same size) keeps
    classes off nodata pixels (None: no map, nothing is kept off)."""

    def __init__(self, layer: EditLayer, clusters: np.ndarray | None = None) -> None:
        self.layer = layer
        self.clusters = clusters if clusters is not None and clusters.shape == layer.shape else None
        self.recorder = StrokeRecorder(layer)

    def paint(self, footprint: Footprint | None, value: int) -> Window | None:
        """Write ``value`` under ``footprint``; the window that changed (None: nothing)."""
        if footprint is None:
            return None
        col, row, mask = footprint
        h, w = mask.shape
        window = (col, row, w, h)
        old = self.layer.read(window)
        changed = mask & (old != value)
        if value != NO_EDIT and self.clusters is not None:
            changed &= self.clusters[row : row + h, col : col + w] != NODATA
        if not changed.any():
            return None
        self.recorder.add(col, row, changed, old)
        self.layer.write(col, row, np.full((h, w), value, dtype=np.uint8), changed)
        return window

    def finish(self) -> EditDiff | None:
        """The stroke as one diff (None when it changed nothing)."""
        return self.recorder.finish()


def displayed_values(
    clusters: np.ndarray,
    layer: EditLayer,
    window: Window,
    class_map: ClassMap,
    by_class: bool,
) -> np.ndarray:
    """What the overlay shows in ``window``: class ids over classes (``by_class``), or
    cluster ids with hand edits on top as ``256 + class id`` (uint16)."""
    col, row, w, h = window
    cl = clusters[row : row + h, col : col + w]
    edits = layer.read(window)
    if by_class:
        return composite(class_map.labels_from_clusters(cl), edits)
    values = cl.astype(np.uint16)
    edited = (edits != NO_EDIT) & (cl != NODATA)
    values[edited] = EDIT_CODE + edits[edited].astype(np.uint16)
    return values


def fill_footprint(
    clusters: np.ndarray,
    layer: EditLayer,
    seed: tuple[int, int],
    class_map: ClassMap,
    by_class: bool,
    tolerance: int = 0,
    within_cluster: bool = False,
) -> Footprint | None:
    """The connected region of equal displayed values around ``seed`` (col, row), with
    enclosed specks of up to ``tolerance`` pixels (other clusters, stray pixels) taken
    in; raises :class:`~acseg_core.labelling.shapes.RegionTooLarge` for a huge one.
    Nodata inside stays unpainted (:meth:`Stroke.paint`).

    ``within_cluster``: the region never leaves the seed's cluster (its value in
    ``clusters``), so a class spread over several clusters, or a tolerance that would
    take in a neighbour, cannot carry one click into unrelated regions; None when the
    seed is nodata."""
    if not within_cluster:
        values: Callable[[Window], np.ndarray] = lambda w: displayed_values(  # noqa: E731
            clusters, layer, w, class_map, by_class
        )
        return flood_region(values, seed, layer.height, layer.width, tolerance=tolerance)
    col, row = seed
    cluster = int(clusters[row, col])
    if cluster == NODATA:
        return None

    def inside_values(window: Window) -> np.ndarray:
        c, r, w, h = window
        shown = displayed_values(clusters, layer, window, class_map, by_class).astype(np.int32)
        shown[clusters[r : r + h, c : c + w] != cluster] = OUTSIDE_CLUSTER
        return shown

    found = flood_region(inside_values, seed, layer.height, layer.width, tolerance=tolerance)
    c0, r0, mask = found
    h, w = mask.shape
    mask = mask & (clusters[r0 : r0 + h, c0 : c0 + w] == cluster)  # specks of other clusters
    return c0, r0, mask


class EditHistory:
    """One undo stack per image (an image's steps point at its own layer), each kept
    to ``budget`` bytes of diffs."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self._stacks: dict[Path, UndoStack] = {}

    def stack(self, image: Path) -> UndoStack:
        return self._stacks.setdefault(image, UndoStack(self.budget))

    def push(self, image: Path, diff: EditDiff) -> None:
        self.stack(image).push(diff)

    def undo(self, image: Path) -> EditDiff | None:
        return self.stack(image).undo()

    def redo(self, image: Path) -> EditDiff | None:
        return self.stack(image).redo()

    def clear(self) -> None:
        """Another project: old steps point at layers that are gone."""
        self._stacks.clear()


__all__ = [
    "EDIT_CODE",
    "OUTSIDE_CLUSTER",
    "EditHistory",
    "Stroke",
    "displayed_values",
    "fill_footprint",
]
