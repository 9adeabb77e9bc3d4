"""`acseg-core evaluate`: score a model or the k-means baseline against labels.

One Hungarian cluster→class mapping for the whole folder (the IIC/AC protocol),
plus per-image figures under that mapping. ``--json`` prints the figures.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

import numpy as np

from acseg_core.errors import AcsegError
from acseg_core.evaluation import evaluate as ev
from acseg_core.evaluation.evaluate import format_table
from acseg_core.jobs import run_to_end
from acseg_core.model.checkpoint import load_model
from acseg_core.model.readouts import KINDS, READOUTS, ReadOut

FORMAT_HELP = (
    "index | index:IGNORE[,IGNORE] | potsdam | colors:FILE (r,g,b,class_name lines) | "
    "lookup:CSV (value + class column); default index"
)


def register(sub: Any) -> None:
    parser = sub.add_parser(
        "evaluate",
        help="score a model or k-means against labels",
        description="Score a trained model (MODEL) or the k-means baseline (--method kmeans) "
        "against labelled images, with one cluster→class mapping for the whole folder.",
    )
    parser.add_argument("model", nargs="?", help="trained model file (model.pt)")
    parser.add_argument("--method", choices=("model", "kmeans"), default=None)
    parser.add_argument("--images", required=True, help="folder of images")
    parser.add_argument("--labels", help="folder of labels (default: the image folder)")
    parser.add_argument("--label-format", default="index", help=FORMAT_HELP)
    parser.add_argument(
        "--merge", help="group classes: potsdam3, or a CSV of class_name,merged_name lines"
    )
    parser.add_argument(
        "--keep", help="lookup tables: keep rows with COLUMN=VALUE (e.g. kind=stuff)"
    )
    parser.add_argument("--class-column", help="lookup tables: the class-name column")
    parser.add_argument(
        "--clusters", type=int, help="k-means K (default: number of classes present)"
    )
    parser.add_argument("--seed", type=int, default=0, help="k-means seed (default 0)")
    parser.add_argument(
        "--runs", type=int, default=1, help="k-means runs with seeds SEED, SEED+1, … (mean)"
    )
    parser.add_argument("--device", default="auto", help="auto|cpu|cuda (model only)")
    parser.add_argument(
        "--smooth",
        type=int,
        metavar="PX",
        help="model only: majority-filter window (0 = plain argmax; default: the model's)",
    )
    parser.add_argument(
        "--readout",
        choices=KINDS,
        help="model only: " + "; ".join(f"{n} = {READOUTS[n].label}" for n in KINDS)
        + " (default: the model's)",
    )
    parser.add_argument("--json", action="store_true", help="print the figures as JSON")
    parser.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    method = args.method or ("model" if args.model else None)
    if method is None:
        raise AcsegError("give a MODEL file or --method kmeans")
    if method == "model" and not args.model:
        raise AcsegError("--method model needs a MODEL file")
    if method == "kmeans" and args.model:
        raise AcsegError("give either a MODEL file or --method kmeans, not both")
    if (args.smooth is not None or args.readout) and method != "model":
        raise AcsegError("--smooth/--readout apply to a model's predictions, not to k-means")
    if args.runs < 1:
        raise AcsegError("--runs must be at least 1")

    folder = ev.open_labelled_folder(
        args.images, args.labels, args.label_format, args.merge, args.keep, args.class_column
    )
    evaluations = []
    if method == "kmeans":
        k = args.clusters or folder.classes_present
        if not 1 <= k <= 255:
            raise AcsegError(f"--clusters must be 1–255, got {k}")
        seeds = range(args.seed, args.seed + args.runs)
        evaluations = list(zip(seeds, ev.kmeans_baseline(folder, seeds, k), strict=True))
    else:
        loaded = load_model(args.model, device=args.device)
        k = int(loaded.config.clusters)
        readout = ReadOut(args.readout, args.smooth).resolve(loaded)
        job = ev.score_folder(folder, ev.model_source(loaded, readout=readout), k)
        evaluations.append((None, run_to_end(job)))

    _print(args, method, evaluations)
    return 0


def _print(args: argparse.Namespace, method: str, evaluations: list[tuple[Any, Any]]) -> None:
    if args.json:
        results = []
        for seed, evaluation in evaluations:
            result = {"method": method, **evaluation.to_dict()}
            if seed is not None:
                result["seed"] = seed
            results.append(result)
        if len(results) == 1:
            print(json.dumps(results[0], indent=2))
        else:
            summary: dict[str, Any] = {"method": method, "runs": results}
            for key in ("pixel_accuracy", "miou"):
                values = np.array([r[key] for r in results if r[key] is not None], dtype=float)
                summary[key] = round(float(values.mean()), 6) if values.size else None
                summary[f"{key}_std"] = round(float(values.std()), 6) if values.size else None
            print(json.dumps(summary, indent=2))
        return
    for seed, evaluation in evaluations:
        title = f"{method}" + (f" (seed {seed})" if seed is not None else "")
        print(format_table(evaluation, title))
        print()
    if len(evaluations) > 1:
        acc = np.array([e.scores.pixel_accuracy for _, e in evaluations])
        miou = np.array([e.scores.miou for _, e in evaluations])
        print(
            f"mean of {len(evaluations)} runs: pixel accuracy {100 * acc.mean():.1f} % "
            f"(± {100 * acc.std():.1f}), mIoU {100 * np.nanmean(miou):.1f} % "
            f"(± {100 * np.nanstd(miou):.1f})",
            file=sys.stdout,
        )
