"""Stroke labels: which pixels of an image a user gave which class.

A :class:`StrokeSet` is sparse (the stroked pixels' rows, columns and class indices),
so a few strokes on a huge image cost what the strokes cost. Class *indices* are
positions 0..C−1 in the list of class names the read-out learns; ``NOT_STROKED``
(255) marks pixels without a stroke in dense maps.

Sources: a dense uint8 map (a stroke PNG), and a project's hand edits
(:mod:`acseg_core.labelling.teaching`). :func:`read_stroke_file` checks a stroke PNG
against its image and the class count and names the file in one line when it does
not fit.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage

from acseg_core.errors import InputError
from acseg_core.io.raster import open_raster

NOT_STROKED = 255
STROKE_SUFFIXES = (".png", ".tif", ".tiff")


@dataclass(frozen=True)
class StrokeSet:
    """Stroked pixels of one ``height × width`` image (int32 rows/cols, uint8 classes)."""

    height: int
    width: int
    rows: np.ndarray
    cols: np.ndarray
    classes: np.ndarray

    @classmethod
    def from_map(cls, stroke_map: np.ndarray) -> StrokeSet:
        """From a dense h×w uint8 map (``NOT_STROKED`` = no stroke)."""
        stroke_map = np.asarray(stroke_map)
        if stroke_map.ndim != 2:
            raise ValueError("a stroke map is one band (h × w)")
        rows, cols = np.nonzero(stroke_map != NOT_STROKED)
        return cls(
            int(stroke_map.shape[0]), int(stroke_map.shape[1]),
            rows.astype(np.int32), cols.astype(np.int32),
            stroke_map[rows, cols].astype(np.uint8),
        )  # fmt: skip

    @classmethod
    def empty(cls, height: int, width: int) -> StrokeSet:
        none = np.zeros(0, np.int32)
        return cls(height, width, none, none.copy(), np.zeros(0, np.uint8))

    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    def __len__(self) -> int:
        return len(self.classes)

    def components(self) -> np.ndarray:
        """A stroke id per stroked pixel (in ``rows``/``cols`` order): pixels of one class
        that touch (8-connected) are one stroke. What leave-one-stroke-out holds out."""
        out = np.zeros(len(self), np.int64)
        if not len(self):
            return out
        top, left = int(self.rows.min()), int(self.cols.min())
        shape = (int(self.rows.max()) - top + 1, int(self.cols.max()) - left + 1)
        offset = 0
        for value in np.unique(self.classes):
            pick = self.classes == value
            mask = np.zeros(shape, bool)
            mask[self.rows[pick] - top, self.cols[pick] - left] = True
            labels, count = ndimage.label(mask, structure=np.ones((3, 3), bool))
            out[pick] = labels[self.rows[pick] - top, self.cols[pick] - left] - 1 + offset
            offset += count
        return out

    def counts(self, classes: int) -> np.ndarray:
        """Stroked pixels per class index."""
        return np.bincount(self.classes, minlength=classes)[:classes]

    @property
    def digest(self) -> str:
        """Identifies the strokes (cache key of an image's gathered samples)."""
        h = hashlib.sha1(np.array([self.height, self.width], np.int64).tobytes())
        for a in (self.rows, self.cols, self.classes):
            h.update(np.ascontiguousarray(a).tobytes())
        return h.hexdigest()[:16]


def stroke_file_for(folder: Path, image: Path) -> Path:
    """The stroke file of ``image`` in ``folder``: same stem, a PNG (or TIFF)."""
    for suffix in STROKE_SUFFIXES:
        candidate = folder / (image.stem + suffix)
        if candidate.is_file():
            return candidate
    raise InputError(
        folder / (image.stem + ".png"), f"no stroke file for image {image.name} (same stem)"
    )


def read_stroke_file(path: Path, shape: tuple[int, int], classes: int | None) -> StrokeSet:
    """Read and check one stroke file: single band, the image's size, values < C or 255."""
    try:
        with open_raster(path) as raster:
            info = raster.info
            if info.count != 1:
                raise InputError(path, f"a stroke file must be single-band, not {info.count} bands")
            if (info.height, info.width) != tuple(shape):
                raise InputError(
                    path, f"is {info.width}×{info.height} px but its image is "
                    f"{shape[1]}×{shape[0]} px",
                )  # fmt: skip
            data = raster.read((0, 0, info.width, info.height))[0]
    except InputError:
        raise
    except Exception as exc:  # a damaged file: one line, never a traceback
        raise InputError(path, f"cannot read the stroke file ({type(exc).__name__})") from exc
    if (
        not np.issubdtype(data.dtype, np.integer)
        or data.min(initial=0) < 0
        or (data.max(initial=0) > NOT_STROKED)
    ):
        raise InputError(path, "stroke values must be class indices 0..C−1 or 255")
    data = data.astype(np.uint8)
    used = data[data != NOT_STROKED]
    if classes is not None and used.size and int(used.max()) >= classes:
        raise InputError(
            path, f"holds class index {int(used.max())} but there are only {classes} "
            f"classes (0..{classes - 1}; 255 = not stroked)",
        )  # fmt: skip
    return StrokeSet.from_map(data)


__all__ = ["NOT_STROKED", "StrokeSet", "read_stroke_file", "stroke_file_for"]
