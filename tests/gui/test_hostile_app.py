"""Hostile battery, the app: FIFOs never hang it, a huge sparse GeoTIFF opens without
blocking the window, a damaged edits file and a corrupt file in a folder are said, not
silent or fatal, crafted sizes in a project are one line."""

from __future__ import annotations

import contextlib
import errno
import json
import os
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from acseg_core.errors import AcsegError
from tests.gui.helpers import image_folder, model_file

REPO = Path(__file__).resolve().parents[2]
needs_fifo = pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")


@contextlib.contextmanager
def unblocking(fifo: Path, after_s: float = 5.0) -> Iterator[None]:
    """If something blocks reading ``fifo`` (the bug), a writer comes along after
    ``after_s`` and closes at once, so the reader gets EOF and the test fails on its
    timing instead of hanging the suite. Without a reader it does nothing."""
    stop = threading.Event()

    def writer() -> None:
        if stop.wait(after_s):
            return
        while not stop.is_set():
            try:
                os.close(os.open(fifo, os.O_WRONLY | os.O_NONBLOCK))
            except OSError as exc:
                if exc.errno != errno.ENXIO:  # ENXIO: nobody reads it, nothing to unblock
                    return
            stop.wait(0.2)

    thread = threading.Thread(target=writer, daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(5)


@needs_fifo
def test_a_fifo_never_hangs_the_app(window, tmp_path: Path, dialogs) -> None:
    good = image_folder(tmp_path / "mixed", count=1)[0]
    fifo = tmp_path / "mixed" / "pipe.tif"
    os.mkfifo(fifo)
    with unblocking(fifo):
        started = time.monotonic()
        assert not window.open_paths_reporting([fifo])
        assert "FIFO" in dialogs.shown[-1][2] and str(fifo) in dialogs.shown[-1][2]
        assert window.open_paths_reporting([tmp_path / "mixed"])  # left out of the folder
        assert window.images.images == [good]
        model_fifo = tmp_path / "model.pt"
        os.mkfifo(model_fifo)
    with unblocking(model_fifo):
        assert not window.load_model_reporting(model_fifo)
        assert "FIFO" in dialogs.shown[-1][2]
        assert time.monotonic() - started < 5


@needs_fifo
def test_a_fifo_on_the_apps_command_line_is_one_line(tmp_path: Path) -> None:
    fifo = tmp_path / "pipe.tif"
    os.mkfifo(fifo)
    with unblocking(fifo, after_s=20):
        result = subprocess.run(
            [sys.executable, "-m", "app", str(fifo), "--screenshot", str(tmp_path / "s.png")],
            capture_output=True, text=True, timeout=120, cwd=REPO,
            env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)},
        )  # fmt: skip
    assert result.returncode == 1
    assert "FIFO" in result.stderr and "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1, result.stderr


def test_a_folder_with_one_corrupt_file_opens_on_the_command_line(tmp_path: Path) -> None:
    folder = tmp_path / "mixed"
    image_folder(folder, count=2)
    (folder / "corrupt.tif").write_bytes(b"II*\x00 definitely not a tiff")
    shot = tmp_path / "shot.png"
    result = subprocess.run(
        [sys.executable, "-m", "app", str(folder), "--screenshot", str(shot)],
        capture_output=True, text=True, timeout=180, cwd=REPO,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert shot.exists(), result.stderr  # the folder opened, the corrupt file was skipped
    assert "skipped" in result.stderr and str(folder / "corrupt.tif") in result.stderr
    assert "Traceback" not in result.stderr


def _sparse_geotiff(path: Path, side: int = 100_000) -> Path:
    """A ``side``² 3-band GeoTIFF with one written block: 2 MB on disk, 30 GB of pixels."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    profile = dict(
        driver="GTiff", width=side, height=side, count=3, dtype="uint8", tiled=True,
        blockxsize=256, blockysize=256, SPARSE_OK=True, compress="deflate", BIGTIFF="YES",
        crs="EPSG:32632", transform=from_origin(500000.0, 5600000.0, 0.5, 0.5),
    )  # fmt: skip
    with rasterio.open(path, "w", **profile) as dst:
        middle = Window(side // 2, side // 2, 256, 256)
        dst.write(np.full((3, 256, 256), 200, np.uint8), window=middle)
    return path


def test_a_huge_sparse_geotiff_opens_without_blocking_the_window(
    qtbot, window, tmp_path: Path, dialogs
) -> None:
    huge = _sparse_geotiff(tmp_path / "huge.tif")
    started = time.monotonic()
    window.open_images([huge])
    assert time.monotonic() - started < 5  # never a full read on the GUI thread
    assert window.current_info is not None and window.current_info.width == 100_000
    assert window.canvas.has_image  # a placeholder until the decimated preview is read
    qtbot.waitUntil(lambda: window.viewer.preview is not None, timeout=180_000)
    assert max(window.viewer.preview.shape[1:]) <= 2048
    # the app keeps maps in memory: it says so instead of allocating 10 GB
    assert window.load_model_reporting(model_file(tmp_path / "m.pt", bands=3))
    qtbot.waitUntil(lambda: bool(window.notices.shown), timeout=60_000)
    assert "too large to label in the app" in window.notices.shown[-1]
    assert dialogs.shown == []


def test_a_damaged_edits_file_is_said_when_the_project_opens(
    window, tmp_path: Path, dialogs
) -> None:
    from acseg_core.labelling.project import Project

    image = image_folder(tmp_path / "imgs", count=1)[0]
    project = Project()
    project.add_images([image])
    project.get_edits(image, create=True).write(0, 0, np.ones((4, 4), np.uint8))
    path = project.save(tmp_path / "p.acseg")
    edits = path.parent / json.loads(path.read_text())["images"][0]["edits"]
    edits.write_bytes(edits.read_bytes()[:40])  # damaged
    before = edits.read_bytes(), path.read_bytes()
    window.open_project(path)
    assert dialogs.shown and dialogs.shown[-1][1] == "Project opened with problems"
    assert str(edits) in dialogs.shown[-1][2] and image.name in dialogs.shown[-1][2]
    assert (edits.read_bytes(), path.read_bytes()) == before


def test_a_damaged_edits_file_is_not_a_silent_exit_zero(tmp_path: Path) -> None:
    from acseg_core.labelling.project import Project

    image = image_folder(tmp_path / "imgs", count=1)[0]
    project = Project()
    project.add_images([image])
    project.get_edits(image, create=True).write(0, 0, np.ones((4, 4), np.uint8))
    path = project.save(tmp_path / "p.acseg")
    edits = path.parent / json.loads(path.read_text())["images"][0]["edits"]
    edits.write_bytes(b"PK\x03\x04 not a zip any more")
    result = subprocess.run(
        [sys.executable, "-m", "app", "--project", str(path), "--screenshot",
         str(tmp_path / "s.png")],
        capture_output=True, text=True, timeout=180, cwd=REPO,
        env={**os.environ, "QT_QPA_PLATFORM": "offscreen", "PYTHONPATH": str(REPO)},
    )  # fmt: skip
    assert result.returncode == 1 and str(edits) in result.stderr, result.stderr
    assert "Traceback" not in result.stderr


def test_a_project_with_two_to_the_forty_clusters_is_one_line(window, tmp_path: Path) -> None:
    path = tmp_path / "p.acseg"
    data = {"format": "acseg-project", "schema_version": 2, "images": [],
            "class_map": {"clusters": 2**40, "classes": []}}  # fmt: skip
    path.write_text(json.dumps(data))
    with pytest.raises(AcsegError, match="clusters must be between") as caught:
        window.open_project(path)
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)
