"""A label-free choice between read-outs, per folder: the more balanced cluster map.

Which read-out of an AC model is best changes from folder to folder (docs/accuracy.md),
and a user has no labels to tell. IIC's objective itself prefers clusters of even
size (its entropy term), and a read-out that has collapsed a class into a
neighbour shows it as a lopsided histogram; so the criterion is the entropy of the
cluster shares pooled over the folder, normalised by log K (1 = all clusters equal).
``acseg-core bench --accuracy`` measures it against always taking one read-out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np

from acseg_core.io.raster import NODATA


def balance(maps: Iterable[np.ndarray], k: int) -> float:
    """Entropy of the cluster shares over ``maps`` (nodata left out), / log K."""
    counts = np.zeros(k, dtype=np.int64)
    for clusters in maps:
        values = clusters[clusters != NODATA]
        counts += np.bincount(values.ravel(), minlength=k)[:k]
    total = counts.sum()
    if total == 0 or k < 2:
        return 0.0
    shares = counts[counts > 0] / total
    return float(-(shares * np.log(shares)).sum() / np.log(k))


def most_balanced(candidates: Mapping[str, Iterable[np.ndarray]], k: int) -> str:
    """The name of the candidate read-out whose maps are the most balanced (the first
    one on a tie, so the order of ``candidates`` is the preference)."""
    scores = {name: balance(maps, k) for name, maps in candidates.items()}
    return max(scores, key=lambda name: (scores[name], -list(scores).index(name)))


__all__ = ["balance", "most_balanced"]
