"""Prediction over large collections: streamed, resumable, logged, multi-process.

:func:`predict_collection` is the job behind ``acseg-core predict`` for one image or a
hundred thousand: a generator (one :class:`Progress` per finished file, honouring a
:class:`CancelToken`) that returns a :class:`Summary`.

* **Streaming.** Inputs come one path at a time (:mod:`.sources`); the only state kept
  per file is the output names already claimed (two inputs never write one output).
  At most ``2 × nproc`` files are in flight, each read by windows.
* **Never over an input.** An existing file at an output's name that acseg did not
  write (:func:`~.naming.is_acseg_output`) is a user's image: that input is refused.
* **Resume.** Outputs are written atomically (a hidden temp file beside the output,
  renamed when complete), so an output under its final name is complete; with
  ``resume`` such inputs are ``skipped``. Stale temps of a killed run are removed
  before their output is written again.
* **Manifest.** One record per finished file (:mod:`.manifest`).
* **Processes.** ``nproc > 1`` shares the files between spawned worker processes, each
  loading the model once; on CUDA they take the GPUs round-robin, on the CPU each gets
  ``cores // nproc`` torch threads. Workers ignore Ctrl+C (the parent cancels them
  through a shared event) and die with the parent: the kernel kills them when it goes
  (Linux), and each checks that its parent lives before every batch.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import time
from collections.abc import Generator, Iterable, Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from acseg_core.errors import AcsegError, CancelledError, InputError
from acseg_core.inference.manifest import Manifest
from acseg_core.inference.naming import (
    is_acseg_output,
    is_complete,
    is_geotiff,
    looks_like_output,
    output_path,
    remove_stale_temps,
)
from acseg_core.inference.outputs import OutputOptions
from acseg_core.inference.readout import MODEL_DEFAULT, ReadOut
from acseg_core.io.folders import make_output_folder
from acseg_core.jobs import CancelToken, Progress

_IN_FLIGHT_PER_PROCESS = 2  # queued files per worker: enough to never idle, bounded


@dataclass(frozen=True)
class PredictOptions:
    """Per-file prediction settings (what ``acseg-core predict`` exposes)."""

    readout: ReadOut = MODEL_DEFAULT
    tile: int = 512
    batch: int = 4
    with_confidence: bool = False
    precision: str = "auto"
    device: str = "auto"
    outputs: OutputOptions | None = None  # GIS formats (.outputs); None = the map only


@dataclass
class FileResult:
    """Outcome of one input: ``ok`` (written), ``skipped`` (complete output already
    there, with resume), ``error`` (with ``error``), ``cancelled`` (stopped midway;
    nothing written, not recorded in the manifest)."""

    image: Path
    output: Path | None
    status: str
    seconds: float
    error: str = ""
    areas: Any = None  # ImageAreas for the run's areas.csv (not in the manifest)
    note: str = ""  # a format this input could not have (e.g. no GeoPackage without CRS)

    def record(self) -> dict[str, Any]:
        """The manifest record (paths as strings)."""
        return {
            "input": str(self.image),
            "output": str(self.output) if self.output is not None else "",
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }


@dataclass(frozen=True)
class Summary:
    """The return value of :func:`predict_collection`."""

    ok: int
    skipped: int
    failed: int
    cancelled: bool
    manifest: Path | None
    areas: Path | None = None  # the run's areas.csv, when written


def predict_file(
    loaded: Any,
    image: Path,
    out: Path,
    options: PredictOptions,
    *,
    show_progress: bool = False,
    cancel: Any = None,
) -> FileResult:
    """Predict one image to ``out``; expected failures are returned, not raised."""
    from acseg_core.inference.predict import predict

    started = time.perf_counter()
    remove_stale_temps(out)
    areas, note, output = None, "", out
    try:
        if options.outputs is not None:
            from acseg_core.inference.outputs import predict_outputs, primary_output

            job = predict_outputs(loaded, image, out, options, cancel)
            output = primary_output(out, options.outputs)
        else:
            job = predict(
                loaded,
                image,
                out=out,
                readout=options.readout,
                tile=options.tile,
                batch=options.batch,
                with_confidence=options.with_confidence,
                precision=options.precision,
                cancel=cancel,
            )
        while True:
            try:
                progress = next(job)
            except StopIteration as stop:
                if options.outputs is not None:
                    areas, note = stop.value
                break
            if show_progress:
                eta = f", {progress.eta_s:.0f} s left" if progress.eta_s is not None else ""
                print(f"\r  {progress.message}{eta}   ", end="", file=sys.stderr, flush=True)
    except CancelledError as exc:
        return FileResult(image, None, "cancelled", time.perf_counter() - started, str(exc))
    except AcsegError as exc:
        return FileResult(image, None, "error", time.perf_counter() - started, str(exc))
    finally:
        if show_progress:
            print("\r\033[K", end="", file=sys.stderr)
    return FileResult(image, output, "ok", time.perf_counter() - started, areas=areas, note=note)


@dataclass(frozen=True)
class _Job:
    image: Path
    output: Path


def _plan(
    sources: Iterable[Path | InputError],
    out_dir: Path,
    resume: bool,
    with_confidence: bool,
    outputs: OutputOptions | None = None,
) -> Iterator[_Job | FileResult]:
    """Jobs to run, or the result for inputs that need no work (skipped, refused)."""
    from acseg_core.inference.outputs import complete, primary_output

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
            out = output_path(image, out_dir, is_geotiff(image))
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
        if resume and (
            is_complete(out, with_confidence)
            if outputs is None
            else complete(out, outputs, with_confidence)
        ):
            yield FileResult(image, out if outputs is None else primary_output(out, outputs),
                             "skipped", 0.0)  # fmt: skip
            continue
        yield _Job(image, out)


def predict_collection(
    model_path: Path,
    sources: Iterable[Path | InputError],
    out_dir: Path,
    *,
    options: PredictOptions = PredictOptions(),
    resume: bool = False,
    manifest: Path | None = None,
    nproc: int = 1,
    cancel: CancelToken | None = None,
    total: int | None = None,
    loaded: Any = None,
    show_file_progress: bool = False,
) -> Generator[Progress, None, Summary]:
    """Predict every source into ``out_dir``; one Progress per finished file.

    ``Progress.metrics``: ``status``, ``image``, ``output``, ``seconds``, ``error``,
    running counts ``ok``/``skipped``/``failed`` and ``images_per_s``. ``loaded``
    reuses a model already loaded (single process only). Cancel stops submitting
    files, cancels those in flight (their outputs are not written) and returns.
    """
    if nproc < 1:
        raise AcsegError("--nproc must be at least 1")
    out_dir = Path(out_dir)
    make_output_folder(out_dir)
    log = Manifest(Path(manifest)) if manifest is not None else None
    planned = _Exhaustible(
        _plan(sources, out_dir, resume, options.with_confidence, options.outputs)
    )
    tally = _Tally(total)
    dropped = 0  # files stopped midway by a cancel
    table = _areas_table(out_dir, options.outputs)
    try:
        if nproc == 1:
            if loaded is None:
                from acseg_core.model.checkpoint import load_model

                loaded = load_model(model_path, device=options.device)
            results = _run_here(loaded, planned, options, cancel, show_file_progress)
        else:
            results = _run_pool(model_path, planned, options, nproc, cancel)
        for result in results:
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
        if table is not None:
            table.__exit__(None, None, None)
    return Summary(tally.ok, tally.skipped, tally.failed, cancelled, manifest, areas)


def _areas_table(out_dir: Path, outputs: OutputOptions | None) -> Any:
    """The run's areas.csv being streamed (None unless ``csv`` was asked for)."""
    if outputs is None or "csv" not in outputs.formats:
        return None
    from acseg_core.inference.outputs import areas_path
    from acseg_core.labelling.areas import AreasTable

    if outputs.legend is None:
        raise AcsegError("areas.csv needs the legend of the model's ids (OutputOptions.legend)")
    return AreasTable(areas_path(out_dir), outputs.legend)


def _add_areas(table: Any, result: FileResult, outputs: Any) -> None:
    """An image's rows: counted while written, or read back from a skipped image's map."""
    areas = result.areas
    if result.status == "skipped" and result.output is not None:
        from acseg_core.inference.outputs import areas_of_done

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
        if self.total is not None and self.ok:
            eta = (self.total - done) * elapsed / max(done, 1)
        counter = f"[{done}/{self.total}]" if self.total is not None else f"[{done}]"
        if result.status == "ok":
            message = f"{counter} {result.image} -> {result.output} ({result.seconds:.1f} s)"
        elif result.status == "skipped":
            message = f"{counter} {result.image}: {result.output} already done, skipped"
        else:
            message = f"{counter} {result.error}"
        metrics = {**asdict(result), "ok": self.ok, "skipped": self.skipped}
        metrics.update(failed=self.failed, images_per_s=self.ok / elapsed)
        return Progress(done, self.total, message, eta, metrics)


def _run_here(
    loaded: Any,
    planned: Iterator[_Job | FileResult],
    options: PredictOptions,
    cancel: CancelToken | None,
    show_file_progress: bool,
) -> Iterator[FileResult]:
    for item in planned:
        if cancel:
            return
        if isinstance(item, FileResult):
            yield item
            continue
        yield _guarded(loaded, item, options, cancel, show_file_progress)


def _run_pool(
    model_path: Path,
    planned: Iterator[_Job | FileResult],
    options: PredictOptions,
    nproc: int,
    cancel: CancelToken | None,
) -> Iterator[FileResult]:
    """Share the jobs between ``nproc`` spawned workers, at most 2 each in flight."""
    import multiprocessing

    from acseg_core.device import usable_cores

    context = multiprocessing.get_context("spawn")  # CUDA and threads survive only spawn
    stop = context.Event()
    slots = context.Queue()
    for slot in range(nproc):
        slots.put(slot)
    threads = max(1, usable_cores() // nproc)
    pool = ProcessPoolExecutor(
        max_workers=nproc,
        mp_context=context,
        initializer=_init_worker,
        initargs=(str(model_path), options, threads, slots, stop, os.getpid()),
    )
    pending: dict[Future[FileResult], _Job] = {}
    exhausted = False
    try:
        while True:
            while not exhausted and not cancel and len(pending) < nproc * _IN_FLIGHT_PER_PROCESS:
                item = next(planned, None)
                if item is None:
                    exhausted = True
                elif isinstance(item, FileResult):
                    yield item
                else:
                    pending[pool.submit(_run_job, item)] = item
            if cancel:
                stop.set()
            if not pending:
                break
            finished, _ = wait(pending, timeout=0.25, return_when=FIRST_COMPLETED)
            for future in finished:
                job = pending.pop(future)
                try:
                    yield future.result()
                except BrokenProcessPool as exc:
                    raise AcsegError(
                        f"a prediction worker died while on {job.image} (out of memory?); "
                        "rerun with --resume to continue"
                    ) from exc
    finally:
        stop.set()  # on any exit, workers drop their half-done files before we wait
        pool.shutdown(wait=True, cancel_futures=True)


class _WorkerToken:
    """A worker's cancel flag: the parent's shared event, or the parent gone."""

    def __init__(self, event: Any, parent_pid: int) -> None:
        self.event, self.parent_pid = event, parent_pid

    @property
    def cancelled(self) -> bool:
        return os.getppid() != self.parent_pid or bool(self.event.is_set())

    def __bool__(self) -> bool:
        return self.cancelled


_WORKER: dict[str, Any] = {}


def _die_with_parent() -> None:
    """Ask Linux to SIGKILL this process when its parent dies (``PR_SET_PDEATHSIG``)."""
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGKILL)


def _init_worker(
    model_path: str, options: PredictOptions, threads: int, slots: Any, stop: Any, parent: int
) -> None:
    """Per worker: die with the parent, ignore Ctrl+C, pick a device, size threads, load."""
    _die_with_parent()
    if os.getppid() != parent:  # the parent died before the kernel was told
        os._exit(1)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    slot = slots.get()
    device = options.device
    if device in ("auto", "cuda") and torch.cuda.is_available():
        device = f"cuda:{slot % torch.cuda.device_count()}"
    else:
        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
    _WORKER["stop"] = _WorkerToken(stop, parent)
    _WORKER["options"] = options
    try:
        from acseg_core.model.checkpoint import load_model

        _WORKER["loaded"] = load_model(model_path, device=device)
    except AcsegError as exc:  # reported per file rather than breaking the pool
        _WORKER["error"] = str(exc)


def _run_job(job: _Job) -> FileResult:
    """One file in a worker process."""
    stop = _WORKER["stop"]
    if stop:
        return FileResult(job.image, None, "cancelled", 0.0)
    if "error" in _WORKER:
        return FileResult(job.image, None, "error", 0.0, _WORKER["error"])
    return _guarded(_WORKER["loaded"], job, _WORKER["options"], stop, False)


def _guarded(
    loaded: Any, job: _Job, options: PredictOptions, cancel: Any, show_progress: bool
) -> FileResult:
    """:func:`predict_file`; an unexpected error fails that file, not the collection."""
    started = time.perf_counter()
    try:
        return predict_file(
            loaded, job.image, job.output, options, show_progress=show_progress, cancel=cancel
        )
    except Exception as exc:  # one bad file must not stop a collection
        seconds = time.perf_counter() - started
        return FileResult(job.image, None, "error", seconds, f"{job.image}: {exc!r}")


__all__ = [
    "FileResult",
    "PredictOptions",
    "Summary",
    "predict_collection",
    "predict_file",
]
