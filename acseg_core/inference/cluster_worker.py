"""What runs on the Dask workers: the model loaded once per worker process, the
run's cancel flag polled from a task, and the one-file task itself. Imported by the
workers through pickled references, so it stays importable without Dask."""

from __future__ import annotations

import contextlib
import ctypes
import os
import sys
import threading
import time
from dataclasses import dataclass

import torch

from acseg_core.errors import AcsegError, InputError
from acseg_core.inference.files import FileJob, FileResult, guarded_predict
from acseg_core.inference.predict import PredictOptions
from acseg_core.model.checkpoint import LoadedModel, load_model

CANCEL_POLL_S = 0.5  # how often a running task asks whether the run was cancelled
M_TRIM_THRESHOLD, M_MMAP_THRESHOLD = -1, -3  # glibc's mallopt parameters


@dataclass(frozen=True)
class ModelRef:
    """The model as tasks carry it: an absolute path, its SHA-256, and the torch
    threads a worker sets (None: the worker's own setting)."""

    path: str
    digest: str
    threads: int | None = None


_MODELS: dict[tuple[str, str, str], LoadedModel] = {}
_LOADS = [0]  # how many times this process loaded a model (checked by the tests)
_LOCK = threading.Lock()


def model_loads() -> int:
    """How many times this worker process loaded a model (``client.run`` it)."""
    return _LOADS[0]


def _worker_device(device: str) -> str:
    """``local:N`` workers (named 0..N-1) take the GPUs round-robin."""
    if device in ("auto", "cuda") and torch.cuda.is_available():
        with contextlib.suppress(Exception):
            from distributed import get_worker

            name = get_worker().name
            if isinstance(name, int):
                return f"cuda:{name % torch.cuda.device_count()}"
    return device


def _undo_malloc_trim() -> None:
    """Dask's nanny starts workers with ``MALLOC_TRIM_THRESHOLD_=65536``, which also
    freezes glibc's mmap threshold at 128 KiB: every larger allocation becomes an
    mmap/munmap pair, and torch's CPU kernels, which allocate per operator, run at
    about half speed (measured: 0.47 vs 0.24 s per 512² file). Give glibc back its
    dynamic ceilings (mmap above 32 MiB, trim above 64 MiB) in this worker."""
    if "MALLOC_TRIM_THRESHOLD_" not in os.environ or not sys.platform.startswith("linux"):
        return
    with contextlib.suppress(OSError, AttributeError):
        libc = ctypes.CDLL("libc.so.6")
        libc.mallopt(M_MMAP_THRESHOLD, 32 << 20)
        libc.mallopt(M_TRIM_THRESHOLD, 64 << 20)


def worker_model(model: ModelRef, device: str) -> LoadedModel:
    """The model, loaded once per process (several task threads share it)."""
    device = _worker_device(device)
    key = (model.path, model.digest, device)
    with _LOCK:
        if key not in _MODELS:
            _undo_malloc_trim()
            if model.threads is not None:
                torch.set_num_threads(model.threads)
            loaded = load_model(model.path, device=device)
            if loaded.digest != model.digest:
                raise InputError(model.path, "the model file changed since this run started "
                                             "(rerun with --resume)")  # fmt: skip
            _MODELS.clear()  # one model at a time
            _MODELS[key] = loaded
            _LOADS[0] += 1
        return _MODELS[key]


def warm_task(model: ModelRef, device: str) -> str:
    """Load the model on this worker; the error as one line, or ''."""
    try:
        worker_model(model, device)
    except AcsegError as exc:
        return str(exc)
    except Exception as exc:
        return f"{model.path}: {exc!r}"
    return ""


class _RunToken:
    """A task's cancel flag: the run's Dask ``Event``, asked at most every
    :data:`CANCEL_POLL_S` (from any thread of the task)."""

    def __init__(self, name: str) -> None:
        from distributed import get_client

        self.name = name
        self.client = get_client()  # in the task's thread: the worker's client
        self.lock = threading.Lock()
        self.checked = -CANCEL_POLL_S
        self.set = False

    def __bool__(self) -> bool:
        if self.set:
            return True
        with self.lock:
            now = time.monotonic()
            if now - self.checked >= CANCEL_POLL_S:
                self.checked = now
                with contextlib.suppress(Exception):  # scheduler gone: the worker stops anyway
                    from distributed import Event

                    self.set = bool(Event(self.name, client=self.client).is_set())
        return self.set


def predict_task(
    job: FileJob, model: ModelRef, options: PredictOptions, cancel_name: str
) -> FileResult:
    """One file on a Dask worker (never raises: a failure is the file's result)."""
    token = _RunToken(cancel_name)
    if token:
        return FileResult(job.image, None, "cancelled", 0.0)
    try:
        loaded = worker_model(model, options.device)
    except AcsegError as exc:
        return FileResult(job.image, None, "error", 0.0, str(exc))
    return guarded_predict(loaded, job, options, token)


__all__ = ["ModelRef", "model_loads", "predict_task", "warm_task"]
