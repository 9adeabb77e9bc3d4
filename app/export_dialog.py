"""Export dialog: which images, which formats, where. It only gathers an ``ExportRequest``."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import qtawesome as qta
from PySide6.QtWidgets import (
    QCheckBox,
    QDialog,
    QDialogButtonBox,
    QFileDialog,
    QFormLayout,
    QHBoxLayout,
    QLineEdit,
    QPushButton,
    QRadioButton,
    QVBoxLayout,
    QWidget,
)


@dataclass(frozen=True)
class ExportRequest:
    scope: str  # "current" | "all"
    formats: tuple[str, ...]  # subset of acseg_core.labelling.export.FORMATS
    out_dir: Path


class ExportDialog(QDialog):
    def __init__(self, last: ExportRequest, image_count: int, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle("Export labels")
        self.setWindowIcon(qta.icon("fa5s.file-download"))
        self.current = QRadioButton("Current image", self)
        self.all = QRadioButton(f"All images ({image_count})", self)
        (self.all if last.scope == "all" else self.current).setChecked(True)
        scope = QVBoxLayout()
        scope.addWidget(self.current)
        scope.addWidget(self.all)
        self.png = QCheckBox("Palette PNG + labelmap.txt (CVAT)", self)
        self.tif = QCheckBox("Cloud-Optimised GeoTIFF + class names (georeferenced images)", self)
        self.gpkg = QCheckBox("Polygons, GeoPackage (georeferenced images)", self)
        self.csv = QCheckBox("Class areas, areas.csv (pixels, m², ha)", self)
        self.color = QCheckBox("Colour preview PNG", self)
        self.boxes = {"png": self.png, "tif": self.tif, "gpkg": self.gpkg, "csv": self.csv,
                      "color": self.color}  # fmt: skip
        for name, box in self.boxes.items():
            box.setChecked(name in last.formats)
        formats = QVBoxLayout()
        for box in self.boxes.values():
            formats.addWidget(box)
            box.toggled.connect(self._validate)
        self.folder = QLineEdit(str(last.out_dir), self)
        self.folder.setMinimumWidth(380)  # the whole path, not its tail
        self.folder.setToolTip(str(last.out_dir))
        self.folder.textChanged.connect(self._validate)
        self.folder.textChanged.connect(self.folder.setToolTip)
        browse = QPushButton(qta.icon("fa5s.folder-open"), "…", self)
        browse.clicked.connect(self._browse)
        folder = QHBoxLayout()
        folder.addWidget(self.folder, 1)
        folder.addWidget(browse)
        self.buttons = QDialogButtonBox(
            QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel, self
        )
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setText("Export")
        self.buttons.accepted.connect(self.accept)
        self.buttons.rejected.connect(self.reject)
        form = QFormLayout(self)
        form.addRow("Images", scope)
        form.addRow("Formats", formats)
        form.addRow("Folder", folder)
        form.addRow(self.buttons)
        self._validate()

    def _browse(self) -> None:
        chosen = QFileDialog.getExistingDirectory(self, "Export to", self.folder.text())
        if chosen:
            self.folder.setText(chosen)

    def _validate(self) -> None:
        ok = bool(self.request().formats) and bool(self.folder.text().strip())
        self.buttons.button(QDialogButtonBox.StandardButton.Ok).setEnabled(ok)

    def request(self) -> ExportRequest:
        formats = tuple(name for name, box in self.boxes.items() if box.isChecked())
        return ExportRequest(
            scope="all" if self.all.isChecked() else "current",
            formats=formats,
            out_dir=Path(self.folder.text().strip()),
        )
