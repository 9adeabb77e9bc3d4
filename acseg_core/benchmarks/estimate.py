"""Benchmark: the training-time estimate against the real run, per folder.

For each folder it does what the app's wizard does: :func:`estimate_run` on the run
the wizard would start (the preset for the device, its K, crop, batch, epochs and
steps per epoch), then the run itself (:func:`acseg_core.training.loop.train`, to a
temporary folder), and prints the estimated and the real wall time, their ratio and
the 1-minute load average before and after (other processes on the cores change
both figures; the estimate measures the machine as it is when it runs).

Run: ``acseg-core bench --estimate shared:dubai shared:vaihingen3 [--estimate-epochs N]
[--json]`` (``shared:NAME`` under ``$ACSEG_SHARED_DATA``, or ``images=DIR`` specs).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from typing import Any

from acseg_core.benchmarks.datasets import parse_spec
from acseg_core.evaluation import evaluate as ev
from acseg_core.jobs import run_to_end
from acseg_core.presets import preset
from acseg_core.training.config import TrainConfig
from acseg_core.training.estimate import estimate_run
from acseg_core.training.loop import train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("estimate benchmark (--estimate)")
    group.add_argument(
        "--estimate", nargs="+", metavar="DATASET_SPEC",
        help="estimated vs real training wall time per folder (shared:NAME or images=DIR)",
    )  # fmt: skip
    group.add_argument(
        "--estimate-epochs", type=int, default=None, metavar="N",
        help="epochs of each run (default: the preset's, as the wizard)",
    )  # fmt: skip
    group.add_argument(
        "--estimate-steps", type=int, default=None, metavar="N",
        help="steps per epoch (default: the preset's, as the wizard)",
    )  # fmt: skip


def _load() -> float | None:
    try:
        return round(os.getloadavg()[0], 2)
    except (AttributeError, OSError):
        return None


def run(args: argparse.Namespace) -> dict[str, Any]:
    rows: dict[str, Any] = {}
    for text in args.estimate:
        spec = parse_spec(text)
        folder = ev.open_labelled_folder(
            spec.images, spec.labels, spec.label_format, spec.merge, spec.keep, spec.class_column
        )  # the images only (a folder may hold its labels too)
        images = tuple(str(pair.image) for pair in folder.pairs)
        with tempfile.TemporaryDirectory(prefix="acseg-estimate-") as tmp:
            model = preset(args.preset, **({"clusters": spec.k} if spec.k else {}))
            cfg = TrainConfig(
                inputs=images, out_dir=str(os.path.join(tmp, "run")),
                model=model, device=args.device,
                **({"epochs": args.estimate_epochs} if args.estimate_epochs else {}),
                **({"steps_per_epoch": args.estimate_steps} if args.estimate_steps else {}),
            )  # fmt: skip
            load_before = _load()
            tick = time.perf_counter()
            estimate = run_to_end(estimate_run(cfg))
            measuring_s = time.perf_counter() - tick
            predicted = estimate.total_s(cfg.epochs, cfg.steps_per_epoch)
            tick = time.perf_counter()
            run_to_end(train(cfg))
            real = time.perf_counter() - tick
            load_after = _load()
        rows[spec.name] = {
            "estimated_s": round(predicted, 1),
            "real_s": round(real, 1),
            "ratio": round(real / predicted, 3) if predicted else None,
            "error_pct": round(100 * (predicted - real) / real, 1) if real else None,
            "images": len(images),
            "steps": estimate.steps(cfg.epochs, cfg.steps_per_epoch),
            "parts_s": {
                "prepare": round(estimate.prepare_s, 2),
                "startup": round(estimate.startup_s, 2),
                "step": round(estimate.step_s, 3),
                "save": round(estimate.save_s, 3),
                "readout": round(estimate.readout_s, 2),
            },
            "measuring_s": round(measuring_s, 1),
            "device": estimate.device,
            "load_before": load_before,
            "load_after": load_after,
        }
        row = rows[spec.name]
        print(  # as each folder ends: a long bench keeps what it measured
            f"{spec.name}: estimated {row['estimated_s']} s, real {row['real_s']} s "
            f"(error {row['error_pct']} %), load {load_before} → {load_after}",
            file=sys.stderr,
            flush=True,
        )
    return {"preset": args.preset, "folders": rows}
