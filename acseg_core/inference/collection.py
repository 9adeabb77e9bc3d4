"""Prediction over large collections: streamed, resumable, logged, on many machines.

:func:`predict_collection` is the job behind ``acseg-core predict`` for one image or a
hundred thousand: a generator (one :class:`Progress` per finished file, honouring a
:class:`CancelToken`) that returns a :class:`Summary`.

* **Streaming.** Inputs come one path at a time (:mod:`.sources`); the only state kept
  per file is the output names already claimed (two inputs never write one output).
  At most two files per worker thread are in flight, each read by windows.
* **Never over an input.** An existing file at an output's name that acseg did not
  write (:func:`~.naming.is_acseg_output`) is a user's image: that input is refused.
* **Resume.** Outputs are written atomically (a hidden temp file beside the output,
  renamed when complete), so an output under its final name is complete; with
  ``resume`` such inputs are ``skipped``. Stale temps of a killed run are removed
  before their output is written again. A full disk stops the run (every later file
  would fail the same way).
* **GIS outputs** (``options.outputs``, :mod:`.outputs`): each file's COG, GeoPackage
  and areas; the run's ``areas.csv`` is streamed here as results arrive (a skipped
  file's areas are read back from its map) and renamed into place at the end.
* **Manifest.** A run record, then one record per finished file, written here (the
  client) as each result arrives (:mod:`.manifest`).
* **Where outputs go.** ``<stem>_clusters.<tif|png>`` in ``out_dir`` by default; a
  caller may name them itself (``name_output``: the app's label-all writes into the
  project's prediction cache, named by model and read-out).
* **Engines.** In this process (tile progress relayed), or Dask (:mod:`.cluster`):
  ``scheduler`` = a cluster's address or ``local:N``; ``nproc = N > 1`` is
  ``local:N``. Every file's work is :func:`~.files.predict_file` either way.
  Sharding for array jobs is a filter on the sources (:mod:`.shards`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import asdict, dataclass, replace
from pathlib import Path
from typing import Any

from acseg_core.errors import AcsegError, InputError
from acseg_core.gis.areas import AreasTable
from acseg_core.inference.cluster import DaskEngine, parse_scheduler
from acseg_core.inference.files import FileJob, FileResult, predict_file
from acseg_core.inference.manifest import Manifest
from acseg_core.inference.naming import (
    is_acseg_output,
    is_complete,
    is_geotiff,
    looks_like_output,
    output_path,
)
from acseg_core.inference.outputs import (
    OutputOptions,
    areas_of_done,
    areas_path,
    complete,
    primary_output,
)
from acseg_core.inference.predict import DEFAULT_OPTIONS, PredictOptions
from acseg_core.io.folders import make_output_folder
from acseg_core.jobs import CancelToken, Progress
from acseg_core.model.checkpoint import LoadedModel, load_model

RUNNING = "running"  # Progress.metrics["status"] of a report from inside a file


@dataclass(frozen=True)
class Summary:
    """The return value of :func:`predict_collection`."""

    ok: int
    skipped: int
    failed: int
    cancelled: bool
    manifest: Path | None
    startup_s: float = 0.0  # before the first file could start: model load(s), cluster start
    areas: Path | None = None  # the run's areas.csv, when written


def _plan(
    sources: Iterable[Path | InputError],
    out_dir: Path,
    resume: bool,
    with_confidence: bool,
    name_output: Callable[[Path], Path],
    outputs: OutputOptions | None = None,
) -> Iterator[FileJob | FileResult]:
    """Jobs to run, or the result for inputs that need no work (skipped, refused)."""
    claimed: dict[Path, Path] = {}  # output -> input: the only per-file state kept
    out_real = out_dir.resolve()

    def refused(image: Path, reason: str) -> FileResult:
        return FileResult(image, None, "error", 0.0, f"{image}: {reason}")

    for source in sources:
        if isinstance(source, InputError):
            yield FileResult(source.path, None, "error", 0.0, str(source))
            continue
        image = source
        in_out_dir = image.resolve().parent == out_real
        if in_out_dir and looks_like_output(image) and is_acseg_output(image):
            yield refused(image, "an output of an earlier run in the output folder; skipped")
            continue
        try:
            out = name_output(image)
        except AcsegError as exc:
            yield FileResult(image, None, "error", 0.0, str(exc))
            continue
        key = out.resolve()
        if key in claimed:
            yield refused(image, f"output {out} would also be written for {claimed[key]}; skipped")
            continue
        claimed[key] = image
        if out.exists() and not is_acseg_output(out):
            yield refused(image, f"refusing to write over {out}, which acseg did not write")
            continue
        if outputs is None:
            if resume and is_complete(out, with_confidence):
                yield FileResult(image, out, "skipped", 0.0)
                continue
        elif resume and complete(out, outputs, with_confidence):
            yield FileResult(image, primary_output(out, outputs), "skipped", 0.0)
            continue
        yield FileJob(image, out)


def predict_collection(
    model_path: Path | None,
    sources: Iterable[Path | InputError],
    out_dir: Path,
    *,
    options: PredictOptions = DEFAULT_OPTIONS,
    resume: bool = False,
    manifest: Path | None = None,
    nproc: int = 1,
    cancel: CancelToken | None = None,
    total: int | None = None,
    loaded: LoadedModel | None = None,
    name_output: Callable[[Path], Path] | None = None,
    on_result: Callable[[FileResult], Any] | None = None,
    scheduler: str | None = None,
    run_info: dict[str, Any] | None = None,
) -> Generator[Progress, None, Summary]:
    """Predict every source into ``out_dir``; one Progress per finished file, and (in
    this process) the tiles' progress within a file, with ``status`` "running".

    ``Progress.metrics`` of a finished file: ``status``, ``image``, ``output``,
    ``seconds``, ``error``, running counts ``ok``/``skipped``/``failed`` and
    ``images_per_s``; ``eta_s`` once a file is written and ``total`` is known.
    ``loaded`` reuses a model already loaded (in this process only). ``scheduler``
    (``tcp://host:8786``, a scheduler file, ``local:N``) runs the files as Dask tasks;
    ``nproc = N > 1`` means ``local:N``. Dask is reached before anything is written,
    so a bad address leaves no folder and no manifest. ``run_info`` is written as the
    manifest's run record. ``on_result`` hears every file's result as it finishes
    (cancelled ones included). Cancel stops submitting files, cancels those in flight
    (their outputs are not written) and returns.
    """
    if nproc < 1:
        raise AcsegError("--nproc must be at least 1")
    if scheduler is not None and nproc > 1:
        raise AcsegError("give --nproc or --scheduler, not both (--nproc N is --scheduler local:N)")
    if scheduler is None and nproc > 1:
        scheduler = f"local:{nproc}"
    out_dir = Path(out_dir)
    started = time.perf_counter()
    engine: DaskEngine | None = None
    if scheduler is not None:
        spec = parse_scheduler(scheduler)
        if model_path is None:
            raise AcsegError("Dask workers need the model file")
        engine = DaskEngine(spec, Path(model_path), options, cancel)
    log = table = None
    try:
        make_output_folder(out_dir)
        table = _areas_table(out_dir, options.outputs)
        naming = name_output or (lambda image: output_path(image, out_dir, is_geotiff(image)))
        log = Manifest(Path(manifest)) if manifest is not None else None
        if log is not None and run_info is not None:
            log.begin_run(run_info)
        planned = _Exhaustible(
            _plan(sources, out_dir, resume, options.with_confidence, naming, options.outputs)
        )
        if engine is None and loaded is None:
            if model_path is None:
                raise AcsegError("no model to predict with")
            loaded = load_model(model_path, device=options.device)
        startup_s = time.perf_counter() - started
        tally = _Tally(total)
        dropped = 0  # files stopped midway by a cancel
        if engine is None:
            assert loaded is not None
            results: Iterator[FileResult | Progress] = _run_here(
                loaded, planned, options, cancel, tally
            )
        else:
            results = engine.run(planned, cancel)
        for result in results:
            if isinstance(result, Progress):
                yield result
                continue
            if on_result is not None:
                on_result(result)
            if result.status == "cancelled":
                dropped += 1
                continue
            if log is not None:
                log.append(result.record())
            if table is not None:
                _add_areas(table, result, options.outputs)
            yield tally.add(result)
        # a cancel that came after the last file left nothing undone
        cancelled = bool(cancel is not None and cancel) and (dropped > 0 or not planned.exhausted)
        areas = table.finish() if table is not None and not cancelled else None
    finally:
        if log is not None:
            log.close()
        if engine is not None:
            engine.close()
        if table is not None:
            table.__exit__(None, None, None)
    return Summary(tally.ok, tally.skipped, tally.failed, cancelled, manifest, startup_s, areas)


def _areas_table(out_dir: Path, outputs: OutputOptions | None) -> AreasTable | None:
    """The run's areas.csv being streamed (None unless ``csv`` was asked for)."""
    if outputs is None or "csv" not in outputs.formats:
        return None
    if outputs.legend is None:
        raise AcsegError("areas.csv needs the legend of the model's ids (OutputOptions.legend)")
    return AreasTable(areas_path(out_dir), outputs.legend)


def _add_areas(table: AreasTable, result: FileResult, outputs: OutputOptions) -> None:
    """An image's rows: counted while written, or read back from a skipped image's map."""
    areas = result.areas
    if result.status == "skipped" and result.output is not None:
        assert outputs.legend is not None
        areas = areas_of_done(result.output, result.image, outputs.legend)
    if areas is not None:
        table.add(areas)


class _Exhaustible(Iterator[Any]):
    """An iterator that remembers whether it ran to the end."""

    def __init__(self, items: Iterator[Any]) -> None:
        self.items = items
        self.exhausted = False

    def __next__(self) -> Any:
        try:
            return next(self.items)
        except StopIteration:
            self.exhausted = True
            raise


class _Tally:
    """Running counts and speed for the progress reports."""

    def __init__(self, total: int | None) -> None:
        self.total = total
        self.ok = self.skipped = self.failed = 0
        self.started = time.perf_counter()

    def within(self, job: FileJob, step: Progress) -> Progress:
        """A report from inside a file: the tile counts, with an ETA over the whole run."""
        done = self.ok + self.skipped + self.failed
        fraction = step.fraction or 0.0
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        eta = None
        if self.total is not None and done + fraction > 0:
            eta = (self.total - done - fraction) * elapsed / (done + fraction)
        metrics = {"status": RUNNING, "image": job.image, "output": job.output,
                   "fraction": fraction}  # fmt: skip
        return Progress(done, self.total, step.message, eta, metrics)

    def add(self, result: FileResult) -> Progress:
        if result.status == "ok":
            self.ok += 1
        elif result.status == "skipped":
            self.skipped += 1
        else:
            self.failed += 1
        done = self.ok + self.skipped + self.failed
        elapsed = max(time.perf_counter() - self.started, 1e-9)
        eta = None
        if self.total is not None and self.ok:  # skipped files took no time: not in the rate
            eta = (self.total - done) * elapsed / (self.ok + self.failed)
        counter = f"[{done}/{self.total}]" if self.total is not None else f"[{done}]"
        if result.status == "ok":
            message = f"{counter} {result.image} -> {result.output} ({result.seconds:.1f} s)"
        elif result.status == "skipped":
            message = f"{counter} {result.image}: {result.output} already done, skipped"
        else:
            message = f"{counter} {result.error}"
        metrics = {**asdict(replace(result, areas=None)), "ok": self.ok, "skipped": self.skipped}
        metrics.update(failed=self.failed, images_per_s=self.ok / elapsed)
        return Progress(done, self.total, message, eta, metrics)


def _run_here(
    loaded: LoadedModel,
    planned: Iterator[FileJob | FileResult],
    options: PredictOptions,
    cancel: CancelToken | None,
    tally: _Tally,
) -> Iterator[FileResult | Progress]:
    """Each file in this process; the tiles' progress comes as "running" reports."""
    for item in planned:
        if cancel:
            return
        if isinstance(item, FileResult):
            yield item
            continue
        job = predict_file(loaded, item, options, cancel)
        while True:
            try:
                step = next(job)
            except StopIteration as stop:
                yield stop.value
                break
            yield tally.within(item, step)


__all__ = ["RUNNING", "Summary", "predict_collection"]
