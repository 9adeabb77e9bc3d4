"""Small builders for GUI tests: synthetic images and an (untrained) model file."""

from __future__ import annotations

from pathlib import Path

from tests.core.synthetic import make_regions_image, tiny_model_file


def image_folder(folder: Path, count: int = 2, size: int = 64, bands: int = 4) -> list[Path]:
    """``count`` georeferenced ``bands``-band GeoTIFFs with region labels."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"tile_{i}.tif"
        make_regions_image(path, size=(size, size), bands=bands, seed=i, classes=3)
        paths.append(path)
    return paths


def model_file(path: Path, bands: int = 4, clusters: int = 4) -> Path:
    """A real model file (random weights): enough where training quality is not the point."""
    return tiny_model_file(path, bands, clusters)


def assert_hand_edits_survive(qtbot, window, switches) -> None:
    """Paint a stroke on the current image, run each ``switches`` callable (a change
    of the prediction settings that re-predicts it), then check the stroke, the
    project's copy and the undo history are untouched."""
    import numpy as np
    from PySide6.QtCore import QPointF

    from acseg_core.labelling.classes import NO_EDIT

    image = window.tiles[0]
    roof = window.classes.add_class("roof", (200, 30, 30))
    window.editing.set_tool("brush")
    window.editing.set_active_class(roof)
    window.editing.set_brush_radius(5)
    tool = window.editing.tool
    tool.press(QPointF(20.0, 30.0))
    tool.move(QPointF(40.0, 30.0))
    tool.release(QPointF(40.0, 30.0))
    painted = window.editing.layer().to_array()
    assert (painted == roof).sum() > 50 and set(np.unique(painted)) == {roof, NO_EDIT}
    undo_steps = len(window.editing.stack())

    for switch in switches:
        with qtbot.waitSignal(window.session.prediction_ready, timeout=60_000):
            switch()
    assert np.array_equal(window.editing.layer().to_array(), painted)
    assert np.array_equal(window.document.project.get_edits(image).to_array(), painted)
    assert len(window.editing.stack()) == undo_steps  # undo history kept too
    assert window.cursor_info.cluster_text(25, 30).endswith("→ roof (hand edit)")


def show_map(qtbot, window, tmp_path: Path, image: Path, ids, bands: int = 4) -> None:
    """Make ``ids`` the map shown for ``image``: a tiny real model is loaded (its own
    prediction is waited for), then the map is cached under the session's key."""
    if window.session.loaded is None:
        clusters = int(ids[ids != 255].max()) + 1 if (ids != 255).any() else 2
        window.load_model_reporting(
            tiny_model_file(tmp_path / "shown-map.pt", bands, max(2, clusters))
        )
    qtbot.waitUntil(lambda: not window.predictions.busy, timeout=60_000)
    window.session.add_prediction(image, window.session.key, ids)
