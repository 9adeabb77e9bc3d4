"""The app starts offscreen, shows the bundled sample, and renders screenshots."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
from PIL import Image

from app.main_window import MainWindow
from resources import sample_image_path


def test_window_shows_the_sample(qtbot) -> None:
    window = MainWindow()
    qtbot.addWidget(window)
    window.open_images([sample_image_path()])
    window.show()
    qtbot.waitExposed(window)
    assert window.images.current == sample_image_path()
    assert window.canvas.has_image
    assert window.current_info is not None and window.current_info.count == 3
    assert window.image_list.count() == 1
    assert "sample_dubai" in window.windowTitle()
    # The canvas really paints the image: its grab is not a flat background.
    pixels = np.asarray(Image.fromqimage(window.canvas.grab().toImage()).convert("RGB"))
    assert pixels.std() > 10


def test_screenshot_command_writes_png(tmp_path) -> None:
    """The default start opens the sample with its bundled model: the overlay is in the shot."""
    out = tmp_path / "shot.png"
    result = subprocess.run(
        [sys.executable, "-m", "app", "--screenshot", str(out)],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 0, result.stderr
    image = Image.open(out)
    assert image.size[0] >= 800 and image.size[1] >= 500
    assert np.asarray(image.convert("RGB")).std() > 10


def test_bad_path_is_one_line_and_nonzero(tmp_path) -> None:
    missing = tmp_path / "missing.tif"
    result = subprocess.run(
        [sys.executable, "-m", "app", str(missing)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert result.stderr.strip().count("\n") == 0 and str(missing) in result.stderr
    corrupt = tmp_path / "corrupt.tif"
    corrupt.write_bytes(b"not an image at all")
    result = subprocess.run(
        [sys.executable, "-m", "app", str(corrupt)], capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0 and str(corrupt) in result.stderr
    assert "Traceback" not in result.stderr


def test_version_flag() -> None:
    from acseg_core import __version__

    result = subprocess.run(
        [sys.executable, "-m", "app", "--version"], capture_output=True, text=True, timeout=60
    )
    assert result.returncode == 0 and result.stdout.strip() == f"acseg {__version__}"


def test_bad_model_is_one_line_and_nonzero(tmp_path) -> None:
    bad = tmp_path / "model.pt"
    bad.write_bytes(b"not a model")
    result = subprocess.run(
        [sys.executable, "-m", "app", "--model", str(bad), "--screenshot", str(tmp_path / "s.png")],
        capture_output=True,
        text=True,
        timeout=120,
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"},
    )
    assert result.returncode == 1
    assert "Traceback" not in result.stderr and str(bad) in result.stderr
    assert not (tmp_path / "s.png").exists()


def _app(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "app", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**__import__("os").environ, "QT_QPA_PLATFORM": "offscreen"},
    )


def test_screenshot_never_replaces_an_input(tmp_path) -> None:
    source = tmp_path / "photo.png"
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(source)
    before = source.read_bytes()
    result = _app(str(source), "--screenshot", str(source))
    assert result.returncode == 1 and "over an input" in result.stderr
    assert source.read_bytes() == before
    project = tmp_path / "p.acseg"
    project.write_text("{}")
    result = _app("--project", str(project), "--screenshot", str(project))
    assert result.returncode == 1 and project.read_text() == "{}"


def test_headless_screenshot_prints_a_band_mismatch_and_exits_nonzero(tmp_path) -> None:
    """A problem that would be a message box prints instead: the run never blocks."""
    from tests.core.synthetic import tiny_model_file

    four_bands = tiny_model_file(tmp_path / "model.pt", bands=4, clusters=3)
    image = tmp_path / "rgb.png"
    Image.fromarray(np.full((32, 32, 3), 90, np.uint8)).save(image)
    result = _app(str(image), "--model", str(four_bands), "--screenshot", str(tmp_path / "s.png"),
                  timeout=90)  # fmt: skip
    assert result.returncode == 1
    assert "band" in result.stderr and "Traceback" not in result.stderr


def test_a_screenshot_that_cannot_be_written_says_why(tmp_path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("x")
    result = _app("--screenshot", str(blocker / "shot.png"))
    assert result.returncode == 1
    lines = [line for line in result.stderr.splitlines() if "error" in line]
    assert len(lines) == 1 and str(blocker / "shot.png") in lines[0], result.stderr
    assert "Traceback" not in result.stderr
