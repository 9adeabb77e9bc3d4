"""The state of a training run and the files it lives in.

Files in the run folder (``TrainConfig.out_dir``):

* ``checkpoint.pt``: weights + ``ModelConfig`` + ``train_state`` (optimiser, RNG, step,
  the TrainConfig), written atomically at every epoch end and on cancel, for resume;
* ``model.pt``: what ``predict`` needs (one sub-head, the fitted read-out), written
  once the run ends (finished or cancelled) and its read-out is fitted, so a model
  file is never one that training did not complete;
* ``train.jsonl``: the run log (:mod:`acseg_core.training.run_log`).
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import torch

from acseg_core.errors import AcsegError, InputError
from acseg_core.features.for_model import BANK_DIGEST
from acseg_core.model.checkpoint import load_checkpoint, save_checkpoint
from acseg_core.model.config import ModelConfig, from_dict, to_dict
from acseg_core.training import distributed
from acseg_core.training.config import TrainConfig
from acseg_core.version import __version__

MODEL_FILE = "model.pt"
CHECKPOINT_FILE = "checkpoint.pt"
LOG_FILE = "train.jsonl"
HEAD_EMA = 0.95  # smoothing of the per-sub-head losses (~ the last 20 steps)


@dataclass
class Run:
    """Mutable state of one run (what ``train_state`` saves)."""

    cfg: TrainConfig
    model_cfg: ModelConfig
    steps_per_epoch: int
    steps_total: int
    step: int = 0  # completed optimiser steps
    bad_steps: int = 0  # consecutive non-finite steps
    skipped_steps: int = 0
    epoch_losses: list[float] = field(default_factory=list)
    last_loss: float | None = None
    head_losses: list[float] | None = None  # running mean loss per sub-head (selection)
    saved_step: int = -1  # the step of the last checkpoint written
    bank_digest: str = ""  # the feature bank's weights (a model on the bank)
    dist: distributed.Context = field(default_factory=distributed.Context)  # ranks (DDP)

    @property
    def out(self) -> Path:
        return Path(self.cfg.out_dir)


def resume_config(out_dir: str | Path, **overrides: Any) -> TrainConfig:
    """The stored TrainConfig of a run, with ``overrides`` applied and ``resume`` on."""
    path = Path(out_dir) / CHECKPOINT_FILE
    state = load_checkpoint(path).get("train_state") or {}
    if "train_config" not in state:
        raise InputError(path, "holds no training state to resume")
    try:
        stored = from_dict(TrainConfig, state["train_config"])
    except (AcsegError, KeyError, TypeError, ValueError) as exc:
        raise InputError(path, f"bad training state ({exc})") from exc
    return replace(stored, out_dir=str(out_dir), resume=True, **overrides)


def existing_run(cfg: TrainConfig) -> dict[str, Any] | None:
    """The checkpoint to resume from, or None for a fresh run (never clobber one)."""
    ckpt_path = Path(cfg.out_dir) / CHECKPOINT_FILE
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


def meta_of(run: Run, final: bool) -> dict[str, Any]:
    bank = {BANK_DIGEST: run.bank_digest} if run.bank_digest else {}
    return {
        **bank,
        "acseg_version": __version__,
        "step": run.step,
        "steps_total": run.steps_total,
        "final": final,
        "loss": run.last_loss,
        "input_scale": run.cfg.scale,
        "crop": run.cfg.crop,
        "train_config": to_dict(replace(run.cfg, model=run.model_cfg)),
    }


def save_checkpoint_file(
    run: Run, model: torch.nn.Module, optimiser: torch.optim.Optimizer, scaler: Any
) -> None:
    """The resumable checkpoint (atomic; rank 0 only)."""
    run.saved_step = run.step
    if not run.dist.is_main:
        return
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
    save_checkpoint(
        run.out / CHECKPOINT_FILE,
        model,
        run.model_cfg,
        train_state=train_state,
        meta=meta_of(run, final=False),
    )


def save_model_file(run: Run, model: torch.nn.Module, final: bool) -> Path:
    """``model.pt`` with the lowest-loss sub-head only (atomic; rank 0 only)."""
    path = run.out / MODEL_FILE
    if run.dist.is_main:
        best = best_head(run.head_losses)
        meta = {**meta_of(run, final), "head": best, "head_losses": run.head_losses}
        config, state = keep_head(getattr(model, "module", model), run.model_cfg, best)
        save_checkpoint(path, model, config, meta=meta, state=state)
    return path


def remove_unfinished_model(run: Run) -> None:
    """A run that failed after training must not leave a model that looks usable."""
    if run.dist.is_main:
        with contextlib.suppress(OSError):
            (run.out / MODEL_FILE).unlink()


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


def track_heads(run: Run, per_head: torch.Tensor) -> None:
    """Running mean (EMA) of each sub-head's loss over the recent steps."""
    values = [float(v) for v in per_head.detach().float().cpu()]
    if run.head_losses is None or len(run.head_losses) != len(values):
        run.head_losses = values
        return
    run.head_losses = [
        HEAD_EMA * old + (1 - HEAD_EMA) * new
        for old, new in zip(run.head_losses, values, strict=True)
    ]


def restore(
    payload: dict[str, Any],
    model: torch.nn.Module,
    optimiser: torch.optim.Optimizer,
    scaler: Any,
    device: torch.device,
    lr: float,
) -> None:
    """Weights, optimiser, scaler and RNG of a checkpoint; the lr may be lowered."""
    state = payload["train_state"]
    model.load_state_dict(payload["state_dict"])
    optimiser.load_state_dict(state["optimiser"])
    for group in optimiser.param_groups:
        group["lr"] = lr
    if scaler is not None and state.get("scaler"):
        scaler.load_state_dict(state["scaler"])
    torch.set_rng_state(state["torch_rng"])
    if state.get("cuda_rng") is not None and device.type == "cuda":
        with contextlib.suppress(RuntimeError):
            torch.cuda.set_rng_state_all(state["cuda_rng"])


__all__ = [
    "CHECKPOINT_FILE",
    "LOG_FILE",
    "MODEL_FILE",
    "Run",
    "best_head",
    "existing_run",
    "keep_head",
    "remove_unfinished_model",
    "restore",
    "resume_config",
    "save_checkpoint_file",
    "save_model_file",
    "track_heads",
]
