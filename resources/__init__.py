"""Bundled resources: sample images, palettes, label tables, icons.

``sample_dubai.jpg`` (what the app opens on a first start) is one tile of the Dubai
aerial set (MBRSC, labelled by Humans in the Loop), released under CC0; its labels
``sample_dubai_labels.png`` make the sample's class map. ``sample_aerial.tif`` is a
synthetic 4-band GeoTIFF for tests (no third-party licence at all).
"""

from __future__ import annotations

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent
SAMPLE_IMAGE = RESOURCES / "sample_dubai.jpg"
SAMPLE_LABELS = RESOURCES / "sample_dubai_labels.png"
SYNTHETIC_IMAGE = RESOURCES / "sample_aerial.tif"


def sample_image_path() -> Path:
    """The real CC0 aerial photo (RGB, 797×644) the app opens by default."""
    return SAMPLE_IMAGE


def synthetic_image_path() -> Path:
    """The small synthetic 4-band (R, G, B, NIR) georeferenced GeoTIFF tests use."""
    return SYNTHETIC_IMAGE
