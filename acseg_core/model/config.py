"""The model's frozen config, and (de)serialisation of config dataclasses.

``ModelConfig`` travels inside every model file beside the weights, so a model file
alone is enough to rebuild the network, normalise new images the way it was trained
and read clusters out the way it was shipped. Presets fill it in
(:mod:`acseg_core.presets`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, fields
from numbers import Integral
from typing import Any, TypeVar

from acseg_core.errors import AcsegError
from acseg_core.io.normalise import Normalisation
from acseg_core.model.readouts import KINDS

T = TypeVar("T")
ENCODERS = ("ac", "lite0")
# Sane bounds for sizes read from a model file (the largest preset, paper-5, has
# base_width 64 and 5 blocks: 2048 features, 53 M parameters; 4096 features ≈ 0.2 G).
MAX_IN_CHANNELS, MAX_BASE_WIDTH, MAX_BLOCKS, MAX_FEATURES = 1024, 1024, 12, 4096
_INTEGER_FIELDS = (
    "in_channels", "clusters", "overclusters", "heads", "blocks", "base_width", "stride",
    "smooth",
)  # fmt: skip




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
    # h: "ac" = AC's own conv stem, learnt from scratch; "lite0" = EfficientNet-Lite0's
    # ImageNet-pretrained first stages (acseg_core.model.nn.pretrained, optional extra)
    encoder: str = "ac"
    encoder_trainable: bool = False  # lite0: fine-tune its convolutions (else frozen)
    # Read-out: majority filter over a smooth×smooth px window of the cluster map
    # (acseg_core.model.refine); 0 = the network's plain argmax. It lives here, beside the
    # weights, so every front-end predicts with the window the model was shipped with.
    smooth: int = 0
    readout: str = "head"  # a kind of acseg_core.model.readouts; the head is always kept
    # the strokes read-out's classes: its id i is classes[i], drawn in class_colours[i]
    classes: tuple[str, ...] = ()
    class_colours: tuple[tuple[int, int, int], ...] = ()
    normalisation: Normalisation | None = None
    preset: str = "custom"

    def __post_init__(self) -> None:
        colours = tuple(tuple(int(v) for v in c) for c in self.class_colours)
        object.__setattr__(self, "class_colours", colours)
        object.__setattr__(self, "classes", tuple(str(c) for c in self.classes))
        problems = [
            f"{name} must be an integer"
            for name, value in ((n, getattr(self, n)) for n in _INTEGER_FIELDS)
            if not isinstance(value, Integral) or isinstance(value, bool)
        ]
        if problems:  # the bounds below compare numbers
            raise AcsegError("invalid model config: " + "; ".join(problems))
        # upper bounds first: a crafted model file must be refused before the network
        # it describes is allocated (channels double per block)
        if self.in_channels > MAX_IN_CHANNELS:
            problems.append(f"in_channels must be at most {MAX_IN_CHANNELS}")
        if self.base_width > MAX_BASE_WIDTH:
            problems.append(f"base_width must be at most {MAX_BASE_WIDTH}")
        if self.blocks > MAX_BLOCKS:
            problems.append(f"blocks must be at most {MAX_BLOCKS}")
        elif self.blocks >= 0 and self.base_width * 2**self.blocks > MAX_FEATURES:
            problems.append(
                f"base_width × 2^blocks (the feature width) must be at most {MAX_FEATURES}"
            )
        if self.in_channels < 1:
            problems.append("in_channels must be >= 1")
        if not 2 <= self.clusters <= 255:
            problems.append("clusters must be between 2 and 255")
        if self.overclusters and not self.clusters < self.overclusters <= 255:
            problems.append("overclusters must be 0 or between clusters+1 and 255")
        if self.blocks < 1:
            problems.append("blocks must be >= 1")
        if self.readout not in KINDS:
            problems.append(f"readout must be one of {', '.join(KINDS)}")
        if self.readout == "strokes" and not 2 <= len(self.classes) <= 254:
            problems.append("a strokes read-out needs 2-254 classes")
        if len(self.class_colours) != len(self.classes):
            problems.append("class_colours needs one colour per class")
        if any(len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in self.class_colours):
            problems.append("class colours must be 3 integers 0-255")
        if not 1 <= self.heads <= 16:
            problems.append("heads must be between 1 and 16")
        if self.smooth < 0 or (self.smooth > 1 and self.smooth % 2 == 0):
            problems.append("smooth must be 0 (off) or an odd number of pixels")
        if self.base_width < 4:
            problems.append("base_width must be >= 4")
        if self.stride not in (2, 4):
            problems.append("stride must be 2 or 4")
        if self.encoder not in ENCODERS:
            problems.append(f"encoder must be one of {', '.join(ENCODERS)}")
        if self.encoder != "ac" and (self.stride != 4 or self.sobel):
            problems.append("a pretrained encoder has stride 4 and no Sobel channels")
        if self.normalisation is not None and self.normalisation.bands != self.in_channels:
            problems.append("normalisation has a different band count than in_channels")
        if problems:
            raise AcsegError("invalid model config: " + "; ".join(problems))


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
    "ModelConfig",
    "Normalisation",
    "from_dict",
    "to_dict",
]
