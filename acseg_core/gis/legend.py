"""What the values of a class raster mean: one name and colour per value, and nodata.

Every GIS output of one map (the COG's colour table and category names, the ``.qml``
style, the polygons' ``class_name``, the areas CSV, the app's Statistics panel) is
written from one :class:`Legend`, so they can never disagree. Two sources make one:

* an export (:meth:`Legend.from_class_map`): value 0 = ``background`` (unassigned,
  and nodata in the GeoTIFF), the class at position *i* = *i* + 1;
* a prediction (:func:`legend_for_model`): the ids of a read-out that emits classes
  (learnt from strokes) are its classes; any other read-out's ids are clusters, named
  ``cluster N`` in the cluster palette (so ``gpkg``/``csv`` work for every model);
  255 = nodata.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from acseg_core.errors import AcsegError
from acseg_core.gis.palettes import default_cluster_colors
from acseg_core.io.raster import NODATA
from acseg_core.model.config import ModelConfig
from acseg_core.model.readouts import READOUTS

Color = tuple[int, int, int]


@dataclass(frozen=True)
class LegendEntry:
    value: int
    name: str
    colour: Color


@dataclass(frozen=True)
class Legend:
    """Named values of a uint8 class raster and its nodata value.

    ``nodata`` may also be a named entry (an export's ``background``): it is then
    counted in areas but never polygonised nor drawn.
    """

    entries: tuple[LegendEntry, ...]
    nodata: int = NODATA

    def __post_init__(self) -> None:
        values = [e.value for e in self.entries]
        if len(set(values)) != len(values) or not all(0 <= v <= 255 for v in values):
            raise AcsegError("legend values must be distinct and within 0-255")
        if not 0 <= self.nodata <= 255:
            raise AcsegError("legend nodata must be within 0-255")

    @classmethod
    def from_names(
        cls,
        names: Sequence[str],
        colours: Sequence[Sequence[int]],
        nodata: int = NODATA,
        start: int = 0,
    ) -> Legend:
        """Values ``start, start+1, ...`` named ``names`` in ``colours``."""
        return cls(
            tuple(
                LegendEntry(start + i, str(n), tuple(int(v) for v in c))  # type: ignore[arg-type]
                for i, (n, c) in enumerate(zip(names, colours, strict=True))
            ),
            nodata,
        )

    @classmethod
    def from_class_map(cls, class_map: Any) -> Legend:
        """An export's values (:meth:`ClassMap.export_names`): 0 = background = nodata."""
        return cls.from_names(class_map.export_names(), class_map.export_palette(), nodata=0)

    @property
    def drawn(self) -> tuple[LegendEntry, ...]:
        """Entries other than nodata: what polygons and styles show."""
        return tuple(e for e in self.entries if e.value != self.nodata)

    def name_of(self, value: int) -> str:
        for entry in self.entries:
            if entry.value == value:
                return entry.name
        return f"value {value}"

    def category_names(self) -> list[str]:
        """GDAL category names: element v names value v ("" for unnamed values)."""
        top = max((e.value for e in self.entries), default=-1)
        names = [""] * (top + 1)
        for entry in self.entries:
            names[entry.value] = entry.name
        return names

    def colormap(self) -> dict[int, tuple[int, int, int, int]]:
        """A 256-entry GDAL colour table: named values opaque, nodata transparent."""
        table = {v: (0, 0, 0, 255) for v in range(256)}
        for entry in self.entries:
            table[entry.value] = (*entry.colour, 255)
        table[self.nodata] = (0, 0, 0, 0)
        return table


def legend_for_model(config: ModelConfig, readout_kind: str | None = None) -> Legend:
    """The legend of a prediction's ids: the classes of a read-out that emits them,
    else clusters.

    ``readout_kind``: the resolved read-out (None = the model's own, ``config.readout``).
    """
    kind = readout_kind if readout_kind is not None else config.readout.kind
    if kind is not None and READOUTS[kind].emits_classes and config.classes:
        return Legend.from_names(config.classes, config.class_colours)
    count = int(config.clusters)
    names = [f"cluster {k}" for k in range(count)]
    return Legend.from_names(names, default_cluster_colors(count).tolist())


__all__ = ["Legend", "LegendEntry", "legend_for_model"]
