"""Observable application state (QObjects with signals); views only listen."""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal

from acseg_core.errors import AcsegError
from acseg_core.labelling.classes import ClassMap, LabelClass, default_cluster_colors
from acseg_core.model.config import READOUTS


class ImageListModel(QObject):
    """The images of the session and which one is current."""

    images_changed = Signal()
    current_changed = Signal(int)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._images: list[Path] = []
        self._current = -1

    @property
    def images(self) -> list[Path]:
        return list(self._images)

    @property
    def current_index(self) -> int:
        return self._current

    @property
    def current(self) -> Path | None:
        return self._images[self._current] if 0 <= self._current < len(self._images) else None

    def set_images(self, images: list[Path]) -> None:
        self._images = list(images)
        self._current = -1
        self.images_changed.emit()
        self.set_current(0 if self._images else -1)

    def add_images(self, images: list[Path]) -> None:
        new = [p for p in images if p not in self._images]
        if not new:
            return
        first_new = len(self._images)
        self._images.extend(new)
        self.images_changed.emit()
        self.set_current(first_new)

    def step(self, delta: int) -> None:
        """Next/previous image (clamped)."""
        if self._images:
            self.set_current(min(max(0, self._current + delta), len(self._images) - 1))

    def replace(self, old: Path, new: Path) -> None:
        """A relinked image: same place in the list, new path."""
        index = self._images.index(old)
        self._images[index] = new
        self.images_changed.emit()
        if index == self._current:
            self.current_changed.emit(index)

    def set_current(self, index: int) -> None:
        if index == self._current:
            return
        self._current = index
        self.current_changed.emit(index)


# -- display ----------------------------------------------------------------------
DISPLAY_PRESETS: dict[str, tuple[int, int, int]] = {
    "Natural colour": (1, 2, 3),
    "NIR false colour": (4, 1, 2),
}


class DisplayModel(QObject):
    """How the current image is drawn: band→R/G/B and percentile stretch (display only)."""

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.band_count = 3
        self.bands: tuple[int, int, int] = (1, 2, 3)
        self.low_percent = 2.0
        self.high_percent = 98.0

    def set_band_count(self, count: int) -> None:
        """A new image: keep the mapping when it still fits, else pick a sensible one."""
        self.band_count = max(1, count)
        if max(self.bands) > self.band_count:
            self.bands = (1, 2, 3) if self.band_count >= 3 else (1, 1, 1)
        self.changed.emit()

    def presets(self) -> list[str]:
        return [n for n, b in DISPLAY_PRESETS.items() if max(b) <= self.band_count]

    def apply_preset(self, name: str) -> None:
        self.set_bands(DISPLAY_PRESETS[name])

    def set_bands(self, bands: tuple[int, int, int]) -> None:
        bands = tuple(min(max(1, int(b)), self.band_count) for b in bands)  # type: ignore[assignment]
        if bands != self.bands:
            self.bands = bands  # type: ignore[assignment]
            self.changed.emit()

    def set_percentiles(self, low: float, high: float) -> None:
        low, high = max(0.0, min(low, 99.0)), min(100.0, max(high, low + 0.5))
        if (low, high) != (self.low_percent, self.high_percent):
            self.low_percent, self.high_percent = low, high
            self.changed.emit()


# -- overlay -----------------------------------------------------------------------
class OverlayModel(QObject):
    """Overlay settings: shown or not, opacity, clusters or classes, hidden clusters."""

    changed = Signal()

    CLUSTERS, CLASSES = "clusters", "classes"

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.visible = True
        self.opacity = 0.55
        self.mode = self.CLUSTERS
        self.hidden: frozenset[int] = frozenset()

    def set_visible(self, visible: bool) -> None:
        if visible != self.visible:
            self.visible = visible
            self.changed.emit()

    def toggle(self) -> None:
        self.set_visible(not self.visible)

    def set_opacity(self, opacity: float) -> None:
        opacity = min(1.0, max(0.0, float(opacity)))
        if opacity != self.opacity:
            self.opacity = opacity
            self.changed.emit()

    def set_mode(self, mode: str) -> None:
        if mode not in (self.CLUSTERS, self.CLASSES):
            raise ValueError(f"unknown overlay mode {mode!r}")
        if mode != self.mode:
            self.mode = mode
            self.changed.emit()

    def set_cluster_visible(self, cluster: int, visible: bool) -> None:
        hidden = self.hidden - {cluster} if visible else self.hidden | {cluster}
        if hidden != self.hidden:
            self.hidden = frozenset(hidden)
            self.changed.emit()


# -- classes ----------------------------------------------------------------------
class ClassesModel(QObject):
    """The current :class:`~acseg_core.labelling.classes.ClassMap` (an immutable value), swapped on edit.

    Classes are addressed by their stable *id* (what hand edits store), never by
    row. Edits the core refuses (a duplicate name...) raise ``AcsegError`` and
    leave the map unchanged.
    """

    changed = Signal()

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.class_map = ClassMap.empty(0)

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


# -- model and predictions ------------------------------------------------------------
class SessionModel(QObject):
    """The loaded model, the read-out (kind and window) and the cluster maps predicted
    with them (an LRU cache).

    ``readout`` is what the user chose for the read-out kind (the core's
    ``predict(readout=...)``): None = the model's own (``config.readout``, k-means only
    where the model has a fitted one), ``"head"`` = the network's K-way head (plain
    AC), ``"kmeans"`` = the k-means read-out on features + pixel values (only offered
    for a model that has a fitted one; loading a model without one drops that
    choice back to None). ``smooth`` is the majority-filter window (the core's
    ``predict(smooth=...)``): None = the model's own window (``config.smooth``),
    0 = none (the read-out's own argmax), odd N ≥ 3 = an N×N majority filter. Both
    live in the session only (the project file has no place for them). Changing
    either so that what is applied changes drops the cached maps, as a new model does.
    """

    model_changed = Signal()
    smooth_changed = Signal()  # the choice changed (the cache is cleared if the window did)
    readout_changed = Signal()  # the choice changed (the cache is cleared if the kind did)
    prediction_ready = Signal(object)  # Path

    MAX_CACHED = 16  # images
    MAX_CACHED_BYTES = 1 << 30  # cluster maps are uint8 H×W: 1 GiB ≈ ten 10000² images

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.loaded: Any = None  # acseg_core.model.checkpoint.LoadedModel
        self.model_path: Path | None = None
        self.smooth: int | None = None
        self.readout: str | None = None
        self._predictions: OrderedDict[Path, np.ndarray] = OrderedDict()

    @property
    def clusters(self) -> int:
        return int(self.loaded.config.clusters) if self.loaded is not None else 0

    @property
    def bands(self) -> int:
        return int(self.loaded.config.in_channels) if self.loaded is not None else 0

    @property
    def default_smooth(self) -> int:
        """The loaded model's own read-out window (0 = plain argmax, also without a model)."""
        return read_out_window(self.loaded, None)

    @property
    def effective_smooth(self) -> int:
        """The window predictions are made with now (0 = plain argmax)."""
        return read_out_window(self.loaded, self.smooth)

    def set_smooth(self, smooth: int | None) -> None:
        """None = the model's window, 0 = off, odd N ≥ 3 = N×N (AcsegError otherwise)."""
        if smooth is not None:
            from acseg_core.model.refine import check_window

            smooth = read_out_window(None, check_window(int(smooth)))
        if smooth == self.smooth:
            return
        before = self.effective_smooth
        self.smooth = smooth
        if self.effective_smooth != before:
            self._predictions.clear()  # maps of another window
        self.smooth_changed.emit()

    @property
    def has_fitted_readout(self) -> bool:
        """Whether the loaded model has a fitted k-means read-out (False without a model)."""
        return model_has_fitted_readout(self.loaded)

    @property
    def default_readout(self) -> str:
        """The read-out the loaded model uses by itself: ``"kmeans"`` or ``"head"``."""
        return read_out_kind(self.loaded, None)

    @property
    def effective_readout(self) -> str:
        """The read-out predictions are made with now: ``"kmeans"`` or ``"head"``."""
        return read_out_kind(self.loaded, self.readout)

    def set_readout(self, readout: str | None) -> None:
        """None = the model's read-out, ``"head"`` = plain AC, ``"kmeans"`` = the fitted
        k-means read-out (AcsegError for another name, or k-means for a model without
        a fitted one)."""
        if readout is not None and readout not in READOUTS:
            raise AcsegError(f"unknown read-out {readout!r} (choose from {', '.join(READOUTS)})")
        if readout == "kmeans" and not self.has_fitted_readout:
            raise AcsegError("this model has no fitted k-means read-out")
        if readout == self.readout:
            return
        before = self.effective_readout
        self.readout = readout
        if self.effective_readout != before:
            self._predictions.clear()  # maps of another read-out
        self.readout_changed.emit()

    def set_model(self, loaded: Any, path: Path | None) -> None:
        self.loaded = loaded
        self.model_path = path
        if self.readout == "kmeans" and not model_has_fitted_readout(loaded):
            self.readout = None  # not offered for this model (model_changed refreshes views)
        self._predictions.clear()
        self.model_changed.emit()

    def prediction(self, image: Path) -> np.ndarray | None:
        found = self._predictions.get(image)
        if found is not None:
            self._predictions.move_to_end(image)
        return found

    def has_prediction(self, image: Path) -> bool:
        return image in self._predictions

    def add_prediction(self, image: Path, clusters: np.ndarray) -> None:
        self._predictions[image] = clusters
        self._predictions.move_to_end(image)
        while len(self._predictions) > 1 and (
            len(self._predictions) > self.MAX_CACHED
            or sum(a.nbytes for a in self._predictions.values()) > self.MAX_CACHED_BYTES
        ):
            self._predictions.popitem(last=False)  # least recently used first
        self.prediction_ready.emit(image)


def read_out_window(loaded: Any, smooth: int | None) -> int:
    """The window ``predict(loaded, ..., smooth=smooth)`` applies: None = the model's
    ``config.smooth``; 0 (and 1, no filter) = plain argmax."""
    if smooth is None:
        smooth = int(getattr(getattr(loaded, "config", None), "smooth", 0) or 0)
    return smooth if smooth > 1 else 0


def model_has_fitted_readout(loaded: Any) -> bool:
    """Whether ``loaded`` (a LoadedModel or None) carries a fitted k-means read-out."""
    return bool(getattr(getattr(loaded, "model", None), "has_fitted_readout", False))


def read_out_kind(loaded: Any, readout: str | None) -> str:
    """The read-out ``predict(loaded, ..., readout=readout)`` applies, as the core
    decides: the fitted k-means read-out unless ``"head"`` is asked for (None = the
    model's ``config.readout``); the head when the model has no fitted read-out."""
    if readout is None:
        readout = str(getattr(getattr(loaded, "config", None), "readout", "head") or "head")
    return "kmeans" if readout == "kmeans" and model_has_fitted_readout(loaded) else "head"


# -- document (unsaved changes) ---------------------------------------------------------
class DocumentModel(QObject):
    """Where the project lives and whether it has unsaved changes."""

    dirty_changed = Signal(bool)
    path_changed = Signal(object)  # Path | None

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.path: Path | None = None
        self.dirty = False

    def mark_dirty(self) -> None:
        if not self.dirty:
            self.dirty = True
            self.dirty_changed.emit(True)

    def mark_clean(self) -> None:
        if self.dirty:
            self.dirty = False
            self.dirty_changed.emit(False)

    def set_path(self, path: Path | None) -> None:
        if path != self.path:
            self.path = path
            self.path_changed.emit(path)
