"""Benchmark: scaling out prediction (Dask) and training (gloo ranks) on this machine.

**Prediction** — files/s over a folder of synthetic 4-band GeoTIFFs
(:func:`acseg_core.inference.collection.predict_collection`) on four engines:

* one process with all C cores, and one process with C/2 threads;
* ``--scheduler local:2``: a Dask ``LocalCluster`` of 2 worker processes (C/2 threads
  each), which is also what ``--nproc 2`` runs;
* an external 2-worker cluster started with ``dask scheduler`` and ``dask worker
  --nworkers 2 --nthreads 1`` (separate processes, another working folder), reached
  by its ``tcp://`` address.

Each is timed for the whole job, and from the end of its start-up
(``Summary.startup_s``: the model load in one process; the cluster's start and each
worker's model load for Dask) to the last file; the start-up and the shut-down (a
``LocalCluster`` stopping its workers) are reported apart, and so is the external
cluster's own launch (``dask worker`` started → 2 workers registered). Every
engine's outputs, and the union of the ``--shard 0/3 1/3 2/3`` runs, are compared
byte for byte with the first run's.

**Training** — crops/s of :func:`acseg_core.training.loop.train`, one process (all
cores; C/2 threads) vs two gloo ranks (DDP, same global batch), timed on rank 0
between step ends (start-up, data scan and the final checkpoint excluded).

Scaling efficiency = rate(2 processes) / (2 × rate(1 process with C/2 threads)): each
process keeps the same share of the machine, the usual definition. The 1-minute load
average is printed with the figures: other processes on the cores depress them.

Run: ``acseg-core bench --scaling [--json]``.
"""

from __future__ import annotations

import argparse
import contextlib
import filecmp
import json
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from acseg_core.benchmarks.predict import write_synthetic
from acseg_core.device import usable_cores
from acseg_core.errors import AcsegError
from acseg_core.inference.collection import PredictOptions, predict_collection
from acseg_core.inference.shards import Shard, select_shard
from acseg_core.inference.sources import iter_sources
from acseg_core.io.normalise import Normalisation
from acseg_core.model.checkpoint import save_checkpoint
from acseg_core.model.nn import build_model
from acseg_core.presets import preset
from acseg_core.training.config import TrainConfig
from acseg_core.training.distributed import is_main_process
from acseg_core.training.loop import train

EXTERNAL = "external cluster, 2 workers"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("scaling benchmark (--scaling)")
    group.add_argument(
        "--scaling",
        action="store_true",
        help="files/s (prediction: 1 process, local:2, an external 2-worker Dask "
        "cluster) and crops/s (training: 1 process vs 2 ranks)",
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
    group.add_argument(
        "--scaling-no-train", action="store_true", help="prediction only (skip training)"
    )


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    cores = usable_cores()
    share = max(1, cores // 2)  # what each of 2 processes gets
    load_before = _load()
    one_all, one_share = "1 process, all cores", f"1 process, {share} thread(s)"
    two = f"2 processes, {share} thread(s) each"
    predict: dict[str, dict[str, Any]] = {}
    train: dict[str, float] = {}
    with tempfile.TemporaryDirectory(prefix="acseg-scaling-") as tmp:
        folder = Path(tmp) / "images"
        folder.mkdir()
        for i in range(args.scaling_images):
            write_synthetic(folder / f"tile_{i:03d}.tif", args.scaling_size, seed=i)
        model = Path(tmp) / "model.pt"
        _random_model(model, args.preset)
        runs = {one_all: (cores, None), one_share: (share, None), "local:2": (None, "local:2")}
        for number, (name, (threads, scheduler)) in enumerate(runs.items()):
            with _torch_threads(threads):
                out = Path(tmp) / f"out{number}"
                predict[name] = _predict_rates(model, folder, out, scheduler, name, args)
        with external_cluster(2, Path(tmp) / "cluster") as (address, launch_s):
            predict[EXTERNAL] = _predict_rates(model, folder, Path(tmp) / "out_ext", address,
                                               EXTERNAL, args)  # fmt: skip
            predict[EXTERNAL]["worker_launch_s"] = launch_s
        reference = Path(tmp) / "out0"
        for number, name in enumerate(predict):
            out = Path(tmp) / ("out_ext" if name == EXTERNAL else f"out{number}")
            predict[name]["identical_to_first"] = same_files(out, reference)
        shards_identical = _shards_identical(model, folder, Path(tmp) / "out_shards", reference,
                                             args)  # fmt: skip
        if not args.scaling_no_train:
            trains = {one_all: (1, cores), one_share: (1, share), two: (2, None)}
            for number, (name, (nproc, threads)) in enumerate(trains.items()):
                with _torch_threads(threads):
                    run_dir = Path(tmp) / f"run{number}"
                    train[name] = _train_rate(folder, run_dir, nproc, name, args)
    result: dict[str, Any] = {
        "predict_files_per_s_whole_job": {k: v["whole_job"] for k, v in predict.items()},
        "predict_files_per_s_after_startup": {k: v["after_startup"] for k, v in predict.items()},
        "predict_startup_s": {k: v["startup_s"] for k, v in predict.items()},
        "predict_shutdown_s": {k: v["shutdown_s"] for k, v in predict.items()},
        "predict_external_worker_launch_s": predict[EXTERNAL]["worker_launch_s"],
        "predict_mpix_per_s_after_startup": {
            k: round(v["after_startup"] * args.scaling_size**2 / 1e6, 3) for k, v in predict.items()
        },
        "predict_scaling_efficiency": {
            k: round(predict[k]["after_startup"] / (2 * predict[one_share]["after_startup"]), 3)
            for k in ("local:2", EXTERNAL)
        },
        "predict_identical_to_1_process": {
            **{k: v["identical_to_first"] for k, v in predict.items()},
            "union of --shard 0/3 1/3 2/3": shards_identical,
        },
    }
    if train:
        result["train_crops_per_s"] = {k: round(v, 3) for k, v in train.items()}
        result["train_scaling_efficiency"] = round(train[two] / (2 * train[one_share]), 3)
    result.update({
        "efficiency_definition": f"rate(2 processes) / (2 x rate({one_share}))",
        "images": args.scaling_images,
        "image_side": args.scaling_size,
        "train_steps": args.scaling_steps,
        "train_global_batch": args.scaling_batch,
        "train_crop": args.scaling_crop,
        "preset": args.preset,
        "cores": cores,
        "load_average_1min": {"before": load_before, "after": _load()},
    })  # fmt: skip
    return result


@contextlib.contextmanager
def external_cluster(workers: int, folder: Path) -> Iterator[tuple[str, float]]:
    """A Dask cluster in separate processes, as an operator starts one: ``dask
    scheduler`` and ``dask worker --nworkers N --nthreads 1``, run from another
    folder. Yields its address and the seconds from launching the workers to all N
    registered; stops both on exit."""
    from acseg_core.inference.cluster import distributed_module

    dd = distributed_module()
    folder.mkdir(parents=True, exist_ok=True)
    scheduler_file = folder / "scheduler.json"
    dask = [sys.executable, "-m", "dask"]
    quiet = {"stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL, "cwd": folder}
    processes = [subprocess.Popen(
        [*dask, "scheduler", "--host", "127.0.0.1", "--port", "0", "--no-dashboard",
         "--scheduler-file", str(scheduler_file)], **quiet,
    )]  # fmt: skip
    client = None
    try:
        deadline = time.monotonic() + 120
        while not scheduler_file.is_file() or not scheduler_file.stat().st_size:
            if time.monotonic() > deadline or processes[0].poll() is not None:
                raise AcsegError("dask scheduler did not start")
            time.sleep(0.1)
        address = json.loads(scheduler_file.read_text())["address"]
        client = dd.Client(address, set_as_default=False, timeout=60)
        started = time.perf_counter()
        processes.append(subprocess.Popen(
            [*dask, "worker", address, "--nworkers", str(workers), "--nthreads", "1",
             "--no-dashboard", "--local-directory", str(folder)], **quiet,
        ))  # fmt: skip
        client.wait_for_workers(workers, timeout=300)
        launch_s = time.perf_counter() - started
        client.close()
        client = None
        yield address, launch_s
    finally:
        if client is not None:
            client.close()
        for process in reversed(processes):  # workers first, then the scheduler
            process.terminate()
        for process in reversed(processes):
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()


def same_files(out: Path, reference: Path) -> bool:
    """Same file names (hidden temp files included) and byte-identical contents."""
    names = sorted(p.name for p in reference.iterdir())
    if sorted(p.name for p in out.iterdir()) != names:
        return False
    return all(filecmp.cmp(out / n, reference / n, shallow=False) for n in names)


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
    model: Path, folder: Path, out: Path, scheduler: str | None, name: str, args: Any
) -> dict[str, Any]:
    """Files/s for the whole job (start-up and shut-down included) and from the end
    of the start-up to the last file; the start-up and shut-down in seconds."""
    print(f"predicting {args.scaling_images} images: {name} ...", file=sys.stderr)
    options = PredictOptions(device=args.device)
    started = time.perf_counter()
    job = predict_collection(
        model, iter_sources([folder]), out, options=options, scheduler=scheduler
    )
    finished: list[float] = []
    summary = _drain(job, finished)
    ended = time.perf_counter()
    files = summary.ok
    return {
        "whole_job": round(files / (ended - started), 3),
        "after_startup": round(files / max(finished[-1] - started - summary.startup_s, 1e-9), 3),
        "startup_s": round(summary.startup_s, 2),
        "shutdown_s": round(ended - finished[-1], 2),
    }


def _drain(job: Any, finished: list[float] | None = None) -> Any:
    while True:
        try:
            progress = next(job)
        except StopIteration as stop:
            return stop.value
        if progress.metrics["status"] == "error":
            raise AcsegError(f"scaling benchmark: {progress.metrics['error']}")
        if progress.metrics["status"] != "running" and finished is not None:
            finished.append(time.perf_counter())


def _shards_identical(model: Path, folder: Path, out: Path, reference: Path, args: Any) -> bool:
    """Three ``--shard I/3`` runs (in this process) into one folder equal the reference."""
    print("predicting the same images as --shard 0/3, 1/3, 2/3 ...", file=sys.stderr)
    options = PredictOptions(device=args.device)
    for index in range(3):
        sources = select_shard(iter_sources([folder]), Shard(index, 3))
        _drain(predict_collection(model, sources, out, options=options))
    return same_files(out, reference)


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
