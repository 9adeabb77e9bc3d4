"""Learn from edits: a few strokes per class relabel the unstroked pixels, undo + learn
gives the earlier model back, and the status line says what was learnt from."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

from acseg_core.model.readouts.registry import LEARNT
from tests.core.synthetic import make_regions_image, tiny_model_file

SIZE = 96


def stroke_inside(window, labels: np.ndarray, cls: int, class_id: int, seed: int) -> None:
    """One short brush stroke well inside a region of ``cls``."""
    inner = ndimage.binary_erosion(labels == cls, iterations=6)
    rows, cols = np.nonzero(inner)
    pick = np.random.default_rng(seed).integers(len(rows))
    y, x = float(rows[pick]) + 0.5, float(cols[pick]) + 0.5
    editing = window.editing
    editing.set_active_class(class_id)
    editing.set_tool("brush")
    editing.set_brush_radius(3)
    assert editing.begin_stroke()
    editing.paint_segment(x, y, x + 1, y, class_id)
    editing.end_stroke()


def learn_and_wait(qtbot, window) -> None:
    assert window.learning.learn()
    qtbot.waitUntil(lambda: not window.learning.running, timeout=60_000)
    qtbot.waitUntil(lambda: window.session.prediction(window.images.current) is not None,
                    timeout=60_000)  # fmt: skip


def test_strokes_relabel_the_image_and_undo_restores_the_model(qtbot, window, tmp_path: Path):
    image = tmp_path / "scene.tif"
    labels = make_regions_image(image, size=(SIZE, SIZE), bands=3, classes=2, seed=3)
    window.open_images([image])
    window.load_model_reporting(tiny_model_file(tmp_path / "m.pt", bands=3, clusters=4))
    qtbot.waitUntil(lambda: not window.predictions.busy, timeout=60_000)
    first = window.classes.add_class("first")
    second = window.classes.add_class("second")
    for seed in range(3):
        stroke_inside(window, labels, 0, first, seed)
        stroke_inside(window, labels, 1, second, seed)
    learn_and_wait(qtbot, window)
    assert window.session.loaded.config.readout.kind == LEARNT
    shown = window.cursor_info.model.toolTip()  # the status bar's model label, in full
    assert "+ strokes" in shown and "first: " in shown and " px" in shown
    named = window.classes.class_map.labels_from_clusters(
        window.session.prediction(window.images.current)
    )
    expected = np.where(labels == 0, first, second)
    assert (named == expected).mean() > 0.85  # unstroked pixels follow the strokes
    learnt = window.session.loaded.digest
    stroke_inside(window, labels, 0, second, seed=9)  # a wrong stroke
    learn_and_wait(qtbot, window)
    assert window.session.loaded.digest != learnt
    window.editing.undo()
    learn_and_wait(qtbot, window)
    assert window.session.loaded.digest == learnt  # the fit is a function of the strokes
    window.learning.forget()
    assert window.session.loaded.config.readout.kind != LEARNT


def test_learning_without_strokes_says_what_to_do(qtbot, window, tmp_path: Path) -> None:
    image = tmp_path / "scene.tif"
    make_regions_image(image, size=(48, 48), bands=3, classes=2)
    window.open_images([image])
    window.load_model_reporting(tiny_model_file(tmp_path / "m.pt", bands=3, clusters=4))
    window.classes.add_class("first")
    assert not window.learning.learn()
    assert "paint" in window.statusBar().currentMessage()


def test_a_saved_project_keeps_the_base_model_and_its_cluster_map(qtbot, window, tmp_path):
    from acseg_core.labelling.project import Project

    image = tmp_path / "scene.tif"
    labels = make_regions_image(image, size=(SIZE, SIZE), bands=3, classes=2, seed=3)
    window.open_images([image])
    model = tiny_model_file(tmp_path / "m.pt", bands=3, clusters=4)
    window.load_model_reporting(model)
    qtbot.waitUntil(lambda: not window.predictions.busy, timeout=60_000)
    first = window.classes.add_class("first")
    second = window.classes.add_class("second")
    window.classes.assign(3, second)  # the user's naming of the unsupervised clusters
    stroke_inside(window, labels, 0, first, 0)
    stroke_inside(window, labels, 1, second, 0)
    learn_and_wait(qtbot, window)
    window.classes.rename_class(first, "renamed")
    assert window.project.save_as(tmp_path / "p.acseg")
    saved = Project.load(tmp_path / "p.acseg")
    assert saved.model == model.resolve()
    assert saved.class_map.clusters == 4  # the base model's K, not the learnt C = 2
    assert saved.class_map.class_of_cluster(3).id == second
    assert saved.class_map.class_of_cluster(0) is None
    assert saved.class_map.class_by_id(first).name == "renamed"
