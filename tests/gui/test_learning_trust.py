"""A learning loop a user can trust (app): the strokes' quality and warnings after a
learn, before/after, Undo of a learn, the visible image repainted from its LiveImage,
a learnt model that survives save and reopen bit for bit, a learnt model file that
shows its own classes, and a retrained model that asks first and keeps the names of
the clusters that match."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from acseg_core.inference.predict import predict_array
from acseg_core.jobs import run_to_end
from acseg_core.learning.fit import fit_strokes, save_learned
from acseg_core.learning.samples import gather
from acseg_core.learning.strokes import StrokeSet
from acseg_core.model.checkpoint import load_model, save_checkpoint
from acseg_core.model.readouts import ReadOut
from app.export_dialog import ExportRequest
from tests.core.synthetic import make_regions_image, tiny_model, tiny_model_file
from tests.gui.test_learning import SIZE, learn_and_wait, stroke_inside


def start(qtbot, window, tmp_path: Path, seed: int = 3) -> tuple[Path, np.ndarray, int, int]:
    """An image of two classes, a tiny model, two classes with three strokes each."""
    image = tmp_path / "scene.tif"
    labels = make_regions_image(image, size=(SIZE, SIZE), bands=3, classes=2, seed=seed)
    window.open_images([image])
    window.load_model_reporting(tiny_model_file(tmp_path / "m.pt", bands=3, clusters=4))
    qtbot.waitUntil(lambda: not window.predictions.busy, timeout=60_000)
    first = window.classes.add_class("first")
    second = window.classes.add_class("second")
    for s in range(3):
        stroke_inside(window, labels, 0, first, s)
        stroke_inside(window, labels, 1, second, s)
    return image, labels, first, second


def test_a_learn_shows_each_classes_quality_and_names_a_contradicting_stroke(
    qtbot, window, tmp_path: Path
) -> None:
    window.show()
    image, labels, first, _second = start(qtbot, window, tmp_path)
    window.classes_dock.raise_()
    qtbot.waitUntil(lambda: window.learning_dock.visibleRegion().isEmpty())  # a tab behind
    stroke_inside(window, labels, 1, first, seed=7)  # a "first" stroke inside "second"
    learn_and_wait(qtbot, window)
    shown = window.learning_panel.summary()
    assert "Learnt from strokes: 2 classes" in shown
    assert "first: " in shown and "second: " in shown and " %" in shown
    assert f"a first stroke on {image.name}" in shown and "looks like second" in shown
    assert "leave-one-stroke-out accuracy: first" in window.statusBar().currentMessage()
    qtbot.waitUntil(lambda: not window.learning_dock.visibleRegion().isEmpty())  # forward


def test_before_after_and_undo_of_a_learn(qtbot, window, tmp_path: Path) -> None:
    image, labels, first, _second = start(qtbot, window, tmp_path)
    base = window.session.loaded
    base_map = window.session.prediction(image)
    learn_and_wait(qtbot, window)
    learnt = window.session.loaded
    assert learnt is not base and window.document.project.learnt is learnt
    before = window.actions_.before_after
    assert before.isEnabled() and not window.actions_.before_after.isChecked()
    before.trigger()  # before: the unsupervised map, at once (its map is still held)
    assert window.session.loaded is base and window.classes.learnt_ids is None
    assert window.session.prediction(image) is base_map
    assert window.document.project.learnt is learnt  # nothing dropped
    assert window.learning_panel.before_button.isChecked()
    before.trigger()  # after
    assert window.session.loaded is learnt and window.classes.learnt_ids is not None
    learnt_map = window.session.prediction(image)
    assert learnt_map is not None and not window.predictions.busy

    stroke_inside(window, labels, 1, first, seed=7)
    learn_and_wait(qtbot, window)
    assert window.session.loaded is not learnt
    window.actions_.undo_learn.trigger()  # back to the first learnt model, bit for bit
    assert window.session.loaded is learnt and window.document.project.learnt is learnt
    assert window.session.prediction(image) is learnt_map
    assert window.learning.undo_learn()  # and to the unsupervised model
    assert window.session.loaded is base and window.document.project.learnt is None
    assert not window.actions_.undo_learn.isEnabled()
    assert not window.learning.undo_learn()
    assert "No learn to undo" in window.statusBar().currentMessage()


def test_a_learn_repaints_the_visible_image_from_its_live_pass(qtbot, window, tmp_path) -> None:
    image, _labels, _first, _second = start(qtbot, window, tmp_path)
    started, repainted = [], []
    window.predictions.started.connect(lambda path, how: started.append((path, how)))
    window.learning.repainted.connect(repainted.append)
    learn_and_wait(qtbot, window)
    assert repainted == [image] and started == []  # no tiled job for the visible image
    fitted = window.session.loaded
    expected = predict_array(fitted, image, readout=ReadOut(None, None), precision="fp32")
    assert np.array_equal(window.session.prediction(image), expected.clusters)
    assert window.learning.live_image is not None  # kept: the next learn needs no pass
    held = window.learning.live_image
    window.learning.set_live(True)
    window.learning._timer.setInterval(0)
    stroke_inside(window, _labels, 0, _first, seed=11)
    qtbot.waitUntil(lambda: window.session.loaded is not fitted, timeout=60_000)
    assert window.learning.live_image is held and started == []
    # a live refit is shown first, then its strokes are checked in the background
    qtbot.waitUntil(lambda: window.learning.quality is not None, timeout=60_000)


def exported(qtbot, window, out: Path, dialogs) -> bytes:
    worker = window.exporter.run(ExportRequest("current", ("png",), out))
    with qtbot.waitSignal(worker.ended, timeout=60_000):
        pass
    assert worker.outcome == "succeeded", dialogs.texts()
    return (out / "scene.png").read_bytes()


def test_a_saved_learnt_model_comes_back_bit_for_bit_with_the_same_masks(
    qtbot, window, tmp_path: Path, dialogs
) -> None:
    image, labels, first, _second = start(qtbot, window, tmp_path)
    stroke_inside(window, labels, 1, first, seed=7)
    learn_and_wait(qtbot, window)
    learnt = window.learning.learnt
    said = window.learning_panel.summary()
    assert "looks like" in said
    masks = exported(qtbot, window, tmp_path / "before", dialogs)
    assert window.project.save_as(tmp_path / "p.acseg")
    window.open_project(tmp_path / "p.acseg")
    qtbot.waitUntil(lambda: window.session.prediction(image) is not None, timeout=60_000)
    assert window.viewer.preview is not None  # the reopened project's image is on screen
    back = window.learning.learnt
    assert back is not None and back is not learnt and window.session.loaded is back
    assert back.config == learnt.config and back.meta == learnt.meta
    theirs, ours = back.model.state_dict(), learnt.model.state_dict()
    assert theirs.keys() == ours.keys()
    assert all(torch.equal(theirs[k], ours[k]) for k in ours)
    assert window.learning_panel.summary() == said  # its quality and warnings too
    assert exported(qtbot, window, tmp_path / "after", dialogs) == masks
    values = np.asarray(Image.open(tmp_path / "after" / "scene.png"))
    assert len(np.unique(values)) == 2  # two classes, not unnamed clusters


def test_a_learnt_model_file_shows_its_classes_and_colours(qtbot, window, tmp_path) -> None:
    image = tmp_path / "scene.tif"
    labels = make_regions_image(image, size=(SIZE, SIZE), bands=3, classes=2, seed=3)
    loaded = tiny_model(3, 4)
    strokes = np.full(labels.shape, 255, np.uint8)
    strokes[::7, ::7] = labels[::7, ::7]
    samples = run_to_end(gather(loaded, image, StrokeSet.from_map(strokes)))
    fitted = fit_strokes(loaded, [samples], ["water", "roof"], [(0, 0, 200), (200, 0, 0)])
    save_learned(tmp_path / "learnt.pt", fitted)
    window.open_images([image])
    roof = window.classes.add_class("roof", (9, 9, 9))  # the project's own roof stays
    assert window.load_model_reporting(tmp_path / "learnt.pt")
    as_opened = window.classes.class_map
    names = {c.name: c for c in window.classes.classes}
    assert set(names) == {"water", "roof"} and names["roof"].id == roof
    assert names["water"].color == (0, 0, 200) and names["roof"].color == (9, 9, 9)
    assert window.overlay.mode == "classes"
    lut = window.classes.class_lut()
    assert tuple(lut[0][:3]) == (0, 0, 200) and tuple(lut[1][:3]) == (9, 9, 9)
    qtbot.waitUntil(lambda: window.session.prediction(image) is not None, timeout=60_000)
    named = window.classes.class_map.labels_from_clusters(window.session.prediction(image))
    assert set(np.unique(named)) <= {names["water"].id, roof}
    stroke_inside(window, labels, 0, roof, seed=1)  # and it can be taught further
    learn_and_wait(qtbot, window)
    assert set(window.session.loaded.config.classes) == {"water", "roof"}
    assert window.learning.quality is not None
    assert window.learning.undo_learn()  # back to the file's model, still with its classes
    assert window.classes.class_map == as_opened and window.overlay.mode == "classes"


def renumbered(source: Path, target: Path, order: list[int]) -> Path:
    """The same network with its clusters numbered afresh: new j is old ``order[j]``."""
    loaded = load_model(source, device="cpu")
    state = loaded.model.state_dict()
    for name in ("head.weight", "head.bias"):
        state[name] = state[name][order].clone()
    loaded.model.load_state_dict(state)
    save_checkpoint(target, loaded.model, loaded.config)
    return target


def test_retraining_asks_first_and_keeps_the_names_of_matching_clusters(
    qtbot, window, tmp_path: Path, dialogs
) -> None:
    image = tmp_path / "scene.tif"
    make_regions_image(image, size=(SIZE, SIZE), bands=3, classes=3, seed=4)
    window.open_images([image])
    model = tiny_model_file(tmp_path / "m.pt", bands=3, clusters=4, smooth=0)
    window.load_model_reporting(model)
    qtbot.waitUntil(lambda: window.session.prediction(image) is not None, timeout=60_000)
    old = window.session.prediction(image)
    present = [int(k) for k in np.unique(old) if k < 4]
    assert len(present) >= 2
    named = {present[0]: window.classes.add_class("water"),
             present[1]: window.classes.add_class("roof")}  # fmt: skip
    for cluster, class_id in named.items():
        window.classes.assign(cluster, class_id)
    order = [2, 0, 3, 1]
    retrained = renumbered(model, tmp_path / "retrained.pt", order)

    dialogs.answer = "no"
    assert not window.load_model_reporting(retrained)
    assert "Replace the model" in dialogs.titles()
    assert window.session.model_path == model and window.classes.class_of(present[0]) is not None

    dialogs.answer = "yes"
    said: list[str] = []
    window.models.message.connect(said.append)
    assert window.load_model_reporting(retrained)
    qtbot.waitUntil(lambda: window.models.carry is None, timeout=60_000)
    for new, was in enumerate(order):
        expected = named.get(was)
        got = window.classes.class_of(new)
        assert (got.id if got is not None else None) == expected
    assert said and said[-1].startswith("Names carried over to 2 of 4 clusters")
