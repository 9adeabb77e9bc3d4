"""Prediction over large collections: streamed, resumable, logged, multi-process.

:func:`predict_collection` is the job behind ``acseg-core predict`` for one image
or a hundred thousand. It is a generator (one :class:`Progress` per finished
file, honouring a :class:`CancelToken`) that returns a :class:`Summary`.

* **Streaming.** Inputs come from :func:`iter_sources` one path at a time: a
  folder is one sorted listing (the path list), a list file is read line by line.
  Nothing else is kept per file except the output names already claimed (to
  refuse two inputs that would write the same output). At most ``2 × nproc``
  files are in flight; each is read by windows (:mod:`acseg_core.inference.predict`), so
  memory and open files stay bounded whatever the collection's size.
* **Resume.** Outputs are written atomically (:func:`acseg_core.io.atomic.atomic_path`:
  a hidden temp file ``.<name>.<random><suffix>`` beside the output, renamed when
  complete), so an output that exists under its final name is complete. With
  ``resume`` such inputs are ``skipped``. Temp names start with a dot and carry a
  random part, so they are never mistaken for outputs, never picked up as inputs
  from a folder, and stale ones left by a killed run are removed before their
  output is written again.
* **Manifest.** One record per finished file, appended (one ``write`` of a whole
  line, flushed and fsynced) as files finish: input, output, status
  (``ok``/``skipped``/``error``), seconds, error message. JSON lines by default,
  CSV when the path ends in ``.csv``. A line torn by a crash is ignored by
  :func:`read_manifest` and terminated before the next record is appended.
* **Processes.** ``nproc > 1`` shares the files between ``nproc`` spawned worker
  processes (:class:`concurrent.futures.ProcessPoolExecutor`), each loading the
  model once. On CUDA the workers take the GPUs round-robin; on the CPU each gets
  ``cores // nproc`` torch threads, which :mod:`acseg_core.inference.predict` turns into as
  many single-threaded forward passes — so ``nproc`` processes never run more
  compute threads than there are cores. Workers ignore Ctrl+C: the parent cancels
  them through a shared event and each drops its half-written file.
"""

from __future__ import annotations

import csv
import io
import json
import os
import signal
import sys
import time
from collections.abc import Generator, Iterable, Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, TextIO

from acseg_core.errors import AcsegError, CancelledError, InputError
from acseg_core.jobs import CancelToken, Progress

OUTPUT_TAG = "_clusters"
CONFIDENCE_TAG = "_confidence"
STATUSES = ("ok", "skipped", "error")
_IN_FLIGHT_PER_PROCESS = 2  # queued files per worker: enough to never idle, bounded


@dataclass(frozen=True)
class PredictOptions:
    """Per-file prediction settings (what ``acseg-core predict`` exposes)."""

    tile: int = 512
    batch: int = 4
    with_confidence: bool = False
    precision: str = "auto"
    device: str = "auto"
    smooth: int | None = None  # majority-filter window; None = the model's own
    readout: str | None = None  # "head" | "kmeans"; None = the model's own


@dataclass
class FileResult:
    """Outcome of one input.

    ``status``: ``ok`` (written), ``skipped`` (complete output already there, with
    resume), ``error`` (with ``error``), ``cancelled`` (stopped midway; nothing
    written, not recorded in the manifest).
    """

    image: Path
    output: Path | None
    status: str
    seconds: float
    error: str = ""

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


# -- naming ------------------------------------------------------------------------


def output_path(image: Path, out_dir: Path, georeferenced_tiff: bool) -> Path:
    """``<out_dir>/<stem>_clusters.tif`` for GeoTIFF inputs, ``.png`` otherwise."""
    suffix = ".tif" if georeferenced_tiff else ".png"
    return out_dir / f"{image.stem}{OUTPUT_TAG}{suffix}"


def is_geotiff(image: Path) -> bool:
    from acseg_core.io.raster import probe

    return image.suffix.lower() in (".tif", ".tiff") and probe(image).georeferenced


def looks_like_output(path: Path) -> bool:
    """A name this command writes (cluster map or confidence raster)."""
    stem = path.stem
    return stem.endswith(OUTPUT_TAG) or stem.endswith(OUTPUT_TAG + CONFIDENCE_TAG)


def is_complete(out: Path, with_confidence: bool) -> bool:
    """Both files of an output exist under their final names (writes are atomic)."""
    from acseg_core.inference.predict import confidence_path_for

    if not out.is_file():
        return False
    return not with_confidence or confidence_path_for(out).is_file()


def remove_stale_temps(out: Path) -> list[Path]:
    """Delete temp files a killed run left for ``out`` (``.<name>.*``); returns them.

    Safe because one run owns an output folder and never writes one output twice
    at the same time.
    """
    from acseg_core.inference.predict import confidence_path_for

    removed = []
    for target in (out, confidence_path_for(out)):
        for stale in target.parent.glob(f".{target.name}.*"):
            try:
                stale.unlink()
            except OSError:
                continue
            removed.append(stale)
    return removed


# -- inputs ------------------------------------------------------------------------


def iter_sources(
    paths: Sequence[Path], list_file: Path | None = None, out_dir: Path | None = None
) -> Iterator[Path | InputError]:
    """Input images one at a time; unusable entries come as :class:`InputError`.

    Folders are listed once, sorted, not recursively; hidden files (temp files of
    atomic writes among them) are left out, and so are this command's own outputs
    when the folder is ``out_dir`` (a rerun with ``--out`` = the input folder).
    A list file holds one path per line (blank lines and ``#`` comments ignored),
    relative paths being relative to the list file's folder.
    """
    from acseg_core.io.raster import IMAGE_SUFFIXES

    out_real = out_dir.resolve() if out_dir is not None else None
    for path in paths:
        if path.is_dir():
            names = sorted(
                entry.name
                for entry in os.scandir(path)
                if not entry.name.startswith(".")
                and Path(entry.name).suffix.lower() in IMAGE_SUFFIXES
                and not Path(entry.name).stem.endswith("_label")
                and entry.is_file()
            )
            in_out_dir = out_real is not None and path.resolve() == out_real
            kept = 0
            for name in names:
                if in_out_dir and looks_like_output(Path(name)):
                    continue
                kept += 1
                yield path / name
            if not kept:
                yield InputError(path, "no images in this folder")
        elif path.exists():
            yield path
        else:
            yield InputError(path, "file or folder not found")
    if list_file is not None:
        yield from _iter_list_file(list_file)


def count_sources(paths: Sequence[Path], list_file: Path | None = None) -> int:
    """How many entries :func:`iter_sources` will yield (one cheap pass, nothing kept)."""
    return sum(1 for _ in iter_sources(paths, list_file))


def _iter_list_file(list_file: Path) -> Iterator[Path | InputError]:
    try:
        with open(list_file, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                entry = line.strip()
                if not entry or entry.startswith("#"):
                    continue
                path = Path(entry)
                if not path.is_absolute():
                    path = list_file.parent / path
                if path.is_file():
                    yield path
                else:
                    yield InputError(path, f"not found (line {number} of {list_file})")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputError(list_file, f"cannot read the list file ({exc})") from exc


# -- manifest ----------------------------------------------------------------------


class Manifest:
    """Append-only record of finished files; JSON lines, or CSV for ``*.csv``."""

    FIELDS = ("input", "output", "status", "seconds", "error")

    def __init__(self, path: Path) -> None:
        self.path = path
        self.csv = path.suffix.lower() == ".csv"
        path.parent.mkdir(parents=True, exist_ok=True)
        self._file: TextIO = open(path, "a+", encoding="utf-8", newline="")  # noqa: SIM115
        self._file.seek(0, io.SEEK_END)
        if self._file.tell() == 0:
            if self.csv:
                self._write(self._csv_line(dict(zip(self.FIELDS, self.FIELDS, strict=True))))
        else:  # a crash may have torn the last line: never glue a record onto it
            self._file.seek(self._file.tell() - 1)
            if self._file.read(1) != "\n":
                self._write("\n")

    def append(self, result: FileResult) -> None:
        record = result.record()
        self._write(self._csv_line(record) if self.csv else json.dumps(record) + "\n")

    def close(self) -> None:
        self._file.close()

    def _csv_line(self, record: dict[str, Any]) -> str:
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerow([record[f] for f in self.FIELDS])
        return buffer.getvalue()

    def _write(self, text: str) -> None:
        self._file.write(text)  # one whole line per write, then on disk
        self._file.flush()
        os.fsync(self._file.fileno())


def read_manifest(path: Path) -> list[dict[str, Any]]:
    """Records of a manifest; a torn (incomplete) line is skipped."""
    text = Path(path).read_text(encoding="utf-8")
    if path.suffix.lower() == ".csv":
        rows = list(csv.DictReader(io.StringIO(text)))
        return [r for r in rows if r.get("status") in STATUSES]
    records = []
    for line in text.splitlines():
        try:
            record = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(record, dict) and record.get("status") in STATUSES:
            records.append(record)
    return records


# -- one file ----------------------------------------------------------------------


def predict_file(
    loaded: Any,
    image: Path,
    out: Path,
    *,
    tile: int,
    batch: int,
    with_confidence: bool = False,
    precision: str = "auto",
    smooth: int | None = None,
    readout: str | None = None,
    show_progress: bool = False,
    cancel: Any = None,
) -> FileResult:
    """Predict one image to ``out``; expected failures are returned, not raised."""
    from acseg_core.inference.predict import predict

    started = time.perf_counter()
    remove_stale_temps(out)
    try:
        for progress in predict(
            loaded,
            image,
            out=out,
            tile=tile,
            batch=batch,
            with_confidence=with_confidence,
            precision=precision,
            smooth=smooth,
            readout=readout,
            cancel=cancel,
        ):
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
    return FileResult(image, out, "ok", time.perf_counter() - started)


# -- the collection ------------------------------------------------------------------


@dataclass(frozen=True)
class _Job:
    image: Path
    output: Path


def _plan(
    sources: Iterable[Path | InputError], out_dir: Path, resume: bool, with_confidence: bool
) -> Iterator[_Job | FileResult]:
    """Jobs to run, or the result for inputs that need no work (skipped, refused)."""
    claimed: dict[Path, Path] = {}  # output -> input: the only per-file state kept
    out_real = out_dir.resolve()
    for source in sources:
        if isinstance(source, InputError):
            yield FileResult(source.path, None, "error", 0.0, str(source))
            continue
        image = source
        if image.resolve().parent == out_real and looks_like_output(image):
            reason = "named like an output of this command in the output folder; skipped"
            yield FileResult(image, None, "error", 0.0, f"{image}: {reason}")
            continue
        try:
            out = output_path(image, out_dir, is_geotiff(image))
        except AcsegError as exc:
            yield FileResult(image, None, "error", 0.0, str(exc))
            continue
        key = out.resolve()
        if key in claimed:
            reason = f"output {out} would also be written for {claimed[key]}; skipped"
            yield FileResult(image, None, "error", 0.0, f"{image}: {reason}")
            continue
        claimed[key] = image
        if resume and is_complete(out, with_confidence):
            yield FileResult(image, out, "skipped", 0.0)
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

    ``Progress.metrics``: ``status``, ``image``, ``output``, ``seconds``,
    ``error``, running counts ``ok``/``skipped``/``failed`` and ``images_per_s``
    (predicted files per wall second). ``loaded`` reuses a model already loaded
    (single process only). Cancel stops submitting files, cancels those in
    flight (their outputs are not written) and returns.
    """
    if nproc < 1:
        raise AcsegError("--nproc must be at least 1")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    log = Manifest(Path(manifest)) if manifest is not None else None
    planned = _Exhaustible(_plan(sources, out_dir, resume, options.with_confidence))
    tally = _Tally(total)
    dropped = 0  # files stopped midway by a cancel
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
                log.append(result)
            yield tally.add(result)
    finally:
        if log is not None:
            log.close()
    # a cancel that came after the last file left nothing undone
    cancelled = bool(cancel is not None and cancel) and (dropped > 0 or not planned.exhausted)
    return Summary(tally.ok, tally.skipped, tally.failed, cancelled, manifest)


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
        rate = self.ok / elapsed
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
        metrics.update(failed=self.failed, images_per_s=rate)
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
        yield _predict_job(loaded, item, options, cancel, show_file_progress)


def _run_pool(
    model_path: Path,
    planned: Iterator[_Job | FileResult],
    options: PredictOptions,
    nproc: int,
    cancel: CancelToken | None,
) -> Iterator[FileResult]:
    """Share the jobs between ``nproc`` spawned workers, at most 2 each in flight."""
    import multiprocessing

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
        initargs=(str(model_path), options, nproc, threads, slots, stop),
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


def usable_cores() -> int:
    """CPU cores this process may run on (affinity-aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


class _EventToken:
    """A multiprocessing Event seen through the CancelToken interface."""

    def __init__(self, event: Any) -> None:
        self.event = event

    @property
    def cancelled(self) -> bool:
        return bool(self.event.is_set())

    def __bool__(self) -> bool:
        return self.cancelled


_WORKER: dict[str, Any] = {}


def _init_worker(
    model_path: str,
    options: PredictOptions,
    nproc: int,
    threads: int,
    slots: Any,
    stop: Any,
) -> None:
    """Per worker: ignore Ctrl+C, pick a device (GPUs round-robin), size threads, load."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    import torch

    slot = slots.get()
    device = options.device
    if device in ("auto", "cuda") and torch.cuda.is_available():
        device = f"cuda:{slot % torch.cuda.device_count()}"
    else:
        torch.set_num_threads(threads)
        torch.set_num_interop_threads(1)
    _WORKER["stop"] = _EventToken(stop)
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
    return _predict_job(_WORKER["loaded"], job, _WORKER["options"], stop, False)


def _predict_job(
    loaded: Any, job: _Job, options: PredictOptions, cancel: Any, show_progress: bool
) -> FileResult:
    """:func:`predict_file`; an unexpected error fails that file, not the collection."""
    started = time.perf_counter()
    try:
        return predict_file(
            loaded,
            job.image,
            job.output,
            tile=options.tile,
            batch=options.batch,
            with_confidence=options.with_confidence,
            precision=options.precision,
            smooth=options.smooth,
            readout=options.readout,
            show_progress=show_progress,
            cancel=cancel,
        )
    except Exception as exc:  # one bad file must not stop a collection
        seconds = time.perf_counter() - started
        return FileResult(job.image, None, "error", seconds, f"{job.image}: {exc!r}")


__all__ = [
    "FileResult",
    "Manifest",
    "PredictOptions",
    "Summary",
    "count_sources",
    "is_complete",
    "is_geotiff",
    "iter_sources",
    "looks_like_output",
    "output_path",
    "predict_collection",
    "predict_file",
    "read_manifest",
    "remove_stale_temps",
    "usable_cores",
]
