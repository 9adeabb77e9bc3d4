"""The class map being edited (an immutable core value, swapped on every edit)."""

from __future__ import annotations

import numpy as np
from PySide6.QtCore import QObject, Signal

from acseg_core.labelling.classes import ClassMap, LabelClass, default_cluster_colors


class ClassesModel(QObject):
    """The current :class:`~acseg_core.labelling.classes.ClassMap` (an immutable value).

    Classes are addressed by their stable *id* (what hand edits store), never by
    row. Edits the core refuses (a duplicate name...) raise ``AcsegError`` and
    leave the map unchanged.
    """

    changed = Signal()
    shares_changed = Signal()  # each cluster's share of the current image

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.class_map = ClassMap.empty(0)
        self.shares: np.ndarray | None = None  # fraction of valid pixels per cluster

    def set_cluster_shares(self, labels: np.ndarray | None) -> None:
        """Each cluster's share of the valid pixels of ``labels`` (the shown map)."""
        shares = None
        if labels is not None and self.clusters:
            counts = np.bincount(labels.ravel(), minlength=256)[: self.clusters]
            shares = counts / max(int(counts.sum()), 1)
        same = (shares is None) == (self.shares is None)
        if same and (shares is None or np.array_equal(shares, self.shares)):
            return
        self.shares = shares
        self.shares_changed.emit()

    def set_class_map(self, class_map: ClassMap) -> None:
        if class_map != self.class_map:
            self.class_map = class_map
            self.changed.emit()

    # -- queries
    @property
    def clusters(self) -> int:
        return self.class_map.clusters

    @property
    def classes(self) -> tuple[LabelClass, ...]:
        return self.class_map.classes

    def class_of(self, cluster: int) -> LabelClass | None:
        if not 0 <= cluster < self.class_map.clusters:
            return None
        return self.class_map.class_of_cluster(cluster)

    def cluster_colours(self) -> list[tuple[int, int, int]]:
        return [tuple(int(v) for v in c) for c in default_cluster_colors(self.clusters)]  # type: ignore[misc]

    # -- edits
    def set_clusters(self, count: int) -> None:
        """A model with ``count`` clusters is loaded; mappings of remaining clusters stay."""
        self.set_class_map(self.class_map.with_clusters(count))

    def add_class(self, name: str, colour: tuple[int, int, int] | None = None) -> int:
        """Add a class; returns its id."""
        new = self.class_map.add_class(name.strip(), colour)
        self.set_class_map(new)
        return new.classes[-1].id

    def rename_class(self, class_id: int, name: str) -> None:
        self.set_class_map(self.class_map.rename_class(class_id, name.strip()))

    def recolour_class(self, class_id: int, colour: tuple[int, int, int]) -> None:
        self.set_class_map(self.class_map.recolor_class(class_id, colour))

    def remove_class(self, class_id: int) -> None:
        """Remove a class; its clusters become unassigned."""
        self.set_class_map(self.class_map.remove_class(class_id))

    def assign(self, cluster: int, class_id: int | None) -> None:
        """Map ``cluster`` to class ``class_id`` (None: unassigned)."""
        self.set_class_map(self.class_map.assign(cluster, class_id))

    # -- lookup tables (cluster value → RGBA)
    def cluster_lut(self, hidden: frozenset[int] = frozenset()) -> np.ndarray:
        visible = [k not in hidden for k in range(self.clusters)]
        return self.class_map.cluster_rgba_lut(visible)

    def class_lut(self, hidden: frozenset[int] = frozenset()) -> np.ndarray:
        lut = self.class_map.label_rgba_lut()[self.class_map.cluster_lut()]
        for k in hidden:
            if 0 <= k < 256:
                lut[k] = 0
        return lut
