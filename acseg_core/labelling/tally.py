"""A project map's class counts under any cluster → class mapping, kept up to date
after every stroke (the app's Statistics panel).

:class:`MapTally` keeps a cluster map's value counts and a histogram of its hand edits
by (cluster, edit value); the class counts of map + edits under *any* mapping follow
without reading the pixels again, and a stroke recounts only the edited tiles.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from acseg_core.gis.areas import value_counts
from acseg_core.io.raster import NODATA, Raster
from acseg_core.labelling.classes import NO_EDIT


@dataclass
class MapTally:
    """A cluster map's value counts plus a (cluster, edit) histogram of its hand edits.

    ``label_counts(class_map)`` gives the counts by label value (class id, 0
    unassigned, 255 nodata) that the composite of map and edits has, for any mapping.
    """

    clusters: np.ndarray  # int64[256] of cluster values
    edits: np.ndarray = field(default_factory=lambda: np.zeros((256, 256), np.int64))

    @classmethod
    def of(cls, cluster_map: np.ndarray, edits: Any = None) -> MapTally:
        """The tally of a map held in memory (and its edits)."""
        tally = cls(value_counts(cluster_map))
        tally.recount_edits(cluster_map, edits)
        return tally

    @classmethod
    def of_file(cls, path: Path, edits: Any = None, block: int = 1024) -> MapTally:
        """The tally of a map file, read by windows (a cached map of another image)."""
        with Raster(path) as raster:
            counts = np.zeros(256, np.int64)
            for window in raster.windows(block):
                counts += value_counts(raster.read(window, bands=[1])[0])
            tally = cls(counts)
            tally.recount_edits(lambda c, r, w, h: raster.read((c, r, w, h), bands=[1])[0],
                                edits, (raster.info.height, raster.info.width))  # fmt: skip
        return tally

    def recount_edits(
        self, clusters: Any, edits: Any, shape: tuple[int, int] | None = None
    ) -> None:
        """Histogram of (cluster value, edit value) over the edited, valid pixels; costs
        only the edited tiles. ``clusters``: the map (an array), or ``read(col, row, w,
        h)`` of a map of ``shape``."""
        if isinstance(clusters, np.ndarray):
            array, shape = clusters, clusters.shape

            def read(c: int, r: int, w: int, h: int) -> np.ndarray:
                return array[r : r + h, c : c + w]
        else:
            read = clusters
        pairs = np.zeros(256 * 256, np.int64)
        if edits is not None and not edits.is_empty and shape is not None:
            height, width = shape
            for (tr, tc), tile in edits.tiles():
                r0, c0 = tr * edits.tile, tc * edits.tile
                h, w = min(edits.tile, height - r0), min(edits.tile, width - c0)
                under = read(c0, r0, w, h)
                values = tile[:h, :w]
                keep = (values != NO_EDIT) & (under != NODATA)
                code = under[keep].astype(np.int64) * 256 + values[keep]
                pairs += np.bincount(code, minlength=256 * 256)
        self.edits = pairs.reshape(256, 256)

    def label_counts(self, class_map: Any) -> np.ndarray:
        """Counts by label value of map + edits under ``class_map`` (int64[256])."""
        lut = class_map.cluster_lut()
        labels = np.bincount(lut, weights=self.clusters, minlength=256).astype(np.int64)
        edited_from = self.edits.sum(axis=1)  # pixels of each cluster value that are edited
        labels -= np.bincount(lut, weights=edited_from, minlength=256).astype(np.int64)
        labels += self.edits.sum(axis=0)
        return labels

    def export_counts(self, class_map: Any) -> np.ndarray:
        """Valid-pixel counts by export value (0 = background/unassigned, class i = i+1)."""
        labels = self.label_counts(class_map)
        labels[NODATA] = 0
        lut = class_map.export_lut()
        return np.bincount(lut, weights=labels, minlength=256).astype(np.int64)


__all__ = ["MapTally"]
