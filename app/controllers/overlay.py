"""Draws the cluster or class overlay for the current image and keeps it in step.

The overlay is built at the preview's resolution (nearest-neighbour), coloured
through a 256-entry lookup table: remapping a cluster or hiding one re-colours
without touching the model or its cached predictions.
"""

from __future__ import annotations

from pathlib import Path

from PySide6.QtCore import QObject

from acseg_core.io.display import resize_labels_nearest
from acseg_core.labelling.classes import colourise
from app.canvas import ImageCanvas
from app.controllers.viewer import ImageViewController
from app.imaging import rgba_to_qimage
from app.models import ClassesModel, ImageListModel, OverlayModel, SessionModel


class OverlayController(QObject):
    def __init__(
        self,
        canvas: ImageCanvas,
        viewer: ImageViewController,
        images: ImageListModel,
        session: SessionModel,
        overlay: OverlayModel,
        classes: ClassesModel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.canvas, self.viewer, self.images = canvas, viewer, images
        self.session, self.overlay, self.classes = session, overlay, classes
        self._labels_for: Path | None = None
        self._labels = None
        overlay.changed.connect(self.refresh)
        classes.changed.connect(self.refresh)
        session.model_changed.connect(self._invalidate)
        session.prediction_ready.connect(self._prediction_ready)
        viewer.image_shown.connect(lambda _info: self._invalidate())

    def _invalidate(self) -> None:
        self._labels_for, self._labels = None, None
        self.refresh()

    def _prediction_ready(self, image: Path) -> None:
        if image == self.images.current:
            self._invalidate()

    def refresh(self) -> None:
        image = self.images.current
        clusters = self.session.prediction(image) if image is not None else None
        if clusters is None or self.viewer.preview is None:
            self.canvas.set_overlay(None)
            self.classes.set_cluster_shares(None)
            return
        if self._labels_for != image or self._labels is None:
            self._labels = resize_labels_nearest(clusters, tuple(self.viewer.preview_shape))
            self._labels_for = image
            self.classes.set_cluster_shares(self._labels)
        if self.overlay.mode == OverlayModel.CLASSES:
            lut = self.classes.class_lut(self.overlay.hidden)
        else:
            lut = self.classes.cluster_lut(self.overlay.hidden)
        self.canvas.set_overlay(rgba_to_qimage(colourise(self._labels, lut)), self.overlay.opacity)
        self.canvas.set_overlay_visible(self.overlay.visible)
