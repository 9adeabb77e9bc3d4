"""Hostile battery, disks: a full disk (a real small tmpfs where the test may mount one,
else a file-size limit) and a file-size limit during predict, export, train, learn and
the manifest; temps of killed runs cleaned by the next run of the same command.

Each case: exit code 1, one line naming the file and saying why ("no space left on
device", "file too large"), nothing under an output's final name, sources, projects
and earlier outputs byte-identical.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from acseg_core.labelling.project import Project
from tests.core.hostile import one_line, run_cli, small_disk, snapshot
from tests.core.synthetic import make_regions_image, tiny_model_file, write_image


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return tiny_model_file(tmp_path / "model.pt", bands=3, clusters=3)


@pytest.fixture
def noisy(tmp_path: Path) -> Path:
    """A folder with one georeferenced GeoTIFF of noise: its confidence raster (and an
    export's scratch rasters) do not compress, so they fill a small disk."""
    folder = tmp_path / "src"
    folder.mkdir()
    rng = np.random.default_rng(0)
    write_image(folder / "big.tif", rng.integers(0, 255, (3, 600, 600), dtype=np.uint8))
    return folder


def _files(folder: Path) -> list[str]:
    """Every entry left in an output folder, hidden temps included."""
    return sorted(p.name for p in folder.rglob("*")) if folder.exists() else []


def _project(tmp_path: Path, images: list[Path], model: Path) -> Path:
    project = Project()
    project.add_images(images)
    project.set_model(model)
    path = tmp_path / "p.acseg"
    project.save(path)
    return path


# -- predict ---------------------------------------------------------------------------


def test_predict_onto_a_full_disk_is_one_line_and_leaves_nothing(
    tmp_path: Path, model: Path, noisy: Path
) -> None:
    sources = snapshot(noisy)
    with small_disk(tmp_path / "disk", 24) as disk:
        out = disk.folder / "pred"
        result = run_cli("predict", str(model), str(noisy), "--out", str(out),
                         "--confidence", limit_bytes=disk.limit)  # fmt: skip
        assert result.returncode == 1, result.stderr
        line = one_line(result.stderr)
        assert disk.reason in line and str(out / "big_clusters.tif") in line, line
        assert _files(out) == []  # nothing under the final name, no temp left
    assert snapshot(noisy) == sources


def test_predict_over_a_file_size_limit_never_leaves_a_corrupt_output(
    tmp_path: Path, model: Path, noisy: Path
) -> None:
    out = tmp_path / "pred"
    result = run_cli("predict", str(model), str(noisy), "--out", str(out), "--confidence",
                     limit_bytes=20_000)  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "file too large" in one_line(result.stderr)
    assert _files(out) == []
    # so --resume can never take a half-written map for a finished one
    again = run_cli("predict", str(model), str(noisy), "--out", str(out), "--confidence",
                    "--resume")  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert _files(out) == [  # the COG with its names and style beside it
        "big_clusters.qml", "big_clusters.tif", "big_clusters.tif.aux.xml",
        "big_clusters_confidence.tif",
    ]  # fmt: skip


def test_a_manifest_over_a_file_size_limit_is_one_line(tmp_path: Path, model: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    make_regions_image(images / "a.png", size=(48, 48), bands=3)
    manifest = tmp_path / "m.jsonl"
    record = {"input": "x", "output": "y", "status": "ok", "seconds": 0.1, "error": ""}
    manifest.write_text((json.dumps(record) + "\n") * 250)  # an earlier run's records
    before = manifest.read_bytes()
    result = run_cli("predict", str(model), str(images), "--out", str(tmp_path / "pred"),
                     "--manifest", str(manifest), limit_bytes=len(before) + 20)  # fmt: skip
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert str(manifest) in line and "file too large" in line, line
    assert manifest.read_bytes().startswith(before)  # earlier records intact


def test_a_manifest_on_a_full_disk_is_one_line(tmp_path: Path, model: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    make_regions_image(images / "a.png", size=(48, 48), bands=3)
    with small_disk(tmp_path / "disk", 8) as disk:
        manifest = disk.folder / "m.jsonl"
        record = {"input": "x", "output": "y", "status": "ok", "seconds": 0.1, "error": ""}
        line = json.dumps(record) + "\n"
        manifest.write_text(line * ((8 * 1024 - 60) // len(line)))  # the disk, nearly full
        limit = disk.limit + 60 if disk.limit is not None else None
        result = run_cli("predict", str(model), str(images), "--out", str(tmp_path / "pred"),
                         "--manifest", str(manifest), limit_bytes=limit)  # fmt: skip
        assert result.returncode == 1
        line = one_line(result.stderr)
        assert str(manifest) in line and disk.reason in line, line


# -- export ----------------------------------------------------------------------------


def test_export_onto_a_full_disk_stops_with_one_line_and_leaves_nothing(
    tmp_path: Path, model: Path, noisy: Path
) -> None:
    project = _project(tmp_path, [noisy / "big.tif"], model)
    before = snapshot(noisy) | {project: project.read_bytes()}
    with small_disk(tmp_path / "disk", 64) as disk:
        out = disk.folder / "masks"
        result = run_cli("export", str(project), "--out", str(out), "--format", "png,tif",
                         limit_bytes=disk.limit)  # fmt: skip
        assert result.returncode == 1, result.stderr
        assert disk.reason in result.stderr, result.stderr
        assert "not a readable image" not in result.stderr, result.stderr
        if disk.limit is None:  # a full disk stops the export: one line
            assert disk.reason in one_line(result.stderr)
        assert [n for n in _files(out) if n != "labelmap.txt"] == []
    assert snapshot(noisy) | {project: project.read_bytes()} == before


def test_a_full_disk_met_predicting_a_missing_map_stops_the_export_and_says_so(
    tmp_path: Path, model: Path, noisy: Path, monkeypatch, capsys
) -> None:
    """The map of an image is predicted into a scratch file beside the outputs; when
    the disk fills there, the export stops with "no space left on device", not a
    skip per image saying the scratch map is "not a readable image"."""
    import errno

    from acseg_core.cli.main import main
    from acseg_core.io import writers

    def full(path: Path) -> None:  # what the check finds after GDAL met a full disk
        raise OSError(errno.ENOSPC, "No space left on device", str(path))

    monkeypatch.setattr(writers, "check_written", full)
    (noisy / "other.tif").write_bytes((noisy / "big.tif").read_bytes())
    project = _project(tmp_path, sorted(noisy.glob("*.tif")), model)
    out = tmp_path / "masks"
    code = main(["export", str(project), "--out", str(out)])
    err = capsys.readouterr().err
    line = one_line(err)
    assert code == 1 and "export stopped: no space left on device" in line, err
    assert "not a readable image" not in err and "skipped" not in err
    assert _files(out) == ["labelmap.txt"]


def test_export_over_a_file_size_limit_skips_with_the_reason(
    tmp_path: Path, model: Path, noisy: Path
) -> None:
    project = _project(tmp_path, [noisy / "big.tif"], model)
    out = tmp_path / "masks"
    result = run_cli("export", str(project), "--out", str(out), "--format", "png,tif",
                     limit_bytes=100_000)  # fmt: skip
    assert result.returncode == 1, result.stderr
    assert "skipped big: file too large" in result.stderr, result.stderr
    assert _files(out) == ["labelmap.txt"]  # no mask under its final name, no temp


# -- train and learn -------------------------------------------------------------------


def test_train_onto_a_real_full_disk_is_one_line_and_leaves_no_model(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    for seed in range(2):
        make_regions_image(images / f"img{seed}.png", size=(64, 64), bands=3, seed=seed)
    with small_disk(tmp_path / "disk", 24) as disk:
        out = disk.folder / "run"
        result = run_cli("train", str(images), "--out", str(out), "--steps", "2",
                         "--clusters", "3", "--crop", "32", "--workers", "0",
                         limit_bytes=disk.limit)  # fmt: skip
        assert result.returncode == 1, result.stderr
        line = one_line(result.stderr)
        assert disk.reason in line and str(out) in line, line
        assert not (out / "model.pt").exists() and not (out / "checkpoint.pt").exists()
        assert [n for n in _files(out) if n.startswith(".")] == []


def test_learn_onto_a_full_disk_is_one_line_and_leaves_no_model(
    tmp_path: Path, model: Path
) -> None:
    image = tmp_path / "a.png"
    make_regions_image(image, size=(48, 48), bands=3)
    strokes = tmp_path / "strokes"
    strokes.mkdir()
    marks = np.full((1, 48, 48), 255, np.uint8)
    marks[0, :10, :10], marks[0, -10:, -10:] = 0, 1
    write_image(strokes / "a.png", marks)
    with small_disk(tmp_path / "disk", 16) as disk:
        learnt = disk.folder / "learnt.pt"
        result = run_cli("learn", str(model), str(image), "--strokes", str(strokes),
                         "--out", str(learnt), limit_bytes=disk.limit)  # fmt: skip
        assert result.returncode == 1, result.stderr
        line = one_line(result.stderr)
        assert disk.reason in line and str(learnt) in line, line
        assert _files(disk.folder) == []


# -- temps of killed runs --------------------------------------------------------------


def test_train_resume_removes_the_temp_of_a_killed_checkpoint_save(tmp_path: Path) -> None:
    images = tmp_path / "images"
    images.mkdir()
    make_regions_image(images / "img.png", size=(64, 64), bands=3)
    out = tmp_path / "run"
    first = run_cli("train", str(images), "--out", str(out), "--steps", "1", "--clusters", "3",
                    "--crop", "32", "--workers", "0", "--steps-per-epoch", "1")  # fmt: skip
    assert first.returncode == 0, first.stderr
    stale = [out / ".checkpoint.pt.k2j3h4g5.pt", out / ".model.pt.z9y8x7w6.pt"]
    for path in stale:
        path.write_bytes(b"left by a SIGKILL during a save")
    mine = out / ".checkpoint.pt.notes"
    mine.write_text("not a temp of acseg's")
    again = run_cli("train", "--resume", "--out", str(out), "--steps", "2")
    assert again.returncode == 0, again.stderr
    assert not any(p.exists() for p in stale)
    assert mine.read_text() == "not a temp of acseg's"


def test_an_export_rerun_removes_the_prediction_temp_of_a_killed_export(
    tmp_path: Path, model: Path
) -> None:
    folder = tmp_path / "src"
    folder.mkdir()
    make_regions_image(folder / "scene.tif", size=(48, 48), bands=3)
    project = _project(tmp_path, [folder / "scene.tif"], model)
    out = tmp_path / "masks"
    out.mkdir()
    # a SIGKILL during the prediction of a missing map leaves the scratch map and the
    # prediction's own temp of it
    stale = [out / ".scene.acseg-scratch.abcd1234.tif",
             out / "..scene.acseg-scratch.abcd1234.tif.efgh5678.tif"]  # fmt: skip
    for path in stale:
        path.write_bytes(b"left by a killed export")
    result = run_cli("export", str(project), "--out", str(out), "--format", "png")
    assert result.returncode == 0, result.stderr
    assert _files(out) == ["labelmap.txt", "scene.png"]
