"""Prediction files shared between worker processes on this machine (``--nproc N``).

Each spawned worker loads the model once; on CUDA they take the GPUs round-robin, on
the CPU each gets ``cores // nproc`` torch threads. Workers ignore Ctrl+C (the parent
cancels them through a shared event) and die with the parent: the kernel kills them
when it goes (Linux), and each checks that its parent lives before every batch.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import signal
import sys
from collections.abc import Iterator
from concurrent.futures import FIRST_COMPLETED, Future, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path
from typing import Any

import torch

from acseg_core.device import usable_cores
from acseg_core.errors import AcsegError
from acseg_core.inference.files import FileJob, FileResult, guarded_predict
from acseg_core.inference.predict import PredictOptions
from acseg_core.jobs import CancelToken
from acseg_core.model.checkpoint import load_model

IN_FLIGHT_PER_PROCESS = 2  # queued files per worker: enough to never idle, bounded


def run_pool(
    model_path: Path,
    planned: Iterator[FileJob | FileResult],
    options: PredictOptions,
    nproc: int,
    cancel: CancelToken | None,
) -> Iterator[FileResult]:
    """Share the jobs between ``nproc`` spawned workers, at most 2 each in flight."""
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
    pending: dict[Future[FileResult], FileJob] = {}
    exhausted = False
    try:
        while True:
            while not exhausted and not cancel and len(pending) < nproc * IN_FLIGHT_PER_PROCESS:
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
        import ctypes  # Linux only

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
        _WORKER["loaded"] = load_model(model_path, device=device)
    except AcsegError as exc:  # reported per file rather than breaking the pool
        _WORKER["error"] = str(exc)


def _run_job(job: FileJob) -> FileResult:
    """One file in a worker process."""
    stop = _WORKER["stop"]
    if stop:
        return FileResult(job.image, None, "cancelled", 0.0)
    if "error" in _WORKER:
        return FileResult(job.image, None, "error", 0.0, _WORKER["error"])
    return guarded_predict(_WORKER["loaded"], job, _WORKER["options"], stop)


__all__ = ["IN_FLIGHT_PER_PROCESS", "run_pool"]
