"""k-means on points: the maths behind the k-means read-out and the k-means baseline.

scipy's ``kmeans2`` with a k-means++ start; nearest-centre assignment by squared
Euclidean distance written as one matrix product (fast on large windows).
"""

from __future__ import annotations

import warnings

import numpy as np
from scipy.cluster.vq import kmeans2

from acseg_core.errors import AcsegError

ITERATIONS = 10  # scipy's default; the shared README yardstick used it


def nearest_centre(points: np.ndarray, centres: np.ndarray) -> np.ndarray:
    """Index of the nearest centre for each row of ``points`` (squared Euclidean)."""
    distances = (
        (points * points).sum(axis=1, keepdims=True)
        - 2.0 * points @ centres.T
        + (centres * centres).sum(axis=1)[None, :]
    )
    return np.argmin(distances, axis=1)


def fit_kmeans(
    points: np.ndarray, k: int, seed: int = 0, iterations: int = ITERATIONS
) -> np.ndarray:
    """k-means (scipy's ``kmeans2``, k-means++ start) on (n, d) points → (k, d) centres."""
    if len(points) < k:
        raise AcsegError(f"k-means needs at least {k} pixels, got {len(points)}")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # an empty cluster only means fewer distinct colours
        centres, _ = kmeans2(points, k, iter=iterations, minit="++", seed=seed)
    return centres


__all__ = ["ITERATIONS", "fit_kmeans", "nearest_centre"]
