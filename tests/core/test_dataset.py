"""Folder scans, band statistics and crops: clear refusals, nodata kept out."""

from __future__ import annotations

import numpy as np
import pytest

from acseg_core.errors import AcsegError, InputError
from acseg_core.io.normalise import apply_normalisation
from acseg_core.io.raster import open_raster
from acseg_core.training.crops import CropDataset
from acseg_core.training.dataset import measure_normalisation, scan_inputs
from tests.core.synthetic import IGNORE, make_regions_array, make_regions_image, write_image


@pytest.mark.parametrize(
    ("bands", "dtype", "nodata"),
    [
        (1, "uint8", None),
        (3, "uint16", 0),
        (4, "int16", -9999),
        (5, "float32", -1.0),
        (4, "float64", None),
    ],
)
def test_geotiff_band_and_dtype_variants_load(tmp_path, bands, dtype, nodata) -> None:
    path = tmp_path / f"img_{dtype}.tif"
    labels = make_regions_image(path, size=(40, 50), bands=bands, dtype=dtype, nodata=nodata)
    scan = scan_inputs([tmp_path], crop=32)
    assert scan.paths == (path,) and scan.bands == bands and not scan.warnings
    norm = measure_normalisation(scan, windows=4)
    assert norm.bands == bands and all(h > lo for lo, h in zip(norm.low, norm.high, strict=True))
    dataset = CropDataset(scan, norm, crop=32, seed=1)
    x, valid = dataset[0]
    assert tuple(x.shape) == (bands, 32, 32) and str(x.dtype) == "torch.float32"
    assert np.isfinite(x.numpy()).all() and float(x.min()) >= -3.0 and float(x.max()) <= 3.0
    _, (col, row, w, h) = dataset.window(0)
    expected_valid = labels[row : row + h, col : col + w] != IGNORE
    np.testing.assert_array_equal(valid.numpy(), expected_valid)


def test_png_and_jpeg_load(tmp_path) -> None:
    make_regions_image(tmp_path / "a.png", size=(48, 48), bands=3)
    make_regions_image(tmp_path / "b.jpg", size=(64, 40), bands=3, seed=2)
    scan = scan_inputs([tmp_path], crop=32)
    assert [p.name for p in scan.paths] == ["a.png", "b.jpg"] and scan.bands == 3
    dataset = CropDataset(scan, measure_normalisation(scan, windows=4), crop=32)
    assert tuple(dataset[3][0].shape) == (3, 32, 32)


def test_nodata_is_excluded_from_statistics(tmp_path) -> None:
    """A large nodata area (value 0) must not drag the 2 % percentile to 0."""
    data, _ = make_regions_array((64, 64), bands=2, dtype="uint16", nodata=0)
    data[:, :40, :] = 0  # 62 % of the image is nodata
    write_image(tmp_path / "n.tif", data, nodata=0)
    norm = measure_normalisation(scan_inputs([tmp_path], crop=32), windows=8)
    valid_values = data[:, 40:, :].reshape(2, -1)
    assert norm.nodata == 0
    for b in range(2):
        assert norm.low[b] >= valid_values[b].min() > 0


def test_mixed_band_counts_are_refused_listing_files(tmp_path) -> None:
    make_regions_image(tmp_path / "four_a.tif", size=(40, 40), bands=4)
    make_regions_image(tmp_path / "four_b.tif", size=(40, 40), bands=4)
    make_regions_image(tmp_path / "three.tif", size=(40, 40), bands=3)
    with pytest.raises(AcsegError) as info:
        scan_inputs([tmp_path], crop=32)
    message = str(info.value)
    assert "band count" in message
    assert "4 band(s): four_a.tif, four_b.tif" in message and "3 band(s): three.tif" in message


def test_unreadable_files_are_skipped_with_a_warning_naming_each(tmp_path) -> None:
    make_regions_image(tmp_path / "good.tif", size=(40, 40))
    (tmp_path / "broken.tif").write_bytes(b"not a tiff at all")
    (tmp_path / "empty.png").write_bytes(b"")
    scan = scan_inputs([tmp_path], crop=32)
    assert [p.name for p in scan.paths] == ["good.tif"]
    assert {p.name for p, _ in scan.skipped} == {"broken.tif", "empty.png"}
    assert any("broken.tif" in w for w in scan.warnings)
    assert any("empty.png" in w for w in scan.warnings)


def test_nothing_usable_is_refused(tmp_path) -> None:
    (tmp_path / "broken.tif").write_bytes(b"junk")
    with pytest.raises(AcsegError, match=r"no usable images.*broken\.tif"):
        scan_inputs([tmp_path], crop=32)
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(AcsegError, match="no images found"):
        scan_inputs([empty])
    with pytest.raises(InputError, match="not found"):
        scan_inputs([tmp_path / "missing"])


def test_small_images_are_padded_or_skipped_and_reported(tmp_path) -> None:
    make_regions_image(tmp_path / "big.tif", size=(64, 64))
    labels = make_regions_image(tmp_path / "small.tif", size=(20, 30), seed=3)
    scan = scan_inputs([tmp_path], crop=32)
    assert [p.name for p in scan.padded] == ["small.tif"]
    assert any("small.tif" in w and "padded" in w for w in scan.warnings)
    dataset = CropDataset(scan, measure_normalisation(scan, windows=4), crop=32)
    index = next(i for i in range(100) if dataset.window(i)[0] == 1)
    x, valid = dataset[index]
    assert valid.sum() == labels.size and not valid[20:, :].any() and not valid[:, 30:].any()
    assert (x[:, ~valid] == 0).all()

    skipped = scan_inputs([tmp_path], crop=32, small="skip")
    assert [p.name for p in skipped.paths] == ["big.tif"]
    assert [p.name for p, _ in skipped.skipped] == ["small.tif"]


def test_crops_are_reproducible_weighted_by_area_and_read_by_windows(tmp_path) -> None:
    make_regions_image(tmp_path / "large.tif", size=(200, 200))
    make_regions_image(tmp_path / "little.tif", size=(50, 40), seed=1)
    scan = scan_inputs([tmp_path], crop=32)
    norm = measure_normalisation(scan, windows=8)
    first, second = CropDataset(scan, norm, 32, seed=5), CropDataset(scan, norm, 32, seed=5)
    for i in (0, 7, 123):
        np.testing.assert_array_equal(first[i][0].numpy(), second[i][0].numpy())
    assert not np.array_equal(first[0][0].numpy(), CropDataset(scan, norm, 32, seed=6)[0][0])
    picks = np.array([first.window(i)[0] for i in range(2000)])
    assert abs((picks == 0).mean() - 40000 / 42000) < 0.03
    # a crop is exactly the normalised window of the source
    image, (col, row, w, h) = first.window(11)
    with open_raster(scan.paths[image]) as raster:
        raw = raster.read((col, row, w, h))
    np.testing.assert_array_equal(first[11][0].numpy(), apply_normalisation(raw, norm))


def test_input_scale_resamples_crops(tmp_path) -> None:
    make_regions_image(tmp_path / "a.tif", size=(128, 128))
    scan = scan_inputs([tmp_path], crop=32)
    dataset = CropDataset(scan, measure_normalisation(scan, windows=4), 32, scale=0.5)
    _, window = dataset.window(0)
    assert window[2:] == (64, 64)
    x, valid = dataset[0]
    assert tuple(x.shape) == (4, 32, 32) and bool(valid.all())
