"""Benchmark: tiled prediction speed and peak memory on synthetic N×N GeoTIFFs.

For each size N a 4-band uint8 GeoTIFF (tiled, uncompressed like a Potsdam tile) is
written by windows, then predicted to a GeoTIFF in a *fresh subprocess*, which
reports its own wall time and peak RSS (``ru_maxrss``): one size's peak cannot hide
another's, and the parent's memory (image generation) is not counted. The model is
the preset's network with its read-out fitted on crops of the raster, predicted
with the shipped defaults (read-out, majority filter, tile, batch, precision), i.e.
what ``acseg-core predict`` does with no options. Figures per size: megapixels per
second (whole job: read, normalise, network, read-out, filter, write), a breakdown
by stage (thread-seconds and shares), peak RSS in MB, and the same raster
classified by k-means on pixel values (fit on a sample, then nearest centre by
windows, written the same way): what a QGIS user runs instead, with the ratio.

Then, in the same process, the GIS outputs ``predict --format tif,gpkg,csv`` makes of
that map (:mod:`acseg_core.inference.outputs`): the Cloud-Optimised GeoTIFF, the
polygons (default ``--min-area``) and the areas, each timed, with the export/prediction
time ratio and the process's peak RSS after them (prediction included).

With ``--predict-learnt`` the model is a learnt one (the strokes read-out on the feature
bank, fitted on strokes of a small synthetic raster): the whole job then includes the
bank, whose own seconds per megapixel are printed beside it.

Run: ``acseg-core bench --predict-size 6000 12000 [--predict-learnt] [--json]``.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import rasterio
import torch
from rasterio.transform import from_origin
from rasterio.windows import Window

from acseg_core.device import select_device
from acseg_core.errors import AcsegError
from acseg_core.evaluation.kmeans import fit_kmeans
from acseg_core.features.for_model import model_features
from acseg_core.gis.areas import count_raster
from acseg_core.gis.cog import cog_output, write_cog
from acseg_core.gis.crs import pixel_area_m2
from acseg_core.gis.legend import legend_for_model
from acseg_core.gis.polygons import write_polygons
from acseg_core.inference.forward import autocast_dtype
from acseg_core.inference.predict import DEFAULT_OPTIONS, predict_array
from acseg_core.inference.stages import StageTimes
from acseg_core.io.atomic import atomic_path
from acseg_core.io.normalise import Normalisation, apply_normalisation
from acseg_core.io.raster import NODATA, open_raster, probe
from acseg_core.io.writers import geotiff_writer
from acseg_core.jobs import run_to_end
from acseg_core.learning.fit import PSEUDO_PER_IMAGE, fit_strokes
from acseg_core.learning.samples import gather
from acseg_core.learning.strokes import StrokeSet
from acseg_core.model.checkpoint import LoadedModel
from acseg_core.model.nn import build_model
from acseg_core.model.readouts import readout_kind
from acseg_core.model.readouts.kmeans import FIT_CROPS as KMEANS_FIT_CROPS
from acseg_core.presets import preset

BANDS = 4
_WRITE_ROWS = 512


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("prediction benchmark (--predict-size)")
    group.add_argument(
        "--predict-size", type=int, nargs="+", metavar="N", help="predict N×N 4-band rasters"
    )
    group.add_argument(
        "--predict-tile", type=int, default=None, help="tile size (default: predict's)"
    )
    group.add_argument(
        "--predict-batch", type=int, default=None, help="tiles per batch (default: predict's)"
    )
    group.add_argument(
        "--predict-precision",
        default="auto",
        choices=("auto", "fp32", "bf16", "fp16"),
        help="inference precision (auto: fp16 on CUDA, bf16 on CPUs with native bf16)",
    )
    group.add_argument(
        "--predict-keep", type=Path, metavar="DIR", help="keep the rasters in DIR (default: temp)"
    )
    group.add_argument(
        "--predict-learnt", action="store_true",
        help="predict with a model learnt from strokes (the read-out on the feature bank; "
        "the bank's own time is printed beside the whole job's)",
    )  # fmt: skip


def write_synthetic(path: Path, size: int, bands: int = BANDS, seed: int = 0) -> Path:
    """An N×N uint8 GeoTIFF with smooth regions + texture + noise, written by windows."""
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
    given = [("--predict-tile", args.predict_tile), ("--predict-batch", args.predict_batch)]
    given += [("--predict-size", size) for size in args.predict_size]
    for option, value in given:
        if value is not None and value < 1:
            raise AcsegError(f"{option} must be at least 1, not {value}")
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
                learnt=bool(getattr(args, "predict_learnt", False)),
            )
            print(f"predicting {size}×{size} in a fresh process ...", file=sys.stderr)
            runs[str(size)] = _run_worker(job)
    first, last = runs[str(sizes[0])], runs[str(sizes[-1])]
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    per_size = {k: v for k, v in runs.items()}
    result: dict[str, Any] = {
        "predict_mpix_per_s": {k: round(v["mpix_per_s"], 3) for k, v in per_size.items()},
        "predict_seconds": {k: round(v["seconds"], 2) for k, v in per_size.items()},
        # CPU-time throughput: less sensitive to other processes sharing the cores
        "predict_mpix_per_cpu_s": {k: round(v["mpix_per_cpu_s"], 3) for k, v in per_size.items()},
        "predict_stage_seconds": {k: v["stage_seconds"] for k, v in per_size.items()},
        "predict_stage_shares": {k: v["stage_shares"] for k, v in per_size.items()},
        "kmeans_mpix_per_s": {k: round(v["kmeans_mpix_per_s"], 3) for k, v in per_size.items()},
        "ac_vs_kmeans_time": {
            k: round(v["seconds"] / v["kmeans_seconds"], 2) for k, v in per_size.items()
        },
        "predict_peak_rss_mb": {k: round(v["peak_rss_mb"], 1) for k, v in per_size.items()},
        "predict_baseline_rss_mb": {k: round(v["baseline_rss_mb"], 1) for k, v in per_size.items()},
        "predict_rss_ratio": round(last["peak_rss_mb"] / first["peak_rss_mb"], 3),
        "export_seconds": {k: round(v["export_seconds"], 2) for k, v in per_size.items()},
        "export_stage_seconds": {k: v["export_stage_seconds"] for k, v in per_size.items()},
        "export_vs_predict_time": {
            k: round(v["export_seconds"] / v["seconds"], 2) for k, v in per_size.items()
        },
        "export_polygons": {k: v["export_polygons"] for k, v in per_size.items()},
        "export_peak_rss_mb": {k: round(v["export_peak_rss_mb"], 1) for k, v in per_size.items()},
        "bank_seconds_per_mpix": {k: v["bank_s_per_mpix"] for k, v in per_size.items()},
        "preset": args.preset,
        "readout": first["readout"],
        "smooth": first["smooth"],
        "device": first["device"],
        "precision": first["precision"],
        "tile": first["tile"],
        "batch": first["batch"],
        "torch_threads": first["threads"],
        "load_average_1min": round(load, 2) if load is not None else None,
    }
    return result


def _run_worker(job: dict[str, Any]) -> dict[str, Any]:
    cmd = [sys.executable, "-m", "acseg_core.benchmarks.predict", json.dumps(job)]
    done = subprocess.run(cmd, capture_output=True, text=True)
    if done.returncode != 0:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        raise AcsegError(f"prediction benchmark worker failed: {tail}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # KB on Linux


def _cpu_seconds() -> float:
    """User + system CPU time of this process (all threads)."""
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


def _bench_model(info: Any, preset_name: str, device: Any, image: str) -> Any:
    """The preset's network, read-out fitted on seeded crops of ``image`` as training
    fits it (untrained weights: speed does not depend on them)."""
    norm = Normalisation(low=(0.0,) * info.count, high=(255.0,) * info.count)
    config = preset(preset_name, in_channels=info.count, clusters=6, normalisation=norm)
    torch.manual_seed(0)
    model = build_model(config)
    kind = readout_kind(config.readout.kind)
    if kind.after_training:
        rng = np.random.default_rng(0)
        side = min(128, info.width, info.height)
        crops = []
        with open_raster(image) as raster:
            for _ in range(KMEANS_FIT_CROPS // 4):
                col = int(rng.integers(0, info.width - side + 1))
                row = int(rng.integers(0, info.height - side + 1))
                data = apply_normalisation(raster.read((col, row, side, side)), norm)
                crops.append((torch.from_numpy(data), torch.ones(side, side, dtype=torch.bool)))
        kind.fit_after_training(model, crops, seed=0, device="cpu")
    model.to(device).eval()
    return LoadedModel(model, config, device, {}, "bench")


def _learnt_model(loaded: LoadedModel, folder: Path) -> LoadedModel:
    """``loaded`` taught three classes by strokes on a small synthetic raster (the
    bank's read-out, as ``acseg-core learn`` fits it): a learnt model of the real size."""
    image = folder / "strokes_512.tif"
    if not image.exists():
        write_synthetic(image, 512, seed=1)
    with open_raster(image) as raster:
        band = raster.read()[0].astype(np.float64)
    classes = np.digitize(band, np.quantile(band, [1 / 3, 2 / 3]))
    rng = np.random.default_rng(0)
    marks = np.full(band.shape, 255, np.uint8)
    for c in range(3):
        rows, cols = np.nonzero(classes == c)
        pick = rng.choice(len(rows), 300, replace=False)
        marks[rows[pick], cols[pick]] = c
    samples = run_to_end(gather(loaded, image, StrokeSet.from_map(marks),
                                pseudo=PSEUDO_PER_IMAGE))  # fmt: skip
    names, colours = ["dark", "mid", "bright"], [(0, 0, 0), (128, 128, 128), (255, 255, 255)]
    return fit_strokes(loaded, [samples], names, colours)


def kmeans_classification(image: str, out: str, clusters: int = 6, rows: int = 256) -> float:
    """Seconds to classify ``image`` by k-means on pixel values, as a GIS tool does:
    centres from a downsampled preview, then every pixel to its nearest centre by
    bands of rows, written as a uint8 GeoTIFF like a prediction."""
    started = time.perf_counter()
    with open_raster(image) as raster:
        info = raster.info
        preview, _ = raster.read_preview(512)
        sample = preview.reshape(info.count, -1).T.astype(np.float64)
        centres = fit_kmeans(sample, clusters, seed=0).astype(np.float32)
        half_norm = 0.5 * (centres**2).sum(axis=1)[:, None]
        with geotiff_writer(Path(out), info, "uint8", NODATA) as write:
            for row in range(0, info.height, rows):
                height = min(rows, info.height - row)
                data = raster.read((0, row, info.width, height)).reshape(info.count, -1)
                scores = centres @ data.astype(np.float32) - half_norm
                write(row, scores.argmax(axis=0).astype(np.uint8).reshape(height, info.width))
    return time.perf_counter() - started


def export_outputs(image: str, map_path: str, legend: Any) -> dict[str, Any]:
    """Seconds of each GIS output of a predicted map, made as ``predict --format
    tif,gpkg,csv`` makes them (COG, polygons with the default sieve, areas)."""
    source, stem = Path(map_path), Path(map_path).with_suffix("")
    seconds: dict[str, float] = {}
    started = time.perf_counter()
    with cog_output(Path(f"{stem}_cog.tif"), legend) as tmp:
        write_cog(source, tmp, legend)
    seconds["cog"] = time.perf_counter() - started
    started = time.perf_counter()
    with atomic_path(Path(f"{stem}.gpkg")) as tmp:
        polygons = write_polygons(source, tmp, legend, Path(image).name)
    seconds["gpkg"] = time.perf_counter() - started
    started = time.perf_counter()
    info = probe(image)
    count_raster(source, Path(image).name, legend, pixel_area_m2(info.crs, info.transform))
    seconds["csv"] = time.perf_counter() - started
    return {"seconds": seconds, "polygons": polygons}


def _worker(job: dict[str, Any]) -> dict[str, Any]:
    """Runs in the subprocess: the shipped prediction of ``image``, then k-means."""
    info = probe(job["image"])
    device = select_device(job["device"])
    loaded = _bench_model(info, job["preset"], device, job["image"])
    with torch.inference_mode():  # warm-up: oneDNN picks kernels on the first call
        loaded.model(torch.zeros(1, info.count, 64, 64, device=device))
    if job.get("learnt"):
        loaded = _learnt_model(loaded, Path(job["out"]).parent)
    baseline = _current_rss_mb()
    cpu_before = _cpu_seconds()
    stages = StageTimes(torch.cuda.synchronize if device.type == "cuda" else None)
    tile = job.get("tile") or DEFAULT_OPTIONS.tile
    batch = job.get("batch") or DEFAULT_OPTIONS.batch
    bank_seconds = None
    with tempfile.TemporaryDirectory(prefix="acseg-bench-bank-") as features:
        started = time.perf_counter()
        if loaded.config.bank is not None:  # the bank first, timed on its own
            run_to_end(model_features(loaded, Path(job["image"]), Path(features)))
            bank_seconds = time.perf_counter() - started
        predict_array(loaded, job["image"], out=job["out"], tile=tile, batch=batch,
                      precision=job["precision"], stages=stages,
                      feature_cache=Path(features))  # fmt: skip
        seconds = time.perf_counter() - started
    cpu_seconds = _cpu_seconds() - cpu_before
    peak = _peak_rss_mb()
    exported = export_outputs(job["image"], job["out"], legend_for_model(loaded.config))
    export_peak = _peak_rss_mb()
    kmeans_seconds = kmeans_classification(job["image"], job["out"].replace(".tif", "_km.tif"))
    dtype = autocast_dtype(device, job["precision"])
    bank_per_mpix = (bank_seconds or 0.0) / info.pixels * 1e6
    return dict(
        seconds=seconds,
        mpix_per_s=info.pixels / seconds / 1e6,
        bank_s_per_mpix=None if bank_seconds is None else round(bank_per_mpix, 3),
        mpix_per_cpu_s=info.pixels / cpu_seconds / 1e6,
        stage_seconds={k: round(v, 2) for k, v in stages.seconds.items()},
        stage_shares={k: round(v, 3) for k, v in stages.shares().items()},
        kmeans_seconds=kmeans_seconds,
        kmeans_mpix_per_s=info.pixels / kmeans_seconds / 1e6,
        peak_rss_mb=peak,
        baseline_rss_mb=baseline,
        export_seconds=sum(exported["seconds"].values()),
        export_stage_seconds={k: round(v, 2) for k, v in exported["seconds"].items()},
        export_polygons=exported["polygons"],
        export_peak_rss_mb=export_peak,
        device=str(device),
        precision=str(dtype).replace("torch.", "") if dtype else "float32",
        readout=loaded.config.readout.kind,
        smooth=loaded.config.readout.smooth,
        tile=tile,
        batch=batch,
        threads=torch.get_num_threads(),
    )


if __name__ == "__main__":
    print(json.dumps(_worker(json.loads(sys.argv[1]))))
