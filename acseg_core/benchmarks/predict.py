"""Benchmark: tiled prediction speed and peak memory on synthetic N×N GeoTIFFs.

For each size N a 4-band uint8 GeoTIFF (tiled, uncompressed like a Potsdam tile) is
written by windows, then predicted to a GeoTIFF with a random-init model of the
chosen preset in a *fresh subprocess*, which reports its own wall time and peak RSS
(``ru_maxrss``): one size's peak cannot hide another's, and the parent's memory
(image generation) is not counted. Figures: megapixels per second (whole job:
read, normalise, forward, stitch, write) and peak RSS in MB per size, plus the
RSS ratio of the largest to the smallest size (flat memory ⇒ ≈ 1).

Run: ``acseg-core bench --predict-size 6000 12000 [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

BANDS = 4
_WRITE_ROWS = 512


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("prediction benchmark (--predict-size)")
    group.add_argument(
        "--predict-size", type=int, nargs="+", metavar="N", help="predict N×N 4-band rasters"
    )
    group.add_argument("--predict-tile", type=int, default=512, help="tile size (512)")
    group.add_argument("--predict-batch", type=int, default=4, help="tiles per batch (4)")
    group.add_argument(
        "--predict-precision",
        default="auto",
        choices=("auto", "fp32", "bf16", "fp16"),
        help="inference precision (auto: fp16 on CUDA, bf16 on CPUs with native bf16)",
    )
    group.add_argument(
        "--predict-keep", type=Path, metavar="DIR", help="keep the rasters in DIR (default: temp)"
    )


def write_synthetic(path: Path, size: int, bands: int = BANDS, seed: int = 0) -> Path:
    """An N×N uint8 GeoTIFF with smooth regions + texture + noise, written by windows."""
    import rasterio
    from rasterio.transform import from_origin
    from rasterio.windows import Window

    profile = dict(
        driver="GTiff",
        width=size,
        height=size,
        count=bands,
        dtype="uint8",
        tiled=True,
        blockxsize=256,
        blockysize=256,
        crs="EPSG:32632",
        transform=from_origin(500000.0, 5600000.0, 0.05, 0.05),
        BIGTIFF="IF_SAFER",
    )
    cols = np.arange(size, dtype=np.float32)
    phase = np.random.default_rng(seed).random((bands, 3)).astype(np.float32) * 6.28
    with rasterio.open(path, "w", **profile) as dst:
        for row in range(0, size, _WRITE_ROWS):
            height = min(_WRITE_ROWS, size - row)
            rows = np.arange(row, row + height, dtype=np.float32)[:, None]
            rng = np.random.default_rng([seed, row])
            block = np.empty((bands, height, size), np.uint8)
            for b in range(bands):
                field = np.sin(cols / 310.0 + phase[b, 0]) * np.cos(
                    rows / 270.0 + phase[b, 1]
                ) + 0.5 * np.sin((cols + rows) / 23.0 + phase[b, 2])
                noise = rng.normal(0.0, 12.0, (height, size)).astype(np.float32)
                block[b] = np.clip(128.0 + 70.0 * field + noise, 0, 255).astype(np.uint8)
            dst.write(block, window=Window(0, row, size, height))
    return path


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    sizes = list(args.predict_size)
    keep = getattr(args, "predict_keep", None)
    with tempfile.TemporaryDirectory(prefix="acseg-bench-") as tmp:
        folder = Path(keep) if keep else Path(tmp)
        folder.mkdir(parents=True, exist_ok=True)
        runs: dict[str, dict[str, Any]] = {}
        for size in sizes:
            image = folder / f"synthetic_{size}.tif"
            if not image.exists():
                print(f"writing {image.name} ...", file=sys.stderr)
                write_synthetic(image, size)
            job = dict(
                image=str(image),
                out=str(folder / f"synthetic_{size}_clusters.tif"),
                preset=args.preset,
                device=args.device,
                tile=args.predict_tile,
                batch=args.predict_batch,
                precision=args.predict_precision,
            )
            print(f"predicting {size}×{size} in a fresh process ...", file=sys.stderr)
            runs[str(size)] = _run_worker(job)
    first = runs[str(sizes[0])]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result: dict[str, Any] = {
        "predict_mpix_per_s": {k: round(v["mpix_per_s"], 3) for k, v in runs.items()},
        "predict_peak_rss_mb": {k: round(v["peak_rss_mb"], 1) for k, v in runs.items()},
        "predict_seconds": {k: round(v["seconds"], 2) for k, v in runs.items()},
        # CPU-time throughput: less sensitive to other processes sharing the cores
        "predict_mpix_per_cpu_s": {k: round(v["mpix_per_cpu_s"], 3) for k, v in runs.items()},
        "predict_baseline_rss_mb": {k: round(v["baseline_rss_mb"], 1) for k, v in runs.items()},
        "predict_rss_ratio": round(runs[str(sizes[-1])]["peak_rss_mb"] / first["peak_rss_mb"], 3),
        "preset": args.preset,
        "device": first["device"],
        "precision": first["precision"],
        "tile": first["tile"],
        "batch": args.predict_batch,
        "torch_threads": first["threads"],
        "load_average_1min": round(load, 2) if load is not None else None,
    }
    return result


def _run_worker(job: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "acseg_core.benchmarks.predict", json.dumps(job)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        from acseg_core.errors import AcsegError

        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise AcsegError(f"prediction benchmark worker failed: {tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _peak_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KB on Linux


def _cpu_seconds() -> float:
    """User + system CPU time of this process (all threads)."""
    import resource

    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _current_rss_mb() -> float:
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return _peak_rss_mb()


def _worker(job: dict[str, Any]) -> dict[str, Any]:
    """Runs in the subprocess: build a random-init model, predict ``image`` to ``out``."""
    import torch

    from acseg_core.device import select_device
    from acseg_core.inference.predict import autocast_dtype, predict_array
    from acseg_core.io.normalise import Normalisation
    from acseg_core.io.raster import probe
    from acseg_core.model.checkpoint import LoadedModel
    from acseg_core.model.nn import build_model
    from acseg_core.presets import preset

    info = probe(job["image"])
    torch.manual_seed(0)
    config = preset(
        job["preset"],
        in_channels=info.count,
        clusters=6,
        normalisation=Normalisation(low=(0.0,) * info.count, high=(255.0,) * info.count),
    )
    device = select_device(job["device"])
    loaded = LoadedModel(build_model(config).to(device).eval(), config, device)
    with torch.inference_mode():  # warm-up: oneDNN picks kernels on the first call
        warm = torch.zeros(1, info.count, 64, 64, device=device)
        loaded.model(warm)
    baseline = _current_rss_mb()
    cpu_before = _cpu_seconds()
    started = time.perf_counter()
    predict_array(
        loaded,
        job["image"],
        out=job["out"],
        tile=job["tile"],
        batch=job["batch"],
        precision=job["precision"],
    )
    if device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - started
    cpu_seconds = _cpu_seconds() - cpu_before
    dtype = autocast_dtype(device, job["precision"])
    return dict(
        seconds=seconds,
        mpix_per_s=info.pixels / seconds / 1e6,
        mpix_per_cpu_s=info.pixels / cpu_seconds / 1e6,
        peak_rss_mb=_peak_rss_mb(),
        baseline_rss_mb=baseline,
        device=str(device),
        precision=str(dtype).replace("torch.", "") if dtype else "float32",
        tile=job["tile"],
        threads=torch.get_num_threads(),
    )


if __name__ == "__main__":
    print(json.dumps(_worker(json.loads(sys.argv[1]))))
