"""Time-per-epoch estimate for the wizard: a few real training steps, timed (Qt-free).

Runs the preset's network forward and backward on random crops on the chosen
device — the same work one training step does — at a probe crop no larger than
``PROBE_CROP`` px, then scales by pixel count to the requested crop. An estimate,
not a promise: data loading and the first-step warm-up are not counted.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from typing import Any

from acseg_core.model.config import ModelConfig
from acseg_core.jobs import CancelToken, Progress

PROBE_CROP = 96
PROBE_STEPS = 2


def estimate_epoch_seconds(
    model_config: ModelConfig,
    *,
    crop: int,
    batch: int,
    steps_per_epoch: int,
    device: str = "auto",
    displacement: int = 10,
    cancel: CancelToken | None = None,
) -> Generator[Progress, None, tuple[float, str]]:
    """Generator job; returns (seconds per epoch, device name)."""
    import torch

    from acseg_core.device import select_device
    from acseg_core.model.loss import mi_loss
    from acseg_core.model.nn import build_model

    dev = select_device(device)
    probe = min(crop, PROBE_CROP)
    model = build_model(model_config).to(dev).train()
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-5)
    x = torch.randn(batch, model_config.in_channels, probe, probe, device=dev)
    shift = min(displacement, max(1, probe // 8))

    def step() -> None:
        y1 = model(x, ordering=0)
        y2 = model(x, ordering=3)
        loss = mi_loss(y1, y2, displacement=shift)
        optimiser.zero_grad(set_to_none=True)
        loss.backward()
        optimiser.step()
        if dev.type == "cuda":
            torch.cuda.synchronize()

    step()  # warm-up (allocations, kernel selection)
    yield Progress(1, PROBE_STEPS + 1, "measuring")
    start = time.perf_counter()
    for i in range(PROBE_STEPS):
        if cancel is not None and cancel.cancelled:
            break
        step()
        yield Progress(i + 2, PROBE_STEPS + 1, "measuring")
    per_step = (time.perf_counter() - start) / PROBE_STEPS
    scale = (crop / probe) ** 2
    return per_step * scale * steps_per_epoch, str(dev)


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def estimate_job(model_config: ModelConfig, **kwargs: Any) -> Any:
    def job(cancel: CancelToken) -> Generator[Progress, None, tuple[float, str]]:
        return (yield from estimate_epoch_seconds(model_config, cancel=cancel, **kwargs))

    return job
