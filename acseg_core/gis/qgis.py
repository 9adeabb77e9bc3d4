"""QGIS layer styles: a paletted ``.qml`` beside a class raster.

QGIS applies ``<name>.qml`` when it opens ``<name>.tif``, so the layer shows the class
names and colours at once (the colour table alone gives colours with bare numbers).
Built with ElementTree, so any class name (quotes, ``&``, non-ASCII) is escaped.
"""

from __future__ import annotations

import xml.etree.ElementTree as ET
from pathlib import Path

from acseg_core.gis.legend import Legend

QGIS_VERSION = "3.28.0-Firenze"  # the oldest LTR whose paletted renderer reads this layout


def qml_path(raster: Path) -> Path:
    """Where QGIS looks for a raster's default style: same folder, same stem, ``.qml``."""
    return Path(raster).with_suffix(".qml")


def paletted_qml(legend: Legend) -> str:
    """A QGIS style: paletted renderer on band 1, one entry per drawn legend value,
    nearest-neighbour resampling (class ids must never be blended)."""
    root = ET.Element("qgis", version=QGIS_VERSION, styleCategories="AllStyleCategories")
    pipe = ET.SubElement(root, "pipe")
    provider = ET.SubElement(pipe, "provider")
    ET.SubElement(
        provider,
        "resampling",
        enabled="false",
        maxOversampling="2",
        zoomedInResamplingMethod="nearestNeighbour",
        zoomedOutResamplingMethod="nearestNeighbour",
    )
    renderer = ET.SubElement(
        pipe,
        "rasterrenderer",
        type="paletted",
        band="1",
        opacity="1",
        alphaBand="-1",
        nodataColor="",
    )
    ET.SubElement(renderer, "rasterTransparency")
    origin = ET.SubElement(renderer, "minMaxOrigin")
    for tag, text in (("limits", "None"), ("extent", "WholeRaster"),
                      ("statAccuracy", "Estimated"), ("cumulativeCutLower", "0.02"),
                      ("cumulativeCutUpper", "0.98"), ("stdDevFactor", "2")):  # fmt: skip
        ET.SubElement(origin, tag).text = text
    palette = ET.SubElement(renderer, "colorPalette")
    for entry in legend.drawn:
        ET.SubElement(
            palette,
            "paletteEntry",
            value=str(entry.value),
            color="#{:02x}{:02x}{:02x}".format(*entry.colour),
            alpha="255",
            label=entry.name,
        )
    ET.SubElement(renderer, "colorramp", type="randomcolors", name="[source]")
    ET.SubElement(pipe, "brightnesscontrast", brightness="0", contrast="0", gamma="1")
    ET.SubElement(pipe, "huesaturation", saturation="0", grayscaleMode="0", colorizeOn="0",
                  colorizeRed="255", colorizeGreen="128", colorizeBlue="128",
                  colorizeStrength="100", invertColors="0")  # fmt: skip
    ET.SubElement(pipe, "rasterresampler", maxOversampling="2")
    ET.SubElement(pipe, "resamplingStage").text = "resamplingFilter"
    ET.SubElement(root, "blendMode").text = "0"
    ET.indent(root)
    body = ET.tostring(root, encoding="unicode")
    return "<!DOCTYPE qgis PUBLIC 'http://mrcc.com/qgis.dtd' 'SYSTEM'>\n" + body + "\n"


def qml_labels(text: str) -> dict[int, str]:
    """value → label of a paletted style (to check what a style names)."""
    root = ET.fromstring(text.split("\n", 1)[1] if text.startswith("<!DOCTYPE") else text)
    return {int(e.get("value", "-1")): e.get("label", "") for e in root.iter("paletteEntry")}


__all__ = ["paletted_qml", "qml_labels", "qml_path"]
