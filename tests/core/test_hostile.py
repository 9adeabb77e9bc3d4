"""The hostile-file and failing-disk battery: each case gets one clear line naming the
path and the reason, a non-zero exit, nothing half-written and the sources intact.

Real failures are made where the test can make them (a file-size limit for a full
disk, symlink loops, files where folders belong); where it cannot (permissions when
the suite runs as root) the OS call is patched to fail the way the OS would.
More of the battery: full disks, file-size limits and stale temps
(test_hostile_disk.py), inputs never written, truncated images, FIFOs, crafted sizes
and odd manifests (test_hostile_inputs.py), the app's cases
(tests/gui/test_hostile_app.py). Cases covered elsewhere: stale temps of a killed
export (test_export.py), SIGKILL + resume of predict (test_predict_folder.py), SIGINT
of train (test_train.py), corrupt files skipped by the app
(tests/gui/test_bad_input.py), screenshots (tests/gui/test_app_startup.py).
"""

from __future__ import annotations

import errno
import json
import os
import pickle
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
from acseg_core.model.checkpoint import FORMAT, VERSION, load_model
from tests.core.hostile import REPO, one_line, run_cli
from tests.core.synthetic import make_regions_image, tiny_model_file, write_image


@pytest.fixture
def images(tmp_path: Path) -> Path:
    folder = tmp_path / "images"
    folder.mkdir()
    for seed in range(2):
        make_regions_image(folder / f"img{seed}.png", size=(64, 64), bands=3, seed=seed)
    return folder


@pytest.fixture
def model(tmp_path: Path) -> Path:
    return tiny_model_file(tmp_path / "model.pt", bands=3, clusters=3)


# -- model files are data --------------------------------------------------------------


class _RunsCode:
    """Unpickling this calls ``os.system`` — what a malicious model file does."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def test_a_model_file_that_runs_code_is_refused_and_never_runs(
    tmp_path: Path, images: Path
) -> None:
    marker = tmp_path / "pwned"
    evil = tmp_path / "evil.pt"
    torch.save({"format": FORMAT, "version": VERSION, "meta": _RunsCode(marker)}, evil)
    with pytest.raises(InputError, match="refused"):
        load_model(evil, device="cpu")
    result = run_cli("predict", str(evil), str(images), "--out", str(tmp_path / "pred"))
    assert result.returncode == 1
    assert "refused" in one_line(result.stderr) and str(evil) in result.stderr
    assert not marker.exists()


@pytest.mark.parametrize(
    ("payload", "reason"),
    [
        ({"format": FORMAT, "version": VERSION, "model_config": {}, "state_dict": {}, "meta": [1]},
         "meta is not a mapping"),
        ({"format": FORMAT, "version": VERSION, "state_dict": {}}, "model_config missing"),
        ([1, 2, 3], "not an acseg model file"),
    ],
)  # fmt: skip
def test_crafted_model_files_are_one_line(tmp_path: Path, payload, reason: str) -> None:
    path = tmp_path / "crafted.pt"
    torch.save(payload, path)
    with pytest.raises(InputError, match=reason) as caught:
        load_model(path, device="cpu")
    assert str(path) in str(caught.value) and "\n" not in str(caught.value)


def test_an_unreadable_model_says_permission_denied(
    tmp_path: Path, model: Path, monkeypatch
) -> None:
    real_read = Path.read_bytes

    def denied(self: Path) -> bytes:
        if self == model:
            raise PermissionError(errno.EACCES, "Permission denied", str(self))
        return real_read(self)

    monkeypatch.setattr(Path, "read_bytes", denied)
    with pytest.raises(InputError, match="permission denied"):
        load_model(model, device="cpu")


def test_a_symlink_loop_is_named_as_one(tmp_path: Path, images: Path, capsys) -> None:
    loop_a, loop_b = tmp_path / "a.pt", tmp_path / "b.pt"
    loop_a.symlink_to(loop_b)
    loop_b.symlink_to(loop_a)
    with pytest.raises(InputError, match="symbolic links"):
        load_model(loop_a, device="cpu")
    image_loop = images / "loop.png"
    image_loop.symlink_to(image_loop)
    from acseg_core.io.raster import open_raster

    with pytest.raises(InputError, match="symbolic links"):
        open_raster(image_loop)


# -- crafted project and edits files ---------------------------------------------------


def test_edits_with_a_zero_tile_or_negative_shape_are_one_line(tmp_path: Path) -> None:
    for shape in ([8, 8, 0], [-4, 8, 16]):
        path = tmp_path / "edits.npz"
        np.savez(
            path,
            format=np.array("acseg-edits"),
            version=np.array(1),
            shape=np.array(shape, dtype=np.int64),
            keys=np.zeros((0, 2), dtype=np.int64),
            tiles=np.zeros((0, 16, 16), dtype=np.uint8),
        )
        with pytest.raises(InputError) as caught:
            EditLayer.load(path)
        assert str(path) in str(caught.value)


def test_a_project_nested_deep_is_one_line(tmp_path: Path) -> None:
    path = tmp_path / "deep.acseg"
    path.write_text("[" * 100_000 + "]" * 100_000)
    with pytest.raises(InputError) as caught:
        Project.load(path)
    assert str(path) in str(caught.value)


# -- nothing is written over an input --------------------------------------------------


def test_predict_into_the_source_folder_never_replaces_a_source_image(
    tmp_path: Path, model: Path
) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    make_regions_image(folder / "photo.png", size=(48, 48), bands=3)
    real = make_regions_image(folder / "photo_clusters.png", size=(48, 48), bands=3, seed=5)
    before = (folder / "photo_clusters.png").read_bytes()
    result = run_cli("predict", str(model), str(folder), "--out", str(folder))
    assert result.returncode != 0
    assert "photo_clusters.png" in one_line(result.stderr)
    assert (folder / "photo_clusters.png").read_bytes() == before and real is not None


# -- failing disks and output paths ----------------------------------------------------


def test_train_onto_a_full_disk_is_one_line_and_leaves_no_model(
    tmp_path: Path, images: Path
) -> None:
    out = tmp_path / "run"
    result = run_cli(
        "train", str(images), "--out", str(out), "--steps", "2", "--clusters", "3",
        "--crop", "32", "--workers", "0", limit_bytes=20_000,
    )  # fmt: skip
    assert result.returncode == 1
    line = one_line(result.stderr)
    assert str(out) in line and "file too large" in line, line
    assert not (out / "model.pt").exists()
    leftovers = [p.name for p in out.glob(".*")] if out.exists() else []
    assert leftovers == []


def test_predict_manifest_on_a_full_disk_is_one_line(tmp_path: Path, model: Path, images: Path,
                                                     monkeypatch, capsys) -> None:  # fmt: skip
    from types import SimpleNamespace

    from acseg_core.inference import manifest

    def full(_fd: int) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(manifest, "os", SimpleNamespace(fsync=full))
    out = tmp_path / "pred"
    code = main(["predict", str(model), str(images), "--out", str(out),
                 "--manifest", str(tmp_path / "m.jsonl")])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "no space left" in one_line(err).lower()


@pytest.mark.parametrize("verb", ["train", "predict", "export"])
def test_out_that_is_a_regular_file_is_one_line(verb: str, tmp_path: Path, model: Path,
                                                images: Path, capsys) -> None:  # fmt: skip
    blocker = tmp_path / "taken"
    blocker.write_text("mine")
    if verb == "train":
        args = ["train", str(images), "--out", str(blocker), "--steps", "1"]
    elif verb == "predict":
        args = ["predict", str(model), str(images), "--out", str(blocker)]
    else:
        project = Project()
        project.add_images(sorted(images.glob("*.png")))
        project.set_model(model)
        project_path = tmp_path / "p.acseg"
        project.save(project_path)
        args = ["export", str(project_path), "--out", str(blocker)]
    code = main(args)
    line = one_line(capsys.readouterr().err)
    assert code == 1 and str(blocker) in line and "not a folder" in line
    assert blocker.read_text() == "mine"


def _deny_writes_under(folder: Path, monkeypatch) -> None:
    """Make ``folder`` behave as read-only (root ignores the mode bits)."""
    import tempfile

    real_mkstemp = tempfile.mkstemp

    def mkstemp(*args, dir=None, **kwargs):
        if dir is not None and Path(dir).resolve().is_relative_to(folder.resolve()):
            raise PermissionError(errno.EACCES, "Permission denied", str(dir))
        return real_mkstemp(*args, dir=dir, **kwargs)

    monkeypatch.setattr(tempfile, "mkstemp", mkstemp)
    real_access = os.access
    monkeypatch.setattr(
        os, "access",
        lambda p, mode, **kw: False if Path(p).resolve() == folder.resolve() and mode & os.W_OK
        else real_access(p, mode, **kw),
    )  # fmt: skip


def test_predict_into_a_read_only_folder_names_the_folder(tmp_path: Path, model: Path, images: Path,
                                                          monkeypatch, capsys) -> None:  # fmt: skip
    out = tmp_path / "ro"
    out.mkdir()
    _deny_writes_under(out, monkeypatch)
    code = main(["predict", str(model), str(images), "--out", str(out)])
    line = one_line(capsys.readouterr().err)
    assert code == 1 and str(out) in line and "permission denied" in line
    assert str(images / "img0.png") not in line


def test_export_into_a_read_only_folder_is_one_line(tmp_path: Path, model: Path, images: Path,
                                                    monkeypatch, capsys) -> None:  # fmt: skip
    project = Project()
    project.add_images(sorted(images.glob("*.png")))
    project.set_model(model)
    project_path = tmp_path / "p.acseg"
    project.save(project_path)
    out = tmp_path / "ro"
    out.mkdir()
    _deny_writes_under(out, monkeypatch)
    code = main(["export", str(project_path), "--out", str(out)])
    line = one_line(capsys.readouterr().err)
    assert code == 1 and "permission denied" in line.lower()
    assert list(out.iterdir()) == []


# -- images too small to train on ------------------------------------------------------


def test_a_folder_of_degenerate_images_is_refused_up_front(tmp_path: Path, capsys) -> None:
    folder = tmp_path / "tiny"
    folder.mkdir()
    write_image(folder / "dot.png", np.full((3, 1, 1), 128, np.uint8))
    write_image(folder / "line.png", np.full((3, 1, 10000), 128, np.uint8))
    out = tmp_path / "run"
    code = main(["train", str(folder), "--out", str(out), "--steps", "2"])
    line = one_line(capsys.readouterr().err)
    assert code == 1 and "too small" in line
    assert not out.exists()  # no empty run folder, and no model.pt to predict with


# -- signals ---------------------------------------------------------------------------


def test_sigterm_of_train_saves_and_exits_143(tmp_path: Path, images: Path) -> None:
    out = tmp_path / "run"
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "acseg_core", "train", str(images), "--out", str(out),
         "--steps", "100000", "--steps-per-epoch", "1", "--workers", "0", "--crop", "32"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=REPO,
    )  # fmt: skip
    deadline = time.monotonic() + 90
    log = out / "train.jsonl"
    while time.monotonic() < deadline and not (log.exists() and '"epoch"' in log.read_text()):
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=90)
    assert process.returncode == 128 + signal.SIGTERM, stderr  # one convention (README)
    loaded = load_model(out / "model.pt", device="cpu")
    assert loaded.meta["final"] is False and loaded.meta["step"] >= 1


def _children(pid: int) -> list[int]:
    found = []
    for status in Path("/proc").glob("[0-9]*/status"):
        try:
            fields = dict(
                line.split(":\t", 1) for line in status.read_text().splitlines() if ":\t" in line
            )
        except OSError:
            continue
        if fields.get("PPid", "").strip() == str(pid):
            found.append(int(status.parent.name))
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="uses /proc and PDEATHSIG")
def test_predict_workers_die_with_a_killed_parent(tmp_path: Path, model: Path) -> None:
    folder = tmp_path / "many"
    folder.mkdir()
    for seed in range(24):
        make_regions_image(folder / f"img{seed:02d}.png", size=(160, 160), bands=3, seed=seed)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    process = subprocess.Popen(
        [sys.executable, "-m", "acseg_core", "predict", str(model), str(folder),
         "--out", str(tmp_path / "pred"), "--nproc", "2"],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env, cwd=REPO,
    )  # fmt: skip
    deadline = time.monotonic() + 60
    workers: list[int] = []
    while time.monotonic() < deadline and len(workers) < 2:
        workers = _children(process.pid)
        time.sleep(0.1)
    assert workers, "the workers never started"
    process.send_signal(signal.SIGKILL)
    process.wait(timeout=30)
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and any(_alive(pid) for pid in workers):
        time.sleep(0.2)
    assert not any(_alive(pid) for pid in workers)


def test_project_model_field_pointing_at_a_code_file_is_refused(tmp_path: Path, images: Path,
                                                               capsys) -> None:  # fmt: skip
    marker = tmp_path / "pwned"
    evil = tmp_path / "elsewhere" / "model.pt"
    evil.parent.mkdir()
    with evil.open("wb") as handle:
        pickle.dump(_RunsCode(marker), handle)
    project_path = tmp_path / "p.acseg"
    data = {"format": "acseg-project", "version": 2, "images": [], "model": str(evil)}
    project_path.write_text(json.dumps(data))
    code = main(["export", str(project_path), "--out", str(tmp_path / "out")])
    capsys.readouterr()
    assert code == 1 and not marker.exists()
