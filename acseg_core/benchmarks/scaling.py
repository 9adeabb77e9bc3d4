"""Benchmark: scaling out to several processes (prediction) and gloo ranks (training).

Three configurations on the same machine of C cores, each measured for both jobs:
one process with all C cores; one process with C/2 threads; two processes (or
gloo ranks) with C/2 threads each.

* **Folder prediction** — images/s over a folder of synthetic 4-band GeoTIFFs
  (:func:`acseg_core.inference.collection.predict_collection`), for the whole job (worker
  start-up: spawn, import, model load, included) and from the first finished
  image to the last (steady state).
* **Training** — crops/s of :func:`acseg_core.training.loop.train`, one process vs two
  gloo ranks (DDP, same global batch), timed on rank 0 between step ends (start-up,
  data scan and the final checkpoint excluded).

Scaling efficiency = rate(2 processes) / (2 × rate(1 process with C/2 threads)):
each process keeps the same share of the machine, the usual definition. Beside
it, "1 process, all cores" is the practical alternative on a machine this size.
On GPUs each process brings its own device instead. The 1-minute load average is
printed with the figures: other processes on the cores depress them.

Run: ``acseg-core bench --scaling [--json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from acseg_core.benchmarks.predict import write_synthetic
from acseg_core.device import usable_cores
from acseg_core.inference.collection import PredictOptions, predict_collection
from acseg_core.inference.sources import iter_sources
from acseg_core.io.normalise import Normalisation
from acseg_core.model.checkpoint import save_checkpoint
from acseg_core.model.nn import build_model
from acseg_core.presets import preset
from acseg_core.training.config import TrainConfig
from acseg_core.training.distributed import is_main_process
from acseg_core.training.loop import train


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scaling benchmark (--scaling)")
    group.add_argument(
        "--scaling",
        action="store_true",
        help="images/s (prediction) and crops/s (training) with 1 vs 2 processes",
    )
    group.add_argument(
        "--scaling-images", type=int, default=16, metavar="N", help="images to predict (16)"
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
    cores = usable_cores()
    share = max(1, cores // 2)  # what each of 2 processes gets
    load_before = _load()
    configs = {  # name -> (processes, torch threads in the single process)
        "1 process, all cores": (1, cores),
        f"1 process, {share} thread(s)": (1, share),
        f"2 processes, {share} thread(s) each": (2, None),
    }
    predict: dict[str, dict[str, float]] = {}
    train: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="acseg-scaling-") as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for i in range(args.scaling_images):
            write_synthetic(folder / f"tile_{i:03d}.tif", args.scaling_size, seed=i)
        model = Path(tmp) / "model.pt"
        _random_model(model, args.preset)
        for number, (name, (nproc, threads)) in enumerate(configs.items()):
            with _torch_threads(threads):
                out = Path(tmp) / f"out{number}"
                predict[name] = _predict_rates(model, folder, out, nproc, name, args)
                train[name] = _train_rate(folder, Path(tmp) / f"run{number}", nproc, name, args)
    one, two = list(configs)[1:]
    pixels = args.scaling_size**2
    return {
        "predict_images_per_s": {k: round(v["whole_job"], 3) for k, v in predict.items()},
        "predict_images_per_s_after_startup": {
            k: round(v["after_startup"], 3) for k, v in predict.items()
        },
        "predict_mpix_per_s_after_startup": {
            k: round(v["after_startup"] * pixels / 1e6, 3) for k, v in predict.items()
        },
        "predict_scaling_efficiency": round(
            predict[two]["after_startup"] / (2 * predict[one]["after_startup"]), 3
        ),
        "predict_scaling_efficiency_whole_job": round(
            predict[two]["whole_job"] / (2 * predict[one]["whole_job"]), 3
        ),
        "train_crops_per_s": {k: round(v, 3) for k, v in train.items()},
        "train_scaling_efficiency": round(train[two] / (2 * train[one]), 3),
        "efficiency_definition": f"rate({two}) / (2 x rate({one}))",
        "images": args.scaling_images,
        "image_side": args.scaling_size,
        "train_steps": args.scaling_steps,
        "train_global_batch": args.scaling_batch,
        "train_crop": args.scaling_crop,
        "preset": args.preset,
        "cores": cores,
        "load_average_1min": {"before": load_before, "after": _load()},
    }


@contextlib.contextmanager
def _torch_threads(count: int | None) -> Iterator[None]:
    import torch

    before = torch.get_num_threads()
    if count is not None:
        torch.set_num_threads(count)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def _load() -> float | None:
    return round(os.getloadavg()[0], 2) if hasattr(os, "getloadavg") else None


def _random_model(path: Path, preset_name: str) -> None:
    import torch

    torch.manual_seed(0)
    norm = Normalisation(low=(0.0,) * 4, high=(255.0,) * 4)
    config = preset(preset_name, in_channels=4, clusters=6, normalisation=norm)
    save_checkpoint(path, build_model(config), config)


def _predict_rates(
    model: Path, folder: Path, out: Path, nproc: int, name: str, args: Any
) -> dict[str, float]:
    """Images/s for the whole job, and from the first finished image to the last."""
    print(f"predicting {args.scaling_images} images: {name} ...", file=sys.stderr)
    options = PredictOptions(device=args.device)
    started = time.perf_counter()
    finished: list[float] = []
    job = predict_collection(model, iter_sources([folder]), out, options=options, nproc=nproc)
    for progress in job:
        if progress.metrics["status"] != "ok":
            from acseg_core.errors import AcsegError

            raise AcsegError(f"scaling benchmark: {progress.metrics['error']}")
        finished.append(time.perf_counter())
    whole = len(finished) / (finished[-1] - started)
    steady = (len(finished) - 1) / (finished[-1] - finished[0]) if len(finished) > 1 else whole
    return {"whole_job": whole, "after_startup": steady}


def _train_rate(folder: Path, out: Path, nproc: int, name: str, args: Any) -> float:
    print(f"training {args.scaling_steps} steps: {name} ...", file=sys.stderr)
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
    report = out.parent / f"{out.name}_rate.json"
    if nproc == 1:
        _train_and_report((cfg, report))
    else:
        from acseg_core.errors import AcsegError
        from acseg_core.training.distributed import launch

        if launch(_train_and_report, (cfg, report), nproc) != 0:
            raise AcsegError("scaling benchmark: distributed training failed")
    return float(json.loads(report.read_text())["crops_per_s"])


def _train_and_report(job: tuple[Any, Path]) -> int:
    """Train; rank 0 writes crops/s between the first and the last step."""
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
