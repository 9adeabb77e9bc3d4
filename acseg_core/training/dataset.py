"""Training data: folder scan and band statistics.

Two of the three jobs training needs, in order (the third, random crops read
by windows, lives in :mod:`acseg_core.training.crops`):

1. :func:`scan_inputs` turns files/folders into a :class:`DatasetScan` — the usable
   images, the files skipped and why, the ones padded because they are smaller
   than the crop. It refuses (``AcsegError``) when nothing is usable or when band
   counts disagree, because one network has one input width. The app's wizard
   shows the scan before training starts.
2. :func:`measure_normalisation` samples a bounded number of windows (never whole
   rasters) and returns robust 2–98 % per-band statistics, nodata excluded; they go
   into ``ModelConfig.normalisation`` so prediction scales pixels identically.
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from acseg_core.errors import AcsegError, InputError
from acseg_core.io.normalise import Normalisation, normalisation_from_samples
from acseg_core.io.raster import Raster, RasterInfo, list_images, probe
from acseg_core.jobs import CancelToken

if TYPE_CHECKING:

    from acseg_core.training.config import TrainConfig

SMALL_IMAGE_POLICIES = ("pad", "skip")
MIN_SIDE = 16  # px; thinner images hold no whole cell of the model's stride-4 grid to learn
STATS_WINDOWS = 64  # windows sampled over the training set for band statistics
STATS_WINDOW = 256  # their side in pixels (clamped to the image)
STATS_PIXELS_PER_WINDOW = 4096  # valid pixels kept per window (random subset)
BANK_STEP = 4  # px per cell of the bank's grid (= the stride of a model on the bank)


@dataclass(frozen=True)
class DatasetScan:
    """What a folder scan found: usable images, what was left out and why.

    ``images`` are the usable ones (with their :class:`RasterInfo`); ``skipped``
    pairs each unusable file with the reason; ``padded`` are images smaller than
    the crop that will be padded with nodata (excluded from the loss);
    ``warnings`` are the same facts as one-line messages for a log or a dialog.
    """

    images: tuple[RasterInfo, ...]
    skipped: tuple[tuple[Path, str], ...] = ()
    padded: tuple[Path, ...] = ()
    warnings: tuple[str, ...] = ()
    crop: int = 200

    @property
    def bands(self) -> int:
        return self.images[0].count

    @property
    def paths(self) -> tuple[Path, ...]:
        return tuple(info.path for info in self.images)

    @property
    def total_pixels(self) -> int:
        return sum(info.pixels for info in self.images)

    @property
    def nodata(self) -> float | None:
        """The nodata value shared by every image, or None when they differ or lack one."""
        values = {_nodata_key(info.nodata) for info in self.images}
        if len(values) == 1:
            return self.images[0].nodata
        return None

    def summary(self) -> str:
        """One line for a log: counts, bands, total size."""
        megapixels = self.total_pixels / 1e6
        parts = [
            f"{len(self.images)} image(s), {self.bands} band(s), {megapixels:.1f} Mpx",
        ]
        if self.padded:
            parts.append(f"{len(self.padded)} padded")
        if self.skipped:
            parts.append(f"{len(self.skipped)} skipped")
        return ", ".join(parts)


@dataclass(frozen=True)
class Candidate:
    """One image file found among the inputs: what it is, or why it cannot be used."""

    path: Path
    info: RasterInfo | None = None
    problem: str | None = None  # None: usable

    @property
    def usable(self) -> bool:
        return self.problem is None and self.info is not None


def survey_inputs(paths: Iterable[str | Path]) -> tuple[Candidate, ...]:
    """Every image among files/folders, probed: the list a user picks training images
    from (unreadable and too-small files carry their reason). Raises AcsegError when
    no image file is found at all."""
    paths = list(paths)
    files = list_images(paths)
    if not files:
        where = ", ".join(str(p) for p in paths) or "(no inputs given)"
        raise AcsegError(f"no images found in {where}")
    found = []
    for path in files:
        try:
            info = probe(path)
        except InputError as exc:
            found.append(Candidate(path, None, exc.reason))
            continue
        if min(info.width, info.height) < MIN_SIDE:
            reason = f"{info.width}×{info.height}, too small to learn from (under {MIN_SIDE} px)"
            found.append(Candidate(path, info, reason))
            continue
        found.append(Candidate(path, info))
    return tuple(found)


def preferred_selection(candidates: Iterable[Candidate]) -> tuple[list[bool], str | None]:
    """Which candidates to train on by default: the usable ones of the most common band
    count (one model needs one band count), and a note on what was left out (None
    when nothing was)."""
    candidates = list(candidates)
    counts: dict[int, int] = {}
    for c in candidates:
        if c.usable:
            assert c.info is not None
            counts[c.info.count] = counts.get(c.info.count, 0) + 1
    if not counts:
        return [False] * len(candidates), None
    bands = max(counts, key=lambda b: counts[b])  # the first of equals: in listing order
    chosen = [c.usable and c.info is not None and c.info.count == bands for c in candidates]
    others = sum(n for b, n in counts.items() if b != bands)
    note = None
    if others:
        note = (
            f"{others} image(s) with another band count left unticked: one model needs "
            f"one band count (most images here have {bands})"
        )
    return chosen, note


def scan_inputs(paths: Iterable[str | Path], crop: int = 200, small: str = "pad") -> DatasetScan:
    """Expand files/folders and probe every image (see :class:`DatasetScan`).

    ``small`` says what to do with images smaller than ``crop`` on either side:
    ``"pad"`` (train on them, padding with nodata) or ``"skip"``.
    """
    if small not in SMALL_IMAGE_POLICIES:
        raise AcsegError(f"small-image policy must be one of {SMALL_IMAGE_POLICIES}")
    if crop < 8:
        raise AcsegError(f"crop must be at least 8 px (got {crop})")
    paths = list(paths)
    files = list_images(paths)
    if not files:
        where = ", ".join(str(p) for p in paths) or "(no inputs given)"
        raise AcsegError(f"no images found in {where}")
    infos: list[RasterInfo] = []
    skipped: list[tuple[Path, str]] = []
    padded: list[Path] = []
    notes: list[str] = []
    for path in files:
        try:
            info = probe(path)
        except InputError as exc:
            skipped.append((path, exc.reason))
            notes.append(f"skipped {path}: {exc.reason}")
            continue
        if min(info.width, info.height) < MIN_SIDE:
            reason = f"{info.width}×{info.height}, too small to learn from (under {MIN_SIDE} px)"
            skipped.append((path, reason))
            notes.append(f"skipped {path}: {reason}")
            continue
        if info.width < crop or info.height < crop:
            size = f"{info.width}×{info.height}, smaller than the {crop} px crop"
            if small == "skip":
                skipped.append((path, size))
                notes.append(f"skipped {path}: {size}")
                continue
            padded.append(path)
            notes.append(f"padded {path}: {size} (padding is excluded from the loss)")
        infos.append(info)
    if not infos:
        reasons = "; ".join(f"{p.name}: {r}" for p, r in skipped[:5])
        more = f" (+{len(skipped) - 5} more)" if len(skipped) > 5 else ""
        raise AcsegError(
            f"no usable images: all {len(files)} file(s) were skipped ({reasons}{more})"
        )
    _refuse_mixed_band_counts(infos)
    return DatasetScan(
        images=tuple(infos),
        skipped=tuple(skipped),
        padded=tuple(padded),
        warnings=tuple(notes),
        crop=crop,
    )


def steps_per_epoch_for(scan: DatasetScan, cfg: TrainConfig) -> int:
    """Steps that draw the data's area once in crops (or the configured number)."""
    if cfg.steps_per_epoch is not None:
        return cfg.steps_per_epoch
    side = max(1, round(cfg.crop / cfg.scale))
    return max(1, math.ceil(scan.total_pixels / (side * side * cfg.batch)))


def _refuse_mixed_band_counts(infos: list[RasterInfo]) -> None:
    by_count: dict[int, list[Path]] = {}
    for info in infos:
        by_count.setdefault(info.count, []).append(info.path)
    if len(by_count) < 2:
        return
    groups = []
    for count, files in sorted(by_count.items(), key=lambda kv: -len(kv[1])):
        names = ", ".join(f.name for f in files[:5])
        more = f" (+{len(files) - 5} more)" if len(files) > 5 else ""
        groups.append(f"{count} band(s): {names}{more}")
    raise AcsegError(
        "images disagree in band count (one model needs one band count): " + "; ".join(groups)
    )


def _nodata_key(value: float | None) -> Any:
    if value is not None and math.isnan(value):
        return "nan"
    return value


def measure_normalisation(
    scan: DatasetScan,
    *,
    seed: int = 0,
    windows: int = STATS_WINDOWS,
    window: int = STATS_WINDOW,
    cancel: CancelToken | None = None,
) -> Normalisation:
    """Robust per-band statistics from ``windows`` random windows, nodata excluded.

    Windows are spread over the images weighted by area and each contributes at
    most :data:`STATS_PIXELS_PER_WINDOW` pixels, so the cost is bounded however
    large the rasters are.
    """
    rng = np.random.default_rng([seed, 0x5747])
    weights = _area_weights(scan.images)
    picks = np.bincount(
        rng.choice(len(scan.images), size=windows, p=weights), minlength=len(weights)
    )
    samples: list[np.ndarray] = []
    for info, count in zip(scan.images, picks, strict=True):
        if count == 0:
            continue
        if cancel is not None and cancel.cancelled:
            break
        side_w, side_h = min(window, info.width), min(window, info.height)
        with Raster(info.path) as raster:
            for _ in range(count):
                col = int(rng.integers(0, info.width - side_w + 1))
                row = int(rng.integers(0, info.height - side_h + 1))
                data = raster.read((col, row, side_w, side_h))
                values = data[:, raster.valid_mask(data)]
                if values.shape[1] > STATS_PIXELS_PER_WINDOW:
                    keep = rng.choice(values.shape[1], STATS_PIXELS_PER_WINDOW, replace=False)
                    values = values[:, keep]
                samples.append(values)
    if not samples or sum(s.shape[1] for s in samples) == 0:
        raise AcsegError(
            "no valid pixels found in the sampled windows (are the images all nodata?)"
        )
    return normalisation_from_samples(samples, nodata=scan.nodata)


def _area_weights(infos: Iterable[RasterInfo]) -> np.ndarray:
    areas = np.array([info.pixels for info in infos], dtype=np.float64)
    return areas / areas.sum()
