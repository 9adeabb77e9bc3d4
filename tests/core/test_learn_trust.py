"""A learning loop a user can trust (core): undo of a learn, names carried over to a
retrained model's matching clusters, a learnt model file's own classes, the visible
image refitted from its LiveImage, and `learn` saying which strokes disagree."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from acseg_core.cli import main
from acseg_core.errors import AcsegError
from acseg_core.inference.predict import predict_array
from acseg_core.jobs import run_to_end
from acseg_core.labelling.classes import ClassMap
from acseg_core.labelling.cluster_match import carry_names, overlap
from acseg_core.labelling.learn_history import LearnHistory
from acseg_core.labelling.teaching import classes_for_learnt
from acseg_core.learning.job import learn, quality_of
from acseg_core.learning.live import LiveImage
from acseg_core.learning.live_learn import learn_visible
from acseg_core.learning.strokes import StrokeSet
from acseg_core.model.checkpoint import load_model, save_checkpoint
from acseg_core.model.config import ModelConfig
from acseg_core.model.readouts import ReadOut
from tests.core.synthetic import disk_strokes, make_regions_image, tiny_model

NAMES = ["a", "b", "c"]
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


@pytest.fixture(scope="module")
def scenes(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("trust")
    first, second = folder / "one.png", folder / "two.png"
    labels = make_regions_image(first, size=(80, 96), bands=3, classes=3, seed=1)
    other = make_regions_image(second, size=(72, 64), bands=3, classes=3, seed=2)
    return (first, labels), (second, other), tiny_model(3, 4, fit_on=[first, second])


def test_undo_of_a_learn_gives_back_each_earlier_model_in_turn() -> None:
    history = LearnHistory(limit=2)
    first, second, third = tiny_model(seed=1), tiny_model(seed=2), tiny_model(seed=3)
    assert not history.can_undo
    history.learnt(None)  # the first learn replaced the unsupervised model
    history.learnt(first)
    history.learnt(second)  # the oldest step goes: the limit is 2
    assert history.undo() is second and history.undo() is first
    assert not history.can_undo
    with pytest.raises(AcsegError, match="no learn to undo"):
        history.undo()
    history.learnt(third)
    history.clear()
    assert len(history) == 0


def test_names_are_kept_where_a_retrained_models_clusters_match() -> None:
    rng = np.random.default_rng(0)
    old = rng.integers(0, 4, (60, 70)).astype(np.uint8)
    old[:5] = 255  # nodata is ignored
    renumber = np.array([2, 0, 3, 1], np.uint8)  # the retrained model numbers afresh
    new = renumber[np.minimum(old, 3)]
    new[:5] = 255
    noise = rng.random(old.shape) < 0.1
    new[noise] = rng.integers(0, 4, int(noise.sum()))  # and disagrees on 10 % of pixels
    new[old == 3] = np.where(rng.random(int((old == 3).sum())) < 0.5, 1, 4)  # 3 splits
    cmap = ClassMap.empty(4).add_class("water").add_class("roof").add_class("tree")
    water, roof, tree = (c.id for c in cmap.classes)
    cmap = cmap.assign_many({0: water, 1: roof, 2: tree})  # old cluster 3 unnamed
    carried, matches = carry_names(cmap, [(old, new)], 5)
    assert carried.clusters == 5 and carried.classes == cmap.classes
    assert carried.class_of_cluster(2).id == water  # old 0
    assert carried.class_of_cluster(0).id == roof  # old 1
    assert carried.class_of_cluster(3).id == tree  # old 2
    assert carried.class_of_cluster(1) is None  # half old 3 (unnamed), half noise
    assert carried.class_of_cluster(4) is None  # the unnamed cluster's other half
    assert matches == {2: 0, 0: 1, 3: 2}
    assert overlap(old, new, 4, 5).sum() == int((old != 255).sum())
    with pytest.raises(AcsegError, match="different sizes"):
        overlap(old, new[:-1], 4, 5)


def test_a_learnt_model_file_brings_its_classes_and_colours() -> None:
    config = ModelConfig(
        clusters=4, readout=ReadOut("strokes", 0), classes=("water", "roof", "field"),
        class_colours=((0, 0, 200), (200, 0, 0), (0, 200, 0)),
    )  # fmt: skip
    project = ClassMap.empty(6).add_class("roof", (9, 9, 9))
    roof = project.classes[0].id
    cmap, ids = classes_for_learnt(project, config)
    assert [c.name for c in cmap.classes] == ["roof", "water", "field"]
    assert ids[1] == roof and cmap.class_by_id(roof).color == (9, 9, 9)  # the project's
    assert cmap.class_by_id(ids[0]).color == (0, 0, 200)  # the model's own
    assert cmap.class_by_id(ids[2]).color == (0, 200, 0)
    # its own project's ids are taken while their names agree
    renamed = cmap.rename_class(ids[2], "crops")
    again, same = classes_for_learnt(cmap, config, ids)
    assert same == ids and again == cmap
    moved, new_ids = classes_for_learnt(renamed, config, ids)
    assert new_ids[:2] == ids[:2] and new_ids[2] not in ids
    assert moved.class_by_id(new_ids[2]).name == "field"


def test_the_visible_image_refits_from_its_live_pass_as_a_plain_learn_does(scenes) -> None:
    (first, labels), (second, other), loaded = scenes
    strokes = {
        first: StrokeSet.from_map(disk_strokes(labels, 3, seed=0)),
        second: StrokeSet.from_map(disk_strokes(other, 2, seed=1)),
    }
    mapping = (0, -1, 2, -1)
    plain = run_to_end(learn(loaded, strokes, NAMES, COLOURS, cluster_classes=mapping,
                             check=False))  # fmt: skip
    live = LiveImage(loaded, first)
    cache: dict = {}
    fitted, ids = run_to_end(learn_visible(loaded, live, strokes, NAMES, COLOURS,
                                           cluster_classes=mapping, cache=cache,
                                           check=False))  # fmt: skip
    assert fitted.digest == plain.digest  # the same samples, the same fit
    assert [Path(key[0]) for key in cache] == [second]  # the visible image needs no gather
    tiled = predict_array(fitted, first, readout=ReadOut(None, None), precision="fp32").clusters
    assert np.array_equal(ids, tiled)


def test_learn_prints_the_quality_and_names_a_stroke_on_the_wrong_class(
    scenes, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (first, labels), _second, loaded = scenes
    model = tmp_path / "m.pt"
    save_checkpoint(model, loaded.model, loaded.config)
    strokes = disk_strokes(labels, 4, seed=3)
    r, k = np.nonzero(disk_strokes(labels, 1, seed=9) == 2)
    strokes[r, k] = 0  # an "a" stroke over class c
    folder = tmp_path / "strokes"
    folder.mkdir()
    Image.fromarray(strokes).save(folder / f"{first.stem}.png")
    names = tmp_path / "classes.txt"
    names.write_text("a\nb\nc\n")
    out = tmp_path / "learnt.pt"
    assert main(["learn", str(model), str(first), "--strokes", str(folder), "--classes",
                 str(names), "--out", str(out)]) == 0  # fmt: skip
    printed = capsys.readouterr()
    assert "leave-one-stroke-out accuracy: a " in printed.out
    assert f"warning: a a stroke on {first.name}" in printed.err
    assert "looks like c" in printed.err
    quality = quality_of(load_model(out, device="cpu"))
    assert quality is not None and quality.suspects[0].looks_like == "c"
