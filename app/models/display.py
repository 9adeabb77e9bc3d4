"""How the current image and its overlay are drawn (display only, never the pixels)."""

from __future__ import annotations

from PySide6.QtCore import QObject, Signal

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
