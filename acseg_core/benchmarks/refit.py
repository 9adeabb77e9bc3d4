"""The live-refit figure: seconds from a new stroke to a new prediction of the view.

A ``--refit-size`` square image is cut from (or tiled out of) the first dataset's
first image; its :class:`~acseg_core.learning.live.LiveImage` is built once (as
when the image is shown: ``view_s``, the feature bank included), then one stroke is
added and the samples (strokes and unlabelled pixels, as ``learn`` gathers them), the
fit and the prediction (with the model's filter) are timed together.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from acseg_core.benchmarks.datasets import parse_spec
from acseg_core.benchmarks.stroke_sim import model_for, read_labels, simulate_strokes
from acseg_core.evaluation import evaluate as ev
from acseg_core.io.raster import open_raster
from acseg_core.labelling.classes import default_palette
from acseg_core.learning.fit import PSEUDO_PER_IMAGE, fit_strokes
from acseg_core.learning.live import LiveImage
from acseg_core.learning.strokes import StrokeSet
from acseg_core.model.checkpoint import load_model


def time_refit(datasets: list[dict[str, Any]], args: argparse.Namespace, settings: Any,
               log: Any, repeats: int = 3) -> dict[str, Any]:  # fmt: skip

    spec = parse_spec(args.strokes[0])
    folder = ev.open_labelled_folder(
        spec.images, spec.labels, spec.label_format, spec.merge, spec.keep, spec.class_column
    )
    k = spec.k or folder.classes_present
    root = Path(settings.keep_runs)
    seed = args.seeds[0] if args.model_seed is None else args.model_seed
    model_path, _ = model_for(spec, folder, k, seed, settings, root, log)
    loaded = load_model(model_path, device="cpu")
    side = args.refit_size
    with open_raster(folder.pairs[0].image) as raster:
        pixels = np.moveaxis(raster.read(), 0, -1)
    labels = read_labels(folder, 0)
    reps = (-(-side // pixels.shape[0]), -(-side // pixels.shape[1]))
    pixels = np.tile(pixels, (*reps, 1))[:side, :side]
    labels = np.tile(labels, reps)[:side, :side]
    names = folder.label_format.names(folder.n_classes)
    colours = [tuple(int(v) for v in default_palette()[i]) for i in range(len(names))]
    with tempfile.TemporaryDirectory(prefix="acseg-refit-") as scratch:
        image = Path(scratch) / "view.png"
        Image.fromarray(pixels.astype(np.uint8)).save(image)
        t0 = time.perf_counter()
        live = LiveImage(loaded, image)
        view_s = time.perf_counter() - t0
        strokes = simulate_strokes(labels, 5, args.radius, 0)
        times = []
        for extra in range(repeats):
            more = simulate_strokes(labels, 1, args.radius, 1000 + extra)
            current = np.where(more != 255, more, strokes)
            t0 = time.perf_counter()
            samples = live.samples(StrokeSet.from_map(current), pseudo=PSEUDO_PER_IMAGE)
            fitted = fit_strokes(loaded, [samples], names, colours, seed=0)
            live.predict(fitted)
            times.append(time.perf_counter() - t0)
    log(f"refit on a {side}² view: {np.median(times):.2f} s (view built in {view_s:.2f} s)")
    return {
        "side": side,
        "dataset": spec.name,
        "refit_s": [round(t, 2) for t in times],
        "refit_s_median": round(float(np.median(times)), 2),
        "view_s": round(view_s, 2),
    }


__all__ = ["time_refit"]
