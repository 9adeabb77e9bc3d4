"""The training loop: ``train(cfg, cancel) -> Iterator[Progress]``, shared by CLI and GUI.

Each step is :mod:`acseg_core.training.step`. Everything that makes a run
reproducible is a pure function of ``(seed, step)`` (the crops of
:class:`~acseg_core.training.crops.CropDataset` and the orderings), so a resumed run
continues exactly where the interrupted one stopped, with any number of loader
workers or DDP ranks. Files and saving: :mod:`acseg_core.training.state`.
"""

from __future__ import annotations

import contextlib
import math
import time
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acseg_core.errors import AcsegError
from acseg_core.features.bank import check_bank
from acseg_core.features.cache import features_for
from acseg_core.features.for_model import BANK_DIGEST, feature_root
from acseg_core.io.folders import make_output_folder
from acseg_core.jobs import CancelToken, Progress
from acseg_core.model.checkpoint import config_of
from acseg_core.model.config import to_dict
from acseg_core.model.nn import build_model
from acseg_core.model.readouts.kmeans import FIT_CROPS
from acseg_core.model.readouts.registry import HEAD, readout_kind
from acseg_core.training import distributed
from acseg_core.training import state as files
from acseg_core.training.config import TrainConfig
from acseg_core.training.crops import CropDataset, crop_loader, next_batch
from acseg_core.training.dataset import (
    measure_normalisation,
    scan_inputs,
    steps_per_epoch_for,
)
from acseg_core.training.estimate import StepRate
from acseg_core.training.run_log import RunLog
from acseg_core.training.state import Run
from acseg_core.training.step import amp_dtype, apply_update, make_optimiser, step_loss
from acseg_core.training.stopping import plateau_reached

MAX_BAD_STEPS = 5  # consecutive non-finite steps before training gives up
CHECKPOINT_EVERY_S = 600.0  # also checkpoint mid-epoch this often (long epochs)
LOG_EVERY = 10  # steps between log lines (epoch ends and warnings always logged)


@dataclass(frozen=True)
class TrainResult:
    """The generator's return value: where the model is and how far it got."""

    model_path: Path
    checkpoint_path: Path
    step: int
    steps_total: int
    cancelled: bool
    loss: float | None


def train(cfg: TrainConfig, cancel: CancelToken | None = None) -> Iterator[Progress]:
    """Train (or resume) an AC model; yield a Progress per step; return a TrainResult.

    ``Progress.metrics`` always holds ``phase`` ("prepare" | "train" | "done"),
    ``epoch``, ``epochs``, ``step``, ``steps_total``, ``loss``, ``crops_per_s``;
    ``epoch_end``/``epoch_loss`` at epoch ends, ``warning`` when something was
    skipped, ``cancelled`` at the end. Cancel takes effect before the next step and
    saves. Repeated non-finite losses raise :class:`AcsegError` after keeping the last
    good checkpoint. A run that fails before writing anything leaves no run folder.
    """
    out = Path(cfg.out_dir)
    payload = files.existing_run(cfg)
    created = not out.exists()
    reads_bank = cfg.model.encoder == "bank"
    cache = Path(cfg.feature_cache) if cfg.feature_cache else None
    try:
        with feature_root(cache) if reads_bank else contextlib.nullcontext() as root:
            return (yield from _train(cfg, payload, cancel, root))
    except BaseException:
        if created and not (out / files.CHECKPOINT_FILE).exists():
            with contextlib.suppress(OSError):  # nothing of value: no empty run folder
                (out / files.LOG_FILE).unlink(missing_ok=True)
                out.rmdir()
        raise


def _train(
    cfg: TrainConfig,
    payload: dict[str, Any] | None,
    cancel: CancelToken | None,
    feature_cache: Path | None = None,
) -> Iterator[Progress]:
    out = Path(cfg.out_dir)
    make_output_folder(out, "run folder")
    ctx = distributed.setup(cfg.device)  # joins torchrun's process group, if any
    ctx.local_batch(cfg.batch)  # the global batch must split evenly over the ranks
    log = RunLog(out / files.LOG_FILE) if ctx.is_main else distributed.NullLog()
    device = ctx.device

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
        run = Run(cfg, model_cfg, steps_per_epoch_for(scan, cfg), 0)
    else:
        model_cfg = config_of(payload)
        if model_cfg.in_channels != scan.bands:
            raise AcsegError(
                f"cannot resume: the model expects {model_cfg.in_channels} band(s), "
                f"the inputs have {scan.bands}"
            )
        state = payload["train_state"]
        run = Run(cfg, model_cfg, state["steps_per_epoch"], 0, step=state["step"])
        run.skipped_steps = state.get("skipped_steps", 0)
        run.head_losses = state.get("head_losses")
    run.steps_total = cfg.steps or cfg.epochs * run.steps_per_epoch
    run.dist = ctx
    stores = None
    if model_cfg.encoder == "bank" and feature_cache is not None:
        recorded = str((payload or {}).get("meta", {}).get(BANK_DIGEST, ""))
        bank = check_bank(model_cfg.bank, recorded, "the run being resumed")  # type: ignore[arg-type]
        run.bank_digest = bank.weights_digest
        stores = []
        for index, path in enumerate(scan.paths):
            job = features_for(bank, path, feature_cache, cancel)
            while True:
                try:
                    progress = next(job)
                except StopIteration as done:
                    stores.append(done.value.folder)
                    break
                yield _prepare(f"feature bank: image {index + 1}/{len(scan.paths)}, "
                               + progress.message)  # fmt: skip

    torch.manual_seed(cfg.seed)
    model = build_model(model_cfg, pretrained=payload is None).to(device)
    optimiser = make_optimiser(model, cfg.lr)
    dtype = amp_dtype(device)
    scaler = torch.amp.GradScaler("cuda") if dtype == torch.float16 else None
    if payload is not None:
        files.restore(payload, model, optimiser, scaler, device, cfg.lr)
        log.write("resume", step=run.step, steps_total=run.steps_total)
    else:
        log.write("start", config=to_dict(replace(cfg, model=model_cfg)), device=str(device))
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True

    model = ctx.wrap(model)  # DDP + synchronised BatchNorm on several ranks, else as is
    dataset = CropDataset(scan, model_cfg.normalisation, cfg.crop, seed=cfg.seed, scale=cfg.scale,
                          bank=stores)  # fmt: skip
    yield from _loop(run, model, optimiser, scaler, dtype, dataset, log, cancel)
    cancelled = bool(cancel is not None and cancel.cancelled and run.step < run.steps_total)
    if run.saved_step != run.step:
        files.save_checkpoint_file(run, model, optimiser, scaler)
    if model_cfg.readout.kind != HEAD and run.step > 0:  # every rank: replicas stay equal
        metrics = {**_metrics(run, run.last_loss, None), "phase": "prepare"}
        yield Progress(run.step, run.steps_total, "fitting the read-out", 0.0, metrics)
        try:
            log.write("readout", step=run.step, **_fit_readout(run, model, dataset, device))
        except AcsegError:
            files.remove_unfinished_model(run)
            raise
    dataset.close()
    model_path = files.save_model_file(run, model, final=not cancelled)
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
    ckpt = out / files.CHECKPOINT_FILE
    return TrainResult(model_path, ckpt, run.step, run.steps_total, cancelled, run.last_loss)


def _loop(
    run: Run,
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    scaler: Any,
    dtype: torch.dtype | None,
    dataset: CropDataset,
    log: Any,
    cancel: CancelToken | None,
) -> Iterator[Progress]:
    cfg = run.cfg
    if run.step >= run.steps_total:
        return
    device = run.dist.device
    batches = iter(crop_loader(dataset, cfg, run.step, run.steps_total, device, run.dist))
    model.train()
    augment = cfg.view_augment
    history: list[float] = []  # this session's losses, for the plateau rule
    rate = StepRate()  # the ETA's rate: a window of recent steps, warm-up left out
    last_tick = time.perf_counter()
    last_save = time.monotonic()
    while run.step < run.steps_total:
        if run.dist.should_stop(cancel):  # any rank's cancel stops all at this step
            break
        batch = next_batch(batches)
        x = batch[0].to(device, non_blocking=True)
        valid = batch[1].to(device, non_blocking=True)
        bank = batch[2].to(device, non_blocking=True) if len(batch) > 2 else None
        optimiser.zero_grad(set_to_none=True)
        loss, per_head = step_loss(
            model, x, valid, cfg.seed, run.step, cfg.displacement, run.model_cfg.heads, dtype,
            entropy_weight=cfg.entropy_weight, augment=augment, bank=bank,
        )  # fmt: skip
        mean_loss = run.dist.average(loss)  # over ranks: every rank skips a bad step alike
        skipped = apply_update(loss, model, optimiser, scaler, mean_loss)
        warning = None
        if skipped is None:
            run.bad_steps = 0
        else:
            warning = f"step {run.step + 1}: {skipped}"
            run.bad_steps += 1
            run.skipped_steps += 1
        run.step += 1
        loss_value = float(mean_loss) if warning is None else None

        now = time.perf_counter()
        elapsed, last_tick = now - last_tick, now
        rate.add(elapsed)
        step_time = rate.seconds_per_step or elapsed
        if loss_value is not None:
            run.last_loss = loss_value
            files.track_heads(run, per_head)
            run.epoch_losses.append(loss_value)
        metrics = _metrics(run, loss_value, cfg.batch / step_time)
        eta = rate.eta(run.steps_total - run.step)
        if warning is not None:
            metrics["warning"] = warning
            log.write("warning", step=run.step, message=warning)
            if run.bad_steps >= MAX_BAD_STEPS:
                _give_up(run, log)
        epoch_end = run.step % run.steps_per_epoch == 0 or run.step == run.steps_total
        if epoch_end:
            epoch_loss = float(np.mean(run.epoch_losses)) if run.epoch_losses else None
            metrics.update(epoch_end=True, epoch_loss=epoch_loss)
            run.epoch_losses = []
        if epoch_end or time.monotonic() - last_save > CHECKPOINT_EVERY_S:
            files.save_checkpoint_file(run, model, optimiser, scaler)
            last_save = time.monotonic()
        if epoch_end or run.step % LOG_EVERY == 0:
            log.write("epoch" if epoch_end else "step", **metrics)
        message = f"epoch {metrics['epoch']}/{metrics['epochs']} · step {run.step}"
        if loss_value is not None:
            message += f" · loss {loss_value:.4f}"
        yield Progress(run.step, run.steps_total, message, eta, metrics)
        if loss_value is not None:
            history.append(loss_value)
        if cfg.plateau_tol and plateau_reached(history, tol=cfg.plateau_tol):
            log.write("plateau", step=run.step, tol=cfg.plateau_tol)
            break


def _give_up(run: Run, log: Any) -> None:
    ckpt = run.out / files.CHECKPOINT_FILE
    kept = f"the last good checkpoint is {ckpt}" if ckpt.exists() else "no checkpoint"
    message = (
        f"training stopped at step {run.step}: the loss was not finite for "
        f"{run.bad_steps} steps in a row; {kept} (try a lower learning rate)"
    )
    log.write("error", step=run.step, message=message)
    raise AcsegError(message)


def _metrics(run: Run, loss: float | None, crops_per_s: float | None) -> dict[str, Any]:
    done_epochs = max(run.step - 1, 0) // run.steps_per_epoch
    epochs = max(1, math.ceil(run.steps_total / run.steps_per_epoch))
    return {
        "phase": "train",
        "epoch": min(done_epochs + 1, epochs),
        "epochs": epochs,
        "step": run.step,
        "steps_total": run.steps_total,
        "loss": loss,
        "crops_per_s": crops_per_s,
    }


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


def _fit_readout(
    run: Run, model: torch.nn.Module, dataset: CropDataset, device: torch.device
) -> dict[str, Any]:
    """Fit the model's read-out on seeded crops of the training images."""
    net = getattr(model, "module", model)
    crops = [dataset[index] for index in range(FIT_CROPS)]
    kind = readout_kind(run.model_cfg.readout.kind)
    summary = kind.fit_after_training(net, crops, seed=run.cfg.seed, device=device)
    net.train()
    return summary


__all__ = ["TrainResult", "steps_per_epoch_for", "train"]
