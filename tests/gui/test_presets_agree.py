"""The Python API, the CLI, the app's wizard and the bench train identically from a
preset with no options: one defaults record, four front ends."""

from __future__ import annotations

from pathlib import Path

from acseg_core import preset
from acseg_core.benchmarks import accuracy, datasets
from acseg_core.cli.main import build_parser
from acseg_core.cli.train import build_config
from acseg_core.model.config import to_dict
from acseg_core.training.config import TrainConfig
from app.wizard import SettingsPage

K = 5


def recipe(cfg: TrainConfig) -> dict:
    """What decides the trained weights (paths, seeds and devices aside)."""
    per_epoch = cfg.steps_per_epoch
    total = cfg.steps if cfg.steps is not None else cfg.epochs * per_epoch
    return {
        "model": to_dict(cfg.model),
        "lr": cfg.lr,
        "crop": cfg.crop,
        "batch": cfg.batch,
        "displacement": cfg.displacement,
        "scale": cfg.scale,
        "total_steps": total,
    }


def test_python_cli_wizard_and_bench_train_the_same_run(qtbot, tmp_path: Path) -> None:
    python = TrainConfig(model=preset("cpu-small", clusters=K))
    cli = build_config(build_parser().parse_args(["train", str(tmp_path), "--out", "run"]))
    page = SettingsPage(runner=None)  # type: ignore[arg-type]
    qtbot.addWidget(page)
    page.clusters.setValue(K)
    wizard = page.train_config(bands=3)
    spec = datasets.parse_spec(f"images={tmp_path}")
    bench = accuracy.train_config(spec, [tmp_path / "a.png"], K, 0, accuracy.BenchSettings(),
                                  tmp_path)  # fmt: skip
    expected = recipe(python)
    # the record itself, written out so that a changed default is a deliberate change
    assert expected["lr"] == 1e-4 and expected["crop"] == 128 and expected["total_steps"] == 300
    assert expected["model"]["overclusters"] == 5 * K
    assert expected["model"]["readout"] == {"kind": "kmeans", "smooth": 25}
    assert recipe(cli) == expected
    assert recipe(wizard) == expected
    assert recipe(bench) == expected
