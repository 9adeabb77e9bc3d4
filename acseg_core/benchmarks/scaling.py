"""Benchmark: scaling out to several processes (prediction) and gloo ranks (training).

Two figures, each with 1 and with 2 processes on the same machine:

* **Folder prediction** — images/s over a folder of synthetic 4-band GeoTIFFs
  (:func:`acseg_core.batch_predict.predict_collection`, ``nproc`` 1 vs 2). The
  whole job is timed, worker start-up (spawn, import, model load) included.
* **Training** — crops/s of :func:`acseg_core.train.train` in one process vs two
  gloo ranks (DDP, same global batch), timed on rank 0 from the first step's end
  to the last's (start-up and data scan excluded).

Scaling efficiency = (rate with 2) / (2 × rate with 1). On a machine with C cores
both configurations share the same C cores (each of 2 processes gets C/2
threads), so this measures what distribution costs or gains at a fixed core
count, not added hardware; on several GPUs each process brings its own device.
The 1-minute load average is printed beside the figures: other processes on the
cores depress them.

Run: ``acseg-core bench --scaling [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scaling benchmark (--scaling)")
    group.add_argument(
        "--scaling",
        action="store_true",
        help="images/s (prediction) and crops/s (training) with 1 vs 2 processes",
    )
    group.add_argument(
        "--scaling-images", type=int, default=8, metavar="N", help="images to predict (8)"
    )
    group.add_argument(
        "--scaling-size", type=int, default=512, metavar="PX", help="image side (512)"
    )
    group.add_argument(
        "--scaling-steps", type=int, default=8, metavar="N", help="training steps (8)"
    )
    group.add_argument("--scaling-batch", type=int, default=4, metavar="B", help="global batch (4)")
    group.add_argument("--scaling-crop", type=int, default=128, metavar="PX", help="crop (128)")


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    from acseg_core.benchmarks.predict import write_synthetic

    load_before = _load()
    with tempfile.TemporaryDirectory(prefix="acseg-scaling-") as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for i in range(args.scaling_images):
            write_synthetic(folder / f"tile_{i:03d}.tif", args.scaling_size, seed=i)
        model = Path(tmp) / "model.pt"
        _random_model(model, args.preset)
        predict = {n: _predict_rate(model, folder, Path(tmp) / f"out{n}", n, args) for n in (1, 2)}
        train = {n: _train_rate(folder, Path(tmp) / f"run{n}", n, args) for n in (1, 2)}
    pixels = args.scaling_size**2
    return {
        "predict_images_per_s": {n: round(r, 3) for n, r in predict.items()},
        "predict_mpix_per_s": {n: round(r * pixels / 1e6, 3) for n, r in predict.items()},
        "predict_scaling_efficiency": round(predict[2] / (2 * predict[1]), 3),
        "train_crops_per_s": {n: round(r, 3) for n, r in train.items()},
        "train_scaling_efficiency": round(train[2] / (2 * train[1]), 3),
        "images": args.scaling_images,
        "image_side": args.scaling_size,
        "train_steps": args.scaling_steps,
        "train_global_batch": args.scaling_batch,
        "train_crop": args.scaling_crop,
        "preset": args.preset,
        "cores": os.cpu_count(),
        "load_average_1min": {"before": load_before, "after": _load()},
    }


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _random_model(path: Path, preset_name: str) -> None:
    import torch

    from acseg_core.checkpoint import save_checkpoint
    from acseg_core.config import Normalisation, preset
    from acseg_core.nn import build_model

    torch.manual_seed(0)
    norm = Normalisation(low=(0.0,) * 4, high=(255.0,) * 4)
    config = preset(preset_name, in_channels=4, clusters=6, normalisation=norm)
    save_checkpoint(path, build_model(config), config)


def _predict_rate(model: Path, folder: Path, out: Path, nproc: int, args: Any) -> float:
    from acseg_core.batch_predict import PredictOptions, iter_sources, predict_collection

    print(f"predicting {args.scaling_images} images with {nproc} process(es) ...", file=sys.stderr)
    options = PredictOptions(device=args.device)
    started = time.perf_counter()
    job = predict_collection(model, iter_sources([folder]), out, options=options, nproc=nproc)
    summary = _drain(job)
    seconds = time.perf_counter() - started
    if summary.failed:
        from acseg_core.errors import AcsegError

        raise AcsegError(f"scaling benchmark: {summary.failed} prediction(s) failed")
    return summary.ok / seconds


def _train_rate(folder: Path, out: Path, nproc: int, args: Any) -> float:
    from acseg_core.config import TrainConfig, preset

    print(f"training {args.scaling_steps} steps with {nproc} process(es) ...", file=sys.stderr)
    cfg = TrainConfig(
        inputs=(str(folder),),
        out_dir=str(out),
        model=preset(args.preset),
        steps=args.scaling_steps,
        crop=args.scaling_crop,
        batch=args.scaling_batch,
        lr=1e-3,
        displacement=4,
        device=args.device,
        workers=0,
    )
    report = out.parent / f"train_rate_{nproc}.json"
    if nproc == 1:
        _train_and_report((cfg, report))
    else:
        from acseg_core.distributed import launch
        from acseg_core.errors import AcsegError

        if launch(_train_and_report, (cfg, report), nproc) != 0:
            raise AcsegError("scaling benchmark: distributed training failed")
    return float(json.loads(report.read_text())["crops_per_s"])


def _train_and_report(job: tuple[Any, Path]) -> int:
    """Train; rank 0 writes crops/s between the first and the last step."""
    from acseg_core.distributed import is_main_process
    from acseg_core.train import train

    cfg, report = job
    ticks: list[tuple[int, float]] = []
    for progress in train(cfg):
        if progress.metrics.get("phase") == "train":
            ticks.append((progress.metrics["step"], time.perf_counter()))
    # the last step also writes the final checkpoint: leave it out when there are enough
    span = ticks[:-1] if len(ticks) >= 3 else ticks
    if is_main_process() and len(span) >= 2:
        (first_step, first_time), (last_step, last_time) = span[0], span[-1]
        rate = (last_step - first_step) * cfg.batch / (last_time - first_time)
        report.write_text(json.dumps({"crops_per_s": rate}))
    return 0


def _drain(job: Any) -> Any:
    while True:
        try:
            next(job)
        except StopIteration as stop:
            return stop.value
