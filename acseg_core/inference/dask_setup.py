"""Preloaded into the worker processes of ``local:N`` (``--nproc N``): they ignore
Ctrl+C, which a terminal sends to the whole process group. The client alone decides
what an interrupt means (tasks drop their files, the rest is cancelled) and stops the
workers when it closes the cluster, as the process pool of earlier versions did."""

from __future__ import annotations

import signal
from typing import Any


def dask_setup(worker: Any) -> None:
    """Dask's preload hook (runs in the worker process's main thread)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
