"""Shared by the hostile-input battery (``test_hostile*.py``): running the CLI in a child
(optionally under a file-size limit), the one-line check, a real full disk, snapshots
of folders that must stay byte-identical."""

from __future__ import annotations

import contextlib
import os
import resource
import signal
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def run_cli(
    *args: str, limit_bytes: int | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    """``acseg-core ARGS`` in a child; ``limit_bytes`` caps every file it writes (a
    full disk: writes past the cap fail with EFBIG instead of killing the process)."""

    def cap() -> None:
        if limit_bytes is not None:
            signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
            resource.setrlimit(resource.RLIMIT_FSIZE, (limit_bytes, limit_bytes))

    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.run(
        [sys.executable, "-m", "acseg_core", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=REPO,
        timeout=timeout,
        preexec_fn=cap,
    )


def one_line(stderr: str) -> str:
    """The error output must be a single line, never a traceback."""
    lines = [line for line in stderr.splitlines() if line.strip()]
    assert "Traceback" not in stderr, stderr
    errors = [line for line in lines if ": error: " in line]
    assert len(errors) == 1, stderr
    return errors[0]


def snapshot(*folders: Path) -> dict[Path, bytes]:
    """Every file under ``folders`` with its bytes (hidden ones included)."""
    return {
        path: path.read_bytes()
        for folder in folders
        for path in sorted(folder.rglob("*"))
        if path.is_file() and not path.is_symlink()
    }


@dataclass(frozen=True)
class SmallDisk:
    """A folder on a disk that fills up: a real one (``limit`` None, ENOSPC) or, where
    the test cannot mount one, a file-size limit for the child (EFBIG)."""

    folder: Path
    limit: int | None
    reason: str  # what the one line says


@contextlib.contextmanager
def small_disk(where: Path, size_kb: int) -> Iterator[SmallDisk]:
    """A tmpfs of ``size_kb`` at ``where`` when this process may mount one (root in a
    container that allows it), else ``RLIMIT_FSIZE`` of the same size for the child."""
    where.mkdir(parents=True, exist_ok=True)
    mounted = False
    if sys.platform.startswith("linux") and os.geteuid() == 0:
        done = subprocess.run(
            ["mount", "-t", "tmpfs", "-o", f"size={size_kb}k", "tmpfs", str(where)],
            capture_output=True,
        )
        mounted = done.returncode == 0
    try:
        if mounted:
            yield SmallDisk(where, None, "no space left on device")
        else:
            yield SmallDisk(where, size_kb * 1024, "file too large")
    finally:
        if mounted:
            subprocess.run(["umount", "-l", str(where)], capture_output=True)


__all__ = ["REPO", "SmallDisk", "one_line", "run_cli", "small_disk", "snapshot"]
