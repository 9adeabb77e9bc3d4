"""`acseg-core export PROJECT --out DIR`: label masks of every image of a project.

Each image's cluster map is the project's cached prediction when there is one, else
it is predicted with the project's model (into a temporary file, by windows). The
class map and the hand edits of the project are applied, then the chosen formats are
written (see :mod:`acseg_core.labelling.export`). Images that are missing and have no cached
prediction are reported and skipped; the exit code is then 1.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any

from acseg_core.errors import AcsegError


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "export",
        help="export label masks of a project (PNG + labelmap.txt, GeoTIFF, colour preview)",
        description="Export label masks of every image of a project: indexed PNG with the "
        "class palette and a CVAT labelmap.txt (png), a single-band GeoTIFF with the "
        "source's CRS and transform for georeferenced images (tif), an RGB preview (color).",
    )
    parser.add_argument("project", type=Path, help="project file (.acseg)")
    parser.add_argument("--out", type=Path, required=True, help="output folder")
    parser.add_argument(
        "--format", default="png,tif", help="comma-separated: png,tif,color (default png,tif)"
    )
    parser.add_argument("--overwrite", action="store_true", help="replace existing outputs")
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda for predicting")
    parser.add_argument("--tile", type=int, default=512, help="prediction tile size (512)")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    from acseg_core.labelling.export import ExportItem, export_labels, parse_formats
    from acseg_core.labelling.project import Project

    formats = parse_formats(args.format)
    project = Project.load(args.project)
    for warning in project.warnings:
        print(f"acseg-core export: warning: {warning}", file=sys.stderr)
    skipped = 0
    with tempfile.TemporaryDirectory(prefix="acseg-export-") as scratch:
        predictor = _Predictor(project, args.device, args.tile, Path(scratch))
        items = []
        for entry in project.images:
            if entry.prediction is None and not entry.exists:
                print(
                    f"acseg-core export: warning: {entry.path}: image not found and no cached "
                    "prediction; skipped (relink it in the project)",
                    file=sys.stderr,
                )
                skipped += 1
                continue
            items.append(entry)
        if not items:
            raise AcsegError(f"{args.project}: no image to export")
        export_items = []
        for entry in items:
            clusters = entry.prediction or predictor.predict(entry.path)
            export_items.append(
                ExportItem(
                    name=entry.name,
                    clusters=clusters,
                    source=entry.path,
                    edits=project.get_edits(entry),
                )
            )
        job = export_labels(
            export_items, project.class_map, args.out, formats=formats, overwrite=args.overwrite
        )
        result = _drain(job)
    for note in result.notes:
        print(f"acseg-core export: note: {note}", file=sys.stderr)
    for name, outputs in result.written.items():
        print(f"{name}: " + ", ".join(str(p) for p in outputs.values()))
    if result.labelmap is not None:
        print(f"labelmap: {result.labelmap}")
    return 1 if skipped else 0


def _drain(job: Any) -> Any:
    last = ""
    while True:
        try:
            progress = next(job)
        except StopIteration as stop:
            return stop.value
        if progress.message.startswith("Exported") and progress.message != last:
            last = progress.message
            print(f"[{progress.done}/{progress.total}] {progress.message}", file=sys.stderr)


class _Predictor:
    """Predicts missing cluster maps with the project's model, loaded on first use."""

    def __init__(self, project: Any, device: str, tile: int, scratch: Path) -> None:
        self.project = project
        self.device = device
        self.tile = tile
        self.scratch = scratch
        self._loaded: Any = None

    def predict(self, image: Path) -> Path:
        from acseg_core.cli.predict import is_geotiff
        from acseg_core.inference.predict import predict

        if self.project.model is None:
            raise AcsegError(
                f"{self.project.path}: {image.name} has no cached prediction "
                "and the project has no model"
            )
        if self._loaded is None:
            from acseg_core.model.checkpoint import load_model

            self._loaded = load_model(self.project.model, device=self.device)
        out = self.scratch / f"{len(list(self.scratch.iterdir()))}.tif"
        if not is_geotiff(image):
            out = out.with_suffix(".png")
        print(f"acseg-core export: predicting {image.name}", file=sys.stderr)
        job = predict(self._loaded, image, out=out, tile=self.tile)
        _drain(job)
        return out
