"""A whole export, streamed: for each image the cached map (or a prediction), then its
label masks. Used alike by ``acseg-core export`` and the app.

* **One image at a time.** A map that is not cached is predicted into a scratch file
  beside the outputs (read back by windows, removed after), so memory stays bounded
  by one image's windows whatever the number of images.
* **Skip, don't fail.** An image that cannot be exported (unreadable, another band
  count than the model's, a map of another size...) is skipped with its reason, the
  others are written, and the result lists every skipped image
  (:attr:`ExportResult.skipped`). A full or read-only disk stops the export at once.
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

from acseg_core.errors import AcsegError, CancelledError, InputError, os_reason
from acseg_core.inference.naming import is_geotiff
from acseg_core.inference.predict import DEFAULT_OPTIONS, PredictOptions, predict
from acseg_core.io.atomic import scratch_path, write_text_atomic
from acseg_core.io.folders import make_output_folder
from acseg_core.io.raster import probe
from acseg_core.jobs import CancelToken, Progress
from acseg_core.labelling.classes import ClassMap
from acseg_core.labelling.export import (
    BLOCK,
    LABELMAP_NAME,
    ExportItem,
    ExportResult,
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
) -> Generator[Progress, None, ExportResult]:
    """Export every item (see the module notes); returns what was written and skipped.

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
    started = time.monotonic()
    total = len(items) * STEPS
    used: set[str] = set()
    for n, item in enumerate(items):
        if cancel:
            raise CancelledError(f"export cancelled after {n} of {len(items)} image(s)")
        name = unique_name(item.name, used)
        if not overwrite and _all_exist(output_paths(out_dir, name, formats), item):
            result.done.append(name)
            continue
        try:
            for fraction, message in _export_one(
                item, name, class_map, out_dir, formats, predictor, cancel, block, result
            ):
                done = int((n + fraction) * STEPS)
                yield Progress(done, total, message, _eta(started, done, total))
        except CancelledError:
            raise
        except (AcsegError, OSError) as exc:
            if isinstance(exc, OSError) and exc.errno in FATAL_ERRNOS:
                raise InputError(out_dir, f"export stopped: {os_reason(exc)}") from exc
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
        plan = plan_item(item, clusters, out_dir, formats, name)
        for step, windows in write_item(plan, class_map, block, cancel):
            yield offset + share * step / windows, f"Writing {plan.name}"
        result.notes.extend(plan.notes)
        result.written[plan.name] = dict(plan.targets)


def _scratch_map(out_dir: Path, image: Path) -> contextlib.AbstractContextManager[Path]:
    """A temporary map file beside the outputs (same disk), removed whatever happens."""
    suffix = ".tif" if is_geotiff(image) else ".png"
    return scratch_path(out_dir, f".{image.stem}{SCRATCH_TAG}.", suffix)


SCRATCH_TAG = ".acseg-scratch"


def _remove_stale_temps(out_dir: Path, items: Sequence[ExportItem], formats: Sequence[str]) -> None:
    """Temp and scratch files a killed export of these images left beside the outputs
    (``.<output name>.<random>…``, as ``atomic_path`` and the scratch maps name them)."""
    names = [LABELMAP_NAME]
    for item in items:
        names.extend(p.name for p in output_paths(out_dir, item.name, formats).values())
        if item.source is not None:
            names.append(f"{Path(item.source).stem}{SCRATCH_TAG}")
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
    """Every output of ``item`` is there (a GeoTIFF only counts where one is written)."""
    needed = [p for fmt, p in targets.items() if fmt != "tif"] or list(targets.values())
    return all(p.is_file() for p in needed) and (
        "tif" not in targets or targets["tif"].is_file() or not _georeferenced(item)
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
