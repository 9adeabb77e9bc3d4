"""Brush and undo benchmark on a 10000×10000 image: ``python -m app.bench [--json]``;
a stroke → learn → repainted view benchmark: ``python -m app.bench --live``.

Offscreen. A synthetic tiled GeoTIFF and a fake cluster map of the same size are
made on the fly (no model run); the main window opens the image at 1:1 zoom and
strokes are sent as mouse events to the canvas viewport — the very path a mouse
takes (canvas → tool → editing controller → edit layer → edits item). Each dab is
timed including its repaint: the changed viewport rectangle is repainted
synchronously (``viewport().repaint(rect)``) and pending events are processed.

Prints ``brush_dab_ms`` (median per dab), ``undo_ms`` (median over undoing whole
200-dab strokes, repaint included) and a few more figures.

``--live``: a 1000×1000 image and an untrained ``cpu-small`` model of the real size
(its speed is the point, not its map) with *Learn while painting* on. Each stroke is
sent as mouse events; the window refits through its LiveImage and repaints the view.
``live_stroke_to_repaint_ms`` is the median time from the stroke's release to the
repainted viewport (the live mode's wait after the last stroke, ``LIVE_DELAY_MS``,
left out); ``live_first_learn_s`` includes the one network pass over the image.
The machine's load is printed beside them.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

SIDE = 10_000
RADIUS = 20
DABS = 200
STEP = 3.0  # source pixels between two mouse positions


def make_image(path: Path, side: int) -> None:
    """A 3-band uint8 tiled GeoTIFF with a cheap pattern, written by strips."""
    import rasterio
    from rasterio.transform import from_origin

    profile = {
        "driver": "GTiff",
        "width": side,
        "height": side,
        "count": 3,
        "dtype": "uint8",
        "tiled": True,
        "blockxsize": 256,
        "blockysize": 256,
        "compress": "deflate",
        "zlevel": 1,
        "crs": "EPSG:32633",
        "transform": from_origin(500_000, 5_000_000, 0.5, 0.5),
    }
    cols = np.arange(side, dtype=np.uint32)[None, :]
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, side, 1024):
            h = min(1024, side - row)
            rows = np.arange(row, row + h, dtype=np.uint32)[:, None]
            base = ((rows // 7 + cols // 11) % 256).astype(np.uint8)
            for band in range(3):
                dst.write(base + np.uint8(60 * band), band + 1, window=((row, row + h), (0, side)))


def bench_model() -> Any:
    """A small untrained 3-band, 4-cluster model: the session needs one to show a map."""
    import torch

    from acseg_core.model.checkpoint import LoadedModel
    from acseg_core.model.nn import build_model
    from acseg_core.presets import preset

    config = preset("cpu-small", in_channels=3, clusters=4, base_width=8, readout="head")
    return LoadedModel(build_model(config).eval(), config, torch.device("cpu"), {}, "bench")


def fake_clusters(side: int) -> np.ndarray:
    rows = np.arange(side, dtype=np.uint32)[:, None] // 500
    cols = np.arange(side, dtype=np.uint32)[None, :] // 500
    return ((rows + cols) % 4).astype(np.uint8)


def _mouse(kind: Any, pos: Any, button: Any, buttons: Any) -> Any:
    from PySide6.QtCore import QPointF, Qt
    from PySide6.QtGui import QMouseEvent

    local = QPointF(pos)
    return QMouseEvent(kind, local, local, button, buttons, Qt.KeyboardModifier.NoModifier)


class Driver:
    """Sends a stroke as mouse events and repaints what changed, timing every dab."""

    def __init__(self, window: Any) -> None:
        from PySide6.QtCore import QRect

        self.window = window
        self.canvas = window.canvas
        self.dirty = QRect()
        window.editing.edited.connect(self._edited)

    def _edited(self, window: tuple[int, int, int, int]) -> None:
        from PySide6.QtCore import QRectF

        col, row, w, h = window
        rect = (
            self.canvas.mapFromScene(QRectF(col, row, w, h)).boundingRect().adjusted(-2, -2, 2, 2)
        )
        self.dirty = self.dirty.united(rect)

    def flush(self) -> None:
        from PySide6.QtCore import QRect
        from PySide6.QtWidgets import QApplication

        if not self.dirty.isNull():
            self.canvas.viewport().repaint(self.dirty)
            self.dirty = QRect()
        QApplication.processEvents()

    def send(self, kind: Any, x: float, y: float) -> None:
        from PySide6.QtCore import QEvent, QPointF, Qt
        from PySide6.QtWidgets import QApplication

        left = Qt.MouseButton.LeftButton
        pos = self.canvas.mapFromScene(QPointF(x, y))
        if kind == "press":
            event = _mouse(QEvent.Type.MouseButtonPress, pos, left, left)
        elif kind == "move":
            event = _mouse(QEvent.Type.MouseMove, pos, Qt.MouseButton.NoButton, left)
        else:
            event = _mouse(QEvent.Type.MouseButtonRelease, pos, left, Qt.MouseButton.NoButton)
        QApplication.sendEvent(self.canvas.viewport(), event)

    def stroke(self, x0: float, y0: float, dabs: int, dx: float, dy: float) -> list[float]:
        """Press, ``dabs`` moves, release; returns the time of every dab in ms."""
        times = []
        start = time.perf_counter()
        self.send("press", x0, y0)
        self.flush()
        times.append((time.perf_counter() - start) * 1000)
        for i in range(1, dabs):
            start = time.perf_counter()
            self.send("move", x0 + i * dx, y0 + i * dy)
            self.flush()
            times.append((time.perf_counter() - start) * 1000)
        self.send("release", x0 + (dabs - 1) * dx, y0 + (dabs - 1) * dy)
        self.flush()
        return times

    def timed(self, action: Any) -> float:
        start = time.perf_counter()
        action()
        self.flush()
        return (time.perf_counter() - start) * 1000


def run(side: int = SIDE, strokes: int = 5) -> dict[str, Any]:
    from PySide6.QtCore import QSettings
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory(prefix="acseg-bench-") as tmp:
        folder = Path(tmp)
        started = time.perf_counter()
        image = folder / "big.tif"
        make_image(image, side)
        from app.main_window import MainWindow

        settings = QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat)
        window = MainWindow(settings)
        window.project.autosave_timer.stop()
        window.resize(1280, 800)
        window.session.set_model(bench_model(), None)  # its map is given, never predicted
        window.session.add_prediction(image, window.session.key, fake_clusters(side))
        window.open_images([image])
        window.show()
        app.processEvents()
        classes = window.classes
        classes.set_clusters(4)
        roof = classes.add_class("roof", (220, 40, 40))
        field = classes.add_class("field", (40, 200, 40))
        for k in range(4):
            classes.assign(k, roof if k % 2 else field)
        window.overlay.set_mode("classes")
        setup_s = time.perf_counter() - started

        canvas = window.canvas
        canvas.actual_size()
        canvas.centerOn(side / 2, side / 2)
        app.processEvents()
        driver = Driver(window)
        window.editing.set_tool("brush")
        window.editing.set_active_class(roof)
        window.editing.set_brush_radius(RADIUS)
        driver.flush()

        dab_ms: list[float] = []
        undo_ms: list[float] = []
        undo_pixels: list[int] = []
        undo_bytes: list[int] = []
        for n in range(strokes):
            y = side / 2 - 150 + 60 * n
            dab_ms += driver.stroke(side / 2 - 300, y, DABS, STEP, 0.0)
        stack = window.editing.stack()
        steps_before = len(stack)
        for _ in range(strokes):
            undo_pixels.append(stack._undo[-1].pixels)
            undo_bytes.append(stack._undo[-1].nbytes)
            undo_ms.append(driver.timed(window.editing.undo))
        redo_ms = [driver.timed(window.editing.redo) for _ in range(strokes)]

        window.editing.set_tool("fill")
        fill_ms = driver.timed(lambda: window.editing.fill_at(side / 2 + 10, side / 2 + 10))

        canvas.fit()
        window.editing.set_tool("brush")
        app.processEvents()
        fit_ms = driver.stroke(side / 4, side / 4, 50, STEP * 10, 0.0)
        result = {
            "image": f"{side}x{side}",
            "brush_radius": RADIUS,
            "brush_dab_ms": round(statistics.median(dab_ms), 3),
            "brush_dab_p95_ms": round(float(np.percentile(dab_ms, 95)), 3),
            "brush_dabs": len(dab_ms),
            "undo_ms": round(statistics.median(undo_ms), 3),
            "undo_max_ms": round(max(undo_ms), 3),
            "undo_stroke_dabs": DABS,
            "undo_stroke_pixels": int(statistics.median(undo_pixels)),
            "undo_steps": steps_before,
            "undo_stroke_bytes": int(statistics.median(undo_bytes)),
            "redo_ms": round(statistics.median(redo_ms), 3),
            "fill_500px_block_ms": round(fill_ms, 3),
            "brush_dab_fit_view_ms": round(statistics.median(fit_ms), 3),
            "zoom": "1:1 (fit view for brush_dab_fit_view_ms)",
            "setup_s": round(setup_s, 2),
            "cpu_count": os.cpu_count(),
            "loadavg_1min": round(os.getloadavg()[0], 2),
        }
        window.document.mark_clean()
        window.close()
        window.runner.shutdown()
        return result


def live_model() -> Any:
    """An untrained ``cpu-small`` network of the real size (3 bands, 6 clusters)."""
    import torch

    from acseg_core.model.checkpoint import LoadedModel
    from acseg_core.model.nn import build_model
    from acseg_core.model.readouts import ReadOut
    from acseg_core.presets import preset

    config = preset("cpu-small", in_channels=3, clusters=6, readout=ReadOut("head", None))
    torch.manual_seed(0)
    return LoadedModel(build_model(config).eval(), config, torch.device("cpu"), {}, "live-bench")


def run_live(side: int = 1000, strokes: int = 5) -> dict[str, Any]:
    """Stroke → refit → repainted view through the window (see the module)."""
    from PySide6.QtCore import QEventLoop, QSettings, QTimer
    from PySide6.QtWidgets import QApplication

    app = QApplication.instance() or QApplication(sys.argv[:1])
    with tempfile.TemporaryDirectory(prefix="acseg-bench-") as tmp:
        folder = Path(tmp)
        image = folder / "view.tif"
        make_image(image, side)
        from app.controllers.learning import LIVE_DELAY_MS
        from app.main_window import MainWindow

        window = MainWindow(QSettings(str(folder / "settings.ini"), QSettings.Format.IniFormat))
        window.project.autosave_timer.stop()
        window.resize(1280, 800)
        window.open_images([image])
        window.session.set_model(live_model(), None)
        window.show()

        def wait_until(done: Any) -> None:
            """Process events until ``done()``, sleeping between (no busy loop: the
            worker shares the CPU)."""
            deadline = time.perf_counter() + 600
            while not done() and time.perf_counter() < deadline:
                app.processEvents()
                time.sleep(0.01)

        wait_until(lambda: window.session.prediction(image) is not None)  # as the app does
        classes = window.classes
        roof = classes.add_class("roof", (220, 40, 40))
        field = classes.add_class("field", (40, 200, 40))
        window.canvas.fit()
        app.processEvents()
        driver = Driver(window)
        window.editing.set_tool("brush")
        window.editing.set_brush_radius(6)
        learning = window.learning
        learning._timer.setInterval(0)  # the debounce is a choice, not the path's cost

        def learnt_after(paint: Any) -> float:
            """Seconds from the end of ``paint()`` to the repainted view after the refit."""
            done = QEventLoop()
            learning.repainted.connect(done.quit)
            learning.failed.connect(lambda *_a: done.quit())
            QTimer.singleShot(600_000, done.quit)
            paint()
            start = time.perf_counter()
            done.exec()
            learning.repainted.disconnect(done.quit)
            driver.flush()
            window.canvas.viewport().repaint()
            return time.perf_counter() - start

        def stroke(class_id: int, n: int) -> None:
            window.editing.set_active_class(class_id)
            y = side * (0.2 + 0.6 * ((n * 0.37) % 1.0))
            x = side * (0.15 + 0.35 * (class_id == field) + 0.1 * (n % 3))
            driver.stroke(x, y, 12, 3.0, 0.5)

        stroke(roof, 0)
        learning.set_live(True)
        first_s = learnt_after(lambda: stroke(field, 0))
        wait_until(lambda: not learning.running)  # the check that follows a live refit
        times = []
        for n in range(1, strokes + 1):
            times.append(learnt_after(lambda n=n: stroke(roof if n % 2 else field, n)))
            wait_until(lambda: not learning.running)
        wait_until(lambda: learning.quality is not None)  # the check, once painting stops
        checked = learning.quality is not None
        learning.set_live(False)
        explicit = learnt_after(lambda: learning.learn())
        result = {
            "live_image": f"{side}x{side}",
            "live_model": "cpu-small, untrained, 6 clusters",
            "live_first_learn_s": round(first_s, 3),
            "live_stroke_to_repaint_ms": round(1000 * statistics.median(times), 1),
            "live_stroke_to_repaint_max_ms": round(1000 * max(times), 1),
            "live_strokes": len(times),
            "learn_with_check_ms": round(1000 * explicit, 1),
            "quality_checked_after_live": checked,
            "live_delay_ms_not_counted": LIVE_DELAY_MS,
            "cpu_count": os.cpu_count(),
            "loadavg_1min": round(os.getloadavg()[0], 2),
        }
        window.document.mark_clean()
        window.close()
        window.runner.shutdown()
        return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m app.bench", description=__doc__)
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    parser.add_argument("--side", type=int, default=SIDE, help="image side in pixels (10000)")
    parser.add_argument("--strokes", type=int, default=5, help="strokes of 200 dabs (5)")
    parser.add_argument("--live", action="store_true",
                        help="stroke → refit → repainted 1000² view instead")  # fmt: skip
    args = parser.parse_args(argv)
    if args.live:
        side = args.side if args.side != SIDE else 1000
        result = run_live(side, args.strokes)
    else:
        result = run(args.side, args.strokes)
    if args.json:
        print(json.dumps(result))
    else:
        for key, value in result.items():
            print(f"{key:>24}: {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
