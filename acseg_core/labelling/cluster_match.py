"""Carry cluster names over to a retrained model: match its clusters to the old ones.

Two models trained on one folder number their clusters arbitrarily, so a retrained
model's cluster 3 has nothing to do with the old cluster 3. What they share is the
images: a new cluster *matches* an old one when most of its pixels (``MIN_SHARE``)
fall in that old cluster on the maps both models made of the same images. It then
takes the old cluster's class; a new cluster that matches nothing (it splits or
merges regions the user named apart) stays unassigned for the user to name.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np

from acseg_core.errors import AcsegError
from acseg_core.labelling.classes import UNASSIGNED, ClassMap

MIN_SHARE = 0.6  # of a new cluster's pixels, in one old cluster


def overlap(old: np.ndarray, new: np.ndarray, old_k: int, new_k: int) -> np.ndarray:
    """new_k × old_k pixel counts of two maps of one image (ids past K, nodata, ignored)."""
    if old.shape != new.shape:
        raise AcsegError(f"maps of different sizes ({old.shape} and {new.shape}) cannot be matched")
    o, n = old.ravel().astype(np.int64), new.ravel().astype(np.int64)
    keep = (o < old_k) & (n < new_k)
    flat = np.bincount(n[keep] * old_k + o[keep], minlength=new_k * old_k)
    return flat.reshape(new_k, old_k)


def matched_clusters(table: np.ndarray, min_share: float = MIN_SHARE) -> dict[int, int]:
    """new cluster → the old cluster holding at least ``min_share`` of its pixels."""
    totals = table.sum(axis=1)
    best = table.argmax(axis=1)
    return {
        int(j): int(best[j])
        for j in range(table.shape[0])
        if totals[j] and table[j, best[j]] >= min_share * totals[j]
    }


def carry_names(
    class_map: ClassMap,
    pairs: Iterable[tuple[np.ndarray, np.ndarray]],
    new_k: int,
    min_share: float = MIN_SHARE,
) -> tuple[ClassMap, dict[int, int]]:
    """``class_map`` (the old model's) for a model with ``new_k`` clusters: each new
    cluster matching a named old one (on the (old, new) maps of ``pairs``) takes its
    class, the others are unassigned. Returns the map and new → old of the matches."""
    old_k = class_map.clusters
    table = np.zeros((new_k, old_k), np.int64)
    for old, new in pairs:
        table += overlap(old, new, old_k, new_k)
    matches = matched_clusters(table, min_share)
    assignment = [UNASSIGNED] * new_k
    for new, old in matches.items():
        assignment[new] = class_map.assignment[old]
    carried = ClassMap(new_k, class_map.classes, tuple(assignment), class_map.next_id)
    return carried, {j: i for j, i in matches.items() if class_map.assignment[i] != UNASSIGNED}


__all__ = ["MIN_SHARE", "carry_names", "matched_clusters", "overlap"]
