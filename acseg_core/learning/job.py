"""Learn from strokes, the long job front-ends run: gather every image's samples
(progress, cancel, a cache of unchanged images), fit the learnt read-out
(:mod:`.fit`), and check the strokes against each other (:mod:`.quality`)."""

from __future__ import annotations

from collections.abc import Generator, Mapping, Sequence
from pathlib import Path

from acseg_core.errors import AcsegError
from acseg_core.features.for_model import with_bank
from acseg_core.jobs import CancelToken, Progress
from acseg_core.learning.fit import PSEUDO_PER_IMAGE, Colour, fit_strokes
from acseg_core.learning.quality import StrokeQuality, check_strokes
from acseg_core.learning.samples import Samples, gather
from acseg_core.learning.strokes import StrokeSet
from acseg_core.model.checkpoint import LoadedModel
from acseg_core.model.readouts.registry import learnable_kind


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
    check: bool = True,
    feature_cache: Path | None = None,
) -> Generator[Progress, None, LoadedModel]:
    """Gather every image's samples (``cache``, keyed by (image, strokes digest), skips
    images whose strokes have not changed), then fit; returns the new model. Every
    image, stroked or not, gives unstroked samples too (the read-out's statistics, and
    the classes a cluster→class map names). With ``check``, the strokes'
    leave-one-stroke-out quality goes into its meta (``meta["strokes"]["quality"]``,
    :func:`quality_of`). ``feature_cache``: where images' bank features are kept
    (None: computed for this job only)."""
    kind = learnable_kind()
    if kind.reads_bank:
        loaded = with_bank(loaded)
    pseudo = PSEUDO_PER_IMAGE
    parts: list[Samples] = []
    names: list[str] = []
    for index, (image, stroke_set) in enumerate(strokes.items()):
        key = (str(image), f"{stroke_set.digest}-p{pseudo}-s{seed}-{loaded.digest}-{kind.name}")
        names.append(image.name)
        if cache is not None and key in cache:
            parts.append(cache[key])
            continue
        job = gather(loaded, image, stroke_set, pseudo=pseudo, seed=seed, cancel=cancel,
                     feature_cache=feature_cache)  # fmt: skip
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
    if not any((p.labels >= 0).any() for p in parts):
        raise AcsegError("no stroked pixels to learn from")
    yield Progress(len(strokes), len(strokes), "fitting the strokes read-out")
    fitted = fit_strokes(loaded, parts, class_names, colours, cluster_classes=cluster_classes,
                         seed=seed, class_ids=class_ids)  # fmt: skip
    if check:
        yield Progress(len(strokes), len(strokes), "checking the strokes against each other")
        quality = check_strokes(loaded, list(zip(names, parts, strict=True)), class_names,
                                cluster_classes, seed)  # fmt: skip
        fitted.meta["strokes"]["quality"] = quality.to_dict()
    return fitted


def quality_of(fitted: LoadedModel) -> StrokeQuality | None:
    """The strokes' quality a learnt model carries (None: not checked)."""
    data = (fitted.meta.get("strokes") or {}).get("quality")
    return StrokeQuality.from_dict(data) if isinstance(data, dict) else None


__all__ = ["learn", "quality_of"]
