"""``TrainConfig``: one training run, with the preset's defaults for what is not given.

The one config of training: the Python API builds it, the CLI derives its options and
their help from its fields (:func:`acseg_core.cli.options.add_dataclass_options`), the
app's wizard fills it from its widgets, the bench from its settings.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from acseg_core.errors import AcsegError
from acseg_core.model.config import ModelConfig
from acseg_core.presets import default_preset, preset, training_defaults
from acseg_core.training.augment import ViewAugment

FROM_PRESET: Any = "preset"  # a field left to the model's preset (resolved on creation)
MAX_CROP, MAX_BATCH, MAX_WORKERS = 8192, 4096, 256  # sane bounds for values read from files
_PRESET_FIELDS = ("lr", "crop", "epochs", "steps_per_epoch")


@dataclass(frozen=True)
class TrainConfig:
    """One training run. Paths are strings so the config serialises as JSON.

    ``model`` left unset is the preset for the run's device
    (:func:`acseg_core.presets.default_preset`: ``cpu-small`` on a CPU, ``repro-4`` on a
    GPU), as the CLI and the app choose it. ``lr``, ``crop``, ``epochs`` and
    ``steps_per_epoch`` left unset take the values of ``model.preset``
    (:mod:`acseg_core.presets`), so ``TrainConfig(model=preset(name))`` trains exactly
    as the CLI and the app do. ``steps`` (total optimiser steps)
    overrides ``epochs``. An epoch is ``steps_per_epoch`` steps, or when None as many
    as it takes to draw the training set's area once in crops. ``scale`` is the input
    resampling factor (0.5 = the net sees pixels twice as large); prediction applies
    the same factor (the model file's ``meta["input_scale"]``).
    """

    inputs: tuple[str, ...] = ()
    out_dir: str = "run"
    model: ModelConfig = None  # type: ignore[assignment]  # None: the device's preset
    epochs: int = field(default=FROM_PRESET, metadata={"help": "epochs"})
    steps: int | None = field(
        default=None, metadata={"help": "total steps (instead of epochs)"}
    )  # fmt: skip
    steps_per_epoch: int | None = field(
        default=FROM_PRESET, metadata={"help": "steps per epoch (none: one pass over the "
                                       "data's area)"}
    )  # fmt: skip
    crop: int = field(default=FROM_PRESET, metadata={"help": "crop size in pixels"})
    batch: int = field(default=8, metadata={"help": "crops per step (the global batch)"})
    lr: float = field(default=FROM_PRESET, metadata={"help": "learning rate"})
    displacement: int = field(default=10, metadata={"help": "IIC loss window T (displacements)"})
    device: str = field(default="auto", metadata={"help": "auto | cpu | cuda | mps"})
    seed: int = field(default=0, metadata={"help": "random seed"})
    resume: bool = False
    workers: int = field(
        default=1, metadata={"help": "data-loading processes (0: in the training thread)"}
    )  # fmt: skip
    scale: float = field(
        default=1.0, metadata={"help": "input resampling factor (0.5 = half resolution)"}
    )  # fmt: skip
    small_images: str = field(
        default="pad", metadata={"help": "images smaller than the crop",
                                 "choices": ("pad", "skip")}
    )  # fmt: skip
    # IIC's λ on the marginals' entropy in the MI loss; 1 = exact −MI
    entropy_weight: float = 1.0
    # IIC's view augmentation (acseg_core.training.augment): view 2 colour-jittered
    # (brightness, contrast, saturation, hue) on ``jitter_bands`` (None = all; list
    # only visible bands, never NIR) and randomly flipped, the flip undone before the loss
    view_jitter: tuple[float, float, float, float] = (0.0, 0.0, 0.0, 0.0)
    view_flip: bool = False
    jitter_bands: tuple[int, ...] | None = None
    # label-free stop (acseg_core.training.stopping): end training once the mean loss
    # of the last 50 steps improves on the 50 before by less than this share; 0 = off
    plateau_tol: float = 0.0
    # where a model on the feature bank (encoder "bank") caches each image's bank
    # features (acseg_core.features.cache); None: a temporary folder, removed after
    feature_cache: str | None = None

    @property
    def view_augment(self) -> ViewAugment:
        """The :class:`~acseg_core.training.augment.ViewAugment` these fields describe."""
        return ViewAugment(tuple(self.view_jitter), self.view_flip, self.jitter_bands)

    def __post_init__(self) -> None:
        if self.model is None:
            object.__setattr__(self, "model", preset(default_preset(self.device)))
        defaults = training_defaults(self.model.preset)
        for name in _PRESET_FIELDS:
            if getattr(self, name) == FROM_PRESET:
                object.__setattr__(self, name, defaults[name])
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
        # upper bounds: a crafted checkpoint (--resume) must not allocate terabytes
        if self.crop > MAX_CROP:
            problems.append(f"crop must be at most {MAX_CROP} px")
        if self.batch > MAX_BATCH:
            problems.append(f"batch must be at most {MAX_BATCH}")
        if self.workers > MAX_WORKERS:
            problems.append(f"workers must be at most {MAX_WORKERS}")
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
        if self.model.encoder == "bank" and self.scale != 1.0:
            problems.append("a model on the feature bank trains at scale 1")
        if self.plateau_tol < 0:
            problems.append("plateau_tol must be >= 0")
        if not self.entropy_weight > 0:
            problems.append("entropy_weight must be > 0")
        if len(self.view_jitter) != 4 or any(not 0 <= v < 1 for v in self.view_jitter):
            problems.append("view_jitter must be 4 strengths in [0, 1)")
        if self.jitter_bands is not None and any(b < 0 for b in self.jitter_bands):
            problems.append("jitter_bands must be band indices >= 0")
        if problems:
            raise AcsegError("invalid training config: " + "; ".join(problems))


__all__ = ["FROM_PRESET", "TrainConfig"]
