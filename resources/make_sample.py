"""Regenerate ``sample_aerial.tif``: a synthetic 4-band (R, G, B, NIR) aerial scene.

Synthetic so it carries no third-party licence: grass, roads, roofs, trees and a
pond, each with its own colour, NIR response and texture, georeferenced in UTM
(EPSG:32632, 0.5 m pixels). Run ``python -m resources.make_sample``.
"""

from __future__ import annotations

import numpy as np
import rasterio
from rasterio.transform import from_origin

from resources import SYNTHETIC_IMAGE as SAMPLE_IMAGE

SIZE = 384


def make_scene(size: int = SIZE, seed: int = 7) -> tuple[np.ndarray, np.ndarray]:
    """(image uint8 4×H×W, class map uint8 H×W): 0 grass, 1 road, 2 roof, 3 tree, 4 water."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:size, 0:size]
    classes = np.zeros((size, size), np.uint8)
    for c in (60, 250):  # two vertical and one horizontal road
        classes[:, c : c + 14] = 1
    classes[170:184, :] = 1
    for _ in range(14):  # roofs away from the roads
        h, w = rng.integers(22, 48, size=2)
        r, c = rng.integers(0, size - h), rng.integers(0, size - w)
        if (classes[r : r + h, c : c + w] == 1).any():
            continue
        classes[r : r + h, c : c + w] = 2
    for _ in range(30):  # tree crowns
        r, c, rad = rng.integers(0, size), rng.integers(0, size), rng.integers(6, 14)
        crown = (yy - r) ** 2 + (xx - c) ** 2 < rad**2
        classes[crown & (classes == 0)] = 3
    pond = ((yy - 300) / 45.0) ** 2 + ((xx - 120) / 70.0) ** 2 < 1
    classes[pond & (classes != 1)] = 4

    #                   R    G    B    NIR   texture
    looks = np.array(
        [
            [90, 140, 70, 200, 18],  # grass
            [120, 120, 125, 90, 6],  # road
            [170, 80, 60, 110, 10],  # roof
            [40, 90, 45, 230, 30],  # tree
            [30, 55, 90, 20, 4],
        ],
        float,
    )  # water
    base = looks[classes][..., :4].transpose(2, 0, 1)
    texture = looks[classes][..., 4]
    noise = rng.normal(0, 1, (4, size, size)) * texture
    shade = 8 * np.sin(xx / 23.0) * np.cos(yy / 31.0)
    image = np.clip(base + noise + shade, 0, 255).astype(np.uint8)
    return image, classes


def main() -> None:
    image, _ = make_scene()
    profile = dict(
        driver="GTiff",
        width=SIZE,
        height=SIZE,
        count=4,
        dtype="uint8",
        crs="EPSG:32632",
        transform=from_origin(500000.0, 5200000.0, 0.5, 0.5),
        compress="deflate",
        tiled=True,
        blockxsize=128,
        blockysize=128,
        photometric="minisblack",
    )
    with rasterio.open(SAMPLE_IMAGE, "w", **profile) as dst:
        dst.write(image)
        dst.descriptions = ("red", "green", "blue", "nir")
    print(f"wrote {SAMPLE_IMAGE}")


if __name__ == "__main__":
    main()
