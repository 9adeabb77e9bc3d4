"""One file of a collection: predict it to its output, report how it went.

Expected failures (an unreadable image, another band count, a full disk) are a
:class:`FileResult` with status ``error``, never an exception, so one bad file does not
stop a collection; an unexpected exception fails that file the same way (with its
type), whichever engine runs it (this process, a worker process, a Dask worker).
"""

from __future__ import annotations

import errno
import time
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acseg_core.errors import AcsegError, CancelledError, os_error_in
from acseg_core.gis.areas import ImageAreas
from acseg_core.inference.naming import remove_stale_temps
from acseg_core.inference.outputs import predict_outputs, primary_output
from acseg_core.inference.predict import PredictOptions, predict
from acseg_core.jobs import Progress, run_to_end
from acseg_core.model.checkpoint import LoadedModel

STATUSES = ("ok", "skipped", "error", "cancelled")
DISK_FULL_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS})


@dataclass(frozen=True)
class FileJob:
    """An input to predict and the output it goes to."""

    image: Path
    output: Path


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
    areas: ImageAreas | None = None  # for the run's areas.csv (not in the manifest)
    note: str = ""  # a format this input could not have (no GeoPackage without a CRS)

    def record(self) -> dict[str, Any]:
        """The manifest record (paths as strings)."""
        return {
            "input": str(self.image),
            "output": str(self.output) if self.output is not None else "",
            "status": self.status,
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }


def predict_file(
    loaded: LoadedModel, job: FileJob, options: PredictOptions, cancel: Any = None
) -> Generator[Progress, None, FileResult]:
    """Predict ``job.image`` to ``job.output`` (stale temps of a killed run removed
    first); yields the tiles' progress, returns the result. Raises only for a full
    disk: every later file would fail the same way, so the run stops."""
    started = time.perf_counter()
    areas, note, output = None, "", job.output
    try:
        remove_stale_temps(job.output)
        if options.outputs is None:
            yield from predict(loaded, job.image, out=job.output, options=options, cancel=cancel)
        else:
            output = primary_output(job.output, options.outputs)
            areas, note = yield from predict_outputs(
                loaded, job.image, job.output, options, cancel
            )
    except CancelledError as exc:
        return FileResult(job.image, None, "cancelled", time.perf_counter() - started, str(exc))
    except AcsegError as exc:
        cause = os_error_in(exc)
        if cause is not None and cause.errno in DISK_FULL_ERRNOS:
            raise
        return FileResult(job.image, None, "error", time.perf_counter() - started, str(exc))
    except Exception as exc:  # one bad file must not stop a collection
        seconds = time.perf_counter() - started
        return FileResult(job.image, None, "error", seconds, f"{job.image}: {exc!r}")
    seconds = time.perf_counter() - started
    return FileResult(job.image, output, "ok", seconds, areas=areas, note=note)


def guarded_predict(
    loaded: LoadedModel, job: FileJob, options: PredictOptions, cancel: Any = None
) -> FileResult:
    """:func:`predict_file` run to its end (a worker's unit of work)."""
    return run_to_end(predict_file(loaded, job, options, cancel))


__all__ = ["STATUSES", "FileJob", "FileResult", "guarded_predict", "predict_file"]
