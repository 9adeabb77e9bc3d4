"""How far a user's strokes can be trusted, from the strokes themselves.

Leave-one-stroke-out: the strokes are split into folds of whole strokes (a stroke is
one connected run of one class, :meth:`StrokeSet.components`); each fold is held out
while the read-out is fitted on the rest, exactly as the real fit (same samples,
balance and seed), then asked to label the held-out strokes. Per class, the share of
its held-out pixels labelled right is the figure a user sees after a learn: a class
whose strokes are not labelled right by the others is not learnt well, and a stroke
that the others label as one other class is probably on the wrong thing (a loose
polygon over water taught as building): it is named, with its image and place.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from acseg_core.learning.fit import fit_module, training_set
from acseg_core.learning.samples import Samples
from acseg_core.model.checkpoint import LoadedModel
from acseg_core.model.readouts.registry import learnable_kind

FOLDS = 8  # at most this many refits
SUSPECT_SHARE = 0.6  # a stroke held out is suspect when this share of it reads as one other class
WEAK = 0.7  # a class below this held-out accuracy gets a warning


@dataclass(frozen=True)
class Suspect:
    """A stroke that the other strokes label as another class."""

    class_name: str
    looks_like: str
    share: float  # of the stroke's pixels labelled ``looks_like``
    image: str
    row: int  # the stroke's centre, in image pixels
    col: int

    def describe(self) -> str:
        return (
            f"a {self.class_name} stroke on {self.image} near x {self.col}, y {self.row} "
            f"looks like {self.looks_like} to the other strokes ({100 * self.share:.0f} %)"
        )


@dataclass(frozen=True)
class StrokeQuality:
    """Held-out accuracy per class (None: too few strokes to hold one out) and the
    suspect strokes; plain data, stored in a learnt model's meta."""

    accuracy: dict[str, float | None]
    suspects: list[Suspect] = field(default_factory=list)

    def warnings(self) -> list[str]:
        """One line per problem worth a user's look."""
        lines = [s.describe() for s in self.suspects]
        for name, value in self.accuracy.items():
            if value is not None and value < WEAK:
                lines.append(
                    f"{name}: only {100 * value:.0f} % of its strokes are labelled {name} by the "
                    "others; add strokes where it is wrong, or check that they cover it"
                )
        return lines

    def summary(self) -> str:
        parts = [
            f"{name} {'–' if value is None else f'{100 * value:.0f} %'}"
            for name, value in self.accuracy.items()
        ]
        return "leave-one-stroke-out accuracy: " + ", ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"accuracy": self.accuracy, "suspects": [asdict(s) for s in self.suspects]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> StrokeQuality:
        return cls(dict(data.get("accuracy", {})),
                   [Suspect(**s) for s in data.get("suspects", [])])  # fmt: skip


def check_strokes(
    loaded: LoadedModel,
    images: Sequence[tuple[str, Samples]],
    class_names: Sequence[str],
    cluster_classes: Sequence[int] | None = None,
    seed: int = 0,
    folds: int = FOLDS,
) -> StrokeQuality:
    """Leave-one-stroke-out accuracy per class and suspect strokes (see the module);
    ``images`` pairs each image's name with its samples."""
    count = len(class_names)
    parts = [samples for _, samples in images if len(samples)]
    data = Samples.concat(parts)
    owner = np.concatenate([np.full(len(s), k) for k, (_, s) in enumerate(images) if len(s)])
    where = data.pixels if data.pixels is not None else np.zeros((len(data), 2), np.int32)
    groups = data.stroke_groups()
    strokes = np.unique(groups[groups >= 0])
    fold_of = {int(g): n % max(1, min(folds, len(strokes))) for n, g in enumerate(strokes)}
    predicted = np.full(len(data), -1, np.int64)
    kind = learnable_kind()
    for fold in sorted(set(fold_of.values())):
        held = np.isin(groups, [g for g, f in fold_of.items() if f == fold])
        rest = Samples({k: v[~held] for k, v in data.blocks.items()}, data.labels[~held],
                       data.clusters[~held], groups[~held])  # fmt: skip
        training = training_set(rest, count, cluster_classes, seed)
        if len(np.unique(training.labels)) < 2:
            continue
        module = fit_module(loaded, training, count, seed)
        probs = kind.classify(module, {k: v[held] for k, v in data.blocks.items()})
        predicted[held] = probs.argmax(axis=1)
    accuracy: dict[str, float | None] = {}
    for c, name in enumerate(class_names):
        mine = (data.labels == c) & (predicted >= 0)
        stroke_count = len(np.unique(groups[data.labels == c]))
        accuracy[name] = None if stroke_count < 2 or not mine.any() else float(
            (predicted[mine] == c).mean()
        )
    suspects = []
    for g in strokes:
        pick = (groups == g) & (predicted >= 0)
        if not pick.any():
            continue
        own = int(data.labels[pick][0])
        votes = np.bincount(predicted[pick], minlength=count)
        votes[own] = 0
        other = int(votes.argmax())
        share = votes[other] / pick.sum()
        if share >= SUSPECT_SHARE:
            image = images[int(owner[pick][0])][0]
            row, col = np.median(where[pick], axis=0)
            suspects.append(Suspect(class_names[own], class_names[other], round(float(share), 3),
                                    image, int(row), int(col)))  # fmt: skip
    return StrokeQuality(accuracy, suspects)


__all__ = ["FOLDS", "StrokeQuality", "Suspect", "check_strokes"]
