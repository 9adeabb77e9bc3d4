"""The model's frozen config, and (de)serialisation of config dataclasses.

``ModelConfig`` travels inside every model file beside the weights, so a model file
alone is enough to rebuild the network, normalise new images the way it was trained
and read clusters out the way it was shipped (its :class:`ReadOut`). Presets fill it
in (:mod:`acseg_core.presets`).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field, fields
from numbers import Integral
from typing import Any, TypeVar

from acseg_core.errors import AcsegError
from acseg_core.io.normalise import Normalisation
from acseg_core.model.bankconfig import BankConfig
from acseg_core.model.readouts.choice import PLAIN_HEAD, ReadOut
from acseg_core.model.readouts.registry import READOUTS

T = TypeVar("T")
ENCODERS = ("ac", "lite0", "bank")
# Sane bounds for sizes read from a model file (the largest preset, paper-5, has
# base_width 64 and 5 blocks: 2048 features, 53 M parameters; 4096 features ≈ 0.2 G).
MAX_IN_CHANNELS, MAX_BASE_WIDTH, MAX_BLOCKS, MAX_FEATURES = 1024, 1024, 12, 4096
_INTEGER_FIELDS = (
    "in_channels", "clusters", "overclusters", "heads", "blocks", "base_width", "stride",
)  # fmt: skip


@dataclass(frozen=True)
class ModelConfig:
    """Architecture of an AC network and how it reads clusters out (docs/architecture.md,
    "The method"). Presets fill it in."""

    in_channels: int = 3
    clusters: int = field(default=5, metadata={"help": "clusters K"})
    overclusters: int = field(
        default=0, metadata={"help": "overclustering head size (presets: 5×K; 0 = none)"}
    )  # fmt: skip
    # IIC's sub-heads: this many K-way heads train side by side on one trunk; the
    # one with the lowest loss is kept when the model file is written (heads = 1
    # there), which makes a bad start of one head cost nothing.
    heads: int = field(
        default=1, metadata={"help": "IIC sub-heads trained side by side; the lowest-loss "
                             "one is kept"}
    )  # fmt: skip
    blocks: int = 3
    base_width: int = 32
    attention: bool = False
    stride: int = 4  # stem output stride relative to the input: 2 or 4
    sobel: bool = False  # append 2 Sobel channels (IIC does this for photos)
    # h: "ac" = AC's own conv stem, learnt from scratch; "lite0" = EfficientNet-Lite0's
    # ImageNet-pretrained first stages (acseg_core.model.nn.pretrained, optional extra);
    # "bank" = the frozen feature bank (``bank``) projected, plus AC's own stem
    # (acseg_core.model.nn.bankstem)
    encoder: str = "ac"
    encoder_trainable: bool = False  # lite0: fine-tune its convolutions (else frozen)
    # The read-out the model applies by itself: its kind (acseg_core.model.readouts; the
    # head is always kept beside it) and the majority-filter window (acseg_core.model.refine;
    # 0 = plain argmax). It lives beside the weights, so every front-end predicts alike.
    readout: ReadOut = PLAIN_HEAD
    # a read-out that emits classes: its id i is classes[i], drawn in class_colours[i]
    classes: tuple[str, ...] = ()
    class_colours: tuple[tuple[int, int, int], ...] = ()
    normalisation: Normalisation | None = None
    # the pretrained feature bank the network or its read-out reads (None: none);
    # the model file's meta["bank_digest"] records its weights (acseg_core.features)
    bank: BankConfig | None = None
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
        if not isinstance(self.readout, ReadOut) or not self.readout.is_resolved:
            problems.append("readout must name a kind and a window")
        elif READOUTS[self.readout.kind].emits_classes and not 2 <= len(self.classes) <= 254:
            problems.append("a read-out that emits classes needs 2-254 classes")
        if len(self.class_colours) != len(self.classes):
            problems.append("class_colours needs one colour per class")
        if any(len(c) != 3 or not all(0 <= v <= 255 for v in c) for c in self.class_colours):
            problems.append("class colours must be 3 integers 0-255")
        if not 1 <= self.heads <= 16:
            problems.append("heads must be between 1 and 16")
        if self.base_width < 4:
            problems.append("base_width must be >= 4")
        if self.stride not in (2, 4):
            problems.append("stride must be 2 or 4")
        if self.encoder not in ENCODERS:
            problems.append(f"encoder must be one of {', '.join(ENCODERS)}")
        if self.encoder == "lite0" and (self.stride != 4 or self.sobel):
            problems.append("a pretrained encoder has stride 4 and no Sobel channels")
        if self.encoder == "bank" and (self.bank is None or self.stride != 4):
            problems.append("a stem on the feature bank needs a bank and stride 4")
        if self.normalisation is not None and self.normalisation.bands != self.in_channels:
            problems.append("normalisation has a different band count than in_channels")
        if problems:
            raise AcsegError("invalid model config: " + "; ".join(problems))


def field_default(cls: type, name: str) -> Any:
    """The default of field ``name`` of a config dataclass (what a front-end shows first)."""
    for f in fields(cls):
        if f.name == name:
            if f.default is not dataclasses.MISSING:
                return f.default
            if f.default_factory is not dataclasses.MISSING:
                return f.default_factory()
    raise KeyError(f"{cls.__name__} has no field {name!r} with a default")


def to_dict(config: Any) -> dict[str, Any]:
    """A JSON-ready dict of any config dataclass (tuples become lists)."""
    return dataclasses.asdict(config)


def from_dict(cls: type[T], data: dict[str, Any]) -> T:
    """Rebuild a config dataclass from :func:`to_dict` output, refusing unknown keys."""
    if not isinstance(data, dict):
        raise AcsegError(f"{cls.__name__}: expected a mapping, got {type(data).__name__}")
    if cls is ModelConfig:
        data = _upgrade_model_config(data)
    known = {f.name: f for f in fields(cls)}  # type: ignore[arg-type]
    unknown = set(data) - set(known)
    if unknown:
        raise AcsegError(f"{cls.__name__}: unknown key(s) {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = {}
    for name, value in data.items():
        if name == "readout" and isinstance(value, dict):
            value = ReadOut(value.get("kind"), value.get("smooth"))
        elif name == "bank" and isinstance(value, dict):
            value = from_dict(BankConfig, value)
        elif name == "normalisation" and isinstance(value, dict):
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


def _upgrade_model_config(data: dict[str, Any]) -> dict[str, Any]:
    """Model files before the ReadOut field stored ``readout`` (a kind name) and
    ``smooth`` side by side: read them as one ReadOut."""
    if "smooth" not in data and not isinstance(data.get("readout"), str):
        return data
    data = dict(data)
    smooth = data.pop("smooth", 0)
    data["readout"] = {"kind": data.get("readout", PLAIN_HEAD.kind), "smooth": smooth}
    return data


__all__ = [
    "ModelConfig",
    "Normalisation",
    "field_default",
    "from_dict",
    "to_dict",
]
