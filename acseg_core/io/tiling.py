"""Overlapping tiles for bounded-memory prediction, and the rule for stitching them.

A fully convolutional network's output at a pixel depends only on the input within
its receptive field. So an image can be cut into tiles that overlap by a *margin*
of at least half that field (plus one coarse cell for the bilinear decoder), each
tile predicted on its own, and only the tile's centre — its *keep* window, at least
``margin`` pixels from every tile edge that is not an image edge — copied to the
output. The keep windows partition the image, so each output pixel comes from the
one tile where it is most central and the result has no seams: it equals a one-shot
prediction of the whole image.

Two details make "equals" exact rather than approximate:

* every tile's read origin is a multiple of the network's stride, so the tile's
  coarse grid (stem output) lines up with the whole image's;
* tiles are clipped at the image edges instead of padded, so pixels near the image
  border see the same zero padding inside the network as in a one-shot pass.

Tiles in the first/last column or row can therefore be smaller than ``tile``; the
predictor batches consecutive tiles of equal shape.
"""

from __future__ import annotations

import math
from collections.abc import Iterator
from dataclasses import dataclass

from acseg_core.errors import AcsegError

Window = tuple[int, int, int, int]  # (col, row, width, height), like Raster.read
DEFAULT_TILE = 512  # px: tiles of prediction and learning (a few MB of activations each)


def margin_for(receptive_field: int, stride: int) -> int:
    """Overlap margin (per side) that makes tiled output equal one-shot output.

    Half the receptive field covers the convolutions; one more stride covers the
    bilinear decoder, which blends the two nearest coarse cells. Rounded up to the
    stride so tile origins stay on the coarse grid. The overlap between neighbouring
    tiles, ``2 * margin``, is therefore at least the receptive field.
    """
    if receptive_field < 1 or stride < 1:
        raise ValueError("receptive_field and stride must be positive")
    need = math.ceil(receptive_field / 2) + stride
    return math.ceil(need / stride) * stride


@dataclass(frozen=True)
class Tile:
    """One tile: the window to read and the part of its output to keep."""

    index: int
    grid_row: int
    grid_col: int
    read: Window  # inside the image; origin a multiple of the stride
    keep: Window  # inside ``read``; the keep windows of a grid partition the image

    @property
    def shape(self) -> tuple[int, int]:
        """(height, width) of the network input for this tile."""
        return self.read[3], self.read[2]

    @property
    def crop(self) -> tuple[slice, slice]:
        """(rows, cols) slices of the tile's output that land in ``keep``."""
        r0 = self.keep[1] - self.read[1]
        c0 = self.keep[0] - self.read[0]
        return slice(r0, r0 + self.keep[3]), slice(c0, c0 + self.keep[2])


@dataclass(frozen=True)
class TileGrid:
    """Tiles covering a ``width`` × ``height`` image, row-major."""

    width: int
    height: int
    tile: int
    margin: int
    stride: int
    col_bounds: tuple[int, ...]  # keep boundaries along x: 0 = b0 < b1 < ... = width
    row_bounds: tuple[int, ...]

    @property
    def cols(self) -> int:
        return len(self.col_bounds) - 1

    @property
    def rows(self) -> int:
        return len(self.row_bounds) - 1

    def __len__(self) -> int:
        return self.rows * self.cols

    def band(self, grid_row: int) -> tuple[int, int]:
        """(first image row, height) of the output band owned by a grid row."""
        top, bottom = self.row_bounds[grid_row], self.row_bounds[grid_row + 1]
        return top, bottom - top

    def tile_at(self, grid_row: int, grid_col: int) -> Tile:
        x0, x1 = self.col_bounds[grid_col], self.col_bounds[grid_col + 1]
        y0, y1 = self.row_bounds[grid_row], self.row_bounds[grid_row + 1]
        rx0, rx1 = max(0, x0 - self.margin), min(self.width, x1 + self.margin)
        ry0, ry1 = max(0, y0 - self.margin), min(self.height, y1 + self.margin)
        return Tile(
            index=grid_row * self.cols + grid_col,
            grid_row=grid_row,
            grid_col=grid_col,
            read=(rx0, ry0, rx1 - rx0, ry1 - ry0),
            keep=(x0, y0, x1 - x0, y1 - y0),
        )

    def __iter__(self) -> Iterator[Tile]:
        for r in range(self.rows):
            for c in range(self.cols):
                yield self.tile_at(r, c)


def _bounds(length: int, tile: int, margin: int) -> tuple[int, ...]:
    """Keep boundaries along one axis.

    The first tile reads ``[0, tile)`` and keeps all but its far margin; inner
    tiles keep ``tile - 2*margin``; the last keeps whatever is left.
    """
    if length <= tile:
        return (0, length)
    core = tile - 2 * margin
    bounds = [0, tile - margin]
    while bounds[-1] + core + margin < length:  # a further inner tile still leaves a rest
        bounds.append(bounds[-1] + core)
    bounds.append(length)
    return tuple(bounds)


def plan_tiles(width: int, height: int, *, tile: int, margin: int, stride: int) -> TileGrid:
    """The tile grid for an image.

    ``tile`` is rounded down to a multiple of ``stride``; it must leave a keep
    window of at least one stride between the two margins.
    """
    if width < 1 or height < 1:
        raise ValueError("image size must be positive")
    if margin % stride:
        raise ValueError("margin must be a multiple of the stride")
    snapped = tile // stride * stride
    smallest = 2 * margin + stride
    if snapped < smallest:
        raise AcsegError(
            f"tile size {tile} px is too small for this model: it needs at least "
            f"{smallest} px (2 × {margin} px overlap margin + {stride} px)"
        )
    return TileGrid(
        width=width,
        height=height,
        tile=snapped,
        margin=margin,
        stride=stride,
        col_bounds=_bounds(width, snapped, margin),
        row_bounds=_bounds(height, snapped, margin),
    )


__all__ = ["DEFAULT_TILE", "Tile", "TileGrid", "Window", "margin_for", "plan_tiles"]
