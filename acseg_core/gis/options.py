"""Which GIS files a prediction becomes (``acseg-core predict --format tif,gpkg,csv
--min-area PX``): one frozen value the CLI, the Python API and Dask workers share."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from acseg_core.errors import AcsegError
from acseg_core.gis.legend import Legend
from acseg_core.gis.polygons import DEFAULT_MIN_AREA

PREDICT_FORMATS = ("tif", "gpkg", "csv")


@dataclass(frozen=True)
class OutputOptions:
    """Which GIS outputs ``predict`` writes. ``legend`` names the ids (the CLI fills it
    from the model; None = ask the model per file)."""

    formats: tuple[str, ...] = ("tif",)
    min_area: int = DEFAULT_MIN_AREA
    legend: Legend | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "formats", parse_predict_formats(self.formats))
        if self.min_area < 0:
            raise AcsegError("--min-area must be 0 or more pixels")


def parse_format_list(
    text: str | Sequence[str], allowed: Sequence[str], what: str
) -> tuple[str, ...]:
    """``"tif,gpkg"`` or ``["tif", "gpkg"]`` → validated tuple (order kept, no repeats);
    AcsegError names the unknown formats and the choices (``what``: whose formats)."""
    items = text.split(",") if isinstance(text, str) else list(text)
    formats = tuple(dict.fromkeys(f.strip().lower() for f in items if f.strip()))
    unknown = [f for f in formats if f not in allowed]
    if unknown or not formats:
        raise AcsegError(
            f"unknown {what} format(s) {', '.join(unknown) or '(none)'}; choose from "
            + ", ".join(allowed)
        )
    return formats


def parse_predict_formats(text: str | Sequence[str]) -> tuple[str, ...]:
    """The formats of ``predict --format``."""
    return parse_format_list(text, PREDICT_FORMATS, "prediction")


__all__ = ["PREDICT_FORMATS", "OutputOptions", "parse_format_list", "parse_predict_formats"]
