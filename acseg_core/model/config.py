"""Frozen configuration dataclasses shared by the GUI and the CLI.

``ModelConfig`` travels inside every checkpoint beside the weights, so a model
file alone is enough to rebuild the network and normalise new images the same
way it was trained. ``TrainConfig`` describes one training run.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields, replace
from typing import Any, TypeVar

from acseg_core.errors import AcsegError

T = TypeVar("T")


@dataclass(frozen=True)
class Normalisation:
    """Per-band linear stretch: ``(x - low) / (high - low)``, then centred.

    ``low``/``high`` are robust (2–98 %) percentiles measured on the training
    images; prediction reuses them so both see identically scaled inputs.
    """

    low: tuple[float, ...]
    high: tuple[float, ...]
    nodata: float | None = None

    @property
    def bands(self) -> int:
        return len(self.low)


# ModelConfig.readout: "head" = the network's K-way head (plain AC); "kmeans" = k-means
# on [learned features, pixel values] fitted after training (acseg_core.model.readouts.kmeans).
READOUTS = ("head", "kmeans")


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of an AC network (DESIGN.md §1–2). Presets fill it in."""

    in_channels: int = 3
    clusters: int = 5
    overclusters: int = 0  # 0 = no auxiliary overclustering head
    # IIC's sub-heads: this many K-way heads train side by side on one trunk; the
    # one with the lowest loss is kept when the model file is written (heads = 1
    # there), which makes a bad start of one head cost nothing.
    heads: int = 1
    blocks: int = 3
    base_width: int = 32
    attention: bool = False
    stride: int = 4  # stem output stride relative to the input: 2 or 4
    sobel: bool = False  # append 2 Sobel channels (IIC does this for photos)
    # Read-out: majority filter over a smooth×smooth px window of the cluster map
    # (acseg_core.model.refine); 0 = the network's plain argmax. It lives here, beside the
    # weights, so every front-end predicts with the window the model was shipped with.
    smooth: int = 0
    readout: str = "head"  # see READOUTS; the head is always trained and kept
    normalisation: Normalisation | None = None
    preset: str = "custom"

    def __post_init__(self) -> None:
        problems = []
        if self.in_channels < 1:
            problems.append("in_channels must be >= 1")
        if not 2 <= self.clusters <= 255:
            problems.append("clusters must be between 2 and 255")
        if self.overclusters and not self.clusters < self.overclusters <= 255:
            problems.append("overclusters must be 0 or between clusters+1 and 255")
        if self.blocks < 1:
            problems.append("blocks must be >= 1")
        if self.readout not in READOUTS:
            problems.append(f"readout must be one of {', '.join(READOUTS)}")
        if not 1 <= self.heads <= 16:
            problems.append("heads must be between 1 and 16")
        if self.smooth < 0 or (self.smooth > 1 and self.smooth % 2 == 0):
            problems.append("smooth must be 0 (off) or an odd number of pixels")
        if self.base_width < 4:
            problems.append("base_width must be >= 4")
        if self.stride not in (2, 4):
            problems.append("stride must be 2 or 4")
        if self.normalisation is not None and self.normalisation.bands != self.in_channels:
            problems.append("normalisation has a different band count than in_channels")
        if problems:
            raise AcsegError("invalid model config: " + "; ".join(problems))


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Paths are strings so the config serialises as JSON.

    ``steps`` (total optimiser steps) overrides ``epochs`` when set. An epoch is
    ``steps_per_epoch`` steps, or when None as many as it takes to draw the
    training set's area once in crops (at least 1). ``scale`` is the input
    resampling factor (0.5 = the net sees pixels twice as large, the IIC/AC
    treatment of 5 cm Potsdam); prediction must apply the same factor — it is
    stored in the model file's ``meta["input_scale"]``. ``lr`` 4e-5 is DESIGN's
    default for long GPU runs; short CPU runs learn faster with ~5e-4 (see
    ``acseg_core.training.loop.DEFAULT_LR``).
    """

    inputs: tuple[str, ...] = ()
    out_dir: str = "run"
    model: ModelConfig = field(default_factory=ModelConfig)
    epochs: int = 10
    steps: int | None = None  # total steps; overrides epochs when set
    steps_per_epoch: int | None = None  # None: one pass over the data's area
    crop: int = 200
    batch: int = 8
    lr: float = 4e-5
    displacement: int = 10
    device: str = "auto"
    seed: int = 0
    resume: bool = False
    workers: int = 1  # data-loading processes; 0 loads in the training thread
    scale: float = 1.0  # input resampling factor
    small_images: str = "pad"  # images smaller than the crop: "pad" or "skip"

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 1:
            problems.append("epochs must be >= 1")
        if self.steps is not None and self.steps < 1:
            problems.append("steps must be >= 1")
        if self.steps_per_epoch is not None and self.steps_per_epoch < 1:
            problems.append("steps_per_epoch must be >= 1")
        if self.crop < 8:
            problems.append("crop must be >= 8 px")
        if self.batch < 1:
            problems.append("batch must be >= 1")
        if not self.lr > 0:
            problems.append("lr must be > 0")
        if self.displacement < 0:
            problems.append("displacement must be >= 0")
        if self.workers < 0:
            problems.append("workers must be >= 0")
        if not self.scale > 0:
            problems.append("scale must be > 0")
        if self.small_images not in ("pad", "skip"):
            problems.append("small_images must be 'pad' or 'skip'")
        if problems:
            raise AcsegError("invalid training config: " + "; ".join(problems))


# name -> (description, ModelConfig keyword arguments). Benchmarks that tune the
# defaults (issue 9) name themselves in a comment beside the values they chose.
PRESETS: dict[str, tuple[str, dict[str, Any]]] = {
    "cpu-small": (
        "a laptop CPU, minutes",
        # Chosen by `acseg-core bench --accuracy` (issue 9, docs/accuracy.md) at equal
        # steps: width 16 beat width 32 on Vaihingen-6 (52.5 vs 42.1 %, 300 steps,
        # seed 0) at a seventh of the time per step; the k-means read-out on
        # features + pixel values (`readout`) and a 25 px majority filter (`smooth`)
        # gave the best mean over the five dev sets (head alone: `--readout head`).
        dict(blocks=3, base_width=16, attention=False, stride=4, readout="kmeans", smooth=25),
    ),
    "repro-4": (
        "one consumer GPU (public reproduction: 4 blocks, 13.3 M params)",
        dict(blocks=4, base_width=64, attention=False, stride=4),
    ),
    "paper-5": (
        "a large GPU (the paper: 5 blocks with attention, 53 M params)",
        dict(blocks=5, base_width=64, attention=True, stride=4),
    ),
}


# TrainConfig fields a front-end should use with a preset when the user sets none.
# Empty = TrainConfig's own defaults (crop 200, data-sized epochs); the lr lives in
# train.DEFAULT_LR. cpu-small: `acseg-core bench --accuracy` (issue 9) — 128 px crops,
# and a fixed 300 steps (10 epochs × 30): on Vaihingen-6, 150 / 300 / 600 steps gave
# AC + filter 54.2 / 58.1 / 52.1 % (3 seeds; IIC's balanced clusters drift from
# these imbalanced classes the longer it trains), ~1 min here.
PRESET_TRAINING: dict[str, dict[str, Any]] = {
    "cpu-small": {"crop": 128, "epochs": 10, "steps_per_epoch": 30},
    "repro-4": {},
    "paper-5": {},
}

# The overclustering head's size as a multiple of K (IIC: "makes a large
# difference"). `acseg-core bench --accuracy` on Vaihingen-6 (issue 9): without the
# head 46.8 %, with 5×K 56.9 % (seed 0, 1.5 min CPU, docs/accuracy.md).
OVERCLUSTER_FACTOR = 5


def overclusters_for(clusters: int, factor: int = OVERCLUSTER_FACTOR) -> int:
    """Default overclustering head size for ``clusters`` (0 when ``factor`` is 0)."""
    if factor <= 0:
        return 0
    return min(255, max(clusters + 1, factor * clusters))


def preset(name: str, **overrides: Any) -> ModelConfig:
    """The named preset as a ModelConfig, with any field overridden."""
    if name not in PRESETS:
        raise AcsegError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    unknown = set(overrides) - {f.name for f in fields(ModelConfig)}
    if unknown:
        raise AcsegError(f"unknown model option(s): {', '.join(sorted(unknown))}")
    kwargs = {**PRESETS[name][1], "preset": name, **overrides}
    return ModelConfig(**kwargs)


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of any config dataclass (tuples become lists)."""
    return dataclasses.asdict(config)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a config dataclass from :func:`to_dict` output, refusing unknown keys."""
    if not isinstance(data, dict):
        raise AcsegError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - set(known)
    if unknown:
        raise AcsegError(f"{cls.__name__}: unknown key(s) {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if name == "normalisation" and isinstance(value, dict):
            value = Normalisation(
                low=tuple(value["low"]), high=tuple(value["high"]), nodata=value.get("nodata")
            )
        elif name == "model" and isinstance(value, dict):
            value = from_dict(ModelConfig, value)
        elif isinstance(value, list):
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except TypeError as exc:
        raise AcsegError(f"{cls.__name__}: {exc}") from exc


__all__ = [
    "OVERCLUSTER_FACTOR",
    "PRESETS",
    "PRESET_TRAINING",
    "READOUTS",
    "ModelConfig",
    "Normalisation",
    "TrainConfig",
    "from_dict",
    "overclusters_for",
    "preset",
    "replace",
    "to_dict",
]
