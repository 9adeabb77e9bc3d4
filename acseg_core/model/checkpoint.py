"""Model files: weights with their ``ModelConfig`` (and, for resuming, training state).

A checkpoint is a ``torch.save`` dict::

    {"format": "acseg-model", "version": 1, "model_config": {...}, "state_dict": {...},
     "train_state": {...} | None, "meta": {...}}

``train_state`` holds what ``--resume`` needs (optimiser, RNG, step counters, the
TrainConfig); ``predict`` needs only the rest. Saves are atomic, and clear the temps a
save killed midway left.
"""

from __future__ import annotations

import hashlib
import io
import pickle
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from acseg_core.device import select_device
from acseg_core.errors import AcsegError, BandMismatch, InputError, missing_reason, os_reason
from acseg_core.io.atomic import atomic_path, remove_stale_temps
from acseg_core.io.files import require_regular_file
from acseg_core.model.config import ModelConfig, from_dict, to_dict
from acseg_core.model.nn.acnet import ACNet, build_model

FORMAT = "acseg-model"
VERSION = 1


@dataclass
class LoadedModel:
    """A network ready for inference, with the config it was built from: what
    :func:`load_model` returns and every prediction, learning and export takes."""

    model: ACNet
    config: ModelConfig
    device: torch.device
    meta: dict[str, Any] = field(default_factory=dict)
    digest: str = ""  # SHA-256 of the model file: what keys cached predictions

    @property
    def input_scale(self) -> float:
        """The resampling factor the model was trained at (``train --scale``), default 1."""
        scale = float(self.meta.get("input_scale", 1.0) or 1.0)
        return scale if scale > 0 else 1.0

    @property
    def bands(self) -> int:
        return int(self.config.in_channels)

    def check_bands(self, path: str | Path, count: int) -> None:
        """Refuse an image of another band count than the model's (one line)."""
        if count != self.bands:
            raise BandMismatch(path, count, self.bands)


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
    # serialised in memory first, so that a full disk is a plain OSError with a reason
    # (torch's own file writer reports it as an opaque RuntimeError)
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    remove_stale_temps(path)  # of a save killed midway (SIGKILL): this one replaces it
    try:
        with atomic_path(path) as tmp:
            tmp.write_bytes(buffer.getbuffer())
    except OSError as exc:
        raise InputError(path, f"cannot write the model file ({os_reason(exc)})") from exc


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and validate a checkpoint dict (on the CPU); the file's SHA-256 is added
    as ``payload["digest"]``.

    Model files are data: they are unpickled with ``weights_only=True``, so a file
    that would run code (or build any object but tensors and plain containers) is
    refused, never executed.
    """
    path = Path(path)
    data = _read_model_bytes(path)
    try:
        payload = torch.load(io.BytesIO(data), map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        raise InputError(
            path, "refused: the file holds code or objects other than weights "
            "(acseg never runs code from a model file)",
        ) from exc
    except Exception as exc:  # torch raises many types for a damaged file
        raise InputError(path, f"not an acseg model file ({type(exc).__name__})") from exc
    if not isinstance(payload, dict) or payload.get("format") != FORMAT:
        raise InputError(path, "not an acseg model file")
    version = payload.get("version", 0)
    if not isinstance(version, int) or version > VERSION:
        raise InputError(path, f"made by a newer acseg (format version {version})")
    for key, kind in (("model_config", dict), ("state_dict", dict)):
        if not isinstance(payload.get(key), kind):
            raise InputError(path, f"damaged model file ({key} missing or not a mapping)")
    for key in ("meta", "train_state"):
        if payload.get(key) is not None and not isinstance(payload[key], dict):
            raise InputError(path, f"damaged model file ({key} is not a mapping)")
    payload["meta"] = payload.get("meta") or {}
    payload["digest"] = hashlib.sha256(data).hexdigest()
    return payload


def _read_model_bytes(path: Path) -> bytes:
    """The file's bytes; OS problems become one line that says which."""
    require_regular_file(path, "model file")  # reading a FIFO would wait forever
    try:
        return path.read_bytes()
    except FileNotFoundError as exc:
        raise InputError(path, missing_reason(path, "model file")) from exc
    except IsADirectoryError as exc:
        raise InputError(path, "is a folder, not a model file") from exc
    except PermissionError as exc:
        raise InputError(path, "permission denied") from exc
    except OSError as exc:
        raise InputError(path, f"cannot read the model file ({os_reason(exc)})") from exc


def config_of(payload: dict[str, Any]) -> ModelConfig:
    return from_dict(ModelConfig, payload["model_config"])


def load_model(path: str | Path, device: str | torch.device = "auto") -> LoadedModel:
    """Rebuild the network from a checkpoint, in eval mode on ``device``."""
    payload = load_checkpoint(path)
    try:
        config = config_of(payload)
    except (AcsegError, KeyError, TypeError, ValueError) as exc:
        raise InputError(path, f"bad model config ({exc})") from exc
    model = build_model(config)
    try:
        model.load_state_dict(payload["state_dict"])
    except (RuntimeError, TypeError, ValueError) as exc:
        raise InputError(path, "weights do not match the stored model config") from exc
    dev = device if isinstance(device, torch.device) else select_device(device)
    model.to(dev).eval()
    return LoadedModel(model, config, dev, payload["meta"], payload["digest"])
