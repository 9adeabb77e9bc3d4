"""Unsupervised-segmentation scores: confusion, cluster→class maps, accuracy, IoU.

Clusters carry no names, so scoring first maps clusters to classes. The IIC/AC
protocol uses one Hungarian (one-to-one) map for a whole dataset; with more
clusters than classes the many-to-one majority map is reported too. The confusion
matrix is additive, so a dataset is scored one image (or window) at a time.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.optimize import linear_sum_assignment

UNASSIGNED = -1  # a cluster mapped to no class (more clusters than classes)
LABEL_IGNORE = -1  # label value for unlabelled pixels (see acseg_core.io.labels)


def confusion_matrix(
    clusters: np.ndarray, labels: np.ndarray, n_clusters: int, n_classes: int
) -> np.ndarray:
    """K×C pixel counts (int64) of cluster k against class c.

    Pixels whose label is outside ``[0, n_classes)`` (unlabelled) or whose cluster
    is outside ``[0, n_clusters)`` (nodata) are left out.
    """
    if clusters.shape != labels.shape:
        raise ValueError(f"cluster map {clusters.shape} and labels {labels.shape} differ in size")
    k = clusters.ravel().astype(np.int64)
    c = labels.ravel().astype(np.int64)
    keep = (k >= 0) & (k < n_clusters) & (c >= 0) & (c < n_classes)
    flat = np.bincount(k[keep] * n_classes + c[keep], minlength=n_clusters * n_classes)
    return flat.reshape(n_clusters, n_classes)


def hungarian_mapping(confusion: np.ndarray) -> np.ndarray:
    """One-to-one cluster→class map maximising matched pixels (length K, -1 = unassigned).

    With K > C some clusters stay unassigned (their pixels count as wrong); with
    K < C some classes get no cluster.
    """
    rows, cols = linear_sum_assignment(confusion, maximize=True)
    mapping = np.full(confusion.shape[0], UNASSIGNED, dtype=np.int64)
    mapping[rows] = cols
    return mapping


def majority_mapping(confusion: np.ndarray) -> np.ndarray:
    """Many-to-one map: each cluster → its most frequent class (-1 for empty clusters)."""
    mapping = np.argmax(confusion, axis=1).astype(np.int64)
    mapping[confusion.sum(axis=1) == 0] = UNASSIGNED
    return mapping


def class_confusion(confusion: np.ndarray, mapping: np.ndarray) -> np.ndarray:
    """C×C counts (predicted class × true class) once clusters are mapped.

    Unassigned clusters contribute to no predicted row (their pixels are errors).
    """
    n_classes = confusion.shape[1]
    out = np.zeros((n_classes, n_classes), dtype=np.int64)
    for cluster, cls in enumerate(mapping):
        if 0 <= cls < n_classes:
            out[cls] += confusion[cluster]
    return out


@dataclass(frozen=True)
class Scores:
    """Figures for one cluster→class mapping. IoU is NaN for classes absent from the labels."""

    pixel_accuracy: float
    miou: float
    per_class_iou: tuple[float, ...]
    pixels: int  # labelled pixels scored

    def to_dict(self, class_names: list[str] | None = None) -> dict[str, object]:
        names = class_names or [str(i) for i in range(len(self.per_class_iou))]
        return {
            "pixel_accuracy": _finite(self.pixel_accuracy),
            "miou": _finite(self.miou),
            "per_class_iou": {
                n: _finite(v) for n, v in zip(names, self.per_class_iou, strict=True)
            },
            "pixels": self.pixels,
        }


def scores(confusion: np.ndarray, mapping: np.ndarray) -> Scores:
    """Pixel accuracy, per-class IoU and mIoU of ``confusion`` under ``mapping``.

    IoU and mIoU cover the classes present in the labels: a class with no labelled
    pixel has no meaningful IoU (NaN), even if a cluster had to be mapped to it.
    """
    per_class = class_confusion(confusion, mapping)
    total = int(confusion.sum())
    hits = np.diag(per_class).astype(np.float64)
    predicted = per_class.sum(axis=1).astype(np.float64)
    truth = confusion.sum(axis=0).astype(np.float64)
    union = predicted + truth - hits
    with np.errstate(divide="ignore", invalid="ignore"):
        iou = np.where(truth > 0, hits / union, np.nan)
    accuracy = float(hits.sum() / total) if total else float("nan")
    miou = float(np.nanmean(iou)) if np.any(truth > 0) else float("nan")
    return Scores(accuracy, miou, tuple(float(v) for v in iou), total)


def _finite(value: float) -> float | None:
    """JSON has no NaN: absent figures become null."""
    return None if np.isnan(value) else round(float(value), 6)


class ConfusionAccumulator:
    """Sums K×C confusion over many images without holding them.

    ``n_classes`` None lets the class axis grow with the largest label seen
    (open-ended index labels).
    """

    def __init__(self, n_clusters: int, n_classes: int | None = None) -> None:
        self.n_clusters = n_clusters
        self.fixed_classes = n_classes is not None
        self.matrix = np.zeros((n_clusters, n_classes or 0), dtype=np.int64)

    def add(self, clusters: np.ndarray, labels: np.ndarray) -> np.ndarray:
        """Add one image/window; returns its own confusion (current class count)."""
        if not self.fixed_classes and labels.size:
            needed = int(labels.max()) + 1
            if needed > self.matrix.shape[1]:
                self.matrix = np.pad(self.matrix, ((0, 0), (0, needed - self.matrix.shape[1])))
        part = confusion_matrix(clusters, labels, self.n_clusters, self.matrix.shape[1])
        self.matrix += part
        return part


def pad_classes(confusion: np.ndarray, n_classes: int) -> np.ndarray:
    """Widen a K×C confusion to ``n_classes`` columns (open-ended labels grew later)."""
    return np.pad(confusion, ((0, 0), (0, n_classes - confusion.shape[1])))
