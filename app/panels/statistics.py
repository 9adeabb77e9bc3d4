"""Statistics panel: class areas of the current image or of the project, as the CSV has them.

The numbers come from the core (:mod:`acseg_core.gis.areas`): each image's map is
tallied once (:class:`MapTally`: cluster counts plus a histogram of its hand edits), so
remapping clusters or painting costs no pass over the pixels — a stroke recounts only
the edited tiles, a moment after it ends. The project table sums the images tallied so
far: those shown in this session, and, on *Count all*, the cached maps of the others
(read by windows in the background). Areas are in m²/ha where every image counted has
a projected CRS, in pixels otherwise; *Copy* puts the table on the clipboard as CSV.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from PySide6.QtCore import QTimer
from PySide6.QtGui import QGuiApplication
from PySide6.QtWidgets import (
    QComboBox,
    QHBoxLayout,
    QHeaderView,
    QLabel,
    QPushButton,
    QTableWidget,
    QTableWidgetItem,
    QVBoxLayout,
    QWidget,
)

from acseg_core.errors import AcsegError
from acseg_core.gis.areas import (
    AreaRow,
    ImageAreas,
    Totals,
    areas_csv_text,
    image_rows,
)
from acseg_core.gis.crs import pixel_area_m2
from acseg_core.gis.legend import Legend
from acseg_core.io.raster import probe
from acseg_core.jobs import Progress
from acseg_core.labelling.tally import MapTally
from app.models import ClassesModel, ImageListModel, SessionModel

REFRESH_MS = 250  # after a stroke or a remap: one recount, not one per mouse move
CURRENT, PROJECT = "Current image", "Project"


@dataclass
class _Tally:
    key: str  # the session key the map was made with
    source: int  # id() of the in-memory map, or 0 for a file
    tally: MapTally
    pixel_m2: float | None


class StatisticsPanel(QWidget):
    def __init__(
        self,
        images: ImageListModel,
        session: SessionModel,
        classes: ClassesModel,
        edits_for: Callable[[Path], Any],
        cached_file: Callable[[Path], Path | None],
        runner: Any,
        parent: QWidget | None = None,
    ) -> None:
        super().__init__(parent)
        self.images, self.session, self.classes = images, session, classes
        self.edits_for, self.cached_file, self.runner = edits_for, cached_file, runner
        self.tallies: dict[Path, _Tally] = {}
        self._pixel_m2: dict[Path, float | None] = {}
        self._worker: Any = None

        self.scope = QComboBox(self)
        self.scope.addItems([CURRENT, PROJECT])
        self.scope.currentIndexChanged.connect(lambda _i: self.refresh())
        self.count_all = QPushButton("Count all", self)
        self.count_all.setToolTip("Tally the cached maps of images not shown yet (background)")
        self.count_all.clicked.connect(self.count_cached)
        self.copy = QPushButton("Copy", self)
        self.copy.setToolTip("Copy the table as CSV (the columns of areas.csv)")
        self.copy.clicked.connect(self.copy_csv)
        top = QHBoxLayout()
        top.addWidget(self.scope, 1)
        top.addWidget(self.count_all)
        top.addWidget(self.copy)
        self.table = QTableWidget(0, 4, self)
        self.table.verticalHeader().setVisible(False)
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.table.setEditTriggers(QTableWidget.EditTrigger.NoEditTriggers)
        self.note = QLabel(self)
        self.note.setWordWrap(True)
        layout = QVBoxLayout(self)
        layout.addLayout(top)
        layout.addWidget(self.table, 1)
        layout.addWidget(self.note)

        self._timer = QTimer(self)
        self._timer.setSingleShot(True)
        self._timer.setInterval(REFRESH_MS)
        self._timer.timeout.connect(self.refresh)
        self._edits_stale = False
        images.current_changed.connect(lambda _i: self.schedule())
        session.prediction_ready.connect(lambda _p: self.schedule())
        for signal in (session.model_changed, session.readout_changed):
            signal.connect(self.schedule)
        classes.changed.connect(self.schedule)
        self.refresh()

    # -- triggers ---------------------------------------------------------------------
    def schedule(self) -> None:
        self._timer.start()

    def edited(self, *_args: Any) -> None:
        """The current image's hand edits changed: recount them (only their tiles)."""
        self._edits_stale = True
        self.schedule()

    # -- numbers --------------------------------------------------------------------
    def current_areas(self) -> ImageAreas | None:
        """The current image's areas under the current class map (None without a map)."""
        image = self.images.current
        return self._areas(image) if image is not None else None

    def project_areas(self) -> list[ImageAreas]:
        """Areas of every image of the project tallied so far (the current one up to date)."""
        self.current_areas()
        return [a for a in (self._areas(p, update=False) for p in self.images.images) if a]

    def _areas(self, image: Path, update: bool = True) -> ImageAreas | None:
        key = self.session.key
        entry = self.tallies.get(image)
        clusters = self.session.prediction(image) if update else None
        if key is None:
            return None
        if clusters is not None and (entry is None or entry.key != key
                                     or entry.source != id(clusters)):  # fmt: skip
            entry = _Tally(key, id(clusters), MapTally.of(clusters, self.edits_for(image)),
                           self._pixel_area(image))  # fmt: skip
            self.tallies[image] = entry
            self._edits_stale = False
        elif clusters is not None and self._edits_stale and entry is not None:
            entry.tally.recount_edits(clusters, self.edits_for(image))
            self._edits_stale = False
        if entry is None or entry.key != key:
            return None
        counts = entry.tally.export_counts(self.classes.class_map)
        return ImageAreas(image.name, counts, entry.pixel_m2)

    def _pixel_area(self, image: Path) -> float | None:
        if image not in self._pixel_m2:
            try:
                info = probe(image)
                self._pixel_m2[image] = pixel_area_m2(info.crs, info.transform)
            except AcsegError:
                self._pixel_m2[image] = None
        return self._pixel_m2[image]

    # -- view ----------------------------------------------------------------------------
    def refresh(self) -> None:
        legend = Legend.from_class_map(self.classes.class_map)
        project = self.scope.currentText() == PROJECT
        if project:
            areas = self.project_areas()
            totals = Totals()
            for item in areas:
                totals.add(item)
            rows = totals.rows(legend, "project") if areas else []
            metric = bool(areas) and totals.m2 is not None
            counted = len(areas)
            note = f"{counted} of {len(self.images.images)} image(s) counted"
            self.count_all.setEnabled(bool(self._uncounted()) and not self._counting)
        else:
            current = self.current_areas()
            rows = image_rows(current, legend) if current is not None else []
            metric = current is not None and current.pixel_m2 is not None
            note = "" if current is not None else "No map of this image yet."
            if current is not None and not metric:
                note = "No projected CRS: areas in pixels."
            self.count_all.setEnabled(False)
        self._fill(rows, metric)
        self.note.setText(note)
        self.copy.setEnabled(bool(rows))

    def _fill(self, rows: list[AreaRow], metric: bool) -> None:
        ha = metric and sum(r.area_m2 or 0.0 for r in rows) >= 10000.0
        unit = "ha" if ha else "m²"
        self.table.setHorizontalHeaderLabels(
            ["Class", "Pixels", f"Area ({unit})" if metric else "Area", "Share %"]
        )
        self.table.setRowCount(len(rows))
        for i, row in enumerate(rows):
            area = "" if row.area_m2 is None else (
                f"{row.area_m2 / 10000.0:,.4f}" if ha else f"{row.area_m2:,.2f}"
            )
            cells = (row.class_name, f"{row.pixels:,}", area, f"{row.share_pct:.2f}")
            for j, text in enumerate(cells):
                self.table.setItem(i, j, QTableWidgetItem(text))

    def copy_csv(self) -> None:
        legend = Legend.from_class_map(self.classes.class_map)
        if self.scope.currentText() == PROJECT:
            areas = self.project_areas()
        else:
            current = self.current_areas()
            areas = [current] if current is not None else []
        QGuiApplication.clipboard().setText(areas_csv_text(areas, legend))

    # -- counting cached maps in the background ----------------------------------------------
    @property
    def _counting(self) -> bool:
        return self._worker is not None and self._worker.running

    def _uncounted(self) -> list[tuple[Path, Path]]:
        key = self.session.key
        todo = []
        for image in self.images.images:
            entry = self.tallies.get(image)
            if key is not None and (entry is None or entry.key != key):
                cached = self.cached_file(image)
                if cached is not None and cached.exists():
                    todo.append((image, cached))
        return todo

    def count_cached(self) -> Any:
        """Tally the cached maps of images not counted yet, in the background."""
        todo, key = self._uncounted(), self.session.key
        if not todo or key is None or self._counting or self.runner is None:
            return None
        jobs = [(image, path, _snapshot(self.edits_for(image))) for image, path in todo]

        def job(cancel: Any) -> Any:
            done: dict[Path, MapTally] = {}
            for n, (image, path, edits) in enumerate(jobs):
                if cancel:
                    break
                done[image] = MapTally.of_file(path, edits)
                yield Progress(n + 1, len(jobs), f"Counting {image.name}")
            return done

        def finished(result: Any) -> None:
            for image, tally in (result or {}).items():
                self.tallies[image] = _Tally(key, 0, tally, self._pixel_area(image))
            self.refresh()

        self._worker = self.runner.start(job, "statistics")
        self._worker.succeeded.connect(finished)
        self._worker.cancelled.connect(finished)
        self._worker.ended.connect(self.refresh)
        self.refresh()
        return self._worker


def _snapshot(edits: Any) -> Any:
    """A copy of an edit layer for a worker thread (painting may go on meanwhile)."""
    return edits.copy() if edits is not None else None


__all__ = ["StatisticsPanel"]
