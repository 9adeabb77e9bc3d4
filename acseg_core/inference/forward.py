"""One batch of tiles through the network, the read-out and the majority filter.

Inference runs the network unmasked (``ordering=None``), at the input scale the model
was trained at, in reduced precision where that is fast (:func:`autocast_dtype`), and
reduces each tile's probabilities to ids only over its kept centre.
"""

from __future__ import annotations

import contextlib

import numpy as np
import torch

from acseg_core.device import use_amp
from acseg_core.errors import AcsegError
from acseg_core.inference.stages import StageTimes, measured
from acseg_core.io.tiling import Tile
from acseg_core.model.checkpoint import LoadedModel
from acseg_core.model.readouts.choice import ReadOut
from acseg_core.model.refine import decide

PRECISIONS = ("auto", "fp32", "bf16", "fp16")


class Forward:
    """Runs the network on a batch and reduces the probabilities to ids (thread-safe)."""

    def __init__(
        self,
        loaded: LoadedModel,
        readout: ReadOut,
        with_confidence: bool,
        precision: str,
        stages: StageTimes | None = None,
    ) -> None:
        if not readout.is_resolved:
            raise ValueError("Forward needs a resolved read-out")
        self.model = loaded.model
        self.readout = readout
        self.scale = loaded.input_scale
        self.device = loaded.device
        self.dtype = autocast_dtype(loaded.device, precision)
        self.with_confidence = with_confidence
        self.stages = stages
        self.channels_last = loaded.device.type == "cpu"
        self.model.eval()
        if self.channels_last:  # oneDNN convolutions run NHWC natively (~1.4× here)
            self.model.to(memory_format=torch.channels_last)

    def __call__(
        self, x: np.ndarray, tiles: list[Tile], bank: torch.Tensor | None = None
    ) -> tuple[list[np.ndarray], list[np.ndarray] | None]:
        """Ids (and confidence) of each tile's kept centre; ``bank``: the tiles' feature
        bank on the model's grid (a model that reads one)."""
        batch = torch.from_numpy(x).to(self.device, non_blocking=True)
        if self.channels_last:
            batch = batch.contiguous(memory_format=torch.channels_last)
        if bank is not None:
            bank = bank.to(self.device, non_blocking=True)
        autocast = (
            torch.autocast(self.device.type, dtype=self.dtype)
            if self.dtype is not None
            else contextlib.nullcontext()
        )
        with torch.inference_mode(), autocast:
            probs = self._probabilities(batch, bank)
            with measured(self.stages, "filter"):
                ids, confidence = [], []
                for i, t in enumerate(tiles):  # reduce only the kept centre of each tile
                    best, index = self._centre(probs, i, t)
                    ids.append(index.to(torch.uint8).cpu().numpy())
                    if self.with_confidence:
                        confidence.append(best.float().cpu().numpy())
        return ids, (confidence if self.with_confidence else None)

    def _centre(self, probs: torch.Tensor, i: int, t: Tile) -> tuple[torch.Tensor, torch.Tensor]:
        """(confidence, id) over tile ``i``'s kept centre (the read-out's refinement)."""
        rows, cols = t.crop
        return decide(probs[i], self.readout.smooth, rows, cols)

    def _probabilities(self, batch: torch.Tensor, bank: torch.Tensor | None) -> torch.Tensor:
        """Probabilities at the tile's size, resampling as in training.

        Training reads crops at ``scale`` (GDAL average resampling); here the tile
        is averaged the same way (``area``), run, and the probabilities are
        upsampled back to source pixels.
        """
        kind = self.readout.kind
        if self.scale == 1.0:
            return self._network_and_readout(batch, kind, bank)
        size = batch.shape[-2:]
        small = (max(1, round(size[0] * self.scale)), max(1, round(size[1] * self.scale)))
        mode = "area" if self.scale < 1 else "bilinear"
        resampled = torch.nn.functional.interpolate(batch, size=small, mode=mode)
        probs = self._network_and_readout(resampled, kind, bank)
        return torch.nn.functional.interpolate(
            probs, size=size, mode="bilinear", align_corners=False
        )

    def _network_and_readout(
        self, batch: torch.Tensor, kind: str, bank: torch.Tensor | None
    ) -> torch.Tensor:
        with measured(self.stages, "network"):
            features = self.model.forward_features(batch, bank=bank)
        if bank is not None and bank.shape[-2:] != features.shape[-2:]:  # input scale ≠ 1
            bank = torch.nn.functional.interpolate(
                bank.float(), size=features.shape[-2:], mode="bilinear", align_corners=False
            )
        with measured(self.stages, "read-out"):
            return self.model.read_out(features, batch, kind, bank=bank)


def autocast_dtype(device: torch.device, precision: str = "auto") -> torch.dtype | None:
    """The reduced precision to run inference in, or None for float32.

    ``auto``: float16 AMP on CUDA; bfloat16 on CPUs with native bf16 (AVX512-BF16 /
    AMX); float32 elsewhere (emulated bf16 would be slower). Reduced precision can
    flip the id of pixels where two clusters are nearly tied; tiling stays seamless
    either way. ``fp32`` forces float32.
    """
    if precision not in PRECISIONS:
        raise AcsegError(f"unknown precision {precision!r} (choose from {', '.join(PRECISIONS)})")
    if precision == "fp32":
        return None
    if precision == "bf16":
        return torch.bfloat16
    if precision == "fp16" or (precision == "auto" and use_amp(device)):
        return torch.float16
    if device.type == "cpu" and _cpu_has_native_bf16():
        return torch.bfloat16
    return None


def _cpu_has_native_bf16() -> bool:
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):
        return False


def cpu_workers(device: torch.device) -> int:
    """Concurrent forward passes: one per intra-op thread on the CPU, else one.

    Several single-threaded passes beat one multi-threaded pass on a few cores: no
    barrier after every operator, so small ops do not wait for a descheduled thread.
    GPUs parallelise inside the pass: one worker.
    """
    return max(1, torch.get_num_threads()) if device.type == "cpu" else 1


__all__ = ["PRECISIONS", "Forward", "autocast_dtype", "cpu_workers"]
