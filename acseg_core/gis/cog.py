"""Cloud-Optimised GeoTIFFs of class rasters, with their names beside them.

A class map is first written by windows into a plain tiled GeoTIFF (the streamed
writers of :mod:`acseg_core.io.writers`, or the export's staging file); :func:`write_cog`
then lets GDAL's COG driver copy it — it reads by blocks and builds the overviews
from a temporary file, so memory stays bounded by GDAL's block cache. The result:

* 512² tiles, DEFLATE, internal overviews down to one tile (3 levels for 4096²)
  resampled by **MODE** (the most frequent id of each block, nodata ignored), so an
  overview pixel is always an id that exists at full resolution — never an average;
* the legend's colour table (nodata transparent) and nodata value;
* the class names: GDAL category names and a thematic raster attribute table
  (value, class, red, green, blue) in ``<name>.tif.aux.xml`` — TIFF has no tag for
  them and GDAL reads them from there for any reader — and a paletted ``<name>.qml``
  that QGIS applies on open.

:func:`cog_output` makes the three files appear together: each is written to a temp
name and renamed only when all are complete (the ``.tif`` last).
"""

from __future__ import annotations

import contextlib
import warnings
import xml.etree.ElementTree as ET
from collections.abc import Iterator
from pathlib import Path

from acseg_core.errors import InputError
from acseg_core.gis.legend import Legend
from acseg_core.gis.qgis import paletted_qml, qml_path
from acseg_core.io.atomic import atomic_path

BLOCKSIZE = 512
COMPRESS = "DEFLATE"  # read by every GDAL ≥ 1.x and ArcGIS (ZSTD is not, everywhere)
OVERVIEW_RESAMPLING = "MODE"
# GFT_Integer / GFT_String and the GFU_* usages of GDAL's raster attribute tables
_INT, _STR = "0", "2"
_MINMAX, _NAME, _RED, _GREEN, _BLUE = "5", "2", "6", "7", "8"


def aux_path(raster: Path) -> Path:
    """GDAL's PAM sidecar of a raster: ``<name>.tif.aux.xml``."""
    return Path(raster).with_name(Path(raster).name + ".aux.xml")


def sidecars(raster: Path) -> list[Path]:
    """Files written beside a COG (for overwrite checks and stale-temp clean-up)."""
    return [aux_path(raster), qml_path(raster)]


def pam_xml(legend: Legend) -> str:
    """The ``.aux.xml`` text: category names and a thematic attribute table."""
    root = ET.Element("PAMDataset")
    band = ET.SubElement(root, "PAMRasterBand", band="1")
    categories = ET.SubElement(band, "CategoryNames")
    for name in legend.category_names():
        ET.SubElement(categories, "Category").text = name
    table = ET.SubElement(band, "GDALRasterAttributeTable", tableType="thematic")
    columns = (("Value", _INT, _MINMAX), ("Class", _STR, _NAME), ("Red", _INT, _RED),
               ("Green", _INT, _GREEN), ("Blue", _INT, _BLUE))  # fmt: skip
    for index, (name, kind, usage) in enumerate(columns):
        field = ET.SubElement(table, "FieldDefn", index=str(index))
        ET.SubElement(field, "Name").text = name
        ET.SubElement(field, "Type").text = kind
        ET.SubElement(field, "Usage").text = usage
    for index, entry in enumerate(legend.entries):
        row = ET.SubElement(table, "Row", index=str(index))
        for value in (entry.value, entry.name, *entry.colour):
            ET.SubElement(row, "F").text = str(value)
    ET.indent(root)
    return ET.tostring(root, encoding="unicode") + "\n"


def pam_names(text: str) -> tuple[list[str], dict[int, str]]:
    """(category names, value → class of the attribute table) of an ``.aux.xml``."""
    root = ET.fromstring(text)
    categories = [c.text or "" for c in root.iter("Category")]
    table = {}
    for row in root.iter("Row"):
        cells = [f.text or "" for f in row.findall("F")]
        table[int(cells[0])] = cells[1]
    return categories, table


@contextlib.contextmanager
def cog_output(target: Path, legend: Legend) -> Iterator[Path]:
    """A temp path for the COG of ``target``; when the block succeeds, the ``.aux.xml``
    and ``.qml`` are written and the three renamed into place (the ``.tif`` last), so
    a ``.tif`` under its name always has its names beside it. On any failure none of
    them is left (earlier versions of them stay as they were). OS errors propagate
    as they are (a full disk must stop an export, not skip an image)."""
    target = Path(target)
    with contextlib.ExitStack() as stack:
        tif = stack.enter_context(atomic_path(target))
        aux = stack.enter_context(atomic_path(aux_path(target), suffix=".xml"))
        qml = stack.enter_context(atomic_path(qml_path(target)))
        stack.callback(_remove_quietly, aux_path(tif))  # GDAL's own sidecar of the temp
        yield tif
        _remove_quietly(aux_path(tif))
        aux.write_text(pam_xml(legend), encoding="utf-8")
        qml.write_text(paletted_qml(legend), encoding="utf-8")


def _remove_quietly(path: Path) -> None:
    with contextlib.suppress(OSError):
        path.unlink()


def write_cog(source: Path, out: Path, legend: Legend, *, threads: str = "ALL_CPUS") -> None:
    """COG copy of a single-band uint8 class raster ``source`` into ``out``.

    The legend's colour table and nodata are set on ``source`` first (a scratch file
    of the caller's), so the copy carries them. ``out`` is written in place: wrap it
    in :func:`cog_output` for the atomic rename and the names.
    """
    import rasterio
    from rasterio.errors import NotGeoreferencedWarning, RasterioError
    from rasterio.shutil import copy as gdal_copy

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", NotGeoreferencedWarning)
            with rasterio.open(source, "r+") as ds:
                ds.nodata = legend.nodata
                ds.write_colormap(1, legend.colormap())
                ds.update_tags(1, **{f"CLASS_{e.value}": e.name for e in legend.entries})
            gdal_copy(
                source,
                out,
                driver="COG",
                COMPRESS=COMPRESS,
                BLOCKSIZE=str(BLOCKSIZE),
                OVERVIEWS="AUTO",
                OVERVIEW_RESAMPLING=OVERVIEW_RESAMPLING,
                RESAMPLING="NEAREST",
                BIGTIFF="IF_SAFER",
                NUM_THREADS=threads,
            )
    except RasterioError as exc:
        raise InputError(out, f"cannot write the Cloud-Optimised GeoTIFF ({exc})") from exc


__all__ = [
    "BLOCKSIZE",
    "aux_path",
    "cog_output",
    "pam_names",
    "pam_xml",
    "sidecars",
    "write_cog",
]
