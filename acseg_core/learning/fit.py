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

:func:`learn` is the long job front-ends run: gather per image (progress, cancel),
fit, return the model.
"""

from __future__ import annotations

import copy
import hashlib
from collections.abc import Generator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path

import numpy as np

from acseg_core.device import intra_op_threads
from acseg_core.errors import AcsegError
from acseg_core.jobs import CancelToken, Progress
from acseg_core.learning.samples import Samples, gather
from acseg_core.learning.strokes import StrokeSet
from acseg_core.model.checkpoint import LoadedModel, save_checkpoint
from acseg_core.model.readouts.choice import ReadOut
from acseg_core.model.readouts.registry import learnable_kind
from acseg_core.model.readouts.strokes import MAX_SAMPLES, balanced_subsample, validate_classes

PSEUDO_PER_IMAGE = 3000  # pseudo-samples per image when a cluster→class map is given
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
    if not any(len(s) for s in samples):
        raise AcsegError("no stroked pixels to learn from")
    data = Samples.concat(samples)
    if infer_map:
        cluster_classes = inferred_cluster_classes(data, count)
    labels = training_labels(data, count, cluster_classes, stroked_classes_too=infer_map)
    if (data.labels >= count).any():
        raise AcsegError(f"a stroke names class index {int(data.labels.max())} of {count}")
    keep = np.flatnonzero(labels >= 0)
    keep = keep[balanced_subsample(labels[keep], MAX_SAMPLES, seed)]
    blocks = {name: v[keep] for name, v in data.blocks.items()}
    kind = learnable_kind()
    shape = replace(loaded.model.readout_shape, classes=count)
    # single-threaded: small matrices, and a shared CPU punishes thread barriers
    with intra_op_threads(1):
        readout = kind.fit(shape, blocks, labels[keep], seed)
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
    taught = np.bincount(labels[keep], minlength=count)
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


def learn(
    loaded: LoadedModel,
    strokes: Mapping[Path, StrokeSet],
    class_names: Sequence[str],
    colours: Sequence[Colour],
    *,
    cluster_classes: Sequence[int] | None = None,
    seed: int = 0,
    class_ids: Sequence[int] | None = None,
    cancel: CancelToken | None = None,
    cache: dict[tuple[str, str], Samples] | None = None,
) -> Generator[Progress, None, LoadedModel]:
    """Gather every image's samples (``cache``, keyed by (image, strokes digest), skips
    images whose strokes have not changed), then fit; returns the new model."""
    pseudo = PSEUDO_PER_IMAGE if cluster_classes is not None else 0
    parts: list[Samples] = []
    for index, (image, stroke_set) in enumerate(strokes.items()):
        if not len(stroke_set) and not pseudo:
            continue
        key = (str(image), f"{stroke_set.digest}-p{pseudo}-s{seed}-{loaded.digest}")
        if cache is not None and key in cache:
            parts.append(cache[key])
            continue
        job = gather(loaded, image, stroke_set, pseudo=pseudo, seed=seed, cancel=cancel)
        while True:
            try:
                step = next(job)
            except StopIteration as stop:
                found = stop.value
                break
            yield Progress(index, len(strokes), step.message)
        parts.append(found)
        if cache is not None:
            cache[key] = found
    if not any(len(p) for p in parts):
        raise AcsegError("no stroked pixels to learn from")
    yield Progress(len(strokes), len(strokes), "fitting the strokes read-out")
    return fit_strokes(loaded, parts, class_names, colours, cluster_classes=cluster_classes,
                       seed=seed, class_ids=class_ids)  # fmt: skip


def save_learned(path: str | Path, fitted: LoadedModel) -> None:
    """Write a learnt model file (atomic; weights and plain data only)."""
    save_checkpoint(path, fitted.model, fitted.config, meta=fitted.meta)


def stroked_pixels(fitted: LoadedModel) -> dict[str, int]:
    """Stroked pixels per class name the read-out learnt from (for a status line)."""
    counts = (fitted.meta.get("strokes") or {}).get("stroked_pixels") or []
    return dict(zip(fitted.config.classes, (int(v) for v in counts), strict=False))


__all__ = [
    "PSEUDO_PER_IMAGE",
    "fit_strokes",
    "inferred_cluster_classes",
    "learn",
    "save_learned",
    "stroked_pixels",
    "training_labels",
]
