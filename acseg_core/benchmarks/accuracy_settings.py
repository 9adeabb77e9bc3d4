"""The accuracy benchmark's settings and command-line options (one record, shared by
``bench --accuracy`` and ``bench --strokes``)."""

from __future__ import annotations

import argparse
import sys
from dataclasses import dataclass, field
from typing import Any

from acseg_core.device import select_device
from acseg_core.errors import AcsegError
from acseg_core.model.refine import check_window
from acseg_core.presets import CPU_PRESET, default_preset_for

# Benchmark defaults (the shipped configuration; chosen by this benchmark on the
# shared dev images, see docs/accuracy.md). Every one is a command-line option.
DEFAULT_MINUTES = 10.0  # a cap: the budget; the preset's step count ends runs first
DEFAULT_SEEDS = (0, 1, 2)


@dataclass(frozen=True)
class BenchSettings:
    """What every dataset is run with (all command-line options)."""

    seeds: tuple[int, ...] = DEFAULT_SEEDS
    minutes: float | None = DEFAULT_MINUTES  # wall-clock cap per seed (None = no cap)
    steps: int | None = None  # None: the preset's default training length (as `train`)
    preset: str = CPU_PRESET
    device: str = "cpu"
    lr: float | None = None
    crop: int | None = None
    batch: int | None = None
    displacement: int | None = None
    base_width: int | None = None
    heads: int | None = None  # IIC sub-heads (default: the preset's)
    overcluster_factor: int | None = None  # None: the preset's (factor × K)
    scale: float = 1.0
    smooth: int | None = None  # None: the model's read-out window (ModelConfig.smooth)
    keep_runs: str | None = None  # folder to keep the trained models in
    controls_only: bool = False  # the k-means controls only, no AC training
    train_overrides: dict[str, Any] = field(default_factory=dict)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("accuracy (--accuracy)")
    group.add_argument(
        "--accuracy",
        nargs="+",
        metavar="DATASET_SPEC",
        help="AC vs k-means on labelled folders: shared:vaihingen6|vaihingen3|loveda|dubai|"
        "cocostuff15, or name=N,images=DIR,labels=DIR,format=FMT[,merge=M][,keep=C=V][,k=K]"
        "[,sobel=1]",
    )
    group.add_argument(
        "--seeds", type=int, nargs="+", default=list(DEFAULT_SEEDS), metavar="S",
        help="training / k-means seeds (default 0 1 2)",
    )  # fmt: skip
    group.add_argument(
        "--minutes", type=float, default=DEFAULT_MINUTES,
        help=f"wall-clock cap on training per dataset and seed (default {DEFAULT_MINUTES:g}, "
        "the issue's budget; the preset's step count normally ends a run first)",
    )  # fmt: skip
    group.add_argument(
        "--train-steps", type=int,
        help="training steps per seed (default: the preset's, as `acseg-core train`)",
    )  # fmt: skip
    group.add_argument("--train-lr", type=float, help="learning rate (default: the preset's)")
    group.add_argument(
        "--train-crop", type=int, help="training crop in px (default: TrainConfig's)"
    )
    group.add_argument("--train-batch", type=int, help="crops per step (default: TrainConfig's)")
    group.add_argument("--train-displacement", type=int, help="IIC displacement T (default 10)")
    group.add_argument("--train-width", type=int, help="model base width (default: the preset's)")
    group.add_argument(
        "--train-heads", type=int, help="IIC sub-heads, best kept by loss (default: the preset's)"
    )
    group.add_argument(
        "--overcluster-factor", type=int, default=None,
        help="overclustering head = factor × K, 0 = none (default: the preset's, 5)",
    )  # fmt: skip
    group.add_argument("--train-scale", type=float, default=1.0, help="input resampling factor")
    group.add_argument(
        "--train-entropy-weight", type=float,
        help="IIC's entropy weight λ in the MI loss (default: TrainConfig's, 1 = exact −MI)",
    )  # fmt: skip
    group.add_argument(
        "--train-view-jitter", type=float, nargs=4, metavar=("B", "C", "S", "H"),
        help="colour jitter of view 2: brightness, contrast, saturation, hue strengths "
        "(on the dataset's jitter-bands; default: TrainConfig's)",
    )  # fmt: skip
    group.add_argument(
        "--train-view-flip", action="store_true", default=None,
        help="randomly flip view 2, undone on its output before the loss",
    )  # fmt: skip
    group.add_argument(
        "--train-plateau", type=float,
        help="stop training once the loss improves by less than this share per 50 steps",
    )  # fmt: skip
    group.add_argument(
        "--smooth", type=int,
        help="read-out majority-filter window in px, 0 = off (default: the preset's, "
        "ModelConfig.smooth)",
    )  # fmt: skip
    group.add_argument("--keep-runs", metavar="DIR", help="keep the trained models here")
    group.add_argument(
        "--controls-only", action="store_true",
        help="only the k-means controls (on pixel values and on the feature bank, with and "
        "without the filter): no AC training, minutes instead of hours",
    )  # fmt: skip


def settings_from_args(args: argparse.Namespace) -> BenchSettings:
    if args.minutes is not None and not args.minutes > 0:
        raise AcsegError("--minutes must be > 0")
    if args.train_steps is not None and args.train_steps < 1:
        raise AcsegError("--train-steps must be >= 1")
    if not args.seeds:
        raise AcsegError("--seeds needs at least one seed")
    device = select_device(args.device).type
    return BenchSettings(
        seeds=tuple(args.seeds),
        minutes=args.minutes,
        steps=args.train_steps,
        preset=args.preset or default_preset_for(device),
        device=device,
        lr=args.train_lr,
        crop=args.train_crop,
        batch=args.train_batch,
        displacement=args.train_displacement,
        base_width=args.train_width,
        heads=args.train_heads,
        overcluster_factor=args.overcluster_factor,
        scale=args.train_scale,
        smooth=None if args.smooth is None else check_window(args.smooth),
        keep_runs=getattr(args, "keep_runs", None),
        controls_only=bool(getattr(args, "controls_only", False)),
        train_overrides=_train_overrides(args),
    )


def log_to_stderr(line: str) -> None:
    """Bench progress: stderr, so ``--json`` on stdout stays machine-readable."""
    print(line, file=sys.stderr, flush=True)


def _train_overrides(args: argparse.Namespace) -> dict[str, Any]:
    """TrainConfig fields given on the command line (left out: TrainConfig's defaults)."""
    given = {
        "entropy_weight": getattr(args, "train_entropy_weight", None),
        "view_jitter": getattr(args, "train_view_jitter", None),
        "view_flip": getattr(args, "train_view_flip", None),
        "plateau_tol": getattr(args, "train_plateau", None),
    }
    return {name: tuple(v) if isinstance(v, list) else v for name, v in given.items()
            if v is not None}  # fmt: skip


__all__ = [
    "DEFAULT_MINUTES",
    "DEFAULT_SEEDS",
    "BenchSettings",
    "add_arguments",
    "log_to_stderr",
    "settings_from_args",
]
