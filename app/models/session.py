"""The loaded model, the read-out chosen for it, and the maps predicted with them.

The read-out is one core value (:class:`~acseg_core.model.readouts.ReadOut`; the
model's own by default). Maps are cached in memory by (image, key), the key naming the
model file and the resolved read-out (:func:`~acseg_core.inference.cache.prediction_key`),
so switching back to an earlier read-out shows its maps at once and a retrained model
never shows a map of its predecessor. The cache is an LRU bounded in images and bytes.
"""

from __future__ import annotations

from collections import OrderedDict
from pathlib import Path

import numpy as np
from PySide6.QtCore import QObject, Signal

from acseg_core.errors import AcsegError
from acseg_core.inference.cache import prediction_key
from acseg_core.model.checkpoint import LoadedModel
from acseg_core.model.readouts import MODEL_DEFAULT, ReadOut, available_kinds


class SessionModel(QObject):
    model_changed = Signal()
    readout_changed = Signal()
    prediction_ready = Signal(object)  # Path: a map of the current key arrived

    MAX_CACHED = 24  # maps
    MAX_CACHED_BYTES = 1 << 30  # uint8 H×W maps: 1 GiB ≈ ten 10000² images

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self.loaded: LoadedModel | None = None
        self.model_path: Path | None = None
        self.readout: ReadOut = MODEL_DEFAULT
        self._maps: OrderedDict[tuple[Path, str], np.ndarray] = OrderedDict()

    # -- the model ---------------------------------------------------------------------
    @property
    def clusters(self) -> int:
        return int(self.loaded.config.clusters) if self.loaded is not None else 0

    @property
    def bands(self) -> int:
        return int(self.loaded.config.in_channels) if self.loaded is not None else 0

    def set_model(self, loaded: LoadedModel | None, path: Path | None) -> None:
        """A new model (or none); a read-out it does not have falls back to its own."""
        self.loaded = loaded
        self.model_path = path
        if self.readout.kind is not None and self.readout.kind not in self.available_kinds:
            self.readout = ReadOut(None, self.readout.smooth)
        self.model_changed.emit()

    # -- the read-out ------------------------------------------------------------------
    @property
    def available_kinds(self) -> tuple[str, ...]:
        return available_kinds(self.loaded) if self.loaded is not None else ()

    @property
    def model_readout(self) -> ReadOut | None:
        """What the model applies by itself (None without a model)."""
        return MODEL_DEFAULT.resolve(self.loaded) if self.loaded is not None else None

    def set_readout(self, readout: ReadOut) -> None:
        """Choose the read-out (AcsegError for one the model cannot apply)."""
        if self.loaded is not None:
            readout.resolve(self.loaded)
        elif readout.kind is not None:
            raise AcsegError("load a model before choosing its read-out")
        if readout != self.readout:
            self.readout = readout
            self.readout_changed.emit()

    @property
    def key(self) -> str | None:
        """The cache key of maps made now (None without a model)."""
        if self.loaded is None:
            return None
        return prediction_key(self.loaded, self.readout)

    # -- cached maps -------------------------------------------------------------------
    def clear_maps(self) -> None:
        """Another project: its images' maps are of no use, their memory is."""
        self._maps.clear()

    def prediction(self, image: Path | None) -> np.ndarray | None:
        key = self.key
        if image is None or key is None:
            return None
        found = self._maps.get((image, key))
        if found is not None:
            self._maps.move_to_end((image, key))
        return found

    def prediction_for(self, image: Path, key: str) -> np.ndarray | None:
        """A map made as ``key`` (another model's, say), if still held."""
        return self._maps.get((image, key))

    def has_prediction(self, image: Path) -> bool:
        key = self.key
        return key is not None and (image, key) in self._maps

    def add_prediction(self, image: Path, key: str, ids: np.ndarray) -> None:
        """A map made as ``key``; announced when it is what the session shows now."""
        self._maps[(image, key)] = ids
        self._maps.move_to_end((image, key))
        while len(self._maps) > 1 and (
            len(self._maps) > self.MAX_CACHED
            or sum(a.nbytes for a in self._maps.values()) > self.MAX_CACHED_BYTES
        ):
            self._maps.popitem(last=False)  # least recently used first
        if key == self.key:
            self.prediction_ready.emit(image)
