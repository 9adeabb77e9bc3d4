"""The training loop: it learns, resumes exactly, cancels cleanly, survives NaN, has a CLI."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from scipy.optimize import linear_sum_assignment

import acseg_core.model.loss
from acseg_core.cli import main
from acseg_core.errors import AcsegError, InputError
from acseg_core.io.normalise import apply_normalisation
from acseg_core.io.raster import open_raster
from acseg_core.jobs import CancelToken
from acseg_core.model.checkpoint import load_checkpoint, load_model
from acseg_core.model.readouts import ReadOut
from acseg_core.presets import preset
from acseg_core.training.config import TrainConfig
from acseg_core.training.crops import CropDataset
from acseg_core.training.dataset import measure_normalisation, scan_inputs
from acseg_core.training.loop import MAX_BAD_STEPS, TrainResult, train
from acseg_core.training.run_log import read_log
from acseg_core.training.state import resume_config
from tests.core.synthetic import make_regions_image

REPO = Path(__file__).resolve().parents[2]


def run_training(cfg: TrainConfig, cancel: CancelToken | None = None, cancel_at: int = -1):
    """Drain ``train``; optionally cancel once step ``cancel_at`` is reported."""
    progress = []
    jobs = train(cfg, cancel)
    while True:
        try:
            item = next(jobs)
        except StopIteration as stop:
            return stop.value, progress
        progress.append(item)
        if cancel is not None and item.metrics.get("step") == cancel_at:
            cancel.cancel()


@pytest.fixture
def tiny_data(tmp_path: Path) -> Path:
    folder = tmp_path / "data"
    folder.mkdir()
    make_regions_image(folder / "a.tif", size=(48, 64), bands=3, seed=1)
    make_regions_image(folder / "b.tif", size=(40, 40), bands=3, seed=2)
    return folder


def tiny_config(data: Path, out: Path, **overrides) -> TrainConfig:
    fields = dict(
        inputs=(str(data),),
        out_dir=str(out),
        model=preset("cpu-small", clusters=3, base_width=8, blocks=2),
        steps=6,
        steps_per_epoch=3,
        crop=32,
        batch=2,
        lr=1e-3,
        displacement=2,
        device="cpu",
        workers=0,
        seed=3,
    )
    fields.update(overrides)
    return TrainConfig(**fields)


def weights(path: Path) -> dict[str, torch.Tensor]:
    return load_checkpoint(path)["state_dict"]


@pytest.mark.slow
def test_learning_separates_regions(tmp_path: Path) -> None:
    """cpu-small on 4-band images with 3 regions of distinct colour and texture + noise."""
    labels = {}
    for i in range(2):
        path = tmp_path / "data" / f"img{i}.tif"
        path.parent.mkdir(exist_ok=True)
        labels[path] = make_regions_image(path, size=(160, 160), bands=4, classes=3, seed=i)
    cfg = TrainConfig(
        inputs=(str(tmp_path / "data"),),
        out_dir=str(tmp_path / "run"),
        model=preset("cpu-small", clusters=3),
        steps=LEARN_STEPS,
        crop=64,
        batch=4,
        lr=LEARN_LR,
        displacement=3,
        device="cpu",
        workers=0,
        seed=0,
    )
    started = time.perf_counter()
    result, progress = run_training(cfg)
    elapsed = time.perf_counter() - started
    speeds = [p.metrics["crops_per_s"] for p in progress if p.metrics.get("crops_per_s")]
    print(f"\nlearning run: {elapsed:.1f} s, {np.median(speeds):.1f} crops/s (median)")

    loaded = load_model(result.model_path, device="cpu")
    confusion = np.zeros((3, 3))
    for path, truth in labels.items():
        with open_raster(path) as raster:
            data = raster.read()
            x = apply_normalisation(data, loaded.config.normalisation, raster.valid_mask(data))
        with torch.no_grad():
            predicted = loaded.model(torch.from_numpy(x)[None]).argmax(1)[0].numpy()
        np.add.at(confusion, (predicted.ravel(), truth.ravel()), 1)
    rows, cols = linear_sum_assignment(-confusion)
    accuracy = confusion[rows, cols].sum() / confusion.sum()
    print(f"pixel accuracy after Hungarian matching: {accuracy:.3f}")
    assert accuracy >= 0.90, confusion


LEARN_STEPS = 30
LEARN_LR = 5e-4


@pytest.mark.parametrize("heads", [1, 3])
def test_resume_equals_uninterrupted_run(tiny_data: Path, tmp_path: Path, heads: int) -> None:
    model = preset("cpu-small", clusters=3, base_width=8, blocks=2, heads=heads)
    whole, _ = run_training(tiny_config(tiny_data, tmp_path / "whole", model=model))
    assert isinstance(whole, TrainResult) and whole.step == 6 and not whole.cancelled

    token = CancelToken()
    parted = tiny_config(tiny_data, tmp_path / "parted", model=model)
    first, _ = run_training(parted, token, cancel_at=4)  # mid-epoch 2
    assert first.cancelled and first.step == 4
    assert load_checkpoint(first.checkpoint_path)["train_state"]["step"] == 4
    # resume with a loader worker: crops depend on (seed, index) only
    second, progress = run_training(replace(parted, resume=True, workers=1))
    assert second.step == 6 and not second.cancelled
    assert progress[-1].metrics["phase"] == "done"
    assert [p.metrics["step"] for p in progress if p.metrics["phase"] == "train"] == [5, 6]

    expected, got = weights(whole.model_path), weights(second.model_path)
    assert expected.keys() == got.keys()
    for name in expected:
        torch.testing.assert_close(got[name], expected[name], rtol=0, atol=0, msg=name)
    events = [r["event"] for r in read_log(tmp_path / "parted" / "train.jsonl")]
    assert events[0] == "scan" and "cancelled" in events and "resume" in events
    assert events[-1] == "done"
    # the model file keeps the sub-head with the lowest running loss; the checkpoint all
    kept = load_model(second.model_path, device="cpu")
    losses = kept.meta["head_losses"]
    assert kept.config.heads == 1 and len(losses) == heads
    assert kept.meta["head"] == int(np.argmin(losses))
    assert load_checkpoint(second.checkpoint_path)["model_config"]["heads"] == heads
    assert load_checkpoint(first.checkpoint_path)["train_state"]["head_losses"] is not None


def test_cancel_leaves_a_loadable_model(tiny_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_data, tmp_path / "run", steps=50, steps_per_epoch=50)
    result, progress = run_training(cfg, CancelToken(), cancel_at=1)
    assert result.cancelled and result.step == 1  # stopped within one step
    assert progress[-1].metrics["cancelled"] is True
    loaded = load_model(result.model_path, device="cpu")
    assert loaded.config.clusters == 3 and loaded.config.in_channels == 3
    assert loaded.meta["step"] == 1 and loaded.meta["final"] is False
    with torch.no_grad():
        out = loaded.model(torch.zeros(1, 3, 32, 32))
    assert tuple(out.shape) == (1, 3, 32, 32)
    hint = resume_config(tmp_path / "run")
    assert hint.resume and hint.steps == 50 and hint.model.normalisation is not None


def test_each_step_uses_two_different_orderings(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from acseg_core.model.nn.acnet import ACNet

    seen: list[tuple[int, ...]] = []
    original = ACNet.forward_views

    def spy(self, x, orderings, *args, **kwargs):
        seen.append(tuple(orderings))
        return original(self, x, orderings, *args, **kwargs)

    monkeypatch.setattr(ACNet, "forward_views", spy)
    run_training(tiny_config(tiny_data, tmp_path / "run", steps=8, steps_per_epoch=8))
    assert len(seen) == 8
    assert all(len(pair) == 2 and pair[0] != pair[1] for pair in seen)
    assert len(set(seen)) > 1  # not one fixed pair either


def test_progress_metrics_and_run_log(tiny_data: Path, tmp_path: Path) -> None:
    result, progress = run_training(tiny_config(tiny_data, tmp_path / "run"))
    steps = [p for p in progress if p.metrics["phase"] == "train"]
    assert [p.metrics["step"] for p in steps] == [1, 2, 3, 4, 5, 6]
    for p in steps:
        m = p.metrics
        assert {"epoch", "step", "steps_total", "loss", "crops_per_s"} <= m.keys()
        assert m["steps_total"] == 6 and np.isfinite(m["loss"]) and m["crops_per_s"] > 0
        assert p.eta_s is not None and p.eta_s >= 0 and p.total == 6
    assert [p.metrics["epoch"] for p in steps] == [1, 1, 1, 2, 2, 2]
    assert [p.metrics["step"] for p in steps if p.metrics.get("epoch_end")] == [3, 6]
    assert steps[-1].eta_s == 0
    log = read_log(tmp_path / "run" / "train.jsonl")
    assert [r["event"] for r in log if r["event"] in ("start", "epoch", "done")] == [
        "start",
        "epoch",
        "epoch",
        "done",
    ]
    assert json.loads(json.dumps(log[1]["config"]))["crop"] == 32
    assert (tmp_path / "run" / "model.pt").exists() and result.model_path.name == "model.pt"


def test_normalisation_is_stored_and_matches_prediction(tiny_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_data, tmp_path / "run", steps=1)
    result, _ = run_training(cfg)
    loaded = load_model(result.model_path, device="cpu")
    scan = scan_inputs(cfg.inputs, crop=cfg.crop)
    expected = measure_normalisation(scan, seed=cfg.seed)
    assert loaded.config.normalisation == expected
    # a training crop is exactly what prediction computes from the same pixels
    dataset = CropDataset(scan, loaded.config.normalisation, cfg.crop, seed=cfg.seed)
    image, window = dataset.window(0)
    with open_raster(scan.paths[image]) as raster:
        raw = raster.read(window)
        by_prediction = apply_normalisation(
            raw, loaded.config.normalisation, raster.valid_mask(raw)
        )
    np.testing.assert_array_equal(dataset[0][0].numpy(), by_prediction)


def test_non_finite_loss_skips_steps_then_stops(
    tiny_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_loss = acseg_core.model.loss.ac_loss_terms
    calls = {"n": 0}

    def flaky(*args, **kwargs):
        calls["n"] += 1
        loss, per_head = real_loss(*args, **kwargs)
        bad = calls["n"] == 2 or calls["n"] >= 4
        return (loss * float("nan"), per_head) if bad else (loss, per_head)

    monkeypatch.setattr(acseg_core.model.loss, "ac_loss_terms", flaky)
    cfg = tiny_config(tiny_data, tmp_path / "run", steps=20, steps_per_epoch=1)
    progress = []
    with pytest.raises(AcsegError, match="not finite for 5 steps in a row") as info:
        for item in train(cfg):
            progress.append(item)
    assert "last good checkpoint" in str(info.value)
    warnings = [p.metrics["warning"] for p in progress if "warning" in p.metrics]
    assert len(warnings) == 1 + MAX_BAD_STEPS - 1 and "step 2" in warnings[0]
    assert progress[-1].metrics["step"] == 3 + MAX_BAD_STEPS - 1  # it went on after step 2
    # the kept checkpoint holds finite weights from the last good step
    kept = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert kept["train_state"]["step"] == 3 + MAX_BAD_STEPS - 1
    assert all(
        torch.isfinite(t).all() for t in kept["state_dict"].values() if t.is_floating_point()
    )


def test_existing_run_and_missing_checkpoint_are_refused(tiny_data: Path, tmp_path: Path) -> None:
    cfg = tiny_config(tiny_data, tmp_path / "run", steps=1)
    run_training(cfg)
    with pytest.raises(AcsegError, match="already holds a training run"):
        run_training(cfg)
    with pytest.raises(InputError, match="no checkpoint to resume from"):
        run_training(replace(cfg, out_dir=str(tmp_path / "other"), resume=True))


def test_bad_training_config_is_refused() -> None:
    with pytest.raises(AcsegError, match="batch must be >= 1"):
        TrainConfig(batch=0)


# -- CLI -----------------------------------------------------------------------------------


def cli_args(data: Path, out: Path, *extra: str) -> list[str]:
    return [
        "train",
        str(data),
        "--out",
        str(out),
        "--preset",
        "cpu-small",
        "--clusters",
        "3",
        "--crop",
        "32",
        "--batch",
        "2",
        "--displacement",
        "2",
        "--device",
        "cpu",
        "--workers",
        "0",
        *extra,
    ]


def test_cli_trains_prints_epoch_lines_and_resumes(
    tiny_data: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    out = tmp_path / "run"
    assert main([*cli_args(tiny_data, out, "--steps", "2", "--steps-per-epoch", "1")]) == 0
    text = capsys.readouterr().out
    assert text.count("epoch 1/2:") == 1 and text.count("epoch 2/2:") == 1
    assert "done: 2 steps" in text and (out / "model.pt").exists()
    # resume needs only the run folder; extend the run to 3 steps
    assert main(["train", "--out", str(out), "--resume", "--steps", "3"]) == 0
    assert "done: 3 steps" in capsys.readouterr().out
    assert load_model(out / "model.pt", device="cpu").meta["step"] == 3


def test_cli_bad_inputs_give_one_line(tmp_path: Path) -> None:
    mixed = tmp_path / "mixed"
    mixed.mkdir()
    make_regions_image(mixed / "four.tif", size=(40, 40), bands=4)
    make_regions_image(mixed / "three.tif", size=(40, 40), bands=3)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [sys.executable, "-m", "acseg_core", *cli_args(mixed, tmp_path / "run")],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        cwd=REPO,
    )
    assert result.returncode == 1
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "band count" in lines[0] and "three.tif" in lines[0], result.stderr
    assert "Traceback" not in result.stderr


def test_cli_ctrl_c_saves_and_exits_130(tiny_data: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    args = cli_args(tiny_data, out, "--steps", "100000", "--steps-per-epoch", "1", "--workers", "1")
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "acseg_core", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
        cwd=REPO,
    )
    log = out / "train.jsonl"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (
        log.exists() and any(r["event"] == "epoch" for r in read_log(log))
    ):
        time.sleep(0.2)
    process.send_signal(signal.SIGINT)
    stdout, stderr = process.communicate(timeout=90)
    assert process.returncode == 130, stderr  # the shell's code for SIGINT (README)
    assert "resume with: acseg-core train --resume --out" in stdout
    loaded = load_model(out / "model.pt", device="cpu")
    assert loaded.meta["step"] >= 1 and loaded.meta["final"] is False
    assert load_checkpoint(out / "checkpoint.pt")["train_state"]["step"] == loaded.meta["step"]


def test_cli_applies_the_preset_record_and_given_options_win(
    tiny_data: Path, tmp_path: Path
) -> None:
    from acseg_core.cli.main import build_parser
    from acseg_core.cli.train import build_config

    def parse(*extra: str) -> TrainConfig:
        base = ["train", str(tiny_data), "--out", str(tmp_path / "run"), "--preset", "cpu-small"]
        return build_config(build_parser().parse_args([*base, *extra]))

    cfg = parse("--clusters", "4")
    # the cpu-small record, written out here so a changed default is a deliberate change
    assert (cfg.lr, cfg.crop, cfg.epochs, cfg.steps_per_epoch) == (1e-4, 128, 10, 30)
    assert (cfg.model.clusters, cfg.model.overclusters) == (4, 20)
    assert (cfg.model.readout, cfg.model.base_width) == (ReadOut("kmeans", 25), 16)
    cfg = parse("--clusters", "4", "--overcluster", "0", "--crop", "64", "--lr", "0.01")
    assert (cfg.model.overclusters, cfg.crop, cfg.lr) == (0, 64, 0.01)
