"""Bundled resources: sample image, palettes, stylesheet, icons."""

from __future__ import annotations

from pathlib import Path

RESOURCES = Path(__file__).resolve().parent
SAMPLE_IMAGE = RESOURCES / "sample_aerial.tif"


def sample_image_path() -> Path:
    """The small synthetic 4-band (R, G, B, NIR) aerial GeoTIFF the app opens by default."""
    return SAMPLE_IMAGE
