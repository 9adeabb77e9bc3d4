"""Bank features of one image on disk: one array per stride, read by windows.

A store is a folder holding ``meta.json`` (what made it: bank, weights digest, the
image's content digest, size) and ``s{stride}.npy`` per level (channels × rows ×
columns at that stride, float16 by default), memory-mapped, so a window of a 12000²
image's features costs the window. A store is built in a hidden temporary folder and
renamed into place when complete, so a store under its final name is whole; a killed
build leaves a temporary folder that :func:`remove_stale` cleans.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from acseg_core.errors import InputError, os_reason

FORMAT, VERSION = "acseg-features", 1
META = "meta.json"
TEMP_PREFIX = ".building-"


@dataclass(frozen=True)
class StoreMeta:
    """What a store holds and what made it (a store is reused only when all match)."""

    bank: str  # the bank's key (encoder, strides, bands, input scaling)
    weights: str  # SHA-256 of the encoder's weights file
    image: str  # content digest of the image
    width: int
    height: int
    strides: tuple[int, ...]
    channels: tuple[int, ...]
    dtype: str = "float16"

    def shape(self, level: int) -> tuple[int, int, int]:
        stride = self.strides[level]
        return (self.channels[level], -(-self.height // stride), -(-self.width // stride))


class FeatureStore:
    """An open store: the level maps as (read-only or writable) memory maps."""

    def __init__(self, folder: Path, meta: StoreMeta, mode: str = "r") -> None:
        self.folder, self.meta = folder, meta
        self.maps = [
            np.load(folder / f"s{stride}.npy", mmap_mode=mode)  # type: ignore[arg-type]
            for stride in meta.strides
        ]

    def window(self, level: int, rows: slice, cols: slice) -> np.ndarray:
        """Channels × rows × cols of a level, as float32 (a copy)."""
        return np.array(self.maps[level][:, rows, cols], dtype=np.float32)

    @classmethod
    def open(cls, folder: Path) -> FeatureStore:
        """A complete store (InputError when it is not one or is damaged)."""
        try:
            raw = json.loads((folder / META).read_text())
            if raw.pop("format", None) != FORMAT or raw.pop("version", None) != VERSION:
                raise ValueError("another format")
            meta = StoreMeta(**{**raw, "strides": tuple(raw["strides"]),
                                "channels": tuple(raw["channels"])})  # fmt: skip
            store = cls(folder, meta)
            for level, array in enumerate(store.maps):
                if array.shape != meta.shape(level) or str(array.dtype) != meta.dtype:
                    raise ValueError(f"level {level} has shape {array.shape}")
            return store
        except (OSError, ValueError, TypeError, KeyError) as exc:
            raise InputError(folder, f"not a usable feature store ({exc})") from exc


@contextlib.contextmanager
def building(target: Path, meta: StoreMeta) -> Iterator[FeatureStore]:
    """A writable store in a temporary folder beside ``target``, renamed to ``target``
    when the block ends without error (removed otherwise)."""
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=TEMP_PREFIX + target.name + ".", dir=target.parent))
    try:
        for level, stride in enumerate(meta.strides):
            np.lib.format.open_memmap(
                temp / f"s{stride}.npy", mode="w+", dtype=meta.dtype, shape=meta.shape(level)
            ).flush()
        store = FeatureStore(temp, meta, mode="r+")
        yield store
        for array in store.maps:
            array.flush()
        del store
        record = {"format": FORMAT, "version": VERSION, **asdict(meta)}
        (temp / META).write_text(json.dumps(record))
        if target.exists():  # another process finished the same store first
            shutil.rmtree(temp, ignore_errors=True)
            return
        os.replace(temp, target)
    except OSError as exc:
        shutil.rmtree(temp, ignore_errors=True)
        raise InputError(target, f"cannot write the feature store ({os_reason(exc)})") from exc
    except BaseException:
        shutil.rmtree(temp, ignore_errors=True)
        raise


def remove_stale(target: Path) -> int:
    """Remove what a killed build of ``target`` left beside it; how many folders."""
    removed = 0
    if target.parent.is_dir():
        for stale in target.parent.glob(f"{TEMP_PREFIX}{target.name}.*"):
            shutil.rmtree(stale, ignore_errors=True)
            removed += 1
    return removed


__all__ = ["FeatureStore", "StoreMeta", "building", "remove_stale"]
