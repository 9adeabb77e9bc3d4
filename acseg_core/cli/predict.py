"""`acseg-core predict MODEL (INPUT... | --list FILE) --out DIR`: cluster maps for images.

GeoTIFF inputs give GeoTIFF outputs with the same CRS, transform and size; other
inputs give PNG. Outputs are named ``<input stem>_clusters.<ext>`` (never the
source's own name, so ``--out`` may be the input folder). A bad input among many
is reported in one line and skipped; the exit code is non-zero if any failed.

Large collections (:mod:`acseg_core.inference.collection`): inputs are streamed,
``--resume`` skips complete outputs, ``--manifest`` logs every file as it
finishes, ``--nproc N`` shares the files between N processes (GPUs round-robin).
Ctrl+C stops after dropping the files in progress; rerun with ``--resume``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from acseg_core.inference.collection import (
    OUTPUT_TAG,
    FileResult,
    is_geotiff,
    output_path,
    predict_file,
)
from acseg_core.model.config import READOUTS
from acseg_core.errors import AcsegError, InputError
from acseg_core.cli.signals import ctrl_c_cancels


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "predict",
        help="predict cluster maps for images (tiled, bounded memory)",
        description="Predict a cluster map per image with a trained model. GeoTIFF inputs "
        "give single-band uint8 GeoTIFFs with the same CRS, transform and size; other "
        "inputs give greyscale PNGs. Value 255 marks the source's nodata pixels.",
    )
    parser.add_argument("model", type=Path, help="model file (model.pt from training)")
    parser.add_argument("inputs", nargs="*", type=Path, help="image files or folders")
    parser.add_argument(
        "--list",
        type=Path,
        metavar="FILE",
        help="text file of input paths, one per line (relative to the file's folder)",
    )
    parser.add_argument("--out", type=Path, metavar="DIR", help="output folder (required)")
    parser.add_argument(
        "--resume",
        action="store_true",
        help="skip inputs whose output is already complete (a rerun after an interruption)",
    )
    parser.add_argument(
        "--manifest",
        type=Path,
        metavar="PATH",
        help="append a record per finished file: input, output, status, seconds, error "
        "(JSON lines; CSV if PATH ends in .csv)",
    )
    parser.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="worker processes sharing the files (1); one GPU each round-robin on CUDA, "
        "cores/N threads each on the CPU",
    )
    parser.add_argument(
        "--tile", type=int, default=512, metavar="PX", help="tile size in pixels (512)"
    )
    parser.add_argument(
        "--batch",
        type=int,
        default=4,
        metavar="B",
        help="tiles in memory at once (4); on the CPU shared by one forward pass per core",
    )
    parser.add_argument(
        "--device", default="auto", metavar="DEV", help="auto|cpu|cuda (default auto)"
    )
    parser.add_argument(
        "--precision",
        default="auto",
        choices=("auto", "fp32", "bf16", "fp16"),
        help="auto: fp16 on CUDA, bf16 on CPUs with native bf16, else fp32 (default auto)",
    )
    parser.add_argument(
        "--smooth",
        type=int,
        metavar="PX",
        help="majority filter over PX×PX pixels (odd; 0 = the network's plain argmax; "
        "default: the model's own, 25 for cpu-small models)",
    )
    parser.add_argument(
        "--readout",
        choices=READOUTS,
        help="head: the network's own cluster head (plain AC); kmeans: k-means on the "
        "learned features and pixel values, fitted after training (default: the model's)",
    )
    parser.add_argument(
        "--confidence",
        action="store_true",
        help="also write <name>_clusters_confidence.tif (probability of the chosen cluster)",
    )
    parser.set_defaults(handler=run)


def collect_inputs(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """Image files from files and folders; problems become messages, not exceptions."""
    from acseg_core.io.raster import list_images

    images: list[Path] = []
    problems: list[str] = []
    for path in paths:
        try:
            found = list_images([path])
        except InputError as exc:
            problems.append(str(exc))
            continue
        if path.is_dir() and not found:
            problems.append(f"{path}: no images in this folder")
        images.extend(found)
    return images, problems


def _check_tiling(loaded: Any, tile: int, batch: int, smooth: int | None = None) -> None:
    """Refuse unusable --tile/--batch/--smooth once, not once per file."""
    from acseg_core.inference.predict import grid_stride, input_scale, smooth_margin, tile_margin
    from acseg_core.model.refine import check_window
    from acseg_core.inference.tiling import plan_tiles

    if batch < 1:
        raise AcsegError("--batch must be at least 1")
    smooth = check_window(loaded.config.smooth if smooth is None else smooth)
    scale = input_scale(loaded)
    stride = grid_stride(loaded.config, scale)
    margin = tile_margin(loaded.config, scale) + smooth_margin(smooth, stride)
    plan_tiles(tile, tile, tile=tile, margin=margin, stride=stride)  # raises if too small


def run(args: argparse.Namespace) -> int:
    from acseg_core.inference.collection import (
        PredictOptions,
        count_sources,
        iter_sources,
        predict_collection,
    )
    from acseg_core.model.checkpoint import load_model
    from acseg_core.jobs import CancelToken

    # a bad model is one fatal line; with --nproc the workers load their own copies
    device = args.device if args.nproc == 1 else "cpu"
    loaded = load_model(args.model, device=device)
    if args.out is None:
        raise AcsegError("--out DIR is required")
    if not args.inputs and args.list is None:
        raise AcsegError("no input images given")
    if args.nproc < 1:
        raise AcsegError("--nproc must be at least 1")
    if args.list is not None and not args.list.is_file():
        raise InputError(args.list, "list file not found")
    _check_tiling(loaded, args.tile, args.batch, args.smooth)
    options = PredictOptions(
        tile=args.tile,
        batch=args.batch,
        with_confidence=args.confidence,
        precision=args.precision,
        device=args.device,
        smooth=args.smooth,
        readout=args.readout,
    )
    total = count_sources(args.inputs, args.list)
    token = CancelToken()
    job = predict_collection(
        args.model,
        iter_sources(args.inputs, args.list, args.out),
        args.out,
        options=options,
        resume=args.resume,
        manifest=args.manifest,
        nproc=args.nproc,
        cancel=token,
        total=total,
        loaded=loaded if args.nproc == 1 else None,
        show_file_progress=args.nproc == 1 and sys.stderr.isatty(),
    )
    if args.nproc > 1:
        del loaded
    with ctrl_c_cancels(token, "stopping: dropping the files in progress (Ctrl+C again to abort)"):
        summary = _drain(job)
    if summary.cancelled:
        print(
            f"acseg-core predict: interrupted after {summary.ok} written, "
            f"{summary.skipped} skipped, {summary.failed} failed; nothing half-written is "
            "left: rerun with --resume to continue",
            file=sys.stderr,
        )
        return 130
    if summary.skipped:
        print(f"{summary.skipped} input(s) already done, skipped")
    if summary.failed:
        print(f"acseg-core predict: {summary.failed} input(s) failed", file=sys.stderr)
        return 1
    return 0


def _drain(job: Iterator[Any]) -> Any:
    """Print one line per finished file; return the job's Summary."""
    while True:
        try:
            progress = next(job)
        except StopIteration as stop:
            return stop.value
        status = progress.metrics["status"]
        if status == "ok":
            print(progress.message, flush=True)
        elif status == "error":
            print(f"acseg-core predict: error: {progress.metrics['error']}", file=sys.stderr)


__all__ = ["OUTPUT_TAG", "FileResult", "is_geotiff", "output_path", "predict_file", "register"]
