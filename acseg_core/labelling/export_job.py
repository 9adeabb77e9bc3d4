"""A whole export, streamed: for each image the cached map (or a prediction), then its
label masks. Used alike by ``acseg-core export`` and the app.

* **One image at a time.** A map that is not cached is predicted into a scratch file
  beside the outputs (read back by windows, removed after), so memory stays bounded
  by one image's windows whatever the number of images.
* **Skip, don't fail.** An image that cannot be exported (unreadable, another band
  count than the model's, a map of another size...) is skipped with its reason, the
  others are written, and the result lists every skipped image
  (:attr:`ExportResult.skipped`). A full or read-only disk stops the export at once.
* **Inputs stay.** An output that would replace a file the export reads (a source
  image of the project: the mask of ``r.tif`` is ``r.png``, another image) skips
  that image, overwrite or not, naming both files.
* **Resumable.** Without ``overwrite`` an image whose outputs all exist is left as it
  is (``done``): a rerun after a failure or a cancel does only what is missing.
  Stale temp files of a killed export are removed first.
* **Progress.** One report per window (and per predicted tile), ``done``/``total`` over
  the whole export with an ETA.
"""

from __future__ import annotations

import contextlib
import errno
import re
import time
from collections.abc import Callable, Generator, Iterator, Sequence
from glob import escape as glob_escape
from pathlib import Path
from typing import Any

from acseg_core.errors import AcsegError, CancelledError, InputError, os_error_in, os_reason
from acseg_core.gis.areas import AREAS_NAME, HEADER_PIXELS, AreasTable, ImageAreas
from acseg_core.gis.cog import sidecars
from acseg_core.gis.crs import pixel_area_m2
from acseg_core.gis.legend import Legend
from acseg_core.inference.naming import is_geotiff
from acseg_core.inference.predict import DEFAULT_OPTIONS, PredictOptions, predict
from acseg_core.io.atomic import scratch_path, write_text_atomic
from acseg_core.io.folders import make_output_folder
from acseg_core.io.raster import probe
from acseg_core.jobs import CancelToken, Progress
from acseg_core.labelling.classes import ClassMap
from acseg_core.labelling.export import (
    BLOCK,
    GEOREFERENCED,
    LABELMAP_NAME,
    ExportItem,
    ExportResult,
    count_item,
    labelmap_text,
    output_paths,
    parse_formats,
    plan_item,
    unique_name,
    write_item,
)
from acseg_core.model.checkpoint import LoadedModel

STEPS = 1000  # progress units per image
FATAL_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EDQUOT}
DISK_FULL_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EDQUOT}
# predictor(image, out, cancel) -> a predict job writing ``out`` (inference.predict)
Predictor = Callable[[Path, Path, CancelToken | None], Generator[Progress, None, Any]]


def model_predictor(loaded: LoadedModel, options: PredictOptions = DEFAULT_OPTIONS) -> Predictor:
    """Predict missing maps with ``loaded`` and ``options`` (the model's own read-out by
    default)."""

    def run(image: Path, out: Path, cancel: CancelToken | None) -> Generator[Progress, None, Any]:
        return predict(loaded, image, out=out, options=options, cancel=cancel)

    return run


def export_images(
    items: Sequence[ExportItem],
    class_map: ClassMap,
    out_dir: str | Path,
    *,
    formats: str | Sequence[str] = ("png", "tif"),
    overwrite: bool = False,
    predictor: Predictor | None = None,
    cancel: CancelToken | None = None,
    block: int = BLOCK,
    min_area: int | None = None,
) -> Generator[Progress, None, ExportResult]:
    """Export every item (see the module notes); returns what was written and skipped.

    ``csv`` writes ``areas.csv`` for the images of this run (those left as they were
    are counted from their cached map, when they have one); ``min_area``: the
    polygons' sieve in pixels (None = the default).

    Refused up front (AcsegError): unknown formats, classes CVAT cannot tell apart,
    an output folder that cannot be made or written. Cancel raises CancelledError
    between windows: finished images stay, the one in progress leaves nothing.
    """
    formats = parse_formats(formats)
    out_dir = Path(out_dir)
    problems = class_map.export_problems() if {"png", "color"} & set(formats) else []
    if problems:
        raise AcsegError("cannot export: " + "; ".join(problems))
    make_output_folder(out_dir, "export folder")
    _remove_stale_temps(out_dir, items, formats)
    result = ExportResult()
    if "png" in formats:
        result.labelmap = _write_labelmap(out_dir, class_map, overwrite)
    table = _areas_table(out_dir, class_map) if "csv" in formats else None
    try:
        result = yield from _export_all(items, class_map, out_dir, formats, overwrite, predictor,
                                        cancel, block, min_area, result, table)  # fmt: skip
        if table is not None:
            result.areas = table.finish()
    finally:
        if table is not None:
            table.__exit__(None, None, None)
    return result


def _export_all(
    items: Sequence[ExportItem],
    class_map: ClassMap,
    out_dir: Path,
    formats: Sequence[str],
    overwrite: bool,
    predictor: Predictor | None,
    cancel: CancelToken | None,
    block: int,
    min_area: int | None,
    result: ExportResult,
    table: AreasTable | None,
) -> Generator[Progress, None, ExportResult]:
    """The per-image loop of :func:`export_images`."""
    started = time.monotonic()
    total = len(items) * STEPS
    used: set[str] = set()
    inputs = _inputs_of(items)
    for n, item in enumerate(items):
        if cancel:
            raise CancelledError(f"export cancelled after {n} of {len(items)} image(s)")
        name = unique_name(item.name, used)
        targets = output_paths(out_dir, name, formats)
        clash = _input_clash(targets, item, inputs)
        if clash is not None:  # overwrite or not: an input is never an output
            result.skipped.append((name, clash))
            done = (n + 1) * STEPS
            yield Progress(done, total, f"{name} skipped", _eta(started, done, total))
            continue
        if not overwrite and targets and _all_exist(targets, item):
            result.done.append(name)
            if table is not None:
                _count_done(item, name, class_map, table, result)
            continue
        try:
            for fraction, message in _export_one(
                item, name, class_map, out_dir, formats, predictor, cancel, block, result,
                min_area, table,
            ):  # fmt: skip
                done = int((n + fraction) * STEPS)
                yield Progress(done, total, message, _eta(started, done, total))
        except CancelledError:
            raise
        except (AcsegError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno in FATAL_ERRNOS:
                raise InputError(out_dir, f"export stopped: {os_reason(exc)}") from exc
            cause = os_error_in(exc)  # a full disk met by the prediction of a missing map
            if cause is not None and cause.errno in DISK_FULL_ERRNOS:
                raise InputError(out_dir, f"export stopped: {os_reason(cause)}") from exc
            result.skipped.append((name, _reason(exc)))
            outcome = "skipped"
        else:
            outcome = "written"
        done = (n + 1) * STEPS
        yield Progress(done, total, f"{name} {outcome}", _eta(started, done, total))
    return result


def _export_one(
    item: ExportItem,
    name: str,
    class_map: ClassMap,
    out_dir: Path,
    formats: Sequence[str],
    predictor: Predictor | None,
    cancel: CancelToken | None,
    block: int,
    result: ExportResult,
    min_area: int | None = None,
    table: AreasTable | None = None,
) -> Iterator[tuple[float, str]]:
    """(fraction of this image, message) while its map is found or made, then written."""
    with contextlib.ExitStack() as stack:
        clusters = item.clusters
        if clusters is None:
            if predictor is None or item.source is None:
                raise AcsegError(f"{name}: no cluster map (load or train a model first)")
            scratch = stack.enter_context(_scratch_map(out_dir, item.source))
            job = predictor(item.source, scratch, cancel)
            while True:
                try:
                    progress = next(job)
                except StopIteration:
                    break
                yield 0.5 * (progress.fraction or 0.0), f"Predicting {name}"
            clusters = scratch
            share, offset = 0.5, 0.5
        else:
            share, offset = 1.0, 0.0
        plan = plan_item(item, clusters, out_dir, formats, name,
                         *(() if min_area is None else (min_area,)))  # fmt: skip
        for step, windows in write_item(plan, class_map, block, cancel):
            yield offset + share * step / windows, f"Writing {plan.name}"
        result.notes.extend(plan.notes)
        result.written[plan.name] = dict(plan.targets)
        if table is not None and plan.counts is not None:
            table.add(ImageAreas(plan.name, plan.counts, _pixel_m2(plan.crs, plan.transform)))


def _areas_table(out_dir: Path, class_map: ClassMap) -> AreasTable:
    """The folder's areas.csv, streamed; a file of that name acseg did not write is refused."""
    path = out_dir / AREAS_NAME
    with contextlib.suppress(OSError):
        if path.exists():
            with path.open() as fh:
                first = fh.readline()
            if not first.startswith(",".join(HEADER_PIXELS[:4])):
                raise InputError(path, "refusing to write over it: acseg did not write it")
    return AreasTable(path, Legend.from_class_map(class_map))


def _pixel_m2(crs: Any, transform: Any) -> float | None:
    if crs is None or transform is None:
        return None
    return pixel_area_m2(crs.to_wkt(), tuple(transform)[:6])


def _count_done(
    item: ExportItem, name: str, class_map: ClassMap, table: AreasTable, result: ExportResult
) -> None:
    """Areas of an image exported earlier: from its cached map, else a note."""
    if item.clusters is None:
        result.notes.append(f"{name}: exported earlier and its map is not cached, not in areas.csv")
        return
    try:
        counts, crs, transform = count_item(item, class_map)
    except (AcsegError, OSError) as exc:
        result.notes.append(f"{name}: not in areas.csv ({_reason(exc)})")
        return
    table.add(ImageAreas(name, counts, _pixel_m2(crs, transform)))


def _inputs_of(items: Sequence[ExportItem]) -> dict[Path, Path]:
    """Every file the export reads (source images, cluster map files), by resolved path."""
    inputs: dict[Path, Path] = {}
    for item in items:
        for path in (item.source, item.clusters):
            if isinstance(path, Path | str):
                inputs.setdefault(Path(path).expanduser().resolve(), Path(path))
    return inputs


def _input_clash(
    targets: dict[str, Path], item: ExportItem, inputs: dict[Path, Path]
) -> str | None:
    """Why writing ``item``'s outputs would replace an input of the export (an image of
    the project: ``r.png``, the mask of ``r.tif``, is another image), or None."""
    for target in targets.values():
        other = inputs.get(target.expanduser().resolve())
        if other is not None:
            image = item.source if item.source is not None else item.name
            return (
                f"refusing to write over a source image or cluster map: the mask of {image} "
                f"would replace {other}, an input of this export"
            )
    return None


def _scratch_map(out_dir: Path, image: Path) -> contextlib.AbstractContextManager[Path]:
    """A temporary map file beside the outputs (same disk), removed whatever happens."""
    suffix = ".tif" if is_geotiff(image) else ".png"
    return scratch_path(out_dir, f".{image.stem}{SCRATCH_TAG}.", suffix)


SCRATCH_TAG = ".acseg-scratch"


def _remove_stale_temps(out_dir: Path, items: Sequence[ExportItem], formats: Sequence[str]) -> None:
    """Temp and scratch files a killed export of these images left beside the outputs
    (``.<output name>.<random>…``, as ``atomic_path`` and the scratch maps name them,
    and ``..<scratch map>.<random>…``, the temp a prediction writes its map to)."""
    names = [LABELMAP_NAME, AREAS_NAME]
    for item in items:
        for fmt, path in output_paths(out_dir, item.name, formats).items():
            names.append(path.name)
            names.extend(p.name for p in (sidecars(path) if fmt == "tif" else []))
        if item.source is not None:
            scratch = f"{Path(item.source).stem}{SCRATCH_TAG}"
            names += [scratch, f".{scratch}"]  # the map, and the prediction's temp of it
    for name in names:
        for stale in out_dir.glob(f".{glob_escape(name)}.*"):
            if _TEMP_NAME.fullmatch(stale.name[len(name) + 2 :]) and stale.is_file():
                with contextlib.suppress(OSError):
                    stale.unlink()


_TEMP_NAME = re.compile(r"[A-Za-z0-9_]{8}(\.[A-Za-z0-9.]+)?")  # mkstemp's random part


def _write_labelmap(out_dir: Path, class_map: ClassMap, overwrite: bool) -> Path:
    path = out_dir / LABELMAP_NAME
    text = labelmap_text(class_map)
    with contextlib.suppress(OSError):
        if path.read_text() == text:
            return path
    if path.exists() and not overwrite:
        raise InputError(
            path,
            "lists other classes (labels of another project?): export into another "
            "folder, or replace the files there (--overwrite; Yes when the app asks)",
        )
    try:
        write_text_atomic(path, text)
    except OSError as exc:
        raise InputError(path, f"cannot write ({os_reason(exc)})") from exc
    return path


def _all_exist(targets: dict[str, Path], item: ExportItem) -> bool:
    """Every output of ``item`` is there (a GeoTIFF or GeoPackage only counts where one
    is written)."""
    geo = [p for fmt, p in targets.items() if fmt in GEOREFERENCED]
    needed = [p for fmt, p in targets.items() if fmt not in GEOREFERENCED] or geo
    return all(p.is_file() for p in needed) and (
        all(p.is_file() for p in geo) or not _georeferenced(item)
    )


def _georeferenced(item: ExportItem) -> bool:
    for path in (item.source, item.clusters if isinstance(item.clusters, Path) else None):
        if path is not None and Path(path).exists():
            with contextlib.suppress(AcsegError):
                if probe(path).georeferenced:
                    return True
    return False


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and not isinstance(exc, AcsegError):
        return os_reason(exc)
    return str(exc)


def _eta(started: float, done: float, total: float) -> float | None:
    if done <= 0:
        return None
    return (time.monotonic() - started) * (total - done) / done


__all__ = ["ExportItem", "ExportResult", "Predictor", "export_images", "model_predictor"]
