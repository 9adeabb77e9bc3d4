"""Undo/redo of hand edits as bounded diffs (no Qt; the editing controller drives it).

A step is an :class:`EditDiff`: the bounding box of what changed, the flat indices
of the changed pixels inside it and their old and new values — 6 bytes per changed
pixel, whatever the size of the image or of the box. A stroke is recorded piece by
piece (:class:`StrokeRecorder`) and becomes *one* step when the mouse is released.
An :class:`UndoStack` drops its oldest steps beyond a byte budget.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from acseg_core.labelling.edits import EditLayer

Window = tuple[int, int, int, int]  # (col, row, width, height)

DEFAULT_BUDGET = 64 * 2**20  # bytes of diffs kept per image


@dataclass(frozen=True)
class EditDiff:
    """What one step changed in one layer."""

    layer: EditLayer
    window: Window
    index: np.ndarray  # int32 flat indices into the window (row-major)
    old: np.ndarray  # uint8, one per index
    new: np.ndarray  # uint8, one per index

    @property
    def nbytes(self) -> int:
        return int(self.index.nbytes + self.old.nbytes + self.new.nbytes)

    @property
    def pixels(self) -> int:
        return int(self.index.size)

    def undo(self) -> Window:
        self._write(self.old)
        return self.window

    def redo(self) -> Window:
        self._write(self.new)
        return self.window

    def _write(self, values: np.ndarray) -> None:
        col, row, w, h = self.window
        full = np.zeros(w * h, dtype=np.uint8)
        mask = np.zeros(w * h, dtype=bool)
        full[self.index] = values
        mask[self.index] = True
        self.layer.write(col, row, full.reshape(h, w), mask.reshape(h, w))


class StrokeRecorder:
    """Collects the pieces of one stroke (each: window, changed mask, old values).

    Call :meth:`add` *before* writing a piece into the layer; :meth:`finish` merges
    the pieces into one :class:`EditDiff` (the first old value of a pixel wins).
    """

    def __init__(self, layer: EditLayer) -> None:
        self.layer = layer
        self._pieces: list[tuple[int, int, np.ndarray, np.ndarray]] = []

    def add(self, col: int, row: int, changed: np.ndarray, old: np.ndarray) -> None:
        if changed.any():
            self._pieces.append((col, row, changed, old))

    @property
    def empty(self) -> bool:
        return not self._pieces

    def window(self) -> Window | None:
        if not self._pieces:
            return None
        c0 = min(p[0] for p in self._pieces)
        r0 = min(p[1] for p in self._pieces)
        c1 = max(p[0] + p[2].shape[1] for p in self._pieces)
        r1 = max(p[1] + p[2].shape[0] for p in self._pieces)
        return (c0, r0, c1 - c0, r1 - r0)

    def finish(self) -> EditDiff | None:
        window = self.window()
        if window is None:
            return None
        c0, r0, w, h = window
        changed = np.zeros((h, w), dtype=bool)
        old = np.zeros((h, w), dtype=np.uint8)
        for col, row, mask, values in reversed(self._pieces):  # earliest write wins
            sl = (
                slice(row - r0, row - r0 + mask.shape[0]),
                slice(col - c0, col - c0 + mask.shape[1]),
            )
            old[sl][mask] = values[mask]
            changed[sl] |= mask
        new = self.layer.read(window)
        changed &= new != old  # painted and painted back within the stroke: no change
        index = np.flatnonzero(changed).astype(np.int32)
        self._pieces.clear()
        if index.size == 0:
            return None
        return EditDiff(self.layer, window, index, old.ravel()[index], new.ravel()[index])


class UndoStack:
    """Undo and redo lists of diffs; the oldest steps go beyond ``budget`` bytes."""

    def __init__(self, budget: int = DEFAULT_BUDGET) -> None:
        self.budget = budget
        self._undo: list[EditDiff] = []
        self._redo: list[EditDiff] = []

    @property
    def can_undo(self) -> bool:
        return bool(self._undo)

    @property
    def can_redo(self) -> bool:
        return bool(self._redo)

    @property
    def nbytes(self) -> int:
        return sum(d.nbytes for d in self._undo) + sum(d.nbytes for d in self._redo)

    def __len__(self) -> int:
        return len(self._undo)

    def push(self, diff: EditDiff) -> None:
        """A new step (already applied to its layer); clears what could be redone."""
        self._undo.append(diff)
        self._redo.clear()
        while len(self._undo) > 1 and self.nbytes > self.budget:
            self._undo.pop(0)

    def undo(self) -> EditDiff | None:
        if not self._undo:
            return None
        diff = self._undo.pop()
        diff.undo()
        self._redo.append(diff)
        return diff

    def redo(self) -> EditDiff | None:
        if not self._redo:
            return None
        diff = self._redo.pop()
        diff.redo()
        self._undo.append(diff)
        return diff

    def clear(self) -> None:
        self._undo.clear()
        self._redo.clear()
