"""Read-outs: how a trained network's outputs become one id per pixel.

One object per kind (:mod:`.base`), listed in :mod:`.registry`: ``head`` (the
network's own K-way head, plain AC), ``kmeans`` (k-means on [learned features, pixel
values], fitted after training, :mod:`.kmeans`), ``strokes`` (taught by a user's
strokes, :mod:`.strokes`). :class:`~.choice.ReadOut` is the (kind, majority window)
value a model file carries and a front-end chooses. A new read-out is one module
with its kind and an entry in the registry.
"""

from acseg_core.model.readouts.base import GridInputs, LearnableKind, ReadoutKind, ReadoutShape
from acseg_core.model.readouts.choice import (
    MODEL_DEFAULT,
    PLAIN_HEAD,
    ReadOut,
    available_kinds,
    emits_classes,
    fitted_kind,
)
from acseg_core.model.readouts.registry import (
    HEAD,
    KINDS,
    LEARNT,
    READOUTS,
    TRAINABLE,
    learnable_kind,
    readout_kind,
)

__all__ = [
    "HEAD",
    "KINDS",
    "LEARNT",
    "MODEL_DEFAULT",
    "PLAIN_HEAD",
    "READOUTS",
    "TRAINABLE",
    "GridInputs",
    "LearnableKind",
    "ReadOut",
    "ReadoutKind",
    "ReadoutShape",
    "available_kinds",
    "emits_classes",
    "fitted_kind",
    "learnable_kind",
    "readout_kind",
]
