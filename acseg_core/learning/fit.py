"""Learn from strokes: fit a learnable read-out on gathered samples, save the model.

:func:`fit_strokes` turns the samples of any number of images into a new
:class:`~acseg_core.model.checkpoint.LoadedModel` whose read-out is the learnt kind
(:data:`~acseg_core.model.readouts.registry.LEARNT`): the same trunk (copied, never
changed), a fitted classifier, the class names and colours in its config. The model
it starts from is left as it is, so a front-end keeps the unsupervised model and
refits from it after every stroke; undoing a stroke and refitting gives the earlier
read-out exactly (the fit is a pure function of the samples and the seed).

Classes without strokes: with ``cluster_classes`` (the base read-out's id → class
index, −1 = none: a cluster→class map) the pseudo-samples whose id maps to a class
that has no stroke teach that class; clusters of stroked classes teach nothing, so
strokes always have the last word. A class with neither is never predicted.

:func:`acseg_core.learning.job.learn` is the long job front-ends run.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from torch import nn

from acseg_core.device import intra_op_threads
from acseg_core.errors import AcsegError
from acseg_core.features.for_model import with_bank
from acseg_core.learning.samples import Samples
from acseg_core.model.checkpoint import LoadedModel, save_checkpoint
from acseg_core.model.readouts.choice import ReadOut
from acseg_core.model.readouts.registry import learnable_kind
from acseg_core.model.readouts.strokes import MAX_SAMPLES, balanced_subsample, validate_classes

PSEUDO_PER_IMAGE = 3000  # unstroked samples per image (labelled through a cluster→class map)
MAX_UNLABELLED = 10_000  # unstroked samples a fit's statistics use, drawn over the images
Colour = tuple[int, int, int]


def training_labels(
    samples: Samples,
    classes: int,
    cluster_classes: Sequence[int] | None,
    stroked_classes_too: bool = False,
) -> np.ndarray:
    """Class index per sample: strokes as given; pseudo-samples through the map
    where their class has no stroke (any class with ``stroked_classes_too``: a map
    read from the strokes themselves); −1 = not used."""
    labels = samples.labels.astype(np.int64)
    if cluster_classes is None:
        return np.where(labels >= 0, labels, -1)
    lut = np.full(256, -1, np.int64)
    mapped = np.asarray(list(cluster_classes), np.int64)[:255]
    lut[: len(mapped)] = np.where((mapped >= 0) & (mapped < classes), mapped, -1)
    stroked = np.unique(labels[labels >= 0])
    pseudo = lut[samples.clusters]
    use = (labels < 0) & (pseudo >= 0) & (stroked_classes_too | ~np.isin(pseudo, stroked))
    return np.where(labels >= 0, labels, np.where(use, pseudo, -1))


INFER_PURITY = 0.9  # a cluster names a class when this share of its stroked pixels is one class


def inferred_cluster_classes(
    samples: Samples, classes: int, purity: float = INFER_PURITY
) -> list[int]:
    """A cluster→class map read from the strokes themselves (−1 = none): a base cluster
    whose stroked pixels are at least ``purity`` one class maps to that class.

    With it, unstroked pseudo-samples of such a cluster teach its class even where the
    class has strokes (the cluster is the user's own evidence, not a guess)."""
    stroked = samples.labels >= 0
    ids = samples.clusters[stroked].astype(np.int64)
    labels = samples.labels[stroked].astype(np.int64)
    if not len(ids):
        return []
    table = np.zeros((int(ids.max()) + 1, classes), np.int64)
    np.add.at(table, (ids, labels), 1)
    totals = table.sum(axis=1)
    best = table.argmax(axis=1)
    share = table.max(axis=1) / np.maximum(totals, 1)
    return [int(b) if t and p >= purity else -1 for b, t, p in zip(best, totals, share,
                                                                   strict=True)]  # fmt: skip


@dataclass(frozen=True)
class TrainingSet:
    """The samples a fit learns from, labelled and balanced: ``blocks[name]`` n×C,
    ``labels`` class indices, ``groups`` strokes (−1: a pseudo-sample); ``unlabelled``:
    blocks of unstroked pixels, for the read-out's statistics (None: none)."""

    blocks: dict[str, np.ndarray]
    labels: np.ndarray
    groups: np.ndarray
    unlabelled: dict[str, np.ndarray] | None = None

    def subset(self, keep: np.ndarray) -> TrainingSet:
        return TrainingSet({k: v[keep] for k, v in self.blocks.items()}, self.labels[keep],
                           self.groups[keep], self.unlabelled)  # fmt: skip


def training_set(
    data: Samples,
    count: int,
    cluster_classes: Sequence[int] | None,
    seed: int,
    infer_map: bool = False,
) -> TrainingSet:
    """What a fit on ``data`` learns from: strokes, pseudo-samples labelled through the
    cluster→class map, at most ``MAX_SAMPLES`` in all, balanced over the classes."""
    if (data.labels >= count).any():
        raise AcsegError(f"a stroke names class index {int(data.labels.max())} of {count}")
    if infer_map:
        cluster_classes = inferred_cluster_classes(data, count)
    labels = training_labels(data, count, cluster_classes, stroked_classes_too=infer_map)
    keep = np.flatnonzero(labels >= 0)
    keep = keep[balanced_subsample(labels[keep], MAX_SAMPLES, seed)]
    free = np.flatnonzero(data.labels < 0)
    if len(free) > MAX_UNLABELLED:
        free = np.sort(np.random.default_rng(seed).choice(free, MAX_UNLABELLED, replace=False))
    unlabelled = {name: v[free] for name, v in data.blocks.items()} if len(free) else None
    return TrainingSet({name: v[keep] for name, v in data.blocks.items()}, labels[keep],
                       data.stroke_groups()[keep], unlabelled)  # fmt: skip


def fit_module(loaded: LoadedModel, training: TrainingSet, count: int, seed: int) -> nn.Module:
    """The learnt read-out's module fitted on ``training`` (single-threaded: small
    matrices, and a shared CPU punishes thread barriers)."""
    kind = learnable_kind()
    if kind.reads_bank:
        loaded = with_bank(loaded)
    shape = replace(loaded.model.readout_shape, classes=count)
    with intra_op_threads(1):
        return kind.fit(shape, training.blocks, training.labels, seed, training.unlabelled)


def fit_strokes(
    loaded: LoadedModel,
    samples: Sequence[Samples],
    class_names: Sequence[str],
    colours: Sequence[Colour],
    *,
    cluster_classes: Sequence[int] | None = None,
    seed: int = 0,
    class_ids: Sequence[int] | None = None,
    infer_map: bool = False,
) -> LoadedModel:
    """A new model: ``loaded``'s trunk with a strokes read-out fitted on ``samples``.

    ``class_names``/``colours``: the C classes (stroke values index them).
    ``class_ids`` (optional) are stored so an app can map ids back to its classes.
    ``infer_map``: label pseudo-samples through :func:`inferred_cluster_classes`
    instead of ``cluster_classes`` (bench-measured option, docs/strokes.md).
    """
    validate_classes(class_names, colours)
    count = len(class_names)
    if not any((s.labels >= 0).any() for s in samples if len(s)):
        raise AcsegError("no stroked pixels to learn from")
    if learnable_kind().reads_bank:
        loaded = with_bank(loaded)
    data = Samples.concat(samples)
    training = training_set(data, count, cluster_classes, seed, infer_map)
    readout = fit_module(loaded, training, count, seed)
    kind = learnable_kind()
    config = replace(
        loaded.config, readout=ReadOut(kind.name, loaded.config.readout.smooth),
        classes=tuple(class_names),
        class_colours=tuple(tuple(int(v) for v in c) for c in colours),
    )  # fmt: skip
    model = copy.deepcopy(loaded.model)
    model.config = config
    model.readout = readout.to(loaded.device)
    model.eval()
    stroked = np.bincount(data.labels[data.labels >= 0].astype(np.int64), minlength=count)
    taught = np.bincount(training.labels, minlength=count)
    meta = {
        **loaded.meta,
        "strokes": {
            "stroked_pixels": [int(v) for v in stroked[:count]],
            "samples": [int(v) for v in taught[:count]],
            "seed": int(seed),
            "base_digest": loaded.digest,
            "class_ids": [int(v) for v in class_ids] if class_ids is not None else None,
        },
    }
    digest = hashlib.sha256(loaded.digest.encode())
    for tensor in readout.state_dict().values():
        digest.update(tensor.cpu().numpy().tobytes())
    return LoadedModel(model, config, loaded.device, meta, digest.hexdigest())


def save_learned(path: str | Path, fitted: LoadedModel) -> None:
    """Write a learnt model file (atomic; weights and plain data only)."""
    save_checkpoint(path, fitted.model, fitted.config, meta=fitted.meta)


def stroked_pixels(fitted: LoadedModel) -> dict[str, int]:
    """Stroked pixels per class name the read-out learnt from (for a status line)."""
    counts = (fitted.meta.get("strokes") or {}).get("stroked_pixels") or []
    return dict(zip(fitted.config.classes, (int(v) for v in counts), strict=False))


__all__ = [
    "PSEUDO_PER_IMAGE",
    "TrainingSet",
    "fit_module",
    "fit_strokes",
    "inferred_cluster_classes",
    "save_learned",
    "stroked_pixels",
    "training_labels",
    "training_set",
]
