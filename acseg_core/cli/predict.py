"""`acseg-core predict MODEL (INPUT... | --list FILE) --out DIR`: cluster maps for images.

GeoTIFF inputs give GeoTIFF outputs with the same CRS, transform and size; other
inputs give PNG. Outputs are named ``<input stem>_clusters.<ext>`` (never the
source's own name, so ``--out`` may be the input folder). A bad input among many
is reported in one line and skipped; the exit code is non-zero if any failed.

Large collections (:mod:`acseg_core.inference.collection`): inputs are streamed,
``--resume`` skips complete outputs, ``--manifest`` logs every file as it
finishes, ``--nproc N`` shares the files between N processes (GPUs round-robin).
Ctrl+C (or SIGTERM) stops after dropping the files in progress, with exit code 130
(143); rerun with ``--resume``.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from acseg_core.errors import AcsegError, InputError
from acseg_core.model.readouts import KINDS


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
        choices=KINDS,
        help="head: the network's own cluster head (plain AC); kmeans: k-means on the "
        "learned features and pixel values, fitted after training (default: the model's)",
    )
    parser.add_argument(
        "--confidence",
        action="store_true",
        help="also write <name>_clusters_confidence.tif (probability of the chosen cluster)",
    )
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from acseg_core.inference.collection import PredictOptions, predict_collection
    from acseg_core.inference.predict import check_settings
    from acseg_core.inference.readout import ReadOut
    from acseg_core.inference.sources import count_sources, iter_sources
    from acseg_core.io.folders import make_output_folder
    from acseg_core.jobs import (
        CancelToken,
        ctrl_c_cancels,
        interrupted_exit_code,
        sigterm_cancels,
    )
    from acseg_core.model.checkpoint import load_model

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
    if args.manifest is not None:
        manifest = args.manifest.expanduser().resolve()
        for given in (*args.inputs, *([args.list] if args.list is not None else [])):
            if given.expanduser().resolve() == manifest:
                raise InputError(args.manifest, f"the manifest would be written over {given}")
    readout = ReadOut(args.readout, args.smooth)
    check_settings(loaded, args.tile, args.batch, readout)
    make_output_folder(args.out)
    options = PredictOptions(
        readout=readout,
        tile=args.tile,
        batch=args.batch,
        with_confidence=args.confidence,
        precision=args.precision,
        device=args.device,
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
    stopping = "stopping: dropping the files in progress (Ctrl+C again to abort)"
    with ctrl_c_cancels(token, stopping), sigterm_cancels(token):
        summary = _drain(job)
    if summary.cancelled:
        print(
            f"acseg-core predict: interrupted after {summary.ok} written, "
            f"{summary.skipped} skipped, {summary.failed} failed; nothing half-written is "
            "left: rerun with --resume to continue",
            file=sys.stderr,
        )
        return interrupted_exit_code(token)
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


__all__ = ["register"]
