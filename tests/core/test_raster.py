"""Raster reading: windows, padding, nodata, previews and clear refusals."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from acseg_core.errors import InputError
from acseg_core.io.display import percentile_stretch
from acseg_core.io.raster import list_images, open_raster, probe


def write_tif(path, data, nodata=None, crs="EPSG:32632"):
    count, h, w = data.shape
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=w,
        height=h,
        count=count,
        dtype=data.dtype,
        crs=crs,
        transform=from_origin(100.0, 200.0, 0.5, 0.5),
        nodata=nodata,
    ) as dst:
        dst.write(data)
    return path


@pytest.mark.parametrize("dtype", ["uint8", "uint16", "int16", "float32"])
def test_window_read_matches_source(tmp_path, dtype) -> None:
    rng = np.random.default_rng(0)
    data = (rng.random((4, 50, 70)) * 1000).astype(dtype)
    path = write_tif(tmp_path / f"img_{dtype}.tif", data)
    with open_raster(path) as r:
        assert (r.info.width, r.info.height, r.info.count, r.info.dtype) == (70, 50, 4, dtype)
        assert r.info.georeferenced and "32632" in r.info.crs
        window = r.read((10, 5, 20, 30))
        np.testing.assert_array_equal(window, data[:, 5:35, 10:30])


def test_read_past_the_edge_is_padded_with_nodata(tmp_path) -> None:
    data = np.full((1, 10, 10), 7, np.uint16)
    path = write_tif(tmp_path / "small.tif", data, nodata=0)
    with open_raster(path) as r:
        window = r.read((5, 5, 10, 10))
        assert window.shape == (1, 10, 10)
        assert (window[:, :5, :5] == 7).all() and (window[:, 5:, :] == 0).all()
        valid = r.valid_mask(window)
        assert valid[:5, :5].all() and not valid[5:, :].any()


def test_preview_is_downsampled(tmp_path) -> None:
    data = np.zeros((3, 400, 800), np.uint8)
    path = write_tif(tmp_path / "wide.tif", data)
    with open_raster(path) as r:
        preview, scale = r.read_preview(max_side=200)
    assert preview.shape == (3, 100, 200) and scale == pytest.approx(0.25)


def test_missing_and_corrupt_files_name_the_file(tmp_path) -> None:
    with pytest.raises(InputError, match="not found"):
        open_raster(tmp_path / "missing.tif")
    bad = tmp_path / "bad.tif"
    bad.write_bytes(b"II*\x00garbage" * 10)
    with pytest.raises(InputError) as info:
        probe(bad)
    assert str(bad) in str(info.value)


def test_complex_pixels_are_refused(tmp_path) -> None:
    path = write_tif(tmp_path / "sar.tif", np.ones((1, 8, 8), np.complex64))
    with pytest.raises(InputError, match="unsupported pixel type complex64"):
        open_raster(path)


def test_list_images_skips_labels_and_other_files(tmp_path) -> None:
    for name in ("a.tif", "b.png", "a_label.png", "notes.txt"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in list_images([tmp_path])] == ["a.tif", "b.png"]


def test_percentile_stretch_spans_uint8() -> None:
    band = np.linspace(0, 1000, 10000, dtype=np.float32).reshape(1, 100, 100)
    out = percentile_stretch(band)
    assert out.dtype == np.uint8 and out.min() == 0 and out.max() == 255


def test_shared_corrupt_and_sar_inputs_are_refused(shared_data) -> None:
    with pytest.raises(InputError, match="cannot be decoded"):
        probe(shared_data / "geotiff" / "corrupt.tif")
    with pytest.raises(InputError, match="complex"):
        probe(shared_data / "geotiff" / "spacenet_rotterdam_sar_complex64.tif")
