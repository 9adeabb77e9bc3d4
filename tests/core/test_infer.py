"""Tiled prediction: seamless stitching, outputs on disk, nodata, errors, cancel, CLI."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image

import acseg_core.inference.predict as infer
from acseg_core.cli import main
from acseg_core.errors import CancelledError, InputError
from acseg_core.io.normalise import Normalisation, apply_normalisation
from acseg_core.io.raster import NODATA, Raster, open_raster
from acseg_core.jobs import CancelToken
from acseg_core.model import geometry
from acseg_core.model.checkpoint import LoadedModel, save_checkpoint
from acseg_core.model.nn import build_model
from acseg_core.model.readouts import PLAIN_HEAD, ReadOut
from acseg_core.presets import preset
from tests.core.synthetic import make_regions_image

SIZE = 600


@pytest.fixture(scope="module")
def scene(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("scene") / "scene.tif"
    make_regions_image(path, size=(SIZE, SIZE), bands=4, classes=5, seed=3)
    return path


@pytest.fixture(scope="module")
def loaded(scene: Path) -> LoadedModel:
    """Random-init ``cpu-small`` whose clusters are balanced on ``scene``.

    A fresh network puts almost every pixel in one cluster, so its argmax hardly
    depends on context and a seam test on it would pass even without overlap.
    Centring each cluster's mean log-probability (a bias shift in the 1×1 head,
    which bilinear upsampling carries through unchanged) spreads the pixels over
    all clusters and makes the argmax sensitive to every input in the field.
    """
    torch.manual_seed(0)
    config = preset(
        "cpu-small",
        in_channels=4,
        clusters=6,
        base_width=32,  # the network this test was tuned on; raw argmax, no filter
        readout=ReadOut(None, 0),
        normalisation=Normalisation(low=(0.0,) * 4, high=(255.0,) * 4),
    )
    model = build_model(config).eval()
    with open_raster(scene) as raster:
        x = torch.from_numpy(apply_normalisation(raster.read(), config.normalisation))[None]
    with torch.no_grad():
        model.head.bias -= model(x).clamp_min(1e-12).log().mean(dim=(0, 2, 3))
    return LoadedModel(model, config, torch.device("cpu"))


def one_shot(loaded: LoadedModel, image: Path) -> infer.Prediction:
    """The whole image in a single forward pass (a tile larger than the image)."""
    return infer.predict_array(loaded, image, tile=1024, precision="fp32", with_confidence=True)


def test_tiled_prediction_matches_one_shot_and_needs_the_overlap(
    loaded: LoadedModel, scene: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    whole = one_shot(loaded, scene)
    counts = np.bincount(whole.clusters.ravel(), minlength=6)
    assert (counts > 0.03 * SIZE * SIZE).sum() >= 4, "clusters must be spread for the test"

    tiled = infer.predict_array(
        loaded, scene, tile=128, batch=3, precision="fp32", with_confidence=True
    )
    assert tiled.clusters.shape == (SIZE, SIZE) and tiled.clusters.dtype == np.uint8
    assert (tiled.clusters == whole.clusters).mean() >= 0.995
    np.testing.assert_allclose(tiled.confidence, whole.confidence, atol=1e-4)

    # the same tiling without overlap shows seams: the check above has teeth
    monkeypatch.setattr(geometry, "tile_margin", lambda config, scale=1.0, extra_cells=0: 0)
    seamy = infer.predict_array(loaded, scene, tile=128, batch=3, precision="fp32")
    assert (seamy.clusters == whole.clusters).mean() < 0.995


def test_reduced_precision_is_still_seamless(loaded: LoadedModel, scene: Path) -> None:
    whole = infer.predict_array(loaded, scene, tile=1024, precision="bf16")
    tiled = infer.predict_array(loaded, scene, tile=256, batch=2, precision="bf16")
    assert (tiled.clusters == whole.clusters).mean() >= 0.995


def test_reads_only_tile_sized_windows(
    loaded: LoadedModel, scene: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    windows: list[tuple[int, int, int, int]] = []
    original = Raster.read

    def spy(self: Raster, window=None, bands=None, out_shape=None):  # type: ignore[no-untyped-def]
        windows.append(window)
        return original(self, window, bands, out_shape)

    monkeypatch.setattr(Raster, "read", spy)
    infer.predict_array(loaded, scene, tile=256, precision="fp32")
    assert windows and all(w is not None and w[2] <= 256 and w[3] <= 256 for w in windows)


def test_geotiff_output_keeps_georeference_and_marks_nodata(
    loaded: LoadedModel, tmp_path: Path
) -> None:
    source = tmp_path / "holes.tif"
    make_regions_image(source, size=(300, 260), bands=4, classes=3, seed=1, nodata=0)
    in_memory = infer.predict_array(loaded, source, tile=128, with_confidence=True)
    out = tmp_path / "out" / "holes_clusters.tif"
    progress = []
    gen = infer.predict(loaded, source, out=out, tile=128, with_confidence=True)
    while True:
        try:
            progress.append(next(gen))
        except StopIteration as stop:
            result = stop.value
            break
    assert result.out_path == out and result.clusters is None
    assert progress[-1].done == progress[-1].total and progress[-1].total > 1
    with rasterio.open(source) as src, rasterio.open(out) as dst:
        assert (dst.width, dst.height, dst.count, dst.dtypes[0]) == (260, 300, 1, "uint8")
        assert dst.crs == src.crs and dst.transform == src.transform
        assert dst.nodata == NODATA
        written = dst.read(1)
        nodata_pixels = (src.read() == 0).all(axis=0)
    np.testing.assert_array_equal(written, in_memory.clusters)
    assert nodata_pixels.any()
    assert (written[nodata_pixels] == NODATA).all()
    assert (written[~nodata_pixels] < 6).all()
    with rasterio.open(result.confidence_path) as conf:
        confidence = conf.read(1)
        assert conf.dtypes[0] == "float32" and conf.crs == dst.crs
    assert np.isnan(confidence[nodata_pixels]).all()
    valid = confidence[~nodata_pixels]
    assert (valid >= 1 / 6 - 1e-6).all() and (valid <= 1).all()
    assert not list(out.parent.glob(".*")), "no temp files left behind"


def test_png_source_gives_streamed_png(loaded: LoadedModel, tmp_path: Path) -> None:
    source = tmp_path / "photo.png"
    make_regions_image(source, size=(203, 157), bands=4, classes=3, seed=2, crs=False)
    in_memory = infer.predict_array(loaded, source, tile=96)
    out = tmp_path / "photo_clusters.png"
    infer.predict_array(loaded, source, out=out, tile=96)
    with Image.open(out) as png:
        assert png.mode == "L" and png.size == (157, 203)
        np.testing.assert_array_equal(np.asarray(png), in_memory.clusters)


def test_band_count_mismatch_names_image_and_counts(loaded: LoadedModel, tmp_path: Path) -> None:
    rgb = tmp_path / "rgb.tif"
    make_regions_image(rgb, size=(64, 64), bands=3)
    with pytest.raises(InputError) as error:
        infer.predict_array(loaded, rgb)
    message = str(error.value)
    assert "rgb.tif" in message and "3 band" in message and "4" in message


def test_cancel_stops_within_a_batch_and_leaves_no_file(
    loaded: LoadedModel, scene: Path, tmp_path: Path
) -> None:
    cancel = CancelToken()
    out = tmp_path / "cancelled.tif"
    gen = infer.predict(loaded, scene, out=out, tile=128, batch=2, cancel=cancel)
    first = next(gen)
    cancel.cancel()
    with pytest.raises(CancelledError):
        next(gen)
    assert 0 < first.done < first.total
    assert not out.exists() and not list(tmp_path.iterdir())


def test_model_without_normalisation_uses_per_image_statistics(
    loaded: LoadedModel, scene: Path
) -> None:
    bare = LoadedModel(loaded.model, replace(loaded.config, normalisation=None), loaded.device)
    with open_raster(scene) as raster:  # the image's own robust 2–98 % range, per band
        data = raster.read().reshape(4, -1).astype(np.float64)
    low, high = np.percentile(data, 2, axis=1), np.percentile(data, 98, axis=1)
    stats = Normalisation(tuple(low.tolist()), tuple(high.tolist()))
    explicit = LoadedModel(loaded.model, replace(loaded.config, normalisation=stats), loaded.device)
    a = infer.predict_array(bare, scene, tile=256, precision="fp32")
    b = infer.predict_array(explicit, scene, tile=256, precision="fp32")
    np.testing.assert_array_equal(a.clusters, b.clusters)


def test_cli_predicts_folder_and_reports_bad_files(
    loaded: LoadedModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_file = tmp_path / "model.pt"
    save_checkpoint(model_file, loaded.model, loaded.config)
    inputs = tmp_path / "in"
    inputs.mkdir()
    make_regions_image(inputs / "a.tif", size=(90, 70), bands=4)
    make_regions_image(inputs / "b.png", size=(50, 60), bands=4, crs=False)
    (inputs / "broken.tif").write_text("not an image")
    make_regions_image(inputs / "rgb.tif", size=(40, 40), bands=3)
    out = tmp_path / "out"
    code = main(["predict", str(model_file), str(inputs), "--out", str(out), "--tile", "64"])
    captured = capsys.readouterr()
    assert code == 1
    errors = [line for line in captured.err.splitlines() if "error" in line]
    assert len(errors) == 2
    assert any("broken.tif" in e for e in errors) and any("rgb.tif" in e for e in errors)
    assert "Traceback" not in captured.err
    assert sorted(p.name for p in out.iterdir()) == [
        "a_clusters.qml", "a_clusters.tif", "a_clusters.tif.aux.xml", "b_clusters.png"
    ]  # the GeoTIFF is a COG with its ids' names beside it (docs/outputs.md)
    with rasterio.open(inputs / "a.tif") as src, rasterio.open(out / "a_clusters.tif") as dst:
        assert (dst.width, dst.height) == (src.width, src.height)
        assert dst.crs == src.crs and dst.transform == src.transform
        assert dst.tags(ns="IMAGE_STRUCTURE")["LAYOUT"] == "COG"


def test_cli_refuses_a_tile_smaller_than_the_overlap(
    loaded: LoadedModel, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    model_file = tmp_path / "model.pt"
    save_checkpoint(model_file, loaded.model, loaded.config)
    make_regions_image(tmp_path / "a.tif", size=(40, 40), bands=4)
    image, out = str(tmp_path / "a.tif"), str(tmp_path / "o")
    code = main(["predict", str(model_file), image, "--out", out, "--tile", "16"])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1 and len(err) == 1 and "too small" in err[0]
    assert not (tmp_path / "o").exists()


def test_input_scale_from_training_is_applied_and_tiling_stays_exact(
    loaded: LoadedModel, scene: Path
) -> None:
    """A model trained with ``--scale 0.5`` sees half-resolution tiles at prediction too."""
    from dataclasses import replace as dc_replace

    half = dc_replace(loaded, meta={**loaded.meta, "input_scale": 0.5})
    seen: list[tuple[int, int]] = []
    hook = half.model.stem.register_forward_pre_hook(
        lambda _m, args: seen.append(args[0].shape[-2:])
    )
    try:
        one_shot = infer.predict_array(half, scene, tile=1024, precision="fp32").clusters
        tiled = infer.predict_array(half, scene, tile=128, precision="fp32").clusters
    finally:
        hook.remove()
    full = infer.predict_array(loaded, scene, tile=1024, precision="fp32").clusters
    assert one_shot.shape == full.shape == (SIZE, SIZE)
    assert tuple(seen[0]) == (SIZE // 2, SIZE // 2)  # the one-shot pass ran at half size
    assert (tiled == one_shot).mean() >= 0.995
    assert (one_shot != full).mean() > 0.01  # the scale really changed what the net saw


def test_an_image_not_a_multiple_of_the_stride_tiles_like_one_shot(tmp_path: Path) -> None:
    """The grid is upsampled by the stride, not stretched to the image's size."""
    scene = tmp_path / "odd.tif"
    make_regions_image(scene, size=(301, 333), bands=3, classes=4, seed=2)
    torch.manual_seed(0)
    config = preset(
        "cpu-small", in_channels=3, clusters=5, readout=PLAIN_HEAD,
        normalisation=Normalisation(low=(0.0,) * 3, high=(255.0,) * 3),
    )  # fmt: skip
    model = build_model(config).eval()
    with open_raster(scene) as raster:
        x = torch.from_numpy(apply_normalisation(raster.read(), config.normalisation))[None]
    with torch.no_grad():
        model.head.bias -= model(x).clamp_min(1e-12).log().mean(dim=(0, 2, 3))
    odd = LoadedModel(model, config, torch.device("cpu"))
    whole = infer.predict_array(odd, scene, tile=1024, precision="fp32", with_confidence=True)
    tiled = infer.predict_array(odd, scene, tile=128, precision="fp32", with_confidence=True)
    assert (np.bincount(whole.clusters.ravel(), minlength=5) > 0.05 * x[0, 0].numel()).sum() >= 3
    np.testing.assert_allclose(tiled.confidence, whole.confidence, atol=1e-4)
