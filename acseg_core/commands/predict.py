"""`acseg-core predict MODEL INPUT... --out DIR`: cluster maps for images.

GeoTIFF inputs give GeoTIFF outputs with the same CRS, transform and size; other
inputs give PNG. Outputs are named ``<input stem>_clusters.<ext>`` (never the
source's own name, so ``--out`` may be the input folder). A bad input among many
is reported in one line and skipped; the exit code is non-zero if any failed.

The per-file work is :func:`predict_file` and the naming :func:`output_path`, so a
resumable, manifest-writing, multi-process front-end can reuse both.
"""

from __future__ import annotations

import argparse
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from acseg_core.errors import AcsegError, InputError

OUTPUT_TAG = "_clusters"


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
    parser.add_argument("--out", type=Path, metavar="DIR", help="output folder (required)")
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
        "--confidence",
        action="store_true",
        help="also write <name>_clusters_confidence.tif (probability of the chosen cluster)",
    )
    parser.set_defaults(handler=run)


@dataclass
class FileResult:
    """Outcome of one input: ``status`` is ``ok`` or ``failed`` (with ``error``)."""

    image: Path
    output: Path | None
    status: str
    seconds: float
    error: str = ""


def output_path(image: Path, out_dir: Path, georeferenced_tiff: bool) -> Path:
    """``<out_dir>/<stem>_clusters.tif`` for GeoTIFF inputs, ``.png`` otherwise."""
    suffix = ".tif" if georeferenced_tiff else ".png"
    return out_dir / f"{image.stem}{OUTPUT_TAG}{suffix}"


def is_geotiff(image: Path) -> bool:
    from acseg_core.raster import probe

    return image.suffix.lower() in (".tif", ".tiff") and probe(image).georeferenced


def collect_inputs(paths: list[Path]) -> tuple[list[Path], list[str]]:
    """Image files from files and folders; problems become messages, not exceptions."""
    from acseg_core.raster import list_images

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


def predict_file(
    loaded: Any,
    image: Path,
    out: Path,
    *,
    tile: int,
    batch: int,
    with_confidence: bool = False,
    precision: str = "auto",
    show_progress: bool = False,
) -> FileResult:
    """Predict one image to ``out``; expected failures are returned, not raised."""
    from acseg_core.infer import predict

    started = time.perf_counter()
    try:
        for progress in predict(
            loaded,
            image,
            out=out,
            tile=tile,
            batch=batch,
            with_confidence=with_confidence,
            precision=precision,
        ):
            if show_progress:
                eta = f", {progress.eta_s:.0f} s left" if progress.eta_s is not None else ""
                print(f"\r  {progress.message}{eta}   ", end="", file=sys.stderr, flush=True)
    except AcsegError as exc:
        if show_progress:
            print("\r", end="", file=sys.stderr)
        return FileResult(image, None, "failed", time.perf_counter() - started, str(exc))
    if show_progress:
        print("\r", end="", file=sys.stderr)
    return FileResult(image, out, "ok", time.perf_counter() - started)


def _check_tiling(config: Any, tile: int, batch: int) -> None:
    """Refuse unusable --tile/--batch once, not once per file."""
    from acseg_core.infer import tile_margin
    from acseg_core.tiling import plan_tiles

    if batch < 1:
        raise AcsegError("--batch must be at least 1")
    margin = tile_margin(config)
    plan_tiles(tile, tile, tile=tile, margin=margin, stride=config.stride)  # raises if too small


def run(args: argparse.Namespace) -> int:
    from acseg_core.checkpoint import load_model

    loaded = load_model(args.model, device=args.device)  # a bad model is one fatal line
    if args.out is None:
        raise AcsegError("--out DIR is required")
    if not args.inputs:
        raise AcsegError("no input images given")
    _check_tiling(loaded.config, args.tile, args.batch)
    images, problems = collect_inputs(args.inputs)
    for problem in problems:
        print(f"acseg-core predict: error: {problem}", file=sys.stderr)
    sources = {p.resolve() for p in images}
    taken: dict[Path, Path] = {}
    failed = len(problems)
    tty = sys.stderr.isatty()
    for number, image in enumerate(images, 1):
        try:
            out = output_path(image, args.out, is_geotiff(image))
        except AcsegError as exc:
            print(f"acseg-core predict: error: {exc}", file=sys.stderr)
            failed += 1
            continue
        clash = taken.get(out.resolve())
        if clash is not None or out.resolve() in sources:
            reason = (
                f"output {out} would also be written for {clash}"
                if clash
                else (f"output {out} is one of the inputs")
            )
            print(f"acseg-core predict: error: {image}: {reason}; skipped", file=sys.stderr)
            failed += 1
            continue
        taken[out.resolve()] = image
        result = predict_file(
            loaded,
            image,
            out,
            tile=args.tile,
            batch=args.batch,
            with_confidence=args.confidence,
            precision=args.precision,
            show_progress=tty,
        )
        if result.status == "ok":
            print(f"[{number}/{len(images)}] {image} -> {out} ({result.seconds:.1f} s)")
        else:
            print(f"acseg-core predict: error: {result.error}", file=sys.stderr)
            failed += 1
    if failed:
        print(f"acseg-core predict: {failed} input(s) failed", file=sys.stderr)
        return 1
    return 0
