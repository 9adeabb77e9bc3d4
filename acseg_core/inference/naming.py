"""Names of prediction outputs, and telling acseg's own outputs from a user's images.

``<stem>_clusters.tif`` for georeferenced TIFF inputs, ``.png`` otherwise, plus
``<stem>_clusters_confidence.tif``. Every map acseg writes carries a marker
(:data:`acseg_core.io.writers.MARKER_KEY`), so a file that is *named* like an output
but lacks it is somebody's image and is never written over.
"""

from __future__ import annotations

import contextlib
import warnings
from pathlib import Path

import rasterio
from PIL import Image
from rasterio.errors import NotGeoreferencedWarning

from acseg_core.inference.sinks import confidence_path_for
from acseg_core.io.raster import probe
from acseg_core.io.writers import MARKER_KEY, MARKER_VALUE

OUTPUT_TAG = "_clusters"
CONFIDENCE_TAG = "_confidence"


def output_path(image: Path, out_dir: Path, georeferenced_tiff: bool) -> Path:
    """``<out_dir>/<stem>_clusters.tif`` for GeoTIFF inputs, ``.png`` otherwise."""
    suffix = ".tif" if georeferenced_tiff else ".png"
    return out_dir / f"{image.stem}{OUTPUT_TAG}{suffix}"


def is_geotiff(image: Path) -> bool:
    """A TIFF with a georeference: its map is a GeoTIFF lined up with it."""
    return image.suffix.lower() in (".tif", ".tiff") and probe(image).georeferenced


def looks_like_output(path: Path) -> bool:
    """A name this command writes (cluster map or confidence raster)."""
    stem = path.stem
    return stem.endswith(OUTPUT_TAG) or stem.endswith(OUTPUT_TAG + CONFIDENCE_TAG)


def is_acseg_output(path: Path) -> bool:
    """Whether ``path`` is a map acseg wrote (it carries the marker); False if unreadable."""
    with contextlib.suppress(Exception):
        if path.suffix.lower() == ".png":
            with Image.open(path) as image:
                return image.info.get(MARKER_KEY) == MARKER_VALUE
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(path) as ds:
                return ds.tags().get(MARKER_KEY) == MARKER_VALUE
    return False


def is_complete(out: Path, with_confidence: bool) -> bool:
    """Both files of an output exist under their final names (writes are atomic)."""
    if not out.is_file():
        return False
    return not with_confidence or confidence_path_for(out).is_file()


def remove_stale_temps(out: Path) -> list[Path]:
    """Delete temp files a killed run left for ``out`` (``.<name>.*``); returns them.

    Safe because one run owns an output folder and never writes one output twice
    at the same time.
    """
    removed = []
    for target in (out, confidence_path_for(out)):
        for stale in target.parent.glob(f".{target.name}.*"):
            try:
                stale.unlink()
            except OSError:
                continue
            removed.append(stale)
    return removed


__all__ = [
    "CONFIDENCE_TAG",
    "OUTPUT_TAG",
    "is_acseg_output",
    "is_complete",
    "is_geotiff",
    "looks_like_output",
    "output_path",
    "remove_stale_temps",
]
