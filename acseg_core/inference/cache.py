"""Cached prediction maps, keyed by what produced them: the model file and the read-out.

A key is ``<model digest>-<read-out key>`` (the SHA-256 prefix of the model file and
:attr:`ReadOut.key` of the resolved read-out), so a map made by another model (even a
retrained one at the same path) or another read-out is never taken for this one, and
switching back to an earlier read-out finds its maps again. Files are named
``<stem>-<path digest>_<key>.<tif|png>`` in a cache folder; the project records them
per image and key (:meth:`acseg_core.labelling.project.Project.set_prediction`).
"""

from __future__ import annotations

import hashlib
import re
from pathlib import Path

from acseg_core.inference.naming import is_geotiff
from acseg_core.model.checkpoint import LoadedModel
from acseg_core.model.readouts.choice import ReadOut

DIGEST_CHARS = 16


def prediction_key(loaded: LoadedModel, readout: ReadOut) -> str:
    """The cache key of maps ``loaded`` makes with ``readout`` (resolved here)."""
    digest = (getattr(loaded, "digest", "") or "unsaved")[:DIGEST_CHARS]
    return f"{digest}-{readout.resolve(loaded).key}"


def cache_file(cache_dir: Path, image: Path, key: str) -> Path:
    """A stable, collision-free file name per source image and key (GeoTIFFs stay GeoTIFFs)."""
    path_digest = hashlib.sha1(str(image).encode("utf-8")).hexdigest()[:10]
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", image.stem)[:60] or "image"
    suffix = ".tif" if is_geotiff(image) else ".png"
    return cache_dir / f"{stem}-{path_digest}_{key}{suffix}"


__all__ = ["cache_file", "prediction_key"]
