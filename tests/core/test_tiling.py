"""The tile grid: coverage, alignment, margins, and seamless stitching of a local operator."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage

from acseg_core.errors import AcsegError
from acseg_core.io.tiling import TileGrid, margin_for, plan_tiles

SIZES = [(600, 600), (37, 53), (512, 512), (513, 1000), (1201, 97), (100, 433)]


@pytest.mark.parametrize("width,height", SIZES)
@pytest.mark.parametrize("tile,margin,stride", [(128, 24, 4), (64, 16, 2), (512, 48, 4)])
def test_keep_windows_partition_the_image(
    width: int, height: int, tile: int, margin: int, stride: int
) -> None:
    grid = plan_tiles(width, height, tile=tile, margin=margin, stride=stride)
    owner = np.zeros((height, width), np.int32)
    for t in grid:
        x, y, w, h = t.keep
        owner[y : y + h, x : x + w] += 1
        rx, ry, rw, rh = t.read
        # read window: inside the image, origin on the stride grid, no larger than a tile
        assert rx >= 0 and ry >= 0 and rx + rw <= width and ry + rh <= height
        assert rx % stride == 0 and ry % stride == 0
        assert rw <= grid.tile and rh <= grid.tile
        # keep window inside the read window, a full margin from every inner edge
        assert rx <= x and x + w <= rx + rw and ry <= y and y + h <= ry + rh
        if rx > 0:
            assert x - rx >= margin
        if ry > 0:
            assert y - ry >= margin
        if rx + rw < width:
            assert rx + rw - (x + w) >= margin
        if ry + rh < height:
            assert ry + rh - (y + h) >= margin
        rows, cols = t.crop
        assert (rows.stop - rows.start, cols.stop - cols.start) == (h, w)
    assert (owner == 1).all(), "every pixel must be kept by exactly one tile"
    assert len(grid) == sum(1 for _ in grid)


def test_inner_tiles_have_the_full_tile_shape() -> None:
    grid = plan_tiles(1000, 1000, tile=128, margin=24, stride=4)
    shapes = [t.shape for t in grid]
    assert shapes.count((128, 128)) >= (grid.rows - 1) * (grid.cols - 1)
    assert grid.band(0) == (0, 128 - 24)


def test_small_image_is_one_tile() -> None:
    grid = plan_tiles(300, 200, tile=512, margin=24, stride=4)
    assert len(grid) == 1
    (only,) = list(grid)
    assert only.read == only.keep == (0, 0, 300, 200)


def test_tile_snaps_to_stride_and_refuses_too_small() -> None:
    assert plan_tiles(1000, 1000, tile=130, margin=24, stride=4).tile == 128
    with pytest.raises(AcsegError, match="too small"):
        plan_tiles(1000, 1000, tile=48, margin=24, stride=4)


def test_margin_covers_half_the_field_plus_a_stride_on_the_grid() -> None:
    assert margin_for(31, 4) == 20  # ceil(15.5) + 4
    assert margin_for(33, 4) == 24  # ceil(16.5) + 4 = 21 → 24
    assert margin_for(31, 2) == 18
    for rf in range(1, 80):
        m = margin_for(rf, 4)
        assert m % 4 == 0 and 2 * m >= rf and m >= rf / 2 + 4


def _stitch(grid: TileGrid, image: np.ndarray, op) -> np.ndarray:
    out = np.full(image.shape, np.nan)
    for t in grid:
        x, y, w, h = t.read
        result = op(image[y : y + h, x : x + w])
        kx, ky, kw, kh = t.keep
        out[ky : ky + kh, kx : kx + kw] = result[t.crop]
    return out


def test_stitched_local_operator_equals_one_shot_and_needs_the_margin() -> None:
    """A zero-padded box filter of radius r has receptive field 2r+1: tiles with the
    computed margin reproduce it exactly; tiles without overlap do not."""
    radius = 7
    image = np.random.default_rng(0).random((300, 260))

    def op(a: np.ndarray) -> np.ndarray:
        return ndimage.uniform_filter(a, size=2 * radius + 1, mode="constant")

    whole = op(image)
    margin = margin_for(2 * radius + 1, 4)
    tiled = _stitch(plan_tiles(260, 300, tile=64, margin=margin, stride=4), image, op)
    np.testing.assert_allclose(tiled, whole, atol=1e-12)
    seamy = _stitch(plan_tiles(260, 300, tile=64, margin=0, stride=4), image, op)
    assert not np.allclose(seamy, whole, atol=1e-6)
