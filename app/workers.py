"""Run a core generator job in a QThread and report through signals.

Core jobs (training, prediction, export) are plain generators that yield
:class:`~acseg_core.jobs.Progress`, honour a :class:`CancelToken` and may
``return`` a result. :class:`JobWorker` drives one such generator on its own
thread; it never touches widgets — views connect to its signals, which Qt
delivers on the GUI thread (queued connections across threads).

Outcome signals (exactly one is emitted, then ``ended``):

- ``succeeded(result)``: the generator's return value.
- ``cancelled(result)``: the token was set; the job stopped (``result`` is what it
  returned, ``None`` when it raised :class:`CancelledError`).
- ``failed(title, error)``: a dialog title and the exception itself, so receivers
  can act on its type and fields (a :class:`~acseg_core.errors.BandMismatch` names
  the bands); :func:`message_of` is its one line for a dialog. Expected errors
  (:class:`AcsegError`) give their own text; out-of-memory gets advice; anything
  unexpected gives its type and message (the traceback goes to the log).
"""

from __future__ import annotations

import logging
import time
import traceback
from collections.abc import Callable, Generator
from typing import Any

from PySide6.QtCore import QObject, QThread, Signal, Slot

from acseg_core.errors import AcsegError, CancelledError
from acseg_core.jobs import CancelToken, Progress

log = logging.getLogger(__name__)

JobFactory = Callable[[CancelToken], Generator[Any, Any, Any]]

PROGRESS_INTERVAL_S = 0.05  # at most ~20 progress signals per second reach the GUI


def describe_failure(exc: BaseException) -> tuple[str, str]:
    """(dialog title, one-line message) for an exception raised by a job."""
    if isinstance(exc, AcsegError):
        return "Error", str(exc)
    if is_out_of_memory(exc):
        return "Out of memory", message_of(exc)
    return "Unexpected error", message_of(exc)


def message_of(exc: BaseException) -> str:
    """One line for a dialog or the status bar (never a traceback)."""
    if isinstance(exc, AcsegError):
        return str(exc)
    if is_out_of_memory(exc):
        return (
            "The job ran out of memory. Try a smaller preset, smaller crops or batch, "
            "or the CPU device."
        )
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def is_out_of_memory(exc: BaseException) -> bool:
    """MemoryError, torch's CUDA OOM, or a RuntimeError saying "out of memory"."""
    if isinstance(exc, MemoryError):
        return True
    if type(exc).__name__ == "OutOfMemoryError":
        return True
    return isinstance(exc, RuntimeError) and "out of memory" in str(exc).lower()


class _ThreadBody(QObject):
    """Lives on the job thread; drives the generator and reports raw outcomes."""

    progress = Signal(object)
    finished = Signal(str, object, object)  # outcome, result, exception | None

    def __init__(self, factory: JobFactory, token: CancelToken, name: str) -> None:
        super().__init__()
        self._factory = factory
        self._token = token
        self._name = name

    @Slot()
    def run(self) -> None:
        last_emit = 0.0
        pending: Progress | None = None
        outcome, result, error = "succeeded", None, None
        try:
            generator = self._factory(self._token)
            while True:
                try:
                    item = next(generator)
                except StopIteration as stop:
                    result = stop.value
                    break
                if isinstance(item, Progress):
                    now = time.monotonic()
                    if now - last_emit >= PROGRESS_INTERVAL_S or item.metrics.get("warning"):
                        self.progress.emit(item)
                        last_emit, pending = now, None
                    else:
                        pending = item
            if pending is not None:
                self.progress.emit(pending)
            outcome = "cancelled" if self._token.cancelled else "succeeded"
        except CancelledError:
            outcome = "cancelled"
        except BaseException as exc:  # every failure becomes a dialog, never a crash
            if not isinstance(exc, AcsegError):
                log.error("job %s failed:\n%s", self._name, traceback.format_exc())
            if self._token.cancelled and not isinstance(exc, AcsegError | MemoryError):
                outcome = "cancelled"
            else:
                outcome, error = "failed", exc
        self.finished.emit(outcome, result, error)
        # End the thread from inside: the GUI thread may be blocked in wait() (shutdown).
        QThread.currentThread().quit()


class JobWorker(QObject):
    """One generator job on a private thread. Create, connect, ``start()``.

    The worker itself lives on the GUI thread and re-emits what the thread body
    reports, so anything connected to it (lambdas included) runs on the GUI thread.
    """

    progress = Signal(object)  # Progress
    succeeded = Signal(object)  # the generator's return value
    cancelled = Signal(object)  # return value or None
    failed = Signal(str, object)  # title, the exception (message_of() for its line)
    ended = Signal()  # after any outcome

    def __init__(self, factory: JobFactory, name: str = "job") -> None:
        super().__init__()
        self.name = name
        self.token = CancelToken()
        self._thread = QThread()
        self._thread.setObjectName(f"acseg-{name}")
        self._body = _ThreadBody(factory, self.token, name)
        self._body.moveToThread(self._thread)
        self._thread.started.connect(self._body.run)
        self._body.progress.connect(self._on_progress)
        self._body.finished.connect(self._on_finished)
        self._started = False
        self._finished = False
        self.last_progress: Progress | None = None
        self.outcome: str | None = None  # "succeeded" | "cancelled" | "failed"
        self.result: Any = None
        self.error: BaseException | None = None

    # -- control -------------------------------------------------------------------
    def start(self) -> None:
        self._started = True
        self._thread.start()

    def cancel(self) -> None:
        """Ask the job to stop; it does so at its next step."""
        self.token.cancel()

    @property
    def running(self) -> bool:
        return self._started and not self._finished

    def wait(self, timeout_ms: int = 30000) -> bool:
        """Block until the thread has ended (used on close and in teardown)."""
        return self._thread.wait(timeout_ms) if self._started else True

    # -- relays (GUI thread) -----------------------------------------------------
    @Slot(object)
    def _on_progress(self, item: Progress) -> None:
        if self._finished:
            return
        self.last_progress = item
        self.progress.emit(item)

    @Slot(str, object, object)
    def _on_finished(self, outcome: str, result: Any, error: Any) -> None:
        self._thread.quit()
        self._thread.wait(5000)
        self._finished = True
        self.outcome, self.result, self.error = outcome, result, error
        if outcome == "succeeded":
            self.succeeded.emit(result)
        elif outcome == "cancelled":
            self.cancelled.emit(result)
        else:
            self.failed.emit(describe_failure(error)[0], error)
        self.ended.emit()


class JobRunner(QObject):
    """Keeps running workers alive, cancels them all on close."""

    busy_changed = Signal(bool)

    def __init__(self, parent: QObject | None = None) -> None:
        super().__init__(parent)
        self._workers: list[JobWorker] = []

    def start(self, factory: JobFactory, name: str = "job") -> JobWorker:
        """Create a worker, start it on the next event-loop turn, keep it alive."""
        worker = JobWorker(factory, name)
        self._workers.append(worker)
        worker.ended.connect(lambda: self._forget(worker))
        worker.start()
        self.busy_changed.emit(True)
        return worker

    def _forget(self, worker: JobWorker) -> None:
        if worker in self._workers:
            self._workers.remove(worker)
        if not self._workers:
            self.busy_changed.emit(False)

    @property
    def workers(self) -> list[JobWorker]:
        return list(self._workers)

    def running(self, name: str | None = None) -> list[JobWorker]:
        return [w for w in self._workers if w.running and (name is None or w.name == name)]

    def shutdown(self, timeout_ms: int = 30000) -> None:
        """Cancel every job and wait for the threads (window close, tests)."""
        for worker in self._workers:
            worker.cancel()
        for worker in list(self._workers):
            worker.wait(timeout_ms)
