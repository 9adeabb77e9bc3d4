"""The ilastik-style yardstick: a random forest on smoothed-filter features of the pixels.

ilastik's pixel classification computes, per band, Gaussian smoothing, gradient
magnitude and Laplacian of Gaussian at σ 0.7–10 and trains a random forest (100
trees) on the stroked pixels. This is that recipe (scikit-learn, the optional
``bench`` extra), used only by ``acseg-core bench --strokes``.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from acseg_core.errors import AcsegError
from acseg_core.io.raster import open_raster

SIGMAS = (0.7, 1.0, 1.6, 3.5, 5.0, 10.0)
TREES = 100


def pixel_features(image: Path) -> np.ndarray:
    """H×W×F float32: per band, smoothing, gradient magnitude and LoG at each σ."""
    with open_raster(image) as raster:
        data = raster.read().astype(np.float32)
    planes = []
    for band in data:
        for sigma in SIGMAS:
            planes.append(ndimage.gaussian_filter(band, sigma))
            planes.append(ndimage.gaussian_gradient_magnitude(band, sigma))
            planes.append(ndimage.gaussian_laplace(band, sigma))
    return np.stack(planes, axis=-1)


def forest(seed: int) -> Any:
    try:
        from sklearn.ensemble import RandomForestClassifier
    except ImportError as exc:
        raise AcsegError(
            "the ilastik-style baseline needs scikit-learn: pip install -e '.[bench]'"
        ) from exc
    return RandomForestClassifier(n_estimators=TREES, n_jobs=1, random_state=seed)


def predict_image(model: Any, features: np.ndarray, chunk: int = 262_144) -> np.ndarray:
    """H×W class indices of one image's features (in chunks: bounded memory)."""
    flat = features.reshape(-1, features.shape[-1])
    out = np.empty(len(flat), np.int64)
    for start in range(0, len(flat), chunk):
        out[start : start + chunk] = model.predict(flat[start : start + chunk])
    return out.reshape(features.shape[:2])


__all__ = ["SIGMAS", "TREES", "forest", "pixel_features", "predict_image"]
