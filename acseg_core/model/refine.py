"""Spatial refinement of cluster maps: a majority (mode) filter.

Per-pixel cluster decisions are noisy where two clusters are close; land-cover
classes come in areas, not single pixels. Voting over a ``size``×``size`` window
(each cluster's share of the window, highest share wins) removes speckle and
fills small holes. Applied to AC's probabilities before the argmax it is the
same box filter (``acseg_core.inference.predict.predict(..., smooth=size)``); applied to
any hard map (k-means, a model's ids) it is :func:`majority_filter`. The
accuracy benchmark applies it to both, so the gain of the refinement is never
mistaken for a gain of the model (``docs/accuracy.md``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
from scipy import ndimage

from acseg_core.errors import AcsegError

NODATA = 255


def check_window(size: int) -> int:
    """A valid smoothing window: 0/1 (off) or an odd size ≥ 3."""
    if size < 0 or (size > 1 and size % 2 == 0):
        raise AcsegError(f"smoothing window must be 0 (off) or an odd number of pixels, got {size}")
    return size


def majority_filter(clusters: np.ndarray, n_clusters: int, size: int) -> np.ndarray:
    """Each pixel takes the most frequent cluster in its ``size``×``size`` window.

    ``clusters`` is uint8 H×W with :data:`NODATA` (255) for no-data pixels; those
    neither vote nor change. Ties go to the lower cluster id. Windows are clipped
    at the image edge (``mode="nearest"`` repeats the border, as the model's
    tiles are padded).
    """
    check_window(size)
    if size <= 1:
        return clusters.copy()
    valid = clusters != NODATA
    best = np.zeros(clusters.shape, dtype=np.uint8)
    best_votes = np.full(clusters.shape, -1.0, dtype=np.float32)
    for cluster in range(n_clusters):
        member = clusters == cluster
        if not member.any():
            continue
        votes = ndimage.uniform_filter(member.astype(np.float32), size, mode="nearest")
        better = votes > best_votes
        best[better] = cluster
        best_votes[better] = votes[better]
    return np.where(valid, best, clusters).astype(np.uint8)


def vote_shares(probs: Any, size: int) -> Any:
    """Torch form of :func:`majority_filter` on a batch of probability maps.

    ``probs`` B×K×H×W → B×K×H×W: each cluster's share of the ``size``×``size``
    window of per-pixel argmax votes (border pixels repeated, as ``majority_filter``),
    so the argmax of the result is the window's majority cluster. Used by
    ``acseg_core.inference.predict.predict(..., smooth=size)`` inside each tile, whose margin
    grows by ``size // 2`` so tiled output still equals one-shot output.
    """
    import torch.nn.functional as F

    check_window(size)
    if size <= 1:
        return probs
    k = probs.shape[1]
    votes = F.one_hot(probs.argmax(dim=1), k).permute(0, 3, 1, 2).to(probs.dtype)
    half = size // 2
    votes = F.pad(votes, (half, half, half, half), mode="replicate")
    return F.avg_pool2d(votes, size, stride=1)
