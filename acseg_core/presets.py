"""Presets: one record per preset holds every default it implies, model and training.

The Python API (``TrainConfig(model=preset("cpu-small"))``), the CLI, the app's wizard
and the benchmarks all read these records and nothing else, so a run with no options
is the same run whichever front-end starts it. Why each value was chosen is in
docs/accuracy.md (section "Method and the shipped defaults").
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from types import MappingProxyType
from typing import Any

from acseg_core.device import select_device
from acseg_core.errors import AcsegError
from acseg_core.model.bankconfig import BankConfig
from acseg_core.model.config import ModelConfig
from acseg_core.model.readouts.choice import ReadOut

# TrainConfig's values for a model that names no known preset ("custom")
GENERIC_TRAINING: MappingProxyType[str, Any] = MappingProxyType(
    {"lr": 4e-5, "crop": 200, "epochs": 10, "steps_per_epoch": None}
)


@dataclass(frozen=True)
class Preset:
    """Everything a preset implies. ``overcluster_factor`` sizes IIC's overclustering
    head as factor × K (0 = none) unless the caller gives ``overclusters``."""

    name: str
    description: str
    model: MappingProxyType[str, Any]  # ModelConfig fields
    training: MappingProxyType[str, Any]  # TrainConfig fields (see GENERIC_TRAINING)
    overcluster_factor: int = 5


def _preset(name: str, description: str, model: dict[str, Any], **training: Any) -> Preset:
    training_record = MappingProxyType({**GENERIC_TRAINING, **training})
    return Preset(name, description, MappingProxyType(model), training_record)


# cpu-small's network and training; the pretrained presets change only the encoder
CPU_SMALL_MODEL: dict[str, Any] = dict(
    blocks=3, base_width=16, attention=False, stride=4, readout=ReadOut("kmeans", 25)
)
CPU_SMALL_TRAINING: dict[str, Any] = dict(lr=1e-4, crop=128, epochs=10, steps_per_epoch=30)

PRESETS: dict[str, Preset] = {
    p.name: p
    for p in (
        # docs/accuracy.md, "Method and the shipped defaults": width, crop, lr, steps,
        # read-out, filter
        _preset(
            "cpu-small",
            "a laptop CPU, minutes",
            CPU_SMALL_MODEL,
            **CPU_SMALL_TRAINING,
        ),
        _preset(
            "pretrained-lite0",
            "a laptop CPU, minutes; ImageNet-pretrained EfficientNet-Lite0 stem",
            {**CPU_SMALL_MODEL, "encoder": "lite0"},
            **CPU_SMALL_TRAINING,
        ),
        # docs/accuracy.md, round 15: AC on the frozen feature bank (Lite0, strides
        # 4-32, projected to AC's width) beside AC's own stem; otherwise cpu-small
        _preset(
            "bank-small",
            "a laptop CPU, minutes; AC on the frozen pretrained feature bank",
            {**CPU_SMALL_MODEL, "encoder": "bank", "bank": BankConfig()},
            **CPU_SMALL_TRAINING,
        ),
        _preset(
            "repro-4",
            "one consumer GPU (public reproduction: 4 blocks, 13.3 M params)",
            dict(blocks=4, base_width=64, attention=False, stride=4),
        ),
        _preset(
            "paper-5",
            "a large GPU (the paper: 5 blocks with attention, 53 M params)",
            dict(blocks=5, base_width=64, attention=True, stride=4),
        ),
    )
}

CPU_PRESET, GPU_PRESET = "cpu-small", "repro-4"


def get_preset(name: str) -> Preset:
    if name not in PRESETS:
        raise AcsegError(f"unknown preset {name!r} (choose from {', '.join(PRESETS)})")
    return PRESETS[name]


def default_preset_for(device_type: str) -> str:
    """The preset for a device type: ``cpu-small`` on the CPU, ``repro-4`` on a GPU."""
    return CPU_PRESET if device_type == "cpu" else GPU_PRESET


def default_preset(device: str = "auto") -> str:
    """The preset every front-end (Python API, CLI, app, bench) uses when the user names
    none: by the device the run will use (``auto`` = the best one here)."""
    return default_preset_for(select_device(device).type)


def overclusters_for(clusters: int, factor: int) -> int:
    """Overclustering head size for K clusters: factor × K (0 when ``factor`` is 0)."""
    if factor <= 0:
        return 0
    return min(255, max(clusters + 1, factor * clusters))


def preset(name: str, **overrides: Any) -> ModelConfig:
    """The named preset as a ModelConfig, any field overridden. The overclustering head
    follows K (``clusters``) unless ``overclusters`` is given; a ``readout`` with
    ``None`` fields keeps the preset's values for them."""
    record = get_preset(name)
    unknown = set(overrides) - {f.name for f in fields(ModelConfig)}
    if unknown:
        raise AcsegError(f"unknown model option(s): {', '.join(sorted(unknown))}")
    kwargs: dict[str, Any] = {**record.model, "preset": name, **overrides}
    own = record.model.get("readout", ModelConfig.readout)
    if isinstance(overrides.get("readout"), ReadOut):
        kwargs["readout"] = overrides["readout"].over(own)
    if "overclusters" not in overrides:
        clusters = int(kwargs.get("clusters", ModelConfig.clusters))
        kwargs["overclusters"] = overclusters_for(clusters, record.overcluster_factor)
    return ModelConfig(**kwargs)


def training_defaults(preset_name: str) -> MappingProxyType[str, Any]:
    """TrainConfig values of ``preset_name`` (the generic ones for "custom")."""
    found = PRESETS.get(preset_name)
    return found.training if found is not None else GENERIC_TRAINING


__all__ = [
    "CPU_PRESET",
    "GENERIC_TRAINING",
    "GPU_PRESET",
    "PRESETS",
    "Preset",
    "default_preset",
    "default_preset_for",
    "get_preset",
    "overclusters_for",
    "preset",
    "training_defaults",
]
