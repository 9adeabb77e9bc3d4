"""A collection's files as Dask tasks: on a Dask cluster (``--scheduler
tcp://host:8786``, or the scheduler file ``dask scheduler --scheduler-file`` wrote)
or on this machine (``local:N``: a ``LocalCluster`` of N worker processes, which is
what ``--nproc N`` starts). Dask is an optional dependency (``acseg[distributed]``),
imported inside functions only.

* **One task per file** (:func:`~.cluster_worker.predict_task`, the same
  :func:`~.files.guarded_predict` as in one process), submitted as the inputs stream
  in, at most two per worker thread in flight; results come back as they finish, and
  the client (:func:`~.collection.predict_collection`) writes each manifest record then.
* **The model once per worker process**: tasks take it from a cache keyed by the
  model file's path and SHA-256 (:func:`~.cluster_worker.worker_model`), so a worker
  that joins later or is restarted after a crash loads it on its first file. Workers present at the
  start load it before any file is submitted: a worker that cannot read the model
  (not on a shared file system) is one error line before anything is written, and
  :attr:`DaskEngine.startup_s` is the start-up (cluster + model loads) on its own.
* **Outputs** are written by the workers, atomically, into the output folder (a
  shared file system on a cluster, as for DDP training); paths travel absolute.
* **Worker loss**: the scheduler gives a dead worker's tasks to another worker (up to
  ``distributed.scheduler.allowed-failures`` deaths per task, 3 by default; then that
  file fails with one line and the rest go on). The new attempt removes the dead
  attempt's temp file and writes the output; the client records the one result.
* **Cancel**: a Dask ``Event`` named for the run. Tasks poll it (at most twice a
  second) between batches and drop their file (nothing written); queued ones return
  at once. The client waits a few seconds for them, then cancels what is left.
* **Devices**: ``--device auto`` on each worker; ``local:N`` workers take the GPUs
  round-robin and, on the CPU, ``cores // N`` torch threads each (as ``--nproc`` did).
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import queue
import socket
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from acseg_core.device import usable_cores
from acseg_core.errors import AcsegError, InputError
from acseg_core.inference.cluster_worker import ModelRef, predict_task, warm_task
from acseg_core.inference.files import FileJob, FileResult
from acseg_core.inference.predict import PredictOptions
from acseg_core.jobs import CancelToken

INSTALL_HINT = "Dask is not installed: pip install 'acseg[distributed]'"
CONNECT_TIMEOUT_S = 10.0  # how long a scheduler address may take to answer
IN_FLIGHT_PER_THREAD = 2  # queued files per worker thread: enough to never idle, bounded
MIN_IN_FLIGHT = 4  # submitted even before workers join an (adaptive) cluster
CANCEL_GRACE_S = 10.0  # how long a cancel waits for running tasks to drop their files
WINDOW_REFRESH_S = 5.0  # how often the number of worker threads is asked again
SCHEMES = ("tcp", "tls", "ws", "wss", "ucx")
LOCAL_PRELOAD = "acseg_core.inference.dask_setup"  # local:N workers ignore Ctrl+C


@dataclass(frozen=True)
class SchedulerSpec:
    """Where the tasks go: a running scheduler, a scheduler file, or N local workers."""

    text: str
    address: str | None = None
    scheduler_file: Path | None = None
    local_workers: int = 0

    @property
    def local(self) -> bool:
        return self.local_workers > 0


def parse_scheduler(text: str) -> SchedulerSpec:
    """``tcp://host:8786`` (``host:8786`` means tcp), ``local:N``, or ``*.json`` (a
    scheduler file); anything else is one line saying what is expected."""
    value = text.strip()
    expected = (
        f"--scheduler {text}: expected tcp://HOST:PORT (a Dask scheduler), local:N "
        "(N worker processes here) or a scheduler file (*.json)"
    )
    if value.startswith("local:"):
        count = value.removeprefix("local:")
        if not count.isdigit() or int(count) < 1:
            raise AcsegError(f"--scheduler {text}: local:N needs N >= 1 worker processes")
        return SchedulerSpec(text, local_workers=int(count))
    if value.endswith(".json"):
        return SchedulerSpec(text, scheduler_file=Path(value))
    if "://" not in value:
        value = f"tcp://{value}"
    try:
        parts = urlsplit(value)
        port = parts.port
    except ValueError as exc:
        raise AcsegError(expected) from exc
    if parts.scheme not in SCHEMES or not parts.hostname or port is None or parts.path:
        raise AcsegError(expected)
    return SchedulerSpec(text, address=value)


def distributed_module() -> Any:
    """``distributed``, or one line naming the install."""
    try:
        import distributed
    except ImportError as exc:
        raise AcsegError(INSTALL_HINT) from exc
    return distributed


class DaskEngine:
    """A Dask client (and, for ``local:N``, the ``LocalCluster`` it owns) that runs a
    collection's files. Construct it before anything is written: a bad address, a
    missing Dask or a worker that cannot load the model raise :class:`AcsegError`."""

    def __init__(
        self,
        spec: SchedulerSpec,
        model_path: Path,
        options: PredictOptions,
        cancel: CancelToken | None = None,
    ) -> None:
        dd = distributed_module()
        started = time.perf_counter()
        self.spec, self.options = spec, options
        self.cluster: Any = None
        self.client: Any = None
        self.cancel_name = f"acseg-cancel-{uuid.uuid4().hex}"
        self._environ: dict[str, str | None] = {}
        self.cancelling = False  # this run asked its tasks to stop
        digest = _sha256(model_path)  # an unreadable model fails before any cluster starts
        try:
            threads = None
            if spec.local:
                # the nanny (in this process) sets its workers' variables in our own
                # environment (OMP_NUM_THREADS=1, ...); close() puts ours back
                names = [*dd.config.get("distributed.nanny.pre-spawn-environ", {}),
                         "PYTHONHASHSEED"]  # fmt: skip
                self._environ = {name: os.environ.get(name) for name in names}
                self.cluster = dd.LocalCluster(
                    n_workers=spec.local_workers, threads_per_worker=1, processes=True,
                    dashboard_address=None, silence_logs=logging.ERROR,
                    preload=[LOCAL_PRELOAD],
                )  # fmt: skip
                self.client = dd.Client(self.cluster, set_as_default=False)
                self.client.wait_for_workers(spec.local_workers)
                threads = max(1, usable_cores() // spec.local_workers)
            else:
                self.client = _connect(dd, spec)
            self.model = ModelRef(str(Path(model_path).absolute()), digest, threads)
            self._warm_up(cancel)
        except BaseException:
            self.close()
            raise
        self.startup_s = time.perf_counter() - started

    @property
    def where(self) -> str:
        return self.spec.text if self.spec.local else f"the Dask scheduler at {self.spec.text}"

    def worker_threads(self) -> dict[str, int]:
        """Task threads per worker address, as the scheduler knows them now."""
        return dict(self.client.nthreads())

    def run(
        self, planned: Iterator[FileJob | FileResult], cancel: CancelToken | None
    ) -> Iterator[FileResult]:
        """Submit the planned jobs as tasks (a bounded window) and yield each result as
        it finishes; results needing no work pass straight through. On cancel, the
        files still in flight come back as ``cancelled``."""
        finished: queue.Queue[Any] = queue.Queue()
        pending: dict[Any, FileJob] = {}
        exhausted, window, checked = False, self._window(), time.monotonic()
        try:
            while True:
                while not exhausted and not cancel and len(pending) < window:
                    item = next(planned, None)
                    if item is None:
                        exhausted = True
                    elif isinstance(item, FileResult):
                        yield item
                    else:
                        future = self._submit(item)
                        pending[future] = item
                        future.add_done_callback(finished.put)
                if cancel:
                    yield from self._drop(pending, finished)
                    return
                if not pending:
                    return
                with contextlib.suppress(queue.Empty):
                    future = finished.get(timeout=0.25)
                    while True:
                        if future in pending:
                            yield self._result(future, pending.pop(future))
                        future = finished.get_nowait()
                self._check_connected()
                if time.monotonic() - checked > WINDOW_REFRESH_S:
                    window, checked = self._window(), time.monotonic()
        finally:
            if pending:  # an exception or an abandoned generator: stop the tasks too
                with contextlib.suppress(Exception):
                    self._set_cancel()
                    self.client.cancel(list(pending))

    def close(self) -> None:
        """Disconnect; a ``local:N`` cluster's workers are stopped."""
        client, cluster = self.client, self.cluster
        self.client = self.cluster = None
        with contextlib.suppress(Exception):
            if client is not None:
                client.close()
        with contextlib.suppress(Exception):
            if cluster is not None:
                cluster.close()
        for name, value in self._environ.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value

    # ------------------------------------------------------------------ internals

    def _warm_up(self, cancel: CancelToken | None) -> None:
        """Each worker there now loads the model (one task each); the first error is
        fatal: those workers could not predict a single file."""
        workers = list(self.worker_threads())
        futures = [
            self.client.submit(
                warm_task, self.model, self.options.device, key=f"acseg-load-{uuid.uuid4().hex}",
                workers=[address], allow_other_workers=True,
            )
            for address in workers
        ]  # fmt: skip
        try:
            while futures and not cancel:
                done = [f for f in futures if f.done()]
                for future in done:
                    futures.remove(future)
                    error = _warm_error(future)
                    if error:
                        raise AcsegError(f"a Dask worker of {self.where} cannot load the "
                                         f"model: {error}")  # fmt: skip
                if futures:
                    time.sleep(0.05)
                self._check_connected()
        finally:
            if futures:
                self.client.cancel(futures)

    def _window(self) -> int:
        threads = sum(self.worker_threads().values())
        return max(MIN_IN_FLIGHT, IN_FLIGHT_PER_THREAD * threads)

    def _submit(self, job: FileJob) -> Any:
        travelling = FileJob(job.image.absolute(), job.output.absolute())
        key = f"acseg-predict-{uuid.uuid4().hex}"
        return self.client.submit(
            predict_task, travelling, self.model, self.options, self.cancel_name, key=key
        )

    def _result(self, future: Any, job: FileJob) -> FileResult:
        """The task's result with the paths as the caller gave them."""
        dd = distributed_module()
        try:
            result = future.result()
        except dd.KilledWorker as exc:
            allowed = getattr(exc, "allowed_failures", None)
            if allowed is None:
                allowed = dd.config.get("distributed.scheduler.allowed-failures", 3)
            return FileResult(job.image, None, "error", 0.0,
                              f"{job.image}: the Dask workers predicting it died "
                              f"{int(allowed) + 1} times (out of memory?)")  # fmt: skip
        except dd.CancelledError as exc:
            if not self.cancelling:  # not ours: the scheduler went, or someone cancelled it
                self._check_connected()
                reason = getattr(exc, "reason", "") or "cancelled on the cluster"
                raise AcsegError(f"{job.image}: its task was lost on {self.where} ({reason}); "
                                 "rerun with --resume to continue") from exc  # fmt: skip
            return FileResult(job.image, None, "cancelled", 0.0, str(exc))
        except AcsegError:
            raise  # a full disk on the shared output: every later file would fail alike
        except Exception as exc:  # the task could not run there (a worker without acseg)
            return FileResult(job.image, None, "error", 0.0,
                              f"{job.image}: failed on a Dask worker ({exc!r})")  # fmt: skip
        return replace(result, image=job.image, output=job.output if result.output else None)

    def _drop(
        self, pending: dict[Any, FileJob], finished: queue.Queue[Any]
    ) -> Iterator[FileResult]:
        """Cancel: tasks drop their files; those that finish meanwhile still count."""
        self._set_cancel()
        deadline = time.monotonic() + CANCEL_GRACE_S
        while pending and time.monotonic() < deadline:
            try:
                future = finished.get(timeout=0.25)
            except queue.Empty:
                continue
            if future in pending:
                yield self._result(future, pending.pop(future))
        if pending:
            self.client.cancel(list(pending))
            for job in pending.values():
                yield FileResult(job.image, None, "cancelled", 0.0)
            pending.clear()

    def _set_cancel(self) -> None:
        self.cancelling = True
        distributed_module().Event(self.cancel_name, client=self.client).set()

    def _check_connected(self) -> None:
        if self.client is None or self.client.status in ("closing", "closed"):
            raise AcsegError(f"lost {self.where}; rerun with --resume to continue")


def _warm_error(future: Any) -> str:
    """What kept a worker from loading the model ('' if nothing did: a worker lost
    during the warm-up is no error; its files go elsewhere)."""
    dd = distributed_module()
    try:
        return str(future.result())
    except (dd.KilledWorker, dd.CancelledError):
        return ""
    except Exception as exc:  # e.g. a worker without acseg installed
        return f"{exc!r}"


def _connect(dd: Any, spec: SchedulerSpec) -> Any:
    """A client of a running scheduler; an unknown host fails at once, an address that
    does not answer after :data:`CONNECT_TIMEOUT_S`."""
    target: Any
    if spec.scheduler_file is not None:
        if not spec.scheduler_file.is_file():
            raise InputError(spec.scheduler_file, "scheduler file not found")
        target = {"scheduler_file": str(spec.scheduler_file)}
    else:
        parts = urlsplit(spec.address or "")
        try:
            socket.getaddrinfo(parts.hostname, parts.port)
        except (OSError, UnicodeError) as exc:
            raise AcsegError(f"cannot reach the Dask scheduler at {spec.text} "
                             f"(unknown host {parts.hostname})") from exc  # fmt: skip
        target = {"address": spec.address}
    try:
        return dd.Client(**target, timeout=CONNECT_TIMEOUT_S, set_as_default=False)
    except (OSError, ValueError, TimeoutError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise AcsegError(f"cannot reach the Dask scheduler at {spec.text} ({reason})") from exc


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as handle:
            for block in iter(lambda: handle.read(1 << 20), b""):
                digest.update(block)
    except OSError as exc:
        raise InputError(path, f"cannot read the model ({exc.strerror or exc})") from exc
    return digest.hexdigest()


__all__ = [
    "INSTALL_HINT",
    "DaskEngine",
    "SchedulerSpec",
    "distributed_module",
    "parse_scheduler",
]
