"""The strokes read-out on the feature bank: its fit, its folded module, its samples."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from acseg_core.errors import AcsegError
from acseg_core.features.for_model import BANK_DIGEST, with_bank
from acseg_core.jobs import run_to_end
from acseg_core.learning.fit import fit_strokes
from acseg_core.learning.live import LiveImage
from acseg_core.learning.samples import gather, pseudo_pixels
from acseg_core.learning.strokes import StrokeSet
from acseg_core.model.readouts.bank_strokes import BankStrokesKind, Projection
from acseg_core.model.readouts.base import ReadoutShape
from acseg_core.model.readouts.logistic import fit_logistic
from tests.core.synthetic import make_regions_image, tiny_model

NAMES = ["a", "b", "c"]
COLOURS = [(255, 0, 0), (0, 255, 0), (0, 0, 255)]


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory):
    folder = tmp_path_factory.mktemp("bank_strokes")
    image = folder / "scene.tif"
    labels = make_regions_image(image, size=(80, 104), bands=4, classes=3, seed=5)
    return image, labels, tiny_model(4, 4, fit_on=[image], overclusters=8)


def strokes_of(labels: np.ndarray, per_class: int = 30, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    out = np.full(labels.shape, 255, np.uint8)
    for c in range(3):
        r, k = np.nonzero(labels == c)
        pick = rng.choice(len(r), per_class, replace=False)
        out[r[pick], k[pick]] = c
    return out


def test_unlabelled_samples_spread_over_the_image_and_do_not_move_with_the_strokes() -> None:
    marks = np.full((200, 100), 255, np.uint8)
    valid = np.ones((200, 100), bool)
    valid[190:] = False  # nodata rows
    rows, cols = pseudo_pixels(valid, StrokeSet.from_map(marks), 500, seed=0)
    assert len(rows) == 500
    assert rows.min() < 20 and rows.max() > 170 and abs(rows.mean() - 95) < 12
    assert (rows < 190).all()
    marks[:, :10] = 0  # a new stroke: the same unlabelled pixels (the same statistics)
    again = pseudo_pixels(valid, StrokeSet.from_map(marks), 500, seed=0)
    assert np.array_equal(rows, again[0]) and np.array_equal(cols, again[1])
    other = pseudo_pixels(valid, StrokeSet.from_map(marks), 500, seed=1)
    assert not np.array_equal(rows, other[0])


def test_the_folded_module_gives_at_every_pixel_what_the_fit_gives_its_samples(scene) -> None:
    image, labels, loaded = scene
    live = LiveImage(loaded, image)
    samples = live.samples(StrokeSet.from_map(strokes_of(labels)), pseudo=1500, seed=0)
    fitted = fit_strokes(loaded, [samples], NAMES, COLOURS)
    assert fitted.config.readout.kind == BankStrokesKind.name
    probs = live.probabilities(fitted).numpy()
    at_pixels = probs[:, samples.pixels[:, 0], samples.pixels[:, 1]].T
    by_fit = BankStrokesKind().classify(fitted.model.readout, samples.blocks)
    assert np.abs(at_pixels - by_fit).max() < 1e-4
    ids = probs.argmax(axis=0)
    assert (ids == labels).mean() > 0.9  # the unstroked pixels follow their regions


def test_gather_over_tiles_gives_the_samples_of_the_one_shot_view(scene) -> None:
    image, labels, loaded = scene
    stroke_set = StrokeSet.from_map(strokes_of(labels, seed=1))
    tiled = run_to_end(gather(loaded, image, stroke_set, tile=48, pseudo=200, seed=3))
    whole = LiveImage(loaded, image).samples(stroke_set, pseudo=200, seed=3)
    assert np.array_equal(tiled.pixels, whole.pixels)
    for name, block in whole.blocks.items():
        assert np.allclose(tiled.blocks[name], block, atol=1e-4), name


def test_projections_whiten_the_leading_components_and_drop_empty_ones() -> None:
    rng = np.random.default_rng(0)
    signal = rng.normal(size=(2000, 3)) @ rng.normal(size=(3, 12))  # rank 3 in 12 channels
    projection = Projection(signal, components=8)
    z = projection.apply(signal)
    assert z.shape[1] == 3  # the rank, not 8 whitened noise directions
    assert np.allclose(np.cov(z, rowvar=False, bias=True), np.eye(3), atol=1e-6)
    weight = rng.normal(size=(2, 3))
    raw, bias = projection.fold(weight)
    assert np.allclose(signal @ raw.T + bias, z @ weight.T)


def test_a_model_without_a_bank_is_taught_on_the_default_bank_and_records_it(scene) -> None:
    loaded = scene[2]
    assert loaded.config.bank is None
    attached = with_bank(loaded)
    assert attached.config.bank is not None and attached.meta[BANK_DIGEST]
    assert attached.model.stem is loaded.model.stem  # the same trunk, not a copy
    assert loaded.model.config.bank is None  # the base keeps its config
    shape = ReadoutShape(8, 4, 4, 3, 4)  # no bank levels
    with pytest.raises(AcsegError, match="feature bank"):
        BankStrokesKind().fit(shape, {}, np.array([0, 1]), 0)


def test_learnt_bank_model_predicts_with_a_cached_store(scene, tmp_path: Path) -> None:
    image, labels, loaded = scene
    cache = tmp_path / "features"
    live = LiveImage(loaded, image, feature_cache=cache)
    stores = list(cache.iterdir())
    assert len(stores) == 1  # computed once, kept for the next pass
    again = LiveImage(loaded, image, feature_cache=cache)
    assert list(cache.iterdir()) == stores
    samples = live.samples(StrokeSet.from_map(strokes_of(labels)), pseudo=500)
    fitted = fit_strokes(loaded, [samples], NAMES, COLOURS)
    assert np.array_equal(live.predict(fitted), again.predict(fitted))


def test_logistic_regression_is_the_balanced_l2_optimum() -> None:
    """At the optimum the penalised, class-balanced loss has zero gradient (what
    scikit-learn's LogisticRegression(C, class_weight="balanced") solves); an absent
    class is never predicted."""
    rng = np.random.default_rng(1)
    x = rng.normal(size=(600, 5))
    labels = np.where(x[:, 0] > 0.8, 2, np.where(x[:, 1] > 0, 1, 0))  # unbalanced classes
    c = 0.1
    w, b = fit_logistic(x, labels, 4, c)
    assert (b[3] < -1e3) and not w[3].any()  # class 3 has no samples
    present = np.array([0, 1, 2])
    logits = x @ w[present].T.astype(np.float64) + b[present]
    probs = np.exp(logits - logits.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    counts = np.bincount(labels)
    weight = c * len(labels) / (3 * counts[labels])
    residual = (probs - np.eye(3)[labels]) * weight[:, None]
    grad_w = residual.T @ x + w[present]
    assert np.abs(grad_w).max() < 1e-3 and np.abs(residual.sum(axis=0)).max() < 1e-3
    assert (logits.argmax(axis=1) == labels).mean() > 0.8
