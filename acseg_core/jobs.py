"""Long jobs: progress reports, cancel flags, and OS signals that cancel them.

Long jobs are plain generators that yield :class:`Progress` and check a
:class:`CancelToken` between steps; the CLI draws a bar from them and the GUI's
worker thread forwards them as signals. Neither front-end is known here. Signal
handlers (Ctrl+C, SIGTERM) can only be installed from the main thread; elsewhere (a
GUI worker, a test runner's thread) the block runs with the signals left alone.
"""

from __future__ import annotations

import contextlib
import signal
import sys
import threading
from collections.abc import Callable, Generator, Iterator
from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class Progress:
    """One step of a long job. ``total`` is None when unknown."""

    done: int
    total: int | None = None
    message: str = ""
    eta_s: float | None = None
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def fraction(self) -> float | None:
        if not self.total:
            return None
        return min(1.0, self.done / self.total)


class CancelToken:
    """Thread-safe cancel flag: set from the UI thread, polled by the job."""

    def __init__(self) -> None:
        self._event = threading.Event()
        self.signal: int | None = None  # the OS signal that cancelled, if one did

    def cancel(self, signum: int | None = None) -> None:
        if signum is not None and self.signal is None:
            self.signal = signum
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def __bool__(self) -> bool:  # ``if cancel:`` reads naturally in loops
        return self.cancelled


def format_eta(seconds: float | None) -> str:
    """``m:ss`` or ``h:mm:ss`` for a remaining time; empty when unknown."""
    if seconds is None:
        return ""
    minutes, secs = divmod(max(0, round(seconds)), 60)
    hours, minutes = divmod(minutes, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"


def run_to_end(
    job: Iterator[Progress], on_progress: Callable[[Progress], Any] | None = None
) -> Any:
    """Drain a job (calling ``on_progress`` with each report) and return its return value."""
    while True:
        try:
            item = next(job)
        except StopIteration as stop:
            return stop.value
        if on_progress is not None:
            on_progress(item)


def relabel(
    job: Generator[Progress, None, Any], message: Callable[[Progress], str]
) -> Generator[Progress, None, Any]:
    """The same job with each report's message replaced (``yield from`` keeps its result)."""
    while True:
        try:
            item = next(job)
        except StopIteration as stop:
            return stop.value
        yield Progress(item.done, item.total, message(item), item.eta_s, item.metrics)


Handler = Callable[[int, Any], None]


@contextlib.contextmanager
def handling(signum: int, handler: Handler) -> Iterator[None]:
    """Install ``handler`` for ``signum`` while the block runs, then restore the old one."""
    try:
        previous = signal.signal(signum, handler)
    except ValueError:  # not the main thread
        yield
        return
    try:
        yield
    finally:
        signal.signal(signum, previous)


def ctrl_c_cancels(token: CancelToken, message: str | None) -> contextlib.AbstractContextManager:
    """First Ctrl+C sets ``token`` (the job stops cleanly and saves); a second one aborts.

    ``message`` (None = silent) is printed on the first press to say what happens now.
    """

    def on_interrupt(signum: int, frame: Any) -> None:
        if token.cancelled:
            raise KeyboardInterrupt
        token.cancel(signum)
        if message:
            sys.stderr.write(f"\n{message}\n")

    return handling(signal.SIGINT, on_interrupt)


def sigterm_cancels(token: CancelToken) -> contextlib.AbstractContextManager:
    """SIGTERM (``kill``, a scheduler, torchrun's agent stopping its workers) cancels
    like Ctrl+C: the job stops at its next step and saves what it keeps."""

    def on_term(signum: int, frame: Any) -> None:
        token.cancel(signum)

    return handling(signal.SIGTERM, on_term)


def interrupted_exit_code(token: CancelToken) -> int:
    """The exit code of a command stopped by a signal: the shell's ``128 + signal``
    (130 after Ctrl+C, 143 after SIGTERM), whatever it saved on the way out, so a
    script never takes an interrupted run for a finished one."""
    return 128 + (token.signal if token.signal is not None else signal.SIGINT)
