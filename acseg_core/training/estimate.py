"""Time-per-epoch estimate for a training run: a few real training steps, timed.

It builds the network the run will train (the run's own ``TrainConfig``: preset,
overclustering head, sub-heads, band count) and times the loop's own step
(:func:`acseg_core.training.step.step_loss` + :func:`apply_update`) on random crops on
the run's device, at the run's crop up to ``MAX_PROBE_CROP`` px (scaled by pixel count
beyond). An estimate, not a promise: data loading and warm-up are not counted.
"""

from __future__ import annotations

import time
from collections.abc import Generator
from dataclasses import replace

import torch

from acseg_core.device import select_device
from acseg_core.jobs import CancelToken, Progress
from acseg_core.model.nn import build_model
from acseg_core.training.config import TrainConfig
from acseg_core.training.step import amp_dtype, apply_update, make_optimiser, step_loss

MAX_PROBE_CROP = 256
PROBE_STEPS = 2


def estimate_epoch_seconds(
    cfg: TrainConfig, bands: int, steps_per_epoch: int, cancel: CancelToken | None = None
) -> Generator[Progress, None, tuple[float, str]]:
    """Generator job; returns (seconds per epoch, device name)."""
    device = select_device(cfg.device)
    probe = min(cfg.crop, MAX_PROBE_CROP)
    model = build_model(replace(cfg.model, in_channels=bands)).to(device).train()
    optimiser = make_optimiser(model, cfg.lr)
    generator = torch.Generator().manual_seed(0)
    x = torch.randn(cfg.batch, bands, probe, probe, generator=generator).to(device)
    valid = torch.ones(cfg.batch, probe, probe, dtype=torch.bool, device=device)
    bank = None
    if model.config.encoder == "bank":  # random bank features of the bank's width
        channels = model.stem.project.in_channels
        cells = -(-probe // model.config.stride)
        bank = torch.randn(cfg.batch, channels, cells, cells, generator=generator).to(device)
    dtype = amp_dtype(device)

    def step(index: int) -> None:
        optimiser.zero_grad(set_to_none=True)
        loss, _ = step_loss(
            model, x, valid, cfg.seed, index, cfg.displacement, cfg.model.heads, dtype,
            entropy_weight=cfg.entropy_weight, augment=cfg.view_augment, bank=bank,
        )  # fmt: skip
        apply_update(loss, model, optimiser)
        if device.type == "cuda":
            torch.cuda.synchronize()

    step(0)  # warm-up (allocations, kernel selection)
    yield Progress(1, PROBE_STEPS + 1, "measuring")
    start = time.perf_counter()
    done = 0
    for i in range(PROBE_STEPS):
        if cancel is not None and cancel.cancelled:
            break
        step(i + 1)
        done += 1
        yield Progress(i + 2, PROBE_STEPS + 1, "measuring")
    per_step = (time.perf_counter() - start) / max(done, 1)
    scale = (cfg.crop / probe) ** 2
    return per_step * scale * steps_per_epoch, str(device)


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


__all__ = ["estimate_epoch_seconds", "format_duration"]
