"""The project's view state: band mapping, stretch, overlay, read-out, current image.

Kept in the project (``Project.display``) and written through on every change, so a
save needs no sync step; a change of view alone is no unsaved work (the core does not
count it as dirty). :meth:`ViewState.apply` brings a project's settings back when it
is opened; a bad value there is ignored (a convenience, not data).
"""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject

from acseg_core.errors import AcsegError
from acseg_core.model.readouts import ReadOut
from app.models.display import DisplayModel, OverlayModel
from app.models.document import DocumentModel
from app.models.images import ImageListModel
from app.models.session import SessionModel


class ViewState(QObject):
    def __init__(
        self,
        document: DocumentModel,
        images: ImageListModel,
        session: SessionModel,
        display: DisplayModel,
        overlay: OverlayModel,
        parent: QObject | None = None,
    ) -> None:
        super().__init__(parent)
        self.document, self.images, self.session = document, images, session
        self.display, self.overlay = display, overlay
        self._applying = False
        for signal in (display.changed, overlay.changed, session.readout_changed):
            signal.connect(self.store)
        images.current_changed.connect(lambda _i: self.store())

    def settings(self) -> dict[str, Any]:
        readout = self.session.readout
        return {
            "bands": list(self.display.bands),
            "stretch": [self.display.low_percent, self.display.high_percent],
            "overlay": {
                "visible": self.overlay.visible,
                "opacity": self.overlay.opacity,
                "mode": self.overlay.mode,
                "hidden": sorted(self.overlay.hidden),
            },
            "readout": readout.to_dict(),
            "current": self.images.current_index,
        }

    def store(self) -> None:
        if not self._applying:
            self.document.project.set_display(self.settings())

    def apply(self, settings: dict[str, Any]) -> None:
        """An opened project's settings; a bad value is ignored."""
        self._applying = True
        try:
            self._apply(settings)
        finally:
            self._applying = False
        self.store()

    def _apply(self, settings: dict[str, Any]) -> None:
        overlay = settings.get("overlay", {})
        try:
            self.overlay.set_opacity(float(overlay.get("opacity", self.overlay.opacity)))
            self.overlay.set_mode(str(overlay.get("mode", self.overlay.mode)))
            self.overlay.set_visible(bool(overlay.get("visible", True)))
            for cluster in overlay.get("hidden", []):
                self.overlay.set_cluster_visible(int(cluster), False)
            low, high = settings.get("stretch", [2.0, 98.0])
            self.display.set_percentiles(float(low), float(high))
            bands = settings.get("bands")
            if bands and len(bands) == 3:
                self.display.set_bands(tuple(int(b) for b in bands))  # type: ignore[arg-type]
            readout = settings.get("readout") or {}
            self.session.set_readout(ReadOut(readout.get("kind"), readout.get("smooth")))
        except (TypeError, ValueError, AttributeError, AcsegError):
            pass
        current = settings.get("current", 0)
        if isinstance(current, int) and 0 <= current < len(self.images.images):
            self.images.set_current(current)
