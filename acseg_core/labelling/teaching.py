"""Hand edits as a lesson: what a learnt read-out is taught, and how its maps are named.

A learnt read-out (:mod:`acseg_core.learning`) learns class *positions* 0..C−1 from
strokes; a project names classes by stable *ids*. This module is the one place that
translates: the project's hand edits become stroke sets (edit ids → positions; edits
that force "no class" teach nothing), the base model's cluster→class map becomes the
cluster → position list that labels pseudo-samples, and a learnt model's positions
map back to the project's class ids (stored in the model, so renaming or reordering
classes later keeps every map right). Used alike by ``acseg-core learn --project``
and the app.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from acseg_core.errors import AcsegError, InputError
from acseg_core.labelling.classes import UNASSIGNED, ClassMap
from acseg_core.labelling.edits import EditLayer
from acseg_core.learning.strokes import NOT_STROKED, StrokeSet
from acseg_core.model.checkpoint import LoadedModel
from acseg_core.model.config import ModelConfig

Colour = tuple[int, int, int]


@dataclass(frozen=True)
class Lesson:
    """Everything a learn needs from a class map: the classes in position order (names,
    colours, ids) and the base model's cluster → position (−1: not named)."""

    names: tuple[str, ...]
    colours: tuple[Colour, ...]
    class_ids: tuple[int, ...]
    cluster_positions: tuple[int, ...]

    @classmethod
    def of(cls, class_map: ClassMap) -> Lesson:
        position = {c.id: i for i, c in enumerate(class_map.classes)}
        return cls(
            tuple(c.name for c in class_map.classes),
            tuple(tuple(int(v) for v in c.color) for c in class_map.classes),  # type: ignore[misc]
            tuple(c.id for c in class_map.classes),
            tuple(position.get(a, -1) for a in class_map.assignment),
        )


def strokes_from_edits(layer: EditLayer, class_map: ClassMap) -> StrokeSet:
    """A layer's hand edits as strokes: class id → its position in ``class_map``."""
    lut = np.full(256, NOT_STROKED, np.uint8)
    for position, c in enumerate(class_map.classes):
        lut[c.id] = position
    rows, cols, values = [], [], []
    for (tr, tc), tile in layer.tiles():
        r, c = np.nonzero(lut[tile] != NOT_STROKED)
        r, c = r + tr * layer.tile, c + tc * layer.tile
        inside = (r < layer.height) & (c < layer.width)
        rows.append(r[inside])
        cols.append(c[inside])
        values.append(lut[tile[r[inside] - tr * layer.tile, c[inside] - tc * layer.tile]])
    if not rows:
        return StrokeSet.empty(layer.height, layer.width)
    return StrokeSet(
        layer.height, layer.width,
        np.concatenate(rows).astype(np.int32), np.concatenate(cols).astype(np.int32),
        np.concatenate(values).astype(np.uint8),
    )  # fmt: skip


def edited_strokes(
    layers: Sequence[tuple[Path, EditLayer | None]], class_map: ClassMap
) -> dict[Path, StrokeSet]:
    """Stroke sets of the images whose edits name a class (images without any are left
    out); ``layers`` pairs each image with its edit layer."""
    strokes = {}
    for image, layer in layers:
        if layer is None or layer.is_empty:
            continue
        stroke_set = strokes_from_edits(layer, class_map)
        if len(stroke_set):
            if not image.is_file():
                raise InputError(image, "image not found")
            strokes[image] = stroke_set
    return strokes


def learnt_class_ids(fitted: LoadedModel) -> tuple[int, ...] | None:
    """The project class id of each position a learnt model emits (None: not stored)."""
    ids = (fitted.meta.get("strokes") or {}).get("class_ids")
    return tuple(int(v) for v in ids) if ids else None


def class_map_for_learnt(class_map: ClassMap, class_ids: Sequence[int]) -> ClassMap:
    """``class_map``'s classes with each learnt position as a "cluster" mapped to its
    class (a class removed since the learn reads as unassigned)."""
    known = {c.id for c in class_map.classes}
    assignment = tuple(i if i in known else UNASSIGNED for i in class_ids)
    return ClassMap(len(assignment), class_map.classes, assignment, class_map.next_id)


def classes_for_learnt(
    class_map: ClassMap, config: ModelConfig, class_ids: Sequence[int] | None = None
) -> tuple[ClassMap, tuple[int, ...]]:
    """A learnt model opened as a file: ``class_map`` with the model's classes in it and
    the class id of each position. A position takes its stored id when that class still
    has the model's name (the project's own model), else the class of that name, else a
    new class with the model's name and colour (a model file keeps its legend)."""
    ids = []
    for position, name in enumerate(config.classes):
        stored = class_ids[position] if class_ids and position < len(class_ids) else None
        same = [c for c in class_map.classes if c.name == name]
        if stored is not None and any(c.id == stored for c in same):
            ids.append(int(stored))
        elif same:
            ids.append(same[0].id)
        else:
            colour = (
                config.class_colours[position] if position < len(config.class_colours) else None
            )
            class_map = class_map.add_class(name, colour)
            ids.append(class_map.classes[-1].id)
    return class_map, tuple(ids)


def check_lesson(lesson: Lesson, strokes: dict[Path, StrokeSet]) -> None:
    """Refuse a learn that cannot succeed, in one line, before any network pass."""
    if len(lesson.names) < 2:
        raise AcsegError("add at least two classes and paint with them first")
    if not strokes:
        raise AcsegError("no hand edits with a class yet: paint a few strokes per class")


__all__ = [
    "Lesson",
    "check_lesson",
    "class_map_for_learnt",
    "classes_for_learnt",
    "edited_strokes",
    "learnt_class_ids",
    "strokes_from_edits",
]
