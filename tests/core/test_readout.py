"""The k-means read-out: exact nearest-centre logits, fitting after training, tiling."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
import torch.nn.functional as F

from acseg_core.cli import main
from acseg_core.errors import AcsegError
from acseg_core.inference.predict import predict_array
from acseg_core.model.checkpoint import load_model
from acseg_core.model.config import ModelConfig
from acseg_core.model.readouts import ReadOut
from acseg_core.model.readouts.kmeans import BlockScaling, KMeansReadout
from acseg_core.presets import preset
from acseg_core.training.config import TrainConfig
from acseg_core.training.loop import train
from acseg_core.training.run_log import read_log
from tests.core.synthetic import make_regions_image


def test_readout_logits_pick_the_nearest_centre_in_the_scaled_space() -> None:
    rng = np.random.default_rng(0)
    features = torch.from_numpy(rng.normal(2.0, 3.0, (1, 6, 5, 4)).astype(np.float32))
    x = torch.from_numpy(rng.normal(0.0, 0.5, (1, 3, 20, 16)).astype(np.float32))
    up = F.interpolate(features, size=(20, 16), mode="bilinear", align_corners=False)
    feature_samples = up.flatten(2)[0].T.double().numpy()
    band_samples = x.flatten(2)[0].T.double().numpy()
    feature_map, band_map = BlockScaling(feature_samples), BlockScaling(band_samples)
    scaled = np.concatenate([feature_map(feature_samples), band_map(band_samples)], axis=1)
    # each block has unit total variance: neither drowns the other
    assert np.isclose(feature_map(feature_samples).var(axis=0).sum(), 1.0)
    assert np.isclose(band_map(band_samples).var(axis=0).sum(), 1.0)
    centres = scaled[rng.choice(len(scaled), 4, replace=False)] + rng.normal(0, 0.1, (4, 9))

    readout = KMeansReadout(6, 3, 4)
    assert not readout.is_fitted
    readout.set_centres(feature_map, band_map, centres)
    assert readout.is_fitted
    with torch.no_grad():
        probs = readout(features, x)
    distances = ((scaled[:, None, :] - centres[None]) ** 2).sum(axis=2)
    expected = distances.argmin(axis=1).reshape(20, 16)
    assert probs.shape == (1, 4, 20, 16)
    assert np.array_equal(probs[0].argmax(dim=0).numpy(), expected)
    assert len(np.unique(expected)) > 1


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    for index in range(2):
        make_regions_image(folder / f"scene{index}.tif", size=(96, 96), bands=3, seed=index)
    return folder


def test_training_fits_the_readout_and_the_head_stays_selectable(
    tiny_data: Path, tmp_path: Path
) -> None:
    model = preset("cpu-small", clusters=3, base_width=8, blocks=2, readout=ReadOut("kmeans", 0))
    cfg = TrainConfig(
        inputs=(str(tiny_data),), out_dir=str(tmp_path / "run"), model=model, steps=4,
        steps_per_epoch=2, crop=32, batch=2, lr=1e-3, displacement=2, device="cpu", workers=0,
    )  # fmt: skip
    messages = [p.message for p in train(cfg)]
    assert "fitting the read-out" in messages
    assert any(r["event"] == "readout" for r in read_log(tmp_path / "run" / "train.jsonl"))
    loaded = load_model(tmp_path / "run" / "model.pt", device="cpu")
    assert loaded.config.readout.kind == "kmeans" and loaded.model.fitted_readout == "kmeans"
    image = next(tiny_data.glob("*.tif"))
    kmeans = predict_array(loaded, image, precision="fp32").clusters
    head = predict_array(loaded, image, precision="fp32", readout=ReadOut("head")).clusters
    assert kmeans.shape == head.shape == (96, 96)
    assert not np.array_equal(kmeans, head)  # two different read-outs
    # tiles still equal one pass: the read-out is per pixel plus the head's features
    tiled = predict_array(loaded, image, precision="fp32", tile=48).clusters
    assert np.array_equal(tiled, kmeans)
    with pytest.raises(AcsegError, match="read-out"):
        predict_array(loaded, image, readout=ReadOut("median"))

    # the CLI passes --readout/--smooth through to every file
    out = tmp_path / "plain"
    model_path = str(tmp_path / "run" / "model.pt")
    args = ["predict", model_path, str(image), "--out", str(out), "--precision", "fp32"]
    assert main([*args, "--readout", "head", "--smooth", "0", "--device", "cpu"]) == 0
    [written] = out.glob("*.tif")  # the COG (its .qml and .tif.aux.xml beside it)
    with rasterio.open(written) as raster:
        assert np.array_equal(raster.read(1), head)
    with pytest.raises(SystemExit) as refused:  # argparse refuses the choice
        main([*args, "--readout", "median"])
    assert refused.value.code == 2


def test_model_config_refuses_an_unknown_readout() -> None:
    with pytest.raises(AcsegError, match="unknown read-out 'median'"):
        ModelConfig(readout=ReadOut("median", 0))
    with pytest.raises(AcsegError, match="readout must name a kind and a window"):
        ModelConfig(readout=ReadOut("kmeans"))
