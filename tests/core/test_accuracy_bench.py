"""The accuracy benchmark: dataset specs, the refinement step, the harness.

The harness test trains for two steps on a tiny synthetic labelled folder: it checks
the shape of the figures (AC and k-means per seed, mean/spread) and that each
method's mapping is one Hungarian map over the whole folder, not the figures'
values (two steps learn nothing). ``ACSEG_SLOW_TESTS=1`` adds a short run on the
shared Vaihingen crop.
"""

from __future__ import annotations

import json
import os
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from acseg_core.benchmarks import accuracy, datasets
from acseg_core.cli import main
from acseg_core.errors import AcsegError
from acseg_core.inference.predict import predict_array
from acseg_core.io.raster import NODATA
from acseg_core.model.checkpoint import LoadedModel
from acseg_core.model.config import ModelConfig
from acseg_core.model.nn import build_model
from acseg_core.model.readouts import ReadOut
from acseg_core.model.refine import decide, majority_filter

COLOURS = np.array([[210, 40, 40], [40, 190, 60], [50, 60, 200]], dtype=np.int16)


def write_folder(root: Path, images: int = 2, size: int = 64) -> Path:
    """RGB PNGs of three noisy colour regions + index labels (1–3, 0 = unlabelled)."""
    (root / "images").mkdir(parents=True)
    (root / "labels").mkdir(parents=True)
    for index in range(images):
        rng = np.random.default_rng(index)
        rows, cols = np.mgrid[0:size, 0:size]
        classes = np.where(rows < size // 3 + index, 0, np.where(cols < size // 2, 1, 2))
        pixels = COLOURS[classes] + rng.integers(-25, 26, (size, size, 3))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(
            root / "images" / f"scene{index}.png"
        )
        label = (classes + 1).astype(np.uint8)
        label[:2, :] = 0
        Image.fromarray(label).save(root / "labels" / f"scene{index}.png")
    return root


# -- specs -----------------------------------------------------------------------------


def test_spec_keys_values_with_equals_and_colons() -> None:
    spec = datasets.parse_spec(
        "name=coco,images=/d/img,labels=/d/lab,format=lookup:/d/f2c.csv,keep=kind=stuff,k=15"
    )
    assert spec.name == "coco"
    assert spec.images == Path("/d/img") and spec.labels == Path("/d/lab")
    assert spec.label_format == "lookup:/d/f2c.csv"
    assert spec.keep == "kind=stuff"
    assert spec.k == 15 and not spec.sobel


def test_spec_defaults_and_errors() -> None:
    spec = datasets.parse_spec("images=/data/vaihingen,format=potsdam,merge=potsdam3,sobel=1")
    assert spec.name == "vaihingen" and spec.labels == Path("/data/vaihingen")
    assert spec.merge == "potsdam3" and spec.sobel
    for bad in ("format=index", "images=/x,colour=red", "images=/x,k=many", "images=/x,k=1"):
        with pytest.raises(AcsegError):
            datasets.parse_spec(bad)
    with pytest.raises(AcsegError, match="unknown shared dataset"):
        datasets.parse_spec("shared:potsdam")


def test_shared_shortcuts_resolve_under_the_env_root(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv(datasets.SHARED_ENV, str(tmp_path))
    with pytest.raises(AcsegError, match="not found"):
        datasets.parse_spec("shared:dubai")
    (tmp_path / "dubai" / "images").mkdir(parents=True)
    spec = datasets.parse_spec("shared:dubai")
    assert spec.images == tmp_path / "dubai" / "images"
    assert spec.label_format.startswith("colors:") and Path(spec.label_format[7:]).is_file()
    specs = datasets.shared_specs(tmp_path)
    assert set(specs) == {"vaihingen6", "vaihingen3", "loveda", "dubai", "cocostuff15"}
    assert specs["vaihingen3"].merge == "potsdam3" and specs["cocostuff15"].k == 15


def test_bench_trains_with_the_shipped_defaults(tmp_path: Path) -> None:
    spec = datasets.parse_spec(f"images={tmp_path}")
    cfg = accuracy.train_config(
        spec, [tmp_path / "a.png"], 5, 2, accuracy.BenchSettings(), tmp_path
    )
    # cpu-small's record: lr 1e-4, 128 px crops, 10 × 30 steps, 5 × K head, 25 px filter
    assert (cfg.lr, cfg.crop, cfg.batch, cfg.seed) == (1e-4, 128, 8, 2)
    assert (cfg.model.clusters, cfg.model.overclusters) == (5, 25)
    assert cfg.steps == 300 and cfg.model.readout.smooth == 25
    plain = accuracy.BenchSettings(overcluster_factor=0, lr=1e-3, crop=64)
    cfg = accuracy.train_config(spec, [tmp_path / "a.png"], 5, 0, plain, tmp_path)
    assert cfg.model.overclusters == 0 and cfg.lr == 1e-3 and cfg.crop == 64
    short = accuracy.BenchSettings(steps=7, smooth=0)
    cfg = accuracy.train_config(spec, [tmp_path / "a.png"], 5, 0, short, tmp_path)
    assert cfg.steps == 7 and cfg.model.readout.smooth == 0


# -- refinement ------------------------------------------------------------------------


def test_majority_filter_removes_speckle_and_keeps_nodata() -> None:
    clusters = np.zeros((20, 20), dtype=np.uint8)
    clusters[:, 10:] = 1
    clusters[5, 3] = 1  # isolated pixel inside cluster 0
    clusters[0, 0] = NODATA
    out = majority_filter(clusters, 2, 5)
    assert out[5, 3] == 0
    assert out[0, 0] == NODATA
    assert (out[:, 12:] == 1).all() and (out[1:, :8] == 0).all()
    assert np.array_equal(majority_filter(clusters, 2, 0), clusters)
    with pytest.raises(AcsegError):
        majority_filter(clusters, 2, 4)


def test_decide_is_the_majority_filter_in_torch() -> None:
    # two clusters and an odd window: no ties, so both forms must agree exactly
    probs = torch.rand(2, 33, 29, generator=torch.Generator().manual_seed(0))
    hard = probs.argmax(dim=0).numpy().astype(np.uint8)
    share, ids = decide(probs, 7)
    assert np.array_equal(ids.numpy(), majority_filter(hard, 2, 7))
    assert (share > 0.5).all() and (share <= 1).all()  # the winner of two has the majority
    # a sub-window decides exactly what the whole map decides there
    _, part = decide(probs, 7, slice(5, 20), slice(3, 11))
    assert np.array_equal(part.numpy(), ids[5:20, 3:11].numpy())


def test_smoothed_prediction_is_the_same_tiled_and_one_shot(tmp_path: Path) -> None:
    image = write_folder(tmp_path, images=1, size=96) / "images" / "scene0.png"
    torch.manual_seed(0)
    config = ModelConfig(in_channels=3, clusters=3, blocks=1, base_width=8)
    loaded = LoadedModel(build_model(config).eval(), config, torch.device("cpu"))
    nine = ReadOut(None, 9)
    one_shot = predict_array(loaded, image, tile=256, precision="fp32", readout=nine).clusters
    tiled = predict_array(loaded, image, tile=48, precision="fp32", readout=nine).clusters
    plain = predict_array(loaded, image, tile=256, precision="fp32").clusters
    assert np.array_equal(one_shot, tiled)
    assert np.array_equal(one_shot, majority_filter(plain, 3, 9))
    # the model carries its read-out: with config.smooth = 9 the default is filtered,
    # and smooth=0 still gives the network's plain argmax
    carried = LoadedModel(loaded.model, replace(config, readout=ReadOut("head", 9)),
                          torch.device("cpu"))  # fmt: skip
    assert np.array_equal(predict_array(carried, image, precision="fp32").clusters, one_shot)
    off = predict_array(carried, image, precision="fp32", readout=ReadOut(None, 0))
    assert np.array_equal(off.clusters, plain)
    assert not np.array_equal(one_shot, plain)  # the filter did change something


def test_model_config_refuses_an_even_smoothing_window() -> None:
    with pytest.raises(AcsegError, match="smoothing window must be 0"):
        ModelConfig(readout=ReadOut("head", 4))
    assert ModelConfig(readout=ReadOut("head", 25)).readout.smooth == 25


# -- the harness -----------------------------------------------------------------------


def test_bench_reports_ac_and_kmeans_per_seed_with_one_map_per_folder(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_folder(tmp_path / "data")
    spec = f"name=toy,images={root / 'images'},labels={root / 'labels'},format=index:0"
    tiny = ["--train-steps", "2", "--train-crop", "32", "--train-batch", "2", "--train-width", "8"]
    code = main(
        ["bench", "--accuracy", spec, "--seeds", "0", "1", *tiny, "--smooth", "5", "--json"]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    [dataset] = result["datasets"]
    assert dataset["name"] == "toy" and dataset["k"] == 3 and dataset["images"] == 2
    assert [entry["seed"] for entry in dataset["per_seed"]] == [0, 1]
    for entry in dataset["per_seed"]:
        assert entry["steps"] == 2 and entry["train_s"] > 0
        for method in accuracy.METHODS:
            figures = entry[method]
            assert 0 <= figures["pixel_accuracy"] <= 100
            mapping = [c for c in figures["mapping"] if c >= 0]
            assert len(figures["mapping"]) == 3 and len(mapping) == len(set(mapping))
    for method in accuracy.METHODS:
        values = [entry[method]["pixel_accuracy"] for entry in dataset["per_seed"]]
        summary = dataset["pixel_accuracy"][method]
        assert summary["n"] == 2 and summary["mean"] == pytest.approx(np.mean(values), abs=0.01)
        assert summary["min"] == min(values) and summary["max"] == max(values)
    # three cleanly coloured regions: k-means on colour finds them, whatever the seed,
    # and one map per folder sends each cluster to its own region
    for entry in dataset["per_seed"]:
        assert entry["kmeans"]["pixel_accuracy"] > 95
        assert sorted(entry["kmeans"]["mapping"]) == [1, 2, 3]  # label values 1–3


def test_bench_refuses_bad_options(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    root = write_folder(tmp_path / "data", images=1)
    spec = f"images={root / 'images'},labels={root / 'labels'}"
    assert main(["bench", "--accuracy", spec, "--smooth", "4"]) == 1
    assert "smoothing window" in capsys.readouterr().err
    assert main(["bench", "--accuracy", "images=/nowhere/at/all"]) == 1
    assert "/nowhere/at/all" in capsys.readouterr().err


@pytest.mark.skipif(not os.environ.get("ACSEG_SLOW_TESTS"), reason="set ACSEG_SLOW_TESTS=1")
def test_bench_on_shared_vaihingen(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    vaihingen = shared_data / "isprs-vaihingen"
    spec = f"name=v6,images={vaihingen},format=potsdam"
    code = main(["bench", "--accuracy", spec, "--seeds", "0", "--train-steps", "5", "--json"])
    result = json.loads(capsys.readouterr().out)
    assert code == 0
    [dataset] = result["datasets"]
    assert dataset["k"] == 5  # clutter is absent from the crop
    assert set(accuracy.METHODS) <= set(dataset["per_seed"][0])


def test_control_summary_says_whether_the_default_beats_the_control_by_three() -> None:
    from acseg_core.benchmarks.accuracy import control_summary

    def dataset(name: str, default: float, control: float, miou: float) -> dict:
        summary = {"ac-kmeans+smooth": {"mean": default}, "kmeans+smooth": {"mean": control}}
        mious = {"ac-kmeans+smooth": {"mean": miou}, "kmeans+smooth": {"mean": 20.0}}
        return {"name": name, "default_method": "ac-kmeans+smooth",
                "pixel_accuracy": summary, "miou": mious}  # fmt: skip

    lines = control_summary(
        [dataset("a", 60.0, 56.0, 25.0), dataset("b", 60.0, 58.0, 25.0), dataset("c", 60, 50, 10)]
    ).splitlines()
    assert lines[0].startswith("a: ac-kmeans+smooth beats") and "+4.0 points" in lines[0]
    assert "does not beat" in lines[1] and "+2.0 points" in lines[1]
    assert "does not beat" in lines[2] and "mIoU lower" in lines[2]


def test_controls_only_scores_both_kmeans_controls_without_training(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = write_folder(tmp_path / "data")
    spec = f"name=toy,images={root / 'images'},labels={root / 'labels'},format=index:0"
    code = main(["bench", "--accuracy", spec, "--seeds", "0", "--smooth", "5",
                 "--controls-only", "--json"])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    [dataset] = json.loads(captured.out)["datasets"]
    [entry] = dataset["per_seed"]
    assert "steps" not in entry and "ac" not in entry  # nothing trained
    assert set(dataset["pixel_accuracy"]) == {
        "kmeans", "kmeans+smooth", "bank-kmeans", "bank-kmeans+smooth"
    }  # fmt: skip
    # three flat colour regions: the bank's k-means finds them too
    assert entry["bank-kmeans+smooth"]["pixel_accuracy"] > 90
    times = dataset["seconds_per_mpx"]
    assert times["ac"] == {} and times["kmeans-bank"]["predict"] >= times["bank"]["features"]
    assert "bank k-means train s/Mpx" in captured.err and "load" in captured.err


def test_control_summary_checks_the_bank_control_without_a_margin() -> None:
    from acseg_core.benchmarks.accuracy import control_summary

    acc = {"ac-kmeans+smooth": {"mean": 60.0}, "kmeans+smooth": {"mean": 50.0},
           "bank-kmeans+smooth": {"mean": 60.5}}  # fmt: skip
    miou = {name: {"mean": 20.0} for name in acc}
    lines = control_summary([{"name": "a", "default_method": "ac-kmeans+smooth",
                              "pixel_accuracy": acc, "miou": miou}]).splitlines()  # fmt: skip
    assert "beats kmeans+smooth by 3: +10.0" in lines[0]
    assert "does not beat bank-kmeans+smooth: -0.5" in lines[1]


def test_the_label_free_choice_takes_the_more_balanced_map() -> None:
    from acseg_core.evaluation.readout_choice import balance, most_balanced

    even = np.repeat(np.arange(4, dtype=np.uint8), 25).reshape(10, 10)
    lopsided = np.zeros((10, 10), dtype=np.uint8)
    lopsided[0, :4] = [1, 2, 3, 3]
    lopsided[1, :] = NODATA  # left out
    assert balance([even], 4) == pytest.approx(1.0)
    assert 0 < balance([lopsided], 4) < 0.2
    assert balance([np.full((3, 3), NODATA, np.uint8)], 4) == 0.0
    assert most_balanced({"a": [lopsided], "b": [even]}, 4) == "b"
    assert most_balanced({"a": [even], "b": [even.T]}, 4) == "a"  # a tie: the first
