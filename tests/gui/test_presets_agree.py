"""The Python API, the CLI, the app's wizard and the bench train identically from a
preset with no options: one defaults record, four front ends, on whatever device the
run would use (the CPU here, and a CUDA machine, forced)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import acseg_core.device as device_module
from acseg_core import preset
from acseg_core.benchmarks import accuracy, datasets
from acseg_core.benchmarks.accuracy_settings import settings_from_args
from acseg_core.cli.main import build_parser
from acseg_core.cli.train import build_config
from acseg_core.model.config import to_dict
from acseg_core.training.config import TrainConfig
from acseg_core.training.dataset import scan_inputs
from acseg_core.training.loop import steps_per_epoch_for
from app.wizard import SettingsPage

K = 5


def recipe(cfg: TrainConfig) -> dict:
    """What decides the trained weights (paths, seeds and devices aside). The read-out's
    kind is left out: the bench fits the k-means read-out on every model to score both
    read-outs, after training, so it changes no weight (its window is compared)."""
    scan = scan_inputs([Path(p) for p in cfg.inputs], crop=cfg.crop)
    total = cfg.steps if cfg.steps is not None else cfg.epochs * steps_per_epoch_for(scan, cfg)
    model = to_dict(cfg.model)
    model["readout"].pop("kind")
    return {
        "model": model,
        "lr": cfg.lr,
        "crop": cfg.crop,
        "batch": cfg.batch,
        "displacement": cfg.displacement,
        "scale": cfg.scale,
        "total_steps": total,
    }


def front_ends(qtbot, folder: Path, images: list[Path]) -> dict[str, TrainConfig]:
    """The run each front end starts with no options (K given, as the wizard asks)."""
    inputs = tuple(str(p) for p in images)
    args = build_parser().parse_args(["train", *inputs, "--out", "run", "--clusters", str(K)])
    page = SettingsPage(runner=None)  # type: ignore[arg-type]
    qtbot.addWidget(page)
    page.clusters.setValue(K)
    bench_args = build_parser().parse_args(["bench", "--accuracy", f"images={folder}"])
    settings = settings_from_args(bench_args)
    spec = datasets.parse_spec(f"images={folder}")
    own = TrainConfig().model.preset  # the device's preset, as the API picks it
    return {
        "python": TrainConfig(inputs=inputs, model=preset(own, clusters=K)),
        "cli": build_config(args),
        "wizard": page.train_config(inputs, bands=3),
        "bench": accuracy.train_config(spec, images, K, 0, settings, folder / "run"),
    }


@pytest.fixture
def images(tmp_path: Path) -> list[Path]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(2):
        path = tmp_path / f"tile{i}.png"
        Image.fromarray(rng.integers(0, 255, (300, 260, 3), dtype=np.uint8)).save(path)
        paths.append(path)
    return paths


def test_python_cli_wizard_and_bench_train_the_same_run(qtbot, tmp_path, images) -> None:
    runs = {name: recipe(cfg) for name, cfg in front_ends(qtbot, tmp_path, images).items()}
    expected = runs["python"]
    # the record itself, written out so that a changed default is a deliberate change
    assert expected["lr"] == 1e-4 and expected["crop"] == 128 and expected["total_steps"] == 300
    assert expected["model"]["preset"] == "cpu-small"
    assert expected["model"]["overclusters"] == 5 * K
    assert expected["model"]["readout"] == {"smooth": 25}
    assert TrainConfig().model.readout.kind == "kmeans"
    assert runs == {name: expected for name in runs}


def test_on_a_gpu_every_front_end_picks_the_gpu_preset(
    qtbot, tmp_path, images, monkeypatch
) -> None:
    monkeypatch.setattr(device_module, "available_devices", lambda: ["cuda", "cpu"])
    configs = front_ends(qtbot, tmp_path, images)
    assert TrainConfig().model.preset == "repro-4"
    assert {name: cfg.model.preset for name, cfg in configs.items()} == dict.fromkeys(
        configs, "repro-4"
    )
    runs = {name: recipe(cfg) for name, cfg in configs.items()}
    expected = runs["python"]
    assert expected["lr"] == 4e-5 and expected["crop"] == 200
    # data-sized epochs: 10 × one pass over the 2 × 300×260 px in 200 px crops of 8
    assert expected["total_steps"] == 10
    assert runs == {name: expected for name in runs}
