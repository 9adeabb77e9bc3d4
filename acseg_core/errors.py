"""User-facing errors: one line that names the file and the problem.

Front-ends (CLI, GUI) print ``str(error)`` and never a traceback for these.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path


class AcsegError(Exception):
    """An expected failure the user can act on (bad input, bad config, ...)."""


class InputError(AcsegError):
    """A file that cannot be used: names the file and says why."""

    def __init__(self, path: str | Path, reason: str) -> None:
        self.path = Path(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")

    def __reduce__(self) -> tuple:  # picklable: raised in prediction worker processes
        return (type(self), (self.path, self.reason))


class BandMismatch(InputError):
    """An image whose band count is not the model's: one problem a folder of such images
    shares, so front-ends can say it once (fields, not a message to parse)."""

    def __init__(self, path: str | Path, bands: int, expected: int) -> None:
        self.bands, self.expected = int(bands), int(expected)
        super().__init__(path, f"has {bands} band(s) but the model was trained on {expected}")


class CancelledError(AcsegError):
    """A long job stopped because its cancel flag was set."""


def os_reason(exc: OSError) -> str:
    """A short, human reason for an OS error ("no space left on device")."""
    return (exc.strerror or str(exc) or type(exc).__name__).lower()


def os_error_in(exc: BaseException) -> OSError | None:
    """The first OS error with an errno in ``exc`` and what caused it (``raise … from``),
    so a front-end can tell a full disk inside a one-line :class:`InputError`."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno is not None:
            return current
        current = current.__cause__ or current.__context__
    return None


def missing_reason(path: Path, what: str = "file") -> str:
    """Why ``path`` cannot be found: a symlink loop or a dangling link is not "not found"."""
    try:
        os.stat(path)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            return "too many levels of symbolic links (a symlink loop)"
        if os.path.islink(path):
            return f"broken symbolic link (its target {os.readlink(path)} is missing)"
        if exc.errno not in (errno.ENOENT, errno.ENOTDIR):
            return os_reason(exc)
    return f"{what} not found"
