"""Atomic writes: a temp file in the target folder, then ``os.replace``.

A crash or a failed write never leaves a half-written file under the final name; a
killed process leaves its temp, which :func:`remove_stale_temps` clears on the next run.
"""

from __future__ import annotations

import contextlib
import glob
import os
import re
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(target: str | Path, suffix: str | None = None) -> Iterator[Path]:
    """Yield a temp path beside ``target``; on success it replaces ``target``.

    ``suffix`` defaults to the target's (GDAL and Pillow pick formats by it).
    """
    target = Path(target)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(
        prefix=f".{target.name}.",
        suffix=suffix if suffix is not None else target.suffix,
        dir=target.parent,
    )
    os.close(fd)
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        # mkstemp makes 0600 files; give the result the mode a plain open() would
        os.chmod(tmp_path, 0o666 & ~_UMASK)
        os.replace(tmp_path, target)
    except BaseException:
        with contextlib.suppress(OSError):
            tmp_path.unlink()
        raise


def remove_stale_temps(target: str | Path) -> list[Path]:
    """Delete the temps that killed :func:`atomic_path` writes of ``target`` left beside
    it (``.<name>.<8 random characters><suffix>``); returns them. For the next run of
    the command that owns ``target`` (two writers of one file at once are not supported).
    """
    target = Path(target)
    pattern = re.compile(
        re.escape(f".{target.name}.") + r"[A-Za-z0-9_]{8}" + re.escape(target.suffix)
    )
    removed = []
    try:
        candidates = list(target.parent.glob(f".{glob.escape(target.name)}.*"))
    except OSError:
        return removed
    for stale in candidates:
        if pattern.fullmatch(stale.name) and stale.is_file() and not stale.is_symlink():
            with contextlib.suppress(OSError):
                stale.unlink()
                removed.append(stale)
    return removed


def _read_umask() -> int:
    """The process umask (read once at import: setting it is not thread-safe)."""
    current = os.umask(0)
    os.umask(current)
    return current


_UMASK = _read_umask()


def write_bytes_atomic(target: str | Path, data: bytes) -> None:
    with atomic_path(target) as tmp:
        tmp.write_bytes(data)


def write_text_atomic(target: str | Path, text: str) -> None:
    write_bytes_atomic(target, text.encode("utf-8"))


@contextlib.contextmanager
def scratch_path(folder: Path, prefix: str, suffix: str) -> Iterator[Path]:
    """A hidden temporary file in ``folder`` (same disk as the outputs), removed
    whatever happens; a killed job's leftovers are found by their ``prefix``."""
    fd, name = tempfile.mkstemp(prefix=prefix, suffix=suffix, dir=folder)
    os.close(fd)
    try:
        yield Path(name)
    finally:
        with contextlib.suppress(OSError):
            Path(name).unlink()
