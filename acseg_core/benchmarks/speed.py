"""Benchmark: training throughput of our AC step vs the reference formulation.

Both run the preset's shipped training recipe (its crop, learning rate, batch and
overclustering head; ``acseg-core train`` with no options) from the same initial
weights on the same synthetic crops and ordering pairs:

- ours: the very step ``acseg-core train`` runs (``training.step``): both views share
  the stem and one batched g_ar/decoder pass (orderings as D4 transforms of the stem
  features, one fixed causal mask), the box-filter form of the IIC joint;
- reference: one forward pass per view with per-ordering rotated masks, as the
  public reproduction does it, and the IIC ``conv2d`` joint.

Steps are interleaved (ours, reference, ours, …) so that load from other
processes hits both alike; crops/s come from median step times and the ratio is
the figure to quote (``speedup_cpu_time`` gives it from process CPU time, which
other processes disturb less). The k-means read-out fit that ends every run is timed
too, and ``run_crops_per_s`` is the whole default run's rate with it. Achieved GFLOP/s of
our step (conv/matmul/attention FLOPs counted by ``FlopCounterMode``) is set
against a large matmul's GFLOP/s measured in the same run.
"""

from __future__ import annotations

import argparse
import copy
import math
import os
import statistics
import time
from typing import Any

import torch
import torch.nn.functional as F

from acseg_core.benchmarks.reference import reference_forward
from acseg_core.device import select_device
from acseg_core.model.loss import mi_loss
from acseg_core.model.nn import build_model, draw_orderings
from acseg_core.model.readouts import readout_kind
from acseg_core.model.readouts.kmeans import FIT_CROPS
from acseg_core.presets import preset, training_defaults
from acseg_core.training.config import TrainConfig
from acseg_core.training.step import amp_dtype, apply_update, make_optimiser, step_generator
from acseg_core.training.step import step_loss as training_step_loss


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("speed (default mode)")
    group.add_argument("--steps", type=int, default=4, help="timed steps per implementation")
    group.add_argument("--warmup", type=int, default=1, help="untimed steps first (default 1)")
    group.add_argument("--crop", type=int, default=None, help="crop side (default: preset's)")
    group.add_argument("--batch", type=int, default=None, help="crops per step (default: 8)")
    group.add_argument("--channels", type=int, default=3, help="input bands (default 3)")
    group.add_argument("--clusters", type=int, default=None, help="K (default: preset's)")
    group.add_argument(
        "--overclusters", type=int, default=None, help="overclustering head (default: preset's)"
    )
    group.add_argument("--lr", type=float, default=None, help="Adam lr (default: preset's)")
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
def _reference_loss(model, x, pair, displacement):
    out1, out2 = (reference_forward(model, x, k, with_overcluster=True) for k in pair)
    loss = mi_loss(out1[0], out2[0], displacement, by_conv=True)
    if out1[1] is not None:
        loss = loss + mi_loss(out1[1], out2[1], displacement, by_conv=True)
    return loss


class Trainer:
    """A model and its optimiser; ``step`` returns (loss, wall s, process CPU s).

    ``reference=False`` runs the training loop's own step (its precision, loss and
    update); ``reference=True`` the public reproduction's formulation in float32
    (it has no reduced-precision path).
    """

    def __init__(self, model, cfg: TrainConfig, device: torch.device, reference: bool) -> None:
        self.model, self.cfg, self.device, self.reference = model, cfg, device, reference
        self.optimiser = make_optimiser(model, cfg.lr)
        self.dtype = None if reference else amp_dtype(device)
        float16 = self.dtype == torch.float16
        self.scaler = torch.amp.GradScaler("cuda") if float16 else None

    def loss(self, x: torch.Tensor, step: int) -> torch.Tensor:
        if self.reference:
            pair = draw_orderings(step_generator(self.cfg.seed, step))
            return _reference_loss(self.model, x, pair, self.cfg.displacement)
        valid = torch.ones(x.shape[0], *x.shape[-2:], dtype=torch.bool, device=x.device)
        cfg, heads = self.cfg, self.model.config.heads
        return training_step_loss(
            self.model, x, valid, cfg.seed, step, cfg.displacement, heads, self.dtype
        )[0]

    def step(self, x: torch.Tensor, step: int) -> tuple[float, float, float]:
        _sync(self.device)
        cpu_start, start = time.process_time(), time.perf_counter()
        self.optimiser.zero_grad(set_to_none=True)
        loss = self.loss(x, step)
        apply_update(loss, self.model, self.optimiser, self.scaler)
        _sync(self.device)
        return loss.item(), time.perf_counter() - start, time.process_time() - cpu_start


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def matmul_gflops(device: torch.device, dtype: torch.dtype | None) -> float:
    """Best-of-a-few GFLOP/s of an n×n matmul in the step's precision: the ceiling."""
    n = 4096 if device.type == "cuda" else 1536
    a = torch.randn(n, n, device=device, dtype=dtype or torch.float32)
    b = torch.randn(n, n, device=device, dtype=dtype or torch.float32)
    repeats = 4 if device.type == "cuda" else 1
    best = math.inf
    for _ in range(5):
        _sync(device)
        start = time.perf_counter()
        for _ in range(repeats):
            a @ b
        _sync(device)
        best = min(best, (time.perf_counter() - start) / repeats)
    return 2 * n**3 / best / 1e9


def count_step_flops(trainer: Trainer, x: torch.Tensor) -> float:
    from torch.utils.flop_counter import FlopCounterMode

    clone = Trainer(copy.deepcopy(trainer.model), trainer.cfg, trainer.device, False)
    counter = FlopCounterMode(display=False)
    with counter:
        clone.loss(x, 0).backward()
    return float(counter.get_total_flops())


def time_readout_fit(model, cfg: TrainConfig, channels: int, device: torch.device) -> float:
    """Seconds of the k-means read-out fit that ends a run (0 for a head-only preset)."""
    kind = readout_kind(cfg.model.readout.kind)
    if not kind.after_training:
        return 0.0
    generator = torch.Generator().manual_seed(1)
    crops = synthetic_batch(generator, FIT_CROPS, channels, cfg.crop)
    valid = torch.ones(cfg.crop, cfg.crop, dtype=torch.bool)
    start = time.perf_counter()
    kind.fit_after_training(model, [(crop, valid) for crop in crops], seed=0, device=device)
    _sync(device)
    return time.perf_counter() - start


def bench_config(args: argparse.Namespace) -> TrainConfig:
    """The preset's shipped run, with only the options given on the command line."""
    overrides: dict[str, Any] = {"in_channels": args.channels}
    for name in ("clusters", "overclusters"):
        if getattr(args, name) is not None:
            overrides[name] = getattr(args, name)
    if args.attention != "preset":
        overrides["attention"] = args.attention == "on"
    given = {name: getattr(args, name) for name in ("crop", "lr", "batch")}
    return TrainConfig(model=preset(args.preset, **overrides),
                       **{k: v for k, v in given.items() if v is not None})  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any]:
    device = select_device(args.device)
    cfg = bench_config(args)
    torch.manual_seed(0)
    model = build_model(cfg.model).to(device)
    ours = Trainer(model, cfg, device, reference=False)
    reference = Trainer(copy.deepcopy(model), cfg, device, reference=True)

    generator = torch.Generator().manual_seed(0)
    total = args.warmup + args.steps
    batches = [
        synthetic_batch(generator, cfg.batch, args.channels, cfg.crop).to(device)
        for _ in range(total)
    ]
    wall: dict[str, list[float]] = {"ours": [], "reference": []}
    cpu = {"ours": 0.0, "reference": 0.0}
    losses: dict[str, list[float]] = {"ours": [], "reference": []}
    for index, x in enumerate(batches):
        for name, trainer in (("ours", ours), ("reference", reference)):
            loss, seconds, cpu_seconds = trainer.step(x, index)
            losses[name].append(loss)
            if index >= args.warmup:
                wall[name].append(seconds)
                cpu[name] += cpu_seconds

    # Median step times: other processes on a shared machine cause spikes that
    # totals would absorb; CPU time is a second, load-insensitive view of the ratio.
    step_seconds = statistics.median(wall["ours"])
    reference_seconds = statistics.median(wall["reference"])
    flops = count_step_flops(ours, batches[0])
    fit_seconds = time_readout_fit(model, cfg, args.channels, device)
    run_steps = cfg.steps or cfg.epochs * (cfg.steps_per_epoch or 1)
    defaults = training_defaults(cfg.model.preset)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    return {
        "preset": args.preset,
        "device": str(device),
        "precision": str(ours.dtype).replace("torch.", "") if ours.dtype else "float32",
        "crop": cfg.crop,
        "batch": cfg.batch,
        "lr": cfg.lr,
        "overclusters": cfg.model.overclusters,
        "shipped_defaults": cfg.crop == defaults["crop"] and cfg.lr == defaults["lr"],
        "steps": args.steps,
        "parameters_m": round(sum(p.numel() for p in model.parameters()) / 1e6, 2),
        "train_crops_per_s": round(cfg.batch / step_seconds, 3),
        "reference_crops_per_s": round(cfg.batch / reference_seconds, 3),
        "speedup": round(reference_seconds / step_seconds, 3),
        "speedup_cpu_time": round(cpu["reference"] / cpu["ours"], 3),
        "readout_fit_s": round(fit_seconds, 2),
        "run_steps": run_steps,
        "run_crops_per_s": round(
            cfg.batch * run_steps / (run_steps * step_seconds + fit_seconds), 3
        ),
        "train_gflops": round(flops / step_seconds / 1e9, 1),
        "matmul_gflops": round(matmul_gflops(device, ours.dtype), 1),
        "matmul_share": round(flops / step_seconds / 1e9 / matmul_gflops(device, ours.dtype), 3),
        "step_gflop": round(flops / 1e9, 2),
        "loss_first": [round(losses["ours"][0], 5), round(losses["reference"][0], 5)],
        "loss_last_ours": round(losses["ours"][-1], 5),
        "loss_last_reference": round(losses["reference"][-1], 5),
        "torch_threads": torch.get_num_threads(),
        "load_average_1min": round(load, 2) if load is not None else None,
    }
