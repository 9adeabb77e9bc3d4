"""Model files: weights with their ``ModelConfig`` (and, for resuming, training state).

A checkpoint is a ``torch.save`` dict::

    {"format": "acseg-model", "version": 1, "model_config": {...}, "state_dict": {...},
     "train_state": {...} | None, "meta": {...}}

``train_state`` holds what ``--resume`` needs (optimiser, RNG, step counters, the
TrainConfig); ``predict`` needs only the rest. Saves are atomic.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from acseg_core.io.atomic import atomic_path
from acseg_core.model.config import ModelConfig, from_dict, to_dict
from acseg_core.errors import AcsegError, InputError

FORMAT = "acseg-model"
VERSION = 1


@dataclass
class LoadedModel:
    """A network ready for inference, with the config it was built from."""

    model: torch.nn.Module
    config: ModelConfig
    device: torch.device
    meta: dict[str, Any] = field(default_factory=dict)


def save_checkpoint(
    path: str | Path,
    model: torch.nn.Module,
    config: ModelConfig,
    *,
    train_state: dict[str, Any] | None = None,
    meta: dict[str, Any] | None = None,
    state: dict[str, torch.Tensor] | None = None,
) -> None:
    """Write weights + config (+ training state) atomically. ``state`` replaces the
    model's own weights (a model file keeps one sub-head, ``train.keep_head``)."""
    if state is None:
        module = getattr(model, "module", model)  # unwrap DistributedDataParallel
        state = {k: v.detach().cpu() for k, v in module.state_dict().items()}
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "model_config": to_dict(config),
        "state_dict": state,
        "train_state": train_state,
        "meta": meta or {},
    }
    with atomic_path(path) as tmp:
        torch.save(payload, tmp)


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and validate a checkpoint dict (on the CPU)."""
    path = Path(path)
    if not path.is_file():
        raise InputError(path, "model file not found")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=False)
    except Exception as exc:  # torch raises many types for a bad file
        raise InputError(path, f"not an acseg model file ({type(exc).__name__})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(path, "not an acseg model file")
    if payload.get("version", 0) > VERSION:
        raise InputError(path, f"made by a newer acseg (format version {payload['version']})")
    return payload


def config_of(payload: dict[str, Any]) -> ModelConfig:
    return from_dict(ModelConfig, payload["model_config"])


def load_model(path: str | Path, device: str | torch.device = "auto") -> LoadedModel:
    """Rebuild the network from a checkpoint, in eval mode on ``device``."""
    from acseg_core.device import select_device
    from acseg_core.model.nn import build_model

    payload = load_checkpoint(path)
    try:
        config = config_of(payload)
    except AcsegError as exc:
        raise InputError(path, f"bad model config ({exc})") from exc
    model = build_model(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except RuntimeError as exc:
        raise InputError(path, "weights do not match the stored model config") from exc
    dev = device if isinstance(device, torch.device) else select_device(device)
    model.to(dev).eval()
    return LoadedModel(model=model, config=config, device=dev, meta=payload.get("meta", {}))
