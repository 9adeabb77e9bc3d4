"""Score cluster maps against labels over a folder: one mapping per dataset.

The IIC/AC protocol: predict a cluster per pixel for every image, sum one K×C
confusion over the whole folder, map clusters to classes once (Hungarian), and
report pixel accuracy and mIoU; per-image figures use that same mapping.
Cluster maps come from any source (a trained model, k-means), one image at a
time, so the accuracy benchmark reuses this module unchanged.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from acseg_core.errors import AcsegError, CancelledError, InputError
from acseg_core.evaluation import metrics
from acseg_core.evaluation.kmeans import cluster_images, fit_baseline
from acseg_core.evaluation.pairs import Pair, check_pairs, pair_images, strips
from acseg_core.inference.predict import predict_array
from acseg_core.io.labels import LabelFormat, parse_label_format
from acseg_core.jobs import CancelToken, Progress, run_to_end
from acseg_core.model.checkpoint import LoadedModel

ClusterSource = Callable[[Sequence[Path]], Iterator[np.ndarray]]


@dataclass(frozen=True)
class LabelledFolder:
    """Images paired with labels, their label format and per-class pixel counts."""

    pairs: tuple[Pair, ...]
    label_format: LabelFormat
    class_counts: np.ndarray  # labelled pixels per class

    @property
    def n_classes(self) -> int:
        return max(len(self.class_counts), self.label_format.n_classes or 0)

    @property
    def classes_present(self) -> int:
        """Classes with labelled pixels: the default K of the k-means baseline."""
        return int(np.count_nonzero(self.class_counts))

    @property
    def images(self) -> list[Path]:
        return [pair.image for pair in self.pairs]


def open_labelled_folder(
    images: str | Path,
    labels: str | Path | None = None,
    label_format: str | LabelFormat = "index",
    merge: str | None = None,
    keep: str | None = None,
    class_column: str | None = None,
) -> LabelledFolder:
    """Pair, check sizes and count classes: everything fails here, before clustering."""
    fmt = (
        label_format
        if isinstance(label_format, LabelFormat)
        else parse_label_format(label_format, merge, keep, class_column)
    )
    pairs = pair_images(images, labels or images)
    counts = check_pairs(pairs, fmt)
    if not counts.any():
        raise AcsegError(f"no labelled pixels in {labels or images} as {fmt.description}")
    return LabelledFolder(tuple(pairs), fmt, counts)


def score_folder(
    folder: LabelledFolder,
    source: ClusterSource,
    n_clusters: int,
    cancel: CancelToken | None = None,
) -> Iterator[Progress]:
    """Score a cluster source on a :class:`LabelledFolder` (returns an Evaluation)."""
    return (
        yield from evaluate_folder(
            folder.pairs, folder.label_format, source, n_clusters, folder.n_classes, cancel
        )
    )


def kmeans_baseline(
    folder: LabelledFolder,
    seeds: Sequence[int] = (0, 1, 2),
    k: int | None = None,
    cancel: CancelToken | None = None,
) -> list[Evaluation]:
    """The k-means yardstick, one Evaluation per seed (K = classes present by default)."""
    k = k or folder.classes_present
    return [
        run_to_end(score_folder(folder, kmeans_source(k, seed, cancel), k, cancel))
        for seed in seeds
    ]


@dataclass
class ImageResult:
    name: str
    confusion: np.ndarray  # K×C with this image's pixels only


@dataclass
class Evaluation:
    """Dataset-level figures under one Hungarian mapping, plus per-image figures."""

    class_names: list[str]
    confusion: np.ndarray  # K×C
    mapping: np.ndarray  # K, class index or -1
    scores: metrics.Scores
    images: list[ImageResult] = field(default_factory=list)
    ignored_pixels: int = 0
    nodata_pixels: int = 0
    majority_mapping: np.ndarray | None = None
    majority_scores: metrics.Scores | None = None

    @property
    def n_clusters(self) -> int:
        return int(self.confusion.shape[0])

    def image_scores(self, image: ImageResult) -> metrics.Scores:
        return metrics.scores(image.confusion, self.mapping)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready figures (NaN → null)."""
        out: dict[str, Any] = self.scores.to_dict(self.class_names)
        total = self.scores.pixels + self.ignored_pixels
        out.update(
            clusters=self.n_clusters,
            classes=self.class_names,
            mapping=_mapping_dict(self.mapping, self.class_names),
            confusion=self.confusion.tolist(),
            ignored_fraction=round(self.ignored_pixels / total, 6) if total else None,
            nodata_pixels=self.nodata_pixels,
        )
        if self.majority_mapping is not None and self.majority_scores is not None:
            majority = self.majority_scores.to_dict(self.class_names)
            majority["mapping"] = _mapping_dict(self.majority_mapping, self.class_names)
            out["majority"] = majority
        out["per_image"] = [
            {"name": image.name, **_brief(self.image_scores(image))} for image in self.images
        ]
        return out


def evaluate(
    pairs: Sequence[Pair],
    fmt: LabelFormat,
    cluster_maps: Iterable[np.ndarray],
    n_clusters: int,
    n_classes: int | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[Progress]:
    """Score ``cluster_maps`` (one uint8 map per pair, 255 = nodata) against the labels.

    A generator yielding Progress per image; its return value is an
    :class:`Evaluation`. ``n_classes`` fixes the class axis of open-ended labels.
    """
    total = len(pairs)
    acc = metrics.ConfusionAccumulator(n_clusters, fmt.n_classes or n_classes)
    results: list[ImageResult] = []
    ignored = nodata = 0
    maps = iter(cluster_maps)
    for done, pair in enumerate(pairs):
        if cancel:
            raise CancelledError("evaluation cancelled")
        clusters = next(maps, None)
        if clusters is None:
            raise AcsegError(f"no cluster map for {pair.image.name}")
        height, width = clusters.shape
        image_confusion = np.zeros((n_clusters, 0), dtype=np.int64)
        for strip in strips(width, height):
            classes = fmt.read(pair.label, strip)
            if classes.shape != (strip[3], strip[2]):
                raise InputError(pair.label, f"label size differs from {pair.image.name}")
            part_clusters = clusters[strip[1] : strip[1] + strip[3]]
            part = acc.add(part_clusters, classes)
            image_confusion = _add_padded(image_confusion, part)
            labelled = classes >= 0
            ignored += int(np.count_nonzero(~labelled))
            nodata += int(np.count_nonzero(labelled & (part_clusters >= n_clusters)))
        results.append(ImageResult(pair.name, image_confusion))
        yield Progress(done + 1, total, f"scored {pair.image.name}")
    confusion = acc.matrix
    n_total = max(confusion.shape[1], n_classes or 0)
    confusion = metrics.pad_classes(confusion, n_total)
    for result in results:
        result.confusion = metrics.pad_classes(result.confusion, n_total)
    mapping = metrics.hungarian_mapping(confusion)
    evaluation = Evaluation(
        class_names=fmt.names(n_total),
        confusion=confusion,
        mapping=mapping,
        scores=metrics.scores(confusion, mapping),
        images=results,
        ignored_pixels=ignored,
        nodata_pixels=nodata,
    )
    present = int(np.count_nonzero(confusion.sum(axis=0)))
    if n_clusters > present:  # several clusters per class possible: many-to-one too
        evaluation.majority_mapping = metrics.majority_mapping(confusion)
        evaluation.majority_scores = metrics.scores(confusion, evaluation.majority_mapping)
    return evaluation


def kmeans_source(
    k: int, seed: int = 0, cancel: CancelToken | None = None
) -> Callable[[Sequence[Path]], Iterator[np.ndarray]]:
    """A cluster source: k-means fitted on the pooled images, then each image assigned."""

    def source(images: Sequence[Path]) -> Iterator[np.ndarray]:
        model = fit_baseline(images, k, seed=seed, cancel=cancel)
        yield from cluster_images(model, images, cancel)

    return source


def model_source(loaded: LoadedModel, **predict_kwargs: Any) -> ClusterSource:
    """A cluster source: a trained model's predictions (``acseg_core.inference.predict``)."""

    def source(images: Sequence[Path]) -> Iterator[np.ndarray]:
        for path in images:
            prediction = predict_array(loaded, path, **predict_kwargs)
            if prediction.clusters is None:
                raise AcsegError(f"prediction of {path.name} returned no cluster map")
            yield prediction.clusters

    return source


def evaluate_folder(
    pairs: Sequence[Pair],
    fmt: LabelFormat,
    source: ClusterSource,
    n_clusters: int,
    n_classes: int | None = None,
    cancel: CancelToken | None = None,
) -> Iterator[Progress]:
    """``evaluate`` with cluster maps drawn from ``source`` over the paired images."""
    maps = source([pair.image for pair in pairs])
    return (yield from evaluate(pairs, fmt, maps, n_clusters, n_classes, cancel))


def format_table(evaluation: Evaluation, title: str = "") -> str:
    """A plain-text report: dataset figures, per-class IoU, mapping, per-image figures."""
    lines = [title] if title else []
    s = evaluation.scores
    lines.append(
        f"pixel accuracy {_pct(s.pixel_accuracy)}   mIoU {_pct(s.miou)}   "
        f"({evaluation.n_clusters} clusters, {len(evaluation.class_names)} classes, "
        f"{s.pixels} labelled pixels, {len(evaluation.images)} images)"
    )
    if evaluation.majority_scores is not None:
        m = evaluation.majority_scores
        lines.append(
            f"many-to-one (majority) map: pixel accuracy {_pct(m.pixel_accuracy)}   "
            f"mIoU {_pct(m.miou)}"
        )
    width = max(len(n) for n in evaluation.class_names) if evaluation.class_names else 5
    lines.append("")
    lines.append(f"{'class':<{width}}  {'IoU':>7}  {'pixels':>10}  clusters")
    truth = evaluation.confusion.sum(axis=0)
    for c, name in enumerate(evaluation.class_names):
        clusters = [str(k) for k, m in enumerate(evaluation.mapping) if m == c]
        lines.append(
            f"{name:<{width}}  {_pct(s.per_class_iou[c]):>7}  {int(truth[c]):>10}  "
            f"{','.join(clusters) or '-'}"
        )
    unassigned = [str(k) for k, m in enumerate(evaluation.mapping) if m < 0]
    if unassigned:
        lines.append(f"unassigned clusters: {','.join(unassigned)}")
    if len(evaluation.images) > 1:
        lines.append("")
        name_width = max(len(i.name) for i in evaluation.images)
        lines.append(f"{'image':<{name_width}}  {'accuracy':>8}  {'mIoU':>7}")
        for image in evaluation.images:
            sc = evaluation.image_scores(image)
            lines.append(
                f"{image.name:<{name_width}}  {_pct(sc.pixel_accuracy):>8}  {_pct(sc.miou):>7}"
            )
    return "\n".join(lines)


# -- helpers ----------------------------------------------------------------------


def _add_padded(total: np.ndarray, part: np.ndarray) -> np.ndarray:
    if part.shape[1] > total.shape[1]:
        total = metrics.pad_classes(total, part.shape[1])
    total[:, : part.shape[1]] += part
    return total


def _mapping_dict(mapping: np.ndarray, names: list[str]) -> dict[str, str | None]:
    return {str(k): (names[int(c)] if c >= 0 else None) for k, c in enumerate(mapping)}


def _brief(scores: metrics.Scores) -> dict[str, Any]:
    full = scores.to_dict()
    return {"pixel_accuracy": full["pixel_accuracy"], "miou": full["miou"], "pixels": scores.pixels}


def _pct(value: float) -> str:
    return "—" if np.isnan(value) else f"{100 * value:.1f} %"
