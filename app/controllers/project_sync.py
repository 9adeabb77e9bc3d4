"""Between the project file and what the app shows (no Qt, no dialogs).

``push`` copies the models into the core :class:`~acseg_core.labelling.project.Project`
(before a save or an export); ``apply_display`` brings a project's display settings
back into the models when it is opened.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from acseg_core.labelling.project import Project
from app.models import ClassesModel, DisplayModel, ImageListModel, OverlayModel, SessionModel


class ProjectSync:
    def __init__(
        self,
        images: ImageListModel,
        session: SessionModel,
        classes: ClassesModel,
        display: DisplayModel,
        overlay: OverlayModel,
        learnt_base: Callable[[], tuple[Any, Any, Any] | None] = lambda: None,
    ) -> None:
        self.images, self.session, self.classes = images, session, classes
        self.display, self.overlay = display, overlay
        # (model path, config, class map) of the unsupervised model under a model learnt
        # from edits: the project file keeps that one, never the session-only learnt one
        self.learnt_base = learnt_base

    def push(self, project: Project) -> None:
        """Make ``project`` hold what the app shows (images in list order, model, classes,
        display settings)."""
        loaded = self.session.loaded
        model = (self.session.model_path, loaded.config if loaded is not None else None,
                 self.classes.class_map)  # fmt: skip
        model = self.learnt_base() or model
        project.sync(self.images.images, *model, self.display_settings())

    def display_settings(self) -> dict[str, Any]:
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
            "readout": {"kind": readout.kind, "smooth": readout.smooth},
            "current": self.images.current_index,
        }

    def apply_display(self, settings: dict[str, Any]) -> None:
        """Display settings of an opened project; a bad value is ignored (a convenience)."""
        from acseg_core.errors import AcsegError
        from acseg_core.inference.readout import ReadOut

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
