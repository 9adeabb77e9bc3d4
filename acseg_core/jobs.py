"""Progress reports and cancel flags shared by every long job.

Long jobs are plain generators that yield :class:`Progress` and check a
:class:`CancelToken` between steps; the CLI draws a bar from them and the GUI's
worker thread forwards them as signals. Neither front-end is known here.
"""

from __future__ import annotations

import threading
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

    def cancel(self) -> None:
        self._event.set()

    @property
    def cancelled(self) -> bool:
        return self._event.is_set()

    def __bool__(self) -> bool:  # ``if cancel:`` reads naturally in loops
        return self.cancelled
