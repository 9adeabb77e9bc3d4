"""Fine-tuning the trunk on strokes (MI + cross-entropy): a copy changes, the base not."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from acseg_core.errors import AcsegError
from acseg_core.learning.finetune import StrokedInput, finetune_trunk, stroked_input
from acseg_core.learning.fit import fit_strokes
from acseg_core.learning.live import LiveImage
from acseg_core.learning.strokes import StrokeSet
from tests.core.synthetic import make_regions_image, tiny_model

NAMES = ["a", "b", "c"]
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory):
    image = tmp_path_factory.mktemp("finetune") / "scene.png"
    labels = make_regions_image(image, size=(64, 80), bands=3, classes=3, seed=2)
    rng = np.random.default_rng(0)
    strokes = np.full(labels.shape, 255, np.uint8)
    for c in range(3):
        r, k = np.nonzero(labels == c)
        pick = rng.choice(len(r), 30, replace=False)
        strokes[r[pick], k[pick]] = c
    return image, labels, strokes, tiny_model(3, 4, fit_on=[image])


def _trunk(model) -> list[torch.Tensor]:
    return [p.detach().clone() for n, p in model.named_parameters() if not n.startswith("readout")]


def test_finetune_changes_a_copy_of_the_trunk_and_is_seeded(scene) -> None:
    image, _, strokes, loaded = scene
    before = _trunk(loaded.model)
    item = stroked_input(loaded, str(image), StrokeSet.from_map(strokes))
    tuned = finetune_trunk(loaded, [item], 3, steps=3, seed=0, crop=48)
    again = finetune_trunk(loaded, [item], 3, steps=3, seed=0, crop=48)
    assert all(torch.equal(a, b) for a, b in zip(before, _trunk(loaded.model), strict=True))
    assert any(not torch.equal(a, b) for a, b in zip(before, _trunk(tuned.model), strict=True))
    assert all(torch.equal(a, b) for a, b in
               zip(_trunk(tuned.model), _trunk(again.model), strict=True))  # fmt: skip
    assert tuned.digest == again.digest != loaded.digest
    assert tuned.meta["finetune"]["steps"] == 3


def test_zero_steps_keeps_the_trunk_and_strokes_fit_on_a_tuned_trunk(scene) -> None:
    image, labels, strokes, loaded = scene
    item = stroked_input(loaded, str(image), StrokeSet.from_map(strokes))
    same = finetune_trunk(loaded, [item], 3, steps=0)
    assert all(torch.equal(a, b) for a, b in
               zip(_trunk(loaded.model), _trunk(same.model), strict=True))  # fmt: skip
    tuned = finetune_trunk(loaded, [item], 3, steps=5, seed=1, crop=48, lr=1e-3)
    live = LiveImage(tuned, image)
    fitted = fit_strokes(tuned, [live.samples(StrokeSet.from_map(strokes))], NAMES, COLOURS)
    ids = live.predict(fitted, smooth=0)
    assert ids.shape == labels.shape
    assert (ids == labels).mean() > 0.5  # the regions are learnt, not noise


def test_finetune_without_strokes_refuses(scene) -> None:
    _, _, strokes, loaded = scene
    empty = StrokeSet.from_map(np.full(strokes.shape, 255, np.uint8))
    with pytest.raises(AcsegError):
        finetune_trunk(loaded, [StrokedInput(torch.zeros(1, 3, 8, 8), empty)], 3, steps=1)


def test_a_cluster_map_inferred_from_strokes_names_only_pure_clusters() -> None:
    from acseg_core.learning.fit import inferred_cluster_classes, training_labels
    from acseg_core.learning.samples import Samples

    # cluster 0: strokes all class 1; cluster 1: mixed 2/0; cluster 2: unstroked
    labels = np.array([1, 1, 1, 2, 0, -1, -1, -1], np.int16)
    clusters = np.array([0, 0, 0, 1, 1, 0, 1, 2], np.uint8)
    blocks = {name: np.zeros((8, 1), np.float32) for name in ("grid", "context", "bands")}
    samples = Samples(blocks, labels, clusters)
    assert inferred_cluster_classes(samples, 3) == [1, -1]
    inferred = training_labels(samples, 3, [1, -1], stroked_classes_too=True)
    assert inferred.tolist() == [1, 1, 1, 2, 0, 1, -1, -1]
    # a user's map never overrules a stroked class
    assert training_labels(samples, 3, [1, -1]).tolist() == [1, 1, 1, 2, 0, -1, -1, -1]


def test_infer_map_fit_teaches_unstroked_pixels_of_a_stroked_cluster(scene) -> None:
    from acseg_core.learning.fit import fit_strokes as fit

    image, labels, strokes, loaded = scene
    live = LiveImage(loaded, image)
    samples = live.samples(StrokeSet.from_map(strokes), pseudo=500, seed=0)
    plain = fit(loaded, [samples], NAMES, COLOURS)
    inferred = fit(loaded, [samples], NAMES, COLOURS, infer_map=True)
    assert sum(inferred.meta["strokes"]["samples"]) > sum(plain.meta["strokes"]["samples"])
    assert (live.predict(inferred, smooth=0) == labels).mean() > 0.5
