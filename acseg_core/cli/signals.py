"""Signal handlers for long CLI jobs: the first Ctrl+C cancels cleanly, a second aborts.

Handlers can only be installed from the main thread; elsewhere (a GUI worker,
a test runner's thread) the block runs with the signals left alone.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Callable, Iterator
from typing import Any

from acseg_core.jobs import CancelToken

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
        token.cancel()
        if message:
            sys.stderr.write(f"\n{message}\n")

    return handling(signal.SIGINT, on_interrupt)
