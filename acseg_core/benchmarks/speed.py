"""Benchmark: training throughput of our AC step vs the reference formulation.

Both run the same config from the same initial weights on the same synthetic
crops and ordering pairs, producing the same outputs per step (two views of
every crop, main + overclustering heads):

- ours: both views share the stem and one batched g_ar/decoder pass (orderings as
  D4 transforms of the stem features, one fixed causal mask), the box-filter
  form of the IIC joint;
- reference: one forward pass per view with per-ordering rotated masks, as the
  public reproduction does it, and the IIC ``conv2d`` joint.

Steps are interleaved (ours, reference, ours, …) so that load from other
processes hits both alike; crops/s come from median step times and the ratio is
the figure to quote (``speedup_cpu_time`` gives it from process CPU time, which
other processes disturb less). Achieved GFLOP/s of
our step (conv/matmul/attention FLOPs counted by ``FlopCounterMode``) is set
against a large matmul's GFLOP/s measured in the same run.
"""

from __future__ import annotations

import argparse
import copy
import math
import statistics
import time
from collections.abc import Callable
from typing import Any

import torch
import torch.nn.functional as F

from acseg_core.benchmarks.reference import reference_forward
from acseg_core.device import select_device, use_amp
from acseg_core.model.loss import ac_loss, mi_loss
from acseg_core.model.nn import build_model, draw_orderings
from acseg_core.presets import preset


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("speed (default mode)")
    group.add_argument("--steps", type=int, default=4, help="timed steps per implementation")
    group.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    group.add_argument("--crop", type=int, default=200, help="crop side in pixels (default 200)")
    group.add_argument("--batch", type=int, default=8, help="crops per step (default 8)")
    group.add_argument("--channels", type=int, default=3, help="input bands (default 3)")
    group.add_argument("--clusters", type=int, default=None, help="K (default: preset's)")
    group.add_argument(
        "--overclusters", type=int, default=None, help="overclustering head size (default: 0)"
    )
    group.add_argument("--displacement", type=int, default=10, help="IIC T (default 10)")
    group.add_argument("--lr", type=float, default=4e-5, help="Adam learning rate")
    group.add_argument(
        "--attention", choices=("preset", "on", "off"), default="preset", help="self-attention"
    )


# -- synthetic data --------------------------------------------------------------------
def synthetic_batch(generator: torch.Generator, batch: int, channels: int, crop: int):
    """Crops with smooth regions of a few 'materials' plus noise: something to cluster."""
    coarse = torch.randn(batch, 4, crop // 16 + 2, crop // 16 + 2, generator=generator)
    field = F.interpolate(coarse, size=(crop, crop), mode="bicubic", align_corners=False)
    region = field.argmax(dim=1)  # B×H×W in 0..3
    palette = torch.randn(4, channels, generator=generator)
    image = palette[region].permute(0, 3, 1, 2)
    return image + 0.3 * torch.randn(image.shape, generator=generator)


# -- one training step of each formulation ----------------------------------------
def _fast_loss(model, x, pair, displacement):
    out1, out2 = model.forward_views(x, pair, with_overcluster=True)
    return ac_loss(out1, out2, displacement)


def _reference_loss(model, x, pair, displacement):
    out1, out2 = (reference_forward(model, x, k, with_overcluster=True) for k in pair)
    loss = mi_loss(out1[0], out2[0], displacement, by_conv=True)
    if out1[1] is not None:
        loss = loss + mi_loss(out1[1], out2[1], displacement, by_conv=True)
    return loss


class Trainer:
    """A model, its optimiser and its loss function; ``step`` returns (loss, seconds)."""

    def __init__(self, model, loss_fn: Callable, lr: float, device: torch.device) -> None:
        self.model, self.loss_fn, self.device = model, loss_fn, device
        self.optimiser = torch.optim.Adam(model.parameters(), lr=lr, betas=(0.9, 0.999))
        self.amp = use_amp(device)
        self.amp_dtype = (
            torch.bfloat16 if self.amp and torch.cuda.is_bf16_supported() else torch.float16
        )
        self.scaler = torch.amp.GradScaler(
            "cuda", enabled=self.amp and self.amp_dtype == torch.float16
        )

    def step(self, x: torch.Tensor, pair: tuple[int, int], displacement: int):
        """(loss, wall seconds, process CPU seconds) of one optimiser step."""
        _sync(self.device)
        cpu_start, start = time.process_time(), time.perf_counter()
        self.optimiser.zero_grad(set_to_none=True)
        with torch.autocast(self.device.type, dtype=self.amp_dtype, enabled=self.amp):
            loss = self.loss_fn(self.model, x, pair, displacement)
        self.scaler.scale(loss).backward()
        self.scaler.step(self.optimiser)
        self.scaler.update()
        _sync(self.device)
        return loss.item(), time.perf_counter() - start, time.process_time() - cpu_start


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device, amp: bool) -> float:
    """Best-of-a-few GFLOP/s of an n×n matmul: the machine's practical ceiling."""
    n = 4096 if device.type == "cuda" else 1536
    dtype = torch.bfloat16 if amp else torch.float32
    a = torch.randn(n, n, device=device, dtype=dtype)
    b = torch.randn(n, n, device=device, dtype=dtype)
    best = math.inf
    for _ in range(5):
        _sync(device)
        start = time.perf_counter()
        for _ in range(4 if device.type == "cuda" else 1):
            a @ b
        _sync(device)
        best = min(best, (time.perf_counter() - start) / (4 if device.type == "cuda" else 1))
    return 2 * n**3 / best / 1e9


def count_step_flops(trainer: Trainer, x: torch.Tensor, pair, displacement: int) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    model = copy.deepcopy(trainer.model)  # leave the timed model's state alone
    counter = FlopCounterMode(display=False)
    with counter, torch.autocast(trainer.device.type, enabled=trainer.amp):
        _fast_loss(model, x, pair, displacement).backward()
    return float(counter.get_total_flops())


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = select_device(args.device)
    overrides: dict[str, Any] = {"in_channels": args.channels}
    if args.clusters is not None:
        overrides["clusters"] = args.clusters
    if args.overclusters is not None:
        overrides["overclusters"] = args.overclusters
    if args.attention != "preset":
        overrides["attention"] = args.attention == "on"
    cfg = preset(args.preset, **overrides)

    torch.manual_seed(0)
    model = build_model(cfg).to(device)
    fast = Trainer(model, _fast_loss, args.lr, device)
    reference = Trainer(copy.deepcopy(model), _reference_loss, args.lr, device)

    generator = torch.Generator().manual_seed(0)
    total = args.warmup + args.steps
    batches = [
        synthetic_batch(generator, args.batch, args.channels, args.crop).to(device)
        for _ in range(total)
    ]
    pairs = [draw_orderings(generator) for _ in range(total)]

    wall: dict[str, list[float]] = {"fast": [], "reference": []}
    cpu = {"fast": 0.0, "reference": 0.0}
    losses: dict[str, list[float]] = {"fast": [], "reference": []}
    for index, (x, pair) in enumerate(zip(batches, pairs, strict=True)):
        for name, trainer in (("fast", fast), ("reference", reference)):
            loss, seconds, cpu_seconds = trainer.step(x, pair, args.displacement)
            losses[name].append(loss)
            if index >= args.warmup:
                wall[name].append(seconds)
                cpu[name] += cpu_seconds

    # Median step times: other processes on a shared machine cause spikes that
    # totals would absorb; CPU time is a second, load-insensitive view of the ratio.
    step_seconds = statistics.median(wall["fast"])
    reference_seconds = statistics.median(wall["reference"])
    flops = count_step_flops(fast, batches[0], pairs[0], args.displacement)
    return {
        "preset": args.preset,
        "device": str(device),
        "amp": fast.amp,
        "crop": args.crop,
        "batch": args.batch,
        "steps": args.steps,
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "train_crops_per_s": round(args.batch / step_seconds, 3),
        "reference_crops_per_s": round(args.batch / reference_seconds, 3),
        "speedup": round(reference_seconds / step_seconds, 3),
        "speedup_cpu_time": round(cpu["reference"] / cpu["fast"], 3),
        "train_gflops": round(flops / step_seconds / 1e9, 1),
        "matmul_gflops": round(matmul_gflops(device, fast.amp), 1),
        "step_gflop": round(flops / 1e9, 1),
        "loss_first": [round(losses["fast"][0], 5), round(losses["reference"][0], 5)],
        "loss_last_ours": round(losses["fast"][-1], 5),
        "loss_last_reference": round(losses["reference"][-1], 5),
    }
