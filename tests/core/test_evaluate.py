"""Pairing images with labels, folder scoring, the k-means baseline and the CLI verb."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from acseg_core.cli import main
from acseg_core.errors import AcsegError, InputError
from acseg_core.evaluation import evaluate as ev
from acseg_core.evaluation import kmeans
from acseg_core.io.labels import parse_label_format

COLOURS = np.array([[200, 30, 30], [30, 200, 30], [30, 30, 200]], dtype=np.uint8)


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.zeros((4, 4), dtype=np.uint8)).save(path)
    return path


def write_scene(folder: Path, name: str, seed: int, size: int = 48) -> tuple[Path, Path]:
    """An RGB image of three noisy colour blobs and its index label (0 = no-data)."""
    rng = np.random.default_rng(seed)
    rows, cols = np.mgrid[0:size, 0:size]
    classes = np.where(rows < size // 3, 0, np.where(cols < size // 2 + seed, 1, 2))
    image = COLOURS[classes].astype(np.int16) + rng.integers(-12, 13, (size, size, 3))
    (folder / "images").mkdir(parents=True, exist_ok=True)
    (folder / "labels").mkdir(parents=True, exist_ok=True)
    image_path = folder / "images" / f"{name}.png"
    label_path = folder / "labels" / f"{name}.png"
    Image.fromarray(np.clip(image, 0, 255).astype(np.uint8)).save(image_path)
    label = (classes + 1).astype(np.uint8)
    label[0, :5] = 0  # a few no-data pixels
    Image.fromarray(label).save(label_path)
    return image_path, label_path


# -- pairing ---------------------------------------------------------------------


def test_pairs_by_stem_across_folders(tmp_path: Path) -> None:
    touch(tmp_path / "img" / "a.png")
    touch(tmp_path / "img" / "b.jpg")
    touch(tmp_path / "lab" / "a.png")
    touch(tmp_path / "lab" / "b.png")
    pairs = ev.pair_images(tmp_path / "img", tmp_path / "lab")
    assert [(p.image.name, p.label.name) for p in pairs] == [("a.png", "a.png"), ("b.jpg", "b.png")]


def test_pairs_isprs_names_in_one_folder(tmp_path: Path) -> None:
    for name in ("top_area1_IRRG.tif", "top_area1_label.tif", "top_2_RGBIR.tif", "top_2_label.png"):
        touch(tmp_path / name)
    touch(tmp_path / "top_3_RGB.png")
    touch(tmp_path / "top_3_label.png")
    pairs = ev.pair_images(tmp_path, tmp_path)
    assert {(p.image.name, p.label.name) for p in pairs} == {
        ("top_area1_IRRG.tif", "top_area1_label.tif"),
        ("top_2_RGBIR.tif", "top_2_label.png"),
        ("top_3_RGB.png", "top_3_label.png"),
    }


def test_pairs_cityscapes_names(tmp_path: Path) -> None:
    touch(tmp_path / "f_0001_leftImg8bit.png")
    touch(tmp_path / "f_0001_gtFine_labelTrainIds.png")
    (pair,) = ev.pair_images(tmp_path, tmp_path)
    assert pair.label.name == "f_0001_gtFine_labelTrainIds.png"


def test_unpaired_files_are_refused_with_a_list(tmp_path: Path) -> None:
    touch(tmp_path / "img" / "a.png")
    touch(tmp_path / "img" / "lonely.png")
    touch(tmp_path / "lab" / "a.png")
    touch(tmp_path / "lab" / "orphan.png")
    with pytest.raises(AcsegError) as info:
        ev.pair_images(tmp_path / "img", tmp_path / "lab")
    message = str(info.value)
    assert "images without a label: lonely.png" in message
    assert "labels without an image: orphan.png" in message


def test_missing_folder_is_named(tmp_path: Path) -> None:
    with pytest.raises(InputError, match="folder not found"):
        ev.pair_images(tmp_path / "nope", tmp_path)


def test_label_size_mismatch_is_a_clear_error(tmp_path: Path) -> None:
    touch(tmp_path / "img" / "a.png")
    (tmp_path / "lab").mkdir()
    Image.fromarray(np.zeros((5, 4), dtype=np.uint8)).save(tmp_path / "lab" / "a.png")
    pairs = ev.pair_images(tmp_path / "img", tmp_path / "lab")
    with pytest.raises(InputError, match=r"label is 4×5 but image a.png is 4×4"):
        ev.check_pairs(pairs, parse_label_format("index"))


# -- scoring -----------------------------------------------------------------------


def test_one_mapping_for_the_folder_and_per_image_figures(tmp_path: Path) -> None:
    for i in range(2):
        write_scene(tmp_path, f"s{i}", seed=i)
    pairs = ev.pair_images(tmp_path / "images", tmp_path / "labels")
    fmt = parse_label_format("index:0")
    counts = ev.check_pairs(pairs, fmt)
    assert counts[0] == 0 and (counts[1:] > 0).all()
    # perfect clusters, permuted; the second image has one wrong pixel
    maps = []
    for pair in pairs:
        classes = fmt.read(pair.label)
        clusters = np.array([255, 2, 0, 1], dtype=np.uint8)[np.where(classes < 0, 0, classes)]
        maps.append(clusters)
    maps[1][20, 20] = (maps[1][20, 20] + 1) % 3
    result = ev.run_to_end(ev.evaluate(pairs, fmt, maps, n_clusters=3))
    assert result.mapping.tolist() == [2, 3, 1]
    assert result.scores.pixels == 2 * (48 * 48 - 5)
    assert result.scores.pixel_accuracy == pytest.approx(1 - 1 / result.scores.pixels)
    first, second = (result.image_scores(i) for i in result.images)
    assert first.pixel_accuracy == 1.0 and second.pixel_accuracy < 1.0
    figures = result.to_dict()
    assert set(figures) >= {"pixel_accuracy", "miou", "mapping", "confusion", "per_image"}
    assert figures["mapping"] == {"0": "2", "1": "3", "2": "1"}
    assert figures["per_class_iou"]["0"] is None  # no-data value is no class
    assert "majority" not in figures


def test_kmeans_separates_separable_colours(tmp_path: Path) -> None:
    for i in range(2):
        write_scene(tmp_path, f"s{i}", seed=i)
    pairs = ev.pair_images(tmp_path / "images", tmp_path / "labels")
    fmt = parse_label_format("index:0")
    job = ev.evaluate_folder(pairs, fmt, ev.kmeans_source(3, seed=0), 3, n_classes=4)
    result = ev.run_to_end(job)
    assert result.scores.pixel_accuracy > 0.99
    assert result.scores.miou > 0.98


def test_kmeans_baseline_is_reproducible_per_seed(tmp_path: Path) -> None:
    write_scene(tmp_path, "s0", seed=0)
    folder = ev.open_labelled_folder(tmp_path / "images", tmp_path / "labels", "index:0")
    assert folder.classes_present == 3 and folder.n_classes == 4
    first, again = ev.kmeans_baseline(folder, seeds=(4, 4))
    assert np.array_equal(first.confusion, again.confusion)
    assert first.n_clusters == 3


def test_pixel_sample_is_a_subset_of_valid_pixels(tmp_path: Path) -> None:
    path = tmp_path / "g.tif"
    import rasterio

    data = np.arange(2 * 60 * 50, dtype=np.uint16).reshape(2, 60, 50) + 1
    data[:, :10] = 0  # nodata rows
    with rasterio.open(
        path, "w", driver="GTiff", width=50, height=60, count=2, dtype="uint16", nodata=0
    ) as dst:
        dst.write(data)
    sample = kmeans.sample_pixels([path], n_samples=600, seed=0)
    assert sample.shape[1] == 2 and 400 < len(sample) < 600  # ~600 × 5/6 valid
    assert (sample > 0).all()
    assert len(np.unique(sample[:, 0])) == len(sample)  # drawn without replacement
    everything = kmeans.sample_pixels([path], n_samples=10**6, seed=0)
    assert len(everything) == 50 * 50


def test_kmeans_model_assigns_nodata_and_standardises() -> None:
    model = kmeans.KMeansModel(
        mean=np.array([100.0]), std=np.array([10.0]), centres=np.array([[-1.0], [1.0]])
    )
    data = np.array([[[85.0, 115.0, 99.0]]])
    valid = np.array([[True, True, False]])
    assert model.assign(data, valid).tolist() == [[0, 1, 255]]


def test_more_clusters_than_classes_reports_the_majority_map(tmp_path: Path) -> None:
    write_scene(tmp_path, "s0", seed=0)
    pairs = ev.pair_images(tmp_path / "images", tmp_path / "labels")
    fmt = parse_label_format("index:0")
    result = ev.run_to_end(ev.evaluate_folder(pairs, fmt, ev.kmeans_source(5, seed=1), 5))
    assert result.majority_scores is not None and result.majority_mapping is not None
    assert (result.mapping == -1).sum() >= 1
    assert result.majority_scores.pixel_accuracy >= result.scores.pixel_accuracy
    assert "majority" in result.to_dict()


# -- CLI ---------------------------------------------------------------------------


def test_cli_kmeans_json(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    for i in range(2):
        write_scene(tmp_path, f"s{i}", seed=i)
    code = main(
        [
            "evaluate",
            "--method",
            "kmeans",
            "--images",
            str(tmp_path / "images"),
            "--labels",
            str(tmp_path / "labels"),
            "--label-format",
            "index:0",
            "--json",
        ]
    )
    assert code == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["method"] == "kmeans" and figures["clusters"] == 3
    assert figures["pixel_accuracy"] > 0.99
    assert len(figures["confusion"]) == 3 and len(figures["per_image"]) == 2


def test_cli_table_and_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_scene(tmp_path, "s0", seed=0)
    args = ["evaluate", "--method", "kmeans", "--images", str(tmp_path / "images")]
    args += ["--labels", str(tmp_path / "labels"), "--label-format", "index:0", "--runs", "2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "pixel accuracy" in out and "mean of 2 runs" in out


def test_cli_needs_a_model_or_kmeans(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_scene(tmp_path, "s0", seed=0)
    assert main(["evaluate", "--images", str(tmp_path / "images")]) == 1
    assert "MODEL" in capsys.readouterr().err


def test_cli_unpaired_is_one_line(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    write_scene(tmp_path, "s0", seed=0)
    touch(tmp_path / "images" / "extra.png")
    args = ["evaluate", "--method", "kmeans", "--images", str(tmp_path / "images")]
    assert main([*args, "--labels", str(tmp_path / "labels")]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "extra.png" in err[0]


def test_cli_scores_a_model_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The MODEL path: checkpoint → infer.predict_array → one mapping for the folder."""
    torch = pytest.importorskip("torch")
    pytest.importorskip("acseg_core.inference.predict")
    from acseg_core.inference.predict import predict_array
    from acseg_core.model.checkpoint import save_checkpoint
    from acseg_core.model.config import ModelConfig
    from acseg_core.model.nn import build_model

    for i in range(2):
        write_scene(tmp_path, f"s{i}", seed=i, size=40)
    torch.manual_seed(0)
    config = ModelConfig(in_channels=3, clusters=4, blocks=1, base_width=8, stride=4)
    model_path = tmp_path / "model.pt"
    save_checkpoint(model_path, build_model(config), config)
    args = ["evaluate", str(model_path), "--images", str(tmp_path / "images")]
    args += ["--labels", str(tmp_path / "labels"), "--label-format", "index:0", "--json"]
    args += ["--device", "cpu"]
    assert main(args) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["method"] == "model" and figures["clusters"] == 4
    assert "majority" in figures  # 4 clusters > 3 classes

    # the folder's confusion, counted here: cluster (rows) × label value (columns; 0 is
    # no data, so its column stays empty)
    from acseg_core.model.checkpoint import load_model

    loaded = load_model(model_path, device="cpu")
    counts = np.zeros((4, 4), dtype=np.int64)
    for i in range(2):
        clusters = predict_array(loaded, tmp_path / "images" / f"s{i}.png").clusters
        label = np.asarray(Image.open(tmp_path / "labels" / f"s{i}.png"))
        keep = label > 0  # 0 = no data
        np.add.at(counts, (clusters[keep], label[keep]), 1)
    assert figures["confusion"] == counts.tolist()
    assert sum(map(sum, figures["confusion"])) == 2 * 40 * 40 - 2 * 5


# -- real data (../shared/data) -------------------------------------------------------


@pytest.mark.shared_data
def test_kmeans_on_real_vaihingen_3(shared_data: Path, capsys: pytest.CaptureFixture[str]) -> None:
    folder = shared_data / "isprs-vaihingen"
    args = ["evaluate", "--method", "kmeans", "--images", str(folder)]
    args += ["--label-format", "potsdam", "--merge", "potsdam3", "--json"]
    assert main(args) == 0
    figures = json.loads(capsys.readouterr().out)
    assert figures["classes"] == ["roads and cars", "vegetation", "buildings and clutter"]
    assert 0.05 < figures["ignored_fraction"] < 0.15
    assert figures["pixel_accuracy"] > 0.45  # the README yardstick is 60 %
