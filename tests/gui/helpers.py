"""Small builders for GUI tests: synthetic images and an (untrained) model file."""

from __future__ import annotations

from pathlib import Path

from tests.core.synthetic import make_regions_image


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
    """A real model file (random weights) — enough where training quality is not the point."""
    import torch

    from acseg_core.io.normalise import Normalisation
    from acseg_core.model.checkpoint import save_checkpoint
    from acseg_core.model.nn import build_model
    from acseg_core.presets import preset

    norm = Normalisation(low=(0.0,) * bands, high=(255.0,) * bands)
    config = preset(
        "cpu-small", in_channels=bands, clusters=clusters, base_width=8, normalisation=norm
    )
    torch.manual_seed(0)
    save_checkpoint(path, build_model(config), config)
    return path


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
    assert np.array_equal(window.project.edits_for(image).to_array(), painted)
    assert len(window.editing.stack()) == undo_steps  # undo history kept too
    assert window.readout.cluster_text(25, 30).endswith("→ roof (hand edit)")


class HeldPredict:
    """A stand-in for the core's ``predict`` that records ``kwargs[key]`` of each call
    and runs until ``release`` is set (or it is cancelled); its map is ``size``² filled
    with ``value(kwargs[key])``. Lets a test switch settings mid-prediction."""

    def __init__(self, key: str, size: int, value) -> None:
        import threading

        self.key, self.size, self.value = key, size, value
        self.seen: list = []
        self.started, self.release = threading.Event(), threading.Event()

    def __call__(self, loaded, image, *, cancel=None, **kwargs):
        import numpy as np

        from acseg_core.errors import CancelledError
        from acseg_core.inference.predict import Prediction
        from acseg_core.jobs import Progress

        setting = kwargs.get(self.key)
        self.seen.append(setting)
        self.started.set()
        while not self.release.wait(0.01):
            if cancel is not None and cancel.cancelled:
                raise CancelledError(f"{image}: prediction cancelled")
            yield Progress(0, 1, "predicting")
        fill = np.full((self.size, self.size), self.value(setting), np.uint8)
        return Prediction(fill, None, None)
