"""The training loop: ``train(cfg, cancel) -> Iterator[Progress]``, shared by CLI and GUI.

One step = one batch of random crops, two *different* raster orderings of the
same crops, the IIC mutual-information loss between the two views (plus the
overclustering head's when configured), one Adam update. Everything that makes a
run reproducible is a pure function of ``(seed, step)`` — the crops (see
:class:`~acseg_core.training.dataset.CropDataset`) and the orderings — so a resumed run
continues exactly where the interrupted one stopped, with any number of loader
workers.

Files in the run folder (``cfg.out_dir``):

* ``model.pt`` — weights + ``ModelConfig`` (with normalisation) + meta; all that
  ``predict`` needs (:func:`acseg_core.model.checkpoint.load_model`).
* ``checkpoint.pt`` — the same plus ``train_state`` (optimiser, RNG, step,
  TrainConfig) for ``resume``.
* ``train.jsonl`` — the run log (:mod:`acseg_core.training.run_log`).

Both model files are written atomically at every epoch end, on cancel and at the
end; a cancelled run therefore always leaves a loadable model.
"""

from __future__ import annotations

import contextlib
import math
import signal
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acseg_core import __version__
from acseg_core.training import distributed
from acseg_core.model.checkpoint import config_of, load_checkpoint, save_checkpoint
from acseg_core.model.config import ModelConfig, TrainConfig, from_dict, to_dict
from acseg_core.training.dataset import CropDataset, DatasetScan, measure_normalisation, scan_inputs
from acseg_core.device import select_device, use_amp
from acseg_core.errors import AcsegError, InputError
from acseg_core.jobs import CancelToken, Progress
from acseg_core.training.run_log import RunLog

MODEL_FILE = "model.pt"
CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "train.jsonl"
# lr per preset when the caller has no opinion (CLI without --lr). 4e-5 is DESIGN's
# default for long GPU runs. For short cpu-small runs 5e-4 measured best (issue 5,
# 30 steps of 4×64 px crops on the synthetic learning test): 1e-3 and above let
# the clusters collapse within a few steps, 2e-4 and below learn too slowly.
# On real images `acseg-core bench --accuracy` (issue 9, docs/accuracy.md) chose 1e-4
# for cpu-small's width 16 / 128 px / 300 steps; GPU presets keep DESIGN's 4e-5.
DEFAULT_LR = {"cpu-small": 1e-4, "repro-4": 4e-5, "paper-5": 4e-5}


def preset_defaults(name: str, clusters: int) -> tuple[dict[str, Any], dict[str, Any]]:
    """(TrainConfig fields, ModelConfig overrides) a front-end uses with preset ``name``
    for whatever the user leaves unset, so the CLI, the app and the accuracy benchmark
    train alike: the preset's lr and crop, and the overclustering head (IIC; factor ×
    K, chosen by ``acseg-core bench --accuracy``, issue 9)."""
    from acseg_core.model.config import PRESET_TRAINING, overclusters_for

    training = {"lr": DEFAULT_LR.get(name, TrainConfig.lr), **PRESET_TRAINING.get(name, {})}
    return training, {"overclusters": overclusters_for(clusters)}


MAX_BAD_STEPS = 5  # consecutive non-finite steps before training gives up
CHECKPOINT_EVERY_S = 600.0  # also checkpoint mid-epoch this often (long epochs)
LOG_EVERY = 10  # steps between log lines (epoch ends and warnings always logged)
EMA = 0.9  # smoothing of the speed estimate
HEAD_EMA = 0.95  # smoothing of the per-sub-head losses (~ the last 20 steps)


@dataclass(frozen=True)
class TrainResult:
    """The generator's return value: where the model is and how far it got."""

    model_path: Path
    checkpoint_path: Path
    step: int
    steps_total: int
    cancelled: bool
    loss: float | None


@dataclass
class _Run:
    """Mutable state of one run (what ``train_state`` saves)."""

    cfg: TrainConfig
    model_cfg: ModelConfig
    steps_per_epoch: int
    steps_total: int
    step: int = 0  # completed optimiser steps
    bad_steps: int = 0  # consecutive non-finite steps
    skipped_steps: int = 0
    epoch_losses: list[float] | None = None
    last_loss: float | None = None
    head_losses: list[float] | None = None  # running mean loss per sub-head (selection)
    dist: distributed.Context = field(default_factory=distributed.Context)  # ranks (DDP)


def steps_per_epoch_for(scan: DatasetScan, cfg: TrainConfig) -> int:
    """Steps that draw the data's area once in crops (or the configured number)."""
    if cfg.steps_per_epoch is not None:
        return cfg.steps_per_epoch
    side = max(1, round(cfg.crop / cfg.scale))
    return max(1, math.ceil(scan.total_pixels / (side * side * cfg.batch)))


def resume_config(out_dir: str | Path, **overrides: Any) -> TrainConfig:
    """The stored TrainConfig of a run, with ``overrides`` applied and ``resume`` on.

    Lets a front-end resume with nothing but the run folder (and change, say,
    ``epochs`` or ``lr``).
    """
    payload = load_checkpoint(Path(out_dir) / CHECKPOINT_FILE)
    state = payload.get("train_state") or {}
    if "train_config" not in state:
        raise InputError(Path(out_dir) / CHECKPOINT_FILE, "holds no training state to resume")
    stored = from_dict(TrainConfig, state["train_config"])
    return replace(stored, out_dir=str(out_dir), resume=True, **overrides)


def train(cfg: TrainConfig, cancel: CancelToken | None = None) -> Iterator[Progress]:
    """Train (or resume) an AC model; yield a Progress per step; return a TrainResult.

    ``Progress.metrics`` always holds ``phase`` ("prepare" | "train" | "done"),
    ``epoch``, ``epochs``, ``step``, ``steps_total``, ``loss``, ``crops_per_s``;
    ``epoch_end``/``epoch_loss`` at epoch ends, ``warning`` when something was
    skipped, ``cancelled`` at the end. Cancel takes effect before the next step
    and saves a checkpoint. Repeated non-finite losses raise :class:`AcsegError`
    after keeping the last good checkpoint.
    """
    from acseg_core.model.nn import build_model

    out = Path(cfg.out_dir)
    ckpt_path, model_path = out / CHECKPOINT_FILE, out / MODEL_FILE
    payload = _existing_run(cfg, ckpt_path)
    out.mkdir(parents=True, exist_ok=True)
    ctx = distributed.setup(cfg.device)  # joins torchrun's process group, if any
    ctx.local_batch(cfg.batch)  # the global batch must split evenly over the ranks
    log = RunLog(out / LOG_FILE) if ctx.is_main else distributed.NullLog()
    device = ctx.device or select_device(cfg.device)

    yield _prepare("scanning inputs")
    scan = scan_inputs(cfg.inputs, crop=cfg.crop, small=cfg.small_images)
    log.write("scan", summary=scan.summary(), images=[str(p) for p in scan.paths])
    for note in scan.warnings:
        log.write("warning", message=note)
        yield _prepare(note, warning=note)

    if payload is None:
        yield _prepare("measuring band statistics")
        norm = measure_normalisation(scan, seed=cfg.seed, cancel=cancel)
        if cancel is not None and cancel.cancelled:
            log.write("cancelled", step=0)
            return None
        model_cfg = replace(cfg.model, in_channels=scan.bands, normalisation=norm)
        run = _Run(cfg, model_cfg, steps_per_epoch_for(scan, cfg), 0)
    else:
        model_cfg = config_of(payload)
        if model_cfg.in_channels != scan.bands:
            raise AcsegError(
                f"cannot resume: the model expects {model_cfg.in_channels} band(s), "
                f"the inputs have {scan.bands}"
            )
        state = payload["train_state"]
        run = _Run(cfg, model_cfg, state["steps_per_epoch"], 0, step=state["step"])
        run.skipped_steps = state.get("skipped_steps", 0)
        run.head_losses = state.get("head_losses")
    run.steps_total = cfg.steps or cfg.epochs * run.steps_per_epoch
    run.epoch_losses = []
    run.dist = ctx

    torch.manual_seed(cfg.seed)
    model = build_model(model_cfg).to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=cfg.lr, betas=(0.9, 0.999))
    amp_dtype = _amp_dtype(device)
    scaler = torch.amp.GradScaler("cuda") if amp_dtype == torch.float16 else None
    if payload is not None:
        _restore(payload, model, optimiser, scaler, device, cfg.lr)
        log.write("resume", step=run.step, steps_total=run.steps_total)
    else:
        log.write("start", config=to_dict(replace(cfg, model=model_cfg)), device=str(device))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    model = ctx.wrap(model)  # DDP + synchronised BatchNorm on several ranks, else as is
    dataset = CropDataset(scan, model_cfg.normalisation, cfg.crop, seed=cfg.seed, scale=cfg.scale)
    yield from _loop(run, model, optimiser, scaler, amp_dtype, dataset, device, log, cancel)
    cancelled = bool(cancel is not None and cancel.cancelled and run.step < run.steps_total)
    if model_cfg.readout == "kmeans" and run.step > 0:  # every rank: replicas stay equal
        metrics = {**_metrics(run, run.last_loss, None), "phase": "prepare"}
        yield Progress(run.step, run.steps_total, "fitting the k-means read-out", 0.0, metrics)
        log.write("readout", step=run.step, **_fit_readout(run, model, dataset, device))
    dataset.close()

    _save(run, model, optimiser, scaler, ckpt_path, model_path, final=not cancelled)
    log.write(
        "cancelled" if cancelled else "done",
        step=run.step,
        steps_total=run.steps_total,
        model=str(model_path),
        skipped_steps=run.skipped_steps,
    )
    metrics = _metrics(run, run.last_loss, None)
    metrics.update(phase="done", cancelled=cancelled, model_path=str(model_path))
    message = f"{'cancelled' if cancelled else 'finished'} at step {run.step}/{run.steps_total}"
    yield Progress(run.step, run.steps_total, message, 0.0, metrics)
    ctx.close()
    return TrainResult(model_path, ckpt_path, run.step, run.steps_total, cancelled, run.last_loss)


def _existing_run(cfg: TrainConfig, ckpt_path: Path) -> dict[str, Any] | None:
    """The checkpoint to resume from, or None for a fresh run (never clobber one)."""
    if not cfg.resume:
        if ckpt_path.exists():
            raise AcsegError(
                f"{ckpt_path.parent} already holds a training run: resume it "
                "(--resume) or choose another output folder"
            )
        return None
    if not ckpt_path.exists():
        raise InputError(ckpt_path, "no checkpoint to resume from")
    payload = load_checkpoint(ckpt_path)
    if not payload.get("train_state"):
        raise InputError(ckpt_path, "holds no training state to resume")
    return payload


def _amp_dtype(device: torch.device) -> torch.dtype | None:
    """bfloat16 where the GPU has it (no loss scaling needed), else float16."""
    if not use_amp(device):
        return None
    if device.type == "cuda" and torch.cuda.is_bf16_supported():
        return torch.bfloat16
    return torch.float16


def _loop(
    run: _Run,
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    amp_dtype: torch.dtype | None,
    dataset: CropDataset,
    device: torch.device,
    log: RunLog,
    cancel: CancelToken | None,
) -> Iterator[Progress]:
    from acseg_core.model import loss as losses
    from acseg_core.model.nn import draw_orderings

    cfg = run.cfg
    if run.step >= run.steps_total:
        return
    batches = iter(_loader(dataset, cfg, run.step, run.steps_total, device, run.dist))
    model.train()
    step_time: float | None = None
    last_tick = time.perf_counter()
    last_save = time.monotonic()
    while run.step < run.steps_total:
        if run.dist.should_stop(cancel):  # any rank's cancel stops all at this step
            break
        x, valid = _next_batch(batches)
        x = x.to(device, non_blocking=True)
        valid = valid.to(device, non_blocking=True)
        first, second = draw_orderings(_step_generator(cfg.seed, run.step))
        optimiser.zero_grad(set_to_none=True)
        autocast = (
            torch.autocast(device.type, dtype=amp_dtype)
            if amp_dtype is not None
            else contextlib.nullcontext()
        )
        with autocast:  # both views share the stem and one batched g_ar pass
            view1, view2 = model.forward_views(x, (first, second), with_overcluster=True)
        loss, per_head = losses.ac_loss_terms(  # float32, outside autocast
            view1, view2, cfg.displacement, valid, heads=run.model_cfg.heads
        )
        mean_loss = run.dist.average(loss)  # over ranks: every rank skips a bad step alike
        warning = _update(loss, model, optimiser, scaler, run, mean_loss)
        run.step += 1
        loss_value = float(mean_loss) if warning is None else None

        now = time.perf_counter()
        elapsed, last_tick = now - last_tick, now
        step_time = elapsed if step_time is None else EMA * step_time + (1 - EMA) * elapsed
        if loss_value is not None:
            run.last_loss = loss_value
            _track_heads(run, per_head)
            assert run.epoch_losses is not None
            run.epoch_losses.append(loss_value)
        metrics = _metrics(run, loss_value, cfg.batch / step_time)
        eta = (run.steps_total - run.step) * step_time
        if warning is not None:
            metrics["warning"] = warning
            log.write("warning", step=run.step, message=warning)
            if run.bad_steps >= MAX_BAD_STEPS:
                ckpt = Path(cfg.out_dir) / CHECKPOINT_FILE
                kept = f"the last good checkpoint is {ckpt}" if ckpt.exists() else "no checkpoint"
                message = (
                    f"training stopped at step {run.step}: the loss was not finite for "
                    f"{run.bad_steps} steps in a row; {kept} (try a lower learning rate)"
                )
                log.write("error", step=run.step, message=message)
                raise AcsegError(message)
        epoch_end = run.step % run.steps_per_epoch == 0 or run.step == run.steps_total
        if epoch_end:
            epoch_loss = float(np.mean(run.epoch_losses)) if run.epoch_losses else None
            metrics.update(epoch_end=True, epoch_loss=epoch_loss)
            run.epoch_losses = []
        if epoch_end or time.monotonic() - last_save > CHECKPOINT_EVERY_S:
            ckpt_dir = Path(cfg.out_dir)
            _save(run, model, optimiser, scaler, ckpt_dir / CHECKPOINT_FILE,
                  ckpt_dir / MODEL_FILE, final=False)  # fmt: skip
            last_save = time.monotonic()
            model.train()
        if epoch_end or run.step % LOG_EVERY == 0:
            log.write("epoch" if epoch_end else "step", **metrics)
        message = f"epoch {metrics['epoch']}/{metrics['epochs']} · step {run.step}"
        if loss_value is not None:
            message += f" · loss {loss_value:.4f}"
        yield Progress(run.step, run.steps_total, message, eta, metrics)


def _update(
    loss: torch.Tensor,
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    run: _Run,
    mean_loss: torch.Tensor | None = None,
) -> str | None:
    """Backward + Adam step, or skip it; returns a warning when skipped.

    ``mean_loss`` (the loss averaged over ranks) decides, so all ranks agree.
    """
    checked = loss.detach() if mean_loss is None else mean_loss
    if not torch.isfinite(checked):
        return _bad_step(run, f"step {run.step + 1}: loss is {float(checked)}, step skipped")
    if scaler is not None:  # float16: the scaler itself skips steps with inf gradients
        scaler.scale(loss).backward()
        scaler.step(optimiser)
        scaler.update()
    else:
        loss.backward()
        grads = [p.grad for p in model.parameters() if p.grad is not None]
        norm = torch.stack([g.detach().abs().max() for g in grads]).max() if grads else None
        if norm is not None and not torch.isfinite(norm):  # max |g|: inf/NaN propagate
            optimiser.zero_grad(set_to_none=True)
            return _bad_step(run, f"step {run.step + 1}: gradient is not finite, step skipped")
        optimiser.step()
    run.bad_steps = 0
    return None


def _bad_step(run: _Run, warning: str) -> str:
    run.bad_steps += 1
    run.skipped_steps += 1
    return warning


def _metrics(run: _Run, loss: float | None, crops_per_s: float | None) -> dict[str, Any]:
    done_epochs = max(run.step - 1, 0) // run.steps_per_epoch
    return {
        "phase": "train",
        "epoch": min(done_epochs + 1, _epochs(run)),
        "epochs": _epochs(run),
        "step": run.step,
        "steps_total": run.steps_total,
        "loss": loss,
        "crops_per_s": crops_per_s,
    }


def _epochs(run: _Run) -> int:
    return max(1, math.ceil(run.steps_total / run.steps_per_epoch))


def _prepare(message: str, warning: str | None = None) -> Progress:
    metrics: dict[str, Any] = {
        "phase": "prepare",
        "epoch": 0,
        "epochs": None,
        "step": 0,
        "steps_total": None,
        "loss": None,
        "crops_per_s": None,
    }
    if warning is not None:
        metrics["warning"] = warning
    return Progress(0, None, message, None, metrics)


def _step_generator(seed: int, step: int) -> torch.Generator:
    """A generator for step ``step`` alone: orderings need no saved RNG state."""
    state = np.random.SeedSequence([seed, step, 0x0AD]).generate_state(1, dtype=np.uint64)[0]
    return torch.Generator().manual_seed(int(state) & 0x7FFF_FFFF_FFFF_FFFF)


def _loader(
    dataset: CropDataset,
    cfg: TrainConfig,
    start: int,
    total: int,
    device: torch.device,
    ctx: distributed.Context | None = None,
) -> torch.utils.data.DataLoader:
    """Crops ``start*batch …`` in order; workers read ahead while the model computes.

    On several ranks each takes every W-th crop of each global batch (its share).
    """
    ctx = ctx or distributed.Context()
    workers = cfg.workers
    return torch.utils.data.DataLoader(
        dataset,  # type: ignore[arg-type]
        batch_size=ctx.local_batch(cfg.batch),
        sampler=ctx.crop_indices(start, total, cfg.batch),
        num_workers=workers,
        pin_memory=device.type == "cuda",
        prefetch_factor=4 if workers else None,
        worker_init_fn=_quiet_worker if workers else None,
    )


def _quiet_worker(_: int) -> None:
    """Loader workers leave Ctrl+C to the trainer, which saves before stopping."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    torch.set_num_threads(1)  # workers decode pixels; compute threads belong to training


def _next_batch(batches: Iterator[Any]) -> Any:
    """Next batch; a read error in a worker becomes the one-line message it was."""
    try:
        return next(batches)
    except AcsegError:
        raise
    except RuntimeError as exc:
        text = str(exc)
        if "DataLoader worker" not in text:
            raise
        last = [line for line in text.strip().splitlines() if line.strip()][-1]
        raise AcsegError(last.split("Error: ", 1)[-1].strip()) from exc


def _save(
    run: _Run,
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    ckpt_path: Path,
    model_path: Path,
    *,
    final: bool,
) -> None:
    """Atomic checkpoint (with train_state) and model file (for predict); rank 0 only."""
    if not run.dist.is_main:
        return
    meta = {
        "acseg_version": __version__,
        "step": run.step,
        "steps_total": run.steps_total,
        "final": final,
        "loss": run.last_loss,
        "input_scale": run.cfg.scale,
        "crop": run.cfg.crop,
        "train_config": to_dict(replace(run.cfg, model=run.model_cfg)),
    }
    train_state = {
        "step": run.step,  # global: a resume may use another number of ranks
        "global_batch": run.cfg.batch,
        "world_size": run.dist.world_size,
        "steps_per_epoch": run.steps_per_epoch,
        "skipped_steps": run.skipped_steps,
        "head_losses": run.head_losses,
        "optimiser": optimiser.state_dict(),
        "scaler": scaler.state_dict() if scaler is not None else None,
        "torch_rng": torch.get_rng_state(),
        "cuda_rng": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else None,
        "train_config": to_dict(replace(run.cfg, model=run.model_cfg, resume=False)),
    }
    save_checkpoint(ckpt_path, model, run.model_cfg, train_state=train_state, meta=meta)
    best = best_head(run.head_losses)
    meta.update(head=best, head_losses=run.head_losses)
    config, state = keep_head(getattr(model, "module", model), run.model_cfg, best)
    save_checkpoint(model_path, model, config, meta=meta, state=state)


def _fit_readout(
    run: _Run, model: torch.nn.Module, dataset: CropDataset, device: torch.device
) -> dict[str, Any]:
    """Fit the k-means read-out on seeded crops (:mod:`acseg_core.model.readouts.kmeans`); it sees
    the model file's sub-head choice only through the shared features."""
    from acseg_core.model.readouts.kmeans import FIT_CROPS, fit_readout

    net = getattr(model, "module", model)
    crops = [dataset[index] for index in range(FIT_CROPS)]
    summary = fit_readout(net, crops, seed=run.cfg.seed, device=device)
    net.train()
    return summary


def best_head(head_losses: list[float] | None) -> int:
    """The sub-head with the lowest running loss (IIC's choice; no labels involved)."""
    if not head_losses:
        return 0
    return int(np.argmin(head_losses))


def keep_head(
    model: torch.nn.Module, config: ModelConfig, head: int
) -> tuple[ModelConfig, dict[str, torch.Tensor]]:
    """(config, weights) of ``model`` with only sub-head ``head``: what predict needs."""
    state = {k: v.detach().cpu() for k, v in model.state_dict().items()}
    if config.heads == 1:
        return config, state
    rows = slice(head * config.clusters, (head + 1) * config.clusters)
    state["head.weight"] = state["head.weight"][rows].clone()
    state["head.bias"] = state["head.bias"][rows].clone()
    return replace(config, heads=1), state


def _track_heads(run: _Run, per_head: torch.Tensor) -> None:
    """Running mean (EMA) of each sub-head's loss over the recent steps."""
    values = [float(v) for v in per_head.detach().float().cpu()]
    if run.head_losses is None or len(run.head_losses) != len(values):
        run.head_losses = values
        return
    run.head_losses = [
        HEAD_EMA * old + (1 - HEAD_EMA) * new
        for old, new in zip(run.head_losses, values, strict=True)
    ]


def _restore(
    payload: dict[str, Any],
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    scaler: torch.amp.GradScaler | None,
    device: torch.device,
    lr: float,
) -> None:
    state = payload["train_state"]
    model.load_state_dict(payload["state_dict"])
    optimiser.load_state_dict(state["optimiser"])
    for group in optimiser.param_groups:  # a resumed run may lower the learning rate
        group["lr"] = lr
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and device.type == "cuda":
        with contextlib.suppress(RuntimeError):
            torch.cuda.set_rng_state_all(state["cuda_rng"])
