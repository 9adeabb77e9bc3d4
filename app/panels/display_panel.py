"""Display panel: band → R/G/B mapping with presets, percentile stretch, overlay settings."""

from __future__ import annotations

from PySide6.QtCore import Qt
from PySide6.QtWidgets import (
    QCheckBox,
    QComboBox,
    QDoubleSpinBox,
    QFormLayout,
    QGroupBox,
    QHBoxLayout,
    QSlider,
    QSpinBox,
    QVBoxLayout,
    QWidget,
)

from app.models import DISPLAY_PRESETS, DisplayModel, OverlayModel


class DisplayPanel(QWidget):
    """A thin view: widgets write to the models, model signals refresh the widgets."""

    def __init__(
        self, display: DisplayModel, overlay: OverlayModel, parent: QWidget | None = None
    ) -> None:
        super().__init__(parent)
        self.display, self.overlay = display, overlay

        bands_box = QGroupBox("Bands", self)
        self.preset = QComboBox(bands_box)
        self.band_spins = [QSpinBox(bands_box) for _ in range(3)]
        row = QHBoxLayout()
        for spin, name in zip(self.band_spins, "RGB", strict=True):
            spin.setPrefix(f"{name} ")
            spin.setMinimum(1)
            spin.valueChanged.connect(self._bands_edited)
            row.addWidget(spin)
        self.low = QDoubleSpinBox(bands_box)
        self.high = QDoubleSpinBox(bands_box)
        for spin in (self.low, self.high):
            spin.setRange(0.0, 100.0)
            spin.setDecimals(1)
            spin.setSingleStep(0.5)
            spin.setSuffix(" %")
            spin.valueChanged.connect(self._stretch_edited)
        stretch = QHBoxLayout()
        stretch.addWidget(self.low)
        stretch.addWidget(self.high)
        form = QFormLayout(bands_box)
        form.addRow("Preset", self.preset)
        form.addRow("Mapping", row)
        form.addRow("Stretch", stretch)
        self.preset.activated.connect(self._preset_chosen)

        overlay_box = QGroupBox("Overlay", self)
        self.show_overlay = QCheckBox("Show (O)", overlay_box)
        self.mode = QComboBox(overlay_box)
        self.mode.addItem("Clusters", OverlayModel.CLUSTERS)
        self.mode.addItem("Classes", OverlayModel.CLASSES)
        self.opacity = QSlider(Qt.Orientation.Horizontal, overlay_box)
        self.opacity.setRange(0, 100)
        oform = QFormLayout(overlay_box)
        oform.addRow(self.show_overlay)
        oform.addRow("Colour by", self.mode)
        oform.addRow("Opacity", self.opacity)
        self.show_overlay.toggled.connect(overlay.set_visible)
        self.mode.activated.connect(lambda i: overlay.set_mode(self.mode.itemData(i)))
        self.opacity.valueChanged.connect(lambda v: overlay.set_opacity(v / 100.0))

        layout = QVBoxLayout(self)
        layout.addWidget(bands_box)
        layout.addWidget(overlay_box)
        layout.addStretch(1)
        display.changed.connect(self._refresh)
        overlay.changed.connect(self._refresh)
        self._refresh()

    def _refresh(self) -> None:
        widgets = [self.preset, *self.band_spins, self.low, self.high]
        widgets += [self.show_overlay, self.mode, self.opacity]
        for w in widgets:
            w.blockSignals(True)
        self.preset.clear()
        self.preset.addItem("Custom")
        self.preset.addItems(self.display.presets())
        for name in self.display.presets():
            if DISPLAY_PRESETS[name] == self.display.bands:
                self.preset.setCurrentText(name)
        for spin, band in zip(self.band_spins, self.display.bands, strict=True):
            spin.setMaximum(self.display.band_count)
            spin.setValue(band)
        self.low.setValue(self.display.low_percent)
        self.high.setValue(self.display.high_percent)
        self.show_overlay.setChecked(self.overlay.visible)
        self.mode.setCurrentIndex(self.mode.findData(self.overlay.mode))
        self.opacity.setValue(round(self.overlay.opacity * 100))
        for w in widgets:
            w.blockSignals(False)

    def _preset_chosen(self, index: int) -> None:
        name = self.preset.itemText(index)
        if name != "Custom":
            self.display.apply_preset(name)

    def _bands_edited(self) -> None:
        self.display.set_bands(tuple(s.value() for s in self.band_spins))  # type: ignore[arg-type]

    def _stretch_edited(self) -> None:
        self.display.set_percentiles(self.low.value(), self.high.value())
