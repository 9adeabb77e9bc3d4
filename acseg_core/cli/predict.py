"""`acseg-core predict MODEL (INPUT... | --list FILE) --out DIR`: cluster maps for images.

GeoTIFF inputs give Cloud-Optimised GeoTIFFs with the same CRS, transform and size,
their ids named (``.tif.aux.xml``, ``.qml``); other inputs give PNG. ``--format``
adds polygons (``gpkg``) and a class-area table (``csv``), docs/outputs.md. Outputs
are named ``<input stem>_clusters.<ext>`` (never the source's own name, so ``--out``
may be the input folder). A bad input among many
is reported in one line and skipped; the exit code is non-zero if any failed.

Large collections (:mod:`acseg_core.inference.collection`): inputs are streamed,
``--resume`` skips complete outputs, ``--manifest`` logs every file as it
finishes. ``--scheduler tcp://host:8786`` runs one Dask task per file on a cluster
(``local:N``: N worker processes here; ``--nproc N`` is ``local:N``). ``--shard I/N``
predicts one shard of the inputs, for array jobs (each shard its own manifest;
``acseg-core manifest merge`` joins them). Ctrl+C (or SIGTERM) stops after dropping the files
in progress, with exit code 130 (143); rerun with ``--resume``. docs/scaling.md has the
recipes.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

from acseg_core.cli.options import add_field_options, add_min_area, given
from acseg_core.errors import AcsegError, InputError
from acseg_core.features.for_model import bank_of
from acseg_core.gis.legend import legend_for_model
from acseg_core.gis.options import OutputOptions, parse_predict_formats
from acseg_core.gis.polygons import DEFAULT_MIN_AREA
from acseg_core.inference.cluster import parse_scheduler
from acseg_core.inference.collection import RUNNING, predict_collection
from acseg_core.inference.predict import PredictOptions, check_options
from acseg_core.inference.shards import Shard, select_shard
from acseg_core.inference.sources import iter_sources
from acseg_core.jobs import (
    CancelToken,
    ctrl_c_cancels,
    format_eta,
    interrupted_exit_code,
    sigterm_cancels,
)
from acseg_core.model.checkpoint import load_model
from acseg_core.model.readouts import KINDS, READOUTS, ReadOut
from acseg_core.version import __version__

OPTION_FIELDS = ("tile", "batch", "device", "precision")


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
        help="worker processes sharing the files (1); N > 1 is --scheduler local:N",
    )
    parser.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="run one Dask task per file: tcp://HOST:PORT of a running Dask scheduler "
        "(inputs and --out on a file system every worker sees), a scheduler file (*.json), "
        "or local:N for N worker processes here (one GPU each round-robin on CUDA, "
        "cores/N threads each on the CPU); needs pip install 'acseg[distributed]'",
    )
    parser.add_argument(
        "--shard",
        metavar="I/N",
        help="predict only shard I of N (0 <= I < N), for array jobs: an input's shard "
        "depends on its file name only, never on the listing order; the manifest "
        "defaults to OUT/manifest.shard-I-of-N.jsonl (join with acseg-core manifest merge)",
    )
    add_field_options(parser, PredictOptions, OPTION_FIELDS, metavars={"tile": "PX", "batch": "B"})
    parser.add_argument(
        "--smooth",
        type=int,
        metavar="PX",
        help="majority filter over PX×PX pixels (odd; 0 = the network's plain argmax; "
        "default: the model's own)",
    )
    parser.add_argument(
        "--readout",
        choices=KINDS,
        help="; ".join(f"{name}: {READOUTS[name].label}" for name in KINDS)
        + " (default: the model's own; a model has the head and the read-out it was "
        "fitted with)",
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
    add_min_area(parser)
    parser.add_argument(
        "--confidence",
        action="store_true",
        help="also write <name>_clusters_confidence.tif (probability of the chosen cluster)",
    )
    parser.set_defaults(handler=run)


def options_of(args: argparse.Namespace) -> PredictOptions:
    """The PredictOptions the arguments describe (the defaults for what is not given)."""
    return PredictOptions(
        readout=ReadOut(args.readout, args.smooth),
        with_confidence=args.confidence,
        **given(args, OPTION_FIELDS),
    )


def run(args: argparse.Namespace) -> int:
    options = options_of(args)
    shard = Shard.parse(args.shard) if args.shard is not None else None
    if args.nproc < 1:
        raise AcsegError("--nproc must be at least 1")
    scheduler = args.scheduler
    if scheduler is not None:
        if args.nproc > 1:
            raise AcsegError("give --nproc or --scheduler, not both "
                             "(--nproc N is --scheduler local:N)")  # fmt: skip
        parse_scheduler(scheduler)  # a malformed address is one line before anything else
    elif args.nproc > 1:
        scheduler = f"local:{args.nproc}"
    here = scheduler is None
    # a bad model is one fatal line; Dask workers load their own copies
    loaded = load_model(args.model, device=options.device if here else "cpu")
    bank_of(loaded)  # a bank it cannot load (wheel missing, other weights): one line, once
    if args.out is None:
        raise AcsegError("--out DIR is required")
    if not args.inputs and args.list is None:
        raise AcsegError("no input images given")
    if args.list is not None and not args.list.is_file():
        raise InputError(args.list, "list file not found")
    if args.manifest is not None:
        manifest = args.manifest.expanduser().resolve()
        for named in (*args.inputs, *([args.list] if args.list is not None else [])):
            if named.expanduser().resolve() == manifest:
                raise InputError(args.manifest, f"the manifest would be written over {named}")
    if args.out.exists() and not args.out.is_dir():
        raise InputError(args.out, "exists and is not a folder")
    resolved = check_options(loaded, options)
    options = replace(options, outputs=_outputs(args, loaded, resolved))
    manifest = args.manifest
    if manifest is None and shard is not None:
        manifest = args.out / f"manifest.shard-{shard.index}-of-{shard.count}.jsonl"
    total = sum(1 for _ in select_shard(iter_sources(args.inputs, args.list), shard))
    token = CancelToken()
    job = predict_collection(
        args.model,
        select_shard(iter_sources(args.inputs, args.list, args.out), shard),
        args.out,
        options=options,
        resume=args.resume,
        manifest=manifest,
        cancel=token,
        total=total,
        loaded=loaded if here else None,
        scheduler=scheduler,
        run_info=_run_info(args, shard, scheduler),
    )
    if not here:
        del loaded
    stopping = "stopping: dropping the files in progress (Ctrl+C again to abort)"
    with ctrl_c_cancels(token, stopping), sigterm_cancels(token):
        summary = _drain(job, sys.stderr.isatty())
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
    if summary.areas is not None:
        print(f"areas: {summary.areas}")
    if summary.failed:
        print(f"acseg-core predict: {summary.failed} input(s) failed", file=sys.stderr)
        return 1
    return 0


def _outputs(args: argparse.Namespace, loaded: Any, resolved: Any) -> Any:
    """The GIS outputs asked for, with the legend of the ids this model predicts."""
    formats = parse_predict_formats(args.format)
    min_area = DEFAULT_MIN_AREA if args.min_area is None else args.min_area
    if min_area < 0:
        raise AcsegError("--min-area must be 0 or more pixels")
    return OutputOptions(formats, min_area, legend_for_model(loaded.config, resolved.kind))


def _run_info(args: argparse.Namespace, shard: Shard | None, scheduler: str | None) -> dict:
    """The manifest's run record: what was asked, so a merge can list it again."""
    return {
        "acseg": __version__,
        "started": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        "cwd": os.getcwd(),
        "inputs": [str(p.absolute()) for p in args.inputs],
        "list": str(args.list.absolute()) if args.list is not None else None,
        "out": str(args.out.absolute()),
        "shard": str(shard) if shard is not None else None,
        "scheduler": scheduler,
        "model": str(args.model.absolute()),
    }


def _drain(job: Iterator[Any], tiles_on_terminal: bool) -> Any:
    """Print one line per finished file (and, on a terminal, the tiles of the file in
    progress on one self-erasing line); return the job's Summary."""
    while True:
        try:
            progress = next(job)
        except StopIteration as stop:
            if tiles_on_terminal:
                print("\r\033[K", end="", file=sys.stderr)
            return stop.value
        status = progress.metrics["status"]
        if status == RUNNING:
            if tiles_on_terminal:
                eta = f", {progress.eta_s:.0f} s left" if progress.eta_s is not None else ""
                print(f"\r  {progress.message}{eta}   ", end="", file=sys.stderr, flush=True)
            continue
        if tiles_on_terminal:
            print("\r\033[K", end="", file=sys.stderr)
        if progress.metrics.get("note"):
            print(f"acseg-core predict: note: {progress.metrics['note']}", file=sys.stderr)
        if status == "ok":
            left = progress.total is not None and progress.done < progress.total
            eta = f", {format_eta(progress.eta_s)} left" if left and progress.eta_s else ""
            print(f"{progress.message}{eta}", flush=True)
        elif status == "error":
            print(f"acseg-core predict: error: {progress.metrics['error']}", file=sys.stderr)


__all__ = ["register"]
