"""Shows the current image on the canvas, from a downsampled preview, per the display model.

The preview (≤ ``PREVIEW_MAX_SIDE`` px, from overviews when the file has them)
and its per-band percentiles are read once per image; a huge raster without overviews
(a decimated read that still takes seconds) is read on a worker thread behind a
placeholder, so the window never blocks on it; changing the band
mapping or stretch only re-renders that preview. Pixel values under the cursor
are read from the source as 1×1 windows.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

import numpy as np
from PySide6.QtCore import QObject, Signal
from PySide6.QtGui import QColor, QImage

from acseg_core.errors import AcsegError
from acseg_core.io.display import compose_rgb
from acseg_core.io.normalise import band_percentiles
from acseg_core.io.raster import Raster, RasterInfo, open_raster
from app.canvas import ImageCanvas
from app.imaging import rgb_to_qimage, rgba_to_qimage
from app.models import DisplayModel
from app.workers import JobRunner, JobWorker

PREVIEW_MAX_SIDE = 2048


def _placeholder(shape: tuple[int, int]) -> QImage:
    """A plain image of the preview's size, shown while a slow preview is read."""
    image = QImage(max(1, shape[1]), max(1, shape[0]), QImage.Format.Format_RGB888)
    image.fill(QColor(48, 48, 48))
    return image


class ImageViewController(QObject):
    image_shown = Signal(object)  # RasterInfo
    failed = Signal(str, object)  # title, exception

    def __init__(
        self,
        canvas: ImageCanvas,
        display: DisplayModel,
        parent: QObject | None = None,
        runner: JobRunner | None = None,
    ):
        super().__init__(parent)
        self.canvas = canvas
        self.display = display
        self.runner = runner  # reads slow previews off the GUI thread (None: in place)
        self._preview_job: JobWorker | None = None
        self.info: RasterInfo | None = None
        self.preview: np.ndarray | None = None
        self.preview_shape: tuple[int, int] = (0, 0)
        self._raster: Raster | None = None
        self._valid: np.ndarray | None = None
        self._limits_for: tuple[float, float] | None = None
        self._limits: tuple[np.ndarray, np.ndarray] | None = None
        self._suspended = False
        display.changed.connect(self.render)

    def show(self, path: Path | None) -> bool:
        """Open ``path`` and show it; on failure say why and keep the previous image."""
        if path is None:
            return False
        try:
            raster = open_raster(path)
            try:
                in_background = self.runner is not None and raster.preview_is_slow
                data = valid = None
                if not in_background:
                    data, _scale = raster.read_preview(PREVIEW_MAX_SIDE)
                    valid = raster.valid_mask(data)
            except AcsegError:
                raster.close()
                raise
        except AcsegError as exc:
            self.failed.emit("Cannot open image", exc)
            return False
        self.close()
        self._raster = raster
        self.info = raster.info
        self.preview, self._valid = data, valid
        self.preview_shape = raster.preview_shape(PREVIEW_MAX_SIDE)
        self._limits_for = None
        self._suspended = True  # panels hear about the new band count; one render below
        try:
            self.display.set_band_count(raster.info.count)
        finally:
            self._suspended = False
        if data is None:  # a huge raster without overviews: a placeholder until it is read
            self.canvas.set_image(_placeholder(self.preview_shape), self.info.width,
                                  self.info.height)  # fmt: skip
            self._read_preview_in_background(path)
        else:
            self.render(fit=True)
        self.image_shown.emit(raster.info)
        return True

    def _read_preview_in_background(self, path: Path) -> None:
        """The decimated preview of a huge raster, read on a worker thread (seconds: the
        window stays live); shown when it arrives if ``path`` is still the image."""

        def job(cancel: Any) -> Generator[Any, Any, Any]:
            with open_raster(path) as raster:  # its own handle: GDAL's are per thread
                data, _scale = raster.read_preview(PREVIEW_MAX_SIDE)
                return data, raster.valid_mask(data)
            yield  # a generator, like every job

        assert self.runner is not None
        worker = self.runner.start(job, name="preview")
        worker.succeeded.connect(lambda result: self._preview_read(path, result))
        worker.failed.connect(lambda title, message: self._preview_failed(path, message))
        self._preview_job = worker

    def _preview_read(self, path: Path, result: tuple[np.ndarray, np.ndarray]) -> None:
        if self.info is None or self.info.path != path or self.preview is not None:
            return  # another image is shown now
        self.preview, self._valid = result
        self.preview_shape = self.preview.shape[1:]
        self._limits_for = None
        self.render()
        self.image_shown.emit(self.info)  # the overlay is drawn over the real preview

    def _preview_failed(self, path: Path, message: str) -> None:
        if self.info is not None and self.info.path == path:
            self.failed.emit("Cannot open image", message)

    def render(self, fit: bool = False) -> None:
        if self._suspended or self.preview is None or self.info is None:
            return
        percents = (self.display.low_percent, self.display.high_percent)
        if self._limits_for != percents:
            self._limits = band_percentiles(self.preview, *percents, valid=self._valid)
            self._limits_for = percents
        assert self._limits is not None
        rgb = compose_rgb(self.preview, self.display.bands, self._limits)
        nodata = self._valid is not None and not self._valid.all()
        if nodata:  # transparent: the canvas hatches what lies under, never black
            assert self._valid is not None
            alpha = np.where(self._valid, 255, 0).astype(np.uint8)
            image = rgba_to_qimage(np.concatenate([np.moveaxis(rgb, 0, -1),
                                                   alpha[..., None]], axis=-1))  # fmt: skip
        else:
            image = rgb_to_qimage(rgb)
        if fit or not self.canvas.has_image:
            self.canvas.set_image(image, self.info.width, self.info.height)
        else:
            self.canvas.replace_image(image)
        self.canvas.set_has_nodata(nodata)

    def value_at(self, x: int, y: int) -> np.ndarray | None:
        """Source pixel values (all bands) at column ``x``, row ``y``."""
        if self._raster is None or self.info is None:
            return None
        if not (0 <= x < self.info.width and 0 <= y < self.info.height):
            return None
        try:
            return self._raster.read((x, y, 1, 1))[:, 0, 0]
        except AcsegError:
            return None

    def clear(self) -> None:
        """No image (a new, empty project)."""
        self.close()
        self.info, self.preview, self._valid = None, None, None
        self.canvas.clear()

    def close(self) -> None:
        if self._preview_job is not None:
            self._preview_job.cancel()  # its result is dropped: another image is shown
            self._preview_job = None
        if self._raster is not None:
            self._raster.close()
            self._raster = None
