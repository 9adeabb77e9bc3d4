"""Benchmark: a few strokes per class, three ways to label the rest (docs/strokes.md).

Strokes are simulated from the labels: per class, S disks of radius R px lying
wholly inside the class (seeded), on the first N images. On the same stroked pixels:

* ``forest`` — an ilastik-style random forest on smoothed-filter features
  (:mod:`acseg_core.benchmarks.ilastik`);
* ``bank-forest`` — the convpaint-style peer: a forest on the feature bank and the
  pixel values (:mod:`acseg_core.benchmarks.bank_forest`);
* ``unsupervised`` — the trained model's default read-out with the Hungarian
  cluster→class map over the whole dataset (the best naming a user could give);
* ``strokes`` — the strokes read-out fitted on the model (:mod:`acseg_core.learning.fit`),
  with the model's majority filter as ``predict`` applies it (``strokes-raw``: without).

Every image gives unlabelled samples, as ``acseg-core learn`` on the folder gathers
them; both forests get the same majority filter as the read-out, so a smoothed
read-out is compared with baselines smoothed the same way.

All are scored as pixel accuracy on every labelled pixel of every image. Each seed
draws its own strokes; the model is trained per seed (or, with ``--model-seed``,
once), and reused from ``--keep-runs`` where it is already there.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from acseg_core.benchmarks import ilastik
from acseg_core.benchmarks.accuracy import _replay, _score, _summary, settings_from_args
from acseg_core.benchmarks.accuracy_settings import log_to_stderr
from acseg_core.benchmarks.bank_forest import fit_bank_forest
from acseg_core.benchmarks.datasets import parse_spec
from acseg_core.benchmarks.refit import time_refit
from acseg_core.benchmarks.stroke_sim import model_for, read_labels, simulate_strokes
from acseg_core.errors import AcsegError
from acseg_core.evaluation import evaluate as ev
from acseg_core.features.for_model import with_bank
from acseg_core.labelling.classes import default_palette
from acseg_core.learning.finetune import finetune_trunk, stroked_input
from acseg_core.learning.fit import PSEUDO_PER_IMAGE, fit_strokes
from acseg_core.learning.live import LiveImage
from acseg_core.learning.samples import Samples
from acseg_core.learning.strokes import StrokeSet
from acseg_core.model.checkpoint import LoadedModel, load_model
from acseg_core.model.refine import decide, majority_filter


def run_dataset(spec: Any, args: argparse.Namespace, settings: Any, log: Any) -> dict[str, Any]:
    folder = ev.open_labelled_folder(
        spec.images, spec.labels, spec.label_format, spec.merge, spec.keep, spec.class_column
    )
    k = spec.k or folder.classes_present
    classes = folder.n_classes
    names = folder.label_format.names(classes)
    colours = [tuple(int(v) for v in default_palette()[i]) for i in range(classes)]
    stroked = list(range(min(args.images, len(folder.pairs))))
    root = Path(settings.keep_runs)
    features = root / "features"  # the bank's stores, shared by every seed and pass
    per_seed = []
    for seed in args.seeds:
        model_seed = seed if args.model_seed is None else args.model_seed
        model_path, train_s = model_for(spec, folder, k, model_seed, settings, root, log)
        loaded = load_model(model_path, device="cpu")
        smooth = int(loaded.config.readout.smooth)
        entry: dict[str, Any] = {"seed": seed, "model_seed": model_seed, "train_s": train_s}
        strokes = {s: {i: simulate_strokes(read_labels(folder, i), s, args.radius, seed + 97 * i)
                       for i in stroked} for s in args.per_class}  # fmt: skip
        # (c) and (a'): every image's samples as `learn` gathers them (strokes where
        # stroked, unlabelled pixels everywhere), then one fit per S
        t0 = time.perf_counter()
        samples: dict[int, list[Any]] = {s: [] for s in args.per_class}
        cluster_maps = []
        for i, pair in enumerate(folder.pairs):
            live = LiveImage(loaded, pair.image, feature_cache=features)
            cluster_maps.append(live.network.base.numpy())
            for s in args.per_class:
                marks = strokes[s].get(i)
                stroke_set = (StrokeSet.from_map(marks) if marks is not None
                              else StrokeSet.empty(*live.shape))  # fmt: skip
                samples[s].append(live.samples(stroke_set, pseudo=PSEUDO_PER_IMAGE, seed=seed))
            del live
        gather_s = time.perf_counter() - t0
        fitted, fit_s, bank_forests, bank_forest_fit_s = {}, {}, {}, {}
        levels = with_bank(loaded).model.readout_shape.bank_levels
        for s in args.per_class:
            t0 = time.perf_counter()
            fitted[s] = fit_strokes(loaded, samples[s], names, colours, seed=seed)
            fit_s[s] = gather_s / len(args.per_class) + time.perf_counter() - t0
            t0 = time.perf_counter()
            bank_forests[s] = fit_bank_forest(levels, Samples.concat(samples[s]), seed)
            bank_forest_fit_s[s] = gather_s / len(args.per_class) + time.perf_counter() - t0
        # (a): forest features of the stroked images, one forest per S
        t0 = time.perf_counter()
        feats = {i: ilastik.pixel_features(folder.pairs[i].image) for i in stroked}
        feat_s = time.perf_counter() - t0
        forests, forest_fit_s = {}, {}
        for s in args.per_class:
            t0 = time.perf_counter()
            x = np.concatenate([feats[i][strokes[s][i] != 255] for i in stroked])
            y = np.concatenate([strokes[s][i][strokes[s][i] != 255] for i in stroked])
            forests[s] = ilastik.forest(seed).fit(x, y)
            forest_fit_s[s] = feat_s / len(args.per_class) + time.perf_counter() - t0
        del feats
        inferred = {}
        if args.infer_map:
            for s in args.per_class:
                t0 = time.perf_counter()
                inferred[s] = fit_strokes(loaded, samples[s], names, colours, seed=seed,
                                          infer_map=True)  # fmt: skip
                fit_s[f"inferred{s}"] = gather_s / len(args.per_class) + time.perf_counter() - t0
        del samples
        tuned = {}
        for n in args.finetune_steps or []:
            for s in args.per_class:
                t0 = time.perf_counter()
                tuned[(n, s)] = finetune_fit(loaded, folder, stroked, strokes[s], n, names,
                                             colours, seed)  # fmt: skip
                fit_s[f"finetune{n}-{s}"] = time.perf_counter() - t0
        # one pass over every image: trunk once, then every read-out and forest, each
        # forest with the same majority filter as the read-out
        correct = {f"{m}{s}": 0 for m in ("forest", "bank-forest", "strokes", "strokes-raw")
                   for s in args.per_class}  # fmt: skip
        seconds = {key: 0.0 for key in correct}
        labelled, trunk_s = 0, 0.0
        for i, pair in enumerate(folder.pairs):
            truth = read_labels(folder, i)
            mask = truth >= 0
            labelled += int(mask.sum())
            t0 = time.perf_counter()
            live = LiveImage(loaded, pair.image, feature_cache=features)
            trunk_s += time.perf_counter() - t0
            t0 = time.perf_counter()
            feats_i = ilastik.pixel_features(pair.image)
            feat_i_s = time.perf_counter() - t0
            for s in args.per_class:
                t0 = time.perf_counter()
                probs = live.probabilities(fitted[s])
                raw = probs.argmax(dim=0).numpy()
                seconds[f"strokes-raw{s}"] += time.perf_counter() - t0
                correct[f"strokes-raw{s}"] += int((raw == truth)[mask].sum())
                t0 = time.perf_counter()
                ids = raw
                if smooth > 1:
                    ids = decide(probs, smooth)[1].numpy()
                seconds[f"strokes{s}"] += time.perf_counter() - t0
                correct[f"strokes{s}"] += int((ids == truth)[mask].sum())
                t0 = time.perf_counter()
                pred = _filtered(ilastik.predict_image(forests[s], feats_i), classes, smooth)
                seconds[f"forest{s}"] += time.perf_counter() - t0 + feat_i_s
                correct[f"forest{s}"] += int((pred == truth)[mask].sum())
                t0 = time.perf_counter()
                pred = _filtered(bank_forests[s].predict(live), classes, smooth)
                seconds[f"bank-forest{s}"] += time.perf_counter() - t0
                correct[f"bank-forest{s}"] += int((pred == truth)[mask].sum())
            del live
        for s, model in inferred.items():
            hits, predict_s = score_model(model, folder, smooth)
            entry[f"strokes-inferred{s}"] = _result(hits, labelled, fit_s[f"inferred{s}"],
                                                    predict_s)  # fmt: skip
        for (n, s), model in tuned.items():
            key = f"finetune{n}-strokes{s}"
            hits, predict_s = score_model(model, folder, smooth)
            entry[key] = _result(hits, labelled, fit_s[f"finetune{n}-{s}"], predict_s)
        for s in args.per_class:
            raw_s = trunk_s + seconds[f"strokes-raw{s}"]
            entry[f"strokes{s}"] = _result(
                correct[f"strokes{s}"], labelled, fit_s[s], raw_s + seconds[f"strokes{s}"]
            )
            entry[f"strokes-raw{s}"] = _result(correct[f"strokes-raw{s}"], labelled, fit_s[s],
                                               trunk_s + seconds[f"strokes-raw{s}"])  # fmt: skip
            entry[f"forest{s}"] = _result(correct[f"forest{s}"], labelled, forest_fit_s[s],
                                          seconds[f"forest{s}"])  # fmt: skip
            entry[f"bank-forest{s}"] = _result(correct[f"bank-forest{s}"], labelled,
                                               bank_forest_fit_s[s],
                                               trunk_s + seconds[f"bank-forest{s}"])  # fmt: skip
            entry[f"stroked_pixels{s}"] = int(sum((m != 255).sum() for m in strokes[s].values()))
        # (b): the default read-out (with its filter) and the Hungarian map
        t0 = time.perf_counter()
        maps = [majority_filter(m, k, smooth) if smooth > 1 else m for m in cluster_maps]
        scored = _score(ev, folder, _replay(maps), k)
        entry["unsupervised"] = {
            "pixel_accuracy": scored["pixel_accuracy"],
            "fit_s": train_s,
            "predict_s": round(trunk_s + time.perf_counter() - t0, 2),
        }
        log(f"{spec.name} seed {seed}: " + ", ".join(
            f"{key} {v['pixel_accuracy']:.1f}" for key, v in entry.items()
            if isinstance(v, dict)))  # fmt: skip
        per_seed.append(entry)
    methods = [key for key, v in per_seed[0].items() if isinstance(v, dict)]
    fields = ("pixel_accuracy", "fit_s", "predict_s")
    summary = {
        m: {field: _summary([e[m][field] for e in per_seed]) for field in fields} for m in methods
    }
    return {"name": spec.name, "images": len(folder.pairs), "classes": classes, "k": k,
            "stroked_images": len(stroked), "summary": summary, "per_seed": per_seed}  # fmt: skip


def _filtered(ids: np.ndarray, classes: int, smooth: int) -> np.ndarray:
    """``ids`` with the read-out's majority filter (the same refinement for every method)."""
    return majority_filter(ids.astype(np.uint8), classes, smooth) if smooth > 1 else ids


def finetune_fit(loaded: LoadedModel, folder: Any, stroked: list[int], maps: dict[int, np.ndarray],
                 steps: int, names: list[str], colours: list[Any], seed: int) -> Any:  # fmt: skip
    """Fine-tune the trunk ``steps`` MI + CE steps on the strokes, then fit the read-out."""
    sets = {i: StrokeSet.from_map(maps[i]) for i in stroked}
    items = [stroked_input(loaded, str(folder.pairs[i].image), sets[i]) for i in stroked]
    model = finetune_trunk(loaded, items, len(names), steps, seed=seed)
    samples = [LiveImage(model, folder.pairs[i].image).samples(sets[i]) for i in stroked]
    return fit_strokes(model, samples, names, colours, seed=seed)


def score_model(fitted: LoadedModel, folder: Any, smooth: int) -> tuple[int, float]:
    """Correct labelled pixels of a strokes model over the folder (with its filter) and
    the seconds it took (network pass included)."""
    hits, t0 = 0, time.perf_counter()
    for i, pair in enumerate(folder.pairs):
        truth = read_labels(folder, i)
        pred = LiveImage(fitted, pair.image).predict(fitted, smooth)
        hits += int((pred == truth)[truth >= 0].sum())
    return hits, time.perf_counter() - t0


def _result(correct: int, total: int, fit_s: float, predict_s: float) -> dict[str, float]:
    return {"pixel_accuracy": round(100.0 * correct / max(total, 1), 2),
            "fit_s": round(fit_s, 2), "predict_s": round(predict_s, 2)}  # fmt: skip


def add_arguments(parser: argparse.ArgumentParser) -> None:
    group = parser.add_argument_group("strokes (--strokes)")
    group.add_argument(
        "--strokes", nargs="+", metavar="DATASET_SPEC",
        help="simulated strokes: forest vs unsupervised vs the strokes read-out",
    )  # fmt: skip
    group.add_argument("--per-class", type=int, nargs="+", default=[5, 20], metavar="S",
                       help="disks per class (default 5 20)")  # fmt: skip
    group.add_argument("--radius", type=int, default=6, metavar="R", help="disk radius px (6)")
    group.add_argument("--images", type=int, default=3, metavar="N",
                       help="stroke the first N images (3)")  # fmt: skip
    group.add_argument("--model-seed", type=int, metavar="S",
                       help="train one model (this seed) for every stroke seed")  # fmt: skip
    group.add_argument("--finetune-steps", type=int, nargs="+", metavar="N",
                       help="also fine-tune the trunk N MI + cross-entropy steps on the "
                       "strokes before fitting the read-out (one row per N)")  # fmt: skip
    group.add_argument("--infer-map", action="store_true",
                       help="also fit with pseudo-samples labelled by a cluster→class map "
                       "inferred from the strokes (row strokes-inferred)")  # fmt: skip
    group.add_argument("--refit-size", type=int, default=1000, metavar="PX",
                       help="side of the image the live refit is timed on (1000)")  # fmt: skip


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    if min(args.per_class) < 1 or args.radius < 1 or args.images < 1:
        raise AcsegError("--per-class, --radius and --images must be at least 1")
    settings = settings_from_args(args)
    log = log_to_stderr
    started = time.perf_counter()
    with contextlib.ExitStack() as stack:
        if settings.keep_runs is None:  # models in a temp folder, removed at the end
            scratch = stack.enter_context(tempfile.TemporaryDirectory(prefix="acseg-strokes-"))
            settings = replace(settings, keep_runs=scratch)
        datasets = [run_dataset(parse_spec(text), args, settings, log) for text in args.strokes]
        try:
            refit = time_refit(datasets, args, settings, log)
        except AcsegError as exc:  # e.g. no class of the first image fits a disk
            refit = {"error": str(exc)}
    result = {
        "command": "acseg-core " + " ".join(sys.argv[1:]),
        "datasets": datasets,
        "refit": refit,
        "wall_minutes": round((time.perf_counter() - started) / 60, 1),
    }
    log(format_table(datasets, args.per_class))
    return result if args.json else {d["name"]: _row(d, args.per_class) for d in datasets}


def format_table(datasets: list[dict[str, Any]], per_class: list[int]) -> str:
    """Markdown: pixel accuracy mean ± sd, fit / predict seconds, per method and S."""
    lines = ["| dataset | S | (a) ilastik-style forest | (a') forest on the bank | "
             "(b) unsupervised + Hungarian | (c) strokes | (c) − max(a, b) | (c) − a' |",
             "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for d in datasets:
        for s in per_class:
            sm = d["summary"]
            a, peer = sm[f"forest{s}"], sm[f"bank-forest{s}"]
            b, c = sm["unsupervised"], sm[f"strokes{s}"]
            gap = c["pixel_accuracy"]["mean"] - max(a["pixel_accuracy"]["mean"],
                                                    b["pixel_accuracy"]["mean"])  # fmt: skip
            over_peer = c["pixel_accuracy"]["mean"] - peer["pixel_accuracy"]["mean"]
            lines.append(f"| {d['name']} | {s} | {_cell(a)} | {_cell(peer)} | {_cell(b)} | "
                         f"{_cell(c)} | {gap:+.1f} | {over_peer:+.1f} |")  # fmt: skip
            for key in sorted(k for k in sm if k in (f"strokes-inferred{s}",) or (
                    k.startswith("finetune") and k.endswith(f"-strokes{s}"))):  # fmt: skip
                lines.append(f"| {d['name']} | {s} | | | {key}: {_cell(sm[key])} | |")
    return "\n".join(lines)


def _cell(summary: dict[str, Any]) -> str:
    acc, fit, pred = summary["pixel_accuracy"], summary["fit_s"], summary["predict_s"]
    return (f"{acc['mean']:.1f} ± {acc['std']:.1f} (fit {fit['mean']:.1f} s, "
            f"predict {pred['mean']:.1f} s)")  # fmt: skip


def _row(d: dict[str, Any], per_class: list[int]) -> str:
    sm = d["summary"]
    parts = [f"unsupervised {sm['unsupervised']['pixel_accuracy']['mean']:.1f}"]
    for s in per_class:
        parts.append(f"S={s}: forest {sm[f'forest{s}']['pixel_accuracy']['mean']:.1f}, "
                     f"bank-forest {sm[f'bank-forest{s}']['pixel_accuracy']['mean']:.1f}, "
                     f"strokes {sm[f'strokes{s}']['pixel_accuracy']['mean']:.1f}")  # fmt: skip
    return "; ".join(parts)


__all__ = ["add_arguments", "format_table", "run", "run_dataset", "simulate_strokes"]
