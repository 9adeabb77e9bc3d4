"""Synthetic test images with known region labels (no downloads, fully seeded).

Shared by every test that needs "an image with classes in it":

* :func:`make_regions_array` — ``(bands, h, w)`` pixels + ``(h, w)`` labels in memory;
* :func:`make_regions_image` — the same written to disk (GeoTIFF via rasterio for
  ``.tif``; PNG/JPEG via Pillow) and the labels returned;
* :func:`write_image` — write any ``(bands, h, w)`` array the same way.

Regions are smooth blobs (argmax of upsampled random fields), so every class forms
a few connected areas with curved borders. Each class differs in *colour* (its own
level in every band, levels spread over the dtype's range) and *texture* (stripes
with a class-specific orientation and period) — the same in every image made with
one ``look_seed`` — and Gaussian noise is added on top,
so a segmenter must look at more than one pixel but the task stays easy enough for
a short CPU run. Labels are ``uint8`` class ids; pixels set to nodata get
:data:`IGNORE` (255).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage

IGNORE = 255

# dtype -> (low, high) of the synthetic value range: realistic sensor ranges
_RANGES: dict[str, tuple[float, float]] = {
    "uint8": (0.0, 255.0),
    "uint16": (0.0, 4000.0),  # 12-bit sensor in a 16-bit container
    "int16": (-1000.0, 3000.0),
    "int32": (-1000.0, 3000.0),
    "float32": (0.0, 1.0),  # reflectance
    "float64": (0.0, 1.0),
}


def region_labels(
    size: tuple[int, int], classes: int = 3, seed: int = 0, blob: int = 48
) -> np.ndarray:
    """``(h, w)`` uint8 map of smooth blobs, ``blob`` px across, every class present."""
    h, w = size
    rng = np.random.default_rng(seed)
    coarse = rng.random((classes, max(2, h // blob + 2), max(2, w // blob + 2)))
    zoom = (1, (h + blob) / coarse.shape[1], (w + blob) / coarse.shape[2])
    fields = ndimage.zoom(coarse, zoom, order=3)[:, :h, :w]
    # balance the classes (each ~1/classes of the image) by shifting per-class offsets,
    # as real benchmarks are not dominated by one class and IIC favours balanced clusters
    offsets = np.zeros((classes, 1, 1))
    for _ in range(200):
        labels = (fields + offsets).argmax(axis=0)
        share = np.bincount(labels.ravel(), minlength=classes) / labels.size
        if np.abs(share - 1 / classes).max() < 0.02:
            break
        offsets[:, 0, 0] += 0.05 * (1 / classes - share)
    return labels.astype(np.uint8)


def make_regions_array(
    size: tuple[int, int] = (128, 128),
    bands: int = 4,
    dtype: str = "uint8",
    classes: int = 3,
    seed: int = 0,
    noise: float = 0.05,
    nodata: float | None = None,
    nodata_rows: float = 0.15,
    look_seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Pixels ``(bands, h, w)`` of ``dtype`` and labels ``(h, w)`` uint8.

    ``noise`` is the Gaussian sigma as a fraction of the value range. With
    ``nodata`` set, the top ``nodata_rows`` fraction of rows holds nodata in every
    band (labels :data:`IGNORE` there) and no valid pixel equals ``nodata``.
    ``seed`` draws the layout and the noise; ``look_seed`` the class colours, so
    images made with different seeds show the *same* classes (one data set).
    """
    h, w = size
    labels = region_labels(size, classes, seed)
    look = np.random.default_rng([look_seed, classes, bands])
    # colour: per band, the classes take evenly spaced levels in a shuffled order
    levels = np.linspace(0.2, 0.8, classes)
    means = np.stack([look.permutation(levels) for _ in range(bands)], axis=1)  # (classes, bands)
    rng = np.random.default_rng(seed + 1000)
    rows, cols = np.mgrid[0:h, 0:w].astype(np.float32)
    unit = np.empty((bands, h, w), np.float32)
    for c in range(classes):
        angle = np.pi * c / classes
        period = 4.0 + 3.0 * c
        stripes = 0.08 * np.sin(2 * np.pi * (rows * np.sin(angle) + cols * np.cos(angle)) / period)
        where = labels == c
        for b in range(bands):
            unit[b][where] = means[c, b] + stripes[where] * (1 if b % 2 else -1)
    unit += rng.normal(0.0, noise, unit.shape).astype(np.float32)
    low, high = _RANGES[dtype]
    values = low + np.clip(unit, 0.0, 1.0) * (high - low)
    if np.issubdtype(np.dtype(dtype), np.integer):
        values = np.rint(values)
        if nodata is not None:  # keep valid pixels off the nodata value
            values[values == nodata] = nodata + 1
    data = values.astype(dtype)
    if nodata is not None:
        cut = round(h * nodata_rows)
        data[:, :cut, :] = nodata
        labels = labels.copy()
        labels[:cut, :] = IGNORE
    return data, labels


def write_image(
    path: str | Path, data: np.ndarray, nodata: float | None = None, crs: bool = True
) -> Path:
    """Write ``(bands, h, w)`` ``data``: GeoTIFF for ``.tif``, else Pillow (PNG/JPEG)."""
    path = Path(path)
    if path.suffix.lower() in (".tif", ".tiff"):
        import rasterio
        from rasterio.transform import from_origin

        count, h, w = data.shape
        profile = dict(driver="GTiff", width=w, height=h, count=count, dtype=data.dtype.name)
        if nodata is not None:
            profile["nodata"] = nodata
        if crs:
            profile.update(crs="EPSG:32632", transform=from_origin(500000.0, 5600000.0, 0.5, 0.5))
        with rasterio.open(path, "w", **profile) as dst:
            dst.write(data)
        return path
    from PIL import Image

    array = data[0] if data.shape[0] == 1 else np.moveaxis(data, 0, -1)
    Image.fromarray(np.ascontiguousarray(array)).save(path)
    return path


def make_regions_image(
    path: str | Path,
    size: tuple[int, int] = (128, 128),
    bands: int = 4,
    dtype: str = "uint8",
    classes: int = 3,
    seed: int = 0,
    nodata: float | None = None,
    crs: bool = True,
    noise: float = 0.05,
    look_seed: int = 0,
) -> np.ndarray:
    """Write a synthetic region image to ``path``; return its ``(h, w)`` labels.

    PNG/JPEG need ``dtype="uint8"`` and 1, 3 or 4 bands (Pillow's limits).
    """
    data, labels = make_regions_array(
        size, bands, dtype, classes, seed, noise, nodata, look_seed=look_seed
    )
    write_image(path, data, nodata=nodata, crs=crs)
    return labels


def tiny_model(
    bands: int = 3,
    clusters: int = 4,
    width: int = 8,
    seed: int = 0,
    fit_on: list[Path] | None = None,
    **config,
):
    """A real, untrained cpu-small network (narrow), ready for inference on the CPU:
    enough where training quality is not the point. With ``fit_on`` (images) its
    k-means read-out is fitted on them, as training does."""
    import torch

    from acseg_core.io.normalise import Normalisation, apply_normalisation
    from acseg_core.io.raster import open_raster
    from acseg_core.model.checkpoint import LoadedModel
    from acseg_core.model.nn import build_model
    from acseg_core.model.readouts import ReadOut
    from acseg_core.presets import preset

    norm = Normalisation(low=(0.0,) * bands, high=(255.0,) * bands)
    options = dict(in_channels=bands, clusters=clusters, base_width=width, normalisation=norm)
    smooth = config.pop("smooth", None)  # None: the preset's window
    options["readout"] = ReadOut("kmeans" if fit_on else "head", smooth)
    model_config = preset("cpu-small", **{**options, **config})
    torch.manual_seed(seed)
    model = build_model(model_config)
    if fit_on:
        from acseg_core.model.readouts.kmeans import fit_readout

        crops = []
        for image in fit_on:
            with open_raster(image) as raster:
                x = torch.from_numpy(apply_normalisation(raster.read(), norm))
            crops.append((x, torch.ones(x.shape[-2:], dtype=torch.bool)))
        fit_readout(model, crops, seed=seed)
    model.eval()
    return LoadedModel(model, model_config, torch.device("cpu"), {}, f"tiny{seed:012d}")


def tiny_model_file(path: Path, bands: int = 3, clusters: int = 4, **options) -> Path:
    """:func:`tiny_model` saved as a model file."""
    from acseg_core.model.checkpoint import save_checkpoint

    loaded = tiny_model(bands, clusters, **options)
    save_checkpoint(path, loaded.model, loaded.config)
    return path


def disk_strokes(labels: np.ndarray, per_class: int, seed: int) -> np.ndarray:
    """``per_class`` 5×5 blocks inside each class region (strokes a user paints)."""
    rng = np.random.default_rng(seed)
    out = np.full(labels.shape, 255, np.uint8)
    for c in range(3):
        r, k = np.nonzero(labels == c)
        ok = (r >= 3) & (r < labels.shape[0] - 3) & (k >= 3) & (k < labels.shape[1] - 3)
        ok &= np.array([(labels[y - 2 : y + 3, x - 2 : x + 3] == c).all()
                        for y, x in zip(r, k, strict=True)])  # fmt: skip
        for i in rng.choice(np.flatnonzero(ok), per_class, replace=False):
            out[r[i] - 2 : r[i] + 3, k[i] - 2 : k[i] + 3] = c
    return out
