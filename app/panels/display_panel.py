"""Display panel: band → R/G/B mapping with presets, percentile stretch, overlay settings,
and the prediction's read-out: which read-out (the model's own, or any the model carries,
listed by the core) and the majority window (the model's own, off, or custom)."""

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

from acseg_core.model.readouts import READOUTS, ReadOut
from app.models import DISPLAY_PRESETS, DisplayModel, OverlayModel, SessionModel

SMOOTH_DEFAULT, SMOOTH_OFF, SMOOTH_CUSTOM = "default", "off", "custom"
CUSTOM_SMOOTH = 9  # px, what the custom window starts at
READOUT_DEFAULT = "default"


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
        self.readout_choice.setSizeAdjustPolicy(QComboBox.SizeAdjustPolicy.AdjustToContents)
        self.readout_choice.setToolTip(
            "How pixels become clusters: the network's own K-way head (plain AC), or a "
            "read-out fitted after training and stored in the model file."
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
        pform.addRow("Window", self.smooth_size)  # shown only for a custom window
        self.prediction_form = pform
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
        """Choices: the model's own, then every read-out the model can apply."""
        combo = self.readout_choice
        combo.clear()
        own = self.session.model_readout
        label = "Model default" + (f" ({READOUTS[own.kind].label})" if own is not None else "")
        combo.addItem(label, READOUT_DEFAULT)
        for kind in self.session.available_kinds:
            combo.addItem(READOUTS[kind].label, kind)
        chosen = self.session.readout.kind
        combo.setCurrentIndex(max(0, combo.findData(READOUT_DEFAULT if chosen is None else chosen)))

    def _readout_chosen(self, index: int) -> None:
        choice = self.readout_choice.itemData(index)
        kind = None if choice == READOUT_DEFAULT else choice
        self._set(ReadOut(kind, self.session.readout.smooth))

    def _refresh_smoothing(self) -> None:
        own = self.session.model_readout
        if own is None:
            label = "Model default"
        else:
            label = f"Model default ({own.smooth} px)" if own.smooth else "Model default (off)"
        self.smoothing.setItemText(self.smoothing.findData(SMOOTH_DEFAULT), label)
        smooth = self.session.readout.smooth
        if smooth is None:
            choice = SMOOTH_DEFAULT
        elif smooth == 0:
            choice = SMOOTH_OFF
        else:
            choice = SMOOTH_CUSTOM
            self.smooth_size.setValue(smooth)
        if choice != SMOOTH_CUSTOM and own is not None and own.smooth:
            # a custom window starts from the one in use, never a stale other number
            self.smooth_size.setValue(own.smooth)
        self.smoothing.setCurrentIndex(self.smoothing.findData(choice))
        self.smooth_size.setEnabled(choice == SMOOTH_CUSTOM)
        # only a custom window has a width to set: no greyed number beside another one
        self.prediction_form.setRowVisible(self.smooth_size, choice == SMOOTH_CUSTOM)

    def _smoothing_chosen(self, index: int) -> None:
        choice = self.smoothing.itemData(index)
        smooth = {SMOOTH_DEFAULT: None, SMOOTH_OFF: 0}.get(choice)
        if choice == SMOOTH_CUSTOM:
            smooth = self._odd_size()
        self._set(ReadOut(self.session.readout.kind, smooth))

    def _smooth_size_edited(self) -> None:
        if self.smoothing.currentData() == SMOOTH_CUSTOM:
            self._set(ReadOut(self.session.readout.kind, self._odd_size()))

    def _set(self, readout: ReadOut) -> None:
        self.session.set_readout(readout)
        self._refresh()  # also when nothing changed (re-enables the window size)

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
