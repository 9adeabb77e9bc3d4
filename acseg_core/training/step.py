"""One training step, shared by the loop and the time estimate.

A step is one batch of random crops, two *different* raster orderings of the same
crops (a pure function of ``(seed, step)``, so a resumed run draws the same ones),
both views in one batched pass, the IIC loss between them (plus the overclustering
head's), and one Adam update, skipped when the loss or a gradient is not finite.
"""

from __future__ import annotations

import contextlib
from typing import Any

import numpy as np
import torch

from acseg_core.device import use_amp
from acseg_core.model import loss as losses
from acseg_core.model.nn import draw_orderings
from acseg_core.training.augment import ViewAugment, flip_where, second_view

AUGMENT_STREAM = 0xA06  # the view augmentations' random stream (orderings: the default)


def step_generator(seed: int, step: int, stream: int = 0x0AD) -> torch.Generator:
    """A generator for step ``step`` alone: orderings (and view augmentations, their own
    ``stream``) need no saved RNG state."""
    state = np.random.SeedSequence([seed, step, stream]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


def amp_dtype(device: torch.device) -> torch.dtype | None:
    """bfloat16 where the GPU has it (no loss scaling needed), else float16; None off CUDA."""
    if not use_amp(device):
        return None
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def step_loss(
    model: torch.nn.Module,
    x: torch.Tensor,
    valid: torch.Tensor,
    seed: int,
    step: int,
    displacement: int,
    heads: int,
    dtype: torch.dtype | None,
    entropy_weight: float = 1.0,
    augment: ViewAugment | None = None,
    bank: torch.Tensor | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, per-sub-head losses) of one step: both views share the stem and one
    batched g_ar pass; the loss is computed in float32 outside autocast.

    ``augment`` (a :class:`~acseg_core.training.augment.ViewAugment`): view 2 sees a
    jittered / flipped copy of the crops; its flip is undone on its output, so the
    loss compares the same pixels. ``entropy_weight``: IIC's λ (1 = exact −MI).
    ``bank``: the crops' feature bank on the stem grid (a model on the bank; view 2's
    is flipped with its pixels).
    """
    first, second = draw_orderings(step_generator(seed, step))
    x2, flips = None, None
    if augment is not None and augment.active:
        x2, flips = second_view(x, step_generator(seed, step, AUGMENT_STREAM), augment)
    autocast = contextlib.nullcontext()
    if dtype is not None:
        autocast = torch.autocast(x.device.type, dtype=dtype)
    extra: dict[str, torch.Tensor] = {} if x2 is None else {"second": x2}
    if bank is not None:
        extra["bank"] = bank
        if flips is not None:
            extra["second_bank"] = flip_where(bank, flips)
    with autocast:
        view1, view2 = model.forward_views(x, (first, second), with_overcluster=True, **extra)
    if flips is not None:
        view2 = tuple(None if y is None else flip_where(y, flips) for y in view2)
    return losses.ac_loss_terms(
        view1, view2, displacement, valid, heads=heads, entropy_weight=entropy_weight
    )


def apply_update(
    loss: torch.Tensor,
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    scaler: Any = None,
    decided_by: torch.Tensor | None = None,
) -> str | None:
    """Backward + Adam step, or skip it; returns the reason when skipped.

    ``decided_by`` (the loss averaged over DDP ranks) decides, so all ranks agree.
    """
    checked = loss.detach() if decided_by is None else decided_by
    if not torch.isfinite(checked):
        return f"loss is {float(checked)}, step skipped"
    if scaler is not None:  # float16: the scaler itself skips steps with inf gradients
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()
        return None
    loss.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    norm = torch.stack([g.detach().abs().max() for g in grads]).max() if grads else None
    if norm is not None and not torch.isfinite(norm):  # max |g|: inf/NaN propagate
        optimiser.zero_grad(set_to_none=True)
        return "gradient is not finite, step skipped"
    optimiser.step()
    return None


def make_optimiser(model: torch.nn.Module, lr: float) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))


__all__ = ["amp_dtype", "apply_update", "make_optimiser", "step_generator", "step_loss"]
