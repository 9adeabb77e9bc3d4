"""The strokes benchmarks' data: strokes simulated from labels, labels read as class
indices, and the trained model each seed uses (shared by ``bench --strokes`` and its
live-refit figure)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
from scipy import ndimage

from acseg_core.benchmarks.accuracy import train_config, train_for_budget


def simulate_strokes(labels: np.ndarray, per_class: int, radius: int, seed: int) -> np.ndarray:
    """H×W uint8 stroke map: ``per_class`` disks per class inside it (255 elsewhere)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[-radius : radius + 1, -radius : radius + 1]
    disk = yy**2 + xx**2 <= radius**2
    out = np.full(labels.shape, 255, np.uint8)
    for c in np.unique(labels[labels >= 0]):
        inside = ndimage.binary_erosion(labels == c, structure=disk, border_value=0)
        centres = np.flatnonzero(inside)
        if not len(centres):
            continue
        for centre in rng.choice(centres, min(per_class, len(centres)), replace=False):
            r, col = divmod(int(centre), labels.shape[1])
            out[r - radius : r + radius + 1, col - radius : col + radius + 1][disk] = c
    return out


def read_labels(folder: Any, index: int) -> np.ndarray:
    pair = folder.pairs[index]
    return folder.label_format.read(pair.label).astype(np.int64)


def model_for(spec: Any, folder: Any, k: int, seed: int, settings: Any, root: Path,
              log: Any) -> tuple[Path, float]:  # fmt: skip
    """A trained model (reused from ``root`` if there) and its training seconds."""
    run_dir = root / f"{spec.name}-seed{seed}"
    done = run_dir / "model.json"
    if done.is_file():
        record = json.loads(done.read_text())
        return Path(record["model_path"]), float(record["train_s"])
    log(f"{spec.name}: training the model (seed {seed})")
    record = train_for_budget(train_config(spec, folder.images, k, seed, settings, run_dir),
                              settings.minutes, log)  # fmt: skip
    done.write_text(json.dumps(record))
    return Path(record["model_path"]), float(record["train_s"])


__all__ = ["model_for", "read_labels", "simulate_strokes"]
