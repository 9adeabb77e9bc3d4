"""`acseg-core export PROJECT --out DIR`: label masks of every image of a project.

The project's model gives each image its map: the map cached for that model and its
default read-out when there is one, else a prediction made during the export. The
class map and the hand edits are applied, then the formats are written
(:mod:`acseg_core.labelling.export_job`). An image that cannot be exported is skipped
and named at the end (exit code 1); images already exported are left as they are
unless ``--overwrite``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

from acseg_core.cli.options import add_field_options, add_min_area, given
from acseg_core.errors import AcsegError
from acseg_core.inference.cache import prediction_key
from acseg_core.inference.predict import PredictOptions, check_options
from acseg_core.jobs import run_to_end
from acseg_core.labelling.export import ExportItem, parse_formats
from acseg_core.labelling.export_job import STEPS, export_images, model_predictor
from acseg_core.labelling.project import Project
from acseg_core.model.checkpoint import load_model
from acseg_core.model.readouts import MODEL_DEFAULT


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "export",
        help="export label masks of a project (PNG + labelmap.txt, COG, polygons, areas, "
        "colour preview)",
        description="Export label masks of every image of a project: indexed PNG with the "
        "class palette and a CVAT labelmap.txt (png), a single-band Cloud-Optimised GeoTIFF "
        "with the source's CRS and transform and the class names for georeferenced images "
        "(tif), the classes as polygons in a GeoPackage per georeferenced image (gpkg), "
        "areas.csv with pixels, m² and ha per image and class (csv), an RGB preview (color).",
    )
    parser.add_argument("project", type=Path, help="project file (.acseg)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--format",
        default="png,tif",
        help="comma-separated: png,tif,gpkg,csv,color (default png,tif)",
    )
    add_min_area(parser)
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda for predicting")
    add_field_options(parser, PredictOptions, ("tile",), metavars={"tile": "PX"})
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    formats = parse_formats(args.format)
    if args.min_area is not None and args.min_area < 0:
        raise AcsegError("--min-area must be 0 or more pixels")
    project = Project.load(args.project)
    for warning in project.warnings:
        print(f"acseg-core export: warning: {warning}", file=sys.stderr)
    if not project.images:
        raise AcsegError(f"{args.project}: no image to export")
    loaded = predictor = key = None
    if project.model is not None:
        loaded = load_model(project.model, device=args.device)
        options = PredictOptions(**given(args, ("tile",)))
        check_options(loaded, options)  # a bad --tile: once, up front
        predictor = model_predictor(loaded, options)
        key = prediction_key(loaded, MODEL_DEFAULT)
    items = []
    for entry in project.images:
        cached = project.prediction(entry, key) if key is not None else None
        items.append(
            ExportItem(entry.name, cached, source=entry.path, edits=project.get_edits(entry))
        )
    job = export_images(
        items,
        project.class_map,
        args.out,
        formats=formats,
        overwrite=args.overwrite,
        predictor=predictor,
        min_area=args.min_area,
    )
    result = run_to_end(job, _progress_printer())
    for note in result.notes:
        print(f"acseg-core export: note: {note}", file=sys.stderr)
    for name, outputs in result.written.items():
        if outputs:  # csv alone writes no file per image
            print(f"{name}: " + ", ".join(str(p) for p in outputs.values()))
    if result.done:
        print(f"{len(result.done)} image(s) already exported, left as they are (--overwrite)")
    if result.labelmap is not None:
        print(f"labelmap: {result.labelmap}")
    if result.areas is not None:
        print(f"areas: {result.areas}")
    for name, reason in result.skipped:
        print(f"acseg-core export: skipped {name}: {reason}", file=sys.stderr)
    if result.skipped:
        print(
            f"acseg-core export: {len(result.skipped)} of {len(items)} image(s) skipped",
            file=sys.stderr,
        )
    return 1 if result.skipped else 0


def _progress_printer() -> Any:
    """One line per finished image on stderr."""
    def show(progress: Any) -> None:
        if progress.message.endswith(" written"):
            done, total = progress.done // STEPS, progress.total // STEPS
            print(f"[{done}/{total}] {progress.message}", file=sys.stderr)

    return show
