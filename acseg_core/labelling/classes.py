"""Cluster → class mapping, palettes and the lookup tables that paint label maps.

Value conventions (one byte per pixel everywhere):

* **cluster map** (from prediction): cluster ``0..K-1``; ``NODATA`` (255) = no data.
* **label map** (what the app shows and edits): ``UNASSIGNED`` (0) = no class,
  ``1..254`` = a class *id*, ``NODATA`` (255) = no data. Class ids are stable:
  renaming, recolouring, reordering or removing other classes never changes them,
  so hand edits (which store ids) survive every change of the mapping. Ids are not
  reused after a class is removed (until all 254 have been handed out), so old
  edits of a removed class read as unassigned instead of jumping to a new class.
* **export value** (files on disk): ``0`` = background — unassigned *and* nodata —
  and the class at position ``i`` of :attr:`ClassMap.classes` is ``i + 1``. The
  palette of exported PNGs and ``labelmap.txt`` (CVAT "Segmentation mask 1.1") list
  ``background`` (black) first, then the classes in that order, so index = line.
  GeoTIFFs declare 0 as nodata.

:class:`ClassMap` is an immutable value: every edit returns a new map. The app keeps
the current one in a QObject and emits a signal when it swaps it in; undo is keeping
the previous value.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np

from acseg_core.errors import AcsegError
from acseg_core.gis.palettes import (
    MAX_CLASS_ID,
    MAX_CLUSTERS,
    Color,
    colour_for_name,
    default_cluster_colors,
    default_palette,
    first_unused_colour,
    landcover_colour,
)
from acseg_core.io.raster import NODATA

UNASSIGNED = 0  # label value: a pixel with no class
NO_EDIT = 255  # edit-layer value: "not edited, use the cluster map"
BACKGROUND_NAME = "background"
BACKGROUND_COLOR = (0, 0, 0)


# -- value objects ----------------------------------------------------------------


@dataclass(frozen=True)
class LabelClass:
    """A named, coloured class. ``id`` (1..254) is stable for the class's lifetime."""

    id: int
    name: str
    color: Color


@dataclass(frozen=True)
class ClassMap:
    """Classes (in export order) and the class id of every cluster (0 = unassigned)."""

    clusters: int = 0
    classes: tuple[LabelClass, ...] = ()
    assignment: tuple[int, ...] = ()  # one class id (or UNASSIGNED) per cluster
    next_id: int = 1  # id the next added class gets (ids are not reused)
    _by_id: dict[int, LabelClass] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        problems = _validate(self)
        if problems:
            raise AcsegError("invalid class map: " + "; ".join(problems))
        object.__setattr__(self, "_by_id", {c.id: c for c in self.classes})

    # -- construction ----------------------------------------------------------
    @classmethod
    def empty(cls, clusters: int = 0) -> ClassMap:
        """Every cluster unassigned, no classes."""
        return cls(clusters=clusters, assignment=(UNASSIGNED,) * clusters)

    # -- queries ----------------------------------------------------------------
    def class_by_id(self, class_id: int) -> LabelClass:
        try:
            return self._by_id[class_id]
        except KeyError:
            raise AcsegError(f"no class with id {class_id}") from None

    def class_of_cluster(self, cluster: int) -> LabelClass | None:
        """The class a cluster maps to, or None when unassigned."""
        self._check_cluster(cluster)
        class_id = self.assignment[cluster]
        return self._by_id.get(class_id) if class_id != UNASSIGNED else None

    def clusters_of(self, class_id: int) -> tuple[int, ...]:
        return tuple(k for k, c in enumerate(self.assignment) if c == class_id)

    def position(self, class_id: int) -> int:
        """0-based position of a class (its export value is position + 1)."""
        return self.classes.index(self.class_by_id(class_id))

    def export_value(self, class_id: int) -> int:
        return self.position(class_id) + 1

    def export_problems(self) -> list[str]:
        """What makes a CVAT import ambiguous: CVAT tells classes apart by colour."""
        problems = []
        seen: dict[Color, str] = {BACKGROUND_COLOR: BACKGROUND_NAME}
        for c in self.classes:
            if c.name.lower() == BACKGROUND_NAME:
                problems.append(f"class name {c.name!r} is reserved for unassigned pixels")
            if c.color in seen:
                problems.append(
                    f"classes {seen[c.color]!r} and {c.name!r} share colour "
                    f"{','.join(map(str, c.color))}"
                )
            seen.setdefault(c.color, c.name)
        return problems

    # -- edits (each returns a new ClassMap) ---------------------------------------
    def add_class(self, name: str, color: Color | None = None) -> ClassMap:
        """A new class at the end; its id is ``self.next_id`` (also ``result.classes[-1]``)."""
        if len(self.classes) >= MAX_CLASS_ID:
            raise AcsegError(f"at most {MAX_CLASS_ID} classes")
        new_id = self.next_id
        if new_id > MAX_CLASS_ID or new_id in self._by_id:  # all ids handed out once: reuse
            new_id = min(set(range(1, MAX_CLASS_ID + 1)) - set(self._by_id))
        colour = tuple(int(v) for v in color) if color is not None else self.suggest_color(name)
        new = LabelClass(new_id, name, colour)  # type: ignore[arg-type]
        return replace(self, classes=(*self.classes, new), next_id=new_id + 1)

    def suggest_color(self, name: str = "") -> Color:
        """A colour no class uses yet: the conventional one of a land-cover class named
        like ``name`` (water blue, vegetation green, road grey...), else the first free
        class colour (never one of the cluster colours a small model shows, so a class
        is not mistaken for a cluster)."""
        used = {c.color for c in self.classes}
        return colour_for_name(name, used) if name else first_unused_colour(used)

    def add_classes(self, classes: Iterable[tuple[str, Color | None]]) -> ClassMap:
        """Add each (name, colour or None) not present yet (a name already there keeps its
        class; a given colour recolours it). An imported class list goes through here."""
        new = self
        for name, colour in classes:
            name = name.strip()
            existing = next((c for c in new.classes if c.name == name), None)
            if existing is None:
                new = new.add_class(name, colour)
            elif colour is not None and tuple(colour) != existing.color:
                new = new.recolor_class(existing.id, colour)
        return new

    def remove_class(self, class_id: int) -> ClassMap:
        """Drop a class; its clusters become unassigned."""
        self.class_by_id(class_id)
        return replace(
            self,
            classes=tuple(c for c in self.classes if c.id != class_id),
            assignment=tuple(UNASSIGNED if c == class_id else c for c in self.assignment),
        )

    def rename_class(self, class_id: int, name: str) -> ClassMap:
        return self._replace_class(class_id, name=name)

    def recolor_class(self, class_id: int, color: Color) -> ClassMap:
        return self._replace_class(class_id, color=tuple(int(v) for v in color))

    def recolor_many(self, colours: Mapping[int, Color]) -> ClassMap:
        """Recolour several classes at once (ids → colours)."""
        new = self
        for class_id, colour in colours.items():
            new = new.recolor_class(class_id, colour)
        return new

    def colours_by_name(self, class_ids: Iterable[int]) -> dict[int, Color]:
        """The land-cover colour of each of these classes' names (water blue, vegetation
        green...: :func:`~acseg_core.gis.palettes.landcover_colour`), a lighter or
        darker shade where another class has it; classes with an unknown name are left
        out (they keep their colour)."""
        ids = list(class_ids)
        used = {c.color for c in self.classes if c.id not in ids}
        found: dict[int, Color] = {}
        for class_id in ids:
            cls = self.class_by_id(class_id)
            if landcover_colour(cls.name) is None:
                used.add(cls.color)
                continue
            colour = colour_for_name(cls.name, used)
            found[class_id] = colour
            used.add(colour)
        return found

    def move_class(self, class_id: int, position: int) -> ClassMap:
        """Reorder (changes export values, never ids)."""
        moving = self.class_by_id(class_id)
        rest = [c for c in self.classes if c.id != class_id]
        position = max(0, min(position, len(rest)))
        return replace(self, classes=(*rest[:position], moving, *rest[position:]))

    def assign(self, cluster: int, class_id: int | None) -> ClassMap:
        """Map one cluster to a class (None or 0 = unassigned)."""
        return self.assign_many({cluster: class_id})

    def assign_many(self, mapping: Mapping[int, int | None]) -> ClassMap:
        assignment = list(self.assignment)
        for cluster, class_id in mapping.items():
            self._check_cluster(cluster)
            if class_id not in (None, UNASSIGNED):
                self.class_by_id(class_id)  # type: ignore[arg-type]
            assignment[cluster] = class_id or UNASSIGNED
        return replace(self, assignment=tuple(assignment))

    def with_clusters(self, clusters: int) -> ClassMap:
        """Resize for a model with another K, keeping the mapping of clusters that remain."""
        kept = self.assignment[:clusters]
        return replace(
            self, clusters=clusters, assignment=kept + (UNASSIGNED,) * (clusters - len(kept))
        )

    def _replace_class(self, class_id: int, **changes: Any) -> ClassMap:
        old = self.class_by_id(class_id)
        new = replace(old, **changes)
        return replace(self, classes=tuple(new if c.id == class_id else c for c in self.classes))

    def _check_cluster(self, cluster: int) -> None:
        if not 0 <= cluster < self.clusters:
            raise AcsegError(f"cluster {cluster} out of range 0..{self.clusters - 1}")

    # -- lookup tables (256 entries, indexed by a uint8 map) -------------------------
    def cluster_lut(self) -> np.ndarray:
        """cluster value → label value. Values past K read as unassigned; 255 stays nodata."""
        lut = np.full(256, UNASSIGNED, dtype=np.uint8)
        lut[: self.clusters] = self.assignment
        lut[NODATA] = NODATA
        return lut

    def labels_from_clusters(self, cluster_map: np.ndarray) -> np.ndarray:
        """Label map (class ids, 0 unassigned, 255 nodata) of a uint8 cluster map."""
        return self.cluster_lut()[cluster_map]

    def export_lut(self) -> np.ndarray:
        """label value → export value: class at position i → i+1; everything else → 0."""
        lut = np.zeros(256, dtype=np.uint8)
        for position, c in enumerate(self.classes):
            lut[c.id] = position + 1
        return lut

    def export_palette(self) -> list[Color]:
        """Colours of export values 0..C: background black, then the classes in order."""
        return [BACKGROUND_COLOR, *(c.color for c in self.classes)]

    def export_names(self) -> list[str]:
        return [BACKGROUND_NAME, *(c.name for c in self.classes)]

    def label_rgba_lut(self, unassigned: tuple[int, int, int, int] = (0, 0, 0, 0)) -> np.ndarray:
        """label value → RGBA (256×4 uint8) for the class overlay; nodata is transparent.

        Ids of removed classes (still present in old hand edits) paint as unassigned.
        """
        lut = np.zeros((256, 4), dtype=np.uint8)
        lut[:] = unassigned
        for c in self.classes:
            lut[c.id] = (*c.color, 255)
        lut[NODATA] = 0
        return lut

    def cluster_rgba_lut(
        self, visible: Sequence[bool] | None = None, colors: np.ndarray | None = None
    ) -> np.ndarray:
        """cluster value → RGBA (256×4 uint8) for the cluster overlay.

        Hidden clusters (``visible[k]`` False), unused values and nodata are transparent.
        ``colors`` (K×3) overrides the default cluster palette.
        """
        rgb = default_cluster_colors(self.clusters) if colors is None else np.asarray(colors)
        lut = np.zeros((256, 4), dtype=np.uint8)
        lut[: self.clusters, :3] = rgb[: self.clusters]
        lut[: self.clusters, 3] = 255
        if visible is not None:
            shown = np.zeros(self.clusters, dtype=bool)
            shown[: min(len(visible), self.clusters)] = list(visible)[: self.clusters]
            lut[: self.clusters, 3] *= shown
        return lut

    # -- serialisation ----------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        return {
            "clusters": self.clusters,
            "classes": [{"id": c.id, "name": c.name, "color": list(c.color)} for c in self.classes],
            "assignment": list(self.assignment),
            "next_id": self.next_id,
        }

    @classmethod
    def from_dict(cls, data: Any) -> ClassMap:
        """Rebuild from :meth:`to_dict`; AcsegError names the first bad field."""
        if not isinstance(data, dict):
            raise AcsegError("must be an object")
        clusters = data.get("clusters", 0)
        if not _is_int(clusters):
            raise AcsegError("clusters must be an integer")
        if not 0 <= clusters <= MAX_CLUSTERS:  # before anything of that size is made
            raise AcsegError(f"clusters must be between 0 and {MAX_CLUSTERS}, not {clusters}")
        raw_classes = data.get("classes", [])
        if not isinstance(raw_classes, list):
            raise AcsegError("classes must be a list")
        classes = []
        for i, item in enumerate(raw_classes):
            where = f"classes[{i}]"
            if not isinstance(item, dict):
                raise AcsegError(f"{where} must be an object")
            if not _is_int(item.get("id")):
                raise AcsegError(f"{where}.id must be an integer")
            if not isinstance(item.get("name"), str):
                raise AcsegError(f"{where}.name must be a string")
            colour = item.get("color")
            if not (
                isinstance(colour, list)
                and len(colour) == 3
                and all(_is_int(v) and 0 <= v <= 255 for v in colour)
            ):
                raise AcsegError(f"{where}.color must be 3 integers 0-255")
            classes.append(LabelClass(item["id"], item["name"], tuple(colour)))  # type: ignore[arg-type]
        assignment = data.get("assignment", [UNASSIGNED] * clusters)
        if not (isinstance(assignment, list) and all(_is_int(v) for v in assignment)):
            raise AcsegError("assignment must be a list of integers")
        next_id = data.get("next_id", max((c.id for c in classes), default=0) + 1)
        if not _is_int(next_id):
            raise AcsegError("next_id must be an integer")
        return cls(clusters, tuple(classes), tuple(assignment), next_id)


# -- pixel operations --------------------------------------------------------------


def composite(labels: np.ndarray, edits: np.ndarray | None) -> np.ndarray:
    """Hand edits over the model's labels: ``edits`` where edited, else ``labels``.

    Nodata stays nodata: a brush stroke across the image edge labels nothing outside.
    """
    if edits is None:
        return labels
    if edits.shape != labels.shape:
        raise AcsegError(f"edit window {edits.shape} does not match label window {labels.shape}")
    return np.where((edits != NO_EDIT) & (labels != NODATA), edits, labels)


def colourise(index_map: np.ndarray, rgba_lut: np.ndarray) -> np.ndarray:
    """H×W uint8 map → H×W×4 RGBA through a 256-entry LUT (one vectorised gather)."""
    return rgba_lut[index_map]


def _validate(cm: ClassMap) -> list[str]:
    problems = []
    if not 0 <= cm.clusters <= MAX_CLUSTERS:
        problems.append(f"clusters must be between 0 and {MAX_CLUSTERS}")
    if len(cm.assignment) != cm.clusters:
        problems.append(f"assignment has {len(cm.assignment)} entries for {cm.clusters} clusters")
    ids: set[int] = set()
    names: set[str] = set()
    for c in cm.classes:
        if not 1 <= c.id <= MAX_CLASS_ID:
            problems.append(f"class id {c.id} outside 1..{MAX_CLASS_ID}")
        if c.id in ids:
            problems.append(f"class id {c.id} used twice")
        ids.add(c.id)
        problems.extend(_name_problems(c.name, names))
        names.add(c.name)
        if len(c.color) != 3 or not all(isinstance(v, int) and 0 <= v <= 255 for v in c.color):
            problems.append(f"class {c.name!r}: colour must be 3 integers 0-255")
    unknown = sorted({a for a in cm.assignment if a != UNASSIGNED and a not in ids})
    if unknown:
        problems.append(f"assignment names unknown class id(s) {unknown}")
    if not 1 <= cm.next_id <= MAX_CLASS_ID + 1:
        problems.append(f"next_id must be between 1 and {MAX_CLASS_ID + 1}")
    return problems


def _name_problems(name: str, taken: Iterable[str]) -> list[str]:
    if not isinstance(name, str) or not name.strip():
        return ["a class name is empty"]
    if any(ch in name for ch in ":\n\r"):  # labelmap.txt separates fields with ':'
        return [f"class name {name!r} must not contain ':' or a line break"]
    if name in taken:
        return [f"class name {name!r} used twice"]
    return []


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


__all__ = [
    "BACKGROUND_COLOR",
    "BACKGROUND_NAME",
    "MAX_CLASS_ID",
    "MAX_CLUSTERS",
    "NO_EDIT",
    "UNASSIGNED",
    "ClassMap",
    "LabelClass",
    "colourise",
    "composite",
    "default_cluster_colors",
    "default_palette",
]
