"""Hostile battery, inputs: files that must never be written or deleted (an export over
another source image, edits paths outside the project), files that must not be taken
for good ones (truncated PNG/JPEG), files that must not hang anything (FIFOs), crafted
sizes in model files and projects, and the tracebacks that became one line (a symlink
loop in a folder, a tile of 0, odd manifests); the exit code after a signal.

Each case: one line naming the file and the problem, a non-zero exit, the sources,
projects and earlier outputs byte-identical.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from acseg_core.cli.main import main
from acseg_core.errors import InputError
from acseg_core.labelling.edits import EditLayer
from acseg_core.labelling.project import Project
from acseg_core.model.checkpoint import load_checkpoint, load_model
from tests.core.hostile import REPO, one_line, run_cli, snapshot
from tests.core.synthetic import make_regions_image, tiny_model_file


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return tiny_model_file(tmp_path / "model.pt", bands=3, clusters=3)


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for seed in range(2):
        make_regions_image(folder / f"img{seed}.png", size=(64, 64), bands=3, seed=seed)
    return folder


# -- an export never replaces an input -------------------------------------------------


@pytest.mark.parametrize("overwrite", [True, False])
def test_export_into_the_image_folder_never_replaces_another_source(
    tmp_path: Path, model: Path, overwrite: bool
) -> None:
    folder = tmp_path / "shots"
    folder.mkdir()
    make_regions_image(folder / "r.tif", size=(48, 48), bands=3, crs=False)
    make_regions_image(folder / "r.png", size=(48, 48), bands=3, seed=4)  # another image
    project = Project()
    project.add_images([folder / "r.tif", folder / "r.png"])
    project.set_model(model)
    project_path = tmp_path / "p.acseg"
    project.save(project_path)
    before = snapshot(folder) | {project_path: project_path.read_bytes()}
    flags = ["--overwrite"] if overwrite else []
    result = run_cli("export", str(project_path), "--out", str(folder), "--format", "png", *flags)
    assert result.returncode == 1, result.stderr
    line = next(x for x in result.stderr.splitlines() if "skipped r:" in x)
    assert str(folder / "r.tif") in line and str(folder / "r.png") in line, line
    assert "Traceback" not in result.stderr
    after = snapshot(folder)
    assert {p: after[p] for p in before if p in after} == {
        p: b for p, b in before.items() if p != project_path
    }
    assert project_path.read_bytes() == before[project_path]
    assert (folder / "r-2.png").exists()  # the PNG image's own mask is still written


# -- project edits live in the project's edits folder ----------------------------------


def _project_with_edits(tmp_path: Path) -> tuple[Path, Path]:
    image = tmp_path / "a.png"
    make_regions_image(image, size=(32, 32), bands=3)
    project = Project()
    project.add_images([image])
    project.get_edits(image, create=True).write(0, 0, np.ones((8, 8), np.uint8))
    path = tmp_path / "p.acseg"
    project.save(path)
    return path, image


def test_edits_outside_the_projects_edits_folder_are_refused_and_never_deleted(
    tmp_path: Path, capsys
) -> None:
    project_path, _image = _project_with_edits(tmp_path)
    data = json.loads(project_path.read_text())
    own = project_path.parent / data["images"][0]["edits"]
    victim_dir = tmp_path.parent / f"{tmp_path.name}-victim_dir"
    victim_dir.mkdir()
    victim = victim_dir / "someone_elses.npz"
    shutil.copy(own, victim)  # a valid edits file: it would load, and be replaced on save
    data["images"][0]["edits"] = os.path.relpath(victim, project_path.parent)
    project_path.write_text(json.dumps(data))
    before = project_path.read_bytes(), victim.read_bytes()
    with pytest.raises(InputError, match="outside the project's edits folder") as caught:
        project = Project.load(project_path)
        project.set_edits(0, EditLayer(32, 32))
        project.save()
    assert str(project_path) in str(caught.value) and "\n" not in str(caught.value)
    code = main(["export", str(project_path), "--out", str(tmp_path / "out")])
    line = one_line(capsys.readouterr().err)
    assert code == 1 and "someone_elses.npz" in line
    assert (project_path.read_bytes(), victim.read_bytes()) == before


def test_project_save_never_deletes_a_file_outside_its_edits_folder(tmp_path: Path) -> None:
    project_path, image = _project_with_edits(tmp_path)
    project = Project.load(project_path)
    outside = tmp_path / "elsewhere.npz"
    outside.write_bytes(b"someone else's")
    project.image(image).edits_file = outside  # however it got there
    project.set_edits(image, EditLayer(32, 32))
    project.save()
    assert outside.read_bytes() == b"someone else's"


# -- truncated images are unreadable ---------------------------------------------------


@pytest.mark.parametrize("suffix", [".png", ".jpg"])
@pytest.mark.parametrize("keep", [0.5, 0.97])
def test_a_truncated_image_is_skipped_with_one_line(
    tmp_path: Path, model: Path, suffix: str, keep: float
) -> None:
    folder = tmp_path / "in"
    folder.mkdir()
    make_regions_image(folder / f"good{suffix}", size=(96, 96), bands=3)
    make_regions_image(folder / f"cut{suffix}", size=(96, 96), bands=3, seed=3)
    data = (folder / f"cut{suffix}").read_bytes()
    (folder / f"cut{suffix}").write_bytes(data[: int(len(data) * keep)])
    before = snapshot(folder)
    out = tmp_path / "pred"
    result = run_cli("predict", str(model), str(folder), "--out", str(out))
    assert result.returncode == 1, result.stderr
    line = one_line(result.stderr)
    assert str(folder / f"cut{suffix}") in line, line
    assert sorted(p.name for p in out.iterdir()) == ["good_clusters.png"]
    alone = run_cli("predict", str(model), str(folder / f"cut{suffix}"), "--out", str(out))
    assert alone.returncode == 1 and "cut" in one_line(alone.stderr)
    assert snapshot(folder) == before


def test_a_png_without_its_end_chunk_is_unreadable(tmp_path: Path) -> None:
    from acseg_core.io.raster import probe

    path = tmp_path / "a.png"
    make_regions_image(path, size=(40, 40), bands=3)
    path.write_bytes(path.read_bytes()[:-12])  # IEND gone
    with pytest.raises(InputError, match="truncated"):
        probe(path)


# -- FIFOs and other non-regular files never hang --------------------------------------


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_given_as_an_image_model_project_or_manifest_is_refused_at_once(
    tmp_path: Path, model: Path, images: Path
) -> None:
    fifo = _fifo(tmp_path / "pipe.png")
    result = run_cli("predict", str(model), str(fifo), "--out", str(tmp_path / "p1"), timeout=60)
    assert result.returncode == 1 and "FIFO" in one_line(result.stderr)
    model_fifo = _fifo(tmp_path / "pipe.pt")
    result = run_cli("predict", str(model_fifo), str(images), "--out", str(tmp_path / "p2"),
                     timeout=60)  # fmt: skip
    assert result.returncode == 1 and str(model_fifo) in one_line(result.stderr)
    project_fifo = _fifo(tmp_path / "pipe.acseg")
    result = run_cli("export", str(project_fifo), "--out", str(tmp_path / "p3"), timeout=60)
    assert result.returncode == 1 and "FIFO" in one_line(result.stderr)
    manifest_fifo = _fifo(tmp_path / "pipe.jsonl")
    result = run_cli("predict", str(model), str(images), "--out", str(tmp_path / "p4"),
                     "--manifest", str(manifest_fifo), timeout=60)  # fmt: skip
    assert result.returncode == 1 and "FIFO" in one_line(result.stderr)


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="no FIFOs here")
def test_a_fifo_inside_a_folder_is_left_out_and_the_rest_predicted(
    tmp_path: Path, model: Path, images: Path
) -> None:
    _fifo(images / "pipe.png")
    out = tmp_path / "pred"
    result = run_cli("predict", str(model), str(images), "--out", str(out), timeout=60)
    assert result.returncode == 0, result.stderr
    assert sorted(p.name for p in out.iterdir()) == ["img0_clusters.png", "img1_clusters.png"]


# -- crafted sizes are refused before anything is allocated ----------------------------


def _crafted_model(tmp_path: Path, model: Path, **changes) -> Path:
    payload = load_checkpoint(model)
    payload.pop("digest")
    payload["model_config"].update(changes)
    path = tmp_path / "crafted.pt"
    torch.save(payload, path)
    return path


@pytest.mark.parametrize(
    "changes",
    [{"base_width": 10**6}, {"blocks": 300}, {"blocks": 12, "base_width": 64},
     {"in_channels": 10**7}, {"base_width": 32.5}],
)  # fmt: skip
def test_a_crafted_model_config_is_refused_before_allocating(
    tmp_path: Path, model: Path, images: Path, monkeypatch, capsys, changes
) -> None:
    import acseg_core.model.nn as nn_module

    crafted = _crafted_model(tmp_path, model, **changes)

    def never(*_args, **_kwargs):
        raise AssertionError("the network was built from a crafted config")

    monkeypatch.setattr(nn_module, "build_model", never)
    with pytest.raises(InputError, match="bad model config") as caught:
        load_model(crafted, device="cpu")
    assert str(crafted) in str(caught.value) and "\n" not in str(caught.value)
    code = main(["predict", str(crafted), str(images), "--out", str(tmp_path / "pred")])
    assert code == 1 and str(crafted) in one_line(capsys.readouterr().err)


def test_a_crafted_training_state_is_refused_on_resume(tmp_path: Path, images: Path) -> None:
    out = tmp_path / "run"
    first = run_cli("train", str(images), "--out", str(out), "--steps", "1", "--clusters", "3",
                    "--crop", "32", "--workers", "0", "--steps-per-epoch", "1")  # fmt: skip
    assert first.returncode == 0, first.stderr
    checkpoint = out / "checkpoint.pt"
    payload = load_checkpoint(checkpoint)
    payload.pop("digest")
    payload["train_state"]["train_config"].update(crop=10**6, batch=10**6)
    torch.save(payload, checkpoint)
    before = checkpoint.read_bytes()
    result = run_cli("train", "--resume", "--out", str(out), "--steps", "2")
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert str(checkpoint) in line and "crop must be at most" in line, line
    assert checkpoint.read_bytes() == before


def test_a_class_map_of_two_to_the_forty_clusters_is_one_line(tmp_path: Path, capsys) -> None:
    path = tmp_path / "p.acseg"
    data = {"format": "acseg-project", "schema_version": 2, "images": [],
            "class_map": {"clusters": 2**40, "classes": []}}  # fmt: skip
    path.write_text(json.dumps(data))
    started = time.monotonic()
    with pytest.raises(InputError, match="clusters must be between 0 and 255") as caught:
        Project.load(path)
    assert str(path) in str(caught.value) and time.monotonic() - started < 5
    code = main(["export", str(path), "--out", str(tmp_path / "out")])
    assert code == 1 and "clusters" in one_line(capsys.readouterr().err)


# -- tracebacks that became one line ---------------------------------------------------


def test_a_symlink_loop_in_a_folder_is_skipped_and_the_rest_predicted(
    tmp_path: Path, model: Path, images: Path
) -> None:
    loop = images / "loop.png"
    loop.symlink_to(loop)
    out = tmp_path / "pred"
    result = run_cli("predict", str(model), str(images), "--out", str(out))
    assert result.returncode == 1, result.stderr
    line = one_line(result.stderr)
    assert str(loop) in line and "symbolic links" in line, line
    assert sorted(p.name for p in out.iterdir()) == ["img0_clusters.png", "img1_clusters.png"]


def test_a_tile_of_zero_is_one_line(tmp_path: Path, model: Path, images: Path, capsys) -> None:
    for tile in ("0", "-8"):
        code = main(["predict", str(model), str(images), "--out", str(tmp_path / "p"),
                     "--tile", tile])  # fmt: skip
        assert code == 1 and "too small" in one_line(capsys.readouterr().err)
    project = Project()
    project.add_images(sorted(images.glob("*.png")))
    project.set_model(model)
    project.save(tmp_path / "p.acseg")
    code = main(["export", str(tmp_path / "p.acseg"), "--out", str(tmp_path / "o"),
                 "--tile", "0"])  # fmt: skip
    assert code == 1 and "too small" in one_line(capsys.readouterr().err)
    code = main(["bench", "--predict-size", "64", "--predict-tile", "0"])
    assert code == 1 and "--predict-tile" in one_line(capsys.readouterr().err)


def test_a_manifest_that_is_not_utf8_is_one_line_and_untouched(
    tmp_path: Path, model: Path, images: Path, capsys
) -> None:
    manifest = tmp_path / "m.jsonl"
    manifest.write_bytes(b'{"input": "x"}\n\xff\xfe\x00binary\x81')
    before = manifest.read_bytes()
    code = main(["predict", str(model), str(images), "--out", str(tmp_path / "p"),
                 "--manifest", str(manifest)])  # fmt: skip
    line = one_line(capsys.readouterr().err)
    assert code == 1 and str(manifest) in line and "UTF-8" in line
    assert manifest.read_bytes() == before


def test_a_manifest_that_is_an_input_image_is_one_line_and_untouched(
    tmp_path: Path, model: Path, images: Path, capsys
) -> None:
    before = snapshot(images)
    cases = [(images / "img0.png", [images]),
             (images / "img1.png", [images / "img0.png", images / "img1.png"])]  # fmt: skip
    for manifest, inputs in cases:
        code = main(["predict", str(model), *map(str, inputs), "--out", str(tmp_path / "p"),
                     "--manifest", str(manifest)])  # fmt: skip
        line = one_line(capsys.readouterr().err)
        assert code == 1 and str(manifest) in line
    assert snapshot(images) == before


# -- one exit code convention after a signal -------------------------------------------


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_predict_stopped_by_a_signal_exits_128_plus_the_signal(
    tmp_path: Path, model: Path, signum: int
) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for seed in range(30):
        make_regions_image(folder / f"img{seed:02d}.png", size=(160, 160), bands=3, seed=seed)
    out = tmp_path / "pred"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "acseg_core", "predict", str(model), str(folder), "--out", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline and not (out.exists() and any(out.glob("*.png"))):
        time.sleep(0.1)
    process.send_signal(signum)
    _, stderr = process.communicate(timeout=90)
    assert process.returncode == 128 + signum, stderr
    assert "rerun with --resume" in stderr and "Traceback" not in stderr
