"""Prediction over collections in one process: resume after an interruption, manifest, list
files. On Dask (--scheduler, --nproc N) and in shards: test_predict_dask.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch

from acseg_core.cli import main
from acseg_core.inference.collection import RUNNING, predict_collection
from acseg_core.inference.files import FileResult
from acseg_core.inference.manifest import Manifest, read_manifest
from acseg_core.inference.predict import PredictOptions
from acseg_core.inference.sources import iter_sources
from acseg_core.io.normalise import Normalisation, apply_normalisation
from acseg_core.io.raster import open_raster
from acseg_core.jobs import CancelToken
from acseg_core.model.checkpoint import save_checkpoint
from acseg_core.model.nn import build_model
from acseg_core.model.readouts import ReadOut
from acseg_core.presets import preset
from tests.core.synthetic import make_regions_image

ROOT = Path(__file__).resolve().parents[2]
OPTIONS = PredictOptions(tile=64, batch=2, precision="fp32", device="cpu")
CLI_OPTIONS = ["--tile", "64", "--batch", "2", "--precision", "fp32", "--device", "cpu"]
IMAGES = 6


@pytest.fixture(scope="module")
def collection(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Six small images: georeferenced GeoTIFFs (→ .tif) and PNGs (→ .png)."""
    folder = tmp_path_factory.mktemp("collection")
    for i in range(IMAGES):
        name = f"img{i}.tif" if i % 2 == 0 else f"img{i}.png"
        make_regions_image(folder / name, size=(96, 80), bands=3, seed=i, crs=i % 2 == 0)
    return folder


@pytest.fixture(scope="module")
def model_file(collection: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Random-init cpu-small with clusters balanced on the data (argmax depends on context)."""
    torch.manual_seed(0)
    config = preset(
        "cpu-small",
        in_channels=3,
        clusters=5,
        readout=ReadOut(None, 0),  # small tiles: the 25 px filter's margin would not fit
        normalisation=Normalisation(low=(0.0,) * 3, high=(255.0,) * 3),
    )
    model = build_model(config).eval()
    with open_raster(collection / "img0.tif") as raster:
        x = torch.from_numpy(apply_normalisation(raster.read(), config.normalisation))[None]
    with torch.no_grad():
        model.head.bias -= model(x).clamp_min(1e-12).log().mean(dim=(0, 2, 3))
    path = tmp_path_factory.mktemp("model") / "model.pt"
    save_checkpoint(path, model, config)
    return path


@pytest.fixture(scope="module")
def reference(collection: Path, model_file: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted single-process run."""
    out = tmp_path_factory.mktemp("reference")
    summary = drain(
        predict_collection(model_file, iter_sources([collection]), out, options=OPTIONS)
    )
    assert (summary.ok, summary.skipped, summary.failed) == (IMAGES, 0, 0)
    return out


def drain(job, cancel_after: int | None = None, token: CancelToken | None = None):  # type: ignore[no-untyped-def]
    seen = 0
    while True:
        try:
            progress = next(job)
        except StopIteration as stop:
            return stop.value
        if progress.metrics["status"] == RUNNING:  # a tile of a file, not a finished file
            continue
        seen += 1
        if cancel_after is not None and seen == cancel_after and token is not None:
            token.cancel()


def read_array(path: Path) -> np.ndarray:
    with open_raster(path) as raster:
        return raster.read()


def assert_same_outputs(out: Path, reference: Path) -> None:
    """Same file names, no leftovers (hidden temp files included), byte-equal arrays."""
    expected = sorted(p.name for p in reference.iterdir())
    found = sorted(p.name for p in out.iterdir() if p.suffix in (".tif", ".png"))
    assert found == expected and len(expected) == IMAGES
    assert not [p.name for p in out.iterdir() if p.name.startswith(".")]
    for name in expected:
        np.testing.assert_array_equal(read_array(out / name), read_array(reference / name))


def test_cancelled_run_resumes_to_the_uninterrupted_result(
    collection: Path, model_file: Path, reference: Path, tmp_path: Path
) -> None:
    out, manifest = tmp_path / "out", tmp_path / "manifest.jsonl"
    token = CancelToken()
    job = predict_collection(
        model_file, iter_sources([collection]), out, options=OPTIONS, manifest=manifest,
        cancel=token,
    )  # fmt: skip
    first = drain(job, cancel_after=2, token=token)
    assert first.cancelled and first.ok == 2
    assert len(list(out.iterdir())) == 2  # the two finished, nothing half-written

    job = predict_collection(
        model_file, iter_sources([collection]), out, options=OPTIONS, manifest=manifest,
        resume=True,
    )  # fmt: skip
    second = drain(job)
    assert (second.ok, second.skipped, second.failed, second.cancelled) == (4, 2, 0, False)
    assert_same_outputs(out, reference)
    records = read_manifest(manifest)
    ok = [r["input"] for r in records if r["status"] == "ok"]
    skipped = [r["input"] for r in records if r["status"] == "skipped"]
    assert len(ok) == len(set(ok)) == IMAGES  # each written exactly once
    assert sorted(skipped) == sorted(ok[:2])


def test_killed_process_resumes_cleanly(
    collection: Path, model_file: Path, reference: Path, tmp_path: Path
) -> None:
    """SIGKILL mid-run (no cleanup code runs), then --resume: complete and no temp files."""
    out, manifest = tmp_path / "out", tmp_path / "manifest.csv"
    command = [sys.executable, "-m", "acseg_core", "predict", str(model_file), str(collection)]
    command += ["--out", str(out), "--manifest", str(manifest), *CLI_OPTIONS]
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    process = subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    deadline = time.monotonic() + 120
    def maps() -> set[str]:  # finished maps (a COG's .qml/.aux.xml come with it)
        return {p.name for p in out.iterdir() if p.suffix in (".tif", ".png")} - {
            p.name for p in out.iterdir() if p.name.startswith(".")
        }

    while time.monotonic() < deadline and process.poll() is None:
        if out.is_dir() and len(maps()) >= 2:
            break
        time.sleep(0.02)
    process.send_signal(signal.SIGKILL)
    process.communicate()
    done_before = maps()
    assert 2 <= len(done_before) < IMAGES, "the run was not interrupted midway"
    # what a kill during a write leaves: a hidden temp beside the output it was for
    stale = out / ".img5_clusters.png.k1ll3d.png"
    stale.write_bytes(b"\x89PNG half-written")

    code = main(["predict", str(model_file), str(collection), "--out", str(out), "--resume",
                 "--manifest", str(manifest), *CLI_OPTIONS])  # fmt: skip
    assert code == 0
    assert_same_outputs(out, reference)
    records = read_manifest(manifest)
    assert {r["status"] for r in records} <= {"ok", "skipped"}
    skipped = {Path(r["output"]).name for r in records if r["status"] == "skipped"}
    assert skipped == done_before  # a complete output is never predicted twice
    written = [r["input"] for r in records if r["status"] == "ok"]
    assert len(written) == len(set(written))


def test_list_file_and_output_folder_equal_to_input_folder(
    collection: Path, model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "data"
    folder.mkdir()
    for name in ("img0.tif", "img1.png"):
        (folder / name).write_bytes((collection / name).read_bytes())
    listing = tmp_path / "list.txt"
    listing.write_text("# inputs\ndata/img0.tif\n\ndata/missing.tif\n" + f"{folder / 'img1.png'}\n")
    manifest = tmp_path / "m.jsonl"
    code = main(["predict", str(model_file), "--list", str(listing), "--out", str(folder),
                 "--manifest", str(manifest), *CLI_OPTIONS])  # fmt: skip
    err = capsys.readouterr().err
    assert code == 1 and "missing.tif" in err and "Traceback" not in err
    assert sorted(p.name for p in folder.iterdir()) == [
        "img0.tif", "img0_clusters.qml", "img0_clusters.tif", "img0_clusters.tif.aux.xml",
        "img1.png", "img1_clusters.png",
    ]  # fmt: skip
    statuses = sorted(r["status"] for r in read_manifest(manifest))
    assert statuses == ["error", "ok", "ok"]

    # the folder now holds outputs: a --resume over it must neither redo nor re-read them
    code = main(["predict", str(model_file), str(folder), "--out", str(folder), "--resume",
                 "--manifest", str(manifest), *CLI_OPTIONS])  # fmt: skip
    assert code == 0
    new = read_manifest(manifest)[3:]
    assert sorted((Path(r["input"]).name, r["status"]) for r in new) == [
        ("img0.tif", "skipped"), ("img1.png", "skipped"),
    ]  # fmt: skip
    assert len(list(folder.iterdir())) == 6


def test_resume_counts_an_output_complete_only_with_its_confidence_file(
    collection: Path, model_file: Path, tmp_path: Path
) -> None:
    out = tmp_path / "out"
    image = collection / "img0.tif"
    options = PredictOptions(**{**OPTIONS.__dict__, "with_confidence": False})
    drain(predict_collection(model_file, iter_sources([image]), out, options=options))
    with_conf = PredictOptions(**{**OPTIONS.__dict__, "with_confidence": True})
    job = predict_collection(model_file, iter_sources([image]), out, options=with_conf, resume=True)
    summary = drain(job)
    assert (summary.ok, summary.skipped) == (1, 0)
    assert (out / "img0_clusters_confidence.tif").is_file()


def test_manifest_survives_a_torn_last_line(tmp_path: Path) -> None:
    path = tmp_path / "m.jsonl"
    first = FileResult(Path("a.tif"), Path("o/a_clusters.tif"), "ok", 1.5)
    path.write_text(json.dumps(first.record()) + "\n" + '{"input": "b.tif", "outp')
    manifest = Manifest(path)
    manifest.append(FileResult(Path("c.tif"), None, "error", 0.1, "c.tif: broken").record())
    manifest.close()
    records = read_manifest(path)
    assert [(r["input"], r["status"]) for r in records] == [("a.tif", "ok"), ("c.tif", "error")]
    assert records[1]["error"] == "c.tif: broken"


def test_a_cancel_after_the_last_file_is_not_an_interruption(
    collection: Path, model_file: Path, tmp_path: Path
) -> None:
    token = CancelToken()
    job = predict_collection(
        model_file, iter_sources([collection / "img1.png"]), tmp_path, options=OPTIONS,
        cancel=token,
    )  # fmt: skip
    summary = drain(job, cancel_after=1, token=token)
    assert (summary.ok, summary.cancelled) == (1, False)


def test_a_users_image_named_like_an_output_is_never_written_over(
    collection: Path, model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "photo.png").write_bytes((collection / "img1.png").read_bytes())
    real = folder / "photo_clusters.png"  # somebody's photo, not an acseg output
    real.write_bytes((collection / "img3.png").read_bytes())
    before = real.read_bytes()
    code = main(["predict", str(model_file), str(folder), "--out", str(folder), *CLI_OPTIONS])
    err = capsys.readouterr().err
    assert code == 1 and "Traceback" not in err
    assert f"refusing to write over {real}" in err
    assert real.read_bytes() == before
    # ...and it stayed an input: its own map was made
    assert (folder / "photo_clusters_clusters.png").is_file()


def test_an_output_folder_that_is_a_file_is_one_line(
    collection: Path, model_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    blocker = tmp_path / "out"
    blocker.write_text("not a folder")
    code = main(["predict", str(model_file), str(collection), "--out", str(blocker), *CLI_OPTIONS])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 1
    assert err == [f"acseg-core predict: error: {blocker}: exists and is not a folder"]
    assert blocker.read_text() == "not a folder"


def test_caller_named_outputs_skip_bad_images_report_tiles_and_stop_at_cancel(
    collection: Path, model_file: Path, tmp_path: Path
) -> None:
    """The app's label-all path: outputs named by the caller (a cache), results heard
    as they finish, tile progress within a file, a bad file skipped, cancel stops."""
    images = sorted(collection.glob("img*"))[:3]
    bad = tmp_path / "broken_9.tif"
    bad.write_bytes(b"not a tiff")
    cache = tmp_path / "cache"
    heard: list[FileResult] = []
    token = CancelToken()
    job = predict_collection(
        model_file, [images[0], bad, images[1], images[2]], cache, options=OPTIONS,
        resume=True, cancel=token, total=4, on_result=heard.append,
        name_output=lambda image: cache / f"{image.stem}-map.png",
    )  # fmt: skip
    running = []
    while True:
        try:
            progress = next(job)
        except StopIteration as stop:
            summary = stop.value
            break
        if progress.metrics["status"] == RUNNING:
            running.append(progress)
        elif sum(r.status == "ok" for r in heard) == 2:
            token.cancel()
    assert [(r.image, r.status) for r in heard] == [
        (images[0], "ok"), (bad, "error"), (images[1], "ok")
    ]
    assert "broken_9.tif" in heard[1].error
    assert sorted(p.name for p in cache.iterdir()) == ["img0-map.png", "img1-map.png"]
    assert summary.cancelled and (summary.ok, summary.failed) == (2, 1)
    assert running and all(r.eta_s is None or r.eta_s >= 0 for r in running)
    assert {r.metrics["image"] for r in running} == {images[0], images[1]}
    # resumed: what is there is skipped, the rest is done
    again: list[FileResult] = []
    drain(predict_collection(
        model_file, images, cache, options=OPTIONS, resume=True, on_result=again.append,
        name_output=lambda image: cache / f"{image.stem}-map.png",
    ))  # fmt: skip
    assert [r.status for r in again] == ["skipped", "skipped", "ok"]
