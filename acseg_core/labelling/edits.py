"""Per-image hand edits: a sparse, tiled layer of label values over the model's labels.

A pixel holds ``NO_EDIT`` (255, "use the cluster map") or a label value (a class id,
or ``UNASSIGNED`` to force "no class"). Only tiles that hold an edit exist, so a
10000×10000 image with a few strokes costs a few 256×256 tiles in memory and on disk.
Edits store class ids, not export values, so remapping clusters or reordering classes
never disturbs them (see :mod:`acseg_core.labelling.classes`).

The layer is mutable (the brush writes into it); :attr:`EditLayer.version` grows with
every change, which is how the project knows it has unsaved edits. Undo is the
caller's: ``old = layer.read(window)`` before ``layer.write(...)``, then write ``old``
back.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from acseg_core.errors import InputError
from acseg_core.io.atomic import atomic_path
from acseg_core.labelling.classes import NO_EDIT

FORMAT = "acseg-edits"
VERSION = 1
DEFAULT_TILE = 256

Window = tuple[int, int, int, int]  # (col, row, width, height), as in raster.Raster.read


class EditLayer:
    """Sparse edits of one ``height × width`` image, stored as square tiles."""

    def __init__(self, height: int, width: int, tile: int = DEFAULT_TILE) -> None:
        if height < 1 or width < 1 or tile < 1:
            raise ValueError(f"bad edit layer shape {height}x{width}, tile {tile}")
        self.height = int(height)
        self.width = int(width)
        self.tile = int(tile)
        self._tiles: dict[tuple[int, int], np.ndarray] = {}  # (tile row, tile col) -> tile
        self.version = 0

    # -- queries --------------------------------------------------------------------
    @property
    def shape(self) -> tuple[int, int]:
        return (self.height, self.width)

    @property
    def is_empty(self) -> bool:
        return not self._tiles

    def edited_pixels(self) -> int:
        return int(sum(np.count_nonzero(t != NO_EDIT) for t in self._tiles.values()))

    def bbox(self) -> Window | None:
        """(col, row, width, height) around every edited pixel, None when there is none."""
        if not self._tiles:
            return None
        r0 = c0 = 1 << 62
        r1 = c1 = -1
        for (tr, tc), t in self._tiles.items():
            rows = np.flatnonzero((t != NO_EDIT).any(axis=1))
            cols = np.flatnonzero((t != NO_EDIT).any(axis=0))
            r0, r1 = min(r0, tr * self.tile + rows[0]), max(r1, tr * self.tile + rows[-1])
            c0, c1 = min(c0, tc * self.tile + cols[0]), max(c1, tc * self.tile + cols[-1])
        return (int(c0), int(r0), int(c1 - c0 + 1), int(r1 - r0 + 1))

    def read(self, window: Window | None = None) -> np.ndarray:
        """Edit values of a window (h×w uint8); NO_EDIT where nothing is edited or outside."""
        col, row, width, height = window or (0, 0, self.width, self.height)
        out = np.full((height, width), NO_EDIT, dtype=np.uint8)
        for (tr, tc), tile, (r0, r1, c0, c1) in self._overlaps(col, row, width, height):
            if tile is not None:
                out[r0 - row : r1 - row, c0 - col : c1 - col] = tile[
                    r0 - tr * self.tile : r1 - tr * self.tile,
                    c0 - tc * self.tile : c1 - tc * self.tile,
                ]
        return out

    def to_array(self) -> np.ndarray:
        """The whole layer, dense (for small images and tests)."""
        return self.read()

    def tiles(self) -> Iterator[tuple[tuple[int, int], np.ndarray]]:
        """((tile row, tile col), tile) of every stored tile; edge tiles are padded."""
        yield from sorted(self._tiles.items())

    def copy(self) -> EditLayer:
        """An independent snapshot (e.g. for an export running while the user paints)."""
        twin = EditLayer(self.height, self.width, self.tile)
        twin._tiles = {key: tile.copy() for key, tile in self._tiles.items()}
        twin.version = self.version
        return twin

    # -- changes --------------------------------------------------------------------
    def write(self, col: int, row: int, values: np.ndarray, mask: np.ndarray | None = None) -> None:
        """Set the window at (col, row) to ``values`` (where ``mask``, if given).

        Writing ``NO_EDIT`` clears edits (the eraser). Parts outside the image are
        ignored. Tiles left with no edit are dropped, so memory follows the edits.
        """
        values = np.asarray(values, dtype=np.uint8)
        height, width = values.shape
        if mask is not None and mask.shape != values.shape:
            raise ValueError(f"mask {mask.shape} does not match values {values.shape}")
        changed = False
        for key, tile, (r0, r1, c0, c1) in self._overlaps(col, row, width, height):
            src = values[r0 - row : r1 - row, c0 - col : c1 - col]
            sel = None if mask is None else mask[r0 - row : r1 - row, c0 - col : c1 - col]
            if tile is None:
                chosen = src if sel is None else src[sel]
                if not (chosen != NO_EDIT).any():
                    continue
                tile = np.full((self.tile, self.tile), NO_EDIT, dtype=np.uint8)
                self._tiles[key] = tile
            tr, tc = key
            dst = tile[
                r0 - tr * self.tile : r1 - tr * self.tile, c0 - tc * self.tile : c1 - tc * self.tile
            ]
            if sel is None:
                dst[...] = src
            else:
                np.copyto(dst, src, where=sel)
            changed = True
            if not (tile != NO_EDIT).any():
                del self._tiles[key]
        if changed:
            self.version += 1

    def clear(self) -> None:
        if self._tiles:
            self._tiles.clear()
            self.version += 1

    # -- dense conversion, storage ----------------------------------------------------
    def save(self, path: str | Path) -> None:
        """Write atomically as compressed ``.npz`` (only the stored tiles)."""
        keys = sorted(self._tiles)
        tiles = (
            np.stack([self._tiles[k] for k in keys])
            if keys
            else np.zeros((0, self.tile, self.tile), np.uint8)
        )
        with atomic_path(path, suffix=".npz") as tmp, tmp.open("wb") as fh:
            np.savez_compressed(
                fh,
                format=np.array(FORMAT),
                version=np.array(VERSION),
                shape=np.array([self.height, self.width, self.tile], dtype=np.int64),
                keys=np.array(keys, dtype=np.int64).reshape(-1, 2),
                tiles=tiles,
            )

    @classmethod
    def load(cls, path: str | Path) -> EditLayer:
        """Read a layer written by :meth:`save`; InputError names the file and the problem."""
        path = Path(path)
        if not path.is_file():
            raise InputError(path, "edits file not found")
        try:
            with np.load(path, allow_pickle=False) as data:
                if str(data["format"]) != FORMAT:
                    raise InputError(path, "not an acseg edits file")
                if int(data["version"]) > VERSION:
                    raise InputError(path, f"edits format {int(data['version'])} is too new")
                height, width, tile = (int(v) for v in data["shape"])
                keys, tiles = data["keys"], data["tiles"]
        except InputError:
            raise
        except Exception as exc:  # zip, key and value errors from a damaged file
            raise InputError(path, f"damaged edits file ({type(exc).__name__})") from exc
        if tiles.dtype != np.uint8 or tiles.shape[1:] != (tile, tile) or len(keys) != len(tiles):
            raise InputError(path, "damaged edits file (tile table does not match)")
        try:
            layer = cls(height, width, tile)
        except ValueError as exc:
            raise InputError(path, f"damaged edits file ({exc})") from exc
        for (tr, tc), t in zip(keys.tolist(), tiles, strict=True):
            if not (0 <= tr * tile < height and 0 <= tc * tile < width):
                raise InputError(path, f"damaged edits file (tile {tr},{tc} outside the image)")
            layer._tiles[(tr, tc)] = np.array(t)
        return layer

    # -- helpers ----------------------------------------------------------------------
    def _overlaps(
        self, col: int, row: int, width: int, height: int
    ) -> Iterator[tuple[tuple[int, int], np.ndarray | None, tuple[int, int, int, int]]]:
        """(key, tile or None, image-space (r0, r1, c0, c1)) for each tile the window hits."""
        r_start, r_stop = max(row, 0), min(row + height, self.height)
        c_start, c_stop = max(col, 0), min(col + width, self.width)
        if r_start >= r_stop or c_start >= c_stop:
            return
        t = self.tile
        for tr in range(r_start // t, (r_stop - 1) // t + 1):
            for tc in range(c_start // t, (c_stop - 1) // t + 1):
                r0, r1 = max(r_start, tr * t), min(r_stop, (tr + 1) * t)
                c0, c1 = max(c_start, tc * t), min(c_stop, (tc + 1) * t)
                yield (tr, tc), self._tiles.get((tr, tc)), (r0, r1, c0, c1)


__all__ = ["NO_EDIT", "EditLayer"]
