"""Spatial refinement of id maps: a majority (mode) filter.

Per-pixel decisions are noisy where two clusters are close; land cover comes in
areas, not single pixels. Voting over a ``size``×``size`` window (each id's share of
the window, the highest share wins, ties to the lower id) removes speckle and fills
small holes. Inside prediction and learning it runs on probabilities (:func:`decide`,
on each tile's kept centre; a margin of ``size // 2`` keeps tiles seamless); on any
hard map (the k-means control of the accuracy benchmark) it is :func:`majority_filter`.
Both count votes with the same cumulative-sum box filter (a handful of adds per pixel
and id, whatever the window), so the control gets exactly the refinement the model
gets.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

from acseg_core.errors import AcsegError
from acseg_core.io.raster import NODATA

MAX_WINDOW = 1001  # px: larger windows (a crafted file) would only allocate, not filter


def check_window(size: int) -> int:
    """A valid smoothing window: 0/1 (off) or an odd size from 3 to ``MAX_WINDOW``."""
    if size < 0 or (size > 1 and size % 2 == 0):
        raise AcsegError(f"smoothing window must be 0 (off) or an odd number of pixels, got {size}")
    if size > MAX_WINDOW:
        raise AcsegError(f"smoothing window must be at most {MAX_WINDOW} px, got {size}")
    return size


def box_sum(y: torch.Tensor, radius: int, replicate: bool = False) -> torch.Tensor:
    """``Σ_{|dy|,|dx|≤radius} y(p+δ)`` over the last two dims, by cumulative sums.

    Outside the image counts as zero, or (``replicate``) as the nearest border pixel.
    """
    if radius == 0:
        return y
    side = 2 * radius + 1
    pad = (radius, radius, radius, radius)
    y = F.pad(y, pad, mode="replicate") if replicate else F.pad(y, pad)
    rows = F.pad(y, (0, 0, 1, 0)).cumsum(dim=-2)  # a leading zero row for the differences
    rows = rows[..., side:, :] - rows[..., :-side, :]
    cols = F.pad(rows, (1, 0)).cumsum(dim=-1)
    return cols[..., side:] - cols[..., :-side]


def vote_counts(ids: torch.Tensor, classes: int, size: int) -> torch.Tensor:
    """B×H×W ids (``classes`` or more = abstain) → B×K×H×W votes in each window (float32,
    exact integers; border pixels repeated)."""
    batch, height, width = ids.shape
    votes = torch.zeros(batch, classes + 1, height, width, device=ids.device)
    votes.scatter_(1, ids.long().clamp(max=classes)[:, None], 1.0)  # one-hot, NCHW at once
    return box_sum(votes[:, :classes], size // 2, replicate=True)


def decide(
    probs: torch.Tensor, size: int, rows: slice | None = None, cols: slice | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """(confidence, id) per pixel of ``probs`` (K×H×W) inside ``rows``×``cols`` (all by
    default): the highest probability and its id, or with a ``size`` px majority window
    the winning id's share of the window's votes and that id (ties to the lower id).

    The one refinement prediction and learning apply. Votes are counted only over the
    region plus half a window: pixels further out cannot reach it.
    """
    rows = rows if rows is not None else slice(0, probs.shape[-2])
    cols = cols if cols is not None else slice(0, probs.shape[-1])
    if size <= 1:
        return probs[:, rows, cols].max(dim=0)
    half = size // 2
    height, width = probs.shape[-2:]
    top, left = max(0, rows.start - half), max(0, cols.start - half)
    bottom, right = min(height, rows.stop + half), min(width, cols.stop + half)
    # max().indices, not argmax(): the same ids, several times faster over channels here
    votes = probs[None, :, top:bottom, left:right].max(dim=1).indices
    counts = vote_counts(votes, probs.shape[0], size)[0]
    inner = counts[:, rows.start - top : rows.stop - top, cols.start - left : cols.stop - left]
    best, index = inner.max(dim=0)
    return best / float(size * size), index


def majority_filter(ids: np.ndarray, n_ids: int, size: int) -> np.ndarray:
    """Each pixel of a uint8 H×W map takes the most frequent id of its window.

    :data:`NODATA` pixels neither vote nor change.
    """
    check_window(size)
    if size <= 1:
        return ids.copy()
    with torch.inference_mode():
        counts = vote_counts(torch.from_numpy(ids)[None], n_ids, size)
        best = counts.argmax(dim=1)[0].to(torch.uint8).numpy()
    return np.where(ids != NODATA, best, ids).astype(np.uint8)


__all__ = ["box_sum", "check_window", "decide", "majority_filter", "vote_counts"]
