"""`acseg-core train`: train an AC model on images or folders.

A progress bar on a terminal, one line per epoch otherwise (logs, CI). Ctrl+C (or
SIGTERM) asks the trainer to stop: it saves a checkpoint and the command exits 130
(143), the shell's code for a run stopped by that signal, with a resume hint; a
second Ctrl+C aborts at once.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from collections.abc import Iterator
from typing import Any, TextIO

from acseg_core.cli.options import add_field_options, given
from acseg_core.errors import AcsegError
from acseg_core.jobs import CancelToken, ctrl_c_cancels, interrupted_exit_code, sigterm_cancels
from acseg_core.model.config import ModelConfig
from acseg_core.model.readouts import READOUTS, TRAINABLE, ReadOut
from acseg_core.presets import PRESETS, default_preset, preset
from acseg_core.training import distributed
from acseg_core.training.config import TrainConfig
from acseg_core.training.loop import train
from acseg_core.training.state import resume_config

SUMMARY = "train an AC model on images or folders"
# TrainConfig fields offered as options (their help and defaults come from the field)
RUN_FIELDS = (
    "epochs", "steps", "steps_per_epoch", "crop", "batch", "lr", "displacement", "scale",
    "small_images", "device", "workers", "seed",
)  # fmt: skip
MODEL_FIELDS = ("clusters", "overclusters", "heads")


def register(sub: Any) -> None:
    parser = sub.add_parser("train", help=SUMMARY, description=SUMMARY + ".")
    parser.add_argument("inputs", nargs="*", metavar="INPUT", help="image files or folders")
    parser.add_argument("--out", required=True, metavar="RUN_DIR", help="run folder")
    model = parser.add_argument_group("model")
    model.add_argument(
        "--preset", choices=tuple(PRESETS),
        help="default: by device (cpu-small on a CPU, repro-4 on a GPU); "
        + "; ".join(f"{name}: {record.description}" for name, record in PRESETS.items()),
    )  # fmt: skip
    add_field_options(model, ModelConfig, MODEL_FIELDS, flags={"overclusters": "--overcluster"})
    model.add_argument(
        "--readout", choices=TRAINABLE,
        help="what predict reads clusters from: "
        + "; ".join(f"{name} = {READOUTS[name].label}" for name in TRAINABLE)
        + " (fitted right after training; default: the preset's)",
    )  # fmt: skip
    model.add_argument(
        "--smooth", type=int, metavar="PX",
        help="the model's majority filter over PX×PX pixels (odd; 0 = plain argmax; "
        "default: the preset's); predict --smooth overrides it",
    )  # fmt: skip
    run = parser.add_argument_group("run")
    add_field_options(run, TrainConfig, RUN_FIELDS, metavars={"crop": "PX", "batch": "B"})
    run.add_argument(
        "--nproc",
        type=int,
        default=1,
        metavar="N",
        help="data-parallel processes on this host (DDP: one GPU each, or gloo on the CPU; "
        "--batch is the global batch); several hosts: torchrun -m acseg_core train",
    )
    run.add_argument(
        "--resume", action="store_true", help="continue the run in RUN_DIR from its checkpoint"
    )
    parser.set_defaults(handler=run_command)


def build_config(args: argparse.Namespace) -> TrainConfig:
    """TrainConfig from the arguments; with ``--resume``, the stored run's plus overrides.

    Whatever is not given comes from the preset's record (:mod:`acseg_core.presets`),
    exactly as ``TrainConfig(model=preset(name))`` does from Python.
    """
    run_options = given(args, RUN_FIELDS)
    if args.epochs is not None:
        run_options["steps"] = None  # --epochs replaces a stored --steps
    if args.inputs:
        run_options["inputs"] = tuple(args.inputs)
    model_options = given(args, MODEL_FIELDS)
    if args.readout is not None or args.smooth is not None:
        model_options["readout"] = ReadOut(args.readout, args.smooth)
    if args.resume:
        if args.preset or model_options:
            raise AcsegError(
                "--resume keeps the stored model: drop the model options "
                "(--preset/--clusters/--overcluster/--heads/--readout/--smooth)"
            )
        return resume_config(args.out, **run_options)
    if not args.inputs:
        raise AcsegError("give at least one input image or folder")
    name = args.preset or default_preset(args.device or "auto")
    return TrainConfig(out_dir=args.out, model=preset(name, **model_options), **run_options)


def run_command(args: argparse.Namespace) -> int:
    cfg = build_config(args)  # bad arguments fail here, once, before any rank starts
    nproc = getattr(args, "nproc", 1)
    if nproc > 1 and distributed.world_size_from_env() == 1:
        distributed.Context(world_size=nproc).local_batch(cfg.batch)  # must split evenly
        return distributed.launch(run_command, args, nproc)  # each rank runs this function
    token = CancelToken()
    out = sys.stdout if distributed.is_main_process() else open(os.devnull, "w")  # noqa: SIM115
    bar = out.isatty()
    result = None
    # one message, not one per DDP rank
    message = "stopping after this step (Ctrl+C again to abort)…"
    with (
        ctrl_c_cancels(token, message if os.environ.get("RANK", "0") == "0" else None),
        sigterm_cancels(token),
    ):
        jobs = train(cfg, token)
        result = yield_from_with_display(jobs, out, bar)
    # 130 / 143 after a signal: the model is not final. Only rank 0 says so: a rank
    # leaving non-zero first would have the launcher stop rank 0 while it saves.
    stopped = interrupted_exit_code(token) if distributed.is_main_process() else 0
    if result is None:
        print("training cancelled before it started; nothing saved", file=out)
        return stopped
    if result.cancelled:
        print(
            f"interrupted at step {result.step}/{result.steps_total}; checkpoint saved in "
            f"{cfg.out_dir}\nresume with: acseg-core train --resume --out {cfg.out_dir}",
            file=out,
        )
        return stopped
    loss = f", final loss {result.loss:.4f}" if result.loss is not None else ""
    print(f"done: {result.step} steps{loss}; model: {result.model_path}", file=out)
    return 0


def yield_from_with_display(jobs: Iterator[Any], out: TextIO, bar: bool) -> Any:
    """Drain the training generator, drawing progress; return its return value."""
    started = time.monotonic()
    while True:
        try:
            progress = next(jobs)
        except StopIteration as stop:
            if bar:
                out.write("\n")
            return stop.value
        metrics = progress.metrics
        warning = metrics.get("warning")
        if warning:
            out.write(("\r\033[K" if bar else "") + f"warning: {warning}\n")
        if metrics.get("phase") == "prepare":
            if not warning:
                out.write(("\r\033[K" if bar else "") + progress.message + ("" if bar else "\n"))
        elif metrics.get("phase") == "train":
            if bar:
                out.write("\r\033[K" + _bar_line(progress))
            elif metrics.get("epoch_end"):
                out.write(_epoch_line(progress, time.monotonic() - started) + "\n")
        out.flush()


def _bar_line(progress: Any) -> str:
    m = progress.metrics
    fraction = progress.fraction or 0.0
    filled = int(fraction * 24)
    loss = f"loss {m['loss']:.4f}" if m.get("loss") is not None else "loss —"
    speed = f"{m['crops_per_s']:.1f} crops/s" if m.get("crops_per_s") else ""
    return (
        f"epoch {m['epoch']}/{m['epochs']} [{'#' * filled}{'.' * (24 - filled)}] "
        f"{m['step']}/{m['steps_total']} {loss} {speed} ETA {_clock(progress.eta_s)}"
    )


def _epoch_line(progress: Any, elapsed: float) -> str:
    m = progress.metrics
    loss = m.get("epoch_loss")
    loss_text = f"{loss:.4f}" if loss is not None else "—"
    return (
        f"epoch {m['epoch']}/{m['epochs']}: step {m['step']}/{m['steps_total']}, "
        f"loss {loss_text}, {m.get('crops_per_s') or 0:.1f} crops/s, "
        f"elapsed {_clock(elapsed)}, ETA {_clock(progress.eta_s)}"
    )


def _clock(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60}:{rest % 60:02d}"
