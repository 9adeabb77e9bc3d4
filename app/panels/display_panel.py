"""Display panel: band → R/G/B mapping with presets, percentile stretch, overlay settings,
and the prediction's read-out (the model's own, the AC head = plain AC, or the k-means
read-out on features + colour) and smoothing window (the model's own, off, or custom)."""

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

from app.models import DISPLAY_PRESETS, DisplayModel, OverlayModel, SessionModel

SMOOTH_DEFAULT, SMOOTH_OFF, SMOOTH_CUSTOM = "default", "off", "custom"
CUSTOM_SMOOTH = 9  # px, what the custom window starts at
READOUT_DEFAULT, READOUT_HEAD, READOUT_KMEANS = "default", "head", "kmeans"
READOUT_NAMES = {READOUT_HEAD: "AC head", READOUT_KMEANS: "features + colour k-means"}


class DisplayPanel(QWidget):
    """A thin view: widgets write to the models, model signals refresh the widgets."""

    def __init__(
        self,
        display: DisplayModel,
        overlay: OverlayModel,
        session: SessionModel,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.display, self.overlay, self.session = display, overlay, session

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

        prediction_box = QGroupBox("Prediction", self)
        self.readout_choice = QComboBox(prediction_box)
        self.readout_choice.addItem("Model default", READOUT_DEFAULT)
        self.readout_choice.addItem("AC head (plain AC)", READOUT_HEAD)
        self.readout_choice.addItem(READOUT_NAMES[READOUT_KMEANS], READOUT_KMEANS)
        self.readout_choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.readout_choice.setToolTip(
            "How pixels become clusters: the network's own K-way head (plain AC), or "
            "k-means on its learned features and the pixel values, fitted after training."
        )
        self.smoothing = QComboBox(prediction_box)
        self.smoothing.addItem("Model default", SMOOTH_DEFAULT)
        self.smoothing.addItem("Off", SMOOTH_OFF)
        self.smoothing.addItem("Custom window", SMOOTH_CUSTOM)
        self.smoothing.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.smoothing.setToolTip(
            "Majority filter over each pixel's window of the cluster map: "
            "fewer specks, smoother areas. Off shows the read-out's own clusters."
        )
        self.smooth_size = QSpinBox(prediction_box)
        self.smooth_size.setRange(3, 101)
        self.smooth_size.setSingleStep(2)  # odd windows only
        self.smooth_size.setSuffix(" px")
        self.smooth_size.setValue(CUSTOM_SMOOTH)
        self.smooth_size.setKeyboardTracking(False)  # one new prediction per typed value
        self.smooth_size.setToolTip("Width of the custom window (odd, in image pixels)")
        pform = QFormLayout(prediction_box)
        pform.addRow("Read-out", self.readout_choice)
        pform.addRow("Smoothing", self.smoothing)
        pform.addRow("Window", self.smooth_size)
        self.readout_choice.activated.connect(self._readout_chosen)
        self.smoothing.activated.connect(self._smoothing_chosen)
        self.smooth_size.valueChanged.connect(self._smooth_size_edited)

        layout = QVBoxLayout(self)
        layout.addWidget(bands_box)
        layout.addWidget(overlay_box)
        layout.addWidget(prediction_box)
        layout.addStretch(1)
        display.changed.connect(self._refresh)
        overlay.changed.connect(self._refresh)
        session.model_changed.connect(self._refresh)
        session.smooth_changed.connect(self._refresh)
        session.readout_changed.connect(self._refresh)
        self._refresh()

    def _refresh(self) -> None:
        widgets = [self.preset, *self.band_spins, self.low, self.high]
        widgets += [self.show_overlay, self.mode, self.opacity]
        widgets += [self.readout_choice, self.smoothing, self.smooth_size]
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
        self._refresh_readout()
        self._refresh_smoothing()
        for w in widgets:
            w.blockSignals(False)

    def _refresh_readout(self) -> None:
        combo = self.readout_choice
        label = "Model default"
        if self.session.loaded is not None:
            label += f" ({READOUT_NAMES[self.session.default_readout]})"
        combo.setItemText(combo.findData(READOUT_DEFAULT), label)
        kmeans = combo.findData(READOUT_KMEANS)
        fitted = self.session.has_fitted_readout
        combo.model().item(kmeans).setEnabled(fitted)  # type: ignore[attr-defined]
        combo.setItemData(
            kmeans,
            None if fitted else "This model has no fitted k-means read-out",
            Qt.ItemDataRole.ToolTipRole,
        )
        readout = self.session.readout
        combo.setCurrentIndex(combo.findData(READOUT_DEFAULT if readout is None else readout))

    def _readout_chosen(self, index: int) -> None:
        choice = self.readout_choice.itemData(index)
        if choice != READOUT_KMEANS or self.session.has_fitted_readout:  # else: disabled
            self.session.set_readout(None if choice == READOUT_DEFAULT else choice)
        self._refresh()  # also when nothing changed

    def _refresh_smoothing(self) -> None:
        default = self.session.default_smooth
        if self.session.loaded is None:
            label = "Model default"
        else:
            label = f"Model default ({default} px)" if default else "Model default (off)"
        self.smoothing.setItemText(self.smoothing.findData(SMOOTH_DEFAULT), label)
        smooth = self.session.smooth
        if smooth is None:
            choice = SMOOTH_DEFAULT
        elif smooth == 0:
            choice = SMOOTH_OFF
        else:
            choice = SMOOTH_CUSTOM
            self.smooth_size.setValue(smooth)
        self.smoothing.setCurrentIndex(self.smoothing.findData(choice))
        self.smooth_size.setEnabled(choice == SMOOTH_CUSTOM)

    def _smoothing_chosen(self, index: int) -> None:
        choice = self.smoothing.itemData(index)
        if choice == SMOOTH_CUSTOM:
            self.session.set_smooth(self._odd_size())
        else:
            self.session.set_smooth(None if choice == SMOOTH_DEFAULT else 0)
        self._refresh()  # also when nothing changed (re-enables the size)

    def _smooth_size_edited(self) -> None:
        size = self._odd_size()
        if self.smoothing.currentData() == SMOOTH_CUSTOM:
            self.session.set_smooth(size)

    def _odd_size(self) -> int:
        """The custom window, made odd (a typed even width goes up by one)."""
        size = self.smooth_size.value() | 1
        if size != self.smooth_size.value():
            self.smooth_size.blockSignals(True)
            self.smooth_size.setValue(size)
            self.smooth_size.blockSignals(False)
        return size

    def _preset_chosen(self, index: int) -> None:
        name = self.preset.itemText(index)
        if name != "Custom":
            self.display.apply_preset(name)

    def _bands_edited(self) -> None:
        self.display.set_bands(tuple(s.value() for s in self.band_spins))  # type: ignore[arg-type]

    def _stretch_edited(self) -> None:
        self.display.set_percentiles(self.low.value(), self.high.value())
