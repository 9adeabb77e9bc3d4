"""Small builders for GUI tests: synthetic images and an (untrained) model file."""

from __future__ import annotations

from pathlib import Path

from tests.core.synthetic import make_regions_image


def image_folder(folder: Path, count: int = 2, size: int = 64, bands: int = 4) -> list[Path]:
    """``count`` georeferenced ``bands``-band GeoTIFFs with region labels."""
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for i in range(count):
        path = folder / f"tile_{i}.tif"
        make_regions_image(path, size=(size, size), bands=bands, seed=i, classes=3)
        paths.append(path)
    return paths


def model_file(path: Path, bands: int = 4, clusters: int = 4) -> Path:
    """A real model file (random weights) — enough where training quality is not the point."""
    import torch

    from acseg_core.checkpoint import save_checkpoint
    from acseg_core.config import Normalisation, preset
    from acseg_core.nn import build_model

    norm = Normalisation(low=(0.0,) * bands, high=(255.0,) * bands)
    config = preset(
        "cpu-small", in_channels=bands, clusters=clusters, base_width=8, normalisation=norm
    )
    torch.manual_seed(0)
    save_checkpoint(path, build_model(config), config)
    return path
