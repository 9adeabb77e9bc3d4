"""Where prediction time goes: seconds per stage, summed over the threads doing it.

``predict(..., stages=StageTimes())`` fills one in; the speed benchmark prints it.
Stages overlap in time (reading runs a batch ahead, forward passes run one per core),
so the seconds are thread-seconds: their shares say what to make faster.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections.abc import Iterator

STAGES = ("read", "network", "read-out", "filter", "write")


class StageTimes:
    """Thread-safe accumulator of seconds per stage (:data:`STAGES`)."""

    def __init__(self, synchronise: object = None) -> None:
        self._lock = threading.Lock()
        self._seconds = dict.fromkeys(STAGES, 0.0)
        self._synchronise = synchronise  # e.g. torch.cuda.synchronize: time finished work

    @contextlib.contextmanager
    def measure(self, stage: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            if callable(self._synchronise):
                self._synchronise()
            elapsed = time.perf_counter() - started
            with self._lock:
                self._seconds[stage] += elapsed

    @property
    def seconds(self) -> dict[str, float]:
        with self._lock:
            return dict(self._seconds)

    def shares(self) -> dict[str, float]:
        seconds = self.seconds
        total = sum(seconds.values()) or 1.0
        return {stage: value / total for stage, value in seconds.items()}


@contextlib.contextmanager
def measured(stages: StageTimes | None, stage: str) -> Iterator[None]:
    """``stages.measure(stage)``, or nothing when no one is timing."""
    if stages is None:
        yield
    else:
        with stages.measure(stage):
            yield


@contextlib.contextmanager
def exit_measured(
    manager: contextlib.AbstractContextManager, stages: StageTimes | None, stage: str
) -> Iterator[object]:
    """Enter ``manager``; a clean exit (a writer flushing and compressing its last
    blocks) counts as ``stage``. A failing exit gets the exception, untimed."""
    value = manager.__enter__()
    try:
        yield value
    except BaseException as exc:
        if not manager.__exit__(type(exc), exc, exc.__traceback__):
            raise
    else:
        with measured(stages, stage):
            manager.__exit__(None, None, None)


__all__ = ["STAGES", "StageTimes", "exit_measured", "measured"]
