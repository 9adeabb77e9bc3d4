"""Status bar read-outs: pixel position, map coordinates with the CRS and latitude/longitude
(where the CRS allows), pixel value, cluster/class, the model."""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np
from PySide6.QtCore import QObject, Qt
from PySide6.QtWidgets import QLabel, QStatusBar

from acseg_core.gis.crs import crs_name, format_lonlat, map_to_lonlat
from acseg_core.io.display import pixel_to_map
from acseg_core.io.raster import NODATA
from acseg_core.learning.fit import stroked_pixels
from app.controllers.viewer import ImageViewController
from app.models import ClassesModel, ImageListModel, SessionModel

MODEL_LABEL_WIDTH = 260  # px


def format_value(values: np.ndarray | None) -> str:
    if values is None:
        return ""
    if np.issubdtype(values.dtype, np.floating):
        return "value " + " ".join(f"{v:.4g}" for v in values)
    return "value " + " ".join(str(int(v)) for v in values)


class StatusReadout(QObject):
    def __init__(
        self,
        status_bar: QStatusBar,
        viewer: ImageViewController,
        images: ImageListModel,
        session: SessionModel,
        classes: ClassesModel,
        edit_at: Callable[[int, int], int | None],
    ) -> None:
        super().__init__(status_bar)
        self.viewer, self.images, self.session, self.classes = viewer, images, session, classes
        self.edit_at = edit_at  # (col, row) -> the hand-edit value there, None where none
        self._last: tuple[float, float] | None = None  # the cursor's source pixel
        self.position = QLabel(status_bar)
        self.map_xy = QLabel(status_bar)
        self.lonlat = QLabel(status_bar)
        self.value = QLabel(status_bar)
        self.cluster = QLabel(status_bar)
        self.model = QLabel(status_bar)
        self.model.setMaximumWidth(MODEL_LABEL_WIDTH)  # messages keep the rest of the bar
        for label in (self.cluster, self.value, self.map_xy, self.lonlat,
                      self.position, self.model):  # fmt: skip
            status_bar.addPermanentWidget(label)
        session.model_changed.connect(self._model_changed)
        self._model_changed()
        images.current_changed.connect(lambda _image: self.clear())  # no stale read-outs
        # a message longer than the bar is elided there: its whole text is the tooltip
        status_bar.messageChanged.connect(lambda text: status_bar.setToolTip(text))

    def clear(self) -> None:
        """The cursor left the image (or another image came): nothing stale stays."""
        self._last = None
        for label in (self.position, self.map_xy, self.lonlat, self.value, self.cluster):
            label.clear()

    def _model_changed(self) -> None:
        loaded, path = self.session.loaded, self.session.model_path
        if loaded is None or path is None:
            self.model.setText("no model")
            return
        config = loaded.config
        text = f"model {path.name} ({config.preset}, K={config.clusters})"
        detail = text
        strokes = loaded.meta.get("strokes") if isinstance(loaded.meta, dict) else None
        if strokes:
            counts = stroked_pixels(loaded)
            text = f"model {path.name} + strokes of {len(counts)} classes"
            per_class = "\n".join(f"  {n}: {c} px" for n, c in counts.items())
            detail = f"model {path.name} + strokes; stroked pixels per class:\n{per_class}"
        metrics = self.model.fontMetrics()  # short in the bar, whole in the tooltip
        self.model.setText(
            metrics.elidedText(text, Qt.TextElideMode.ElideMiddle, MODEL_LABEL_WIDTH)
        )
        self.model.setToolTip(f"{path}\n{detail}")

    def refresh(self) -> None:
        """Read the pixel under the cursor again (after a stroke changed it)."""
        if self._last is not None:
            self.cursor_moved(*self._last)

    def cursor_moved(self, x: float, y: float) -> None:
        info = self.viewer.info
        if math.isnan(x) or info is None:
            self.clear()
            return
        self._last = (x, y)
        col, row = int(x), int(y)
        self.position.setText(f"x {col}  y {row}")
        if info.georeferenced and info.transform is not None:
            mx, my = pixel_to_map(info.transform, col + 0.5, row + 0.5)
            self.map_xy.setText(f"E {mx:.2f}  N {my:.2f}  {crs_name(info.crs)}".rstrip())
            lonlat = map_to_lonlat(info.crs, mx, my)
            self.lonlat.setText(format_lonlat(*lonlat) if lonlat is not None else "")
        else:
            self.map_xy.clear()
            self.lonlat.clear()
        self.value.setText(format_value(self.viewer.value_at(col, row)))
        self.cluster.setText(self.cluster_text(col, row))

    def cluster_text(self, col: int, row: int) -> str:
        image = self.images.current
        clusters = self.session.prediction(image) if image is not None else None
        if clusters is None or not (0 <= row < clusters.shape[0] and 0 <= col < clusters.shape[1]):
            return ""
        cluster = int(clusters[row, col])
        if cluster == NODATA:
            return "no data"
        cls = self.classes.class_of(cluster)
        name = cls.name if cls is not None else "no class"
        edit = self.edit_at(col, row)
        if edit is not None:
            known = {c.id: c.name for c in self.classes.classes}
            return f"cluster {cluster} → {known.get(edit, 'no class')} (hand edit)"
        return f"cluster {cluster} → {name}"
