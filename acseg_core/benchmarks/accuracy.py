"""Benchmark: AC against the k-means yardstick on labelled folders (docs/accuracy.md).

For each dataset: train AC on the dataset's own images (unsupervised and
transductive, as IIC and AC evaluate) under a wall-clock (or step) budget, predict
every image, score with ONE Hungarian cluster→class map over the whole folder
(:func:`acseg_core.evaluation.evaluate.score_folder`), and run the k-means baseline on the same
pixels with the same K. Each seed trains its own model; figures are the mean and
the spread (sample standard deviation, min–max) over seeds — never the best run.

Methods scored per seed (all from the same trained model / k-means fit):

* ``ac``              — the network's head, argmax (plain AC, ``predict --readout head``);
* ``ac+smooth``       — that map majority-filtered over the model's ``smooth`` px
  (what ``predict(..., smooth=N)`` computes tile by tile; ``acseg_core.model.refine``);
* ``ac-kmeans``       — the k-means read-out: k-means on [AC's learned features,
  pixel values] fitted after training (``acseg_core.model.readouts.kmeans``);
* ``ac-kmeans+smooth``— that map with the same filter: the shipped default read-out
  of ``cpu-small`` models;
* ``kmeans``          — k-means on pixel values (``evaluate.kmeans_baseline``);
* ``kmeans+smooth``   — the same majority filter on the k-means map: the control
  that shows how much of the gain is the refinement rather than the model;
* ``bank-kmeans``     — k-means on the feature bank's whitened principal components
  (``evaluation.kmeans_bank``): what a user with the bank would otherwise have;
* ``bank-kmeans+smooth`` — that map with the same filter (the second control);
* ``ac-chosen+smooth``— per folder and seed, whichever of ``ac+smooth`` and
  ``ac-kmeans+smooth`` has the more balanced cluster shares (label-free:
  ``evaluation.readout_choice``), against always taking one of them.

Beside the figures: seconds per megapixel of the folder for training (AC: the run;
k-means on the bank: the bank's features plus the fit) and for prediction (the bank's
features included for whatever reads them), with the machine's load average, so a
method that wins by being slower says so.

Every model is trained with the k-means read-out (it does not change training), so
one training run gives both AC read-outs.

Datasets: :mod:`acseg_core.benchmarks.datasets`.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, replace
from pathlib import Path
from typing import Any

import numpy as np

from acseg_core.benchmarks.accuracy_settings import (
    BenchSettings,
    add_arguments,
    log_to_stderr,
    settings_from_args,
)
from acseg_core.benchmarks.datasets import DatasetSpec, parse_spec
from acseg_core.errors import AcsegError
from acseg_core.evaluation import evaluate as ev
from acseg_core.evaluation.evaluate import kmeans_source
from acseg_core.evaluation.kmeans_bank import bank_kmeans_maps, bank_stores, fit_bank_kmeans
from acseg_core.evaluation.readout_choice import most_balanced
from acseg_core.features.bank import load_bank
from acseg_core.io.raster import probe
from acseg_core.jobs import CancelToken, run_to_end
from acseg_core.model.bankconfig import BankConfig
from acseg_core.model.checkpoint import load_model
from acseg_core.model.readouts import ReadOut
from acseg_core.model.refine import majority_filter
from acseg_core.presets import overclusters_for, preset
from acseg_core.training.config import TrainConfig
from acseg_core.training.dataset import scan_inputs
from acseg_core.training.loop import steps_per_epoch_for, train

METHODS = (
    "ac", "ac+smooth", "ac-kmeans", "ac-kmeans+smooth", "kmeans", "kmeans+smooth",
    "bank-kmeans", "bank-kmeans+smooth", "ac-chosen+smooth",
)  # fmt: skip
CONTROLS = ("kmeans+smooth", "bank-kmeans+smooth")  # what the default must beat
MODEL_READOUTS = {"ac": "head", "ac-kmeans": "kmeans"}  # method -> predict(readout=)


def train_config(spec: DatasetSpec, images: Sequence[Path], k: int, seed: int,
                 settings: BenchSettings, out_dir: Path) -> Any:  # fmt: skip
    """The TrainConfig the benchmark trains with: the preset's record (what
    ``acseg-core train`` and the app use) plus the options given."""
    # the k-means read-out is fitted after training and changes nothing before it, so
    # every bench model has one and is scored with both read-outs
    model_overrides: dict[str, Any] = {
        "clusters": k, "sobel": spec.sobel, "readout": ReadOut("kmeans", settings.smooth),
    }  # fmt: skip
    if settings.overcluster_factor is not None:
        model_overrides["overclusters"] = overclusters_for(k, settings.overcluster_factor)
    if settings.base_width:
        model_overrides["base_width"] = settings.base_width
    if settings.heads:
        model_overrides["heads"] = settings.heads
    model = preset(settings.preset, **model_overrides)
    given = {
        name: value
        for name, value in (
            ("crop", settings.crop),
            ("batch", settings.batch),
            ("lr", settings.lr),
            ("displacement", settings.displacement),
        )
        if value is not None
    }
    overrides = dict(settings.train_overrides)
    if spec.jitter_bands is not None and "jitter_bands" not in overrides:
        overrides["jitter_bands"] = spec.jitter_bands
    steps = settings.steps or default_steps(TrainConfig(model=model, scale=settings.scale,
                                                        **given), images)  # fmt: skip
    return TrainConfig(
        inputs=tuple(str(p) for p in images),
        out_dir=str(out_dir),
        model=model,
        steps=steps,
        steps_per_epoch=steps,  # one epoch: the checkpoint is written once, at the end
        device=settings.device,
        seed=seed,
        workers=0,  # images are small; a loader process would only compete for the cores
        scale=settings.scale,
        **given,
        **overrides,
    )


def default_steps(training: TrainConfig, images: Sequence[Path]) -> int:
    """The total steps ``acseg-core train`` runs on ``images`` with these defaults:
    epochs × steps per epoch (a data-sized epoch when the preset leaves it open)."""
    if training.steps:
        return int(training.steps)
    if training.steps_per_epoch:
        return int(training.epochs * training.steps_per_epoch)
    scan = scan_inputs(images, crop=training.crop, small=training.small_images)
    return int(training.epochs * steps_per_epoch_for(scan, training))


# -- one dataset ---------------------------------------------------------------------


Log = Callable[[str], None]


def _quiet(_: str) -> None:
    return None


def train_for_budget(cfg: Any, minutes: float | None, log: Log = _quiet) -> dict[str, Any]:
    """Run ``train`` until its steps are done or ``minutes`` have passed (scan included)."""
    cancel = CancelToken()
    losses: list[float] = []
    started = time.perf_counter()

    def watched() -> Iterator[Any]:
        job = train(cfg, cancel)
        last_log = started
        while True:
            try:
                progress = next(job)
            except StopIteration as stop:
                return stop.value
            metrics = progress.metrics or {}
            now = time.perf_counter()
            if metrics.get("loss") is not None and metrics.get("phase") == "train":
                losses.append(float(metrics["loss"]))
            if minutes is not None and now - started > minutes * 60:
                cancel.cancel()  # train saves the model and stops before the next step
            if now - last_log > 30:
                last_log = now
                log(f"  {progress.message}")
            yield progress

    result = run_to_end(watched())
    if result is None:
        raise AcsegError(f"training in {cfg.out_dir} stopped before its first step")
    return {
        "model_path": str(result.model_path),
        "steps": result.step,
        "train_s": round(time.perf_counter() - started, 1),
        "final_loss": round(float(np.mean(losses[-20:])), 4) if losses else None,
    }


def run_dataset(spec: DatasetSpec, settings: BenchSettings, log: Log = _quiet) -> dict[str, Any]:
    """All seeds of AC and both k-means controls on one dataset; per-seed figures,
    summaries and seconds per megapixel."""
    folder = ev.open_labelled_folder(
        spec.images, spec.labels, spec.label_format, spec.merge, spec.keep, spec.class_column
    )
    k = spec.k or folder.classes_present
    megapixels = sum(probe(p).pixels for p in folder.images) / 1e6
    log(
        f"{spec.name}: {len(folder.pairs)} image(s), {megapixels:.2f} Mpx, "
        f"{folder.classes_present} classes present, K = {k}"
    )
    per_seed: list[dict[str, Any]] = []
    trained_with: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="acseg-accuracy-bank-") as bank_root:
        bank = load_bank(BankConfig())  # once per process: not counted per megapixel
        started = time.perf_counter()
        stores = bank_stores(bank, folder.images, Path(bank_root))
        bank_s = time.perf_counter() - started
        log(f"{spec.name}: feature bank {bank_s:.1f} s ({bank_s / megapixels:.2f} s/Mpx)")
        for seed in settings.seeds:
            entry: dict[str, Any] = {"seed": seed}
            cfg = train_config(spec, folder.images, k, seed, settings, Path(bank_root) / "run")
            model_maps: dict[str, list[np.ndarray]] = {}
            if not settings.controls_only:
                trained_with, model_maps = _train_and_predict(
                    spec, folder, k, seed, settings, Path(bank_root), entry, log
                )
            smooth = cfg.model.readout.smooth
            filtered_maps = {}
            for method, maps in model_maps.items():
                entry[method] = _score(ev, folder, _replay(maps), k)
                if smooth > 1:  # = predict(..., smooth=N), without predicting twice
                    smoothed = [majority_filter(m, k, smooth) for m in maps]
                    entry[method + "+smooth"] = _score(ev, folder, _replay(smoothed), k)
                    filtered_maps[method + "+smooth"] = smoothed
            if len(filtered_maps) == 2:  # the default first: it wins a tie
                order = sorted(filtered_maps, key=lambda m: m != "ac-kmeans+smooth")
                chosen = most_balanced({m: filtered_maps[m] for m in order}, k)
                entry["ac-chosen+smooth"] = {**entry[chosen], "chosen": chosen}
            del model_maps, filtered_maps
            kmeans_maps = list(_kmeans_maps(folder, k, seed))
            entry["kmeans"] = _score(ev, folder, _replay(kmeans_maps), k)
            if smooth > 1:
                filtered = [majority_filter(m, k, smooth) for m in kmeans_maps]
                entry["kmeans+smooth"] = _score(ev, folder, _replay(filtered), k)
            began = time.perf_counter()
            centres = fit_bank_kmeans(stores, k, seed)
            entry["bank_kmeans_fit_s"] = round(time.perf_counter() - began, 2)
            began = time.perf_counter()
            bank_maps = list(bank_kmeans_maps(centres, stores))
            entry["bank_kmeans_assign_s"] = round(time.perf_counter() - began, 2)
            entry["bank-kmeans"] = _score(ev, folder, _replay(bank_maps), k)
            if smooth > 1:
                filtered = [majority_filter(m, k, smooth) for m in bank_maps]
                entry["bank-kmeans+smooth"] = _score(ev, folder, _replay(filtered), k)
            log(f"{spec.name} seed {seed}: " + _seed_line(entry))
            per_seed.append(entry)
        del stores
    reads_bank = trained_with.get("bank") is not None
    return {
        "name": spec.name,
        "spec": spec.describe(),
        "images": len(folder.pairs),
        "megapixels": round(megapixels, 3),
        "classes_present": folder.classes_present,
        "k": k,
        "trained_with": trained_with,
        "default_method": default_method(settings.preset, smooth),
        "smooth": smooth,
        "train_minutes_mean": _mean(per_seed, "train_s", 1 / 60),
        "steps_mean": _mean(per_seed, "steps"),
        "pixel_accuracy": _summaries(per_seed, "pixel_accuracy"),
        "miou": _summaries(per_seed, "miou"),
        "seconds_per_mpx": _seconds_per_mpx(per_seed, bank_s, megapixels, reads_bank),
        "load_average": [round(v, 2) for v in os.getloadavg()],
        "per_seed": per_seed,
    }


def _train_and_predict(
    spec: DatasetSpec,
    folder: Any,
    k: int,
    seed: int,
    settings: BenchSettings,
    bank_root: Path,
    entry: dict[str, Any],
    log: Log,
) -> tuple[dict[str, Any], dict[str, list[np.ndarray]]]:
    """Train one seed's AC model and predict the folder with both read-outs, unfiltered;
    fills ``entry`` with the training figures and prediction seconds."""
    keep_root = Path(settings.keep_runs) if settings.keep_runs else None
    with tempfile.TemporaryDirectory(prefix="acseg-accuracy-") as scratch:
        run_dir = (keep_root or Path(scratch)) / f"{spec.name}-seed{seed}"
        if run_dir.exists():
            shutil.rmtree(run_dir)
        cfg = train_config(spec, folder.images, k, seed, settings, run_dir)
        cfg = replace(cfg, feature_cache=str(bank_root))  # the bank once per folder
        log(f"{spec.name} seed {seed}: training ({_budget_text(settings)})")
        training = train_for_budget(cfg, settings.minutes, log)
        entry.update(training)
        loaded = load_model(training["model_path"], device=settings.device)
        model_maps = {}
        for method, kind in MODEL_READOUTS.items():
            began = time.perf_counter()
            source = ev.model_source(loaded, precision="fp32", readout=ReadOut(kind, 0),
                                     feature_cache=bank_root)  # fmt: skip
            model_maps[method] = list(source(folder.images))
            entry[f"{method}_predict_s"] = round(time.perf_counter() - began, 2)
    return _trained_with(cfg), model_maps


def _trained_with(cfg: Any) -> dict[str, Any]:
    """The training settings a dataset's figures came from (for the JSON record)."""
    return {
        "lr": cfg.lr, "crop": cfg.crop, "batch": cfg.batch,
        "displacement": cfg.displacement, "scale": cfg.scale,
        "preset": cfg.model.preset, "blocks": cfg.model.blocks,
        "base_width": cfg.model.base_width, "clusters": cfg.model.clusters,
        "overclusters": cfg.model.overclusters, "sobel": cfg.model.sobel,
        "encoder": cfg.model.encoder,
        "bank": cfg.model.bank.key if cfg.model.bank is not None else None,
        "smooth": cfg.model.readout.smooth, "steps": cfg.steps,
        "heads": cfg.model.heads,
        "entropy_weight": cfg.entropy_weight, "view_jitter": list(cfg.view_jitter),
        "view_flip": cfg.view_flip, "jitter_bands": cfg.jitter_bands,
        "plateau_tol": cfg.plateau_tol,
    }  # fmt: skip


def _mean(per_seed: list[dict[str, Any]], key: str, factor: float = 1.0) -> float | None:
    """Mean of ``key`` over the seeds that have it (None: none has, e.g. controls only)."""
    values = [s[key] for s in per_seed if key in s]
    return round(float(np.mean(values)) * factor, 2) if values else None


def _summaries(per_seed: list[dict[str, Any]], metric: str) -> dict[str, Any]:
    return {
        method: _summary([s[method][metric] for s in per_seed if method in s])
        for method in METHODS
        if any(method in s for s in per_seed)
    }


def _seconds_per_mpx(
    per_seed: list[dict[str, Any]], bank_s: float, megapixels: float, reads_bank: bool
) -> dict[str, dict[str, float]]:
    """Mean seconds per megapixel of the folder, training and prediction, per method
    family; the bank's features are counted for whatever reads them (computed once
    per folder and shared by the methods here, so the bench pays them once)."""
    mpx = max(megapixels, 1e-9)

    def mean(key: str) -> float:
        return float(np.mean([s[key] for s in per_seed]))

    ac_bank = bank_s if reads_bank else 0.0
    trained = all("train_s" in s for s in per_seed)
    return {
        "ac": {"train": round((mean("train_s") + ac_bank) / mpx, 2),
               "predict": round((mean("ac-kmeans_predict_s") + ac_bank) / mpx, 2)}
        if trained else {},
        "kmeans-bank": {"train": round((bank_s + mean("bank_kmeans_fit_s")) / mpx, 2),
                        "predict": round((bank_s + mean("bank_kmeans_assign_s")) / mpx, 2)},
        "bank": {"features": round(bank_s / mpx, 2)},
    }  # fmt: skip


def default_method(preset_name: str, smooth: int) -> str:
    """The method that is what ``acseg-core predict`` gives with the preset's defaults."""
    method = "ac-kmeans" if preset(preset_name).readout.kind == "kmeans" else "ac"
    return method + ("+smooth" if smooth > 1 else "")


def _kmeans_maps(folder: Any, k: int, seed: int) -> Iterator[np.ndarray]:
    yield from kmeans_source(k, seed)(folder.images)


def _replay(maps: list[np.ndarray]) -> Callable[[Sequence[Path]], Iterator[np.ndarray]]:
    def source(_: Sequence[Path]) -> Iterator[np.ndarray]:
        yield from maps

    return source


def _score(ev: Any, folder: Any, source: Any, k: int) -> dict[str, Any]:
    """One Hungarian map over the whole folder; pixel accuracy and mIoU in %."""
    evaluation = run_to_end(ev.score_folder(folder, source, k))
    used = int(np.count_nonzero(evaluation.confusion.sum(axis=1)))
    return {
        "pixel_accuracy": round(100 * float(evaluation.scores.pixel_accuracy), 2),
        "miou": round(100 * float(evaluation.scores.miou), 2),
        "clusters_used": used,
        "mapping": [int(v) for v in evaluation.mapping],
    }


def _summary(values: list[float]) -> dict[str, Any]:
    array = np.asarray(values, dtype=np.float64)
    return {
        "mean": round(float(array.mean()), 2),
        "std": round(float(array.std(ddof=1)), 2) if len(array) > 1 else 0.0,
        "min": round(float(array.min()), 2),
        "max": round(float(array.max()), 2),
        "n": len(array),
    }


def _budget_text(settings: BenchSettings) -> str:
    steps = f"{settings.steps} steps" if settings.steps else "the preset's steps"
    return steps + (f", at most {settings.minutes:g} min" if settings.minutes else "")


def _seed_line(entry: dict[str, Any]) -> str:
    parts = [f"{m} {entry[m]['pixel_accuracy']:.1f}%" for m in METHODS if m in entry]
    if "steps" not in entry:
        return ", ".join(parts)
    return ", ".join(parts) + f" ({entry['steps']} steps, {entry['train_s']:.0f} s)"


def run(args: argparse.Namespace) -> dict[str, Any] | None:
    specs = [parse_spec(text) for text in args.accuracy]
    settings = settings_from_args(args)
    log = log_to_stderr
    started = time.perf_counter()
    datasets = [run_dataset(spec, settings, log) for spec in specs]
    result = {
        "command": "acseg-core " + " ".join(sys.argv[1:]) if sys.argv else "",
        "settings": asdict(settings),
        "datasets": datasets,
        "wall_minutes": round((time.perf_counter() - started) / 60, 1),
    }
    log(format_table(datasets))
    log(timing_table(datasets))
    log(control_summary(datasets))
    if getattr(args, "json", False):
        return result
    return {d["name"]: _row_text(d) for d in datasets}


def format_table(datasets: list[dict[str, Any]]) -> str:
    """Markdown table: pixel accuracy mean ± sd (min–max) per method, train minutes."""
    present = [m for m in METHODS if any(m in d["pixel_accuracy"] for d in datasets)]
    defaults = {d.get("default_method") for d in datasets}
    names = [f"{m} (default)" if m in defaults else m for m in present]
    head = "| dataset | K | " + " | ".join(names) + " | train min/seed | steps |"
    lines = [head, "|" + "---|" * (len(present) + 4)]
    for d in datasets:
        cells = [_cell(d["pixel_accuracy"].get(m)) for m in present]
        minutes, steps = d["train_minutes_mean"], d["steps_mean"]
        lines.append(
            f"| {d['name']} | {d['k']} | " + " | ".join(cells)
            + f" | {'—' if minutes is None else f'{minutes:.1f}'}"
            + f" | {'—' if steps is None else f'{steps:.0f}'} |"
        )  # fmt: skip
    return "\n".join(lines)


def timing_table(datasets: list[dict[str, Any]]) -> str:
    """Markdown table: seconds per megapixel of the folder, training and prediction, with
    the load average the figures were taken under (absolute times depend on it)."""
    lines = [
        "| dataset | Mpx | AC train s/Mpx | AC predict s/Mpx | bank k-means train s/Mpx "
        "| bank k-means predict s/Mpx | bank features s/Mpx | load (1/5/15 min) |",
        "|" + "---|" * 8,
    ]
    for d in datasets:
        t = d["seconds_per_mpx"]
        load = "/".join(f"{v:.1f}" for v in d["load_average"])
        ac_train, ac_predict = t["ac"].get("train"), t["ac"].get("predict")
        lines.append(
            f"| {d['name']} | {d['megapixels']:.2f} | "
            f"{'—' if ac_train is None else f'{ac_train:.1f}'} | "
            f"{'—' if ac_predict is None else f'{ac_predict:.2f}'} | "
            f"{t['kmeans-bank']['train']:.2f} | "
            f"{t['kmeans-bank']['predict']:.2f} | {t['bank']['features']:.2f} | {load} |"
        )
    return "\n".join(lines)


def control_summary(datasets: list[dict[str, Any]], margin: float = 3.0) -> str:
    """One line per dataset: does the default method beat ``kmeans+smooth`` (the same
    refinement on k-means) by ``margin`` points of mean pixel accuracy, and
    ``bank-kmeans+smooth`` (k-means on the bank, same filter) at all, mIoU not lower?"""
    lines = []
    for d in datasets:
        default, acc, miou = d.get("default_method"), d["pixel_accuracy"], d["miou"]
        if default not in acc:
            continue
        for control, needed in zip(CONTROLS, (margin, 0.0), strict=True):
            if control not in acc:
                continue
            gap = acc[default]["mean"] - acc[control]["mean"]
            miou_ok = miou[default]["mean"] >= miou[control]["mean"]
            verdict = "beats" if gap >= needed and miou_ok else "does not beat"
            by = f" by {needed:g}" if needed else ""
            lines.append(
                f"{d['name']}: {default} {verdict} {control}{by}: "
                f"{gap:+.1f} points, mIoU {'not lower' if miou_ok else 'lower'}"
            )
    return "\n".join(lines)


def _cell(summary: dict[str, Any] | None) -> str:
    if not summary:
        return "—"
    if summary["n"] == 1:
        return f"{summary['mean']:.1f}"
    return (
        f"{summary['mean']:.1f} ± {summary['std']:.1f} ({summary['min']:.1f}–{summary['max']:.1f})"
    )


def _row_text(d: dict[str, Any]) -> str:
    parts = [f"{m} {_cell(d['pixel_accuracy'][m])}" for m in METHODS if m in d["pixel_accuracy"]]
    t = d["seconds_per_mpx"]
    bank = t["kmeans-bank"]
    text = "; ".join(parts) + (
        f"; s/Mpx bank k-means train {bank['train']:.2f}, predict {bank['predict']:.2f}"
    )
    if t["ac"]:
        text += (
            f"; AC train {t['ac']['train']:.1f}, predict {t['ac']['predict']:.2f}; "
            f"{d['train_minutes_mean']:.1f} min/seed"
        )
    return text + f"; load {d['load_average'][0]:.1f}"


__all__ = [
    "BenchSettings",
    "DatasetSpec",
    "add_arguments",
    "control_summary",
    "format_table",
    "parse_spec",
    "run",
    "run_dataset",
    "timing_table",
    "train_config",
    "train_for_budget",
]
