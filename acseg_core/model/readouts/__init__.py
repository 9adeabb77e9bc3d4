"""Read-outs: how a trained network's outputs become one id per pixel.

``head`` is the network's own K-way cluster head (plain AC). The others are fitted
after training and stored in the model file beside the weights (``ModelConfig.readout``
names the one a model carries): ``kmeans`` clusters [learned features, pixel values]
(:mod:`.kmeans`). Front-ends list :data:`KINDS` with :data:`LABELS`, so a new read-out
only needs an entry here and a module.
"""

from __future__ import annotations

from typing import Any

HEAD = "head"
KINDS = (HEAD, "kmeans", "strokes")
LABELS = {
    HEAD: "AC head (plain AC)",
    "kmeans": "features + colour k-means",
    "strokes": "learnt from strokes",
}


def build_readout(
    kind: str,
    feature_channels: int,
    in_channels: int,
    clusters: int,
    classes: int = 0,
    stride: int = 4,
) -> Any:
    """The (unfitted) module of a fitted read-out kind; None for the head."""
    if kind == HEAD:
        return None
    if kind == "kmeans":
        from acseg_core.model.readouts.kmeans import KMeansReadout

        return KMeansReadout(feature_channels, in_channels, clusters, stride)
    if kind == "strokes":
        from acseg_core.model.readouts.strokes import StrokesReadout

        return StrokesReadout(feature_channels, in_channels, clusters, classes, stride)
    raise ValueError(f"unknown read-out {kind!r}")


__all__ = ["HEAD", "KINDS", "LABELS", "build_readout"]
