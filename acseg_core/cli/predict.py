"""`acseg-core predict MODEL (INPUT... | --list FILE) --out DIR`: cluster maps for images.

GeoTIFF inputs give Cloud-Optimised GeoTIFFs with the same CRS, transform and size,
their ids named (``.tif.aux.xml``, ``.qml``); other inputs give PNG. ``--format``
adds polygons (``gpkg``) and a class-area table (``csv``), docs/outputs.md. Outputs
are named ``<input stem>_clusters.<ext>`` (never the source's own name, so ``--out``
may be the input folder). A bad input among many
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

from acseg_core.errors import AcsegError, InputError
from acseg_core.model.readouts import KINDS


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "predict",
        help="predict cluster maps for images (tiled, bounded memory)",
        description="Predict a cluster map per image with a trained model. GeoTIFF inputs "
        "give single-band uint8 Cloud-Optimised GeoTIFFs with the same CRS, transform and "
        "size, their ids named for QGIS (.qml, .tif.aux.xml); other inputs give greyscale "
        "PNGs. Value 255 marks the source's nodata pixels. --format adds polygons (gpkg) "
        "and class areas (csv).",
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
        "--format",
        default="tif",
        metavar="LIST",
        help="comma-separated: tif (the map: a Cloud-Optimised GeoTIFF with the ids' names "
        "for georeferenced inputs, else PNG), gpkg (polygons, georeferenced inputs), csv "
        "(areas.csv: pixels, m², ha per image and class). Ids are a learnt model's classes, "
        "else clusters named 'cluster N' (default tif)",
    )
    parser.add_argument(
        "--min-area",
        type=int,
        default=None,
        metavar="PX",
        help="gpkg: regions under PX pixels join their largest neighbour first "
        f"(default {_default_min_area()}; 0 = keep every pixel)",
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
    from acseg_core.jobs import CancelToken, ctrl_c_cancels, sigterm_cancels
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
    readout = ReadOut(args.readout, args.smooth)
    resolved = check_settings(loaded, args.tile, args.batch, readout)
    outputs = _outputs(args, loaded, resolved)
    make_output_folder(args.out)
    options = PredictOptions(
        readout=readout,
        tile=args.tile,
        batch=args.batch,
        with_confidence=args.confidence,
        precision=args.precision,
        device=args.device,
        outputs=outputs,
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
        return 130
    if summary.skipped:
        print(f"{summary.skipped} input(s) already done, skipped")
    if summary.areas is not None:
        print(f"areas: {summary.areas}")
    if summary.failed:
        print(f"acseg-core predict: {summary.failed} input(s) failed", file=sys.stderr)
        return 1
    return 0


def _default_min_area() -> int:
    from acseg_core.labelling.polygons import DEFAULT_MIN_AREA

    return DEFAULT_MIN_AREA


def _outputs(args: argparse.Namespace, loaded: Any, resolved: Any) -> Any:
    """The GIS outputs asked for, with the legend of the ids this model predicts."""
    from acseg_core.inference.outputs import OutputOptions, parse_predict_formats
    from acseg_core.labelling.legend import legend_for_model

    formats = parse_predict_formats(args.format)
    min_area = _default_min_area() if args.min_area is None else args.min_area
    if min_area < 0:
        raise AcsegError("--min-area must be 0 or more pixels")
    return OutputOptions(formats, min_area, legend_for_model(loaded.config, resolved.kind))


def _drain(job: Iterator[Any]) -> Any:
    """Print one line per finished file; return the job's Summary."""
    while True:
        try:
            progress = next(job)
        except StopIteration as stop:
            return stop.value
        status = progress.metrics["status"]
        if progress.metrics.get("note"):
            print(f"acseg-core predict: note: {progress.metrics['note']}", file=sys.stderr)
        if status == "ok":
            print(progress.message, flush=True)
        elif status == "error":
            print(f"acseg-core predict: error: {progress.metrics['error']}", file=sys.stderr)


__all__ = ["register"]
