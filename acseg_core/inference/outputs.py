"""GIS outputs of a prediction: the map as a Cloud-Optimised GeoTIFF with its names,
its polygons, and its class areas (``acseg-core predict --format tif,gpkg,csv``).

Per input (``<stem>_clusters.*``, see :mod:`.naming`):

* ``tif``: georeferenced TIFF inputs → a COG with colour table, nodata 255, category
  names / attribute table in ``.tif.aux.xml`` and a ``.qml`` style
  (:mod:`acseg_core.gis.cog`); other inputs keep the greyscale PNG map of before.
* ``gpkg``: georeferenced inputs → ``<stem>_clusters.gpkg``
  (:mod:`acseg_core.gis.polygons`); others get none, and a note says so.
* ``csv``: one ``areas.csv`` for the run (:mod:`acseg_core.gis.areas`), written
  by :func:`~acseg_core.inference.collection.predict_collection` at the end.

Ids are named by the model (:func:`~acseg_core.gis.legend.legend_for_model`): a
learnt (strokes) model's classes, else ``cluster N``. The map is predicted once, into
a scratch file beside the outputs (same disk) unless it is itself an output, and
every format is made from it by windows; each file is written under a temp name and
renamed, so an interrupted image leaves none of its files half-written.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Generator, Iterator, Sequence
from pathlib import Path

from acseg_core.errors import InputError, os_reason
from acseg_core.gis.areas import AREAS_NAME, ImageAreas, count_raster
from acseg_core.gis.cog import cog_output, sidecars, write_cog
from acseg_core.gis.crs import pixel_area_m2
from acseg_core.gis.legend import Legend, legend_for_model
from acseg_core.gis.options import OutputOptions
from acseg_core.gis.polygons import is_acseg_gpkg, write_polygons
from acseg_core.inference.predict import PredictOptions, predict
from acseg_core.inference.sinks import GEOTIFF_SUFFIXES, confidence_path_for
from acseg_core.io.atomic import atomic_path, scratch_path
from acseg_core.io.raster import probe
from acseg_core.jobs import CancelToken, Progress
from acseg_core.model.checkpoint import LoadedModel


def gpkg_path(out: Path) -> Path:
    """The polygons of the map ``out``: same stem, ``.gpkg``."""
    return Path(out).with_suffix(".gpkg")


def areas_path(out_dir: Path) -> Path:
    return Path(out_dir) / AREAS_NAME


def written_files(out: Path, outputs: OutputOptions) -> list[Path]:
    """Per-image files a finished image has (the map last: it is renamed last)."""
    geo = out.suffix.lower() in GEOTIFF_SUFFIXES
    files = []
    if geo and "gpkg" in outputs.formats:
        files.append(gpkg_path(out))
    if "tif" in outputs.formats:
        if geo:
            from acseg_core.gis.cog import sidecars

            files.extend(sidecars(out))
        files.append(out)
    return files


def complete(out: Path, outputs: OutputOptions, with_confidence: bool) -> bool:
    """Whether ``--resume`` may skip this image: all its files exist, and with ``csv``
    its map too (a skipped image's areas are read back from it)."""
    if "csv" in outputs.formats and "tif" not in outputs.formats:
        return False
    files = written_files(out, outputs)
    if with_confidence:
        files.append(confidence_path_for(out))
    return bool(files) and all(p.is_file() for p in files)


def primary_output(out: Path, outputs: OutputOptions) -> Path | None:
    """The file a log line names for an image: its map, else its polygons, else the
    run's table (None: no format applies to it, e.g. ``gpkg`` of a photo)."""
    files = written_files(out, outputs)
    if files:
        return files[-1]
    return areas_path(out.parent) if "csv" in outputs.formats else None


def predict_outputs(
    loaded: LoadedModel,
    image: Path,
    out: Path,
    options: PredictOptions,
    cancel: CancelToken | None = None,
) -> Generator[Progress, None, tuple[ImageAreas | None, str]]:
    """Predict ``image`` once and write the formats of ``options.outputs`` for it.

    ``options``: a :class:`~acseg_core.inference.predict.PredictOptions`. Yields the
    prediction's progress, then one report per output; returns (its areas for the
    run's CSV or None, a note — "" when every format could be written).
    """
    try:
        return (yield from _write_outputs(loaded, image, out, options, cancel))
    except OSError as exc:
        raise InputError(out, f"cannot write ({os_reason(exc)})") from exc
    except InputError as exc:
        target = _output_of_temp(exc.path, [out, gpkg_path(out), *sidecars(out)])
        if target is None:
            raise
        raise InputError(target, exc.reason) from exc


def _output_of_temp(path: Path, outputs: Sequence[Path]) -> Path | None:
    """The output a hidden temp or scratch file (``.<name>.*``, ``..<name>.*``) stands
    for, so an error names the file the user asked for, not our temp."""
    for target in outputs:
        if path.parent == target.parent and path.name.lstrip(".").startswith(f"{target.name}."):
            return target
    return None


def _write_outputs(
    loaded: LoadedModel, image: Path, out: Path, options: PredictOptions, cancel: CancelToken | None
) -> Generator[Progress, None, tuple[ImageAreas | None, str]]:
    outputs = options.outputs
    assert outputs is not None, "predict_outputs needs options.outputs"
    wants = set(outputs.formats)
    geo = out.suffix.lower() in GEOTIFF_SUFFIXES
    legend = outputs.legend or legend_for_model(loaded.config, options.readout.resolve(loaded).kind)
    polygons = gpkg_path(out)
    if geo and "gpkg" in wants and polygons.exists() and not is_acseg_gpkg(polygons):
        raise InputError(polygons, "refusing to write over it: acseg did not write it")
    _remove_stale([out, polygons, *sidecars(out)])
    note = "" if geo or "gpkg" not in wants else f"{image.name}: not georeferenced, no GeoPackage"
    with contextlib.ExitStack() as stack:
        if not geo and "tif" in wants:
            map_path = out  # today's PNG map, written atomically by predict itself
        else:
            map_path = stack.enter_context(scratch_path(out.parent, f".{out.name}.", out.suffix))
            if options.with_confidence:
                stack.enter_context(_removed(confidence_path_for(map_path)))
        yield from predict(loaded, image, out=map_path, options=options, cancel=cancel)
        areas = None
        if "csv" in wants:
            yield Progress(0, None, f"{image.name}: counting class areas")
            info = probe(image)
            pixel_m2 = pixel_area_m2(info.crs, info.transform)
            areas = count_raster(map_path, image.name, legend, pixel_m2)
        if geo and "gpkg" in wants:
            yield Progress(0, None, f"{image.name}: polygons")
            with atomic_path(polygons) as tmp:
                write_polygons(map_path, tmp, legend, image.name, min_area=outputs.min_area,
                               cancel=cancel)  # fmt: skip
        if geo and "tif" in wants:
            yield Progress(0, None, f"{image.name}: Cloud-Optimised GeoTIFF")
            with cog_output(out, legend) as tmp:
                write_cog(map_path, tmp, legend)
        if options.with_confidence and map_path != out:
            os.replace(confidence_path_for(map_path), confidence_path_for(out))
    return areas, note


def areas_of_done(out: Path, image: Path, legend: Legend) -> ImageAreas | None:
    """Areas of an image a resumed run skipped, read back from its map (None: no map)."""
    if not out.is_file():
        return None
    info = probe(image) if image.exists() else probe(out)
    return count_raster(out, image.name, legend, pixel_area_m2(info.crs, info.transform))


@contextlib.contextmanager
def _removed(path: Path) -> Iterator[None]:
    """Remove ``path`` when the block ends, whatever happens (a scratch's companion)."""
    try:
        yield
    finally:
        with contextlib.suppress(OSError):
            path.unlink()


def _remove_stale(targets: Sequence[Path]) -> None:
    """Temp files a killed run left for these outputs: ``.<name>.*``, and ``..<name>.*``
    (the temp of a scratch map, which is itself named ``.<name>.*``)."""
    from glob import escape

    for target in targets:
        for pattern in (f".{escape(target.name)}.*", f"..{escape(target.name)}.*"):
            for stale in target.parent.glob(pattern):
                with contextlib.suppress(OSError):
                    stale.unlink()


__all__ = [
    "areas_of_done",
    "areas_path",
    "complete",
    "gpkg_path",
    "predict_outputs",
    "primary_output",
    "written_files",
]
