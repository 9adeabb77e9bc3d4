"""Device auto-selection: CUDA, then Apple MPS, then CPU."""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

import torch

from acseg_core.errors import AcsegError


def available_devices() -> list[str]:
    """Devices usable on this machine, best first (for GUI pickers)."""
    found = []
    if torch.cuda.is_available():
        found.append("cuda")
    mps = getattr(torch.backends, "mps", None)
    if mps is not None and mps.is_available():
        found.append("mps")
    found.append("cpu")
    return found


def select_device(name: str = "auto") -> torch.device:
    """Resolve ``auto|cpu|cuda|cuda:N|mps`` to a torch device, refusing absent ones."""
    name = (name or "auto").lower()
    if name == "auto":
        return torch.device(available_devices()[0])
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise AcsegError("device 'cuda' requested but no CUDA GPU is available (try --device cpu)")
    if name == "mps" and "mps" not in available_devices():
        raise AcsegError("device 'mps' requested but Apple MPS is not available")
    try:
        return torch.device(name)
    except RuntimeError as exc:
        raise AcsegError(f"unknown device {name!r} (use auto, cpu, cuda or mps)") from exc


def use_amp(device: torch.device) -> bool:
    """Mixed precision only where it pays and is safe: CUDA."""
    return device.type == "cuda"


def usable_cores() -> int:
    """CPU cores this process may run on (affinity-aware)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # macOS, Windows
        return os.cpu_count() or 1


@contextlib.contextmanager
def intra_op_threads(count: int | None) -> Iterator[None]:
    """Temporarily set torch's intra-op thread count (process-wide); restore afterwards."""
    if count is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)
