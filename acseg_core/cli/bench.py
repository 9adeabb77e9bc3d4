"""`acseg-core bench`: speed and accuracy benchmarks that print figures.

Modes (one per run):
- default: training throughput of our AC implementation vs a plain reference
  formulation, plus achieved GFLOP/s vs a large matmul (``benchmarks/speed.py``)
- ``--predict-size N [N ...]``: tiled prediction speed and peak memory
  (``benchmarks/predict.py``)
- ``--accuracy DATASET_SPEC ...``: AC vs k-means on labelled folders
  (``benchmarks/accuracy.py``)
- ``--strokes DATASET_SPEC ...``: a few simulated strokes per class: an ilastik-style
  forest vs the unsupervised default vs the strokes read-out (``benchmarks/strokes.py``)
- ``--estimate DATASET_SPEC ...``: the wizard's training-time estimate vs the real
  run's wall time, per folder (``benchmarks/estimate.py``)
- ``--scaling``: images/s (folder prediction) and crops/s (training) with 1 vs 2
  processes / gloo ranks, and the scaling efficiency (``benchmarks/scaling.py``)

Each benchmark module provides ``add_arguments(parser)`` and ``run(args) -> dict``;
this verb prints the dict as JSON with ``--json`` or as ``key: value`` lines.
"""

from __future__ import annotations

import argparse
import importlib
import json
from typing import Any

from acseg_core.presets import PRESETS, default_preset

MODES = ("speed", "predict", "accuracy", "strokes", "estimate", "scaling")


def register(sub: Any) -> None:
    parser = sub.add_parser("bench", help="measure training/prediction speed and accuracy")
    parser.add_argument("--json", action="store_true", help="print figures as JSON")
    parser.add_argument(
        "--preset", choices=tuple(PRESETS),
        help="model preset (default: by device, as train: cpu-small on a CPU, repro-4 on a GPU)",
    )  # fmt: skip
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda (default auto)")
    for mode in MODES:
        _module(mode).add_arguments(parser)
    parser.set_defaults(handler=run)


def _module(mode: str) -> Any:
    return importlib.import_module(f"acseg_core.benchmarks.{mode}")


def run(args: argparse.Namespace) -> int:
    args.preset = args.preset or default_preset(args.device)  # as train picks it
    if getattr(args, "predict_size", None):
        mode = "predict"
    elif getattr(args, "accuracy", None):
        mode = "accuracy"
    elif getattr(args, "strokes", None):
        mode = "strokes"
    elif getattr(args, "estimate", None):
        mode = "estimate"
    elif getattr(args, "scaling", False):
        mode = "scaling"
    else:
        mode = "speed"
    result = _module(mode).run(args)
    if result is None:
        return 2
    if args.json:
        print(json.dumps(result, indent=2))
    else:
        for key, value in result.items():
            print(f"{key}: {value}")
    return 0
