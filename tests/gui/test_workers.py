"""The generic worker: results, progress, cancel and every kind of failure arrive as signals."""

from __future__ import annotations

from collections.abc import Generator

import pytest

from acseg_core.errors import CancelledError, InputError
from acseg_core.jobs import CancelToken, Progress
from app.workers import JobRunner, JobWorker, message_of


def counting(n: int, fail: BaseException | None = None):
    def job(cancel: CancelToken) -> Generator[Progress, None, int]:
        for i in range(n):
            if cancel.cancelled:
                raise CancelledError("stopped")
            yield Progress(i + 1, n, f"step {i + 1}")
        if fail is not None:
            raise fail
        return n * 10

    return job


def test_result_and_progress_reach_the_gui_thread(qtbot) -> None:
    worker = JobWorker(counting(5))
    seen: list[Progress] = []
    worker.progress.connect(seen.append)
    with qtbot.waitSignal(worker.succeeded, timeout=5000) as blocker:
        worker.start()
    assert blocker.args == [50]
    assert worker.outcome == "succeeded" and worker.result == 50
    assert seen and seen[-1].done == 5  # the last report always arrives
    worker.wait()


@pytest.mark.parametrize(
    ("error", "title", "needle"),
    [
        (InputError("/x/a.tif", "not a readable image"), "Error", "/x/a.tif: not a readable image"),
        (MemoryError(), "Out of memory", "smaller preset"),
        (RuntimeError("CUDA out of memory. Tried to allocate"), "Out of memory", "ran out"),
        (ZeroDivisionError("division by zero"), "Unexpected error", "ZeroDivisionError"),
    ],
)
def test_failures_become_one_line_messages(qtbot, error, title, needle) -> None:
    worker = JobWorker(counting(2, fail=error))
    with qtbot.waitSignal(worker.failed, timeout=5000) as blocker:
        worker.start()
    got_title, exc = blocker.args
    message = message_of(exc)
    assert got_title == title and needle in message and "\n" not in message
    assert exc is error  # the exception itself crosses the thread, not a string
    worker.wait()


def test_cancel_stops_the_job_and_reports_cancelled(qtbot) -> None:
    started = []

    def endless(cancel: CancelToken) -> Generator[Progress, None, None]:
        i = 0
        while not cancel.cancelled:
            i += 1
            started.append(i)
            yield Progress(i)
        raise CancelledError("stopped")

    worker = JobWorker(endless)
    worker.start()
    qtbot.waitUntil(lambda: len(started) > 3, timeout=5000)
    with qtbot.waitSignal(worker.cancelled, timeout=5000):
        worker.cancel()
    assert worker.outcome == "cancelled" and not worker.running
    worker.wait()


def test_runner_forgets_finished_jobs_and_reports_busy(qtbot) -> None:
    runner = JobRunner()
    states: list[bool] = []
    runner.busy_changed.connect(states.append)
    worker = runner.start(counting(3), "count")
    with qtbot.waitSignal(worker.ended, timeout=5000):
        pass
    qtbot.waitUntil(lambda: not runner.workers, timeout=5000)
    assert states == [True, False]
