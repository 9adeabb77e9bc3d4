"""The classes and the cluster→class map (a view over the core project's ClassMap).

Classes are addressed by their stable *id* (what hand edits store), never by row.
While a model learnt from strokes is shown, its "clusters" are the classes it was
taught (position i → the class it learnt as i, :func:`class_map_for_learnt`): the
project keeps the unsupervised model's cluster map underneath, which reappears when
the user goes back to it. Edits the core refuses (a duplicate name...) raise
``AcsegError`` and leave the map unchanged.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from PySide6.QtCore import QObject, Signal

from acseg_core.errors import AcsegError
from acseg_core.labelling.classes import ClassMap, LabelClass, default_cluster_colors
from acseg_core.labelling.teaching import class_map_for_learnt
from app.models.document import DocumentModel


class ClassesModel(QObject):
    changed = Signal()
    shares_changed = Signal()  # each cluster's share of the current image

    def __init__(self, document: DocumentModel, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.document = document
        self.learnt_ids: tuple[int, ...] | None = None  # a learnt model is shown
        self.shares: np.ndarray | None = None  # fraction of valid pixels per cluster
        document.replaced.connect(self._replaced)

    # -- the map shown
    @property
    def class_map(self) -> ClassMap:
        base = self.document.project.class_map
        if self.learnt_ids is not None:
            return class_map_for_learnt(base, self.learnt_ids)
        return base

    def show_learnt(self, class_ids: Sequence[int] | None) -> None:
        """A learnt model is shown (its positions' class ids), or None: the base again."""
        ids = tuple(class_ids) if class_ids is not None else None
        if ids != self.learnt_ids:
            self.learnt_ids = ids
            self.changed.emit()

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
        """Replace the project's map (the unsupervised model's clusters)."""
        project = self.document.project
        if class_map != project.class_map:
            project.set_class_map(class_map)
            self.changed.emit()
            self.document.changed()

    # -- queries
    @property
    def clusters(self) -> int:
        return self.class_map.clusters

    @property
    def classes(self) -> tuple[LabelClass, ...]:
        return self.class_map.classes

    def class_of(self, cluster: int) -> LabelClass | None:
        if not 0 <= cluster < self.clusters:
            return None
        return self.class_map.class_of_cluster(cluster)

    def cluster_colours(self) -> list[tuple[int, int, int]]:
        return [tuple(int(v) for v in c) for c in default_cluster_colors(self.clusters)]  # type: ignore[misc]

    # -- edits (of the project's map: class ids are shared with a learnt view)
    def set_clusters(self, count: int) -> None:
        """A model with ``count`` clusters is loaded; mappings of remaining clusters stay."""
        self.set_class_map(self.document.project.class_map.with_clusters(count))

    def add_class(self, name: str, colour: tuple[int, int, int] | None = None) -> int:
        """Add a class; returns its id."""
        new = self.document.project.class_map.add_class(name.strip(), colour)
        self.set_class_map(new)
        return new.classes[-1].id

    def rename_class(self, class_id: int, name: str) -> None:
        base = self.document.project.class_map
        self.set_class_map(base.rename_class(class_id, name.strip()))

    def recolour_class(self, class_id: int, colour: tuple[int, int, int]) -> None:
        self.set_class_map(self.document.project.class_map.recolor_class(class_id, colour))

    def recolour_classes(self, colours: dict[int, tuple[int, int, int]]) -> None:
        """Recolour several classes in one change."""
        self.set_class_map(self.document.project.class_map.recolor_many(colours))

    def recolour_by_name(self, class_ids: Sequence[int]) -> None:
        """The land-cover colour of each class's name (the core's table)."""
        base = self.document.project.class_map
        self.set_class_map(base.recolor_many(base.colours_by_name(class_ids)))

    def import_classes(self, entries: Sequence[tuple[str, tuple[int, int, int] | None]]) -> None:
        """Add a class list's classes (the core's rules: names present keep their class)."""
        self.set_class_map(self.document.project.class_map.add_classes(entries))

    def remove_class(self, class_id: int) -> None:
        """Remove a class; its clusters become unassigned."""
        self.set_class_map(self.document.project.class_map.remove_class(class_id))

    def assign(self, cluster: int, class_id: int | None) -> None:
        """Map ``cluster`` to class ``class_id`` (None: unassigned)."""
        if self.learnt_ids is not None:
            raise AcsegError(
                "a model learnt from strokes names its own classes: go back to the "
                "unsupervised model (Model menu) to map clusters"
            )
        self.set_class_map(self.document.project.class_map.assign(cluster, class_id))

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

    def _replaced(self) -> None:
        self.learnt_ids = None
        self.changed.emit()
