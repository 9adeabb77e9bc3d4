"""How long a training run will take: measured on the run's own first steps.

:func:`estimate_run` does, for a few steps, what :func:`acseg_core.training.loop.train`
does for the whole run, with the run's own :class:`TrainConfig`: it scans the inputs
and measures their band statistics (the run's preparation, timed), builds the
network the run trains (preset, heads, band count), draws the run's own crops through
the run's loader (its worker processes included), times the first step (warm-up:
allocations, loader start) apart from the steady ones, fits the read-out the run fits
after training on the crops it would use, and times a checkpoint save. The result is
an :class:`Estimate`, whose :meth:`~Estimate.total_s` follows the epochs and steps
per epoch without measuring again.

:class:`StepRate` is the live ETA's rate: the mean over a window of recent steps
(the first, warm-up step left out), so the remaining time converges instead of
swinging with the last step.
"""

from __future__ import annotations

import io
import math
import os
import statistics
import time
from collections import deque
from collections.abc import Generator
from dataclasses import dataclass, replace
from typing import Any

import torch

from acseg_core.device import select_device
from acseg_core.jobs import CancelToken, Progress
from acseg_core.model.nn import build_model
from acseg_core.model.readouts.kmeans import FIT_CROPS
from acseg_core.model.readouts.registry import HEAD, readout_kind
from acseg_core.training.config import TrainConfig
from acseg_core.training.crops import CropDataset, crop_loader, next_batch
from acseg_core.training.dataset import (
    DatasetScan,
    measure_normalisation,
    scan_inputs,
    steps_per_epoch_for,
)
from acseg_core.training.step import amp_dtype, apply_update, make_optimiser, step_loss

PROBE_STEPS = 8  # steady steps timed after the first one
PROBE_BUDGET_S = 30.0  # ... or fewer (at least MIN_PROBE_STEPS) once this much time passed
MIN_PROBE_STEPS = 3
RATE_WINDOW = 30  # steps the live rate averages over


@dataclass(frozen=True)
class Estimate:
    """Measured parts of a run; :meth:`total_s` puts them together for any length.

    ``prepare_s``: scanning and band statistics; ``startup_s``: building the network,
    starting the loader and the first step's warm-up beyond a steady step;
    ``step_s``: one steady step; ``save_s``: one checkpoint (one per epoch);
    ``readout_s``: fitting the read-out and writing the model file (0 for plain AC).
    """

    device: str
    prepare_s: float
    startup_s: float
    step_s: float
    save_s: float
    readout_s: float
    steps_per_epoch: int  # what the run uses (the scan decides "auto")
    load: float | None = None  # 1-min load average when measured (None where unknown)

    def steps(self, epochs: int, steps_per_epoch: int | None = None) -> int:
        return max(1, epochs) * max(1, steps_per_epoch or self.steps_per_epoch)

    def epoch_s(self, steps_per_epoch: int | None = None) -> float:
        return (steps_per_epoch or self.steps_per_epoch) * self.step_s + self.save_s

    def total_s(self, epochs: int, steps_per_epoch: int | None = None) -> float:
        """Wall time of the whole run: preparation, warm-up, every epoch, read-out fit."""
        return (
            self.prepare_s
            + self.startup_s
            + max(1, epochs) * self.epoch_s(steps_per_epoch)
            + self.readout_s
        )

    def describe(self, epochs: int, steps_per_epoch: int | None = None) -> str:
        """One line for the wizard: per epoch and in all, for these epochs."""
        per_epoch = format_duration(self.epoch_s(steps_per_epoch))
        total = format_duration(self.total_s(epochs, steps_per_epoch))
        fixed = self.prepare_s + self.startup_s + self.readout_s
        return (
            f"≈ {per_epoch} per epoch on {self.device}: {total} for {epochs} epoch(s) "
            f"(incl. {format_duration(fixed)} to prepare and fit the read-out)"
        )


def estimate_run(
    cfg: TrainConfig,
    scan: DatasetScan | None = None,
    cancel: CancelToken | None = None,
    probe_steps: int = PROBE_STEPS,
) -> Generator[Progress, None, Estimate]:
    """Generator job: time the run ``cfg`` describes on its first steps (module doc).

    ``scan``: the inputs already scanned (the wizard's); scanned here otherwise, and
    the scan's time is part of the estimate either way. Raises AcsegError as the run
    would (no usable images...), CancelledError-free: a cancel returns what is measured.
    """
    load = _load_average()
    total_reports = probe_steps + 4
    yield Progress(0, total_reports, "reading the images")
    start = time.perf_counter()
    if scan is None or scan.crop != cfg.crop:
        scan = scan_inputs(cfg.inputs, crop=cfg.crop, small=cfg.small_images)
    norm = measure_normalisation(scan, seed=cfg.seed, cancel=cancel)
    prepare_s = time.perf_counter() - start
    yield Progress(1, total_reports, "building the network")

    steps_per_epoch = steps_per_epoch_for(scan, cfg)
    device = select_device(cfg.device)
    start = time.perf_counter()
    torch.manual_seed(cfg.seed)
    model_cfg = replace(cfg.model, in_channels=scan.bands, normalisation=norm)
    model = build_model(model_cfg, pretrained=True).to(device).train()
    optimiser = make_optimiser(model, cfg.lr)
    bank = None
    if model_cfg.encoder == "bank":  # a step's cost, not the bank's: features of its shape
        cells = -(-cfg.crop // model_cfg.stride)
        shape = (cfg.batch, model.stem.project.in_channels, cells, cells)
        bank = torch.randn(shape, generator=torch.Generator().manual_seed(0)).to(device)
    dtype = amp_dtype(device)
    dataset = CropDataset(scan, norm, cfg.crop, seed=cfg.seed, scale=cfg.scale)
    # the run's own sampler (all its steps), so the loader's workers keep reading while
    # the steps are timed, as they do in the run (and compete for the same cores)
    run_steps = cfg.steps or cfg.epochs * steps_per_epoch
    batches = iter(crop_loader(dataset, cfg, 0, max(run_steps, probe_steps + 1), device))

    def step(index: int, batches: Any) -> None:
        x, valid = next_batch(batches)
        x, valid = x.to(device), valid.to(device)
        optimiser.zero_grad(set_to_none=True)
        loss, _ = step_loss(
            model, x, valid, cfg.seed, index, cfg.displacement, model_cfg.heads, dtype,
            entropy_weight=cfg.entropy_weight, augment=cfg.view_augment,
            bank=None if bank is None else bank[: x.shape[0]],
        )  # fmt: skip
        apply_update(loss, model, optimiser)
        if device.type == "cuda":
            torch.cuda.synchronize()

    try:
        step(0, batches)
        first_s = time.perf_counter() - start
        yield Progress(2, total_reports, "timing training steps")
        times: list[float] = []
        for index in range(1, probe_steps + 1):
            if cancel is not None and cancel.cancelled:
                break
            if len(times) >= MIN_PROBE_STEPS and sum(times) > PROBE_BUDGET_S:
                break  # a slow machine: enough steps to know, the user is waiting
            tick = time.perf_counter()
            step(index, batches)
            times.append(time.perf_counter() - tick)
            yield Progress(2 + index, total_reports, "timing training steps")
        del batches  # its workers stop: the read-out fit runs without them, as in the run
        step_s = _steady(times) if times else first_s
        startup_s = max(0.0, first_s - step_s)
        save_s = _time_save(model, optimiser)
        readout_s = save_s
        if model_cfg.readout.kind != HEAD and not (cancel is not None and cancel.cancelled):
            yield Progress(total_reports - 1, total_reports, "timing the read-out fit")
            tick = time.perf_counter()
            crops = [dataset[index] for index in range(FIT_CROPS)]
            if bank is not None:  # the crops' bank features, of their shape
                crops = [(*crop, bank[0].cpu()) for crop in crops]
            readout_kind(model_cfg.readout.kind).fit_after_training(
                model, crops, seed=cfg.seed, device=device
            )
            readout_s += time.perf_counter() - tick
    finally:
        dataset.close()
    yield Progress(total_reports, total_reports, "done")
    return Estimate(
        str(device), prepare_s, startup_s, step_s, save_s, readout_s, steps_per_epoch, load
    )


def _steady(times: list[float]) -> float:
    """A steady step's time: the mean (a loaded machine's slow steps are part of the
    run too), leaving out only steps over 3× the median (a one-off stall)."""
    if len(times) < 3:
        return statistics.fmean(times)
    median = statistics.median(times)
    return statistics.fmean([t for t in times if t <= 3 * median])


def _time_save(model: torch.nn.Module, optimiser: torch.optim.Optimizer) -> float:
    tick = time.perf_counter()
    buffer = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimiser": optimiser.state_dict()}, buffer)
    return time.perf_counter() - tick


def _load_average() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


class StepRate:
    """Seconds per step over the last ``window`` steps (the first step, the warm-up,
    left out once later ones exist): the live ETA's rate."""

    def __init__(self, window: int = RATE_WINDOW) -> None:
        self.first: float | None = None
        self.recent: deque[float] = deque(maxlen=max(1, window))

    def add(self, seconds: float) -> None:
        if self.first is None:
            self.first = seconds
        else:
            self.recent.append(seconds)

    @property
    def seconds_per_step(self) -> float | None:
        if self.recent:
            return statistics.fmean(self.recent)
        return self.first

    def eta(self, remaining_steps: int, extra_s: float = 0.0) -> float | None:
        """Seconds left for ``remaining_steps`` more steps (plus ``extra_s``)."""
        rate = self.seconds_per_step
        if rate is None or not math.isfinite(rate):
            return None
        return max(0, remaining_steps) * rate + extra_s


def format_duration(seconds: float) -> str:
    if seconds < 90:
        return f"{seconds:.0f} s"
    if seconds < 5400:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


__all__ = [
    "Estimate",
    "StepRate",
    "estimate_run",
    "format_duration",
]
